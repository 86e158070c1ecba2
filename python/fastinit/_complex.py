"""Complex outputs: the Params with which normal, uniform, truncated_normal, variance_scaling
(and the named initializers) fill complex64 / complex128.

A complex tensor of shape S is written as the real tensor of shape (*S, 2) of its
component dtype (_fill), so element i takes stream words 2i and 2i + 1 (docs/stream.md,
"Complex outputs"). The samplers check their arguments as for a real output first;
the functions here take those checked values, refuse what has no complex meaning
(naming the argument), and build the Params, following JAX's complex initializers:

- normal(std): real and imaginary parts independent, each Normal(0, std²/2), so
  E|z|² = std²; exactly the real normal of shape (*S, 2) with std / √2.
- uniform(low=-r, high=r): uniform on the disk |z| < r (variance_scaling's disk).
- truncated_normal(std, lower=-k, upper=k): the same complex normal cut in modulus,
  |z| < k·std (|z|²/std² is Exp(1) cut at k²), by the polar pair transform.
- variance_scaling: "normal" as normal; "uniform" uniform on the disk of radius
  sqrt(2 · variance) (JAX's unit-variance disk times sqrt(variance)); "truncated_normal"
  the complex normal cut at |z| < 2 std, std = sqrt(variance) / COMPLEX_TRUNCATED_STD,
  so that E|z|² is exactly the variance.
"""

from __future__ import annotations

import math
from typing import Any

from . import _checks, _core

_SQRT2 = 1.4142135623730951  # the binary64 sqrt(2) of docs/stream.md
# sqrt(E|z|²) of the unit complex normal cut to |z| < 2: |z|² ~ Exp(1) cut at 4 has mean
# (1 - 5 e^-4) / (1 - e^-4). JAX divides by 0.95311164380491208 = sqrt(1 - 5 e^-4)
# instead (its variance comes out 1.9% above scale / n).
COMPLEX_TRUNCATED_STD = 0.9619618280082135
_FLOAT32_TINY = 2.0**-126  # the smallest normal float32
JAX_COMPLEX_TRUNCATED_STD = 0.95311164380491208


def normal_params(arguments: dict[str, Any]) -> Any:
    """Params of normal(mean, std) for a complex dtype; `arguments` checked by normal."""
    _refuse_mean(arguments["mean"])
    return _core.normal_params(0.0, arguments["std"] / _SQRT2)


def truncated_normal_params(arguments: dict[str, Any]) -> Any:
    """Params of truncated_normal for a complex dtype: the bounds must be lower=-k,
    upper=k (units of std), which cut the modulus at k·std; `arguments` checked."""
    if "a" in arguments:
        raise ValueError(
            "a/b: absolute bounds have no complex meaning; give lower=-k, upper=k (units of "
            "std), which cut the modulus |z| at k·std"
        )
    _refuse_mean(arguments["mean"])
    lower, upper = arguments["lower"], arguments["upper"]
    if lower != -upper:
        raise ValueError(
            f"lower/upper: a complex output is cut in modulus, |z| < upper·std, so lower must "
            f"be -upper; got lower={lower!r}, upper={upper!r}"
        )
    if upper * upper / 2 < _FLOAT32_TINY:
        raise ValueError(
            f"upper={upper!r}: a modulus cut below about 1.5e-19 std has no float32 "
            "resolution (the transform's c/2 = (1 - exp(-upper²))/2 would underflow)"
        )
    return _core.polar_truncated_params(arguments["std"], upper)


def uniform_params(arguments: dict[str, Any]) -> Any:
    """Params of uniform(low=-r, high=r) for a complex dtype: uniform on the disk |z| < r
    (up to float32 rounding of the radius, at most r 2^-22), the disk variance_scaling's
    "uniform" draws (radius sqrt(2) x scale), E|z|² = r²/2; `arguments` checked by
    uniform. Other intervals have no complex meaning."""
    low, high = arguments["low"], arguments["high"]
    if low != -high or not high > 0:
        raise ValueError(
            f"low/high: a complex uniform is the disk |z| < r, given as low=-r, high=r "
            f"(r > 0); got low={low!r}, high={high!r}"
        )
    return _core.polar_disk_params(high / _SQRT2)


def variance_params(distribution: str, variance: float, arguments: dict[str, Any]) -> Any:
    """Params of variance_scaling's `distribution` with E|z|² = variance, for complex."""
    std = math.sqrt(variance)
    if not std <= _checks.FLOAT32_MAX:  # inf included: scale / n overflowed
        raise ValueError(
            f"{_checks.named_arguments(arguments)}: the {distribution} std {std:.6g} is beyond "
            "the float32 range in which values are computed"
        )
    if distribution == "normal":
        return _core.normal_params(0.0, std / _SQRT2)
    if distribution == "uniform":
        return _core.polar_disk_params(std)
    return _core.polar_truncated_params(std / COMPLEX_TRUNCATED_STD, 2.0)


def _refuse_mean(mean: float) -> None:
    if mean != 0:
        raise ValueError(f"mean={mean:g}: complex outputs are centred; mean must be 0")
