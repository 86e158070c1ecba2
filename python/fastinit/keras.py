"""fastinit for Keras 3: `keras.initializers` classes whose values are fastinit's.

    import fastinit.keras          # needs the extra: pip install 'fastinit[keras]'
    layer = keras.layers.Dense(512, kernel_initializer=fastinit.keras.GlorotUniform(seed=1))

Each class has the name, constructor arguments, defaults and get_config keys of its
Keras 3 namesake, plus fastinit's keyword-only `stream` (an integer in [0, 2^64) or a
tensor name; default 0), and works in any layer on any backend (tested: PyTorch, JAX,
NumPy):

- `VarianceScaling(scale, mode, distribution, seed, input_axes, output_axes)` and the
  named `GlorotNormal`, `GlorotUniform`, `HeNormal`, `HeUniform`, `LecunNormal`,
  `LecunUniform`: `fastinit.variance_scaling(shape, seed, ..., layout="keras")`, Keras's
  fan rule (kernels (*window, in, out); a 1-d shape (n,) has fans (n, n), a 0-d one (1, 1);
  `input_axes` / `output_axes`, given together, name the axes whose product is each fan,
  as EinsumDense gives them). distribution "truncated_normal" (±2σ, σ corrected by
  0.87962566103423978 so the variance is exactly scale / n; Keras's legacy "normal" means
  this too), "untruncated_normal", "uniform" (±sqrt(3 scale / n)). VarianceScaling is a
  subclass of keras.initializers.VarianceScaling, so that Keras layers which treat that
  class specially (EinsumDense and MultiHeadAttention give it their fan axes) treat this
  one alike; the others subclass keras.initializers.Initializer.
- `RandomNormal(mean, stddev)`, `RandomUniform(minval, maxval)`,
  `TruncatedNormal(mean, stddev)` (cut at ±2 stddev, no std correction, as Keras):
  fastinit.normal / uniform / truncated_normal.
- `Orthogonal(gain)`: `fastinit.orthogonal(shape, seed, gain, layout="keras")`, Keras's
  layout: a (prod(shape[:-1]), shape[-1]) matrix reshaped to the shape.
- `Zeros`, `Ones`, `Constant(value)` (a real, or an array-like broadcast to the shape),
  `Identity(gain)` (2-d shapes).

Values. `init(shape, dtype)` computes `fastinit.<sampler>(shape, seed, ..., dtype=dtype,
stream=stream)` on the host and returns it as a backend tensor with
`keras.ops.convert_to_tensor`: bit for bit the NumPy call's values, on every backend and
device. That conversion is the one copy (host to device; on the PyTorch CPU backend the
tensor shares the NumPy array's memory). Under a keras.distribution (JAX) Keras shards the
values itself; for variables it deems large it calls the initializer under jax.jit with
out_shardings, where the host values enter the program as a constant: the same values,
at the cost of that constant. dtype is Keras's name (None: keras.config.floatx());
float32, float64, float16 and bfloat16 are computed, other dtypes refused.

Seeds, as Keras 3 with an int seed: the same values at every call with the same shape.
- An int seed in [0, 2^64) is fastinit's seed as is.
- seed=None draws a 64-bit seed once, at construction, from Python's `random` module, as
  Keras's own unseeded initializers draw theirs: `keras.utils.set_random_seed(n)` seeds
  that module, so a model built after it gets the same values in every run. get_config
  keeps None (as Keras), so a copy made from the config draws its own seed: this is how
  MultiHeadAttention gives its query, key and value kernels different values.
- A keras.random.SeedGenerator is refused: its values change with every call, while
  fastinit's are a pure function of (seed, stream, shape, parameters). Give tensors
  different values with different seeds or streams.

Differences from keras.initializers, by design:
- The bits are fastinit's stream (Philox4x32-10, docs/stream.md), not the backend's
  generator: the distributions, fans and scales are Keras's, the sampled values are not,
  and they are the same on every backend.
- Values are computed on the host; under a trace (jax.jit) they enter as a constant.
- Uniform samples lie in the open interval (minval, maxval) (Keras: [minval, maxval)).
- Negative stddev/gain, minval > maxval, negative seeds, one of input_axes / output_axes
  without the other, and dtypes other than the four float types are refused with an
  error naming the argument (Keras accepts them or ignores them).
- Identity's config keeps its gain (Keras's Identity.get_config() returns {}).

Serialization. The classes are registered with Keras under the package "fastinit"
(registered names "fastinit>GlorotUniform", ...): `keras.saving.serialize_keras_object`,
`deserialize_keras_object`, `keras.initializers.get(config)` and `model.save(...)` /
`keras.saving.load_model(...)` round-trip them, the config holding `stream` beside
Keras's keys, and a layer takes the name as a string (kernel_initializer="fastinit>HeNormal",
unseeded). Loading needs `import fastinit.keras` first (it registers them).

keras is imported by this module only; `import fastinit` never imports it.
"""

from __future__ import annotations

import contextlib
import numbers
import random
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import numpy as np

from . import _checks, dtypes, initializers, structured
from .streams import check_stream

_PACKAGE = "fastinit"
_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")
_register = keras.saving.register_keras_serializable(package=_PACKAGE)


# ---------------------------------------------------------------------------
# Arguments: seeds, streams, dtypes, axes


def _seed(seed: Any) -> int:
    """The fastinit seed of a Keras `seed` argument (see the module doc)."""
    if seed is None:
        return random.getrandbits(64)
    if isinstance(seed, (keras.random.SeedGenerator, dict)):
        raise TypeError(
            "seed must be an integer in [0, 2^64) or None; a keras.random.SeedGenerator (or "
            "its config) is refused: it gives new values at every call, while fastinit's "
            "values are fixed by (seed, stream, shape). Pass an int seed, and stream= to give "
            "tensors that share it different values"
        )
    return _checks.check_seed(seed)


def _given_seed(seed: Any) -> int | None:
    """The seed as get_config keeps it: None, or a Python int."""
    return None if seed is None else _checks.check_seed(seed)


def _stream(stream: Any) -> int | str:
    """The stream, checked (a name or an integer in [0, 2^64)) and kept as given."""
    check_stream(stream)
    return stream if isinstance(stream, str) else int(stream)


def _dtype(dtype: Any) -> str:
    """Keras's dtype name (None: floatx), one of the four fastinit computes."""
    try:
        name = keras.backend.standardize_dtype(dtype)
    except (ValueError, TypeError, AttributeError):
        name = None
    if name not in dtypes.BY_NAME:
        raise ValueError(
            f"dtype must be one of {dtypes.NAMES_TEXT} (or None for keras.config.floatx()); "
            f"got {_checks.show(dtype)}"
        )
    return str(name)


def _tensor(values: np.ndarray, dtype: str) -> Any:
    """fastinit's host values as a backend tensor (one copy where the backend needs one)."""
    return keras.ops.convert_to_tensor(values, dtype=dtype)


def _axis_list(name: str, axes: Any) -> list[int] | None:
    if axes is None:
        return None
    if isinstance(axes, (str, bytes)) or not isinstance(axes, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a list of axes or None, got {_checks.show(axes)}")
    result = []
    for k, axis in enumerate(axes):
        if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"{name}[{k}] must be an integer axis, got {_checks.show(axis)}")
        result.append(int(axis))
    return result


@contextlib.contextmanager
def _keras_words(words: str) -> Iterator[None]:
    """A ValueError inside starts with Keras's `words` for the same refusal, then ours."""
    try:
        yield
    except ValueError as error:
        raise ValueError(f"{words} {error}") from None


def _shape(shape: Any) -> tuple[int, ...]:
    return _checks.check_shape(tuple(shape) if isinstance(shape, list) else shape)


# ---------------------------------------------------------------------------
# Variance scaling


@_register
class VarianceScaling(keras.initializers.VarianceScaling):
    """Variance scale / n, n = fan_in, fan_out or their mean (`mode`), by Keras's fan rule.

    Args:
        scale: > 0.
        mode: "fan_in", "fan_out" or "fan_avg".
        distribution: "truncated_normal" (±2σ, σ = sqrt(scale / n) / 0.87962566103423978 so
            the variance is exactly scale / n; "normal" is Keras's legacy name for it),
            "untruncated_normal" (σ = sqrt(scale / n)) or "uniform" (±sqrt(3 scale / n)).
            Matched without regard to case, as Keras does.
        seed: an int in [0, 2^64) or None (a seed drawn once; see the module doc).
        input_axes, output_axes: None, or both lists of axes: fan_in is the product of the
            input axes' sizes, fan_out of the output axes'. Otherwise Keras's rule: (*window,
            in, out) for 2 axes or more, (n, n) for (n,), (1, 1) for ().
        stream: an integer in [0, 2^64) or a tensor name (keyword only).

    Calling it returns the values of `fastinit.variance_scaling(shape, seed, scale=scale,
    mode=mode, distribution=distribution, layout="keras", input_axes=..., output_axes=...,
    stream=stream, dtype=dtype)` as a backend tensor.
    """

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
        *,
        stream: int | str = 0,
    ) -> None:
        # Keras's own __init__ is not called: it would accept what fastinit refuses. The
        # errors start with Keras's words, which code written for Keras may look for.
        with _keras_words("Argument `scale` must be positive float."):
            self.scale = _checks.check_real("scale", scale, positive=True)
        with _keras_words(f"Invalid `mode` argument: {mode}."):
            self.mode = _checks.check_choice("mode", mode, _MODES)
        if isinstance(distribution, str):
            distribution = distribution.lower()
            if distribution == "normal":  # Keras's legacy name of the truncated normal
                distribution = "truncated_normal"
        with _keras_words(f"Invalid `distribution` argument: {distribution}."):
            checked = _checks.check_choice("distribution", distribution, _DISTRIBUTIONS)
        self.distribution = checked
        self.input_axes = _axis_list("input_axes", input_axes)
        self.output_axes = _axis_list("output_axes", output_axes)
        if (self.input_axes is None) != (self.output_axes is None):
            raise ValueError(
                "input_axes and output_axes must be given together (or neither, for Keras's "
                f"fan rule); got input_axes={input_axes!r}, output_axes={output_axes!r}"
            )
        self._init_seed = _given_seed(seed)
        self.seed = _seed(seed)
        self.stream = _stream(stream)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        name = _dtype(dtype)
        axes: dict[str, Any] = {}
        if self.input_axes is not None:
            axes = {"input_axes": self.input_axes, "output_axes": self.output_axes}
        values = initializers.variance_scaling(
            _shape(shape),
            self.seed,
            scale=self.scale,
            mode=self.mode,
            distribution=self.distribution,
            dtype=name,
            stream=self.stream,
            layout="keras",
            **axes,
        )
        return _tensor(values, name)

    def get_config(self) -> dict[str, Any]:
        return {
            "seed": self._init_seed,
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "input_axes": self.input_axes,
            "output_axes": self.output_axes,
            "stream": self.stream,
        }


class _Named(VarianceScaling):
    """A VarianceScaling with fixed scale, mode and distribution: Keras's named ones."""

    _SETTINGS: tuple[float, str, str] = (1.0, "fan_in", "truncated_normal")

    def __init__(
        self,
        seed: int | None = None,
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
        *,
        stream: int | str = 0,
    ) -> None:
        super().__init__(*self._SETTINGS, seed, input_axes, output_axes, stream=stream)

    def get_config(self) -> dict[str, Any]:
        return {
            "seed": self._init_seed,
            "input_axes": self.input_axes,
            "output_axes": self.output_axes,
            "stream": self.stream,
        }


@_register
class GlorotNormal(_Named):
    """VarianceScaling(1.0, "fan_avg", "truncated_normal"): fastinit.glorot_normal's values
    with layout="keras" (Glorot & Bengio 2010). Args: seed, input_axes, output_axes, stream."""

    _SETTINGS = (1.0, "fan_avg", "truncated_normal")


@_register
class GlorotUniform(_Named):
    """VarianceScaling(1.0, "fan_avg", "uniform"): fastinit.glorot_uniform's values with
    layout="keras" (Glorot & Bengio 2010). Args: seed, input_axes, output_axes, stream."""

    _SETTINGS = (1.0, "fan_avg", "uniform")


@_register
class HeNormal(_Named):
    """VarianceScaling(2.0, "fan_in", "truncated_normal"): fastinit.he_normal's values with
    layout="keras" (He et al. 2015). Args: seed, input_axes, output_axes, stream."""

    _SETTINGS = (2.0, "fan_in", "truncated_normal")


@_register
class HeUniform(_Named):
    """VarianceScaling(2.0, "fan_in", "uniform"): fastinit.he_uniform's values with
    layout="keras" (He et al. 2015). Args: seed, input_axes, output_axes, stream."""

    _SETTINGS = (2.0, "fan_in", "uniform")


@_register
class LecunNormal(_Named):
    """VarianceScaling(1.0, "fan_in", "truncated_normal"): fastinit.lecun_normal's values
    with layout="keras" (LeCun et al. 1998). Args: seed, input_axes, output_axes, stream."""

    _SETTINGS = (1.0, "fan_in", "truncated_normal")


@_register
class LecunUniform(_Named):
    """VarianceScaling(1.0, "fan_in", "uniform"): fastinit.lecun_uniform's values with
    layout="keras" (LeCun et al. 1998). Args: seed, input_axes, output_axes, stream."""

    _SETTINGS = (1.0, "fan_in", "uniform")


# ---------------------------------------------------------------------------
# Plain distributions and orthogonal


class _Random(keras.initializers.Initializer):
    """What the seeded initializers share: seed and stream, checked once."""

    def _seeded(self, seed: Any, stream: Any) -> None:
        self._init_seed = _given_seed(seed)
        self.seed = _seed(seed)
        self.stream = _stream(stream)

    def _base_config(self) -> dict[str, Any]:
        return {"seed": self._init_seed, "stream": self.stream}

    def _sample(self, sampler: Any, shape: Any, dtype: Any, *args: Any, **params: Any) -> Any:
        """sampler(shape, seed, *args, **params) on this seed and stream, as a tensor."""
        name = _dtype(dtype)
        values = sampler(_shape(shape), self.seed, *args, dtype=name, stream=self.stream, **params)
        return _tensor(values, name)


@_register
class RandomNormal(_Random):
    """N(mean, stddev²): fastinit.normal(shape, seed, mean=mean, std=stddev).

    Args: mean; stddev (>= 0); seed (an int or None); stream (keyword only).
    """

    def __init__(
        self,
        mean: float = 0.0,
        stddev: float = 0.05,
        seed: int | None = None,
        *,
        stream: int | str = 0,
    ) -> None:
        self.mean = _checks.check_real("mean", mean)
        self.stddev = _checks.check_real("stddev", stddev, nonnegative=True)
        initializers.normal((0,), 0, mean=self.mean, std=self.stddev)  # fastinit's own checks
        self._seeded(seed, stream)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        return self._sample(initializers.normal, shape, dtype, mean=self.mean, std=self.stddev)

    def get_config(self) -> dict[str, Any]:
        return {**self._base_config(), "mean": self.mean, "stddev": self.stddev}


@_register
class TruncatedNormal(_Random):
    """N(mean, stddev²) cut to mean ± 2 stddev, no std correction (as Keras): the values'
    std is 0.8796 stddev. fastinit.truncated_normal(shape, seed, mean=mean, std=stddev).

    Args: mean; stddev (> 0); seed (an int or None); stream (keyword only).
    """

    def __init__(
        self,
        mean: float = 0.0,
        stddev: float = 0.05,
        seed: int | None = None,
        *,
        stream: int | str = 0,
    ) -> None:
        self.mean = _checks.check_real("mean", mean)
        self.stddev = _checks.check_real("stddev", stddev, positive=True)
        initializers.truncated_normal((0,), 0, mean=self.mean, std=self.stddev)
        self._seeded(seed, stream)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        return self._sample(
            initializers.truncated_normal, shape, dtype,
            mean=self.mean, std=self.stddev, lower=-2.0, upper=2.0,
        )  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        return {**self._base_config(), "mean": self.mean, "stddev": self.stddev}


@_register
class RandomUniform(_Random):
    """Uniform on the open interval (minval, maxval): fastinit.uniform(shape, seed,
    low=minval, high=maxval) (Keras's interval is [minval, maxval)).

    Args: minval <= maxval; seed (an int or None); stream (keyword only).
    """

    def __init__(
        self,
        minval: float = -0.05,
        maxval: float = 0.05,
        seed: int | None = None,
        *,
        stream: int | str = 0,
    ) -> None:
        self.minval = _checks.check_real("minval", minval)
        self.maxval = _checks.check_real("maxval", maxval)
        if self.minval > self.maxval:
            raise ValueError(f"minval must be <= maxval, got minval={minval}, maxval={maxval}")
        initializers.uniform((0,), 0, low=self.minval, high=self.maxval)
        self._seeded(seed, stream)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        return self._sample(initializers.uniform, shape, dtype, low=self.minval, high=self.maxval)

    def get_config(self) -> dict[str, Any]:
        return {**self._base_config(), "minval": self.minval, "maxval": self.maxval}


@_register
class Orthogonal(_Random):
    """A (semi-)orthogonal matrix times gain, Keras's layout: the matrix has
    prod(shape[:-1]) rows and shape[-1] columns, orthonormal columns (or rows, if it is
    wide), reshaped to the shape: `fastinit.orthogonal(shape, seed, gain, layout="keras")`,
    the same as `fastinit.orthogonal((rows, columns), seed, gain).reshape(shape)`
    (Saxe et al. 2014).

    Args: gain (>= 0); seed (an int or None); stream (keyword only).
    """

    def __init__(
        self, gain: float = 1.0, seed: int | None = None, *, stream: int | str = 0
    ) -> None:
        self.gain = _checks.check_real("gain", gain, nonnegative=True)
        self._seeded(seed, stream)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        return self._sample(structured.orthogonal, shape, dtype, self.gain, layout="keras")

    def get_config(self) -> dict[str, Any]:
        return {**self._base_config(), "gain": self.gain}


# ---------------------------------------------------------------------------
# Constants


@_register
class Zeros(keras.initializers.Initializer):
    """Every element 0: fastinit.zeros(shape, dtype=dtype)."""

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        name = _dtype(dtype)
        return _tensor(structured.zeros(_shape(shape), dtype=name), name)


@_register
class Ones(keras.initializers.Initializer):
    """Every element 1: fastinit.ones(shape, dtype=dtype)."""

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        name = _dtype(dtype)
        return _tensor(structured.ones(_shape(shape), dtype=name), name)


@_register
class Constant(keras.initializers.Initializer):
    """Every element `value`, rounded once into the dtype: fastinit.constant(shape, value,
    dtype=dtype). `value` is a finite real, or an array-like (a list, a NumPy array, a
    backend tensor) that broadcasts to the shape by NumPy's rule, as Keras's Constant
    broadcasts it (its config holds the array as Keras serializes one)."""

    def __init__(self, value: Any = 0.0) -> None:
        if not isinstance(value, numbers.Real) and hasattr(value, "shape"):  # array, tensor
            value = np.asarray(keras.ops.convert_to_numpy(value))
        if isinstance(value, np.ndarray) and value.shape == ():
            value = value.item()
        if isinstance(value, (list, tuple, np.ndarray)):
            value = np.array(value)  # a copy: the config must not change with the caller's
            empty = tuple(slice(0, 0) for _ in value.shape)
            structured.constant(value.shape, value, dtype="float64", region=empty)  # checks
            self.value: float | np.ndarray = value
        else:
            self.value = _checks.check_real("value", value)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        name = _dtype(dtype)
        return _tensor(structured.constant(_shape(shape), self.value, dtype=name), name)

    def get_config(self) -> dict[str, Any]:
        return {"value": keras.saving.serialize_keras_object(self.value)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constant:
        value = keras.saving.deserialize_keras_object(config.get("value", 0.0))
        return cls(**{**config, "value": value})


@_register
class Identity(keras.initializers.Initializer):
    """gain on the main diagonal of a 2-d (possibly rectangular) shape, 0 elsewhere:
    fastinit.identity(shape, gain, dtype=dtype). Args: gain (>= 0)."""

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = _checks.check_real("gain", gain, nonnegative=True)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        name = _dtype(dtype)
        return _tensor(structured.identity(_shape(shape), self.gain, dtype=name), name)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


__all__ = [
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "Zeros",
]
