"""reproducible: a model's own init code, unchanged, draws fastinit's bits by tensor name.

    with fastinit.torch.reproducible(model, seed=42):
        model.init_weights()          # torch.nn.init.* and Tensor.normal_/... as written

(~490 lines: one context manager's patching, thread routing and canonical names, which
only make sense together.)

Guarantees: inside the context, on the thread that entered it, each call of a
torch.nn.init function (uniform_, normal_, trunc_normal_, constant_, ones_, zeros_,
eye_, dirac_, xavier_*, kaiming_*, orthogonal_ and the deprecated aliases without the
underscore) or of the Tensor methods normal_, uniform_, zero_ and fill_ (a number) whose
tensor IS a parameter or buffer of `module` is served by the fastinit.torch drop-in of
the same name, as

    fastinit.torch.<drop-in>(tensor, <the call's own arguments>, seed=seed,
                             stream=<the tensor's canonical name>)

so the tensor holds exactly what that direct call gives it: the same bits on any
device, world size, mesh and placement (DTensors are filled shard by shard by the
drop-ins). Every other call runs torch's own function, bit for bit.

- "Is" means: the Parameter, buffer or DTensor object itself, or a tensor with the
  same memory and layout (`p.data`, `p.detach()`, a DTensor's `to_local()`); such an
  alias fills the module tensor it aliases.
- A view of part of a module tensor (`w[0]`, `w.data[pad]`): zero_, fill_, constant_,
  ones_, zeros_, eye_ and dirac_ go to torch (deterministic, so the same at any world
  size); a random fill of it raises ValueError naming the tensor, before anything is
  written, rather than silently using torch's generator. N.B. indexing a DTensor
  sharded on that dim gives a replicated copy, so at world > 1 torch's
  `w[pad].zero_()` writes the copy, not `w`: nn.Embedding(Bag)'s own padding zeroing
  (reset_parameters) is served, zeroing the row where this rank holds it.
- Canonical name: the qualified name (the first one of a tied tensor, in
  `named_parameters()` order) with every wrapper component removed — `_orig_mod`
  (torch.compile), `_checkpoint_wrapped_module` (activation checkpointing),
  `_fsdp_wrapped_module` (FSDP1) — then `prefix + name`, then `rename(name)`. So
  compiling, checkpointing or wrapping the model does not change its weights, and a
  pipeline stage holding part of a model gets that part's weights.
- Stateless: every call on a name draws from that name's one stream, so the result of
  a call never depends on which calls came before it (repeating init_weights gives the
  same weights). Two random calls on the same tensor therefore draw the same bits;
  each overwrites the whole tensor, so the last one is what the tensor holds.
- A call's `generator=` is ignored for module tensors: the context's seed replaces it.
  Meta tensors are left alone, as torch leaves them.
- Other threads' calls, and calls made while fastinit serves one (torch functions
  that the drop-ins use), go to torch unchanged. Contexts nest: the innermost context
  that holds the tensor serves it. The patched attributes are restored when the last
  context (of any thread) exits, also on an exception.

N.B. only module-level look-ups are caught: `from torch.nn.init import normal_` bound
before the context calls torch's function directly (its inner Tensor.normal_ /
uniform_ call is still served, with torch's formula for the bound). Other random ops
(torch.randn, Tensor.random_/bernoulli_) are not redirected. Tensors
replaced inside the context (`to_empty`, `.to()`) are found again on the first call
that misses; submodules added inside it are not: build the model before entering.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import threading
import warnings
from collections.abc import Callable
from typing import Any

import torch

from .. import _checks
from . import nn_init
from ._dtensor import fill_dtensor, is_dtensor

# Module attributes that wrap a submodule and appear in qualified names.
WRAPPER_COMPONENTS = frozenset(
    {
        "_orig_mod",  # torch.compile's OptimizedModule
        "_checkpoint_wrapped_module",  # activation checkpointing's CheckpointWrapper
        "_fsdp_wrapped_module",  # FSDP1's FullyShardedDataParallel
    }
)

# torch.nn.init functions served by the fastinit drop-in of the same name.
_RANDOM_INITS = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
)
_FIXED_INITS = ("constant_", "ones_", "zeros_", "eye_", "dirac_")
# Tensor methods served by a drop-in; True for the random ones.
_METHODS = {"normal_": True, "uniform_": True, "zero_": False, "fill_": False}
# The layers whose reset_parameters zero a padding row through a view of the weight.
_PADDED = (torch.nn.Embedding, torch.nn.EmbeddingBag)


def canonical_name(name: str, prefix: str = "", rename: Callable[[str], str] | None = None) -> str:
    """The name whose stream a tensor draws from: wrapper components removed from the
    qualified `name`, then `prefix` prepended, then `rename` applied."""
    kept = [part for part in name.split(".") if part not in WRAPPER_COMPONENTS]
    canonical = prefix + ".".join(kept)
    if rename is not None:
        renamed = rename(canonical)
        if not isinstance(renamed, str):
            raise TypeError(
                f"rename({canonical!r}) must return a str, got {type(renamed).__name__}"
            )
        canonical = renamed
    return canonical


def reproducible(
    module: torch.nn.Module,
    seed: int,
    *,
    prefix: str = "",
    rename: Callable[[str], str] | None = None,
) -> _Reproducible:
    """A context manager under which `module`'s own init code draws fastinit's bits:
    each torch.nn.init call or Tensor.normal_/uniform_/zero_/fill_ on one of its
    parameters or buffers is the fastinit.torch drop-in with `seed` and the stream of
    the tensor's canonical name (this module's opening paragraph has the contract).

    `prefix` is prepended to every name, for a module that is part of a larger one (a
    pipeline stage, or `model.layers[4]` initialized alone: prefix="layers.4."); a stage
    that renumbers what it holds passes `rename`, mapping each of its names to the full
    model's. Names are checked here, before anything is patched: two tensors with one
    canonical name are a ValueError."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    seed = _checks.check_seed(seed)
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    if rename is not None and not callable(rename):
        raise TypeError(f"rename must be a callable name -> name, got {type(rename).__name__}")
    return _Reproducible(_Route(module, seed, prefix, rename))


class _Route:
    """One context's module tensors: by object identity, and (indexed on first need) by
    memory. Both are built again when a call misses and the module's tensors have been
    replaced since (`to_empty`, `.to()`, `p.data = ...` inside the context)."""

    def __init__(
        self,
        module: torch.nn.Module,
        seed: int,
        prefix: str,
        rename: Callable[[str], str] | None,
    ) -> None:
        self.seed = seed
        self._module, self._prefix, self._rename = module, prefix, rename
        self._build()

    def _build(self) -> None:
        self.tensors: dict[int, tuple[torch.Tensor, str]] = {}
        # (the table holding the tensor, its key, the tensor): to see it replaced
        self._slots: list[tuple[dict[str, Any], str, torch.Tensor]] = []
        owners: dict[str, str] = {}
        module = self._module
        named = itertools.chain(module.named_parameters(), module.named_buffers())
        for name, tensor in named:
            path, _, key = name.rpartition(".")
            owner = module.get_submodule(path)
            table = owner._parameters if key in owner._parameters else owner._buffers
            self._slots.append((table, key, tensor))
            if id(tensor) in self.tensors:
                continue
            canonical = canonical_name(name, self._prefix, self._rename)
            if canonical in owners:
                raise ValueError(
                    f"{owners[canonical]!r} and {name!r} of module have the same canonical "
                    f"name {canonical!r} (after prefix and rename); each tensor needs its own"
                )
            owners[canonical] = name
            self.tensors[id(tensor)] = (tensor, canonical)
        self._aliases: dict[tuple[Any, ...], tuple[torch.Tensor, str]] | None = None
        self._storages: dict[tuple[Any, ...], str] = {}
        self._memories: list[tuple[torch.Tensor, tuple[Any, ...] | None]] = []

    def find(self, tensor: torch.Tensor) -> tuple[torch.Tensor | None, str] | None:
        """(module tensor, name) for the tensor or an alias of it, (None, name) for a
        view of part of one, None for a tensor that is not the module's."""
        found = self._find(tensor)
        if found is None and self._stale():
            self._build()
            found = self._find(tensor)
        return found

    def _find(self, tensor: torch.Tensor) -> tuple[torch.Tensor | None, str] | None:
        hit = self.tensors.get(id(tensor))
        if hit is not None and hit[0] is tensor:
            return hit
        memory = _memory(tensor)
        if memory is None:
            return None
        if self._aliases is None:
            self._index_memory()
        assert self._aliases is not None
        alias = self._aliases.get(memory)
        if alias is not None:
            return alias
        name = self._storages.get(memory[:2])
        return None if name is None else (None, name)

    def _index_memory(self) -> None:
        self._aliases = {}
        for tensor, name in self.tensors.values():
            memory = _memory(tensor)
            self._memories.append((tensor, memory))
            if memory is not None:
                self._aliases.setdefault(memory, (tensor, name))
                self._storages.setdefault(memory[:2], name)

    def _stale(self) -> bool:
        """Whether a tensor of the module was replaced, or (once memory is indexed) its
        memory changed, since the tables were built: O(tensors), on a miss only."""
        if any(table.get(key) is not tensor for table, key, tensor in self._slots):
            return True
        return any(_memory(tensor) != memory for tensor, memory in self._memories)


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's part of a DTensor; the tensor itself otherwise."""
    if is_dtensor(tensor):
        dtensor: Any = tensor
        with torch.no_grad():
            return dtensor.to_local()
    return tensor


def _memory(tensor: torch.Tensor) -> tuple[Any, ...] | None:
    """(device, storage address, offset, shape, strides, dtype) of the memory a tensor
    reads; None where no memory identifies it (meta, empty, no storage)."""
    try:
        local = _local(tensor)
        if local.device.type == "meta" or local.numel() == 0:
            return None
        address = local.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # a tensor without storage
        return None
    if address == 0:
        return None
    return (
        local.device,
        address,
        local.storage_offset(),
        tuple(local.shape),
        local.stride(),
        local.dtype,
    )


# Per thread: the active routes (innermost last) and how deep fastinit is serving.
_state = threading.local()
_lock = threading.Lock()
_entered = 0  # contexts active in all threads; the patches are in place while > 0
_patches: list[tuple[Any, str, Any, Any, bool]] = []  # (owner, name, original, wrapper, own)


def _routes() -> list[_Route]:
    routes = getattr(_state, "routes", None)
    if routes is None:
        routes = _state.routes = []
    return routes


def _serving() -> int:
    return getattr(_state, "serving", 0)


def _target(tensor: Any, random: bool, operation: str) -> tuple[torch.Tensor, str, int] | None:
    """(module tensor, canonical name, seed) when this call is fastinit's to serve."""
    routes = getattr(_state, "routes", None)
    if not routes or _serving() or not isinstance(tensor, torch.Tensor):
        return None
    for route in reversed(routes):
        found = route.find(tensor)
        if found is None:
            continue
        module_tensor, name = found
        if module_tensor is not None:
            return module_tensor, name, route.seed
        if random:
            raise ValueError(
                f"{operation} on a view of part of {name!r} inside fastinit.torch.reproducible: "
                "a part has no reproducible stream of its own. Fill the whole tensor (its "
                "values then depend on its name only), or fill the part outside the context"
            )
        return None
    return None


def _serve(
    dropin: Callable[..., Any], target: tuple[torch.Tensor, str, int], **arguments: Any
) -> None:
    tensor, name, seed = target
    _state.serving = _serving() + 1
    try:
        dropin(tensor, **arguments, seed=seed, stream=name)
    finally:
        _state.serving -= 1


def _init_wrapper(name: str, original: Callable[..., Any], warn: str | None) -> Callable[..., Any]:
    """torch.nn.init.<name>, served by fastinit.torch.<name> for module tensors; `warn`
    repeats the FutureWarning of a deprecated alias."""
    dropin = getattr(nn_init, name)
    # N.B. called before anything is patched: this is torch's own function.
    signature = inspect.signature(getattr(torch.nn.init, name))
    random = name in _RANDOM_INITS

    @functools.wraps(original)
    def served(*args: Any, **kwargs: Any) -> Any:
        tensor = args[0] if args else kwargs.get("tensor")
        target = _target(tensor, random, f"torch.nn.init.{name}")
        if target is None:
            return original(*args, **kwargs)
        try:
            arguments = dict(signature.bind(*args, **kwargs).arguments)
        except TypeError:
            return original(*args, **kwargs)  # torch's own error for a bad call
        if warn is not None:
            warnings.warn(warn, FutureWarning, stacklevel=2)
        del arguments["tensor"]
        arguments.pop("generator", None)
        _serve(dropin, target, **arguments)
        return tensor

    return served


def _normal_arguments(
    mean: float = 0.0, std: float = 1.0, *, generator: Any = None
) -> dict[str, float]:
    return {"mean": mean, "std": std}


def _uniform_arguments(
    low: float = 0.0, high: float = 1.0, *, generator: Any = None, **bounds: float
) -> dict[str, float]:
    # Tensor.uniform_'s keywords are `from` and `to`, which Python cannot name.
    low, high = bounds.pop("from", low), bounds.pop("to", high)
    if bounds:
        raise TypeError(f"unexpected keywords {sorted(bounds)}")
    return {"a": low, "b": high}


def _method_wrapper(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """Tensor.<name>, served by the matching drop-in for module tensors."""
    random = _METHODS[name]

    @functools.wraps(original)
    def served(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        # N.B. with grad mode on, torch refuses an in-place op on a leaf that requires
        # grad; such calls stay torch's so that they keep raising its error.
        if torch.is_grad_enabled() and self.requires_grad:
            return original(self, *args, **kwargs)
        target = _target(self, random, f"Tensor.{name}")
        if target is None:
            return original(self, *args, **kwargs)
        try:
            dropin, arguments = _method_call(name, args, kwargs)
        except TypeError:
            return original(self, *args, **kwargs)  # torch's own error for a bad call
        if dropin is None:
            return original(self, *args, **kwargs)
        _serve(dropin, target, **arguments)
        return self

    return served


def _method_call(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Callable[..., Any] | None, dict[str, Any]]:
    """The drop-in and its arguments for a Tensor method call; None for a call that
    stays torch's (fill_ with a tensor, a bool or a complex value)."""
    if name == "normal_":
        return nn_init.normal_, _normal_arguments(*args, **kwargs)
    if name == "uniform_":
        return nn_init.uniform_, _uniform_arguments(*args, **kwargs)
    if name == "zero_":
        if args or kwargs:
            raise TypeError("zero_() takes no arguments")
        return nn_init.zeros_, {}
    values = [*args, *kwargs.values()]
    if len(values) != 1 or not set(kwargs) <= {"value"}:
        raise TypeError("fill_() takes one argument, value")
    value = values[0]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, {}
    return nn_init.constant_, {"val": value}


def _padding_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    """Embedding._fill_padding_idx_with_zero: on a DTensor weight of the module, zero
    the padding row where this rank holds it (torch's `weight[padding_idx].fill_(0)`
    writes a replicated copy at world > 1, not the weight)."""

    @functools.wraps(original)
    def served(self: Any) -> Any:
        weight = self.weight
        if self.padding_idx is None or not is_dtensor(weight) or weight.device.type == "meta":
            return original(self)
        target = _target(weight, False, "padding")
        if target is None:
            return original(self)
        row = self.padding_idx % weight.shape[0]

        def zero_row(region: tuple[slice, ...], view: torch.Tensor) -> None:
            rows = region[0]
            if rows.start <= row < rows.stop:
                view[row - rows.start].fill_(0)

        _state.serving = _serving() + 1
        try:
            fill_dtensor(target[0], zero_row, repr(target[1]))
        finally:
            _state.serving -= 1
        return None

    return served


def _install() -> None:
    init = torch.nn.init
    for name in (*_RANDOM_INITS, *_FIXED_INITS):
        original = getattr(init, name)
        _patches.append((init, name, original, _init_wrapper(name, original, None), True))
    for name in (*_RANDOM_INITS, *_FIXED_INITS):
        alias = name[:-1]
        if callable(getattr(init, alias, None)):  # deprecated; gone in some torch
            original = getattr(init, alias)
            warn = f"`nn.init.{alias}` is now deprecated in favor of `nn.init.{name}`."
            _patches.append((init, alias, original, _init_wrapper(name, original, warn), True))
    for name in _METHODS:
        original = getattr(torch.Tensor, name)
        own = name in torch.Tensor.__dict__
        _patches.append((torch.Tensor, name, original, _method_wrapper(name, original), own))
    for layer in _PADDED:
        original = getattr(layer, "_fill_padding_idx_with_zero", None)
        if original is not None:
            own = "_fill_padding_idx_with_zero" in layer.__dict__
            wrapper = _padding_wrapper(original)
            _patches.append((layer, "_fill_padding_idx_with_zero", original, wrapper, own))
    for owner, name, _, wrapper, _ in _patches:
        setattr(owner, name, wrapper)


def _uninstall() -> None:
    for owner, name, original, wrapper, own in reversed(_patches):
        if getattr(owner, name) is not wrapper:
            continue  # patched again by someone else since: theirs stays
        if own:
            setattr(owner, name, original)
        else:
            delattr(owner, name)  # the inherited method shows through again
    _patches.clear()


class _Reproducible:
    """The context of one reproducible() call (it may be entered again, or nested)."""

    def __init__(self, route: _Route) -> None:
        self._route = route

    def __enter__(self) -> _Reproducible:
        global _entered
        with _lock:
            if _entered == 0:
                _install()
            _entered += 1
        _routes().append(self._route)
        return self

    def __exit__(self, *exc_info: object) -> None:
        global _entered
        routes = _routes()
        for index in range(len(routes) - 1, -1, -1):
            if routes[index] is self._route:
                del routes[index]
                break
        with _lock:
            _entered -= 1
            if _entered == 0:
                _uninstall()
