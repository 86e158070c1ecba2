"""torch.nn.init, reproducible: the same names, signatures and distributions, Philox bits.

    import fastinit.torch as init        # instead of: from torch.nn import init

    init.kaiming_uniform_(layer.weight, a=math.sqrt(5), seed=42, stream="fc1.weight")
    init.trunc_normal_(w, std=0.02, a=-0.04, b=0.04)          # seed drawn from torch's RNG
    model = init.init_module(model_built_on_meta, seed=42)   # every parameter and buffer

Each function fills its tensor in place (CPU or CUDA; float32, float64, float16,
bfloat16) with the values fastinit's samplers return for (shape, seed, stream), and
returns the tensor. Distributions and parameter formulas are torch.nn.init's; fans
and gains come from torch's own functions, so errors about them (bad mode or
nonlinearity, fewer than 2 dimensions) are torch's too. Other bad arguments raise
fastinit's ValueError/TypeError naming the argument.

Seeds: pass `seed=` (and optionally `stream=`, default 0) for bits that depend on
nothing else. Without a seed, the seed is one draw from `generator` (default
torch.default_generator): torch.randint(0, 2**63 - 1) on that generator, so
torch.manual_seed makes the sequence of calls reproducible and each call advances
the generator, as torch.nn.init's functions do. constant_, ones_, zeros_, eye_ and
dirac_ accept seed/stream/generator for uniformity and ignore them; they also fill
integer tensors, as torch's do.

A tensor that is not contiguous is filled through one contiguous temporary (its
logical row-major order defines the element indices). Meta tensors are left as they
are, as torch.nn.init leaves them.

Odd tensors behave as in torch.nn.init. constant_, ones_, zeros_, eye_ and dirac_ fill
whatever torch's do (an expanded view, a sparse CSR tensor: through torch's own fill,
with fastinit's value) and raise what torch's raise. The random drop-ins refuse a
sparse, nested or MKL-DNN tensor with UnsupportedTensorError (a TypeError and a
NotImplementedError) and an expanded view, whose elements share memory, with
OverlappingTensorError (a ValueError and a RuntimeError), before drawing anything.
Numeric arguments are checked under their own names: a refusal names `a`, `gain`,
`val`... even where the value it rejects is derived from them (a bound, a std), and
no call writes inf or NaN.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import ml_dtypes
import torch

from . import _checks, fans, initializers, structured
from .streams import check_stream, stream_id

__all__ = [
    "calculate_gain",
    "constant_",
    "dirac_",
    "eye_",
    "init_module",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
    "OverlappingTensorError",
    "UnsupportedTensorError",
]

_DTYPES = {
    torch.float32: "float32",
    torch.float64: "float64",
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
}
_LARGEST = {name: float(ml_dtypes.finfo(name).max) for name in _DTYPES.values()}
# The largest negative_slope whose square is a finite double (torch squares it).
_LARGEST_SLOPE = math.sqrt(float(ml_dtypes.finfo("float64").max))


class UnsupportedTensorError(TypeError, NotImplementedError):
    """A tensor the random drop-ins cannot fill: sparse, nested or MKL-DNN. Also a
    NotImplementedError, which torch.nn.init's random fills raise for most of them."""


class OverlappingTensorError(ValueError, RuntimeError):
    """A tensor whose elements share memory (an expanded view): no fill can give them
    distinct random values. Also a RuntimeError, which torch.nn.init raises for it."""


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
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


def _seed(seed: Any, generator: Any) -> int:
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


def _tensor(tensor: Any) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    return tensor


def _dtype(tensor: Any) -> str:
    _tensor(tensor)
    try:
        return _DTYPES[tensor.dtype]
    except KeyError:
        raise TypeError(
            f"tensor has dtype {tensor.dtype}; fastinit fills {', '.join(map(str, _DTYPES))}"
        ) from None


def _skip(tensor: Any) -> bool:
    """Checks the tensor (a float torch.Tensor a random fill can write); True for a meta
    tensor, which torch.nn.init leaves alone without drawing from its generator."""
    _dtype(tensor)
    if tensor.device.type == "meta":
        return True
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


def _plain(tensor: torch.Tensor) -> bool:
    """Whether fastinit writes the tensor itself: a dense tensor of a fastinit dtype
    whose elements have memory of their own. Others go through torch's own fill, whose
    order of writes decides what overlapping elements end up holding."""
    return tensor.dtype in _DTYPES and _dense(tensor) and _separate(tensor)


def _fill(tensor: torch.Tensor, sampler: Callable[..., Any], *args: Any, **options: Any) -> Any:
    """sampler(tensor.shape, *args, dtype=..., out=...) into `tensor`, in place."""
    dtype = _dtype(tensor)
    if tensor.device.type == "meta":
        return tensor
    shape = tuple(tensor.shape)
    with torch.no_grad():
        target = tensor.detach()
        # N.B. a view with the negative bit holds -x in memory for x: torch's copy_
        # writes it, fastinit would write the memory as it is.
        direct = target.device.type in ("cpu", "cuda")
        if direct and target.is_contiguous() and not target.is_neg():
            sampler(shape, *args, dtype=dtype, out=target, **options)
        else:
            device = target.device if direct else torch.device("cpu")
            staging = torch.empty(shape, dtype=tensor.dtype, device=device)
            sampler(shape, *args, dtype=dtype, out=staging, **options)
            target.copy_(staging)
    return tensor


@contextlib.contextmanager
def _blaming(arguments: str) -> Iterator[None]:
    """Re-raises a sampler's refusal of a parameter prefixed with the drop-in's own
    arguments that it came from (uniform_'s a and b are fastinit.uniform's low and high;
    xavier_uniform_'s gain makes its bound)."""
    try:
        yield
    except (ValueError, TypeError, OverflowError) as error:
        if type(error) not in (ValueError, TypeError, OverflowError):
            raise
        raise type(error)(f"{arguments}: {error}") from error


def _check_representable(dtype: str, **values: float) -> None:
    """Each parameter finite and within the tensor's dtype (torch: "out of bounds")."""
    largest = _LARGEST[dtype]
    for name, value in values.items():
        if not abs(value) <= largest:
            raise ValueError(f"{name}={value!r} is beyond the largest {dtype} ({largest:g})")


def _uniform_fill(
    tensor: torch.Tensor,
    low: float,
    high: float,
    blame: str,
    generator: Any,
    seed: Any,
    stream: Any,
) -> torch.Tensor:
    """U(low, high) into tensor; a refusal names the drop-in's arguments `blame`."""
    if _skip(tensor):
        return tensor
    dtype = _DTYPES[tensor.dtype]
    with _blaming(blame):
        _check_representable(dtype, low=low, high=high)
        initializers.uniform((0,), 0, low=low, high=high, dtype=dtype)  # the checks only
    stream = _stream(stream)
    seed = _seed(seed, generator)
    return _fill(tensor, initializers.uniform, seed, low=low, high=high, stream=stream)


def _normal_fill(
    tensor: torch.Tensor,
    mean: float,
    std: float,
    blame: str,
    generator: Any,
    seed: Any,
    stream: Any,
) -> torch.Tensor:
    """N(mean, std²) into tensor; a refusal names the drop-in's arguments `blame`."""
    if _skip(tensor):
        return tensor
    dtype = _DTYPES[tensor.dtype]
    with _blaming(blame):
        _check_representable(dtype, mean=mean, std=std)
        initializers.normal((0,), 0, mean=mean, std=std, dtype=dtype)  # the checks only
    stream = _stream(stream)
    seed = _seed(seed, generator)
    return _fill(tensor, initializers.normal, seed, mean=mean, std=std, stream=stream)


def _stream(stream: Any) -> int:
    return 0 if stream is None else check_stream(stream)


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
    _tensor(tensor)
    a, b = _checks.check_real("a", a), _checks.check_real("b", b)
    return _uniform_fill(tensor, a, b, f"a={a!r}, b={b!r}", generator, seed, stream)


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
    _tensor(tensor)
    mean, std = _checks.check_real("mean", mean), _checks.check_real("std", std)
    return _normal_fill(tensor, mean, std, f"mean={mean!r}, std={std!r}", generator, seed, stream)


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
    if _skip(tensor):
        return tensor
    dtype = _DTYPES[tensor.dtype]
    mean, std = _checks.check_real("mean", mean), _checks.check_real("std", std)
    if lower is not None or upper is not None:
        lower, upper = -2.0 if lower is None else lower, 2.0 if upper is None else upper
        bounds = {"lower": lower, "upper": upper}
    else:
        bounds = {"a": a, "b": b}
    bounds = {name: _checks.check_real(name, v, allow_inf=True) for name, v in bounds.items()}
    shown = ", ".join(f"{name}={value!r}" for name, value in bounds.items())
    with _blaming(f"mean={mean!r}, std={std!r}, {shown}"):
        _check_representable(dtype, mean=mean, std=std)
        initializers.truncated_normal((0,), 0, mean=mean, std=std, dtype=dtype, **bounds)
    stream = _stream(stream)
    seed = _seed(seed, generator)
    return _fill(
        tensor, initializers.truncated_normal, seed, mean=mean, std=std, stream=stream, **bounds
    )


def _torch_fill(tensor: torch.Tensor, fill: Callable[[torch.Tensor], Any]) -> torch.Tensor:
    """torch's own fill for the dtypes fastinit does not write (integers, bool)."""
    if tensor.device.type != "meta":
        with torch.no_grad():
            fill(tensor)
    return tensor


def _constant(
    tensor: torch.Tensor, val: Any, torch_fill: Callable[[torch.Tensor, float], Any]
) -> torch.Tensor:
    """Every element `val`, rounded once into the tensor's dtype; tensors fastinit does
    not write itself get torch_fill(tensor, that rounded value) (torch's own fill)."""
    _tensor(tensor)
    if tensor.dtype not in _DTYPES:
        return _torch_fill(tensor, lambda t: torch_fill(t, val))
    if tensor.device.type == "meta":
        return tensor
    with _blaming(f"val={val!r:.40}"):
        rounded = float(structured.constant((), val, dtype=_DTYPES[tensor.dtype]))
    if _plain(tensor):
        return _fill(tensor, structured.constant, val)
    return _torch_fill(tensor, lambda t: torch_fill(t, rounded))


def constant_(
    tensor: torch.Tensor, val: float, *, seed: Any = None, stream: Any = None,
    generator: Any = None,
) -> torch.Tensor:  # fmt: skip
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
    if _tensor(tensor).ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    if not _plain(tensor):  # 0 and 1: the same bits as fastinit's in every dtype
        return _torch_fill(tensor, torch.nn.init.eye_)
    return _fill(tensor, structured.identity)


def dirac_(
    tensor: torch.Tensor, groups: int = 1, *, seed: Any = None, stream: Any = None,
    generator: Any = None,
) -> torch.Tensor:  # fmt: skip
    """The Dirac delta of a 3-, 4- or 5-D convolution weight, as torch.nn.init.dirac_."""
    if _tensor(tensor).ndimension() not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if tensor.size(0) % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    if not _plain(tensor):  # 0 and 1: the same bits as fastinit's in every dtype
        return _torch_fill(tensor, lambda t: torch.nn.init.dirac_(t, groups))
    return _fill(tensor, structured.dirac, groups)


def xavier_uniform_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
    *,
    seed: int | None = None,
    stream: int | str | None = None,
) -> torch.Tensor:
    """U(-bound, bound), bound = gain sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(_tensor(tensor))
    gain = _checks.check_real("gain", gain)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return _uniform_fill(tensor, -bound, bound, f"gain={gain!r}", generator, seed, stream)


def xavier_normal_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
    *,
    seed: int | None = None,
    stream: int | str | None = None,
) -> torch.Tensor:
    """N(0, std²), std = gain sqrt(2 / (fan_in + fan_out)), untruncated as in torch."""
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(_tensor(tensor))
    gain = _checks.check_real("gain", gain)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return _normal_fill(tensor, 0.0, std, f"gain={gain!r}", generator, seed, stream)


def _kaiming_std(tensor: torch.Tensor, a: float, mode: str, nonlinearity: str) -> float | None:
    """std = gain / sqrt(fan), with torch's own fan and gain (and their errors);
    None for a zero-element tensor, which torch.nn.init warns about and leaves."""
    if 0 in _tensor(tensor).shape:
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
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
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
    return _uniform_fill(tensor, -bound, bound, f"a={a!r}", generator, seed, stream)


def kaiming_normal_(
    tensor: torch.Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
    *,
    seed: int | None = None,
    stream: int | str | None = None,
) -> torch.Tensor:
    """N(0, std²), std = gain / sqrt(fan), untruncated as in torch (He et al. 2015)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    return _normal_fill(tensor, 0.0, std, f"a={a!r}", generator, seed, stream)


def orthogonal_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
    *,
    seed: int | None = None,
    stream: int | str | None = None,
) -> torch.Tensor:
    """A (semi-)orthogonal matrix times gain (fastinit.orthogonal; QR on the host)."""
    if _tensor(tensor).ndimension() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0 or _skip(tensor):
        return tensor
    gain = _checks.check_real("gain", gain)
    # |q| <= 1 for an orthogonal q: values stay finite when the gain is representable.
    dtype = _DTYPES[tensor.dtype]
    _check_representable(dtype, gain=gain)
    structured.orthogonal((0, 0), 0, gain, dtype=dtype)  # the checks only
    stream = _stream(stream)
    seed = _seed(seed, generator)
    return _fill(tensor, structured.orthogonal, seed, gain, stream=stream)


# ---------------------------------------------------------------------------
# Whole modules

# An initializer for init_module: called as init(tensor, seed=..., stream=...).
Initializer = Callable[..., Any]
# A user rule: (qualified name, shape) -> Initializer, or None for the default rule.
Rule = Callable[[str, tuple[int, ...]], Initializer | None]


def _linear_bias(weight: torch.Tensor) -> Initializer:
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(weight)
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    return _uniform(-bound, bound)


def _uniform(low: float, high: float) -> Initializer:
    def init(tensor: torch.Tensor, **keys: Any) -> torch.Tensor:
        return uniform_(tensor, low, high, **keys)

    return init


def _with(function: Callable[..., Any], *args: Any, **options: Any) -> Initializer:
    def init(tensor: torch.Tensor, **keys: Any) -> torch.Tensor:
        return function(tensor, *args, **options, **keys)

    return init


def _fill_value(value: float) -> Initializer:
    """constant_ for floats, Tensor.fill_ for the integer buffers (num_batches_tracked)."""

    def init(tensor: torch.Tensor, **_keys: Any) -> torch.Tensor:
        if tensor.dtype in _DTYPES:
            return constant_(tensor, value)
        with torch.no_grad():
            return tensor.fill_(value)

    return init


def _embedding(padding_idx: int | None) -> Initializer:
    def init(tensor: torch.Tensor, **keys: Any) -> torch.Tensor:
        normal_(tensor, **keys)
        if padding_idx is not None and tensor.device.type != "meta":
            with torch.no_grad():
                tensor[padding_idx].fill_(0)
        return tensor

    return init


_NORMS = (
    torch.nn.LayerNorm,
    torch.nn.GroupNorm,
    torch.nn.RMSNorm,
    torch.nn.modules.batchnorm._NormBase,  # BatchNorm*, InstanceNorm*, SyncBatchNorm
)


def _default_rules(module: torch.nn.Module) -> dict[str, Initializer]:
    """torch's reset_parameters of `module`, as {name relative to module: initializer}.

    A parent's entries win over its children's: MultiheadAttention zeroes its
    out_proj's bias and nn.Transformer re-initializes every matrix below it."""
    nn = torch.nn
    rules: dict[str, Initializer] = {}
    if isinstance(module, nn.Transformer):
        for name, p in module.named_parameters():
            if p.dim() > 1:
                rules[name] = _with(xavier_uniform_)
    elif isinstance(module, nn.MultiheadAttention):
        for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
            if getattr(module, name, None) is not None:
                rules[name] = _with(xavier_uniform_)
        if module.in_proj_bias is not None:
            rules["in_proj_bias"] = _fill_value(0.0)
            rules["out_proj.bias"] = _fill_value(0.0)
        for name in ("bias_k", "bias_v"):
            if getattr(module, name, None) is not None:
                rules[name] = _with(xavier_normal_)
    elif isinstance(module, nn.Linear | nn.modules.conv._ConvNd):
        rules["weight"] = _with(kaiming_uniform_, a=math.sqrt(5))
        if module.bias is not None:
            rules["bias"] = _linear_bias(module.weight)
    elif isinstance(module, nn.Bilinear):
        bound = 1 / math.sqrt(module.weight.size(1))
        rules["weight"] = rules["bias"] = _uniform(-bound, bound)
    elif isinstance(module, nn.Embedding | nn.EmbeddingBag):
        rules["weight"] = _embedding(module.padding_idx)
    elif isinstance(module, _NORMS):
        rules["weight"] = _fill_value(1.0)
        rules["bias"] = _fill_value(0.0)
        rules["running_mean"] = _fill_value(0.0)
        rules["running_var"] = _fill_value(1.0)
        rules["num_batches_tracked"] = _fill_value(0)
    elif isinstance(module, nn.RNNBase | nn.RNNCellBase):
        bound = 1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0
        for name, _ in module.named_parameters(recurse=False):
            rules[name] = _uniform(-bound, bound)
    elif isinstance(module, nn.PReLU):
        rules["weight"] = _fill_value(module.init)
    return rules


def init_module(
    module: torch.nn.Module,
    seed: int,
    *,
    rules: Rule | None = None,
    device: Any = None,
    prefix: str = "",
) -> torch.nn.Module:
    """Materialize `module` if it lives on the meta device, and initialize every parameter
    and buffer reproducibly. Returns the module.

    Each tensor is filled by the rule for its qualified name — `rules(name, shape)` if
    that returns an initializer, else PyTorch's own default for the standard layer that
    owns it (Linear, Conv*, ConvTranspose*, Bilinear, Embedding(Bag), LayerNorm,
    RMSNorm, GroupNorm, BatchNorm*, InstanceNorm*, MultiheadAttention, RNN/LSTM/GRU,
    PReLU, Transformer) — on stream stream_id(prefix + name). So the values depend on
    (seed, name, shape, rule) only: not on construction order, on device, or on which
    tensors were initialized first; `prefix` lets a submodule be initialized exactly as
    it is inside its parent ("encoder." for model.encoder; rules see prefixed names).

    An initializer is called as init(tensor, seed=seed, stream=stream), e.g.
    functools.partial(fastinit.torch.normal_, std=0.02). Tensors no rule covers (a
    custom module's parameters, a buffer computed at construction) raise ValueError
    listing them, before anything is allocated. Tied parameters stay tied and are
    initialized once, under their first name. `device` is where meta tensors are
    materialized (default "cpu"); other tensors stay where they are, in place.
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    seed = _checks.check_seed(seed)
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    target = _device("cpu" if device is None else device)
    plan = _plan(module, rules, prefix)
    _materialize(module, target)
    tensors = dict(module.named_parameters())
    tensors.update(module.named_buffers())
    for name, init in plan.items():
        init(tensors[name], seed=seed, stream=stream_id(prefix + name))
    return module


def _device(device: Any) -> torch.device:
    if not isinstance(device, (str, int, torch.device)) or isinstance(device, bool):
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")
    try:
        return torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"device {device!r:.60} is not a torch device: {error}") from error


def _materialize(module: torch.nn.Module, device: torch.device) -> None:
    """Uninitialized memory on `device` for every meta parameter and buffer; tensors
    shared between modules (tied weights) stay shared, others stay where they are."""
    made: dict[int, torch.Tensor] = {}
    for sub in module.modules():
        for table in (sub._parameters, sub._buffers):
            for name, tensor in table.items():
                if tensor is None or tensor.device.type != "meta":
                    continue
                if id(tensor) not in made:
                    empty = torch.empty_like(tensor, device=device)
                    if isinstance(tensor, torch.nn.Parameter):
                        empty = torch.nn.Parameter(empty, requires_grad=tensor.requires_grad)
                    made[id(tensor)] = empty
                table[name] = made[id(tensor)]


def _plan(module: torch.nn.Module, rules: Rule | None, prefix: str) -> dict[str, Initializer]:
    """{qualified name: initializer} for every parameter and buffer, or ValueError."""
    if rules is not None and not callable(rules):
        raise TypeError(
            "rules must be a callable (name, shape) -> initializer or None, "
            f"got {type(rules).__name__}"
        )
    defaults: dict[str, Initializer] = {}
    owners: dict[str, str] = {}
    for path, sub in module.named_modules():
        for name, init in _default_rules(sub).items():
            qualified = f"{path}.{name}" if path else name
            defaults.setdefault(qualified, init)
    plan: dict[str, Initializer] = {}
    missing = []
    named = [*module.named_parameters(), *module.named_buffers()]
    for path, sub in module.named_modules():
        for name, _ in [*sub.named_parameters(recurse=False), *sub.named_buffers(recurse=False)]:
            owners[f"{path}.{name}" if path else name] = type(sub).__name__
    for name, tensor in named:
        chosen = rules(prefix + name, tuple(tensor.shape)) if rules is not None else None
        if chosen is not None and not callable(chosen):
            raise TypeError(
                f"rules({prefix + name!r}, ...) returned {type(chosen).__name__}, not a callable"
            )
        chosen = chosen or defaults.get(name)
        if chosen is None:
            missing.append(f"{prefix + name} {tuple(tensor.shape)} in {owners.get(name, '?')}")
        else:
            plan[name] = chosen
    if missing:
        raise ValueError(
            "init_module: no rule initializes " + "; ".join(missing) + ". Pass rules= returning "
            "an initializer for them (e.g. functools.partial(fastinit.torch.normal_, std=0.02))"
        )
    return plan
