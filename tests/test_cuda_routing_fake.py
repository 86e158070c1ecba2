"""_fill's CUDA route, run on the host against a fake device (no GPU needed).

The CUDA branch of every public call (device="cuda": samplers, regions, random_bits,
the structured initializers, orthogonal's upload) is Python that only a GPU would
otherwise run: which memory it allocates, which extent, offset and strides it hands
to which _core.cuda_* entry point. Here _core's CUDA calls are replaced by host
equivalents over a fake DeviceMemory (a host buffer) that call the real host fills, so
a CudaArray's to_numpy() must hold exactly the CPU call's bits. test_cuda.py runs the
same calls on a real GPU; test_cuda_entry_checks.py covers the C++ side of the entry
points.
"""

from __future__ import annotations

import math
import types

import fastinit
import ml_dtypes
import numpy as np
import pytest
from _shared import UINT_OF_SIZE
from fastinit import _core, _fill, cuda

REAL_CORE = _core
NUMPY_OF_CODE = {
    int(_core.OutputType.float32): np.dtype(np.float32),
    int(_core.OutputType.float64): np.dtype(np.float64),
    int(_core.OutputType.float16): np.dtype(np.float16),
    int(_core.OutputType.bfloat16): np.dtype(ml_dtypes.bfloat16),
    int(_core.OutputType.uint32): np.dtype(np.uint32),
}


class HostMemory:
    """A DeviceMemory stand-in: `nbytes` bytes of host memory on fake device `device`."""

    def __init__(self, device: int, nbytes: int) -> None:
        self.device = device
        self.nbytes = nbytes
        self.bytes = np.full(nbytes, 0xA5, dtype=np.uint8)  # poisoned: unwritten bytes show
        self.ptr = 256 * (1 + id(self) % 1000)

    def elements(self, code: int, extent) -> np.ndarray:
        dtype = NUMPY_OF_CODE[code]
        count = math.prod(extent)
        assert count * dtype.itemsize <= self.nbytes  # what the C++ check refuses
        return self.bytes[: count * dtype.itemsize].view(dtype).reshape(extent)

    def copy_to_host(self, dst: np.ndarray) -> None:
        dst.reshape(-1).view(np.uint8)[:] = self.bytes[: dst.nbytes]


def _fill_range(memory, stream, code, params, seed, rng_stream, first, extent):
    REAL_CORE.fill_range(memory.elements(code, extent), code, params, seed, rng_stream, first, 1)


def _fill_region(memory, stream, code, params, seed, rng_stream, full_shape, start, extent):
    view = memory.elements(code, extent)
    REAL_CORE.fill(view, code, params, seed, rng_stream, list(full_shape), list(start), 1)


def _fill_strided(memory, stream, code, extent, bits, start, stride, count):
    view = memory.elements(code, extent).reshape(-1)
    words = view.view(UINT_OF_SIZE[view.dtype.itemsize])
    words[start : start + stride * count : stride] = bits


def _copy_to_device(memory, stream, code, src):
    memory.elements(code, src.shape)[...] = src


@pytest.fixture
def fake_device(monkeypatch):
    """One fake CUDA device; records the stream of every call (fills of new arrays run on
    the legacy default stream, 0)."""
    streams = []

    def record(function):
        def call(memory, stream, *rest):
            streams.append(stream)
            return function(memory, stream, *rest)

        return call

    fill_core = types.SimpleNamespace(
        fill=REAL_CORE.fill,
        fill_range=REAL_CORE.fill_range,
        OutputType=REAL_CORE.OutputType,
        cuda_fill_range=record(_fill_range),
        cuda_fill=record(_fill_region),
        cuda_fill_strided=record(_fill_strided),
        cuda_copy_to_device=record(_copy_to_device),
        cuda_synchronize=lambda device, stream: None,
    )
    cuda_core = types.SimpleNamespace(
        query_cuda_status=lambda: (True, 1, ""),
        query_current_device=lambda: 0,
        DeviceMemory=HostMemory,
        DLPACK_CUDA=REAL_CORE.DLPACK_CUDA,
    )
    monkeypatch.setattr(_fill, "_core", fill_core)
    monkeypatch.setattr(cuda, "_core", cuda_core)
    return streams


def bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x).view(UINT_OF_SIZE[x.dtype.itemsize])


CALLS = {
    "he_normal": lambda **kw: fastinit.he_normal((37, 53), 3, **kw),
    "glorot_uniform_bf16": lambda **kw: fastinit.glorot_uniform(
        (6, 5, 3), 3, dtype="bfloat16", stream="w", **kw
    ),
    "uniform_region": lambda **kw: fastinit.uniform(
        (37, 53), 0, region=(slice(1, 30), slice(3, 9)), **kw
    ),
    "truncated_normal_f16": lambda **kw: fastinit.truncated_normal(
        (4, 5, 6), 1, dtype="float16", region=(slice(1, 3), slice(0, 5), slice(2, 4)), **kw
    ),
    "normal_f64": lambda **kw: fastinit.normal((100,), 9, mean=1.0, dtype="float64", **kw),
    "random_bits": lambda **kw: fastinit.random_bits(1001, 0, stream=5, offset=3, **kw),
    "zeros": lambda **kw: fastinit.zeros((37, 53), **kw),
    "constant_f16": lambda **kw: fastinit.constant((7, 5), 0.3, dtype="float16", **kw),
    "identity_region": lambda **kw: fastinit.identity(
        (9, 12), 2.0, region=(slice(2, 8), slice(1, 11)), **kw
    ),
    "dirac": lambda **kw: fastinit.dirac((12, 8, 3, 5), 2, **kw),
    "orthogonal": lambda **kw: fastinit.orthogonal((12, 20), 0, 1.5, **kw),
    "orthogonal_region": lambda **kw: fastinit.orthogonal(
        (12, 20), 0, region=(slice(2, 7), slice(5, 15)), **kw
    ),
    "empty": lambda **kw: fastinit.he_normal((0, 7), 3, **kw),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_the_cuda_route_writes_the_cpu_bits(fake_device, name):
    on_device = CALLS[name](device="cuda")
    on_host = CALLS[name]()
    assert isinstance(on_device, fastinit.CudaArray)
    assert on_device.shape == on_host.shape and on_device.dtype == on_host.dtype
    assert on_device.device == "cuda:0"
    np.testing.assert_array_equal(bits(on_device.to_numpy()), bits(on_host))
    assert set(fake_device) <= {0}  # new arrays are filled on the legacy default stream
    assert bool(fake_device) == bool(on_host.size)  # an empty output launches nothing


def test_device_cpu_and_out_on_the_host_stay_on_the_host(fake_device):
    out = np.empty((37, 53), np.float32)
    assert fastinit.he_normal((37, 53), 3, device="cpu", out=out) is out
    np.testing.assert_array_equal(bits(out), bits(fastinit.he_normal((37, 53), 3)))
    assert not fake_device


def test_a_host_out_with_a_cuda_device_is_refused(fake_device):
    with pytest.raises(ValueError, match="out is a NumPy array in host memory"):
        fastinit.he_normal((4, 4), 3, device="cuda", out=np.empty((4, 4), np.float32))
    assert not fake_device
