"""The safetensors format as fastinit writes it: file layout, header, index, config.

Format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
length, the JSON header padded with spaces to a multiple of 8, then the tensors
back to back, largest item size first so each starts aligned to its item size. The
header's __metadata__ (strings only) holds format "pt", the fastinit version, the
seed, the spec's digest, and each tensor's initializer and parameters: enough to
regenerate any tensor from the file alone (verify).

Guarantees: `plan` puts every tensor of a checked spec in exactly one file (shards of
at most max_shard_size bytes, a larger tensor alone in its shard), each file's header
within the readers' MAX_HEADER_SIZE, so every byte's place is known before anything is
written. Reading such files back, as hostile, is _reading's job; which files make a
checkpoint, _index's.
"""

from __future__ import annotations

import decimal
import json
import math
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from . import _checks, dtypes
from .specs import ModelSpec, TensorSpec, spec_digest

# Output dtype name -> safetensors code, largest item first (as the data is laid out).
SAFETENSORS_DTYPES = {
    row.name: row.safetensors
    for row in sorted(dtypes.OUTPUT_DTYPES, key=lambda row: -row.numpy.itemsize)
}
# safetensors/src/tensor.rs MAX_HEADER_SIZE: the library refuses a longer header.
MAX_HEADER_SIZE = 100_000_000
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
DEFAULT_MAX_SHARD_SIZE = 5 * 10**9
_UNITS = {
    "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
}  # fmt: skip


def parse_size(text: Any) -> int:
    """Bytes from an int or a string such as "5GB" (10^9) or "2GiB" (2^30)."""
    if isinstance(text, int) and not isinstance(text, bool):
        size = text
    elif isinstance(text, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
        unit = match.group(2).upper() if match else ""
        if not match or unit not in _UNITS and unit:
            raise ValueError(f"max_shard_size must look like 5GB, 500MB or 2GiB, got {text!r}")
        size = int(decimal.Decimal(match.group(1)) * _UNITS[unit or "B"])
    else:
        raise TypeError(f"max_shard_size must be an int or a str, got {type(text).__name__}")
    if size <= 0:
        raise ValueError(f"max_shard_size must be > 0, got {text!r}")
    return size


class Entry(NamedTuple):
    tensor: TensorSpec
    begin: int  # byte offsets in the data section
    end: int


@dataclass
class FileLayout:
    name: str
    entries: list[Entry]
    header: bytes = b""  # the 8-byte length and the padded JSON header
    size: int = 0  # of the whole file


def itemsize(tensor: TensorSpec) -> int:
    return np.dtype(_checks.check_dtype(tensor.dtype)).itemsize


def nbytes(tensor: TensorSpec) -> int:
    return math.prod(tensor.shape) * itemsize(tensor)


def plan(
    spec: ModelSpec, *, max_shard_size: int | None, metadata: dict[str, str]
) -> list[FileLayout]:
    """The files: one if max_shard_size is None or everything fits, else shards of at
    most max_shard_size bytes (a larger tensor alone in its shard), in spec order."""
    groups: list[list[TensorSpec]] = [[]]
    filled = 0
    for tensor in spec.tensors:
        size = nbytes(tensor)
        if max_shard_size is not None and groups[-1] and filled + size > max_shard_size:
            groups.append([])
            filled = 0
        groups[-1].append(tensor)
        filled += size
    files = []
    for k, group in enumerate(groups):
        name = SINGLE_FILE
        if len(groups) > 1:
            name = f"model-{k + 1:05d}-of-{len(groups):05d}.safetensors"
        files.append(_layout(name, group, metadata))
    return files


def _recipe(tensor: TensorSpec) -> dict[str, Any]:
    """What regenerates a tensor besides seed, name, shape and dtype (kept in the header)."""
    return {"init": tensor.init, "params": tensor.params, "zero_rows": list(tensor.zero_rows)}


def _layout(name: str, tensors: list[TensorSpec], metadata: dict[str, str]) -> FileLayout:
    ordered = sorted(tensors, key=lambda t: -itemsize(t))  # stable: spec order within a size
    entries, offset = [], 0
    for tensor in ordered:
        entries.append(Entry(tensor, offset, offset + nbytes(tensor)))
        offset += nbytes(tensor)
    recipes = {e.tensor.name: _recipe(e.tensor) for e in entries}
    header: dict[str, Any] = {
        "__metadata__": {**metadata, "fastinit.tensors": json.dumps(recipes, sort_keys=True)}
    }
    for e in entries:
        header[e.tensor.name] = {
            "dtype": SAFETENSORS_DTYPES[e.tensor.dtype],
            "shape": list(e.tensor.shape),
            "data_offsets": [e.begin, e.end],
        }
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    if len(text) > MAX_HEADER_SIZE:
        raise ValueError(
            f"{name}: its safetensors header would be {len(text):,} bytes, over the "
            f"{MAX_HEADER_SIZE:,}-byte limit of safetensors readers (fastinit verify "
            f"included); shorten the tensor names or split the tensors into more shards"
        )
    prefix = len(text).to_bytes(8, "little")
    return FileLayout(name, entries, prefix + text, 8 + len(text) + offset)


def metadata_of(spec: ModelSpec) -> dict[str, str]:
    from . import __version__

    return {
        "format": "pt",
        "fastinit.version": __version__,
        "fastinit.seed": str(spec.seed),
        "fastinit.spec_sha256": spec_digest(spec),
    }


def config_text(spec: ModelSpec) -> str:
    """The config.json written beside the weights: the spec's config, where a dtype it
    names is made the weights' (when they share one), so from_pretrained does not cast
    them back to the config's original dtype."""
    config = dict(spec.config or {})
    dtypes = {tensor.dtype for tensor in spec.tensors}
    if len(dtypes) == 1:
        for key in ("dtype", "torch_dtype"):
            if key in config:
                config[key] = next(iter(dtypes))
    return json.dumps(config, indent=2) + "\n"


def index_text(spec: ModelSpec, layouts: list[FileLayout]) -> str:
    """model.safetensors.index.json of a sharded checkpoint: which file holds each tensor."""
    weight_map = {e.tensor.name: f.name for f in layouts for e in f.entries}
    document = {
        "metadata": {"total_size": sum(nbytes(t) for t in spec.tensors)},
        "weight_map": dict(sorted(weight_map.items())),
    }
    return json.dumps(document, indent=2) + "\n"
