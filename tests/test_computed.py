"""fastinit.computed (formulas of the stream's uniform draw) and literal constants.

Each computed value must be its formula's exact real value at u = (word + 1/2) / 2^32,
rounded once into the dtype: checked against an independent evaluation with Python's
fractions/decimal at 60 digits, for every element of small tensors in every dtype.
"""

from __future__ import annotations

import decimal
import json
import math

import fastinit
import ml_dtypes
import numpy as np
import pytest
from fastinit import checkpoint, computed, specs

DTYPES = ("float32", "float64", "float16", "bfloat16")
SOFTPLUS = {"low": 1e-3, "high": 0.1, "floor": 2e-3}
LOG_UNIFORM = {"low": 0.01, "high": 16.0}
_CONTEXT = decimal.Context(prec=60)


def _u(words: np.ndarray) -> list[decimal.Decimal]:
    return [(decimal.Decimal(int(w)) + decimal.Decimal("0.5")) / 2**32 for w in words.ravel()]


def _inverse_softplus(u: decimal.Decimal, low: float, high: float, floor: float) -> decimal.Decimal:
    c = _CONTEXT
    lo = c.ln(decimal.Decimal(low))
    dt = c.exp(c.add(lo, c.multiply(u, c.subtract(c.ln(decimal.Decimal(high)), lo))))
    dt = max(dt, decimal.Decimal(floor))
    # exp(dt) - 1 loses as many digits as dt has leading zeros: keep 60 after them.
    wide = decimal.Context(prec=60 - min(0, dt.adjusted()))
    return c.ln(wide.subtract(wide.exp(dt), 1))


def _log_of_uniform(u: decimal.Decimal, low: float, high: float) -> decimal.Decimal:
    c = _CONTEXT
    span = c.subtract(decimal.Decimal(high), decimal.Decimal(low))
    return c.ln(c.add(decimal.Decimal(low), c.multiply(u, span)))


def _rounded(exact: decimal.Decimal, dtype: str) -> float:
    """The dtype value nearest to `exact` (ties to even), found by exhaustive comparison of
    the two dtype values around it: independent of fastinit's rounding code."""
    np_dtype = np.dtype(getattr(ml_dtypes, dtype, None) or dtype)
    guess = np.array([float(exact)]).astype(np_dtype)
    bits = guess.view(f"u{np_dtype.itemsize}")
    around = np.concatenate([bits - 2, bits - 1, bits, bits + 1, bits + 2]).view(np_dtype)
    values = sorted({float(v) for v in around if math.isfinite(float(v))})
    below = max(v for v in values if decimal.Decimal(v) <= exact)
    above = min(v for v in values if decimal.Decimal(v) >= exact)
    d_below, d_above = exact - decimal.Decimal(below), decimal.Decimal(above) - exact
    if d_below != d_above:
        return below if d_below < d_above else above
    even = np.array([below]).astype(np_dtype).view(f"u{np_dtype.itemsize}")[0] % 2 == 0
    return below if even else above


@pytest.mark.parametrize("dtype", DTYPES)
def test_inverse_softplus_is_the_exact_value_rounded_once(dtype):
    values = computed.inverse_softplus_log_uniform((7, 9), 11, dtype=dtype, stream="dt", **SOFTPLUS)
    words = fastinit.random_bits(63, 11, stream="dt")
    expected = [_rounded(_inverse_softplus(u, **SOFTPLUS), dtype) for u in _u(words)]
    assert values.dtype.name == dtype and values.shape == (7, 9)
    np.testing.assert_array_equal(values.astype(np.float64).ravel(), expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_of_uniform_is_the_exact_value_rounded_once(dtype):
    values = computed.log_of_uniform((50,), 3, dtype=dtype, stream=9, **LOG_UNIFORM)
    expected = [
        _rounded(_log_of_uniform(u, **LOG_UNIFORM), dtype)
        for u in _u(fastinit.random_bits(50, 3, stream=9))
    ]
    np.testing.assert_array_equal(values.astype(np.float64), expected)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_tiny_dt_keeps_every_digit(dtype):
    """low=1e-300: dt spans 300 decades, so exp(dt) - 1 cancels ~300 digits; the values
    are still the exact ones rounded once (about ln dt, never -inf or a huge negative)."""
    params = {"low": 1e-300, "high": 50.0, "floor": None}
    n = 400 if dtype == "float64" else 1 << 20
    values = computed.inverse_softplus_log_uniform((n,), 7, dtype=dtype, low=1e-300, high=50.0)
    assert np.isfinite(values).all() and values.min() > -700
    words = fastinit.random_bits(n, 7)
    picked = range(0, n, max(1, n // 400))
    expected = [
        _rounded(_inverse_softplus(_u(words[i : i + 1])[0], **{**params, "floor": 0}), dtype)
        for i in picked
    ]
    np.testing.assert_array_equal(values[list(picked)].astype(np.float64), expected)


def test_the_callers_decimal_context_changes_nothing():
    reference = computed.log_of_uniform((500,), 1, low=1.0, high=16.0, dtype="float64")
    with decimal.localcontext() as context:
        context.prec = 2
        context.traps[decimal.Inexact] = True
        again = computed.log_of_uniform((500,), 1, low=1.0, high=16.0, dtype="float64")
    np.testing.assert_array_equal(again, reference)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_elements_at_a_rounding_midpoint_take_the_exact_path(dtype, monkeypatch):
    """Values spread 1e-13 around a midpoint of two dtype values near 0.4: binary64 alone
    cannot tell their side for a few dozen of them, which the exact path then decides;
    every element must still equal the reference."""
    np_dtype = np.dtype(getattr(ml_dtypes, dtype, None) or dtype)
    below = np.array([0.4]).astype(np_dtype)
    above = (below.view(f"u{np_dtype.itemsize}") + 1).view(np_dtype)
    midpoint = (float(below[0]) + float(above[0])) / 2
    low, high = math.exp(midpoint) * (1 - 1e-13), math.exp(midpoint) * (1 + 1e-13)
    exact_calls = []
    nearest = computed._nearest
    monkeypatch.setattr(computed, "_nearest", lambda *a: exact_calls.append(1) or nearest(*a))
    values = computed.log_of_uniform((4000,), 5, low=low, high=high, dtype=dtype)
    assert len(exact_calls) >= 5
    assert {float(v) for v in values} == {float(below[0]), float(above[0])}
    expected = [
        _rounded(_log_of_uniform(u, low, high), dtype) for u in _u(fastinit.random_bits(4000, 5))
    ]
    np.testing.assert_array_equal(values.astype(np.float64), expected)


def test_the_distribution_is_log_uniform_above_the_floor():
    """softplus of the values is dt: ln dt uniform on [ln low, ln high], clamped at floor
    (a KS distance of 6/sqrt(n) at n = 200k catches a 1% error in either bound)."""
    n = 200_000
    values = computed.inverse_softplus_log_uniform((n,), 1, **SOFTPLUS).astype(np.float64)
    dt = np.logaddexp(0.0, values)
    lo, hi = math.log(SOFTPLUS["low"]), math.log(SOFTPLUS["high"])
    floor = SOFTPLUS["floor"]
    clamped = np.isclose(dt, floor, rtol=1e-6)
    expected_clamped = (math.log(floor) - lo) / (hi - lo)
    assert abs(clamped.mean() - expected_clamped) <= 6 * math.sqrt(expected_clamped / n)
    logs = np.sort(np.log(dt[~clamped]))
    cdf = (logs - math.log(floor)) / (hi - math.log(floor))
    ks = np.abs(cdf - (np.arange(logs.size) + 0.5) / logs.size).max()
    assert ks <= 6 / math.sqrt(logs.size)
    assert dt.min() >= floor * (1 - 1e-6) and dt.max() <= SOFTPLUS["high"] * (1 + 1e-6)


@pytest.mark.parametrize("init", ["inverse_softplus_log_uniform", "log_of_uniform"])
def test_region_threads_and_the_checkpoint_windows_give_the_same_bits(init, tmp_path):
    sampler = getattr(computed, init)
    params = SOFTPLUS if init.startswith("inverse") else LOG_UNIFORM
    full = sampler((33, 17), 7, stream="w", threads=1, **params)
    region = (slice(5, 30, None), slice(3, 4))
    np.testing.assert_array_equal(
        sampler((33, 17), 7, stream="w", region=region, **params), full[region]
    )
    np.testing.assert_array_equal(sampler((33, 17), 7, stream="w", threads=2, **params), full)
    out = np.zeros((33, 17), np.float32)
    assert sampler((33, 17), 7, stream="w", out=out, **params) is out
    np.testing.assert_array_equal(out, full)
    spec = specs.check_spec(
        specs.ModelSpec(7, (specs.TensorSpec("w", (33, 17), "float32", init, dict(params)),))
    )
    checkpoint.write(spec, tmp_path / "one.safetensors", window=4096)
    from safetensors.numpy import load_file

    np.testing.assert_array_equal(load_file(tmp_path / "one.safetensors")["w"], full)
    assert not checkpoint.verify(tmp_path / "one.safetensors").mismatched


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"low": 0.0, "high": 1.0}, ValueError, "low must be > 0"),
        ({"low": 0.5, "high": 0.5}, ValueError, "low must be < high"),
        ({"low": 1e-3, "high": "0.1"}, TypeError, "high must be a real number"),
        ({"low": 1e-3, "high": 0.1, "floor": -1.0}, ValueError, "floor must be > 0"),
        ({"low": 1e-3, "high": math.inf}, ValueError, "high must be finite"),
    ],
)
def test_bad_parameters_are_refused_by_name(arguments, error, match):
    with pytest.raises(error, match=match):
        computed.inverse_softplus_log_uniform((4,), 0, **arguments)


# ---------------------------------------------------------------------------
# Literal constants (fastinit.constant with an array value; a spec's literal)


@pytest.mark.parametrize("dtype", DTYPES)
def test_an_array_constant_is_broadcast_and_each_element_rounded_once(dtype):
    literal = [[0.1], [1 / 3], [2.0 + 2.0**-9]]  # 2 + 2^-9: a bfloat16 tie -> even
    values = fastinit.constant((2, 3, 4), literal, dtype=dtype)
    expected = [_rounded(decimal.Decimal(row[0]), dtype) for row in literal]
    assert values.shape == (2, 3, 4)
    for row, value in enumerate(expected):
        assert (values[:, row, :].astype(np.float64) == value).all()
    region = (slice(1, 2), slice(1, 3), slice(0, 4, None))
    np.testing.assert_array_equal(
        fastinit.constant((2, 3, 4), literal, dtype=dtype, region=region), values[region]
    )


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ([1.0, 2.0], ValueError, "does not broadcast"),
        ([[1.0, 2.0, 3.0, 4.0]] * 2, ValueError, "does not broadcast"),
        (["a"], TypeError, "real numbers"),
        ([True, False, True, True], TypeError, "real numbers"),
        ([1j, 0, 0, 0], TypeError, "real numbers"),
        ([math.nan] * 4, ValueError, "finite"),
        ([1e6] * 4, ValueError, "largest float16"),
    ],
)
def test_a_bad_array_constant_is_refused(value, error, match):
    with pytest.raises(error, match=match):
        fastinit.constant((3, 4), value, dtype="float16")


def _literal_document(value):
    tensor = {"name": "a", "shape": [5, 3], "init": "constant", "params": {"value": value}}
    return {"format": specs.SPEC_FORMAT, "seed": 0, "tensors": [tensor]}


def test_a_spec_literal_round_trips_and_fills_windows_like_the_sampler(tmp_path):
    spec = specs.spec_from_json(_literal_document([1, 2.5, -3]))
    document = specs.spec_to_json(spec)
    assert document["tensors"][0]["params"] == {"value": [1.0, 2.5, -3.0]}
    assert specs.spec_from_json(json.loads(json.dumps(document))) == spec
    checkpoint.write(spec, tmp_path / "literal.safetensors", window=4096)
    from safetensors.numpy import load_file

    written = load_file(tmp_path / "literal.safetensors")["a"]
    np.testing.assert_array_equal(written, np.broadcast_to(np.float32([1, 2.5, -3]), (5, 3)))
    assert not checkpoint.verify(tmp_path / "literal.safetensors").mismatched


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ([1.0, 2.0], ValueError, "does not broadcast"),
        ([1.0, None, 2.0], TypeError, "must be a number"),
        ([1.0, True, 2.0], TypeError, "must be a number"),
        ([[1.0] * 3] * (specs.MAX_LITERAL // 3 + 1), ValueError, "MAX_LITERAL"),
    ],
)
def test_a_bad_spec_literal_is_refused_naming_the_tensor(value, error, match):
    with pytest.raises(error, match=rf"tensor 'a'.*{match}"):
        specs.spec_from_json(_literal_document(value))


@pytest.mark.parametrize("chunk", [7, 1000, 1 << 18])
def test_literals_and_formulas_fill_windows_a_chunk_at_a_time(chunk, tmp_path, monkeypatch):
    """Host-made values are written a bounded chunk at a time (periodic literals tiled,
    others by index); every chunk size gives the sampler's bits."""
    from fastinit import _windows
    from safetensors.numpy import load_file

    monkeypatch.setattr(_windows, "_HOST_CHUNK", chunk)
    rows = {"value": [0.1 * i for i in range(9)]}
    middle = {"value": [[0.5 * i] for i in range(6)]}
    tensors = (
        specs.TensorSpec("rows", (700, 9), "bfloat16", "constant", rows),
        specs.TensorSpec("middle", (5, 6, 7), "float16", "constant", middle),
        specs.TensorSpec("dt", (4321,), "float32", "inverse_softplus_log_uniform", dict(SOFTPLUS)),
    )
    spec = specs.check_spec(specs.ModelSpec(3, tensors))
    checkpoint.write(spec, tmp_path / "x.safetensors", window=4096, progress=False)
    written = load_file(tmp_path / "x.safetensors")
    for tensor in spec.tensors:
        np.testing.assert_array_equal(written[tensor.name], specs.sample_into(tensor, 3))
    assert not checkpoint.verify(tmp_path / "x.safetensors").mismatched


def test_log_of_uniform_from_zero_is_finite_and_exact():
    """low = 0: u is never 0, so ln(u high) is finite (at least ln(2^-33 high))."""
    values = computed.log_of_uniform((20_000,), 9, low=0.0, high=16.0)
    assert np.isfinite(values).all() and values.min() >= math.log(2**-33 * 16.0)
    words = fastinit.random_bits(20_000, 9)
    picked = range(0, 20_000, 97)
    expected = [
        _rounded(_log_of_uniform(_u(words[i : i + 1])[0], 0.0, 16.0), "float32") for i in picked
    ]
    np.testing.assert_array_equal(values[list(picked)].astype(np.float64), expected)


def _reference(formula: str, u: decimal.Decimal, low: float, high: float) -> decimal.Decimal:
    """The formula at 300 digits: far more than any cancellation below needs."""
    c = decimal.Context(prec=300)
    if formula == "log_of_uniform":
        return c.ln(
            c.add(
                decimal.Decimal(low),
                c.multiply(u, c.subtract(decimal.Decimal(high), decimal.Decimal(low))),
            )
        )
    lo = c.ln(decimal.Decimal(low))
    dt = c.exp(c.add(lo, c.multiply(u, c.subtract(c.ln(decimal.Decimal(high)), lo))))
    wide = decimal.Context(prec=300 - min(0, dt.adjusted()))
    return c.ln(wide.subtract(wide.exp(dt), 1))


@pytest.mark.parametrize(
    ("formula", "low", "high", "dtype", "target"),
    [
        # ln(expm1(dt)) crosses 0 at dt = ln 2: its binary64 error is far larger than
        # its size there, so the error bound must grow with dt e^dt / expm1(dt) and ln dt.
        ("inverse_softplus_log_uniform", 1e-300, 1.0, "float32", "root"),
        ("inverse_softplus_log_uniform", 0.6931471805599452, 0.6931471805599454, "float64", "root"),
        # ln(x) for x within 2^-51 of 1: 40 digits of x are too few for float64.
        ("log_of_uniform", math.nextafter(1.0, 0.0), 1.0 + 2.0**-51, "float64", None),
    ],
)
def test_cancellation_near_zero_is_still_rounded_once(formula, low, high, dtype, target):
    n = 4000 if dtype == "float32" else 100
    if target == "root":  # the n word values around the one where dt = ln 2
        c = decimal.Context(prec=60)
        lo = c.ln(decimal.Decimal(low))
        at = c.divide(c.subtract(c.ln(c.ln(2)), lo), c.subtract(c.ln(decimal.Decimal(high)), lo))
        first = int(at * 2**32) - n // 2
    else:
        first = 858_993_459 - n // 2  # about 2^32 / 5
    words = np.arange(first, first + n, dtype=np.uint32)  # word values where it cancels
    values = computed.evaluate(computed.FORMULAS[formula](low, high), words, np.dtype(dtype))
    expected = [_rounded(_reference(formula, u, low, high), dtype) for u in _u(words)]
    np.testing.assert_array_equal(values.astype(np.float64), expected)


@pytest.mark.parametrize(
    "sampler", [computed.log_of_uniform, computed.inverse_softplus_log_uniform]
)
def test_decimals_default_context_changes_nothing(sampler):
    reference = sampler((300,), 1, low=0.001, high=16.0, dtype="float64")
    saved = decimal.DefaultContext.traps[decimal.Inexact], decimal.DefaultContext.prec
    decimal.DefaultContext.traps[decimal.Inexact] = True
    decimal.DefaultContext.prec = 3
    try:
        again = sampler((300,), 1, low=0.001, high=16.0, dtype="float64")
    finally:
        decimal.DefaultContext.traps[decimal.Inexact], decimal.DefaultContext.prec = saved
    np.testing.assert_array_equal(again, reference)
