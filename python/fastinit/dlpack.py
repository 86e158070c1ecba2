"""DLPack: borrowing the tensors of other libraries, and lending ours.

Borrowing: `out=` may be any tensor that speaks DLPack (torch, CuPy, JAX, NumPy, ...).
fastinit takes its capsule (versioned when the producer offers it), checks that the
tensor is what the fill writes (device, dtype, shape, row-major and compact,
writable), fills it, and hands it back. A CUDA tensor is exported for, and filled on,
the stream its library has current (torch, CuPy); other producers' tensors are
exported for the legacy default stream and waited for before the call returns.

Lending: fastinit.as_dlpack(array) exports a host array (bfloat16 included, which
NumPy cannot export itself); fastinit.CudaArray exports its device memory (cuda.py).

The device types and type codes come from the vendored dlpack.h through _core;
the dtypes from the one table, dtypes.py.

N.B. a DLPack producer's methods are foreign code: whatever they raise or return, a bad
`out` becomes a TypeError or ValueError naming `out`, before anything is written.
"""

from __future__ import annotations

import contextlib
import datetime
import operator
import sys
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from . import _core, dtypes

# Where a borrowed tensor may live: host memory (pinned memory, torch's pin_memory(),
# is host memory too) or CUDA memory.
HOST_DEVICES = (_core.DLPACK_CPU, _core.DLPACK_CUDA_HOST)
CUDA_DEVICES = (_core.DLPACK_CUDA, _core.DLPACK_CUDA_MANAGED)
LEGACY_STREAM = 0  # the cudaStream_t value of the legacy default stream
LEGACY_STREAM_NAME = 1  # how the DLPack protocol names that stream
# The dtypes that travel through DLPack: the output dtypes (complex too), raw stream words.
_UINT32 = np.dtype(np.uint32)
_TYPE_OF = {row.numpy: row.dlpack for row in (*dtypes.OUTPUT_DTYPES, *dtypes.COMPLEX_DTYPES)} | {
    _UINT32: dtypes.UINT32_DLPACK
}
_DTYPE_OF = {code: dtype for dtype, code in _TYPE_OF.items()}
_DTYPE_NAMES = ", ".join(dtype.name for dtype in _TYPE_OF)
# The type of a PyCapsule (types.CapsuleType only exists from Python 3.13 on).
_CAPSULE = type(datetime.datetime_CAPI)


def type_of(dtype: np.dtype) -> tuple[int, int]:
    """DLPack's (type code, bits) of an output dtype or of uint32."""
    return _TYPE_OF[dtype]


# ---------------------------------------------------------------------------
# Borrowing: out= a producer's tensor
# ---------------------------------------------------------------------------


def is_tensor(out: Any) -> bool:
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


def device_of(out: Any) -> tuple[int, int]:
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
        device_type, device_id = _integer(device_type), _integer(device_id)
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


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("a bool is not a device number")
    return operator.index(value)


@contextlib.contextmanager
def borrow_host(out: Any, shape: tuple[int, ...], dtype: np.dtype) -> Iterator[np.ndarray]:
    """A NumPy view of `out`, a host DLPack tensor (a CPU torch tensor, say) checked to be
    `shape` of `dtype`, handed back to its producer when the block ends."""
    kind, _ = device_of(out)
    if kind not in HOST_DEVICES:
        raise ValueError(
            f"out is on DLPack device type {kind}; fastinit fills host and CUDA memory"
        )
    borrowed = _core.DLPackTensor(_take_capsule(out, None))
    try:
        _check_borrowed(borrowed, shape, dtype, HOST_DEVICES, None)
        yield borrowed.host_array(dtype)
    finally:
        borrowed.release()


class BorrowedCuda(NamedTuple):
    """A CUDA tensor lent by its producer: what to fill, where, and on which stream."""

    tensor: Any  # _core.DLPackTensor; release() hands it back
    device: int
    stream: int  # a cudaStream_t value
    # The producer's library cannot be told when the fill is done (not torch or
    # CuPy, whose current stream the fill used): wait for it before returning.
    wait: bool


def borrow_cuda(
    out: Any, device_count: int, device: int | None, shape: tuple[int, ...], dtype: np.dtype
) -> BorrowedCuda:
    """`out`, a CUDA tensor, checked and borrowed for an in-place fill on one of
    `device_count` devices (`device`, when given)."""
    kind, ordinal = device_of(out)
    if ordinal >= device_count:
        raise ValueError(
            f"out is on cuda:{ordinal}, which does not exist: {device_count} CUDA devices"
        )
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
    return BorrowedCuda(borrowed, ordinal, stream, wait=not known)


def known_torch_types(torch: Any) -> tuple[type, ...]:
    """The torch tensor types whose DLPack export is their own memory: torch.Tensor,
    nn.Parameter and nn.Buffer (where torch has it). Any other subclass may keep its
    values elsewhere: a DTensor exports its global shape with no data at all."""
    buffer = getattr(torch.nn, "Buffer", None)
    extra = (buffer,) if isinstance(buffer, type) else ()
    return (torch.Tensor, torch.nn.Parameter, *extra)


def is_dtensor(out: Any) -> bool:
    """Whether `out` is a torch.distributed DTensor (without importing torch.distributed:
    a DTensor exists only once its module is imported)."""
    module = sys.modules.get("torch.distributed.tensor")
    return module is not None and isinstance(out, module.DTensor)


def _check_torch_out(out: Any) -> None:
    """Refuses torch tensors whose memory does not hold their values as a dense array,
    before asking torch to export them (it would raise BufferError, or, for a negated
    view, export memory whose values read back negated), and tensor subclasses whose
    export may not be their values (a DTensor's has no data)."""
    torch = sys.modules["torch"]
    if type(out) not in known_torch_types(torch):
        if is_dtensor(out):
            raise TypeError(
                "out is a DTensor: its DLPack export has the global shape and no memory, so "
                "out= cannot fill it; fastinit.torch fills each rank's shard with the global "
                "tensor's bits (e.g. fastinit.torch.normal_(out, seed=...))"
            )
        raise TypeError(
            f"out is a {type(out).__name__}, a torch.Tensor subclass fastinit does not know "
            "(its DLPack export may not be its values); out must be a torch.Tensor, "
            "nn.Parameter or nn.Buffer"
        )
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
    return LEGACY_STREAM, contextlib.nullcontext(), False


def _take_capsule(out: Any, stream: int | None) -> Any:
    """out.__dlpack__ for a consumer on CUDA `stream` (None: on the host), versioned
    if the producer offers it."""
    if _is_torch_tensor(out) and out.requires_grad:
        out = out.detach()  # same storage; torch refuses to export a tensor that needs grad
    if stream is None:
        named = None
    else:
        named = LEGACY_STREAM_NAME if stream == LEGACY_STREAM else stream
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
    `device_types` (and `device_id`, for CUDA), of `dtype` and `shape`, writable, compact.
    (The CUDA fills check it again in C++.)"""
    if tensor.device_type not in device_types or device_id not in (None, tensor.device_id):
        raise ValueError(
            f"out: its DLPack capsule is on device ({tensor.device_type}, {tensor.device_id}), "
            "not where its __dlpack_device__() said"
        )
    got = _DTYPE_OF.get((tensor.type_code, tensor.bits))
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


# ---------------------------------------------------------------------------
# Lending: our arrays as DLPack producers
# ---------------------------------------------------------------------------


def export_options(producer: Any, max_version: Any, dl_device: Any, copy: Any) -> bool:
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
        return _integer(first), _integer(second)
    except Exception as error:
        raise TypeError(f"{name} must be a pair of integers, got {value!r:.60}") from error


class HostDLPack:
    """A host array as a DLPack producer, bfloat16 included (NumPy cannot export
    ml_dtypes.bfloat16 itself). What fastinit.as_dlpack returns; it keeps the array
    alive until every consumer has let go."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __dlpack_device__(self) -> tuple[int, int]:
        return (_core.DLPACK_CPU, 0)

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
        versioned = export_options(self, max_version, dl_device, copy)
        if not versioned and not self.array.flags.writeable:
            raise BufferError("a read-only array needs a DLPack 1.x consumer (max_version)")
        code, bits = _TYPE_OF[self.array.dtype]
        return _core.export_host(self.array, code, bits, versioned)


def as_dlpack(array: Any) -> HostDLPack:
    """`array` (a C-contiguous NumPy array of a fastinit dtype) as a DLPack producer:
    torch.from_dlpack(fastinit.as_dlpack(w)) shares w's memory, bfloat16 included."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"array must be a NumPy array, got {type(array).__name__}")
    if array.dtype not in _TYPE_OF:
        raise ValueError(f"array has dtype {array.dtype}; as_dlpack exports {_DTYPE_NAMES}")
    if not array.flags.c_contiguous:
        raise ValueError("array must be C-contiguous")
    return HostDLPack(array)
