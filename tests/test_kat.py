"""Known-answer tests: Random123's Philox4x32 vectors, through the bijection and the stream.

tests/data/kat/philox4x32_{10,7}.txt hold Random123's KAT lines (format in their
headers). Every vector is its own test: first through `_core.philox4x32` with the
matching round count, then, for R = 10, through the public stream
`fastinit.random_bits`, whose element 4*b + j is word j of
philox4x32_10((b mod 2^32, b >> 32, stream mod 2^32, stream >> 32),
(seed mod 2^32, seed >> 32)) (docs/stream.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import fastinit
import numpy as np
import pytest
from fastinit import _core

TESTS_DIR = Path(__file__).resolve().parent
KAT_DIR = TESTS_DIR / "data" / "kat"
SHARED_KAT_DIR = TESTS_DIR.parent.parent / "shared" / "kat"  # ../shared/kat from the repo root
KAT_FILES = {10: "philox4x32_10.txt", 7: "philox4x32_7.txt"}
U64_LIMIT = 1 << 64


class Vector(NamedTuple):
    rounds: int
    counter: tuple[int, int, int, int]
    key: tuple[int, int]
    expected: tuple[int, int, int, int]
    where: str  # "file:line", for messages and test ids


def parse_kat(path: Path) -> list[Vector]:
    """Every vector of a KAT file; any line that is neither a comment, blank nor a vector fails."""
    vectors = []
    for lineno, line in enumerate(path.read_text(encoding="ascii").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.split()
        where = f"{path.name}:{lineno}"
        if len(fields) != 12 or fields[0] != "philox4x32":
            raise ValueError(f"{where}: not a philox4x32 KAT line: {line!r}")
        words = []
        for field in fields[2:]:
            if len(field) != 8:
                raise ValueError(f"{where}: {field!r} is not an 8-digit hex word")
            words.append(int(field, 16))
        vectors.append(
            Vector(int(fields[1]), tuple(words[0:4]), tuple(words[4:6]), tuple(words[6:10]), where)
        )
    return vectors


VECTORS = {rounds: parse_kat(KAT_DIR / name) for rounds, name in KAT_FILES.items()}
ALL_VECTORS = [v for rounds in sorted(VECTORS) for v in VECTORS[rounds]]


def block_and_stream(v: Vector) -> tuple[int, int, int]:
    """(seed, stream, block) whose stream block has this vector's counter and key."""
    seed = v.key[0] | (v.key[1] << 32)
    stream = v.counter[2] | (v.counter[3] << 32)
    block = v.counter[0] | (v.counter[1] << 32)
    return seed, stream, block


# The stream reaches block b through elements 4b .. 4b + 3, which must all be < 2^64.
STREAM_VECTORS = [v for v in VECTORS[10] if 4 * block_and_stream(v)[2] + 4 <= U64_LIMIT]


def _id(v: Vector) -> str:
    return v.where.replace(".txt", "")


@pytest.mark.parametrize("rounds", sorted(KAT_FILES))
def test_kat_file_is_not_empty(rounds):
    vectors = VECTORS[rounds]
    assert len(vectors) >= 3, f"{KAT_FILES[rounds]}: only {len(vectors)} vectors parsed"
    # The file holds only vectors of its own round count.
    assert {v.rounds for v in vectors} == {rounds}
    # Random123's official KATs are all present: zero, all-ones and pi-digits inputs.
    counters_and_keys = {(v.counter, v.key) for v in vectors}
    assert ((0, 0, 0, 0), (0, 0)) in counters_and_keys
    assert ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2) in counters_and_keys
    assert ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0)) in (
        counters_and_keys
    )


@pytest.mark.parametrize("v", ALL_VECTORS, ids=_id)
def test_philox4x32_known_answer(v):
    got = tuple(_core.philox4x32(list(v.counter), list(v.key), rounds=v.rounds))
    assert got == v.expected, (
        f"{v.where}: philox4x32_{v.rounds}({[hex(w) for w in v.counter]}, "
        f"{[hex(w) for w in v.key]}) = {[hex(w) for w in got]}, "
        f"expected {[hex(w) for w in v.expected]}"
    )


def test_philox4x32_default_is_ten_rounds_and_public_alias():
    v = VECTORS[10][0]
    assert tuple(_core.philox4x32(list(v.counter), list(v.key))) == v.expected
    assert tuple(fastinit.philox4x32(list(v.counter), list(v.key))) == v.expected


@pytest.mark.parametrize("rounds", [0, 1, 8, 16])
def test_philox4x32_rejects_uncompiled_round_counts(rounds):
    with pytest.raises(ValueError, match="rounds"):
        _core.philox4x32([0, 0, 0, 0], [0, 0], rounds=rounds)


@pytest.mark.parametrize("name", sorted(KAT_FILES.values()))
def test_kat_copies_match_shared(name):
    if not SHARED_KAT_DIR.is_dir():
        pytest.skip(f"{SHARED_KAT_DIR} does not exist")
    shared = SHARED_KAT_DIR / name
    assert shared.is_file(), f"{shared} is missing"
    assert (KAT_DIR / name).read_bytes() == shared.read_bytes(), (
        f"tests/data/kat/{name} differs from {shared}"
    )


def test_kat_directory_matches_shared():
    if not SHARED_KAT_DIR.is_dir():
        pytest.skip(f"{SHARED_KAT_DIR} does not exist")
    ours = sorted(p.name for p in KAT_DIR.iterdir() if p.is_file())
    theirs = sorted(p.name for p in SHARED_KAT_DIR.iterdir() if p.is_file())
    assert ours == theirs


def test_stream_kat_selection_is_not_empty():
    # Zero counters, single-bit counters in words 0, 2, 3 and all key variants qualify.
    assert len(STREAM_VECTORS) >= 10
    assert any(block_and_stream(v)[1] >= 1 << 32 for v in STREAM_VECTORS)  # high stream word
    assert any(block_and_stream(v)[0] >= 1 << 32 for v in STREAM_VECTORS)  # high key word
    assert any(block_and_stream(v)[2] >= 1 << 32 for v in STREAM_VECTORS)  # high block word


@pytest.mark.parametrize("v", STREAM_VECTORS, ids=_id)
def test_kat_through_public_stream(v):
    seed, stream, block = block_and_stream(v)
    words = fastinit.random_bits(4, seed=seed, stream=stream, offset=4 * block)
    assert words.dtype == np.uint32
    assert tuple(int(w) for w in words) == v.expected, (
        f"{v.where}: random_bits(4, seed={seed:#x}, stream={stream:#x}, offset={4 * block:#x})"
    )


# --- the same vectors through every compiled Philox: scalar and SIMD -------------------------

SIMD_LANE_OFFSETS = (0, 5, 15)  # where in a vector of blocks the known block sits


@pytest.mark.parametrize("target", fastinit.cpu_targets())
@pytest.mark.parametrize("lane", SIMD_LANE_OFFSETS)
@pytest.mark.parametrize("vector", VECTORS[10], ids=lambda v: v.where)
def test_kat_through_each_cpu_target(vector, lane, target):
    block = vector.counter[0] | vector.counter[1] << 32
    stream = vector.counter[2] | vector.counter[3] << 32
    seed = vector.key[0] | vector.key[1] << 32
    first = (block - lane) % U64_LIMIT  # the block counter wraps mod 2^64, as in Random123
    words = _core.philox_blocks(target, seed, stream, first, lane + 3)
    assert tuple(int(w) for w in words[4 * lane : 4 * lane + 4]) == vector.expected
