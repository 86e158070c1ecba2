"""torch.nn.init's functions with fastinit's bits: the drop-ins of fastinit.torch.

Guarantees: each function has torch.nn.init's name, signature (plus keyword-only
seed= and stream=) and distribution; it fills its tensor in place and returns it.
The std or bound comes from torch's own fans and gains, so their errors (a bad mode
or nonlinearity, fewer than 2 dimensions) are torch's; every other refusal is
fastinit's exception naming the drop-in's own argument, raised before a seed is drawn
or anything is written (fastinit.torch's opening paragraph has the whole contract).
Every name of torch.nn.init is here, the deprecated ones without the underscore too
(they warn as torch's do); sparse_'s zeros come from the stream (docs/stream.md, 7).

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
import warnings
from collections.abc import Callable
from typing import Any, Literal, ParamSpec, TypeVar

import ml_dtypes
import numpy as np
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
_P = ParamSpec("_P")
_R = TypeVar("_R")

# The largest negative_slope whose square is a finite double (torch squares it).
_LARGEST_SLOPE = math.sqrt(float(ml_dtypes.finfo("float64").max))


def calculate_gain(nonlinearity: Nonlinearity, param: float | None = None) -> float:
    """Recommended gain for a nonlinearity, PyTorch's table (fastinit.calculate_gain).

    Raises what torch.nn.init.calculate_gain raises, type for type: ValueError for an
    unknown nonlinearity (any non-str included) and, for leaky_relu, for a param that is
    neither None nor an int or float (a bool, a str, a list, a NumPy float32...);
    OverflowError for a slope whose square overflows (torch squares it). One deliberate
    difference: a NaN or infinite slope is a ValueError naming param, where torch returns
    NaN or 0.0 (a gain of 0 or NaN would make every weight 0 or NaN)."""
    if nonlinearity == "leaky_relu" and param is not None:
        # torch's own rule: an int that is not a bool, or a float (subclasses included)
        if isinstance(param, bool) or not isinstance(param, (int, float)):
            raise ValueError(
                "param (negative_slope) must be an int or a float (not a bool), got "
                f"{type(param).__name__} {_checks.show(param):.40}"
            )
        try:
            float(param) ** 2
        except OverflowError as error:
            raise OverflowError(
                f"param (negative_slope) must be within +-{_LARGEST_SLOPE:.6g} "
                f"(its square must be a finite float), got {_checks.show(param):.40}"
            ) from error
        if not math.isfinite(param):
            raise ValueError(f"param (negative_slope) must be finite, got {param!r}")
    fans.calculate_gain(nonlinearity, param)  # fastinit's checks: ValueError for the rest
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


def sparse_(
    tensor: torch.Tensor,
    sparsity: float,
    std: float = 0.01,
    generator: torch.Generator | None = None,
    *,
    seed: int | None = None,
    stream: int | str | None = None,
) -> torch.Tensor:
    """A 2-D tensor of N(0, std²) values with ceil(sparsity * rows) zeros in each column,
    as torch.nn.init.sparse_ (Martens 2010, "Deep learning via Hessian-free
    optimization").

    The values are fastinit.normal's for (shape, seed, stream). Which rows of a column
    are zero comes from the same seed and stream too (docs/stream.md, section 7), where
    torch takes them from torch.randperm on the default generator whatever `generator`
    is: a shard or a slice of the tensor gets the same zeros as the whole. `sparsity`
    must lie in [0, 1] (torch zeroes whole columns above 1 and a meaningless count of
    rows below 0), `std` must be >= 0."""
    if check_tensor(tensor).ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    sparsity = _checks.check_real("sparsity", sparsity)
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be within [0, 1] (a fraction of rows), got {sparsity}")
    std = _checks.check_real("std", std, nonnegative=True)
    if skip(tensor):
        return tensor
    dtype = DTYPE_NAMES[tensor.dtype]
    with blaming(f"std={std!r}"):
        check_representable(dtype, std=std)
        initializers.normal((0,), 0, std=std, dtype=dtype)  # the checks only
    rows = tensor.shape[0]
    num_zeros = math.ceil(sparsity * rows)  # torch's count, to the row
    stream = stream_of(stream)
    seed = seed_of(seed, generator)
    return write(tensor, _sparse, seed, num_zeros, std, stream=stream)


# Columns per step of the zero pattern: bounds its temporaries (~6 bytes per element).
_PATTERN_ELEMENTS = 1 << 22
# A band's keys come from runs of stream words through blocks of rows (at most this many
# words, 64 MB, a run), unless the words between one row's keys and the next's are more
# than _ROW_GAP: then one call per row costs less than making the words in between.
_RUN_WORDS = 1 << 24
_ROW_GAP = 4096


def _sparse(
    shape: tuple[int, int],
    seed: int,
    num_zeros: int,
    std: float,
    *,
    dtype: str,
    out: Any,
    stream: int,
    region: tuple[slice, slice] | None = None,
) -> Any:
    """sparse_'s values for full[region] into `out` (a torch tensor of the region's shape
    and `dtype`): fastinit.normal's, then 0 at the rows _zero_rows picks."""
    initializers.normal(shape, seed, std=std, dtype=dtype, stream=stream, out=out, region=region)
    rows, cols = shape
    if region is None:
        region = (slice(0, rows), slice(0, cols))
    (r0, r1, _), (c0, c1, _) = region[0].indices(rows), region[1].indices(cols)
    if num_zeros == 0 or r1 <= r0 or c1 <= c0:
        return out
    if num_zeros >= rows:
        out.zero_()
        return out
    step = max(1, _PATTERN_ELEMENTS // rows)
    for start in range(c0, c1, step):
        stop = min(c1, start + step)
        zero = _zero_rows(_keys(shape, seed, stream, start, stop), num_zeros)[r0:r1]
        band = out[:, start - c0 : stop - c0]
        band.masked_fill_(torch.from_numpy(zero).to(out.device), 0)
    return out


def _keys(shape: tuple[int, int], seed: int, stream: int, c0: int, c1: int) -> Any:
    """The keys of columns c0 .. c1 - 1 of a (rows, cols) sparse_ tensor, (rows, c1 - c0)
    uint32: element (r, c)'s key is word rows*cols + r*cols + c of the stream (the values
    take words 0 .. rows*cols - 1), docs/stream.md section 7."""
    rows, cols = shape
    width = c1 - c0
    keys = np.empty((rows, width), dtype=np.uint32)
    first = rows * cols + c0  # the word of element (0, c0)'s key
    if cols - width > _ROW_GAP:  # the words between rows cost more than a call per row
        for row in range(rows):
            offset = first + row * cols
            keys[row] = initializers.random_bits(width, seed, stream=stream, offset=offset)
        return keys
    block = max(1, _RUN_WORDS // cols)  # rows per run of words, gaps included
    for row in range(0, rows, block):
        count = min(block, rows - row)
        run = initializers.random_bits(
            (count - 1) * cols + width, seed, stream=stream, offset=first + row * cols
        )
        keys[row : row + count] = np.lib.stride_tricks.as_strided(
            run, (count, width), (cols * run.itemsize, run.itemsize), writeable=False
        )
    return keys


def _zero_rows(keys: Any, num_zeros: int) -> Any:
    """True at the num_zeros rows of each column of `keys` (rows, width) with the
    smallest (key, row): a bool array of the same shape."""
    by_column = np.ascontiguousarray(keys.T)
    kth = np.partition(by_column, num_zeros - 1, axis=1)[:, num_zeros - 1 : num_zeros]
    zero = by_column <= kth  # num_zeros of them, and any other rows that tie with the kth
    for column in np.flatnonzero(zero.sum(axis=1) > num_zeros):  # rare: 2^-32 per pair
        tied = np.flatnonzero(by_column[column] == kth[column])
        below = num_zeros - (zero[column].sum() - tied.size)  # how many of the tied rows
        zero[column, tied[below:]] = False  # the lower rows win
    return np.ascontiguousarray(zero.T)


# torch.nn.init's deprecated names without the trailing underscore, kept "for backward
# compatibility": each warns as torch's does (FutureWarning, torch's words, so that the
# filters that silence torch's warning silence this one) and calls the drop-in.
def _deprecated(function: Callable[_P, _R]) -> Callable[_P, _R]:
    new_name = function.__name__
    old_name = new_name[:-1]

    @functools.wraps(function)
    def deprecated(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        warnings.warn(
            f"`nn.init.{old_name}` is now deprecated in favor of `nn.init.{new_name}`.",
            FutureWarning,
            stacklevel=2,
        )
        return function(*args, **kwargs)

    deprecated.__name__ = deprecated.__qualname__ = old_name
    deprecated.__doc__ = f"Deprecated (as in torch.nn.init): warns, then calls {new_name}."
    return deprecated


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)
