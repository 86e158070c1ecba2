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
evaluated in binary64 with NumPy, with a bound on that evaluation's error; for the rare
element whose bound straddles a rounding boundary of dtype (and for every float64
output) it is evaluated with Python's decimal, in contexts of our own, with as many
digits as it takes to decide the rounding: so the bits never depend on the machine's
libm or on the caller's decimal context (docs/stream.md section 8).
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
_ULP = 2.0**-52  # binary64's relative spacing
# Factor of safety on the binary64 error bounds below (each counts a few ulps per step).
_SAFETY = 8.0
# Digits of the first exact evaluation; doubled until the bound decides the rounding.
_FIRST_DIGITS = 40
_MAX_DIGITS = 5120


def _context(digits: int) -> decimal.Context:
    """A decimal context of our own, every field given: nothing of the caller's (their
    context or decimal.DefaultContext) reaches a bit, and nothing traps."""
    return decimal.Context(
        prec=digits, rounding=decimal.ROUND_HALF_EVEN, Emin=-999_999_999, Emax=999_999_999,
        capitals=1, clamp=0, flags=[], traps=[],
    )  # fmt: skip


# Enough digits for the difference of a binary64 value (at most 767 significant digits)
# and an exact result of up to _MAX_DIGITS digits to be exact.
_EXACT = _context(_MAX_DIGITS + 800)


class Formula(NamedTuple):
    """A formula of u, in two parts:
    fast(u): its binary64 value and a bound on that value's error (arrays);
    exact(u, digits): its value and a bound on that value's error, evaluated with
    `digits` significant digits (one Decimal u)."""

    fast: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    exact: Callable[[decimal.Decimal, int], tuple[decimal.Decimal, decimal.Decimal]]


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
    reach = abs(lo_log) + abs(hi_log)

    def fast(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # In log space: dt may be far below float64's range (low=1e-320) while ln dt is not.
        log_dt = np.maximum(lo_log + u * (hi_log - lo_log), floor_log)
        dt = np.exp(log_dt)
        small = dt < 1e-5
        grown = np.expm1(np.maximum(dt, 1e-5))
        # ln(expm1(x)) = ln x + x/2 + x^2/24 + O(x^4): for tiny dt without exp's underflow.
        value = np.where(small, log_dt + dt / 2 + dt * dt / 24, np.log(grown))
        # ln dt is off by up to (|ln low| + |ln high|) ulps; d value / d ln dt is
        # dt e^dt / expm1(dt) (about 1 for small dt, dt for large); then expm1 and log.
        gain = np.where(small, 1.0, dt * (grown + 1.0) / grown)
        return value, _SAFETY * _ULP * (gain * (reach + 1.0) + np.abs(value) + 1.0)

    exact_low, exact_high = decimal.Decimal(low), decimal.Decimal(high)
    exact_floor = decimal.Decimal(0 if floor is None else floor)

    def exact(u: decimal.Decimal, digits: int) -> tuple[decimal.Decimal, decimal.Decimal]:
        c = _context(digits)
        unit = c.power(10, 1 - digits)  # each operation's relative error, at most
        lo = c.ln(exact_low)
        log_dt = c.add(lo, c.multiply(u, c.subtract(c.ln(exact_high), lo)))
        dt = max(c.exp(log_dt), exact_floor)
        # dt is off by (|ln low| + |ln high| + 4) units, relatively; exp(dt) - 1 cancels
        # dt's leading zeros, so it gets as many more digits.
        dt_error = c.multiply(c.add(c.add(c.abs(lo), c.abs(c.ln(exact_high))), 4), unit)
        wide = _context(digits + max(0, -dt.adjusted()))
        grown = wide.subtract(wide.exp(dt), 1)
        value = c.ln(grown)
        # d value / d dt = e^dt / expm1(dt): times dt's absolute error, plus ln's own.
        gain = c.divide(c.exp(dt), grown)
        own = c.multiply(c.add(c.abs(value), 2), unit)
        bound = c.add(c.multiply(c.multiply(gain, dt), dt_error), own)
        return value, c.multiply(bound, 4)

    _check_finite("inverse_softplus_log_uniform", fast(np.array([0.0, 1.0]))[0])
    return Formula(fast, exact)


def log_of_uniform_formula(low: Any, high: Any) -> Formula:
    """The checked formula of log_of_uniform (low may be 0: u is never 0)."""
    low, high = _check_range(low, high, positive=False)

    def fast(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        value = np.log(low + u * (high - low))
        # low + u (high - low) adds nonnegative terms: a few ulps relative; then log.
        return value, _SAFETY * _ULP * (np.abs(value) + 4.0)

    exact_low, exact_high = decimal.Decimal(low), decimal.Decimal(high)

    def exact(u: decimal.Decimal, digits: int) -> tuple[decimal.Decimal, decimal.Decimal]:
        c = _context(digits)
        unit = c.power(10, 1 - digits)
        value = c.ln(c.add(exact_low, c.multiply(u, c.subtract(exact_high, exact_low))))
        return value, c.multiply(c.add(c.abs(value), 4), unit)

    return Formula(fast, exact)


def _check_finite(name: str, ends: np.ndarray) -> None:
    if not np.isfinite(ends).all():
        raise ValueError(f"{name}: the parameters give non-finite values ({ends.tolist()})")


def evaluate(formula: Formula, words: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The formula at u = (word + 1/2) / 2^32 of each word, rounded once into dtype: the
    binary64 value where its error bound leaves one rounding possible, else the exact
    evaluation with as many digits as it takes (docs/stream.md section 8)."""
    u = (words.astype(np.float64) + 0.5) * _WORD_SCALE
    approx, margin = formula.fast(u)
    result = _fill.round_all(approx, dtype)
    if dtype == np.float64:
        unsure = np.ones(approx.shape, dtype=bool)
    else:
        below = _fill.round_all(approx - margin, dtype)
        above = _fill.round_all(approx + margin, dtype)
        unsure = (below != result) | (above != result) | ~np.isfinite(margin)
    for index in np.flatnonzero(unsure.reshape(-1)):
        result.flat[index] = _exactly(formula, decimal.Decimal(float(u.flat[index])), dtype)
    _check_finite("computed values", result.astype(np.float64))
    return result


def _exactly(formula: Formula, u: decimal.Decimal, dtype: np.dtype) -> Any:
    """The dtype value nearest to the formula's exact value at u: evaluated with twice the
    digits until its error bound leaves one rounding (Ziv's strategy)."""
    digits = _FIRST_DIGITS
    while True:
        value, bound = formula.exact(u, digits)
        if not value.is_finite():
            raise ValueError(f"computed values: a formula's exact value is {value}")
        low = _nearest(_EXACT.subtract(value, bound), dtype)
        high = _nearest(_EXACT.add(value, bound), dtype)
        if _same(low, high):
            return low
        if digits >= _MAX_DIGITS:
            raise ValueError(
                f"computed values: {_MAX_DIGITS} digits do not decide the rounding at u={u}"
            )
        digits *= 2


def _same(a: Any, b: Any) -> bool:
    return bool(np.array([a]).view(np.uint8).tobytes() == np.array([b]).view(np.uint8).tobytes())


def _nearest(exact: decimal.Decimal, dtype: np.dtype) -> Any:
    """The dtype value nearest to `exact`, ties to even: the neighbours of the binary64
    rounding compared exactly (a binary64 rounding first could round twice)."""
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
