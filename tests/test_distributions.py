"""Fixed-seed statistics of every sampler, with thresholds set in advance from n.

Every test draws from fixed seeds, so it is deterministic; the thresholds are still
derived from the sample size, so that a correct sampler passes with overwhelming
probability for *any* seed and a sampler whose std is off by 1% fails.

Moments. For n i.i.d. samples of a distribution with mean m, variance s2 and central
fourth moment mu4:
    standard error of the sample mean      se_mean = sqrt(s2 / n)
    standard error of the sample variance  se_var  = sqrt((mu4 - s2**2) / n)
(normal: mu4 = 3 s2^2; uniform: mu4 = 9/5 s2^2; truncated normal: from scipy). A test
allows SE_THRESHOLD standard errors. A 1% error in the std is a 2.01% error in the
variance, so each test asserts 0.02 s2 > SE_THRESHOLD se_var (the chosen n can see it),
and, directly, that the same sample is rejected as a draw with a 1% larger std.

Kolmogorov-Smirnov. sqrt(n) D of a correct sampler exceeds t = 2.2245 with
probability about 2 exp(-2 t^2) = 1e-4 (the p-value threshold). If the true and a
1%-wider CDF differ by D_wrong, the triangle inequality gives
sqrt(n) D_obs(wrong) >= sqrt(n) D_wrong - sqrt(n) D_obs(true), so sqrt(n) D_wrong > 2 t
guarantees that a sample accepted against the right CDF is rejected against the wrong
one; each KS test asserts that condition on n and then checks both p-values.
"""

from __future__ import annotations

import math

import fastinit
import ml_dtypes
import numpy as np
import pytest
from _shared import DTYPES
from fastinit import _core
from scipy import special, stats

SE_THRESHOLD = 6.0  # standard errors; a correct sampler exceeds it with probability ~2e-9
KS_P_MIN = 1e-4
KS_T = math.sqrt(math.log(2 / KS_P_MIN) / 2)  # sqrt(n) D with asymptotic p-value KS_P_MIN
STD_ERROR = 1.01  # the deliberately wrong std every test must be able to reject

NAMED = {
    # name: (scale, mode, distribution)
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
}
# PyTorch layout (out, in, *receptive): fan_in = shape[1] * field, fan_out = shape[0] * field.
DENSE = (512, 2048)  # fan_in 2048, fan_out 512, fan_avg 1280: the three modes differ
CONV = (64, 32, 3, 3)  # fan_in 288, fan_out 576, fan_avg 432
CONV_SEEDS = range(64)  # one conv kernel is too small to see 1%: pool 64 independent ones


# ---------------------------------------------------------------------------
# Reference distributions and the checks
# ---------------------------------------------------------------------------


def torch_fans(shape):
    field = math.prod(shape[2:])
    return shape[1] * field, shape[0] * field


def fan(shape, mode):
    fan_in, fan_out = torch_fans(shape)
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


def target_distribution(distribution, variance):
    """The scipy distribution variance_scaling promises for `variance`.

    Built from scipy alone (not from fastinit's constants): the truncated normal is
    the normal cut at +-2 of its own sigma, sigma chosen so the variance is `variance`.
    Every reference distribution here is built with loc= and scale= keywords.
    """
    std = math.sqrt(variance)
    if distribution == "normal":
        return stats.norm(loc=0.0, scale=std)
    if distribution == "uniform":
        limit = math.sqrt(3.0) * std
        return stats.uniform(loc=-limit, scale=2 * limit)
    assert distribution == "truncated_normal"
    return stats.truncnorm(-2.0, 2.0, loc=0.0, scale=std / stats.truncnorm(-2.0, 2.0).std())


def central_moments(dist):
    """(mean, variance, central 4th moment) of a frozen scipy distribution."""
    mean, var, excess_kurtosis = (float(v) for v in dist.stats(moments="mvk"))
    return mean, var, (excess_kurtosis + 3.0) * var**2


def _loc_scale(dist):
    return dist.kwds.get("loc", 0.0), dist.kwds.get("scale", 1.0)


def with_wider_std(dist, factor=STD_ERROR):
    """The same family and centre with the std times factor (truncnorm: bounds in sigma units)."""
    loc, scale = _loc_scale(dist)
    if dist.dist.name == "uniform":  # loc, scale = low, width: widen about the centre
        centre = loc + scale / 2
        return stats.uniform(loc=centre - factor * scale / 2, scale=factor * scale)
    return dist.dist(*dist.args, loc=loc, scale=factor * scale)


def assert_moments(x, dist):
    """Sample mean and variance of x match dist within SE_THRESHOLD standard errors."""
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    mean, var, mu4 = central_moments(dist)
    se_mean = math.sqrt(var / n)
    se_var = math.sqrt((mu4 - var**2) / n)
    assert 0.02 * var > SE_THRESHOLD * se_var, f"n = {n} cannot see a 1% error in the std"
    sample_mean, sample_var = x.mean(), x.var()
    assert abs(sample_mean - mean) < SE_THRESHOLD * se_mean, (sample_mean, mean, se_mean)
    assert abs(sample_var - var) < SE_THRESHOLD * se_var, (sample_var, var, se_var)
    # The same sample must reject a draw whose std is 1% larger.
    _, wrong_var, wrong_mu4 = central_moments(with_wider_std(dist))
    wrong_se = math.sqrt((wrong_mu4 - wrong_var**2) / n)
    assert abs(sample_var - wrong_var) > SE_THRESHOLD * wrong_se, (sample_var, wrong_var)


def fast_cdf(dist):
    """The CDF of dist through scipy.special.ndtr (scipy's truncnorm.cdf takes seconds
    on 4e6 points); checked against the scipy object itself before use."""
    loc, scale = _loc_scale(dist)
    name = dist.dist.name
    if name == "uniform":

        def cdf(x):
            return np.clip((x - loc) / scale, 0.0, 1.0)

    elif name == "norm":

        def cdf(x):
            return special.ndtr((x - loc) / scale)

    else:
        assert name == "truncnorm"
        a, b = dist.args
        lo, hi = special.ndtr(a), special.ndtr(b)

        def cdf(x):
            z = np.clip((x - loc) / scale, a, b)
            return (special.ndtr(z) - lo) / (hi - lo)

    grid = np.linspace(dist.ppf(1e-9), dist.ppf(1 - 1e-9), 2001)
    np.testing.assert_allclose(cdf(grid), dist.cdf(grid), rtol=0, atol=1e-12)
    return cdf


def assert_ks(x, dist):
    """KS accepts dist and rejects the same family with a 1% larger std, at this n."""
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    wrong = with_wider_std(dist)
    grid = np.linspace(dist.ppf(1e-9), wrong.ppf(1 - 1e-9), 200_001)
    d_wrong = float(np.max(np.abs(dist.cdf(grid) - wrong.cdf(grid))))
    assert math.sqrt(n) * d_wrong > 2 * KS_T, f"n = {n} cannot see a 1% error in the std"
    right = stats.kstest(x, fast_cdf(dist))
    assert right.pvalue > KS_P_MIN, right
    rejected = stats.kstest(x, fast_cdf(wrong))
    assert rejected.pvalue < KS_P_MIN, rejected


def test_helpers_use_the_textbook_fourth_moments():
    # The thresholds rest on mu4; check the helper against the closed forms.
    for std in (0.1, 3.0):
        _, var, mu4 = central_moments(stats.norm(loc=0.0, scale=std))
        assert mu4 == pytest.approx(3 * std**4, rel=1e-12)
        _, var, mu4 = central_moments(target_distribution("uniform", std**2))
        assert var == pytest.approx(std**2, rel=1e-12)
        assert mu4 == pytest.approx(9 / 5 * std**4, rel=1e-12)
        tn = target_distribution("truncated_normal", std**2)
        _, var, mu4 = central_moments(tn)
        assert var == pytest.approx(std**2, rel=1e-12)
        assert mu4 == pytest.approx(tn.moment(4), rel=1e-12)  # symmetric: raw = central
    assert fastinit.TRUNCATED_NORMAL_STD == pytest.approx(stats.truncnorm(-2, 2).std(), rel=1e-15)


# ---------------------------------------------------------------------------
# Mean and variance
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_initializer_moments_dense(name):
    scale, mode, distribution = NAMED[name]
    x = getattr(fastinit, name)(DENSE, 20240611)
    assert x.shape == DENSE and x.dtype == np.float32
    assert_moments(x, target_distribution(distribution, scale / fan(DENSE, mode)))


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_initializer_moments_conv(name):
    scale, mode, distribution = NAMED[name]
    initializer = getattr(fastinit, name)
    x = np.concatenate([initializer(CONV, seed).ravel() for seed in CONV_SEEDS])
    assert_moments(x, target_distribution(distribution, scale / fan(CONV, mode)))


@pytest.mark.parametrize(
    ("name", "options", "scale", "mode", "distribution"),
    [
        ("glorot_uniform", {"gain": 5 / 3}, 25 / 9, "fan_avg", "uniform"),
        ("he_normal", {"distribution": "normal"}, 2.0, "fan_in", "normal"),
        ("he_uniform", {"gain": 0.5}, 0.5, "fan_in", "uniform"),
        ("lecun_normal", {"distribution": "uniform", "gain": 3.0}, 9.0, "fan_in", "uniform"),
        ("xavier_normal", {"gain": math.sqrt(2)}, 2.0, "fan_avg", "truncated_normal"),
        ("kaiming_uniform", {}, 2.0, "fan_in", "uniform"),
        ("kaiming_normal", {"distribution": "untruncated_normal"}, 2.0, "fan_in", "normal"),
    ],
)
def test_named_overrides(name, options, scale, mode, distribution):
    x = getattr(fastinit, name)(DENSE, 7, **options)
    assert_moments(x, target_distribution(distribution, scale / fan(DENSE, mode)))


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_variance_scaling_moments(mode, distribution):
    scale = 1.7
    x = fastinit.variance_scaling(DENSE, 99, scale=scale, mode=mode, distribution=distribution)
    assert_moments(x, target_distribution(distribution, scale / fan(DENSE, mode)))


@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_variance_scaling_explicit_fans_on_1d(distribution):
    x = fastinit.variance_scaling(
        (1 << 20,), 5, scale=3.0, mode="fan_avg", distribution=distribution, fan_in=100, fan_out=300
    )
    assert_moments(x, target_distribution(distribution, 3.0 / 200))


@pytest.mark.parametrize(("mean", "std"), [(0.0, 1.0), (-0.7, 0.05), (1e3, 20.0)])
def test_normal_moments(mean, std):
    x = fastinit.normal((1 << 20,), 11, mean=mean, std=std)
    assert_moments(x, stats.norm(loc=mean, scale=std))


@pytest.mark.parametrize(("low", "high"), [(0.0, 1.0), (-0.3, 1.9), (-5e-3, -1e-3)])
def test_uniform_moments(low, high):
    x = fastinit.uniform((1 << 20,), 12, low=low, high=high)
    assert_moments(x, stats.uniform(loc=low, scale=high - low))


@pytest.mark.parametrize(
    ("mean", "std", "lower", "upper"),
    [
        (0.0, 1.0, -2.0, 2.0),
        (0.5, 0.02, -1.0, 3.0),
        (-1.0, 2.0, 0.5, 2.5),
        (0.0, 1.0, -math.inf, 1.0),
        (3.0, 0.5, 0.0, math.inf),
        (0.0, 1.0, -0.25, 0.25),
    ],
)
def test_truncated_normal_moments(mean, std, lower, upper):
    x = fastinit.truncated_normal((1 << 20,), 13, mean=mean, std=std, lower=lower, upper=upper)
    assert_moments(x, stats.truncnorm(lower, upper, loc=mean, scale=std))


def test_truncated_normal_absolute_bounds_moments():
    mean, std, a, b = 0.2, 0.5, -0.1, 1.5
    x = fastinit.truncated_normal((1 << 20,), 14, mean=mean, std=std, a=a, b=b)
    assert_moments(x, stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std))


# ---------------------------------------------------------------------------
# Kolmogorov-Smirnov
# ---------------------------------------------------------------------------

KS_N = 4_000_000


def test_ks_he_normal_truncated():
    shape = (KS_N // 1024, 1024)
    x = fastinit.he_normal(shape, 31)
    assert_ks(x, target_distribution("truncated_normal", 2.0 / 1024))


def test_ks_glorot_uniform():
    shape = (2000, 1000)  # fan_avg 1500
    x = fastinit.glorot_uniform(shape, 32)
    assert_ks(x, target_distribution("uniform", 1.0 / 1500))


def test_ks_normal():
    x = fastinit.normal((KS_N,), 33, mean=0.5, std=3.0)
    assert_ks(x, stats.norm(loc=0.5, scale=3.0))


def test_ks_variance_scaling_normal_fan_out():
    shape = (1000, KS_N // 1000)
    x = fastinit.variance_scaling(shape, 34, scale=0.5, mode="fan_out", distribution="normal")
    assert_ks(x, target_distribution("normal", 0.5 / 1000))


def test_ks_truncated_normal_asymmetric():
    x = fastinit.truncated_normal((3_000_000,), 35, mean=1.0, std=2.0, lower=-1.0, upper=3.0)
    assert_ks(x, stats.truncnorm(-1.0, 3.0, loc=1.0, scale=2.0))


# ---------------------------------------------------------------------------
# Support: bounds, endpoints, finiteness
# ---------------------------------------------------------------------------

BOUND_SHAPE = (1000, 1000)


def dtype_max_below(bound, dtype):
    """The largest value a float16/bfloat16 output may take for float32 samples < bound.

    Outputs are the float32 sample rounded to nearest-even, which is monotone, so
    x32 < bound implies cast(x32) <= cast(bound): strictly inside cannot be promised
    for narrow types (a value just below the bound may round onto or past it).
    """
    return float(np.array(bound, dtype=np.float64).astype(np.dtype(dtype)).astype(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("name", "variance"),
    [
        ("glorot_normal", 1.0 / 1000),
        ("he_normal", 2.0 / 1000),
        ("lecun_normal", 1.0 / 1000),
        ("variance_scaling", 0.3 / 1000),
    ],
)
def test_truncated_values_inside_two_sigma(name, variance, dtype):
    if name == "variance_scaling":
        x = fastinit.variance_scaling(BOUND_SHAPE, 41, scale=0.3, dtype=dtype)
    else:
        x = getattr(fastinit, name)(BOUND_SHAPE, 41, dtype=dtype)
    x = x.astype(np.float64)
    assert np.all(np.isfinite(x))
    # +-2 sigma of the underlying normal = +-2.2737 times the target std.
    bound = 2 * math.sqrt(variance) / stats.truncnorm(-2, 2).std()
    assert bound == pytest.approx(2.2737 * math.sqrt(variance), rel=1e-4)
    if dtype in ("float32", "float64"):
        assert np.all(np.abs(x) < bound)
    else:
        assert np.all(np.abs(x) <= dtype_max_below(bound, dtype))
    # ... and the samples do reach the bound's neighbourhood (the support is not too narrow).
    assert np.abs(x).max() > 0.995 * bound


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("mean", "std", "lower", "upper"),
    [
        (0.5, 0.02, -1.0, 3.0),
        (-1.0, 2.0, 0.5, 2.5),
        (0.0, 1.0, -0.25, 0.25),
        (3.0, 0.5, 0.0, math.inf),
    ],
)
def test_truncated_normal_values_inside_bounds(mean, std, lower, upper, dtype):
    x = fastinit.truncated_normal(
        BOUND_SHAPE, 42, mean=mean, std=std, lower=lower, upper=upper, dtype=dtype
    ).astype(np.float64)
    assert np.all(np.isfinite(x))
    a, b = mean + lower * std, mean + upper * std
    if dtype in ("float32", "float64"):
        assert np.all((x > a) & (x < b))
    else:
        assert np.all((x >= -dtype_max_below(-a, dtype)) & (x <= dtype_max_below(b, dtype)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("name", "variance"),
    [
        ("glorot_uniform", 1.0 / 1000),
        ("he_uniform", 2.0 / 1000),
        ("lecun_uniform", 1.0 / 1000),
        ("variance_scaling", 0.3 / 1000),
    ],
)
def test_uniform_values_inside_limit(name, variance, dtype):
    if name == "variance_scaling":
        x = fastinit.variance_scaling(
            BOUND_SHAPE, 43, scale=0.3, distribution="uniform", dtype=dtype
        )
    else:
        x = getattr(fastinit, name)(BOUND_SHAPE, 43, dtype=dtype)
    x = x.astype(np.float64)
    assert np.all(np.isfinite(x))
    limit = math.sqrt(3 * variance)
    if dtype in ("float32", "float64"):
        assert np.all(np.abs(x) < limit)
        assert not np.any(np.abs(x) == float(np.float32(limit)))
    else:
        assert np.all(np.abs(x) <= dtype_max_below(limit, dtype))
    # 1e6 samples come within 1e-4 of the end (expect 100 in that band); a narrow
    # dtype may round the largest down by up to half its epsilon.
    slack = 1e-4 if dtype in ("float32", "float64") else float(ml_dtypes.finfo(np.dtype(dtype)).eps)
    assert np.abs(x).max() > (1 - slack) * limit


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("low", "high"), [(0.0, 1.0), (-0.3, 1.9), (0.1, 0.1 + 1e-5), (-7.0, -3.0)]
)
def test_uniform_open_interval(low, high, dtype):
    """Strictly inside (low, high), compared in float64 with the given bounds.

    N.B. when f32(low) > low (0.1), f32(low) is itself inside the interval and a
    legitimate sample (docs/stream.md, "inward"); only bounds that float32 holds
    exactly must never appear.
    """
    x = fastinit.uniform(BOUND_SHAPE, 44, low=low, high=high, dtype=dtype).astype(np.float64)
    assert np.all((x > low) & (x < high))
    for end in (low, high):
        if float(np.float32(end)) == end:
            assert not np.any(x == end)
    # The clamp keeps the values inside, yet they fill the interval to its ends: 1e6
    # samples reach within 1e-4 of the width (or two float32 steps, if coarser).
    step = float(np.spacing(np.float32(max(abs(low), abs(high)))))
    slack = max(1e-4 * (high - low), 2 * step)
    assert x.min() < low + slack and x.max() > high - slack


# Words at both ends of the 2^24-point grid and next to them (low byte ignored).
EDGE_WORDS = np.array(
    [0x0, 0x1, 0xFF, 0x100, 0x1FF, 0xFFFFFE00, 0xFFFFFEFF, 0xFFFFFF00, 0xFFFFFF7F, 0xFFFFFFFF],
    dtype=np.uint32,
)


def test_edge_words_stay_inside_for_many_scales():
    """At the grid's extreme words, samples stay strictly inside for 2000 random scales."""
    rng = np.random.default_rng(2024)
    for std in 10.0 ** rng.uniform(-6, 3, 2000):
        limit = math.sqrt(3.0) * std
        x = _core.sample_words(EDGE_WORDS, _core.uniform_params(-limit, limit)).astype(np.float64)
        assert np.all(np.abs(x) < limit), std
        assert not np.any(np.abs(x) == float(np.float32(limit))), std
        sigma = std / fastinit.TRUNCATED_NORMAL_STD
        params = _core.truncated_normal_params(0.0, sigma, -2.0, 2.0)
        x = _core.sample_words(EDGE_WORDS, params).astype(np.float64)
        assert np.all(np.abs(x) < 2 * sigma), std
        assert np.all(np.isfinite(_core.sample_words(EDGE_WORDS, _core.normal_params(0.0, std))))


@pytest.mark.parametrize("dtype", DTYPES)
def test_no_nan_or_inf(dtype):
    shape = (300, 700)
    samples = [
        fastinit.glorot_normal(shape, 1, dtype=dtype),
        fastinit.he_uniform(shape, 1, dtype=dtype),
        fastinit.normal(shape, 1, std=1e-3, dtype=dtype),
        fastinit.normal(shape, 1, mean=-2.0, std=50.0, dtype=dtype),
        fastinit.uniform(shape, 1, low=-100.0, high=100.0, dtype=dtype),
        fastinit.truncated_normal(shape, 1, lower=-math.inf, upper=0.0, dtype=dtype),
        fastinit.truncated_normal(shape, 1, lower=-3.0, upper=-2.5, dtype=dtype),
        fastinit.orthogonal(shape, 1, dtype=dtype),
    ]
    for x in samples:
        assert x.dtype == np.dtype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)
        assert np.all(np.isfinite(x.astype(np.float64)))


def test_normal_tail_reach():
    # The 2^24-point grid bounds |x| by about 5.42 std; 4M samples do not reach it
    # but must go past 4.5 std (P(|Z| > 4.5) = 6.8e-6, so ~27 expected).
    x = fastinit.normal((1 << 22,), 51).astype(np.float64)
    assert 4.5 < np.abs(x).max() < 5.43


# ---------------------------------------------------------------------------
# float16 subnormals
# ---------------------------------------------------------------------------


def test_float16_subnormals_preserved():
    seed = 61
    x16 = fastinit.normal((10**6,), seed, std=1e-5, dtype="float16")
    x32 = fastinit.normal((10**6,), seed, std=1e-5, dtype="float32")
    tiny = float(np.finfo(np.float16).smallest_normal)  # 6.1e-5
    magnitude = np.abs(x16.astype(np.float64))
    subnormal = (magnitude > 0) & (magnitude < tiny)
    # N(0, 1e-5): nearly all values lie below 6.1e-5; a flush-to-zero would zero them.
    assert subnormal.mean() > 0.99
    np.testing.assert_array_equal(x16.view(np.uint16), x32.astype(np.float16).view(np.uint16))
    # Their spread survives rounding to 2^-24 steps.
    assert np.std(x16.astype(np.float64)) == pytest.approx(1e-5, rel=0.01)


# ---------------------------------------------------------------------------
# Exact properties of the 2^24-point grid
# ---------------------------------------------------------------------------

GRID_SHAPE = (512, 2048)  # fan_in 2048, fan_out 512
GRID_WORDS = np.arange(1 << 24, dtype=np.uint32) << 8  # word of grid point k: k << 8


def _grid_params(name):
    fan_in, fan_out = torch_fans(GRID_SHAPE)
    if name == "glorot_uniform":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return _core.uniform_params(-limit, limit), 2.0 / (fan_in + fan_out)
    if name == "he_normal_untruncated":
        return _core.normal_params(0.0, math.sqrt(2.0 / fan_in)), 2.0 / fan_in
    assert name == "lecun_normal"
    sigma = math.sqrt(1.0 / fan_in) / stats.truncnorm(-2, 2).std()
    return _core.truncated_normal_params(0.0, sigma, -2.0, 2.0), 1.0 / fan_in


def _public(name, seed):
    """The first three rows of the initializer's tensor (a region: no need for the rest)."""
    rows = (slice(0, 3),)
    if name == "he_normal_untruncated":
        return fastinit.he_normal(GRID_SHAPE, seed, distribution="normal", region=rows)
    return getattr(fastinit, name)(GRID_SHAPE, seed, region=rows)


@pytest.fixture(scope="module", params=["glorot_uniform", "he_normal_untruncated", "lecun_normal"])
def grid(request):
    """Every value the initializer can produce, grid point k at index k, and its variance."""
    params, variance = _grid_params(request.param)
    # These are the parameters the public initializer uses: same values from the same words.
    seed = 77
    words = fastinit.random_bits(3 * GRID_SHAPE[1], seed)
    np.testing.assert_array_equal(
        _core.sample_words(words, params), _public(request.param, seed).ravel()[: words.size]
    )
    return request.param, params, _core.sample_words(GRID_WORDS, params), variance


def test_grid_is_exactly_symmetric(grid):
    # Words k << 8 and (2^24 - 1 - k) << 8 give x and -x, so every value v has -v
    # with the same probability; the grid is symmetric as a set and as a distribution.
    _, _, values, _ = grid
    np.testing.assert_array_equal(values, -values[::-1])
    assert np.all(values != 0)
    assert np.all(np.diff(values) >= 0)  # monotone in the word


def test_grid_ignores_the_low_byte(grid):
    _, params, values, _ = grid
    k = np.arange(0, 1 << 24, 4099, dtype=np.uint32)
    for low in (0x01, 0x80, 0xFF):
        np.testing.assert_array_equal(_core.sample_words((k << 8) | low, params), values[k])


def test_grid_variance_is_exact(grid):
    """The exact variance of the sampled distribution (all 2^24 equally likely points).

    Tolerance: each float32 constant is rounded once (relative 2^-24 on the std, so
    1.2e-7 on the variance), erfinv is within 3e-7 relative (6e-7 on the variance),
    and the grid's midpoint rule misses the normal's tails beyond 5.42 std (~1e-7).
    2e-6 bounds their sum; a 1% error in the std moves the variance by 2e-2.
    """
    _, _, values, variance = grid
    x = values.astype(np.float64)
    assert abs(x.mean()) < 1e-12 * math.sqrt(variance)  # symmetric pairs cancel
    assert np.mean(x * x) == pytest.approx(variance, rel=2e-6)
