"""How fastinit.torch checks a torch tensor and writes a sampler's values into it.

Guarantees: a random fill writes `sampler(tensor.shape, ..., dtype=, out=)`, the values
fastinit's sampler returns for (shape, seed, stream), into the tensor in place, in its
logical row-major order; a tensor that is not contiguous (or a negated view) goes
through one contiguous temporary and torch's copy_. Everything is checked before the
seed is drawn and before any write: a tensor of another dtype, layout or overlap is
refused with an exception naming `tensor`, a parameter beyond the tensor's dtype is
refused naming the drop-in's own argument (`a`, `gain`, `mean`...). A meta tensor is
left alone, without drawing a seed, as torch.nn.init leaves it. A DTensor is written
box by box: `sampler(global shape, ..., region=box)` into each box's view of its local
tensor (_dtensor.fill_dtensor); its placements and local tensor are checked with the
rest, before the draw. A tensor subclass other than Parameter, Buffer and DTensor is
refused naming `tensor`.

N.B. this module is the drop-ins' lowest layer: it calls fastinit's samplers, torch
and _dtensor (a DTensor's boxes), never the drop-ins above it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from .. import _checks, dtypes, initializers
from ..dlpack import known_torch_types
from ..streams import check_stream
from ._dtensor import fill_dtensor, is_dtensor, local_tensor

# fastinit's name of each torch dtype it writes, from the one dtype table.
DTYPE_NAMES: dict[torch.dtype, str] = {
    dtypes.torch_dtype(row): row.name for row in dtypes.OUTPUT_DTYPES
}
TORCH_DTYPES = {name: dtype for dtype, name in DTYPE_NAMES.items()}


class UnsupportedTensorError(TypeError, NotImplementedError):
    """A tensor the random drop-ins cannot fill: sparse, nested or MKL-DNN. Also a
    NotImplementedError, which torch.nn.init's random fills raise for most of them."""


class OverlappingTensorError(ValueError, RuntimeError):
    """A tensor whose elements share memory (an expanded view): no fill can give them
    distinct random values. Also a RuntimeError, which torch.nn.init raises for it."""


def seed_of(seed: Any, generator: Any) -> int:
    """The checked `seed`, or one draw from `generator` (default torch's) without one."""
    if seed is not None:
        if generator is not None:
            raise ValueError("give seed or generator, not both")
        return _checks.check_seed(seed)
    if generator is None:
        generator = torch.default_generator
    elif not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    draw = torch.randint(0, 2**63 - 1, (), generator=generator, device=generator.device)
    return int(draw.item())


def stream_of(stream: Any) -> int:
    return 0 if stream is None else check_stream(stream)


def check_tensor(tensor: Any) -> torch.Tensor:
    """A torch.Tensor, Parameter, Buffer or DTensor: other subclasses may keep their
    values anywhere but in the memory fastinit would write."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if type(tensor) not in known_torch_types(torch) and not is_dtensor(tensor):
        raise TypeError(
            f"tensor is a {type(tensor).__name__}, a torch.Tensor subclass fastinit.torch "
            "does not know; it fills torch.Tensor, nn.Parameter, nn.Buffer and DTensor"
        )
    return tensor


def dtype_name(tensor: Any) -> str:
    """fastinit's name of the tensor's dtype, or TypeError for one it does not write."""
    check_tensor(tensor)
    try:
        return DTYPE_NAMES[tensor.dtype]
    except KeyError:
        raise TypeError(
            f"tensor has dtype {tensor.dtype}; fastinit fills {', '.join(map(str, DTYPE_NAMES))}"
        ) from None


def skip(tensor: Any) -> bool:
    """Checks the tensor (a float torch.Tensor a random fill can write); True for a meta
    tensor, which torch.nn.init leaves alone without drawing from its generator."""
    dtype_name(tensor)
    if tensor.device.type == "meta":
        return True
    if is_dtensor(tensor):  # placements, and the local tensor as any other
        local = local_tensor(tensor)
        return local is not None and skip(local)
    if not _dense(tensor):
        layout = "nested" if tensor.is_nested else str(tensor.layout)
        raise UnsupportedTensorError(
            f"tensor has layout {layout}; fastinit.torch's random fills write dense "
            "(torch.strided) tensors"
        )
    if _shares_elements(tensor):
        raise OverlappingTensorError(
            f"tensor has elements that share memory (strides {tensor.stride()} for shape "
            f"{tuple(tensor.shape)}: an expanded view?); a random fill cannot write it. "
            "Fill a tensor of its own (e.g. tensor.clone())"
        )
    return False


def _dense(tensor: torch.Tensor) -> bool:
    return tensor.layout == torch.strided and not tensor.is_nested


def _shares_elements(tensor: torch.Tensor) -> bool:
    """Whether two elements of a strided tensor surely share memory (a stride of 0 on an
    axis longer than 1), as torch's in-place random ops and copy_ refuse to write."""
    return any(n > 1 and s == 0 for n, s in zip(tensor.shape, tensor.stride(), strict=True))


def _separate(tensor: torch.Tensor) -> bool:
    """Whether a strided tensor's elements surely have memory of their own: each axis
    steps over all the axes with smaller strides (a permuted slice of a compact array)."""
    span = 1
    axes = zip(tensor.shape, tensor.stride(), strict=True)
    for stride, size in sorted((s, n) for n, s in axes if n > 1):
        if stride < span:
            return False
        span = stride * size
    return True


def plain(tensor: torch.Tensor) -> bool:
    """Whether fastinit writes the tensor itself: a dense tensor of a fastinit dtype
    whose elements have memory of their own. Others go through torch's own fill, whose
    order of writes decides what overlapping elements end up holding."""
    return tensor.dtype in DTYPE_NAMES and _dense(tensor) and _separate(tensor)


def write(tensor: torch.Tensor, sampler: Callable[..., Any], *args: Any, **options: Any) -> Any:
    """sampler(tensor.shape, *args, dtype=..., out=...) into `tensor`, in place. For a
    DTensor, each box of the global tensor this rank holds gets
    sampler(global shape, ..., region=box) in its part of the local tensor."""
    return _write(tensor, dtype_name(tensor), sampler, args, options)


def write_exact(tensor: torch.Tensor, sampler: Callable[..., Any], *args: Any) -> Any:
    """write() for a structured sampler whose values (0 and 1) every dtype holds exactly:
    a DTensor of a dtype fastinit does not write (integers, bool) gets them through a
    float32 staging tensor, box by box."""
    return _write(tensor, DTYPE_NAMES.get(check_tensor(tensor).dtype, "float32"), sampler, args, {})


def _write(
    tensor: torch.Tensor,
    dtype: str,
    sampler: Callable[..., Any],
    args: tuple[Any, ...],
    options: dict[str, Any],
) -> Any:
    if tensor.device.type == "meta":
        return tensor
    shape = tuple(tensor.shape)

    def fill_box(region: tuple[slice, ...], view: torch.Tensor) -> None:
        _write_box(view, shape, dtype, sampler, args, {**options, "region": region})

    with torch.no_grad():
        if is_dtensor(tensor):
            fill_dtensor(tensor, fill_box)
        else:
            _write_box(tensor.detach(), shape, dtype, sampler, args, options)
    return tensor


def _write_box(
    target: torch.Tensor,
    shape: tuple[int, ...],
    dtype: str,
    sampler: Callable[..., Any],
    args: tuple[Any, ...],
    options: dict[str, Any],
) -> None:
    """sampler(shape, *args, dtype=dtype, **options) into `target`, a plain tensor of the
    result's shape, directly or through a contiguous staging tensor of `dtype`."""
    # N.B. a view with the negative bit holds -x in memory for x: torch's copy_
    # writes it, fastinit would write the memory as it is.
    direct = target.device.type in ("cpu", "cuda")
    own_dtype = DTYPE_NAMES.get(target.dtype) == dtype
    if direct and own_dtype and target.is_contiguous() and not target.is_neg():
        sampler(shape, *args, dtype=dtype, out=target, **options)
    else:
        device = target.device if direct else torch.device("cpu")
        staging = torch.empty(target.shape, dtype=TORCH_DTYPES[dtype], device=device)
        sampler(shape, *args, dtype=dtype, out=staging, **options)
        target.copy_(staging)


def torch_fill(tensor: torch.Tensor, fill: Callable[[torch.Tensor], Any]) -> torch.Tensor:
    """torch's own fill for the dtypes fastinit does not write (integers, bool); for a
    DTensor, an elementwise fill (a constant) of this rank's local tensor."""
    if tensor.device.type != "meta":
        with torch.no_grad():
            if not is_dtensor(tensor):
                fill(tensor)
            elif (local := local_tensor(tensor)) is not None:
                fill(local)
    return tensor


@contextlib.contextmanager
def blaming(arguments: str) -> Iterator[None]:
    """Re-raises a sampler's refusal of a parameter prefixed with the drop-in's own
    arguments that it came from (uniform_'s a and b are fastinit.uniform's low and high;
    xavier_uniform_'s gain makes its bound)."""
    try:
        yield
    except (ValueError, TypeError, OverflowError) as error:
        if type(error) not in (ValueError, TypeError, OverflowError):
            raise
        raise type(error)(f"{arguments}: {error}") from error


def check_representable(dtype: str, **values: float) -> None:
    """Each parameter finite and within the tensor's dtype (torch: "out of bounds")."""
    largest = dtypes.BY_NAME[dtype].largest
    for name, value in values.items():
        if not abs(value) <= largest:
            raise ValueError(f"{name}={value!r} is beyond the largest {dtype} ({largest:g})")


def sampled_fill(
    tensor: torch.Tensor,
    sampler: Callable[..., Any],
    blame: str,
    generator: Any,
    seed: Any,
    stream: Any,
    **params: float,
) -> torch.Tensor:
    """sampler's values with `params` (low/high or mean/std) into tensor, checked before
    the seed is drawn; a refusal names the drop-in's arguments `blame`."""
    if skip(tensor):
        return tensor
    dtype = DTYPE_NAMES[tensor.dtype]
    with blaming(blame):
        check_representable(dtype, **params)
        sampler((0,), 0, dtype=dtype, **params)  # the checks only
    stream = stream_of(stream)
    seed = seed_of(seed, generator)
    return write(tensor, sampler, seed, stream=stream, **params)


def uniform_fill(
    tensor: torch.Tensor,
    low: float,
    high: float,
    blame: str,
    generator: Any,
    seed: Any,
    stream: Any,
) -> torch.Tensor:
    """U(low, high) into tensor."""
    return sampled_fill(
        tensor, initializers.uniform, blame, generator, seed, stream, low=low, high=high
    )


def normal_fill(
    tensor: torch.Tensor,
    mean: float,
    std: float,
    blame: str,
    generator: Any,
    seed: Any,
    stream: Any,
) -> torch.Tensor:
    """N(mean, std²) into tensor."""
    return sampled_fill(
        tensor, initializers.normal, blame, generator, seed, stream, mean=mean, std=std
    )
