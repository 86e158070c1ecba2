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
