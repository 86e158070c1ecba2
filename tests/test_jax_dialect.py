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
import sys

import fastinit as fi
import numpy as np
import pytest
from test_cuda_routing_fake import fake_device  # noqa: F401  (a fixture)

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
    if "keras" not in sys.modules and "KERAS_BACKEND" not in os.environ:
        os.environ["KERAS_BACKEND"] = "numpy"  # the lightest backend, for this import only
        try:
            pytest.importorskip("keras")
        finally:
            del os.environ["KERAS_BACKEND"]
    pytest.importorskip("keras")
    from keras.src.initializers.random_initializers import compute_fans

    return compute_fans


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


# ---------------------------------------------------------------------------
# orthogonal: JAX's / Keras's layout and column_axis; float64


def jax_layout_by_hand(shape, seed, gain, column_axis, **kw):
    """JAX's layout from the 2-D call: the (rest, cols) matrix, its columns moved to
    column_axis."""
    axis = column_axis % len(shape)
    rest = shape[:axis] + shape[axis + 1 :]
    matrix = fi.orthogonal((math.prod(rest), shape[axis]), seed, gain, **kw)
    return np.moveaxis(matrix.reshape(rest + (shape[axis],)), -1, axis)


ORTHO_CASES = [
    ((6, 10), -1),
    ((10, 6), -1),
    ((6, 10), 0),
    ((3, 3, 4, 8), -1),  # a conv kernel (h, w, in, out): rows 36, cols 8
    ((3, 3, 4, 8), 2),
    ((8, 4, 3), 0),  # columns along a leading axis: rows 12, cols 8
    ((2, 3, 5), -2),
]


@pytest.mark.parametrize(("shape", "column_axis"), ORTHO_CASES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_orthogonal_jax_layout_is_the_2d_matrix_moved(shape, column_axis, dtype):
    got = fi.orthogonal(shape, 5, 1.5, layout="jax", column_axis=column_axis, dtype=dtype)
    expected = jax_layout_by_hand(shape, 5, 1.5, column_axis, dtype=dtype)
    assert got.shape == shape and got.dtype == expected.dtype
    assert got.tobytes() == np.ascontiguousarray(expected).tobytes()
    keras = fi.orthogonal(shape, 5, 1.5, layout="keras", column_axis=column_axis, dtype=dtype)
    assert keras.tobytes() == got.tobytes()
    # Orthonormal along the chosen flattening: rows if there are fewer rows, else columns.
    m = np.moveaxis(got.astype(np.float64), column_axis, -1).reshape(-1, shape[column_axis])
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    tol = {"float32": 1e-5, "bfloat16": 5e-2, "float64": 1e-13}[dtype]
    assert np.abs(gram / 1.5**2 - np.eye(len(gram))).max() < tol


def test_orthogonal_layouts_agree_where_they_should():
    # A 2-D shape with the default column axis: the same tensor in both layouts.
    np.testing.assert_array_equal(
        fi.orthogonal((6, 10), 2, layout="jax"), fi.orthogonal((6, 10), 2)
    )
    # JAX's default flattening (prod(shape[:-1]), shape[-1]) vs PyTorch's (shape[0], rest).
    conv = (3, 3, 4, 8)
    np.testing.assert_array_equal(
        fi.orthogonal(conv, 2, layout="jax"),
        fi.orthogonal((36, 8), 2).reshape(conv),
    )
    np.testing.assert_array_equal(fi.orthogonal(conv, 2), fi.orthogonal((3, 96), 2).reshape(conv))
    # column_axis=0 of a 2-D shape is the transpose of the (cols, rows) matrix.
    np.testing.assert_array_equal(
        fi.orthogonal((6, 10), 2, layout="jax", column_axis=0), fi.orthogonal((10, 6), 2).T
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"column_axis": -1}, ValueError, "column_axis=-1 is JAX's and Keras's"),
        ({"layout": "jax", "column_axis": 3}, ValueError, "column_axis=3 is out of range"),
        ({"layout": "jax", "column_axis": True}, TypeError, "column_axis"),
        ({"layout": "jax", "column_axis": 1.0}, TypeError, "column_axis"),
        ({"layout": "tf"}, ValueError, "layout"),
    ],
)
def test_bad_orthogonal_layouts(kwargs, error, match):
    out = np.full((4, 6, 2), 7.0, np.float32)
    with pytest.raises(error, match=match):
        fi.orthogonal((4, 6, 2), 0, out=out, **kwargs)
    assert (out == 7.0).all()


@pytest.mark.parametrize("shape", [(64, 64), (37, 53), (53, 37)], ids=str)
def test_orthogonal_float64_is_orthogonal_to_float64_precision(shape):
    q = fi.orthogonal(shape, 11, dtype="float64")
    gram = q @ q.T if shape[0] <= shape[1] else q.T @ q
    assert np.abs(gram - np.eye(min(shape))).max() < 1e-13
    # Not rounded through float32 (a float32 Q is only orthogonal to ~1e-7) ...
    q32 = fi.orthogonal(shape, 11, dtype="float32").astype(np.float64)
    gram32 = q32 @ q32.T if shape[0] <= shape[1] else q32.T @ q32
    assert np.abs(gram32 - np.eye(min(shape))).max() > 1e-9
    assert np.any(q != q.astype(np.float32).astype(np.float64))
    # ... but the same matrix: the normal draw is the stream's float32 one, widened.
    assert np.abs(q - q32).max() < 1e-6
    # And the JAX layout, float64 too.
    q = fi.orthogonal((4, 16, 8), 11, 2.0, layout="jax", dtype="float64").reshape(64, 8)
    assert np.abs(q.T @ q / 4 - np.eye(8)).max() < 1e-13


def test_orthogonal_regions_are_slices_of_the_full_result():
    for shape, column_axis in ORTHO_CASES:
        for dtype in ("float32", "float64"):
            full = fi.orthogonal(shape, 3, layout="jax", column_axis=column_axis, dtype=dtype)
            for region in _regions(shape):
                part = fi.orthogonal(
                    shape, 3, layout="jax", column_axis=column_axis, dtype=dtype, region=region
                )
                assert part.tobytes() == np.ascontiguousarray(full[region]).tobytes()


def _regions(shape):
    """A few regions of `shape`: leading halves, trailing halves, one element, empty."""
    yield tuple(slice(0, (d + 1) // 2) for d in shape)
    yield tuple(slice(d // 2, d) for d in shape)
    yield tuple(slice(d - 1, d) for d in shape)
    yield tuple(slice(1, 1) for _ in shape)


def test_orthogonal_equals_fastinit_jax_builder():
    fj = pytest.importorskip("fastinit.jax")
    for shape, column_axis in ORTHO_CASES:
        values = np.asarray(fj.orthogonal(2.0, column_axis)(7, shape))
        expected = fi.orthogonal(shape, 7, 2.0, layout="jax", column_axis=column_axis)
        assert values.tobytes() == expected.tobytes()


def test_orthogonal_jax_layout_matches_jaxs_structure():
    jax = pytest.importorskip("jax")
    for shape, column_axis in ORTHO_CASES[2:5]:  # JAX compiles per shape: three suffice
        theirs = np.asarray(
            jax.nn.initializers.orthogonal(1.0, column_axis)(jax.random.key(0), shape)
        )
        ours = fi.orthogonal(shape, 0, layout="jax", column_axis=column_axis)
        for x in (theirs, ours):  # the same flattening is orthonormal in both
            m = np.moveaxis(x.astype(np.float64), column_axis, -1).reshape(-1, shape[column_axis])
            gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
            assert np.abs(gram - np.eye(len(gram))).max() < 1e-5


def test_orthogonal_jax_layout_matches_keras_flattening():
    _keras_compute_fans()  # skips without keras
    import keras

    shape = (3, 3, 4, 8)
    theirs = keras.initializers.Orthogonal(seed=0)(shape)
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = fi.orthogonal(shape, 0, layout="keras")
    for x in (theirs, ours):  # Keras flattens to (prod(shape[:-1]), shape[-1]) as well
        m = x.astype(np.float64).reshape(-1, shape[-1])
        assert np.abs(m.T @ m - np.eye(shape[-1])).max() < 1e-5


# ---------------------------------------------------------------------------
# delta_orthogonal


DELTA_SHAPES = [(3, 4, 6), (4, 5, 5), (3, 3, 2, 8), (4, 2, 3, 3), (2, 3, 4, 4, 4), (1, 5, 5)]


@pytest.mark.parametrize("shape", DELTA_SHAPES, ids=str)
@pytest.mark.parametrize("column_axis", [-1, 0])
def test_delta_orthogonal_structure(shape, column_axis):
    x = fi.delta_orthogonal(shape, 9, 2.0, column_axis=column_axis, stream="conv")
    centre = tuple((k - 1) // 2 for k in shape[:-2])  # JAX's, for odd and even k
    off_centre = x.copy()
    off_centre[centre] = 0
    assert not off_centre.any()
    matrix = fi.orthogonal(shape[-2:], 9, 2.0, layout="jax", column_axis=column_axis, stream="conv")
    assert x[centre].tobytes() == matrix.tobytes()
    m = x[centre].astype(np.float64)
    gram = m @ m.T if column_axis == -1 else m.T @ m
    n = shape[-2] if column_axis == -1 else min(shape[-2:])
    if column_axis == -1 or shape[-2] == shape[-1]:
        assert np.abs(gram / 4 - np.eye(n)).max() < 1e-5


def test_delta_orthogonal_centre_differs_from_dirac_for_even_kernels():
    # k = 4: JAX's centre is (4 - 1) // 2 = 1, torch's dirac_ (and fastinit.dirac) use 4 // 2.
    delta = fi.delta_orthogonal((4, 4, 3, 3), 0)
    dirac = fi.dirac((3, 3, 4, 4))  # PyTorch's layout (out, in, h, w)
    assert np.argwhere(np.abs(delta).sum(axis=(2, 3)) > 0).tolist() == [[1, 1]]
    assert np.argwhere(np.abs(dirac).sum(axis=(0, 1)) > 0).tolist() == [[2, 2]]
    # Odd k: both the middle.
    delta = fi.delta_orthogonal((5, 3, 3), 0)
    assert np.argwhere(np.abs(delta).sum(axis=(1, 2)) > 0).tolist() == [[2]]
    assert np.argwhere(np.abs(fi.dirac((3, 3, 5))).sum(axis=(0, 1)) > 0).tolist() == [[2]]


def test_delta_orthogonal_regions_are_slices_of_the_full_result():
    for shape in DELTA_SHAPES:
        for dtype in ("float32", "float64", "float16"):
            full = fi.delta_orthogonal(shape, 4, dtype=dtype)
            assert full.dtype == np.dtype(dtype)
            regions = (
                list(_regions(shape))
                + [
                    tuple(slice(0, 1) for _ in shape),  # misses the centre when k > 2
                    tuple(slice(None) for _ in shape[:-2]) + (slice(1, 2), slice(0, 2)),
                ]
            )
            for region in regions:
                part = fi.delta_orthogonal(shape, 4, dtype=dtype, region=region)
                assert part.tobytes() == np.ascontiguousarray(full[region]).tobytes()


def test_delta_orthogonal_float64():
    x = fi.delta_orthogonal((3, 3, 16, 16), 1, dtype="float64")[1, 1]
    assert np.abs(x @ x.T - np.eye(16)).max() < 1e-13


@pytest.mark.parametrize(
    ("shape", "kwargs", "error", "match"),
    [
        ((4, 6), {}, ValueError, "3, 4 or 5 axes"),
        ((2, 2, 2, 2, 2, 4), {}, ValueError, "3, 4 or 5 axes"),
        ((3, 6, 4), {}, ValueError, r"shape\[-2\] <= shape\[-1\]"),
        ((3, 4, 6), {"column_axis": 2}, ValueError, "column_axis=2 is out of range"),
        ((3, 4, 6), {"column_axis": None}, TypeError, "column_axis"),
        ((3, 4, 6), {"scale": -1.0}, ValueError, "scale"),
        ((3, 4, 6), {"scale": 1e5, "dtype": "float16"}, ValueError, "scale"),
    ],
)
def test_bad_delta_orthogonal(shape, kwargs, error, match):
    out = np.full(shape, 7.0, np.float16 if kwargs.get("dtype") else np.float32)
    with pytest.raises(error, match=match):
        fi.delta_orthogonal(shape, 0, out=out, **kwargs)
    assert (out == 7.0).all()


def test_delta_orthogonal_equals_fastinit_jax_builder_and_jaxs_structure():
    jax = pytest.importorskip("jax")
    fj = pytest.importorskip("fastinit.jax")
    for shape in DELTA_SHAPES[1:4]:  # JAX compiles per shape: three (3-, 4-, 4-d) suffice
        ours = np.asarray(fj.delta_orthogonal(1.5)(3, shape))
        assert ours.tobytes() == fi.delta_orthogonal(shape, 3, 1.5).tobytes()
        theirs = np.asarray(jax.nn.initializers.delta_orthogonal(1.5)(jax.random.key(3), shape))
        assert theirs.shape == ours.shape and theirs.dtype == ours.dtype
        assert ((theirs != 0) == (ours != 0)).all()  # the same centre, zeros elsewhere
    with pytest.raises(ValueError, match=r"shape\[-2\] <= shape\[-1\]"):
        fj.delta_orthogonal()(0, (3, 6, 4))


# ---------------------------------------------------------------------------
# The CUDA route of the new outputs, against test_cuda_routing_fake's fake device


@pytest.mark.usefixtures("fake_device")
@pytest.mark.parametrize(
    "call",
    [
        lambda **kw: fi.orthogonal((4, 6, 5), 2, layout="jax", column_axis=1, **kw),
        lambda **kw: fi.orthogonal((12, 20), 2, 1.5, dtype="float64", **kw),
        lambda **kw: fi.delta_orthogonal((3, 3, 4, 6), 2, dtype="bfloat16", **kw),
        lambda **kw: fi.delta_orthogonal((4, 4, 6), 2, region=(slice(1, 2), slice(1, 3)), **kw),
        lambda **kw: fi.variance_scaling((6, 5, 4), 2, mode="fan_geo_avg", **kw),
    ],
    ids=["orthogonal-jax", "orthogonal-f64", "delta", "delta-region", "fan_geo_avg"],
)
def test_the_cuda_route_writes_the_cpu_bits(call):
    on_device = call(device="cuda")
    on_host = call()
    assert isinstance(on_device, fi.CudaArray)
    assert on_device.to_numpy().tobytes() == on_host.tobytes()


# ---------------------------------------------------------------------------
# What JAX users pass: complex dtypes, and 0-d or full jax.Arrays as parameters


def test_fastinit_jax_writes_complex_as_the_core_does():
    jax = pytest.importorskip("jax")
    fj = pytest.importorskip("fastinit.jax")
    key = jax.random.PRNGKey(3)
    seed = fj.seed_from_key(key)
    ours = np.asarray(fj.he_normal()(key, (64, 32), "complex64"))
    np.testing.assert_array_equal(
        ours, fi.he_normal((64, 32), seed, dtype="complex64", layout="jax")
    )
    normal = np.asarray(fj.normal(0.5)(key, (40,), "complex64"))
    np.testing.assert_array_equal(normal, fi.normal((40,), seed, std=0.5, dtype="complex64"))
    with pytest.raises(ValueError, match="dtype"):  # JAX's truncated_normal refuses it too
        fj.truncated_normal()(key, (3,), "complex64")


def test_fastinit_jax_takes_jax_arrays_as_parameters():
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    fj = pytest.importorskip("fastinit.jax")
    key = jax.random.PRNGKey(0)
    np.testing.assert_array_equal(
        np.asarray(fj.uniform(jnp.array(2.0, jnp.float32))(key, (4, 4))),
        np.asarray(fj.uniform(2.0)(key, (4, 4))),
    )
    np.testing.assert_array_equal(
        np.asarray(fj.constant(jnp.array([1.0, 2.0]))(key, (2, 2))), [[1.0, 2.0], [1.0, 2.0]]
    )
    with pytest.raises(TypeError, match="scale must be a real number"):
        fj.uniform(jnp.array(True))
