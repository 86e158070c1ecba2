"""JAX's and Keras's dialects (issue 16): fans over sequences of axes, fan_geo_avg,
Keras's fan rule and input_axes / output_axes, orthogonal's JAX layout and column_axis,
float64 orthogonal, delta_orthogonal.

Every expectation is computed here from the peer's documented formula, so the file
runs without jax or keras (CI has neither); where they are installed, the same cases
are also compared against jax's _compute_fans and keras's compute_fans themselves
(those tests skip otherwise; both peers are imported inside the tests, so test_jax.py's
XLA_FLAGS still reach jax first).
"""

from __future__ import annotations

import math
import os

import fastinit as fi
import numpy as np
import pytest

# ---------------------------------------------------------------------------
# Fans: JAX's rule over sequences of axes


def jax_rule(shape, in_axis, out_axis, batch_axis):
    """JAX's fans in plain words: each argument names one axis or several; the field
    multiplies every axis none of them names; fan = prod(own axes) * field."""

    def listed(axes):
        axes = (axes,) if isinstance(axes, int) else tuple(axes)
        return [a % len(shape) for a in axes]

    ins, outs, batch = listed(in_axis), listed(out_axis), listed(batch_axis)
    field = 1
    for axis, size in enumerate(shape):
        if axis not in ins + outs + batch:
            field *= size
    return math.prod(shape[a] for a in ins) * field, math.prod(shape[a] for a in outs) * field


# (shape, in_axis, out_axis, batch_axis)
JAX_AXES = [
    ((3, 5), -2, -1, ()),
    ((3, 3, 8, 16), -2, -1, ()),
    ((4, 5, 6, 7), (0, 1), -1, 2),  # two input axes, a batch axis
    ((4, 5, 6, 7), (0, 1), (2, 3), ()),  # no receptive field
    ((4, 5, 6, 7), (-4, -3), -1, ()),  # negative axes in a sequence
    ((4, 5, 6, 7), 1, [3], [0]),  # lists
    ((4, 5, 6, 7), (), -1, ()),  # empty in_axis: fan_in is the field alone
    ((4, 5, 6, 7), 0, (), (1,)),  # empty out_axis
    ((4, 5, 6, 7), (), (), ()),  # both empty: both fans are the whole size
    ((2, 3, 4, 5, 6), (1, 2), (4,), (0,)),
    ((2, 3, 4, 5, 6), -3, (-1, -2), (0, 1)),
    ((6, 1, 3), 2, 0, 1),
    ((5,), 0, (), ()),  # 1-d with explicit axes (JAX allows it)
    ((5,), (), 0, ()),
    ((), (), (), ()),  # 0-d: both fans 1
    ((7, 0, 3), 0, 2, ()),  # a zero-size field
]


@pytest.mark.parametrize(("shape", "in_axis", "out_axis", "batch_axis"), JAX_AXES, ids=str)
def test_fans_follow_jaxs_rule_over_sequences(shape, in_axis, out_axis, batch_axis):
    expected = jax_rule(shape, in_axis, out_axis, batch_axis)
    for layout in ("torch", "jax", "keras"):  # explicit axes override every layout
        got = fi.compute_fans(
            shape, layout=layout, in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis
        )
        assert got == expected and all(type(f) is int for f in got), layout


def test_fans_formula_by_hand():
    # (in, in, batch, out): fan_in = 4 * 5, fan_out = 7, no field.
    assert fi.compute_fans((4, 5, 6, 7), in_axis=(0, 1), out_axis=-1, batch_axis=2) == (20, 7)
    # (h, w, in, out) with in_axis=(): the field is h * w * in = 72, and fan_in is it alone.
    assert fi.compute_fans((3, 3, 8, 16), in_axis=(), out_axis=-1) == (72, 16 * 72)
    assert fi.compute_fans((3, 3, 8, 16), in_axis=(), out_axis=(), batch_axis=(0, 1)) == (
        128,
        128,
    )


@pytest.mark.parametrize(("shape", "in_axis", "out_axis", "batch_axis"), JAX_AXES, ids=str)
def test_fans_equal_jaxs_own(shape, in_axis, out_axis, batch_axis):
    nn_init = pytest.importorskip("jax._src.nn.initializers")
    if 0 in shape:
        pytest.skip("JAX divides by zero for a zero-size axis (NaN fans)")
    theirs = nn_init._compute_fans(shape, in_axis, out_axis, batch_axis)
    assert fi.compute_fans(
        shape, in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis
    ) == tuple(int(f) for f in theirs)


def test_fastinit_jax_fans_are_the_core_fans():
    fj = pytest.importorskip("fastinit.jax")
    for shape, in_axis, out_axis, batch_axis in JAX_AXES:
        assert fj.jax_fans(shape, in_axis, out_axis, batch_axis) == fi.compute_fans(
            shape, layout="jax", in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_axis": (0, 0)}, ValueError, "distinct"),  # an axis twice in one argument
        ({"in_axis": (0, 1), "out_axis": 1}, ValueError, "distinct"),
        ({"in_axis": 0, "out_axis": -3}, ValueError, "distinct"),  # -3 is 0 for 3 axes
        ({"batch_axis": (2, -1)}, ValueError, "distinct"),
        ({"out_axis": (1, 3)}, ValueError, r"out_axis\[1\]=3 is out of range"),
        ({"in_axis": -4}, ValueError, "in_axis=-4 is out of range"),
        ({"in_axis": (True,)}, TypeError, r"in_axis\[0\]"),
        ({"in_axis": (1.0,)}, TypeError, r"in_axis\[0\]"),
        ({"out_axis": "1"}, TypeError, "out_axis"),
        ({"out_axis": {1}}, TypeError, "out_axis"),
        ({"batch_axis": np.zeros((1, 1), int)}, TypeError, "batch_axis"),
    ],
)
def test_bad_fan_axes(kwargs, error, match):
    with pytest.raises(error, match=match):
        fi.compute_fans((3, 4, 5), **kwargs)
    with pytest.raises(error, match=match):  # the same refusal through an initializer
        fi.he_normal((3, 4, 5), 0, **kwargs)


def test_vectors_need_both_axes_under_torch_and_jax():
    for layout in ("torch", "jax"):
        with pytest.raises(ValueError, match="at least 2 axes"):
            fi.compute_fans((5,), layout=layout)
        with pytest.raises(ValueError, match="at least 2 axes"):
            fi.compute_fans((5,), layout=layout, in_axis=0)
    with pytest.raises(ValueError, match="at least 2 axes"):  # JAX's default in_axis, given
        fi.compute_fans((5,), in_axis=-2, out_axis=())


# ---------------------------------------------------------------------------
# mode="fan_geo_avg"


def test_fan_geo_avg_is_the_geometric_mean_exactly():
    shape = (3, 3, 8, 16)  # jax layout: fan_in 72, fan_out 144
    geo = fi.variance_scaling(
        shape, 7, scale=2.0, mode="fan_geo_avg", distribution="uniform", layout="jax"
    )
    by_hand = fi.variance_scaling(
        shape, 7, scale=2.0, distribution="uniform", fan_in=math.sqrt(72 * 144)
    )
    np.testing.assert_array_equal(geo.view(np.uint32), by_hand.view(np.uint32))
    # Explicit fans are combined the same way, even when their product overflows.
    big = fi.variance_scaling((4,), 1, mode="fan_geo_avg", fan_in=1e200, fan_out=1e200)
    assert np.all(np.isfinite(big)) and np.abs(big).max() <= 2 / 1e100 / fi.TRUNCATED_NORMAL_STD


@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_fan_geo_avg_variance(distribution):
    # 2^20 samples; the std estimate's relative standard error is about
    # sqrt((kurtosis - 1) / 4n) <= 1/sqrt(2n) = 7e-4; 6 of them allow 4.2e-3, while
    # fan_avg (n = 108 instead of 101.8) would be off by 3%.
    n = 1 << 20
    shape = (64, 16384)  # jax layout: fan_in 64, fan_out 16384, geometric mean 1024
    x = fi.variance_scaling(
        shape, 3, scale=3.0, mode="fan_geo_avg", distribution=distribution, layout="jax"
    )
    assert x.size == n
    expected = math.sqrt(3.0 / math.sqrt(64 * 16384))
    measured = float(np.std(x.astype(np.float64)))
    assert abs(measured / expected - 1) < 6 / math.sqrt(2 * n)


def test_fan_geo_avg_reaches_specs_parameters():
    def fields(params):
        names = ("transform", "scale", "shift", "lo", "hi", "erf_scale", "erf_shift")
        return [getattr(params, name) for name in names]

    def setup(**params):
        return fields(fi.initializers.parameters("variance_scaling", (8, 32), "float32", params))

    # n = sqrt(8 * 32) = 16 in any layout (the geometric mean is symmetric).
    assert setup(mode="fan_geo_avg", layout="jax") == setup(fan_in=16.0)
    assert setup(mode="fan_geo_avg") == setup(fan_in=16.0)
    assert setup(mode="fan_geo_avg") != setup(fan_in=17.0)


def test_fan_geo_avg_equals_jaxs():
    fj = pytest.importorskip("fastinit.jax")
    jax = pytest.importorskip("jax")
    shape = (4, 5, 6, 7)
    ours = fj.variance_scaling(2.0, "fan_geo_avg", "uniform", (0, 1), -1, 2)(3, shape)
    theirs = jax.nn.initializers.variance_scaling(2.0, "fan_geo_avg", "uniform", (0, 1), -1, 2)(
        jax.random.key(3), shape
    )
    # Different streams, the same law: both bounded by sqrt(3 * 2 / sqrt(20 * 7)).
    limit = math.sqrt(6.0 / math.sqrt(140.0))
    assert float(np.abs(np.asarray(ours)).max()) <= limit
    assert float(np.abs(np.asarray(theirs)).max()) <= limit * (1 + 1e-6)
    assert float(np.abs(np.asarray(ours)).max()) > 0.95 * limit


# ---------------------------------------------------------------------------
# Keras's fans: the default rule and input_axes / output_axes


def keras_rule(shape):
    """Keras 3's compute_fans without axes, in plain words."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    field = math.prod(shape[:-2])
    return shape[-2] * field, shape[-1] * field


KERAS_SHAPES = [(), (7,), (0,), (3, 5), (5, 3), (3, 8, 4), (3, 3, 8, 16), (2, 3, 3, 4, 5)]
# (shape, input_axes, output_axes), as EinsumDense passes them
KERAS_AXES = [
    ((3, 4, 5), (0,), (1, 2)),
    ((3, 4, 5), [0, 1], [2]),
    ((3, 4, 5), (-3,), (-1,)),  # the middle axis is in neither
    ((6, 2, 3, 4), (1, 2), (3,)),
    ((6,), (0,), ()),
    ((), (), ()),
]


@pytest.mark.parametrize("shape", KERAS_SHAPES, ids=str)
def test_keras_layout_is_keras_rule(shape):
    assert fi.compute_fans(shape, layout="keras") == keras_rule(shape)
    if len(shape) >= 2:  # the same fans as layout="jax" (and as before this change)
        assert fi.compute_fans(shape, layout="jax") == keras_rule(shape)


@pytest.mark.parametrize(("shape", "input_axes", "output_axes"), KERAS_AXES, ids=str)
def test_keras_input_output_axes(shape, input_axes, output_axes):
    expected = (
        math.prod(shape[a] for a in input_axes),
        math.prod(shape[a] for a in output_axes),
    )
    for layout in ("torch", "jax", "keras"):  # the explicit axes ignore the layout
        got = fi.compute_fans(shape, layout=layout, input_axes=input_axes, output_axes=output_axes)
        assert got == expected


def _keras_compute_fans():
    os.environ.setdefault("KERAS_BACKEND", "torch" if _has("torch") else "jax")
    pytest.importorskip("keras")
    from keras.src.initializers.random_initializers import compute_fans

    return compute_fans


def _has(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_keras_fans_equal_keras_own():
    compute_fans = _keras_compute_fans()
    for shape in KERAS_SHAPES:
        assert fi.compute_fans(shape, layout="keras") == compute_fans(shape), shape
    for shape, input_axes, output_axes in KERAS_AXES:
        assert fi.compute_fans(
            shape, input_axes=input_axes, output_axes=output_axes
        ) == compute_fans(shape, input_axes=list(input_axes), output_axes=list(output_axes))


@pytest.mark.parametrize("name", ["he_normal", "glorot_uniform", "lecun_normal"])
def test_keras_fans_reach_the_initializers(name):
    init = getattr(fi, name)
    scale, mode, _, _ = fi.initializers.NAMED[name]
    # A 1-d shape: Keras's (n, n).
    np.testing.assert_array_equal(init((9,), 4, layout="keras"), init((9,), 4, fan_in=9, fan_out=9))
    # A scalar: (1, 1).
    np.testing.assert_array_equal(init((), 4, layout="keras"), init((), 4, fan_in=1, fan_out=1))
    # EinsumDense's axes: fan_in 3, fan_out 4 * 5.
    np.testing.assert_array_equal(
        init((3, 4, 5), 4, input_axes=(0,), output_axes=(1, 2)),
        init((3, 4, 5), 4, fan_in=3, fan_out=20),
    )
    np.testing.assert_array_equal(
        fi.variance_scaling((3, 4, 5), 4, mode=mode, scale=scale, input_axes=[0], output_axes=[2]),
        fi.variance_scaling((3, 4, 5), 4, mode=mode, scale=scale, fan_in=3, fan_out=5),
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_axes": (0,)}, ValueError, "input_axes needs output_axes"),
        ({"output_axes": (0,)}, ValueError, "output_axes needs input_axes"),
        ({"input_axes": (0,), "output_axes": (1,), "in_axis": 0}, ValueError, "mixed"),
        ({"input_axes": (0,), "output_axes": (1,), "batch_axis": 2}, ValueError, "mixed"),
        ({"input_axes": (0,), "output_axes": (3,)}, ValueError, r"output_axes\[0\]=3"),
        ({"input_axes": (-4,), "output_axes": (1,)}, ValueError, r"input_axes\[0\]=-4"),
        ({"input_axes": (0, 1), "output_axes": (1,)}, ValueError, "distinct"),
        ({"input_axes": (0,), "output_axes": (True,)}, TypeError, r"output_axes\[0\]"),
        ({"input_axes": "0", "output_axes": (1,)}, TypeError, "input_axes"),
    ],
)
def test_bad_keras_axes(kwargs, error, match):
    with pytest.raises(error, match=match):
        fi.compute_fans((3, 4, 5), **kwargs)
    out = np.full((3, 4, 5), 7.0, np.float32)
    with pytest.raises(error, match=match):
        fi.glorot_normal((3, 4, 5), 0, out=out, **kwargs)
    assert (out == 7.0).all()
    # Checked even when explicit fans make them unnecessary.
    with pytest.raises(error, match=match):
        fi.variance_scaling((3, 4, 5), 0, fan_in=2.0, fan_out=2.0, **kwargs)


def test_explicit_fans_on_vectors_still_skip_the_layout():
    # Unchanged: a 1-d shape with every needed fan given computes none.
    a = fi.he_normal((6,), 2, fan_in=6)
    np.testing.assert_array_equal(a, fi.he_normal((6,), 2, layout="keras"))
