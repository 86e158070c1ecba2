"""Model specs: every tensor of a checkpoint with its shape, dtype and initializer.

    spec = fastinit.specs.load_spec("model.json")                  # a spec document
    spec = spec_from_config(json.load(open("config.json")))        # a Hugging Face config
    spec = spec_from_config(preset_config("llama-3-8b"), seed=7)   # an embedded config

A spec is a seed and a list of tensors. The tensor named `n` draws from the Philox
stream fastinit.stream_id(n) under the spec's seed, so its values depend on its own
name, shape, dtype, initializer and parameters and on the seed, and on nothing else:
any tensor can be regenerated alone, and adding, removing or reordering tensors
changes no other tensor. docs/spec.md is the reference for the JSON document, the
config -> spec rules and the presets.

spec_from_config mirrors transformers' own `_init_weights` for model_type llama,
mistral, qwen2 (the *ForCausalLM models) and gpt2 (GPT2LMHeadModel): the tensor
names, shapes and order of the state dict save_pretrained writes (a tied lm_head is
not written), with normal(0, initializer_range) for Linear, Conv1D and Embedding
weights, GPT-2's residual projections scaled by 1 / sqrt(2 n_layer), ones for norm
weights, zeros for biases, and the embedding's padding row (pad_token_id) zeroed.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from . import _checks, initializers, structured

SPEC_FORMAT = "fastinit.spec/1"
DTYPES = ("float32", "float64", "float16", "bfloat16")

_FANS = ("layout", "fan_in", "fan_out")
_NAMED = ("gain", "distribution", *_FANS)
# Initializer name -> the keyword parameters a spec may give it (all optional but
# constant's value). Each name is the fastinit function of that name.
INITIALIZERS: dict[str, tuple[str, ...]] = {
    "normal": ("mean", "std"),
    "truncated_normal": ("mean", "std", "lower", "upper", "a", "b"),
    "uniform": ("low", "high"),
    "zeros": (),
    "ones": (),
    "constant": ("value",),
    "glorot_normal": _NAMED,
    "glorot_uniform": _NAMED,
    "he_normal": _NAMED,
    "he_uniform": _NAMED,
    "lecun_normal": _NAMED,
    "lecun_uniform": _NAMED,
    "variance_scaling": ("scale", "mode", "distribution", *_FANS),
}
_REQUIRED_PARAMS = {"constant": ("value",)}
_TEXT_PARAMS = frozenset({"distribution", "mode", "layout"})
_NULLABLE_PARAMS = frozenset({"lower", "upper", "a", "b", "fan_in", "fan_out"})
_CONSTANTS = {"zeros": 0.0, "ones": 1.0}

_DOCUMENT_KEYS = ("format", "seed", "dtype", "tensors", "config")
_TENSOR_KEYS = ("name", "shape", "dtype", "init", "params", "zero_rows")
_RESERVED_NAME = "__metadata__"  # the safetensors header's metadata entry

PRESETS: tuple[str, ...] = ("gpt2", "llama-3-8b", "llama-3.2-1b", "mistral-7b", "qwen2-0.5b")


class TensorSpec(NamedTuple):
    name: str
    shape: tuple[int, ...]
    dtype: str  # one of DTYPES
    init: str  # a key of INITIALIZERS
    params: dict[str, Any]  # keyword arguments of that initializer (JSON scalars)
    zero_rows: tuple[int, ...] = ()  # rows of axis 0 set to 0 after sampling (padding_idx)


class ModelSpec(NamedTuple):
    seed: int
    tensors: tuple[TensorSpec, ...]
    config: dict[str, Any] | None = None  # the HF config.json to write beside the weights


# ---------------------------------------------------------------------------
# The JSON document


def spec_from_json(document: Mapping[str, Any]) -> ModelSpec:
    """The spec of a JSON document (parsed), after checking all of it.

    Every error is a ValueError or TypeError raised before anything is sampled;
    errors in a tensor name it (and give its index). docs/spec.md has the schema.
    """
    if not isinstance(document, Mapping):
        raise TypeError(f"a spec must be a JSON object, got {type(document).__name__}")
    if document.get("format") != SPEC_FORMAT:
        hint = ""
        if "format" not in document and "model_type" in document:
            hint = " (this looks like a Hugging Face config.json: use spec_from_config)"
        raise ValueError(
            f"spec format must be {SPEC_FORMAT!r}, got {document.get('format')!r}{hint}"
        )
    unknown = [key for key in document if key not in _DOCUMENT_KEYS]
    if unknown:
        raise ValueError(
            f"unknown spec field(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(_DOCUMENT_KEYS)}"
        )
    seed = _seed(document.get("seed", 0))
    default_dtype = _dtype("spec dtype", document.get("dtype", "float32"))
    config = _config(document.get("config"))
    entries = document.get("tensors")
    if not isinstance(entries, (list, tuple)):
        raise TypeError(f"spec tensors must be a list, got {type(entries).__name__}")
    if not entries:
        raise ValueError("spec tensors must not be empty")
    tensors: list[TensorSpec] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(entries):
        tensor = _tensor(index, entry, default_dtype)
        if tensor.name in first_index:
            raise ValueError(
                f"{_where(index, tensor.name)}: duplicate tensor name "
                f"(first at tensors[{first_index[tensor.name]}])"
            )
        first_index[tensor.name] = index
        _try_sampler(index, tensor, seed)
        tensors.append(tensor)
    return ModelSpec(seed, tuple(tensors), config)


def spec_to_json(spec: ModelSpec) -> dict[str, Any]:
    """The JSON document of a spec: spec_from_json(spec_to_json(s)) == s.

    Canonical: every tensor carries its dtype and params (numbers as floats),
    zero_rows only when there are some, config only when there is one.
    """
    tensors = []
    for tensor in spec.tensors:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "shape": list(tensor.shape),
            "dtype": tensor.dtype,
            "init": tensor.init,
            "params": {key: _canonical(value) for key, value in tensor.params.items()},
        }
        if tensor.zero_rows:
            entry["zero_rows"] = list(tensor.zero_rows)
        tensors.append(entry)
    document: dict[str, Any] = {"format": SPEC_FORMAT, "seed": spec.seed, "tensors": tensors}
    if spec.config is not None:
        document["config"] = spec.config
    return document


def spec_digest(spec: ModelSpec) -> str:
    """SHA-256 (hex) of spec_to_json(spec) as JSON with sorted keys and no spaces."""
    import hashlib

    text = json.dumps(
        spec_to_json(spec),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_spec(path: str | Path) -> ModelSpec:
    """Reads and checks a spec document (UTF-8 JSON; a key repeated in an object is an error)."""
    with open(path, encoding="utf-8") as handle:
        try:
            document = json.load(handle, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON: {error}") from None
    return spec_from_json(document)


def check_spec(spec: ModelSpec) -> ModelSpec:
    """A spec built in Python, checked as its JSON document would be (same errors)."""
    return spec_from_json(spec_to_json(spec))


def with_dtype(spec: ModelSpec, dtype: str) -> ModelSpec:
    """The spec with every tensor's dtype replaced (the config is left as it is)."""
    dtype = _dtype("dtype", dtype)
    tensors = tuple(tensor._replace(dtype=dtype) for tensor in spec.tensors)
    return spec._replace(tensors=tensors)


def with_seed(spec: ModelSpec, seed: int) -> ModelSpec:
    return spec._replace(seed=_seed(seed))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"JSON object has the key {key!r} twice")
        result[key] = value
    return result


def _where(index: int, name: Any = None) -> str:
    return f"tensors[{index}]" if name is None else f"tensor {name!r} (tensors[{index}])"


def _seed(seed: Any) -> int:
    # Not bool, not float (1.0), not a numeric string; NumPy integers are fine.
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"spec seed must be an integer, got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"spec seed must be in [0, 2^64), got {seed}")
    return seed


def _dtype(what: str, dtype: Any) -> str:
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"{what} must be one of {', '.join(DTYPES)}; got {dtype!r}")
    return dtype


def _config(config: Any) -> dict[str, Any] | None:
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise TypeError(f"spec config must be a JSON object, got {type(config).__name__}")
    try:  # a deep copy that is JSON-serializable by construction
        return json.loads(json.dumps(config, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(f"spec config is not plain JSON: {error}") from None


def _tensor(index: int, entry: Any, default_dtype: str) -> TensorSpec:
    if not isinstance(entry, Mapping):
        raise TypeError(f"{_where(index)} must be a JSON object, got {type(entry).__name__}")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise TypeError(f"{_where(index)}: name must be a non-empty string, got {name!r}")
    where = _where(index, name)
    if name == _RESERVED_NAME:
        raise ValueError(f"{where}: {_RESERVED_NAME!r} is reserved by safetensors")
    unknown = [key for key in entry if key not in _TENSOR_KEYS]
    if unknown:
        raise ValueError(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(_TENSOR_KEYS)}"
        )
    for key in ("shape", "init"):
        if key not in entry:
            raise ValueError(f"{where}: {key} is missing")
    shape = _shape(where, entry["shape"])
    dtype = _dtype(f"{where}: dtype", entry.get("dtype", default_dtype))
    init = entry["init"]
    if not isinstance(init, str) or init not in INITIALIZERS:
        raise ValueError(f"{where}: unknown initializer {init!r}; known: {', '.join(INITIALIZERS)}")
    params = _params(where, init, entry.get("params", {}))
    zero_rows = _zero_rows(where, entry.get("zero_rows", []), shape)
    return TensorSpec(name, shape, dtype, init, params, zero_rows)


def _shape(where: str, shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, (list, tuple)):
        raise TypeError(f"{where}: shape must be a list of integers, got {shape!r}")
    for axis, dim in enumerate(shape):
        if type(dim) is not int:  # bool and 1.0 are not dimensions
            raise TypeError(f"{where}: shape[{axis}] must be an integer, got {dim!r}")
        if dim < 0:
            raise ValueError(f"{where}: shape[{axis}] must be >= 0, got {dim}")
    try:
        return _checks.check_shape(tuple(shape))
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"{where}: {error}") from None


def _params(where: str, init: str, params: Any) -> dict[str, Any]:
    if not isinstance(params, Mapping):
        raise TypeError(f"{where}: params must be a JSON object, got {type(params).__name__}")
    allowed = INITIALIZERS[init]
    checked = {}
    for key, value in params.items():
        if key not in allowed:
            listed = ", ".join(allowed) if allowed else "none"
            raise ValueError(
                f"{where}: {init} takes no parameter {key!r} (its parameters: {listed})"
            )
        checked[key] = _param(where, key, value)
    for key in _REQUIRED_PARAMS.get(init, ()):
        if key not in checked:
            raise ValueError(f"{where}: {init} needs the parameter {key!r}")
    return checked


def _param(where: str, key: str, value: Any) -> Any:
    if value is None and key in _NULLABLE_PARAMS:
        return None
    if key in _TEXT_PARAMS:
        if not isinstance(value, str):
            raise TypeError(f"{where}: params.{key} must be a string, got {value!r}")
        return value
    if type(value) is int:
        value = float(value)
    if type(value) is not float:  # not bool, not None, not a string
        raise TypeError(f"{where}: params.{key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{where}: params.{key} must be finite, got {value!r}")
    return value


def _zero_rows(where: str, rows: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    if not isinstance(rows, (list, tuple)):
        raise TypeError(f"{where}: zero_rows must be a list of row indices, got {rows!r}")
    if rows and not shape:
        raise ValueError(f"{where}: zero_rows needs a tensor with at least one axis")
    seen = set()
    for row in rows:
        if type(row) is not int:
            raise TypeError(f"{where}: zero_rows entries must be integers, got {row!r}")
        if not 0 <= row < shape[0]:
            raise ValueError(
                f"{where}: zero_rows entry {row} is out of range for axis 0 of size {shape[0]}"
            )
        if row in seen:
            raise ValueError(f"{where}: zero_rows lists row {row} twice")
        seen.add(row)
    return tuple(rows)


def sample_into(
    tensor: TensorSpec, seed: int, out: Any = None, region: Any = None, threads: Any = None
) -> Any:
    """The tensor's values (full[region] with `region`), into `out` or a new array: its
    initializer on stream stream_id(name) under `seed`, then its zero_rows."""
    if tensor.init in _CONSTANTS or tensor.init == "constant":
        value = _CONSTANTS.get(tensor.init, tensor.params.get("value"))
        out = structured.constant(tensor.shape, value, dtype=tensor.dtype, out=out, region=region)
    else:
        sampler = getattr(initializers, tensor.init)
        out = sampler(
            tensor.shape, seed, dtype=tensor.dtype, stream=tensor.name, out=out, region=region,
            threads=threads, **tensor.params,
        )  # fmt: skip
    if tensor.zero_rows and out.size:
        first = region[0].start or 0 if region else 0
        for row in tensor.zero_rows:
            if first <= row < first + out.shape[0]:
                out[row - first] = 0
    return out


def _try_sampler(index: int, tensor: TensorSpec, seed: int) -> None:
    """Calls the tensor's sampler on an empty region of its shape: every check of the
    parameters (fans, bounds, representable in the dtype) runs, nothing is sampled."""
    region = (slice(0, 0),) if tensor.shape else None
    try:
        sample_into(tensor, seed, region=region, threads=1)
    except TypeError as error:
        raise TypeError(f"{_where(index, tensor.name)}: {error}") from None
    except (ValueError, OverflowError) as error:
        raise ValueError(f"{_where(index, tensor.name)}: {error}") from None


def _canonical(value: Any) -> Any:
    return float(value) if type(value) is int else value


# ---------------------------------------------------------------------------
# Hugging Face configs

SUPPORTED_MODEL_TYPES = ("gpt2", "llama", "mistral", "qwen2")

# The config classes' defaults (transformers 5.23) for the fields that shape the weights.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {
        "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": None,
        "head_dim": None, "attention_bias": False, "mlp_bias": False,
        "tie_word_embeddings": False, "initializer_range": 0.02, "pad_token_id": None,
    },
    "mistral": {
        "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
        "head_dim": None, "tie_word_embeddings": False, "initializer_range": 0.02,
        "pad_token_id": None,
    },
    "qwen2": {
        "vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
        "head_dim": None, "tie_word_embeddings": False, "initializer_range": 0.02,
        "pad_token_id": None,
    },
    "gpt2": {
        "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12,
        "n_inner": None, "initializer_range": 0.02, "tie_word_embeddings": True,
        "add_cross_attention": False,
    },
}  # fmt: skip
# GPT2Config.attribute_map: the common names of its fields.
_GPT2_ALIASES = {
    "n_embd": "hidden_size",
    "n_positions": "max_position_embeddings",
    "n_head": "num_attention_heads",
    "n_layer": "num_hidden_layers",
}


def spec_from_config(
    config: Mapping[str, Any], *, dtype: str | None = None, seed: int = 0
) -> ModelSpec:
    """The spec of the checkpoint transformers' save_pretrained writes for this config.

    config: a Hugging Face config.json (parsed) whose model_type is llama, mistral,
    qwen2 (-> *ForCausalLM) or gpt2 (-> GPT2LMHeadModel); fields it lacks take the
    transformers config class's defaults. dtype: every tensor's dtype; None takes the
    config's dtype / torch_dtype when it is one of DTYPES, else float32. The config
    is kept in the spec (config=) to be written beside the weights.
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a JSON object, got {type(config).__name__}")
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"unsupported model_type {model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    if dtype is None:
        declared = config.get("dtype", config.get("torch_dtype"))
        dtype = declared if declared in DTYPES else "float32"
    dtype = _dtype("dtype", dtype)
    seed = _seed(seed)
    kept = _config(config)
    fields = _Fields(model_type, kept)
    build = _build_gpt2 if model_type == "gpt2" else _build_llama_family
    tensors = tuple(
        TensorSpec(name, shape, dtype, init, dict(params), zero_rows)
        for name, shape, init, params, zero_rows in build(model_type, fields)
    )
    return ModelSpec(seed, tensors, kept)


def preset_config(name: str) -> dict[str, Any]:
    """The Hugging Face config.json of an embedded preset (a fresh dict each call)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    resource = importlib.resources.files("fastinit") / "presets" / f"{name}.json"
    return json.loads(resource.read_text(encoding="utf-8"))


class _Fields:
    """A config's fields with its model_type's defaults, type-checked on access."""

    def __init__(self, model_type: str, config: dict[str, Any]) -> None:
        self.model_type, self.config = model_type, config
        self.defaults = _DEFAULTS[model_type]

    def raw(self, key: str) -> Any:
        if key in self.config:
            return self.config[key]
        alias = _GPT2_ALIASES.get(key) if self.model_type == "gpt2" else None
        if alias is not None and alias in self.config:
            return self.config[alias]
        return self.defaults[key]

    def size(self, key: str, *, optional: bool = False, positive: bool = False) -> Any:
        value = self.raw(key)
        if value is None and optional:
            return None
        if type(value) is not int or value < (1 if positive else 0):
            kind = "a positive" if positive else "a non-negative"
            raise ValueError(
                f"{self.model_type} config: {key} must be {kind} integer, got {value!r}"
            )
        return value

    def flag(self, key: str) -> bool:
        value = self.raw(key)
        if not isinstance(value, bool):
            raise ValueError(
                f"{self.model_type} config: {key} must be true or false, got {value!r}"
            )
        return value

    def initializer_range(self) -> float:
        value = self.raw("initializer_range")
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0
        ):
            raise ValueError(
                f"{self.model_type} config: initializer_range must be a number >= 0, got {value!r}"
            )
        return value


_Row = tuple[str, tuple[int, ...], str, dict[str, Any], tuple[int, ...]]


def _normal(std: float) -> tuple[str, dict[str, Any]]:
    return "normal", {"mean": 0.0, "std": float(std)}


def _padding_rows(fields: _Fields, vocab_size: int) -> tuple[int, ...]:
    """nn.Embedding(vocab, hidden, padding_idx=pad_token_id): the row _init_weights zeroes."""
    pad = fields.raw("pad_token_id")
    if pad is None:
        return ()
    if type(pad) is not int:
        raise ValueError(
            f"{fields.model_type} config: pad_token_id must be an integer, got {pad!r}"
        )
    if not -vocab_size <= pad < vocab_size:  # nn.Embedding asserts the same
        raise ValueError(
            f"{fields.model_type} config: pad_token_id {pad} is out of range for "
            f"vocab_size {vocab_size}"
        )
    return (pad % vocab_size,)


def _build_llama_family(model_type: str, fields: _Fields) -> list[_Row]:
    """LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM: models/<type>/modeling_<type>.py."""
    vocab = fields.size("vocab_size")
    hidden = fields.size("hidden_size")
    inner = fields.size("intermediate_size")
    layers = fields.size("num_hidden_layers")
    heads = fields.size("num_attention_heads", positive=True)
    kv_heads = fields.size("num_key_value_heads", optional=True, positive=True)
    kv_heads = heads if kv_heads is None else kv_heads
    head_dim = fields.size("head_dim", optional=True)
    if head_dim is None or (model_type == "mistral" and head_dim == 0):
        head_dim = hidden // heads  # MistralAttention: `getattr(config, "head_dim") or ...`
    if model_type == "llama":
        q_bias = kv_bias = o_bias = fields.flag("attention_bias")
        mlp_bias = fields.flag("mlp_bias")
    else:  # Mistral: no biases; Qwen2: q, k, v biases only
        q_bias = kv_bias = model_type == "qwen2"
        o_bias = mlp_bias = False
    std = fields.initializer_range() or 0.02  # PreTrainedModel._init_weights
    weight = _normal(std)
    zeros: tuple[str, dict[str, Any]] = ("zeros", {})
    ones: tuple[str, dict[str, Any]] = ("ones", {})

    rows: list[_Row] = [
        ("model.embed_tokens.weight", (vocab, hidden), *weight, _padding_rows(fields, vocab))
    ]

    def linear(name: str, out_features: int, in_features: int, bias: bool) -> None:
        rows.append((f"{name}.weight", (out_features, in_features), *weight, ()))
        if bias:
            rows.append((f"{name}.bias", (out_features,), *zeros, ()))

    for i in range(layers):
        prefix = f"model.layers.{i}"
        linear(f"{prefix}.self_attn.q_proj", heads * head_dim, hidden, q_bias)
        linear(f"{prefix}.self_attn.k_proj", kv_heads * head_dim, hidden, kv_bias)
        linear(f"{prefix}.self_attn.v_proj", kv_heads * head_dim, hidden, kv_bias)
        linear(f"{prefix}.self_attn.o_proj", hidden, heads * head_dim, o_bias)
        linear(f"{prefix}.mlp.gate_proj", inner, hidden, mlp_bias)
        linear(f"{prefix}.mlp.up_proj", inner, hidden, mlp_bias)
        linear(f"{prefix}.mlp.down_proj", hidden, inner, mlp_bias)
        rows.append((f"{prefix}.input_layernorm.weight", (hidden,), *ones, ()))
        rows.append((f"{prefix}.post_attention_layernorm.weight", (hidden,), *ones, ()))
    rows.append(("model.norm.weight", (hidden,), *ones, ()))
    if not fields.flag("tie_word_embeddings"):
        linear("lm_head", vocab, hidden, False)
    return rows


def _build_gpt2(model_type: str, fields: _Fields) -> list[_Row]:
    """GPT2LMHeadModel (modeling_gpt2.py): Conv1D weights are (in, out)."""
    vocab = fields.size("vocab_size")
    positions = fields.size("n_positions")
    embed = fields.size("n_embd")
    layers = fields.size("n_layer")
    heads = fields.size("n_head", positive=True)
    if embed % heads:  # GPT2Attention raises the same
        raise ValueError(f"gpt2 config: n_embd {embed} is not divisible by n_head {heads}")
    inner = fields.size("n_inner", optional=True)
    inner = 4 * embed if inner is None else inner
    initializer_range = fields.initializer_range()
    if initializer_range is None:
        raise ValueError("gpt2 config: initializer_range must be a number >= 0, got None")
    base = _normal(initializer_range or 0.02)  # PreTrainedModel._init_weights: nn.Embedding
    conv = _normal(initializer_range)  # GPT2PreTrainedModel._init_weights: Conv1D
    # ... then c_proj of every GPT2Attention and GPT2MLP: 2 residual paths per block.
    residual = _normal(initializer_range / math.sqrt(2 * layers)) if layers else conv
    zeros: tuple[str, dict[str, Any]] = ("zeros", {})
    ones: tuple[str, dict[str, Any]] = ("ones", {})
    rows: list[_Row] = [
        ("transformer.wte.weight", (vocab, embed), *base, ()),  # no padding_idx in GPT-2
        ("transformer.wpe.weight", (positions, embed), *base, ()),
    ]

    def conv1d(name: str, in_features: int, out_features: int, rule: Any) -> None:
        rows.append((f"{name}.weight", (in_features, out_features), *rule, ()))
        rows.append((f"{name}.bias", (out_features,), *zeros, ()))

    def layer_norm(name: str) -> None:
        rows.append((f"{name}.weight", (embed,), *ones, ()))
        rows.append((f"{name}.bias", (embed,), *zeros, ()))

    cross = fields.flag("add_cross_attention")
    for i in range(layers):
        prefix = f"transformer.h.{i}"
        layer_norm(f"{prefix}.ln_1")
        conv1d(f"{prefix}.attn.c_attn", embed, 3 * embed, conv)
        conv1d(f"{prefix}.attn.c_proj", embed, embed, residual)
        layer_norm(f"{prefix}.ln_2")
        if cross:
            conv1d(f"{prefix}.crossattention.c_attn", embed, 2 * embed, conv)
            conv1d(f"{prefix}.crossattention.q_attn", embed, embed, conv)
            conv1d(f"{prefix}.crossattention.c_proj", embed, embed, residual)
            layer_norm(f"{prefix}.ln_cross_attn")
        conv1d(f"{prefix}.mlp.c_fc", embed, inner, conv)
        conv1d(f"{prefix}.mlp.c_proj", inner, embed, residual)
    layer_norm("transformer.ln_f")
    if not fields.flag("tie_word_embeddings"):
        rows.append(("lm_head.weight", (vocab, embed), *base, ()))  # nn.Linear, no bias
    return rows
