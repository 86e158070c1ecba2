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

Limits, checked before anything is built (docs/spec.md, "Limits"): JSON nested at most
MAX_DEPTH levels, at most MAX_TENSORS tensors, at most MAX_BYTES bytes per tensor and
in all. Every tensor's initializer, parameters and dtype pass the public sampler's own
checks, so a spec can express no call the API would refuse.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import numbers
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

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

# Real documents nest a few levels (a spec: 4, Hugging Face configs: under 10); deeper
# ones are refused before anything recurses over them (json, repr, copies).
MAX_DEPTH = 64
# The largest real checkpoints hold under 100k tensors (Llama-3.1-405B: 1,137; a
# bfloat16 mixture of 384 experts x 60 layers: ~70k): a million is not a model.
MAX_TENSORS = 1_000_000
# 4 EiB per tensor and in all: every offset and file size fits in a signed 64-bit
# integer with room to spare for the headers.
MAX_BYTES = 1 << 62
_ITEMSIZE = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2}
_LEAVES = frozenset({str, int, float, bool, type(None)})  # JSON's scalars, as json.load gives


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

    Every error is a ValueError or TypeError raised before anything is written (each
    tensor's sampler draws one element, as its check); errors in a tensor name it (and
    give its index). docs/spec.md has the schema and the limits.
    """
    if not isinstance(document, Mapping):
        raise TypeError(f"a spec must be a JSON object, got {type(document).__name__}")
    entries = document.get("tensors")
    _check_count(entries)
    for key, value in document.items():  # the tensors are walked one by one, below
        if key != "tensors":
            _check_depth(f"spec {key}", value, depth=1)
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
    if not isinstance(entries, (list, tuple)):
        raise TypeError(f"spec tensors must be a list, got {type(entries).__name__}")
    if not entries:
        raise ValueError("spec tensors must not be empty")
    return ModelSpec(seed, _checked_tensors(entries, default_dtype, seed), config)


def _check_count(entries: Any) -> None:
    if isinstance(entries, (list, tuple)) and len(entries) > MAX_TENSORS:
        raise ValueError(
            f"spec tensors: {len(entries):,} tensors; a spec holds at most "
            f"{MAX_TENSORS:,} (fastinit.specs.MAX_TENSORS)"
        )


def _checked_tensors(
    entries: Iterable[Any], default_dtype: str, seed: int, given: Any = None
) -> tuple[TensorSpec, ...]:
    """Each entry checked in turn (at most MAX_TENSORS of them, as _check_count made sure):
    fields, unique name, bytes, then a sample of one element by its real sampler. With
    `given` (the tensors the entries came from), a tensor that passes unchanged is kept."""
    tensors: list[TensorSpec] = []
    first_index: dict[str, int] = {}
    total = 0
    for index, entry in enumerate(entries):
        _check_depth(_where(index), entry, depth=2)
        tensor = _tensor(index, entry, default_dtype)
        if tensor.name in first_index:
            raise ValueError(
                f"{_where(index, tensor.name)}: duplicate tensor name "
                f"(first at tensors[{first_index[tensor.name]}])"
            )
        first_index[tensor.name] = index
        total += math.prod(tensor.shape) * _ITEMSIZE[tensor.dtype]
        if total > MAX_BYTES:
            raise ValueError(
                f"{_where(index, tensor.name)}: the tensors up to this one need {total:,} "
                f"bytes; a spec may need at most 2^62 (fastinit.specs.MAX_BYTES)"
            )
        _try_sampler(index, tensor, seed)
        if given is not None and _same(given[index], tensor):
            tensor = given[index]
        tensors.append(tensor)
    return tuple(tensors)


def _check_depth(what: str, value: Any, *, depth: int = 0) -> None:
    """Refuses JSON-like data (mappings, lists, tuples) nested more than MAX_DEPTH levels
    deep, counting from `depth` (the levels above it), without recursing. A circular
    structure is infinitely deep; a container shared by several parents is walked again
    only when met deeper, so the work stays bounded."""
    deepest: dict[int, int] = {}
    pending = [(value, depth)]
    while pending:
        node, level = pending.pop()
        if isinstance(node, (list, tuple)):
            children: Iterable[Any] = node
        elif isinstance(node, Mapping):
            children = node.values()
        else:
            continue
        level += 1
        if level > MAX_DEPTH:
            raise ValueError(
                f"{what}: JSON nested more than {MAX_DEPTH} levels deep "
                "(fastinit.specs.MAX_DEPTH), or circular"
            )
        if deepest.get(id(node), 0) >= level:
            continue
        deepest[id(node)] = level
        for child in children:
            if type(child) not in _LEAVES:  # the common case, without isinstance
                pending.append((child, level))


def spec_to_json(spec: ModelSpec) -> dict[str, Any]:
    """The JSON document of a spec: spec_from_json(spec_to_json(s)) == s.

    Canonical: every tensor carries its dtype and params (numbers as floats),
    zero_rows only when there are some, config only when there is one.
    """
    tensors = [_entry(tensor) for tensor in spec.tensors]
    document: dict[str, Any] = {"format": SPEC_FORMAT, "seed": spec.seed, "tensors": tensors}
    if spec.config is not None:
        document["config"] = spec.config
    return document


def _entry(tensor: TensorSpec) -> Any:
    """A tensor's entry in spec_to_json (fields of the wrong type are left for the checks)."""
    if not isinstance(tensor, TensorSpec):
        return tensor
    shape, params, zero_rows = tensor.shape, tensor.params, tensor.zero_rows
    entry: dict[str, Any] = {
        "name": tensor.name,
        "shape": list(shape) if isinstance(shape, (list, tuple)) else shape,
        "dtype": tensor.dtype,
        "init": tensor.init,
        "params": (
            {key: _canonical(value) for key, value in params.items()}
            if isinstance(params, Mapping)
            else params
        ),
    }
    if zero_rows:
        entry["zero_rows"] = list(zero_rows) if isinstance(zero_rows, (list, tuple)) else zero_rows
    return entry


def spec_digest(spec: ModelSpec) -> str:
    """SHA-256 (hex) of spec_to_json(spec) as JSON with sorted keys and no spaces.

    Hashed a tensor at a time: the text of the whole document is never held.
    """
    import hashlib

    def text(value: Any) -> str:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )

    # The document's keys in sorted order: config, format, seed, tensors.
    digest = hashlib.sha256(b"{")
    if spec.config is not None:
        digest.update(f'"config":{text(spec.config)},'.encode())
    digest.update(f'"format":{text(SPEC_FORMAT)},"seed":{text(spec.seed)},"tensors":['.encode())
    for index, tensor in enumerate(spec.tensors):
        separator = "," if index else ""
        digest.update(f"{separator}{text(_entry(tensor))}".encode())
    digest.update(b"]}")
    return digest.hexdigest()


def load_spec(path: str | Path) -> ModelSpec:
    """Reads and checks a spec document (UTF-8 JSON; a key repeated in an object is an error)."""
    return spec_from_json(_read_json(path, unique_keys=True))


def load_config(path: str | Path) -> dict[str, Any]:
    """Reads a Hugging Face config.json for spec_from_config (UTF-8 JSON, nested at most
    MAX_DEPTH levels deep); errors name the file."""
    return _read_json(path, unique_keys=False)


def _read_json(path: str | Path, *, unique_keys: bool) -> Any:
    with open(path, encoding="utf-8") as handle:
        try:
            document = json.load(handle, object_pairs_hook=_unique_keys if unique_keys else None)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON: {error}") from None
        except RecursionError:  # the parser recurses once per level: far beyond MAX_DEPTH
            raise ValueError(
                f"{path}: JSON nested more than {MAX_DEPTH} levels deep (fastinit.specs.MAX_DEPTH)"
            ) from None
        except ValueError as error:  # a repeated key, bytes that are not UTF-8
            raise ValueError(f"{path}: {error}") from None
    _check_depth(str(path), document)
    return document


def check_spec(spec: ModelSpec) -> ModelSpec:
    """A spec built in Python, checked as its JSON document would be (same errors).

    The document is made and checked a tensor at a time; a tensor that passes
    unchanged is returned as it is, so a checked spec costs no second copy.
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a fastinit.specs.ModelSpec, got {type(spec).__name__}")
    if not isinstance(spec.tensors, (list, tuple)):
        raise TypeError(f"spec tensors must be a list, got {type(spec.tensors).__name__}")
    _check_count(spec.tensors)
    _check_depth("spec config", spec.config, depth=1)
    seed = _seed(spec.seed)
    config = _config(spec.config)
    if not spec.tensors:
        raise ValueError("spec tensors must not be empty")
    tensors = _checked_tensors(map(_entry, spec.tensors), "float32", seed, spec.tensors)
    return ModelSpec(seed, tensors, config)


def _same(given: Any, made: TensorSpec) -> bool:
    """Equal down to the types (1 == 1.0, but a header would show the difference)."""
    return (
        type(given) is TensorSpec
        and given == made
        and all(type(value) is type(made.params[key]) for key, value in given.params.items())
    )


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
    nbytes = math.prod(shape) * _ITEMSIZE[dtype]
    if nbytes > MAX_BYTES:
        raise ValueError(
            f"{where}: shape {list(shape)} of {dtype} is {nbytes:,} bytes; a tensor may "
            f"have at most 2^62 (fastinit.specs.MAX_BYTES)"
        )
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
    """Calls the tensor's own sampler for its first element (none if it has none): every
    check of the public API runs (parameters, fans, values representable in the dtype,
    the stream name), and the element drawn must be finite. Microseconds a tensor."""
    if not tensor.shape:
        region = None
    elif math.prod(tensor.shape):
        region = (slice(0, 1),) * len(tensor.shape)
    else:
        region = (slice(0, 0),)
    where = _where(index, tensor.name)
    try:
        values = sample_into(tensor, seed, region=region, threads=1)
    except TypeError as error:
        raise TypeError(f"{where}: {error}") from None
    except (ValueError, OverflowError) as error:
        raise ValueError(f"{where}: {error}") from None
    if not np.isfinite(values).all():
        raise ValueError(
            f"{where}: {tensor.init} with {tensor.params} in {tensor.dtype} gives "
            f"{values.ravel()[0]}: its values must be finite"
        )


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

    The tensors are counted and sized from the config's fields before any is made
    (at most MAX_TENSORS, MAX_BYTES each and in all), and each distinct tensor is
    checked by its sampler: errors name the config field or the tensor.
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a JSON object, got {type(config).__name__}")
    _check_depth("config", config)
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
    blueprint = build(model_type, fields)
    _check_size(model_type, blueprint, dtype)
    _check_samplers(model_type, fields, blueprint, dtype, seed)
    tensors = tuple(
        TensorSpec(name, shape, dtype, init, dict(params), zero_rows)
        for name, shape, init, params, zero_rows in blueprint.rows()
    )
    return ModelSpec(seed, tensors, kept)


def _check_size(model_type: str, blueprint: _Blueprint, dtype: str) -> None:
    """Refuses a model of more than MAX_TENSORS tensors or MAX_BYTES bytes (one tensor
    or all), from its blueprint: nothing is built yet."""
    count = blueprint.tensor_count()
    if count > MAX_TENSORS:
        raise ValueError(
            f"{model_type} config: {blueprint.layers:,} layers make {count:,} tensors; a spec "
            f"holds at most {MAX_TENSORS:,} (fastinit.specs.MAX_TENSORS)"
        )
    total = 0
    for name, shape, times in blueprint.kinds():
        if not times:  # a layer of a model with no layers
            continue
        nbytes = math.prod(shape) * _ITEMSIZE[dtype]
        if nbytes > MAX_BYTES:
            raise ValueError(
                f"{model_type} config: tensor {name!r} of shape {list(shape)} in {dtype} is "
                f"{nbytes:,} bytes; a tensor may have at most 2^62 (fastinit.specs.MAX_BYTES)"
            )
        total += nbytes * times
    if total > MAX_BYTES:
        raise ValueError(
            f"{model_type} config: its {count:,} tensors are {total:,} bytes in {dtype}; a "
            f"spec may have at most 2^62 (fastinit.specs.MAX_BYTES)"
        )


def _check_samplers(
    model_type: str, fields: _Fields, blueprint: _Blueprint, dtype: str, seed: int
) -> None:
    """The sampler's checks (_try_sampler) for each distinct tensor: the head, the first
    layer and the tail. The other layers differ from the first only by their names,
    which are ASCII made here, so the checks of their streams cannot fail."""
    for index, row in blueprint.distinct():
        name, shape, init, params, zero_rows = row
        tensor = TensorSpec(name, shape, dtype, init, params, zero_rows)
        try:
            _try_sampler(index, tensor, seed)
        except (TypeError, ValueError) as error:
            source = f"initializer_range {fields.raw('initializer_range')!r} in {dtype}"
            raise type(error)(f"{model_type} config ({source}): {error}") from None


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


class _Blueprint(NamedTuple):
    """A model's tensors before they are made: `head`, then `block` once per layer (the
    names of layer i begin with f"{prefix}{i}."), then `tail`. Its size is known from
    its fields; rows() makes the tensors."""

    head: list[_Row]
    prefix: str
    block: list[_Row]
    layers: int
    tail: list[_Row]

    def tensor_count(self) -> int:
        return len(self.head) + self.layers * len(self.block) + len(self.tail)

    def kinds(self) -> Iterator[tuple[str, tuple[int, ...], int]]:
        """(name, shape, how many such tensors) of each row; block names hold "{i}"."""
        for name, shape, *_ in self.head:
            yield name, shape, 1
        for name, shape, *_ in self.block:
            yield f"{self.prefix}{{i}}.{name}", shape, self.layers
        for name, shape, *_ in self.tail:
            yield name, shape, 1

    def distinct(self) -> Iterator[tuple[int, _Row]]:
        """(index in rows(), row) of the head, the first layer and the tail."""
        yield from enumerate(self.head)
        if self.layers:
            for k, (name, shape, init, params, zero_rows) in enumerate(self.block):
                yield len(self.head) + k, (f"{self.prefix}0.{name}", shape, init, params, zero_rows)
        first_tail = len(self.head) + self.layers * len(self.block)
        for k, row in enumerate(self.tail):
            yield first_tail + k, row

    def rows(self) -> Iterator[_Row]:
        yield from self.head
        for i in range(self.layers):
            prefix = f"{self.prefix}{i}."
            for name, shape, init, params, zero_rows in self.block:
                yield prefix + name, shape, init, params, zero_rows
        yield from self.tail


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


def _build_llama_family(model_type: str, fields: _Fields) -> _Blueprint:
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

    head: list[_Row] = [
        ("model.embed_tokens.weight", (vocab, hidden), *weight, _padding_rows(fields, vocab))
    ]
    block: list[_Row] = []
    tail: list[_Row] = []

    def linear(
        rows: list[_Row], name: str, out_features: int, in_features: int, bias: bool
    ) -> None:
        rows.append((f"{name}.weight", (out_features, in_features), *weight, ()))
        if bias:
            rows.append((f"{name}.bias", (out_features,), *zeros, ()))

    # One layer, model.layers.{i}. is prepended to each name.
    linear(block, "self_attn.q_proj", heads * head_dim, hidden, q_bias)
    linear(block, "self_attn.k_proj", kv_heads * head_dim, hidden, kv_bias)
    linear(block, "self_attn.v_proj", kv_heads * head_dim, hidden, kv_bias)
    linear(block, "self_attn.o_proj", hidden, heads * head_dim, o_bias)
    linear(block, "mlp.gate_proj", inner, hidden, mlp_bias)
    linear(block, "mlp.up_proj", inner, hidden, mlp_bias)
    linear(block, "mlp.down_proj", hidden, inner, mlp_bias)
    block.append(("input_layernorm.weight", (hidden,), *ones, ()))
    block.append(("post_attention_layernorm.weight", (hidden,), *ones, ()))
    tail.append(("model.norm.weight", (hidden,), *ones, ()))
    if not fields.flag("tie_word_embeddings"):
        linear(tail, "lm_head", vocab, hidden, False)
    return _Blueprint(head, "model.layers.", block, layers, tail)


def _build_gpt2(model_type: str, fields: _Fields) -> _Blueprint:
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
    head: list[_Row] = [
        ("transformer.wte.weight", (vocab, embed), *base, ()),  # no padding_idx in GPT-2
        ("transformer.wpe.weight", (positions, embed), *base, ()),
    ]
    block: list[_Row] = []
    tail: list[_Row] = []

    def conv1d(name: str, in_features: int, out_features: int, rule: Any) -> None:
        block.append((f"{name}.weight", (in_features, out_features), *rule, ()))
        block.append((f"{name}.bias", (out_features,), *zeros, ()))

    def layer_norm(rows: list[_Row], name: str) -> None:
        rows.append((f"{name}.weight", (embed,), *ones, ()))
        rows.append((f"{name}.bias", (embed,), *zeros, ()))

    # One block, transformer.h.{i}. is prepended to each name.
    layer_norm(block, "ln_1")
    conv1d("attn.c_attn", embed, 3 * embed, conv)
    conv1d("attn.c_proj", embed, embed, residual)
    layer_norm(block, "ln_2")
    if fields.flag("add_cross_attention"):
        conv1d("crossattention.c_attn", embed, 2 * embed, conv)
        conv1d("crossattention.q_attn", embed, embed, conv)
        conv1d("crossattention.c_proj", embed, embed, residual)
        layer_norm(block, "ln_cross_attn")
    conv1d("mlp.c_fc", embed, inner, conv)
    conv1d("mlp.c_proj", inner, embed, residual)
    layer_norm(tail, "transformer.ln_f")
    if not fields.flag("tie_word_embeddings"):
        tail.append(("lm_head.weight", (vocab, embed), *base, ()))  # nn.Linear, no bias
    return _Blueprint(head, "transformer.h.", block, layers, tail)
