"""`fastinit verify` treats every file as hostile (issue 11, V1-V6; I2).

A corpus of malformed, hostile and unsupported checkpoints is generated here from a
genuine fastinit checkpoint (no binary is checked in). Each must be refused before
anything is regenerated: by the API with CheckpointFormatError (a ValueError), and by
`fastinit verify` with exit code 2 and one line on stderr naming the file and the
field, never a traceback. A valid checkpoint still verifies (0); a flipped byte still
fails (1). Every case runs under an alarm: a FIFO opened for reading, or a loop over
a 2^61-element shape, fails the test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from fastinit import checkpoint, cli
from fastinit.checkpoint import INDEX_FILE, MAX_HEADER_SIZE, CheckpointFormatError
from fastinit.specs import ModelSpec, TensorSpec

# w: F32 bytes [0, 24) of the data section; b: F16 bytes [24, 30).
SPEC = ModelSpec(
    7,
    (
        TensorSpec("w", (2, 3), "float32", "normal", {"std": 0.5}),
        TensorSpec("b", (3,), "float16", "zeros", {}),
    ),
)
SHARD_1 = "model-00001-of-00002.safetensors"
SHARD_2 = "model-00002-of-00002.safetensors"


@contextlib.contextmanager
def no_hang(seconds: int = 20) -> Iterator[None]:
    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s: verify blocked or looped")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def refused(capsys: pytest.CaptureFixture[str], target: Path, where: Path, fragment: str) -> str:
    """Asserts both faces of a refusal of `target`: the API raises CheckpointFormatError
    naming `where` and `fragment`; the CLI exits 2 with that one line on stderr."""
    with no_hang(), pytest.raises(CheckpointFormatError) as raised:
        checkpoint.verify(target)
    message = str(raised.value)
    assert message.startswith(f"{where}: ") and fragment in message, message
    assert "\n" not in message
    with no_hang():
        code = cli.main(["verify", str(target)])
    printed = capsys.readouterr()
    assert code == 2, printed
    assert printed.out == ""
    assert printed.err == f"fastinit: error: {message}\n"
    assert "Traceback" not in printed.err
    return message


# ---------------------------------------------------------------------------
# The corpus: one file model.safetensors in a directory


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], bytes]:
    """The header (parsed) and data section of a genuine fastinit file of SPEC."""
    path = tmp_path_factory.mktemp("genuine") / "model.safetensors"
    checkpoint.write(SPEC, path)
    header, data = checkpoint.read_header(path)
    assert header["w"]["data_offsets"] == [0, 24] and header["b"]["data_offsets"] == [24, 30]
    return header, path.read_bytes()[data:]


def file_bytes(header: Any, data: bytes) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


def recipes(header: dict[str, Any]) -> dict[str, Any]:
    return json.loads(header["__metadata__"]["fastinit.tensors"])


def with_recipes(header: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> None:
    found = recipes(header)
    edit(found)
    header["__metadata__"]["fastinit.tensors"] = json.dumps(found)


def _set(mapping: dict[str, Any], key: str, value: Any) -> None:
    mapping[key] = value


class Case(NamedTuple):
    header: bytes | Callable[[dict[str, Any]], Any]  # raw header bytes, or an edit of genuine's
    fragment: str  # what the message says after "<file>: "
    data: Callable[[bytes], bytes] | None = None  # an edit of the data section
    fastinit: bool = False  # valid safetensors, refused only for fastinit's metadata


def _recipe(name: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda h: with_recipes(h, lambda r: _set(r[name], key, value))


def _metadata(key: str, value: str) -> Callable[[dict[str, Any]], None]:
    return lambda h: _set(h["__metadata__"], key, value)


_DEEP = b"[" * 100_000 + b"]" * 100_000
CASES = {
    # Not JSON, or not an object: tracebacks before (AttributeError, RecursionError).
    "not_utf8": Case(b'{"\xff": 1}', "header is not UTF-8: invalid start byte at byte 10"),
    "not_json": Case(b"{nope}", "header is not JSON: Expecting property name"),
    "nan": Case(b'{"w": NaN}', "header is not JSON: NaN is not a JSON number"),
    "json_array": Case(b"[1, 2]", "header must be a JSON object, got an array"),
    "json_string": Case(b'"w"', "header must be a JSON object, got a string"),
    "deep_nesting": Case(b'{"w": ' + _DEEP + b"}", "header nests too deeply to be read"),
    "repeated_key": Case(b'{"w": 1, "w": 2}', "header has the key 'w' twice"),
    # __metadata__ is an object of strings.
    "metadata_array": Case(
        lambda h: _set(h, "__metadata__", ["x"]),
        "__metadata__ must be an object of strings, got an array",
    ),
    "metadata_number": Case(
        _metadata("fastinit.seed", 7),  # type: ignore[arg-type]
        "__metadata__['fastinit.seed'] must be a string, got a number 7",
    ),
    "metadata_object": Case(
        _metadata("format", {"a": 1}),  # type: ignore[arg-type]
        "__metadata__['format'] must be a string, got an object",
    ),
    # Tensor entries: exactly dtype, shape, data_offsets (KeyError, IndexError before).
    "entry_array": Case(
        lambda h: _set(h, "w", [1]),
        "tensor 'w': must be an object with dtype, shape and data_offsets, got an array",
    ),
    "entry_null": Case(lambda h: _set(h, "w", None), "tensor 'w': must be an object"),
    "missing_dtype": Case(lambda h: h["w"].pop("dtype"), "tensor 'w': dtype is missing"),
    "missing_shape": Case(lambda h: h["w"].pop("shape"), "tensor 'w': shape is missing"),
    "missing_offsets": Case(
        lambda h: h["b"].pop("data_offsets"), "tensor 'b': data_offsets is missing"
    ),
    "extra_key": Case(  # the library ignores unknown fields; fastinit never writes one
        lambda h: _set(h["w"], "offsets", [0, 24]),
        "tensor 'w': unknown field 'offsets' (allowed: dtype, shape, data_offsets)",
    ),
    "bad_dtype": Case(
        lambda h: _set(h["w"], "dtype", "F33"),
        "tensor 'w': dtype 'F33' is not a safetensors dtype (BOOL, U8",
    ),
    "dtype_number": Case(
        lambda h: _set(h["w"], "dtype", 4), "tensor 'w': dtype 4 is not a safetensors dtype"
    ),
    "negative_shape": Case(
        lambda h: _set(h["w"], "shape", [-2, -3]), "tensor 'w': shape[0] must be >= 0, got -2"
    ),
    "float_shape": Case(
        lambda h: _set(h["w"], "shape", [2, 3.0]),
        "tensor 'w': shape[1] must be an integer, got 3.0",
    ),
    "bool_shape": Case(
        lambda h: _set(h["w"], "shape", [True, 6]),
        "tensor 'w': shape[0] must be an integer, got True",
    ),
    "string_shape": Case(
        lambda h: _set(h["w"], "shape", "2x3"),
        "tensor 'w': shape must be an array of integers >= 0, got '2x3'",
    ),
    # Counted in 64 bits, checked at every step as safetensors does: a later 0 does not help.
    "shape_overflow": Case(
        lambda h: _set(h["w"], "shape", [2**40, 2**40, 0]),
        "tensor 'w': shape [1099511627776, 1099511627776, 0] has 2^64 or more elements",
    ),
    "bytes_overflow": Case(
        lambda h: _set(h["w"], "shape", [2**62]),
        "tensor 'w': shape [4611686018427387904] of F32 needs 2^64 or more bytes",
    ),
    # V2: grew to 2.4 GB and hung.
    "v2_negative_offsets": Case(
        lambda h: h["w"].update(shape=[2**61], data_offsets=[-(2**63), 0]),
        "tensor 'w': data_offsets [-9223372036854775808, 0] must be in [0, 2^64)",
    ),
    "offsets_one": Case(
        lambda h: _set(h["w"], "data_offsets", [0]),
        "tensor 'w': data_offsets must be an array of two integers [begin, end], got [0]",
    ),
    "offsets_empty": Case(  # IndexError before
        lambda h: _set(h["w"], "data_offsets", []),
        "tensor 'w': data_offsets must be an array of two integers [begin, end], got []",
    ),
    "offsets_float": Case(
        lambda h: _set(h["w"], "data_offsets", [0, 24.0]),
        "tensor 'w': data_offsets must be an array of two integers",
    ),
    "offsets_huge": Case(
        lambda h: _set(h["b"], "data_offsets", [24, 2**64 + 5]),
        "tensor 'b': data_offsets [24, 18446744073709551621] must be in [0, 2^64)",
    ),
    "offsets_reversed": Case(
        lambda h: _set(h["w"], "data_offsets", [24, 0]),
        "tensor 'w': data_offsets [24, 0] end before they begin",
    ),
    "span_short": Case(
        lambda h: _set(h["w"], "data_offsets", [0, 12]),
        "tensor 'w': data_offsets [0, 12] span 12 bytes but shape [2, 3] of F32 needs 24",
    ),
    "span_dtype": Case(
        lambda h: _set(h["w"], "dtype", "F64"),
        "tensor 'w': data_offsets [0, 24] span 24 bytes but shape [2, 3] of F64 needs 48",
    ),
    # The layout: back to back from 0, no hole, no overlap, ending where the file ends.
    "overlap": Case(
        lambda h: _set(h["b"], "data_offsets", [20, 26]),
        "tensor 'b': data_offsets [20, 26] overlap tensor 'w', which ends at 24",
    ),
    "same_place": Case(
        lambda h: _set(h["b"], "data_offsets", [0, 6]),
        "tensor 'w': data_offsets [0, 24] overlap tensor 'b', which ends at 6",
    ),
    "hole": Case(
        lambda h: h["w"].update(shape=[2, 2], data_offsets=[0, 16]),
        "tensor 'b': data_offsets [24, 30] leave a hole: bytes [16, 24) belong to no tensor",
    ),
    "hole_at_start": Case(
        lambda h: h["w"].update(shape=[1, 3], data_offsets=[12, 24]),
        "tensor 'w': data_offsets [12, 24] leave a hole: bytes [0, 12) belong to no tensor",
    ),
    "trailing_bytes": Case(
        lambda h: None,
        "the tensors end at byte 30 of the data section but it holds 38 bytes: "
        "8 trailing bytes belong to no tensor",
        data=lambda d: d + bytes(8),
    ),
    # V6: refused from the header and the file's real size, before anything is allocated.
    "truncated": Case(
        lambda h: None,
        "tensor 'w': data_offsets [0, 24] run past the end of the file, whose data section "
        "holds 20 bytes",
        data=lambda d: d[:20],
    ),
    "v6_needs_4gb": Case(
        lambda h: h["w"].update(shape=[2**20, 2**10], data_offsets=[0, 2**32]),
        "tensor 'w': data_offsets [0, 4294967296] run past the end of the file",
    ),
    # fastinit's metadata: the seed and one recipe per tensor, checked as a spec is.
    "not_fastinit": Case(
        lambda h: h["__metadata__"].pop("fastinit.seed"),
        "__metadata__ has no fastinit.seed: not written by fastinit",
        fastinit=True,
    ),
    "no_metadata": Case(lambda h: h.pop("__metadata__"), "not written by fastinit", fastinit=True),
    "seed_negative": Case(
        _metadata("fastinit.seed", "-1"),
        "__metadata__ fastinit.seed must be a decimal integer in [0, 2^64), got '-1'",
        fastinit=True,
    ),
    "seed_2_64": Case(
        _metadata("fastinit.seed", str(2**64)),
        "fastinit.seed must be a decimal integer in [0, 2^64), got '18446744073709551616'",
        fastinit=True,
    ),
    "seed_unicode_digits": Case(
        _metadata("fastinit.seed", "\u0661"),
        "fastinit.seed must be a decimal integer",
        fastinit=True,
    ),
    "seed_spaces": Case(
        _metadata("fastinit.seed", " 7"), "fastinit.seed must be a decimal integer", fastinit=True
    ),
    "no_recipes": Case(
        lambda h: h["__metadata__"].pop("fastinit.tensors"),
        "__metadata__ has no fastinit.tensors",
        fastinit=True,
    ),
    "recipes_not_json": Case(
        _metadata("fastinit.tensors", "{"),
        "__metadata__ fastinit.tensors is not JSON",
        fastinit=True,
    ),
    "recipes_deep": Case(
        _metadata("fastinit.tensors", _DEEP.decode()),
        "__metadata__ fastinit.tensors nests too deeply to be read",
        fastinit=True,
    ),
    "recipes_array": Case(
        _metadata("fastinit.tensors", "[]"),
        "__metadata__ fastinit.tensors must be an object, got an array",
        fastinit=True,
    ),
    "recipe_missing": Case(
        lambda h: with_recipes(h, lambda r: r.pop("b")),
        "__metadata__ fastinit.tensors has no recipe for tensor 'b'",
        fastinit=True,
    ),
    "recipe_extra": Case(
        lambda h: with_recipes(h, lambda r: _set(r, "ghost", r["b"])),
        "fastinit.tensors has a recipe for 'ghost', a tensor the header does not list",
        fastinit=True,
    ),
    "recipe_fields": Case(
        lambda h: with_recipes(h, lambda r: r["w"].pop("params")),
        "__metadata__ fastinit.tensors['w'] must be an object with exactly init, params, zero_rows",
        fastinit=True,
    ),
    "recipe_array": Case(
        lambda h: with_recipes(h, lambda r: _set(r, "w", [])),
        "fastinit.tensors['w'] must be an object with exactly init",
        fastinit=True,
    ),
    "recipe_unknown_init": Case(
        _recipe("w", "init", "evil"),
        "fastinit.tensors: tensor 'w' (tensors[0]): unknown initializer 'evil'",
        fastinit=True,
    ),
    "recipe_init_object": Case(
        _recipe("w", "init", {}),
        "tensor 'w' (tensors[0]): unknown initializer {}",
        fastinit=True,
    ),
    "recipe_bad_param": Case(
        _recipe("w", "params", {"gain": 2.0}),
        "tensor 'w' (tensors[0]): normal takes no parameter 'gain'",
        fastinit=True,
    ),
    "recipe_param_type": Case(
        _recipe("w", "params", {"std": []}),
        "tensor 'w' (tensors[0]): params.std must be a number",
        fastinit=True,
    ),
    "recipe_zero_rows": Case(
        _recipe("w", "zero_rows", [5]),
        "tensor 'w' (tensors[0]): zero_rows entry 5 is out of range",
        fastinit=True,
    ),
    "recipe_params_null": Case(  # TypeError before
        _recipe("w", "params", None),
        "tensor 'w' (tensors[0]): params must be a JSON object, got NoneType",
        fastinit=True,
    ),
    "recipe_zero_rows_string": Case(  # TypeError before
        _recipe("w", "zero_rows", "ab"),
        "tensor 'w' (tensors[0]): zero_rows must be a list of row indices, got 'ab'",
        fastinit=True,
    ),
    "recipe_for_metadata": Case(
        lambda h: with_recipes(h, lambda r: _set(r, "__metadata__", r["b"])),
        "fastinit.tensors has a recipe for '__metadata__', a tensor the header does not list",
        fastinit=True,
    ),
    "axes_65": Case(  # valid safetensors; NumPy holds at most 64 axes
        lambda h: _set(h["w"], "shape", [1] * 64 + [6]),
        "tensor 'w' (tensors[0]): maximum supported dimension for an ndarray is currently 64",
        fastinit=True,
    ),
    "not_fastinit_dtype": Case(
        lambda h: _set(h["w"], "dtype", "I32"),
        "tensor 'w': dtype 'I32' is not one fastinit writes (F64, F32, F16, BF16)",
        fastinit=True,
    ),
    "no_tensors": Case(
        lambda h: [h.pop("w"), h.pop("b")],
        "the header lists no tensors",
        data=lambda d: b"",
        fastinit=True,
    ),
}
STRICTER_THAN_THE_LIBRARY = {"extra_key"}


def hostile_file(genuine: tuple[dict[str, Any], bytes], case: str) -> bytes:
    header, data = json.loads(json.dumps(genuine[0])), genuine[1]
    edit = CASES[case]
    if isinstance(edit.header, bytes):
        header = edit.header
    else:
        edit.header(header)
    return file_bytes(header, edit.data(data) if edit.data else data)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_header_is_refused_naming_file_and_field(tmp_path, capsys, genuine, case):
    directory = tmp_path / "d"
    directory.mkdir()
    path = directory / "model.safetensors"
    path.write_bytes(hostile_file(genuine, case))
    refused(capsys, directory, path, CASES[case].fragment)  # the checkpoint directory
    refused(capsys, path, path, CASES[case].fragment)  # the file itself
    if CASES[case].fastinit:
        checkpoint.read_header(path)  # a safetensors file, just not one fastinit can verify
    else:
        with pytest.raises(CheckpointFormatError, match="^" + re.escape(f"{path}: ")):
            checkpoint.read_header(path)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_safetensors_library_agrees_on_what_is_safetensors(tmp_path, genuine, case):
    """The format cases are exactly those the official reader refuses too (fastinit is
    stricter only on unknown fields); the fastinit cases are files it reads."""
    safe_open = pytest.importorskip("safetensors").safe_open
    path = tmp_path / "model.safetensors"
    path.write_bytes(hostile_file(genuine, case))
    expect_refusal = not CASES[case].fastinit and case not in STRICTER_THAN_THE_LIBRARY
    try:
        with no_hang(), safe_open(str(path), framework="numpy") as handle:
            handle.keys()
    except TimeoutError:
        raise
    except Exception as error:  # the library raises its own error types
        assert expect_refusal, f"the library refuses {case}: {error}"
    else:
        assert not expect_refusal, f"the library reads {case}"


@pytest.mark.parametrize(
    ("prefix", "fragment"),
    [
        (b"\x10\x00\x00", "not a safetensors file: 3 bytes, shorter than the 8-byte header"),
        (b"", "not a safetensors file: 0 bytes"),
        (
            (1000).to_bytes(8, "little") + b"{}",
            "header length 1000 runs past the end of the file (10 bytes)",
        ),
        (
            (MAX_HEADER_SIZE + 1).to_bytes(8, "little") + b"{}",
            "header length 100000001 exceeds the safetensors readers' limit of 100000000 bytes",
        ),
        # The limit itself is allowed: this header fails only for the file's size.
        (
            MAX_HEADER_SIZE.to_bytes(8, "little") + b"{}",
            "header length 100000000 runs past the end of the file",
        ),
        (b"\xff" * 8, "header length 18446744073709551615 exceeds the safetensors readers' limit"),
    ],
)
def test_a_hostile_length_prefix_is_refused(tmp_path, capsys, prefix, fragment):
    assert MAX_HEADER_SIZE == 100_000_000  # safetensors/src/tensor.rs MAX_HEADER_SIZE
    path = tmp_path / "x.safetensors"
    path.write_bytes(prefix)
    refused(capsys, path, path, fragment)


def test_v2_and_v6_allocate_nothing_from_the_header(tmp_path, genuine):
    """A 2^61-element shape, and a shape needing 4 GB in a file of a few hundred bytes,
    are refused from the header and the file's size: nothing near their size is allocated."""
    for case in ("v2_negative_offsets", "v6_needs_4gb", "shape_overflow", "truncated"):
        path = tmp_path / f"{case}.safetensors"
        path.write_bytes(hostile_file(genuine, case))
        tracemalloc.start()
        try:
            with no_hang(), pytest.raises(CheckpointFormatError):
                checkpoint.verify(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 4 << 20, (case, peak)


def test_an_empty_tensor_with_a_huge_axis_costs_nothing(tmp_path):
    """shape [2^62, 0] holds no bytes: valid safetensors, verified without walking its axis."""
    spec = ModelSpec(1, (TensorSpec("e", (2**62, 0), "float32", "normal", {}), *SPEC.tensors))
    checkpoint.write(spec, tmp_path / "m.safetensors")
    with no_hang():
        result = checkpoint.verify(tmp_path / "m.safetensors")
    assert result.mismatched == [] and result.tensors == 3 and result.checked_bytes == 30


# ---------------------------------------------------------------------------
# Which files make the checkpoint: the index, strays, FIFOs, links


@pytest.fixture
def sharded(tmp_path: Path) -> Path:
    """A genuine two-shard checkpoint d/ (w in shard 1, b in shard 2) and, beside it, a
    genuine single-file checkpoint x/model.safetensors that verify must never reach."""
    directory = tmp_path / "d"
    result = checkpoint.write(SPEC, directory, max_shard_size=24)
    assert [p.name for p in result.files] == [SHARD_1, SHARD_2]
    checkpoint.write(SPEC._replace(seed=8), tmp_path / "x")
    assert checkpoint.verify(tmp_path / "x").mismatched == []
    return directory


def rewrite_index(directory: Path, edit: Callable[[dict[str, Any]], Any]) -> Path:
    index = directory / INDEX_FILE
    document = json.loads(index.read_text(encoding="utf-8"))
    edited = edit(document)
    index.write_text(json.dumps(document if edited is None else edited), encoding="utf-8")
    return index


def test_a_genuine_sharded_checkpoint_verifies_and_a_flipped_byte_fails(sharded, capsys):
    assert cli.main(["verify", str(sharded)]) == 0
    printed = capsys.readouterr()
    assert printed.out.rstrip().endswith("2 tensors, every byte, 0.000 GB regenerated: OK")
    assert printed.err == ""
    shard = sharded / SHARD_1
    blob = bytearray(shard.read_bytes())
    blob[-3] ^= 0x04  # inside w, the shard's only tensor
    shard.write_bytes(bytes(blob))
    assert cli.main(["verify", str(sharded)]) == 1
    printed = capsys.readouterr()
    assert f"MISMATCH {SHARD_1}: w (bytes differ" in printed.out
    assert printed.out.rstrip().endswith("FAIL") and printed.err == ""
    assert checkpoint.verify(sharded).mismatched == [
        f"{SHARD_1}: w (bytes differ in rows from (0, 0))"
    ]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("../x/model.safetensors", "'../x/model.safetensors' is not a plain file name"),
        ("x/model.safetensors", "'x/model.safetensors' is not a plain file name"),
        ("..", "'..' is not a plain file name"),
        ("/etc/passwd", "'/etc/passwd' is an absolute path"),
        ("/dev/zero", "'/dev/zero' is an absolute path"),
        ("a\0.safetensors", "'a\\x00.safetensors' holds a NUL or another unprintable character"),
        ("config.json", "'config.json' is not a .safetensors file name"),
        ("", "'' is not a .safetensors file name"),
    ],
)
def test_v4_index_names_outside_the_directory_are_refused(sharded, capsys, name, fragment):
    index = rewrite_index(sharded, lambda d: d["weight_map"].update(w=name))
    refused(capsys, sharded, index, f"weight_map['w']: {fragment}")


def test_v4_an_absolute_path_to_a_genuine_checkpoint_is_refused(sharded, capsys):
    outside = str((sharded.parent / "x" / "model.safetensors").resolve())
    index = rewrite_index(sharded, lambda d: d["weight_map"].update(w=outside, b=outside))
    message = refused(capsys, sharded, index, f"weight_map['b']: '{outside}'")  # b is listed first
    assert message.endswith(
        "is an absolute path: only plain file names in the checkpoint directory"
    )


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ("{", "the index is not JSON: Expecting property name"),
        ("[]", "must be a JSON object with a weight_map, got an array"),
        (
            '{"metadata": {}}',
            "weight_map must be a non-empty object of tensor name -> file name, got None",
        ),
        ('{"weight_map": {}}', "weight_map must be a non-empty object"),
        ('{"weight_map": ["w"]}', "weight_map must be a non-empty object"),
        (
            '{"weight_map": {"w": 1, "b": 2}}',
            "weight_map['w'] must be a file name (a string), got 1",
        ),
        ('{"weight_map": {"w": "a", "w": "b"}}', "the index has the key 'w' twice"),
        ('{"weight_map": ' + "[" * 100_000 + "}", "the index nests too deeply to be read"),
    ],
)
def test_a_malformed_index_is_refused(sharded, capsys, document, fragment):
    (sharded / INDEX_FILE).write_text(document, encoding="utf-8")
    refused(capsys, sharded, sharded / INDEX_FILE, fragment)


def test_an_oversized_index_is_refused_unread(sharded, capsys):
    index = sharded / INDEX_FILE
    os.truncate(index, MAX_HEADER_SIZE + 1)  # sparse: nothing is written, nothing must be read
    refused(capsys, sharded, index, "is 100000001 bytes, over the 100000000-byte limit")


def test_v3_an_index_naming_a_fifo_does_not_block(sharded, capsys):
    (sharded / SHARD_2).unlink()
    os.mkfifo(sharded / SHARD_2)
    refused(capsys, sharded, sharded / SHARD_2, "is a FIFO, not a regular file")


def test_v3_a_fifo_given_as_the_checkpoint_does_not_block(tmp_path, capsys):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    refused(capsys, fifo, fifo, "is a FIFO: expected a .safetensors file or a checkpoint directory")
    link = tmp_path / "null.safetensors"
    link.symlink_to("/dev/null")
    refused(capsys, link, link, "is a character device: expected a .safetensors file")


def test_v4_a_symlink_leading_out_is_refused(sharded, capsys):
    (sharded / SHARD_2).unlink()
    (sharded / SHARD_2).symlink_to(sharded.parent / "x" / "model.safetensors")
    refused(capsys, sharded, sharded / SHARD_2, "is a symbolic link leading out of the checkpoint")
    (sharded / SHARD_2).unlink()
    (sharded / SHARD_2).symlink_to("/dev/zero")
    refused(capsys, sharded, sharded / SHARD_2, "is a symbolic link leading out of the checkpoint")


def test_v4_an_index_that_is_a_symlink_leading_out_is_refused(sharded, capsys):
    outside = sharded.parent / "index.json"
    (sharded / INDEX_FILE).rename(outside)
    (sharded / INDEX_FILE).symlink_to(outside)
    refused(capsys, sharded, sharded / INDEX_FILE, "is a symbolic link leading out")


def test_a_symlink_inside_the_directory_is_followed(sharded, capsys):
    (sharded / "real.bin").write_bytes((sharded / SHARD_2).read_bytes())
    (sharded / SHARD_2).unlink()
    (sharded / SHARD_2).symlink_to("real.bin")
    assert cli.main(["verify", str(sharded)]) == 0, capsys.readouterr()


def test_an_index_naming_a_directory_is_refused(sharded, capsys):
    (sharded / SHARD_2).unlink()
    (sharded / SHARD_2).mkdir()
    refused(capsys, sharded, sharded / SHARD_2, "is a directory, not a regular file")


def test_v5_a_stray_model_safetensors_beside_an_index_is_refused(sharded, capsys):
    """C2 left an old model.safetensors beside a new index and shards; from_pretrained
    may load either, and verify said OK."""
    (sharded / "model.safetensors").write_bytes(
        (sharded.parent / "x/model.safetensors").read_bytes()
    )
    refused(
        capsys,
        sharded,
        sharded / "model.safetensors",
        "a .safetensors file that is not part of model.safetensors.index.json: a stray from "
        "another checkpoint? Remove it or rewrite the checkpoint",
    )


def test_v5_stray_shards_are_refused_and_counted(sharded, capsys):
    for name in ("model-00003-of-00003.safetensors", "old.safetensors"):
        (sharded / name).write_bytes((sharded / SHARD_1).read_bytes())
    refused(
        capsys,
        sharded,
        sharded / "model-00003-of-00003.safetensors",
        "not part of model.safetensors.index.json (and 1 more)",
    )


def test_v5_a_stray_beside_a_single_file_is_refused(tmp_path, capsys):
    checkpoint.write(SPEC, tmp_path / "d")
    (tmp_path / "d" / SHARD_1).write_bytes((tmp_path / "d/model.safetensors").read_bytes())
    refused(
        capsys,
        tmp_path / "d",
        tmp_path / "d" / SHARD_1,
        "not part of this checkpoint (model.safetensors)",
    )


def test_v5_hidden_files_are_not_checkpoint_files(sharded, capsys):
    (sharded / ".model.safetensors.fastinit-1.tmp").write_bytes(b"partial")
    (sharded / ".old.safetensors").write_bytes(b"partial")
    assert cli.main(["verify", str(sharded)]) == 0, capsys.readouterr()


def test_v5_a_missing_shard_is_refused(sharded, capsys):
    (sharded / SHARD_2).unlink()
    refused(
        capsys,
        sharded,
        sharded / INDEX_FILE,
        "weight_map names 1 missing file(s): 'model-00002-of-00002.safetensors'",
    )


def test_the_index_and_the_headers_must_agree(sharded, capsys):
    rewrite_index(sharded, lambda d: d["weight_map"].update(w=SHARD_2, b=SHARD_1))
    refused(
        capsys,
        sharded,
        sharded / SHARD_1,
        "tensor 'w': model.safetensors.index.json puts it in 'model-00002-of-00002.safetensors'",
    )
    rewrite_index(sharded, lambda d: {"weight_map": {"b": SHARD_2, "ghost": SHARD_1}})
    refused(
        capsys,
        sharded,
        sharded / SHARD_1,
        "tensor 'w': model.safetensors.index.json does not list it",
    )
    rewrite_index(sharded, lambda d: {"weight_map": {"w": SHARD_1, "b": SHARD_2, "g": SHARD_2}})
    refused(
        capsys,
        sharded,
        sharded / INDEX_FILE,
        "weight_map['g']: 'model-00002-of-00002.safetensors' does not hold this tensor",
    )


def test_nothing_there_is_still_a_plain_error(tmp_path, capsys):
    assert cli.main(["verify", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastinit: error: ") and "no model.safetensors" in err
    assert err.count("\n") == 1


# ---------------------------------------------------------------------------
# I2: the writer refuses a header the readers cannot read


def test_i2_a_header_over_the_readers_limit_is_refused_before_writing(tmp_path):
    """60 names of 1 MB each: a header over 100 MB that neither verify nor the
    safetensors library reads. Refused by plan(), before any file is opened."""
    tensors = tuple(
        TensorSpec(f"{k:02d}" + "n" * (10**6 - 2), (1,), "float32", "zeros", {}) for k in range(60)
    )
    with pytest.raises(
        ValueError, match=r"model\.safetensors: its safetensors header would be "
    ) as raised:
        checkpoint.write(ModelSpec(0, tensors), tmp_path / "out")
    message = str(raised.value)
    size = int(message.split("would be ")[1].split(" bytes")[0].replace(",", ""))
    assert size > 120 * 10**6
    assert "over the 100,000,000-byte limit of safetensors readers" in message
    assert os.listdir(tmp_path) == []


def test_an_internal_error_is_never_taken_for_a_mismatch(tmp_path, capsys, monkeypatch):
    """Python exits 1 on an uncaught exception: verify reports a bug as 3, in one line."""

    def broken(*args, **kwargs):
        raise KeyError("w")

    monkeypatch.setattr(checkpoint, "verify", broken)
    assert cli.main(["verify", str(tmp_path)]) == 3
    printed = capsys.readouterr()
    assert printed.err == "fastinit: internal error: KeyError: 'w' (a bug in fastinit)\n"
