"""The safetensors format as fastinit writes and reads it: file layout, header, index.

Format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
length, the JSON header padded with spaces to a multiple of 8, then the tensors
back to back, largest item size first so each starts aligned to its item size. The
header's __metadata__ (strings only) holds format "pt", the fastinit version, the
seed, the spec's digest, and each tensor's initializer and parameters: enough to
regenerate any tensor from the file alone (verify).
"""

from __future__ import annotations

import decimal
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import _checks
from .specs import ModelSpec, TensorSpec, spec_digest

SAFETENSORS_DTYPES = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16"}
DTYPE_OF_SAFETENSORS = {code: name for name, code in SAFETENSORS_DTYPES.items()}
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


# ---------------------------------------------------------------------------
# Layout


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


_CHECKPOINT_NAME = re.compile(
    r"model\.safetensors|model-\d{5}-of-\d{5}\.safetensors|model\.safetensors\.index\.json"
)


def checkpoint_files_in(directory: Path) -> list[Path]:
    """The files of a Hugging Face checkpoint in `directory` (weights and index)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _CHECKPOINT_NAME.fullmatch(p.name))


def read_header(path: str | os.PathLike[str]) -> tuple[dict[str, Any], int]:
    """A safetensors file's header (JSON) and the offset of its data section."""
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) != 8:
            raise ValueError(f"{path}: not a safetensors file (shorter than 8 bytes)")
        length = int.from_bytes(prefix, "little")
        if length > 100 << 20:
            raise ValueError(f"{path}: header length {length} is not plausible")
        text = handle.read(length)
    if len(text) != length or not text.startswith(b"{"):
        raise ValueError(f"{path}: not a safetensors file (bad header)")
    return json.loads(text), 8 + length


def checkpoint_files(path: str | os.PathLike[str]) -> list[Path]:
    """The .safetensors files of a checkpoint: the file itself, the shards its
    directory's index names, or the directory's model.safetensors."""
    path = Path(path)
    if path.is_file():
        return [path]
    index = path / INDEX_FILE
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return [path / name for name in sorted(set(weight_map.values()))]
    if (path / SINGLE_FILE).is_file():
        return [path / SINGLE_FILE]
    raise FileNotFoundError(f"{path}: no {SINGLE_FILE}, {INDEX_FILE} or .safetensors file")


def tensors_of(header: dict[str, Any]) -> tuple[int, list[tuple[TensorSpec, int]]]:
    """The seed and (TensorSpec, data offset) of every tensor a fastinit header describes."""
    metadata = header.get("__metadata__") or {}
    if "fastinit.seed" not in metadata:
        raise ValueError("the header has no fastinit metadata: not written by fastinit")
    recipes = json.loads(metadata.get("fastinit.tensors", "{}"))
    found = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        recipe = recipes.get(name, {"init": "?", "params": {}, "zero_rows": []})
        spec = TensorSpec(
            name, tuple(info["shape"]), DTYPE_OF_SAFETENSORS.get(info["dtype"], info["dtype"]),
            recipe["init"], recipe["params"], tuple(recipe["zero_rows"]),
        )  # fmt: skip
        found.append((spec, info["data_offsets"][0]))
    return int(metadata["fastinit.seed"]), found
