"""The CUDA entry points check, in C++, the tensor they write (no GPU needed).

_core.cuda_fill, cuda_fill_range, cuda_fill_strided and cuda_copy_to_device take what
they write — a DLPackTensor borrowed from a producer or fastinit's DeviceMemory — and
refuse, with a ValueError naming `out`, anything that is not exactly the output they
write: the wrong DLPack dtype (code, bits or lanes), another shape, strides that are
not row-major and compact, a read-only tensor, memory too small for the extent, a
tensor already handed back, or one not in CUDA memory. Python checks all of it first
(_fill, dlpack.py); these tests call the core directly, as a caller that skipped
Python's checks would. The device check runs last, so host tensors (NumPy's DLPack
export, fastinit.as_dlpack for bfloat16) and a 0-byte DeviceMemory, which needs no
CUDA call, reach every other check on a machine without a GPU.
"""

from __future__ import annotations

import fastinit
import ml_dtypes
import numpy as np
import pytest
from fastinit import _core

pytestmark = pytest.mark.skipif(
    not _core.cuda_compiled, reason="fastinit was built without CUDA: no CUDA entry points"
)

FLOAT32 = int(_core.OutputType.float32)
BFLOAT16 = int(_core.OutputType.bfloat16)
UINT32 = int(_core.OutputType.uint32)
PARAMS = _core.uniform_params(-1.0, 1.0)


def borrowed(array: np.ndarray) -> _core.DLPackTensor:
    """A host array borrowed as the fills borrow a producer's tensor (versioned capsule)."""
    if array.dtype == np.dtype(ml_dtypes.bfloat16):
        return _core.DLPackTensor(fastinit.as_dlpack(array).__dlpack__(max_version=(1, 0)))
    return _core.DLPackTensor(array.__dlpack__(max_version=(1, 0)))


def fill_range(out, type_code, extent):
    _core.cuda_fill_range(out, 0, type_code, PARAMS, 1, 2, 0, list(extent))


def fill_region(out, type_code, extent):
    _core.cuda_fill(out, 0, type_code, PARAMS, 1, 2, [8, 8], [0, 0], list(extent))


def fill_strided(out, type_code, extent):
    _core.cuda_fill_strided(out, 0, type_code, list(extent), 0x3F80, 0, 1, 1)


def upload(out, type_code, extent):
    dtype = {FLOAT32: np.float32, BFLOAT16: ml_dtypes.bfloat16, UINT32: np.uint32}[type_code]
    _core.cuda_copy_to_device(out, 0, type_code, np.zeros(extent, dtype=dtype))


WRITES = {"fill_range": fill_range, "fill": fill_region, "strided": fill_strided, "copy": upload}


@pytest.mark.parametrize("write", sorted(WRITES))
@pytest.mark.parametrize(
    ("array", "type_code", "extent", "match"),
    [
        # dtype: code, bits and lanes against the output type
        (np.zeros((2, 3), np.float64), FLOAT32, (2, 3), r"out: DLPack type \(code 2, 64 bits"),
        (np.zeros((2, 3), np.float32), BFLOAT16, (2, 3), r"out: DLPack type \(code 2, 32 bits"),
        (np.zeros((2, 3), ml_dtypes.bfloat16), FLOAT32, (2, 3), r"out: DLPack type \(code 4"),
        (np.zeros((2, 3), np.int32), UINT32, (2, 3), r"out: DLPack type \(code 0, 32 bits"),
        # shape: exactly the extent written, axis for axis
        (np.zeros((2, 3), np.float32), FLOAT32, (3, 2), r"out: shape \(2, 3\) is not the \(3, 2\)"),
        (np.zeros((6,), np.float32), FLOAT32, (2, 3), r"out: shape \(6,\) is not the \(2, 3\)"),
        (np.zeros((2, 3), np.float32), FLOAT32, (2, 3, 1), r"out: shape"),
        # row-major and compact
        (np.zeros((3, 2), np.float32).T, FLOAT32, (2, 3), r"out: not a row-major compact"),
        (np.zeros((2, 6), np.float32)[:, ::2], FLOAT32, (2, 3), r"out: not a row-major compact"),
        # every check passed but the device: host memory is not CUDA memory
        (np.zeros((2, 3), np.float32), FLOAT32, (2, 3), r"out: DLPack device type 1 is not CUDA"),
        (np.zeros((2, 3), ml_dtypes.bfloat16), BFLOAT16, (2, 3), r"out: DLPack device type 1"),
        (np.zeros((5,), np.uint32), UINT32, (5,), r"out: DLPack device type 1 is not CUDA"),
    ],
)
def test_a_borrowed_tensor_that_is_not_the_output_is_refused(
    write, array, type_code, extent, match
):
    tensor = borrowed(array)
    try:
        with pytest.raises(ValueError, match=match):
            WRITES[write](tensor, type_code, extent)
    finally:
        tensor.release()


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_read_only_tensor_is_refused(write):
    array = np.zeros((2, 3), np.float32)
    array.flags.writeable = False
    tensor = borrowed(array)  # DLPack 1.x carries the read-only flag
    assert tensor.read_only
    with pytest.raises(ValueError, match="out: the DLPack tensor is read-only"):
        WRITES[write](tensor, FLOAT32, (2, 3))


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_tensor_handed_back_is_refused(write):
    tensor = borrowed(np.zeros((2, 3), np.float32))
    tensor.release()
    with pytest.raises(ValueError, match="out: the DLPack tensor was released"):
        WRITES[write](tensor, FLOAT32, (2, 3))


@pytest.mark.parametrize("write", sorted(WRITES))
def test_device_memory_too_small_for_the_extent_is_refused(write):
    memory = _core.DeviceMemory(0, 0)  # no bytes: allocated without any CUDA call
    with pytest.raises(ValueError, match=r"out: device memory of 0 bytes cannot hold \(2, 3\)"):
        WRITES[write](memory, FLOAT32, (2, 3))


def test_an_empty_extent_fits_empty_device_memory():
    """Nothing to write: the checks pass and no CUDA call is made."""
    memory = _core.DeviceMemory(0, 0)
    fill_range(memory, FLOAT32, (0, 3))
    fill_region(memory, FLOAT32, (0, 3))
    _core.cuda_copy_to_device(memory, 0, FLOAT32, np.zeros((0, 3), np.float32))


def test_strided_elements_past_the_end_are_refused():
    memory = _core.DeviceMemory(0, 0)
    # one element at flat index 0 of an empty tensor
    with pytest.raises(ValueError, match="out: the strided elements pass the end"):
        _core.cuda_fill_strided(memory, 0, FLOAT32, [0], 0, 0, 1, 1)
    tensor = borrowed(np.zeros((2, 3), np.float32))
    # elements 1, 4, 7: the last is past element 5
    with pytest.raises(ValueError, match="out: the strided elements pass the end"):
        _core.cuda_fill_strided(tensor, 0, FLOAT32, [2, 3], 0, 1, 3, 3)
    with pytest.raises(ValueError, match="out: the strided elements pass the end"):
        _core.cuda_fill_strided(tensor, 0, FLOAT32, [2, 3], 0, 6, 0, 1)
    # elements 1 and 4 fit: only the device is then wrong
    with pytest.raises(ValueError, match="out: DLPack device type 1"):
        _core.cuda_fill_strided(tensor, 0, FLOAT32, [2, 3], 0, 1, 3, 2)


def test_an_upload_source_must_match_the_output_type():
    memory = _core.DeviceMemory(0, 0)
    with pytest.raises(ValueError, match="src: a C-contiguous array of the output type"):
        _core.cuda_copy_to_device(memory, 0, FLOAT32, np.zeros((0, 3), np.float64))
    with pytest.raises(ValueError, match="src: a C-contiguous array of the output type"):
        _core.cuda_copy_to_device(memory, 0, FLOAT32, np.zeros((4, 3), np.float32).T)


def test_a_negative_extent_is_refused():
    with pytest.raises(ValueError, match="out: a negative extent"):
        fill_range(_core.DeviceMemory(0, 0), FLOAT32, (2, -1))


def test_a_bare_address_is_not_an_output():
    """The entry points take the tensor they write, never an integer pointer."""
    with pytest.raises(TypeError):
        _core.cuda_fill_range(0x1000, 0, FLOAT32, PARAMS, 1, 2, 0, [4])


def test_copy_to_host_refuses_more_bytes_than_the_memory_holds():
    memory = _core.DeviceMemory(0, 0)
    with pytest.raises(ValueError, match="dst: 16 bytes, more than the memory's 0"):
        memory.copy_to_host(np.empty(4, np.float32))
    memory.copy_to_host(np.empty(0, np.float32))  # nothing to copy, no CUDA call
