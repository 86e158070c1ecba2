"""Model specs: every tensor of a checkpoint with its shape, dtype and initializer.

    spec = fastinit.specs.load_spec("model.json")                  # a spec document
    spec = spec_from_config(json.load(open("config.json")))        # a Hugging Face config
    spec = spec_from_config(preset_config("llama-3-8b"), seed=7)   # an embedded config

A spec is a seed and a list of tensors. The tensor named `n` draws from the Philox
stream fastinit.stream_id(n) under the spec's seed, so its values depend on its own
name, shape, dtype, initializer and parameters and on the seed, and on nothing else:
any tensor can be regenerated alone, and adding, removing or reordering tensors
changes no other tensor. This module is the spec document: TensorSpec and ModelSpec,
their JSON (spec_from_json, spec_to_json, load_spec), its checks and limits, and its
digest. docs/spec.md is the reference for the JSON document, the
config -> spec rules and the presets.

The Hugging Face config builders (spec_from_config, preset_config) live in
fastinit.hf_configs and are re-exported here; they build specs through the checks
below (check_seed, check_dtype, check_depth, plain_config, check_sampler).

Limits, checked before anything is built (docs/spec.md, "Limits"): JSON nested at most
MAX_DEPTH levels, at most MAX_TENSORS tensors, at most MAX_BYTES bytes per tensor and
in all. Every tensor's initializer, parameters and dtype pass the public sampler's own
checks, so a spec can express no call the API would refuse.

N.B. about 530 lines, over the ~400 the project aims at: one job, the document and the
check of each of its fields, which read each other's tables (INITIALIZERS, the limits);
the Hugging Face builders, a second job, are already out (hf_configs).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np

from . import _checks, computed, dtypes, initializers, structured

SPEC_FORMAT = "fastinit.spec/1"
DTYPES = dtypes.NAMES  # ("float32", "float64", "float16", "bfloat16")

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
    # Values computed from a uniform draw (fastinit.computed): state-space models' dt bias
    # and A_log.
    "inverse_softplus_log_uniform": ("low", "high", "floor"),
    "log_of_uniform": ("low", "high"),
}
_REQUIRED_PARAMS = {
    "constant": ("value",),
    "inverse_softplus_log_uniform": ("low", "high"),
    "log_of_uniform": ("low", "high"),
}
_TEXT_PARAMS = frozenset({"distribution", "mode", "layout"})
_NULLABLE_PARAMS = frozenset({"lower", "upper", "a", "b", "fan_in", "fan_out", "floor"})
# A constant's value may be a literal array broadcast to the shape (A_log's log(1..N) rows);
# a literal is part of the document and of every header, so it stays small.
MAX_LITERAL = 1 << 16
_CONSTANTS = {"zeros": 0.0, "ones": 1.0}

_DOCUMENT_KEYS = ("format", "seed", "dtype", "tensors", "config")
_TENSOR_KEYS = ("name", "shape", "dtype", "init", "params", "zero_rows")
_RESERVED_NAME = "__metadata__"  # the safetensors header's metadata entry

# Real documents nest a few levels (a spec: 4, Hugging Face configs: under 10); deeper
# ones are refused before anything recurses over them (json, repr, copies).
MAX_DEPTH = 64
# The largest real checkpoints hold under 100k tensors (Llama-3.1-405B: 1,137; a
# bfloat16 mixture of 384 experts x 60 layers: ~70k): a million is not a model.
MAX_TENSORS = 1_000_000
# 4 EiB per tensor and in all: every offset and file size fits in a signed 64-bit
# integer with room to spare for the headers.
MAX_BYTES = 1 << 62
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
            check_depth(f"spec {key}", value, depth=1)
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
    seed = check_seed("spec seed", document.get("seed", 0))
    default_dtype = check_dtype("spec dtype", document.get("dtype", "float32"))
    config = plain_config(document.get("config"))
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
        check_depth(_where(index), entry, depth=2)
        tensor = _tensor(index, entry, default_dtype)
        if tensor.name in first_index:
            raise ValueError(
                f"{_where(index, tensor.name)}: duplicate tensor name "
                f"(first at tensors[{first_index[tensor.name]}])"
            )
        first_index[tensor.name] = index
        total += math.prod(tensor.shape) * _itemsize(tensor.dtype)
        if total > MAX_BYTES:
            raise ValueError(
                f"{_where(index, tensor.name)}: the tensors up to this one need {total:,} "
                f"bytes; a spec may need at most 2^62 (fastinit.specs.MAX_BYTES)"
            )
        check_sampler(index, tensor, seed)
        if given is not None and _same(given[index], tensor):
            tensor = given[index]
        tensors.append(tensor)
    return tuple(tensors)


def check_depth(what: str, value: Any, *, depth: int = 0) -> None:
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
    check_depth(str(path), document)
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
    check_depth("spec config", spec.config, depth=1)
    seed = check_seed("spec seed", spec.seed)
    config = plain_config(spec.config)
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
    dtype = check_dtype("dtype", dtype)
    tensors = tuple(tensor._replace(dtype=dtype) for tensor in spec.tensors)
    return spec._replace(tensors=tensors)


def with_seed(spec: ModelSpec, seed: int) -> ModelSpec:
    return spec._replace(seed=check_seed("spec seed", seed))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"JSON object has the key {key!r} twice")
        result[key] = value
    return result


def _where(index: int, name: Any = None) -> str:
    return f"tensors[{index}]" if name is None else f"tensor {name!r} (tensors[{index}])"


def check_seed(what: str, seed: Any) -> int:
    """A seed in [0, 2^64) by _checks.check_u64 (not bool, not 1.0, not "1"; NumPy
    integers are fine). N.B. out of range is a ValueError here, as the spec API has
    always raised, where the samplers raise OverflowError."""
    try:
        return _checks.check_u64(what, seed)
    except OverflowError as error:
        raise ValueError(str(error)) from None


def check_dtype(what: str, dtype: Any) -> str:
    """A dtype name of the one table (dtypes.NAMES): a spec stores names, not NumPy dtypes."""
    if not isinstance(dtype, str) or dtype not in dtypes.BY_NAME:
        raise ValueError(f"{what} must be one of {dtypes.NAMES_TEXT}; got {dtype!r}")
    return dtype


def plain_config(config: Any) -> dict[str, Any] | None:
    """A deep copy of a config (None stays None), JSON-serializable by construction."""
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise TypeError(f"spec config must be a JSON object, got {type(config).__name__}")
    try:
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
    dtype = check_dtype(f"{where}: dtype", entry.get("dtype", default_dtype))
    nbytes = math.prod(shape) * _itemsize(dtype)
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
    if key == "value" and isinstance(value, (list, tuple)):
        return _literal(where, value)
    if key in _TEXT_PARAMS:
        if not isinstance(value, str):
            raise TypeError(f"{where}: params.{key} must be a string, got {value!r}")
        return value
    if type(value) is int:
        try:
            value = float(value)
        except OverflowError:
            raise ValueError(f"{where}: params.{key} is beyond float64's range") from None
    if type(value) is not float:  # not bool, not None, not a string
        raise TypeError(f"{where}: params.{key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{where}: params.{key} must be finite, got {value!r}")
    return value


def _literal(where: str, value: list[Any] | tuple[Any, ...]) -> list[Any]:
    """A constant's literal array: nested lists of finite numbers (ints become floats), at
    most MAX_LITERAL of them; whether it broadcasts to the shape is the sampler's check."""
    count = 0

    def plain(node: Any) -> Any:
        nonlocal count
        if isinstance(node, (list, tuple)):
            return [plain(child) for child in node]
        count += 1
        if count > MAX_LITERAL:
            raise ValueError(
                f"{where}: params.value holds more than {MAX_LITERAL:,} numbers "
                "(fastinit.specs.MAX_LITERAL)"
            )
        return _param(where, "value", node)

    return cast("list[Any]", plain(value))


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
        value: Any = _CONSTANTS.get(tensor.init, tensor.params.get("value"))
        out = structured.constant(tensor.shape, value, dtype=tensor.dtype, out=out, region=region)
    else:
        module = computed if tensor.init in computed.FORMULAS else initializers
        sampler = getattr(module, tensor.init)
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


def check_sampler(index: int, tensor: TensorSpec, seed: int) -> None:
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
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    return float(value) if type(value) is int else value


def _itemsize(dtype: str) -> int:
    return int(dtypes.BY_NAME[dtype].numpy.itemsize)


# The config builders, where users and docs have always found them, looked up in
# hf_configs on first use (it builds on this module, so importing it here would be a cycle).
_FROM_HF_CONFIGS = frozenset(
    {"PRESETS", "SUPPORTED_MODEL_TYPES", "preset_config", "spec_from_config"}
)


def __getattr__(name: str) -> Any:
    if name in _FROM_HF_CONFIGS:
        from . import hf_configs

        return getattr(hf_configs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
