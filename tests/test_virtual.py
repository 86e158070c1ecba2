"""fastinit.virtual.VirtualTensor: x[index] is exactly the full call's [index], for every
sampler and dtype; nothing is computed before indexing and indexing computes one box;
the token is the same in another process and changes with every argument that changes
the values; bad arguments and indices are refused as the sampler and NumPy refuse them."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import fastinit
import numpy as np
import pytest
from _shared import DTYPES, UINT_OF_SIZE
from fastinit import virtual
from fastinit.virtual import VirtualTensor

# Every sampler name VirtualTensor takes: (shape, params). Small shapes of several axes.
CASES = {
    "variance_scaling": ((9, 8, 2), {"scale": 0.7, "mode": "fan_out", "distribution": "normal"}),
    "glorot_normal": ((13, 7, 3), {}),
    "glorot_uniform": ((13, 7), {"gain": 1.5}),
    "he_normal": ((6, 5, 3, 2), {"distribution": "uniform"}),
    "he_uniform": ((11, 10), {"layout": "jax"}),
    "lecun_normal": ((10, 12), {}),
    "lecun_uniform": ((7, 9), {}),
    "xavier_normal": ((8, 6), {"distribution": "normal"}),
    "xavier_uniform": ((9, 4, 2), {}),
    "kaiming_normal": ((12, 5), {"gain": 0.5}),
    "kaiming_uniform": ((5, 12), {}),
    "normal": ((11, 9), {"mean": 0.25, "std": 2.0}),
    "uniform": ((31,), {"low": -3.0, "high": 0.5}),
    "truncated_normal": ((5, 6, 4), {"mean": 1.0, "std": 0.5, "lower": -1.5, "upper": 3.0}),
    "orthogonal": ((12, 3, 3), {"gain": 1.5}),
    "constant": ((4, 7), {"value": 0.3}),
    "zeros": ((5, 3, 2), {}),
    "ones": ((7, 0, 2), {}),
    "identity": ((9, 13), {"gain": 0.75}),
    "eye": ((13, 9), {}),
    "dirac": ((6, 4, 3, 3), {"groups": 2, "gain": 2.0}),
}
SEED = 2**63 + 12345
STREAM = "layers.0.weight"


def full_call(init, shape, dtype, params):
    sampler = getattr(fastinit, init)
    if init in virtual.SEEDED:
        return sampler(shape, SEED, dtype=dtype, stream=STREAM, **params)
    return sampler(shape, dtype=dtype, **params)


def make(init, shape, dtype, params, **options):
    seed = SEED if init in virtual.SEEDED else None
    return VirtualTensor(init, shape, seed, stream=STREAM, dtype=dtype, **params, **options)


def assert_same(got, expected):
    """The same value of the same type (array or NumPy scalar), shape, dtype and bits."""
    assert type(got) is type(expected)
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    unsigned = UINT_OF_SIZE[got.dtype.itemsize]
    assert np.array_equal(got.view(unsigned), expected.view(unsigned))


def random_index(rng, shape):
    """A NumPy index of `shape`: ints (negative too), slices of any step and bounds past
    the ends, integer lists, boolean masks, None, and an Ellipsis standing for some
    axes; sometimes not a tuple."""
    entries = []
    for dim in shape:
        kind = rng.integers(6)
        if kind == 0 and dim > 0:
            entries.append(int(rng.integers(-dim, dim)))
        elif kind == 4 and dim > 0:  # integer positions, repeated and negative ones too
            entries.append(list(rng.integers(-dim, dim, size=rng.integers(4))))
        elif kind == 5:
            entries.append(rng.integers(2, size=dim).astype(bool))
        elif kind == 1:
            entries.append(slice(None))
        else:
            bound = [None, *range(-dim - 3, dim + 4)]
            start, stop = (bound[rng.integers(len(bound))] for _ in range(2))
            step = [None, 1, 2, 3, 5, -1, -2, -4][rng.integers(8)]
            entries.append(slice(start, stop, step))
        if rng.integers(6) == 0:
            entries.append(None)
    if entries and rng.integers(3) == 0:  # an Ellipsis for a run of axes
        first = int(rng.integers(len(entries)))
        last = int(rng.integers(first, len(entries) + 1))
        entries[first:last] = [Ellipsis]
    elif entries and rng.integers(3) == 0:  # trailing axes left out
        entries = entries[: rng.integers(len(entries) + 1)]
    if len(entries) == 1 and rng.integers(2):
        return entries[0]
    return tuple(entries)


def test_cases_cover_every_sampler():
    assert set(CASES) == set(virtual.SAMPLERS)
    assert set(virtual.SEEDED).isdisjoint(virtual.UNSEEDED)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("init", sorted(CASES))
def test_every_index_is_the_slice_of_the_full_call(init, dtype):
    shape, params = CASES[init]
    full = full_call(init, shape, dtype, params)
    tensor = make(init, shape, dtype, params)
    rng = np.random.default_rng(1400 + len(init))
    for _ in range(16):
        index = random_index(rng, shape)
        try:
            expected = full[index]
        except IndexError:  # arrays that do not broadcast together
            with pytest.raises(IndexError):
                tensor[index]
            continue
        assert_same(tensor[index], expected)
    assert_same(np.asarray(tensor), full)
    assert_same(tensor[...], full[...])
    assert_same(tensor[()], full[()])


@pytest.mark.parametrize(
    "index",
    [
        (3, 4),  # a NumPy scalar, as full[3, 4]
        (-1, -7),
        (slice(None, None, -1), 2),
        (slice(10, 2, -3), slice(-2, None, -2)),
        (Ellipsis, None, slice(1, 6, 4)),
        (None, Ellipsis),
        (slice(50, 60), slice(2, 9)),  # past the end: empty, as in NumPy
        (slice(-100, 100, 7),),
        (np.int64(5), np.uint8(1)),
    ],
)
def test_chosen_indices(index):
    shape, params = (12, 7), {"gain": 1.25}
    tensor = make("he_uniform", shape, "float16", params)
    assert_same(tensor[index], full_call("he_uniform", shape, "float16", params)[index])


def test_zero_dimensional_tensor():
    params = {"fan_in": 3.0, "fan_out": 5.0}
    tensor = make("glorot_normal", (), "float32", params)
    full = full_call("glorot_normal", (), "float32", params)
    assert tensor.ndim == 0 and tensor.size == 1
    assert_same(tensor[()], full[()])
    assert_same(tensor[...], full[...])
    assert_same(tensor[None], full[None])
    constant = VirtualTensor("constant", (), None, value=2.5)
    assert_same(np.asarray(constant), np.array(2.5, np.float32))


def test_attributes():
    tensor = VirtualTensor("normal", [4, 5], 9, stream="w", dtype="bfloat16", std=0.5)
    assert tensor.shape == (4, 5)
    assert tensor.ndim == 2 and tensor.size == 20
    assert tensor.dtype == np.dtype("bfloat16") and isinstance(tensor.dtype, np.dtype)
    assert (tensor.init, tensor.seed, tensor.params) == ("normal", 9, {"std": 0.5})
    assert tensor.stream == fastinit.stream_id("w")
    tensor.params["std"] = 9.0  # a copy: the tensor is unchanged
    assert tensor.params == {"std": 0.5}
    assert "VirtualTensor('normal', shape=(4, 5), seed=9" in repr(tensor)


def counting(monkeypatch, init):
    """Wraps the sampler `init` in virtual.SAMPLERS: returns the list of (region, size of
    the array it returned) of every call."""
    calls = []
    original = virtual.SAMPLERS[init]

    def sampler(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append((kwargs["region"], result.size))
        return result

    monkeypatch.setitem(virtual.SAMPLERS, init, sampler)
    return calls


@pytest.mark.parametrize("init", ["glorot_normal", "orthogonal", "dirac"])
def test_nothing_is_computed_until_indexed(monkeypatch, init):
    shape, params = CASES[init]
    calls = counting(monkeypatch, init)
    tensor = make(init, shape, "float32", params)
    assert all(size == 0 for _, size in calls)  # construction checks, computing nothing
    del calls[:]
    described = (repr(tensor), tensor.shape, tensor.dtype, tensor.__dask_tokenize__())
    assert pickle.loads(pickle.dumps(tensor)).__dask_tokenize__() == described[-1]
    assert calls == []
    tensor[1:3, ..., 0]
    (region, size), *more = calls
    assert more == []
    assert region[:2] == (slice(1, 3), slice(0, shape[1]))
    assert size == 2 * np.prod(shape[1:-1])  # the box: the last axis taken at one index


def test_an_index_computes_its_bounding_box_once(monkeypatch):
    calls = counting(monkeypatch, "normal")
    tensor = make("normal", (40, 30), "float32", {})
    del calls[:]
    tensor[5:25:5, -3]
    assert calls == [((slice(5, 21), slice(27, 28)), 16)]
    del calls[:]
    tensor[30:10:-4, ::-7]
    assert calls == [((slice(14, 31), slice(1, 30)), 17 * 29)]
    del calls[:]
    tensor[50:]  # empty: a zero-element box
    assert calls == [((slice(0, 0), slice(0, 30)), 0)]


def test_whole_tensor_is_one_call(monkeypatch):
    calls = counting(monkeypatch, "uniform")
    tensor = make("uniform", (6, 5), "float64", {})
    del calls[:]
    assert_same(
        np.asarray(tensor, dtype=np.float32),
        full_call("uniform", (6, 5), "float64", {}).astype(np.float32),
    )
    assert calls == [(None, 30)]


def test_threads_do_not_change_bits():
    shape, params = CASES["truncated_normal"]
    one = make("truncated_normal", shape, "float32", params, threads=1)
    two = make("truncated_normal", shape, "float32", params, threads=2)
    assert_same(one[1:, 2], two[1:, 2])
    assert one.__dask_tokenize__() == two.__dask_tokenize__()


def test_pickled_tensor_gives_the_same_values_and_token():
    shape, params = CASES["he_normal"]
    tensor = make("he_normal", shape, "bfloat16", params)
    copy = pickle.loads(pickle.dumps(tensor))
    assert copy.__dask_tokenize__() == tensor.__dask_tokenize__()
    assert_same(copy[2:, 1], tensor[2:, 1])


TOKEN_SCRIPT = """
from fastinit.virtual import VirtualTensor
tensor = VirtualTensor(
    "truncated_normal", (64, 32), 2**63 + 5, stream="layer.0", dtype="bfloat16",
    mean=0.5, std=0.02, lower=-3.0, upper=2.0,
)
print(repr(tensor.__dask_tokenize__()))
"""


def test_token_is_the_same_in_another_process():
    tensor = VirtualTensor(
        "truncated_normal", (64, 32), 2**63 + 5, stream="layer.0", dtype="bfloat16",
        mean=0.5, std=0.02, lower=-3.0, upper=2.0,
    )  # fmt: skip
    environment = {**os.environ, "PYTHONHASHSEED": "977"}  # str hashes differ from ours
    other = subprocess.run(
        [sys.executable, "-c", TOKEN_SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        timeout=120,
    )
    assert other.stdout.strip() == repr(tensor.__dask_tokenize__())
    token = tensor.__dask_tokenize__()
    assert token[0] == "VirtualTensor" and token[1] == fastinit.__version__
    assert token[2:] == (
        "truncated_normal",
        (64, 32),
        "bfloat16",
        2**63 + 5,
        fastinit.stream_id("layer.0"),
        (("lower", -3.0), ("mean", 0.5), ("std", 0.02), ("upper", 2.0)),
    )


def test_token_changes_with_every_argument(monkeypatch):
    def token(init="normal", shape=(8, 6), seed=7, stream=1, dtype="float32", **params):
        params = params or {"mean": 0.0, "std": 1.0}
        return VirtualTensor(
            init, shape, seed, stream=stream, dtype=dtype, **params
        ).__dask_tokenize__()

    base = token()
    assert token() == base
    variants = [
        token(init="truncated_normal"),
        token(shape=(6, 8)),
        token(shape=(8, 6, 1)),
        token(seed=8),
        token(stream=2),
        token(stream="1"),
        token(dtype="float64"),
        token(dtype="bfloat16"),
        token(mean=0.5, std=1.0),
        token(mean=0.0, std=2.0),
        token(std=1.0),  # the same values, other arguments: a cache miss at worst
    ]
    monkeypatch.setattr(virtual, "_VERSION", "0.0.0-other")
    variants.append(token())
    assert len({base, *variants}) == len(variants) + 1


def test_virtual_does_not_import_dask():
    script = "import sys, fastinit, fastinit.virtual; print('dask' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"


# (init, shape, seed, arguments, exception, words the message must hold)
REFUSED = [
    ("glorot_norm", (4, 4), 1, {}, ValueError, "init must be one of"),
    (None, (4, 4), 1, {}, ValueError, "init must be one of"),
    ("normal", (4, -1), 1, {}, ValueError, "shape[1]"),
    ("normal", "44", 1, {}, TypeError, "shape"),
    ("normal", (4, 4), -1, {}, OverflowError, "seed"),
    ("normal", (4, 4), None, {}, TypeError, "seed"),
    ("normal", (4, 4), 1.0, {}, TypeError, "seed"),
    ("normal", (), None, {}, TypeError, "seed"),  # 0-d: checked without a sampler call
    ("constant", (4,), -1, {"value": 1.0}, OverflowError, "seed"),
    ("normal", (4, 4), 1, {"stream": 2**64}, OverflowError, "stream"),
    ("normal", (4, 4), 1, {"dtype": "int32"}, ValueError, "dtype"),
    ("normal", (4, 4), 1, {"std": -1.0}, ValueError, "std"),
    ("normal", (), 1, {"std": float("nan")}, ValueError, "std"),
    ("uniform", (4, 4), 1, {"low": 2.0, "high": 1.0}, ValueError, "low"),
    ("glorot_normal", (4, 4), 1, {"gain": 0.0}, ValueError, "gain"),
    ("glorot_normal", (4, 4), 1, {"mode": "fan_in"}, TypeError, "mode"),
    ("glorot_normal", (4,), 1, {}, ValueError, "fans"),
    ("glorot_normal", (), 1, {}, ValueError, "fans"),
    ("variance_scaling", (4, 4), 1, {"mode": "fan_sum"}, ValueError, "mode"),
    ("variance_scaling", (), 1, {"distribution": "x", "fan_in": 1.0}, ValueError, "distribution"),
    ("kaiming_normal", (), 1, {"gain": -2.0, "fan_in": 1.0}, ValueError, "gain"),
    ("truncated_normal", (4, 4), 1, {"lower": 2.0, "upper": 1.0}, ValueError, "lower"),
    ("he_normal", (4, 4), 1, {"threads": 0}, ValueError, "threads"),
    ("he_normal", (4, 4), 1, {"region": (slice(0, 1),)}, TypeError, "region="),
    ("he_normal", (4, 4), 1, {"out": np.empty((4, 4), np.float32)}, TypeError, "out="),
    ("he_normal", (4, 4), 1, {"device": "cuda"}, TypeError, "device="),
    ("he_normal", (4, 4), 1, {"bogus": 1}, TypeError, "bogus"),
    ("constant", (4, 4), None, {}, TypeError, "value"),
    ("constant", (4, 4), None, {"value": 1e6, "dtype": "float16"}, ValueError, "value"),
    ("constant", (), None, {"value": float("inf")}, ValueError, "value"),
    ("zeros", (), None, {"value": 1.0}, TypeError, "value"),
    ("identity", (4, 4, 4), None, {}, ValueError, "2-D shape"),
    ("eye", (), None, {}, ValueError, "2-D shape"),
    ("dirac", (4, 4, 3), None, {"groups": 3}, ValueError, "groups"),
    ("dirac", (4, 4), None, {}, ValueError, "3, 4 or 5 axes"),
    ("orthogonal", (4,), 1, {}, ValueError, "at least 2 axes"),
    ("orthogonal", (), 1, {}, ValueError, "at least 2 axes"),
    ("orthogonal", (4, 4), 1, {"gain": -1.0}, ValueError, "gain"),
]


@pytest.mark.parametrize(("init", "shape", "seed", "arguments", "error", "words"), REFUSED)
def test_bad_arguments_are_refused_at_construction(init, shape, seed, arguments, error, words):
    with pytest.raises(error, match=None) as raised:
        VirtualTensor(init, shape, seed, **arguments)
    assert words in str(raised.value)


@pytest.mark.parametrize(
    ("index", "error"),
    [
        ((12, 0), IndexError),
        ((0, -8), IndexError),
        ((0, 0, 0), IndexError),
        ((Ellipsis, 0, Ellipsis), IndexError),
        ((slice(None, None, 0),), ValueError),
        ((slice(0.5, 2),), TypeError),
    ],
)
def test_bad_indices_are_refused_like_numpy(index, error):
    tensor = make("normal", (12, 7), "float32", {})
    full = full_call("normal", (12, 7), "float32", {})
    with pytest.raises(error):
        full[index]
    with pytest.raises(error):
        tensor[index]


@pytest.mark.parametrize(
    "index",
    [
        [0, 2],
        np.array([[1, -3], [11, 0]]),
        (np.array([1, 3]), slice(None), None),
        (slice(2, 5), [6, -7, 0]),
        ([4, 1], slice(None), [0, 2]),  # advanced indices apart: their axis goes first
        ([4, 1], 2, [0, -1]),
        ([], slice(1, 3)),
        np.arange(12) % 3 == 0,
        (np.ones((12, 7), bool),),
        (Ellipsis, np.array([True, False, True])),
        (np.ones((12, 7, 3), bool)),
    ],
)
def test_integer_and_boolean_arrays(index):
    tensor = make("lecun_normal", (12, 7, 3), "bfloat16", {})
    assert_same(tensor[index], full_call("lecun_normal", (12, 7, 3), "bfloat16", {})[index])


@pytest.mark.parametrize(
    ("index", "error"),
    [
        ([0, 12], IndexError),
        ((slice(None), np.array([-8])), IndexError),
        (np.ones(11, bool), IndexError),
        ([0.5], IndexError),
        ((np.ones((12, 7), bool), 0), IndexError),
        (([0, 1, 2], [0, 1]), IndexError),
    ],
)
def test_bad_arrays_are_refused_like_numpy(index, error):
    tensor = make("normal", (12, 7), "float32", {})
    with pytest.raises(error):
        full_call("normal", (12, 7), "float32", {})[index]
    with pytest.raises(error):
        tensor[index]


@pytest.mark.parametrize("index", [True, (0, 1.0), np.array(True), "a"])
def test_other_indices_are_refused_naming_the_index(index):
    tensor = make("normal", (12, 7), "float32", {})
    with pytest.raises(TypeError, match="index"):
        tensor[index]
