"""fastinit.torch speaks all of torch.nn.init (issue 16): sparse_, the deprecated names
without the underscore, and calculate_gain's errors.

- sparse_: exactly ceil(sparsity * rows) zeros per column (torch's own count, checked
  against torch.nn.init.sparse_ too), for shapes and sparsities from 0 to 1; every other
  element is fastinit.normal's value bit for bit, in every dtype; the zeros are where
  docs/stream.md section 7 puts them (an oracle written from that text); the same for
  the same seed and stream, different for another stream or seed; uniform over the rows
  (each row's and each pair's zero frequency over many columns within 6 binomial sd, a
  bound that a 1% bias exceeds); the same bits for any region of the sampler, a
  non-contiguous tensor, and DTensor shards (world 1, and every rank of 4-rank meshes);
  torch's errors for a tensor that is not 2-D; fastinit's for bad sparsity/std, before
  anything is drawn or written; the tensor kinds the other random drop-ins take.
- The deprecated aliases: each of torch's (and only those) exists, warns torch's
  FutureWarning with torch's text at the caller's line, and equals its drop-in.
- calculate_gain: the exception type torch raises for every bad argument in a table;
  torch's value, type included, for every good one; NaN/inf slopes refused.

Every draw uses a fixed seed (fastinit's or torch.manual_seed).
"""

from __future__ import annotations

import decimal
import fractions
import inspect
import math
import re
import socket
import warnings

import fastinit as fi
import numpy as np
import pytest
from _shared import torch_dtypes

torch = pytest.importorskip("torch")
ft = pytest.importorskip("fastinit.torch")
from fastinit.torch import nn_init  # noqa: E402 - after the skips

torch_init = torch.nn.init
SEED = 20261128
STREAM = "encoder.fc.weight"
DTYPES = torch_dtypes()
SIGMAS = 6.0  # binomial standard deviations


def bits(tensor):
    """The tensor's bytes, to compare bit for bit (signed zeros included)."""
    return tensor.detach().contiguous().reshape(-1).view(torch.uint8)


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(bits(a), bits(b))


def expected_zeros(shape, seed, stream, sparsity):
    """docs/stream.md section 7, read literally: key(r, c) = word rows*cols + r*cols + c;
    column c is 0 at the ceil(sparsity * rows) rows of smallest (key, r)."""
    rows, cols = shape
    num_zeros = math.ceil(sparsity * rows)
    words = fi.random_bits(2 * rows * cols, seed, stream=stream).reshape(2, rows, cols)
    zeros = np.zeros(shape, dtype=bool)
    for c in range(cols):
        ranked = sorted(range(rows), key=lambda r: (int(words[1, r, c]), r))
        zeros[ranked[:num_zeros], c] = True
    return zeros


def sparse_result(shape, sparsity, std=0.01, dtype=torch.float32, **keywords):
    keywords = {"seed": SEED, "stream": STREAM, **keywords}
    return ft.sparse_(torch.full(shape, math.nan, dtype=dtype), sparsity, std, **keywords)


# ---------------------------------------------------------------------------
# sparse_: the count, the values, the pattern
# ---------------------------------------------------------------------------

SHAPES = [(10, 7), (1, 5), (7, 1), (64, 33), (3, 200)]
SPARSITIES = [0.0, 0.01, 0.1, 1 / 3, 0.5, 0.9, 0.99, 1.0]


@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_each_column_has_exactly_torchs_count_of_zeros(shape, sparsity):
    rows, cols = shape
    num_zeros = math.ceil(sparsity * rows)
    t = sparse_result(shape, sparsity)
    expected = torch.full((cols,), num_zeros)
    assert torch.equal((t == 0).sum(dim=0), expected)
    # torch's own sparse_ on the same shape (its normal values are never exactly 0 here)
    torch.manual_seed(3)
    theirs = torch_init.sparse_(torch.empty(shape), sparsity)
    assert torch.equal((theirs == 0).sum(dim=0), expected)


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 1.0])
def test_other_elements_are_fastinit_normals_bit_for_bit(sparsity, dtype):
    shape, std = (40, 25), 0.5
    t = sparse_result(shape, sparsity, std, DTYPES[dtype])
    values = fi.normal(shape, SEED, std=std, stream=STREAM, dtype=dtype)
    expected = torch.from_numpy(values.view(np.uint8)).view(DTYPES[dtype]).reshape(shape)
    zeros = torch.from_numpy(expected_zeros(shape, SEED, STREAM, sparsity))
    assert same_bits(t, torch.where(zeros, torch.zeros((), dtype=t.dtype), expected))
    assert not torch.signbit(t[zeros]).any()  # +0


@pytest.mark.parametrize("sparsity", [0.05, 0.25, 0.5, 0.8])
@pytest.mark.parametrize("shape", [(9, 13), (50, 4), (2, 30)], ids=str)
def test_the_zeros_are_where_docs_stream_md_puts_them(shape, sparsity):
    t = sparse_result(shape, sparsity)
    assert np.array_equal(t.numpy() == 0, expected_zeros(shape, SEED, STREAM, sparsity))


def test_the_pattern_follows_seed_and_stream():
    shape = (32, 64)
    zeros = (sparse_result(shape, 0.5) == 0).numpy()
    assert np.array_equal(zeros, (sparse_result(shape, 0.5) == 0).numpy())
    for keywords in ({"stream": "another.weight"}, {"seed": SEED + 1}):
        other = (sparse_result(shape, 0.5, **keywords) == 0).numpy()
        assert other.sum() == zeros.sum()
        assert (other != zeros).mean() > 0.3  # ~0.5 for independent patterns


def test_the_zeros_do_not_depend_on_std_or_dtype():
    shape = (20, 30)
    reference = sparse_result(shape, 0.4) == 0
    assert torch.equal(sparse_result(shape, 0.4, std=3.0) == 0, reference)
    assert torch.equal(sparse_result(shape, 0.4, dtype=torch.bfloat16) == 0, reference)


# (rows, sparsity, columns): 6 sd of a row's frequency is under 1% of it for the first.
UNIFORMITY = [(4, 0.5, 400_000), (40, 0.1, 100_000)]


@pytest.mark.parametrize(("rows", "sparsity", "cols"), UNIFORMITY)
def test_each_row_and_pair_of_rows_is_zeroed_with_the_uniform_frequency(rows, sparsity, cols):
    zeros = (sparse_result((rows, cols), sparsity) == 0).numpy()
    num_zeros = math.ceil(sparsity * rows)
    p = num_zeros / rows  # any one row is zero in a column
    sd = math.sqrt(cols * p * (1 - p))
    if rows == 4:
        assert SIGMAS * sd < 0.01 * cols * p, "cannot see a 1% bias"
    assert np.all(np.abs(zeros.sum(axis=1) - cols * p) < SIGMAS * sd), zeros.sum(axis=1)
    # Without replacement: two given rows are both zero with z (z - 1) / (rows (rows - 1)).
    q = num_zeros * (num_zeros - 1) / (rows * (rows - 1))
    sd_pair = math.sqrt(cols * q * (1 - q))
    for a, b in [(0, 1), (0, rows - 1), (rows // 2, rows // 2 + 1)]:
        both = int(np.sum(zeros[a] & zeros[b]))
        assert abs(both - cols * q) < SIGMAS * sd_pair, (a, b, both, cols * q)


def test_the_nonzero_values_have_std_std():
    std = 0.02
    t = sparse_result((1024, 1024), 0.1, std)
    x = t[t != 0].double()
    n = x.numel()
    se_var = std**2 * math.sqrt(2 / n)  # a normal's variance estimator
    assert SIGMAS * se_var < 0.02 * std**2, "cannot see a 1% error in the std"
    assert abs(float(x.var()) - std**2) < SIGMAS * se_var
    assert abs(float(x.mean())) < SIGMAS * std / math.sqrt(n)


# ---------------------------------------------------------------------------
# sparse_: regions, views, shards
# ---------------------------------------------------------------------------

REGIONS = [
    (slice(0, 30), slice(0, 50)),
    (slice(5, 17), slice(0, 50)),  # whole rows
    (slice(0, 30), slice(3, 4)),  # one column: a band of one word per row
    (slice(7, 8), slice(11, 40)),
    (slice(29, 30), slice(49, 50)),
    (slice(10, 20), slice(20, 50)),
]


@pytest.mark.parametrize("sparsity", [0.2, 0.5, 1.0])
@pytest.mark.parametrize("region", REGIONS, ids=str)
def test_any_region_of_the_sampler_is_the_slice_of_the_whole(region, sparsity):
    shape = (30, 50)
    num_zeros = math.ceil(sparsity * shape[0])
    whole = torch.empty(shape)
    nn_init._sparse(shape, SEED, num_zeros, 0.1, dtype="float32", out=whole, stream=7)
    extent = tuple(s.stop - s.start for s in region)
    part = torch.full(extent, math.nan)
    nn_init._sparse(shape, SEED, num_zeros, 0.1, dtype="float32", out=part, stream=7, region=region)
    assert same_bits(part, whole[region])


def test_the_zero_pattern_is_cut_in_column_steps_without_changing_it(monkeypatch):
    shape = (37, 45)
    expected = sparse_result(shape, 0.3)
    monkeypatch.setattr(nn_init, "_PATTERN_ELEMENTS", 37 * 4)  # steps of 4 columns
    assert same_bits(sparse_result(shape, 0.3), expected)


def test_keys_of_a_band_and_of_whole_rows_are_the_stream_words():
    shape = (6, 50)
    words = fi.random_bits(600, SEED, stream=3).reshape(2, 6, 50)[1]
    for c0, c1 in [(0, 50), (10, 40), (20, 21), (45, 50)]:  # one run, and run per row
        assert np.array_equal(nn_init._keys(shape, SEED, 3, c0, c1), words[:, c0:c1])


def test_tied_keys_go_to_the_lower_rows():
    # Ties of 32-bit keys are rare (2^-32 per pair); small keys force them here.
    keys = np.array([[5], [3], [5], [5], [1]], dtype=np.uint32)
    assert np.flatnonzero(nn_init._zero_rows(keys, 3)[:, 0]).tolist() == [0, 1, 4]
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 4, size=(9, 500)).astype(np.uint32)
    for num_zeros in (1, 4, 8):
        expected = np.zeros(keys.shape, dtype=bool)
        for c in range(keys.shape[1]):
            ranked = sorted(range(9), key=lambda r: (int(keys[r, c]), r))
            expected[ranked[:num_zeros], c] = True
        assert np.array_equal(nn_init._zero_rows(keys, num_zeros), expected)


@pytest.mark.parametrize(
    "view",
    [lambda base: base.T, lambda base: base[:, ::2], lambda base: base[3:, 5:]],
    ids=["transposed", "strided", "offset"],
)
def test_a_non_contiguous_tensor_is_filled_in_logical_order_in_place(view):
    w = view(torch.full((24, 40), math.nan))
    pointer = w.data_ptr()
    assert ft.sparse_(w, 0.3, seed=SEED) is w
    assert w.data_ptr() == pointer
    assert same_bits(w, ft.sparse_(torch.empty(tuple(w.shape)), 0.3, seed=SEED))


# DTensors: a world-1 gloo group, and every rank of 4-rank meshes (test_dtensor_local.py)


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def mesh():
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    from torch.distributed.device_mesh import init_device_mesh

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
    )
    try:
        yield init_device_mesh("cpu", (1,))
    finally:
        dist.destroy_process_group()


def _shard(full, mesh_shape, coordinate, placements):
    """torch's own shard of `full` at `coordinate` (as distribute_tensor splits)."""
    local = full
    for placement, parts, index in zip(placements, mesh_shape, coordinate, strict=True):
        if not placement.is_replicate():
            local = placement._split_tensor(local, parts, with_padding=False)[0][index]
    return local


def _dtensor_at(shape, mesh_shape, coordinate, placements):
    """A DTensor of global `shape` whose NaN local tensor is this coordinate's shard, on a
    mesh without a backend in which this process (rank 0) sits at `coordinate`."""
    from torch.distributed.device_mesh import DeviceMesh
    from torch.distributed.tensor import DTensor

    others = list(range(1, math.prod(mesh_shape)))
    others.insert(int(np.ravel_multi_index(coordinate, mesh_shape)), 0)
    device_mesh = DeviceMesh("cpu", torch.tensor(others).reshape(mesh_shape), _init_backend=False)
    local = _shard(torch.empty(shape), mesh_shape, coordinate, placements)
    return DTensor.from_local(
        torch.full(local.shape, math.nan),
        device_mesh,
        placements,
        run_check=False,
        shape=torch.Size(shape),
        stride=torch.empty(shape).stride(),
    )


def test_a_world_1_dtensor_holds_the_plain_tensors_bits(mesh):
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    shape = (12, 9)
    expected = sparse_result(shape, 0.4)
    for placement in (Shard(0), Shard(1), Replicate()):
        dtensor = distribute_tensor(torch.full(shape, math.nan), mesh, [placement])
        assert ft.sparse_(dtensor, 0.4, 0.01, seed=SEED, stream=STREAM) is dtensor
        assert same_bits(dtensor.full_tensor(), expected), placement


def test_each_rank_of_world_4_holds_its_split_of_the_single_result(mesh):
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor.placement_types import _StridedShard

    cases = [  # (mesh shape, placements, global shape)
        ((4,), [Shard(0)], (7, 6)),
        ((4,), [Shard(1)], (6, 7)),
        ((4,), [Replicate()], (5, 6)),
        ((2, 2), [Shard(0), Shard(1)], (5, 7)),
        ((2, 2), [Shard(1), Shard(1)], (6, 41)),  # bands: a run of keys per row
        ((2, 2), [_StridedShard(1, split_factor=2), Shard(1)], (5, 11)),
        ((2, 2), [Replicate(), Shard(0)], (7, 6)),
    ]
    for mesh_shape, placements, shape in cases:
        full = sparse_result(shape, 0.5)
        for coordinate in np.ndindex(*mesh_shape):
            dtensor = _dtensor_at(shape, mesh_shape, coordinate, placements)
            ft.sparse_(dtensor, 0.5, seed=SEED, stream=STREAM)
            expected = _shard(full, mesh_shape, coordinate, placements)
            assert same_bits(dtensor.to_local(), expected), (placements, coordinate)


# ---------------------------------------------------------------------------
# sparse_: arguments, seeds, tensors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (5,), (2, 3, 4), (1, 1, 1, 1)], ids=str)
def test_a_tensor_that_is_not_2d_raises_torchs_error(shape):
    errors = []
    for module in (torch_init, ft):
        t = torch.full(shape, math.nan)
        with pytest.raises(Exception) as info:
            module.sparse_(t, 0.5)
        errors.append(info.value)
        assert torch.isnan(t).all()
    theirs, ours = errors
    assert type(ours) is type(theirs) is ValueError
    assert str(ours) == str(theirs) == "Only tensors with 2 dimensions are supported"


# sparsity / std -> fastinit's exception (and what torch does, for the record)
BAD_ARGUMENTS = {
    "sparsity-negative": ({"sparsity": -0.1}, ValueError, "sparsity"),  # torch: zeros rows - 1
    "sparsity-above-1": ({"sparsity": 1.5}, ValueError, "sparsity"),  # torch: all zero
    "sparsity-nan": ({"sparsity": math.nan}, ValueError, "sparsity"),  # torch: ValueError
    "sparsity-inf": ({"sparsity": math.inf}, ValueError, "sparsity"),  # torch: OverflowError
    "sparsity-bool": ({"sparsity": True}, TypeError, "sparsity"),  # torch: all zero
    "sparsity-str": ({"sparsity": "0.5"}, TypeError, "sparsity"),  # torch: TypeError
    "sparsity-none": ({"sparsity": None}, TypeError, "sparsity"),  # torch: TypeError
    "sparsity-complex": ({"sparsity": 0.5j}, TypeError, "sparsity"),
    "std-negative": ({"std": -0.01}, ValueError, "std"),  # torch: RuntimeError
    "std-nan": ({"std": math.nan}, ValueError, "std"),
    "std-inf": ({"std": math.inf}, ValueError, "std"),
    "std-str": ({"std": "0.01"}, TypeError, "std"),
    "std-beyond-float16": ({"std": 2e4, "dtype": torch.float16}, ValueError, "std"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARGUMENTS))
def test_bad_arguments_raise_naming_them_before_any_draw_or_write(case):
    arguments, error, name = BAD_ARGUMENTS[case]
    arguments = {"sparsity": 0.5, "std": 0.01, **arguments}
    t = torch.full((6, 4), math.nan, dtype=arguments.pop("dtype", torch.float32))
    state = torch.get_rng_state()
    with pytest.raises(error, match=name):
        ft.sparse_(t, **arguments)  # no seed: a draw would move the default generator
    assert torch.isnan(t).all()
    assert torch.equal(torch.get_rng_state(), state)


def test_sparsity_of_an_int_and_std_0_are_accepted():
    assert torch.equal(sparse_result((5, 3), 1), torch.zeros(5, 3))
    t = sparse_result((5, 3), 0, std=0.0)
    assert torch.equal(t, torch.zeros(5, 3)) and not torch.signbit(t).any()


def test_without_seed_the_generator_decides_values_and_zeros():
    shape = (16, 12)
    drawn = int(torch.randint(0, 2**63 - 1, (), generator=torch.Generator().manual_seed(5)))
    expected = ft.sparse_(torch.empty(shape), 0.5, seed=drawn)
    state = torch.get_rng_state()
    got = ft.sparse_(torch.empty(shape), 0.5, generator=torch.Generator().manual_seed(5))
    assert same_bits(got, expected)
    assert torch.equal(torch.get_rng_state(), state)  # torch's randperm would move it
    torch.manual_seed(5)
    assert same_bits(ft.sparse_(torch.empty(shape), 0.5), expected)
    with pytest.raises(ValueError, match="seed or generator"):
        ft.sparse_(torch.empty(shape), 0.5, seed=1, generator=torch.Generator())


def test_the_tensor_kinds_of_the_other_random_drop_ins():
    # a Parameter, in place, its grad flag kept
    p = torch.nn.Parameter(torch.full((6, 5), math.nan))
    assert ft.sparse_(p, 0.5, seed=SEED, stream=STREAM) is p
    assert p.requires_grad and same_bits(p.detach(), sparse_result((6, 5), 0.5))
    # meta: left alone, nothing drawn
    generator = torch.Generator().manual_seed(5)
    state = generator.get_state()
    meta = torch.empty(4, 3, device="meta")
    assert ft.sparse_(meta, 0.5, generator=generator) is meta
    assert torch.equal(generator.get_state(), state)
    # empty: nothing to write
    for shape in [(0, 5), (5, 0)]:
        assert ft.sparse_(torch.empty(shape), 0.5, seed=1).shape == shape
    # refused as the other random drop-ins refuse them, nothing written
    with pytest.raises(TypeError, match="tensor"):
        ft.sparse_(torch.zeros(4, 3, dtype=torch.int64), 0.5, seed=1)
    with pytest.raises(ft.OverlappingTensorError):
        ft.sparse_(torch.zeros(4, 1).expand(4, 3), 0.5, seed=1)
    with pytest.raises(ft.UnsupportedTensorError):
        ft.sparse_(torch.zeros(4, 3).to_sparse(), 0.5, seed=1)
    with pytest.raises(TypeError, match="tensor"):
        ft.sparse_(np.zeros((4, 3)), 0.5, seed=1)

    class Subclass(torch.Tensor):
        pass

    t = torch.full((4, 3), math.nan).as_subclass(Subclass)
    with pytest.raises(TypeError, match="does not know"):
        ft.sparse_(t, 0.5, seed=1)
    assert torch.isnan(t.as_subclass(torch.Tensor)).all()


def test_sparse_takes_torchs_arguments_by_position_and_name():
    assert (
        list(inspect.signature(torch_init.sparse_).parameters)
        == list(inspect.signature(ft.sparse_).parameters)[:4]
    )
    by_position = ft.sparse_(torch.empty(8, 6), 0.25, 0.5, torch.Generator().manual_seed(2))
    by_name = ft.sparse_(
        tensor=torch.empty(8, 6), sparsity=0.25, std=0.5, generator=torch.Generator().manual_seed(2)
    )
    assert same_bits(by_position, by_name)


# ---------------------------------------------------------------------------
# The deprecated aliases
# ---------------------------------------------------------------------------

# alias -> a call with the drop-in's arguments (seeded where random)
ALIASES = {
    "uniform": lambda f: f(torch.empty(5, 4), -1.0, 2.0, seed=SEED),
    "normal": lambda f: f(torch.empty(5, 4), 0.5, 2.0, seed=SEED),
    "constant": lambda f: f(torch.empty(5, 4), 0.3),
    "eye": lambda f: f(torch.empty(5, 4)),
    "dirac": lambda f: f(torch.empty(4, 2, 3), 2),
    "xavier_uniform": lambda f: f(torch.empty(5, 4), gain=2.0, seed=SEED),
    "xavier_normal": lambda f: f(torch.empty(5, 4), seed=SEED, stream="x"),
    "kaiming_uniform": lambda f: f(torch.empty(5, 4), a=math.sqrt(5), seed=SEED),
    "kaiming_normal": lambda f: f(torch.empty(5, 4), mode="fan_out", seed=SEED),
    "orthogonal": lambda f: f(torch.empty(5, 4), 1.5, seed=SEED),
    "sparse": lambda f: f(torch.empty(5, 4), 0.5, 0.1, seed=SEED),
}

# torch's aliases with no default for an argument: what to call them with
TORCH_ARGUMENTS = {
    "constant": (torch.empty(5, 4), 0.3),
    "dirac": (torch.empty(4, 2, 3),),
    "sparse": (torch.empty(5, 4), 0.5),
}


def test_the_aliases_are_torchs_and_exported():
    theirs = {name for name in torch_init.__all__ if not name.endswith("_")}
    theirs.discard("calculate_gain")
    assert theirs == set(ALIASES)
    assert set(torch_init.__all__) <= set(ft.__all__)
    for name in torch_init.__all__:
        assert getattr(ft, name) is getattr(nn_init, name)


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_each_alias_warns_as_torchs_then_calls_its_drop_in(name):
    call = ALIASES[name]
    with warnings.catch_warnings(record=True) as torchs:
        warnings.simplefilter("always")
        torch.manual_seed(0)
        getattr(torch_init, name)(*TORCH_ARGUMENTS.get(name, (torch.empty(5, 4),)))
    (torch_warning,) = torchs
    message = re.escape(f"`nn.init.{name}` is now deprecated in favor of `nn.init.{name}_`.")
    with pytest.warns(FutureWarning, match=message) as ours:
        got = call(getattr(ft, name))
    (our_warning,) = ours
    assert our_warning.category is torch_warning.category is FutureWarning
    assert str(our_warning.message) == str(torch_warning.message)
    assert our_warning.filename == __file__  # stacklevel: the caller's line
    assert same_bits(got, call(getattr(ft, name + "_")))
    alias = getattr(ft, name)
    assert alias.__name__ == name
    assert inspect.signature(alias) == inspect.signature(getattr(ft, name + "_"))


def test_an_alias_refuses_as_its_drop_in_after_warning():
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="2 dimensions"):
        ft.sparse(torch.empty(3), 0.5)


# ---------------------------------------------------------------------------
# calculate_gain
# ---------------------------------------------------------------------------

NONLINEARITIES = list(torch_init._NonlinearityType.__args__)
GOOD_SLOPES = [None, 0, 1, -3, 0.2, -0.01, 1e-300, 1e150, 1.3e154, 10**150, np.float64(0.3)]

BAD_GAIN_ARGUMENTS = [
    ("leaky_relu", True),
    ("leaky_relu", False),
    ("leaky_relu", "0.1"),
    ("leaky_relu", [0.1]),
    ("leaky_relu", (0.1,)),
    ("leaky_relu", 0.1j),
    ("leaky_relu", decimal.Decimal("0.1")),
    ("leaky_relu", fractions.Fraction(1, 10)),
    ("leaky_relu", np.float32(0.1)),
    ("leaky_relu", np.int64(2)),
    ("leaky_relu", np.bool_(True)),
    ("leaky_relu", torch.tensor(0.1)),
    ("leaky_relu", 1e200),  # its square overflows
    ("leaky_relu", -1e155),
    ("leaky_relu", 10**200),
    ("leaky_relu", 10**400),
    ("Relu", None),
    ("leaky-relu", 0.1),
    ("", None),
    ("gelu", None),
    ("softmax", None),
    (None, None),
    (5, None),
    (1.0, None),
    (b"relu", None),
    (["relu"], None),
    (("tanh",), None),
    (torch.nn.ReLU(), None),
]


@pytest.mark.parametrize("arguments", BAD_GAIN_ARGUMENTS, ids=repr)
def test_calculate_gain_raises_torchs_exception_type(arguments):
    with pytest.raises(Exception) as theirs:
        torch_init.calculate_gain(*arguments)
    with pytest.raises(Exception) as ours:
        ft.calculate_gain(*arguments)
    assert type(ours.value) is type(theirs.value), (ours.value, theirs.value)


@pytest.mark.parametrize("slope", [math.nan, math.inf, -math.inf])
def test_calculate_gain_refuses_a_non_finite_slope_where_torch_returns_nan_or_0(slope):
    theirs = torch_init.calculate_gain("leaky_relu", slope)
    assert math.isnan(theirs) or theirs == 0.0  # what fastinit will not return
    with pytest.raises(ValueError, match=r"param \(negative_slope\) must be finite"):
        ft.calculate_gain("leaky_relu", slope)


def test_calculate_gain_values_are_torchs_type_included():
    for nonlinearity in NONLINEARITIES:
        params = GOOD_SLOPES if nonlinearity == "leaky_relu" else [None, 3, True, "x", math.nan]
        for param in params:
            theirs = torch_init.calculate_gain(nonlinearity, param)
            ours = ft.calculate_gain(nonlinearity, param)
            assert type(ours) is type(theirs) and ours == theirs, (nonlinearity, param)
    assert ft.calculate_gain(np.str_("tanh")) == 5.0 / 3


@pytest.mark.parametrize(
    ("pattern", "run", "gap"), [(1, 1, 0), (7, 3, 1 << 30), (64, 1 << 30, 0), (5, 10**6, 3)]
)
def test_sparse_pattern_is_the_same_whatever_the_band_and_run_sizes(pattern, run, gap, monkeypatch):
    """The keys are made a band of columns at a time, from runs through blocks of rows or
    one call per row: none of those sizes may change a bit."""
    from fastinit.torch import nn_init

    shapes = [(37, 29), (5, 300), (300, 5)]
    expected = [nn_init.sparse_(torch.empty(shape), 0.3, seed=9) for shape in shapes]
    monkeypatch.setattr(nn_init, "_PATTERN_ELEMENTS", pattern)
    monkeypatch.setattr(nn_init, "_RUN_WORDS", run)
    monkeypatch.setattr(nn_init, "_ROW_GAP", gap)
    for shape, want in zip(shapes, expected, strict=True):
        assert torch.equal(nn_init.sparse_(torch.empty(shape), 0.3, seed=9), want), shape
