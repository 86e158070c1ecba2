"""fastinit.keras: Keras 3 initializer classes with Keras's names, arguments, configs and
fan rule, whose values are exactly fastinit's.

Checked against the installed Keras: every random class's sample mean and variance agree
with the exact values and with Keras's own initializer of the same config, within 6
standard errors estimated from the samples (2^20 values for the 2-d shapes, where a 1%
variance error is 7 to 11 standard errors from the exact value); every class equals its
fastinit call bit for bit in every dtype; configs and Keras serialization round-trip to
the same values; Dense, Conv2D, EinsumDense, MultiHeadAttention and a saved and loaded
model use them; the same bits on the JAX (when installed) and NumPy backends.
KERAS_BACKEND defaults to torch here (the test extra has it); the module skips without
keras.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import fastinit  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
fk = pytest.importorskip("fastinit.keras")

# Keras's torch backend converts tensors with np.array(tensor), which NumPy 2 warns about.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

TRUNC = fastinit.TRUNCATED_NORMAL_STD
DTYPES = ("float32", "bfloat16", "float16", "float64")


def numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def same_bits(got, want: np.ndarray) -> bool:
    """Bit equality (float64 holds every narrower value exactly, and -0.0 != 0.0 here)."""
    got = numpy(got)
    if got.shape != want.shape or got.dtype != want.dtype:
        return False
    wide = np.ascontiguousarray(got.astype(np.float64)).view(np.uint64)
    return np.array_equal(wide, np.ascontiguousarray(want.astype(np.float64)).view(np.uint64))


# ---------------------------------------------------------------------------
# Statistics against the exact values and against Keras's own initializers

SHAPE = (2048, 512)  # fan_in 2048, fan_out 512, fan_avg 1280
CONV = (3, 3, 128, 256)  # Keras: fan_in 3*3*128, fan_out 3*3*256
STATS = [  # (class name, arguments, shape, exact mean, exact variance)
    ("GlorotNormal", {}, SHAPE, 0.0, 1 / 1280),
    ("GlorotUniform", {}, SHAPE, 0.0, 1 / 1280),
    ("HeNormal", {}, SHAPE, 0.0, 2 / 2048),
    ("HeUniform", {}, CONV, 0.0, 2 / (9 * 128)),
    ("LecunNormal", {}, CONV, 0.0, 1 / (9 * 128)),
    ("LecunUniform", {}, SHAPE, 0.0, 1 / 2048),
    ("VarianceScaling", {"scale": 3.0, "mode": "fan_out"}, SHAPE, 0.0, 3 / 512),
    (
        "VarianceScaling",
        {"scale": 0.5, "mode": "fan_avg", "distribution": "untruncated_normal"},
        CONV,
        0.0,
        0.5 / (9 * 192),
    ),
    ("VarianceScaling", {"mode": "fan_in", "distribution": "uniform"}, SHAPE, 0.0, 1 / 2048),
    ("RandomNormal", {"mean": 0.3, "stddev": 0.2}, SHAPE, 0.3, 0.04),
    ("RandomUniform", {"minval": -0.5, "maxval": 1.5}, SHAPE, 0.5, 4 / 12),
    ("TruncatedNormal", {"mean": -1.0, "stddev": 0.5}, SHAPE, -1.0, (0.5 * TRUNC) ** 2),
]


def moments(tensor) -> tuple[float, float, float, float]:
    """(mean, variance, standard error of the mean, standard error of the variance)."""
    x = numpy(tensor).astype(np.float64).ravel()
    mean = float(x.mean())
    d = x - mean
    var = float(d @ d) / x.size
    m4 = float(np.mean(d**4))
    return mean, var, math.sqrt(var / x.size), math.sqrt((m4 - var * var) / x.size)


@pytest.mark.parametrize(("name", "arguments", "shape", "mean", "var"), STATS)
def test_statistics_match_the_exact_values_and_keras(name, arguments, shape, mean, var):
    ours = moments(getattr(fk, name)(**arguments, seed=11)(shape))
    theirs = moments(getattr(keras.initializers, name)(**arguments, seed=11)(shape))
    assert abs(ours[0] - mean) < 6 * ours[2] + 1e-7
    assert abs(ours[1] - var) < 6 * ours[3]
    assert abs(ours[0] - theirs[0]) < 6 * math.hypot(ours[2], theirs[2]) + 1e-7
    assert abs(ours[1] - theirs[1]) < 6 * math.hypot(ours[3], theirs[3])


def test_statistics_fail_for_a_one_percent_error():
    """The variance test above refuses a std 0.5% off (a 1% variance error)."""
    _, var, _, se = moments(fk.HeNormal(seed=11)(SHAPE))
    assert abs(var / 1.01 - 2 / 2048) > 6 * se


def test_bounds():
    uniform = numpy(fk.GlorotUniform(seed=2)(SHAPE))
    limit = math.sqrt(6 / (2048 + 512))
    assert uniform.min() > -limit and uniform.max() < limit
    truncated = numpy(fk.HeNormal(seed=2)(SHAPE))
    cut = 2 * math.sqrt(2 / 2048) / TRUNC
    assert np.abs(truncated).max() <= np.float32(cut) and np.abs(truncated).max() > 0.99 * cut
    shifted = numpy(fk.TruncatedNormal(mean=1.0, stddev=0.5, seed=2)(SHAPE))
    assert shifted.min() >= 0.0 and shifted.max() <= 2.0


def test_orthogonal_is_orthogonal_like_keras():
    for shape in [(64, 48), (48, 64), (4, 4, 8, 24)]:
        for init in (fk.Orthogonal(gain=1.5, seed=3), keras.initializers.Orthogonal(1.5, seed=3)):
            matrix = numpy(init(shape)).astype(np.float64).reshape(-1, shape[-1])
            small = matrix.T @ matrix if matrix.shape[0] >= matrix.shape[1] else matrix @ matrix.T
            np.testing.assert_allclose(small, 2.25 * np.eye(len(small)), atol=1e-5)


# ---------------------------------------------------------------------------
# Bits: each class is its fastinit call

SHAPES = [(6, 10), (3, 3, 4, 8)]


def references(shape: tuple[int, ...], dtype: str) -> list[tuple[object, np.ndarray]]:
    """(initializer, the fastinit call's values) for every class."""
    rows, columns = math.prod(shape[:-1]), shape[-1]
    out = [
        (
            fk.VarianceScaling(0.3, "fan_out", "untruncated_normal", seed=5, stream="w"),
            fastinit.variance_scaling(
                shape,
                5,
                scale=0.3,
                mode="fan_out",
                distribution="normal",
                layout="keras",
                stream="w",
                dtype=dtype,
            ),
        ),
        (
            fk.VarianceScaling(2.0, "fan_avg", "Normal", seed=5),  # Keras: truncated
            fastinit.variance_scaling(
                shape,
                5,
                scale=2.0,
                mode="fan_avg",
                distribution="truncated_normal",
                layout="keras",
                dtype=dtype,
            ),
        ),
        (
            fk.VarianceScaling(distribution="uniform", seed=2**64 - 1, stream=2**64 - 1),
            fastinit.variance_scaling(
                shape,
                2**64 - 1,
                distribution="uniform",
                layout="keras",
                stream=2**64 - 1,
                dtype=dtype,
            ),
        ),
        (
            fk.RandomNormal(0.5, 0.2, seed=3, stream=7),
            fastinit.normal(shape, 3, mean=0.5, std=0.2, stream=7, dtype=dtype),
        ),
        (
            fk.RandomUniform(-1.0, 2.0, seed=3),
            fastinit.uniform(shape, 3, low=-1.0, high=2.0, dtype=dtype),
        ),
        (
            fk.TruncatedNormal(0.1, 0.3, seed=3),
            fastinit.truncated_normal(shape, 3, mean=0.1, std=0.3, dtype=dtype),
        ),
        (
            fk.Orthogonal(2.0, seed=4, stream="q"),
            fastinit.orthogonal((rows, columns), 4, 2.0, stream="q", dtype=dtype).reshape(shape),
        ),
        (
            fk.Orthogonal(0.5, seed=4),
            fastinit.orthogonal(shape, 4, 0.5, layout="keras", dtype=dtype),
        ),
        (fk.Zeros(), fastinit.zeros(shape, dtype=dtype)),
        (fk.Ones(), fastinit.ones(shape, dtype=dtype)),
        (fk.Constant(2.7), fastinit.constant(shape, 2.7, dtype=dtype)),
        (
            fk.Constant(np.linspace(-1, 1, shape[-1])),
            fastinit.constant(shape, np.linspace(-1, 1, shape[-1]), dtype=dtype),
        ),
    ]
    for name in ("glorot_normal", "glorot_uniform", "he_normal", "he_uniform"):
        cls = getattr(fk, name.title().replace("_", ""))
        out.append((cls(seed=9), getattr(fastinit, name)(shape, 9, layout="keras", dtype=dtype)))
    out.append(
        (fk.LecunNormal(seed=9), fastinit.lecun_normal(shape, 9, layout="keras", dtype=dtype))
    )
    out.append(
        (
            fk.LecunUniform(1, stream="k"),
            fastinit.lecun_uniform(shape, 1, layout="keras", stream="k", dtype=dtype),
        )
    )
    if len(shape) == 2:
        out.append((fk.Identity(3.0), fastinit.identity(shape, 3.0, dtype=dtype)))
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_each_class_is_its_fastinit_call(shape, dtype):
    for init, want in references(shape, dtype):
        got = init(shape, dtype=dtype)
        assert keras.backend.standardize_dtype(got.dtype) == dtype, type(init).__name__
        assert same_bits(got, want), type(init).__name__
        assert same_bits(init(list(shape), dtype), want), type(init).__name__  # every call


def test_dtype_none_is_floatx():
    want = fastinit.he_uniform((5, 7), 1, layout="keras")
    assert same_bits(fk.HeUniform(1)((5, 7)), want)
    keras.config.set_floatx("float16")
    try:
        assert same_bits(fk.HeUniform(1)((5, 7)), want.astype(np.float16))
    finally:
        keras.config.set_floatx("float32")


def test_zero_size_shapes():
    for init in (fk.GlorotUniform(1), fk.RandomNormal(seed=1), fk.Zeros(), fk.Orthogonal()):
        assert numpy(init((0, 4))).shape == (0, 4)


def test_keras_fans_of_0d_and_1d_shapes_and_axes():
    """Keras's compute_fans: () -> (1, 1), (n,) -> (n, n); input_axes/output_axes."""
    assert same_bits(fk.GlorotUniform(1)(()), fastinit.glorot_uniform((), 1, layout="keras"))
    assert same_bits(fk.HeNormal(1)((7,)), fastinit.he_normal((7,), 1, layout="keras"))
    ours = moments(fk.GlorotNormal(4)((2**20,)))
    theirs = moments(keras.initializers.GlorotNormal(4)((2**20,)))
    assert abs(ours[1] - 2.0**-20) < 6 * ours[3]
    assert abs(ours[1] - theirs[1]) < 6 * math.hypot(ours[3], theirs[3])
    assert abs(numpy(fk.HeUniform(4)(()))) < math.sqrt(6)  # fans (1, 1): limit sqrt(6)
    init = fk.VarianceScaling(2.0, "fan_avg", seed=3, input_axes=[0], output_axes=[1, 2])
    want = fastinit.variance_scaling(
        (16, 4, 8),
        3,
        scale=2.0,
        mode="fan_avg",
        layout="keras",
        input_axes=[0],
        output_axes=[1, 2],
    )
    assert same_bits(init((16, 4, 8)), want)
    ours = moments(init((1024, 32, 32)))  # fan_in 1024, fan_out 32 * 32
    theirs = moments(
        keras.initializers.VarianceScaling(
            2.0, "fan_avg", seed=3, input_axes=[0], output_axes=[1, 2]
        )((1024, 32, 32))
    )
    assert abs(ours[1] - 2 / 1024) < 6 * ours[3]
    assert abs(ours[1] - theirs[1]) < 6 * math.hypot(ours[3], theirs[3])


# ---------------------------------------------------------------------------
# Configs and serialization


def all_initializers() -> list[object]:
    return [init for init, _ in references((6, 10), "float32")]


def test_config_round_trip_and_keys():
    for init in all_initializers():
        name = type(init).__name__
        config = init.get_config()
        json.dumps(config)  # a model config is JSON
        copy = type(init).from_config(config)
        assert copy.get_config() == config, name
        assert same_bits(copy((6, 10)), numpy(init((6, 10)))), name
        keras_config = getattr(keras.initializers, name)().get_config()
        extra = {"stream"} if "seed" in keras_config else set()
        if name == "Identity":  # Keras's config of Identity forgets its gain
            assert keras_config == {} and config == {"gain": 3.0}
            continue
        assert set(config) == set(keras_config) | extra, name


def test_serialization_round_trip():
    for init in all_initializers():
        name = type(init).__name__
        serialized = keras.saving.serialize_keras_object(init)
        assert serialized["registered_name"] == f"fastinit>{name}"
        for copy in (
            keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized))),
            keras.initializers.get(serialized),
        ):
            assert type(copy) is type(init)
            assert same_bits(copy((6, 10)), numpy(init((6, 10)))), name
        assert type(keras.initializers.get(f"fastinit>{name}")) is type(init)
    dense = keras.layers.Dense(3, kernel_initializer="fastinit>HeNormal")
    assert type(dense.kernel_initializer) is fk.HeNormal


def test_constant_arrays_broadcast_as_in_keras():
    for value, shape in [
        ([[0.1], [-2.5], [3.0]], (3, 4)),
        (np.arange(8, dtype=np.float32) / 7, (2, 3, 8)),
        (keras.ops.convert_to_tensor(np.float32(0.3)), (5,)),
    ]:
        ours = fk.Constant(value)
        want = numpy(keras.initializers.Constant(value)(shape))
        assert same_bits(ours(shape), want)
        serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(ours)))
        assert same_bits(keras.saving.deserialize_keras_object(serialized)(shape), want)
    array = np.ones(3)
    constant = fk.Constant(array)
    array[0] = 5.0  # the initializer keeps its own copy
    assert same_bits(constant((2, 3)), np.ones((2, 3), np.float32))


def test_config_of_keras_arguments():
    init = fk.VarianceScaling(0.5, "fan_out", "NORMAL", seed=4, stream="x")
    assert init.get_config() == {
        "seed": 4,
        "scale": 0.5,
        "mode": "fan_out",
        "distribution": "truncated_normal",
        "input_axes": None,
        "output_axes": None,
        "stream": "x",
    }
    assert isinstance(init, keras.initializers.VarianceScaling)
    assert fk.GlorotUniform(seed=1).get_config() == {
        "seed": 1,
        "input_axes": None,
        "output_axes": None,
        "stream": 0,
    }


# ---------------------------------------------------------------------------
# Seeds


def test_unseeded_draws_once_reproducibly_under_set_random_seed():
    keras.utils.set_random_seed(123)
    first = [fk.GlorotUniform(), fk.RandomNormal(), fk.Orthogonal()]
    keras.utils.set_random_seed(123)
    again = [fk.GlorotUniform(), fk.RandomNormal(), fk.Orthogonal()]
    for a, b in zip(first, again, strict=True):
        assert a.seed == b.seed and same_bits(a((8, 8)), numpy(b((8, 8))))
        assert same_bits(a((8, 8)), numpy(a((8, 8))))  # stable across calls
        assert a.get_config()["seed"] is None  # as Keras: the copy draws its own seed
        assert type(a).from_config(a.get_config()).seed != a.seed
    assert first[0].seed != fk.GlorotUniform().seed


def test_seed_generators_and_bad_seeds_are_refused():
    with pytest.raises(TypeError, match="seed .*SeedGenerator"):
        fk.GlorotUniform(seed=keras.random.SeedGenerator(1))
    with pytest.raises(TypeError, match="seed"):
        fk.RandomNormal(seed={"class_name": "SeedGenerator", "config": {"seed": 1}})
    with pytest.raises(OverflowError, match="seed"):
        fk.HeNormal(seed=-1)
    with pytest.raises(TypeError, match="seed"):
        fk.Orthogonal(seed=1.0)
    with pytest.raises(OverflowError, match="stream"):
        fk.HeNormal(seed=1, stream=2**64)


def test_streams_and_seeds_change_the_values():
    base = numpy(fk.HeNormal(seed=1)((16, 16)))
    assert not np.array_equal(base, numpy(fk.HeNormal(seed=2)((16, 16))))
    assert not np.array_equal(base, numpy(fk.HeNormal(seed=1, stream=1)((16, 16))))


# ---------------------------------------------------------------------------
# Layers and models


def test_dense_and_conv2d_kernels_are_fastinit_bits():
    dense = keras.layers.Dense(
        8, kernel_initializer=fk.GlorotUniform(seed=1), bias_initializer=fk.Constant(0.25)
    )
    dense.build((None, 4))
    assert same_bits(dense.kernel, fastinit.glorot_uniform((4, 8), 1, layout="keras"))
    assert same_bits(dense.bias, np.full(8, 0.25, np.float32))
    conv = keras.layers.Conv2D(8, 3, kernel_initializer=fk.HeNormal(seed=2, stream="conv"))
    conv.build((None, 10, 10, 4))
    want = fastinit.he_normal((3, 3, 4, 8), 2, layout="keras", stream="conv")
    assert same_bits(conv.kernel, want)


def test_einsum_dense_and_attention_give_their_fan_axes():
    layer = keras.layers.EinsumDense(
        "ab,bcd->acd", output_shape=(4, 8), kernel_initializer=fk.GlorotUniform(seed=1)
    )
    layer.build((None, 16))
    want = fastinit.glorot_uniform(
        (16, 4, 8), 1, layout="keras", input_axes=[0], output_axes=[1, 2]
    )
    assert same_bits(layer.kernel, want)
    attention = keras.layers.MultiHeadAttention(2, 8, kernel_initializer=fk.GlorotUniform())
    attention.build((None, 5, 16), (None, 5, 16))
    kernels = [numpy(attention._query_dense.kernel), numpy(attention._key_dense.kernel)]
    assert not np.array_equal(*kernels)  # each clone drew its own seed, as in Keras


def test_saved_model_keeps_the_initializer_config(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(
                3,
                kernel_initializer=fk.VarianceScaling(0.5, "fan_avg", "uniform", 7, stream="d"),
                bias_initializer=fk.Ones(),
            ),
        ]
    )
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    dense = loaded.layers[0]
    assert type(dense.kernel_initializer) is fk.VarianceScaling
    assert dense.kernel_initializer.get_config() == model.layers[0].kernel_initializer.get_config()
    assert type(dense.bias_initializer) is fk.Ones
    want = fastinit.variance_scaling(
        (4, 3), 7, scale=0.5, mode="fan_avg", distribution="uniform", layout="keras", stream="d"
    )
    assert same_bits(dense.kernel, want)


# ---------------------------------------------------------------------------
# Bad arguments: refused, naming the argument


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: fk.VarianceScaling(scale=0.0), ValueError, "scale"),
        (lambda: fk.VarianceScaling(scale=-1.0), ValueError, "scale"),
        (lambda: fk.VarianceScaling(scale="2"), TypeError, "scale"),
        (lambda: fk.VarianceScaling(mode="fan_geo_avg"), ValueError, "mode"),
        (lambda: fk.VarianceScaling(distribution="gamma"), ValueError, "distribution"),
        (lambda: fk.VarianceScaling(distribution=None), ValueError, "distribution"),
        (lambda: fk.GlorotNormal(input_axes=[0]), ValueError, "input_axes"),
        (lambda: fk.GlorotNormal(input_axes=[0], output_axes=1), TypeError, "output_axes"),
        (lambda: fk.GlorotNormal(input_axes=[0.5], output_axes=[1]), TypeError, "input_axes"),
        (lambda: fk.HeNormal(1, [2], [1])((3, 4)), ValueError, "input_axes"),
        (lambda: fk.HeNormal(1, [0], [0])((3, 4)), ValueError, "distinct"),
        (lambda: fk.RandomNormal(stddev=-0.1), ValueError, "stddev"),
        (lambda: fk.TruncatedNormal(stddev=0.0), ValueError, "stddev"),
        (lambda: fk.RandomNormal(mean=math.nan), ValueError, "mean"),
        (lambda: fk.RandomUniform(1.0, 0.0), ValueError, "minval"),
        (lambda: fk.RandomUniform(0.0, math.inf), ValueError, "maxval"),
        (lambda: fk.Orthogonal(gain=-1.0), ValueError, "gain"),
        (lambda: fk.Identity(gain=-1.0), ValueError, "gain"),
        (lambda: fk.Constant(["a"]), TypeError, "value"),
        (lambda: fk.Constant([1.0, math.nan]), ValueError, "value"),
        (lambda: fk.Constant(np.ones(3))((6, 10)), ValueError, "value of shape"),
        (lambda: fk.GlorotUniform(1)((4, 4), "int32"), ValueError, "dtype"),
        (lambda: fk.Zeros()((4, 4), "float8"), ValueError, "dtype"),
        (lambda: fk.Orthogonal(seed=1)((5,)), ValueError, "2 axes"),
        (lambda: fk.Identity()((2, 2, 2)), ValueError, "2-D"),
        (lambda: fk.HeNormal(1)((4, -1)), ValueError, "shape"),
    ],
)
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ---------------------------------------------------------------------------
# Import and other backends


def test_import_fastinit_does_not_import_keras():
    code = "import sys, fastinit; print('keras' in sys.modules, 'fastinit.keras' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_jax_backend_gives_the_same_bits():
    """On JAX, plain and under a ModelParallel distribution (4 CPU devices), both ways
    Keras initializes a sharded variable: values then sharding, or the initializer under
    jax.jit with out_shardings (for large variables; forced here)."""
    pytest.importorskip("jax")
    code = """
import fastinit, fastinit.keras as fk, keras, numpy as np
from keras.src.backend.jax import core
want = fastinit.lecun_normal((16, 8), 3, layout="keras")
def kernel(name):
    layer = keras.layers.Dense(8, kernel_initializer=fk.LecunNormal(seed=3), name=name)
    layer.build((None, 16))
    value = layer.kernel.value
    return np.array_equal(np.asarray(value).view(np.uint32), want.view(np.uint32)), value
same, value = kernel("plain")
print(keras.backend.backend(), value.dtype, same)
mesh = keras.distribution.DeviceMesh((2, 2), ["a", "b"], keras.distribution.list_devices())
layouts = keras.distribution.LayoutMap(mesh)
layouts["sharded.*kernel"] = ("a", "b")
keras.distribution.set_distribution(keras.distribution.ModelParallel(layout_map=layouts))
same, value = kernel("sharded")
print(same, len(value.addressable_shards))
core.should_shard_at_init = lambda layout, shape: True
same, value = kernel("sharded_jit")
print(same, len(value.addressable_shards))
"""
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.split() == ["jax", "float32", "True", "True", "4", "True", "4"]


def test_numpy_backend_gives_the_same_bits():
    # Keras's numpy backend imports jax (its convolutions), which CI does not install.
    pytest.importorskip("jax")
    code = (
        "import fastinit, fastinit.keras as fk, keras, numpy as np\n"
        "layer = keras.layers.Conv1D(4, 3, kernel_initializer=fk.HeUniform(seed=2))\n"
        "layer.build((None, 10, 5))\n"
        "want = fastinit.he_uniform((3, 5, 4), 2, layout='keras')\n"
        "got = np.asarray(layer.kernel.value)\n"
        "print(keras.backend.backend(), np.array_equal(got.view(np.uint32), "
        "want.view(np.uint32)))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "numpy"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.split() == ["numpy", "True"]


@pytest.mark.parametrize(
    "arguments", [{"scale": -1.0}, {"mode": "fan_geo_avg"}, {"distribution": "gamma"}]
)
def test_variance_scaling_errors_start_with_keras_words(arguments):
    """Code written for Keras that looks for Keras's message finds it: ours starts with
    the first sentence of Keras's own error for the same argument, then says more."""
    with pytest.raises(ValueError) as theirs:
        keras.initializers.VarianceScaling(**arguments)
    with pytest.raises(ValueError) as ours:
        fk.VarianceScaling(**arguments)
    first_sentence = str(theirs.value).split(". ")[0].split(".Please")[0]
    assert str(ours.value).startswith(first_sentence), (str(ours.value), first_sentence)
