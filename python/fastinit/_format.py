"""The safetensors format as fastinit writes and reads it: file layout, header, index.

Format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
length, the JSON header padded with spaces to a multiple of 8, then the tensors
back to back, largest item size first so each starts aligned to its item size. The
header's __metadata__ (strings only) holds format "pt", the fastinit version, the
seed, the spec's digest, and each tensor's initializer and parameters: enough to
regenerate any tensor from the file alone (verify).

Reading treats every file as hostile: a file is opened only once it is known to be a
regular file (never a FIFO, a device, or a link out of the checkpoint directory), and
its header is checked as the safetensors library checks it, then as fastinit writes
it, before any number in it sizes an allocation. Every problem is a
CheckpointFormatError naming the file and the field.
"""

from __future__ import annotations

import decimal
import errno
import json
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import _checks
from .specs import SPEC_FORMAT, ModelSpec, TensorSpec, spec_digest, spec_from_json

SAFETENSORS_DTYPES = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16"}
DTYPE_OF_SAFETENSORS = {code: name for name, code in SAFETENSORS_DTYPES.items()}
# Every dtype code of safetensors' Dtype enum (safetensors/src/tensor.rs) -> its bytes.
SAFETENSORS_ITEMSIZE = {
    code: size
    for size, codes in [
        (1, "BOOL U8 I8 F8_E5M2 F8_E4M3"),
        (2, "I16 U16 F16 BF16"),
        (4, "I32 U32 F32"),
        (8, "F64 I64 U64"),
    ]
    for code in codes.split()
}
# safetensors/src/tensor.rs MAX_HEADER_SIZE: the library refuses a longer header.
MAX_HEADER_SIZE = 100_000_000
MAX_INDEX_SIZE = MAX_HEADER_SIZE  # an index lists the names a header lists, and less
_TENSOR_FIELDS = ("dtype", "shape", "data_offsets")
_RECIPE_FIELDS = ("init", "params", "zero_rows")
_U64 = 1 << 64  # safetensors counts elements, bytes and offsets in u64
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


_CHECKPOINT_NAME = re.compile(
    r"model\.safetensors|model-\d{5}-of-\d{5}\.safetensors|model\.safetensors\.index\.json"
)


def checkpoint_files_in(directory: Path) -> list[Path]:
    """The files of a Hugging Face checkpoint in `directory` (weights and index)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _CHECKPOINT_NAME.fullmatch(p.name))


# ---------------------------------------------------------------------------
# Reading: every file is hostile until its header has been checked


class CheckpointFormatError(ValueError):
    """A checkpoint file that is malformed, hostile, or not one fastinit can verify.

    The message is one line: the file, then the field, then what is wrong with it.
    Raised before anything is regenerated or allocated from the file's numbers."""

    def __init__(self, path: str | os.PathLike[str], message: str) -> None:
        self.path = path
        super().__init__(f"{_shown(path)}: {message}")


def _shown(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    text = text if isinstance(text, str) else os.fsdecode(text)
    return text if text.isprintable() else repr(text)


def _brief(value: Any, limit: int = 200) -> str:
    """repr(value), cut short: hostile values can be megabytes long."""
    if isinstance(value, list) and len(value) > limit:
        value = [*value[:limit], ...]
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _kind_of(mode: int) -> str:
    kinds = {
        "a directory": stat.S_ISDIR,
        "a FIFO": stat.S_ISFIFO,
        "a character device": stat.S_ISCHR,
        "a block device": stat.S_ISBLK,
        "a socket": stat.S_ISSOCK,
        "a symbolic link": stat.S_ISLNK,
    }
    return next((name for name, test in kinds.items() if test(mode)), "not a regular file")


def open_regular(path: str | os.PathLike[str], *, inside: Path | None = None) -> int:
    """A descriptor of `path` for reading, once it is known to be a regular file.

    Never blocks: the file is opened O_NONBLOCK, so a FIFO is refused rather than
    waited on, and so are devices, directories and sockets. With `inside`, the file
    must lie in that directory: a symbolic link leading out of it is refused."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    target = os.fspath(path)
    if inside is not None:
        root = os.path.realpath(inside)
        target = os.path.realpath(path)
        if os.path.commonpath([root, target]) != root:
            raise CheckpointFormatError(
                path, f"is a symbolic link leading out of the checkpoint directory (to {target!r})"
            )
        flags |= getattr(os, "O_NOFOLLOW", 0)  # realpath resolved every link: a new one is hostile
    try:
        fd = os.open(target, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise CheckpointFormatError(
                path, "is a symbolic link that cannot be followed"
            ) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise CheckpointFormatError(path, f"is {_kind_of(mode)}, not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_exact(fd: int, offset: int, count: int) -> bytes:
    """Up to `count` bytes at `offset` (fewer only at the end of the file)."""
    pieces, done = [], 0
    while done < count:
        piece = os.pread(fd, min(count - done, 1 << 30), offset + done)
        if not piece:
            break
        pieces.append(piece)
        done += len(piece)
    return b"".join(pieces)


def _parse_json(path: str | os.PathLike[str], what: str, text: str) -> Any:
    """JSON as the safetensors library reads it: no NaN or Infinity, no repeated key."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise CheckpointFormatError(path, f"{what} has the key {_brief(key)} twice")
            result[key] = value
        return result

    def constant(name: str) -> None:
        raise CheckpointFormatError(path, f"{what} is not JSON: {name} is not a JSON number")

    try:
        return json.loads(text, object_pairs_hook=unique, parse_constant=constant)
    except CheckpointFormatError:
        raise
    except RecursionError:
        raise CheckpointFormatError(path, f"{what} nests too deeply to be read") from None
    except ValueError as error:  # JSONDecodeError, or an integer of over 4300 digits
        raise CheckpointFormatError(path, f"{what} is not JSON: {error}") from None


def read_header(path: str | os.PathLike[str]) -> tuple[dict[str, Any], int]:
    """A safetensors file's header (JSON) and the offset of its data section, after the
    checks of header_of."""
    fd = open_regular(path)
    try:
        return header_of(fd, path)
    finally:
        os.close(fd)


def header_of(fd: int, path: str | os.PathLike[str]) -> tuple[dict[str, Any], int]:
    """The header of the safetensors file open as `fd`, checked as the safetensors
    library checks it before it reads a tensor (check_header): a CheckpointFormatError
    names the file and the field of the first problem."""
    size = os.fstat(fd).st_size
    prefix = read_exact(fd, 0, 8)
    if len(prefix) < 8:
        raise CheckpointFormatError(
            path, f"not a safetensors file: {size} bytes, shorter than the 8-byte header length"
        )
    length = int.from_bytes(prefix, "little")
    if length > MAX_HEADER_SIZE:
        raise CheckpointFormatError(
            path,
            f"header length {length} exceeds the safetensors readers' limit of "
            f"{MAX_HEADER_SIZE} bytes",
        )
    if 8 + length > size:
        raise CheckpointFormatError(
            path, f"header length {length} runs past the end of the file ({size} bytes)"
        )
    raw = read_exact(fd, 8, length)
    if len(raw) != length:
        raise CheckpointFormatError(path, "the file shrank while its header was read")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CheckpointFormatError(
            path, f"header is not UTF-8: {error.reason} at byte {8 + error.start}"
        ) from None
    header = _parse_json(path, "header", text)
    check_header(header, path, size - 8 - length)
    return header, 8 + length


def check_header(header: Any, path: str | os.PathLike[str], data_size: int) -> None:
    """The rules of the safetensors reader (safetensors/src/tensor.rs, Metadata::validate
    and read_metadata), stricter where it is lenient: a JSON object; __metadata__ absent
    or an object of strings; every other key a tensor with exactly dtype (a safetensors
    code), shape (integers >= 0) and data_offsets [begin, end] whose span is the shape's
    bytes (counted in 64 bits, without overflow); the tensors back to back from 0, no
    hole, no overlap, the last ending where the file ends (data_size bytes of data)."""
    if not isinstance(header, dict):
        raise CheckpointFormatError(path, f"header must be a JSON object, got {_json_type(header)}")
    if "__metadata__" in header:
        metadata = header["__metadata__"]
        if not isinstance(metadata, dict):
            raise CheckpointFormatError(
                path, f"__metadata__ must be an object of strings, got {_json_type(metadata)}"
            )
        for key, value in metadata.items():
            if not isinstance(value, str):
                raise CheckpointFormatError(
                    path,
                    f"__metadata__[{_brief(key)}] must be a string, got {_json_type(value)} "
                    f"{_brief(value)}",
                )
    spans = []
    for name, info in header.items():
        if name != "__metadata__":
            begin, end = _check_tensor_entry(path, name, info, data_size)
            spans.append((begin, end, name))
    spans.sort()
    position, previous = 0, None
    for begin, end, name in spans:
        where = f"tensor {_brief(name)}: data_offsets [{begin}, {end}]"
        if begin > position:
            raise CheckpointFormatError(
                path, f"{where} leave a hole: bytes [{position}, {begin}) belong to no tensor"
            )
        if begin < position:
            raise CheckpointFormatError(
                path, f"{where} overlap tensor {_brief(previous)}, which ends at {position}"
            )
        position, previous = end, name
    if position != data_size:
        raise CheckpointFormatError(
            path,
            f"the tensors end at byte {position} of the data section but it holds {data_size} "
            f"bytes: {data_size - position} trailing bytes belong to no tensor",
        )


def _check_tensor_entry(
    path: str | os.PathLike[str], name: str, info: Any, data_size: int
) -> tuple[int, int]:
    """(begin, end) of one tensor entry, after checking it alone."""
    where = f"tensor {_brief(name)}"
    if not isinstance(info, dict):
        raise CheckpointFormatError(
            path,
            f"{where}: must be an object with dtype, shape and data_offsets, "
            f"got {_json_type(info)}",
        )
    for field in _TENSOR_FIELDS:
        if field not in info:
            raise CheckpointFormatError(path, f"{where}: {field} is missing")
    unknown = [key for key in info if key not in _TENSOR_FIELDS]
    if unknown:
        raise CheckpointFormatError(
            path,
            f"{where}: unknown field {_brief(unknown[0])} (allowed: {', '.join(_TENSOR_FIELDS)})",
        )
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in SAFETENSORS_ITEMSIZE:
        raise CheckpointFormatError(
            path,
            f"{where}: dtype {_brief(dtype)} is not a safetensors dtype "
            f"({', '.join(SAFETENSORS_ITEMSIZE)})",
        )
    if not isinstance(shape, list):
        raise CheckpointFormatError(
            path, f"{where}: shape must be an array of integers >= 0, got {_brief(shape)}"
        )
    count = 1
    for axis, dim in enumerate(shape):
        if type(dim) is not int:
            raise CheckpointFormatError(
                path, f"{where}: shape[{axis}] must be an integer, got {_brief(dim)}"
            )
        if dim < 0:
            raise CheckpointFormatError(path, f"{where}: shape[{axis}] must be >= 0, got {dim}")
        count *= dim  # as safetensors: checked at every step, a later 0 does not excuse it
        if dim >= _U64 or count >= _U64:
            raise CheckpointFormatError(
                path, f"{where}: shape {_brief(shape)} has 2^64 or more elements"
            )
    needed = count * SAFETENSORS_ITEMSIZE[dtype]
    if needed >= _U64:
        raise CheckpointFormatError(
            path, f"{where}: shape {_brief(shape)} of {dtype} needs 2^64 or more bytes"
        )
    if not (
        isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
    ):
        raise CheckpointFormatError(
            path,
            f"{where}: data_offsets must be an array of two integers [begin, end], "
            f"got {_brief(offsets)}",
        )
    begin, end = offsets
    if not (0 <= begin < _U64 and 0 <= end < _U64):
        raise CheckpointFormatError(
            path, f"{where}: data_offsets {_brief(offsets)} must be in [0, 2^64)"
        )
    if end < begin:
        raise CheckpointFormatError(
            path, f"{where}: data_offsets [{begin}, {end}] end before they begin"
        )
    if end - begin != needed:
        raise CheckpointFormatError(
            path,
            f"{where}: data_offsets [{begin}, {end}] span {end - begin} bytes but shape "
            f"{_brief(shape)} of {dtype} needs {needed}",
        )
    if end > data_size:
        raise CheckpointFormatError(
            path,
            f"{where}: data_offsets [{begin}, {end}] run past the end of the file, whose data "
            f"section holds {data_size} bytes (a truncated file?)",
        )
    return begin, end


def tensors_of(
    header: dict[str, Any], path: str | os.PathLike[str]
) -> tuple[int, list[tuple[TensorSpec, int]]]:
    """The seed and (TensorSpec, data offset) of every tensor of a checked header
    (check_header), whose fastinit metadata is checked here: fastinit.seed a decimal
    in [0, 2^64); fastinit.tensors a JSON object with one recipe {init, params,
    zero_rows} per tensor and no other; each tensor, with its recipe, passing the
    checks of a spec document (specs.spec_from_json), a fastinit dtype included."""
    metadata = header.get("__metadata__", {})
    if "fastinit.seed" not in metadata:
        raise CheckpointFormatError(
            path, "__metadata__ has no fastinit.seed: not written by fastinit"
        )
    seed_text = metadata["fastinit.seed"]
    if not re.fullmatch(r"[0-9]{1,20}", seed_text) or int(seed_text) >= _U64:
        raise CheckpointFormatError(
            path,
            f"__metadata__ fastinit.seed must be a decimal integer in [0, 2^64), "
            f"got {_brief(seed_text)}",
        )
    if "fastinit.tensors" not in metadata:
        raise CheckpointFormatError(path, "__metadata__ has no fastinit.tensors (the recipes)")
    what = "__metadata__ fastinit.tensors"
    recipes = _parse_json(path, what, metadata["fastinit.tensors"])
    if not isinstance(recipes, dict):
        raise CheckpointFormatError(path, f"{what} must be an object, got {_json_type(recipes)}")
    names = [name for name in header if name != "__metadata__"]
    if not names:
        raise CheckpointFormatError(path, "the header lists no tensors")
    for name in recipes:
        if name not in header or name == "__metadata__":
            raise CheckpointFormatError(
                path, f"{what} has a recipe for {_brief(name)}, a tensor the header does not list"
            )
    entries = []
    for name in names:
        info, recipe = header[name], recipes.get(name)
        if info["dtype"] not in DTYPE_OF_SAFETENSORS:
            raise CheckpointFormatError(
                path,
                f"tensor {_brief(name)}: dtype {info['dtype']!r} is not one fastinit writes "
                f"({', '.join(DTYPE_OF_SAFETENSORS)})",
            )
        if recipe is None:
            raise CheckpointFormatError(path, f"{what} has no recipe for tensor {_brief(name)}")
        if not isinstance(recipe, dict) or sorted(recipe) != sorted(_RECIPE_FIELDS):
            raise CheckpointFormatError(
                path,
                f"{what}[{_brief(name)}] must be an object with exactly "
                f"{', '.join(_RECIPE_FIELDS)}, got {_brief(recipe)}",
            )
        dtype = DTYPE_OF_SAFETENSORS[info["dtype"]]
        entries.append({"name": name, "shape": info["shape"], "dtype": dtype, **recipe})
    document = {"format": SPEC_FORMAT, "seed": int(seed_text), "tensors": entries}
    try:
        spec = spec_from_json(document)
    except (TypeError, ValueError, OverflowError) as error:
        raise CheckpointFormatError(path, f"{what}: {error}") from None
    return spec.seed, [(t, header[t.name]["data_offsets"][0]) for t in spec.tensors]


# ---------------------------------------------------------------------------
# Which files make the checkpoint


def checkpoint_files(path: str | os.PathLike[str]) -> list[Path]:
    """The .safetensors files of a checkpoint: the file itself, the shards its
    directory's index names, or the directory's model.safetensors (checkpoint_members)."""
    return checkpoint_members(path)[0]


def checkpoint_members(
    path: str | os.PathLike[str],
) -> tuple[list[Path], dict[str, str] | None]:
    """The files of a checkpoint and its index's weight_map (None without an index).

    `path` is a regular file (the checkpoint itself) or a directory. In a directory the
    index, when present, names the files: each a plain file name in the directory
    (read_index), each present; else model.safetensors is the checkpoint. Any other
    .safetensors file in the directory (a stray shard or a model.safetensors left
    beside an index) is an error, not something to skip: from_pretrained might load
    it. Hidden names (a writer's temporaries) are not checkpoint files."""
    path = Path(path)
    nothing = f"{path}: no {SINGLE_FILE}, {INDEX_FILE} or .safetensors file"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(nothing) from None
    if stat.S_ISREG(mode):
        return [path], None
    if not stat.S_ISDIR(mode):
        raise CheckpointFormatError(
            path, f"is {_kind_of(mode)}: expected a .safetensors file or a checkpoint directory"
        )
    listed = set(os.listdir(path))
    weights = {n for n in listed if n.endswith(".safetensors") and not n.startswith(".")}
    if INDEX_FILE in listed:
        weight_map = read_index(path / INDEX_FILE, path)
        named = sorted(set(weight_map.values()))
        missing = [name for name in named if name not in listed]
        if missing:
            raise CheckpointFormatError(
                path / INDEX_FILE,
                f"weight_map names {len(missing)} missing file(s): "
                f"{', '.join(map(_brief, missing[:3]))}{', ...' if len(missing) > 3 else ''}",
            )
        files: list[str] = named
    elif SINGLE_FILE in listed:
        weight_map, files = None, [SINGLE_FILE]
    else:
        raise FileNotFoundError(nothing)
    stray = sorted(weights - set(files))
    if stray:
        others = f" (and {len(stray) - 1} more)" if len(stray) > 1 else ""
        owner = INDEX_FILE if weight_map is not None else f"this checkpoint ({SINGLE_FILE})"
        raise CheckpointFormatError(
            path / stray[0],
            f"a .safetensors file that is not part of {owner}{others}: a stray from another "
            f"checkpoint? Remove it or rewrite the checkpoint",
        )
    return [path / name for name in files], weight_map


def read_index(index: Path, directory: Path) -> dict[str, str]:
    """The weight_map of a model.safetensors.index.json: a regular file in `directory`
    of at most MAX_INDEX_SIZE bytes, a JSON object whose weight_map is a non-empty
    object of tensor name -> plain .safetensors file name (no directory part, no
    "..", not absolute, printable)."""
    fd = open_regular(index, inside=directory)
    try:
        size = os.fstat(fd).st_size
        if size > MAX_INDEX_SIZE:
            raise CheckpointFormatError(
                index, f"is {size} bytes, over the {MAX_INDEX_SIZE}-byte limit for an index"
            )
        raw = read_exact(fd, 0, size)
    finally:
        os.close(fd)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CheckpointFormatError(
            index, f"is not UTF-8: {error.reason} at byte {error.start}"
        ) from None
    document = _parse_json(index, "the index", text)
    if not isinstance(document, dict):
        raise CheckpointFormatError(
            index, f"must be a JSON object with a weight_map, got {_json_type(document)}"
        )
    weight_map = document.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointFormatError(
            index,
            f"weight_map must be a non-empty object of tensor name -> file name, "
            f"got {_brief(weight_map)}",
        )
    for tensor, name in weight_map.items():
        where = f"weight_map[{_brief(tensor)}]"
        if not isinstance(name, str):
            raise CheckpointFormatError(
                index, f"{where} must be a file name (a string), got {_brief(name)}"
            )
        problem = _file_name_problem(name)
        if problem:
            raise CheckpointFormatError(index, f"{where}: {_brief(name)} {problem}")
    return weight_map


def check_index_entries(weight_map: dict[str, str], file: Path, names: list[str]) -> None:
    """The index and the header of `file` list the same tensors for it."""
    for name in names:
        holder = weight_map.get(name)
        if holder != file.name:
            said = f"puts it in {_brief(holder)}" if holder is not None else "does not list it"
            raise CheckpointFormatError(file, f"tensor {_brief(name)}: {INDEX_FILE} {said}")
    held = set(names)
    for name, holder in weight_map.items():
        if holder == file.name and name not in held:
            raise CheckpointFormatError(
                file.parent / INDEX_FILE,
                f"weight_map[{_brief(name)}]: {holder!r} does not hold this tensor",
            )


def _file_name_problem(name: str) -> str | None:
    """Why `name` is not a plain .safetensors file name in the checkpoint directory."""
    if name.startswith("/") or os.path.isabs(name):
        return "is an absolute path: only plain file names in the checkpoint directory"
    if "/" in name or name in (".", ".."):
        return "is not a plain file name: only files in the checkpoint directory itself"
    if not name.isprintable():
        return "holds a NUL or another unprintable character"
    if not name.endswith(".safetensors") or name.startswith("."):
        return "is not a .safetensors file name"
    return None
