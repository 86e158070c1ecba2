"""Fan-in / fan-out of a weight shape, and PyTorch's gain table.

Three rules, each its peer's exactly (docs/conventions.md has the table):

- JAX's (jax.nn.initializers): in_axis, out_axis and batch_axis each name one axis
  or a sequence of axes (possibly empty); the receptive field is the product of every
  axis named by none of them; fan_in = prod(shape[in_axis]) * field, fan_out =
  prod(shape[out_axis]) * field; batch axes count towards neither. Every layout uses
  this rule, with its own default in_axis / out_axis:
  - "torch" (default): (out, in, *receptive_field), i.e. in_axis=1, out_axis=0.
    Same result as torch.nn.init._calculate_fan_in_and_fan_out.
  - "jax": (*receptive_field, in, out), i.e. in_axis=-2, out_axis=-1.
- Keras 3's (keras.initializers compute_fans), layout="keras" with no axes given:
  0-d -> (1, 1), 1-d -> (n, n), 2-d -> (shape[0], shape[1]), more axes -> JAX's rule
  with in_axis=-2, out_axis=-1 (so for 2 or more axes "keras" and "jax" agree).
- Keras's explicit axes, input_axes= and output_axes= together (as EinsumDense passes
  them): fan_in = prod(shape[input_axes]), fan_out = prod(shape[output_axes]); every
  other axis is ignored, whatever the layout.

Differences from the peers, by design: an axis named twice (within one argument or
across them) is a ValueError (JAX divides by it twice, Keras multiplies it twice); an
axis out of range is a ValueError naming its argument (Keras: IndexError); only one of
input_axes / output_axes, or either of them mixed with in_axis / out_axis /
batch_axis, is a ValueError (Keras ignores a lone one); fans are exact ints (JAX's
are floats, NaN for a zero-size axis).
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

# An axis argument after check_fan_axes: one Python int, or a tuple of them.
Axes = int | tuple[int, ...]


def _axis_type(name: str, axis: Any) -> int:
    """An axis argument as a Python int (any integer but bool); its range needs the shape."""
    if type(axis) is int:
        return axis
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name} must be an integer axis, got {_checks.show(axis)}")
    return operator.index(axis)


def _axes_type(name: str, axes: Any) -> Axes:
    """An axis or a sequence of axes as a Python int or a tuple of Python ints."""
    if type(axes) is int:
        return axes
    if isinstance(axes, numbers.Integral) and not isinstance(axes, (bool, np.bool_)):
        return operator.index(axes)
    if isinstance(axes, (str, bytes)) or not isinstance(axes, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be an axis or a sequence of axes, got {_checks.show(axes)}")
    if isinstance(axes, np.ndarray) and axes.ndim != 1:
        raise TypeError(f"{name} must be an axis or a sequence of axes, got {axes!r}")
    return tuple(_axis_type(f"{name}[{k}]", a) for k, a in enumerate(axes))


def _as_tuple(axes: Axes) -> tuple[int, ...]:
    return (axes,) if type(axes) is int else axes  # type: ignore[return-value]


def check_fan_axes(
    in_axis: Any,
    out_axis: Any,
    batch_axis: Any,
    input_axes: Any = None,
    output_axes: Any = None,
) -> tuple[Any, Any, tuple[int, ...], Any, Any]:
    """The axis arguments type-checked and normalized, so that caches keyed on them never
    let True or 1.0 pass for 1: in_axis / out_axis None, an int or a tuple of ints;
    batch_axis a tuple; input_axes / output_axes None or tuples (both or neither, and
    never with in_axis / out_axis / batch_axis). Ranges need the shape (see _fans)."""
    if in_axis is not None:
        in_axis = _axes_type("in_axis", in_axis)
    if out_axis is not None:
        out_axis = _axes_type("out_axis", out_axis)
    batch = _as_tuple(_axes_type("batch_axis", batch_axis))
    if input_axes is None and output_axes is None:
        return in_axis, out_axis, batch, None, None
    if input_axes is None or output_axes is None:
        given, missing = ("input_axes", "output_axes")[:: 1 if output_axes is None else -1]
        raise ValueError(
            f"{given} needs {missing}: Keras's explicit fans take both (fan_in = "
            "prod(shape[input_axes]), fan_out = prod(shape[output_axes])), or neither"
        )
    if in_axis is not None or out_axis is not None or batch:
        raise ValueError(
            "input_axes / output_axes (Keras's fans) cannot be mixed with in_axis / "
            f"out_axis / batch_axis (JAX's); got in_axis={_checks.show(in_axis)}, "
            f"out_axis={_checks.show(out_axis)}, batch_axis={batch}"
        )
    inputs = _as_tuple(_axes_type("input_axes", input_axes))
    outputs = _as_tuple(_axes_type("output_axes", output_axes))
    return None, None, (), inputs, outputs


def _axis_in_range(name: str, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{name}={_checks.show(axis)} is out of range for a shape with {ndim} axes"
        )
    return axis % ndim


def _axes_in_range(name: str, axes: Axes, ndim: int) -> tuple[int, ...]:
    """Checked axes as non-negative ints; an element of a sequence is named name[k]."""
    if type(axes) is int:
        return (_axis_in_range(name, axes, ndim),)
    return tuple(_axis_in_range(f"{name}[{k}]", a, ndim) for k, a in enumerate(axes))  # type: ignore[arg-type]


def _distinct(names: tuple[str, ...], groups: tuple[tuple[int, ...], ...]) -> None:
    every = [axis for group in groups for axis in group]
    if len(set(every)) != len(every):
        listed = ", ".join(f"{n} {g}" for n, g in zip(names, groups, strict=True))
        raise ValueError(f"{listed} (made non-negative) must be distinct axes")


def compute_fans(
    shape: Sequence[int],
    *,
    layout: str = "torch",
    in_axis: int | Sequence[int] | None = None,
    out_axis: int | Sequence[int] | None = None,
    batch_axis: int | Sequence[int] = (),
    input_axes: int | Sequence[int] | None = None,
    output_axes: int | Sequence[int] | None = None,
) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of `shape`, as ints (see the module doc).

    Args:
        shape: the weight's shape.
        layout: "torch" (default; (out, in, *field)), "jax" ((*field, in, out)) or
            "keras" (the "jax" fans for 2 or more axes, and Keras's (1, 1) for 0-d,
            (n, n) for 1-d shapes); it supplies in_axis / out_axis when not given.
        in_axis, out_axis: an axis or a sequence of axes (JAX's meaning; negative
            axes count from the end; an empty sequence contributes a factor 1).
        batch_axis: an axis or a sequence of axes in neither fan nor the field.
        input_axes, output_axes: Keras's explicit axes, both or neither: fan_in =
            prod(shape[input_axes]), fan_out = prod(shape[output_axes]), other axes
            ignored; not with in_axis / out_axis / batch_axis.

    Raises:
        ValueError: an axis out of range or named twice; a 0-d or 1-d shape whose
            fans need a default axis (layout "torch" / "jax"); input_axes without
            output_axes or the reverse, or either mixed with JAX's axes.
        TypeError: an axis that is not an integer (bool and float refused).
    """
    return fans_of_checked_shape(
        _checks.check_shape(shape), layout, in_axis, out_axis, batch_axis, input_axes, output_axes
    )


def fans_of_checked_shape(
    shape: tuple[int, ...],
    layout: Any,
    in_axis: Any,
    out_axis: Any,
    batch_axis: Any,
    input_axes: Any = None,
    output_axes: Any = None,
) -> tuple[int, int]:
    """compute_fans for a shape that already passed check_shape. Every argument is
    checked on every call; only the arithmetic on checked values is cached."""
    _checks.check_choice("layout", layout, tuple(LAYOUTS))
    axes = check_fan_axes(in_axis, out_axis, batch_axis, input_axes, output_axes)
    return _fans(shape, str(layout), *axes)


@functools.lru_cache(maxsize=4096)
def _fans(
    shape: tuple[int, ...],
    layout: str,
    in_axis: Axes | None,
    out_axis: Axes | None,
    batch_axis: tuple[int, ...],
    input_axes: tuple[int, ...] | None = None,
    output_axes: tuple[int, ...] | None = None,
) -> tuple[int, int]:
    """compute_fans of checked, normalized arguments; cached, since models repeat shapes."""
    ndim = len(shape)
    if input_axes is not None and output_axes is not None:  # Keras's explicit axes
        ins = _axes_in_range("input_axes", input_axes, ndim)
        outs = _axes_in_range("output_axes", output_axes, ndim)
        _distinct(("input_axes", "output_axes"), (ins, outs))
        return math.prod(shape[a] for a in ins), math.prod(shape[a] for a in outs)
    defaults = in_axis is None and out_axis is None and not batch_axis
    if layout == "keras" and defaults and ndim < 2:  # Keras's rule for vectors, scalars
        return (shape[0], shape[0]) if ndim else (1, 1)
    if ndim < 2 and (in_axis is None or out_axis is None or in_axis == -2):
        raise ValueError(
            f"fans need a shape with at least 2 axes with a default in_axis / out_axis, "
            f"got {shape}; pass fan_in= / fan_out= explicitly for 0-d and 1-d tensors "
            "(or in_axis and out_axis, or layout='keras')"
        )
    default_in, default_out = LAYOUTS[layout]
    ins = _axes_in_range("in_axis", default_in if in_axis is None else in_axis, ndim)
    outs = _axes_in_range("out_axis", default_out if out_axis is None else out_axis, ndim)
    batch = _axes_in_range("batch_axis", batch_axis, ndim)
    _distinct(("in_axis", "out_axis", "batch_axis"), (ins, outs, batch))
    named = set(ins + outs + batch)
    field = math.prod(d for axis, d in enumerate(shape) if axis not in named)
    return math.prod(shape[a] for a in ins) * field, math.prod(shape[a] for a in outs) * field


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
