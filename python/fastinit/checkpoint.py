"""Checkpoints straight to safetensors: each tensor generated into its place in the file.

    fastinit.checkpoint.write(spec, "out/")            # model.safetensors, or shards + index
    fastinit.checkpoint.verify("out/")                 # regenerate from the headers, compare

Each file is reserved at full size, then generated window by window (`window` bytes)
by the CPU kernel on all threads: into one of two reused, block-aligned buffers that
go to the disk with O_DIRECT (the disk reads them where they are; generating one
window overlaps writing the other, and no page cache is filled), or, where the file
system refuses O_DIRECT (tmpfs), into the file's own pages mapped a window at a time.
Memory stays bounded whatever the model size.

Format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
length, the JSON header padded with spaces to a multiple of 8, then the tensors
back to back, largest item size first so each starts aligned to its item size. The
header's __metadata__ (strings only) holds format "pt", the fastinit version, the
seed, the spec's digest, and each tensor's initializer and parameters: enough to
regenerate any tensor from the file alone (verify).

Safety: files are written as unnamed temporary files (O_TMPFILE) in the output's
directory where the file system allows it, else as hidden named ones; their space is
reserved up front (a full disk fails before any generation); each is fsynced, then
given its final name, and the directory is fsynced; the index goes last. An error,
Ctrl-C or SIGTERM removes every temporary file; a SIGKILL leaves none behind where
O_TMPFILE was available. Existing outputs are replaced only with force=True.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import decimal
import errno
import json
import math
import mmap
import os
import random
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import _checks
from .specs import ModelSpec, TensorSpec, check_spec, sample_into, spec_digest

SAFETENSORS_DTYPES = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16"}
_DTYPE_OF_SAFETENSORS = {code: name for name, code in SAFETENSORS_DTYPES.items()}
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
DEFAULT_MAX_SHARD_SIZE = 5 * 10**9
DEFAULT_WINDOW = 64 << 20  # bytes generated and written at a time
_BLOCK = 4096  # windows are whole blocks: O_DIRECT's alignment and mmap's page size
_MADV_POPULATE_WRITE = 23  # Linux >= 5.14: fault a window in with one call
DIRECT_IO = True  # write with O_DIRECT where the file system allows it (else mmap windows)
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


def _itemsize(tensor: TensorSpec) -> int:
    return np.dtype(_checks.check_dtype(tensor.dtype)).itemsize


def _nbytes(tensor: TensorSpec) -> int:
    return math.prod(tensor.shape) * _itemsize(tensor)


def plan(
    spec: ModelSpec, *, max_shard_size: int | None, metadata: dict[str, str]
) -> list[FileLayout]:
    """The files: one if max_shard_size is None or everything fits, else shards of at
    most max_shard_size bytes (a larger tensor alone in its shard), in spec order."""
    groups: list[list[TensorSpec]] = [[]]
    filled = 0
    for tensor in spec.tensors:
        size = _nbytes(tensor)
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
    ordered = sorted(tensors, key=lambda t: -_itemsize(t))  # stable: spec order within a size
    entries, offset = [], 0
    for tensor in ordered:
        entries.append(Entry(tensor, offset, offset + _nbytes(tensor)))
        offset += _nbytes(tensor)
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


# ---------------------------------------------------------------------------
# Generation


def boxes(shape: tuple[int, ...], limit: int) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(start, extent) boxes of at most `limit` elements that tile `shape` in row-major
    order, each contiguous in memory: whole rows where they fit, else pieces of a row."""
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


def _region(start: tuple[int, ...], extent: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(s, s + e) for s, e in zip(start, extent, strict=True))


def _fill_box(
    tensor: TensorSpec, seed: int, view: np.ndarray, start: tuple[int, ...],
    extent: tuple[int, ...], threads: int | None,
) -> None:  # fmt: skip
    sample_into(tensor, seed, view, _region(start, extent) if start else None, threads)


class _Progress:
    """Bytes written, rate and ETA on a terminal; silent when stderr is not one."""

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

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


@dataclass
class _Output:
    """One file being written: its descriptor, and the temporary name if it has one."""

    layout: FileLayout
    final: Path
    fd: int = -1
    temporary: Path | None = None  # None: an unnamed O_TMPFILE file
    linked: bool = False
    extra: list[Path] = field(default_factory=list)


def _open_temporary(directory: Path, final: Path, layout: FileLayout) -> _Output:
    flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)
    if hasattr(os, "O_TMPFILE"):
        try:
            fd = os.open(directory, flags | os.O_TMPFILE, 0o644)
            return _Output(layout, final, fd, None)
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                raise
    temporary = directory / f".{final.name}.fastinit-{os.getpid()}.tmp"
    fd = os.open(temporary, flags | os.O_CREAT | os.O_EXCL, 0o644)
    return _Output(layout, final, fd, temporary)


def _reserve(fd: int, size: int, name: str) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            reason = os.strerror(error.errno)
            raise OSError(
                error.errno, f"cannot reserve {size:,} bytes for {name}: {reason}"
            ) from None
        if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        os.ftruncate(fd, size)


def _fill_file_mapped(
    output: _Output, seed: int, window: int, threads: int | None, progress: _Progress
) -> None:
    """Fills the file in place through its own pages, mapped a window at a time (for file
    systems that refuse O_DIRECT)."""
    size = output.layout.size
    for begin in range(0, size, window):
        length = min(window, size - begin)
        mapped = mmap.mmap(output.fd, length, offset=begin)
        try:
            with contextlib.suppress(OSError, ValueError):
                mapped.madvise(_MADV_POPULATE_WRITE)
            _fill_window(output.layout, seed, np.frombuffer(mapped, np.uint8), begin, threads)
        finally:
            # N.B. after an error its traceback still holds a view: the mapping then
            # goes when the traceback does, and the error is not masked.
            with contextlib.suppress(BufferError):
                mapped.close()
        with contextlib.suppress(OSError):  # start writeback now; keeps the cache small
            os.posix_fadvise(output.fd, begin, length, os.POSIX_FADV_DONTNEED)
        progress.advance(length)


def flat_boxes(
    shape: tuple[int, ...], first: int, stop: int
) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(start, extent) boxes, each contiguous in row-major order, that cover the flat
    elements [first, stop) of `shape` in order: a partial row, whole rows, a partial row."""
    if first >= stop:
        return
    if not shape:
        yield (), ()
        return
    inner = math.prod(shape[1:])
    row, offset = divmod(first, inner)
    last_row, last_offset = divmod(stop, inner)
    if row == last_row:
        for start, extent in flat_boxes(shape[1:], offset, last_offset):
            yield (row, *start), (1, *extent)
        return
    if offset:
        for start, extent in flat_boxes(shape[1:], offset, inner):
            yield (row, *start), (1, *extent)
        row += 1
    if last_row > row:
        yield (row, *(0,) * (len(shape) - 1)), (last_row - row, *shape[1:])
    if last_offset:
        for start, extent in flat_boxes(shape[1:], 0, last_offset):
            yield (last_row, *start), (1, *extent)


def _fill_window(
    layout: FileLayout, seed: int, buffer: np.ndarray, begin: int, threads: int | None
) -> None:
    """File bytes [begin, begin + len(buffer)) into `buffer`: header and tensor pieces."""
    end = begin + len(buffer)
    header = layout.header
    if begin < len(header):
        piece = header[begin : min(end, len(header))]
        buffer[: len(piece)] = np.frombuffer(piece, dtype=np.uint8)
    data = len(header)
    for entry in layout.entries:
        lo, hi = max(begin, data + entry.begin), min(end, data + entry.end)
        if lo >= hi:
            continue
        tensor = entry.tensor
        dtype = _checks.check_dtype(tensor.dtype)
        first = (lo - data - entry.begin) // dtype.itemsize
        stop = (hi - data - entry.begin) // dtype.itemsize
        where = lo - begin
        for start, extent in flat_boxes(tuple(tensor.shape), first, stop):
            nbytes = math.prod(extent) * dtype.itemsize
            view = buffer[where : where + nbytes].view(dtype).reshape(extent)
            _fill_box(tensor, seed, view, start, extent, threads)
            where += nbytes


def _fill_file_direct(
    output: _Output, seed: int, window: int, threads: int | None, progress: _Progress
) -> bool:
    """Fills the file with O_DIRECT writes of whole windows from two reused, aligned
    buffers (generation of one overlaps the write of the other): no page cache, whose
    fresh pages can cost more than the disk. False where the file system refuses
    O_DIRECT (tmpfs), before anything was written."""
    if not hasattr(os, "O_DIRECT"):
        return False
    try:
        fd = os.open(f"/proc/self/fd/{output.fd}", os.O_WRONLY | os.O_DIRECT)
    except OSError:
        return False
    size = output.layout.size
    buffers = [np.frombuffer(mmap.mmap(-1, window), dtype=np.uint8) for _ in range(2)]
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as writer:
            pending: concurrent.futures.Future[int] | None = None
            for k, begin in enumerate(range(0, size, window)):
                length = min(window, size - begin)
                buffer = buffers[k % 2]
                _fill_window(output.layout, seed, buffer[:length], begin, threads)
                padded = -(-length // _BLOCK) * _BLOCK  # O_DIRECT writes whole blocks
                buffer[length:padded] = 0
                if pending is not None:
                    pending.result()
                if k == 0:
                    try:
                        os.pwrite(fd, buffer[:padded], begin)
                    except OSError as error:
                        if error.errno == errno.EINVAL:
                            return False
                        raise
                    pending = None
                else:
                    pending = writer.submit(os.pwrite, fd, buffer[:padded], begin)
                progress.advance(length)
            if pending is not None:
                pending.result()
    finally:
        os.close(fd)
    os.ftruncate(output.fd, size)  # the last block's padding
    return True


def _flat_offset(shape: Sequence[int], start: Sequence[int]) -> int:
    index = 0
    for dim, first in zip(shape, start, strict=True):
        index = index * dim + first
    return index


def _link(output: _Output, force: bool) -> None:
    """Gives the finished file its final name (replacing an old one only with force)."""
    if output.temporary is None:
        staging = output.final
        if force and output.final.exists():
            staging = output.final.with_name(f".{output.final.name}.fastinit-{os.getpid()}.new")
            output.extra.append(staging)
        # N.B. with a directory fd, os.link calls linkat(..., AT_SYMLINK_FOLLOW), which
        # follows /proc's link to the unnamed file; plain link(2) would not.
        directory = os.open(staging.parent, os.O_RDONLY)
        try:
            os.link(f"/proc/self/fd/{output.fd}", staging.name, dst_dir_fd=directory)
        finally:
            os.close(directory)
        if staging != output.final:
            os.replace(staging, output.final)
    elif force:
        os.replace(output.temporary, output.final)
    else:
        os.link(output.temporary, output.final)  # fails if it exists
        os.unlink(output.temporary)
    output.linked = True
    output.temporary = None


def _write_small(path: Path, text: str, force: bool) -> None:
    """A small file (config, index) through a temporary name, fsynced, then renamed."""
    temporary = path.with_name(f".{path.name}.fastinit-{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if not force and path.exists():
            raise FileExistsError(f"{path} exists; pass force=True (--force) to replace it")
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt while writing, so cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


_CHECKPOINT_NAME = re.compile(
    r"model\.safetensors|model-\d{5}-of-\d{5}\.safetensors|model\.safetensors\.index\.json"
)


def _checkpoint_files_in(directory: Path) -> list[Path]:
    """The files of a Hugging Face checkpoint in `directory` (weights and index)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _CHECKPOINT_NAME.fullmatch(p.name))


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
    spec carries one). progress: a bar on stderr (default: when stderr is a terminal)."""
    started = time.perf_counter()
    target = Path(output)
    single = target.suffix == ".safetensors"
    limit = None if single or max_shard_size is None else parse_size(max_shard_size)
    threads = None if threads is None else _checks.check_int("threads", threads, low=1)
    window = _checks.check_int("window", window, low=1)
    window = max(_BLOCK, window - window % _BLOCK)
    spec = check_spec(spec)
    layouts = plan(spec, max_shard_size=limit, metadata=metadata_of(spec))
    directory = target.parent if single else target
    finals = [target] if single else [directory / layout.name for layout in layouts]
    index = None if single or len(layouts) == 1 else directory / INDEX_FILE
    config = None if single or spec.config is None else directory / "config.json"
    if not force:
        existing = [p for p in [*finals, index, config] if p is not None and p.exists()]
        existing += [] if single else _checkpoint_files_in(directory)
        if existing:
            raise FileExistsError(f"{existing[0]} exists; pass force=True (--force) to replace it")
    parent = directory if directory.exists() else directory.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"directory {parent} does not exist")
    total = sum(layout.size for layout in layouts)
    bar = _Progress(total, sys.stderr.isatty() if progress is None else progress)
    outputs: list[_Output] = []
    written: list[Path] = []  # final names given so far: removed again if a later step fails
    try:
        with _terminate_as_interrupt():
            for layout, final in zip(layouts, finals, strict=True):
                out = _open_temporary(parent, final, layout)
                outputs.append(out)
                _reserve(out.fd, layout.size, str(final))
            for out in outputs:
                if not (DIRECT_IO and _fill_file_direct(out, spec.seed, window, threads, bar)):
                    _fill_file_mapped(out, spec.seed, window, threads, bar)
            # N.B. only now: an fsync per shard would stall generation while the shard
            # drains, where the kernel can write one shard back while we fill the next.
            for out in outputs:
                os.fsync(out.fd)
            directory.mkdir(exist_ok=True)
            for out in outputs:
                _link(out, force)
                written.append(out.final)
            if config is not None:
                _write_small(config, json.dumps(_config_for(spec), indent=2) + "\n", force)
                written.append(config)
            if index is not None:
                weight_map = {e.tensor.name: f.name for f in layouts for e in f.entries}
                document = {
                    "metadata": {"total_size": sum(_nbytes(t) for t in spec.tensors)},
                    "weight_map": dict(sorted(weight_map.items())),
                }
                _write_small(index, json.dumps(document, indent=2) + "\n", force)
                written.append(index)
            if not single:  # with force: an older checkpoint's other files must not linger
                for stale in set(_checkpoint_files_in(directory)) - set(written):
                    stale.unlink()
            _fsync_directory(directory)
            written = []
    finally:
        for path in written:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        bar.close()
        for out in outputs:
            if out.fd >= 0:
                os.close(out.fd)
            for path in ([out.temporary] if out.temporary else []) + out.extra:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
    return WriteResult(finals, index, total, time.perf_counter() - started)


# ---------------------------------------------------------------------------
# Verification


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
            name, tuple(info["shape"]), _DTYPE_OF_SAFETENSORS.get(info["dtype"], info["dtype"]),
            recipe["init"], recipe["params"], tuple(recipe["zero_rows"]),
        )  # fmt: skip
        found.append((spec, info["data_offsets"][0]))
    return int(metadata["fastinit.seed"]), found


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
    repeatable). Returns the tensors whose bytes differ (empty: reproducible)."""
    if sample is not None:
        sample = _checks.check_int("sample", sample, low=1)
    chunks = []  # (file, data start, seed, tensor, offset, start, extent)
    mismatched: list[str] = []
    count = 0
    for file in checkpoint_files(path):
        header, data = read_header(file)
        seed, tensors = tensors_of(header)
        size = os.path.getsize(file)
        for tensor, offset in tensors:
            count += 1
            if tensor.init == "?" or tensor.dtype not in SAFETENSORS_DTYPES:
                mismatched.append(f"{file.name}: {tensor.name} (no fastinit recipe)")
                continue
            if data + offset + _nbytes(tensor) > size:
                mismatched.append(f"{file.name}: {tensor.name} (file truncated)")
                continue
            limit = max(1, window // _itemsize(tensor))
            for start, extent in boxes(tensor.shape, limit):
                if math.prod(extent):
                    chunks.append((file, data, seed, tensor, offset, start, extent))
    if sample is not None and sample < len(chunks):
        chunks = sorted(random.Random(sample_seed).sample(chunks, sample), key=_chunk_order)
    checked = 0
    bad = set()
    for file, data, seed, tensor, offset, start, extent in chunks:
        if (file, tensor.name) in bad:
            continue
        dtype = _checks.check_dtype(tensor.dtype)
        expected = np.empty(extent, dtype=dtype)
        _fill_box(tensor, seed, expected, start, extent, threads)
        where = data + offset + _flat_offset(tensor.shape, start) * dtype.itemsize
        with open(file, "rb") as handle:
            handle.seek(where)
            stored = handle.read(expected.nbytes)
        checked += len(stored)
        if stored != expected.tobytes():
            bad.add((file, tensor.name))
            mismatched.append(f"{file.name}: {tensor.name} (bytes differ in rows from {start})")
    return VerifyResult(checked, count, mismatched)


def _chunk_order(chunk: tuple[Any, ...]) -> tuple[str, int, tuple[int, ...]]:
    return str(chunk[0]), chunk[4], chunk[5]
