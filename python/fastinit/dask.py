"""Every fastinit sampler as a Dask array (the optional extra: pip install 'fastinit[dask]').

`fastinit.dask.glorot_normal(shape, seed, chunks=..., dtype=..., stream=..., **params)`
is a Dask array equal, bit for bit, to `fastinit.glorot_normal(shape, seed, ...)`,
whatever the chunks, the slicing or the scheduler (threads, processes,
dask.distributed): each chunk is a `region=` of one fastinit.virtual.VirtualTensor,
and element i of a tensor depends on i alone (docs/stream.md). A slice or a reduction
of part of the array computes only the chunks it touches (Dask culls the others), and
of those only the slice's bounding box when Dask folds the slice into the chunk's task
(its default optimization does for slices and integers).

The array's name is "fastinit-<init>-" and a token of (the virtual tensor, the
chunks): the same arguments give the same name in any process, so Dask caches and
graph merges treat two equal calls as one array.

N.B. Dask's own `da.random` is not like this: its values depend on the chunking.
`orthogonal` computes its full matrix (a QR of it) in every chunk's task.
`fastinit` never imports this module; it imports dask (absolute imports: `dask`
below is the library, not this file).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    import dask.array as da
    from dask.array.core import normalize_chunks
    from dask.base import tokenize
except ImportError as error:  # pragma: no cover - the extra is part of the test install
    raise ImportError("fastinit.dask needs dask[array]: pip install 'fastinit[dask]'") from error

from .virtual import VirtualTensor

__all__ = [
    "constant",
    "dirac",
    "eye",
    "from_virtual",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "identity",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "ones",
    "orthogonal",
    "truncated_normal",
    "uniform",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]

Chunks = Any  # whatever dask.array.from_array accepts: "auto", an int, a tuple, a byte size


def from_virtual(virtual: VirtualTensor, chunks: Chunks = "auto") -> da.Array:
    """A Dask array whose every chunk is `virtual[chunk's slices]`, computed when needed.

    `chunks` as dask.array.from_array takes it ("auto" keeps chunks near Dask's
    array.chunk-size setting, 128 MiB by default). Refused chunks raise Dask's own
    error, prefixed with "chunks".
    """
    if not isinstance(virtual, VirtualTensor):
        raise TypeError(
            f"virtual must be a fastinit.virtual.VirtualTensor, got {type(virtual).__name__}"
        )
    try:
        chunks = normalize_chunks(chunks, virtual.shape, dtype=virtual.dtype)
    except (ValueError, TypeError) as error:
        raise type(error)(f"chunks={chunks!r}: {error}") from None
    name = f"fastinit-{virtual.init}-{tokenize(virtual, chunks)}"
    return da.from_array(
        virtual,
        chunks=chunks,
        name=name,
        lock=False,
        asarray=True,
        # N.B. with Dask's default getter (fancy=True) its graph optimization folds a
        # later slice into the chunk's task, so x[5, ::3] fills only the elements'
        # bounding box, not whole chunks (dask 2026.8 skips that for fancy=False).
        fancy=True,
        meta=np.empty((0,) * virtual.ndim, dtype=virtual.dtype),
    )


def _seeded(
    init: str,
    shape: Any,
    seed: Any,
    chunks: Chunks,
    dtype: Any,
    stream: Any,
    threads: Any,
    params: dict[str, Any],
) -> da.Array:
    virtual = VirtualTensor(
        init, shape, seed, stream=stream, dtype=dtype, threads=threads, **params
    )
    return from_virtual(virtual, chunks)


def variance_scaling(
    shape: Sequence[int],
    seed: int,
    *,
    chunks: Chunks = "auto",
    dtype: Any = "float32",
    stream: int | str = 0,
    threads: int | None = None,
    **params: Any,
) -> da.Array:
    """fastinit.variance_scaling as a Dask array; `params` as there (scale, mode,
    distribution, layout, in_axis, out_axis, batch_axis, fan_in, fan_out).

    `threads` is the threads each chunk's fill uses (None: fastinit's default in the
    process that runs the task: all its CPUs); it never changes the values. Where Dask
    already runs one task per core (its threads scheduler), threads=1 avoids
    oversubscription: 5-9% faster in bench/RESULTS.md.
    """
    return _seeded("variance_scaling", shape, seed, chunks, dtype, stream, threads, params)


def glorot_normal(
    shape: Sequence[int],
    seed: int,
    *,
    chunks: Chunks = "auto",
    dtype: Any = "float32",
    stream: int | str = 0,
    threads: int | None = None,
    **params: Any,
) -> da.Array:
    """fastinit.glorot_normal as a Dask array; `params` as there (gain, distribution,
    layout, in_axis, out_axis, batch_axis, fan_in, fan_out)."""
    return _seeded("glorot_normal", shape, seed, chunks, dtype, stream, threads, params)


def glorot_uniform(
    shape: Sequence[int],
    seed: int,
    *,
    chunks: Chunks = "auto",
    dtype: Any = "float32",
    stream: int | str = 0,
    threads: int | None = None,
    **params: Any,
) -> da.Array:
    """fastinit.glorot_uniform as a Dask array; `params` as there."""
    return _seeded("glorot_uniform", shape, seed, chunks, dtype, stream, threads, params)


def he_normal(
    shape: Sequence[int],
    seed: int,
    *,
    chunks: Chunks = "auto",
    dtype: Any = "float32",
    stream: int | str = 0,
    threads: int | None = None,
    **params: Any,
) -> da.Array:
    """fastinit.he_normal as a Dask array; `params` as there."""
    return _seeded("he_normal", shape, seed, chunks, dtype, stream, threads, params)


def he_uniform(
    shape: Sequence[int],
    seed: int,
    *,
    chunks: Chunks = "auto",
    dtype: Any = "float32",
    stream: int | str = 0,
    threads: int | None = None,
    **params: Any,
) -> da.Array:
    """fastinit.he_uniform as a Dask array; `params` as there."""
    return _seeded("he_uniform", shape, seed, chunks, dtype, stream, threads, params)


def lecun_normal(
    shape: Sequence[int],
    seed: int,
    *,
    chunks: Chunks = "auto",
    dtype: Any = "float32",
    stream: int | str = 0,
    threads: int | None = None,
    **params: Any,
) -> da.Array:
    """fastinit.lecun_normal as a Dask array; `params` as there."""
    return _seeded("lecun_normal", shape, seed, chunks, dtype, stream, threads, params)


def lecun_uniform(
    shape: Sequence[int],
    seed: int,
    *,
    chunks: Chunks = "auto",
    dtype: Any = "float32",
    stream: int | str = 0,
    threads: int | None = None,
    **params: Any,
) -> da.Array:
    """fastinit.lecun_uniform as a Dask array; `params` as there."""
    return _seeded("lecun_uniform", shape, seed, chunks, dtype, stream, threads, params)


# PyTorch's names, as in fastinit itself.
xavier_normal = glorot_normal
xavier_uniform = glorot_uniform
kaiming_normal = he_normal
kaiming_uniform = he_uniform


def normal(
    shape: Sequence[int],
    seed: int,
    *,
    chunks: Chunks = "auto",
    dtype: Any = "float32",
    stream: int | str = 0,
    threads: int | None = None,
    **params: Any,
) -> da.Array:
    """fastinit.normal as a Dask array; `params`: mean, std."""
    return _seeded("normal", shape, seed, chunks, dtype, stream, threads, params)


def uniform(
    shape: Sequence[int],
    seed: int,
    *,
    chunks: Chunks = "auto",
    dtype: Any = "float32",
    stream: int | str = 0,
    threads: int | None = None,
    **params: Any,
) -> da.Array:
    """fastinit.uniform as a Dask array; `params`: low, high."""
    return _seeded("uniform", shape, seed, chunks, dtype, stream, threads, params)


def truncated_normal(
    shape: Sequence[int],
    seed: int,
    *,
    chunks: Chunks = "auto",
    dtype: Any = "float32",
    stream: int | str = 0,
    threads: int | None = None,
    **params: Any,
) -> da.Array:
    """fastinit.truncated_normal as a Dask array; `params`: mean, std, and the bounds as
    lower/upper (units of std) or a/b (absolute)."""
    return _seeded("truncated_normal", shape, seed, chunks, dtype, stream, threads, params)


def orthogonal(
    shape: Sequence[int],
    seed: int,
    gain: float = 1.0,
    *,
    chunks: Chunks = "auto",
    dtype: Any = "float32",
    stream: int | str = 0,
    threads: int | None = None,
) -> da.Array:
    """fastinit.orthogonal as a Dask array. N.B. every chunk's task computes the whole
    matrix (a QR of it) and keeps its part: use one chunk, or few, for a large one."""
    params = {"gain": gain}
    return _seeded("orthogonal", shape, seed, chunks, dtype, stream, threads, params)


def _unseeded(
    init: str, shape: Any, chunks: Chunks, dtype: Any, params: dict[str, Any]
) -> da.Array:
    return from_virtual(VirtualTensor(init, shape, None, dtype=dtype, **params), chunks)


def constant(
    shape: Sequence[int], value: float, *, chunks: Chunks = "auto", dtype: Any = "float32"
) -> da.Array:
    """fastinit.constant as a Dask array: every element `value`, rounded once into dtype."""
    return _unseeded("constant", shape, chunks, dtype, {"value": value})


def zeros(shape: Sequence[int], *, chunks: Chunks = "auto", dtype: Any = "float32") -> da.Array:
    """fastinit.zeros as a Dask array."""
    return _unseeded("zeros", shape, chunks, dtype, {})


def ones(shape: Sequence[int], *, chunks: Chunks = "auto", dtype: Any = "float32") -> da.Array:
    """fastinit.ones as a Dask array."""
    return _unseeded("ones", shape, chunks, dtype, {})


def identity(
    shape: Sequence[int], gain: float = 1.0, *, chunks: Chunks = "auto", dtype: Any = "float32"
) -> da.Array:
    """fastinit.identity as a Dask array: `gain` on the main diagonal of a 2-D shape."""
    return _unseeded("identity", shape, chunks, dtype, {"gain": gain})


eye = identity


def dirac(
    shape: Sequence[int],
    groups: int = 1,
    *,
    gain: float = 1.0,
    chunks: Chunks = "auto",
    dtype: Any = "float32",
) -> da.Array:
    """fastinit.dirac as a Dask array: the identity of a convolution (3 to 5 axes)."""
    return _unseeded("dirac", shape, chunks, dtype, {"groups": groups, "gain": gain})
