"""Parity with torch.nn.init (and the JAX/Keras fan rule) where fastinit promises it.

- fans: compute_fans == torch.nn.init._calculate_fan_in_and_fan_out for the torch layout;
  the JAX/Keras rule, written out here independently, for layout="jax" and explicit axes;
- calculate_gain == torch.nn.init.calculate_gain over torch's whole table;
- orthogonal: (semi-)orthonormal rows/columns times gain, deterministic, seed-dependent;
- identity / dirac: the same tensors as torch.nn.init.eye_ / dirac_;
- glorot / he: the std and bound that torch's xavier_normal_ / kaiming_uniform_ use.

Statistical checks use fixed seeds (fastinit's and torch.manual_seed) and thresholds set
in advance from the sample size.
"""

from __future__ import annotations

import itertools
import math

import fastinit as fi
import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch_init = torch.nn.init

SEED = 20240607

# --------------------------------------------------------------------------------------
# (a) fans
# --------------------------------------------------------------------------------------

TORCH_FAN_SHAPES = [
    (3, 5),
    (5, 3),
    (1, 1),
    (1, 7),
    (7, 1),
    (0, 3),
    (3, 0),
    (8, 4, 3),  # conv1d
    (8, 4, 1),
    (1, 1, 5),
    (16, 8, 3, 3),  # conv2d
    (16, 1, 3, 3),  # depthwise
    (1, 8, 1, 1),
    (16, 8, 1, 5),
    (4, 2, 3, 3, 3),  # conv3d
    (4, 2, 1, 1, 1),
    (4, 2, 1, 5, 1),
    (2, 3, 2, 2, 2, 2),  # more axes than any torch layer, same rule
]


@pytest.mark.parametrize("shape", TORCH_FAN_SHAPES, ids=str)
def test_fans_match_torch(shape):
    expected = torch_init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert fi.compute_fans(shape) == tuple(expected)
    assert fi.compute_fans(shape, layout="torch") == tuple(expected)


@pytest.mark.parametrize("shape", [(), (5,), (0,)], ids=str)
def test_fans_below_two_axes_are_an_error_in_both(shape):
    with pytest.raises(ValueError):
        torch_init._calculate_fan_in_and_fan_out(torch.empty(shape))
    with pytest.raises(ValueError, match="at least 2 axes"):
        fi.compute_fans(shape)


def keras_fans(shape):
    """Keras / jax.nn.initializers default: kernel (*receptive_field, in, out)."""
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


JAX_FAN_SHAPES = [
    (3, 5),
    (5, 3),
    (1, 7),
    (3, 8, 4),  # conv1d kernel (width, in, out)
    (3, 3, 8, 16),  # conv2d kernel (h, w, in, out)
    (1, 1, 8, 16),
    (3, 3, 1, 16),
    (2, 3, 3, 4, 5),  # conv3d
    (5, 1, 3, 4, 1),
]


@pytest.mark.parametrize("shape", JAX_FAN_SHAPES, ids=str)
@pytest.mark.parametrize("layout", ["jax", "keras"])
def test_fans_jax_layout_follow_keras_rule(shape, layout):
    assert fi.compute_fans(shape, layout=layout) == keras_fans(shape)


def test_jax_and_torch_layouts_differ_where_they_should():
    # (3, 3, 8, 16) read as torch: out=3, in=3, field=128; as jax: in=8, out=16, field=9.
    assert fi.compute_fans((3, 3, 8, 16)) == (3 * 128, 3 * 128)
    assert fi.compute_fans((3, 3, 8, 16), layout="jax") == (72, 144)


def jax_fans(shape, in_axis, out_axis, batch_axis):
    """jax.nn.initializers' documented rule: the receptive field is the product of every
    axis that is neither the input, the output nor a batch axis; batch axes count
    towards neither fan."""
    ndim = len(shape)
    in_axis, out_axis = in_axis % ndim, out_axis % ndim
    batch = {b % ndim for b in batch_axis}
    receptive_field = 1
    for axis, size in enumerate(shape):
        if axis != in_axis and axis != out_axis and axis not in batch:
            receptive_field *= size
    return shape[in_axis] * receptive_field, shape[out_axis] * receptive_field


def _axis_cases():
    """Every (in_axis, out_axis, batch_axis) for a 4-D shape, in both positive and
    negative spelling, batch_axis as an int or a tuple of 0 to 2 axes."""
    ndim = 4
    for i, o in itertools.permutations(range(ndim), 2):
        rest = [a for a in range(ndim) if a not in (i, o)]
        for k in range(len(rest) + 1):
            for batch in itertools.combinations(rest, k):
                yield i, o, batch
                yield i - ndim, o - ndim, tuple(b - ndim for b in batch)
        yield i, o, rest[0]  # a single int batch axis


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 4, 1, 6), (3, 1, 2, 1)], ids=str)
def test_fans_explicit_axes_follow_jax_rule(shape):
    checked = 0
    for in_axis, out_axis, batch in _axis_cases():
        batch_tuple = (batch,) if isinstance(batch, int) else batch
        expected = jax_fans(shape, in_axis, out_axis, batch_tuple)
        got = fi.compute_fans(shape, in_axis=in_axis, out_axis=out_axis, batch_axis=batch)
        assert got == expected, (in_axis, out_axis, batch)
        checked += 1
    assert checked > 100


def test_fans_explicit_axes_override_the_layout():
    shape = (2, 3, 5, 7)
    # With in/out given, the layout's defaults no longer matter.
    for layout in ("torch", "jax"):
        assert fi.compute_fans(shape, layout=layout, in_axis=0, out_axis=3) == (2 * 15, 7 * 15)
    # Only one axis given: the other comes from the layout.
    assert fi.compute_fans(shape, layout="jax", in_axis=0) == jax_fans(shape, 0, -1, ())
    assert fi.compute_fans(shape, out_axis=3) == jax_fans(shape, 1, 3, ())


def test_fans_reach_the_initializers():
    # he_uniform's bound follows the fan of the chosen layout, not the torch one.
    shape = (3, 3, 8, 16)
    fan_in_jax, _ = keras_fans(shape)
    x = fi.he_uniform(shape, SEED, layout="jax")
    bound = math.sqrt(6.0 / fan_in_jax)
    assert np.abs(x).max() <= bound
    assert np.abs(x).max() > 0.9 * bound


# --------------------------------------------------------------------------------------
# (b) calculate_gain
# --------------------------------------------------------------------------------------

TORCH_NONLINEARITIES = [
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
]


@pytest.mark.parametrize("nonlinearity", TORCH_NONLINEARITIES)
def test_gain_matches_torch(nonlinearity):
    expected = torch_init.calculate_gain(nonlinearity)
    got = fi.calculate_gain(nonlinearity)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-15, abs=0)


def test_gain_table_values():
    # Written out, so that torch changing its table would show up here too.
    assert fi.calculate_gain("tanh") == pytest.approx(5 / 3, rel=1e-15)
    assert fi.calculate_gain("relu") == pytest.approx(math.sqrt(2), rel=1e-15)
    assert fi.calculate_gain("selu") == pytest.approx(0.75, rel=1e-15)
    assert fi.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)), rel=1e-15)


@pytest.mark.parametrize("param", [None, 0.2, 0, 0.0, 1, 1.0, 0.01, -0.3, 5.5])
def test_gain_leaky_relu_param_matches_torch(param):
    expected = torch_init.calculate_gain("leaky_relu", param)
    assert fi.calculate_gain("leaky_relu", param) == pytest.approx(expected, rel=1e-15, abs=0)


def test_gain_leaky_relu_slope_zero_is_relu():
    assert fi.calculate_gain("leaky_relu", 0) == pytest.approx(fi.calculate_gain("relu"), rel=1e-15)


@pytest.mark.parametrize("nonlinearity", ["swish", "gelu", "ReLU", "", None])
def test_gain_unknown_nonlinearity_raises_in_both(nonlinearity):
    with pytest.raises(ValueError):
        torch_init.calculate_gain(nonlinearity)
    with pytest.raises(ValueError, match="nonlinearity"):
        fi.calculate_gain(nonlinearity)


# --------------------------------------------------------------------------------------
# (c) orthogonal
# --------------------------------------------------------------------------------------

ORTHO_SHAPES = [(64, 64), (32, 100), (100, 32), (16, 8, 3, 3)]


def _gram_of_smaller_side(w):
    m = w.reshape(w.shape[0], -1).astype(np.float64)
    return m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m


@pytest.mark.parametrize("shape", ORTHO_SHAPES, ids=str)
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_orthogonal_is_orthonormal_times_gain(shape, gain):
    w = fi.orthogonal(shape, SEED, gain)
    assert w.shape == shape and w.dtype == np.float32
    assert np.isfinite(w).all()
    gram = _gram_of_smaller_side(w)
    np.testing.assert_allclose(gram, gain**2 * np.eye(gram.shape[0]), rtol=0, atol=1e-5 * gain**2)
    # The torch reference has the same property, at the same tolerance.
    t = torch_init.orthogonal_(torch.empty(shape), gain=gain).numpy()
    np.testing.assert_allclose(
        _gram_of_smaller_side(t), gain**2 * np.eye(gram.shape[0]), rtol=0, atol=1e-5 * gain**2
    )


@pytest.mark.parametrize("shape", ORTHO_SHAPES, ids=str)
def test_orthogonal_larger_side_is_not_orthonormal(shape):
    # Guards the check above against computing the trivially-true Gram matrix: for a
    # non-square matrix the Gram of the larger side has rank < its size.
    m = fi.orthogonal(shape, SEED).reshape(shape[0], -1).astype(np.float64)
    rows, cols = m.shape
    if rows == cols:
        np.testing.assert_allclose(m.T @ m, np.eye(cols), atol=1e-5)  # square: both sides
        return
    big = m.T @ m if rows < cols else m @ m.T
    assert not np.allclose(big, np.eye(big.shape[0]), atol=1e-2)


@pytest.mark.parametrize("shape", ORTHO_SHAPES, ids=str)
def test_orthogonal_is_deterministic_and_depends_on_seed(shape):
    a = fi.orthogonal(shape, SEED, 2.0)
    b = fi.orthogonal(shape, SEED, 2.0)
    assert a.tobytes() == b.tobytes()
    c = fi.orthogonal(shape, SEED + 1, 2.0)
    assert not np.allclose(a, c, atol=1e-3)
    d = fi.orthogonal(shape, SEED, 2.0, stream="other")
    assert not np.allclose(a, d, atol=1e-3)


def test_orthogonal_gain_scales_exactly():
    # Same seed, gain 1 and 2: the float64 Q is shared, so the float32 results differ by
    # rounding only.
    a = fi.orthogonal((32, 100), SEED, 1.0).astype(np.float64)
    b = fi.orthogonal((32, 100), SEED, 2.0).astype(np.float64)
    np.testing.assert_allclose(b, 2 * a, rtol=2e-7, atol=0)


# --------------------------------------------------------------------------------------
# (d) identity / dirac
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (5, 5), (3, 7), (7, 3), (1, 4), (4, 1)], ids=str)
@pytest.mark.parametrize("gain", [1.0, 2.5, 0.0])
def test_identity_matches_torch_eye(shape, gain):
    expected = (torch_init.eye_(torch.empty(shape)) * gain).numpy()
    for fn in (fi.identity, fi.eye):
        got = fn(shape, gain)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)


def test_identity_rejects_non_2d_like_torch():
    with pytest.raises(ValueError):
        torch_init.eye_(torch.empty(3, 3, 3))
    with pytest.raises(ValueError, match="2-D"):
        fi.identity((3, 3, 3))


DIRAC_CASES = [
    ((4, 4, 3), 1),
    ((4, 4, 4), 1),  # even kernel: centre is k // 2
    ((2, 4, 5), 1),  # out < in
    ((6, 2, 3), 1),  # out > in
    ((6, 4, 3, 3), 1),
    ((4, 6, 3, 5), 1),
    ((4, 4, 2, 4), 1),
    ((4, 4, 3, 3, 3), 1),
    ((3, 5, 1, 3, 2), 1),
    ((8, 4, 3, 3), 2),  # groups=2: 4 out channels per group, in=4
    ((8, 6, 5), 2),  # per group 4 < in 6
    ((6, 2, 3, 3), 2),  # per group 3 > in 2
    ((4, 2, 3, 3, 3), 2),
    ((6, 3, 3), 3),
    ((6, 1, 3, 3), 6),
]


@pytest.mark.parametrize("shape, groups", DIRAC_CASES, ids=str)
@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_dirac_matches_torch(shape, groups, gain):
    expected = (torch_init.dirac_(torch.empty(shape), groups) * gain).numpy()
    got = fi.dirac(shape, groups, gain=gain)
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_array_equal(got, expected)
    assert np.count_nonzero(got) == (np.count_nonzero(expected) if gain else 0)


@pytest.mark.parametrize("shape", [(4, 4), (4,), (2, 2, 1, 1, 1, 1)], ids=str)
def test_dirac_wrong_rank_raises_in_both(shape):
    with pytest.raises(ValueError):
        torch_init.dirac_(torch.empty(shape))
    with pytest.raises(ValueError, match="3, 4 or 5 axes"):
        fi.dirac(shape)


@pytest.mark.parametrize(
    "shape, groups", [((5, 2, 3), 2), ((4, 4, 3, 3), 3), ((2, 2, 3), 4)], ids=str
)
def test_dirac_groups_must_divide_out_channels_in_both(shape, groups):
    with pytest.raises(ValueError):
        torch_init.dirac_(torch.empty(shape), groups)
    with pytest.raises(ValueError, match="groups"):
        fi.dirac(shape, groups)


# --------------------------------------------------------------------------------------
# (e) the torch semantics of the named initializers
# --------------------------------------------------------------------------------------

# Big enough that the sample std is known to ~0.3 %; thresholds: 6 standard errors.
STAT_SHAPES = [(256, 512), (64, 32, 3, 3)]


def _std_tolerance(n):
    # Relative standard error of a sample std of n normal values: 1 / sqrt(2 (n - 1)).
    return 6.0 / math.sqrt(2.0 * (n - 1))


@pytest.mark.parametrize("shape", STAT_SHAPES, ids=str)
def test_glorot_normal_untruncated_std_matches_xavier_normal(shape):
    fan_in, fan_out = torch_init._calculate_fan_in_and_fan_out(torch.empty(shape))
    sigma = math.sqrt(2.0 / (fan_in + fan_out))
    n = math.prod(shape)
    tol = _std_tolerance(n)

    ours = fi.glorot_normal(shape, SEED, distribution="normal").astype(np.float64)
    torch.manual_seed(0)
    theirs = torch_init.xavier_normal_(torch.empty(shape)).double().numpy()

    assert abs(ours.std() / sigma - 1) < tol
    assert abs(theirs.std() / sigma - 1) < tol
    assert abs(ours.std() - theirs.std()) / sigma < math.sqrt(2) * tol
    assert abs(ours.mean()) < 6 * sigma / math.sqrt(n)
    # Untruncated: some values lie beyond the ±2σ cut of the default (prob 4.6 % each).
    assert np.mean(np.abs(ours) > 2 * sigma) > 0.03
    # The xavier_* names are the same initializer.
    np.testing.assert_array_equal(
        fi.xavier_normal(shape, SEED, distribution="normal"), ours.astype(np.float32)
    )


@pytest.mark.parametrize("shape", STAT_SHAPES, ids=str)
def test_glorot_normal_default_is_truncated_with_the_same_std(shape):
    # The Keras/JAX convention: cut at ±2 σ' and σ' = σ / 0.8796 so the std is still σ.
    fan_in, fan_out = fi.compute_fans(shape)
    sigma = math.sqrt(2.0 / (fan_in + fan_out))
    x = fi.glorot_normal(shape, SEED).astype(np.float64)
    assert (
        abs(x.std() / sigma - 1) < _std_tolerance(x.size) * 1.5
    )  # the truncated normal has lighter tails
    cut = 2 * sigma / fi.TRUNCATED_NORMAL_STD
    assert np.abs(x).max() <= cut * (1 + 1e-6)
    assert np.abs(x).max() > 0.99 * cut


@pytest.mark.parametrize("shape", STAT_SHAPES, ids=str)
def test_he_uniform_bound_matches_kaiming_uniform(shape):
    fan_in, _ = torch_init._calculate_fan_in_and_fan_out(torch.empty(shape))
    bound = math.sqrt(6.0 / fan_in)
    # torch's own bound: gain(leaky_relu, a=0) * sqrt(3 / fan_in).
    assert torch_init.calculate_gain("leaky_relu", 0) * math.sqrt(3.0 / fan_in) == pytest.approx(
        bound
    )

    n = math.prod(shape)
    ours = np.abs(fi.he_uniform(shape, SEED).astype(np.float64))
    torch.manual_seed(0)
    theirs = np.abs(torch_init.kaiming_uniform_(torch.empty(shape)).double().numpy())

    # P(max of n uniforms < (1 - eps) bound) = (1 - eps)^n: with eps = 20 / n, below 3e-9.
    eps = 20.0 / n
    for sample in (ours, theirs):
        assert sample.max() <= bound
        assert sample.max() > (1 - eps) * bound
    # Uniform on (-bound, bound): variance bound^2 / 3 = 2 / fan_in.
    var = 2.0 / fan_in
    assert abs((ours**2).mean() / var - 1) < 6 * math.sqrt(0.8 / n)
    np.testing.assert_array_equal(np.abs(fi.kaiming_uniform(shape, SEED)), ours.astype(np.float32))


def test_he_normal_untruncated_std_matches_kaiming_normal():
    shape = (256, 512)
    fan_in, _ = fi.compute_fans(shape)
    sigma = math.sqrt(2.0 / fan_in)
    tol = _std_tolerance(math.prod(shape))
    ours = fi.he_normal(shape, SEED, distribution="normal").astype(np.float64)
    torch.manual_seed(0)
    theirs = torch_init.kaiming_normal_(torch.empty(shape)).double().numpy()
    assert abs(ours.std() / sigma - 1) < tol
    assert abs(theirs.std() / sigma - 1) < tol


def test_gain_argument_is_torchs_gain():
    # xavier_uniform_(gain=g): bound g * sqrt(6 / (fan_in + fan_out)).
    shape, gain = (256, 512), fi.calculate_gain("tanh")
    bound = gain * math.sqrt(6.0 / sum(fi.compute_fans(shape)))
    x = np.abs(fi.glorot_uniform(shape, SEED, gain=gain).astype(np.float64))
    torch.manual_seed(0)
    t = np.abs(torch_init.xavier_uniform_(torch.empty(shape), gain=gain).double().numpy())
    eps = 20.0 / x.size
    for sample in (x, t):
        assert sample.max() <= bound
        assert sample.max() > (1 - eps) * bound
