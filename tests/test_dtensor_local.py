"""DTensors in fastinit.torch, in this one process (issue 13; the multi-process worlds are
test_distributed.py's).

- A world-1 gloo process group (made once for the module) and a 1-D CPU mesh: every
  drop-in on a DTensor (Shard(0), Shard(1), Replicate; float32 and bfloat16; a
  Parameter's local tensor written in place) gives `full_tensor()` bits equal to the
  same call on a plain tensor, the seed drawn without seed= included; a Partial
  placement on a size-1 mesh is a replicate; a meta DTensor is left alone; init_module on
  a model whose parameters are DTensors (made by hand, and by FSDP2's fully_shard on
  meta, and after to_empty) equals the plain init_module, ties and padding row included.
- Every coordinate of 4-rank meshes (4 and 2x2) in this process: a DeviceMesh built
  without a backend in which this process's rank sits at the chosen coordinate, and a
  DTensor of that rank's shard (uneven, empty, Shard of one dim twice, _StridedShard, HSDP):
  each drop-in writes exactly torch's own split of the single-process result.
- fill_dtensor on a fake DTensor-like object (global shape, mesh shape, coordinate,
  placements, local tensor) for each rank of world 4, against the same oracle.
- Refusals: a DTensor as out= of the NumPy-level API (TypeError pointing to
  fastinit.torch), a Partial placement on a mesh dimension of size > 1 (ValueError naming
  the tensor or the parameter; fastinit.shards' own refusal), a local tensor of the wrong
  shape; nothing written.
"""

from __future__ import annotations

import functools
import math
import socket

import fastinit as fi
import numpy as np
import pytest
from fastinit import shards

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

import fastinit.torch as ft  # noqa: E402 - after the skips
from fastinit.torch import _dtensor  # noqa: E402
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh  # noqa: E402
from torch.distributed.tensor import (  # noqa: E402
    DTensor,
    Partial,
    Replicate,
    Shard,
    distribute_tensor,
)
from torch.distributed.tensor.placement_types import Placement, _StridedShard  # noqa: E402

SEED = 20261128
STREAM = "layers.0.weight"
DTYPES = [torch.float32, torch.bfloat16]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def mesh():
    """A 1-D CPU mesh over a world-1 gloo process group, made once for the module."""
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
    )
    try:
        yield init_device_mesh("cpu", (1,))
    finally:
        dist.destroy_process_group()


def bits(tensor):
    """The tensor's bytes, to compare bit for bit (signed zeros and NaNs included)."""
    return tensor.detach().contiguous().reshape(-1).view(torch.uint8)


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(bits(a), bits(b))


def poisoned(shape, dtype=torch.float32):
    return torch.full(shape, math.nan, dtype=dtype)


# ---------------------------------------------------------------------------
# The drop-ins: name -> (call(tensor, **seed keywords), shape)
# ---------------------------------------------------------------------------

RANDOM = {
    "normal_": (lambda t, **k: ft.normal_(t, 0.5, 2.0, **k), (6, 5)),
    "uniform_": (lambda t, **k: ft.uniform_(t, -1.0, 3.0, **k), (6, 5)),
    "trunc_normal_": (lambda t, **k: ft.trunc_normal_(t, std=0.02, a=-0.04, b=0.04, **k), (6, 5)),
    "trunc_normal_sigmas": (lambda t, **k: ft.trunc_normal_(t, lower=-1.5, upper=2, **k), (6, 5)),
    "xavier_uniform_": (lambda t, **k: ft.xavier_uniform_(t, gain=2.0, **k), (6, 5)),
    "xavier_normal_": (lambda t, **k: ft.xavier_normal_(t, **k), (6, 5)),
    "kaiming_uniform_": (lambda t, **k: ft.kaiming_uniform_(t, a=math.sqrt(5), **k), (6, 5)),
    "kaiming_normal_conv": (
        lambda t, **k: ft.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", **k),
        (6, 4, 3),
    ),
    "orthogonal_": (lambda t, **k: ft.orthogonal_(t, gain=1.5, **k), (5, 6)),
}
STRUCTURED = {
    "constant_": (lambda t, **k: ft.constant_(t, 0.3, **k), (6, 5)),
    "ones_": (lambda t, **k: ft.ones_(t, **k), (6, 5)),
    "zeros_": (lambda t, **k: ft.zeros_(t, **k), (6, 5)),
    "eye_": (lambda t, **k: ft.eye_(t, **k), (6, 5)),
    "dirac_": (lambda t, **k: ft.dirac_(t, 2, **k), (6, 2, 3)),
}
DROP_INS = {**RANDOM, **STRUCTURED}
PLACEMENTS_1 = {"shard0": [Shard(0)], "shard1": [Shard(1)], "replicate": [Replicate()]}


def keywords(name):
    return {"seed": SEED, "stream": STREAM} if name in RANDOM else {}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("placement", sorted(PLACEMENTS_1))
@pytest.mark.parametrize("name", sorted(DROP_INS))
def test_every_drop_in_fills_a_dtensor_with_the_plain_tensors_bits(mesh, name, placement, dtype):
    call, shape = DROP_INS[name]
    expected = call(torch.empty(shape, dtype=dtype), **keywords(name))
    dtensor = distribute_tensor(poisoned(shape, dtype), mesh, PLACEMENTS_1[placement])
    assert call(dtensor, **keywords(name)) is dtensor
    assert same_bits(dtensor.full_tensor(), expected)


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_the_seed_drawn_without_seed_is_the_plain_tensors(mesh, name):
    # One draw from the generator per call, as for a plain tensor: ranks whose
    # generators agree draw the same seed.
    call, shape = RANDOM[name]
    generators = [torch.Generator().manual_seed(7) for _ in range(2)]
    expected = call(torch.empty(shape), generator=generators[0])
    dtensor = distribute_tensor(poisoned(shape), mesh, [Shard(0)])
    call(dtensor, generator=generators[1])
    assert same_bits(dtensor.full_tensor(), expected)
    assert torch.equal(generators[0].get_state(), generators[1].get_state())


def test_the_default_generator_serves_dtensors_as_plain_tensors(mesh):
    torch.manual_seed(11)
    expected = ft.trunc_normal_(torch.empty(6, 5), std=0.02)
    state = torch.get_rng_state()
    torch.manual_seed(11)
    dtensor = ft.trunc_normal_(distribute_tensor(poisoned((6, 5)), mesh, [Shard(1)]), std=0.02)
    assert same_bits(dtensor.full_tensor(), expected)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", ["constant_", "ones_", "zeros_", "eye_", "dirac_"])
def test_integer_dtensors_get_torchs_values(mesh, name):
    call, shape = STRUCTURED[name]
    expected = call(torch.full(shape, -5, dtype=torch.int64))
    dtensor = distribute_tensor(torch.full(shape, -5, dtype=torch.int64), mesh, [Shard(0)])
    call(dtensor)
    assert torch.equal(dtensor.full_tensor(), expected)


def test_a_dtensor_parameters_local_tensor_is_written_in_place(mesh):
    # FSDP2's local tensor is a view into its padded storage: the fill must write the
    # local tensor itself, never replace it or its .data.
    parameter = torch.nn.Parameter(distribute_tensor(poisoned((6, 5)), mesh, [Shard(0)]))
    local = parameter._local_tensor
    address = local.data_ptr()
    ft.kaiming_uniform_(parameter, a=math.sqrt(5), seed=SEED)
    assert parameter._local_tensor is local and local.data_ptr() == address
    assert parameter.requires_grad and isinstance(parameter, torch.nn.Parameter)
    expected = ft.kaiming_uniform_(torch.empty(6, 5), a=math.sqrt(5), seed=SEED)
    assert same_bits(local, expected)


def test_a_partial_placement_on_a_size_1_mesh_is_a_replicate(mesh):
    dtensor = DTensor.from_local(poisoned((6, 5)), mesh, [Partial()])
    ft.normal_(dtensor, seed=SEED)
    assert same_bits(dtensor.to_local(), ft.normal_(torch.empty(6, 5), seed=SEED))
    assert _dtensor.placements_of(dtensor) == [("partial",)]


def test_a_meta_dtensor_is_left_alone_without_a_draw(mesh):
    dtensor = distribute_tensor(torch.empty(6, 5, device="meta"), mesh, [Shard(0)])
    generator = torch.Generator().manual_seed(3)
    state = generator.get_state()
    for name, (call, _) in DROP_INS.items():
        if name not in ("dirac_", "kaiming_normal_conv"):
            assert call(dtensor, generator=generator) is dtensor
    assert torch.equal(generator.get_state(), state)


OUT_CALLS = {
    "normal": lambda out: fi.normal((6, 5), SEED, out=out),
    "normal-region": lambda out: fi.normal((9, 5), SEED, out=out, region=(slice(1, 7),)),
    "constant": lambda out: fi.constant((6, 5), 1.0, out=out),
    "identity": lambda out: fi.identity((6, 5), out=out),
    "orthogonal": lambda out: fi.orthogonal((6, 5), SEED, out=out),
}


@pytest.mark.parametrize("call", sorted(OUT_CALLS))
def test_a_dtensor_as_out_is_refused_pointing_to_fastinit_torch(mesh, call):
    # Its __dlpack__ exports the global shape with no data: without the refusal the call
    # would fill memory of its own and leave the shard as it was.
    dtensor = distribute_tensor(poisoned((6, 5)), mesh, [Shard(0)])
    with pytest.raises(TypeError, match=r"^out is a DTensor: .* fastinit\.torch fills each rank"):
        OUT_CALLS[call](dtensor)
    assert torch.isnan(dtensor.to_local()).all()


# ---------------------------------------------------------------------------
# init_module on DTensor parameters (world 1)
# ---------------------------------------------------------------------------


class Model(torch.nn.Module):
    """Embedding with a padding row, Linear, LayerNorm, RMSNorm and a head tied to the
    embedding."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4, padding_idx=3)
        self.proj = torch.nn.Linear(4, 6)
        self.norm = torch.nn.LayerNorm(6)
        self.rms = torch.nn.RMSNorm(6)
        self.back = torch.nn.Linear(6, 4, bias=False)
        self.head = torch.nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, tokens):
        return self.head(self.back(self.rms(self.norm(self.proj(self.embed(tokens))))))


def reference():
    return ft.init_module(Model(), SEED)


def distribute_parameters(model, mesh, placement_of):
    """Every parameter replaced by nn.Parameter(distribute_tensor(...)), ties kept."""
    made = {}
    for module in model.modules():
        for name, parameter in list(module._parameters.items()):
            if parameter is None:
                continue
            if id(parameter) not in made:
                placements = placement_of(parameter)
                made[id(parameter)] = torch.nn.Parameter(
                    distribute_tensor(parameter.detach(), mesh, placements)
                )
            module._parameters[name] = made[id(parameter)]
    return model


def assert_equals_reference(model):
    expected = reference()
    for (name, parameter), (_, plain) in zip(
        model.named_parameters(), expected.named_parameters(), strict=True
    ):
        assert isinstance(parameter, DTensor), name
        assert same_bits(parameter.full_tensor(), plain.detach()), name
    assert model.head.weight is model.embed.weight
    assert not model.embed.weight.full_tensor()[3].any()  # the padding row


@pytest.mark.parametrize("on", ["meta", "cpu"])
def test_init_module_fills_dtensor_parameters_as_plain_ones(mesh, on):
    with torch.device(on):
        model = Model()
    model = distribute_parameters(model, mesh, lambda p: [Shard(p.dim() - 1)])
    identities = {name: id(p) for name, p in model.named_parameters()}
    assert ft.init_module(model, SEED) is model
    assert {name: id(p) for name, p in model.named_parameters()} == identities
    assert_equals_reference(model)


@pytest.mark.parametrize("flow", ["init_module", "to_empty"])
def test_init_module_after_fsdp2_fully_shard_on_meta(mesh, flow):
    from torch.distributed.fsdp import fully_shard

    with torch.device("meta"):
        model = Model()
    fully_shard(model.proj, mesh=mesh)
    fully_shard(model, mesh=mesh)
    if flow == "to_empty":
        model.to_empty(device="cpu")
    ft.init_module(model, SEED)
    assert_equals_reference(model)
    tokens = torch.tensor([[1, 3, 5, 9]])
    with torch.no_grad():  # (FSDP2 warns about a view output when grad is enabled)
        assert torch.equal(model(tokens), reference()(tokens))


def test_init_module_materializes_meta_dtensors_on_their_mesh_device(mesh):
    with torch.device("meta"):
        model = torch.nn.Linear(4, 6)
    model.weight = torch.nn.Parameter(
        distribute_tensor(torch.empty(6, 4, device="meta"), mesh, [Shard(0)])
    )
    with pytest.raises(ValueError, match=r"^device is cuda, but the module holds DTensors on a"):
        ft.init_module(model, SEED, device="cuda")
    assert model.weight.device.type == "meta" and model.bias.device.type == "meta"
    ft.init_module(model, SEED)
    assert model.weight.to_local().device.type == "cpu" and model.bias.device.type == "cpu"
    expected = ft.init_module(torch.nn.Linear(4, 6), SEED)
    assert same_bits(model.weight.full_tensor(), expected.weight.detach())
    assert same_bits(model.bias.detach(), expected.bias.detach())


def test_init_module_on_meta_dtensors_leaves_materialized_tensors_in_place(mesh):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2, device="meta"))
    model[1].weight = torch.nn.Parameter(
        distribute_tensor(torch.empty(2, 4, device="meta"), mesh, [Shard(1)])
    )
    kept = model[0].weight
    ft.init_module(model, SEED)
    assert model[0].weight is kept
    expected = ft.init_module(
        torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)), SEED
    )
    assert same_bits(kept.detach(), expected[0].weight.detach())
    assert same_bits(model[1].weight.full_tensor(), expected[1].weight.detach())
    assert same_bits(model[1].bias.detach(), expected[1].bias.detach())


# ---------------------------------------------------------------------------
# Every coordinate of 4-rank meshes, in this process
# ---------------------------------------------------------------------------


def mesh_at(shape, coordinate):
    """A CPU DeviceMesh of `shape` in which this process's rank (0) sits at `coordinate`
    (the other ranks are names only: no backend, no communication)."""
    others = list(range(1, math.prod(shape)))
    others.insert(int(np.ravel_multi_index(coordinate, shape)), 0)
    return DeviceMesh("cpu", torch.tensor(others).reshape(shape), _init_backend=False)


def torch_split(full, mesh_shape, coordinate, placements):
    """torch's own shard of `full` at `coordinate`: each mesh dimension's placement
    splits what the earlier ones left (as distribute_tensor does)."""
    local = full
    for placement, parts, index in zip(placements, mesh_shape, coordinate, strict=True):
        if not placement.is_replicate():
            local = placement._split_tensor(local, parts, with_padding=False)[0][index]
    return local


def dtensor_at(shape, mesh_shape, coordinate, placements, dtype=torch.float32):
    """A DTensor of global `shape` whose local tensor (NaN) is this coordinate's shard."""
    local_shape = torch_split(torch.empty(shape), mesh_shape, coordinate, placements).shape
    return DTensor.from_local(
        poisoned(local_shape, dtype),
        mesh_at(mesh_shape, coordinate),
        placements,
        run_check=False,
        shape=torch.Size(shape),
        stride=torch.empty(shape).stride(),
    )


# id -> (mesh shape, placements, 2-D global shape)
WORLD_4 = {
    "shard0-uneven": ((4,), [Shard(0)], (7, 6)),
    "shard0-empty-rank": ((4,), [Shard(0)], (3, 6)),
    "shard1-uneven": ((4,), [Shard(1)], (6, 7)),
    "replicate": ((4,), [Replicate()], (5, 6)),
    "strided-rows": ((4,), [_StridedShard(0, split_factor=2)], (9, 6)),
    "tp-and-fsdp": ((2, 2), [Shard(0), Shard(1)], (5, 7)),
    "hsdp": ((2, 2), [Replicate(), Shard(0)], (7, 6)),
    "one-dim-twice": ((2, 2), [Shard(0), Shard(0)], (9, 6)),
    "fsdp-over-tp-rows": ((2, 2), [_StridedShard(0, split_factor=2), Shard(0)], (11, 6)),
    "fsdp-over-tp-columns": ((2, 2), [_StridedShard(1, split_factor=2), Shard(1)], (5, 11)),
}
WORLD_4_DROP_INS = [
    "normal_",
    "trunc_normal_",
    "xavier_normal_",
    "kaiming_uniform_",
    "orthogonal_",
    "constant_",
    "eye_",
]


@pytest.mark.parametrize("name", WORLD_4_DROP_INS)
@pytest.mark.parametrize("case", sorted(WORLD_4))
def test_each_rank_of_world_4_writes_torchs_split_of_the_single_result(mesh, case, name):
    # Fans and bounds from the GLOBAL shape: a local shape's fans would differ here.
    mesh_shape, placements, shape = WORLD_4[case]
    call = DROP_INS[name][0]
    for dtype in DTYPES if name in ("normal_", "constant_") else DTYPES[:1]:
        full = call(torch.empty(shape, dtype=dtype), **keywords(name))
        for coordinate in np.ndindex(*mesh_shape):
            dtensor = dtensor_at(shape, mesh_shape, coordinate, placements, dtype)
            call(dtensor, **keywords(name))
            expected = torch_split(full, mesh_shape, coordinate, placements)
            assert same_bits(dtensor.to_local(), expected), (coordinate, dtype)


def test_dirac_on_world_4_shards_of_a_convolution(mesh):
    full = ft.dirac_(torch.empty(8, 2, 3), 2)
    for coordinate in np.ndindex(4):
        dtensor = dtensor_at((8, 2, 3), (4,), coordinate, [Shard(0)])
        ft.dirac_(dtensor, 2)
        assert same_bits(dtensor.to_local(), torch_split(full, (4,), coordinate, [Shard(0)]))


@pytest.mark.parametrize("padding_idx", [7, -1])
def test_the_padding_row_is_zeroed_only_where_it_is_local(mesh, padding_idx):
    expected = ft.init_module(torch.nn.Embedding(10, 4, padding_idx=padding_idx), SEED)
    assert not expected.weight[padding_idx].any()
    for coordinate in np.ndindex(4):
        embedding = torch.nn.Embedding(10, 4, padding_idx=padding_idx)
        embedding.weight = torch.nn.Parameter(dtensor_at((10, 4), (4,), coordinate, [Shard(0)]))
        ft.init_module(embedding, SEED)
        split = torch_split(expected.weight.detach(), (4,), coordinate, [Shard(0)])
        assert same_bits(embedding.weight.to_local(), split), coordinate


def test_init_module_refuses_a_partial_parameter_naming_it(mesh):
    with torch.device("meta"):
        model = torch.nn.Sequential(torch.nn.Linear(5, 4))
    local = poisoned((4, 5))
    model[0].weight = torch.nn.Parameter(
        DTensor.from_local(
            local,
            mesh_at((4,), (0,)),
            [Partial()],
            run_check=False,
            shape=torch.Size((4, 5)),
            stride=(5, 1),
        )
    )
    with pytest.raises(
        ValueError,
        match=r"^'0\.weight' \(Linear\) has placement Partial\(sum\) on mesh dimension 0 "
        r"\(size 4\): a pending reduction cannot be initialized",
    ):
        ft.init_module(model, SEED)
    assert torch.isnan(local).all()
    assert model[0].bias.device.type == "meta"  # refused before materializing


@pytest.mark.parametrize("name", sorted(DROP_INS))
def test_every_drop_in_refuses_a_partial_dtensor_naming_tensor(mesh, name):
    call, shape = DROP_INS[name]
    dtensor = DTensor.from_local(
        poisoned(shape),
        mesh_at((2,), (1,)),
        [Partial()],
        run_check=False,
        shape=torch.Size(shape),
        stride=torch.empty(shape).stride(),
    )
    generator = torch.Generator().manual_seed(3)
    state = generator.get_state()
    extra = {} if name in STRUCTURED else {"generator": generator}
    with pytest.raises(ValueError, match=r"^tensor has placement Partial\(sum\) on mesh dim"):
        call(dtensor, **extra)
    assert torch.isnan(dtensor.to_local()).all()
    assert torch.equal(generator.get_state(), state)  # refused before the draw


# ---------------------------------------------------------------------------
# fill_dtensor on a fake DTensor-like object: no torch.distributed at all
# ---------------------------------------------------------------------------


class FakeMesh:
    def __init__(self, shape, coordinate):
        self.shape = tuple(shape)
        self._coordinate = coordinate

    def get_coordinate(self):
        return None if self._coordinate is None else list(self._coordinate)


class FakeDTensor:
    """What fill_dtensor reads of a DTensor: its global shape, its mesh (shape and this
    rank's coordinate), its placements and its local tensor."""

    def __init__(self, shape, mesh_shape, coordinate, placements, local):
        self.shape = torch.Size(shape)
        self.device_mesh = FakeMesh(mesh_shape, coordinate)
        self.placements = tuple(placements)
        self.local = local

    def to_local(self):
        return self.local


def normal_box(shape, region, view):
    view.copy_(torch.from_numpy(fi.normal(shape, SEED, region=region)))


@pytest.mark.parametrize("case", sorted(WORLD_4))
def test_fill_dtensor_on_a_fake_dtensor_of_each_rank_of_world_4(case):
    mesh_shape, placements, shape = WORLD_4[case]
    full = torch.from_numpy(fi.normal(shape, SEED))
    for coordinate in np.ndindex(*mesh_shape):
        expected = torch_split(full, mesh_shape, coordinate, placements)
        fake = FakeDTensor(shape, mesh_shape, coordinate, placements, poisoned(expected.shape))
        calls = []

        def fill_box(region, view, calls=calls):
            calls.append(region)
            normal_box(shape, region, view)

        assert _dtensor.fill_dtensor(fake, fill_box) is fake
        assert same_bits(fake.local, expected), coordinate
        assert len(calls) == len(
            shards.shard_boxes(shape, mesh_shape, coordinate, _dtensor.placements_of(fake))
        )


def test_a_rank_outside_the_mesh_fills_nothing():
    fake = FakeDTensor((4, 3), (2,), None, [Shard(0)], poisoned((2, 3)))

    def fill_box(region, view):
        raise AssertionError("a rank outside the mesh holds no box")

    assert _dtensor.fill_dtensor(fake, fill_box) is fake
    assert _dtensor.local_tensor(fake) is None


def test_a_local_tensor_of_another_shape_is_refused_naming_the_tensor():
    fake = FakeDTensor((7, 3), (4,), (3,), [Shard(0)], poisoned((2, 3)))  # rank 3 holds 1 row
    with pytest.raises(ValueError, match=r"^w: its local tensor has shape \(2, 3\), but its "):
        _dtensor.fill_dtensor(fake, functools.partial(normal_box, (7, 3)), name="w")
    assert torch.isnan(fake.local).all()


def test_placements_are_read_as_fastinit_shards_tuples():
    fake = FakeDTensor(
        (8, 6, 4),
        (2, 2, 1, 1),
        (0, 1, 0, 0),
        [_StridedShard(0, split_factor=2), Shard(-1), Replicate(), Partial()],
        None,
    )
    assert _dtensor.placements_of(fake) == [
        ("strided_shard", 0, 2),
        ("shard", 2),
        ("replicate",),
        ("partial",),
    ]


def test_a_partial_on_a_larger_mesh_dimension_is_refused_naming_the_tensor():
    fake = FakeDTensor((4, 3), (1, 2), (0, 1), [Replicate(), Partial("max")], poisoned((4, 3)))
    with pytest.raises(
        ValueError, match=r"^'blocks\.0\.w' has placement Partial\(max\) on mesh dimension 1 "
    ):
        _dtensor.placements_of(fake, "'blocks.0.w'")
    # fastinit.shards refuses the tuple on its own, naming the placement.
    with pytest.raises(ValueError, match=r"^placements\[1\] is \('partial',\) on a mesh dim"):
        shards.shard_boxes((4, 3), (1, 2), (0, 1), [("replicate",), ("partial",)])


def test_a_placement_fastinit_does_not_know_is_a_type_error():
    class Unknown(Placement):
        pass

    fake = FakeDTensor((4, 3), (2,), (0,), [Unknown()], poisoned((2, 3)))
    with pytest.raises(TypeError, match=r"^tensor has placement .* on mesh dimension 0; "):
        _dtensor.fill_dtensor(fake, functools.partial(normal_box, (4, 3)))
    assert torch.isnan(fake.local).all()
