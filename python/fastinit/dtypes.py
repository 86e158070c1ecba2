"""The output dtypes: the one table every module reads.

Adding an output dtype is one row here plus its case in the C++ dispatch header
(csrc/include/fastinit/dispatch.h) and a store() for it. Each row says how the dtype
is named and encoded everywhere fastinit meets it: NumPy, the C++ core, DLPack,
safetensors, torch (looked up lazily, so torch is imported only by fastinit.torch).

The complex dtypes are rows of their own table, COMPLEX_DTYPES: only the samplers
normal, uniform, truncated_normal and variance_scaling (with the named initializers) write
them, as (real, imaginary) pairs of their component dtype (docs/stream.md, "Complex
outputs"); checkpoints, specs and the torch drop-ins take OUTPUT_DTYPES only, so
NAMES, BY_NAME, BY_NUMPY, BY_SAFETENSORS and BY_DLPACK stay real.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import ml_dtypes
import numpy as np

from . import _core


class OutputDtype(NamedTuple):
    name: str  # the user's spelling, dtype= "float32"
    numpy: np.dtype  # NumPy's (ml_dtypes' for bfloat16)
    core: Any  # _core.OutputType
    dlpack: tuple[int, int]  # DLPack (type code, bits)
    safetensors: str  # the header's "dtype"
    largest: float  # the largest finite value
    torch_name: str  # attribute of the torch module


def _row(name: str, numpy: Any, dlpack_code: int, safetensors: str) -> OutputDtype:
    dtype = np.dtype(numpy)
    return OutputDtype(
        name,
        dtype,
        getattr(_core.OutputType, name),
        (dlpack_code, 8 * dtype.itemsize),
        safetensors,
        float(ml_dtypes.finfo(dtype).max),
        name,
    )


OUTPUT_DTYPES: tuple[OutputDtype, ...] = (
    _row("float32", np.float32, _core.DLPACK_FLOAT, "F32"),
    _row("float64", np.float64, _core.DLPACK_FLOAT, "F64"),
    _row("float16", np.float16, _core.DLPACK_FLOAT, "F16"),
    _row("bfloat16", ml_dtypes.bfloat16, _core.DLPACK_BFLOAT, "BF16"),
)
NAMES = tuple(row.name for row in OUTPUT_DTYPES)
NAMES_TEXT = ", ".join(NAMES)  # for messages: "float32, float64, float16, bfloat16"
BY_NAME = {row.name: row for row in OUTPUT_DTYPES}
BY_NUMPY = {row.numpy: row for row in OUTPUT_DTYPES}
BY_SAFETENSORS = {row.safetensors: row for row in OUTPUT_DTYPES}
BY_DLPACK = {row.dlpack: row for row in OUTPUT_DTYPES}
# Raw stream words (random_bits) travel through DLPack as uint32 too.
UINT32_DLPACK = (_core.DLPACK_UINT, 32)


def _complex_row(name: str, numpy: Any, component: OutputDtype, safetensors: str) -> OutputDtype:
    dtype = np.dtype(numpy)
    return OutputDtype(
        name,
        dtype,
        component.core,  # the core writes the (real, imaginary) pairs in the component type
        (_core.DLPACK_COMPLEX, 8 * dtype.itemsize),
        safetensors,
        component.largest,  # of each part
        name,
    )


# safetensors 0.8.0 has C64 (complex64) and no complex128 code: "" (checkpoints take
# neither; the code is recorded for when they do).
COMPLEX_DTYPES: tuple[OutputDtype, ...] = (
    _complex_row("complex64", np.complex64, BY_NAME["float32"], "C64"),
    _complex_row("complex128", np.complex128, BY_NAME["float64"], ""),
)
COMPLEX_NAMES = tuple(row.name for row in COMPLEX_DTYPES)
COMPLEX_BY_NAME = {row.name: row for row in COMPLEX_DTYPES}
COMPLEX_BY_NUMPY = {row.numpy: row for row in COMPLEX_DTYPES}


def component(dtype: np.dtype) -> np.dtype:
    """The dtype of each part of a complex dtype (complex64: float32); a real dtype itself."""
    return np.empty(0, dtype).real.dtype if dtype.kind == "c" else dtype


def torch_dtype(row: OutputDtype) -> Any:
    import torch

    return getattr(torch, row.torch_name)


def of_torch(dtype: Any) -> OutputDtype | None:
    """The row of a torch dtype, or None for one fastinit does not write."""
    import torch

    for row in OUTPUT_DTYPES:
        if getattr(torch, row.torch_name) == dtype:
            return row
    return None
