"""Values a model computes from a uniform draw rather than samples with a transform.

    values = inverse_softplus_log_uniform((1536,), seed, low=1e-3, high=0.1, floor=1e-4)
    values = log_of_uniform((16,), seed, low=1.0, high=16.0)

State-space models (Mamba, Mamba-2, Jamba, Qwen3-Next ...) initialize a few tensors
with a formula of a uniform variable: the bias of the time step dt as the inverse of
softplus of a log-uniform dt, and A_log as the log of a uniform A. These are those
formulas on fastinit's stream, so that a spec can name them (docs/spec.md):

- u_i = (w_i + 1/2) / 2^32, w_i the stream's word i (fastinit.random_bits): exact
  in binary64, in the open interval (0, 1);
- inverse_softplus_log_uniform: dt = max(exp(ln low + u (ln high - ln low)), floor),
  value = ln(expm1(dt)) (the x with softplus(x) = dt); floor=None: no floor;
- log_of_uniform: value = ln(low + u (high - low)).

Each value is the exact real result of its formula rounded once into dtype. It is
evaluated in binary64 with NumPy and, for the rare element whose binary64 result is
not clearly on one side of a rounding boundary of dtype (and for every float64
output), again with 40 significant digits (Python's decimal, the same on every
machine): so the bits never depend on the machine's libm.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from . import _checks, _fill
from .initializers import check_request

__all__ = ["inverse_softplus_log_uniform", "log_of_uniform"]

_WORD_SCALE = 2.0**-32
# A bound on the binary64 evaluation's error, relative and absolute (the formulas'
# errors are a few tens of ulps of binary64 at most: 2^-40 leaves a factor ~100).
_RELATIVE_MARGIN = 2.0**-40
_ABSOLUTE_MARGIN = 2.0**-48
_DIGITS = decimal.Context(prec=40)
# Enough digits for the difference of a binary64 value (at most 767 significant digits)
# and a 40-digit one to be exact.
_EXACT = decimal.Context(prec=1200)


class Formula(NamedTuple):
    """A formula of u: its binary64 evaluation (arrays) and its exact one (one Decimal)."""

    fast: Callable[[np.ndarray], np.ndarray]
    exact: Callable[[decimal.Decimal], decimal.Decimal]


def _check_range(low: Any, high: Any, *, positive: bool) -> tuple[float, float]:
    """low < high, both finite; low > 0 (positive) or >= 0."""
    low = _checks.check_real("low", low, positive=positive, nonnegative=True)
    high = _checks.check_real("high", high, positive=True)
    if not low < high:
        raise ValueError(f"low must be < high, got low={low} and high={high}")
    return low, high


def inverse_softplus_formula(low: Any, high: Any, floor: Any = None) -> Formula:
    """The checked formula of inverse_softplus_log_uniform."""
    low, high = _check_range(low, high, positive=True)
    if floor is not None:
        floor = _checks.check_real("floor", floor, positive=True)
    lo_log, hi_log = math.log(low), math.log(high)
    floor_log = -math.inf if floor is None else math.log(floor)

    def fast(u: np.ndarray) -> np.ndarray:
        # In log space: dt may be far below float64's range (low=1e-320) while ln dt is not.
        log_dt = np.maximum(lo_log + u * (hi_log - lo_log), floor_log)
        dt = np.exp(log_dt)
        # ln(expm1(x)) = ln x + x/2 + x^2/24 + O(x^4): for tiny dt without exp's underflow.
        series = log_dt + dt / 2 + dt * dt / 24
        return np.where(dt < 1e-5, series, np.log(np.expm1(np.maximum(dt, 1e-5))))

    c = _DIGITS
    exact_lo_log = decimal.Decimal(low).ln(c)
    exact_span = c.subtract(decimal.Decimal(high).ln(c), exact_lo_log)
    exact_floor = decimal.Decimal(0 if floor is None else floor)

    def exact(u: decimal.Decimal) -> decimal.Decimal:
        dt = max(c.add(exact_lo_log, c.multiply(u, exact_span)).exp(c), exact_floor)
        # exp(dt) - 1 cancels dt's leading digits: as many more digits as dt has zeros.
        wide = decimal.Context(prec=c.prec + max(0, -dt.adjusted()))
        return wide.subtract(dt.exp(wide), 1).ln(c)

    _check_finite("inverse_softplus_log_uniform", fast(np.array([0.0, 1.0])))
    return Formula(fast, exact)


def log_of_uniform_formula(low: Any, high: Any) -> Formula:
    """The checked formula of log_of_uniform (low may be 0: u is never 0)."""
    low, high = _check_range(low, high, positive=False)

    def fast(u: np.ndarray) -> np.ndarray:
        return np.log(low + u * (high - low))

    c = _DIGITS
    exact_low = decimal.Decimal(low)
    exact_span = c.subtract(decimal.Decimal(high), exact_low)

    def exact(u: decimal.Decimal) -> decimal.Decimal:
        return c.add(exact_low, c.multiply(u, exact_span)).ln(c)

    return Formula(fast, exact)


def _check_finite(name: str, ends: np.ndarray) -> None:
    if not np.isfinite(ends).all():
        raise ValueError(f"{name}: the parameters give non-finite values ({ends.tolist()})")


def evaluate(formula: Formula, words: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The formula at u = (word + 1/2) / 2^32 of each word, rounded once into dtype."""
    u = (words.astype(np.float64) + 0.5) * _WORD_SCALE
    approx = formula.fast(u)
    result = _fill.round_all(approx, dtype)
    if dtype == np.float64:
        unsure = np.ones(approx.shape, dtype=bool)
    else:
        margin = np.abs(approx) * _RELATIVE_MARGIN + _ABSOLUTE_MARGIN
        below = _fill.round_all(approx - margin, dtype)
        above = _fill.round_all(approx + margin, dtype)
        unsure = (below != result) | (above != result)
    for index in np.flatnonzero(unsure.reshape(-1)):
        exact = formula.exact(decimal.Decimal(float(u.flat[index])))
        result.flat[index] = _nearest(exact, dtype)
    _check_finite("computed values", result.astype(np.float64))
    return result


def _nearest(exact: decimal.Decimal, dtype: np.dtype) -> Any:
    """The dtype value nearest to `exact`, ties to even: the neighbours of the binary64
    rounding compared exactly (a binary64 rounding first could round twice), in a context
    of our own (the caller's decimal context never decides a bit)."""
    if not exact.is_finite():
        raise ValueError(f"computed values: a formula's exact value is {exact}")
    guess = _fill.round_once(float(exact), dtype)
    bits = np.array([guess]).view(f"u{dtype.itemsize}")
    around = np.concatenate([bits - 1, bits, bits + 1]).view(dtype)
    candidates = [value for value in around if math.isfinite(float(value))]

    def distance(value: Any) -> tuple[decimal.Decimal, int]:
        odd = int(np.array([value]).view(f"u{dtype.itemsize}")[0]) & 1
        return _EXACT.abs(_EXACT.subtract(decimal.Decimal(float(value)), exact)), odd

    return min(candidates, key=distance)


def _computed(
    formula: Formula,
    shape: Any,
    seed: Any,
    dtype: Any,
    stream: Any,
    out: Any,
    region: Any,
    threads: Any,
    device: Any,
) -> Any:
    request = check_request(shape, seed, dtype, stream, region, threads, device)

    def compute() -> np.ndarray:
        return evaluate(formula, _fill.region_words(request), request.dtype)

    return _fill.write_values(request.extent, request.dtype, out, request.device, compute)


def inverse_softplus_log_uniform(
    shape: Sequence[int],
    seed: int,
    *,
    low: float,
    high: float,
    floor: float | None = None,
    dtype: Any = "float32",
    stream: int | str = 0,
    out: Any = None,
    region: tuple[slice, ...] | None = None,
    threads: int | None = None,
    device: Any = None,
) -> Any:
    """ln(expm1(dt)) with dt log-uniform on [low, high] and at least `floor` (None: no
    floor): the bias whose softplus is dt, as Mamba initializes dt_proj.bias with
    low=time_step_min, high=time_step_max, floor=time_step_floor. 0 < low < high."""
    formula = inverse_softplus_formula(low, high, floor)
    return _computed(formula, shape, seed, dtype, stream, out, region, threads, device)


def log_of_uniform(
    shape: Sequence[int],
    seed: int,
    *,
    low: float,
    high: float,
    dtype: Any = "float32",
    stream: int | str = 0,
    out: Any = None,
    region: tuple[slice, ...] | None = None,
    threads: int | None = None,
    device: Any = None,
) -> Any:
    """ln(A) with A uniform on [low, high], 0 <= low < high: A_log as Qwen3-Next and
    OLMo-hybrid initialize it (u is never 0, so low = 0 still gives finite values)."""
    formula = log_of_uniform_formula(low, high)
    return _computed(formula, shape, seed, dtype, stream, out, region, threads, device)


FORMULAS: dict[str, Callable[..., Formula]] = {
    "inverse_softplus_log_uniform": inverse_softplus_formula,
    "log_of_uniform": log_of_uniform_formula,
}
