"""A spec recorded from transformers' own weight initialization.

    spec = spec_from_transformers(json.load(open("config.json")))
    spec = spec_from_transformers(config, model_class="AutoModelForSeq2SeqLM", seed=7)

The model is built from the config on the `meta` device (no memory, no values), then
its own `initialize_weights` runs while every init primitive it can reach records what
it was asked to do instead of doing it: the functions transformers routes all of
torch.nn.init through (`transformers.initialization.TORCH_INIT_FUNCTIONS`),
`transformers.initialization.copy_`, and the Tensor methods normal_, uniform_, zero_,
fill_ and copy_ when they write a parameter (model code that writes `.data` directly).

Rules (chosen here; docs/spec.md is the reference for the spec itself):
- A record that writes the whole tensor replaces every record before it, as the real
  calls would overwrite each other: the LAST whole-tensor record is the initializer.
  Zeroing (or filling with 0) one row of axis 0 afterwards, as `weight[padding_idx]
  .zero_()` does, adds that row to zero_rows; a whole-tensor record clears them.
- Each primitive becomes the fastinit initializer with the same formula: normal_ ->
  normal(mean, std); uniform_ -> uniform(low, high); constant_/fill_ -> zeros, ones or
  constant(value); trunc_normal_ -> truncated_normal(mean, std, a, b) (absolute bounds,
  as torch's); xavier_*/kaiming_* -> variance_scaling with scale = gain^2, the same mode
  (xavier: fan_avg) and layout "torch" (torch's fans: dim 1 x receptive field in, dim 0
  x receptive field out).
- A value the model computes (copy_) is kept only when it is one constant (evaluated on
  the CPU when its source is a CPU tensor); a spec cannot hold a literal array today, so
  any other computed value (Mamba's A_log, dt_proj.bias) is refused naming the tensor.
  So are eye_, dirac_, orthogonal_ and sparse_ (not in specs.INITIALIZERS), a partial
  write that is not a zeroed row, a non-floating tensor, and a tensor with no record.
- Names, shapes and order are the meta model's state dict after what save_pretrained
  drops (`_keys_to_ignore_on_save`, tied copies: transformers' own
  remove_tied_weights_from_state_dict); the stream of a tensor is its name.
- Tied parameters: a real model is initialized before tie_weights copies the source
  onto the target, so the record is taken with each target untied (a parameter of its
  own, not saved): the saved tensor carries the source's init (an embedding's zeroed
  padding row survives a tied lm_head's normal_).

The primitives are patched process-wide while the init runs (as transformers' own
guard_torch_init_functions does): do not initialize other models in other threads
meanwhile. Deriving a spec is milliseconds after transformers is imported (DeepSeek-V3's
full config, 967 tensors: about 0.3 s here).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, cast

from . import specs
from .specs import DTYPES, ModelSpec, TensorSpec

__all__ = ["spec_from_transformers"]

# Tensor methods model code calls on parameters (or their .data) to initialize them.
_TENSOR_METHODS = ("normal_", "uniform_", "zero_", "fill_", "copy_")


class _Entry:
    """What the init asked of one parameter: the last whole-tensor initializer and the
    rows of axis 0 zeroed after it (or the reason it cannot be a spec tensor)."""

    __slots__ = ("init", "params", "zero_rows", "refusal")

    def __init__(self) -> None:
        self.init: str | None = None
        self.params: dict[str, Any] = {}
        self.zero_rows: list[int] = []
        self.refusal: str | None = None

    def whole(self, init: str, params: dict[str, Any]) -> None:
        self.init, self.params, self.zero_rows, self.refusal = init, params, [], None

    def refuse(self, why: str) -> None:
        self.init, self.params, self.zero_rows, self.refusal = None, {}, [], why


def _constant(value: float) -> tuple[str, dict[str, Any]]:
    if value == 0.0:
        return "zeros", {}
    if value == 1.0:
        return "ones", {}
    return "constant", {"value": float(value)}


class _Recorder:
    """Maps every tensor an init call targets back to the parameter whose storage it
    views (a meta tensor's storage is its own, shared by its views and its .data)."""

    def __init__(self, model: Any) -> None:
        self.targets: dict[int, Any] = {}  # storage id -> the parameter or buffer
        for tensor in list(model.parameters()) + list(model.buffers()):
            self.targets.setdefault(_storage_id(tensor), tensor)
        self.entries: dict[int, _Entry] = {}

    def entry(self, tensor: Any) -> tuple[Any, _Entry] | None:
        key = _storage_id(tensor)
        target = self.targets.get(key)
        if target is None:
            return None
        return target, self.entries.setdefault(key, _Entry())

    def write(self, tensor: Any, init: str, params: dict[str, Any]) -> bool:
        """Records an initializer of `tensor`; False when it is no parameter/buffer."""
        found = self.entry(tensor)
        if found is None:
            return False
        target, entry = found
        if _is_whole(tensor, target):
            entry.whole(init, params)
            return True
        row = _row_of(tensor, target)
        if row is not None and init == "zeros":
            if entry.init is not None and row not in entry.zero_rows:
                entry.zero_rows.append(row)
            return True
        entry.refuse(f"a partial write ({init} of a {list(tensor.shape)} view) is not a spec")
        return True

    def refuse(self, tensor: Any, why: str) -> bool:
        found = self.entry(tensor)
        if found is None:
            return False
        found[1].refuse(why)
        return True


def _storage_id(tensor: Any) -> int:
    return int(tensor.untyped_storage()._cdata)


def _is_whole(tensor: Any, target: Any) -> bool:
    return bool(
        tuple(tensor.shape) == tuple(target.shape)
        and tensor.storage_offset() == target.storage_offset()
        and tensor.stride() == target.stride()
    )


def _row_of(tensor: Any, target: Any) -> int | None:
    """The row of axis 0 that `tensor` is (as weight[i] gives), else None."""
    if target.dim() < 1 or tuple(tensor.shape) != tuple(target.shape[1:]):
        return None
    if tensor.stride() != target.stride()[1:]:
        return None
    offset = tensor.storage_offset() - target.storage_offset()
    row_stride = target.stride()[0]
    if row_stride <= 0 or offset % row_stride or not 0 <= offset // row_stride < target.shape[0]:
        return None
    return int(offset // row_stride)


def _gain_squared(nonlinearity: str, a: Any) -> float:
    """torch's calculate_gain(nonlinearity, a) squared: the variance scale. relu and
    leaky_relu gains are square roots, squared here without the rounding of sqrt."""
    import torch

    if nonlinearity == "relu":
        return 2.0
    if nonlinearity == "leaky_relu":
        slope = 0.01 if a is None else float(a)
        return 2.0 / (1.0 + slope**2)
    return float(torch.nn.init.calculate_gain(cast("Any", nonlinearity), a)) ** 2


def _recording_functions(recorder: _Recorder, originals: Mapping[str, Any]) -> dict[str, Any]:
    """Replacements for transformers.initialization.TORCH_INIT_FUNCTIONS: they record;
    a tensor that is no parameter or buffer of the model gets the real call."""

    def recording(name: str, rule: Any) -> Any:
        def function(tensor: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs.pop("generator", None)
            made = rule(tensor, *args, **kwargs)
            if isinstance(made, str):
                handled = recorder.refuse(tensor, made)
            else:
                handled = recorder.write(tensor, *made)
            if handled:
                return tensor
            return originals[name](tensor, *args, **kwargs)

        return function

    def scaled(fan: str, distribution: str, scale: float) -> tuple[str, dict[str, Any]]:
        mode = fan if fan in ("fan_in", "fan_out") else "fan_avg"
        params = {"scale": scale, "mode": mode, "distribution": distribution, "layout": "torch"}
        return "variance_scaling", params

    def kaiming(distribution: str) -> Any:
        def rule(
            tensor: Any, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
        ) -> Any:
            return scaled(mode, distribution, _gain_squared(nonlinearity, a))

        return rule

    rules: dict[str, Any] = {
        "uniform_": lambda t, a=0.0, b=1.0: ("uniform", {"low": float(a), "high": float(b)}),
        "normal_": lambda t, mean=0.0, std=1.0: (
            "normal",
            {"mean": float(mean), "std": float(std)},
        ),
        "constant_": lambda t, val: _constant(float(val)),
        "ones_": lambda t: ("ones", {}),
        "zeros_": lambda t: ("zeros", {}),
        "trunc_normal_": lambda t, mean=0.0, std=1.0, a=-2.0, b=2.0: (
            "truncated_normal",
            {"mean": float(mean), "std": float(std), "a": float(a), "b": float(b)},
        ),
        "xavier_uniform_": lambda t, gain=1.0: scaled("fan_avg", "uniform", float(gain) ** 2),
        "xavier_normal_": lambda t, gain=1.0: scaled("fan_avg", "normal", float(gain) ** 2),
        "kaiming_uniform_": kaiming("uniform"),
        "kaiming_normal_": kaiming("normal"),
    }
    for name in ("eye_", "dirac_", "orthogonal_", "sparse_"):
        rules[name] = lambda t, *a, _name=name, **k: f"{_name} has no spec initializer"
    return {name: recording(name, rules[name]) for name in originals if name in rules}


@contextlib.contextmanager
def _recording(recorder: _Recorder) -> Iterator[None]:
    import torch
    from transformers import initialization

    table = initialization.TORCH_INIT_FUNCTIONS
    saved_table = dict(table)
    saved_copy = initialization.copy_
    saved_methods = {name: torch.Tensor.__dict__.get(name) for name in _TENSOR_METHODS}
    real = {name: getattr(torch.Tensor, name) for name in _TENSOR_METHODS}

    def copied(tensor: Any, other: Any) -> Any:
        """copy_: a value the model computed; kept only when it is one constant."""
        if recorder.targets.get(_storage_id(tensor)) is None:
            return real["copy_"](tensor, other)
        if isinstance(other, torch.Tensor) and other.device.type != "meta":
            values = other.detach().to("cpu", torch.float64).reshape(-1)
            if values.numel() and bool((values == values[0]).all()):
                recorder.write(tensor, *_constant(float(values[0])))
                return tensor
        elif isinstance(other, (int, float)):
            recorder.write(tensor, *_constant(float(other)))
            return tensor
        recorder.refuse(
            tensor,
            "its init copies in a computed value and a spec cannot hold a literal array",
        )
        return tensor

    def method(name: str) -> Any:
        def call(tensor: Any, *args: Any, **kwargs: Any) -> Any:
            if recorder.targets.get(_storage_id(tensor)) is None:
                return real[name](tensor, *args, **kwargs)
            kwargs.pop("generator", None)
            if name == "copy_":
                return copied(tensor, *args, **kwargs)
            if name == "zero_":
                recorder.write(tensor, "zeros", {})
            elif name == "fill_":
                (value,) = args or (kwargs["value"],)
                recorder.write(tensor, *_constant(float(value)))
            elif name == "normal_":
                mean, std = (list(args) + [0.0, 1.0][len(args) :])[:2]
                params = {
                    "mean": float(kwargs.get("mean", mean)),
                    "std": float(kwargs.get("std", std)),
                }
                recorder.write(tensor, "normal", params)
            else:  # uniform_
                low, high = (list(args) + [0.0, 1.0][len(args) :])[:2]
                params = {
                    "low": float(kwargs.get("from", low)),
                    "high": float(kwargs.get("to", high)),
                }
                recorder.write(tensor, "uniform", params)
            return tensor

        return call

    try:
        table.update(_recording_functions(recorder, saved_table))
        initialization.copy_ = lambda tensor, other: copied(tensor, other)
        for name in _TENSOR_METHODS:
            setattr(torch.Tensor, name, method(name))
        yield
    finally:
        table.clear()
        table.update(saved_table)
        initialization.copy_ = saved_copy
        for name, saved in saved_methods.items():
            if saved is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, saved)


def _meta_model(config: Mapping[str, Any], model_class: str) -> Any:
    import torch
    import transformers

    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise ValueError(f"config model_type must be a non-empty string, got {model_type!r}")
    auto = getattr(transformers, model_class, None) if isinstance(model_class, str) else None
    if auto is None or not hasattr(auto, "from_config"):
        raise ValueError(
            f"model_class must name a transformers class with from_config "
            f"(e.g. AutoModelForCausalLM, AutoModel), got {model_class!r}"
        )
    fields = {key: value for key, value in config.items() if key != "model_type"}
    try:
        hf_config = transformers.AutoConfig.for_model(model_type, **fields)
    except ValueError as error:
        raise ValueError(f"config model_type {model_type!r}: {error}") from None
    with torch.device("meta"):
        try:
            return auto.from_config(hf_config)
        except ValueError as error:
            raise ValueError(f"model_class {model_class!r}: {error}") from None


def _saved_names(model: Any) -> dict[str, Any]:
    """The state dict save_pretrained writes: ignored keys and tied copies dropped."""
    from transformers.modeling_utils import remove_tied_weights_from_state_dict

    state = model.state_dict(keep_vars=True)
    for key in getattr(model, "_keys_to_ignore_on_save", None) or ():
        state.pop(key, None)
    return cast("dict[str, Any]", remove_tied_weights_from_state_dict(state, model))


def _untie(model: Any) -> None:
    """Gives each tied target (lm_head.weight, ...) a parameter of its own, as it has while
    transformers initializes a model (tie_weights runs after): the target's own init then
    lands on a tensor that is not saved, and the saved source keeps the source's init."""
    import torch

    for target in getattr(model, "all_tied_weights_keys", None) or {}:
        owner_name, _, attribute = target.rpartition(".")
        owner = model.get_submodule(owner_name)
        tied = getattr(owner, attribute, None)
        if isinstance(tied, torch.nn.Parameter):
            fresh = torch.nn.Parameter(torch.empty_like(tied, device="meta"), tied.requires_grad)
            setattr(owner, attribute, fresh)


def spec_from_transformers(
    config: Mapping[str, Any],
    *,
    model_class: str = "AutoModelForCausalLM",
    dtype: str | None = None,
    seed: int = 0,
) -> ModelSpec:
    """The spec of the checkpoint `model_class.from_config(config).save_pretrained` writes,
    each tensor initialized as transformers' own initialize_weights would (see the module
    docstring for the rules).

    config: a Hugging Face config.json (parsed) with model_type. model_class: the name of
    a transformers auto class (AutoModelForCausalLM, AutoModel, AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM, AutoModelForImageClassification, ...). dtype: every tensor's
    dtype; None takes the config's dtype / torch_dtype when it is one of DTYPES, else
    float32. The config is kept in the spec. Raises ValueError naming the tensor when a
    parameter's init has no spec equivalent or there is none.
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a JSON object, got {type(config).__name__}")
    specs.check_depth("config", config)
    if dtype is None:
        declared = config.get("dtype", config.get("torch_dtype"))
        dtype = declared if declared in DTYPES else "float32"
    dtype = specs.check_dtype("dtype", dtype)
    seed = specs.check_seed("seed", seed)
    kept = cast("dict[str, Any]", specs.plain_config(config))
    import torch

    # N.B. transformers writes into the dicts it is given (rope_scaling gains rope_theta):
    # it gets a copy, and the spec keeps the config exactly as the caller gave it.
    model = _meta_model(specs.plain_config(kept) or {}, model_class)
    saved = _saved_names(model)
    _untie(model)
    recorder = _Recorder(model)
    with _recording(recorder), torch.no_grad():
        model.initialize_weights()
    tensors = []
    for name, tensor in saved.items():
        if not tensor.is_floating_point():
            raise ValueError(
                f"tensor {name!r} is {tensor.dtype}; a spec holds only floating tensors"
            )
        entry = recorder.entries.get(_storage_id(tensor))
        if entry is None or (entry.init is None and entry.refusal is None):
            raise ValueError(
                f"tensor {name!r}: {type(model).__name__}'s weight initialization does not "
                "initialize it (no record), so it has no spec initializer"
            )
        if entry.init is None:
            raise ValueError(f"tensor {name!r}: {entry.refusal}")
        shape = tuple(int(size) for size in tensor.shape)
        zero_rows = tuple(sorted(entry.zero_rows))
        tensors.append(TensorSpec(name, shape, dtype, entry.init, dict(entry.params), zero_rows))
    if not tensors:
        raise ValueError(f"model_class {model_class!r}: the model has no tensors")
    return specs.check_spec(ModelSpec(seed, tuple(tensors), kept))
