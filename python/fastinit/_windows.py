"""Window I/O: a file's bytes generated a window at a time, straight into place.

Each file is generated window by window (`window` bytes) by the CPU kernel on all
threads: into one of two reused, block-aligned buffers that go to the disk with
O_DIRECT (the disk reads them where they are; generating one window overlaps writing
the other, and no page cache is filled), or, where the file system refuses O_DIRECT
(tmpfs), into the file's own pages mapped a window at a time. Memory stays bounded
whatever the model size.

A window holds the header's bytes and pieces of tensors. Each piece is a tensor's flat
elements [first, stop), filled by one call of _fill.fill_flat (every element's value is
a function of its flat index: nothing depends on where the window falls) with the
tensor's parameters, computed once per tensor (prepare); its zero_rows are zeroed by
flat index. Guarantee: the bytes are those of the whole tensors laid out by _format,
whatever the window size, the thread count, or O_DIRECT or mapped pages.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import math
import mmap
import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from . import _checks, _fill, computed, initializers, runtime, structured
from ._format import FileLayout
from .specs import TensorSpec
from .streams import stream_id

DEFAULT_WINDOW = 64 << 20  # bytes generated and written at a time
BLOCK = 4096  # windows are whole blocks: O_DIRECT's alignment and mmap's page size
_MADV_POPULATE_WRITE = 23  # Linux >= 5.14: fault a window in with one call
_HOST_CHUNK = 1 << 18  # elements of a literal or computed value made at a time (~10 MB)
DIRECT_IO = True  # write with O_DIRECT where the file system allows it (else mmap windows)


class _Literal(NamedTuple):
    """A constant's literal array, rounded into the dtype, with as many axes as the tensor;
    period: the flat values' repeating block when the leading axes are broadcast."""

    values: np.ndarray
    period: np.ndarray | None


class Prepared(NamedTuple):
    """What fills a tensor anywhere: computed once per tensor, not per window."""

    # A _core.Params; the float every element holds (exactly a dtype value); a constant's
    # _Literal; or a computed.Formula.
    params: Any
    stream: int  # stream_id(tensor.name)


def prepare(tensor: TensorSpec) -> Prepared:
    init, params = tensor.init, tensor.params
    stream = stream_id(tensor.name)
    if init in computed.FORMULAS:
        return Prepared(computed.FORMULAS[init](**params), stream)
    value = params.get("value")
    if init == "constant" and isinstance(value, (list, tuple)):
        rounded = structured.literal(value, _checks.check_dtype(tensor.dtype), tensor.shape)
        # Leading axes it is broadcast along make the flat values periodic: one period.
        lead = next((axis for axis, size in enumerate(rounded.shape) if size != 1), rounded.ndim)
        period = math.prod(tensor.shape[lead:])
        block = None
        if period <= _HOST_CHUNK:
            block = np.broadcast_to(rounded.reshape(rounded.shape[lead:]), tensor.shape[lead:])
            block = block.reshape(-1)
        return Prepared(_Literal(rounded, block), stream)
    return Prepared(initializers.parameters(init, tensor.shape, tensor.dtype, params), stream)


def fill_piece(
    tensor: TensorSpec,
    prepared: Prepared,
    seed: int,
    view: np.ndarray,
    first: int,
    threads: int,
) -> None:
    """The tensor's flat elements [first, first + view.size) into the 1-D `view`: its
    initializer's values at those indices, then its zero_rows. Every piece of every
    window, and every chunk verify regenerates, is made here (tests patch it)."""
    params = prepared.params
    if isinstance(params, float):  # zeros, ones, constant
        view[...] = params
    elif isinstance(params, (_Literal, computed.Formula)):
        # Values made on the host, a bounded chunk at a time (their index arithmetic and
        # binary64 temporaries take ~40 bytes an element).
        for begin in range(0, view.size, _HOST_CHUNK):
            chunk = view[begin : begin + _HOST_CHUNK]
            at = first + begin
            if isinstance(params, _Literal) and params.period is not None:
                start = at % params.period.size
                rolled = np.concatenate([params.period[start:], params.period[:start]])
                chunk[...] = np.resize(rolled, chunk.size)
            elif isinstance(params, _Literal):  # a constant's literal, broadcast
                index = _literal_index(tensor.shape, params.values.shape, at, chunk.size)
                chunk[...] = params.values.reshape(-1)[index]
            else:
                words = initializers.random_bits(
                    chunk.size, seed, stream=prepared.stream, offset=at, threads=threads
                )
                chunk[...] = computed.evaluate(params, words, view.dtype)
    else:
        _fill.fill_flat(view, prepared.params, seed, prepared.stream, first, threads)
    for begin, end in zeroed_spans(tensor.shape, tensor.zero_rows, first, first + view.size):
        view[begin - first : end - first] = 0


def _literal_index(
    shape: tuple[int, ...], literal: tuple[int, ...], first: int, count: int
) -> np.ndarray:
    """For the flat elements first .. first + count - 1 of a tensor of `shape`, the flat
    index of the element of a C-contiguous `literal` (as many axes, each the same size
    or 1) that broadcasting gives each of them."""
    flat = np.arange(first, first + count, dtype=np.int64)
    source = np.zeros(count, dtype=np.int64)
    stride = 1
    for size, literal_size in zip(reversed(shape), reversed(literal), strict=True):
        flat, position = np.divmod(flat, size)
        if literal_size != 1:
            source += position * stride
        stride *= literal_size
    return source


def zeroed_spans(
    shape: tuple[int, ...], zero_rows: tuple[int, ...], first: int, stop: int
) -> Iterator[tuple[int, int]]:
    """The flat ranges of the zeroed rows inside [first, stop): row r of axis 0 covers the
    flat elements [r * inner, (r + 1) * inner), inner being the product of the other axes."""
    inner = math.prod(shape[1:])
    for row in zero_rows:
        begin, end = max(first, row * inner), min(stop, (row + 1) * inner)
        if begin < end:
            yield begin, end


def fill_file(
    fd: int,
    layout: FileLayout,
    seed: int,
    window: int,
    threads: int | None,
    advance: Callable[[int], None],
) -> None:
    """The file open as `fd` (its size reserved) filled with `layout`'s bytes: with
    O_DIRECT where the file system allows it (and DIRECT_IO), else through mapped pages.
    advance(n) is told of every n bytes done; threads=None: the process default."""
    threads = runtime.resolve_threads(threads)
    prepared = {entry.tensor.name: prepare(entry.tensor) for entry in layout.entries}
    if not (DIRECT_IO and _fill_direct(fd, layout, prepared, seed, window, threads, advance)):
        _fill_mapped(fd, layout, prepared, seed, window, threads, advance)


def _fill_window(
    layout: FileLayout,
    prepared: dict[str, Prepared],
    seed: int,
    buffer: np.ndarray,
    begin: int,
    threads: int,
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
        view = buffer[lo - begin : hi - begin].view(dtype)
        fill_piece(tensor, prepared[tensor.name], seed, view, first, threads)


def _fill_direct(
    fd: int,
    layout: FileLayout,
    prepared: dict[str, Prepared],
    seed: int,
    window: int,
    threads: int,
    advance: Callable[[int], None],
) -> bool:
    """Fills the file with O_DIRECT writes of whole windows from two reused, aligned
    buffers (generation of one overlaps the write of the other): no page cache, whose
    fresh pages can cost more than the disk. False where the file system refuses
    O_DIRECT (tmpfs), before anything was written."""
    if not hasattr(os, "O_DIRECT"):
        return False
    try:
        direct = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_DIRECT)
    except OSError:
        return False
    size = layout.size
    pages = [memoryview(mmap.mmap(-1, window)) for _ in range(2)]  # page-aligned, as O_DIRECT needs
    buffers = [np.frombuffer(page, dtype=np.uint8) for page in pages]
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as writer:
            pending: concurrent.futures.Future[int] | None = None
            for k, begin in enumerate(range(0, size, window)):
                length = min(window, size - begin)
                buffer = buffers[k % 2]
                _fill_window(layout, prepared, seed, buffer[:length], begin, threads)
                padded = -(-length // BLOCK) * BLOCK  # O_DIRECT writes whole blocks
                buffer[length:padded] = 0
                if pending is not None:
                    pending.result()
                if k == 0:
                    try:
                        os.pwrite(direct, pages[k % 2][:padded], begin)
                    except OSError as error:
                        if error.errno == errno.EINVAL:
                            return False
                        raise
                    pending = None
                else:
                    pending = writer.submit(os.pwrite, direct, pages[k % 2][:padded], begin)
                advance(length)
            if pending is not None:
                pending.result()
    finally:
        os.close(direct)
    os.ftruncate(fd, size)  # the last block's padding
    return True


def _fill_mapped(
    fd: int,
    layout: FileLayout,
    prepared: dict[str, Prepared],
    seed: int,
    window: int,
    threads: int,
    advance: Callable[[int], None],
) -> None:
    """Fills the file in place through its own pages, mapped a window at a time (for file
    systems that refuse O_DIRECT)."""
    size = layout.size
    for begin in range(0, size, window):
        length = min(window, size - begin)
        mapped = mmap.mmap(fd, length, offset=begin)
        try:
            with contextlib.suppress(OSError, ValueError):
                mapped.madvise(_MADV_POPULATE_WRITE)
            buffer = np.frombuffer(mapped, np.uint8)
            _fill_window(layout, prepared, seed, buffer, begin, threads)
        finally:
            # N.B. after an error its traceback still holds a view: the mapping then
            # goes when the traceback does, and the error is not masked.
            with contextlib.suppress(BufferError):
                mapped.close()
        with contextlib.suppress(OSError):  # start writeback now; keeps the cache small
            os.posix_fadvise(fd, begin, length, os.POSIX_FADV_DONTNEED)
        advance(length)
