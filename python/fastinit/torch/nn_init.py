"""torch.nn.init's functions with fastinit's bits: the drop-ins of fastinit.torch.

Guarantees: each function has torch.nn.init's name, signature (plus keyword-only
seed= and stream=) and distribution; it fills its tensor in place and returns it.
The std or bound comes from torch's own fans and gains, so their errors (a bad mode
or nonlinearity, fewer than 2 dimensions) are torch's; every other refusal is
fastinit's exception naming the drop-in's own argument, raised before a seed is drawn
or anything is written (fastinit.torch's opening paragraph has the whole contract).

A DTensor (torch.distributed) is filled where it lies: fans, gains and bounds come
from its GLOBAL shape, and each rank writes only its shard, with the bits the whole
tensor holds there on one device (fastinit.torch._dtensor).

N.B. the writing itself (tensor checks, seed draw, the copy through a temporary)
lives one layer down, in fastinit.torch._tensors; this module only turns torch's
vocabulary into fastinit's parameters.
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any, Literal

import ml_dtypes
import torch

from .. import _checks, fans, initializers, structured
from ._dtensor import fill_dtensor, is_dtensor
from ._tensors import (
    DTYPE_NAMES,
    blaming,
    check_representable,
    check_tensor,
    normal_fill,
    plain,
    seed_of,
    skip,
    stream_of,
    torch_fill,
    uniform_fill,
    write,
    write_exact,
)

# torch.nn.init's annotations (its stubs use these Literals); torch checks the strings
# at run time and its errors are the drop-ins' errors, so the values pass on unchanged.
Nonlinearity = Literal[
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
FanMode = Literal["fan_in", "fan_out"]

# The largest negative_slope whose square is a finite double (torch squares it).
_LARGEST_SLOPE = math.sqrt(float(ml_dtypes.finfo("float64").max))


def calculate_gain(nonlinearity: Nonlinearity, param: float | None = None) -> float:
    """Recommended gain for a nonlinearity, PyTorch's table (fastinit.calculate_gain).

    Never inf or NaN: a non-finite slope is a ValueError; a slope whose square
    overflows is an OverflowError naming param, as torch (which squares it) raises."""
    if nonlinearity == "leaky_relu" and isinstance(param, numbers.Real):
        try:
            float(param) ** 2
        except OverflowError as error:
            raise OverflowError(
                f"param (negative_slope) must be within +-{_LARGEST_SLOPE:.6g} "
                f"(its square must be a finite float), got {param!r:.40}"
            ) from error
    fans.calculate_gain(nonlinearity, param)  # fastinit's checks, naming the argument
    return torch.nn.init.calculate_gain(nonlinearity, param)  # torch's value, to the last bit


def uniform_(
    tensor: torch.Tensor,
    a: float = 0.0,
    b: float = 1.0,
    generator: torch.Generator | None = None,
    *,
    seed: int | None = None,
    stream: int | str | None = None,
) -> torch.Tensor:
    """U(a, b), as torch.nn.init.uniform_ (fastinit.uniform: values strictly inside)."""
    check_tensor(tensor)
    a, b = _checks.check_real("a", a), _checks.check_real("b", b)
    return uniform_fill(tensor, a, b, f"a={a!r}, b={b!r}", generator, seed, stream)


def normal_(
    tensor: torch.Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    generator: torch.Generator | None = None,
    *,
    seed: int | None = None,
    stream: int | str | None = None,
) -> torch.Tensor:
    """N(mean, std²), as torch.nn.init.normal_ (fastinit.normal)."""
    check_tensor(tensor)
    mean, std = _checks.check_real("mean", mean), _checks.check_real("std", std)
    return normal_fill(tensor, mean, std, f"mean={mean!r}, std={std!r}", generator, seed, stream)


def trunc_normal_(
    tensor: torch.Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: torch.Generator | None = None,
    *,
    lower: float | None = None,
    upper: float | None = None,
    seed: int | None = None,
    stream: int | str | None = None,
) -> torch.Tensor:
    """N(mean, std²) restricted to [a, b] (absolute, as torch), or to [mean + lower std,
    mean + upper std] when `lower` / `upper` (units of std, as Keras/JAX) are given."""
    if skip(tensor):
        return tensor
    dtype = DTYPE_NAMES[tensor.dtype]
    mean, std = _checks.check_real("mean", mean), _checks.check_real("std", std)
    sampler: Callable[..., Any]
    if lower is not None or upper is not None:  # units of std
        lower = _checks.check_real("lower", -2.0 if lower is None else lower, allow_inf=True)
        upper = _checks.check_real("upper", 2.0 if upper is None else upper, allow_inf=True)
        shown = f"lower={lower!r}, upper={upper!r}"
        sampler = functools.partial(initializers.truncated_normal, lower=lower, upper=upper)
    else:  # absolute
        a = _checks.check_real("a", a, allow_inf=True)
        b = _checks.check_real("b", b, allow_inf=True)
        shown = f"a={a!r}, b={b!r}"
        sampler = functools.partial(initializers.truncated_normal, a=a, b=b)
    with blaming(f"mean={mean!r}, std={std!r}, {shown}"):
        check_representable(dtype, mean=mean, std=std)
        sampler((0,), 0, mean=mean, std=std, dtype=dtype)  # the checks only
    stream = stream_of(stream)
    seed = seed_of(seed, generator)
    return write(tensor, sampler, seed, mean=mean, std=std, stream=stream)


def _constant(
    tensor: torch.Tensor, val: Any, torch_fill_with: Callable[[torch.Tensor, float], Any]
) -> torch.Tensor:
    """Every element `val`, rounded once into the tensor's dtype; tensors fastinit does
    not write itself get torch_fill_with(tensor, that rounded value) (torch's own fill)."""
    check_tensor(tensor)
    if tensor.dtype not in DTYPE_NAMES:
        return torch_fill(tensor, lambda t: torch_fill_with(t, val))
    if tensor.device.type == "meta":
        return tensor
    with blaming(f"val={val!r:.40}"):
        rounded = float(structured.constant((), val, dtype=DTYPE_NAMES[tensor.dtype]))
    if is_dtensor(tensor) or plain(tensor):
        return write(tensor, structured.constant, val)
    return torch_fill(tensor, lambda t: torch_fill_with(t, rounded))


def constant_(
    tensor: torch.Tensor,
    val: float,
    *,
    seed: Any = None,
    stream: Any = None,
    generator: Any = None,
) -> torch.Tensor:
    """Every element `val`, rounded once into the tensor's dtype."""
    return _constant(tensor, val, torch.nn.init.constant_)


def ones_(
    tensor: torch.Tensor, *, seed: Any = None, stream: Any = None, generator: Any = None
) -> torch.Tensor:
    return _constant(tensor, 1.0, lambda t, _: torch.nn.init.ones_(t))


def zeros_(
    tensor: torch.Tensor, *, seed: Any = None, stream: Any = None, generator: Any = None
) -> torch.Tensor:
    # torch's zeros_ is zero_(), which also clears a sparse tensor (fill_ cannot)
    return _constant(tensor, 0.0, lambda t, _: torch.nn.init.zeros_(t))


def eye_(
    tensor: torch.Tensor, *, seed: Any = None, stream: Any = None, generator: Any = None
) -> torch.Tensor:
    """The identity matrix of a 2-D tensor (rectangular allowed)."""
    if check_tensor(tensor).ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    if is_dtensor(tensor):
        return write_exact(tensor, structured.identity)
    if not plain(tensor):  # 0 and 1: the same bits as fastinit's in every dtype
        return torch_fill(tensor, torch.nn.init.eye_)
    return write(tensor, structured.identity)


def dirac_(
    tensor: torch.Tensor,
    groups: int = 1,
    *,
    seed: Any = None,
    stream: Any = None,
    generator: Any = None,
) -> torch.Tensor:
    """The Dirac delta of a 3-, 4- or 5-D convolution weight, as torch.nn.init.dirac_."""
    if check_tensor(tensor).ndimension() not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if tensor.size(0) % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    if is_dtensor(tensor):
        return write_exact(tensor, structured.dirac, groups)
    if not plain(tensor):  # 0 and 1: the same bits as fastinit's in every dtype
        return torch_fill(tensor, lambda t: torch.nn.init.dirac_(t, groups))
    return write(tensor, structured.dirac, groups)


def xavier_uniform_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
    *,
    seed: int | None = None,
    stream: int | str | None = None,
) -> torch.Tensor:
    """U(-bound, bound), bound = gain sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(check_tensor(tensor))
    gain = _checks.check_real("gain", gain)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_fill(tensor, -bound, bound, f"gain={gain!r}", generator, seed, stream)


def xavier_normal_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
    *,
    seed: int | None = None,
    stream: int | str | None = None,
) -> torch.Tensor:
    """N(0, std²), std = gain sqrt(2 / (fan_in + fan_out)), untruncated as in torch."""
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(check_tensor(tensor))
    gain = _checks.check_real("gain", gain)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_fill(tensor, 0.0, std, f"gain={gain!r}", generator, seed, stream)


def _kaiming_std(
    tensor: torch.Tensor, a: float, mode: FanMode, nonlinearity: Nonlinearity
) -> float | None:
    """std = gain / sqrt(fan), with torch's own fan and gain (and their errors);
    None for a zero-element tensor, which torch.nn.init warns about and leaves."""
    if 0 in check_tensor(tensor).shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return None
    if not isinstance(mode, str):  # torch would call mode.lower(): AttributeError
        raise TypeError(f"mode must be 'fan_in' or 'fan_out', got {type(mode).__name__}")
    fan = torch.nn.init._calculate_correct_fan(tensor, mode)
    try:
        gain = torch.nn.init.calculate_gain(nonlinearity, a)
    except OverflowError as error:  # torch squares the slope
        raise OverflowError(
            f"a (negative_slope) must be within +-{_LARGEST_SLOPE:.6g} "
            f"(its square must be a finite float), got {a!r:.40}"
        ) from error
    if not math.isfinite(gain):
        raise ValueError(f"a (negative_slope) must be a finite number, got {a!r}")
    return gain / math.sqrt(fan)


def kaiming_uniform_(
    tensor: torch.Tensor,
    a: float = 0,
    mode: FanMode = "fan_in",
    nonlinearity: Nonlinearity = "leaky_relu",
    generator: torch.Generator | None = None,
    *,
    seed: int | None = None,
    stream: int | str | None = None,
) -> torch.Tensor:
    """U(-bound, bound), bound = sqrt(3) gain / sqrt(fan) (He et al. 2015).

    a=sqrt(5) gives nn.Linear's and nn.Conv*'s default, bound = 1 / sqrt(fan_in)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    return uniform_fill(tensor, -bound, bound, f"a={a!r}", generator, seed, stream)


def kaiming_normal_(
    tensor: torch.Tensor,
    a: float = 0,
    mode: FanMode = "fan_in",
    nonlinearity: Nonlinearity = "leaky_relu",
    generator: torch.Generator | None = None,
    *,
    seed: int | None = None,
    stream: int | str | None = None,
) -> torch.Tensor:
    """N(0, std²), std = gain / sqrt(fan), untruncated as in torch (He et al. 2015)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    return normal_fill(tensor, 0.0, std, f"a={a!r}", generator, seed, stream)


def orthogonal_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
    *,
    seed: int | None = None,
    stream: int | str | None = None,
) -> torch.Tensor:
    """A (semi-)orthogonal matrix times gain (fastinit.orthogonal; QR on the host).

    On a DTensor the QR is of the GLOBAL matrix, so every rank that holds part of it
    computes the whole (rows, prod(other dims)) result on the host — O(rows * cols)
    memory and a QR of O(rows * cols * min(rows, cols)) time per rank, as one device
    would spend — and keeps its part. Unlike the other drop-ins, this cost does not
    shrink with the shard."""
    if check_tensor(tensor).ndimension() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0 or skip(tensor):
        return tensor
    gain = _checks.check_real("gain", gain)
    # |q| <= 1 for an orthogonal q: values stay finite when the gain is representable.
    dtype = DTYPE_NAMES[tensor.dtype]
    check_representable(dtype, gain=gain)
    structured.orthogonal((0, 0), 0, gain, dtype=dtype)  # the checks only
    stream = stream_of(stream)
    seed = seed_of(seed, generator)
    if is_dtensor(tensor):
        return _orthogonal_shard(tensor, seed, gain, stream)
    return write(tensor, structured.orthogonal, seed, gain, stream=stream)


def _orthogonal_shard(tensor: torch.Tensor, seed: int, gain: float, stream: int) -> torch.Tensor:
    """orthogonal_ of a DTensor: the full result on the host, once, copied into each box
    of this rank's shard (a rank outside the mesh computes nothing)."""
    full: list[torch.Tensor] = []

    def fill_box(region: tuple[slice, ...], view: torch.Tensor) -> None:
        if not full:
            full.append(torch.empty(tuple(tensor.shape), dtype=tensor.dtype))
            write(full[0], structured.orthogonal, seed, gain, stream=stream)
        view.copy_(full[0][region])

    return fill_dtensor(tensor, fill_box)
