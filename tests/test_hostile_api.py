"""The API under hostile arguments (issue 11, section 4): never NaN or inf, always named.

Two layers:
- the reproducers of the attack campaign (A1-A9, A11), each with the exact exception
  type and the argument its message names, plus the behaviours they broke (np.memmap
  and other ndarray subclasses as out=, O(output) dirac, checks the caches skipped);
- a property-based fuzz test over every public sampler with hostile values (huge, tiny,
  negative, NaN and infinite floats, huge ints, bools, surrogate strings, wrong types,
  odd shapes and regions, every dtype, out= arrays right and wrong). Each call either
  returns finite values inside the range it promises, or raises ValueError, TypeError,
  OverflowError (or MemoryError) naming one of the arguments it was given, leaving out=
  byte-for-byte as it was. A call with a valid out= gives the bits of the call without.
"""

from __future__ import annotations

import contextlib
import fractions
import inspect
import math
import re
import sys
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import fastinit as fi
import ml_dtypes
import numpy as np
import pytest
from _shared import DTYPES, NUMPY_DTYPES
from fastinit import structured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SEED = 1234
POISON = 0xA5
FLOAT32_MAX = float(np.finfo(np.float32).max)
REFUSALS = (ValueError, TypeError, OverflowError)


class Subclass(np.ndarray):
    """The most trivial ndarray subclass: out= must fill it like a plain array."""


def poisoned(shape: tuple, dtype: Any = np.float32) -> np.ndarray:
    array = np.empty(shape, dtype=dtype)
    array.reshape(-1).view(np.uint8).fill(POISON)
    return array


def refused(exc: type[BaseException], argument: str) -> Any:
    """pytest.raises for `exc` whose message names `argument` (as a word)."""
    return pytest.raises(exc, match=rf"(?<![\w]){re.escape(argument)}(?![\w])")


# --------------------------------------------------------------------------------------
# A1-A5: every parameter combination gives finite values in range, or is refused
# --------------------------------------------------------------------------------------


def test_a1_uniform_low_beyond_float32_is_refused():
    out = poisoned((1000,))
    with refused(ValueError, "low"):
        fi.uniform((1000,), 0, low=-1e300, out=out)
    assert (out.view(np.uint8) == POISON).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a2_uniform_bounds_beyond_float32_are_refused_even_for_float64(dtype):
    with refused(ValueError, "low"):
        fi.uniform((1000,), 0, low=-1e300, high=1e300, dtype=dtype)
    with refused(ValueError, "high"):
        fi.uniform((1000,), 0, low=0.0, high=1e39, dtype=dtype)


def test_uniform_over_the_whole_float32_range_is_finite():
    x = fi.uniform((1 << 16,), 0, low=-FLOAT32_MAX, high=FLOAT32_MAX, dtype="float64")
    assert np.isfinite(x).all() and (np.abs(x) <= FLOAT32_MAX).all()
    # The mid + half x computation of a one-sided interval at the top of the range.
    x = fi.uniform((1 << 16,), 1, low=0.0, high=FLOAT32_MAX)
    assert np.isfinite(x).all() and (x >= 0).all()


def test_a3_normal_float64_whose_float32_values_overflow_is_refused():
    with refused(ValueError, "std"):
        fi.normal((1 << 20,), 0, std=1e38, dtype="float64")
    with refused(ValueError, "mean"):
        fi.normal((4,), 0, mean=1e39, dtype="float64")
    with refused(ValueError, "mean"):  # mean + 5.42 std overflows float32
        fi.normal((4,), 0, mean=3e38, std=1e37, dtype="float64")


def test_largest_normal_that_fits_float32_is_finite():
    std = FLOAT32_MAX / 5.4202
    x = fi.normal((1 << 16,), 0, std=std, dtype="float64")
    assert np.isfinite(x).all()


def test_a4_truncated_normal_with_overflowing_std_is_refused():
    with refused(ValueError, "std"):
        fi.truncated_normal((1024, 1024), 2**64 - 1, stream=2**64 - 1, std=3.4e38, a=-1.0)


def test_truncated_normal_with_huge_std_and_tiny_sigma_bounds_is_finite():
    # bounds of a few 1e-39 sigma: erf's constants are float32 subnormals; no NaN.
    x = fi.truncated_normal((1 << 16,), 2**64 - 1, stream=2**64 - 1, std=2e38, a=-1.0)
    assert np.isfinite(x).all() and (x >= -1.0).all() and (x <= 2.0).all()


@pytest.mark.parametrize(
    "bounds, argument",
    [
        ({"a": -3.5e38}, "a"),
        ({"a": -1.0, "b": 1e300}, "b"),
        ({"lower": -1e10}, "lower"),  # mean + lower std = -1e40 with std 1e30
        ({"upper": 1e300}, "upper"),
    ],
)
def test_truncated_normal_bounds_beyond_float32_are_refused(bounds, argument):
    std = 1e30 if "lower" in bounds else 1.0
    with refused(ValueError, argument):
        fi.truncated_normal((8,), 0, std=std, dtype="float64", **bounds)


@pytest.mark.parametrize(
    "bounds", [{"a": FLOAT32_MAX, "b": math.inf}, {"a": -math.inf, "b": -FLOAT32_MAX}]
)
def test_truncated_normal_beyond_the_largest_float32_is_refused(bounds):
    # Found by the fuzz test: the float32 strictly inside a bound of ±FLOAT32_MAX is
    # ±inf, so the clamp made every value infinite.
    mean = math.copysign(FLOAT32_MAX, bounds["b"])
    out = poisoned((64,))
    with refused(ValueError, "a"):
        fi.truncated_normal((64,), 7, mean=mean, std=5e-324, out=out, **bounds)
    assert (out.view(np.uint8) == POISON).all()


def test_truncated_normal_with_an_infinite_bound_is_finite():
    x = fi.truncated_normal((1 << 16,), 3, a=-math.inf, b=3e38)
    assert np.isfinite(x).all()
    with refused(ValueError, "std"):  # unbounded below: 5.42 std must fit float32
        fi.truncated_normal((4,), 3, std=1e38, a=-math.inf, b=1.0)


def test_a5_orthogonal_gain_beyond_float32_is_refused():
    out = poisoned((4, 4), np.float64)
    with refused(ValueError, "gain"):
        fi.orthogonal((4, 4), 0, gain=1e300, dtype="float64", out=out)
    assert (out.view(np.uint8) == POISON).all()
    with refused(ValueError, "gain"):
        fi.orthogonal((4, 4), 0, gain=1e300)
    with refused(ValueError, "gain"):
        fi.orthogonal((4, 4), 0, gain=7e4, dtype="float16")
    x = fi.orthogonal((4, 4), 0, gain=FLOAT32_MAX)
    assert np.isfinite(x).all()


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: fi.constant((3,), 1e300), "value"),
        (lambda: fi.constant((3,), 1e5, dtype="float16"), "value"),
        (lambda: fi.identity((3, 3), 1e39), "gain"),
        (lambda: fi.dirac((2, 2, 3), gain=1e39), "gain"),
        (lambda: fi.dirac((2, 2, 3), gain=1e39, dtype="bfloat16"), "gain"),
    ],
)
def test_structured_values_beyond_the_dtype_are_refused(call, argument):
    with refused(ValueError, argument):
        call()


def test_constants_are_rounded_once_into_float64():
    # No float32 computation: constant / identity / dirac hold the float64 value itself.
    assert fi.constant((2,), 1e300, dtype="float64")[0] == 1e300
    assert fi.identity((2, 2), 1e300, dtype="float64")[1, 1] == 1e300


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: fi.he_normal((3, 4), 0, gain=1e200), "gain"),  # gain² overflows
        (lambda: fi.he_normal((3, 4), 0, gain=1e39, dtype="float64"), "gain"),
        (lambda: fi.glorot_uniform((3, 4), 0, gain=1e39), "gain"),
        (lambda: fi.variance_scaling((3, 4), 0, scale=1e300, fan_in=1e-300), "scale"),
        (lambda: fi.variance_scaling((3, 4), 0, fan_in=1e-300, dtype="float64"), "fan_in"),
        (
            lambda: fi.variance_scaling(
                (3, 4), 0, mode="fan_out", distribution="uniform", fan_out=1e-80
            ),
            "fan_out",
        ),
    ],
)
def test_variance_scaling_that_overflows_float32_is_refused(call, argument):
    with refused(ValueError, argument):
        call()


# --------------------------------------------------------------------------------------
# A6: ndarray subclasses as out=
# --------------------------------------------------------------------------------------

SUBCLASS_CALLS = {
    "normal": lambda shape, **kw: fi.normal(shape, SEED, stream="w", **kw),
    "he_uniform": lambda shape, **kw: fi.he_uniform(shape, SEED, **kw),
    "truncated_normal": lambda shape, **kw: fi.truncated_normal(shape, SEED, **kw),
    "constant": lambda shape, **kw: fi.constant(shape, 0.25, **kw),
    "identity": lambda shape, **kw: fi.identity(shape, **kw),
    "orthogonal": lambda shape, **kw: fi.orthogonal(shape, SEED, **kw),
}


@pytest.mark.parametrize("name", sorted(SUBCLASS_CALLS))
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a6_memmap_out_is_filled_in_place_and_reaches_the_file(name, dtype, tmp_path):
    call = SUBCLASS_CALLS[name]
    np_dtype = NUMPY_DTYPES[dtype]
    expected = call((6, 5), dtype=dtype, region=(slice(1, 5),))
    path = tmp_path / "weights.bin"
    mapped = np.memmap(path, dtype=np_dtype, mode="w+", shape=(4, 5))
    result = call((6, 5), dtype=dtype, region=(slice(1, 5),), out=mapped)
    assert result is mapped
    mapped.flush()
    del mapped, result
    assert path.read_bytes() == expected.tobytes()


@pytest.mark.parametrize("name", sorted(SUBCLASS_CALLS))
def test_a6_trivial_subclass_out_is_filled_and_returned(name):
    call = SUBCLASS_CALLS[name]
    out = poisoned((4, 5)).view(Subclass)
    result = call((4, 5), out=out)
    assert result is out
    np.testing.assert_array_equal(np.asarray(out), call((4, 5)))


def test_a6_matrix_out_is_filled_as_memory_not_by_matrix_indexing():
    # np.matrix reshapes to 2-D and indexes rows: the fill must not go through that.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # NumPy frowns on np.matrix
        out = np.asmatrix(poisoned((3, 3)))
    assert fi.identity((3, 3), out=out) is out
    np.testing.assert_array_equal(np.asarray(out), np.eye(3, dtype=np.float32))


@pytest.mark.parametrize("name", sorted(SUBCLASS_CALLS))
def test_a6_refused_subclass_out_is_untouched(name, tmp_path):
    call = SUBCLASS_CALLS[name]
    wrong_shape = poisoned((5, 4)).view(Subclass)
    with refused(ValueError, "out"):
        call((4, 5), out=wrong_shape)
    assert (wrong_shape.view(np.uint8) == POISON).all()
    mapped = np.memmap(tmp_path / "w.bin", dtype=np.float64, mode="w+", shape=(4, 5))
    mapped.view(np.uint8)[...] = POISON
    with refused(ValueError, "out"):  # wrong dtype
        call((4, 5), out=mapped)
    assert (np.asarray(mapped).view(np.uint8) == POISON).all()
    read_only = poisoned((4, 5)).view(Subclass)
    read_only.flags.writeable = False
    with refused(ValueError, "out"):
        call((4, 5), out=read_only)


# --------------------------------------------------------------------------------------
# A7: dirac and identity do O(output) work
# --------------------------------------------------------------------------------------


def test_a7_dirac_of_an_empty_shape_with_huge_groups_returns_at_once():
    # Before: one Python iteration per group (2^30 here; 2^62 in the report, which
    # NumPy cannot even make as an empty array: refused, named).
    result = fi.dirac((0, 2**30, 2**30), groups=2**30)
    assert result.shape == (0, 2**30, 2**30)
    with refused(OverflowError, "shape"):
        fi.dirac((0, 2**62, 2**62), groups=2**62)


def test_a7_dirac_region_of_many_groups_allocates_only_its_output():
    tracemalloc.start()
    try:
        result = fi.dirac((10**7, 1, 1), 10**7, region=(slice(0, 1),))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.shape == (1, 1, 1) and result[0, 0, 0] == 1.0
    assert peak < 1 << 20, f"dirac of one row allocated {peak} bytes"  # 1.3 GB before


@pytest.mark.parametrize(
    "shape, groups, region",
    [
        ((10**6, 1, 1), 10**6, None),  # one line over the groups, not 10^6 lines
        ((6, 10**6, 3), 3, None),  # one line per group
        ((10**6, 10**6, 1), 1000, (slice(500, 504), slice(0, 10))),
        ((2**30, 2**30, 1), 2**15, (slice(5, 9), slice(4, 10))),
    ],
)
def test_a7_dirac_walks_at_most_min_rows_columns_lines(shape, groups, region):
    box = structured._box(shape, "float32", region, None)
    lines = structured._dirac_lines(box, shape[0] // groups, groups)
    assert len(lines) <= min(box.extent[0], box.extent[1]) + 1
    if math.prod(box.extent) <= 10**6:
        result = fi.dirac(shape, groups, region=region)
        assert result.sum() == sum(count for _, _, count in lines)


def _dirac_reference(shape: tuple, groups: int) -> np.ndarray:
    """torch.nn.init.dirac_, written out."""
    w = np.zeros(shape, np.float32)
    if w.size:
        per_group = shape[0] // groups
        centre = tuple(k // 2 for k in shape[2:])
        for g in range(groups):
            for d in range(min(per_group, shape[1])):
                w[(g * per_group + d, d, *centre)] = 1.0
    return w


@given(data=st.data())
@settings(max_examples=150, deadline=None, derandomize=True, database=None)
def test_dirac_region_equals_the_slice_of_the_reference(data):
    ndim = data.draw(st.integers(3, 5), label="ndim")
    groups = data.draw(st.integers(1, 4), label="groups")
    dims = data.draw(st.lists(st.integers(0, 4), min_size=ndim, max_size=ndim), label="dims")
    shape = (groups * dims[0], *dims[1:])
    region = []
    for dim in shape[: data.draw(st.integers(0, ndim), label="axes")]:
        start = data.draw(st.integers(0, dim))
        region.append(slice(start, data.draw(st.integers(start, dim))))
    got = fi.dirac(shape, groups, region=tuple(region) or None)
    np.testing.assert_array_equal(got, _dirac_reference(shape, groups)[tuple(region)])


def test_identity_of_a_huge_matrix_region_is_cheap():
    rows, columns = slice(2**30, 2**30 + 3), slice(2**30 - 1, 2**30 + 4)
    result = fi.identity((2**31, 2**31), region=(rows, columns))
    np.testing.assert_array_equal(result, np.eye(3, 5, 1, dtype=np.float32))


# --------------------------------------------------------------------------------------
# A8 / A9: caches never skip checks; every fan argument is checked, fans given or not
# --------------------------------------------------------------------------------------


def test_a8_fan_cache_does_not_let_bool_or_float_axes_through():
    assert fi.compute_fans((3, 4), in_axis=1) == (4, 3)
    with refused(TypeError, "in_axis"):
        fi.compute_fans((3, 4), in_axis=True)
    with refused(TypeError, "in_axis"):
        fi.compute_fans((3, 4), in_axis=1.0)
    assert fi.compute_fans((3, 4, 5), batch_axis=(2,)) == (4, 3)
    with refused(TypeError, "batch_axis"):
        fi.compute_fans((3, 4, 5), batch_axis=(2.0,))
    assert fi.compute_fans((3, 4, 5), batch_axis=(0,), in_axis=1, out_axis=2) == (4, 5)
    with refused(TypeError, "batch_axis"):
        fi.compute_fans((3, 4, 5), batch_axis=(False,), in_axis=1, out_axis=2)


def test_a8_variance_scaling_cache_does_not_let_bool_or_float_axes_through():
    fi.he_normal((3, 4, 5), 0, batch_axis=(2,))
    fi.he_normal((3, 4, 5), 0, in_axis=1)
    with refused(TypeError, "batch_axis"):
        fi.he_normal((3, 4, 5), 0, batch_axis=(2.0,))
    with refused(TypeError, "in_axis"):
        fi.he_normal((3, 4, 5), 0, in_axis=True)
    fi.he_normal((3, 4, 5), 0, batch_axis=(0,), in_axis=1, out_axis=2)
    with refused(TypeError, "batch_axis"):
        fi.he_normal((3, 4, 5), 0, batch_axis=(False,), in_axis=1, out_axis=2)


@pytest.mark.parametrize(
    "bad, exc, argument",
    [
        ({"in_axis": "0"}, TypeError, "in_axis"),
        ({"out_axis": 0.0}, TypeError, "out_axis"),
        ({"batch_axis": {0}}, TypeError, "batch_axis"),
        ({"batch_axis": "0"}, TypeError, "batch_axis"),
        ({"in_axis": 5}, ValueError, "in_axis"),
        ({"layout": "tf"}, ValueError, "layout"),
        ({"fan_in": True}, TypeError, "fan_in"),
        ({"fan_in": 2**1024}, OverflowError, "fan_in"),
    ],
)
@pytest.mark.parametrize("fans", [{"fan_in": 6}, {"fan_in": 6, "fan_out": 4.0}])
def test_a9_fan_arguments_are_checked_when_fans_are_given(bad, exc, argument, fans):
    with refused(exc, argument):
        fi.glorot_normal((4, 6), 0, **{**fans, **bad})


def test_a9_real_fans_are_accepted():
    # fan_in is documented as a real number (a receptive field can be fractional in
    # a user's bookkeeping); JAX and Keras compute integer fans but never take them.
    a = fi.he_normal((4, 6), 0, fan_in=2.0)
    b = fi.he_normal((4, 6), 0, fan_in=2)
    np.testing.assert_array_equal(a, b)


def test_a9_axes_of_0d_and_1d_shapes_with_explicit_fans_are_type_checked():
    fi.he_normal((5,), 0, fan_in=3, in_axis=0)  # nothing to check the range against
    with refused(TypeError, "in_axis"):
        fi.he_normal((5,), 0, fan_in=3, in_axis="0")


# --------------------------------------------------------------------------------------
# A11: every refusal names its argument
# --------------------------------------------------------------------------------------

BIG = 2**1024  # beyond the largest float64
HUGE = 10**5000  # beyond what Python will print (4300 digits)


@pytest.mark.parametrize(
    "call, exc, argument",
    [
        (lambda: fi.normal((3,), 0, std=BIG), OverflowError, "std"),
        (lambda: fi.normal((3,), 0, mean=-BIG), OverflowError, "mean"),
        (lambda: fi.uniform((3,), 0, high=fractions.Fraction(BIG)), OverflowError, "high"),
        (lambda: fi.truncated_normal((3,), 0, a=-BIG), OverflowError, "a"),
        (lambda: fi.he_normal((3, 4), 0, gain=BIG), OverflowError, "gain"),
        (lambda: fi.variance_scaling((3, 4), 0, scale=HUGE), OverflowError, "scale"),
        (lambda: fi.constant((3,), HUGE), OverflowError, "value"),
        (lambda: fi.orthogonal((3, 3), 0, BIG), OverflowError, "gain"),
        (lambda: fi.normal((3,), 0, stream="\udcff"), ValueError, "stream"),
        (lambda: fi.random_bits(3, 0, stream="a\ud800"), ValueError, "stream"),
        (lambda: fi.stream_id("\udcff"), ValueError, "name"),
        (lambda: fi.normal((3,), HUGE), OverflowError, "seed"),
        (lambda: fi.normal((3,), 0, stream=-HUGE), OverflowError, "stream"),
        (lambda: fi.random_bits(3, 0, offset=HUGE), OverflowError, "offset"),
        (lambda: fi.random_bits(HUGE, 0), OverflowError, "n"),
        (lambda: fi.normal((3,), 0, threads=HUGE), OverflowError, "threads"),
        (lambda: fi.set_num_threads(-HUGE), ValueError, "n"),
        (lambda: fi.normal((HUGE,), 0), OverflowError, "shape"),
        (lambda: fi.normal(-HUGE, 0), ValueError, "shape"),
        (lambda: fi.normal(np.array(3), 0), TypeError, "shape"),
        (lambda: fi.normal((3,), 0, region=(slice(HUGE, None),)), ValueError, "region"),
        (lambda: fi.normal((3,), 0, region=(slice(0, 2, np.array([1, 2])),)), TypeError, "region"),
        (lambda: fi.normal((3,), 0, region=(HUGE,)), TypeError, "region"),
        (lambda: fi.dirac((3, 2, 3), HUGE), ValueError, "groups"),
        (lambda: fi.compute_fans((3, 4), in_axis=HUGE), ValueError, "in_axis"),
        (lambda: fi.calculate_gain(HUGE), ValueError, "nonlinearity"),
        (lambda: fi.calculate_gain("leaky_relu", BIG), OverflowError, "param"),
        (lambda: fi.variance_scaling((3, 4), 0, mode=HUGE), ValueError, "mode"),
        (lambda: fi.normal((3,), 0, dtype=HUGE), ValueError, "dtype"),
        (lambda: fi.normal((3,), 0, dtype="\udcff"), ValueError, "dtype"),
        (lambda: fi.normal((3,), 0, dtype=("f4", -1)), ValueError, "dtype"),
    ],
)
def test_a11_refusal_names_its_argument(call, exc, argument):
    with refused(exc, argument):
        call()


def test_a11_calculate_gain_of_a_huge_slope_is_finite():
    gain = fi.calculate_gain("leaky_relu", 1e200)
    assert gain == pytest.approx(math.sqrt(2.0) / 1e200)
    assert fi.calculate_gain("leaky_relu", -1e300) == pytest.approx(math.sqrt(2.0) / 1e300)
    assert fi.calculate_gain("leaky_relu", 5**0.5) == math.sqrt(2.0 / (1 + 5))


# --------------------------------------------------------------------------------------
# The fuzz test
# --------------------------------------------------------------------------------------

EPS = {"float32": 2.0**-23, "float64": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}
TINY = {"float32": 2.0**-148, "float64": 2.0**-148, "float16": 2.0**-23, "bfloat16": 2.0**-132}
NORMAL_REACH = 5.4202  # sqrt(2) * 3.8326, the largest |erfinv| of the grid (docs/stream.md)


class Weird:
    """An object of no expected type."""

    def __repr__(self) -> str:
        return "Weird()"


ODD = st.sampled_from(
    [None, True, False, "1", "", b"1", 1j, [1.0], (1,), {}, Weird(), np.array([1.0, 2.0])]
)
SURROGATES = st.sampled_from(["\udcff", "a\ud800b", "\udfff\ud800"])
TEXT = st.one_of(st.text(max_size=6), SURROGATES)
HUGE_INTS = st.one_of(
    st.integers(min_value=2**62, max_value=2**70),
    st.sampled_from([2**63, 2**64, 2**64 - 1, 2**1024, -(2**1024), 10**5000, -(10**400)]),
)
INTS = st.one_of(st.integers(-3, 6), HUGE_INTS, st.integers(-(2**64), -1))
FLOATS = st.one_of(
    st.floats(),  # everything: NaN, ±inf, subnormals, ±1.8e308
    st.floats(-1e40, 1e40),
    st.sampled_from([1e300, -1e300, 3.4e38, FLOAT32_MAX, 1e-45, 5e-324, 65504.0, 7e4]),
)
REALS = st.one_of(
    FLOATS,
    INTS,
    st.sampled_from(
        [np.float32(np.inf), np.float16(2.0), np.float64(np.nan), np.int64(3), np.uint64(2**64 - 1)]
    ),
    st.builds(fractions.Fraction, st.integers(-(2**1100), 2**1100), st.integers(1, 9)),
    ODD,
)


class Arg(NamedTuple):
    """How to draw one argument: values the function takes, and hostile ones (which may
    still include a few valid values)."""

    valid: st.SearchStrategy
    hostile: st.SearchStrategy


maybe = Arg


SEEDS = maybe(st.integers(0, 2**64 - 1), st.one_of(INTS, ODD, st.floats(0, 10)))
STREAMS = maybe(
    st.one_of(st.integers(0, 2**64 - 1), st.text(max_size=6)), st.one_of(INTS, ODD, SURROGATES)
)
THREADS = maybe(st.sampled_from([None, 1, 2]), st.one_of(INTS, ODD, st.just(1.0)))
DEVICES = maybe(
    st.sampled_from([None, "cpu", "cpu:0"]),
    st.sampled_from([3, "gpu", "cuda:x", "\udcff", "", b"cpu"]),
)
DTYPES = maybe(
    st.sampled_from([*DTYPES, np.float32, ml_dtypes.bfloat16, np.dtype("f8"), "bf16"]),
    st.one_of(st.sampled_from(["int32", "float8", "complex64", bool, ("f4", -1), "a"]), ODD, TEXT),
)
DIMS = st.one_of(
    st.integers(0, 4),
    st.integers(0, 4),
    st.sampled_from([-1, 2**62, 2**63, 2**64, True, 1.5, "3", None, np.int64(3), np.uint8(2)]),
)


def shapes(min_ndim: int = 0, max_ndim: int = 4) -> Arg:
    """Valid shapes have min_ndim to max_ndim small axes; hostile ones any number of
    axes (0-d and 1-d for samplers that need more), odd dims, or no tuple at all."""
    good = st.lists(st.integers(0, 4), min_size=min_ndim, max_size=max_ndim).map(tuple)
    odd = st.one_of(
        st.lists(DIMS, max_size=5).map(tuple),
        st.lists(st.integers(0, 4), max_size=5).map(tuple),
        st.lists(st.integers(0, 4), min_size=min_ndim, max_size=max_ndim),  # a list is fine
        st.integers(-2, 5),
        st.sampled_from(
            ["46", None, 3.0, np.array(3), np.array([[2, 3]]), np.array([2, 3]), {2, 3}]
        ),
    )
    return Arg(good, odd)


GOOD_SLICES = st.builds(
    slice,
    st.one_of(st.none(), st.integers(-4, 4)),
    st.one_of(st.none(), st.integers(-4, 4)),
    st.sampled_from([None, 1]),
)
SLICE_BOUNDS = st.one_of(
    st.none(), st.integers(-5, 6), st.sampled_from([2**63, -(2**70), 1.0, True, "1", HUGE])
)
SLICES = st.builds(
    slice, SLICE_BOUNDS, SLICE_BOUNDS, st.sampled_from([None, 1, 2, 1.0, True, -1, np.int64(1)])
)
REGIONS = Arg(
    st.one_of(st.none(), st.lists(GOOD_SLICES, max_size=3).map(tuple)),
    st.one_of(
        st.lists(SLICES, max_size=5).map(tuple),
        SLICES,
        st.sampled_from([[slice(0, 1)], (0,), (slice(0, 1), 0), "x", (None,), Weird()]),
    ),
)
FAN_LAYOUTS = maybe(
    st.sampled_from(["torch", "jax", "keras"]), st.one_of(TEXT, ODD, st.just("TORCH"))
)
AXES = maybe(
    st.one_of(st.none(), st.integers(-4, 3)),
    st.one_of(INTS, ODD, st.just(1.0), st.just(np.int8(1))),
)
BATCH_AXES = maybe(
    st.one_of(st.just(()), st.integers(-4, 3), st.lists(st.integers(-4, 3), max_size=2).map(tuple)),
    st.one_of(ODD, st.just({0}), st.just((1.0,)), st.just((True,)), st.just([0]), st.just("0")),
)
POSITIVE = maybe(st.floats(1e-3, 1e3), REALS)
FANS = maybe(st.one_of(st.integers(1, 100), st.floats(0.5, 100.0)), REALS)
MODES = maybe(
    st.sampled_from(["fan_in", "fan_out", "fan_avg"]), st.one_of(TEXT, ODD, st.just("FAN_IN"))
)
DISTRIBUTIONS = maybe(
    st.sampled_from(["truncated_normal", "normal", "uniform", "untruncated_normal"]),
    st.one_of(TEXT, ODD),
)
NONLINEARITIES = maybe(st.sampled_from(sorted(fi.fans.NONLINEARITIES)), st.one_of(TEXT, ODD, INTS))

COMMON = {
    "dtype": DTYPES,
    "stream": STREAMS,
    "region": REGIONS,
    "threads": THREADS,
    "device": DEVICES,
}
FAN_OPTIONS = {
    "distribution": DISTRIBUTIONS,
    "layout": FAN_LAYOUTS,
    "in_axis": AXES,
    "out_axis": AXES,
    "batch_axis": BATCH_AXES,
    "fan_in": FANS,
    "fan_out": FANS,
    **COMMON,
}
BOX = {"dtype": DTYPES, "region": REGIONS, "device": DEVICES}

# name -> (the function, its positional arguments, optional keyword arguments)
SAMPLERS: dict[str, tuple[Callable[..., Any], dict, dict]] = {
    "variance_scaling": (
        fi.variance_scaling,
        {"shape": shapes(2), "seed": SEEDS},
        {"scale": POSITIVE, "mode": MODES, **FAN_OPTIONS},
    ),
    **{
        name: (
            getattr(fi, name),
            {"shape": shapes(2), "seed": SEEDS},
            {"gain": POSITIVE, **FAN_OPTIONS},
        )
        for name in (
            "glorot_normal",
            "glorot_uniform",
            "he_normal",
            "he_uniform",
            "lecun_normal",
            "lecun_uniform",
        )
    },
    "normal": (
        fi.normal,
        {"shape": shapes(), "seed": SEEDS},
        {"mean": maybe(st.floats(-1e3, 1e3), REALS), "std": POSITIVE, **COMMON},
    ),
    "uniform": (
        fi.uniform,
        {"shape": shapes(), "seed": SEEDS},
        {
            "low": maybe(st.floats(-1e3, 0), REALS),
            "high": maybe(st.floats(0, 1e3), REALS),
            **COMMON,
        },
    ),
    "truncated_normal": (
        fi.truncated_normal,
        {"shape": shapes(), "seed": SEEDS},
        {
            "mean": maybe(st.floats(-10, 10), REALS),
            "std": POSITIVE,
            "lower": maybe(st.floats(-4, 0), REALS),
            "upper": maybe(st.floats(0, 4), REALS),
            "a": maybe(st.floats(-10, 0), REALS),
            "b": maybe(st.floats(0, 10), REALS),
            **COMMON,
        },
    ),
    "constant": (
        fi.constant,
        {"shape": shapes(), "value": maybe(st.floats(-1e4, 1e4), REALS)},
        BOX,
    ),
    "zeros": (fi.zeros, {"shape": shapes()}, BOX),
    "ones": (fi.ones, {"shape": shapes()}, BOX),
    "identity": (
        fi.identity,
        {"shape": shapes(2, 2)},
        {"gain": maybe(st.floats(0, 1e4), REALS), **BOX},
    ),
    "dirac": (
        fi.dirac,
        {"shape": shapes(3, 5)},
        {
            "groups": maybe(st.integers(1, 3), st.one_of(INTS, ODD)),
            "gain": maybe(st.floats(0, 1e4), REALS),
            **BOX,
        },
    ),
    "orthogonal": (
        fi.orthogonal,
        {"shape": shapes(2, 3), "seed": SEEDS},
        {"gain": maybe(st.floats(0, 1e4), REALS), **COMMON},
    ),
    "random_bits": (
        fi.random_bits,
        {"n": maybe(st.integers(0, 20), INTS), "seed": SEEDS},
        {
            "stream": STREAMS,
            "offset": maybe(st.integers(0, 2**64 - 1), st.one_of(INTS, ODD)),
            "threads": THREADS,
        },
    ),
    "compute_fans": (
        fi.compute_fans,
        {"shape": shapes(2, 4)},
        {"layout": FAN_LAYOUTS, "in_axis": AXES, "out_axis": AXES, "batch_axis": BATCH_AXES},
    ),
    "calculate_gain": (
        fi.calculate_gain,
        {"nonlinearity": NONLINEARITIES},
        {"param": maybe(st.floats(-10, 10), REALS)},
    ),
    "stream_id": (
        fi.stream_id,
        {"name": Arg(st.text(max_size=6), st.one_of(SURROGATES, ODD, INTS))},
        {},
    ),
}
TAKES_OUT = {
    name for name, (fn, _, _) in SAMPLERS.items() if "out" in inspect.signature(fn).parameters
}
TAKES_OUT |= {"zeros", "ones"}  # through **options


def names_an_argument(message: str, names: set[str]) -> bool:
    """Whether `message` names one of `names`: as a word, and a one-letter name (a, b, n)
    only where it reads as the argument (n must, a=..., a/b, b:)."""
    for name in names:
        if len(name) > 2:
            if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", message):
                return True
        elif re.search(rf"(?<![\w]){name}(=|\s+must|/|:|\[|\.\w|\s*\()", message):
            return True
    return False


def tolerance(dtype: str, *magnitudes: float) -> float:
    """Rounding slack: float32's (every value's computation) or the narrower dtype's."""
    return (
        EPS[dtype] * max((abs(m) for m in magnitudes if math.isfinite(m)), default=0.0)
        + TINY[dtype]
    )


def _dtype_name(dtype: Any) -> str:
    return fi._checks.check_dtype(dtype).name


def _real(value: Any, default: float) -> float:
    return default if value is None else float(value)


def _variance_bound(name: str, kw: dict, shape: tuple) -> float:
    """max |x| that variance_scaling (or a named initializer) promises for this call."""
    if name == "variance_scaling":
        scale, mode = _real(kw.get("scale"), 1.0), kw.get("mode", "fan_in")
        distribution = kw.get("distribution", "truncated_normal")
    else:
        scale, mode, distribution, _ = fi.initializers.NAMED[name]
        gain = _real(kw.get("gain"), 1.0)
        scale = scale * gain * gain
        distribution = kw.get("distribution", distribution)
    fans = {"fan_in": kw.get("fan_in"), "fan_out": kw.get("fan_out")}
    if None in fans.values() and len(shape) >= 2:
        options = ("layout", "in_axis", "out_axis", "batch_axis")
        computed = fi.compute_fans(shape, **{k: kw[k] for k in options if k in kw})
        fans = {k: computed[i] if v is None else v for i, (k, v) in enumerate(fans.items())}
    needed = ("fan_in", "fan_out") if mode == "fan_avg" else (mode,)
    n = sum(float(fans[k]) for k in needed) / len(needed)
    if not n > 0:
        return 0.0
    variance = scale / n
    if distribution == "uniform":
        return math.sqrt(3.0 * variance)
    if distribution == "truncated_normal":
        return 2.0 * math.sqrt(variance) / fi.TRUNCATED_NORMAL_STD
    return NORMAL_REACH * math.sqrt(variance)


def _range(name: str, kw: dict, shape: tuple) -> tuple[float, float, float]:
    """(low, high, slack): a successful call's values lie in [low - slack, high + slack]."""
    dtype = _dtype_name(kw.get("dtype", "float32"))
    if name in ("normal",):
        mean, std = _real(kw.get("mean"), 0.0), _real(kw.get("std"), 1.0)
        reach = NORMAL_REACH * std * (1 + 2**-20)
        return mean - reach, mean + reach, tolerance(dtype, mean, reach)
    if name == "uniform":
        low, high = _real(kw.get("low"), 0.0), _real(kw.get("high"), 1.0)
        return low, high, tolerance(dtype, low, high)
    if name == "truncated_normal":
        mean, std = _real(kw.get("mean"), 0.0), _real(kw.get("std"), 1.0)
        reach = NORMAL_REACH * std * (1 + 2**-20)
        if kw.get("a") is not None or kw.get("b") is not None:
            low, high = _real(kw.get("a"), -2.0), _real(kw.get("b"), 2.0)
        else:
            low = mean + _real(kw.get("lower"), -2.0) * std
            high = mean + _real(kw.get("upper"), 2.0) * std
        low, high = max(low, mean - reach), min(high, mean + reach)
        return low, high, tolerance(dtype, low, high, mean)
    if name in ("orthogonal", "identity", "dirac"):
        gain = _real(kw.get("gain"), 1.0)
        return -gain, gain, tolerance(dtype, gain) + gain * 1e-6
    if name in ("constant", "zeros", "ones"):
        value = {"zeros": 0.0, "ones": 1.0}.get(name, _real(kw.get("value"), 0.0))
        return value, value, tolerance(dtype, value)
    bound = _variance_bound(name, kw, shape) * (1 + 2**-20)
    return -bound, bound, tolerance(dtype, bound)


def check_result(name: str, call: dict, result: Any) -> None:
    """What a successful call must return."""
    if name == "compute_fans":
        assert isinstance(result, tuple) and len(result) == 2
        assert all(type(f) is int and f >= 0 for f in result)
        return
    if name == "calculate_gain":
        assert type(result) is float and math.isfinite(result) and result >= 0
        return
    if name == "stream_id":
        assert type(result) is int and 0 <= result < 2**64
        return
    assert isinstance(result, np.ndarray)
    if name == "random_bits":
        assert result.dtype == np.uint32 and result.shape == (call["n"],)
        return
    dtype = _dtype_name(call.get("dtype", "float32"))
    assert result.dtype.name == dtype
    if not result.size:
        return
    x = np.asarray(result, dtype=np.float64)
    assert np.isfinite(x).all(), f"{name}{call}: non-finite values"
    shape = (
        tuple(int(d) for d in call["shape"])
        if not isinstance(call["shape"], int)
        else (int(call["shape"]),)
    )
    low, high, slack = _range(name, call, shape)
    assert x.min() >= low - slack and x.max() <= high + slack, (
        f"{name}{call}: values in [{x.min()}, {x.max()}], promised [{low}, {high}] ± {slack}"
    )
    if name in ("identity", "dirac"):
        assert set(np.unique(x)) <= {
            0.0,
            float(np.asarray(_real(call.get("gain"), 1.0), result.dtype)),
        }


@contextlib.contextmanager
def address_space_capped() -> Any:
    """A fuzzed shape must never allocate for real: cap the address space at 4 GiB above
    what the process uses, so a slip is a MemoryError, not a swapping machine."""
    if not sys.platform.startswith("linux"):
        yield
        return
    import resource

    with open("/proc/self/status") as status:
        vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = vm + (4 << 30)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def invoke(
    fn: Callable[..., Any], positional: dict, keywords: dict
) -> tuple[Any, Exception | None]:
    try:
        return fn(*positional.values(), **keywords), None
    except Exception as error:  # classified by the caller
        return None, error


def assert_refusal_is_clean(name: str, call: dict, error: BaseException) -> None:
    if isinstance(error, MemoryError):
        return
    assert isinstance(error, REFUSALS), f"{name}{call} raised {type(error).__name__}: {error}"
    message = str(error)
    assert names_an_argument(message, set(call)), (
        f"{name}{call}: {type(error).__name__} {message!r}"
    )


def out_candidates(data: Any, reference: Any, tmp_dir: Any) -> tuple[Any, np.ndarray, bool]:
    """(out, the memory it owns, whether a call that succeeded without out must succeed)."""
    if isinstance(reference, np.ndarray):
        shape, dtype = reference.shape, reference.dtype
    else:
        shape = tuple(data.draw(st.lists(st.integers(0, 3), max_size=3), label="out shape"))
        dtype = np.dtype(
            data.draw(st.sampled_from([np.float32, np.float64, np.float16, ml_dtypes.bfloat16]))
        )
    kind = data.draw(
        st.sampled_from(
            [
                "plain",
                "subclass",
                "memmap",
                "wrong-shape",
                "wrong-dtype",
                "read-only",
                "strided",
                "list",
            ]
        ),
        label="out kind",
    )
    if kind == "wrong-shape":
        shape = (*shape, 1)
    if kind == "wrong-dtype":
        dtype = np.dtype(np.float64 if dtype != np.float64 else np.float32)
    if kind == "strided":
        base = poisoned((*shape, 2), dtype)
        view = base[..., 0]
        return view, base, view.flags.c_contiguous and view.flags.writeable  # 0-d, 1 element
    if kind == "list":
        return poisoned(shape, dtype).tolist(), poisoned(shape, dtype), False
    base = poisoned(shape, dtype)
    if kind == "subclass":
        return base.view(Subclass), base, True
    if kind == "memmap" and base.size:
        mapped = np.memmap(tmp_dir / "out.bin", dtype=dtype, mode="w+", shape=shape)
        np.asarray(mapped).reshape(-1).view(np.uint8)[...] = POISON
        return mapped, np.asarray(mapped), True
    if kind == "read-only":
        base.flags.writeable = False
    return base, base, kind in ("plain", "memmap")


def _fuzz(name: str, data: Any, tmp_dir: Any) -> None:
    fn, positional_args, keyword_args = SAMPLERS[name]
    chosen = set()
    if keyword_args:
        chosen = data.draw(st.sets(st.sampled_from(sorted(keyword_args))), label="keywords")
    args = {**positional_args, **{key: keyword_args[key] for key in sorted(chosen)}}
    # Valid calls, calls with one hostile argument (the common attack), or many.
    plan = data.draw(st.sampled_from(["valid", "one", "one", "many"]), label="plan")
    hostile = set()
    if plan == "one":
        hostile = {data.draw(st.sampled_from(sorted(args)), label="hostile")}
    elif plan == "many":
        hostile = {key for key in args if data.draw(st.booleans(), label=f"{key} hostile")}
    drawn = {
        key: data.draw(arg.hostile if key in hostile else arg.valid, label=key)
        for key, arg in args.items()
    }
    positional = {key: drawn[key] for key in positional_args}
    keywords = {key: drawn[key] for key in drawn if key not in positional_args}
    call = {**positional, **keywords}
    result, error = invoke(fn, positional, keywords)
    if error is None:
        check_result(name, call, result)
    else:
        assert_refusal_is_clean(name, call, error)
    if name not in TAKES_OUT:
        return
    out, owned, must_succeed = out_candidates(data, result, tmp_dir)
    before = owned.tobytes()
    got, out_error = invoke(fn, positional, {**keywords, "out": out})
    if out_error is not None:
        assert_refusal_is_clean(name, {**call, "out": out}, out_error)
        assert owned.tobytes() == before, f"{name}{call}: out= written although refused"
        assert not (must_succeed and error is None), (
            f"{name}{call}: refused a valid out=: {out_error}"
        )
        return
    assert error is None, f"{name}{call}: refused without out= ({error!r}) but not with it"
    assert got is out and must_succeed
    assert np.asarray(out).tobytes() == result.tobytes(), f"{name}{call}: out= bits differ"


# Examples per sampler: the argument-rich ones get more (about 30 s in all on 2 cores).
FUZZ_EXAMPLES = {"variance_scaling": 300, "truncated_normal": 300, "normal": 200, "uniform": 200}


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: Any) -> Any:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_fuzz_hostile_arguments(name, fuzz_dir):
    @given(data=st.data())
    @settings(
        max_examples=FUZZ_EXAMPLES.get(name, 150),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    def run(data):
        _fuzz(name, data, fuzz_dir)

    with address_space_capped():
        run()


# Magnitudes at the edges of float32 and float64, both signs: where intermediates overflow.
EXTREME_MAGNITUDES = (0.0, 5e-324, 1e-45, 1e-39, 1e-30, 1.0, 1e30, 1e37, 1e38, 3e38, FLOAT32_MAX)
EXTREME_MAGNITUDES += (3.4028235677973366e38, 1e39, 1e300)  # the first rounds to float32 inf
EXTREME = st.sampled_from(sorted({s * m for m in EXTREME_MAGNITUDES for s in (1.0, -1.0)}))
EXTREME_POSITIVE = st.sampled_from([m for m in EXTREME_MAGNITUDES if m > 0])
EXTREME_CALLS = {
    "normal": {"mean": EXTREME, "std": EXTREME_POSITIVE},
    "uniform": {"low": EXTREME, "high": EXTREME},
    "truncated_normal": {"mean": EXTREME, "std": EXTREME_POSITIVE, "a": EXTREME, "b": EXTREME},
    "variance_scaling": {"scale": EXTREME_POSITIVE, "fan_in": EXTREME_POSITIVE},
    "he_uniform": {"gain": EXTREME_POSITIVE, "fan_in": EXTREME_POSITIVE},
    "orthogonal": {"gain": EXTREME_POSITIVE},
    "constant": {"value": EXTREME},
}


@given(data=st.data())
@settings(max_examples=400, deadline=None, derandomize=True, database=None)
def test_extreme_magnitudes_give_finite_values_in_range_or_a_named_refusal(data):
    name = data.draw(st.sampled_from(sorted(EXTREME_CALLS)), label="sampler")
    keywords = {key: data.draw(s, label=key) for key, s in EXTREME_CALLS[name].items()}
    keywords["dtype"] = data.draw(st.sampled_from(DTYPES), label="dtype")
    if name == "truncated_normal" and data.draw(st.booleans(), label="one-sided"):
        keywords["b"] = math.inf
    if name == "variance_scaling":
        keywords["distribution"] = data.draw(st.sampled_from(["normal", "uniform"]))
    shape = (8, 8) if name == "orthogonal" else (4096,)
    fn = getattr(fi, name)
    positional = {"shape": shape} if name == "constant" else {"shape": shape, "seed": 7}
    if name == "constant":
        positional["value"] = keywords.pop("value")
    result, error = invoke(fn, positional, keywords)
    call = {**positional, **keywords}
    if error is None:
        check_result(name, call, result)
    else:
        assert_refusal_is_clean(name, call, error)
