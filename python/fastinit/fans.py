"""Fan-in / fan-out of a weight shape, and PyTorch's gain table.

One rule covers every layout (JAX's): the receptive field is the product of all
axes other than the input, output and batch axes; fan_in = shape[in_axis] * field,
fan_out = shape[out_axis] * field; batch axes count towards neither.

Layouts:
- "torch" (default): (out, in, *receptive_field), i.e. in_axis=1, out_axis=0.
  Same result as torch.nn.init._calculate_fan_in_and_fan_out.
- "jax" / "keras": (*receptive_field, in, out), i.e. in_axis=-2, out_axis=-1,
  the convention of jax.nn.initializers and Keras kernels.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _checks

LAYOUTS = {"torch": (1, 0), "jax": (-2, -1), "keras": (-2, -1)}


def _axis_type(name: str, axis: Any) -> int:
    """An axis argument as a Python int (any integer but bool); its range needs the shape."""
    if type(axis) is int:
        return axis
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name} must be an integer axis, got {_checks.show(axis)}")
    return operator.index(axis)


def check_fan_axes(in_axis: Any, out_axis: Any, batch_axis: Any) -> tuple[Any, Any, tuple]:
    """in_axis, out_axis (None or an axis) and batch_axis (an axis or a sequence of them)
    type-checked and normalized to Python ints, so that caches keyed on them never let
    True or 1.0 pass for 1."""
    if in_axis is not None:
        in_axis = _axis_type("in_axis", in_axis)
    if out_axis is not None:
        out_axis = _axis_type("out_axis", out_axis)
    if isinstance(batch_axis, numbers.Integral) and not isinstance(batch_axis, (bool, np.bool_)):
        return in_axis, out_axis, (operator.index(batch_axis),)
    if isinstance(batch_axis, (str, bytes)) or not isinstance(batch_axis, (Sequence, np.ndarray)):
        raise TypeError(
            f"batch_axis must be an axis or a sequence of axes, got {_checks.show(batch_axis)}"
        )
    if isinstance(batch_axis, np.ndarray) and batch_axis.ndim != 1:
        raise TypeError(f"batch_axis must be an axis or a sequence of axes, got {batch_axis!r}")
    batch = tuple(_axis_type(f"batch_axis[{k}]", b) for k, b in enumerate(batch_axis))
    return in_axis, out_axis, batch


def _axis_in_range(name: str, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{name}={_checks.show(axis)} is out of range for a shape with {ndim} axes"
        )
    return axis % ndim


def compute_fans(
    shape: Sequence[int],
    *,
    layout: str = "torch",
    in_axis: int | None = None,
    out_axis: int | None = None,
    batch_axis: int | Sequence[int] = (),
) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of `shape`; needs at least 2 axes."""
    return fans_of_checked_shape(_checks.check_shape(shape), layout, in_axis, out_axis, batch_axis)


def fans_of_checked_shape(
    shape: tuple[int, ...], layout: Any, in_axis: Any, out_axis: Any, batch_axis: Any
) -> tuple[int, int]:
    """compute_fans for a shape that already passed check_shape. Every argument is
    checked on every call; only the arithmetic on checked values is cached."""
    _checks.check_choice("layout", layout, tuple(LAYOUTS))
    in_axis, out_axis, batch_axis = check_fan_axes(in_axis, out_axis, batch_axis)
    return _fans(shape, str(layout), in_axis, out_axis, batch_axis)


@functools.lru_cache(maxsize=4096)
def _fans(
    shape: tuple[int, ...],
    layout: str,
    in_axis: int | None,
    out_axis: int | None,
    batch_axis: tuple[int, ...],
) -> tuple[int, int]:
    """compute_fans of checked, normalized arguments; cached, since models repeat shapes."""
    if len(shape) < 2:
        raise ValueError(
            f"fans need a shape with at least 2 axes, got {shape}; "
            "pass fan_in= / fan_out= explicitly for 0-d and 1-d tensors"
        )
    default_in, default_out = LAYOUTS[layout]
    ndim = len(shape)
    i = _axis_in_range("in_axis", default_in if in_axis is None else in_axis, ndim)
    o = _axis_in_range("out_axis", default_out if out_axis is None else out_axis, ndim)
    batch = {_axis_in_range("batch_axis", b, ndim) for b in batch_axis}
    if i == o or i in batch or o in batch:
        raise ValueError(
            f"in_axis ({i}), out_axis ({o}) and batch_axis {sorted(batch)} must be distinct axes"
        )
    field = math.prod(d for axis, d in enumerate(shape) if axis not in (i, o) and axis not in batch)
    return shape[i] * field, shape[o] * field


_UNIT_GAIN = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)
NONLINEARITIES = (*_UNIT_GAIN, "tanh", "relu", "leaky_relu", "selu")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """Recommended gain for a nonlinearity, PyTorch's table.

    linear, conv*, conv_transpose*, sigmoid: 1; tanh: 5/3; relu: sqrt(2);
    leaky_relu: sqrt(2 / (1 + negative_slope^2)), negative_slope = param (default 0.01);
    selu: 3/4 (Klambauer et al. 2017, as in PyTorch).
    """
    _checks.check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    if nonlinearity in _UNIT_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        slope = _checks.check_real("param (negative_slope)", slope)
        if abs(slope) < 1e150:
            return math.sqrt(2.0 / (1 + slope**2))
        return math.sqrt(2.0) / math.hypot(1.0, slope)  # the same value, without slope² overflowing
    return 3.0 / 4
