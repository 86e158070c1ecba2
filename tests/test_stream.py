"""The stream against an independent pure-Python Philox4x32, and the scalar maps it feeds.

Layers, in order:
1. a pure-Python Philox4x32-R written here from the Random123 definition, proven
   on the KAT files before anything is compared with it;
2. `fastinit.random_bits` word for word against it: seeds, streams (integers and
   names), offsets and lengths that are not multiples of 4, the block counter
   carrying into its high word, and the end of the 2^64-element stream;
3. every sampler draws element i from word i;
4. the uint32 -> (-1, 1) map on every one of its 2^24 values, the normal
   transform at its extreme words, and the float32 log / erfinv and double erf
   against NumPy, SciPy and math;
5. argument errors of random_bits.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from pathlib import Path

import fastinit
import numpy as np
import pytest
from fastinit import _core

KAT_DIR = Path(__file__).resolve().parent / "data" / "kat"
U64 = 1 << 64
MASK32 = 0xFFFFFFFF
TWO24 = 1 << 24

# ---------------------------------------------------------------------------------------------
# 1. The reference Philox4x32-R (Salmon et al., SC11; Random123's philox.h).

PHILOX_M0 = 0xD2511F53  # multiplies counter word 0
PHILOX_M1 = 0xCD9E8D57  # multiplies counter word 2
PHILOX_W0 = 0x9E3779B9  # Weyl increment of key word 0 (golden ratio)
PHILOX_W1 = 0xBB67AE85  # Weyl increment of key word 1 (sqrt(3) - 1)


def ref_philox4x32(counter, key, rounds=10):
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for r in range(rounds):
        if r:  # the first round uses the key as given
            k0 = (k0 + PHILOX_W0) & MASK32
            k1 = (k1 + PHILOX_W1) & MASK32
        p0 = PHILOX_M0 * c0
        p1 = PHILOX_M1 * c2
        hi0, lo0 = p0 >> 32, p0 & MASK32
        hi1, lo1 = p1 >> 32, p1 & MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return (c0, c1, c2, c3)


@lru_cache(maxsize=4096)
def ref_block(seed, stream, block):
    counter = (block & MASK32, block >> 32, stream & MASK32, stream >> 32)
    return ref_philox4x32(counter, (seed & MASK32, seed >> 32), 10)


def ref_words(n, seed, stream=0, offset=0):
    """Words offset .. offset + n - 1 of the stream, straight from the definition."""
    assert 0 <= offset and offset + n <= U64
    return np.array(
        [ref_block(seed, stream, i >> 2)[i & 3] for i in range(offset, offset + n)], dtype=np.uint32
    )


def ref_stream_id(name):
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def read_kat(rounds):
    vectors = []
    for line in (KAT_DIR / f"philox4x32_{rounds}.txt").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        assert len(fields) == 12 and fields[0] == "philox4x32" and int(fields[1]) == rounds, line
        words = [int(f, 16) for f in fields[2:]]
        vectors.append((tuple(words[0:4]), tuple(words[4:6]), tuple(words[6:10])))
    return vectors


def assert_words_equal(got, expected, what):
    assert got.dtype == np.uint32, what
    assert got.shape == expected.shape, what
    bad = np.flatnonzero(got != expected)
    assert bad.size == 0, (
        f"{what}: {bad.size} words differ, first at {bad[0]}: "
        f"{int(got[bad[0]]):#010x} != {int(expected[bad[0]]):#010x}"
    )


def assert_same_bits(got, expected, what=""):
    got = np.asarray(got)
    expected = np.asarray(expected)
    assert got.dtype == expected.dtype == np.float32, what
    assert got.shape == expected.shape, what
    bad = np.flatnonzero(got.view(np.uint32) != expected.view(np.uint32))
    assert bad.size == 0, (
        f"{what}: {bad.size} values differ, first at {bad[0]}: "
        f"{got.flat[bad[0]]!r} != {expected.flat[bad[0]]!r}"
    )


@pytest.mark.parametrize("rounds", [10, 7])
def test_reference_philox_matches_kat(rounds):
    vectors = read_kat(rounds)
    assert len(vectors) >= 3
    for counter, key, expected in vectors:
        assert ref_philox4x32(counter, key, rounds) == expected, (counter, key)


def test_reference_philox_is_not_trivially_constant():
    # Guards the reference itself: one counter bit changes the output.
    assert ref_philox4x32((0, 0, 0, 0), (0, 0)) != ref_philox4x32((1, 0, 0, 0), (0, 0))
    assert ref_philox4x32((0, 0, 0, 0), (0, 0), 10) != ref_philox4x32((0, 0, 0, 0), (0, 0), 7)


# ---------------------------------------------------------------------------------------------
# 2. random_bits against the reference.

SEEDS = [0, 1, MASK32, 1 << 32, U64 - 1, 0x0123456789ABCDEF]
STREAMS = [0, 1, 1 << 32, U64 - 1, 0xFEDCBA9876543210, "encoder.layers.0.attn.q_proj.weight"]


@pytest.mark.parametrize("stream", STREAMS, ids=repr)
@pytest.mark.parametrize("seed", SEEDS, ids=hex)
def test_random_bits_matches_reference(seed, stream):
    n, offset = 23, 3
    stream_int = ref_stream_id(stream) if isinstance(stream, str) else stream
    got = fastinit.random_bits(n, seed, stream=stream, offset=offset)
    assert_words_equal(got, ref_words(n, seed, stream_int, offset), f"seed={seed}, stream={stream}")


@pytest.mark.parametrize(
    "name", ["", "w", "encoder.layers.0.attn.q_proj.weight", "décodeur.层.权重", "🙂"]
)
def test_stream_id_is_sha256_rule(name):
    expected = ref_stream_id(name)
    assert fastinit.stream_id(name) == expected
    assert 0 <= expected < U64
    # A name and its number are the same stream.
    got = fastinit.random_bits(9, 7, stream=name, offset=2)
    assert_words_equal(got, fastinit.random_bits(9, 7, stream=expected, offset=2), name)
    assert_words_equal(got, ref_words(9, 7, expected, 2), name)


def test_stream_id_known_value():
    # sha256(b"") = e3b0c442 98fc1c14 ...: its first 8 bytes, little-endian.
    assert fastinit.stream_id("") == 0x141CFC9842C4B0E3


def test_stream_id_rejects_non_str():
    with pytest.raises(TypeError, match="stream name"):
        fastinit.stream_id(b"weight")


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6, 7, 13])
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 5, 6, 7, 4099])
def test_random_bits_offsets_and_lengths(offset, n):
    seed, stream = 0x9E3779B97F4A7C15, 12345
    got = fastinit.random_bits(n, seed, stream=stream, offset=offset)
    assert_words_equal(got, ref_words(n, seed, stream, offset), f"offset={offset}, n={n}")


@pytest.mark.parametrize("shift", range(-3, 4))
def test_random_bits_block_counter_carries_into_high_word(shift):
    # Blocks 2^32 - 2 .. 2^32 + 1: counter word 0 wraps and word 1 becomes 1.
    offset = 4 * (1 << 32) - 6 + shift
    n = 13
    seed, stream = 42, 7
    got = fastinit.random_bits(n, seed, stream=stream, offset=offset)
    expected = ref_words(n, seed, stream, offset)
    assert_words_equal(got, expected, f"offset={offset:#x}")
    # The last block before the carry and the first after it differ (no wrap to block 0).
    assert_words_equal(
        fastinit.random_bits(4, seed, stream=stream, offset=4 << 32),
        np.array(ref_philox4x32((0, 1, 7, 0), (42, 0)), dtype=np.uint32),
        "block 2^32",
    )
    assert not np.array_equal(
        fastinit.random_bits(4, seed, stream=stream, offset=4 << 32),
        fastinit.random_bits(4, seed, stream=stream, offset=0),
    )


@pytest.mark.parametrize("offset", [U64 - 10, U64 - 8, U64 - 7, U64 - 3])
def test_random_bits_at_the_end_of_the_stream(offset):
    seed, stream = U64 - 1, U64 - 1
    n = U64 - offset  # up to and including element 2^64 - 1
    got = fastinit.random_bits(n, seed, stream=stream, offset=offset)
    assert_words_equal(got, ref_words(n, seed, stream, offset), f"offset={offset:#x}")
    # Element 2^64 - 1 is word 3 of block 2^62 - 1: counter (2^32 - 1, 2^30 - 1, stream words).
    last = ref_philox4x32((MASK32, (1 << 30) - 1, MASK32, MASK32), (MASK32, MASK32))
    assert int(got[-1]) == last[3]


@pytest.mark.parametrize("block", [1 << 31, (1 << 61), (1 << 62) - 1], ids=["2^31", "2^61", "last"])
def test_random_bits_around_high_counter_bits(block):
    # Block 2^31 - 1 -> 2^31 (top bit of counter word 0), 2^61 - 1 -> 2^61 (the highest
    # bit of counter word 1 the stream reaches: elements stop at 2^64 - 1 = block 2^62 - 1).
    offset = 4 * block - 3
    n = min(10, U64 - offset)
    got = fastinit.random_bits(n, 3, stream=5, offset=offset)
    assert_words_equal(got, ref_words(n, 3, 5, offset), f"block {block:#x}")


@pytest.mark.parametrize(
    "offset", [0, 1, 3, 4 * (1 << 32) - 9, U64 - 40], ids=["0", "1", "3", "carry", "end"]
)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 17])
def test_random_bits_slicing_is_consistent(offset, k):
    n = 40
    seed, stream = 2024, "layer.bias"
    whole = fastinit.random_bits(n, seed, stream=stream, offset=offset)
    tail = fastinit.random_bits(n - k, seed, stream=stream, offset=offset + k)
    assert_words_equal(whole[k:], tail, f"offset={offset}, k={k}")
    head = fastinit.random_bits(k, seed, stream=stream, offset=offset)
    assert_words_equal(whole[:k], head, f"offset={offset}, k={k}")


def test_random_bits_streams_and_seeds_differ():
    base = fastinit.random_bits(64, 1)
    assert not np.array_equal(base, fastinit.random_bits(64, 2))
    assert not np.array_equal(base, fastinit.random_bits(64, 1, stream=1))
    assert not np.array_equal(base, fastinit.random_bits(64, 1 << 32))
    assert not np.array_equal(base, fastinit.random_bits(64, 1, stream=1 << 32))


def test_random_bits_accepts_numpy_integers():
    expected = ref_words(6, U64 - 1, 1 << 32, 5)
    got = fastinit.random_bits(
        np.int64(6), np.uint64(U64 - 1), stream=np.uint64(1 << 32), offset=np.int32(5)
    )
    assert_words_equal(got, expected, "numpy integer arguments")


def test_random_bits_zero_length():
    for offset in (0, 3, U64 - 1):
        got = fastinit.random_bits(0, 5, offset=offset)
        assert got.dtype == np.uint32 and got.shape == (0,)


# ---------------------------------------------------------------------------------------------
# 3. Every sampler draws element i from word i.

SAMPLERS = {
    "uniform": (
        lambda shape, seed, stream: fastinit.uniform(shape, seed, low=-1, high=1, stream=stream),
        lambda: _core.uniform_params(-1, 1),
    ),
    "uniform_shifted": (
        lambda shape, seed, stream: fastinit.uniform(shape, seed, low=2, high=5, stream=stream),
        lambda: _core.uniform_params(2, 5),
    ),
    "normal": (
        lambda shape, seed, stream: fastinit.normal(shape, seed, mean=0.5, std=2, stream=stream),
        lambda: _core.normal_params(0.5, 2),
    ),
    "truncated_normal": (
        lambda shape, seed, stream: fastinit.truncated_normal(
            shape, seed, mean=-1, std=0.5, lower=-2, upper=2, stream=stream
        ),
        lambda: _core.truncated_normal_params(-1, 0.5, -2, 2),
    ),
    "truncated_normal_asym": (
        lambda shape, seed, stream: fastinit.truncated_normal(
            shape, seed, lower=-0.5, upper=3, stream=stream
        ),
        lambda: _core.truncated_normal_params(0, 1, -0.5, 3),
    ),
}


@pytest.mark.parametrize("stream", [0, U64 - 1, "decoder.out_proj.weight"], ids=repr)
@pytest.mark.parametrize("seed", [0, 987654321987654321])
@pytest.mark.parametrize("kind", sorted(SAMPLERS))
def test_sampler_element_i_uses_word_i(kind, seed, stream):
    sample, params = SAMPLERS[kind]
    n = 1001
    expected = _core.sample_words(fastinit.random_bits(n, seed, stream=stream), params())
    assert_same_bits(sample((n,), seed, stream), expected, f"{kind} seed={seed} stream={stream}")
    # A multi-dimensional tensor is the same flat sequence, in row-major order.
    shape = (7, 11, 13)
    m = math.prod(shape)
    expected = _core.sample_words(fastinit.random_bits(m, seed, stream=stream), params())
    assert_same_bits(sample(shape, seed, stream).ravel(), expected, f"{kind} shape={shape}")


def test_sampler_region_uses_words_of_the_full_tensor():
    shape, seed, stream = (6, 9, 10), 31, "region"
    full_words = fastinit.random_bits(math.prod(shape), seed, stream=stream).reshape(shape)
    params = _core.normal_params(0, 1)
    for region in [
        (slice(1, 4),),
        (slice(2, 5), slice(3, 8)),
        (slice(0, 6), slice(0, 9), slice(4, 7)),
        (slice(5, 6), slice(8, 9), slice(9, 10)),
    ]:
        got = fastinit.normal(shape, seed, stream=stream, region=region)
        expected = _core.sample_words(np.ascontiguousarray(full_words[region]), params)
        assert_same_bits(got, expected, f"region={region}")


def test_sample_words_is_elementwise():
    words = fastinit.random_bits(257, 11)
    params = _core.normal_params(0, 1)
    whole = _core.sample_words(words, params)
    one_by_one = np.concatenate(
        [_core.sample_words(words[i : i + 1].copy(), params) for i in range(257)]
    )
    assert_same_bits(whole, one_by_one)


# ---------------------------------------------------------------------------------------------
# 4. uint32 -> (-1, 1), the normal transform, log, erfinv, erf.


def signed_unit_f64(words):
    """(2 (w >> 8) + 1 - 2^24) 2^-24, in float64 (exact)."""
    k = np.asarray(words, dtype=np.uint32).astype(np.int64) >> 8
    return (2 * k + 1 - TWO24).astype(np.float64) * 2.0**-24


EDGE_WORDS = {
    0x00000000: -(1 - 2.0**-24),
    0x00000001: -(1 - 2.0**-24),
    0x000000FF: -(1 - 2.0**-24),
    0x00000100: -1 + 3 * 2.0**-24,
    0x7FFFFFFF: -(2.0**-24),
    0x80000000: 2.0**-24,
    0xFFFFFEFF: 1 - 3 * 2.0**-24,
    0xFFFFFF00: 1 - 2.0**-24,
    0xFFFFFF7F: 1 - 2.0**-24,
    0xFFFFFF80: 1 - 2.0**-24,
    0xFFFFFFFF: 1 - 2.0**-24,
}


def test_convert_edge_words_exact():
    words = np.array(sorted(EDGE_WORDS), dtype=np.uint32)
    got = _core.sample_words(words, _core.uniform_params(-1, 1))
    assert got.dtype == np.float32
    expected = np.array([EDGE_WORDS[int(w)] for w in words])
    np.testing.assert_array_equal(got.astype(np.float64), expected)
    np.testing.assert_array_equal(got.astype(np.float64), signed_unit_f64(words))
    assert np.all(np.abs(got) < 1) and np.all(got != 0)


def test_convert_whole_grid_exact_and_symmetric():
    k = np.arange(TWO24, dtype=np.uint32)
    params = _core.uniform_params(-1, 1)
    x = _core.sample_words(k << 8, params)
    expected = (2.0 * k.astype(np.float64) + 1 - TWO24) * 2.0**-24
    assert np.array_equal(x.astype(np.float64), expected), "signed_unit differs from its formula"
    assert np.array_equal(x, -x[::-1]), "x(k) != -x(2^24 - 1 - k)"
    assert x[0] == np.float32(-1 + 2.0**-24) and x[-1] == np.float32(1 - 2.0**-24)
    assert not np.any(x == 0) and not np.any(np.abs(x) >= 1)
    # The low 8 bits of the word are ignored.
    low = np.random.default_rng(0).integers(1, 256, size=TWO24, dtype=np.uint32)
    assert np.array_equal(_core.sample_words((k << 8) | low, params), x)


def test_normal_transform_extreme_words_are_finite():
    words = np.array(sorted(EDGE_WORDS), dtype=np.uint32)
    z = _core.sample_words(words, _core.normal_params(0, 1))
    assert np.all(np.isfinite(z))
    assert np.all(np.abs(z) <= 5.43)
    assert z[0] < -5.41 and z[-1] > 5.41  # words 0 and 0xFFFFFFFF: about ∓5.41998
    assert z[0] == -z[-1]
    expected = math.sqrt(2) * 3.8325068569007104  # sqrt(2) erfinv(1 - 2^-24) = 5.41998...
    assert abs(float(z[-1]) - expected) < 1e-5 * expected


def test_normal_transform_whole_grid_finite_bounded_symmetric():
    words = np.arange(TWO24, dtype=np.uint32) << 8
    z = _core.sample_words(words, _core.normal_params(0, 1))
    assert np.all(np.isfinite(z))
    assert float(np.max(np.abs(z))) <= 5.43
    assert np.array_equal(z, -z[::-1])
    assert np.all(np.diff(z) >= 0), "the normal transform is not monotone in the word"


@pytest.mark.parametrize("lower,upper", [(-2, 2), (-0.5, 3), (-np.inf, 1), (0, np.inf)])
def test_truncated_normal_extreme_words_stay_inside_bounds(lower, upper):
    words = np.array(sorted(EDGE_WORDS), dtype=np.uint32)
    z = _core.sample_words(words, _core.truncated_normal_params(0, 1, lower, upper))
    assert np.all(np.isfinite(z))
    assert np.all(z > lower) and np.all(z < upper)


def ulp_distance(a, b):
    """|a - b| in float32 ulps, via the ordered integer representation."""

    def ordered(x):
        i = np.asarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)

    return np.abs(ordered(a) - ordered(b))


def check_log(x):
    x = np.asarray(x, dtype=np.float32)
    got = _core.log(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    expected = np.log(x.astype(np.float64)).astype(np.float32)
    d = ulp_distance(got, expected)
    worst = int(np.argmax(d))
    assert d[worst] <= 2, f"log({x[worst]!r}) = {got[worst]!r}, expected {expected[worst]!r}"


def test_log_full_range():
    # Every 131st positive normal float32, plus log-spaced points and the extremes.
    bits = np.arange(0x00800000, 0x7F800000, 131, dtype=np.uint32)
    spaced = np.geomspace(2.0**-126, 2.0**127, 100_000).astype(np.float32)
    extremes = np.array(
        [2.0**-126, np.finfo(np.float32).max, 1.0, 2.0, 0.5, math.sqrt(2), math.sqrt(0.5)],
        dtype=np.float32,
    )
    check_log(np.concatenate([bits.view(np.float32), spaced, extremes]))


def test_log_dense_around_one():
    # Every float32 in [0.5, 2]: both mantissa wraps around sqrt(2) and sqrt(1/2).
    lo = np.float32(0.5).view(np.uint32)
    hi = np.float32(2.0).view(np.uint32)
    check_log(np.arange(lo, hi + 1, dtype=np.uint32).view(np.float32))


def test_log_exact_powers_of_two():
    e = np.arange(-126, 128)
    got = _core.log(np.ldexp(np.float32(1), e).astype(np.float32))
    expected = (e * math.log(2)).astype(np.float32)
    assert np.all(ulp_distance(got, expected) <= 1)
    assert got[e == 0][0] == 0


def test_erfinv_on_the_signed_unit_grid():
    scipy_special = pytest.importorskip("scipy.special")
    k = np.concatenate([np.arange(0, TWO24, 3), [TWO24 - 2, TWO24 - 1]])
    x = ((2 * k + 1 - TWO24) * 2.0**-24).astype(np.float32)  # exact
    got = _core.erfinv(x).astype(np.float64)
    expected = scipy_special.erfinv(x.astype(np.float64))
    rel = np.abs(got - expected) / np.abs(expected)
    worst = int(np.argmax(rel))
    assert rel[worst] <= 5e-7, (
        f"erfinv({x[worst]!r}) = {got[worst]!r}, expected {expected[worst]!r}"
    )
    assert np.array_equal(_core.erfinv(-x), -_core.erfinv(x))  # exactly odd


def test_erf_double_against_math():
    xs = np.concatenate(
        [
            np.linspace(-7, 7, 14_001),
            [0.0, -0.0, 1e-300, -1e-300, 5e-324, 1e-8, 0.5, 5.9999999, 6.0, 6.0000001, 30.0],
        ]
    )
    worst = 0.0
    for x in xs.tolist():
        got = _core.erf(x)
        worst = max(worst, abs(got - math.erf(x)))
        assert _core.erf(-x) == -got
    assert worst <= 1e-14
    assert math.isnan(_core.erf(math.nan))
    assert _core.erf(math.inf) == 1.0 and _core.erf(-math.inf) == -1.0


# ---------------------------------------------------------------------------------------------
# 5. Argument errors.


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(n=-1, seed=0), ValueError, "^n must"),
        (dict(n=1 << 61, seed=0), OverflowError, "^n must"),
        (dict(n=True, seed=0), TypeError, "^n must"),
        (dict(n=1.0, seed=0), TypeError, "^n must"),
        (dict(n=1, seed=True), TypeError, "^seed must"),
        (dict(n=1, seed=np.bool_(False)), TypeError, "^seed must"),
        (dict(n=1, seed=1.0), TypeError, "^seed must"),
        (dict(n=1, seed=-1), OverflowError, "^seed must"),
        (dict(n=1, seed=U64), OverflowError, "^seed must"),
        (dict(n=1, seed=0, stream=True), TypeError, "^stream must"),
        (dict(n=1, seed=0, stream=-1), OverflowError, "^stream must"),
        (dict(n=1, seed=0, stream=U64), OverflowError, "^stream must"),
        (dict(n=1, seed=0, stream=b"w"), TypeError, "^stream must"),
        (dict(n=1, seed=0, offset=-1), OverflowError, "^offset must"),
        (dict(n=0, seed=0, offset=U64), OverflowError, "^offset must"),
        (dict(n=1, seed=0, offset=True), TypeError, "^offset must"),
        (dict(n=2, seed=0, offset=U64 - 1), OverflowError, r"offset \+ n"),
        (dict(n=11, seed=0, offset=U64 - 10), OverflowError, r"offset \+ n"),
    ],
)
def test_random_bits_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        fastinit.random_bits(**kwargs)


def test_random_bits_largest_valid_range_is_accepted():
    assert fastinit.random_bits(10, 0, offset=U64 - 10).shape == (10,)
    assert fastinit.random_bits(1, 0, offset=U64 - 1).shape == (1,)
