"""fastinit.shards: the boxes a mesh coordinate holds, checked without processes.

For every placement list of Replicate, Shard(d) and _StridedShard(d, f) on 1-, 2- and
3-dim meshes, with even, uneven, empty-rank and empty global shapes, and every
coordinate:
(a) local_shape and the boxes give exactly the global indices torch assigns, in
    torch's local order: torch's own splitting (`Shard._split_tensor`,
    `_StridedShard._split_tensor`, applied in mesh-dim order as `distribute_tensor`
    does) of an index tensor, and torch's `_compute_local_shape_and_global_offset`;
(b) the boxes of one replica group cover the global tensor exactly once, and
    replicas get the same boxes;
(c) a local tensor assembled box by box from `region=` calls equals torch's local
    shard of the single full call, bit for bit (float32 and bfloat16; i.i.d. and
    structured initializers).
Then hand-computed cases (no torch), scale (O(boxes), not O(elements)) and bad
arguments.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import fastinit
import numpy as np
import pytest
from _shared import NUMPY_DTYPES, UINT_OF_SIZE
from fastinit.shards import Box, local_shape, shard_boxes

MESHES = [(1,), (2,), (3,), (4,), (2, 2), (2, 3), (4, 2), (2, 2, 2)]
# Even, uneven, an empty tail rank ((3, 4) over 4), an even 16 and a 3-D; (0, 3) is empty.
SHAPES = [(7, 5), (3, 4), (16, 6), (5, 9, 4), (0, 3)]


def placement_options(
    ndim: int, mesh_size: int, split_factors: tuple[int, ...]
) -> list[tuple[Any, ...]]:
    """Every placement one mesh dimension may take for a tensor of ndim dims."""
    options: list[tuple[Any, ...]] = [("replicate",)]
    if mesh_size == 1:
        options.append(("partial",))
    options += [("shard", dim) for dim in range(ndim)]
    options += [("strided_shard", dim, f) for dim in range(ndim) for f in split_factors]
    return options


def all_placements(ndim: int, mesh: tuple[int, ...]) -> list[tuple[tuple[Any, ...], ...]]:
    """Every placement list; split factors 2 and 3, only 2 on a 3-dim mesh (whose 1000
    lists for a 3-D tensor would take most of this file's time for little more)."""
    split_factors = (2, 3) if len(mesh) < 3 else (2,)
    options = [placement_options(ndim, size, split_factors) for size in mesh]
    return list(itertools.product(*options))


def coordinates(mesh: tuple[int, ...]) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(size) for size in mesh)))


def assemble(boxes: list[Box], shape: tuple[int, ...], source: Any) -> np.ndarray:
    """The local tensor of `shape` built from `source(box)` per box, pre-filled with -1
    so an element no box wrote is caught."""
    local = np.full(shape, -1, dtype=np.int64)
    for box in boxes:
        assert all(n > 0 for n in box.extent), box
        local[box.local_region()] = source(box)
    return local


# ---------------------------------------------------------------------------
# What torch does (only the tests that compare with torch import it)


def to_torch(placement: tuple[Any, ...]) -> Any:
    from torch.distributed.tensor import Partial, Replicate, Shard
    from torch.distributed.tensor.placement_types import _StridedShard

    kind = placement[0]
    if kind == "replicate":
        return Replicate()
    if kind == "partial":
        return Partial()
    if kind == "shard":
        return Shard(placement[1])
    return _StridedShard(placement[1], split_factor=placement[2])


def torch_local_indices(
    shape: tuple[int, ...], mesh: tuple[int, ...], placements: tuple[tuple[Any, ...], ...]
) -> dict[tuple[int, ...], np.ndarray]:
    """{coordinate: its local tensor of flat global indices}, by torch's own splitting
    of torch.arange in mesh-dim order (what distribute_tensor does with no scatter)."""
    import torch

    level = {(): torch.arange(math.prod(shape)).reshape(shape)}
    for size, placement in zip(mesh, placements, strict=True):
        shard = placement[0] in ("shard", "strided_shard")
        split = to_torch(placement)
        following = {}
        for prefix, local in level.items():
            if shard:
                parts, _ = split._split_tensor(local, size, with_padding=False, contiguous=False)
            else:
                parts = [local] * size
            assert len(parts) == size
            for index, part in enumerate(parts):
                following[prefix + (index,)] = part
        level = following
    return {coordinate: local.numpy() for coordinate, local in level.items()}


CASES = [(shape, mesh) for shape in SHAPES for mesh in MESHES]


def case_id(case: tuple[tuple[int, ...], tuple[int, ...]]) -> str:
    shape, mesh = case
    return f"shape{'x'.join(map(str, shape))}-mesh{'x'.join(map(str, mesh))}"


# ---------------------------------------------------------------------------
# (a) the boxes are torch's indices, (b) a replica group covers the tensor once


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_boxes_are_torchs_indices(case: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    pytest.importorskip("torch")
    from torch.distributed.tensor._utils import _compute_local_shape_and_global_offset

    shape, mesh = case
    flat = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    for placements in all_placements(len(shape), mesh):
        expected = torch_local_indices(shape, mesh, placements)
        torch_placements = [to_torch(p) for p in placements]
        for coordinate in coordinates(mesh):
            where = f"{shape} {mesh} {placements} {coordinate}"
            local = local_shape(shape, mesh, coordinate, placements)
            boxes = shard_boxes(shape, mesh, coordinate, placements)
            torch_shape, torch_offset = _compute_local_shape_and_global_offset(
                shape, mesh, list(coordinate), torch_placements
            )
            assert local == tuple(torch_shape) == expected[coordinate].shape, where
            got = assemble(boxes, local, lambda box: flat[box.region()])
            np.testing.assert_array_equal(got, expected[coordinate], err_msg=where)
            if math.prod(local):
                # torch's offset is where local element 0 lies: the box at the local origin.
                (origin,) = [box for box in boxes if not any(box.local_start)]
                assert origin.start == tuple(torch_offset), where
            else:
                assert boxes == [], where


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_replica_groups_cover_once(case: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    shape, mesh = case
    for placements in all_placements(len(shape), mesh):
        splitting = [p[0] in ("shard", "strided_shard") for p in placements]
        groups: dict[tuple[int, ...], np.ndarray] = {}
        by_shard_coordinate: dict[tuple[int, ...], list[Box]] = {}
        for coordinate in coordinates(mesh):
            replica = tuple(c for c, s in zip(coordinate, splitting, strict=True) if not s)
            within = tuple(c for c, s in zip(coordinate, splitting, strict=True) if s)
            boxes = shard_boxes(shape, mesh, coordinate, placements)
            assert sum(math.prod(box.extent) for box in boxes) == math.prod(
                local_shape(shape, mesh, coordinate, placements)
            )
            # Every replica of a shard holds the same boxes.
            assert by_shard_coordinate.setdefault(within, boxes) == boxes, (placements, coordinate)
            count = groups.setdefault(replica, np.zeros(shape, dtype=np.int64))
            for box in boxes:
                count[box.region()] += 1
        for replica, count in groups.items():
            assert (count == 1).all(), (shape, mesh, placements, replica)


def test_strided_rows_are_torchs_local_shard_size_and_offset() -> None:
    pytest.importorskip("torch")
    from torch.distributed.tensor.placement_types import _StridedShard, _StridedShardOffsetMode

    for length, parts, factor in itertools.product(range(14), range(1, 5), range(1, 5)):
        placement = _StridedShard(0, split_factor=factor)
        for rank in range(parts):
            size, offsets = placement.local_shard_size_and_offset(
                length, parts, rank, _StridedShardOffsetMode.ALL
            )
            boxes = shard_boxes((length,), (parts,), (rank,), [("strided_shard", 0, factor)])
            assert rows(boxes) == offsets, (length, parts, factor, rank)
            assert local_shape((length,), (parts,), (rank,), [("strided_shard", 0, factor)]) == (
                size,
            )


# ---------------------------------------------------------------------------
# (c) box-by-box fills equal torch's shard of the full call, bit for bit


def initializers(shape: tuple[int, ...]) -> dict[str, Any]:
    """name -> f(dtype, region) for the initializers that take `shape`."""
    seed = 20260
    table: dict[str, Any] = {
        "glorot_normal": lambda d, r: fastinit.glorot_normal(shape, seed, dtype=d, region=r),
        "he_uniform": lambda d, r: fastinit.he_uniform(shape, seed, dtype=d, region=r),
        "normal": lambda d, r: fastinit.normal(shape, seed, std=0.02, dtype=d, region=r),
        "truncated_normal": lambda d, r: fastinit.truncated_normal(
            shape, seed, std=0.02, stream="layers.0.w", dtype=d, region=r
        ),
        "constant": lambda d, r: fastinit.constant(shape, 0.5, dtype=d, region=r),
        "orthogonal": lambda d, r: fastinit.orthogonal(shape, seed, dtype=d, region=r),
    }
    if len(shape) == 2:
        table["eye"] = lambda d, r: fastinit.eye(shape, dtype=d, region=r)
    if len(shape) == 3:
        table["dirac"] = lambda d, r: fastinit.dirac(shape, dtype=d, region=r)
    return table


def fill_placements(ndim: int, mesh: tuple[int, ...]) -> list[tuple[tuple[Any, ...], ...]]:
    """Every placement list on a 1-dim mesh; on larger meshes, the layouts people use
    (FSDP, TP, FSDP2 over TP, HSDP, nested shards of one dim) and a few odd ones."""
    if len(mesh) == 1:
        return all_placements(ndim, mesh)
    R, S0, S1 = ("replicate",), ("shard", 0), ("shard", 1)
    if len(mesh) == 2:
        tp = mesh[1]
        return [
            (R, R),
            (R, S0),  # HSDP
            (S0, S0),  # one dim over both mesh dims
            (S0, S1),
            (S1, S0),
            (("strided_shard", 0, tp), S0),  # FSDP2 over colwise TP
            (("strided_shard", 0, 3), S1),
            (("strided_shard", 1, 2), S1),
            (S0, ("strided_shard", 0, 2)),
            (("strided_shard", 0, 2), ("strided_shard", 0, 3)),
        ]
    return [
        (R, S0, S1),
        (S0, S0, S0),
        (R, ("strided_shard", 0, mesh[2]), S0),  # HSDP with FSDP2 over TP
        (("strided_shard", 1, 3), S0, ("strided_shard", 1, 2)),
        (S1, R, ("strided_shard", 0, 2)),
    ]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_box_fills_equal_torchs_shard_of_the_full_call(
    case: tuple[tuple[int, ...], tuple[int, ...]], dtype: str
) -> None:
    pytest.importorskip("torch")
    shape, mesh = case
    bits = UINT_OF_SIZE[np.dtype(NUMPY_DTYPES[dtype]).itemsize]
    poison = bits(0x7FC1 if bits is np.uint16 else 0x7FC00001)  # a NaN no fill writes
    for placements in fill_placements(len(shape), mesh):
        expected_indices = torch_local_indices(shape, mesh, placements)
        for name, init in initializers(shape).items():
            full = init(dtype, None).view(bits).reshape(-1)
            for coordinate, indices in expected_indices.items():
                local = np.full(indices.shape, poison, dtype=bits)
                for box in shard_boxes(shape, mesh, coordinate, placements):
                    local[box.local_region()] = init(dtype, box.region()).view(bits)
                assert np.array_equal(local, full[indices]), (
                    name,
                    dtype,
                    shape,
                    mesh,
                    placements,
                    coordinate,
                )


# ---------------------------------------------------------------------------
# Hand-computed cases (no torch), scale, merging


def rows(boxes: list[Box]) -> list[int]:
    """The global row indices of 1-D boxes, in local order."""
    ordered = sorted(boxes, key=lambda box: box.local_start)
    return [i for box in ordered for i in range(box.start[0], box.start[0] + box.extent[0])]


def test_hand_computed() -> None:
    # torch.chunk: 5 over 4 is 2, 2, 1, 0; 3 over 4 (s = 1) is 1, 1, 1, 0.
    assert [local_shape((5,), (4,), (r,), [("shard", 0)]) for r in range(4)] == [
        (2,),
        (2,),
        (1,),
        (0,),
    ]
    assert shard_boxes((3, 4), (4,), (3,), [("shard", 0)]) == []
    assert local_shape((3, 4), (4,), (3,), [("shard", 0)]) == (0, 4)
    # _StridedShard(0, split_factor=2) of 9 over 4 (torch's docstring example).
    expected = [[0, 1, 5], [2, 3, 6], [4, 7], [8]]
    assert [rows(shard_boxes((9,), (4,), (r,), [("strided_shard", 0, 2)])) for r in range(4)] == (
        expected
    )
    # Shard(0), Shard(0) on (2, 2): the later mesh dim shards the earlier one's shard.
    nested = [("shard", 0), ("shard", 0)]
    for i, j in coordinates((2, 2)):
        assert rows(shard_boxes((8,), (2, 2), (i, j), nested)) == list(
            range(4 * i + 2 * j, 4 * i + 2 * j + 2)
        )
    # FSDP2 over TP: (_StridedShard(0, 2), Shard(0)) on (dp, tp) = (2, 2) gives contiguous
    # rows, tp-major, as one merged box: (0, 1) holds rows 4-5.
    fsdp_tp = [("strided_shard", 0, 2), ("shard", 0)]
    assert shard_boxes((8, 3), (2, 2), (0, 1), fsdp_tp) == [Box((4, 0), (2, 3), (0, 0))]
    assert shard_boxes((8, 3), (2, 2), (1, 0), fsdp_tp) == [Box((2, 0), (2, 3), (0, 0))]
    # Abutting runs merge: a _StridedShard over one rank keeps every piece, in order.
    whole = [Box((0, 0), (8, 3), (0, 0))]
    assert shard_boxes((8, 3), (1,), (0,), [("strided_shard", 0, 4)]) == whole
    # A 0-d tensor, replicated: one box with empty tuples.
    assert shard_boxes((), (2,), (1,), [("replicate",)]) == [Box((), (), ())]
    assert local_shape((), (2,), (1,), [("replicate",)]) == ()
    # A 2-D box: rows and columns both split.
    box = shard_boxes((7, 5), (2, 3), (1, 2), [("shard", 0), ("shard", 1)])
    assert box == [Box((4, 4), (3, 1), (0, 0))]
    assert box[0].region() == (slice(4, 7), slice(4, 5))
    assert box[0].local_region() == (slice(0, 3), slice(0, 1))


def test_strided_boxes_are_a_product_of_runs() -> None:
    # Rows and columns both strided: 2 row runs x 3 column runs, local corners tiled.
    placements = [("strided_shard", 0, 2), ("strided_shard", 1, 3)]
    boxes = shard_boxes((8, 9), (2, 3), (1, 0), placements)
    assert boxes == [
        Box((2, 0), (2, 1), (0, 0)),
        Box((2, 3), (2, 1), (0, 1)),
        Box((2, 6), (2, 1), (0, 2)),
        Box((6, 0), (2, 1), (2, 0)),
        Box((6, 3), (2, 1), (2, 1)),
        Box((6, 6), (2, 1), (2, 2)),
    ]


def test_work_is_per_box_not_per_element() -> None:
    # 2^62 elements: any per-element work would never finish (or exhaust memory).
    shape = (1 << 40, 1 << 22)
    boxes = shard_boxes(shape, (4096,), (4095,), [("shard", 0)])
    assert boxes == [Box((4095 << 28, 0), (1 << 28, 1 << 22), (0, 0))]
    # A split factor of 1000 gives 1000 row runs: one box per run, inherent.
    many = shard_boxes(shape, (8,), (3,), [("strided_shard", 0, 1000)])
    assert len(many) == 1000
    assert sum(math.prod(box.extent) for box in many) == math.prod(
        local_shape(shape, (8,), (3,), [("strided_shard", 0, 1000)])
    )
    # A split factor far beyond the dim's length costs nothing for its empty pieces.
    assert local_shape((5, 2), (2,), (1,), [("strided_shard", 0, 1 << 60)]) == (0, 2)
    assert rows(shard_boxes((5,), (2,), (0,), [("strided_shard", 0, 1 << 60)])) == [0, 1, 2, 3, 4]


def test_accepts_numpy_integers() -> None:
    placements = [("shard", np.int64(1)), ("strided_shard", 0, np.int32(2))]
    got = shard_boxes([np.int64(8), 6], [2, np.int16(3)], (np.int8(1), 2), placements)
    assert got == shard_boxes((8, 6), (2, 3), (1, 2), [("shard", 1), ("strided_shard", 0, 2)])


# ---------------------------------------------------------------------------
# Bad arguments: the exception type and the argument named


def test_partial_refused_on_a_split_mesh_dim_and_replicate_on_size_one() -> None:
    with pytest.raises(ValueError, match=r"placements\[1\].*partial.*size 2"):
        shard_boxes((4, 4), (1, 2), (0, 0), [("replicate",), ("partial",)])
    with pytest.raises(ValueError, match=r"placements\[0\].*partial"):
        local_shape((4, 4), (3,), (0,), [("partial",)])
    assert shard_boxes((4, 4), (1, 2), (0, 1), [("partial",), ("shard", 1)]) == shard_boxes(
        (4, 4), (1, 2), (0, 1), [("replicate",), ("shard", 1)]
    )


@pytest.mark.parametrize(
    ("arguments", "error", "pattern"),
    [
        (((4,), (2,), (2,), [("shard", 0)]), ValueError, r"coordinate\[0\] must be in \[0, 2\)"),
        (((4,), (2,), (-1,), [("shard", 0)]), ValueError, r"coordinate\[0\] must be >= 0"),
        (((4,), (2, 2), (0,), [("shard", 0)] * 2), ValueError, r"coordinate .* mesh_shape"),
        (((4,), (2, 2), (0, 0), [("shard", 0)]), ValueError, r"placements has 1 entries"),
        (((4,), (0,), (0,), [("shard", 0)]), ValueError, r"mesh_shape\[0\] must be >= 1"),
        (((4, -1), (2,), (0,), [("shard", 0)]), ValueError, r"global_shape\[1\] must be >= 0"),
        (
            ((4,), (2,), (0,), [("shard", 1)]),
            ValueError,
            r"placements\[0\] dim must be in \[0, 1\)",
        ),
        (((4,), (2,), (0,), [("shard", -1)]), ValueError, r"placements\[0\] dim must be >= 0"),
        (((4,), (2,), (0,), [("strided_shard", 0, 0)]), ValueError, r"split_factor must be >= 1"),
        (((4,), (2,), (0,), [("strided_shard", 0)]), ValueError, r"placements\[0\] must be one of"),
        (((4,), (2,), (0,), [("shard_it", 0)]), ValueError, r"placements\[0\] must be one of"),
        (((4,), (2,), (0,), [()]), TypeError, r"placements\[0\] must be one of"),
        (((4,), (2,), (0,), ["shard"]), TypeError, r"placements\[0\] must be one of"),
        (((4,), (2,), (0,), "shard"), TypeError, r"placements must be a sequence"),
        (
            ((4,), (2,), (0,), [("shard", 0.0)]),
            TypeError,
            r"placements\[0\] dim must be an integer",
        ),
        (
            ((4,), (2,), (0,), [("shard", True)]),
            TypeError,
            r"placements\[0\] dim must be an integer",
        ),
        (((4,), (2,), (0,), [("strided_shard", 0, 2.0)]), TypeError, r"split_factor must be an"),
        (((4.0,), (2,), (0,), [("shard", 0)]), TypeError, r"global_shape\[0\] must be an integer"),
        ((4, (2,), (0,), [("shard", 0)]), TypeError, r"global_shape must be a sequence"),
        (((4,), (2.0,), (0,), [("shard", 0)]), TypeError, r"mesh_shape\[0\] must be an integer"),
        (((4,), (2,), (True,), [("shard", 0)]), TypeError, r"coordinate\[0\] must be an integer"),
        (((4,), (2,), None, [("shard", 0)]), TypeError, r"coordinate must be a sequence"),
    ],
)
def test_bad_arguments_are_named(arguments: tuple[Any, ...], error: type, pattern: str) -> None:
    for function in (shard_boxes, local_shape):
        with pytest.raises(error, match=pattern):
            function(*arguments)
