"""Window I/O: a file's bytes generated a window at a time, straight into place.

Each file is generated window by window (`window` bytes) by the CPU kernel on all
threads: into one of two reused, block-aligned buffers that go to the disk with
O_DIRECT (the disk reads them where they are; generating one window overlaps writing
the other, and no page cache is filled), or, where the file system refuses O_DIRECT
(tmpfs), into the file's own pages mapped a window at a time. Memory stays bounded
whatever the model size.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import math
import mmap
import os
import sys
import time
from collections.abc import Iterator, Sequence

import numpy as np

from . import _checks
from ._durable import Output
from ._format import FileLayout
from .specs import TensorSpec, sample_into

DEFAULT_WINDOW = 64 << 20  # bytes generated and written at a time
BLOCK = 4096  # windows are whole blocks: O_DIRECT's alignment and mmap's page size
_MADV_POPULATE_WRITE = 23  # Linux >= 5.14: fault a window in with one call
DIRECT_IO = True  # write with O_DIRECT where the file system allows it (else mmap windows)


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


def fill_box(
    tensor: TensorSpec, seed: int, view: np.ndarray, start: tuple[int, ...],
    extent: tuple[int, ...], threads: int | None,
) -> None:  # fmt: skip
    sample_into(tensor, seed, view, _region(start, extent) if start else None, threads)


class Progress:
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


def fill_file_mapped(
    output: Output, seed: int, window: int, threads: int | None, progress: Progress
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
            fill_window(output.layout, seed, np.frombuffer(mapped, np.uint8), begin, threads)
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


def fill_window(
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
            fill_box(tensor, seed, view, start, extent, threads)
            where += nbytes


def fill_file_direct(
    output: Output, seed: int, window: int, threads: int | None, progress: Progress
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
                fill_window(output.layout, seed, buffer[:length], begin, threads)
                padded = -(-length // BLOCK) * BLOCK  # O_DIRECT writes whole blocks
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


def flat_offset(shape: Sequence[int], start: Sequence[int]) -> int:
    index = 0
    for dim, first in zip(shape, start, strict=True):
        index = index * dim + first
    return index
