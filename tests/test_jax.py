"""fastinit.jax: sharded jax.Arrays equal the single NumPy call, bit for bit, and the
jax.nn.initializers-style builders have JAX's signatures, fans and distributions.

Runs on 4 forced CPU devices: XLA_FLAGS=--xla_force_host_platform_device_count=4 is set
here before jax is imported (it must be, before the backend starts); the module skips
when jax is absent (CI does not install it: see the README's JAX test command) or when
jax was already started with fewer CPU devices.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

_FLAG = "--xla_force_host_platform_device_count=4"
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()

import fastinit  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax = pytest.importorskip("jax")
fj = pytest.importorskip("fastinit.jax")

import jax.numpy as jnp  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

CPUS = jax.devices("cpu")
if len(CPUS) < 4:
    pytest.skip(
        f"needs 4 CPU devices, jax has {len(CPUS)}: set XLA_FLAGS={_FLAG} before jax starts",
        allow_module_level=True,
    )

MESH_2X2 = Mesh(np.array(CPUS[:4]).reshape(2, 2), ("x", "y"))
SPECS = {
    "replicated": P(),
    "rows": P("x"),
    "columns": P(None, "x"),
    "both": P("x", "y"),
    "both_swapped": P("y", "x"),
    "rows_over_4": P(("x", "y")),
}
SHAPE = (16, 12)
BITS = {np.dtype(np.float32): np.uint32, np.dtype(jnp.bfloat16): np.uint16}


def bits(values) -> np.ndarray:
    """A bit-exact view (so -0.0 != 0.0 and NaN patterns count)."""
    values = np.asarray(values)
    return values.view(BITS[values.dtype])


def sharding(spec: P) -> NamedSharding:
    return NamedSharding(MESH_2X2, spec)


# ---------------------------------------------------------------------------
# make_array: every sharding gives the single call's bits


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("spec", list(SPECS.values()), ids=list(SPECS))
def test_make_array_equals_the_single_call(spec, dtype):
    expected = fastinit.glorot_normal(SHAPE, 42, dtype=dtype, stream="w", layout="jax")
    array = fj.make_array(
        "glorot_normal", SHAPE, 42, sharding(spec), dtype=dtype, stream="w", layout="jax"
    )
    assert array.shape == SHAPE and array.dtype == expected.dtype
    assert array.sharding == sharding(spec)
    np.testing.assert_array_equal(bits(array), bits(expected))
    # Each device holds its own block of the full tensor, not just a correct gather.
    assert len(array.addressable_shards) == 4
    for shard in array.addressable_shards:
        np.testing.assert_array_equal(bits(shard.data), bits(expected[shard.index]))


def test_replicated_blocks_are_computed_once(monkeypatch):
    calls = []
    real = fj._SEEDED["normal"]

    def counting(*args, **kwargs):
        calls.append(kwargs["region"])
        return real(*args, **kwargs)

    monkeypatch.setitem(fj._SEEDED, "normal", counting)
    array = fj.make_array("normal", SHAPE, 3, sharding(P("x")), std=0.5)  # 2 blocks, 4 devices
    np.testing.assert_array_equal(bits(array), bits(fastinit.normal(SHAPE, 3, std=0.5)))
    # One check on an empty region, then one call per distinct block.
    assert calls == [
        (slice(0, 0), slice(0, 0)),
        (slice(0, 8), slice(0, 12)),
        (slice(8, 16), slice(0, 12)),
    ]


SAMPLER_CASES = {
    "variance_scaling": ((8, 12), {"scale": 2.0, "mode": "fan_out", "layout": "jax"}),
    "glorot_uniform": ((8, 12), {}),
    "he_normal": ((8, 3, 2), {"distribution": "normal"}),
    "he_uniform": ((8, 12), {}),
    "lecun_normal": ((8, 12), {}),
    "lecun_uniform": ((8, 12), {}),
    "xavier_normal": ((8, 12), {}),
    "xavier_uniform": ((8, 12), {}),
    "kaiming_normal": ((8, 12), {}),
    "kaiming_uniform": ((8, 12), {}),
    "glorot_normal": ((8, 12), {}),
    "normal": ((8,), {"mean": 1.0, "std": 2.0}),
    "uniform": ((8, 12), {"low": -3.0, "high": 1.0}),
    "truncated_normal": ((8, 12), {"std": 0.02, "a": -0.04, "b": 0.04}),
    "orthogonal": ((8, 12), {"gain": 2.0}),
    "constant": ((8, 12), {"value": -7.0}),
    "zeros": ((8, 12), {}),
    "ones": ((8, 12), {}),
    "identity": ((8, 12), {}),
    "eye": ((8, 12), {"gain": 3.0}),
    "dirac": ((8, 4, 3), {"groups": 2}),
}


def test_sampler_cases_cover_every_sampler():
    assert set(SAMPLER_CASES) == set(fj.SAMPLERS)


@pytest.mark.parametrize("name", list(SAMPLER_CASES))
def test_make_array_of_every_sampler(name):
    shape, params = SAMPLER_CASES[name]
    function = getattr(fastinit, name)
    if name in ("constant", "zeros", "ones", "identity", "eye", "dirac"):
        expected = function(shape, dtype="bfloat16", **params)
    else:
        expected = function(shape, 9, dtype="bfloat16", stream=4, **params)
    array = fj.make_array(name, shape, 9, sharding(P("y")), dtype="bfloat16", stream=4, **params)
    np.testing.assert_array_equal(bits(array), bits(expected))


def test_make_array_takes_a_key_as_seed():
    expected = fastinit.he_normal(SHAPE, 7, layout="jax")
    for seed in (jax.random.key(7), jax.random.PRNGKey(7), np.uint64(7)):
        array = fj.make_array("he_normal", SHAPE, seed, sharding(P("x", "y")), layout="jax")
        np.testing.assert_array_equal(bits(array), bits(expected))


def test_indivisible_shapes_are_jaxs_refusal():
    with pytest.raises(ValueError, match="evenly divide"):
        fj.make_array("glorot_normal", (15, 12), 0, sharding(P("x")))


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"init": "glorot"}, ValueError, "init must be one of"),
        ({"init": "random_bits"}, ValueError, "init must be one of"),
        ({"seed": -1}, OverflowError, "seed must be in"),
        ({"seed": 1.5}, TypeError, "key must be an integer seed"),
        ({"sharding": P("x")}, TypeError, "sharding must be a jax.sharding.Sharding"),
        ({"dtype": "int8"}, ValueError, "dtype must be one of"),
        ({"dtype": "float64"}, ValueError, "dtype float64 needs jax_enable_x64"),
        ({"shape": (16, -1)}, ValueError, r"shape\[1\] must be >= 0"),
        ({"init": "variance_scaling", "mode": "fan_sum"}, ValueError, "mode must be one of"),
        ({"stream": -2}, OverflowError, "stream must be in"),
    ],
)
def test_make_array_refuses_bad_arguments(arguments, error, match):
    call = {"init": "glorot_normal", "shape": SHAPE, "seed": 0, "sharding": sharding(P("x"))}
    call.update(arguments)
    with pytest.raises(error, match=match):
        fj.make_array(
            call.pop("init"), call.pop("shape"), call.pop("seed"), call.pop("sharding"), **call
        )


# ---------------------------------------------------------------------------
# The jax.nn.initializers-style builders

# name -> (scale, mode, distribution), as jax.nn.initializers defines them.
NAMED = {
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
}
KERNELS = {"dense": (48, 20), "conv": (3, 3, 8, 16)}  # Flax: (in, out), (h, w, in, out)


@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize("name", list(NAMED))
def test_named_initializers_are_variance_scaling_with_jax_fans(name, kernel):
    shape = KERNELS[kernel]
    scale, mode, distribution = NAMED[name]
    jax_init = getattr(jax.nn.initializers, name)()
    ours = getattr(fj, name)()
    expected = fastinit.variance_scaling(
        shape, 5, scale=scale, mode=mode, distribution=distribution, layout="jax"
    )
    for dtype in (None, jnp.bfloat16):
        values = ours(5, shape, dtype)
        reference = jax_init(jax.random.key(5), shape, dtype)
        assert values.shape == reference.shape and values.dtype == reference.dtype
        np.testing.assert_array_equal(bits(values), bits(expected.astype(values.dtype)))


def test_aliases_are_jaxs():
    assert fj.xavier_normal is fj.glorot_normal and fj.kaiming_uniform is fj.he_uniform
    assert fj.xavier_uniform is fj.glorot_uniform and fj.kaiming_normal is fj.he_normal


def test_axes_sequences_and_fan_geo_avg():
    # (in, in, batch, out): fan_in = 4 * 5, fan_out = 7, no receptive field.
    shape = (4, 5, 6, 7)
    assert fj.jax_fans(shape, (0, 1), -1, 2) == (20, 7)
    assert fj.jax_fans((3, 3, 8, 16), -2, -1, ()) == (72, 144)
    init = fj.variance_scaling(2.0, "fan_geo_avg", "normal", (0, 1), -1, 2)
    expected = fastinit.variance_scaling(
        shape, 1, scale=2.0, mode="fan_in", distribution="normal", fan_in=math.sqrt(20 * 7)
    )
    np.testing.assert_array_equal(bits(init(1, shape)), bits(expected))
    reference = jax.nn.initializers.variance_scaling(2.0, "fan_geo_avg", "normal", (0, 1), -1, 2)
    assert reference(jax.random.key(1), shape).shape == shape


def _std_tolerance(n: int) -> float:
    """Relative tolerance of a sample std over n values: 6 standard errors of a normal
    sample's std (1/sqrt(2n)); the other distributions here have lighter tails."""
    return 6 / math.sqrt(2 * n)


_PHI_1 = math.exp(-0.5) / math.sqrt(2 * math.pi)  # the standard normal density at 1
_CUT_1_STD = math.sqrt(1 - 2 * _PHI_1 / math.erf(1 / math.sqrt(2)))  # N(0,1) cut to ±1
_GLOROT_STD = 1 / math.sqrt(288)  # (256, 320): fan_avg 288
_TRUNCATION = 2 / 0.87962566103423978  # the ±2σ cut in units of the corrected std

# name -> (our builder, JAX's builder, mean, std, (low, high) bounds of every value)
STATISTICS = {
    "glorot_normal": (
        fj.glorot_normal(),
        jax.nn.initializers.glorot_normal(),
        0.0,
        _GLOROT_STD,
        (-_TRUNCATION * _GLOROT_STD, _TRUNCATION * _GLOROT_STD),
    ),
    "he_uniform": (  # fan_in 256: variance 2 / 256, limit sqrt(3 * 2 / 256)
        fj.he_uniform(),
        jax.nn.initializers.he_uniform(),
        0.0,
        math.sqrt(2 / 256),
        (-math.sqrt(6 / 256), math.sqrt(6 / 256)),
    ),
    "lecun_normal_untruncated": (
        fj.variance_scaling(1.0, "fan_in", "normal"),
        jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal"),
        0.0,
        1 / 16,
        (-math.inf, math.inf),
    ),
    "normal": (fj.normal(0.5), jax.nn.initializers.normal(0.5), 0.0, 0.5, (-math.inf, math.inf)),
    "uniform": (fj.uniform(3.0), jax.nn.initializers.uniform(3.0), 1.5, 3 / math.sqrt(12), (0, 3)),
    "truncated_normal": (  # JAX applies no std correction here
        fj.truncated_normal(0.1, lower=-1.0, upper=1.0),
        jax.nn.initializers.truncated_normal(0.1, lower=-1.0, upper=1.0),
        0.0,
        0.1 * _CUT_1_STD,
        (-0.1, 0.1),
    ),
}


@pytest.mark.parametrize("name", list(STATISTICS))
def test_statistics_match_jaxs_initializers(name):
    ours, theirs, mean, std, (low, high) = STATISTICS[name]
    shape = (256, 320)  # Flax layout: 256 in, 320 out
    n = math.prod(shape)
    values = np.asarray(ours(11, shape), dtype=np.float64)
    reference = np.asarray(theirs(jax.random.key(11), shape), dtype=np.float64)
    for sample in (values, reference):  # the same thresholds for fastinit and for JAX
        assert abs(sample.std() - std) <= _std_tolerance(n) * std
        assert abs(sample.mean() - mean) <= 6 * std / math.sqrt(n)
        assert low * (1 + 1e-6) <= sample.min() and sample.max() <= high * (1 + 1e-6)


def test_orthogonal_is_jaxs_layout():
    for shape, column_axis in (((6, 10), -1), ((10, 6), -1), ((4, 3, 5), 0), ((2, 3, 8), 1)):
        values = np.asarray(fj.orthogonal(2.0, column_axis)(3, shape))
        reference = jax.nn.initializers.orthogonal(2.0, column_axis)(jax.random.key(3), shape)
        assert values.shape == reference.shape == shape and values.dtype == reference.dtype
        columns = shape[column_axis]
        matrix = np.moveaxis(values, column_axis, -1).reshape(-1, columns) / 2.0
        gram = matrix.T @ matrix if matrix.shape[0] >= columns else matrix @ matrix.T
        np.testing.assert_allclose(gram, np.eye(len(gram)), atol=1e-5)
        expected = fastinit.orthogonal((matrix.shape[0], columns), 3, 2.0)
        np.testing.assert_array_equal(
            np.moveaxis(values, column_axis, -1).reshape(-1, columns), expected
        )


def test_constants():
    assert np.array_equal(fj.zeros(0, (2, 3)), np.zeros((2, 3), np.float32))
    assert np.array_equal(fj.ones(jax.random.key(1), (4,), jnp.bfloat16), np.ones(4))
    assert fj.ones(0, (4,), jnp.bfloat16).dtype == jnp.bfloat16
    values = fj.constant(-7.0)(0, (4, 4), out_sharding=sharding(P("x", "y")))
    assert values.sharding == sharding(P("x", "y")) and np.all(np.asarray(values) == -7.0)


def test_initializers_build_sharded_arrays():
    init = fj.he_normal()
    spec = sharding(P(None, None, "x", "y"))
    expected = np.asarray(init(jax.random.key(2), (3, 3, 8, 16)))
    for array in (
        init(jax.random.key(2), (3, 3, 8, 16), out_sharding=spec),
        init(jax.random.key(2), (3, 3, 8, 16), sharding=spec),
    ):
        assert array.sharding == spec
        np.testing.assert_array_equal(bits(array), bits(expected))
    ortho = fj.orthogonal()(2, (8, 8), out_sharding=spec.update(spec=P("x")))
    np.testing.assert_array_equal(bits(ortho), bits(fj.orthogonal()(2, (8, 8))))


def test_stream_separates_tensors_of_one_key():
    init = fj.glorot_uniform()
    a, b = init(0, (8, 8), stream="a"), init(0, (8, 8), stream="b")
    assert not np.array_equal(a, b)
    expected = fastinit.glorot_uniform((8, 8), 0, stream="b", layout="jax")
    np.testing.assert_array_equal(bits(b), bits(expected))


# ---------------------------------------------------------------------------
# Keys


def test_keys_become_seeds_deterministically():
    assert fj.seed_from_key(42) == 42
    assert fj.seed_from_key(jax.random.key(42)) == 42
    assert fj.seed_from_key(jax.random.PRNGKey(42)) == 42
    assert fj.seed_from_key(jnp.array([1, 7], dtype=jnp.uint32)) == (1 << 32) | 7
    assert fj.seed_from_key(jax.random.wrap_key_data(np.uint32([3, 4]))) == (3 << 32) | 4
    assert fj.seed_from_key(np.uint32([0xFFFFFFFF, 0xFFFFFFFF])) == 2**64 - 1
    first, second = jax.random.split(jax.random.key(0))
    assert fj.seed_from_key(first) != fj.seed_from_key(second)
    init = fj.lecun_normal()
    np.testing.assert_array_equal(
        bits(init(first, (16, 4))),
        bits(fastinit.lecun_normal((16, 4), fj.seed_from_key(first), layout="jax")),
    )


@pytest.mark.parametrize(
    ("key", "error", "match"),
    [
        (1.5, TypeError, "key must be an integer seed or a JAX PRNG key"),
        (True, TypeError, "key must be an integer seed or a JAX PRNG key"),
        (2**64, OverflowError, "seed must be in"),
        (np.uint32([1, 2, 3]), ValueError, "key must be an integer seed, a typed PRNG key"),
        (np.float32([1, 2]), ValueError, "key must be an integer seed, a typed PRNG key"),
    ],
)
def test_bad_keys_are_refused(key, error, match):
    with pytest.raises(error, match=match):
        fj.glorot_normal()(key, (4, 4))


def test_batched_and_wide_keys_are_refused():
    with pytest.raises(ValueError, match="key must be a single PRNG key"):
        fj.normal()(jax.random.split(jax.random.key(0)), (4,))
    with pytest.raises(ValueError, match="key must be an integer seed, a typed PRNG key"):
        fj.normal()(jax.random.key(0, impl="rbg"), (4,))


def test_traced_keys_are_refused():
    with pytest.raises(TypeError, match="cannot run under jax.jit"):
        jax.jit(lambda key: fj.normal()(key, (4,)))(jax.random.key(0))


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: fj.variance_scaling(0.0, "fan_in", "normal"), ValueError, "scale must be > 0"),
        (lambda: fj.variance_scaling(1.0, "fan", "normal"), ValueError, "mode must be one of"),
        (lambda: fj.variance_scaling(1.0, "fan_in", "cauchy"), ValueError, "distribution must"),
        (lambda: fj.normal(-1.0), ValueError, "stddev must be >= 0"),
        (lambda: fj.uniform("1"), TypeError, "scale must be a real number"),
        (lambda: fj.truncated_normal(0.0), ValueError, "stddev must be > 0"),
        (lambda: fj.orthogonal(1.0, 1.5), TypeError, "column_axis must be an integer axis"),
    ],
)
def test_builders_check_their_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: fj.glorot_normal()(0, (4,)), ValueError, "at least 2 axes"),
        (lambda: fj.glorot_normal(in_axis=3)(0, (4, 4)), ValueError, "in_axis=3 is out of range"),
        (lambda: fj.he_normal(0, 0)(0, (4, 4)), ValueError, "must be distinct axes"),
        (lambda: fj.he_normal("0")(0, (4, 4)), TypeError, "in_axis must be an axis or a seq"),
        (lambda: fj.orthogonal()(0, (4,)), ValueError, "at least 2 axes"),
        (lambda: fj.orthogonal(column_axis=2)(0, (4, 4)), ValueError, "column_axis=2 is out"),
        (lambda: fj.normal()(0, (4,), jnp.int32), ValueError, "dtype must be one of"),
        (
            lambda: fj.normal()(0, (4,), out_sharding=P("x")),
            TypeError,
            "out_sharding must be a jax.sharding.Sharding",
        ),
        (
            lambda: fj.normal()(0, (4,), out_sharding=sharding(P()), sharding=sharding(P())),
            ValueError,
            "pass out_sharding or sharding, not both",
        ),
    ],
)
def test_initializers_check_their_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_float64_follows_jax_x64():
    # Without jax_enable_x64, JAX's own initializers give float32 for float64: so do ours.
    assert fj.normal()(0, (4,), jnp.float64).dtype == jnp.float32
    assert fj.normal()(0, (4,)).dtype == jax.nn.initializers.normal()(jax.random.key(0), (4,)).dtype


def test_import_fastinit_does_not_import_jax():
    code = "import sys, fastinit; assert 'jax' not in sys.modules, 'jax imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
