"""Pinned SHA-256 of output bytes: the stream can never change by accident."""

import importlib.util
import json
import pathlib

import pytest

DATA = pathlib.Path(__file__).parent / "data"
_spec = importlib.util.spec_from_file_location("make_pinned_hashes", DATA / "make_pinned_hashes.py")
pinned = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pinned)

EXPECTED = json.loads(pinned.OUTPUT.read_text())
CASES = dict(pinned.cases())


def test_grid_matches_the_pinned_file():
    assert sorted(CASES) == sorted(EXPECTED)
    assert len(EXPECTED) > 300


@pytest.mark.parametrize("key", sorted(CASES))
def test_output_bytes_are_pinned(key):
    assert pinned.digest(CASES[key]()) == EXPECTED[key]
