"""Argument checks shared by every public function.

Each check raises before anything is allocated, with a message that names the
argument and says what is allowed. Nothing is silently coerced: a bool is not
an integer, a float is not a seed, a read-only array is not an output.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any

import ml_dtypes
import numpy as np

from . import dtypes

U64_LIMIT = 1 << 64
_INDEX_LIMIT = 1 << 63  # element counts and byte sizes must fit in int64
# Every sampled value is computed in float32 (docs/stream.md), whatever the output dtype.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def show(value: Any) -> str:
    """repr(value) for a message: a huge integer is described, since Python refuses to
    print integers of more than 4300 digits (and nobody wants to read them)."""
    if isinstance(value, int) and not -(10**30) < value < 10**30:
        return f"{'-' if value < 0 else ''}an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _integer(name: str, value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {show(value)}")
    return operator.index(value)


def check_int(name: str, value: Any, *, low: int = 0, high: int | None = None) -> int:
    """A count-like integer (Python or NumPy, never bool): ValueError below low,
    OverflowError at or above high."""
    value = _integer(name, value)
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {show(value)}")
    if high is not None and value >= high:
        raise OverflowError(f"{name} must be < {_power_of_two(high)}, got {show(value)}")
    return value


def check_u64(name: str, value: Any) -> int:
    """An integer in [0, 2^64): a seed, stream or word offset (OverflowError outside)."""
    value = _integer(name, value)
    if not 0 <= value < U64_LIMIT:
        raise OverflowError(f"{name} must be in [0, 2^64), got {show(value)}")
    return value


def _power_of_two(n: int) -> str:
    return f"2^{n.bit_length() - 1}" if n > 1 and n & (n - 1) == 0 else str(n)


def check_seed(seed: Any) -> int:
    return check_u64("seed", seed)


def scalar_of(value: Any) -> Any:
    """The element of a 0-d array (NumPy, JAX, torch, also one that requires grad) as a
    NumPy scalar, whose type the checks then see (a bool stays a bool); an ml_dtypes
    scalar (bfloat16, ...) as a float; anything else as it is, unread: an array of
    another shape is never computed or copied, and a masked array is left to be refused."""
    if isinstance(value, np.generic):
        if value.dtype.kind == "V" and value.dtype in _ML_FLOATS:
            return float(value)
        return value
    if getattr(value, "shape", None) != () or isinstance(value, np.ma.MaskedArray):
        return value
    if not hasattr(value, "__array__"):
        return value
    try:
        array = np.asarray(value.detach() if hasattr(value, "detach") else value)
    except Exception:  # noqa: BLE001 - a device tensor: the caller's checks refuse it
        return value
    return scalar_of(array[()]) if array.ndim == 0 else value


# What isinstance(_, numbers.Real) lets through but is no real number: truth values and
# NumPy's times (a timedelta64 is registered as an Integral).
_NOT_REAL = (bool, np.bool_, np.timedelta64, np.datetime64)
# The ml_dtypes float scalars NumPy does not count as numbers.Real.
_ML_FLOATS = frozenset(
    np.dtype(getattr(ml_dtypes, name))
    for name in ("bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz")
    if hasattr(ml_dtypes, name)
)


def check_real(
    name: str,
    value: Any,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    allow_inf: bool = False,
) -> float:
    """A real number (not bool, not complex); finite unless allow_inf; optional sign.
    A 0-d array (NumPy, JAX, torch: what `jnp.array(1.0)` gives) counts as its element."""
    if type(value) is not float:
        value = scalar_of(value)
        if isinstance(value, _NOT_REAL) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"{name} must be a real number, got {type(value).__name__} {show(value)}"
            )
        try:
            value = float(value)
        except OverflowError:  # an int (or Fraction) beyond the largest double
            raise OverflowError(
                f"{name} must be a finite real number, got {show(value)}, beyond float64"
            ) from None
        except (TypeError, ValueError):  # a Real that has no float (timedelta64)
            raise TypeError(
                f"{name} must be a real number, got {type(value).__name__} {show(value)}"
            ) from None
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if nonnegative and not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}; got {show(value)}")
    return value


def check_dtype(dtype: Any, *, complex_ok: bool = False) -> np.dtype:
    """One of the four float output types, given as a name or a NumPy/ml_dtypes dtype;
    with complex_ok (the samplers that define complex outputs), complex64 and complex128 too.
    """
    known = dtypes.BY_NAME.get(dtype) if type(dtype) is str else None
    if known is not None:
        return known.numpy
    if isinstance(dtype, str) and dtype.lower() in ("bfloat16", "bf16"):
        return np.dtype(ml_dtypes.bfloat16)
    try:
        resolved = np.dtype(dtype)
    except Exception:  # NumPy raises TypeError, ValueError or a warning for odd specs
        resolved = None
    if dtype is not None and resolved in dtypes.BY_NUMPY:
        return resolved
    if complex_ok and dtype is not None and resolved in dtypes.COMPLEX_BY_NUMPY:
        return resolved
    allowed = dtypes.NAMES_TEXT + (", " + ", ".join(dtypes.COMPLEX_NAMES) if complex_ok else "")
    raise ValueError(f"dtype must be one of {allowed}; got {show(dtype)}")


def check_shape(shape: Any) -> tuple[int, ...]:
    """A tuple of non-negative ints (or one int) whose element count fits in int64."""
    if type(shape) is tuple:  # the common case, without the ABC checks below
        for dim in shape:
            if type(dim) is not int or not 0 <= dim < _INDEX_LIMIT:
                break
        else:
            if 0 < math.prod(shape) < _INDEX_LIMIT:
                return shape
    if isinstance(shape, (numbers.Integral, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if (
        isinstance(shape, (str, bytes))
        or not isinstance(shape, (Sequence, np.ndarray))
        or (isinstance(shape, np.ndarray) and shape.ndim != 1)
    ):
        raise TypeError(f"shape must be a tuple of non-negative integers, got {show(shape)}")
    dims = []
    for axis, dim in enumerate(shape):
        if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"shape[{axis}] must be a non-negative integer, got {show(dim)}")
        size = int(dim)
        if size < 0:
            raise ValueError(f"shape[{axis}] must be >= 0, got {show(dim)}")
        if size >= _INDEX_LIMIT:
            raise OverflowError(f"shape[{axis}] must be < 2^63, got {show(dim)}")
        dims.append(size)
    # N.B. NumPy multiplies the nonzero axes even of an empty array, and refuses
    # (0, 2^62, 2^62): such a shape is refused here, named, like a too large one.
    if math.prod(dim for dim in dims if dim) >= _INDEX_LIMIT:
        what = "nonzero axes span" if 0 in dims else "has"
        raise OverflowError(f"shape {tuple(dims)} {what} more than 2^63 - 1 elements")
    return tuple(dims)


def check_region(region: Any, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(start, extent) of a box given as a tuple of slices (step 1), one per leading axis.

    Slices follow Python's rules for None and negative indices, but a bound past
    the end of the axis is an error rather than clipped: a region asks for
    elements of the full tensor, and silently returning fewer hides bugs.
    """
    if region is None:
        return (0,) * len(shape), shape
    if isinstance(region, slice):
        region = (region,)
    if not isinstance(region, tuple):
        raise TypeError(f"region must be a tuple of slices, got {type(region).__name__}")
    if len(region) > len(shape):
        raise ValueError(f"region has {len(region)} slices but shape {shape} has {len(shape)} axes")
    start, extent = [], []
    for axis, dim in enumerate(shape):
        part = region[axis] if axis < len(region) else slice(None)
        if not isinstance(part, slice):
            raise TypeError(f"region[{axis}] must be a slice, got {show(part)}")
        _region_step(axis, part.step)
        lo = _region_bound(axis, "start", part.start, dim, default=0)
        hi = _region_bound(axis, "stop", part.stop, dim, default=dim)
        if lo > hi:
            raise ValueError(f"region[{axis}] start {lo} is past its stop {hi}")
        start.append(lo)
        extent.append(hi - lo)
    return tuple(start), tuple(extent)


def _region_step(axis: int, step: Any) -> None:
    if step is None:
        return
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral):
        raise TypeError(f"region[{axis}].step must be 1 or None, got {show(step)}")
    if step != 1:
        raise ValueError(f"region[{axis}] must have step 1, got step {show(step)}")


def _region_bound(axis: int, which: str, value: Any, dim: int, *, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"region[{axis}].{which} must be an integer or None, got {show(value)}")
    value = int(value)
    resolved = value + dim if value < 0 else value
    if not 0 <= resolved <= dim:
        raise ValueError(
            f"region[{axis}].{which} = {show(value)} is out of bounds for axis {axis} of size {dim}"
        )
    return resolved


def named_arguments(arguments: dict[str, Any]) -> str:
    """'name=value, ...' for a message."""
    return ", ".join(f"{name}={show(value)}" for name, value in arguments.items())


def check_float32_range(name: str, value: float) -> None:
    """A finite parameter that enters the float32 computation as itself (a mean, a bound):
    beyond the float32 range it would become infinite there."""
    if abs(value) > FLOAT32_MAX:
        raise ValueError(
            f"{name}={value:g} is beyond the float32 range (±{FLOAT32_MAX:.8g}) "
            "in which every value is computed, whatever the output dtype"
        )


def check_constant(value: Any, dtype: np.dtype) -> float:
    """The `value` of a constant (constant, zeros, ones): a finite real that `dtype` can
    hold once rounded into it (it is never computed in float32). An integer beyond 2^53
    comes back rounded "to odd" for a narrower dtype, so that rounding it into dtype is
    its one rounding."""
    exact = scalar_of(value)
    value = check_real("value", value)
    if isinstance(exact, (int, np.integer)) and not isinstance(exact, (bool, np.bool_)):
        value = _integer_for(int(exact), dtype, value)
    check_representable(abs(value), dtype, {"value": value}, in_float32=False)
    return value


def _integer_for(n: int, dtype: np.dtype, nearest: float) -> float:
    """n as the binary64 value from which rounding into dtype is n's one rounding: the
    nearest for float64, else n rounded to odd (truncated, its last bit set if inexact),
    which a later rounding to 51 bits or fewer rounds as n itself."""
    if dtype == np.float64 or int(nearest) == n:
        return nearest
    truncated = nearest if abs(int(nearest)) < abs(n) else math.nextafter(nearest, 0.0)
    if not int(np.float64(truncated).view(np.uint64)) & 1:
        truncated = math.nextafter(truncated, math.copysign(math.inf, truncated))
    return truncated


def check_constant_array(value: Any, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """The `value` of a constant given as an array-like: real numbers (not bool, not
    complex), each finite and within what `dtype` holds once rounded into it, in an array
    that broadcasts to `shape` by NumPy's rule; returned as float64."""
    if isinstance(value, np.ma.MaskedArray) and np.ma.getmaskarray(value).any():
        raise TypeError("value is a masked array with masked elements: they have no value")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"value must be a real number or an array-like of them: {error}") from None
    if array.ndim > len(shape):
        raise ValueError(
            f"value has {array.ndim} axes; it must broadcast to the shape {shape}, which "
            f"has {len(shape)}"
        )
    if array.dtype == object:  # Python ints beyond int64, or a mix NumPy left as objects
        reals = all(
            isinstance(x, numbers.Real) and not isinstance(x, _NOT_REAL) for x in array.flat
        )
        if not reals:
            raise TypeError("value must be a real number or an array-like of real numbers")
        try:  # each as a scalar value is taken (an integer beyond 2^53 rounded once)
            values = np.array([_element(x, dtype) for x in array.flat]).reshape(array.shape)
        except OverflowError:
            raise OverflowError("value: an element is beyond float64's range") from None
        except (TypeError, ValueError):
            raise TypeError("value must be a real number or an array-like of them") from None
    elif array.dtype.kind in "iu" and array.size and int(np.abs(array).max()) > 2**53:
        values = np.array([_element(int(x), dtype) for x in array.flat]).reshape(array.shape)
    elif array.dtype.kind in "iuf":
        values = array.astype(np.float64)
    else:
        raise TypeError(
            f"value must be a real number or an array-like of real numbers, got {array.dtype} "
            f"elements ({type(value).__name__})"
        )
    if not np.isfinite(values).all():
        raise ValueError("value must hold only finite numbers")
    try:
        np.broadcast_shapes(values.shape, shape)
        broadcasts = np.broadcast_shapes(values.shape, shape) == shape
    except ValueError:
        broadcasts = False
    if not broadcasts:
        raise ValueError(
            f"value of shape {values.shape} does not broadcast to the shape {shape} "
            "(NumPy's rule: trailing axes equal or 1)"
        )
    if values.size:
        reach = float(np.abs(values).max())
        check_representable(reach, dtype, {"value": reach}, in_float32=False)
    return values


def _element(x: Any, dtype: np.dtype) -> float:
    """One element of an array constant, as check_constant takes a scalar."""
    nearest = float(x)
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        return _integer_for(int(x), dtype, nearest)
    return nearest


def check_representable(
    reach: float, dtype: np.dtype, arguments: dict[str, Any], *, in_float32: bool = True
) -> None:
    """Refuse parameters whose values could reach infinity.

    Sampled values are computed in float32 and then rounded (or widened) into
    `dtype`, so they must stay within float32's range and dtype's (`in_float32`);
    constants are rounded once into `dtype`, which alone bounds them. `arguments`
    are the parameters responsible, named in the message.
    """
    limit = dtypes.BY_NUMPY[dtype].largest
    if in_float32 and FLOAT32_MAX < limit:
        if reach > FLOAT32_MAX:
            raise ValueError(
                f"{named_arguments(arguments)}: values reach {reach:.6g}, beyond the float32 range "
                f"(±{FLOAT32_MAX:.6g}) in which they are computed before becoming {dtype.name}"
            )
        return
    if reach > limit:
        raise ValueError(
            f"{named_arguments(arguments)}: values reach {reach:.6g}, beyond the largest "
            f"{dtype.name} ({limit:.6g})"
        )


def check_params(params: Any, dtype: np.dtype, arguments: dict[str, Any]) -> None:
    """Refuse Params (the float32 constants of a transform) that could give NaN or inf.

    The transform is clamp(fma(scale, y, shift), lo, hi), y from x (uniform) or
    erfinv(fma(erf_scale, x, erf_shift)) (normal), |x| < 1 (docs/stream.md). With
    finite constants nothing is NaN, and an overflow to ±inf is clamped to a finite
    lo/hi; params.max_magnitude bounds |value| (clamp included), which must then fit
    float32 and the output dtype.
    """
    finite = math.isfinite
    if not (
        finite(params.erf_scale)
        and finite(params.erf_shift)
        and finite(params.scale)
        and finite(params.shift)
    ):
        raise ValueError(
            f"{named_arguments(arguments)}: the transform's float32 constants overflow "
            f"(every value is computed in float32, whose largest value is {FLOAT32_MAX:.6g})"
        )
    # N.B. the float32 strictly above a lower bound of FLOAT32_MAX is inf: the clamp
    # would then make every value infinite.
    if params.lo == math.inf or params.hi == -math.inf:
        raise ValueError(
            f"{named_arguments(arguments)}: the interval holds no finite float32 value "
            f"(every value is computed in float32, whose largest value is {FLOAT32_MAX:.6g})"
        )
    check_representable(params.max_magnitude, dtype, arguments)
