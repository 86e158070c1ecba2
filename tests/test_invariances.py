"""Invariances: what the bits may (and may not) depend on.

- region= returns exactly full[region] (any shape, any box, every sampler, every dtype);
- float16 / bfloat16 are the float32 result rounded to nearest-even, float64 is it widened;
- the same call gives the same bits, another seed or stream gives other bits;
- out= is filled in place and returned, and equals the freshly allocated result;
- a named stream is stream_id(name); zero-size shapes give empty arrays;
- fan layouts (layout="jax") pick the right fans.
"""

from __future__ import annotations

import math

import fastinit
import ml_dtypes
import numpy as np
import pytest
from _shared import DTYPES, NUMPY_DTYPES, UINT_OF_SIZE
from hypothesis import given, settings
from hypothesis import strategies as st


def bits(x):
    return np.ascontiguousarray(x).view(UINT_OF_SIZE[x.dtype.itemsize])


def assert_same_bits(actual, expected):
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(bits(actual), bits(expected))


def fans_for(shape):
    """Named initializers need explicit fans below 2 axes."""
    return {} if len(shape) >= 2 else {"fan_in": 7, "fan_out": 5}


# name -> (call(shape, seed, **kw), (min ndim, max ndim), draws from the stream)
# kw holds dtype / out / region, plus stream for the random ones.
def _random(f, **fixed):
    def call(shape, seed, **kw):
        return f(shape, seed, **fans_for(shape), **fixed, **kw)

    return call


def _plain(f, **fixed):
    def call(shape, seed, **kw):
        return f(shape, seed, **fixed, **kw)

    return call


def _seedless(f, *args, **fixed):
    def call(shape, seed, **kw):
        kw.pop("stream", None)
        return f(shape, *args, **fixed, **kw)

    return call


SAMPLERS = {
    "glorot_normal": (_random(fastinit.glorot_normal), (1, 4), True),
    "glorot_uniform": (_random(fastinit.glorot_uniform), (1, 4), True),
    "he_normal": (_random(fastinit.he_normal), (1, 4), True),
    "he_uniform": (_random(fastinit.he_uniform), (1, 4), True),
    "lecun_normal": (_random(fastinit.lecun_normal, gain=1.5), (1, 4), True),
    "lecun_uniform": (_random(fastinit.lecun_uniform), (1, 4), True),
    "vs_truncated": (_random(fastinit.variance_scaling, scale=0.3, mode="fan_out"), (1, 4), True),
    "vs_normal": (
        _random(fastinit.variance_scaling, scale=2.5, mode="fan_avg", distribution="normal"),
        (1, 4),
        True,
    ),
    "vs_uniform": (
        _random(fastinit.variance_scaling, scale=0.7, mode="fan_in", distribution="uniform"),
        (1, 4),
        True,
    ),
    "normal": (_plain(fastinit.normal, mean=0.25, std=2.0), (1, 4), True),
    "uniform": (_plain(fastinit.uniform, low=-3.0, high=0.5), (1, 4), True),
    "truncated_normal": (
        _plain(fastinit.truncated_normal, mean=1.0, std=0.5, lower=-1.5, upper=3.0),
        (1, 4),
        True,
    ),
    "orthogonal": (_plain(fastinit.orthogonal, gain=1.5), (2, 4), True),
    "identity": (_seedless(fastinit.identity, 0.75), (2, 2), False),
    "dirac": (_seedless(fastinit.dirac), (3, 4), False),
    "constant": (_seedless(fastinit.constant, 0.3), (1, 4), False),
}
RANDOM = sorted(name for name, (_, _, random) in SAMPLERS.items() if random)
# Every random sampler whose result is defined through the float32 sample.
FROM_FLOAT32 = RANDOM


def sample(name, shape, seed=0, **kw):
    return SAMPLERS[name][0](shape, seed, **kw)


def default_shape(name):
    return {"identity": (37, 53), "dirac": (12, 8, 3, 5)}.get(name, (37, 53))


# ---------------------------------------------------------------------------
# region= equals the slice of the full tensor
# ---------------------------------------------------------------------------


@st.composite
def axis_slice(draw, dim):
    """A step-1 slice of an axis of size dim, bounds as None, positive or negative."""
    lo = draw(st.integers(0, dim))
    hi = draw(st.integers(lo, dim))

    def spell(value, default):
        options = [value]
        if value == default:
            options.append(None)
        if value < dim:
            options.append(value - dim)  # negative index of the same position
        return draw(st.sampled_from(options))

    step = draw(st.sampled_from([None, 1]))
    return slice(spell(lo, 0), spell(hi, dim), step)


@st.composite
def region_cases(draw, name):
    low, high = SAMPLERS[name][1]
    ndim = draw(st.integers(low, high))
    shape = tuple(draw(st.lists(st.integers(0, 9), min_size=ndim, max_size=ndim)))
    count = draw(st.integers(0, ndim))  # slices for the leading `count` axes only
    region = tuple(draw(axis_slice(dim)) for dim in shape[:count])
    if count == 1 and draw(st.booleans()):
        region = region[0]  # a bare slice is the first axis's
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**64 - 1))
    stream = draw(st.one_of(st.integers(0, 2**64 - 1), st.text(max_size=8)))
    return shape, region, dtype, seed, stream


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@settings(max_examples=40, deadline=None, derandomize=True)
@given(data=st.data())
def test_region_is_the_slice_of_the_full_tensor(name, data):
    shape, region, dtype, seed, stream = data.draw(region_cases(name))
    full = sample(name, shape, seed, dtype=dtype, stream=stream)
    part = sample(name, shape, seed, dtype=dtype, stream=stream, region=region)
    assert full.shape == shape and full.dtype == NUMPY_DTYPES[dtype]
    assert_same_bits(part, full[region])


@pytest.fixture(scope="module")
def big():
    shape = (3000, 5000)
    return shape, fastinit.he_normal(shape, 2718, stream="encoder.weight")


@pytest.mark.parametrize(
    "region",
    [
        (slice(1001, 1338), slice(2503, 4999)),  # odd offsets, mid Philox block, mid row
        (slice(2999, 3000), slice(4997, None)),  # last elements
        (slice(-7, -2), slice(-4999, -3)),  # negative bounds
        (slice(1, 2),),  # one full row: trailing axis kept whole
        (slice(17, 23), slice(None)),
        (slice(0, 3000), slice(1, 2)),  # one column
    ],
)
def test_region_of_a_large_tensor(big, region):
    shape, full = big
    part = fastinit.he_normal(shape, 2718, stream="encoder.weight", region=region)
    assert_same_bits(part, full[region])


def test_region_element_is_the_word_at_its_flat_index():
    # Element (i, j) of a region draws word (start_i + i) * 5000 + (start_j + j) of the
    # stream: check through raw words and the reference transform, not through a slice.
    shape, seed, stream = (3000, 5000), 99, 12345
    region = (slice(1001, 1004), slice(2503, 2517))
    part = fastinit.uniform(shape, seed, stream=stream, region=region, low=-1, high=1)
    rows, cols = np.meshgrid(np.arange(1001, 1004), np.arange(2503, 2517), indexing="ij")
    flat = rows * 5000 + cols
    first = int(flat.min())
    words = fastinit.random_bits(int(flat.max()) - first + 1, seed, stream=stream, offset=first)
    k = (words[flat - first] >> 8).astype(np.float64)
    expected = ((2 * k + 1 - 2**24) * 2.0**-24).astype(np.float32)  # exact in float32
    assert_same_bits(part, expected)


def test_region_far_into_the_stream():
    # 2^40 rows: flat indices past 2^32 blocks use the counter's high word; the largest
    # stream uses both stream words. Checked against raw words, nothing is allocated.
    shape, seed, stream = (2**40, 24), 7, 2**64 - 1
    region = (slice(2**40 - 3, None), slice(5, 21))
    part = fastinit.uniform(shape, seed, stream=stream, region=region, low=-1, high=1)
    first = (2**40 - 3) * 24 + 5
    words = fastinit.random_bits(3 * 24, seed, stream=stream, offset=first)
    local = np.arange(3)[:, None] * 24 + np.arange(16)[None, :]
    k = (words[local] >> 8).astype(np.float64)
    assert_same_bits(part, ((2 * k + 1 - 2**24) * 2.0**-24).astype(np.float32))
    # Overlapping regions across the 2^32-block boundary agree.
    a = fastinit.normal((2**35, 5), 3, region=(slice(2**34 - 2, 2**34 + 2),))
    b = fastinit.normal((2**35, 5), 3, region=(slice(2**34 - 1, 2**34 + 3),))
    assert_same_bits(a[1:], b[:-1])


@pytest.mark.parametrize(
    ("name", "shape", "region"),
    [
        ("glorot_uniform", (64, 32, 3, 3), (slice(5, 17),)),  # trailing (32, 3, 3) kept whole
        ("normal", (50, 60, 70), (slice(3, 40), slice(None), slice(None))),
        ("truncated_normal", (50, 60, 70), (slice(49, 50), slice(59, 60), slice(1, 70))),
        ("orthogonal", (40, 8, 3), (slice(2, 9), slice(-5, None))),
        ("dirac", (12, 8, 3, 5), (slice(2, 9), slice(1, 7), slice(1, 2), slice(2, 3))),
        ("identity", (300, 500), (slice(250, 300), slice(240, 310))),
    ],
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_region_keeps_trailing_axes(name, shape, region, dtype):
    full = sample(name, shape, 5, dtype=dtype)
    assert_same_bits(sample(name, shape, 5, dtype=dtype, region=region), full[region])


def test_dirac_with_groups_region():
    shape = (12, 4, 3, 3)
    full = fastinit.dirac(shape, groups=3)
    assert np.count_nonzero(full) == 12
    region = (slice(3, 10), slice(1, None), slice(1, 2))
    assert_same_bits(fastinit.dirac(shape, groups=3, region=region), full[region])


# ---------------------------------------------------------------------------
# dtypes: one float32 sample, rounded or widened
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", FROM_FLOAT32)
@pytest.mark.parametrize("region", [None, (slice(3, 31), slice(-40, -1))])
def test_dtypes_are_the_float32_result_rounded(name, region):
    shape = (37, 53)
    x32 = sample(name, shape, 8, region=region)
    assert x32.dtype == np.float32
    x64 = sample(name, shape, 8, region=region, dtype="float64")
    if name == "orthogonal":  # float64 keeps the float64 QR (issue 16): within float32's rounding
        assert np.abs(x64 - x32.astype(np.float64)).max() <= 2**-24
    else:
        assert_same_bits(x64, x32.astype(np.float64))
    assert_same_bits(sample(name, shape, 8, region=region, dtype="float16"), x32.astype(np.float16))
    assert_same_bits(
        sample(name, shape, 8, region=region, dtype="bfloat16"), x32.astype(ml_dtypes.bfloat16)
    )


@pytest.mark.parametrize(
    ("label", "call"),
    [
        # Wide ranges: float16 subnormals, rounding ties everywhere, large magnitudes.
        ("normal_tiny", lambda dtype: fastinit.normal((200_000,), 3, std=2e-5, dtype=dtype)),
        ("normal_huge", lambda dtype: fastinit.normal((200_000,), 3, std=9000.0, dtype=dtype)),
        (
            "uniform_wide",
            lambda dtype: fastinit.uniform((200_000,), 3, low=-6e4, high=6e4, dtype=dtype),
        ),
        (
            "uniform_ulp",
            lambda dtype: fastinit.uniform((200_000,), 3, low=1.0, high=1.01, dtype=dtype),
        ),
        (
            "truncated_tail",
            lambda dtype: fastinit.truncated_normal(
                (200_000,), 3, mean=-1e-3, std=1e-4, lower=1.0, upper=math.inf, dtype=dtype
            ),
        ),
    ],
)
def test_dtype_rounding_over_wide_ranges(label, call):
    x32 = call(np.float32)  # NumPy dtype objects are accepted as well as names
    assert_same_bits(call(np.float64), x32.astype(np.float64))
    assert_same_bits(call(np.float16), x32.astype(np.float16))
    assert_same_bits(call(ml_dtypes.bfloat16), x32.astype(ml_dtypes.bfloat16))
    if label == "normal_tiny":  # the rounding exercised float16's subnormal range
        x16 = np.abs(call("float16").astype(np.float64))
        assert np.any((x16 > 0) & (x16 < np.finfo(np.float16).smallest_normal))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["identity", "dirac", "constant"])
def test_structured_values_in_every_dtype(name, dtype):
    shape = default_shape(name)
    x = sample(name, shape, dtype=dtype)
    assert x.dtype == NUMPY_DTYPES[dtype]
    value = {"identity": 0.75, "dirac": 1.0, "constant": 0.3}[name]
    expected = np.zeros(shape) if name != "constant" else np.full(shape, value)
    if name == "identity":
        expected[np.arange(min(shape)), np.arange(min(shape))] = value
    if name == "dirac":  # out channel d copies in channel d at the kernel centre
        for d in range(min(shape[:2])):
            expected[(d, d, *(k // 2 for k in shape[2:]))] = value
    assert_same_bits(x, expected.astype(NUMPY_DTYPES[dtype]))


# Values whose float32 rounding lands exactly on a tie of the narrow type: rounding
# through float32 first (double rounding) then goes the wrong way.
#   bfloat16: 1 + 2^-8 + 2^-30 lies above the midpoint 1 + 2^-8 of 1 and 1 + 2^-7,
#             so it rounds to 1 + 2^-7 (0x3F81); via float32 (1 + 2^-8, a tie) to 1.
#   float16:  1 + 2^-11 + 2^-40 likewise rounds to 1 + 2^-10 (0x3C01).
ROUNDED_ONCE = [
    ("bfloat16", 1 + 2**-8 + 2**-30, 0x3F81),
    ("bfloat16", -(1 + 2**-8 + 2**-30), 0xBF81),
    ("float16", 1 + 2**-11 + 2**-40, 0x3C01),
    ("float16", -(1 + 2**-11 + 2**-40), 0xBC01),
]


@pytest.mark.parametrize(("dtype", "value", "expected"), ROUNDED_ONCE)
def test_structured_values_are_rounded_once(dtype, value, expected):
    # structured.py: "their values are rounded once into dtype".
    assert np.all(fastinit.constant((3,), value, dtype=dtype).view(np.uint16) == expected)
    if value > 0:
        eye = fastinit.identity((2, 2), value, dtype=dtype).view(np.uint16)
        assert eye[0, 0] == eye[1, 1] == expected
        assert (
            fastinit.dirac((1, 1, 3), gain=value, dtype=dtype).view(np.uint16)[0, 0, 1] == expected
        )


# ---------------------------------------------------------------------------
# Determinism and sensitivity to seed and stream
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_call_same_bits(name, dtype):
    shape = default_shape(name)
    first = sample(name, shape, 12, dtype=dtype, stream=3)
    assert_same_bits(sample(name, shape, 12, dtype=dtype, stream=3), first)


def mostly_different(a, b):
    # Independent float32 draws coincide with probability ~1e-7 per element.
    return a.shape == b.shape and np.mean(a == b) < 0.01


@pytest.mark.parametrize("name", RANDOM)
def test_seed_and_stream_change_the_bits(name):
    shape = (64, 96)
    base = sample(name, shape, 12, stream=3)
    assert mostly_different(sample(name, shape, 13, stream=3), base)
    assert mostly_different(sample(name, shape, 12 + 2**32, stream=3), base)  # key's high word
    assert mostly_different(sample(name, shape, 12, stream=4), base)
    assert mostly_different(sample(name, shape, 12, stream=3 + 2**32), base)
    assert mostly_different(sample(name, shape, 12, stream="3"), base)


@pytest.mark.parametrize("name", RANDOM)
def test_named_stream_is_its_stream_id(name):
    shape = (16, 24)
    for label in ("decoder.layers.3.mlp.weight", "", "ü/权重"):
        expected = sample(name, shape, 4, stream=fastinit.stream_id(label))
        assert_same_bits(sample(name, shape, 4, stream=label), expected)
    assert fastinit.stream_id("a") != fastinit.stream_id("b")


def test_stream_id_definition():
    import hashlib

    name = "layer.0.weight"
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    assert fastinit.stream_id(name) == int.from_bytes(digest[:8], "little")


def test_shape_decides_the_element_index_not_the_values():
    # Element i of the flat row-major tensor draws word i, whatever the shape.
    a = fastinit.normal((10, 30), 1)
    b = fastinit.normal((20, 30), 1)
    assert_same_bits(a, b[:10])
    c = fastinit.normal((300,), 1)
    assert_same_bits(a.ravel(), c)


# ---------------------------------------------------------------------------
# out=
# ---------------------------------------------------------------------------


def poisoned(shape, dtype):
    """An output pre-filled with NaN, so an element never written is caught."""
    return np.full(shape, np.nan, dtype=NUMPY_DTYPES[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_out_is_filled_and_returned(name, dtype):
    shape = default_shape(name)
    expected = sample(name, shape, 21, dtype=dtype)
    out = poisoned(shape, dtype)
    result = sample(name, shape, 21, dtype=dtype, out=out)
    assert result is out
    assert_same_bits(out, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_out_with_region(name, dtype):
    shape = default_shape(name)
    region = (slice(2, -1), slice(-5, -1))
    full = sample(name, shape, 22, dtype=dtype)
    out = poisoned(full[region].shape, dtype)
    result = sample(name, shape, 22, dtype=dtype, region=region, out=out)
    assert result is out
    assert_same_bits(out, full[region])


@pytest.mark.parametrize("name", ["he_uniform", "normal", "orthogonal", "constant"])
def test_out_mismatch_is_refused_and_left_alone(name):
    shape = default_shape(name)
    for out in (
        np.zeros(shape, np.float64),  # dtype is float32 by default
        np.zeros(shape[::-1], np.float32),
        np.zeros(shape, np.float32)[:, ::-1] if len(shape) == 2 else np.zeros(shape, np.float32).T,
    ):
        before = out.copy()
        with pytest.raises(ValueError):
            sample(name, shape, 1, out=out)
        np.testing.assert_array_equal(out, before)


# ---------------------------------------------------------------------------
# Zero-size outputs
# ---------------------------------------------------------------------------

ZERO_SHAPES = {
    1: [(0,)],
    2: [(0, 5), (5, 0), (0, 0)],
    3: [(0, 4, 3), (4, 0, 3), (4, 3, 0)],
    4: [(0, 2, 3, 3), (2, 0, 3, 3), (2, 2, 0, 3)],
}


def zero_cases():
    for name in sorted(SAMPLERS):
        low, high = SAMPLERS[name][1]
        for ndim in range(low, high + 1):
            for shape in ZERO_SHAPES[ndim]:
                yield name, shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "shape"), list(zero_cases()))
def test_zero_size_shapes(name, shape, dtype):
    x = sample(name, shape, 1, dtype=dtype)
    assert isinstance(x, np.ndarray)
    assert x.shape == shape and x.dtype == NUMPY_DTYPES[dtype] and x.size == 0
    out = np.empty(shape, NUMPY_DTYPES[dtype])
    assert sample(name, shape, 1, dtype=dtype, out=out) is out


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_empty_region_of_a_nonempty_tensor(name):
    shape = default_shape(name)
    for region in ((slice(4, 4),), (slice(None), slice(-1, -1)), (slice(shape[0], None),)):
        x = sample(name, shape, 1, region=region)
        assert x.size == 0 and x.shape == np.empty(shape)[region].shape


# ---------------------------------------------------------------------------
# Fan layouts
# ---------------------------------------------------------------------------


def test_jax_layout_uses_receptive_field_times_in():
    shape = (3, 3, 32, 64)  # (kh, kw, in, out)
    seed = 17
    fan_in = 3 * 3 * 32
    x = fastinit.variance_scaling(shape, seed, layout="jax")
    # Same parameters as an explicit fan_in, hence the same bits.
    assert_same_bits(x, fastinit.variance_scaling(shape, seed, fan_in=fan_in))
    assert_same_bits(x, fastinit.variance_scaling(shape, seed, layout="keras"))
    assert_same_bits(x, fastinit.variance_scaling(shape, seed, in_axis=-2, out_axis=-1))
    # Not the torch reading of the same shape (fan_in = 3 * 32 * 64).
    torch = fastinit.variance_scaling(shape, seed)
    assert not np.array_equal(x, torch)
    # The std implied by fan_in = 288: within 6 standard errors of the sample variance
    # (truncated normal: mu4 = 2.37 sigma^4 < 2.5 sigma^4, so se_var < sigma^2 sqrt(1.5 / n)).
    values = x.astype(np.float64).ravel()
    var = 1.0 / fan_in
    se_var = var * math.sqrt(1.5 / values.size)
    assert abs(values.var() - var) < 6 * se_var
    # Its support is +-2 sigma of the underlying normal, and 18432 samples come close.
    bound = 2 * math.sqrt(var) / 0.87962566103423978  # std of N(0, 1) cut to +-2
    assert bound * 0.99 < np.abs(values).max() < bound


def test_jax_layout_fan_out_and_avg():
    shape = (5, 7, 3, 4)  # field 35, in 3, out 4
    for mode, n in (("fan_in", 105), ("fan_out", 140), ("fan_avg", 122.5)):
        x = fastinit.variance_scaling(shape, 2, layout="jax", mode=mode, distribution="uniform")
        variance = 1.0 / n  # docs/stream.md: uniform(-sqrt(3 variance), sqrt(3 variance))
        limit = math.sqrt(3.0 * variance)
        y = fastinit.uniform(shape, 2, low=-limit, high=limit)
        assert_same_bits(x, y)
