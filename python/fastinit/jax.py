"""fastinit for JAX: sharded jax.Arrays and jax.nn.initializers-style initializers.

Two entry points, both giving the bits of the single NumPy call (~630 lines: one
builder per jax.nn.initializers name, each with JAX's signature, beside make_array):

- `make_array(init, shape, seed, sharding, ...)` builds a `jax.Array` with
  `jax.make_array_from_callback`: each device's callback computes only its own block,
  with `region=`, so every sharding (and replication) holds exactly the values of
  `fastinit.<init>(shape, seed, ...)`. A shape the sharding does not divide is refused by
  JAX itself. Replicated blocks are computed once per call, not once per device.
- `glorot_normal()`, `he_uniform()`, `variance_scaling(...)`, `normal(stddev)`,
  `uniform(scale)`, `truncated_normal(stddev, ...)`, `constant(value)`, `zeros`, `ones`,
  `orthogonal(scale, column_axis)`, `delta_orthogonal(scale, column_axis)`: the builders
  of `jax.nn.initializers`, with its arguments, defaults and fan rule (fastinit.fans:
  in_axis=-2, out_axis=-1, each may be a sequence; Flax kernels are (in, out),
  convolutions (*window, in, out)). Each returns
  `init(key_or_seed, shape, dtype=..., out_sharding=None, *, sharding=None, stream=0)`.

Keys. `key_or_seed` is an integer seed in [0, 2^64), or a JAX PRNG key: a typed key
(`jax.random.key(n)`) or a raw uint32[2] key (`jax.random.PRNGKey(n)`). A key's two
32-bit words (`jax.random.key_data`) become the seed `(word0 << 32) | word1`, so
`key(n)`, `PRNGKey(n)` and the int `n` give the same values for 0 <= n < 2^32. Keys of
other widths (e.g. the "rbg" implementation's four words) and batches of keys are refused.
Tensors that share a key share their stream too: split the key (as in JAX) or pass
`stream=` (an int or a tensor name) to give each its own.

Differences from jax.nn.initializers, by design:
- The bits are fastinit's stream (Philox4x32-10, docs/stream.md), not JAX's threefry:
  the distributions, fans, scales and truncation (±2σ with the std correction
  0.87962566103423978) are JAX's, the sampled values are not.
- The values are computed on the host by fastinit's C++ core and then placed on the
  devices: `init` cannot run under `jax.jit` (a traced key is refused with a TypeError),
  and, like the rest of fastinit, its values do not depend on the device or sharding.
- Float dtypes (float32, bfloat16, float16, and float64 with jax_enable_x64), and for
  normal, variance_scaling and the named initializers complex64 (complex128 with x64)
  as JAX has them, but with the variance the truncated normal promises (fastinit's
  complex outputs: docs/conventions.md); a dtype is first canonicalized as JAX does
  (float64 is float32 without x64).
- uniform(scale) samples the open interval (0, scale) (JAX: [0, scale)); uniform
  variance scaling the open (-limit, limit).
- Negative `scale`/`stddev` are refused (JAX multiplies by them).
- `orthogonal` and `delta_orthogonal` compute the whole tensor on the host (one QR,
  NumPy's LAPACK) and then place it, whatever the sharding; their layout is JAX's
  (`column_axis`; delta_orthogonal's centre at (k - 1) // 2), their sign convention
  fastinit's (Haar-distributed either way).
- `out_sharding` / `sharding` take a `jax.sharding.Sharding` (a NamedSharding, ...), not a
  bare PartitionSpec.

jax is imported by this module only; `import fastinit` never imports it.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import jax
import numpy as np
from jax.sharding import Sharding

from . import _checks, fans, initializers, structured
from .fans import _axis_type

# The samplers make_array can build: those that take (shape, seed, ...), and the
# structured ones that take no seed (their values need none).
_SEEDED: dict[str, Callable[..., Any]] = {
    name: getattr(initializers, name)
    for name in (
        "variance_scaling",
        "glorot_normal",
        "glorot_uniform",
        "he_normal",
        "he_uniform",
        "lecun_normal",
        "lecun_uniform",
        "xavier_normal",
        "xavier_uniform",
        "kaiming_normal",
        "kaiming_uniform",
        "normal",
        "uniform",
        "truncated_normal",
    )
}
_SEEDED["orthogonal"] = structured.orthogonal
_UNSEEDED: dict[str, Callable[..., Any]] = {
    "constant": structured.constant,
    "zeros": structured.zeros,
    "ones": structured.ones,
    "identity": structured.identity,
    "eye": structured.eye,
    "dirac": structured.dirac,
}
SAMPLERS = tuple(_SEEDED) + tuple(_UNSEEDED)


class Initializer(Protocol):
    """What the builders return: jax.nn.initializers' call signature, plus fastinit's
    keyword-only `sharding` (an alias of `out_sharding`) and `stream`."""

    def __call__(
        self,
        key: Any,
        shape: Sequence[int],
        dtype: Any = None,
        out_sharding: Sharding | None = None,
        *,
        sharding: Sharding | None = None,
        stream: int | str = 0,
    ) -> jax.Array: ...


# ---------------------------------------------------------------------------
# Keys, dtypes and shardings


def seed_from_key(key: Any) -> int:
    """The 64-bit fastinit seed of an int seed or a JAX PRNG key (see the module doc)."""
    if isinstance(key, numbers.Integral) and not isinstance(key, (bool, np.bool_)):
        return _checks.check_seed(key)
    if isinstance(key, jax.core.Tracer):
        raise TypeError(
            "key must be a concrete seed or PRNG key; fastinit's initializers compute on the "
            "host and cannot run under jax.jit (call them outside the traced function)"
        )
    if isinstance(key, (jax.Array, np.ndarray)):
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            if key.shape != ():
                raise ValueError(f"key must be a single PRNG key, got a batch of shape {key.shape}")
            words = np.asarray(jax.random.key_data(key))
        else:
            words = np.asarray(key)
        if words.shape == () and np.issubdtype(words.dtype, np.integer):
            return _checks.check_seed(int(words))
        if words.dtype == np.uint32 and words.shape == (2,):
            return (int(words[0]) << 32) | int(words[1])
        raise ValueError(
            "key must be an integer seed, a typed PRNG key with two 32-bit words or a raw "
            f"uint32[2] key; got an array of dtype {words.dtype} and shape {words.shape}"
        )
    raise TypeError(
        f"key must be an integer seed or a JAX PRNG key, got {type(key).__name__} "
        f"{_checks.show(key)}"
    )


def _jax_dtype(dtype: Any, *, complex_ok: bool = False) -> np.dtype:
    """A fastinit output dtype canonicalized as JAX does (float64 -> float32 without x64);
    complex_ok: complex64 / complex128 too (complex128 -> complex64 without x64)."""
    if dtype is None:
        return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))
    checked = _checks.check_dtype(dtype, complex_ok=complex_ok)
    return np.dtype(jax.dtypes.canonicalize_dtype(checked))


# The samplers that write complex outputs (docs/stream.md, "Complex outputs").
_COMPLEX_OK = frozenset({"normal", "variance_scaling"})


def _check_sharding(name: str, sharding: Any) -> Sharding:
    if not isinstance(sharding, Sharding):
        raise TypeError(
            f"{name} must be a jax.sharding.Sharding (e.g. NamedSharding(mesh, P(...))), "
            f"got {type(sharding).__name__} {_checks.show(sharding)}"
        )
    return sharding


def _one_sharding(out_sharding: Any, sharding: Any) -> Sharding | None:
    """The initializers' `out_sharding` (JAX's name) or `sharding` (fastinit's), not both."""
    if out_sharding is not None and sharding is not None:
        raise ValueError("pass out_sharding or sharding, not both")
    if out_sharding is not None:
        return _check_sharding("out_sharding", out_sharding)
    if sharding is not None:
        return _check_sharding("sharding", sharding)
    return None


# ---------------------------------------------------------------------------
# make_array


def _region(index: tuple[slice, ...] | None, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A callback's index (slices, possibly slice(None), one per leading axis; None for
    the whole array) as a fastinit region of explicit bounds, so that equal blocks get
    equal cache keys."""
    index = () if index is None else index
    bounds = []
    for axis, dim in enumerate(shape):
        part = index[axis] if axis < len(index) else slice(None)
        start, stop, step = part.indices(dim)
        if step != 1:  # JAX's shardings give contiguous blocks; say so if that changes
            raise ValueError(f"index[{axis}] of the device block has step {step}, not 1")
        bounds.append(slice(start, stop))
    return tuple(bounds)


def make_array(
    init: str,
    shape: Sequence[int],
    seed: Any,
    sharding: Sharding,
    *,
    dtype: Any = "float32",
    stream: int | str = 0,
    **params: Any,
) -> jax.Array:
    """A sharded jax.Array equal, bit for bit, to `fastinit.<init>(shape, seed, ...)`.

    Args:
        init: the name of a fastinit sampler: one of SAMPLERS (the variance-scaling
            ones, normal, uniform, truncated_normal, orthogonal, and the unseeded
            constant, zeros, ones, identity/eye, dirac).
        shape: the global shape.
        seed: an integer in [0, 2^64) or a JAX PRNG key (see the module doc); the
            unseeded samplers check it and ignore it.
        sharding: a jax.sharding.Sharding; JAX refuses shapes it does not divide.
        dtype: float32 (default), bfloat16, float16, or float64 (needs jax_enable_x64);
            complex64 (complex128 with x64) for the samplers that write complex.
        stream: an integer in [0, 2^64) or a tensor name.
        **params: the sampler's own arguments (scale=, mode=, layout="jax", std=, ...).

    Each device block is computed with `region=` (only its own elements); identical
    blocks (replication) are computed once. orthogonal computes its full matrix for
    every distinct block (a QR each): for large sharded orthogonal weights prefer the
    `orthogonal()` initializer, which computes it once.

    Raises:
        ValueError / TypeError naming the argument (init, seed, dtype, sharding, or the
        sampler's own), before any device memory is allocated.
    """
    _checks.check_choice("init", init, SAMPLERS)
    checked_shape = _checks.check_shape(shape)
    seed = seed_from_key(seed)
    sharding = _check_sharding("sharding", sharding)
    requested = _checks.check_dtype(dtype, complex_ok=True)  # the sampler's check decides
    if np.dtype(jax.dtypes.canonicalize_dtype(requested)) != requested:
        raise ValueError(f"dtype {requested.name} needs jax_enable_x64; got dtype={dtype!r}")
    if init in _UNSEEDED:
        sampler = _UNSEEDED[init]
        arguments = dict(params, dtype=requested)
        positional: tuple[Any, ...] = (checked_shape,)
    else:
        sampler = _SEEDED[init]
        arguments = dict(params, dtype=requested, stream=stream)
        positional = (checked_shape, seed)
    # Check every argument once, on an empty region, before JAX allocates anything.
    sampler(*positional, **arguments, region=tuple(slice(0, 0) for _ in checked_shape))
    blocks: dict[tuple[tuple[int, int], ...], np.ndarray] = {}

    def fill(index: tuple[slice, ...] | None) -> np.ndarray:
        region = _region(index, checked_shape)
        key = tuple((part.start, part.stop) for part in region)
        if key not in blocks:
            blocks[key] = sampler(*positional, **arguments, region=region)
        return blocks[key]

    return jax.make_array_from_callback(checked_shape, sharding, fill)


def _place(values: np.ndarray, sharding: Sharding | None) -> jax.Array:
    """Host values on the default device, or spread over `sharding`."""
    if sharding is None:
        return jax.device_put(values)
    shape = values.shape
    return jax.make_array_from_callback(shape, sharding, lambda i: values[_region(i, shape)])


def _sampled(
    init: str,
    key: Any,
    shape: Any,
    dtype: Any,
    sharding: Sharding | None,
    stream: int | str,
    **params: Any,
) -> jax.Array:
    """One fastinit sampler as a jax.Array: on the default device, or sharded."""
    seed = seed_from_key(key)
    jax_dtype = _jax_dtype(dtype, complex_ok=init in _COMPLEX_OK)
    if sharding is not None:
        return make_array(init, shape, seed, sharding, dtype=jax_dtype, stream=stream, **params)
    if init in _UNSEEDED:
        return jax.device_put(_UNSEEDED[init](shape, dtype=jax_dtype, **params))
    return jax.device_put(_SEEDED[init](shape, seed, dtype=jax_dtype, stream=stream, **params))


# ---------------------------------------------------------------------------
# Fans: JAX's rule, fastinit.fans' (it takes sequences of axes too)


def jax_fans(shape: Sequence[int], in_axis: Any, out_axis: Any, batch_axis: Any) -> tuple[int, int]:
    """(fan_in, fan_out) by jax.nn.initializers' rule: the receptive field is every axis
    outside in_axis, out_axis and batch_axis; each of the three may be a sequence.
    The same as `fastinit.compute_fans(shape, layout="jax", in_axis=..., ...)`."""
    return fans.fans_of_checked_shape(
        _checks.check_shape(shape), "jax", in_axis, out_axis, batch_axis
    )


# ---------------------------------------------------------------------------
# The jax.nn.initializers builders


def _initializer(default_dtype: Any, make: Callable[..., jax.Array]) -> Initializer:
    """An initializer with jax.nn.initializers' call signature, plus fastinit's sharding=
    and stream= keywords: make(key, shape, dtype, sharding, stream) makes its array."""

    def init(
        key: Any,
        shape: Sequence[int],
        dtype: Any = default_dtype,
        out_sharding: Sharding | None = None,
        *,
        sharding: Sharding | None = None,
        stream: int | str = 0,
    ) -> jax.Array:
        return make(key, shape, dtype, _one_sharding(out_sharding, sharding), stream)

    return init


def _sampler(init: str, default_dtype: Any, **params: Any) -> Initializer:
    """_initializer of the fastinit sampler `init` with these parameters."""

    def make(key: Any, shape: Any, dtype: Any, sharding: Sharding | None, stream: Any) -> Any:
        return _sampled(init, key, shape, dtype, sharding, stream, **params)

    return _initializer(default_dtype, make)


def variance_scaling(
    scale: float,
    mode: str,
    distribution: str,
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    batch_axis: int | Sequence[int] = (),
    dtype: Any = None,
) -> Initializer:
    """jax.nn.initializers.variance_scaling: variance scale / n, n = fan_in, fan_out,
    their mean ("fan_avg") or geometric mean ("fan_geo_avg"), fans by JAX's rule (see
    jax_fans); distribution "truncated_normal" (±2σ, σ corrected by 0.8796256610342398
    so the variance is exactly scale / n), "normal" or "uniform" (±sqrt(3 scale / n)).
    The values are `fastinit.variance_scaling(shape, seed, ..., layout="jax")`'s."""
    _checks.check_real("scale", scale, positive=True)
    _checks.check_choice("mode", mode, initializers.MODES)
    _checks.check_choice("distribution", distribution, initializers.DISTRIBUTIONS)
    fans.check_fan_axes(in_axis, out_axis, batch_axis)  # their types now, ranges per shape
    return _sampler(
        "variance_scaling", dtype, scale=scale, mode=mode, distribution=distribution,
        layout="jax", in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis,
    )  # fmt: skip


def glorot_uniform(
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    batch_axis: int | Sequence[int] = (),
    dtype: Any = None,
) -> Initializer:
    """variance_scaling(1.0, "fan_avg", "uniform", ...) (Glorot & Bengio 2010)."""
    return variance_scaling(1.0, "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype)


def glorot_normal(
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    batch_axis: int | Sequence[int] = (),
    dtype: Any = None,
) -> Initializer:
    """variance_scaling(1.0, "fan_avg", "truncated_normal", ...) (Glorot & Bengio 2010)."""
    return variance_scaling(
        1.0, "fan_avg", "truncated_normal", in_axis, out_axis, batch_axis, dtype
    )


def lecun_uniform(
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    batch_axis: int | Sequence[int] = (),
    dtype: Any = None,
) -> Initializer:
    """variance_scaling(1.0, "fan_in", "uniform", ...) (LeCun et al. 1998)."""
    return variance_scaling(1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def lecun_normal(
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    batch_axis: int | Sequence[int] = (),
    dtype: Any = None,
) -> Initializer:
    """variance_scaling(1.0, "fan_in", "truncated_normal", ...) (LeCun et al. 1998)."""
    return variance_scaling(1.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis, dtype)


def he_uniform(
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    batch_axis: int | Sequence[int] = (),
    dtype: Any = None,
) -> Initializer:
    """variance_scaling(2.0, "fan_in", "uniform", ...) (He et al. 2015)."""
    return variance_scaling(2.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def he_normal(
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    batch_axis: int | Sequence[int] = (),
    dtype: Any = None,
) -> Initializer:
    """variance_scaling(2.0, "fan_in", "truncated_normal", ...) (He et al. 2015)."""
    return variance_scaling(2.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis, dtype)


# JAX's aliases.
xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_uniform = he_uniform
kaiming_normal = he_normal


def normal(stddev: float = 1e-2, dtype: Any = None) -> Initializer:
    """jax.nn.initializers.normal: N(0, stddev²)."""
    _checks.check_real("stddev", stddev, nonnegative=True)
    return _sampler("normal", dtype, std=stddev)


def uniform(scale: float = 1e-2, dtype: Any = None) -> Initializer:
    """jax.nn.initializers.uniform: U(0, scale) (open interval; JAX's is [0, scale))."""
    _checks.check_real("scale", scale, positive=True)
    return _sampler("uniform", dtype, low=0.0, high=scale)


def truncated_normal(
    stddev: float = 1e-2, dtype: Any = None, lower: float = -2.0, upper: float = 2.0
) -> Initializer:
    """jax.nn.initializers.truncated_normal: N(0, stddev²) cut to (lower, upper) in units
    of stddev, with no std correction (as JAX: the result's std is below stddev)."""
    _checks.check_real("stddev", stddev, positive=True)
    return _sampler("truncated_normal", dtype, std=stddev, lower=lower, upper=upper)


def constant(value: float, dtype: Any = None) -> Initializer:
    """jax.nn.initializers.constant: every element `value`; the key is checked, not used."""
    return _sampler("constant", dtype, value=value)


def zeros(
    key: Any,
    shape: Sequence[int],
    dtype: Any = None,
    out_sharding: Sharding | None = None,
    *,
    sharding: Sharding | None = None,
    stream: int | str = 0,
) -> jax.Array:
    """jax.nn.initializers.zeros (an initializer itself, as in JAX)."""
    return constant(0.0)(key, shape, dtype, out_sharding, sharding=sharding, stream=stream)


def ones(
    key: Any,
    shape: Sequence[int],
    dtype: Any = None,
    out_sharding: Sharding | None = None,
    *,
    sharding: Sharding | None = None,
    stream: int | str = 0,
) -> jax.Array:
    """jax.nn.initializers.ones (an initializer itself, as in JAX)."""
    return constant(1.0)(key, shape, dtype, out_sharding, sharding=sharding, stream=stream)


def orthogonal(scale: float = 1.0, column_axis: int = -1, dtype: Any = None) -> Initializer:
    """jax.nn.initializers.orthogonal: a matrix of prod(shape) / shape[column_axis] rows
    and shape[column_axis] columns with orthonormal rows or columns (whichever side is
    smaller), times `scale`, reshaped with its columns along `column_axis`. The matrix is
    `fastinit.orthogonal(shape, seed, scale, layout="jax", column_axis=column_axis)`,
    computed once on the host."""
    scale = _checks.check_real("scale", scale, nonnegative=True)
    column_axis = _axis_type("column_axis", column_axis)

    def make(key: Any, shape: Any, dtype: Any, sharding: Sharding | None, stream: Any) -> Any:
        values = structured.orthogonal(
            shape, seed_from_key(key), scale, layout="jax", column_axis=column_axis,
            dtype=_jax_dtype(dtype), stream=stream,
        )  # fmt: skip
        return _place(values, sharding)

    return _initializer(dtype, make)


def delta_orthogonal(scale: float = 1.0, column_axis: int = -1, dtype: Any = None) -> Initializer:
    """jax.nn.initializers.delta_orthogonal: a (*window, in, out) kernel (3 to 5 axes,
    in <= out) that is zero but at the window's centre (index (k - 1) // 2 per spatial
    axis), which holds an orthogonal (in, out) matrix times `scale` (column_axis is an
    axis of that matrix). The values are `fastinit.delta_orthogonal(shape, seed, scale,
    column_axis=column_axis)`'s, computed once on the host."""
    scale = _checks.check_real("scale", scale, nonnegative=True)
    column_axis = _axis_type("column_axis", column_axis)

    def make(key: Any, shape: Any, dtype: Any, sharding: Sharding | None, stream: Any) -> Any:
        values = structured.delta_orthogonal(
            shape, seed_from_key(key), scale, column_axis=column_axis,
            dtype=_jax_dtype(dtype), stream=stream,
        )  # fmt: skip
        return _place(values, sharding)

    return _initializer(dtype, make)


__all__ = [
    "Initializer",
    "SAMPLERS",
    "constant",
    "delta_orthogonal",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "jax_fans",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "make_array",
    "normal",
    "ones",
    "orthogonal",
    "seed_from_key",
    "truncated_normal",
    "uniform",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]
