"""init_module: materialize a whole torch module and initialize every tensor it holds.

Guarantees: each parameter and buffer is filled by one rule (the user's `rules`, else
the reset_parameters default of the standard torch layer that owns it) on stream
stream_id(prefix + qualified name), so its values depend on (seed, name, shape, rule)
only. Every tensor's rule is found before anything is allocated: a tensor no rule
covers is a ValueError listing them all. Meta tensors are materialized on one device,
tied ones stay tied; other tensors are filled where they are, in place.

The rules call the drop-ins of fastinit.torch.nn_init, one layer down.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from .. import _checks
from ..streams import stream_id
from ._dtensor import fill_dtensor, is_dtensor, mesh_device, placements_of
from ._tensors import DTYPE_NAMES
from .nn_init import (
    constant_,
    kaiming_uniform_,
    normal_,
    uniform_,
    xavier_normal_,
    xavier_uniform_,
)

# An initializer for init_module: called as init(tensor, seed=..., stream=...).
Initializer = Callable[..., Any]
# A user rule: (qualified name, shape) -> Initializer, or None for the default rule.
Rule = Callable[[str, tuple[int, ...]], Initializer | None]


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

    DTensor parameters (after FSDP2's fully_shard, parallelize_module, HSDP; on meta or
    materialized) are initialized shard by shard: each rank fills only its local
    tensor, with the bits the unsharded model gets from the same call, and no
    communication. A meta DTensor is materialized as module.to_empty does (through
    module._apply, so FSDP2 re-registers its padded storage) on its mesh's device
    type, which `device`, when given, must name. A Partial placement on a mesh
    dimension of size > 1 is a ValueError naming the tensor, before anything is
    allocated.
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    seed = _checks.check_seed(seed)
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    target = None if device is None else _device(device)
    plan = _plan(module, rules, prefix)
    materialize(module, target)
    tensors: dict[str, torch.Tensor] = dict(module.named_parameters())
    tensors.update(module.named_buffers())
    for name, init in plan.items():
        init(tensors[name], seed=seed, stream=stream_id(prefix + name))
    return module


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
        if is_dtensor(tensor):
            placements_of(tensor, f"{prefix + name!r} ({owners.get(name, '?')})")
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


def _with(function: Callable[..., Any], *args: Any, **options: Any) -> Initializer:
    def init(tensor: torch.Tensor, **keys: Any) -> torch.Tensor:
        return function(tensor, *args, **options, **keys)

    return init


def _uniform(low: float, high: float) -> Initializer:
    def init(tensor: torch.Tensor, **keys: Any) -> torch.Tensor:
        return uniform_(tensor, low, high, **keys)

    return init


def _linear_bias(weight: torch.Tensor) -> Initializer:
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(weight)
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    return _uniform(-bound, bound)


def _fill_value(value: float) -> Initializer:
    """constant_ for floats, Tensor.fill_ for the integer buffers (num_batches_tracked)."""

    def init(tensor: torch.Tensor, **_keys: Any) -> torch.Tensor:
        if tensor.dtype in DTYPE_NAMES or is_dtensor(tensor):  # constant_: a shard's fill
            return constant_(tensor, value)
        with torch.no_grad():
            return tensor.fill_(value)

    return init


def _embedding(padding_idx: int | None) -> Initializer:
    def init(tensor: torch.Tensor, **keys: Any) -> torch.Tensor:
        normal_(tensor, **keys)
        if padding_idx is None or tensor.device.type == "meta":
            return tensor
        row = padding_idx % tensor.shape[0]
        with torch.no_grad():
            if is_dtensor(tensor):  # zero the row only where this rank holds it
                fill_dtensor(tensor, lambda region, view: _zero_row(row, region[0], view))
            else:
                tensor[row].fill_(0)
        return tensor

    return init


def _zero_row(row: int, rows: slice, view: torch.Tensor) -> None:
    """Zeroes global row `row` in `view`, the part of a shard holding global `rows`."""
    if rows.start <= row < rows.stop:
        view[row - rows.start].fill_(0)


def _device(device: Any) -> torch.device:
    if not isinstance(device, (str, int, torch.device)) or isinstance(device, bool):
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")
    try:
        return torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"device {device!r:.60} is not a torch device: {error}") from error


def materialize(module: torch.nn.Module, device: torch.device | None) -> None:
    """Uninitialized memory for every meta parameter and buffer (on `device`, default
    "cpu"); tensors shared between modules (tied weights) stay shared, others stay
    where they are. Meta DTensors get theirs on their mesh's device type (and so do
    the module's other meta tensors unless `device` is given), through module._apply
    as module.to_empty does (see _materialize_dtensors)."""
    tensors = [*module.parameters(), *module.buffers()]
    meta_dtensors = [t for t in tensors if t.device.type == "meta" and is_dtensor(t)]
    for tensor in meta_dtensors:
        where = mesh_device(tensor)
        if device is not None and device.type != where.type:
            raise ValueError(
                f"device is {device}, but the module holds DTensors on a "
                f"{where.type} mesh, which are materialized on their mesh's device"
            )
    if meta_dtensors:  # the rest goes where the DTensors go, unless `device` says
        default = mesh_device(meta_dtensors[0])
        _materialize_dtensors(module, default if device is None else device)
        return
    target = torch.device("cpu") if device is None else device
    made: dict[int, torch.Tensor] = {}
    for sub in module.modules():
        tables: tuple[dict[str, Any], ...] = (sub._parameters, sub._buffers)  # Parameter, Tensor
        for table in tables:
            for name, tensor in table.items():
                if tensor is None or tensor.device.type != "meta":
                    continue
                if id(tensor) not in made:
                    empty = torch.empty_like(tensor, device=target)
                    if isinstance(tensor, torch.nn.Parameter):
                        empty = torch.nn.Parameter(empty, requires_grad=tensor.requires_grad)
                    made[id(tensor)] = empty
                table[name] = made[id(tensor)]


def _materialize_dtensors(module: torch.nn.Module, device: torch.device) -> None:
    """materialize() for a module holding meta DTensors: module._apply (to_empty's
    route) keeps each Parameter object (it swaps a DTensor's contents in place), so
    ties hold and FSDP2's _apply re-registers its sharded parameters and their padded
    storage, into which the fills then write. Each meta tensor is materialized once
    (tied buffers stay tied); tensors already materialized come back as they are."""
    made: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id -> (meta, materialized)

    def empty(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.device.type != "meta":
            return tensor
        if id(tensor) not in made:
            where = mesh_device(tensor) if is_dtensor(tensor) else device
            made[id(tensor)] = (tensor, torch.empty_like(tensor, device=where))
        return made[id(tensor)][1]

    module._apply(empty)
