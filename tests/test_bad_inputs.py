"""Bad inputs: every public sampler refuses them eagerly, with the right exception type and
a message that names the offending argument, and before anything is allocated or filled.

One table (CASES) covers every sampler x every kind of bad argument. Where a case can take
`out=`, a valid output array pre-filled with a poison pattern is passed along with the bad
argument, and must come back byte-for-byte unchanged: a check that runs after the fill (or
a fill that runs before a check) is caught.

Zero-size shapes are not bad inputs: every sampler returns an empty array for them.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import fastinit as fi
import ml_dtypes
import numpy as np
import pytest
from _shared import LINUX, NUMPY_DTYPES

SEED = 1234
POISON = 0xA5  # byte pattern pre-filled into every `out=` that must stay untouched
TIB = 1 << 40

# --------------------------------------------------------------------------------------
# The samplers, each called as fn(shape, **keywords) with every other argument valid.
# --------------------------------------------------------------------------------------

NAMED = (
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "xavier_normal",
    "xavier_uniform",
    "kaiming_normal",
    "kaiming_uniform",
)
FAN_BASED = ("variance_scaling", *NAMED)
SEEDED = (*FAN_BASED, "truncated_normal", "normal", "uniform", "orthogonal")


def _sampler(name: str) -> Callable[..., np.ndarray]:
    """fn(shape, **kw) with the positional arguments that `name` needs besides the shape."""
    fn = getattr(fi, name)
    if name in SEEDED:
        return lambda shape, **kw: fn(shape, SEED, **kw)
    if name == "constant":
        return lambda shape, **kw: fn(shape, 0.5, **kw)
    return lambda shape, **kw: fn(shape, **kw)  # identity, dirac


# Every sampler that takes a shape, with a valid shape for it. (4, 6) so that the
# region cases below are wrong in exactly one way.
SHAPED = {name: (4, 6) for name in (*SEEDED, "constant", "identity")}
SHAPED["dirac"] = (4, 2, 3)


def _with_first_dim(shape: tuple, dim: Any) -> tuple:
    return (dim, *shape[1:])


def _random_bits(n: Any, **kw: Any) -> np.ndarray:
    return fi.random_bits(n, SEED, **kw)


# --------------------------------------------------------------------------------------
# `out=` factories: () -> (the object passed as out, the base array that must not change)
# --------------------------------------------------------------------------------------


def _poisoned(shape: tuple, dtype: Any = np.float32) -> np.ndarray:
    base = np.empty(shape, dtype=dtype)
    base.reshape(-1).view(np.uint8).fill(POISON)
    return base


def valid_out(shape: tuple, dtype: Any = np.float32) -> Callable[[], tuple[Any, np.ndarray]]:
    def make() -> tuple[Any, np.ndarray]:
        base = _poisoned(shape, dtype)
        return base, base

    return make


def read_only_out(shape: tuple) -> Callable[[], tuple[Any, np.ndarray]]:
    def make() -> tuple[Any, np.ndarray]:
        base = _poisoned(shape)
        base.flags.writeable = False
        return base, base

    return make


def transposed_out(shape: tuple) -> Callable[[], tuple[Any, np.ndarray]]:
    def make() -> tuple[Any, np.ndarray]:
        base = _poisoned(shape[::-1])
        view = base.T
        assert view.shape == shape and not view.flags.c_contiguous
        return view, base

    return make


def strided_out(shape: tuple) -> Callable[[], tuple[Any, np.ndarray]]:
    def make() -> tuple[Any, np.ndarray]:
        base = _poisoned((*shape[:-1], 2 * shape[-1]))
        view = base[..., ::2]
        assert view.shape == shape and not view.flags.c_contiguous
        return view, base

    return make


def list_out(shape: tuple) -> Callable[[], tuple[Any, None]]:
    return lambda: (np.zeros(shape, np.float32).tolist(), None)


# --------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------

CASES: list[Any] = []


def case(
    id: str,
    exc: type[BaseException],
    match: str,
    fn: Callable[..., Any],
    *args: Any,
    out: Callable[[], tuple[Any, np.ndarray | None]] | None = None,
    **kwargs: Any,
) -> None:
    CASES.append(pytest.param(fn, args, kwargs, exc, match, out, id=id))


NAN, INF = math.nan, math.inf

# ---- shapes: negative, non-integer, bool dims; element / byte overflow; > memory -------
for name, good in SHAPED.items():
    fn = _sampler(name)
    case(
        f"{name}-negative-dim",
        ValueError,
        r"shape\[0\] must be >= 0",
        fn,
        _with_first_dim(good, -1),
    )
    case(f"{name}-float-dim", TypeError, r"shape\[0\]", fn, _with_first_dim(good, 3.0))
    case(f"{name}-str-dim", TypeError, r"shape\[0\]", fn, _with_first_dim(good, "3"))
    case(f"{name}-bool-dim", TypeError, r"shape\[0\]", fn, _with_first_dim(good, True))
    case(f"{name}-str-shape", TypeError, r"^shape must be", fn, "46")
    case(
        f"{name}-element-overflow",
        OverflowError,
        r"shape .*2\^63",
        fn,
        _with_first_dim(good, 2**62),
    )
    byte_shape = (2**61,) + (1,) * (len(good) - 1)
    case(
        f"{name}-byte-overflow",
        OverflowError,
        r"shape .*float64.*bytes",
        fn,
        byte_shape,
        dtype="float64",
    )
    # 4 TiB of float32: more than any test machine has; must be a clean MemoryError.
    tera_shape = (2**40,) if name in ("normal", "uniform", "truncated_normal", "constant") else None
    tera_shape = tera_shape or (2**20, 2**20) + (1,) * (len(good) - 2)
    case(f"{name}-4TiB", MemoryError, r"allocate", fn, tera_shape)
    # A dim that numpy cannot hold, even though the element count is 0.
    if name in ("normal", "he_normal", "constant"):
        case(f"{name}-dim-past-int64-in-empty-shape", OverflowError, r"shape", fn, (0, 2**70))

# random_bits takes a count n, not a shape.
case("random_bits-negative-n", ValueError, r"\bn\b.*-1", _random_bits, -1)
case("random_bits-float-n", TypeError, r"\bn\b", _random_bits, 3.0)
case("random_bits-str-n", TypeError, r"\bn\b", _random_bits, "3")
case("random_bits-bool-n", TypeError, r"\bn\b", _random_bits, True)
case("random_bits-n-2^63", OverflowError, r"\bn\b", _random_bits, 2**63)
case("random_bits-byte-overflow", OverflowError, r"\bn\b", _random_bits, 2**62)
case("random_bits-4TiB", MemoryError, r"allocate", _random_bits, 2**40)

# ---- fans ------------------------------------------------------------------------------
for name in FAN_BASED:
    fn = _sampler(name)
    for shape in ((), (5,)):
        case(
            f"{name}-{len(shape)}d-without-fans",
            ValueError,
            r"at least 2 axes.*fan_in",
            fn,
            shape,
            out=valid_out(shape),
        )
    for bad in (0, -1, -2.5, NAN, INF):
        case(
            f"{name}-fan_in={bad}",
            ValueError,
            r"fan_in",
            fn,
            (4, 6),
            fan_in=bad,
            out=valid_out((4, 6)),
        )
    case(f"{name}-fan_in=str", TypeError, r"fan_in", fn, (4, 6), fan_in="6")
    case(f"{name}-fan_in=bool", TypeError, r"fan_in", fn, (4, 6), fan_in=True)
    case(
        f"{name}-layout-unknown",
        ValueError,
        r"layout.*'torch'",
        fn,
        (4, 6),
        layout="tf",
        out=valid_out((4, 6)),
    )
    case(f"{name}-layout-None", ValueError, r"layout", fn, (4, 6), layout=None)
    case(
        f"{name}-distribution-unknown",
        ValueError,
        r"distribution.*'uniform'",
        fn,
        (4, 6),
        distribution="gaussian",
        out=valid_out((4, 6)),
    )
    case(f"{name}-distribution-None", ValueError, r"distribution", fn, (4, 6), distribution=None)
    case(f"{name}-in_axis-out-of-range", ValueError, r"in_axis", fn, (4, 6), in_axis=2)
    case(f"{name}-in_axis-equals-out_axis", ValueError, r"in_axis.*out_axis", fn, (4, 6), in_axis=0)
    case(f"{name}-in_axis-str", TypeError, r"in_axis", fn, (4, 6), in_axis="1")
    case(f"{name}-batch_axis-overlaps", ValueError, r"batch_axis", fn, (4, 6, 3), batch_axis=0)
for name in ("variance_scaling", "glorot_uniform"):
    mode = {"mode": "fan_out"} if name == "variance_scaling" else {}
    case(f"{name}-fan_out=0", ValueError, r"fan_out", _sampler(name), (4, 6), fan_out=0, **mode)
    case(f"{name}-fan_out=-1", ValueError, r"fan_out", _sampler(name), (4, 6), fan_out=-1, **mode)
# An argument is checked even when explicit fans make it unnecessary: a misspelt layout
# must not pass silently just because fan_in= was also given.
case(
    "variance_scaling-layout-unknown-with-fan_in",
    ValueError,
    r"layout",
    _sampler("variance_scaling"),
    (4, 6),
    layout="tf",
    fan_in=6.0,
    out=valid_out((4, 6)),
)
case(
    "glorot_normal-layout-unknown-with-both-fans",
    ValueError,
    r"layout",
    _sampler("glorot_normal"),
    (4, 6),
    layout="tf",
    fan_in=6.0,
    fan_out=4.0,
    out=valid_out((4, 6)),
)
case("compute_fans-layout-unknown", ValueError, r"layout", fi.compute_fans, (4, 6), layout="tf")
case("compute_fans-1d", ValueError, r"at least 2 axes", fi.compute_fans, (4,))

# ---- mode / nonlinearity --------------------------------------------------------------
for bad in ("fan_sum", "FAN_IN", None, 1):
    case(
        f"variance_scaling-mode={bad!r}",
        ValueError,
        r"mode.*'fan_avg'",
        _sampler("variance_scaling"),
        (4, 6),
        mode=bad,
        out=valid_out((4, 6)),
    )
for bad in ("swish", "ReLU", None, 3):
    case(
        f"calculate_gain-nonlinearity={bad!r}",
        ValueError,
        r"nonlinearity.*'relu'",
        fi.calculate_gain,
        bad,
    )
case(
    "calculate_gain-leaky_relu-param-str",
    TypeError,
    r"param",
    fi.calculate_gain,
    "leaky_relu",
    "0.2",
)
case(
    "calculate_gain-leaky_relu-param-nan",
    ValueError,
    r"param",
    fi.calculate_gain,
    "leaky_relu",
    NAN,
)

# ---- dtype -----------------------------------------------------------------------------
BAD_DTYPES = ("int32", "float8", None, 3, np.int32, ml_dtypes.float8_e4m3fn, "complex256", bool)
for name, good in SHAPED.items():
    for bad in BAD_DTYPES:
        label = getattr(bad, "__name__", repr(bad))
        case(
            f"{name}-dtype={label}",
            ValueError,
            r"dtype must be one of float32",
            _sampler(name),
            good,
            dtype=bad,
        )

# ---- scale / std / gain / value ----------------------------------------------------------
vs = _sampler("variance_scaling")
for bad in (-1.0, 0, 0.0, NAN, INF, -INF):
    case(
        f"variance_scaling-scale={bad}",
        ValueError,
        r"scale",
        vs,
        (4, 6),
        scale=bad,
        out=valid_out((4, 6)),
    )
for bad in ("1", True, None, 1j):
    case(f"variance_scaling-scale={bad!r}", TypeError, r"scale", vs, (4, 6), scale=bad)
for name in ("normal", "truncated_normal"):
    for bad in (-1.0, NAN, INF, -INF):
        case(
            f"{name}-std={bad}",
            ValueError,
            r"std",
            _sampler(name),
            (4, 6),
            std=bad,
            out=valid_out((4, 6)),
        )
    case(f"{name}-std=str", TypeError, r"std", _sampler(name), (4, 6), std="1")
    case(f"{name}-std=bool", TypeError, r"std", _sampler(name), (4, 6), std=True)
    case(f"{name}-mean=nan", ValueError, r"mean", _sampler(name), (4, 6), mean=NAN)
case("truncated_normal-std=0", ValueError, r"std", _sampler("truncated_normal"), (4, 6), std=0.0)
for name in (*NAMED, "orthogonal", "identity", "dirac"):
    for bad in (-1.0, NAN, INF, -INF):
        case(
            f"{name}-gain={bad}",
            ValueError,
            r"gain",
            _sampler(name),
            SHAPED[name],
            gain=bad,
            out=valid_out(SHAPED[name]),
        )
    case(f"{name}-gain=str", TypeError, r"gain", _sampler(name), SHAPED[name], gain="2")
    case(f"{name}-gain=bool", TypeError, r"gain", _sampler(name), SHAPED[name], gain=True)
for bad in (NAN, INF, -INF):
    case(
        f"constant-value={bad}",
        ValueError,
        r"value",
        fi.constant,
        (4, 6),
        bad,
        out=valid_out((4, 6)),
    )
case("constant-value=str", TypeError, r"value", fi.constant, (4, 6), "1")

# ---- bounds ------------------------------------------------------------------------------
un, tn = _sampler("uniform"), _sampler("truncated_normal")
case(
    "uniform-low>high",
    ValueError,
    r"low.*high",
    un,
    (4, 6),
    low=1.0,
    high=0.0,
    out=valid_out((4, 6)),
)
for bad in (NAN, INF):
    case(f"uniform-low={bad}", ValueError, r"low", un, (4, 6), low=bad)
    case(f"uniform-high={bad}", ValueError, r"high", un, (4, 6), high=bad)
case("uniform-low=str", TypeError, r"low", un, (4, 6), low="0")
for lo, hi in ((1.0, 1.0), (2.0, 1.0), (INF, INF)):
    case(
        f"truncated_normal-lower={lo}-upper={hi}",
        ValueError,
        r"lower.*upper",
        tn,
        (4, 6),
        lower=lo,
        upper=hi,
        out=valid_out((4, 6)),
    )
for lo, hi in ((1.0, 1.0), (1.0, 0.0)):
    case(
        f"truncated_normal-a={lo}-b={hi}",
        ValueError,
        r"\ba\b.*\bb\b",
        tn,
        (4, 6),
        a=lo,
        b=hi,
        out=valid_out((4, 6)),
    )
case("truncated_normal-lower=nan", ValueError, r"lower", tn, (4, 6), lower=NAN)
case("truncated_normal-b=nan", ValueError, r"\bb\b", tn, (4, 6), b=NAN)
case(
    "truncated_normal-a-with-upper",
    ValueError,
    r"lower/upper.*a/b",
    tn,
    (4, 6),
    a=-1.0,
    upper=2.0,
    out=valid_out((4, 6)),
)
case(
    "truncated_normal-lower-with-b", ValueError, r"lower/upper.*a/b", tn, (4, 6), lower=-1.0, b=2.0
)

# ---- seed / stream -----------------------------------------------------------------------
for name in (*SEEDED, "random_bits"):
    first = 4 if name == "random_bits" else SHAPED[name]
    fn = getattr(fi, name)
    out = None if name == "random_bits" else valid_out(SHAPED[name])
    for bad in (-1, 2**64):
        case(
            f"{name}-seed={bad}",
            OverflowError,
            r"seed must be in \[0, 2\^64\)",
            fn,
            first,
            bad,
            out=out,
        )
        case(
            f"{name}-stream={bad}",
            OverflowError,
            r"stream must be in \[0, 2\^64\)",
            fn,
            first,
            SEED,
            stream=bad,
            out=out,
        )
    for bad in (True, 1.0, None, "1"):
        case(f"{name}-seed={bad!r}", TypeError, r"seed must be an integer", fn, first, bad, out=out)
    for bad in (False, 1.0, None, b"s"):
        case(f"{name}-stream={bad!r}", TypeError, r"stream", fn, first, SEED, stream=bad, out=out)
case("random_bits-offset=-1", OverflowError, r"offset", _random_bits, 4, offset=-1)
case("random_bits-offset+n-past-2^64", OverflowError, r"offset", _random_bits, 4, offset=2**64 - 2)

# ---- region ------------------------------------------------------------------------------
for name, good in SHAPED.items():
    fn = _sampler(name)
    out = valid_out(good)
    case(
        f"{name}-region-stop>dim",
        ValueError,
        r"region\[0\]\.stop",
        fn,
        good,
        region=(slice(0, 5),),
        out=out,
    )
    case(
        f"{name}-region-start<-dim",
        ValueError,
        r"region\[0\]\.start",
        fn,
        good,
        region=(slice(-5, None),),
        out=out,
    )
    case(
        f"{name}-region-axis1-stop>dim",
        ValueError,
        r"region\[1\]\.stop",
        fn,
        good,
        region=(slice(None), slice(0, good[1] + 1)),
        out=out,
    )
    case(
        f"{name}-region-step",
        ValueError,
        r"region\[0\].*step",
        fn,
        good,
        region=(slice(0, 4, 2),),
        out=out,
    )
    case(
        f"{name}-region-too-many",
        ValueError,
        r"region has",
        fn,
        good,
        region=(slice(None),) * (len(good) + 1),
        out=out,
    )
    case(
        f"{name}-region-int-entry",
        TypeError,
        r"region\[0\] must be a slice",
        fn,
        good,
        region=(0,),
        out=out,
    )
    case(
        f"{name}-region-float-bound",
        TypeError,
        r"region\[0\]\.stop",
        fn,
        good,
        region=(slice(0, 2.0),),
    )
    case(
        f"{name}-region-list", TypeError, r"region must be a tuple", fn, good, region=[slice(0, 2)]
    )

# ---- out= --------------------------------------------------------------------------------
for name, good in SHAPED.items():
    fn = _sampler(name)
    case(
        f"{name}-out-read-only", ValueError, r"out is read-only", fn, good, out=read_only_out(good)
    )
    case(
        f"{name}-out-transposed",
        ValueError,
        r"out must be C-contiguous",
        fn,
        good,
        out=transposed_out(good),
    )
    case(
        f"{name}-out-strided",
        ValueError,
        r"out must be C-contiguous",
        fn,
        good,
        out=strided_out(good),
    )
    case(
        f"{name}-out-wrong-dtype",
        ValueError,
        r"out has dtype float64",
        fn,
        good,
        out=valid_out(good, np.float64),
    )
    case(
        f"{name}-out-wrong-shape", ValueError, r"out has shape", fn, good, out=valid_out(good[::-1])
    )
    case(
        f"{name}-out-region-shape",
        ValueError,
        r"out has shape",
        fn,
        good,
        region=(slice(0, 2),),
        out=valid_out(good),
    )
    case(f"{name}-out-list", TypeError, r"out must be a NumPy array", fn, good, out=list_out(good))

# ---- values that overflow the output dtype -----------------------------------------------
f16 = {"dtype": "float16", "out": valid_out((4, 6), np.float16)}
case(
    "normal-std=1e5-float16",
    ValueError,
    r"std.*float16",
    _sampler("normal"),
    (4, 6),
    std=1e5,
    **f16,
)
case(
    "normal-mean=1e5-float16",
    ValueError,
    r"mean.*float16",
    _sampler("normal"),
    (4, 6),
    mean=1e5,
    **f16,
)
case("truncated_normal-std=1e5-float16", ValueError, r"std.*float16", tn, (4, 6), std=1e5, **f16)
case("uniform-high=1e5-float16", ValueError, r"high.*float16", un, (4, 6), high=1e5, **f16)
case(
    "variance_scaling-scale=1e12-float16",
    ValueError,
    r"scale.*float16",
    vs,
    (4, 6),
    scale=1e12,
    **f16,
)
case(
    "he_normal-gain=1e6-float16",
    ValueError,
    r"(scale|gain).*float16",
    _sampler("he_normal"),
    (4, 6),
    gain=1e6,
    **f16,
)
case("constant-1e6-float16", ValueError, r"value.*float16", fi.constant, (4, 6), 1e6, **f16)
case(
    "identity-gain=1e6-float16",
    ValueError,
    r"gain.*float16",
    _sampler("identity"),
    (4, 6),
    gain=1e6,
    **f16,
)
case("normal-std=1e39-float32", ValueError, r"std.*float32", _sampler("normal"), (4, 6), std=1e39)

# ---- values are computed in float32, whatever the output dtype (issue 11, A1-A5) ---------
f64 = {"dtype": "float64", "out": valid_out((4, 6), np.float64)}
case("uniform-low=-1e300", ValueError, r"\blow\b", un, (4, 6), low=-1e300, out=valid_out((4, 6)))
case(
    "uniform-low=-1e300-high=1e300-float64",
    ValueError,
    r"\blow\b",
    un,
    (4, 6),
    low=-1e300,
    high=1e300,
    **f64,
)
case("uniform-high=1e39-float64", ValueError, r"\bhigh\b", un, (4, 6), high=1e39, **f64)
case("normal-std=1e38-float64", ValueError, r"\bstd\b", _sampler("normal"), (4, 6), std=1e38, **f64)
case(
    "normal-mean=1e39-float64",
    ValueError,
    r"\bmean\b",
    _sampler("normal"),
    (4, 6),
    mean=1e39,
    **f64,
)
case(
    "truncated_normal-std=3.4e38",
    ValueError,
    r"\bstd\b",
    tn,
    (4, 6),
    std=3.4e38,
    a=-1.0,
    out=valid_out((4, 6)),
)
case("truncated_normal-a=-1e300-float64", ValueError, r"\ba\b", tn, (4, 6), a=-1e300, **f64)
case(
    "truncated_normal-upper-beyond-float32",
    ValueError,
    r"\bupper\b",
    tn,
    (4, 6),
    std=1e30,
    upper=1e10,
    **f64,
)
for name in ("orthogonal", "he_normal", "glorot_uniform"):
    case(
        f"{name}-gain=1e300-float64",
        ValueError,
        r"\bgain\b",
        _sampler(name),
        (4, 6),
        gain=1e300,
        **f64,
    )
case(
    "variance_scaling-scale=1e300-fan_in=1e-300",
    ValueError,
    r"\bscale\b",
    vs,
    (4, 6),
    scale=1e300,
    fan_in=1e-300,
    **f64,
)
case(
    "constant-1e300-float32",
    ValueError,
    r"\bvalue\b",
    fi.constant,
    (4, 6),
    1e300,
    out=valid_out((4, 6)),
)

# ---- reals too large for a float, and names that are not text (issue 11, A11) ------------
for name, keyword in (
    ("normal", "std"),
    ("normal", "mean"),
    ("uniform", "high"),
    ("truncated_normal", "b"),
    ("variance_scaling", "scale"),
    ("he_uniform", "gain"),
    ("orthogonal", "gain"),
    ("dirac", "gain"),
    ("identity", "gain"),
    ("glorot_normal", "fan_in"),
):
    case(
        f"{name}-{keyword}=2^1024",
        OverflowError,
        rf"\b{keyword}\b",
        _sampler(name),
        SHAPED[name],
        **{keyword: 2**1024},
        out=valid_out(SHAPED[name]),
    )
case("constant-value=2^1024", OverflowError, r"\bvalue\b", fi.constant, (4, 6), 2**1024)
case(
    "calculate_gain-leaky_relu-param=2^1024",
    OverflowError,
    r"\bparam\b",
    fi.calculate_gain,
    "leaky_relu",
    2**1024,
)
for name in SEEDED:
    case(
        f"{name}-stream-lone-surrogate",
        ValueError,
        r"\bstream\b",
        _sampler(name),
        SHAPED[name],
        stream="\udcff",
        out=valid_out(SHAPED[name]),
    )
    case(
        f"{name}-seed=10^5000",
        OverflowError,
        r"\bseed\b",
        getattr(fi, name),
        SHAPED[name],
        10**5000,
        out=valid_out(SHAPED[name]),
    )
case(
    "random_bits-stream-lone-surrogate",
    ValueError,
    r"\bstream\b",
    _random_bits,
    4,
    stream="a\ud800",
)
case("stream_id-lone-surrogate", ValueError, r"\bname\b", fi.stream_id, "\udcff")

# ---- fan arguments are checked even when the fans are given (issue 11, A8/A9) ------------
for name in FAN_BASED:
    fn = _sampler(name)
    for keyword, bad, exc in (
        ("in_axis", "0", TypeError),
        ("in_axis", True, TypeError),
        ("out_axis", 1.0, TypeError),
        ("batch_axis", {0}, TypeError),
        ("batch_axis", (False,), TypeError),
    ):
        case(
            f"{name}-{keyword}={bad!r}-with-fan_in",
            exc,
            keyword,
            fn,
            (4, 6),
            fan_in=6,
            fan_out=4,
            **{keyword: bad},
            out=valid_out((4, 6)),
        )
case("compute_fans-in_axis=True", TypeError, r"in_axis", fi.compute_fans, (3, 4), in_axis=True)
case(
    "compute_fans-batch_axis=(2.0,)",
    TypeError,
    r"batch_axis",
    fi.compute_fans,
    (3, 4, 5),
    batch_axis=(2.0,),
)

# ---- structure ---------------------------------------------------------------------------
case(
    "identity-3d",
    ValueError,
    r"identity needs a 2-D shape",
    fi.identity,
    (4, 4, 3),
    out=valid_out((4, 4, 3)),
)
case("identity-1d", ValueError, r"identity needs a 2-D shape", fi.identity, (4,))
case(
    "dirac-2d",
    ValueError,
    r"dirac needs a shape with 3, 4 or 5 axes",
    fi.dirac,
    (4, 4),
    out=valid_out((4, 4)),
)
case("dirac-6d", ValueError, r"dirac needs", fi.dirac, (2, 2, 1, 1, 1, 1))
case(
    "dirac-groups-not-dividing",
    ValueError,
    r"groups",
    fi.dirac,
    (5, 2, 3),
    2,
    out=valid_out((5, 2, 3)),
)
case("dirac-groups=0", ValueError, r"groups", fi.dirac, (4, 2, 3), 0, out=valid_out((4, 2, 3)))
case("dirac-groups=-1", ValueError, r"groups", fi.dirac, (4, 2, 3), -1)
case("dirac-groups=float", TypeError, r"groups", fi.dirac, (4, 2, 3), 2.0)
case("dirac-groups=bool", TypeError, r"groups", fi.dirac, (4, 2, 3), True)
case(
    "orthogonal-1d",
    ValueError,
    r"orthogonal needs a shape with at least 2 axes",
    _sampler("orthogonal"),
    (4,),
    out=valid_out((4,)),
)
case("orthogonal-0d", ValueError, r"orthogonal needs", _sampler("orthogonal"), ())


@contextlib.contextmanager
def _address_space_capped() -> Any:
    """Cap this process's address space at 1 TiB above what it uses now, for the duration.

    Whether a 4 TiB malloc fails otherwise depends on the kernel's overcommit policy; with
    vm.overcommit_memory=1 it would succeed and the fill would be OOM-killed. Under the cap
    the allocation fails on every Linux, which is the behaviour under test: a clean
    MemoryError before any element is written.
    """
    if not LINUX:
        pytest.skip("address-space cap needs Linux")
    import resource

    with open("/proc/self/status") as status:
        vm_bytes = next(
            int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:")
        )
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = vm_bytes + TIB
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize("fn, args, kwargs, exc, match, out", CASES)
def test_bad_input_is_refused(fn, args, kwargs, exc, match, out):
    kwargs = dict(kwargs)
    base = None
    if out is not None:
        kwargs["out"], base = out()
        before = None if base is None else base.tobytes()
    with contextlib.ExitStack() as stack:
        if exc is MemoryError:
            stack.enter_context(_address_space_capped())
        with pytest.raises(exc, match=match):
            fn(*args, **kwargs)
    if base is not None:
        assert base.tobytes() == before, "out= was written although the call was refused"


def test_table_covers_every_public_sampler():
    samplers = {
        "variance_scaling",
        *NAMED,
        "truncated_normal",
        "normal",
        "uniform",
        "constant",
        "orthogonal",
        "identity",
        "dirac",
        "random_bits",
    }
    ids = [p.id for p in CASES]
    for name in samplers:
        assert any(i.startswith(f"{name}-") for i in ids), name
    assert len(ids) == len(set(ids)), "duplicate case ids"


# --------------------------------------------------------------------------------------
# Zero-size shapes are not errors
# --------------------------------------------------------------------------------------

ZERO_SHAPES = {name: [(0, 6), (4, 0), (0, 0, 3, 3), (2, 3, 0)] for name in (*SEEDED, "constant")}
for name in ("truncated_normal", "normal", "uniform", "constant"):
    ZERO_SHAPES[name] += [(0,), (5, 0, 2**40)]
ZERO_SHAPES["identity"] = [(0, 6), (4, 0), (0, 0)]
ZERO_SHAPES["dirac"] = [(0, 2, 3), (4, 0, 3), (4, 2, 0), (0, 0, 0, 0, 0)]
ZERO_CASES = [
    pytest.param(name, shape, id=f"{name}-{shape}")
    for name, shapes in ZERO_SHAPES.items()
    for shape in shapes
]


@pytest.mark.parametrize("name, shape", ZERO_CASES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_zero_size_shape_gives_an_empty_array(name, shape, dtype):
    result = _sampler(name)(shape, dtype=dtype)
    assert isinstance(result, np.ndarray)
    assert result.shape == shape
    assert result.dtype == fi_dtype(dtype)
    assert result.size == 0


@pytest.mark.parametrize("name, shape", ZERO_CASES)
def test_zero_size_shape_returns_the_given_out(name, shape):
    out = np.empty(shape, np.float32)
    assert _sampler(name)(shape, out=out) is out


def test_zero_size_fan_based_1d_with_explicit_fans():
    result = fi.he_normal((0,), SEED, fan_in=3)
    assert result.shape == (0,) and result.dtype == np.float32


def test_random_bits_zero():
    result = fi.random_bits(0, SEED)
    assert result.shape == (0,) and result.dtype == np.uint32


def fi_dtype(name: str) -> np.dtype:
    return NUMPY_DTYPES[name]
