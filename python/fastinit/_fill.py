"""Writing outputs: the one module that allocates, borrows `out=` and calls the core's fills.

Callers (initializers.py, structured.py) check their arguments and compute what to
write: the Params of a transform, constants along strided lines, or values computed
on the host. This module then
1. picks the destination: the host (a new NumPy array, `out=` a NumPy array or
   ndarray subclass, or a host DLPack tensor) or a CUDA device (a new CudaArray, or
   `out=` a CUDA DLPack tensor);
2. checks `out`, or the byte count of a new output, before anything is allocated or
   written;
3. calls the core, which releases the GIL while it fills (_core.fill*, _core.cuda_*).
Nothing here decides which values a call produces: bits come from the core alone.
A complex output is filled as its real (*shape, 2) view (_sample_complex).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import ml_dtypes
import numpy as np

from . import _core, cuda, dlpack, dtypes

_INDEX_LIMIT = 1 << 63  # element counts and byte sizes must fit in int64
_UINT32 = np.dtype(np.uint32)
# Raw words (random_bits) take no transform; the core still wants a Params value.
_WORDS = _core.uniform_params(-1.0, 1.0)
# A CUDA fill walks the output's rows with this many axes at most (cuda/kernels.cu).
_CUDA_REGION_AXES = 33


class Request(NamedTuple):
    """A checked call: which elements of which tensor, in which dtype, where."""

    shape: tuple[int, ...]  # the full, virtual tensor
    seed: int
    stream: int
    dtype: np.dtype  # an output dtype, or uint32 for raw words
    start: tuple[int, ...]  # the region to write
    extent: tuple[int, ...]  # `shape` itself (the same object) when the region is all of it
    threads: int
    device: int | None  # cuda.check_device's answer: None (not given), HOST or an ordinal


def output_type(dtype: np.dtype) -> Any:
    """The core's OutputType of a checked output dtype (uint32: raw stream words)."""
    if dtype == _UINT32:
        return _core.OutputType.uint32
    return dtypes.BY_NUMPY[dtype].core


def check_nbytes(shape: tuple[int, ...], dtype: np.dtype) -> None:
    """OverflowError when an output of `shape` and `dtype` would need 2^63 bytes or more
    (for an empty shape, as its nonzero axes would: NumPy refuses those too)."""
    count = math.prod(shape) or math.prod(dim for dim in shape if dim)
    if count * dtype.itemsize >= _INDEX_LIMIT:
        raise OverflowError(f"shape {shape} of {dtype.name} needs more than 2^63 - 1 bytes")


# ---------------------------------------------------------------------------
# Sampled values: the region of a tensor that Params define
# ---------------------------------------------------------------------------


def sample(request: Request, params: Any, out: Any, first: int = 0) -> Any:
    """full[region] of the tensor that (request, params) define, in a new array (NumPy or
    CudaArray) or in `out`, which comes back as itself (np.memmap, a torch tensor...).
    `first`: for a request of the whole tensor, the flat index of its first element
    (random_bits' offset; 0 otherwise)."""
    if request.dtype.kind == "c":
        return _sample_complex(request, params, out)
    if not _on_host(request.device, out):
        return _sample_on_device(request, params, out, first)
    if out is not None and not isinstance(out, np.ndarray) and dlpack.is_tensor(out):
        with dlpack.borrow_host(out, request.extent, request.dtype) as view:
            _fill_host(request, params, view, first)
        return out
    target = _host_array(out, request.extent, request.dtype)
    _fill_host(request, params, target, first)
    return target if out is None else out  # an ndarray subclass comes back as itself


def _sample_complex(request: Request, params: Any, out: Any) -> Any:
    """sample() for complex64/complex128: the complex tensor of shape S is the real tensor
    of shape (*S, 2) in the component dtype (real, imaginary parts), which `params` (a
    pair transform, or the normal) define; its region is the region plus the whole last
    axis. Host only: a CUDA device or `out` is refused before anything is allocated."""
    if not _on_host(request.device, out):
        raise ValueError(
            f"dtype: {request.dtype.name} outputs are written on the host only; "
            "device and out must be the CPU"
        )
    real = dtypes.component(request.dtype)
    shape = (*request.shape, 2)
    extent = shape if request.extent is request.shape else (*request.extent, 2)
    pairs = request._replace(shape=shape, dtype=real, start=(*request.start, 0), extent=extent)
    if out is not None and not isinstance(out, np.ndarray) and dlpack.is_tensor(out):
        with dlpack.borrow_host(out, request.extent, request.dtype) as view:
            _fill_host(pairs, params, _pairs_view(view, real), 0)
        return out
    target = _host_array(out, request.extent, request.dtype)
    _fill_host(pairs, params, _pairs_view(target, real), 0)
    return target if out is None else out


def _pairs_view(array: np.ndarray, real: np.dtype) -> np.ndarray:
    """A checked C-contiguous complex array as its (*shape, 2) real view (same memory)."""
    return array.reshape(-1).view(real).reshape(*array.shape, 2)


def random_words(request: Request, offset: int) -> Any:
    """Words offset .. offset + n - 1 of the stream, for a request of shape (n,), uint32."""
    return sample(request, _WORDS, None, offset)


def region_words(request: Request) -> Any:
    """The stream words of the request's region (word i for element i of the full
    tensor), as uint32 on the host: what a value computed from them starts from."""
    return sample(request._replace(dtype=_UINT32, device=None), _WORDS, None)


def fill_flat(
    out: np.ndarray, params: Any, seed: int, stream: int, first: int, threads: int
) -> None:
    """Fills `out`, a writable C-contiguous host array of an output dtype (any shape), with
    the flat elements first .. first + out.size - 1 of the tensor that (seed, stream,
    params) define, on `threads` threads with the GIL released. The bits equal those of
    the whole tensor at those flat indices, whatever its shape and however it is cut."""
    if out.size:
        _core.fill_range(out, output_type(out.dtype), params, seed, stream, first, threads)


def _fill_host(request: Request, params: Any, target: np.ndarray, first: int) -> None:
    """Fills `target`, a checked plain ndarray of the request's extent and dtype."""
    if not target.size:
        return
    code = output_type(request.dtype)
    if request.extent is request.shape:  # the whole tensor: elements first, first + 1, ...
        _core.fill_range(target, code, params, request.seed, request.stream, first, request.threads)
    else:
        _core.fill(
            target,
            code,
            params,
            request.seed,
            request.stream,
            request.shape,
            request.start,
            request.threads,
        )


def _sample_on_device(request: Request, params: Any, out: Any, first: int) -> Any:
    """_sample for CUDA: a new CudaArray, or a CUDA tensor filled in place."""
    target = _cuda_target(out, request.device, request.extent, request.dtype)
    try:
        if math.prod(request.extent):
            code = int(output_type(request.dtype))
            if request.extent is request.shape:
                _core.cuda_fill_range(
                    target.memory,
                    target.stream,
                    code,
                    params,
                    request.seed,
                    request.stream,
                    first,
                    request.extent,
                )
            else:
                _core.cuda_fill(
                    target.memory,
                    target.stream,
                    code,
                    params,
                    request.seed,
                    request.stream,
                    request.shape,
                    request.start,
                    request.extent,
                )
    finally:
        target.release()
    return target.result


# ---------------------------------------------------------------------------
# Structured values: constants along strided lines, values computed on the host
# ---------------------------------------------------------------------------


class Strided(NamedTuple):
    """`length` elements of the flat output, start, start + stride, ..., set to value."""

    value: Any  # already rounded into the dtype (round_once)
    start: int
    stride: int
    length: int


def write_strided(
    shape: tuple[int, ...], dtype: np.dtype, out: Any, device: int | None, steps: list[Strided]
) -> Any:
    """A new array of `shape` (or `out`, checked) on the host or a CUDA device, with
    `steps` applied in order; every element must be covered by some step."""
    if _on_host(device, out):
        with _host_target(out, shape, dtype) as array:  # a plain ndarray
            flat = array.reshape(-1)
            for step in steps:
                flat[step.start : step.start + step.stride * step.length : step.stride] = step.value
        return array if out is None else out
    target = _cuda_target(out, device, shape, dtype)
    try:
        code = int(output_type(dtype))
        bits_type = np.dtype(f"u{dtype.itemsize}")
        for step in steps:
            bits = int(np.asarray(step.value, dtype=dtype).view(bits_type))
            _core.cuda_fill_strided(
                target.memory,
                target.stream,
                code,
                shape,
                bits,
                step.start,
                step.stride,
                step.length,
            )
    finally:
        target.release()
    return target.result


def write_values(
    shape: tuple[int, ...],
    dtype: np.dtype,
    out: Any,
    device: int | None,
    compute: Callable[[], np.ndarray],
) -> Any:
    """A new array of `shape` (or `out`, checked first) holding compute(), a C-contiguous
    host array of `shape` and `dtype`; on CUDA it is copied to the device once.
    compute() runs only after the output is checked, and not for an empty one."""
    if _on_host(device, out):
        with _host_target(out, shape, dtype) as array:  # a plain ndarray
            if array.size:
                array[...] = compute()
        return array if out is None else out
    target = _cuda_target(out, device, shape, dtype)
    try:
        if math.prod(shape):
            values = np.ascontiguousarray(compute(), dtype=dtype)
            _core.cuda_copy_to_device(target.memory, target.stream, int(output_type(dtype)), values)
    finally:
        target.release()
    return target.result


def round_once(value: float, dtype: np.dtype) -> Any:
    """`value` rounded to nearest-even in dtype with a single rounding.

    ml_dtypes casts float64 to bfloat16 through float32, and that double rounding
    can go wrong at a bfloat16 midpoint. Rounding to float32 "to odd" first (an
    inexact result keeps its lowest bit set) makes the second rounding exact.
    """
    if dtype != np.dtype(ml_dtypes.bfloat16):
        return dtype.type(value)
    narrow = np.float32(value)
    if float(narrow) != value and not narrow.view(np.uint32) & 1:
        toward = np.float32(np.inf if value > float(narrow) else -np.inf)
        narrow = np.nextafter(narrow, toward)
    return dtype.type(narrow)


def round_all(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """round_once of every element of a float64 array (bfloat16 through float32 rounded
    to odd, so that the second rounding is exact)."""
    if dtype != np.dtype(ml_dtypes.bfloat16):
        return values.astype(dtype)
    narrow = values.astype(np.float32)
    inexact = (narrow.astype(np.float64) != values) & ((narrow.view(np.uint32) & 1) == 0)
    toward = np.where(values > narrow, np.float32(np.inf), np.float32(-np.inf))
    narrow[inexact] = np.nextafter(narrow[inexact], toward[inexact])
    return narrow.astype(dtype)


# ---------------------------------------------------------------------------
# Destinations
# ---------------------------------------------------------------------------


def _on_host(device: int | None, out: Any) -> bool:
    """Whether a fill for `device` (cuda.check_device's answer) into `out` runs on the host."""
    if device is not None and device != cuda.HOST:
        return False
    if out is None or isinstance(out, np.ndarray) or not dlpack.is_tensor(out):
        return True
    kind, ordinal = dlpack.device_of(out)
    if kind not in dlpack.CUDA_DEVICES:
        return True
    if device == cuda.HOST:
        raise ValueError(f"out is on cuda:{ordinal}, but device is 'cpu'")
    return False


def _host_array(out: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The array to fill: a new one of `shape` and `dtype`, or `out` after checks.

    `out` may be any ndarray subclass (np.memmap, say) over writable C-contiguous
    memory; what comes back is then a plain ndarray view of that memory, so that
    indexing and the core see the memory and not the subclass's behaviour.
    """
    if out is None:
        check_nbytes(shape, dtype)
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a NumPy array, got {type(out).__name__}")
    array = out if type(out) is np.ndarray else out.view(np.ndarray)
    if array.dtype != dtype:
        raise ValueError(f"out has dtype {array.dtype}, but dtype is {dtype}")
    if array.shape != shape:
        raise ValueError(f"out has shape {array.shape}, expected {shape}")
    if not array.flags.writeable:
        raise ValueError("out is read-only")
    if not array.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    return array


@contextlib.contextmanager
def _host_target(out: Any, shape: tuple[int, ...], dtype: np.dtype) -> Iterator[np.ndarray]:
    """A NumPy array to fill for `out` on the host: a new one, `out` itself, or a view of
    a host DLPack tensor that goes back to its producer when the block ends."""
    if out is None or isinstance(out, np.ndarray) or not dlpack.is_tensor(out):
        yield _host_array(out, shape, dtype)
        return
    with dlpack.borrow_host(out, shape, dtype) as view:
        yield view


class _CudaTarget(NamedTuple):
    """Device memory a fill writes, on which stream, and what the caller returns."""

    memory: Any  # what the _core.cuda_* calls write: a DLPackTensor or a DeviceMemory
    device: int
    stream: int  # a cudaStream_t value
    result: Any  # a new CudaArray, or `out`
    borrowed: bool  # memory is out's, to be handed back to its producer
    wait: bool  # the producer cannot be told when the fill is done: wait for it

    def release(self) -> None:
        """After the fill was enqueued (or failed): give `out` back to its producer."""
        try:
            if self.wait:
                _core.cuda_synchronize(self.device, self.stream)
        finally:
            if self.borrowed:
                self.memory.release()


def _cuda_target(
    out: Any, device: int | None, shape: tuple[int, ...], dtype: np.dtype
) -> _CudaTarget:
    """The CUDA memory a fill writes: a new CudaArray on `device`, or `out` (checked)."""
    if sum(dim > 1 for dim in shape) > _CUDA_REGION_AXES:
        raise ValueError(
            f"shape: CUDA fills take outputs with at most {_CUDA_REGION_AXES} axes longer than 1"
        )
    if out is None:
        assert device is not None and device != cuda.HOST  # _on_host said CUDA
        check_nbytes(shape, dtype)
        array, memory = cuda.new_array(device, shape, dtype)
        return _CudaTarget(memory, device, dlpack.LEGACY_STREAM, array, False, False)
    if isinstance(out, np.ndarray):
        raise ValueError(f"out is a NumPy array in host memory, but device is cuda:{device}")
    if not dlpack.is_tensor(out):
        raise TypeError(
            f"out must be a NumPy array or a tensor implementing DLPack, got {type(out).__name__}"
        )
    kind, _ = dlpack.device_of(out)
    if kind not in dlpack.CUDA_DEVICES:
        raise ValueError(f"out is on DLPack device type {kind}, but device is cuda:{device}")
    count = cuda.require_cuda("out")
    lent = dlpack.borrow_cuda(out, count, device, shape, dtype)
    return _CudaTarget(lent.tensor, lent.device, lent.stream, out, True, lent.wait)
