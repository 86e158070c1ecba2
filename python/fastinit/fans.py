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
from collections.abc import Sequence
from typing import Any

from . import _checks

LAYOUTS = {"torch": (1, 0), "jax": (-2, -1), "keras": (-2, -1)}


def _axis(name: str, axis: Any, ndim: int) -> int:
    if type(axis) is not int and (isinstance(axis, bool) or not isinstance(axis, numbers.Integral)):
        raise TypeError(f"{name} must be an integer axis, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for a shape with {ndim} axes")
    return int(axis) % ndim


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
    """compute_fans for a shape that already passed check_shape."""
    if type(batch_axis) is list:
        batch_axis = tuple(batch_axis)
    key = (shape, layout, in_axis, out_axis, batch_axis)
    try:
        hash(key)
    except TypeError:  # odd argument types: no cache, let the checks report them
        return _fans.__wrapped__(*key)
    return _fans(*key)


@functools.lru_cache(maxsize=4096)
def _fans(
    shape: tuple[int, ...], layout: str, in_axis: Any, out_axis: Any, batch_axis: Any
) -> tuple[int, int]:
    """compute_fans for checked shapes; cached, since models repeat their shapes."""
    _checks.check_choice("layout", layout, tuple(LAYOUTS))
    if len(shape) < 2:
        raise ValueError(
            f"fans need a shape with at least 2 axes, got {shape}; "
            "pass fan_in= / fan_out= explicitly for 0-d and 1-d tensors"
        )
    default_in, default_out = LAYOUTS[layout]
    ndim = len(shape)
    i = _axis("in_axis", default_in if in_axis is None else in_axis, ndim)
    o = _axis("out_axis", default_out if out_axis is None else out_axis, ndim)
    if isinstance(batch_axis, numbers.Integral):
        batch_axis = (batch_axis,)  # a bool is caught by _axis
    if isinstance(batch_axis, (str, bytes)) or not isinstance(batch_axis, Sequence):
        raise TypeError(f"batch_axis must be an axis or a sequence of axes, got {batch_axis!r}")
    batch = {_axis("batch_axis", b, ndim) for b in batch_axis}
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
        return math.sqrt(2.0 / (1 + slope**2))
    return 3.0 / 4
