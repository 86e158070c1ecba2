"""Initializers with structure rather than i.i.d. samples: constants, identity, dirac, orthogonal.

constant / zeros / ones / identity / dirac take no seed; their values are rounded
once into `dtype`. orthogonal draws a normal matrix from the stream and
orthogonalizes it (PyTorch's layout and sign convention); see its docstring for
what its reproducibility guarantee is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import ml_dtypes
import numpy as np

from . import _checks
from .initializers import _request, normal


def _fill_value(
    shape: tuple[int, ...], value: float, dtype: np.dtype, out: Any, argument: str
) -> np.ndarray:
    _checks.check_representable(abs(value), dtype, {argument: value})
    target = _checks.prepare_out(out, shape, dtype)
    target[...] = _round_once(value, dtype)
    return target


def _round_once(value: float, dtype: np.dtype) -> Any:
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


def _region(shape: Any, dtype: Any, region: Any) -> tuple[tuple[int, ...], np.dtype, tuple, tuple]:
    shape = _checks.check_shape(shape)
    dtype = _checks.check_dtype(dtype)
    start, extent = _checks.check_region(region, shape)
    _checks.check_nbytes(extent, dtype)
    return shape, dtype, start, extent


def constant(
    shape: Sequence[int],
    value: float,
    *,
    dtype: Any = "float32",
    out: np.ndarray | None = None,
    region: tuple[slice, ...] | None = None,
) -> np.ndarray:
    """Every element equal to `value` (finite), rounded once into dtype."""
    _, dtype, _, extent = _region(shape, dtype, region)
    value = _checks.check_real("value", value)
    return _fill_value(extent, value, dtype, out, "value")


def zeros(shape: Sequence[int], **options: Any) -> np.ndarray:
    """constant(shape, 0.0)."""
    return constant(shape, 0.0, **options)


def ones(shape: Sequence[int], **options: Any) -> np.ndarray:
    """constant(shape, 1.0)."""
    return constant(shape, 1.0, **options)


def _place(
    extent: tuple[int, ...],
    start: tuple[int, ...],
    hot: Iterable[tuple[int, ...]],
    value: float,
    dtype: np.dtype,
    out: Any,
) -> np.ndarray:
    """Zeros with gain `value` at the full-tensor indices `hot` that fall inside the region."""
    _checks.check_representable(abs(value), dtype, {"gain": value})
    target = _fill_value(extent, 0.0, dtype, out, "gain")
    value = _round_once(value, dtype)
    for index in hot:
        local = tuple(i - s for i, s in zip(index, start, strict=True))
        if all(0 <= i < e for i, e in zip(local, extent, strict=True)):
            target[local] = value
    return target


def identity(
    shape: Sequence[int],
    gain: float = 1.0,
    *,
    dtype: Any = "float32",
    out: np.ndarray | None = None,
    region: tuple[slice, ...] | None = None,
) -> np.ndarray:
    """A 2-D matrix with `gain` on the main diagonal and 0 elsewhere (rectangular allowed)."""
    shape, dtype, start, extent = _region(shape, dtype, region)
    if len(shape) != 2:
        raise ValueError(f"identity needs a 2-D shape, got {shape}")
    gain = _checks.check_real("gain", gain, nonnegative=True)
    # Only the diagonal entries inside the region, so a huge matrix's slice stays cheap.
    first = max(start)
    last = min(start[0] + extent[0], start[1] + extent[1])
    return _place(extent, start, ((k, k) for k in range(first, last)), gain, dtype, out)


eye = identity


def dirac(
    shape: Sequence[int],
    groups: int = 1,
    *,
    gain: float = 1.0,
    dtype: Any = "float32",
    out: np.ndarray | None = None,
    region: tuple[slice, ...] | None = None,
) -> np.ndarray:
    """Identity of a convolution: weight (out, in, *kernel) with 3 to 5 axes.

    Output channel g * (out // groups) + d copies input channel d at the kernel
    centre, for d < min(out // groups, in) — the same tensor as torch.nn.init.dirac_.
    """
    shape, dtype, start, extent = _region(shape, dtype, region)
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"dirac needs a shape with 3, 4 or 5 axes, got {shape}")
    groups = _checks.check_int("groups", groups, low=1)
    if shape[0] % groups:
        raise ValueError(f"shape[0] = {shape[0]} must be divisible by groups = {groups}")
    gain = _checks.check_real("gain", gain, nonnegative=True)
    per_group = shape[0] // groups
    centre = tuple(k // 2 for k in shape[2:])
    hot = (
        (g * per_group + d, d, *centre)
        for g in range(groups)
        for d in range(min(per_group, shape[1]))
    )
    return _place(extent, start, hot, gain, dtype, out)


def orthogonal(
    shape: Sequence[int],
    seed: int,
    gain: float = 1.0,
    *,
    dtype: Any = "float32",
    stream: int | str = 0,
    out: np.ndarray | None = None,
    region: tuple[slice, ...] | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """A (semi-)orthogonal matrix times `gain`, viewed as (shape[0], prod(shape[1:])).

    As torch.nn.init.orthogonal_ (Saxe et al. 2014): a standard normal matrix from
    the stream (float32, bit-reproducible), transposed if it is wide, QR-factorized
    in float64, Q's columns signed by diag(R) so the result is Haar-distributed, then
    rounded to float32 and once more into dtype. The QR runs in NumPy's LAPACK, so
    the bits are reproducible for a given NumPy build; across LAPACK builds a value
    may differ in its last float32 bit. `region` slices the full result.
    """
    request = _request(shape, seed, dtype, stream, region, threads)
    gain = _checks.check_real("gain", gain, nonnegative=True)
    if len(request.shape) < 2:
        raise ValueError(f"orthogonal needs a shape with at least 2 axes, got {request.shape}")
    rows, cols = request.shape[0], math.prod(request.shape[1:])
    target = _checks.prepare_out(out, request.extent, request.dtype)
    if rows * cols == 0:
        return target
    gaussian = normal(
        (rows, cols), request.seed, stream=request.stream, threads=request.threads
    ).astype(np.float64)
    if rows < cols:
        gaussian = gaussian.T
    q, r = np.linalg.qr(gaussian)
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)
    if rows < cols:
        q = q.T
    full = (gain * q).astype(np.float32).reshape(request.shape)
    box = tuple(slice(s, s + e) for s, e in zip(request.start, request.extent, strict=True))
    target[...] = full[box].astype(request.dtype)
    return target
