"""initializers.parameters + _fill.fill_flat: a spec tensor filled by flat ranges.

The checkpoint writer fills windows of a tensor's flat elements. For every spec
initializer, `fill_flat(out, parameters(init, shape, dtype, params), seed, stream,
first, threads)` must give the bits of the public call `fastinit.<init>(shape, seed,
stream=stream, dtype=dtype, **params)` flattened, from element `first` on; zeros, ones
and constant give the rounded value instead. parameters() refuses what the public
function refuses, with the same exception type.
"""

from __future__ import annotations

import math

import fastinit
import ml_dtypes
import numpy as np
import pytest
from _shared import DTYPES, NUMPY_DTYPES, UINT_OF_SIZE
from fastinit import _fill, computed, initializers, specs

SEED = 20_261_128

# One parameter setting per spec initializer, away from the defaults where it has any.
SAMPLED = {
    "normal": {"mean": 0.5, "std": 2.0},
    "truncated_normal": {"mean": -1.0, "std": 0.5, "a": -1.5, "b": 0.25},
    "uniform": {"low": -3.0, "high": 0.5},
    "glorot_normal": {"gain": 1.5},
    "glorot_uniform": {"layout": "jax"},
    "he_normal": {"distribution": "normal"},
    "he_uniform": {"fan_in": 7.0},
    "lecun_normal": {},
    "lecun_uniform": {"gain": 0.25, "layout": "keras"},
    "variance_scaling": {"scale": 3.0, "mode": "fan_avg", "distribution": "uniform"},
}
CONSTANTS = {"zeros": {}, "ones": {}, "constant": {"value": 0.1}}


def bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x).view(UINT_OF_SIZE[x.dtype.itemsize])


def test_every_spec_initializer_is_covered():
    # The formulas of fastinit.computed are made on the host: tests/test_computed.py.
    covered = set(SAMPLED) | set(CONSTANTS) | set(computed.FORMULAS)
    assert covered == set(specs.INITIALIZERS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("init", sorted(SAMPLED))
@pytest.mark.parametrize(("shape", "first", "count"), [((24, 37), 0, 888), ((5, 6, 7), 61, 100)])
def test_fill_flat_equals_the_public_call(init, dtype, shape, first, count):
    params = SAMPLED[init]
    stream = f"layers.{init}.weight"
    full = getattr(fastinit, init)(shape, SEED, stream=stream, dtype=dtype, **params)
    out = np.full(count, np.nan, dtype=NUMPY_DTYPES[dtype])  # poisoned: every element written
    values = initializers.parameters(init, shape, dtype, params)
    _fill.fill_flat(out, values, SEED, fastinit.stream_id(stream), first, 2)
    np.testing.assert_array_equal(bits(out), bits(full.reshape(-1)[first : first + count]))


@pytest.mark.parametrize("threads", [1, 3])
def test_fill_flat_takes_any_shape_and_chunks(threads):
    """Windows of any shape, filled piecewise, give the whole tensor's bits."""
    shape, params = (64, 48), {"gain": 2.0}
    full = fastinit.he_normal(shape, SEED, stream=9, dtype="bfloat16", **params)
    values = initializers.parameters("he_normal", shape, "bfloat16", params)
    pieces = []
    for first, rows in ((0, 3), (3 * 48, 40), (43 * 48, 21)):
        window = np.empty((rows, 48), dtype=ml_dtypes.bfloat16)
        _fill.fill_flat(window, values, SEED, 9, first, threads)
        pieces.append(window)
    np.testing.assert_array_equal(bits(np.concatenate(pieces)), bits(full))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("init", sorted(CONSTANTS))
def test_constants_come_back_rounded_into_the_dtype(init, dtype):
    params = CONSTANTS[init]
    expected = getattr(fastinit, init)((3, 4), dtype=dtype, **params)
    value = initializers.parameters(init, (3, 4), dtype, params)
    assert type(value) is float
    got = np.full((3, 4), value, dtype=NUMPY_DTYPES[dtype])
    np.testing.assert_array_equal(bits(got), bits(expected))


def test_a_bfloat16_midpoint_is_rounded_once():
    """1 + 2^-8 + 2^-30 rounds up in bfloat16, but to 1 + 2^-8 (a tie, then even: 1) via
    float32: the value must be the single rounding, as fastinit.constant's."""
    value = 1 + 2**-8 + 2**-30
    got = initializers.parameters("constant", (2,), "bfloat16", {"value": value})
    assert got == 1 + 2**-7
    assert got == float(fastinit.constant((2,), value, dtype="bfloat16")[0])


def test_zero_size_shapes_have_parameters():
    params = initializers.parameters("glorot_normal", (0, 5), "float32", {})
    out = np.empty(0, dtype=np.float32)
    _fill.fill_flat(out, params, SEED, 0, 0, 1)  # nothing to write, nothing raised
    assert out.size == 0


@pytest.mark.parametrize(
    ("init", "shape", "dtype", "params", "error", "match"),
    [
        ("he_normal", (4, 4), "float32", {"gain": -1.0}, ValueError, "gain"),
        ("he_normal", (4, 4), "float32", {"scale": 2.0}, TypeError, "scale"),
        ("he_normal", (4,), "float32", {}, ValueError, "fan"),
        ("variance_scaling", (4, 4), "float32", {"mode": "fan_sum"}, ValueError, "mode"),
        ("variance_scaling", (4, 4), "float32", {"layout": "tf"}, ValueError, "layout"),
        ("normal", (4,), "float16", {"std": 1e5}, ValueError, "std"),
        ("uniform", (4,), "float32", {"low": 2.0, "high": 1.0}, ValueError, "low"),
        ("truncated_normal", (4,), "float32", {"a": 1.0, "lower": 0.0}, ValueError, "bounds"),
        ("constant", (4,), "float16", {"value": 1e6}, ValueError, "value"),
        ("constant", (4,), "float32", {}, TypeError, "value"),
        ("ones", (4,), "float32", {"value": 2.0}, TypeError, "value"),
        ("orthogonal", (4, 4), "float32", {}, ValueError, "init"),
        ("normal", (4, -1), "float32", {}, ValueError, r"shape\[1\]"),
        ("normal", (4,), "int8", {}, ValueError, "dtype"),
    ],
)
def test_parameters_refuse_what_the_public_function_refuses(
    init, shape, dtype, params, error, match
):
    with pytest.raises(error, match=match):
        initializers.parameters(init, shape, dtype, params)
    if init in specs.INITIALIZERS:  # the public function refuses it too
        public = getattr(fastinit, init)
        seeded = init not in CONSTANTS
        with pytest.raises(error):
            public(shape, *((SEED,) if seeded else ()), dtype=dtype, **params)


def test_parameters_are_the_public_calls_params():
    """The same Params object's constants: a parameter set shared through the cache."""
    params = initializers.parameters("lecun_uniform", (8, 16), "float64", {"gain": 3.0})
    limit = 3.0 * math.sqrt(3.0 / 16)
    assert params.transform == "uniform"
    assert math.isclose(params.scale, limit, rel_tol=1e-7)
