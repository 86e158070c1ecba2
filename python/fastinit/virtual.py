"""A lazy virtual tensor: one initializer call that computes nothing until it is indexed.

`VirtualTensor(init, shape, seed, stream=..., dtype=..., **params)` stands for the
array `fastinit.<init>(shape, seed, stream=stream, dtype=dtype, **params)` without
computing it. Guarantees:

- `x[index]` is exactly `full[index]` (ints drop axes, slices with any step, negative
  indices, Ellipsis, None; integer and boolean arrays too), computed with one `region=`
  call of the sampler over the bounding box of the selected elements, then indexed
  within it. A large step or scattered positions therefore compute the whole box
  between the first and last element they pick.
- Nothing is computed before indexing, or by construction, which runs the sampler's
  own argument checks (a call with a zero-element region, or for a 0-d shape
  initializers.parameters) so bad arguments are refused at once, named.
- `__dask_tokenize__()` is a plain tuple of the arguments and the fastinit version,
  the same in every process, different when anything that changes the values does.

It is the one primitive the engine adapters share: fastinit.dask makes each chunk a
region of it; any engine whose workers fill boxes can do the same. `orthogonal` is
the exception to "only the region": every index computes the full matrix (its QR)
and keeps the part asked for.
"""

from __future__ import annotations

import importlib.metadata
import math
import numbers
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _checks, initializers, runtime, structured
from .streams import check_stream

# The samplers that take (shape, seed, ...): they use `seed`, `stream` and `threads`.
SEEDED: dict[str, Callable[..., Any]] = {
    "variance_scaling": initializers.variance_scaling,
    **{name: getattr(initializers, name) for name in initializers.NAMED},
    "xavier_normal": initializers.xavier_normal,
    "xavier_uniform": initializers.xavier_uniform,
    "kaiming_normal": initializers.kaiming_normal,
    "kaiming_uniform": initializers.kaiming_uniform,
    "normal": initializers.normal,
    "uniform": initializers.uniform,
    "truncated_normal": initializers.truncated_normal,
    "orthogonal": structured.orthogonal,
}
# The samplers that take (shape, ...) and no seed: `seed` and `stream` change nothing.
UNSEEDED: dict[str, Callable[..., Any]] = {
    "constant": structured.constant,
    "zeros": structured.zeros,
    "ones": structured.ones,
    "identity": structured.identity,
    "eye": structured.eye,
    "dirac": structured.dirac,
}
# Looked up at every call (never stored in a tensor), so a test can wrap one.
SAMPLERS: dict[str, Callable[..., Any]] = {**SEEDED, **UNSEEDED}
# initializers.parameters' names for the aliases (it checks a 0-d shape's arguments).
_CANONICAL = {
    "xavier_normal": "glorot_normal",
    "xavier_uniform": "glorot_uniform",
    "kaiming_normal": "he_normal",
    "kaiming_uniform": "he_uniform",
}
# A virtual tensor chooses these itself: region by indexing, the host as device.
_RESERVED = ("out", "region", "device")
_VERSION = importlib.metadata.version("fastinit")


class VirtualTensor:
    """The tensor `fastinit.<init>(shape, seed, stream=, dtype=, **params)`, computed only
    where indexed.

    Args:
        init: a sampler name: variance_scaling, glorot_normal/uniform, he_*, lecun_*,
            xavier_*, kaiming_*, normal, uniform, truncated_normal, orthogonal (seeded);
            constant, zeros, ones, identity, eye, dirac (no seed: `seed` may be None
            and, like `stream`, is checked but changes nothing).
        shape: the full tensor's shape.
        seed: an integer in [0, 2^64) (None for the unseeded initializers).
        stream: an integer in [0, 2^64) or a name; `.stream` is the resolved integer.
        dtype: float32, float64, float16 or bfloat16.
        threads: the threads each indexing call fills with (None: the process default
            at the time of the call); never changes the bits, so not part of the token.
        **params: the sampler's own keyword arguments (gain, mode, mean, value, ...).

    Raises:
        ValueError, TypeError, OverflowError: as the sampler would for these arguments,
            naming the argument, before anything is computed.
    """

    __slots__ = ("init", "shape", "dtype", "seed", "stream", "threads", "_params")

    def __init__(
        self,
        init: str,
        shape: Any,
        seed: int | None,
        *,
        stream: int | str = 0,
        dtype: Any = "float32",
        threads: int | None = None,
        **params: Any,
    ) -> None:
        if type(init) is not str or init not in SAMPLERS:
            raise ValueError(f"init must be one of {', '.join(SAMPLERS)}; got {_checks.show(init)}")
        for name in _RESERVED:
            if name in params:
                raise TypeError(
                    f"{name}= is not an argument of VirtualTensor: indexing chooses the "
                    "region and the result is a NumPy array"
                )
        self.init = init
        self.shape = _checks.check_shape(shape)
        self.dtype = _checks.check_dtype(dtype)
        self.stream = check_stream(stream)
        if threads is not None:
            runtime.resolve_threads(threads)  # checked now; None stays "the default then"
        self.threads = threads
        self._params = dict(params)
        if init in UNSEEDED and seed is not None:
            seed = _checks.check_seed(seed)
        self.seed = seed
        self._check_arguments()

    def _check_arguments(self) -> None:
        """The sampler's own checks, computing no element."""
        if self.shape:
            empty = (slice(0, 0),)
            self._call(empty)
            return
        name = _CANONICAL.get(self.init, self.init)
        if name in ("identity", "eye", "dirac", "orthogonal"):
            self._call(None)  # they refuse a 0-d shape before computing anything
            return
        if self.init in SEEDED:
            _checks.check_seed(self.seed)
        initializers.parameters(name, self.shape, self.dtype, self._params)

    def _call(self, region: tuple[slice, ...] | None) -> Any:
        sampler = SAMPLERS[self.init]
        if self.init in SEEDED:
            return sampler(
                self.shape,
                self.seed,
                dtype=self.dtype,
                stream=self.stream,
                region=region,
                threads=self.threads,
                **self._params,
            )
        return sampler(self.shape, dtype=self.dtype, region=region, **self._params)

    @property
    def params(self) -> dict[str, Any]:
        """The sampler's keyword arguments (a copy)."""
        return dict(self._params)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __getitem__(self, index: Any) -> Any:
        region, local = _bounding_box(index, self.shape)
        box = self._call(region)
        result = box[local]
        if isinstance(result, np.ndarray) and result.base is not None and result.size < box.size:
            result = result.copy()  # a strided view: keep what was asked for, not the box
        return result

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """The whole tensor (a new array: `copy` asks nothing more of it)."""
        full = self._call(None)
        return full if dtype is None else full.astype(dtype)

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        params = tuple(sorted(self._params.items()))
        return (
            type(self).__name__,
            _VERSION,
            self.init,
            self.shape,
            self.dtype.name,
            self.seed,
            self.stream,
            params,
        )

    def __repr__(self) -> str:
        params = "".join(f", {name}={value!r}" for name, value in sorted(self._params.items()))
        return (
            f"VirtualTensor({self.init!r}, shape={self.shape}, seed={self.seed}, "
            f"stream={self.stream}, dtype={self.dtype.name}{params})"
        )


def _bounding_box(index: Any, shape: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[Any, ...]]:
    """(region, local): full[index] == full[region][local], region the smallest box
    holding every selected element. `local` keeps the index's structure (the same
    entries in the same places, shifted into the box), so NumPy's rules for combining
    them hold unchanged. Refuses what NumPy refuses, with NumPy's exception types."""
    entries = [_entry(entry) for entry in (index if isinstance(index, tuple) else (index,))]
    ellipses = sum(entry is Ellipsis for entry in entries)
    if ellipses > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = sum(_axes_used(entry) for entry in entries)
    if used > len(shape):
        raise IndexError(
            f"too many indices for array: array is {len(shape)}-dimensional, "
            f"but {used} were indexed"
        )
    arrays = [entry for entry in entries if isinstance(entry, np.ndarray)]
    try:  # checked before the box is computed: NumPy would refuse it afterwards
        np.broadcast_shapes(*((int(a.sum()),) if a.dtype == np.bool_ else a.shape for a in arrays))
    except ValueError:
        shapes = " ".join(str(a.shape) for a in arrays)
        raise IndexError(
            f"shape mismatch: indexing arrays could not be broadcast together with shapes {shapes}"
        ) from None
    fill = [slice(None)] * (len(shape) - used)
    if ellipses:
        at = next(i for i, entry in enumerate(entries) if entry is Ellipsis)
        entries[at : at + 1] = fill
    else:
        entries += fill
    region: list[slice] = []
    local: list[Any] = []
    axis = 0
    for entry in entries:
        if entry is None:
            local.append(None)
            continue
        if isinstance(entry, np.ndarray) and entry.dtype == np.bool_:
            # A mask over k axes selects its nonzero() positions (NumPy's definition).
            dims = shape[axis : axis + entry.ndim]
            if entry.shape != dims:
                raise IndexError(
                    f"boolean index of shape {entry.shape} does not match the indexed "
                    f"axes {axis}..{axis + entry.ndim - 1} of shape {dims}"
                )
            for positions in entry.nonzero():
                box, shifted = _positions_box(positions, axis, shape[axis])
                region.append(box)
                local.append(shifted)
                axis += 1
            continue
        box, shifted = _axis_box(entry, axis, shape[axis])
        region.append(box)
        local.append(shifted)
        axis += 1
    if ellipses:  # NumPy then returns a 0-d array where ints alone give a scalar
        local.append(Ellipsis)
    return tuple(region), tuple(local)


def _entry(entry: Any) -> Any:
    """An index entry as _bounding_box takes it: arrays for lists, ints for integers."""
    if entry is None or entry is Ellipsis or isinstance(entry, slice):
        return entry
    if isinstance(entry, numbers.Integral) and not isinstance(entry, (bool, np.bool_)):
        return operator.index(entry)
    if isinstance(entry, (list, np.ndarray)):
        array = np.asarray(entry)
        if array.size == 0 and array.dtype != np.bool_:
            array = array.astype(np.intp)  # NumPy reads [] as no integer positions
        if array.dtype == np.bool_ and array.ndim == 0:
            raise TypeError("a 0-d boolean index (a new axis of length 0 or 1) is not supported")
        if array.dtype == np.bool_ or array.dtype.kind in "iu":
            return array
        raise IndexError(
            f"arrays used as indices must be of integer (or boolean) type, got {array.dtype}"
        )
    raise TypeError(
        "index entries must be ints, slices, Ellipsis, None, or integer or boolean arrays; "
        f"got {_checks.show(entry)}"
    )


def _axes_used(entry: Any) -> int:
    if entry is None or entry is Ellipsis:
        return 0
    if isinstance(entry, np.ndarray) and entry.dtype == np.bool_:
        return entry.ndim
    return 1


def _axis_box(entry: Any, axis: int, dim: int) -> tuple[slice, Any]:
    """(the axis's part of the box, the entry shifted into it) for an int, slice or
    integer array."""
    if isinstance(entry, slice):
        picked = range(*entry.indices(dim))
        if not picked:
            return slice(0, 0), slice(0, 0)
        if picked.step > 0:
            return slice(picked[0], picked[-1] + 1), slice(0, None, picked.step)
        # descending: the box starts at the last element picked
        return slice(picked[-1], picked[0] + 1), slice(None, None, picked.step)
    if isinstance(entry, np.ndarray):
        return _positions_box(entry, axis, dim)
    if not -dim <= entry < dim:
        raise IndexError(f"index {entry} is out of bounds for axis {axis} with size {dim}")
    entry %= dim
    return slice(entry, entry + 1), 0


def _positions_box(positions: np.ndarray, axis: int, dim: int) -> tuple[slice, np.ndarray]:
    if not positions.size:
        return slice(0, 0), positions
    low, high = int(positions.min()), int(positions.max())
    for extreme in (low, high):
        if not -dim <= extreme < dim:
            raise IndexError(f"index {extreme} is out of bounds for axis {axis} with size {dim}")
    positions = positions % dim if low < 0 else positions
    low, high = int(positions.min()), int(positions.max())
    return slice(low, high + 1), positions - low
