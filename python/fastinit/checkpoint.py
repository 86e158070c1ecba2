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
import math
import os
import random
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import _checks, _leftovers, _windows, runtime
from ._durable import Replacement
from ._format import (
    DEFAULT_MAX_SHARD_SIZE,
    INDEX_FILE,
    MAX_HEADER_SIZE,
    SAFETENSORS_DTYPES,
    SINGLE_FILE,
    FileLayout,
    config_text,
    index_text,
    itemsize,
    metadata_of,
    parse_size,
    plan,
)
from ._index import check_index_entries, checkpoint_files, checkpoint_members
from ._reading import (
    CheckpointFormatError,
    header_of,
    open_regular,
    read_exact,
    read_header,
    tensors_of,
)
from ._windows import BLOCK, DEFAULT_WINDOW
from .specs import ModelSpec, check_spec

__all__ = [
    "DEFAULT_MAX_SHARD_SIZE", "DEFAULT_WINDOW", "INDEX_FILE", "MAX_HEADER_SIZE",
    "SAFETENSORS_DTYPES", "SINGLE_FILE", "CheckpointFormatError", "VerifyResult", "WriteResult",
    "boxes", "checkpoint_files", "parse_size", "plan", "read_header", "verify", "write",
]  # fmt: skip


class WriteResult(NamedTuple):
    files: list[Path]
    # N.B. shadows tuple.index: the field's name is public API, kept.
    index: Path | None  # type: ignore[assignment]
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
    threads = None if threads is None else _checks.check_int("threads", threads, low=1)
    window = _checks.check_int("window", window, low=1)
    window = max(BLOCK, window - window % BLOCK)
    spec = check_spec(spec)
    target = Path(output)
    single = target.suffix == ".safetensors"
    limit = None if single or max_shard_size is None else parse_size(max_shard_size)
    layouts = plan(spec, max_shard_size=limit, metadata=metadata_of(spec))
    directory = target.parent if single else target
    finals = [target] if single else [directory / layout.name for layout in layouts]
    index = None if single or len(layouts) == 1 else directory / INDEX_FILE
    config = None if single or spec.config is None else directory / "config.json"
    small = [] if config is None else [(config, config_text(spec))]
    small += [] if index is None else [(index, index_text(spec, layouts))]
    total = sum(layout.size for layout in layouts)
    # A symlinked output keeps its link: the checkpoint is replaced where it points.
    place = Path(os.path.realpath(target)) if target.is_symlink() else target
    for folder in dict.fromkeys([target.parent, place.parent]):
        if not folder.is_dir():
            raise FileNotFoundError(f"directory {folder} does not exist")
    _check_place(place, single)
    leftovers = _leftovers.sweep(place, single=single)
    if not force:
        existing = [p for p in [*finals, index, config] if p is not None and p.exists()]
        existing += [] if single else _checkpoint_files_in(directory)
        if existing:
            raise FileExistsError(f"{existing[0]} exists; pass force=True (--force) to replace it")

    def replaced(folder: Path) -> set[str]:  # the old checkpoint's files, not carried over
        names = {path.name for path in _checkpoint_files_in(folder)}
        if config is not None and os.path.lexists(folder / config.name):
            names.add(config.name)
        return names

    def generate(fd: int, layout: FileLayout) -> None:
        _windows.fill_file(fd, layout, spec.seed, window, threads, bar.advance)

    enabled = sys.stderr.isatty() if progress is None else progress
    with (
        Progress(total, enabled) as bar,
        Replacement(place, single=single, force=force, replaced=replaced) as replacement,
    ):
        replacement.build(list(zip(layouts, finals, strict=True)), generate, small)
    return WriteResult(finals, index, total, time.perf_counter() - started, leftovers)


class Progress:
    """Bytes written, rate and ETA on a terminal; silent when stderr is not one.

    N.B. hand-written rather than tqdm: fastinit's runtime dependencies are numpy and
    ml_dtypes only, and one bar of twenty lines costs less than an optional dependency
    whose presence would change what the CLI prints."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.start = self.last = time.monotonic()

    def advance(self, nbytes: int) -> None:
        self.done += nbytes
        now = time.monotonic()
        if self.enabled and (now - self.last >= 0.2 or self.done == self.total):
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            width = 30
            bar = "#" * int(width * self.done / max(self.total, 1))
            sys.stderr.write(
                f"\r[{bar:<{width}}] {self.done / 1e9:7.2f}/{self.total / 1e9:.2f} GB "
                f"{rate / 1e9:6.2f} GB/s ETA {eta:5.0f} s"
            )
            sys.stderr.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exception: object) -> None:
        if self.enabled:
            sys.stderr.write("\n")


_CHECKPOINT_NAME = re.compile(
    r"model\.safetensors|model-\d{5}-of-\d{5}\.safetensors|model\.safetensors\.index\.json"
)


def _checkpoint_files_in(directory: Path) -> list[Path]:
    """The files of a Hugging Face checkpoint in `directory` (weights and index): those a
    write replaces, and refuses to replace without force."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _CHECKPOINT_NAME.fullmatch(p.name))


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
    threads = runtime.resolve_threads(threads)
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
        prepared: dict[tuple[Path, str], _windows.Prepared] = {}
        for file, data, seed, tensor, offset, start, extent in chunks:
            if (file, tensor.name) in bad:
                continue
            if (file, tensor.name) not in prepared:  # once per tensor, not per chunk
                prepared[file, tensor.name] = _windows.prepare(tensor)
            dtype = _checks.check_dtype(tensor.dtype)
            # A box is contiguous: the flat elements [first, first + its size).
            first = _flat_offset(tensor.shape, start)
            expected = np.empty(math.prod(extent), dtype=dtype)  # at most a window
            _windows.fill_piece(tensor, prepared[file, tensor.name], seed, expected, first, threads)
            where = data + offset + first * dtype.itemsize
            stored = read_exact(descriptors[file], where, expected.nbytes)
            checked += len(stored)
            if stored != expected.tobytes():
                bad.add((file, tensor.name))
                mismatched.append(f"{file.name}: {tensor.name} (bytes differ in rows from {start})")
    return VerifyResult(checked, count, mismatched)


def boxes(shape: tuple[int, ...], limit: int) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(start, extent) boxes of at most `limit` elements that tile `shape` in row-major
    order, each contiguous in memory: whole rows where they fit, else pieces of a row.
    verify's chunks (and what --sample chooses among)."""
    if not shape:
        yield (), ()
        return
    inner = math.prod(shape[1:])
    if inner <= limit:
        rows = max(1, limit // max(inner, 1))
        for first in range(0, shape[0], rows):
            count = min(rows, shape[0] - first)
            yield (first, *([0] * (len(shape) - 1))), (count, *shape[1:])
        return
    for index in range(shape[0]):
        for start, extent in boxes(shape[1:], limit):
            yield (index, *start), (1, *extent)


def _flat_offset(shape: Sequence[int], start: Sequence[int]) -> int:
    index = 0
    for dim, first in zip(shape, start, strict=True):
        index = index * dim + first
    return index


def _chunk_order(chunk: tuple[Any, ...]) -> tuple[str, int, tuple[int, ...]]:
    return str(chunk[0]), chunk[4], chunk[5]
