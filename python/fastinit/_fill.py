"""Writing outputs: the one module that allocates, borrows `out=` and calls the core's fills.

Callers hand over checked arguments and the Params of a transform; this module
picks where the values go, checks what it borrows, releases the GIL (inside
_core) and fills. Nothing here decides which values a call produces.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

from . import _core, dtypes

_UINT32 = np.dtype(np.uint32)


def output_type(dtype: np.dtype) -> Any:
    """The core's OutputType of a checked output dtype (uint32: raw stream words)."""
    if dtype == _UINT32:
        return _core.OutputType.uint32
    return dtypes.BY_NUMPY[dtype].core


def fill_flat(
    out: np.ndarray, params: Any, seed: int, stream: int, first: int, threads: int
) -> None:
    """Fills `out`, a writable C-contiguous host array of an output dtype (any shape), with
    the flat elements first .. first + out.size - 1 of the tensor that (seed, stream,
    params) define, on `threads` threads with the GIL released. The bits equal those of
    the whole tensor at those flat indices, whatever its shape and however it is cut."""
    if out.size:
        _core.fill_range(out, output_type(out.dtype), params, seed, stream, first, threads)


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
