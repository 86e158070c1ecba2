"""Initializers with structure rather than i.i.d. samples: constants, identity, dirac,
orthogonal, delta_orthogonal.

constant / zeros / ones / identity / dirac take no seed; their values are rounded
once into `dtype`. orthogonal draws a normal matrix from the stream and
orthogonalizes it (PyTorch's layout by default, JAX's / Keras's with layout="jax";
fastinit's sign convention); delta_orthogonal puts such a matrix at a convolution
kernel's centre (JAX's). See orthogonal's docstring for what their reproducibility
guarantee is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from . import _checks, _fill, cuda
from .fans import _axis_in_range, _axis_type
from .initializers import check_request, normal


def _everywhere(value: float, dtype: np.dtype, size: int) -> _fill.Strided:
    return _fill.Strided(_fill.round_once(value, dtype), 0, 1, size)


class _Box(NamedTuple):
    shape: tuple[int, ...]
    dtype: np.dtype
    start: tuple[int, ...]
    extent: tuple[int, ...]
    device: int | None


def _box(shape: Any, dtype: Any, region: Any, device: Any) -> _Box:
    shape = _checks.check_shape(shape)
    dtype = _checks.check_dtype(dtype)
    start, extent = _checks.check_region(region, shape)
    _fill.check_nbytes(extent, dtype)
    return _Box(shape, dtype, start, extent, cuda.check_device(device))


def constant(
    shape: Sequence[int],
    value: Any,
    *,
    dtype: Any = "float32",
    out: Any = None,
    region: tuple[slice, ...] | None = None,
    device: Any = None,
) -> Any:
    """Every element equal to `value` (finite), rounded once into dtype.

    `value` may also be an array-like (a list, an ndarray) that broadcasts to `shape` by
    NumPy's rule, as Keras's Constant takes: each of its elements is rounded once into
    dtype, then broadcast (a spec stores such a literal; see docs/spec.md).
    """
    box = _box(shape, dtype, region, device)
    if isinstance(value, (list, tuple)) or (hasattr(value, "__array__") and np.ndim(value)):
        full = np.broadcast_to(literal(value, box.dtype, box.shape), box.shape)
        corner = tuple(slice(s, s + e) for s, e in zip(box.start, box.extent, strict=True))
        return _fill.write_values(box.extent, box.dtype, out, box.device, lambda: full[corner])
    value = _checks.check_constant(value, box.dtype)
    steps = [_everywhere(value, box.dtype, math.prod(box.extent))]
    return _fill.write_strided(box.extent, box.dtype, out, box.device, steps)


def literal(value: Any, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """An array-like constant value checked for `shape` and rounded once into dtype, with
    as many axes as `shape` (size 1 where it broadcasts), C-contiguous."""
    values = _checks.check_constant_array(value, dtype, shape)
    values = values.reshape((1,) * (len(shape) - values.ndim) + values.shape)
    return np.ascontiguousarray(_fill.round_all(values, dtype))


def zeros(shape: Sequence[int], **options: Any) -> Any:
    """constant(shape, 0.0)."""
    return constant(shape, 0.0, **options)


def ones(shape: Sequence[int], **options: Any) -> Any:
    """constant(shape, 1.0)."""
    return constant(shape, 1.0, **options)


def _diagonals(box: _Box, gain: float, out: Any, lines: list[tuple[int, int, int]]) -> Any:
    """Zeros with `gain` along `lines`: (start, stride, count) in the flat output."""
    _checks.check_representable(abs(gain), box.dtype, {"gain": gain}, in_float32=False)
    value = _fill.round_once(gain, box.dtype)
    steps = [_everywhere(0.0, box.dtype, math.prod(box.extent))]
    steps += [_fill.Strided(value, *line) for line in lines if line[2] > 0]
    return _fill.write_strided(box.extent, box.dtype, out, box.device, steps)


def identity(
    shape: Sequence[int],
    gain: float = 1.0,
    *,
    dtype: Any = "float32",
    out: Any = None,
    region: tuple[slice, ...] | None = None,
    device: Any = None,
) -> Any:
    """A 2-D matrix with `gain` on the main diagonal and 0 elsewhere (rectangular allowed)."""
    box = _box(shape, dtype, region, device)
    if len(box.shape) != 2:
        raise ValueError(f"identity needs a 2-D shape, got {box.shape}")
    gain = _checks.check_real("gain", gain, nonnegative=True)
    # Only the diagonal entries inside the region, so a huge matrix's slice stays cheap.
    (s0, s1), (e0, e1) = box.start, box.extent
    first, last = max(s0, s1), min(s0 + e0, s1 + e1)
    line = ((first - s0) * e1 + (first - s1), e1 + 1, last - first)
    return _diagonals(box, gain, out, [line])


eye = identity


def dirac(
    shape: Sequence[int],
    groups: int = 1,
    *,
    gain: float = 1.0,
    dtype: Any = "float32",
    out: Any = None,
    region: tuple[slice, ...] | None = None,
    device: Any = None,
) -> Any:
    """Identity of a convolution: weight (out, in, *kernel) with 3 to 5 axes.

    Output channel g * (out // groups) + d copies input channel d at the kernel
    centre, for d < min(out // groups, in) — the same tensor as torch.nn.init.dirac_.
    """
    box = _box(shape, dtype, region, device)
    if len(box.shape) not in (3, 4, 5):
        raise ValueError(f"dirac needs a shape with 3, 4 or 5 axes, got {box.shape}")
    groups = _checks.check_int("groups", groups, low=1)
    if box.shape[0] % groups:
        raise ValueError(
            f"shape[0] = {box.shape[0]} must be divisible by groups = {_checks.show(groups)}"
        )
    gain = _checks.check_real("gain", gain, nonnegative=True)
    return _diagonals(box, gain, out, _dirac_lines(box, box.shape[0] // groups, groups))


def _dirac_lines(box: _Box, per_group: int, groups: int) -> list[tuple[int, int, int]]:
    """The (start, stride, count) lines of dirac's ones inside the region: O(output) work.

    Entry (g * per_group + d, d, *centre) is one for g < groups, d < min(per_group, in).
    For a fixed g they form a line over d; for a fixed d, a line over g. Walking
    whichever of the two ranges (groups meeting the region's rows, channels d meeting
    its columns) is shorter gives at most min(rows, columns) + 1 lines.
    """
    if not math.prod(box.extent):
        return []
    (s0, s1, *spatial_start), (e0, e1, *spatial_extent) = box.start, box.extent
    centre = [k // 2 - s for k, s in zip(box.shape[2:], spatial_start, strict=True)]
    if not all(0 <= c < e for c, e in zip(centre, spatial_extent, strict=True)):
        return []  # the region holds no kernel centre
    spatial = math.prod(spatial_extent)
    centre_offset = 0
    for c, e in zip(centre, spatial_extent, strict=True):
        centre_offset = centre_offset * e + c

    def flat(row: int, column: int) -> int:  # index in the output of (row, column, *centre)
        return ((row - s0) * e1 + (column - s1)) * spatial + centre_offset

    d_first, d_stop = s1, min(per_group, box.shape[1], s1 + e1)
    g_first, g_stop = s0 // per_group, min(groups, (s0 + e0 - 1) // per_group + 1)
    lines = []
    if g_stop - g_first <= d_stop - d_first:
        for g in range(g_first, g_stop):  # d with s0 <= g * per_group + d < s0 + e0
            lo = max(d_first, s0 - g * per_group)
            hi = min(d_stop, s0 + e0 - g * per_group)
            if lo < hi:
                lines.append((flat(g * per_group + lo, lo), (e1 + 1) * spatial, hi - lo))
    else:
        for d in range(d_first, d_stop):  # g with s0 <= g * per_group + d < s0 + e0
            lo = max(g_first, -(-(s0 - d) // per_group))
            hi = min(g_stop, (s0 + e0 - 1 - d) // per_group + 1)
            if lo < hi:
                lines.append((flat(lo * per_group + d, d), per_group * e1 * spatial, hi - lo))
    return lines


ORTHOGONAL_LAYOUTS = ("torch", "jax", "keras")


def orthogonal(
    shape: Sequence[int],
    seed: int,
    gain: float = 1.0,
    *,
    layout: str = "torch",
    column_axis: int | None = None,
    dtype: Any = "float32",
    stream: int | str = 0,
    out: Any = None,
    region: tuple[slice, ...] | None = None,
    threads: int | None = None,
    device: Any = None,
) -> Any:
    """A (semi-)orthogonal matrix times `gain`, laid out in `shape` as `layout` says.

    The matrix (Saxe et al. 2014): a standard normal matrix M of `rows` x `cols` from
    the stream (float32, bit-reproducible), transposed if it is wide, QR-factorized in
    float64, Q's columns signed by diag(R) so the result is Haar-distributed: its rows
    are orthonormal if rows <= cols, else its columns.

    layout:
    - "torch" (default): PyTorch's orthogonal_, rows = shape[0], cols =
      prod(shape[1:]); the matrix reshaped to `shape`. column_axis is refused.
    - "jax" / "keras": JAX's orthogonal (and Keras's / TensorFlow's, whose column axis
      is always the last): cols = shape[column_axis] (default -1), rows = the product
      of the other axes; the matrix reshaped to (*other axes, cols), then its last axis
      moved to column_axis. For column_axis=-1 the result is the "torch" one of the
      shape (prod(shape[:-1]), shape[-1]) reshaped; for a 2-D shape and column_axis=-1
      the two layouts give the same tensor.

    Rounding: for float64 the float64 Q times gain is the output (orthogonal to float64
    precision); for other dtypes it is rounded to float32 and then once more into
    dtype. The QR runs in NumPy's LAPACK, so the bits are reproducible for a given
    NumPy build; across LAPACK builds a value may differ in its last bit. `region`
    slices the full result. On CUDA the matrix is computed on the host and copied to
    the device once. A shape with a zero-size axis gives an empty result.

    Raises:
        ValueError, TypeError: a shape of fewer than 2 axes, a bad layout, column_axis
            with layout="torch" or out of range, a bad gain, dtype, region, ...
    """
    request = check_request(shape, seed, dtype, stream, region, threads, device)
    gain = _checks.check_real("gain", gain, nonnegative=True)
    # |Q| <= 1 and gain * Q is rounded to float32 first: gain bounds every value.
    _checks.check_representable(gain, request.dtype, {"gain": gain})
    if len(request.shape) < 2:
        raise ValueError(f"orthogonal needs a shape with at least 2 axes, got {request.shape}")
    axis = _column_axis(layout, column_axis, len(request.shape))
    return _fill.write_values(
        request.extent,
        request.dtype,
        out,
        request.device,
        lambda: _box_of(request, _orthogonal(request, gain, axis)),
    )


def _column_axis(layout: Any, column_axis: Any, ndim: int) -> int | None:
    """orthogonal's column axis as a non-negative int, or None for PyTorch's layout."""
    _checks.check_choice("layout", layout, ORTHOGONAL_LAYOUTS)
    if layout == "torch":
        if column_axis is not None:
            raise ValueError(
                f"column_axis={_checks.show(column_axis)} is JAX's and Keras's: pass it with "
                'layout="jax"; layout="torch" always flattens to (shape[0], prod(shape[1:]))'
            )
        return None
    axis = -1 if column_axis is None else _axis_type("column_axis", column_axis)
    return _axis_in_range("column_axis", axis, ndim)


def _orthogonal(request: _fill.Request, gain: float, axis: int | None) -> np.ndarray:
    """The full result of orthogonal, on the host: float64 for float64, else float32."""
    shape = request.shape
    if axis is None:
        rows, cols = shape[0], math.prod(shape[1:])
    else:
        cols = shape[axis]
        rows = math.prod(shape[:axis] + shape[axis + 1 :])
    wide = np.float64 if request.dtype == np.float64 else np.float32
    if rows * cols == 0:
        return np.zeros(shape, dtype=wide)
    gaussian = normal(
        (rows, cols), request.seed, stream=request.stream, threads=request.threads
    ).astype(np.float64)
    if rows < cols:
        gaussian = gaussian.T
    q, r = np.linalg.qr(gaussian)
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)
    if rows < cols:
        q = q.T
    matrix = (gain * q).astype(wide, copy=False)
    if axis is None:
        return matrix.reshape(shape)
    return np.moveaxis(matrix.reshape(shape[:axis] + shape[axis + 1 :] + (cols,)), -1, axis)


def _box_of(request: _fill.Request, full: np.ndarray) -> np.ndarray:
    """The request's region of a full host result, C-contiguous, in the request's dtype."""
    box = tuple(slice(s, s + e) for s, e in zip(request.start, request.extent, strict=True))
    return np.ascontiguousarray(full[box].astype(request.dtype, copy=False))


def delta_orthogonal(
    shape: Sequence[int],
    seed: int,
    scale: float = 1.0,
    *,
    column_axis: int = -1,
    dtype: Any = "float32",
    stream: int | str = 0,
    out: Any = None,
    region: tuple[slice, ...] | None = None,
    threads: int | None = None,
    device: Any = None,
) -> Any:
    """A convolution kernel (*window, in, out) with 1 to 3 spatial axes that is zero
    except at the window's centre, which holds an orthogonal (in, out) matrix times
    `scale`: jax.nn.initializers.delta_orthogonal (Xiao et al. 2018).

    The centre matrix is `orthogonal(shape[-2:], seed, scale, layout="jax",
    column_axis=column_axis, ...)` (column_axis is an axis of that 2-D matrix: -1 or 1,
    the default, makes its rows orthonormal; 0 or -2 its columns), so in <= out is
    required (in = shape[-2], out = shape[-1]), as in JAX. The centre is at index
    (k - 1) // 2 of each spatial axis of size k, JAX's; N.B. torch.nn.init.dirac_ (and
    fastinit.dirac) put theirs at k // 2, which differs for even k (k = 4: JAX and this
    function use 1, dirac uses 2). Note the layouts differ as well: dirac's kernel is
    PyTorch's (out, in, *window), this one JAX's (*window, in, out).

    Rounding, LAPACK and CUDA as for `orthogonal`; `region` slices the full result
    (the QR runs only when the region meets the centre).

    Raises:
        ValueError, TypeError: a shape of other than 3, 4 or 5 axes, in > out,
            column_axis out of range, a bad scale, dtype, region, ...

    Reference: L. Xiao, Y. Bahri, J. Sohl-Dickstein, S. Schoenholz, J. Pennington,
    "Dynamical Isometry and a Mean Field Theory of CNNs", ICML 2018.
    """
    request = check_request(shape, seed, dtype, stream, region, threads, device)
    scale = _checks.check_real("scale", scale, nonnegative=True)
    _checks.check_representable(scale, request.dtype, {"scale": scale})
    if len(request.shape) not in (3, 4, 5):
        raise ValueError(f"delta_orthogonal needs a shape with 3, 4 or 5 axes, got {request.shape}")
    *window, fan_in, fan_out = request.shape
    if fan_in > fan_out:
        raise ValueError(
            f"delta_orthogonal needs shape[-2] <= shape[-1] (in <= out, as JAX), got "
            f"{request.shape}"
        )
    axis = _axis_in_range("column_axis", _axis_type("column_axis", column_axis), 2)
    centre = tuple((k - 1) // 2 for k in window)
    return _fill.write_values(
        request.extent,
        request.dtype,
        out,
        request.device,
        lambda: _delta_orthogonal(request, scale, axis, centre),
    )


def _delta_orthogonal(
    request: _fill.Request, scale: float, axis: int, centre: tuple[int, ...]
) -> np.ndarray:
    """The request's region of delta_orthogonal's result, in the request's dtype."""
    values = np.zeros(request.extent, dtype=request.dtype)
    spatial = len(centre)
    start, extent = request.start, request.extent
    if not all(s <= c < s + e for c, s, e in zip(centre, start, extent, strict=False)):
        return values  # the region misses the centre: all zeros, no QR
    matrix = request._replace(
        shape=request.shape[spatial:],
        start=(0, 0),
        extent=request.shape[spatial:],
    )
    full = _orthogonal(matrix, scale, axis)
    rows, cols = (slice(s, s + e) for s, e in zip(start[spatial:], extent[spatial:], strict=True))
    where = tuple(c - s for c, s in zip(centre, start, strict=False))
    values[where] = full[rows, cols].astype(request.dtype, copy=False)
    return values
