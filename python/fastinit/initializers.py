"""The initializers: variance_scaling, the named initializers, the plain distributions.

A call reads top to bottom in three steps, each module calling only those of later
steps: a sampler here checks its arguments (with _checks, fans, streams, runtime;
cuda only when a device is named) and computes the Params of its transform; then
_fill, given a _fill.Request and the Params, allocates or borrows the output (dlpack,
cuda when needed); then the core fills it. (~840 lines: each named initializer is
its own def with its full docstring, beside the variance_scaling they call.)

Every sampler returns exactly the same bits for the same (shape, seed, stream,
parameters, dtype): element i of the (virtual, row-major) full tensor is a pure
function of the Philox word i of its stream (docs/stream.md). `region=` returns
full[region] without computing the rest; `out=` fills an existing array in place;
`threads=` sets the threads for one call (default fastinit.get_num_threads()) and
never changes the bits; `device="cuda"` / `"cuda:N"` returns a fastinit.CudaArray
with the same bits, and `out=` also takes CUDA tensors (fastinit.cuda, fastinit.dlpack).
`random_bits` gives the raw stream words every sampler draws from.

Conventions (docs/conventions.md has the table against Keras, JAX and PyTorch):
- `variance_scaling` follows Keras/JAX: "truncated_normal" cuts the underlying
  normal at ±2σ and divides σ by 0.87962566103423978 so the variance is exactly
  scale/n; "uniform" uses limit sqrt(3 scale / n).
- Fans default to PyTorch's layout (out, in, *receptive_field); layout="jax"
  selects (*receptive_field, in, out), layout="keras" the same plus Keras's fans of
  0-d and 1-d shapes; in_axis / out_axis / batch_axis (JAX's, each an axis or a
  sequence) or input_axes / output_axes (Keras's) choose any other layout, fan_in= /
  fan_out= override (fastinit.fans).
- mode: "fan_in", "fan_out", "fan_avg" (their mean) or "fan_geo_avg" (JAX's:
  sqrt(fan_in fan_out)).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _checks, _complex, _core, _fill, cuda, dtypes
from .fans import LAYOUTS, check_fan_axes, fans_of_checked_shape
from .runtime import resolve_threads
from .streams import check_stream

# Std of the standard normal cut to [-2, 2]: sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)).
TRUNCATED_NORMAL_STD = 0.87962566103423978
_SQRT2 = 1.4142135623730951  # the binary64 sqrt(2) of docs/stream.md
MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
LAYOUT_NAMES = tuple(LAYOUTS)
DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")
# Keras spells the plain normal "untruncated_normal".
_DISTRIBUTION_ALIASES = {"untruncated_normal": "normal"}
# What a zero-size output "samples": nothing is drawn, but the output is still made.
_EMPTY_PARAMS = _core.uniform_params(0.0, 0.0)
# A truncated interval must span this many float32 steps of erf: deep in one tail
# the float32 inverse CDF has too little resolution to sample it faithfully.
_MIN_ERF_STEPS = 4096
_WORDS_DTYPE = np.dtype(np.uint32)  # random_bits' output


def check_request(
    shape: Any,
    seed: Any,
    dtype: Any,
    stream: Any,
    region: Any,
    threads: Any,
    device: Any = None,
    complex_ok: bool = False,
) -> _fill.Request:
    """The arguments every seeded sampler takes (structured.orthogonal's too), checked;
    complex_ok: complex64/complex128 allowed (samplers that define them, _complex)."""
    shape = _checks.check_shape(shape)
    seed = _checks.check_seed(seed)
    stream = check_stream(stream)
    dtype = _checks.check_dtype(dtype, complex_ok=complex_ok)
    if region is None:
        start, extent = (0,) * len(shape), shape  # extent is shape: the whole tensor
    else:
        start, extent = _checks.check_region(region, shape)
    if device is not None:  # cuda.py is visited only when a device is named
        device = cuda.check_device(device)
    threads = resolve_threads(threads)
    return _fill.Request(shape, seed, stream, dtype, start, extent, threads, device)


def _sample(request: _fill.Request, params: Any, out: Any, arguments: dict[str, Any]) -> Any:
    """Checks that the values stay finite in the request's dtype, then has _fill write them."""
    _checks.check_params(params, dtypes.component(request.dtype), arguments)
    return _fill.sample(request, params, out)


def _fan(
    shape: tuple[int, ...],
    mode: str,
    fan_in: Any,
    fan_out: Any,
    fan_options: tuple[Any, ...],
) -> float:
    """The n of scale / n for `mode`, from explicit fans or the shape.

    The layout and axes are checked even when explicit fans make them unnecessary
    (on a shape of 2 or more axes, or with input_axes; otherwise 0-d and 1-d shapes
    have no fans to compute), so a wrong argument never passes just because fan_in=
    was also given.
    """
    fans = {}
    for name, value in (("fan_in", fan_in), ("fan_out", fan_out)):
        if value is not None:
            fans[name] = _checks.check_real(name, value, positive=True)
    needed = (mode,) if mode in ("fan_in", "fan_out") else ("fan_in", "fan_out")
    keras_axes = fan_options[4] is not None
    if len(shape) >= 2 or keras_axes or any(name not in fans for name in needed):
        computed = fans_of_checked_shape(shape, *fan_options)
        fans = {"fan_in": computed[0], "fan_out": computed[1], **fans}
    if mode == "fan_geo_avg":
        product = fans["fan_in"] * fans["fan_out"]  # exact for computed (int) fans
        n = (
            math.sqrt(product)
            if product < math.inf
            else math.sqrt(fans["fan_in"]) * math.sqrt(fans["fan_out"])
        )
    else:
        n = sum(fans[name] for name in needed) / len(needed)
    if n <= 0 and math.prod(shape) > 0:
        raise ValueError(f"{mode} of shape {shape} is {n}; it must be > 0")
    return n


def _variance_params(distribution: str, variance: float, arguments: dict[str, Any]) -> Any:
    """Params of a zero-mean distribution with this variance; `arguments` determine it."""
    if distribution == "truncated_normal":
        spread = math.sqrt(variance) / TRUNCATED_NORMAL_STD
    elif distribution == "normal":
        spread = math.sqrt(variance)
    else:
        spread = math.sqrt(3.0 * variance)
    if not spread <= _checks.FLOAT32_MAX:  # inf included: scale / n overflowed
        raise ValueError(
            f"{_checks.named_arguments(arguments)}: the {distribution} spread {spread:.6g} "
            "is beyond the float32 range in which values are computed"
        )
    if distribution == "truncated_normal":
        return _core.truncated_normal_params(0.0, spread, -2.0, 2.0)
    if distribution == "normal":
        return _core.normal_params(0.0, spread)
    return _core.uniform_params(-spread, spread)


def variance_scaling(
    shape: Sequence[int],
    seed: int,
    *,
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    dtype: Any = "float32",
    stream: int | str = 0,
    out: np.ndarray | None = None,
    region: tuple[slice, ...] | None = None,
    threads: int | None = None,
    device: Any = None,
    layout: str = "torch",
    in_axis: int | Sequence[int] | None = None,
    out_axis: int | Sequence[int] | None = None,
    batch_axis: int | Sequence[int] = (),
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
    fan_in: float | None = None,
    fan_out: float | None = None,
) -> np.ndarray:
    """Samples with variance scale / n, n = fan_in, fan_out, their mean ("fan_avg") or
    their geometric mean sqrt(fan_in fan_out) ("fan_geo_avg", JAX's), as `mode` says.

    distribution:
    - "truncated_normal": normal cut at ±2σ of itself, σ = sqrt(scale / n) / 0.8796256610342398
      so that the variance after truncation is exactly scale / n;
    - "normal" (Keras: "untruncated_normal"): σ = sqrt(scale / n);
    - "uniform": uniform on (-limit, limit), limit = sqrt(3 scale / n).

    Fans: see fastinit.fans.compute_fans: layout="torch" (default), "jax" or
    "keras" (Keras's (1, 1) for 0-d and (n, n) for 1-d shapes); JAX's in_axis /
    out_axis / batch_axis (an axis or a sequence of axes each) or Keras's input_axes /
    output_axes (both; fan_in = prod(shape[input_axes]), fan_out =
    prod(shape[output_axes])); fan_in= / fan_out= override, and are needed for 0-d and
    1-d shapes under the "torch" and "jax" layouts without axes.
    He et al. (2015), Glorot & Bengio (2010), LeCun et al. (1998).

    dtype="complex64"/"complex128": E|z|² = scale / n; "uniform" is uniform on a disk,
    "truncated_normal" cuts the modulus at 2σ (docs/stream.md, "Complex outputs").
    """
    return _variance_scaling(
        shape,
        seed,
        scale,
        None,
        mode,
        distribution,
        dtype,
        stream,
        out,
        region,
        threads,
        device,
        layout,
        in_axis,
        out_axis,
        batch_axis,
        fan_in,
        fan_out,
        input_axes,
        output_axes,
    )


def _variance_scaling(
    shape: Any,
    seed: Any,
    scale: Any,
    gain: Any,
    mode: Any,
    distribution: Any,
    dtype: Any,
    stream: Any,
    out: Any,
    region: Any,
    threads: Any,
    device: Any,
    layout: Any,
    in_axis: Any,
    out_axis: Any,
    batch_axis: Any,
    fan_in: Any,
    fan_out: Any,
    input_axes: Any = None,
    output_axes: Any = None,
) -> np.ndarray:
    """variance_scaling with positional arguments: the named initializers call it
    directly, since keyword forwarding costs more than the fill of a small tensor.
    `gain` (None for variance_scaling) multiplies a named initializer's scale by gain²."""
    request = check_request(shape, seed, dtype, stream, region, threads, device, True)
    params, arguments = _variance_setup(
        request.shape,
        scale,
        gain,
        mode,
        distribution,
        layout,
        in_axis,
        out_axis,
        batch_axis,
        fan_in,
        fan_out,
        input_axes,
        output_axes,
        request.dtype.kind == "c",
    )
    return _sample(request, params, out, arguments)


def _variance_setup(
    shape: tuple[int, ...],
    scale: Any,
    gain: Any,
    mode: Any,
    distribution: Any,
    layout: Any,
    in_axis: Any,
    out_axis: Any,
    batch_axis: Any,
    fan_in: Any,
    fan_out: Any,
    input_axes: Any = None,
    output_axes: Any = None,
    complex_: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """variance_scaling's arguments checked: (Params, the names that determine them);
    complex_: the Params of a complex output (_complex.variance_params)."""
    if (
        in_axis is not None
        or out_axis is not None
        or type(batch_axis) is not tuple
        or batch_axis
        or input_axes is not None
        or output_axes is not None
    ):
        # Checked before the cache: (1,) == (True,) == (1.0,) would share an entry.
        in_axis, out_axis, batch_axis, input_axes, output_axes = check_fan_axes(
            in_axis, out_axis, batch_axis, input_axes, output_axes
        )
    params, arguments = _cached(
        _variance_scaling_params,
        *(shape, scale, gain, mode, distribution, layout, in_axis, out_axis, batch_axis),
        *(fan_in, fan_out, input_axes, output_axes, complex_),
    )
    if params is None:  # zero-size output: nothing to sample, nothing to divide
        return _EMPTY_PARAMS, {}
    return params, arguments


_PLAIN = frozenset({int, float, str, bool, tuple, type(None)})


def _cached(function: Any, *arguments: Any) -> Any:
    """function(*arguments) through its cache (see _parameter_setup), or directly when
    an argument is unhashable, so that the checks inside report it. A 0-d array argument
    becomes its element first: a torch tensor hashes by identity and can change."""
    if not _PLAIN.issuperset(map(type, arguments)):
        arguments = tuple(_checks.scalar_of(argument) for argument in arguments)
    try:
        hash(arguments)
    except (TypeError, ValueError):  # NumPy raises ValueError for a generic timedelta64
        return function.__wrapped__(*arguments)
    return function(*arguments)


def _parameter_setup(function: Any) -> Any:
    """Caches a parameter setup: it checks its arguments and builds immutable Params,
    and models repeat their settings. Failed checks raise and are not cached; typed,
    so True and 1 (or 1 and 1.0) never share an entry and bools still reach the checks."""
    return functools.lru_cache(maxsize=4096, typed=True)(function)


@_parameter_setup
def _variance_scaling_params(
    shape: tuple[int, ...],
    scale: Any,
    gain: Any,
    mode: Any,
    distribution: Any,
    *fan_arguments: Any,
) -> tuple[Any, dict[str, Any]]:
    """Checks the arguments and returns (Params or None for no samples, the names
    that determine the values). Cached: models repeat their shapes and settings."""
    scale = _checks.check_real("scale", scale, positive=True)
    arguments = {"scale": scale}
    if gain is not None:  # a named initializer: its own scale times gain²
        gain = _checks.check_real("gain", gain, positive=True)
        scale = scale * gain * gain
        if not math.isfinite(scale):
            raise ValueError(f"gain={gain:g}: gain² overflows float64")
        arguments = {"gain": gain}
    _checks.check_choice("mode", mode, MODES)
    if type(distribution) is str:
        distribution = _DISTRIBUTION_ALIASES.get(distribution, distribution)
    _checks.check_choice("distribution", distribution, DISTRIBUTIONS)
    layout, in_axis, out_axis, batch_axis, fan_in, fan_out, *keras_axes, complex_ = fan_arguments
    _checks.check_choice("layout", layout, LAYOUT_NAMES)
    n = _fan(shape, mode, fan_in, fan_out, (layout, in_axis, out_axis, batch_axis, *keras_axes))
    if not n > 0:
        return None, {}
    arguments[mode] = n
    make = _complex.variance_params if complex_ else _variance_params
    return make(distribution, scale / n, arguments), arguments


# The named initializers. Each is variance_scaling with fixed scale and mode, written
# out as its own def (the CLI and the tests read NAMED, which says the same). They call
# _variance_scaling positionally: keyword forwarding would cost more than the fill of a
# small tensor (bench/RESULTS.md, per-call cost).
NAMED = {  # name -> (scale, mode, default distribution, reference)
    "glorot_normal": (1.0, "fan_avg", "truncated_normal", "Glorot & Bengio 2010"),
    "glorot_uniform": (1.0, "fan_avg", "uniform", "Glorot & Bengio 2010"),
    "he_normal": (2.0, "fan_in", "truncated_normal", "He et al. 2015"),
    "he_uniform": (2.0, "fan_in", "uniform", "He et al. 2015"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal", "LeCun et al. 1998"),
    "lecun_uniform": (1.0, "fan_in", "uniform", "LeCun et al. 1998"),
}
# What every named initializer's docstring would otherwise repeat ({args} in each).
_SHARED_ARGS = """
    Args:
        shape: the full tensor's shape (ints >= 0); fans come from it.
        seed: an integer in [0, 2^64).
        gain: multiplies the standard deviation (the scale by gain²), as
            torch.nn.init's `gain`; > 0.
        distribution: "truncated_normal" (±2σ, σ corrected by 0.87962566103423978 so
            the variance is exact), "normal" (untruncated, as torch.nn.init's
            xavier_normal_/kaiming_normal_) or "uniform".
        dtype, stream, out, region, threads, device, layout, in_axis, out_axis,
            batch_axis, input_axes, output_axes, fan_in, fan_out: as for
            `variance_scaling` (fastinit.fans.compute_fans gives the fans).

    Returns:
        A NumPy array of `shape` (or of the region's shape), `out` itself when given,
        or a fastinit.CudaArray for a CUDA `device`.

    Raises:
        ValueError, TypeError, OverflowError: an argument is outside what is allowed
            (the message names it), before anything is allocated or written.
        MemoryError: the output cannot be allocated.
"""


def _documented(function: Any) -> Any:
    function.__doc__ = function.__doc__.replace("{args}", _SHARED_ARGS)
    return function


@_documented
def glorot_normal(
    shape: Sequence[int],
    seed: int,
    *,
    gain: float = 1.0,
    distribution: str = "truncated_normal",
    dtype: Any = "float32",
    stream: int | str = 0,
    out: np.ndarray | None = None,
    region: tuple[slice, ...] | None = None,
    threads: int | None = None,
    device: Any = None,
    layout: str = "torch",
    in_axis: int | Sequence[int] | None = None,
    out_axis: int | Sequence[int] | None = None,
    batch_axis: int | Sequence[int] = (),
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
    fan_in: float | None = None,
    fan_out: float | None = None,
) -> Any:
    """Glorot/Xavier normal: variance 2 gain² / (fan_in + fan_out), cut at ±2σ.

    σ = gain sqrt(2 / (fan_in + fan_out)) / 0.87962566103423978 before the cut, as in
    Keras and JAX (`distribution="normal"` for torch.nn.init.xavier_normal_).
    {args}
    Example:
        >>> w = fastinit.glorot_normal((4096, 1024), seed=42, stream="fc1.weight")

    Reference: X. Glorot, Y. Bengio, "Understanding the difficulty of training deep
    feedforward neural networks", AISTATS 2010.
    """
    return _variance_scaling(
        shape, seed, 1.0, gain, "fan_avg", distribution, dtype, stream, out, region, threads,
        device, layout, in_axis, out_axis, batch_axis, fan_in, fan_out, input_axes, output_axes,
    )  # fmt: skip


@_documented
def glorot_uniform(
    shape: Sequence[int],
    seed: int,
    *,
    gain: float = 1.0,
    distribution: str = "uniform",
    dtype: Any = "float32",
    stream: int | str = 0,
    out: np.ndarray | None = None,
    region: tuple[slice, ...] | None = None,
    threads: int | None = None,
    device: Any = None,
    layout: str = "torch",
    in_axis: int | Sequence[int] | None = None,
    out_axis: int | Sequence[int] | None = None,
    batch_axis: int | Sequence[int] = (),
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
    fan_in: float | None = None,
    fan_out: float | None = None,
) -> Any:
    """Glorot/Xavier uniform: U(-l, l), l = gain sqrt(6 / (fan_in + fan_out)).

    The same as torch.nn.init.xavier_uniform_, Keras and JAX glorot_uniform.
    {args}
    Example:
        >>> w = fastinit.glorot_uniform((4096, 1024), seed=42, dtype="bfloat16")

    Reference: X. Glorot, Y. Bengio, "Understanding the difficulty of training deep
    feedforward neural networks", AISTATS 2010.
    """
    return _variance_scaling(
        shape, seed, 1.0, gain, "fan_avg", distribution, dtype, stream, out, region, threads,
        device, layout, in_axis, out_axis, batch_axis, fan_in, fan_out, input_axes, output_axes,
    )  # fmt: skip


@_documented
def he_normal(
    shape: Sequence[int],
    seed: int,
    *,
    gain: float = 1.0,
    distribution: str = "truncated_normal",
    dtype: Any = "float32",
    stream: int | str = 0,
    out: np.ndarray | None = None,
    region: tuple[slice, ...] | None = None,
    threads: int | None = None,
    device: Any = None,
    layout: str = "torch",
    in_axis: int | Sequence[int] | None = None,
    out_axis: int | Sequence[int] | None = None,
    batch_axis: int | Sequence[int] = (),
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
    fan_in: float | None = None,
    fan_out: float | None = None,
) -> Any:
    """He/Kaiming normal: variance 2 gain² / fan_in, cut at ±2σ.

    σ = gain sqrt(2 / fan_in) / 0.87962566103423978 before the cut, as in Keras and
    JAX. torch.nn.init.kaiming_normal_(w, nonlinearity="relu") is
    `distribution="normal"`; its mode="fan_out" is `variance_scaling(scale=2,
    mode="fan_out", distribution="normal")`.
    {args}
    Example:
        >>> w = fastinit.he_normal((64, 3, 7, 7), seed=42, stream="conv1.weight")

    Reference: K. He, X. Zhang, S. Ren, J. Sun, "Delving deep into rectifiers:
    surpassing human-level performance on ImageNet classification", ICCV 2015.
    """
    return _variance_scaling(
        shape, seed, 2.0, gain, "fan_in", distribution, dtype, stream, out, region, threads,
        device, layout, in_axis, out_axis, batch_axis, fan_in, fan_out, input_axes, output_axes,
    )  # fmt: skip


@_documented
def he_uniform(
    shape: Sequence[int],
    seed: int,
    *,
    gain: float = 1.0,
    distribution: str = "uniform",
    dtype: Any = "float32",
    stream: int | str = 0,
    out: np.ndarray | None = None,
    region: tuple[slice, ...] | None = None,
    threads: int | None = None,
    device: Any = None,
    layout: str = "torch",
    in_axis: int | Sequence[int] | None = None,
    out_axis: int | Sequence[int] | None = None,
    batch_axis: int | Sequence[int] = (),
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
    fan_in: float | None = None,
    fan_out: float | None = None,
) -> Any:
    """He/Kaiming uniform: U(-l, l), l = gain sqrt(6 / fan_in).

    torch.nn.init.kaiming_uniform_(w, nonlinearity="relu"); nn.Linear's default,
    kaiming_uniform_(a=√5), is `gain=sqrt(1/6)` (docs/conventions.md).
    {args}
    Example:
        >>> w = fastinit.he_uniform((1024, 4096), seed=7, stream="mlp.up.weight")

    Reference: K. He, X. Zhang, S. Ren, J. Sun, "Delving deep into rectifiers:
    surpassing human-level performance on ImageNet classification", ICCV 2015.
    """
    return _variance_scaling(
        shape, seed, 2.0, gain, "fan_in", distribution, dtype, stream, out, region, threads,
        device, layout, in_axis, out_axis, batch_axis, fan_in, fan_out, input_axes, output_axes,
    )  # fmt: skip


@_documented
def lecun_normal(
    shape: Sequence[int],
    seed: int,
    *,
    gain: float = 1.0,
    distribution: str = "truncated_normal",
    dtype: Any = "float32",
    stream: int | str = 0,
    out: np.ndarray | None = None,
    region: tuple[slice, ...] | None = None,
    threads: int | None = None,
    device: Any = None,
    layout: str = "torch",
    in_axis: int | Sequence[int] | None = None,
    out_axis: int | Sequence[int] | None = None,
    batch_axis: int | Sequence[int] = (),
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
    fan_in: float | None = None,
    fan_out: float | None = None,
) -> Any:
    """LeCun normal: variance gain² / fan_in, cut at ±2σ (SELU networks' init).

    σ = gain sqrt(1 / fan_in) / 0.87962566103423978 before the cut, as in Keras and JAX.
    {args}
    Example:
        >>> w = fastinit.lecun_normal((512, 512), seed=0, layout="jax")

    Reference: Y. LeCun, L. Bottou, G. Orr, K.-R. Müller, "Efficient BackProp",
    Neural Networks: Tricks of the Trade, 1998.
    """
    return _variance_scaling(
        shape, seed, 1.0, gain, "fan_in", distribution, dtype, stream, out, region, threads,
        device, layout, in_axis, out_axis, batch_axis, fan_in, fan_out, input_axes, output_axes,
    )  # fmt: skip


@_documented
def lecun_uniform(
    shape: Sequence[int],
    seed: int,
    *,
    gain: float = 1.0,
    distribution: str = "uniform",
    dtype: Any = "float32",
    stream: int | str = 0,
    out: np.ndarray | None = None,
    region: tuple[slice, ...] | None = None,
    threads: int | None = None,
    device: Any = None,
    layout: str = "torch",
    in_axis: int | Sequence[int] | None = None,
    out_axis: int | Sequence[int] | None = None,
    batch_axis: int | Sequence[int] = (),
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
    fan_in: float | None = None,
    fan_out: float | None = None,
) -> Any:
    """LeCun uniform: U(-l, l), l = gain sqrt(3 / fan_in).

    The same as Keras and JAX lecun_uniform.
    {args}
    Example:
        >>> w = fastinit.lecun_uniform((512, 512), seed=0)

    Reference: Y. LeCun, L. Bottou, G. Orr, K.-R. Müller, "Efficient BackProp",
    Neural Networks: Tricks of the Trade, 1998.
    """
    return _variance_scaling(
        shape, seed, 1.0, gain, "fan_in", distribution, dtype, stream, out, region, threads,
        device, layout, in_axis, out_axis, batch_axis, fan_in, fan_out, input_axes, output_axes,
    )  # fmt: skip


# PyTorch's names for the same functions.
xavier_normal = glorot_normal
xavier_uniform = glorot_uniform
kaiming_normal = he_normal
kaiming_uniform = he_uniform


def truncated_normal(
    shape: Sequence[int],
    seed: int,
    *,
    mean: float = 0.0,
    std: float = 1.0,
    lower: float | None = None,
    upper: float | None = None,
    a: float | None = None,
    b: float | None = None,
    dtype: Any = "float32",
    stream: int | str = 0,
    out: np.ndarray | None = None,
    region: tuple[slice, ...] | None = None,
    threads: int | None = None,
    device: Any = None,
) -> np.ndarray:
    """Normal(mean, std) restricted to an interval, by inverse CDF (one word per value).

    Bounds either in units of std around the mean, `lower` / `upper` (default -2, 2:
    the Keras/JAX convention), or absolute, `a` / `b` (torch.nn.init.trunc_normal_'s
    names, default -2, 2). `std` is that of the underlying normal, so the result's
    std is smaller (0.8796 std for ±2). Infinite bounds are allowed; finite ones, the
    mean and std·√2 must lie within float32's range, in which every value is computed.
    Complex dtypes: mean 0, lower=-k, upper=k cut the modulus at k·std, E|z|² = std²
    before the cut (docs/stream.md, "Complex outputs").
    """
    request = check_request(shape, seed, dtype, stream, region, threads, device, True)
    params, arguments = _truncated_normal_params(mean, std, lower, upper, a, b)
    if request.dtype.kind == "c":
        params = _complex.truncated_normal_params(arguments)
    return _sample(request, params, out, arguments)


def _truncated_normal_params(
    mean: Any, std: Any, lower: Any, upper: Any, a: Any, b: Any
) -> tuple[Any, dict[str, Any]]:
    """truncated_normal's arguments checked: (Params, the names that determine them)."""
    mean, std = _normal_arguments(mean, std, positive=True)
    if (a is not None or b is not None) and (lower is not None or upper is not None):
        raise ValueError(
            "give the bounds as lower/upper (units of std) or as a/b (absolute), not both"
        )
    if a is not None or b is not None:
        a = _checks.check_real("a", -2.0 if a is None else a, allow_inf=True)
        b = _checks.check_real("b", 2.0 if b is None else b, allow_inf=True)
        if not a < b:
            raise ValueError(f"a must be < b, got a={a}, b={b}")
        for name, bound in (("a", a), ("b", b)):
            if math.isfinite(bound):
                _checks.check_float32_range(name, bound)
        lower, upper = (a - mean) / std, (b - mean) / std
        names, given_bounds = ("a", "b"), (a, b)
        arguments = {"mean": mean, "std": std, "a": a, "b": b}
    else:
        lower = _checks.check_real("lower", -2.0 if lower is None else lower, allow_inf=True)
        upper = _checks.check_real("upper", 2.0 if upper is None else upper, allow_inf=True)
        if not lower < upper:
            raise ValueError(f"lower must be < upper, got lower={lower}, upper={upper}")
        names, given_bounds = ("lower", "upper"), (lower, upper)
        arguments = {"mean": mean, "std": std, "lower": lower, "upper": upper}
    for name, given, bound in zip(names, given_bounds, (lower, upper), strict=True):
        # A finite clamp limit must be a finite float32, or it clamps nothing.
        if math.isfinite(bound) and abs(mean + bound * std) > _checks.FLOAT32_MAX:
            raise ValueError(
                f"{name}={given:g}: the bound {mean + bound * std:g} is beyond the float32 "
                "range in which values are computed; use an infinite bound for none"
            )
    _check_tail_resolution(lower, upper, names)
    return _core.truncated_normal_params(mean, std, lower, upper), arguments


def _normal_arguments(mean: Any, std: Any, *, positive: bool) -> tuple[float, float]:
    """mean and std of a normal computed as f32(mean) + f32(std·√2)·erfinv(...) (float32)."""
    mean = _checks.check_real("mean", mean)
    std = _checks.check_real("std", std, positive=positive, nonnegative=not positive)
    _checks.check_float32_range("mean", mean)
    if std * _SQRT2 > _checks.FLOAT32_MAX:
        raise ValueError(
            f"std={std:g} is too large: std·√2 is beyond the float32 range "
            f"(±{_checks.FLOAT32_MAX:.8g}) in which values are computed"
        )
    return mean, std


def _check_tail_resolution(lower: float, upper: float, names: tuple[str, str]) -> None:
    e_lo, e_hi = _core.erf(lower / math.sqrt(2)), _core.erf(upper / math.sqrt(2))
    step = float(np.spacing(np.float32(max(abs(e_lo), abs(e_hi)))))
    if (e_hi - e_lo) / step < _MIN_ERF_STEPS:
        raise ValueError(
            f"{names[0]}/{names[1]}: bounds [{lower:g}, {upper:g}] (units of std) lie too far "
            "in one tail (or too close together): the float32 inverse CDF cannot resolve that "
            "interval; shift the mean or widen the bounds"
        )


def normal(
    shape: Sequence[int],
    seed: int,
    *,
    mean: float = 0.0,
    std: float = 1.0,
    dtype: Any = "float32",
    stream: int | str = 0,
    out: np.ndarray | None = None,
    region: tuple[slice, ...] | None = None,
    threads: int | None = None,
    device: Any = None,
) -> np.ndarray:
    """Normal(mean, std) by inverse CDF: mean + std sqrt(2) erfinv(x), x on a 2^24-point grid.

    The grid bounds |values - mean| by 5.42 std (a true normal exceeds that with
    probability 6e-8); docs/stream.md gives the exact formula. Values are computed in
    float32 for every dtype: |mean| + 5.42 std must fit float32 (and the output dtype).
    Complex dtypes: mean 0, parts independent, each of variance std²/2 (E|z|² = std²).
    """
    request = check_request(shape, seed, dtype, stream, region, threads, device, True)
    params, arguments = _cached(_normal_params, mean, std)
    if request.dtype.kind == "c":
        params = _complex.normal_params(arguments)
    return _sample(request, params, out, arguments)


@_parameter_setup
def _normal_params(mean: Any, std: Any) -> tuple[Any, dict[str, Any]]:
    mean, std = _normal_arguments(mean, std, positive=False)
    return _core.normal_params(mean, std), {"mean": mean, "std": std}


def uniform(
    shape: Sequence[int],
    seed: int,
    *,
    low: float = 0.0,
    high: float = 1.0,
    dtype: Any = "float32",
    stream: int | str = 0,
    out: np.ndarray | None = None,
    region: tuple[slice, ...] | None = None,
    threads: int | None = None,
    device: Any = None,
) -> np.ndarray:
    """Uniform on the open interval (low, high): mid + half x, x on a 2^24-point grid.
    For complex64/complex128, low=-r, high=r: uniform on the disk |z| < r (JAX's disk).

    Symmetric intervals stay exactly symmetric; float32 values never equal low or
    high (narrower output dtypes may round onto them). Values are computed in float32
    for every dtype, so low and high must lie within float32's range (±3.4028235e38),
    and within the output dtype's for float16 / bfloat16.
    """
    request = check_request(shape, seed, dtype, stream, region, threads, device, True)
    params, arguments = _cached(_uniform_params, low, high)
    if request.dtype.kind == "c":
        params = _complex.uniform_params(arguments)
    return _sample(request, params, out, arguments)


@_parameter_setup
def _uniform_params(low: Any, high: Any) -> tuple[Any, dict[str, Any]]:
    low = _checks.check_real("low", low)
    high = _checks.check_real("high", high)
    if low > high:
        raise ValueError(f"low must be <= high, got low={low}, high={high}")
    # mid + half·x in float32: within float32's range, neither can overflow.
    _checks.check_float32_range("low", low)
    _checks.check_float32_range("high", high)
    return _core.uniform_params(low, high), {"low": low, "high": high}


def random_bits(
    n: int,
    seed: int,
    *,
    stream: int | str = 0,
    offset: int = 0,
    threads: int | None = None,
    device: Any = None,
) -> Any:
    """Words offset .. offset + n - 1 of the stream, as uint32.

    Word i is word (i mod 4) of Philox4x32-10 applied to the counter
    (i div 4 mod 2^32, i div 4 >> 32, stream mod 2^32, stream >> 32) under the key
    (seed mod 2^32, seed >> 32). Every sampler draws element i from word i.
    """
    n = _checks.check_int("n", n, high=1 << 61)  # n * 4 bytes < 2^63
    seed = _checks.check_seed(seed)
    stream = check_stream(stream)
    offset = _checks.check_u64("offset", offset)
    threads = resolve_threads(threads)
    if offset + n > _checks.U64_LIMIT:
        raise OverflowError(f"offset + n must be <= 2^64, got {offset} + {n}")
    device = cuda.check_device(device)
    shape = (n,)
    request = _fill.Request(shape, seed, stream, _WORDS_DTYPE, (0,), shape, threads, device)
    return _fill.random_words(request, offset)


# What a spec's tensor is filled with (the checkpoint writer fills windows by flat ranges).
def parameters(
    init: str, shape: tuple[int, ...], dtype: Any, params: dict[str, Any]
) -> _core.Params | float:
    """The Params that `fastinit.<init>(shape, seed, dtype=dtype, **params)` fills with, so
    that `_fill.fill_flat(out, parameters(...), seed, stream, first, threads)` gives the
    bits of that call's result flattened, from element `first` on; the same argument
    checks run first, and raise the same errors.

    `init` is a key of specs.INITIALIZERS. zeros, ones and constant sample nothing:
    for them the value every element holds comes back as a float, rounded as
    fastinit.constant rounds it, once, to nearest (ties to even) in `dtype` (bfloat16
    included: no double rounding through float32). That float is exactly a `dtype`
    value, so storing it into an array of `dtype` gives the constant's bits.
    """
    shape = _checks.check_shape(shape)
    dtype = _checks.check_dtype(dtype)
    if init in NAMED:
        scale, mode, distribution, _ = NAMED[init]
        return _named_parameters(
            shape, dtype, scale, mode, **{"distribution": distribution, **params}
        )
    setup = _PARAMETER_SETUPS.get(init) if type(init) is str else None
    if setup is None:
        known = ", ".join((*NAMED, *_PARAMETER_SETUPS))
        raise ValueError(f"init must be one of {known}; got {_checks.show(init)}")
    return setup(shape, dtype, **params)


def _checked(dtype: np.dtype, params: Any, arguments: dict[str, Any]) -> Any:
    _checks.check_params(params, dtype, arguments)
    return params


def _named_parameters(
    shape: tuple[int, ...],
    dtype: np.dtype,
    scale: float,
    mode: str,
    /,
    *,
    gain: Any = 1.0,
    distribution: Any,
    layout: Any = "torch",
    in_axis: Any = None,
    out_axis: Any = None,
    batch_axis: Any = (),
    fan_in: Any = None,
    fan_out: Any = None,
    input_axes: Any = None,
    output_axes: Any = None,
) -> Any:
    setup = _variance_setup(
        shape,
        scale,
        gain,
        mode,
        distribution,
        layout,
        in_axis,
        out_axis,
        batch_axis,
        fan_in,
        fan_out,
        input_axes,
        output_axes,
    )
    return _checked(dtype, *setup)


def _variance_scaling_parameters(
    shape: tuple[int, ...],
    dtype: np.dtype,
    /,
    *,
    scale: Any = 1.0,
    mode: Any = "fan_in",
    distribution: Any = "truncated_normal",
    layout: Any = "torch",
    in_axis: Any = None,
    out_axis: Any = None,
    batch_axis: Any = (),
    fan_in: Any = None,
    fan_out: Any = None,
    input_axes: Any = None,
    output_axes: Any = None,
) -> Any:
    setup = _variance_setup(
        shape,
        scale,
        None,
        mode,
        distribution,
        layout,
        in_axis,
        out_axis,
        batch_axis,
        fan_in,
        fan_out,
        input_axes,
        output_axes,
    )
    return _checked(dtype, *setup)


def _truncated_normal_parameters(
    shape: tuple[int, ...],
    dtype: np.dtype,
    /,
    *,
    mean: Any = 0.0,
    std: Any = 1.0,
    lower: Any = None,
    upper: Any = None,
    a: Any = None,
    b: Any = None,
) -> Any:
    return _checked(dtype, *_truncated_normal_params(mean, std, lower, upper, a, b))


def _normal_parameters(
    shape: tuple[int, ...], dtype: np.dtype, /, *, mean: Any = 0.0, std: Any = 1.0
) -> Any:
    return _checked(dtype, *_cached(_normal_params, mean, std))


def _uniform_parameters(
    shape: tuple[int, ...], dtype: np.dtype, /, *, low: Any = 0.0, high: Any = 1.0
) -> Any:
    return _checked(dtype, *_cached(_uniform_params, low, high))


def _constant_parameters(shape: tuple[int, ...], dtype: np.dtype, value: Any, /) -> float:
    return float(_fill.round_once(_checks.check_constant(value, dtype), dtype))


_PARAMETER_SETUPS: dict[str, Any] = {
    "variance_scaling": _variance_scaling_parameters,
    "truncated_normal": _truncated_normal_parameters,
    "normal": _normal_parameters,
    "uniform": _uniform_parameters,
    "zeros": lambda shape, dtype, /: _constant_parameters(shape, dtype, 0.0),
    "ones": lambda shape, dtype, /: _constant_parameters(shape, dtype, 1.0),
    "constant": lambda shape, dtype, /, *, value: _constant_parameters(shape, dtype, value),
}
