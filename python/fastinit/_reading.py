"""Reading a safetensors file that fastinit wrote, treating it as hostile until checked.

Guarantees: a file is opened only once it is known to be a regular file (never a FIFO,
a device, or a link out of the checkpoint directory: open_regular); its header is read
only within MAX_HEADER_SIZE bytes and checked as the safetensors library checks it
(check_header: JSON object, dtypes, shapes and offsets counted in 64 bits, the tensors
back to back to the end of the file), then as fastinit writes it (tensors_of: seed,
one recipe per tensor, each passing the spec document's checks), before any number in
it sizes an allocation. Every problem is a CheckpointFormatError (a ValueError) naming
the file and the field.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from ._format import MAX_HEADER_SIZE, SAFETENSORS_DTYPES
from .specs import SPEC_FORMAT, TensorSpec, spec_from_json

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
_TENSOR_FIELDS = ("dtype", "shape", "data_offsets")
_RECIPE_FIELDS = ("init", "params", "zero_rows")
_U64 = 1 << 64  # safetensors counts elements, bytes and offsets in u64


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


def brief(value: Any, limit: int = 200) -> str:
    """repr(value), cut short: hostile values can be megabytes long."""
    if isinstance(value, list) and len(value) > limit:
        value = [*value[:limit], ...]
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def kind_of(mode: int) -> str:
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
            raise CheckpointFormatError(path, f"is {kind_of(mode)}, not a regular file")
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


def parse_json(path: str | os.PathLike[str], what: str, text: str) -> Any:
    """JSON as the safetensors library reads it: no NaN or Infinity, no repeated key."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise CheckpointFormatError(path, f"{what} has the key {brief(key)} twice")
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
    header = parse_json(path, "header", text)
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
        raise CheckpointFormatError(path, f"header must be a JSON object, got {json_type(header)}")
    if "__metadata__" in header:
        metadata = header["__metadata__"]
        if not isinstance(metadata, dict):
            raise CheckpointFormatError(
                path, f"__metadata__ must be an object of strings, got {json_type(metadata)}"
            )
        for key, value in metadata.items():
            if not isinstance(value, str):
                raise CheckpointFormatError(
                    path,
                    f"__metadata__[{brief(key)}] must be a string, got {json_type(value)} "
                    f"{brief(value)}",
                )
    spans = []
    for name, info in header.items():
        if name != "__metadata__":
            begin, end = _check_tensor_entry(path, name, info, data_size)
            spans.append((begin, end, name))
    spans.sort()
    position, previous = 0, None
    for begin, end, name in spans:
        where = f"tensor {brief(name)}: data_offsets [{begin}, {end}]"
        if begin > position:
            raise CheckpointFormatError(
                path, f"{where} leave a hole: bytes [{position}, {begin}) belong to no tensor"
            )
        if begin < position:
            raise CheckpointFormatError(
                path, f"{where} overlap tensor {brief(previous)}, which ends at {position}"
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
    where = f"tensor {brief(name)}"
    if not isinstance(info, dict):
        raise CheckpointFormatError(
            path,
            f"{where}: must be an object with dtype, shape and data_offsets, got {json_type(info)}",
        )
    for field in _TENSOR_FIELDS:
        if field not in info:
            raise CheckpointFormatError(path, f"{where}: {field} is missing")
    unknown = [key for key in info if key not in _TENSOR_FIELDS]
    if unknown:
        raise CheckpointFormatError(
            path,
            f"{where}: unknown field {brief(unknown[0])} (allowed: {', '.join(_TENSOR_FIELDS)})",
        )
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in SAFETENSORS_ITEMSIZE:
        raise CheckpointFormatError(
            path,
            f"{where}: dtype {brief(dtype)} is not a safetensors dtype "
            f"({', '.join(SAFETENSORS_ITEMSIZE)})",
        )
    if not isinstance(shape, list):
        raise CheckpointFormatError(
            path, f"{where}: shape must be an array of integers >= 0, got {brief(shape)}"
        )
    count = 1
    for axis, dim in enumerate(shape):
        if type(dim) is not int:
            raise CheckpointFormatError(
                path, f"{where}: shape[{axis}] must be an integer, got {brief(dim)}"
            )
        if dim < 0:
            raise CheckpointFormatError(path, f"{where}: shape[{axis}] must be >= 0, got {dim}")
        count *= dim  # as safetensors: checked at every step, a later 0 does not excuse it
        if dim >= _U64 or count >= _U64:
            raise CheckpointFormatError(
                path, f"{where}: shape {brief(shape)} has 2^64 or more elements"
            )
    needed = count * SAFETENSORS_ITEMSIZE[dtype]
    if needed >= _U64:
        raise CheckpointFormatError(
            path, f"{where}: shape {brief(shape)} of {dtype} needs 2^64 or more bytes"
        )
    if not (
        isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
    ):
        raise CheckpointFormatError(
            path,
            f"{where}: data_offsets must be an array of two integers [begin, end], "
            f"got {brief(offsets)}",
        )
    begin, end = offsets
    if not (0 <= begin < _U64 and 0 <= end < _U64):
        raise CheckpointFormatError(
            path, f"{where}: data_offsets {brief(offsets)} must be in [0, 2^64)"
        )
    if end < begin:
        raise CheckpointFormatError(
            path, f"{where}: data_offsets [{begin}, {end}] end before they begin"
        )
    if end - begin != needed:
        raise CheckpointFormatError(
            path,
            f"{where}: data_offsets [{begin}, {end}] span {end - begin} bytes but shape "
            f"{brief(shape)} of {dtype} needs {needed}",
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
            f"got {brief(seed_text)}",
        )
    if "fastinit.tensors" not in metadata:
        raise CheckpointFormatError(path, "__metadata__ has no fastinit.tensors (the recipes)")
    what = "__metadata__ fastinit.tensors"
    recipes = parse_json(path, what, metadata["fastinit.tensors"])
    if not isinstance(recipes, dict):
        raise CheckpointFormatError(path, f"{what} must be an object, got {json_type(recipes)}")
    names = [name for name in header if name != "__metadata__"]
    if not names:
        raise CheckpointFormatError(path, "the header lists no tensors")
    for name in recipes:
        if name not in header or name == "__metadata__":
            raise CheckpointFormatError(
                path, f"{what} has a recipe for {brief(name)}, a tensor the header does not list"
            )
    entries = []
    for name in names:
        info, recipe = header[name], recipes.get(name)
        if info["dtype"] not in DTYPE_OF_SAFETENSORS:
            raise CheckpointFormatError(
                path,
                f"tensor {brief(name)}: dtype {info['dtype']!r} is not one fastinit writes "
                f"({', '.join(DTYPE_OF_SAFETENSORS)})",
            )
        if recipe is None:
            raise CheckpointFormatError(path, f"{what} has no recipe for tensor {brief(name)}")
        if not isinstance(recipe, dict) or sorted(recipe) != sorted(_RECIPE_FIELDS):
            raise CheckpointFormatError(
                path,
                f"{what}[{brief(name)}] must be an object with exactly "
                f"{', '.join(_RECIPE_FIELDS)}, got {brief(recipe)}",
            )
        dtype = DTYPE_OF_SAFETENSORS[info["dtype"]]
        entries.append({"name": name, "shape": info["shape"], "dtype": dtype, **recipe})
    document = {"format": SPEC_FORMAT, "seed": int(seed_text), "tensors": entries}
    try:
        spec = spec_from_json(document)
    except (TypeError, ValueError, OverflowError) as error:
        raise CheckpointFormatError(path, f"{what}: {error}") from None
    return spec.seed, [(t, header[t.name]["data_offsets"][0]) for t in spec.tensors]
