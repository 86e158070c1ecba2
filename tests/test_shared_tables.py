"""The dtype tables the tests share (tests/_shared.py, built from fastinit.dtypes),
against literal known answers: each row's NumPy, torch, DLPack and safetensors names
and its largest value. A test that reads the tables for its expected values can then
not pass a wrong output through a wrong row."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from _shared import DTYPES, NUMPY_DTYPES, UINT_OF_SIZE, torch_dtypes
from fastinit import dtypes


def test_the_output_dtypes_in_their_order():
    assert DTYPES == ("float32", "float64", "float16", "bfloat16")
    assert list(NUMPY_DTYPES) == list(DTYPES)


def test_the_numpy_dtypes():
    assert NUMPY_DTYPES == {
        "float32": np.dtype(np.float32),
        "float64": np.dtype(np.float64),
        "float16": np.dtype(np.float16),
        "bfloat16": np.dtype(ml_dtypes.bfloat16),
    }


def test_each_item_size_has_its_bit_view():
    for size, uint in UINT_OF_SIZE.items():
        assert np.dtype(uint).kind == "u" and np.dtype(uint).itemsize == size
    assert {NUMPY_DTYPES[name].itemsize for name in DTYPES} <= set(UINT_OF_SIZE)


def test_the_torch_dtypes():
    torch = pytest.importorskip("torch")
    assert torch_dtypes() == {
        "float32": torch.float32,
        "float64": torch.float64,
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
    }


def test_the_dlpack_and_safetensors_codes_and_largest_values():
    # DLPack type codes: kDLFloat = 2, kDLBfloat = 4 (dlpack.h).
    assert {
        row.name: (row.dlpack, row.safetensors, row.largest) for row in dtypes.OUTPUT_DTYPES
    } == {
        "float32": ((2, 32), "F32", 3.4028234663852886e38),
        "float64": ((2, 64), "F64", 1.7976931348623157e308),
        "float16": ((2, 16), "F16", 65504.0),
        "bfloat16": ((4, 16), "BF16", 3.3895313892515355e38),
    }
