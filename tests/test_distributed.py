"""Sharded init on torch.distributed, across processes (issue 13).

Each world runs ONCE per session in a module-scoped fixture (tests/_distributed_worker.py
holds the code the processes run) and returns a report {case: "ok" or the failure text,
with every rank's output}; each test below asserts on its case's entry.

- gloo worlds 2 and 4 (spawned processes, 127.0.0.1, a free port, a CPU device mesh):
  raw DTensors in Shard(0)/Shard(1)/Replicate, uneven shapes with empty tail ranks, 2x2
  meshes and _StridedShard, through every drop-in; FSDP2 per layer and at the root via
  init_module and via to_empty + init_module (bits, ties, padding row, an exact forward, no
  collective during init); TP + FSDP2 and HSDP on 2x2; fastinit.torch.reproducible around an
  unchanged torchtitan-style init_weights (plain, activation-checkpointed, torch.compile'd);
  the refusals of a DTensor out= and of Partial placements. Every `full_tensor()` is compared
  bit for bit with the single-process result computed in the worker with the same seed.
- fake-process-group worlds 8 and 16 (no communication; one forked process per simulated
  rank): FSDP2, HSDP, TP4 x FSDP2 and TP2 x FSDP2; every rank's local shard equals torch's
  slice of the single-process init_module result.
- in this process: out= refuses a DLPack tensor with a null data pointer and a tensor
  subclass fastinit does not know.
"""

from __future__ import annotations

import ctypes
import sys

import fastinit
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import _distributed_worker as worker  # noqa: E402 - after the skip: needs torch in workers

pytestmark = [
    pytest.mark.skipif(
        not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
        reason="torch.distributed with gloo is not available",
    ),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and gloo: Linux only"),
]


@pytest.fixture(scope="module")
def gloo2() -> dict[str, str]:
    return worker.run_gloo_world(2)


@pytest.fixture(scope="module")
def gloo4() -> dict[str, str]:
    return worker.run_gloo_world(4)


@pytest.fixture(scope="module")
def fake_worlds() -> dict[str, str]:
    return worker.run_fake_worlds((8, 16))


def _assert_ok(report: dict[str, str], case: str) -> None:
    assert case in report, f"no entry for {case}: {sorted(report)}"
    assert report[case] == worker.OK, f"{case} failed:\n{report[case]}"


@pytest.mark.parametrize("case", worker.gloo_case_names(2))
def test_gloo_world2(gloo2, case):
    _assert_ok(gloo2, case)


@pytest.mark.parametrize("case", worker.gloo_case_names(4))
def test_gloo_world4(gloo4, case):
    _assert_ok(gloo4, case)


@pytest.mark.parametrize(
    "case",
    [f"world{world}/{name}" for world in (8, 16) for name in worker.fake_case_names(world)],
)
def test_fake_process_group(fake_worlds, case):
    _assert_ok(fake_worlds, case)


def test_report_of_a_failing_world_names_every_rank():
    """The harness itself: a rank that never reports fails its cases with its output."""
    report = worker._merge(
        ["a", "b"],
        [{"a": worker.OK, "b": "boom"}, {"a": worker.OK}],
        ["rank 1 timed out and was killed"],
        "LOGS",
    )
    assert report["a"] == worker.OK
    assert "ranks [0]: boom" in report["b"]
    assert "ranks [1]: no result" in report["b"]
    assert "timed out" in report["b"] and "LOGS" in report["b"]


# --------------------------------------------------------------------------------------
# Regressions in this process: out= producers fastinit must not write through
# --------------------------------------------------------------------------------------


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [
        ("dl_tensor", _DLTensor),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", ctypes.c_void_p),
    ]


class _NullDataDLPack:
    """A legacy DLPack producer of a float32 (4, 3) CPU tensor whose data pointer is NULL:
    what a DTensor exports (its global shape, no storage)."""

    def __init__(self) -> None:
        self.shape = (ctypes.c_int64 * 2)(4, 3)
        self.managed = _DLManagedTensor()
        self.managed.dl_tensor.data = None
        self.managed.dl_tensor.device = _DLDevice(1, 0)  # kDLCPU
        self.managed.dl_tensor.ndim = 2
        self.managed.dl_tensor.dtype = _DLDataType(2, 32, 1)  # kDLFloat, 32 bits
        self.managed.dl_tensor.shape = self.shape
        self.managed.dl_tensor.strides = None
        self.managed.deleter = None  # this object owns the memory; nothing to free

    def __dlpack__(self, stream=None, **_options):
        new_capsule = ctypes.pythonapi.PyCapsule_New
        new_capsule.restype = ctypes.py_object
        new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        return new_capsule(ctypes.addressof(self.managed), b"dltensor", None)

    def __dlpack_device__(self):
        return (1, 0)


def test_out_with_a_null_data_pointer_is_refused_naming_out():
    with pytest.raises((ValueError, TypeError), match="out"):
        fastinit.normal((4, 3), 1, out=_NullDataDLPack())


def test_out_of_an_unknown_tensor_subclass_is_refused_and_left_untouched():
    class Unknown(torch.Tensor):
        pass

    target = torch.zeros(4, 3).as_subclass(Unknown)
    with pytest.raises((ValueError, TypeError), match="out"):
        fastinit.normal((4, 3), 1, out=target)
    assert np.array_equal(target.as_subclass(torch.Tensor).numpy(), np.zeros((4, 3)))
