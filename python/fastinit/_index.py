"""Which files make a checkpoint: the file itself, or a directory's index and shards.

Guarantees: in a directory, the index (model.safetensors.index.json), when present,
names the files, each a plain .safetensors file name inside the directory (no
directory part, no "..", not absolute, printable), each present; else
model.safetensors is the checkpoint. Any other .safetensors file beside them is an
error, never skipped (from_pretrained might load it). The index is read as hostile
(_reading.open_regular, at most MAX_INDEX_SIZE bytes, JSON as safetensors reads it),
and check_index_entries holds each header to the index. Problems are
CheckpointFormatErrors naming the file and the field.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ._format import INDEX_FILE, MAX_HEADER_SIZE, SINGLE_FILE
from ._reading import (
    CheckpointFormatError,
    brief,
    json_type,
    kind_of,
    open_regular,
    parse_json,
    read_exact,
)

MAX_INDEX_SIZE = MAX_HEADER_SIZE  # an index lists the names a header lists, and less


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
            path, f"is {kind_of(mode)}: expected a .safetensors file or a checkpoint directory"
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
                f"{', '.join(map(brief, missing[:3]))}{', ...' if len(missing) > 3 else ''}",
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
    document = parse_json(index, "the index", text)
    if not isinstance(document, dict):
        raise CheckpointFormatError(
            index, f"must be a JSON object with a weight_map, got {json_type(document)}"
        )
    weight_map = document.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointFormatError(
            index,
            f"weight_map must be a non-empty object of tensor name -> file name, "
            f"got {brief(weight_map)}",
        )
    for tensor, name in weight_map.items():
        where = f"weight_map[{brief(tensor)}]"
        if not isinstance(name, str):
            raise CheckpointFormatError(
                index, f"{where} must be a file name (a string), got {brief(name)}"
            )
        problem = _file_name_problem(name)
        if problem:
            raise CheckpointFormatError(index, f"{where}: {brief(name)} {problem}")
    return weight_map


def check_index_entries(weight_map: dict[str, str], file: Path, names: list[str]) -> None:
    """The index and the header of `file` list the same tensors for it."""
    for name in names:
        holder = weight_map.get(name)
        if holder != file.name:
            said = f"puts it in {brief(holder)}" if holder is not None else "does not list it"
            raise CheckpointFormatError(file, f"tensor {brief(name)}: {INDEX_FILE} {said}")
    held = set(names)
    for name, holder in weight_map.items():
        if holder == file.name and name not in held:
            raise CheckpointFormatError(
                file.parent / INDEX_FILE,
                f"weight_map[{brief(name)}]: {holder!r} does not hold this tensor",
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
