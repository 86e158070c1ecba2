"""Numeric parameters given as 0-d arrays (NumPy, torch), as frameworks hand them over:
each counts as its element, its type is still checked (a 0-d bool or complex array is
refused), and a 0-d torch tensor changed in place between calls is read again (it
hashes by identity, so no parameter cache may keep its old value)."""

from __future__ import annotations

import fastinit
import numpy as np
import pytest


@pytest.mark.parametrize(
    ("call", "plain"),
    [
        (lambda v: fastinit.normal((50,), 1, std=v), lambda: fastinit.normal((50,), 1, std=0.5)),
        (
            lambda v: fastinit.glorot_uniform((8, 6), 1, gain=v),
            lambda: fastinit.glorot_uniform((8, 6), 1, gain=0.5),
        ),
        (
            lambda v: fastinit.variance_scaling((8, 6), 1, scale=v, mode="fan_geo_avg"),
            lambda: fastinit.variance_scaling((8, 6), 1, scale=0.5, mode="fan_geo_avg"),
        ),
        (lambda v: fastinit.constant((3,), v), lambda: fastinit.constant((3,), 0.5)),
        (lambda v: fastinit.orthogonal((4, 4), 1, v), lambda: fastinit.orthogonal((4, 4), 1, 0.5)),
    ],
)
def test_a_0d_array_is_its_element(call, plain):
    expected = plain()
    np.testing.assert_array_equal(call(np.array(0.5)), expected)
    np.testing.assert_array_equal(call(np.float32(0.5)), expected)
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(call(torch.tensor(0.5, dtype=torch.float64)), expected)


@pytest.mark.parametrize(
    ("value", "error"),
    [(np.array(True), TypeError), (np.array(1 + 1j), TypeError), (np.array([0.5]), TypeError)],
)
def test_a_0d_array_of_the_wrong_kind_is_refused(value, error):
    with pytest.raises(error, match="std must be a real number"):
        fastinit.normal((4,), 0, std=value)


def test_a_tensor_changed_in_place_is_read_again():
    torch = pytest.importorskip("torch")
    std = torch.tensor(0.02, dtype=torch.float64)
    first = fastinit.normal((64,), 3, std=std)
    std.fill_(2.0)
    again = fastinit.normal((64,), 3, std=std)
    np.testing.assert_array_equal(again, fastinit.normal((64,), 3, std=2.0))
    np.testing.assert_array_equal(first, fastinit.normal((64,), 3, std=0.02))


def test_an_array_constant_from_torch_is_broadcast():
    torch = pytest.importorskip("torch")
    values = fastinit.constant((2, 3), torch.tensor([1.0, 2.0, 3.0]), dtype="bfloat16")
    np.testing.assert_array_equal(values.astype(np.float32), [[1, 2, 3], [1, 2, 3]])


def test_more_array_and_scalar_kinds():
    """ml_dtypes scalars count as reals; a masked element, a masked scalar and NumPy's
    times are refused by name; a tensor that requires grad is read without a copy of its
    graph; an array that is not 0-d is never read (a dask array would be computed)."""
    import ml_dtypes

    expected = fastinit.normal((8,), 2, std=0.5)
    np.testing.assert_array_equal(fastinit.normal((8,), 2, std=ml_dtypes.bfloat16(0.5)), expected)
    for bad in (np.ma.masked, np.ma.array(0.5, mask=True), np.timedelta64(1, "s")):
        with pytest.raises(TypeError, match="std must be a real number"):
            fastinit.normal((8,), 2, std=bad)
    with pytest.raises(TypeError, match="masked"):
        fastinit.constant((2,), np.ma.array([1.0, 2.0], mask=[False, True]))

    class Unreadable:
        shape = (3,)

        def __array__(self, *args, **kwargs):
            raise AssertionError("a non-0-d argument was read")

    with pytest.raises(TypeError, match="std must be a real number"):
        fastinit.normal((8,), 2, std=Unreadable())
    torch = pytest.importorskip("torch")
    grad = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    np.testing.assert_array_equal(fastinit.normal((8,), 2, std=grad), expected)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_a_huge_integer_constant_is_rounded_once(dtype):
    """2^62 + 2^38 + 1: through float64 first it would be 2^62 + 2^38, a float32 tie that
    rounds down; rounded once it is above the tie and rounds up to 2^62 + 2^39."""
    n = 2**62 + 2**38 + 1
    expected = {"float64": float(n)}.get(dtype, 2.0**62 + (2.0**39 if dtype == "float32" else 0))
    for value in (n, [n], np.array([n], dtype=np.int64)):
        got = fastinit.constant((1,), value, dtype=dtype)
        assert float(got[0]) == expected, (dtype, value)
