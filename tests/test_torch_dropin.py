"""fastinit.torch: drop-ins for torch.nn.init, and init_module for whole models.

- Distribution: each drop-in samples torch.nn.init's distribution, with the std /
  bound that torch computes (fans and gains taken from torch itself here). Moments are
  checked against that formula on both fastinit's and torch's own samples, with
  thresholds from n that can see a 1% std error; a two-sample KS test compares
  fastinit's sample with torch's output of the same call.
- Arguments: the same exceptions and messages as torch.nn.init.
- Seeds: seed= gives fastinit's sampler bits; without it torch's RNG decides.
- Tensors: returned as given, filled in place, dtypes, views, Parameters, meta.
- init_module: every tensor, torch's reset_parameters semantics, reproducible and
  independent of construction order and of device.

Every random draw uses a fixed seed (fastinit's or torch.manual_seed).
"""

from __future__ import annotations

import ast
import functools
import math
import os
import typing
import warnings

import fastinit as fi
import numpy as np
import pytest
from _shared import torch_dtypes
from scipy import stats

torch = pytest.importorskip("torch")
ft = pytest.importorskip("fastinit.torch")
nn = torch.nn
torch_init = torch.nn.init

SEED = 20240614
TORCH_SEED = 1234
DTYPES = torch_dtypes()
SQRT5 = math.sqrt(5)

# ---------------------------------------------------------------------------
# Statistics (the conventions of test_distributions.py)
# ---------------------------------------------------------------------------

SE_THRESHOLD = 6.0  # standard errors
STD_ERROR = 1.01  # the moment test must reject a 1% larger std
KS_P_MIN = 1e-4
KS_T = math.sqrt(math.log(2 / KS_P_MIN) / 2)  # sqrt(n_eff) D with asymptotic p = KS_P_MIN
# Two-sample KS of N_KS values from each side, n_eff = N_KS / 2: sqrt(n_eff) D of two
# draws from one distribution exceeds KS_T with probability ~KS_P_MIN. Had fastinit's
# std been off by KS_STD_ERROR, the triangle inequality bounds the observed D below by
# D_wrong minus the two one-sample deviations, each of which exceeds KS_T / sqrt(N_KS)
# = KS_T / (sqrt(2) sqrt(n_eff)) with probability ~KS_P_MIN only, so
# sqrt(n_eff) D_wrong > (1 + sqrt(2)) KS_T guarantees a rejection; each test asserts it.
# A two-sample test that saw a 1% std error would need ~10^7 values a side: that
# sensitivity comes from the moment test (1 << 20 values), the KS test guards the shape.
KS_STD_ERROR = 1.05
N = 1 << 20
N_KS = 1 << 19
DENSE = (512, 2048)  # fan_in 2048, fan_out 512
CONV = (256, 64, 8, 8)  # fan_in 4096, fan_out 16384


def central_moments(dist):
    mean, var, excess_kurtosis = (float(v) for v in dist.stats(moments="mvk"))
    return mean, var, (excess_kurtosis + 3.0) * var**2


def with_wider_std(dist, factor):
    """The same family about the same centre with its spread times factor."""
    loc, scale = dist.kwds.get("loc", 0.0), dist.kwds.get("scale", 1.0)
    if dist.dist.name == "uniform":
        centre = loc + scale / 2
        return stats.uniform(loc=centre - factor * scale / 2, scale=factor * scale)
    return dist.dist(*dist.args, loc=loc, scale=factor * scale)


def assert_moments(x, dist):
    """Mean and variance of x within SE_THRESHOLD standard errors of dist's; the same
    sample rejects a 1% larger std."""
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    mean, var, mu4 = central_moments(dist)
    se_mean, se_var = math.sqrt(var / n), math.sqrt((mu4 - var**2) / n)
    assert 0.02 * var > SE_THRESHOLD * se_var, f"n = {n} cannot see a 1% error in the std"
    assert abs(x.mean() - mean) < SE_THRESHOLD * se_mean, (x.mean(), mean, se_mean)
    assert abs(x.var() - var) < SE_THRESHOLD * se_var, (x.var(), var, se_var)
    _, wrong_var, wrong_mu4 = central_moments(with_wider_std(dist, STD_ERROR))
    wrong_se = math.sqrt((wrong_mu4 - wrong_var**2) / n)
    assert abs(x.var() - wrong_var) > SE_THRESHOLD * wrong_se, (x.var(), wrong_var)


def ks_statistic(x, y):
    """sup |F_x - F_y| of two samples (ties included), as scipy.stats.ks_2samp computes
    it, on float32 values (which both samplers produce): twice as fast."""
    x, y = np.sort(x), np.sort(y)
    z = np.concatenate([x, y])
    fx = np.searchsorted(x, z, side="right") / x.size
    fy = np.searchsorted(y, z, side="right") / y.size
    return float(np.max(np.abs(fx - fy)))


def assert_same_distribution(ours, theirs, dist):
    """Two-sample KS of ours against torch's sample, with asserted power (above)."""
    n, m = ours.size, theirs.size
    root = math.sqrt(n * m / (n + m))
    wrong = with_wider_std(dist, KS_STD_ERROR)
    lo, hi = (float(v) for v in wrong.ppf([1e-9, 1 - 1e-9]))
    grid = np.linspace(lo, hi, 20_001)
    d_wrong = float(np.max(np.abs(dist.cdf(grid) - wrong.cdf(grid))))
    assert root * d_wrong > (1 + math.sqrt(2)) * KS_T, "the KS test cannot see the std error"
    d = ks_statistic(ours, theirs)
    assert root * d < KS_T, (d, KS_T / root)


def test_ks_statistic_is_scipys():
    rng = np.random.default_rng(7)
    x = rng.standard_normal(3000).astype(np.float32)
    y = (1.1 * rng.standard_normal(2000)).astype(np.float32).round(2)  # with ties
    for a, b in ((x, y), (y, x), (x, x[:1000])):
        expected = stats.ks_2samp(a.astype(np.float64), b.astype(np.float64)).statistic
        assert ks_statistic(a, b) == pytest.approx(expected, abs=1e-12)


def torch_fans(shape):
    return torch_init._calculate_fan_in_and_fan_out(torch.empty(shape, device="meta"))


def kaiming_std(shape, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    fan_in, fan_out = torch_fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return torch_init.calculate_gain(nonlinearity, a) / math.sqrt(fan)


def xavier_std(shape, gain=1.0):
    fan_in, fan_out = torch_fans(shape)
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


def centred_uniform(std):
    bound = math.sqrt(3.0) * std
    return stats.uniform(loc=-bound, scale=2 * bound)


def truncnorm_abs(mean, std, a, b):
    return stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)


# id: (function, shape, common kwargs, fastinit-only kwargs, torch-only kwargs, distribution)
DISTRIBUTION_CASES = {
    "uniform": (
        "uniform_",
        (N,),
        {"a": -0.3, "b": 1.9},
        {},
        {},
        stats.uniform(loc=-0.3, scale=2.2),
    ),
    "normal": ("normal_", (N,), {"mean": 0.5, "std": 0.2}, {}, {}, stats.norm(loc=0.5, scale=0.2)),
    "trunc_normal-absolute": (
        "trunc_normal_",
        (N,),
        {"mean": 0.1, "std": 0.5, "a": -0.6, "b": 1.2},
        {},
        {},
        truncnorm_abs(0.1, 0.5, -0.6, 1.2),
    ),
    # The ViT idiom: a, b = -2, 2 are absolute, so std=0.02 is cut at +-100 sigma.
    "trunc_normal-vit": (
        "trunc_normal_",
        (N,),
        {"std": 0.02},
        {},
        {},
        truncnorm_abs(0.0, 0.02, -2.0, 2.0),
    ),
    "trunc_normal-sigma-units": (
        "trunc_normal_",
        (N,),
        {"mean": 0.2, "std": 0.5},
        {"lower": -1.0, "upper": 2.5},
        {"a": 0.2 - 1.0 * 0.5, "b": 0.2 + 2.5 * 0.5},
        stats.truncnorm(-1.0, 2.5, loc=0.2, scale=0.5),
    ),
    "trunc_normal-lower-only": (
        "trunc_normal_",
        (N,),
        {"mean": -1.0, "std": 2.0},
        {"lower": -1.5},
        {"a": -1.0 - 1.5 * 2.0, "b": -1.0 + 2.0 * 2.0},  # upper defaults to 2 sigma
        stats.truncnorm(-1.5, 2.0, loc=-1.0, scale=2.0),
    ),
    "xavier_uniform-tanh-gain": (
        "xavier_uniform_",
        DENSE,
        {"gain": 5 / 3},
        {},
        {},
        centred_uniform(xavier_std(DENSE, 5 / 3)),
    ),
    "xavier_normal": (
        "xavier_normal_",
        CONV,
        {"gain": 0.7},
        {},
        {},
        stats.norm(loc=0.0, scale=xavier_std(CONV, 0.7)),
    ),
    "kaiming_uniform-default": (
        "kaiming_uniform_",
        CONV,
        {},
        {},
        {},
        centred_uniform(kaiming_std(CONV)),
    ),
    "kaiming_uniform-fan_in-relu": (
        "kaiming_uniform_",
        DENSE,
        {"mode": "fan_in", "nonlinearity": "relu"},
        {},
        {},
        centred_uniform(kaiming_std(DENSE, 0, "fan_in", "relu")),
    ),
    "kaiming_uniform-fan_out-leaky_relu": (
        "kaiming_uniform_",
        DENSE,
        {"a": 0.2, "mode": "fan_out", "nonlinearity": "leaky_relu"},
        {},
        {},
        centred_uniform(kaiming_std(DENSE, 0.2, "fan_out", "leaky_relu")),
    ),
    "kaiming_uniform-fan_out-tanh": (
        "kaiming_uniform_",
        CONV,
        {"mode": "fan_out", "nonlinearity": "tanh"},
        {},
        {},
        centred_uniform(kaiming_std(CONV, 0, "fan_out", "tanh")),
    ),
    "kaiming_normal-fan_out-relu": (
        "kaiming_normal_",
        DENSE,
        {"mode": "fan_out", "nonlinearity": "relu"},
        {},
        {},
        stats.norm(loc=0.0, scale=kaiming_std(DENSE, 0, "fan_out", "relu")),
    ),
    "kaiming_normal-fan_in-leaky_relu": (
        "kaiming_normal_",
        CONV,
        {"a": 0.1},
        {},
        {},
        stats.norm(loc=0.0, scale=kaiming_std(CONV, 0.1)),
    ),
}


def test_modes_and_gains_of_the_cases_differ():
    # Guards the table: a mode or nonlinearity that did not matter would test nothing.
    assert torch_fans(DENSE) == (2048, 512) and torch_fans(CONV) == (4096, 16384)
    pairs = [(m, n) for m in ("fan_in", "fan_out") for n in ("relu", "tanh")]
    assert len({kaiming_std(DENSE, 0, m, n) for m, n in pairs}) == 4


@pytest.mark.parametrize("case", sorted(DISTRIBUTION_CASES))
def test_dropin_samples_torchs_distribution(case):
    name, shape, common, ours_only, torch_only, dist = DISTRIBUTION_CASES[case]
    assert math.prod(shape) == N
    ours = getattr(ft, name)(torch.empty(shape), **common, **ours_only, seed=SEED)
    torch.manual_seed(TORCH_SEED)
    theirs = getattr(torch_init, name)(torch.empty(shape), **common, **torch_only)
    ours, theirs = ours.numpy().ravel(), theirs.numpy().ravel()

    # The formula is torch's: torch's own sample passes the same moment test.
    assert_moments(theirs, dist)
    assert_moments(ours, dist)
    # The first N_KS values of each are samples of N_KS as well.
    assert_same_distribution(ours[:N_KS], theirs[:N_KS], dist)
    lo, hi = dist.support()
    if math.isfinite(lo):  # uniform / truncated: inside the support (in float32)
        assert ours.min() >= np.float32(lo) and ours.max() <= np.float32(hi)


ORTHO_SHAPES = [(64, 64), (32, 100), (100, 32), (16, 8, 3, 3)]


@pytest.mark.parametrize("gain", [1.0, 1.7])
@pytest.mark.parametrize("shape", ORTHO_SHAPES, ids=str)
def test_orthogonal_is_orthonormal_times_gain(shape, gain):
    w = ft.orthogonal_(torch.empty(shape), gain=gain, seed=SEED)
    m = w.reshape(shape[0], -1).double()
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    eye = torch.eye(gram.shape[0], dtype=torch.float64)
    torch.testing.assert_close(gram, gain**2 * eye, rtol=0, atol=1e-5 * gain**2)
    # The larger side of a rectangular matrix is not orthonormal (the check can fail).
    if m.shape[0] != m.shape[1]:
        big = m.T @ m if m.shape[0] < m.shape[1] else m @ m.T
        assert not torch.allclose(big, gain**2 * torch.eye(big.shape[0], dtype=torch.float64))


# ---------------------------------------------------------------------------
# Argument checks: torch's exceptions and messages
# ---------------------------------------------------------------------------

ARGUMENT_CASES = {
    "kaiming_uniform-fan_avg": ("kaiming_uniform_", (4, 5), {"mode": "fan_avg"}),
    "kaiming_normal-fan_avg": ("kaiming_normal_", (4, 5), {"mode": "fan_avg"}),
    "kaiming_uniform-swish": ("kaiming_uniform_", (4, 5), {"nonlinearity": "swish"}),
    "kaiming_normal-swish": ("kaiming_normal_", (4, 5), {"nonlinearity": "swish"}),
    "kaiming_uniform-bad-slope": ("kaiming_uniform_", (4, 5), {"a": "x"}),
    "kaiming_uniform-1d": ("kaiming_uniform_", (5,), {}),
    "kaiming_normal-1d": ("kaiming_normal_", (5,), {}),
    "kaiming_normal-0d": ("kaiming_normal_", (), {}),
    "xavier_uniform-1d": ("xavier_uniform_", (5,), {}),
    "xavier_normal-1d": ("xavier_normal_", (5,), {}),
    "xavier_uniform-0d": ("xavier_uniform_", (), {}),
    "orthogonal-1d": ("orthogonal_", (5,), {}),
    "orthogonal-0d": ("orthogonal_", (), {}),
    "eye-3d": ("eye_", (2, 2, 2), {}),
    "dirac-2d": ("dirac_", (4, 4), {}),
    "dirac-groups": ("dirac_", (3, 2, 3), {"groups": 2}),
}


@pytest.mark.parametrize("case", sorted(ARGUMENT_CASES))
def test_argument_errors_are_torchs(case):
    name, shape, kwargs = ARGUMENT_CASES[case]
    errors = []
    for module in (torch_init, ft):
        t = torch.full(shape, math.nan)
        state = torch.get_rng_state()
        with pytest.raises(Exception) as info:
            getattr(module, name)(t, **kwargs)
        errors.append(info.value)
        assert torch.isnan(t).all()  # nothing written
        assert torch.equal(torch.get_rng_state(), state)  # nothing drawn
    theirs, ours = errors
    assert type(ours) is type(theirs)
    assert str(ours) == str(theirs)


def test_calculate_gain_is_torchs():
    for nonlinearity in ("linear", "sigmoid", "tanh", "relu", "selu", "conv2d"):
        assert ft.calculate_gain(nonlinearity) == torch_init.calculate_gain(nonlinearity)
    assert ft.calculate_gain("leaky_relu", 0.2) == torch_init.calculate_gain("leaky_relu", 0.2)


# ---------------------------------------------------------------------------
# nn.Linear's default
# ---------------------------------------------------------------------------


def test_kaiming_uniform_sqrt5_is_nn_linears_bound():
    fan_in, fan_out = 512, 256
    bound = 1 / math.sqrt(fan_in)
    # torch's formula for a = sqrt(5) is exactly nn.Linear's documented bound.
    gain = torch_init.calculate_gain("leaky_relu", SQRT5)
    assert math.sqrt(3.0) * gain / math.sqrt(fan_in) == pytest.approx(bound, rel=1e-15)

    n = fan_in * fan_out
    eps = 20.0 / n  # P(max |w| < (1 - eps) bound) = (1 - eps)^n < 3e-9
    torch.manual_seed(TORCH_SEED)
    reference = nn.Linear(fan_in, fan_out)  # torch's own reset_parameters
    layer = nn.Linear(fan_in, fan_out)
    assert ft.kaiming_uniform_(layer.weight, a=SQRT5, seed=SEED) is layer.weight
    for w in (reference.weight, layer.weight):
        top = w.detach().abs().max().item()
        assert (1 - eps) * bound < top <= bound
        assert 0.99 * bound < top
    # Not torch's values: fastinit's own.
    assert not torch.equal(reference.weight, layer.weight)


# ---------------------------------------------------------------------------
# Seeds and generators
# ---------------------------------------------------------------------------

SHAPE = (24, 40)
CONV_SHAPE = (8, 4, 3, 3)


def _variance(distribution, scale, mode):
    return functools.partial(fi.variance_scaling, scale=scale, mode=mode, distribution=distribution)


# id: (drop-in call (tensor, **keys), fastinit sampler (shape, seed, **keys), exact)
# "exact": the same bits. Otherwise the parameters agree up to rounding of the formula
# (torch's sqrt(3) gain sqrt(2 / (fi + fo)) against sqrt(3 scale / n)): one float32 step.
SEEDED = {
    "normal": (
        lambda t, **k: ft.normal_(t, 0.1, 0.5, **k),
        lambda s, seed, **k: fi.normal(s, seed, mean=0.1, std=0.5, **k),
        True,
    ),
    "uniform": (
        lambda t, **k: ft.uniform_(t, -1.0, 2.0, **k),
        lambda s, seed, **k: fi.uniform(s, seed, low=-1.0, high=2.0, **k),
        True,
    ),
    "trunc_normal-absolute": (
        lambda t, **k: ft.trunc_normal_(t, 0.1, 0.5, -0.5, 1.0, **k),
        lambda s, seed, **k: fi.truncated_normal(s, seed, mean=0.1, std=0.5, a=-0.5, b=1.0, **k),
        True,
    ),
    "trunc_normal-sigma": (
        lambda t, **k: ft.trunc_normal_(t, 0.0, 2.0, lower=-1.0, upper=3.0, **k),
        lambda s, seed, **k: fi.truncated_normal(s, seed, std=2.0, lower=-1.0, upper=3.0, **k),
        True,
    ),
    "orthogonal": (
        lambda t, **k: ft.orthogonal_(t, 1.5, **k),
        lambda s, seed, **k: fi.orthogonal(s, seed, 1.5, **k),
        True,
    ),
    "xavier_uniform": (
        lambda t, **k: ft.xavier_uniform_(t, 2.0, **k),
        lambda s, seed, **k: fi.glorot_uniform(s, seed, gain=2.0, **k),
        False,
    ),
    "xavier_normal": (
        lambda t, **k: ft.xavier_normal_(t, 0.5, **k),
        lambda s, seed, **k: fi.glorot_normal(s, seed, gain=0.5, distribution="normal", **k),
        False,
    ),
    "kaiming_uniform": (
        lambda t, **k: ft.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu", **k),
        lambda s, seed, **k: _variance("uniform", 2.0, "fan_out")(s, seed, **k),
        False,
    ),
    "kaiming_normal": (
        lambda t, **k: ft.kaiming_normal_(t, a=0.1, **k),
        lambda s, seed, **k: _variance(
            "normal", torch_init.calculate_gain("leaky_relu", 0.1) ** 2, "fan_in"
        )(s, seed, **k),
        False,
    ),
}
STRUCTURED = {
    "constant": (lambda t: ft.constant_(t, 0.3), lambda s, **k: fi.constant(s, 0.3, **k)),
    "ones": (ft.ones_, fi.ones),
    "zeros": (ft.zeros_, fi.zeros),
    "eye": (ft.eye_, fi.eye),
    "dirac": (lambda t: ft.dirac_(t, 2), lambda s, **k: fi.dirac(s, 2, **k)),
}
STRUCTURED_SHAPES = {"eye": SHAPE, "dirac": CONV_SHAPE}
RANDOM_DROPINS = {
    "uniform_": ft.uniform_,
    "normal_": ft.normal_,
    "trunc_normal_": ft.trunc_normal_,
    "xavier_uniform_": ft.xavier_uniform_,
    "xavier_normal_": ft.xavier_normal_,
    "kaiming_uniform_": ft.kaiming_uniform_,
    "kaiming_normal_": ft.kaiming_normal_,
    "orthogonal_": ft.orthogonal_,
}


def assert_same_values(got, expected, exact):
    got = torch.as_tensor(got).double()
    expected = torch.as_tensor(expected).double()
    if exact:
        assert torch.equal(got, expected)
    else:
        torch.testing.assert_close(got, expected, rtol=2.0**-23, atol=0)


@pytest.mark.parametrize("shape", [SHAPE, CONV_SHAPE], ids=str)
@pytest.mark.parametrize("case", sorted(SEEDED))
def test_seed_gives_fastinits_sampler_bits(case, shape):
    dropin, sampler, exact = SEEDED[case]
    for stream in (0, 7, "w"):
        got = dropin(torch.empty(shape), seed=3, stream=stream)
        assert_same_values(got, torch.from_numpy(sampler(shape, 3, stream=stream)), exact)
    # Default stream is 0; seed and stream both matter.
    base = dropin(torch.empty(shape), seed=3)
    assert torch.equal(base, dropin(torch.empty(shape), seed=3, stream=0))
    assert not torch.equal(base, dropin(torch.empty(shape), seed=4))
    assert not torch.equal(base, dropin(torch.empty(shape), seed=3, stream=1))


def test_normal_seed_and_stream_name_equal_fastinit_normal():
    t = ft.normal_(torch.empty(SHAPE), 0, 0.5, seed=3, stream="w")
    assert np.array_equal(t.numpy(), fi.normal(SHAPE, 3, std=0.5, stream="w"))
    assert np.array_equal(t.numpy(), fi.normal(SHAPE, 3, std=0.5, stream=fi.stream_id("w")))


@pytest.mark.parametrize("case", sorted(STRUCTURED))
def test_structured_dropins_equal_fastinit_and_torch(case):
    dropin, sampler = STRUCTURED[case]
    shape = STRUCTURED_SHAPES.get(case, SHAPE)
    got = dropin(torch.full(shape, math.nan))
    assert torch.equal(got, torch.from_numpy(sampler(shape)))
    reference = {
        "constant": lambda t: torch_init.constant_(t, 0.3),
        "ones": torch_init.ones_,
        "zeros": torch_init.zeros_,
        "eye": torch_init.eye_,
        "dirac": lambda t: torch_init.dirac_(t, 2),
    }[case](torch.empty(shape))
    assert torch.equal(got, reference)
    # seed / stream / generator are accepted and change nothing.
    for keys in ({"seed": 5}, {"stream": "x"}, {"generator": torch.Generator()}):
        fn = getattr(ft, case + "_")
        args = {"constant": (0.3,), "dirac": (2,)}.get(case, ())
        assert torch.equal(fn(torch.empty(shape), *args, **keys), got)


@pytest.mark.parametrize("name", sorted(RANDOM_DROPINS))
def test_without_seed_torch_manual_seed_decides(name):
    fn = RANDOM_DROPINS[name]
    torch.manual_seed(TORCH_SEED)
    first = fn(torch.empty(SHAPE)).clone()
    second = fn(torch.empty(SHAPE)).clone()
    torch.manual_seed(TORCH_SEED)
    again = fn(torch.empty(SHAPE))
    assert torch.equal(first, again)
    assert not torch.equal(first, second)  # each call advances the generator
    # The seed is one draw of torch.randint(0, 2**63 - 1) on the default generator.
    torch.manual_seed(TORCH_SEED)
    drawn = int(torch.randint(0, 2**63 - 1, ()).item())
    assert torch.equal(first, fn(torch.empty(SHAPE), seed=drawn))


@pytest.mark.parametrize("name", sorted(RANDOM_DROPINS))
def test_generator_argument(name):
    fn = RANDOM_DROPINS[name]
    state = torch.get_rng_state()
    a = fn(torch.empty(SHAPE), generator=torch.Generator().manual_seed(5))
    b = fn(torch.empty(SHAPE), generator=torch.Generator().manual_seed(5))
    c = fn(torch.empty(SHAPE), generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.get_rng_state(), state)  # the default generator is untouched
    # generator= is the same draw as the default generator with the same seed.
    torch.manual_seed(5)
    assert torch.equal(a, fn(torch.empty(SHAPE)))
    t = torch.full(SHAPE, math.nan)
    with pytest.raises(ValueError, match="seed or generator"):
        fn(t, seed=1, generator=torch.Generator())
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        fn(t, generator=np.random.default_rng(0))
    assert torch.isnan(t).all()


# ---------------------------------------------------------------------------
# The tensor: returned, in place, dtypes, grads, views, empty, meta
# ---------------------------------------------------------------------------

ALL_DROPINS = {
    **RANDOM_DROPINS,
    "constant_": lambda t, **k: ft.constant_(t, 0.25, **k),
    "ones_": lambda t, **k: ft.ones_(t, **k),
    "zeros_": lambda t, **k: ft.zeros_(t, **k),
    "eye_": lambda t, **k: ft.eye_(t, **k),
    "dirac_": lambda t, **k: ft.dirac_(t, **k),
}
DROPIN_SHAPES = {"dirac_": CONV_SHAPE}


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("name", sorted(ALL_DROPINS))
def test_every_dropin_returns_its_tensor_filled_in_place(name, dtype):
    shape = DROPIN_SHAPES.get(name, SHAPE)
    t = torch.full(shape, math.nan, dtype=DTYPES[dtype])
    pointer = t.data_ptr()
    assert ALL_DROPINS[name](t, seed=9) is t
    assert t.data_ptr() == pointer and t.dtype == DTYPES[dtype]
    assert torch.isfinite(t).all()
    # Bit-equal to fastinit's sampler of that dtype (checked for the plain samplers).
    if name in ("uniform_", "normal_"):
        sampler = fi.uniform if name == "uniform_" else fi.normal
        expected = sampler(shape, 9, dtype=dtype)
        got = t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])
        assert np.array_equal(
            got.numpy().view(f"u{t.element_size()}"),
            expected.view(f"u{t.element_size()}"),
        )


# Only the random drop-ins: torch.nn.init's constant_ / ones_ / zeros_ / eye_ / dirac_
# do fill integer tensors, and whether fastinit's should is not settled here.
@pytest.mark.parametrize("name", sorted(RANDOM_DROPINS))
def test_integer_tensor_is_a_type_error(name):
    t = torch.zeros(SHAPE, dtype=torch.int64)
    with pytest.raises(TypeError, match="dtype torch.int64"):
        RANDOM_DROPINS[name](t, seed=1)
    assert not t.any()


@pytest.mark.parametrize("name", sorted(ALL_DROPINS))
def test_parameter_and_no_grad(name):
    shape = DROPIN_SHAPES.get(name, SHAPE)
    p = nn.Parameter(torch.full(shape, math.nan))
    assert ALL_DROPINS[name](p, seed=2) is p
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert torch.isfinite(p).all()
    values = p.detach().clone()
    with torch.no_grad():
        q = nn.Parameter(torch.full(shape, math.nan))
        assert ALL_DROPINS[name](q, seed=2) is q
    assert q.requires_grad and q.grad_fn is None
    assert torch.equal(q.detach(), values)
    # A parameter is usable afterwards: gradients flow into it.
    (p * 2).sum().backward()
    assert torch.equal(p.grad, torch.full(shape, 2.0))


NON_CONTIGUOUS = {
    "transposed": (lambda: torch.full((40, 24), math.nan), lambda b: b.T),
    "strided": (lambda: torch.full((24, 80), math.nan), lambda b: b[:, ::2]),
    "channels_last": (
        lambda: torch.full(CONV_SHAPE, math.nan).to(memory_format=torch.channels_last),
        lambda b: b,
    ),
}


@pytest.mark.parametrize("name", ["normal_", "uniform_", "orthogonal_", "xavier_uniform_"])
@pytest.mark.parametrize("layout", sorted(NON_CONTIGUOUS))
def test_non_contiguous_tensor_is_filled_in_logical_order(layout, name):
    make_base, view = NON_CONTIGUOUS[layout]
    base = make_base()
    w = view(base)
    assert not w.is_contiguous()
    pointer = w.data_ptr()
    fn = ALL_DROPINS[name]
    assert fn(w, seed=4) is w
    assert w.data_ptr() == pointer  # filled in place, not replaced
    # Element i is element i of the logical row-major order of the tensor passed.
    contiguous = fn(torch.empty(tuple(w.shape)), seed=4)
    assert torch.equal(w, contiguous)
    if layout == "transposed":
        assert torch.equal(base, contiguous.T)
    elif layout == "strided":  # the skipped columns are untouched
        assert torch.isnan(base[:, 1::2]).all()
    else:
        assert torch.isfinite(base).all()


@pytest.mark.parametrize("name", ["kaiming_uniform_", "kaiming_normal_"])
def test_kaiming_warns_on_zero_element_tensors_like_torch(name):
    for module in (torch_init, ft):
        t = torch.empty(0, 5)
        state = torch.get_rng_state()
        with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
            assert getattr(module, name)(t) is t
        assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", sorted(ALL_DROPINS))
def test_zero_rows_are_a_no_op(name):
    if name == "dirac_":
        shape = (0, 4, 3)
    else:
        shape = (0, 5)
    t = torch.empty(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # kaiming's warning, tested above
        assert ALL_DROPINS[name](t, seed=1) is t


@pytest.mark.parametrize("name", ["normal_", "uniform_", "xavier_uniform_", "zeros_"])
def test_zero_columns_are_a_no_op(name):
    t = torch.empty(5, 0)
    assert ALL_DROPINS[name](t, seed=1) is t


@pytest.mark.parametrize("name", sorted(ALL_DROPINS))
def test_meta_tensor_is_left_alone(name):
    shape = DROPIN_SHAPES.get(name, SHAPE)
    t = torch.empty(shape, device="meta")
    assert ALL_DROPINS[name](t, seed=1) is t
    assert t.device.type == "meta" and tuple(t.shape) == shape
    # Without a seed as well (torch's RNG is only consulted, never applied to meta).
    assert ALL_DROPINS[name](t) is t


# ---------------------------------------------------------------------------
# init_module
# ---------------------------------------------------------------------------

LAYERS = {
    "emb": lambda: nn.Embedding(1000, 32, padding_idx=3),
    "norm": lambda: nn.LayerNorm(32),
    "fc": lambda: nn.Linear(32, 48),
    "conv1": lambda: nn.Conv1d(4, 8, 5),
    "conv2": lambda: nn.Conv2d(8, 16, 3),
    "bn": lambda: nn.BatchNorm2d(16),
    "mha": lambda: nn.MultiheadAttention(32, 4),
    "lstm": lambda: nn.LSTM(32, 24),
    "rms": lambda: nn.RMSNorm(32),
    "enc": lambda: nn.TransformerEncoderLayer(32, 4, dim_feedforward=64),
}


def build(order=tuple(LAYERS), device="cpu"):
    model = nn.Module()
    with torch.device(device):
        for name in order:
            setattr(model, name, LAYERS[name]())
    return model


def poisoned(model):
    """Every parameter and buffer set to NaN (integers: -1)."""
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            t.fill_(math.nan if t.is_floating_point() else -1)
    return model


def state(model):
    return {name: t.detach().clone() for name, t in model.state_dict().items()}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert torch.equal(a[name], b[name]), name


@pytest.fixture(scope="module")
def reference_state():
    """The default init_module of the CPU model, poisoned first."""
    model = poisoned(build())
    assert ft.init_module(model, SEED) is model
    return state(model)


def _ones(t, **_):
    return ft.ones_(t)


def _zeros(t, **_):
    return ft.zeros_(t) if t.is_floating_point() else t.zero_()


def _linear_weight(t, **keys):
    return ft.kaiming_uniform_(t, a=SQRT5, **keys)


def _bias(fan_in):
    bound = 1 / math.sqrt(fan_in)
    return lambda t, **keys: ft.uniform_(t, -bound, bound, **keys)


def _embedding(t, **keys):
    ft.normal_(t, **keys)
    t[3] = 0
    return t


def _attention(prefix):
    return {
        f"{prefix}in_proj_weight": lambda t, **k: ft.xavier_uniform_(t, **k),
        f"{prefix}in_proj_bias": _zeros,
        f"{prefix}out_proj.weight": _linear_weight,
        f"{prefix}out_proj.bias": _zeros,
    }


# torch's reset_parameters of each layer, spelled with fastinit.torch's drop-ins.
EXPECTED_RULES = {
    "emb.weight": _embedding,
    "norm.weight": _ones,
    "norm.bias": _zeros,
    "fc.weight": _linear_weight,
    "fc.bias": _bias(32),
    "conv1.weight": _linear_weight,
    "conv1.bias": _bias(4 * 5),
    "conv2.weight": _linear_weight,
    "conv2.bias": _bias(8 * 3 * 3),
    "bn.weight": _ones,
    "bn.bias": _zeros,
    "bn.running_mean": _zeros,
    "bn.running_var": _ones,
    "bn.num_batches_tracked": _zeros,
    **_attention("mha."),
    **{
        f"lstm.{kind}_{part}_l0": _bias(24)  # uniform(-1/sqrt(hidden), 1/sqrt(hidden))
        for kind in ("weight", "bias")
        for part in ("ih", "hh")
    },
    "rms.weight": _ones,
    **_attention("enc.self_attn."),
    "enc.linear1.weight": _linear_weight,
    "enc.linear1.bias": _bias(32),
    "enc.linear2.weight": _linear_weight,
    "enc.linear2.bias": _bias(64),
    "enc.norm1.weight": _ones,
    "enc.norm1.bias": _zeros,
    "enc.norm2.weight": _ones,
    "enc.norm2.bias": _zeros,
}


def test_init_module_touches_every_tensor(reference_state):
    for name, t in reference_state.items():
        if t.is_floating_point():
            assert not torch.isnan(t).any(), name
        else:
            assert not (t == -1).any(), name
    assert set(reference_state) == set(EXPECTED_RULES)


def test_init_module_materializes_a_meta_model(reference_state):
    model = build(device="meta")
    assert all(t.device.type == "meta" for t in model.state_dict().values())
    assert ft.init_module(model, SEED) is model
    for t in [*model.parameters(), *model.buffers()]:
        assert t.device.type == "cpu"
    assert all(isinstance(p, nn.Parameter) for p in model.parameters())
    assert_same_state(state(model), reference_state)
    # The LSTM's flat weights follow the new parameters: same output as the CPU model.
    cpu = ft.init_module(build(), SEED)
    x = torch.randn(3, 2, 32, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.lstm(x)[0], cpu.lstm(x)[0])


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")], ids=["str", "torch.device"])
def test_init_module_device_argument(device, reference_state):
    model = ft.init_module(build(device="meta"), SEED, device=device)
    assert all(t.device.type == "cpu" for t in model.state_dict().values())
    assert_same_state(state(model), reference_state)


def test_init_module_is_reproducible_and_seeded(reference_state):
    assert_same_state(state(ft.init_module(poisoned(build()), SEED)), reference_state)
    other = state(ft.init_module(build(), SEED + 1))
    assert not torch.equal(other["fc.weight"], reference_state["fc.weight"])


def test_init_module_does_not_depend_on_construction_order(reference_state):
    order = tuple(reversed(LAYERS))
    torch.manual_seed(99)  # and not on torch's RNG either
    model = build(order, device="meta")
    assert [name for name, _ in model.named_children()] == list(order)
    assert_same_state(state(ft.init_module(model, SEED)), reference_state)


def test_init_module_equals_explicit_calls_per_tensor(reference_state):
    for name, value in reference_state.items():
        expected = EXPECTED_RULES[name](
            torch.full_like(value, math.nan if value.is_floating_point() else -1),
            seed=SEED,
            stream=fi.stream_id(name),
        )
        assert torch.equal(value, expected), name


def test_init_module_follows_torchs_reset_parameters(reference_state):
    torch.manual_seed(TORCH_SEED)
    torch_state = state(build())  # torch's own initialization
    ours = reference_state
    assert ours.keys() == torch_state.keys()
    # Deterministic tensors: exactly torch's.
    for name in ours:
        if EXPECTED_RULES[name] in (_ones, _zeros):
            assert torch.equal(ours[name], torch_state[name]), name
    assert ours["bn.num_batches_tracked"].dtype == torch.int64
    assert ours["bn.num_batches_tracked"].item() == 0
    assert not ours["emb.weight"][3].any() and not torch_state["emb.weight"][3].any()
    # Uniform tensors: inside torch's bound, reaching near it for the big ones.
    bounds = {
        "fc.weight": 1 / math.sqrt(32),
        "fc.bias": 1 / math.sqrt(32),
        "conv1.weight": 1 / math.sqrt(20),
        "conv2.weight": 1 / math.sqrt(72),
        "conv2.bias": 1 / math.sqrt(72),
        "lstm.weight_ih_l0": 1 / math.sqrt(24),
        "lstm.weight_hh_l0": 1 / math.sqrt(24),
        "lstm.bias_ih_l0": 1 / math.sqrt(24),
        "enc.linear2.weight": 1 / math.sqrt(64),
        "mha.in_proj_weight": math.sqrt(6 / (32 + 96)),
        "mha.out_proj.weight": 1 / math.sqrt(32),
    }
    for name, bound in bounds.items():
        n = ours[name].numel()
        for values in (ours[name], torch_state[name]):
            top = values.abs().max().item()
            assert top <= bound, name
            if n >= 1000:  # P(max < (1 - 20 / n) bound) < 3e-9
                assert top > (1 - 20 / n) * bound, name
    # Embedding: N(0, 1) away from the padding row.
    rows = torch.cat([ours["emb.weight"][:3], ours["emb.weight"][4:]]).double()
    n = rows.numel()
    assert abs(rows.mean().item()) < 6 / math.sqrt(n)
    assert abs(rows.std().item() - 1) < 6 / math.sqrt(2 * (n - 1))


def test_init_module_rule_overrides_defaults(reference_state):
    def rules(name, shape):
        if name.endswith("weight") and len(shape) == 2:
            return functools.partial(ft.normal_, std=0.02)
        return None

    seen = []

    def recording(name, shape):
        assert isinstance(shape, tuple)
        seen.append(name)
        return rules(name, shape)

    model = ft.init_module(poisoned(build()), SEED, rules=recording)
    assert sorted(seen) == sorted(reference_state)
    got = state(model)
    overridden = [name for name, t in got.items() if name.endswith("weight") and t.dim() == 2]
    assert {"emb.weight", "fc.weight", "enc.linear1.weight", "lstm.weight_ih_l0"} & set(
        overridden
    ) == {"emb.weight", "fc.weight", "enc.linear1.weight"}
    for name, value in got.items():
        if name in overridden:
            expected = ft.normal_(torch.empty_like(value), std=0.02, seed=SEED, stream=name)
            assert torch.equal(value, expected), name
            assert value.std().item() < 0.03
        else:
            assert torch.equal(value, reference_state[name]), name
    assert got["emb.weight"][3].any()  # the rule replaced the padding-row default too


class Rotary(nn.Module):
    """A custom module: a parameter and a computed buffer no default rule knows."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(16))
        self.register_buffer("inv_freq", torch.arange(0, 16, 2) / 16.0, persistent=False)
        self.proj = nn.Linear(16, 16)


def test_init_module_unknown_tensors_raise_before_materializing():
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(16, 16), Rotary())
    with pytest.raises(ValueError, match="no rule") as info:
        ft.init_module(model, SEED)
    message = str(info.value)
    assert "1.scale (16,) in Rotary" in message
    assert "1.inv_freq (8,) in Rotary" in message
    assert "0.weight" not in message and "1.proj" not in message
    assert all(t.device.type == "meta" for t in [*model.parameters(), *model.buffers()])

    # A rule for them makes it work.
    def rules(name, shape):
        return ft.ones_ if name in ("1.scale", "1.inv_freq") else None

    ft.init_module(model, SEED, rules=rules)
    assert torch.equal(model[1].scale, torch.ones(16))
    assert torch.equal(model[1].inv_freq, torch.ones(8))
    expected = _linear_weight(torch.empty(16, 16), seed=SEED, stream=fi.stream_id("1.proj.weight"))
    assert torch.equal(model[1].proj.weight, expected)


def test_init_module_rejects_bad_rules():
    with pytest.raises(TypeError, match="rules must be a callable"):
        ft.init_module(build(("fc",)), SEED, rules={"fc.weight": ft.zeros_})
    with pytest.raises(TypeError, match=r"rules\('fc.weight', ...\) returned float"):
        ft.init_module(build(("fc",)), SEED, rules=lambda name, shape: 0.5)


class TiedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(50, 16)
        self.body = nn.Linear(16, 16)
        self.lm_head = nn.Linear(16, 50, bias=False)
        self.lm_head.weight = self.embedding.weight


def _assert_tied_once(model):
    assert model.lm_head.weight is model.embedding.weight
    assert [name for name, _ in model.named_parameters()] == [
        "embedding.weight",
        "body.weight",
        "body.bias",
    ]
    # Initialized once, by the first name's rule (Embedding: N(0, 1)).
    expected = ft.normal_(torch.empty(50, 16), seed=SEED, stream=fi.stream_id("embedding.weight"))
    assert torch.equal(model.embedding.weight, expected)


def test_init_module_tied_weights():
    model = poisoned(TiedLM())
    ft.init_module(model, SEED)
    _assert_tied_once(model)


def test_init_module_tied_weights_on_meta():
    with torch.device("meta"):
        model = TiedLM()
    assert model.lm_head.weight is model.embedding.weight
    ft.init_module(model, SEED)
    _assert_tied_once(model)


def test_init_module_prefix_initializes_a_submodule_as_in_its_parent():
    parent = nn.Module()
    with torch.device("meta"):
        parent.fc = nn.Linear(8, 32)
        parent.enc = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64)
        alone = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64)
        unprefixed = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64)
    ft.init_module(parent, SEED)
    ft.init_module(alone, SEED, prefix="enc.")
    ft.init_module(unprefixed, SEED)
    assert_same_state(state(alone), state(parent.enc))
    assert not torch.equal(unprefixed.linear1.weight, alone.linear1.weight)
    with pytest.raises(TypeError, match="prefix must be a str"):
        ft.init_module(alone, SEED, prefix=1)


def test_init_module_rules_see_prefixed_names():
    seen = []

    def rule(name, shape):
        seen.append(name)
        return None

    ft.init_module(nn.Linear(3, 2), SEED, rules=rule, prefix="enc.")
    assert sorted(seen) == ["enc.bias", "enc.weight"]


def test_init_module_leaves_materialized_tensors_in_place():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    with torch.device("meta"):
        model[1] = nn.Linear(4, 4)
    before = model[0].weight.data_ptr()
    ft.init_module(model, SEED)
    assert model[0].weight.data_ptr() == before
    assert model[1].weight.device.type == "cpu"
    assert isinstance(model[1].weight, nn.Parameter) and model[1].weight.requires_grad


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_constant_fills_integer_tensors_like_torch(dtype):
    for ours, theirs in [
        (lambda t: ft.constant_(t, 3), lambda t: torch.nn.init.constant_(t, 3)),
        (ft.ones_, torch.nn.init.ones_),
        (ft.zeros_, torch.nn.init.zeros_),
        (ft.eye_, torch.nn.init.eye_),
    ]:
        a, b = torch.full((3, 4), 7).to(dtype), torch.full((3, 4), 7).to(dtype)
        assert ours(a) is a
        assert torch.equal(a, theirs(b))


def test_meta_tensor_takes_no_draw_from_the_generator():
    generator = torch.Generator().manual_seed(5)
    state = generator.get_state()
    ft.normal_(torch.empty(3, device="meta"), generator=generator)
    assert torch.equal(generator.get_state(), state)


def test_the_drop_ins_literal_types_list_torchs_and_fastinits_tables():
    """nn_init's Nonlinearity and FanMode (the Literals torch's stubs annotate with) name
    exactly torch's nonlinearities and modes, which are fastinit.fans' too."""
    assert typing.get_args(ft.nn_init.Nonlinearity) == typing.get_args(torch_init._NonlinearityType)
    assert set(typing.get_args(ft.nn_init.Nonlinearity)) == set(fi.fans.NONLINEARITIES)
    assert typing.get_args(ft.nn_init.FanMode) == typing.get_args(torch_init._FanMode)


def test_the_torch_package_reads_downwards():
    """init_module's modules -> nn_init (the drop-ins) -> _tensors -> _dtensor (a
    DTensor's shards): no module imports one above it, so a walk from init_module never
    returns to a file it left."""
    layers = ["modules", "nn_init", "_tensors", "_dtensor"]
    package = os.path.dirname(ft.__file__)
    for depth, name in enumerate(layers):
        with open(os.path.join(package, name + ".py")) as source:
            tree = ast.parse(source.read())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                imported.add(node.module)
        assert imported <= set(layers[depth + 1 :]), (name, imported)
