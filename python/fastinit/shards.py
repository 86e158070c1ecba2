"""Placement arithmetic: the boxes of a global tensor that one mesh coordinate holds.

Given a tensor's global shape, a device mesh's shape, one coordinate in that mesh and
one placement per mesh dimension, `shard_boxes` returns the boxes of the GLOBAL
tensor this coordinate holds and where each lies in its LOCAL tensor (the shard as
torch lays it out: `DTensor.to_local()`). Guarantees:

- the boxes cover the local tensor exactly once, and the global indices they name
  are exactly those torch.distributed.tensor assigns to the coordinate (its
  `distribute_tensor` / `_compute_local_shape_and_global_offset`, torch 2.13);
- coordinates that differ only along Replicate mesh dimensions get the same boxes,
  so every replica is filled with the same values, and the coordinates of one
  replica group together cover the global tensor exactly once;
- the work is proportional to the number of boxes returned (plus, per
  _StridedShard, its non-empty pieces: at most min(split_factor, dim length)), never
  to the number of elements; `local_shape` builds no boxes at all.

So `fastinit.<sampler>(global_shape, seed, region=box_region)` written at each box's
`local_start` rebuilds this coordinate's shard with the bits of the single-device
tensor, with no communication.

Placements, one per mesh dimension (torch's names in brackets):
- `("replicate",)` [Replicate()]: the mesh dimension does not split the tensor.
- `("shard", d)` [Shard(d)]: torch.chunk semantics on tensor dim d. A dim of current
  length n over k ranks is cut into chunks of s = ceil(n / k); rank r holds
  [r*s, min(n, (r+1)*s)), which is short on the last non-empty rank and EMPTY on the
  ranks past it (n = 5, k = 4: 2, 2, 1, 0; n = 3, k = 4 with s = 1: 1, 1, 1, 0).
- `("strided_shard", d, f)` [_StridedShard(d, split_factor=f)]: the current dim is
  first cut into f chunks (torch.chunk), each of those is cut into k chunks, and
  rank r holds the r-th sub-chunk of every one of the f chunks, concatenated in
  order. It is how FSDP2 on top of tensor parallelism writes "TP sharded first,
  then FSDP sharded each TP shard" in torch's left-to-right placement order: mesh
  (dp, tp) with placements (_StridedShard(0, split_factor=tp), Shard(0)). Its
  indices are not contiguous, so one placement gives up to f runs per tensor dim.
  Tensor dims d are non-negative (a DTensor's placements already are: torch
  normalizes a negative dim when it distributes).
- `("partial",)` [Partial()]: a pending reduction; no initializer can fill it, so it
  is refused unless its mesh dimension has size 1, where it holds the whole value
  and is a replicate.

Several mesh dimensions may shard the same tensor dim: they apply in mesh-dim
order, each to what the earlier ones left, so the later mesh dimension shards the
earlier one's shard (mesh (2, 2), placements (Shard(0), Shard(0)), 8 rows:
coordinate (i, j) holds rows [4i + 2j, 4i + 2j + 2)). The boxes are the cartesian
product of the runs of consecutive global indices each tensor dim keeps; adjacent
runs are merged.

N.B. The box count is the product over tensor dims of their run counts. A
_StridedShard with a large split factor yields many runs (up to f per placement, and
the product of the factors where several are nested): that is inherent, since the
local rows are that many separate ranges of the global tensor.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, NamedTuple

from . import _checks

__all__ = ["Box", "local_shape", "shard_boxes"]


class Box(NamedTuple):
    """A box of the global tensor (start, extent) and its corner in the local tensor."""

    start: tuple[int, ...]
    extent: tuple[int, ...]
    local_start: tuple[int, ...]

    def region(self) -> tuple[slice, ...]:
        """The box as a `region=` of the global tensor."""
        return tuple(slice(lo, lo + n) for lo, n in zip(self.start, self.extent, strict=True))

    def local_region(self) -> tuple[slice, ...]:
        """Where the box lies in the local tensor, as slices."""
        return tuple(slice(lo, lo + n) for lo, n in zip(self.local_start, self.extent, strict=True))


# A checked placement: (tensor dim, split factor) for a shard (factor 1 for a plain
# Shard), None for a replicate (or a Partial on a mesh dimension of size 1).
_Split = tuple[int, int] | None
# A run: (global start, length) of consecutive global indices of one tensor dim; a
# dim's runs are listed in local order, so they tile its local positions in turn.
_Run = tuple[int, int]


def shard_boxes(
    global_shape: Sequence[int],
    mesh_shape: Sequence[int],
    coordinate: Sequence[int],
    placements: Sequence[tuple[Any, ...]],
) -> list[Box]:
    """The global boxes `coordinate` holds, covering its local tensor exactly once.

    Empty when the local shard is empty. A 0-d tensor (only replicated) is one box
    with empty tuples.
    """
    shape, mesh, coords, splits = _check(global_shape, mesh_shape, coordinate, placements)
    if not shape:
        return [Box((), (), ())]
    runs: list[list[_Run]] = [[(0, n)] if n else [] for n in shape]
    for split, parts, index in zip(splits, mesh, coords, strict=True):
        if split is not None:
            dim, factor = split
            kept = _kept(_length(runs[dim]), factor, parts, index)
            runs[dim] = _take(runs[dim], kept)
    if any(not dim_runs for dim_runs in runs):
        return []
    placed = [_with_local_starts(dim_runs) for dim_runs in runs]
    return [
        Box(
            tuple(start for start, _, _ in corner),
            tuple(length for _, length, _ in corner),
            tuple(local for _, _, local in corner),
        )
        for corner in itertools.product(*placed)
    ]


def local_shape(
    global_shape: Sequence[int],
    mesh_shape: Sequence[int],
    coordinate: Sequence[int],
    placements: Sequence[tuple[Any, ...]],
) -> tuple[int, ...]:
    """The shape of the local tensor `coordinate` holds (torch's local shape)."""
    shape, mesh, coords, splits = _check(global_shape, mesh_shape, coordinate, placements)
    lengths = list(shape)
    for split, parts, index in zip(splits, mesh, coords, strict=True):
        if split is not None:
            dim, factor = split
            kept = _kept(lengths[dim], factor, parts, index)
            lengths[dim] = sum(stop - start for start, stop in kept)
    return tuple(lengths)


def _chunk(size: int, parts: int, index: int) -> tuple[int, int]:
    """[start, stop) of torch.chunk's chunk `index` of range(size) into `parts`
    (ceil-sized; empty past the end)."""
    step = -(-size // parts)
    start = min(size, index * step)
    return start, min(size, start + step)


def _kept(length: int, factor: int, parts: int, index: int) -> list[tuple[int, int]]:
    """The [start, stop) ranges of local positions of a dim of `length` that rank
    `index` of `parts` keeps: the index-th chunk of each of `factor` chunks, in order
    (factor 1 is a plain Shard). Empty ranges are left out."""
    kept = []
    # Only the first ceil(length / ceil(length / factor)) pieces are non-empty.
    pieces = -(-length // -(-length // factor)) if length else 0
    for piece in range(pieces):
        piece_start, piece_stop = _chunk(length, factor, piece)
        start, stop = _chunk(piece_stop - piece_start, parts, index)
        if start < stop:
            kept.append((piece_start + start, piece_start + stop))
    return kept


def _length(runs: list[_Run]) -> int:
    return sum(length for _, length in runs)


def _take(runs: list[_Run], kept: list[tuple[int, int]]) -> list[_Run]:
    """The runs of the local positions in `kept` (sorted, disjoint), with abutting
    runs merged. One walk over both lists."""
    out: list[_Run] = []
    run_index, run_offset = 0, 0  # runs[run_index] covers local positions from run_offset
    for start, stop in kept:
        while start < stop:
            while run_offset + runs[run_index][1] <= start:
                run_offset += runs[run_index][1]
                run_index += 1
            global_start, length = runs[run_index]
            lo = start - run_offset
            hi = min(length, stop - run_offset)
            if out and out[-1][0] + out[-1][1] == global_start + lo:
                out[-1] = (out[-1][0], out[-1][1] + hi - lo)
            else:
                out.append((global_start + lo, hi - lo))
            start = run_offset + hi
    return out


def _with_local_starts(runs: list[_Run]) -> list[tuple[int, int, int]]:
    placed, local = [], 0
    for start, length in runs:
        placed.append((start, length, local))
        local += length
    return placed


def _int_list(name: str, value: Any, *, low: int) -> list[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of integers, got {_checks.show(value)}")
    return [_checks.check_int(f"{name}[{i}]", item, low=low) for i, item in enumerate(value)]


def _check(
    global_shape: Any, mesh_shape: Any, coordinate: Any, placements: Any
) -> tuple[tuple[int, ...], list[int], list[int], list[_Split]]:
    shape = tuple(_int_list("global_shape", global_shape, low=0))
    mesh = _int_list("mesh_shape", mesh_shape, low=1)
    coords = _int_list("coordinate", coordinate, low=0)
    if len(coords) != len(mesh):
        raise ValueError(
            f"coordinate {tuple(coords)} has {len(coords)} entries but mesh_shape "
            f"{tuple(mesh)} has {len(mesh)} dimensions"
        )
    for axis, (index, size) in enumerate(zip(coords, mesh, strict=True)):
        if index >= size:
            raise ValueError(
                f"coordinate[{axis}] must be in [0, {size}) for mesh_shape {tuple(mesh)}, "
                f"got {index}"
            )
    if isinstance(placements, (str, bytes)) or not isinstance(placements, Sequence):
        raise TypeError(
            f"placements must be a sequence of placement tuples, got {_checks.show(placements)}"
        )
    if len(placements) != len(mesh):
        raise ValueError(
            f"placements has {len(placements)} entries but mesh_shape {tuple(mesh)} has "
            f"{len(mesh)} dimensions (one placement per mesh dimension)"
        )
    splits = [_placement(axis, p, mesh[axis], len(shape)) for axis, p in enumerate(placements)]
    return shape, mesh, coords, splits


_FORMS = (
    "('replicate',), ('shard', dim), ('strided_shard', dim, split_factor) "
    "or ('partial',) on a mesh dimension of size 1"
)


def _placement(axis: int, placement: Any, mesh_size: int, ndim: int) -> _Split:
    name = f"placements[{axis}]"
    if not isinstance(placement, tuple) or not placement:
        raise TypeError(f"{name} must be one of {_FORMS}, got {_checks.show(placement)}")
    kind, arguments = placement[0], placement[1:]
    arity = {"replicate": 0, "partial": 0, "shard": 1, "strided_shard": 2}.get(kind)
    if arity is None or len(arguments) != arity:
        raise ValueError(f"{name} must be one of {_FORMS}, got {_checks.show(placement)}")
    if kind == "partial" and mesh_size > 1:
        raise ValueError(
            f"{name} is ('partial',) on a mesh dimension of size {mesh_size}: a pending "
            "reduction cannot be initialized; only a mesh dimension of size 1 accepts it"
        )
    if kind in ("replicate", "partial"):
        return None
    dim = _checks.check_int(f"{name} dim", arguments[0], low=0)
    if dim >= ndim:
        raise ValueError(
            f"{name} dim must be in [0, {ndim}) for a tensor of {ndim} dimensions, got {dim}"
        )
    factor = _checks.check_int(f"{name} split_factor", arguments[1], low=1) if arguments[1:] else 1
    return dim, factor
