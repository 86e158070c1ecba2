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
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch

from . import _checks, initializers, structured
from .fans import calculate_gain
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
]

_DTYPES = {
    torch.float32: "float32",
    torch.float64: "float64",
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
}


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


def _dtype(tensor: Any) -> str:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    try:
        return _DTYPES[tensor.dtype]
    except KeyError:
        raise TypeError(
            f"tensor has dtype {tensor.dtype}; fastinit fills {', '.join(map(str, _DTYPES))}"
        ) from None


def _skip(tensor: Any) -> bool:
    """Checks the tensor (a float torch.Tensor); True for a meta tensor, which
    torch.nn.init leaves alone without drawing from its generator."""
    _dtype(tensor)
    return tensor.device.type == "meta"


def _fill(tensor: torch.Tensor, sampler: Callable[..., Any], *args: Any, **options: Any) -> Any:
    """sampler(tensor.shape, *args, dtype=..., out=...) into `tensor`, in place."""
    dtype = _dtype(tensor)
    if tensor.device.type == "meta":
        return tensor
    shape = tuple(tensor.shape)
    with torch.no_grad():
        target = tensor.detach()
        if target.is_contiguous():
            sampler(shape, *args, dtype=dtype, out=target, **options)
        else:
            staging = torch.empty(shape, dtype=tensor.dtype, device=tensor.device)
            sampler(shape, *args, dtype=dtype, out=staging, **options)
            target.copy_(staging)
    return tensor


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
    if _skip(tensor):
        return tensor
    seed = _seed(seed, generator)
    return _fill(tensor, initializers.uniform, seed, low=a, high=b, stream=_stream(stream))


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
    if _skip(tensor):
        return tensor
    seed = _seed(seed, generator)
    return _fill(tensor, initializers.normal, seed, mean=mean, std=std, stream=_stream(stream))


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
    seed = _seed(seed, generator)
    if lower is not None or upper is not None:
        lower, upper = -2.0 if lower is None else lower, 2.0 if upper is None else upper
        bounds = {"lower": lower, "upper": upper}
    else:
        bounds = {"a": a, "b": b}
    return _fill(
        tensor, initializers.truncated_normal, seed, mean=mean, std=std, stream=_stream(stream),
        **bounds,
    )  # fmt: skip


def _torch_fill(tensor: torch.Tensor, fill: Callable[[torch.Tensor], Any]) -> torch.Tensor:
    """torch's own fill for the dtypes fastinit does not write (integers, bool)."""
    if tensor.device.type != "meta":
        with torch.no_grad():
            fill(tensor)
    return tensor


def constant_(
    tensor: torch.Tensor, val: float, *, seed: Any = None, stream: Any = None,
    generator: Any = None,
) -> torch.Tensor:  # fmt: skip
    """Every element `val`, rounded once into the tensor's dtype."""
    if isinstance(tensor, torch.Tensor) and tensor.dtype not in _DTYPES:
        return _torch_fill(tensor, lambda t: t.fill_(val))
    return _fill(tensor, structured.constant, val)


def ones_(
    tensor: torch.Tensor, *, seed: Any = None, stream: Any = None, generator: Any = None
) -> torch.Tensor:
    return constant_(tensor, 1.0 if tensor.dtype in _DTYPES else 1)


def zeros_(
    tensor: torch.Tensor, *, seed: Any = None, stream: Any = None, generator: Any = None
) -> torch.Tensor:
    return constant_(tensor, 0.0 if tensor.dtype in _DTYPES else 0)


def eye_(
    tensor: torch.Tensor, *, seed: Any = None, stream: Any = None, generator: Any = None
) -> torch.Tensor:
    """The identity matrix of a 2-D tensor (rectangular allowed)."""
    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    if tensor.dtype not in _DTYPES:
        return _torch_fill(tensor, torch.nn.init.eye_)
    return _fill(tensor, structured.identity)


def dirac_(
    tensor: torch.Tensor, groups: int = 1, *, seed: Any = None, stream: Any = None,
    generator: Any = None,
) -> torch.Tensor:  # fmt: skip
    """The Dirac delta of a 3-, 4- or 5-D convolution weight, as torch.nn.init.dirac_."""
    if tensor.ndimension() not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if tensor.size(0) % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    if tensor.dtype not in _DTYPES:
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
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator, seed=seed, stream=stream)


def xavier_normal_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
    *,
    seed: int | None = None,
    stream: int | str | None = None,
) -> torch.Tensor:
    """N(0, std²), std = gain sqrt(2 / (fan_in + fan_out)), untruncated as in torch."""
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator, seed=seed, stream=stream)


def _kaiming_std(tensor: torch.Tensor, a: float, mode: str, nonlinearity: str) -> float | None:
    """std = gain / sqrt(fan), with torch's own fan and gain (and their errors);
    None for a zero-element tensor, which torch.nn.init warns about and leaves."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return None
    fan = torch.nn.init._calculate_correct_fan(tensor, mode)
    return torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)


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
    return uniform_(tensor, -bound, bound, generator, seed=seed, stream=stream)


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
    return normal_(tensor, 0.0, std, generator, seed=seed, stream=stream)


def orthogonal_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
    *,
    seed: int | None = None,
    stream: int | str | None = None,
) -> torch.Tensor:
    """A (semi-)orthogonal matrix times gain (fastinit.orthogonal; QR on the host)."""
    if tensor.ndimension() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0 or _skip(tensor):
        return tensor
    seed = _seed(seed, generator)
    return _fill(tensor, structured.orthogonal, seed, gain, stream=_stream(stream))


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
    seed = _checks.check_seed(seed)
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    plan = _plan(module, rules, prefix)
    _materialize(module, torch.device("cpu" if device is None else device))
    tensors = dict(module.named_parameters())
    tensors.update(module.named_buffers())
    for name, init in plan.items():
        init(tensors[name], seed=seed, stream=stream_id(prefix + name))
    return module


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
