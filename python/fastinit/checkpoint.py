"""Checkpoints straight to safetensors: each tensor generated into its place in the file.

    fastinit.checkpoint.write(spec, "out/")            # model.safetensors, or shards + index
    fastinit.checkpoint.verify("out/")                 # regenerate from the headers, compare

The jobs are split by module: `_format` (layout, header, index, reading), `_durable`
(temporary files, reservation, fsync, link, signals), `_windows` (generation of a
file's bytes window by window: O_DIRECT double buffer or mapped pages); this module
strings them together for `write` and `verify`. The output holds the complete old
checkpoint or the complete new one at every instant; an error, Ctrl-C or SIGTERM
removes everything the write made, and what a SIGKILL leaves is removed by the next
write. Existing outputs are replaced only with force=True.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import _checks, _windows
from ._durable import (
    Replacement,
    reserve,
    step,
    terminate_as_interrupt,
    write_small,
)
from ._format import (
    DEFAULT_MAX_SHARD_SIZE,
    INDEX_FILE,
    MAX_HEADER_SIZE,
    SAFETENSORS_DTYPES,
    SINGLE_FILE,
    CheckpointFormatError,
    check_index_entries,
    checkpoint_files,
    checkpoint_files_in,
    checkpoint_members,
    header_of,
    itemsize,
    metadata_of,
    nbytes,
    open_regular,
    parse_size,
    plan,
    read_exact,
    read_header,
    tensors_of,
)
from ._windows import (
    BLOCK,
    DEFAULT_WINDOW,
    Progress,
    boxes,
    fill_box,
    fill_file_direct,
    fill_file_mapped,
    flat_offset,
)
from .specs import ModelSpec, check_spec

__all__ = [
    "DEFAULT_MAX_SHARD_SIZE", "DEFAULT_WINDOW", "INDEX_FILE", "MAX_HEADER_SIZE",
    "SAFETENSORS_DTYPES", "SINGLE_FILE", "CheckpointFormatError", "VerifyResult", "WriteResult",
    "boxes", "checkpoint_files", "parse_size", "plan", "read_header", "verify", "write",
]  # fmt: skip


def _config_for(spec: ModelSpec) -> dict[str, Any]:
    """The spec's config; a dtype it names is made the weights' (when they share one), so
    from_pretrained does not cast them back to the config's original dtype."""
    config = dict(spec.config or {})
    dtypes = {tensor.dtype for tensor in spec.tensors}
    if len(dtypes) == 1:
        for key in ("dtype", "torch_dtype"):
            if key in config:
                config[key] = next(iter(dtypes))
    return config


class WriteResult(NamedTuple):
    files: list[Path]
    index: Path | None
    bytes: int
    seconds: float
    leftovers: list[Path] = []  # what dead writers had left beside the output, now removed


def write(
    spec: ModelSpec,
    output: str | os.PathLike[str],
    *,
    max_shard_size: int | str | None = DEFAULT_MAX_SHARD_SIZE,
    threads: int | None = None,
    force: bool = False,
    progress: bool | None = None,
    window: int = DEFAULT_WINDOW,
) -> WriteResult:
    """Writes `spec` as safetensors: to `output` itself if it ends in ".safetensors" (one
    file), else into the directory `output` (model.safetensors, or shards of at most
    max_shard_size bytes plus model.safetensors.index.json, and config.json when the
    spec carries one). progress: a bar on stderr (default: when stderr is a terminal).

    `output` holds its complete old checkpoint or the complete new one at every instant:
    the new one is built beside it and put in its place in one atomic step (see
    `_durable`). In an existing directory, force replaces the old checkpoint's files (the
    ones that refuse the write without it) and keeps every other file."""
    started = time.perf_counter()
    target = Path(output)
    single = target.suffix == ".safetensors"
    limit = None if single or max_shard_size is None else parse_size(max_shard_size)
    threads = None if threads is None else _checks.check_int("threads", threads, low=1)
    window = _checks.check_int("window", window, low=1)
    window = max(BLOCK, window - window % BLOCK)
    spec = check_spec(spec)
    layouts = plan(spec, max_shard_size=limit, metadata=metadata_of(spec))
    directory = target.parent if single else target
    finals = [target] if single else [directory / layout.name for layout in layouts]
    index = None if single or len(layouts) == 1 else directory / INDEX_FILE
    config = None if single or spec.config is None else directory / "config.json"
    # A symlinked output keeps its link: the checkpoint is replaced where it points.
    place = Path(os.path.realpath(target)) if target.is_symlink() else target
    for folder in dict.fromkeys([target.parent, place.parent]):
        if not folder.is_dir():
            raise FileNotFoundError(f"directory {folder} does not exist")
    _check_place(place, single)

    def replaced(folder: Path) -> set[str]:  # the old checkpoint's files, not carried over
        names = {path.name for path in checkpoint_files_in(folder)}
        if config is not None and os.path.lexists(folder / config.name):
            names.add(config.name)
        return names

    replacement = Replacement(place, single=single, force=force, replaced=replaced)
    leftovers = replacement.sweep()
    if not force:
        existing = [p for p in [*finals, index, config] if p is not None and p.exists()]
        existing += [] if single else checkpoint_files_in(directory)
        if existing:
            raise FileExistsError(f"{existing[0]} exists; pass force=True (--force) to replace it")
    total = sum(layout.size for layout in layouts)
    bar = Progress(total, sys.stderr.isatty() if progress is None else progress)
    try:
        with terminate_as_interrupt():
            outputs = []
            for layout, final in zip(layouts, finals, strict=True):
                out = replacement.open(layout, final)
                reserve(out.fd, layout.size, str(final))
                step("reserved", final)
                outputs.append(out)
            for out in outputs:
                if not (
                    _windows.DIRECT_IO and fill_file_direct(out, spec.seed, window, threads, bar)
                ):
                    fill_file_mapped(out, spec.seed, window, threads, bar)
                step("generated", out.final)
            # N.B. only now: an fsync per shard would stall generation while the shard
            # drains, where the kernel can write one shard back while we fill the next.
            for out in outputs:
                os.fsync(out.fd)
                step("fsynced", out.final)
            for out in outputs:
                replacement.link(out)
            if config is not None:
                text = json.dumps(_config_for(spec), indent=2) + "\n"
                write_small(replacement.staged(config.name), text)
                step("written", config)
            if index is not None:
                weight_map = {e.tensor.name: f.name for f in layouts for e in f.entries}
                document = {
                    "metadata": {"total_size": sum(nbytes(t) for t in spec.tensors)},
                    "weight_map": dict(sorted(weight_map.items())),
                }
                write_small(replacement.staged(index.name), json.dumps(document, indent=2) + "\n")
                step("written", index)
            replacement.commit()
    finally:
        bar.close()
        replacement.close()
    return WriteResult(finals, index, total, time.perf_counter() - started, leftovers)


def _check_place(place: Path, single: bool) -> None:
    """Refuses outputs that cannot be replaced whole, before anything is written."""
    if single and place.is_dir():
        raise IsADirectoryError(f"{place} is a directory: a .safetensors output is one file")
    if single or not os.path.lexists(place):
        return
    if not place.is_dir():
        raise NotADirectoryError(f"{place} exists and is not a directory")
    if os.stat(place).st_dev != os.stat(place.parent).st_dev:
        raise OSError(
            errno.EXDEV,
            f"{place} is a mount point: a checkpoint directory is built beside it and put in "
            "its place whole, which needs one file system; write into a directory inside it",
        )


# ---------------------------------------------------------------------------
# Verification


class VerifyResult(NamedTuple):
    checked_bytes: int
    tensors: int
    mismatched: list[str]  # "file: tensor (what)"


def verify(
    path: str | os.PathLike[str],
    *,
    sample: int | None = None,
    sample_seed: int | None = None,
    threads: int | None = None,
    window: int = DEFAULT_WINDOW,
) -> VerifyResult:
    """Regenerates a fastinit checkpoint from its own headers and compares the bytes:
    every chunk, or `sample` chunks chosen at random (sample_seed makes the choice
    repeatable). Returns the tensors whose bytes differ (empty: reproducible).

    Every file is treated as hostile and checked whole before anything is regenerated
    (checkpoint_members, header_of, tensors_of): which files make the checkpoint (no
    stray or missing shard, index names inside the directory, regular files only), the
    header as the safetensors library checks it (so the tensors need exactly the bytes
    the file holds), then fastinit's recipes. A problem raises CheckpointFormatError (a
    ValueError) naming the file and the field; a mismatch is only ever bytes."""
    if sample is not None:
        sample = _checks.check_int("sample", sample, low=1)
    window = _checks.check_int("window", window, low=1)
    files, weight_map = checkpoint_members(path)
    directory = None if files == [Path(path)] else Path(path)  # members of a directory stay in it
    chunks = []  # (file, data start, seed, tensor, offset, start, extent)
    mismatched: list[str] = []
    count = 0
    with contextlib.ExitStack() as stack:
        descriptors: dict[Path, int] = {}
        for file in files:
            fd = open_regular(file, inside=directory)
            stack.callback(os.close, fd)
            descriptors[file] = fd
            header, data = header_of(fd, file)
            seed, tensors = tensors_of(header, file)
            if weight_map is not None:
                check_index_entries(weight_map, file, [t.name for t, _ in tensors])
            for tensor, offset in tensors:
                count += 1
                if math.prod(tensor.shape) == 0:
                    continue  # no bytes to compare (and an axis may be 2^62 long)
                limit = max(1, window // itemsize(tensor))
                for start, extent in boxes(tensor.shape, limit):
                    chunks.append((file, data, seed, tensor, offset, start, extent))
        if sample is not None and sample < len(chunks):
            chunks = sorted(random.Random(sample_seed).sample(chunks, sample), key=_chunk_order)
        checked = 0
        bad = set()
        for file, data, seed, tensor, offset, start, extent in chunks:
            if (file, tensor.name) in bad:
                continue
            dtype = _checks.check_dtype(tensor.dtype)
            expected = np.empty(extent, dtype=dtype)  # at most a window: the header was checked
            fill_box(tensor, seed, expected, start, extent, threads)
            where = data + offset + flat_offset(tensor.shape, start) * dtype.itemsize
            stored = read_exact(descriptors[file], where, expected.nbytes)
            checked += len(stored)
            if stored != expected.tobytes():
                bad.add((file, tensor.name))
                mismatched.append(f"{file.name}: {tensor.name} (bytes differ in rows from {start})")
    return VerifyResult(checked, count, mismatched)


def _chunk_order(chunk: tuple[Any, ...]) -> tuple[str, int, tuple[int, ...]]:
    return str(chunk[0]), chunk[4], chunk[5]
