"""CUDA: whether kernels can run, which device a call names, and the CudaArray it returns.

device="cuda" / "cuda:N" makes a sampler return a new CudaArray, filled on the legacy
default stream of its device; its __dlpack__ makes a consumer's stream wait for that.
(CUDA tensors given as `out=` are borrowed through DLPack: dlpack.py.)

The CUDA runtime is linked into the extension statically: importing fastinit never
needs a GPU or a driver; cuda_status() says whether kernels can run and why not.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import ml_dtypes
import numpy as np

from . import _core, dlpack

HOST = -1  # check_device's answer for device="cpu"


class CudaStatus(NamedTuple):
    available: bool
    device_count: int
    reason: str  # why CUDA is unavailable; "" when it is available


def cuda_status() -> CudaStatus:
    """Whether fastinit can run CUDA kernels here, on how many devices, and if not, why."""
    return CudaStatus(*_core.query_cuda_status())


def cuda_available() -> bool:
    """True when fastinit was built with CUDA and a device and driver are present."""
    return cuda_status().available


def require_cuda(argument: str) -> int:
    """The number of CUDA devices; RuntimeError naming `argument` when there is no CUDA."""
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
    count = require_cuda("device")
    ordinal = _core.query_current_device() if index is None else int(index)
    if ordinal >= count:
        raise ValueError(f"device {device!r} does not exist: this machine has {count} CUDA devices")
    return ordinal


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
        return (_core.DLPACK_CUDA, self._memory.device)

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
        versioned = dlpack.export_options(self, max_version, dl_device, copy)
        if stream is not None and type(stream) is not int:
            raise TypeError(f"stream must be an int or None, got {type(stream).__name__}")
        if stream is not None and (stream == 0 or stream < -1):
            raise BufferError(f"stream={stream} names no CUDA stream (DLPack: 1 is the legacy one)")
        if stream not in (None, -1, dlpack.LEGACY_STREAM_NAME):
            self._memory.order_consumer(stream)
        code, bits = dlpack.type_of(self.dtype)
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
            "stream": dlpack.LEGACY_STREAM_NAME,
        }

    def to_numpy(self) -> np.ndarray:
        """A host copy (waits for the fill)."""
        host = np.empty(self.shape, dtype=self.dtype)
        self._memory.copy_to_host(host)
        return host


def new_array(device: int, shape: tuple[int, ...], dtype: np.dtype) -> tuple[CudaArray, Any]:
    """A new CudaArray of `shape` and `dtype` on `device`, and its _core.DeviceMemory
    (what a fill writes). The caller has checked that its byte count fits."""
    memory = _core.DeviceMemory(device, math.prod(shape) * dtype.itemsize)
    return CudaArray(memory, shape, dtype), memory
