"""fastinit.dask: every sampler as a Dask array equal to the NumPy call whatever the
chunking, slicing and scheduler; a slice computes only the chunks it needs; the array's
name is a deterministic token; `import fastinit` does not import dask."""

from __future__ import annotations

import subprocess
import sys

import fastinit
import numpy as np
import pytest
from _shared import UINT_OF_SIZE
from fastinit import virtual

da = pytest.importorskip("dask.array")
import dask  # noqa: E402
import fastinit.dask as fd  # noqa: E402  (after the skip: dask is an optional extra)

# Every public sampler of fastinit.dask: (shape, positional arguments after the shape,
# keyword arguments); the seeded ones take SEED first.
SEED = 20261128
CASES = {
    "variance_scaling": ((37, 23), (SEED,), {"scale": 2.0, "mode": "fan_avg"}),
    "glorot_normal": ((37, 23), (SEED,), {"stream": "w"}),
    "glorot_uniform": ((37, 23), (SEED,), {"gain": 0.5}),
    "he_normal": ((37, 23), (SEED,), {"distribution": "normal"}),
    "he_uniform": ((37, 23), (SEED,), {}),
    "lecun_normal": ((37, 23), (SEED,), {"layout": "jax"}),
    "lecun_uniform": ((37, 23), (SEED,), {}),
    "xavier_normal": ((37, 23), (SEED,), {"distribution": "normal"}),
    "xavier_uniform": ((37, 23), (SEED,), {}),
    "kaiming_normal": ((37, 23), (SEED,), {}),
    "kaiming_uniform": ((37, 23), (SEED,), {"gain": 2.0}),
    "normal": ((37, 23), (SEED,), {"mean": 1.0, "std": 0.5}),
    "uniform": ((37, 23), (SEED,), {"low": -1.0, "high": 3.0}),
    "truncated_normal": ((37, 23), (SEED,), {"std": 0.02, "a": -0.04, "b": 0.04}),
    "orthogonal": ((37, 23), (SEED, 1.5), {"stream": 5}),
    "constant": ((37, 23), (0.1,), {}),
    "zeros": ((37, 23), (), {}),
    "ones": ((37, 23), (), {}),
    "identity": ((37, 23), (0.5,), {}),
    "eye": ((23, 37), (), {}),
    "dirac": ((6, 4, 3, 5), (2,), {"gain": 3.0}),
}


def chunkings(shape):
    """Three chunkings of `shape`: one chunk, even chunks with a short last one, and
    explicit uneven blocks, an empty one included."""
    even = tuple(max(1, dim // 3 - 1) for dim in shape)
    uneven = tuple(
        (1, 0, dim - 1) if axis % 2 else (dim // 2, dim - dim // 2)
        for axis, dim in enumerate(shape)
    )
    return ["auto", even, uneven]


def assert_same(got, expected):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    unsigned = UINT_OF_SIZE[got.dtype.itemsize]
    assert np.array_equal(got.view(unsigned), expected.view(unsigned))


def numpy_call(name, dtype):
    shape, args, kwargs = CASES[name]
    return getattr(fastinit, name)(shape, *args, dtype=dtype, **kwargs)


def dask_call(name, dtype, chunks):
    shape, args, kwargs = CASES[name]
    return getattr(fd, name)(shape, *args, dtype=dtype, chunks=chunks, **kwargs)


def test_cases_cover_every_sampler():
    assert set(CASES) == set(fd.__all__) - {"from_virtual"} == set(virtual.SAMPLERS)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_chunking_equals_the_single_call(name, dtype):
    expected = numpy_call(name, dtype)
    for chunks in chunkings(expected.shape):
        array = dask_call(name, dtype, chunks)
        assert isinstance(array, da.Array)
        assert array.dtype == expected.dtype and array.shape == expected.shape
        assert_same(array.compute(scheduler="threads"), expected)


@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_other_dtypes(dtype):
    assert_same(dask_call("he_normal", dtype, (5, 4)).compute(), numpy_call("he_normal", dtype))


def test_slices_and_reductions_equal_numpy():
    expected = numpy_call("truncated_normal", "float32")
    array = dask_call("truncated_normal", "float32", (6, 7))
    for index in [
        (slice(3, 30, 4), slice(None, None, -2)),
        (-1,),
        (slice(None), 5),
        (Ellipsis, slice(20, 3, -3)),
        (slice(36, 40), slice(0, 0)),
    ]:
        assert_same(array[index].compute(), expected[index])
    assert_same(array.T[4:9].compute(), expected.T[4:9])
    # A sum is a sum of chunk sums, so the rounding differs from NumPy's: 1e-6 relative.
    np.testing.assert_allclose(array.sum(axis=0).compute(), expected.sum(axis=0), rtol=1e-5)


def test_fancy_indices_equal_numpy():
    expected = numpy_call("he_uniform", "bfloat16")
    array = dask_call("he_uniform", "bfloat16", (8, 5))
    rows, cols = [30, 2, 2, -1], [0, 22, 5, 9]
    assert_same(array[rows].compute(), expected[rows])
    assert_same(array[3:20, np.array([4, 1])].compute(), expected[3:20, np.array([4, 1])])
    assert_same(array.vindex[rows, cols].compute(), expected[rows, cols])
    mask = np.arange(37) % 4 == 1
    assert_same(array[mask, 7].compute(), expected[mask, 7])
    assert_same(array[0][[3, 3, 0]].compute(), expected[0][[3, 3, 0]])


def recorded_regions(monkeypatch, init):
    """Wraps `init` in virtual.SAMPLERS; returns the list of the regions of every call
    that computed at least one element."""
    regions = []
    original = virtual.SAMPLERS[init]

    def sampler(*args, **kwargs):
        result = original(*args, **kwargs)
        if result.size:
            regions.append(kwargs["region"])
        return result

    monkeypatch.setitem(virtual.SAMPLERS, init, sampler)
    return regions


def test_a_slice_computes_only_what_it_needs(monkeypatch):
    """Chunks the slice misses are culled; Dask folds the slice into the tasks of those
    it meets, so each computes the bounding box of its part of the slice."""
    regions = recorded_regions(monkeypatch, "glorot_normal")
    array = fd.glorot_normal((100, 60), 7, chunks=(10, 20))
    assert regions == []  # building the array computes nothing
    full = fastinit.glorot_normal((100, 60), 7)

    assert_same(array[25:38, 41:45].compute(scheduler="threads"), full[25:38, 41:45])
    assert sorted(regions, key=str) == [
        (slice(25, 30), slice(41, 45)),
        (slice(30, 38), slice(41, 45)),
    ]
    del regions[:]
    assert_same(array[::50, 5].compute(scheduler="threads"), full[::50, 5])
    assert sorted(regions, key=str) == [(slice(0, 1), slice(5, 6)), (slice(50, 51), slice(5, 6))]
    del regions[:]
    np.testing.assert_allclose(array[90:].sum().compute(), full[90:].sum(), rtol=1e-5)
    assert sorted(regions, key=str) == [(slice(90, 100), slice(s, s + 20)) for s in (0, 20, 40)]
    del regions[:]
    array.compute(scheduler="threads")
    assert len(regions) == 10 * 3  # each chunk once


def test_without_slice_folding_a_slice_computes_whole_chunks(monkeypatch):
    regions = recorded_regions(monkeypatch, "normal")
    array = fd.normal((100, 60), 7, chunks=(10, 20))
    with dask.config.set({"optimization.fuse.active": False}):
        got = array[25:38, 41:45].compute(scheduler="threads")
    assert_same(got, fastinit.normal((100, 60), 7)[25:38, 41:45])
    assert sorted(regions, key=str) == [
        (slice(20, 30), slice(40, 60)),
        (slice(30, 40), slice(40, 60)),
    ]


def test_name_is_a_deterministic_token():
    one = fd.normal((30, 20), 1, chunks=10, std=2.0)
    assert one.name.startswith("fastinit-normal-")
    assert fd.normal((30, 20), 1, chunks=(10, 10), std=2.0).name == one.name
    others = [
        fd.normal((30, 20), 1, chunks=(10, 20), std=2.0),
        fd.normal((30, 20), 2, chunks=10, std=2.0),
        fd.normal((30, 20), 1, chunks=10, std=2.0, stream=1),
        fd.normal((30, 20), 1, chunks=10, std=2.5),
        fd.normal((30, 20), 1, chunks=10, std=2.0, dtype="float16"),
        fd.normal((30, 21), 1, chunks=10, std=2.0),
    ]
    assert len({one.name, *(array.name for array in others)}) == len(others) + 1


NAME_SCRIPT = """
import fastinit.dask
print(fastinit.dask.he_uniform((300, 200), 11, chunks=(64, 50), dtype="bfloat16").name)
"""


def test_name_is_the_same_in_another_process():
    name = fd.he_uniform((300, 200), 11, chunks=(64, 50), dtype="bfloat16").name
    other = subprocess.run(
        [sys.executable, "-c", NAME_SCRIPT], capture_output=True, text=True, check=True, timeout=120
    )
    assert other.stdout.strip() == name


def test_processes_scheduler():
    array = fd.he_normal((40, 30), 3, chunks=(16, 16), dtype="bfloat16", stream="p")
    result = array[5:, ::3].compute(scheduler="processes", num_workers=2)
    assert_same(result, fastinit.he_normal((40, 30), 3, dtype="bfloat16", stream="p")[5:, ::3])


def test_import_fastinit_does_not_import_dask():
    script = "import sys, fastinit, fastinit.virtual; print('dask' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: fd.glorot_normal((4, 4), 1, chunks=(2, 2, 2)), ValueError, "chunks="),
        (lambda: fd.glorot_normal((4, 4), 1, chunks=((1, 2), (4,))), ValueError, "chunks="),
        (lambda: fd.glorot_normal((4, 4), 1, gain=-1.0), ValueError, "gain"),
        (lambda: fd.glorot_normal((4, 4), -1), OverflowError, "seed"),
        (lambda: fd.normal((4, 4), 1, dtype="int8"), ValueError, "dtype"),
        (lambda: fd.uniform((4, 4), 1, out=np.empty((4, 4))), TypeError, "out="),
        (lambda: fd.constant((4, 4), float("nan")), ValueError, "value"),
        (lambda: fd.dirac((4, 4, 3), 3), ValueError, "groups"),
        (lambda: fd.from_virtual(np.zeros(3)), TypeError, "virtual"),
    ],
)
def test_bad_arguments_are_refused(call, error, words):
    with pytest.raises(error) as raised:
        call()
    assert words in str(raised.value)


def test_a_huge_array_computes_only_the_slice_asked_for():
    shape = (2**40, 2**21)  # 2^61 elements: 8 EiB of float32
    array = fd.lecun_uniform(shape, 9, chunks=(2**20, 2**20))
    assert array.numblocks == (2**20, 2)
    got = array[2**39 + 7 : 2**39 + 10, -3:].compute(scheduler="threads")
    region = (slice(2**39 + 7, 2**39 + 10), slice(2**21 - 3, 2**21))
    assert_same(got, fastinit.lecun_uniform(shape, 9, region=region))
