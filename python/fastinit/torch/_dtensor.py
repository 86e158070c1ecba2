"""DTensors in fastinit.torch: each rank fills the part of the global tensor it holds.

Guarantees: `fill_dtensor(dtensor, fill_box)` calls `fill_box(region, local_view)` once
for each box of the GLOBAL tensor this rank holds (fastinit.shards.shard_boxes of the
global shape, the mesh shape, this rank's mesh coordinate and the placements), where
`region` is that box as slices of the global tensor and `local_view` is the matching
view of `dtensor.to_local()`. The boxes cover the local tensor exactly once, so a
fill_box that writes `sampler(global_shape, ..., region=region)` into `local_view`
gives every rank the bits one device would hold at those indices: the same bits at
any world size, mesh and placement, with no communication and work per rank in
proportion to its shard. A rank outside the mesh (coordinate None) holds nothing and
gets no call.

Writes go into the local tensor in place. N.B. FSDP2's local tensor is a view into
its padded storage: replacing `.data` or the local tensor would detach the parameter
from that storage, so nothing here ever does.

Placements are read as fastinit.shards' tuples. A Partial placement (a pending
reduction) cannot be initialized and is refused with a ValueError naming the tensor,
except on a mesh dimension of size 1, where the local tensor holds the whole value.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch

from .. import shards

# fill_box(region of the global tensor, the local tensor's view of it)
FillBox = Callable[[tuple[slice, ...], torch.Tensor], Any]


def is_dtensor(tensor: Any) -> bool:
    """Whether `tensor` is a torch.distributed DTensor (a Parameter of one included)."""
    # A DTensor exists only once its module is imported: no need to import it here.
    module = sys.modules.get("torch.distributed.tensor")
    return module is not None and isinstance(tensor, module.DTensor)


def mesh_device(dtensor: Any) -> torch.device:
    """The device type of the DTensor's mesh (where its local tensor lives, once real)."""
    return torch.device(dtensor.device_mesh.device_type)


def placements_of(dtensor: Any, name: str = "tensor") -> list[tuple[Any, ...]]:
    """The DTensor's placements as fastinit.shards' tuples, one per mesh dimension.

    A Partial on a mesh dimension of size > 1 is a ValueError, and a placement
    fastinit does not know a TypeError, both naming the tensor as `name`."""
    from torch.distributed.tensor.placement_types import _StridedShard

    mesh_shape = tuple(dtensor.device_mesh.shape)
    ndim = len(dtensor.shape)
    tuples: list[tuple[Any, ...]] = []
    for axis, placement in enumerate(dtensor.placements):
        # N.B. _StridedShard is not a Shard (nor is_shard()) in torch 2.13: test it first.
        if isinstance(placement, _StridedShard):
            tuples.append(("strided_shard", _dim(placement.dim, ndim), placement.split_factor))
        elif placement.is_shard():
            tuples.append(("shard", _dim(placement.dim, ndim)))
        elif placement.is_replicate():
            tuples.append(("replicate",))
        elif placement.is_partial():
            if mesh_shape[axis] > 1:
                raise ValueError(
                    f"{name} has placement {placement!r} on mesh dimension {axis} (size "
                    f"{mesh_shape[axis]}): a pending reduction cannot be initialized; "
                    "redistribute it to Replicate or Shard first"
                )
            tuples.append(("partial",))  # one rank holds the whole value: a replicate
        else:
            raise TypeError(
                f"{name} has placement {placement!r} on mesh dimension {axis}; fastinit "
                "fills Shard, _StridedShard, Replicate (and Partial on a mesh dimension of "
                "size 1)"
            )
    return tuples


def _dim(dim: int, ndim: int) -> int:
    return dim + ndim if dim < 0 else dim


def local_tensor(dtensor: Any, name: str = "tensor") -> torch.Tensor | None:
    """dtensor.to_local(), checked to be the shard its placements describe; None on a
    rank outside the mesh. Refusals (see placements_of; a local tensor of another
    shape) name the tensor as `name` and come before anything is written."""
    shard = _shard(dtensor, name)
    return None if shard is None else shard[0]


def fill_dtensor(dtensor: Any, fill_box: FillBox, name: str = "tensor") -> Any:
    """fill_box(region, local_view) for each box of the global tensor this rank holds
    (see the module's guarantees); returns `dtensor`. Every check comes before the
    first call."""
    shard = _shard(dtensor, name)
    if shard is None:
        return dtensor
    local, boxes = shard
    with torch.no_grad():
        for box in boxes:
            fill_box(box.region(), local[box.local_region()])
    return dtensor


def _shard(dtensor: Any, name: str) -> tuple[torch.Tensor, list[shards.Box]] | None:
    """(the checked local tensor, the boxes it holds), or None outside the mesh."""
    placements = placements_of(dtensor, name)
    coordinate = dtensor.device_mesh.get_coordinate()
    if coordinate is None:
        return None
    global_shape = tuple(dtensor.shape)
    mesh_shape = tuple(dtensor.device_mesh.shape)
    coordinate = tuple(coordinate)
    with torch.no_grad():  # to_local() then returns the local tensor, not an autograd view
        local = dtensor.to_local()
    expected = shards.local_shape(global_shape, mesh_shape, coordinate, placements)
    if tuple(local.shape) != expected:
        raise ValueError(
            f"{name}: its local tensor has shape {tuple(local.shape)}, but its global shape "
            f"{global_shape} and placements {tuple(dtensor.placements)} on mesh "
            f"{mesh_shape} give {expected} at coordinate {coordinate}; fastinit fills "
            "shards laid out as torch.distributed.tensor lays them out"
        )
    return local, shards.shard_boxes(global_shape, mesh_shape, coordinate, placements)
