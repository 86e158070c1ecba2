"""Devices: where a fill writes, and the CUDA array that device="cuda" returns.

A sampler writes into one of:
- a NumPy array (the default, or `out=` a NumPy array), on the host;
- a new CudaArray (device="cuda" or "cuda:N"), filled on the legacy default
  stream of its device; its __dlpack__ makes a consumer's stream wait for that;
- any CUDA tensor that speaks DLPack (`out=`: torch, CuPy, JAX, ...), filled in
  place on the stream its library has current (torch/CuPy; the legacy default
  stream for other producers), so the library's next operation sees the values.

The CUDA runtime is linked into the extension statically: importing fastinit never
needs a GPU or a driver; cuda_status() says whether kernels can run and why not.

N.B. a DLPack producer's methods are foreign code: whatever they raise or return, a bad
`out` becomes a TypeError or ValueError naming `out`, before anything is written.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import operator
import sys
from collections.abc import Iterator
from typing import Any, NamedTuple

import ml_dtypes
import numpy as np

from . import _checks, _core

# DLPack's device types and type codes (dlpack.h), and our dtypes in those terms.
DLPACK_CPU = 1
DLPACK_CUDA = 2
DLPACK_CUDA_MANAGED = 13
_DLPACK_TYPES = {
    np.dtype(np.float32): (2, 32),
    np.dtype(np.float64): (2, 64),
    np.dtype(np.float16): (2, 16),
    np.dtype(ml_dtypes.bfloat16): (4, 16),
    np.dtype(np.uint32): (1, 32),
}
_DTYPE_OF_DLPACK = {code: dtype for dtype, code in _DLPACK_TYPES.items()}
_DTYPE_NAMES = ", ".join(dtype.name for dtype in _DLPACK_TYPES)
_LEGACY_STREAM = 0  # cudaStream_t of the legacy default stream
HOST = -1  # check_device's answer for device="cpu"
# A CUDA fill walks the output's rows with this many axes at most (cuda/kernels.cu).
_CUDA_REGION_AXES = 33
# How a stream is named in the DLPack protocol: 1 is the legacy default stream.
_DLPACK_LEGACY_STREAM = 1
# Pinned host memory (torch's pin_memory()): filled on the host, as CPU memory is.
_DLPACK_CUDA_HOST = 3
# The type of a PyCapsule (types.CapsuleType only exists from Python 3.13 on).
_CAPSULE = type(datetime.datetime_CAPI)


class CudaStatus(NamedTuple):
    available: bool
    device_count: int
    reason: str  # why CUDA is unavailable; "" when it is available


def cuda_status() -> CudaStatus:
    """Whether fastinit can run CUDA kernels here, on how many devices, and if not, why."""
    return CudaStatus(*_core.cuda_status())


def cuda_available() -> bool:
    """True when fastinit was built with CUDA and a device and driver are present."""
    return cuda_status().available


def _require_cuda(argument: str) -> int:
    status = cuda_status()
    if not status.available:
        raise RuntimeError(f"{argument}: CUDA is not available: {status.reason}")
    return status.device_count


def check_device(device: Any) -> int | None:
    """None when not given, HOST for "cpu", the CUDA ordinal for "cuda" (the current
    device) or "cuda:N".

    Also takes objects that print as such (torch.device).
    """
    if device is None:
        return None
    if isinstance(device, str):
        text = device
    elif type(device).__name__ == "device":  # torch.device, without importing torch
        text = str(device)
    else:
        raise TypeError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {type(device).__name__}")
    if text in ("cpu", "cpu:0"):
        return HOST
    index = text[5:] if text.startswith("cuda:") else None
    if text != "cuda" and not (index and index.isascii() and index.isdigit()):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    count = _require_cuda("device")
    ordinal = _core.cuda_current_device() if index is None else int(index)
    if ordinal >= count:
        raise ValueError(f"device {device!r} does not exist: this machine has {count} CUDA devices")
    return ordinal


def _export_options(producer: Any, max_version: Any, dl_device: Any, copy: Any) -> bool:
    """Checks __dlpack__'s dl_device and copy for a producer that exports its own memory
    where it is; returns whether the consumer reads versioned (1.x) capsules."""
    if dl_device is not None and _pair("dl_device", dl_device) != producer.__dlpack_device__():
        raise BufferError(f"{type(producer).__name__} cannot be exported to device {dl_device}")
    if copy is not None and not isinstance(copy, bool):
        raise TypeError(f"copy must be a bool or None, got {type(copy).__name__}")
    if copy:
        raise BufferError(
            f"{type(producer).__name__} exports its own memory; copy=True is not supported"
        )
    return max_version is not None and _pair("max_version", max_version)[0] >= 1


def _pair(name: str, value: Any) -> tuple[int, int]:
    """A DLPack (device type, id) or (major, minor) version: two integers."""
    try:
        first, second = value
        return _dlpack_integer(first), _dlpack_integer(second)
    except Exception as error:
        raise TypeError(f"{name} must be a pair of integers, got {value!r:.60}") from error


class CudaArray:
    """A C-contiguous array in CUDA device memory; what samplers return for device="cuda".

    Hand it to any DLPack consumer without a copy — torch.from_dlpack(x),
    cupy.from_dlpack(x), jax.dlpack.from_dlpack(x) — or through
    __cuda_array_interface__ (CuPy, Numba; not for bfloat16, which that protocol
    cannot name). The memory is freed when the array and every consumer's view of
    it are gone. to_numpy() copies it to the host.
    """

    __slots__ = ("_memory", "shape", "dtype")

    def __init__(self, memory: Any, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self._memory = memory
        self.shape = shape
        self.dtype = dtype

    @property
    def device(self) -> str:
        return f"cuda:{self._memory.device}"

    @property
    def device_id(self) -> int:
        return self._memory.device

    @property
    def ptr(self) -> int:
        """Address of the first element in device memory."""
        return self._memory.ptr

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"CudaArray(shape={self.shape}, dtype={self.dtype.name}, device={self.device!r})"

    def __dlpack_device__(self) -> tuple[int, int]:
        return (DLPACK_CUDA, self._memory.device)

    def __dlpack__(
        self,
        *,
        stream: int | None = None,
        max_version: tuple[int, int] | None = None,
        dl_device: tuple[int, int] | None = None,
        copy: bool | None = None,
    ) -> Any:
        """A DLPack capsule of this array (versioned when max_version allows 1.x).

        `stream` is the consumer's: it is made to wait for the fill (None or 1: the
        legacy default stream, on which the fill ran; -1: no synchronization).
        """
        versioned = _export_options(self, max_version, dl_device, copy)
        if stream is not None and type(stream) is not int:
            raise TypeError(f"stream must be an int or None, got {type(stream).__name__}")
        if stream is not None and (stream == 0 or stream < -1):
            raise BufferError(f"stream={stream} names no CUDA stream (DLPack: 1 is the legacy one)")
        if stream not in (None, -1, _DLPACK_LEGACY_STREAM):
            _core.cuda_order_streams(self._memory.device, _LEGACY_STREAM, stream)
        code, bits = _DLPACK_TYPES[self.dtype]
        return self._memory.dlpack(list(self.shape), code, bits, versioned)

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        if self.dtype == np.dtype(ml_dtypes.bfloat16):
            raise AttributeError(
                "__cuda_array_interface__ has no bfloat16 type; use DLPack (__dlpack__)"
            )
        return {
            "shape": self.shape,
            "typestr": self.dtype.str,
            "data": (self._memory.ptr, False),
            "strides": None,
            "version": 3,
            "stream": _DLPACK_LEGACY_STREAM,
        }

    def to_numpy(self) -> np.ndarray:
        """A host copy (waits for the fill)."""
        host = np.empty(self.shape, dtype=self.dtype)
        _core.cuda_copy_to_host(self._memory.device, self._memory.ptr, host)
        return host


def on_host(device: int | None, out: Any) -> bool:
    """Whether a fill for `device` (check_device's answer) into `out` runs on the host."""
    if device is not None and device != HOST:
        return False
    if out is None or isinstance(out, np.ndarray) or not is_dlpack_tensor(out):
        return True
    kind, ordinal = dlpack_device(out)
    if kind not in (DLPACK_CUDA, DLPACK_CUDA_MANAGED):
        return True
    if device == HOST:
        raise ValueError(f"out is on cuda:{ordinal}, but device is 'cpu'")
    return False


def device_target(out: Any, device: int | None, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """The CUDA memory a fill writes: a new CudaArray on `device`, or `out` (checked)."""
    if sum(dim > 1 for dim in shape) > _CUDA_REGION_AXES:
        raise ValueError(
            f"shape: CUDA fills take outputs with at most {_CUDA_REGION_AXES} axes longer than 1"
        )
    if out is None:
        _checks.check_nbytes(shape, dtype)
        return new_cuda_array(device, shape, dtype)
    if isinstance(out, np.ndarray):
        raise ValueError(f"out is a NumPy array in host memory, but device is cuda:{device}")
    if not is_dlpack_tensor(out):
        raise TypeError(
            f"out must be a NumPy array or a tensor implementing DLPack, got {type(out).__name__}"
        )
    kind, _ = dlpack_device(out)
    if kind not in (DLPACK_CUDA, DLPACK_CUDA_MANAGED):
        raise ValueError(f"out is on DLPack device type {kind}, but device is cuda:{device}")
    return cuda_out(out, device, shape, dtype)


@contextlib.contextmanager
def host_out(out: Any, shape: tuple[int, ...], dtype: np.dtype) -> Iterator[np.ndarray]:
    """A NumPy array to fill for `out`: itself, or a view of a host DLPack tensor (a CPU
    torch tensor, say) that is handed back to its producer when the block ends."""
    if out is None or isinstance(out, np.ndarray) or not is_dlpack_tensor(out):
        yield _checks.prepare_out(out, shape, dtype)
        return
    kind, _ = dlpack_device(out)
    if kind not in (DLPACK_CPU, _DLPACK_CUDA_HOST):  # pinned memory is host memory too
        raise ValueError(
            f"out is on DLPack device type {kind}; fastinit fills host and CUDA memory"
        )
    borrowed = _core.DLPackTensor(_take_capsule(out, None))
    try:
        _check_borrowed(borrowed, shape, dtype, (DLPACK_CPU, _DLPACK_CUDA_HOST), None)
        yield borrowed.host_array(dtype)
    finally:
        borrowed.release()


class HostDLPack:
    """A host array as a DLPack producer, bfloat16 included (NumPy cannot export
    ml_dtypes.bfloat16 itself). What fastinit.as_dlpack returns; it keeps the array
    alive until every consumer has let go."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __dlpack_device__(self) -> tuple[int, int]:
        return (DLPACK_CPU, 0)

    def __dlpack__(
        self,
        *,
        stream: int | None = None,
        max_version: tuple[int, int] | None = None,
        dl_device: tuple[int, int] | None = None,
        copy: bool | None = None,
    ) -> Any:
        if stream is not None and stream != -1:
            raise BufferError(f"a host array has no CUDA stream to order; got stream={stream}")
        versioned = _export_options(self, max_version, dl_device, copy)
        if not versioned and not self.array.flags.writeable:
            raise BufferError("a read-only array needs a DLPack 1.x consumer (max_version)")
        code, bits = _DLPACK_TYPES[self.array.dtype]
        return _core.export_host(self.array, code, bits, versioned)


def as_dlpack(array: Any) -> HostDLPack:
    """`array` (a C-contiguous NumPy array of a fastinit dtype) as a DLPack producer:
    torch.from_dlpack(fastinit.as_dlpack(w)) shares w's memory, bfloat16 included."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"array must be a NumPy array, got {type(array).__name__}")
    if array.dtype not in _DLPACK_TYPES:
        raise ValueError(f"array has dtype {array.dtype}; as_dlpack exports {_DTYPE_NAMES}")
    if not array.flags.c_contiguous:
        raise ValueError("array must be C-contiguous")
    return HostDLPack(array)


class CudaTarget(NamedTuple):
    """Device memory a fill writes, on which stream, and what the sampler returns."""

    device: int
    stream: int  # cudaStream_t value
    pointer: int
    result: Any
    borrowed: Any  # a DLPack tensor to give back after the fill, or None
    # The producer's library cannot be told when the fill is done (not torch or
    # CuPy, whose current stream the fill used): wait for it before returning.
    wait: bool = False

    def release(self) -> None:
        """After the fill was enqueued (or failed): give `out` back to its producer."""
        try:
            if self.wait:
                _core.cuda_synchronize(self.device, self.stream)
        finally:
            if self.borrowed is not None:
                self.borrowed.release()


def new_cuda_array(device: int, shape: tuple[int, ...], dtype: np.dtype) -> CudaTarget:
    nbytes = math.prod(shape) * dtype.itemsize
    memory = _core.DeviceMemory(device, nbytes)
    return CudaTarget(device, _LEGACY_STREAM, memory.ptr, CudaArray(memory, shape, dtype), None)


def is_dlpack_tensor(out: Any) -> bool:
    """Whether `out` offers the DLPack protocol; TypeError if it offers half of it."""
    has_device = _offers(out, "__dlpack_device__")
    has_export = _offers(out, "__dlpack__")
    if has_device != has_export:
        present, missing = ("__dlpack_device__", "__dlpack__")[:: 1 if has_device else -1]
        raise TypeError(
            f"out ({type(out).__name__}) has {present} but no {missing}: a DLPack tensor needs both"
        )
    return has_device


def _offers(out: Any, name: str) -> bool:
    try:
        return getattr(out, name, None) is not None
    except Exception:  # a broken attribute counts as offered: calling it reports the error
        return True


def dlpack_device(out: Any) -> tuple[int, int]:
    """out.__dlpack_device__(), checked: (device type, device id), two integers >= 0."""
    if _is_torch_tensor(out):
        _check_torch_out(out)
    producer = type(out).__name__
    try:
        answer = out.__dlpack_device__()
    except MemoryError:
        raise
    except Exception as error:
        raise ValueError(
            f"out: {producer}.__dlpack_device__() failed: {type(error).__name__}: {error}"
        ) from error
    try:
        device_type, device_id = answer
        device_type, device_id = _dlpack_integer(device_type), _dlpack_integer(device_id)
    except Exception as error:
        raise TypeError(
            f"out: {producer}.__dlpack_device__() must return two integers "
            f"(device type, device id), got {answer!r:.100}"
        ) from error
    if device_type < 1 or device_id < 0:
        raise ValueError(
            f"out: {producer}.__dlpack_device__() returned ({device_type}, {device_id}), "
            "which names no DLPack device"
        )
    return device_type, device_id


def _dlpack_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("a bool is not a device number")
    return operator.index(value)


def _check_torch_out(out: Any) -> None:
    """Refuses torch tensors whose memory does not hold their values as a dense array,
    before asking torch to export them (it would raise BufferError, or, for a negated
    view, export memory whose values read back negated)."""
    torch = sys.modules["torch"]
    if out.is_nested or out.layout != torch.strided:
        layout = "nested" if out.is_nested else str(out.layout)
        raise ValueError(
            f"out has layout {layout}; fastinit fills dense tensors (torch.strided) only"
        )
    if out.is_quantized:
        raise ValueError(f"out is a quantized tensor ({out.dtype}), which fastinit does not write")
    if out.is_conj() or out.is_neg():
        kind, resolve = (
            ("conjugate", "resolve_conj") if out.is_conj() else ("negative", "resolve_neg")
        )
        raise ValueError(
            f"out is a view with the {kind} bit set: its memory holds other values than it "
            f"shows; fill a plain tensor (out.{resolve}() makes one)"
        )
    if out.device.type not in ("cpu", "cuda"):
        raise ValueError(
            f"out is on torch device {out.device}; fastinit fills cpu and cuda tensors"
        )


def cuda_out(out: Any, device: int | None, shape: tuple[int, ...], dtype: np.dtype) -> CudaTarget:
    """`out`, a CUDA tensor exposing DLPack, checked and borrowed for an in-place fill."""
    count = _require_cuda("out")
    kind, ordinal = dlpack_device(out)
    if ordinal >= count:
        raise ValueError(f"out is on cuda:{ordinal}, which does not exist: {count} CUDA devices")
    if device is not None and device != ordinal:
        raise ValueError(f"out is on cuda:{ordinal}, but device is cuda:{device}")
    stream, exporter, known = _library_stream(out, ordinal)
    with exporter:
        borrowed = _core.DLPackTensor(_take_capsule(out, stream))
    try:
        _check_borrowed(borrowed, shape, dtype, (kind,), ordinal)
    except Exception:
        borrowed.release()
        raise
    return CudaTarget(ordinal, stream, borrowed.data, out, borrowed, wait=not known)


def _is_torch_tensor(out: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(out, torch.Tensor)


def _library_stream(out: Any, ordinal: int) -> tuple[int, Any, bool]:
    """The stream that out's library has current on its device (as a cudaStream_t value),
    a context in which that library exports tensors of that device, and whether the
    library is one whose current stream we know (torch, CuPy)."""
    if _is_torch_tensor(out):
        torch = sys.modules["torch"]
        return torch.cuda.current_stream(ordinal).cuda_stream, torch.cuda.device(ordinal), True
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(out, cupy.ndarray):
        with cupy.cuda.Device(ordinal):
            return cupy.cuda.get_current_stream().ptr, cupy.cuda.Device(ordinal), True
    return _LEGACY_STREAM, contextlib.nullcontext(), False


def _take_capsule(out: Any, stream: int | None) -> Any:
    """out.__dlpack__ for a consumer on CUDA `stream` (None: on the host), versioned
    if the producer offers it."""
    if _is_torch_tensor(out) and out.requires_grad:
        out = out.detach()  # same storage; torch refuses to export a tensor that needs grad
    if stream is None:
        named = None
    else:
        named = _DLPACK_LEGACY_STREAM if stream == _LEGACY_STREAM else stream
    producer = type(out).__name__
    try:
        try:
            capsule = out.__dlpack__(stream=named, max_version=(1, 0))
        except TypeError:  # a producer from before DLPack 1.0
            capsule = out.__dlpack__(stream=named)
    except MemoryError:
        raise
    except TypeError as error:
        raise TypeError(
            f"out: {producer}.__dlpack__(stream={named}) cannot be called: {error}"
        ) from error
    except Exception as error:  # BufferError: the producer refuses this export
        raise ValueError(
            f"out: {producer}.__dlpack__() refused to export it: {type(error).__name__}: {error}"
        ) from error
    if type(capsule) is not _CAPSULE:
        raise TypeError(
            f"out: {producer}.__dlpack__() returned {type(capsule).__name__}, not a DLPack capsule"
        )
    return capsule


def _check_borrowed(
    tensor: Any,
    shape: tuple[int, ...],
    dtype: np.dtype,
    device_types: tuple[int, ...],
    device_id: int | None,
) -> None:
    """The borrowed tensor is what `out` claimed and what the fill writes: on a device of
    `device_types` (and `device_id`, for CUDA), of `dtype` and `shape`, writable, compact."""
    if tensor.device_type not in device_types or device_id not in (None, tensor.device_id):
        raise ValueError(
            f"out: its DLPack capsule is on device ({tensor.device_type}, {tensor.device_id}), "
            "not where its __dlpack_device__() said"
        )
    got = _DTYPE_OF_DLPACK.get((tensor.type_code, tensor.bits))
    if tensor.lanes != 1 or got is None:
        raise ValueError(
            f"out has DLPack type (code {tensor.type_code}, {tensor.bits} bits, "
            f"{tensor.lanes} lanes), which fastinit does not write"
        )
    if got != dtype:
        raise ValueError(f"out has dtype {got.name}, but dtype is {dtype.name}")
    if tuple(tensor.shape) != shape:
        raise ValueError(f"out has shape {tuple(tensor.shape)}, expected {shape}")
    if tensor.read_only:
        raise ValueError("out is read-only")
    if tensor.data == 0 and 0 not in shape:
        raise ValueError("out: its DLPack capsule has no data pointer")
    strides = tensor.strides
    if strides is not None and 0 not in shape and not _row_major(shape, tuple(strides)):
        raise ValueError("out must be C-contiguous")


def _row_major(shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
    """Whether element strides are those of a compact row-major tensor (size-1 axes: any)."""
    expected = 1
    for dim, stride in zip(reversed(shape), reversed(strides), strict=True):
        if dim != 1 and stride != expected:
            return False
        expected *= dim
    return True
