"""Checkpoints: safetensors files filled in place, checked from the outside.

The files are read with the official safetensors library and with transformers,
their raw layout is parsed byte by byte, and every failure path (an exception, a
SIGKILL, a SIGTERM, a full disk, a bad spec, an existing output) is checked to leave
no final file and no temporary one behind.
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import fastinit
import numpy as np
import pytest
from _shared import NUMPY_DTYPES, needs_linux
from fastinit import _durable, _windows, checkpoint, cli, hf_configs, specs
from fastinit.specs import ModelSpec, TensorSpec

ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
SHARD_NAME = re.compile(r"model-(\d{5})-of-(\d{5})\.safetensors")
TEMPORARY_NAME = re.compile(r"\.(?P<final>.+)\.fastinit-(?P<pid>\d+)\.(tmp|new)")


def small_spec(dtype: str = "float32", seed: int = 5) -> ModelSpec:
    """About 25k values: row-split rows, zero rows, a scalar, an empty tensor, every init kind."""
    return ModelSpec(
        seed,
        (
            TensorSpec("embed.weight", (300, 48), dtype, "normal", {"std": 0.02}, (0, 7)),
            TensorSpec("proj.weight", (64, 48), dtype, "glorot_uniform", {}),
            TensorSpec("conv.weight", (8, 4, 3, 3), dtype, "he_normal", {}),
            TensorSpec("long.weight", (3, 2500), dtype, "truncated_normal", {"std": 0.5}, (1,)),
            TensorSpec("proj.bias", (64,), dtype, "zeros", {}),
            TensorSpec("norm.weight", (48,), dtype, "ones", {}),
            TensorSpec("scale", (), dtype, "constant", {"value": 0.5}),
            TensorSpec("uniform", (17, 5), dtype, "uniform", {"low": -1.0, "high": 2.0}),
            TensorSpec("empty", (0, 4), dtype, "normal", {}),
        ),
    )


def mixed_spec(seed: int = 9) -> ModelSpec:
    """Every dtype, odd sizes first: the layout must still align each tensor."""
    return ModelSpec(
        seed,
        (
            TensorSpec("a.half", (5,), "float16", "normal", {}),
            TensorSpec("b.double", (3, 7), "float64", "normal", {"std": 3.0}),
            TensorSpec("c.bf16", (11, 3), "bfloat16", "uniform", {}),
            TensorSpec("d.float", (13,), "float32", "lecun_uniform", {"fan_in": 4}),
            TensorSpec("e.double", (), "float64", "constant", {"value": -2.5}),
            TensorSpec("f.half", (9, 9), "float16", "glorot_normal", {}),
            TensorSpec("g.float", (2, 3, 5), "float32", "he_uniform", {}),
        ),
    )


def nbytes(tensor: TensorSpec) -> int:
    return math.prod(tensor.shape) * NUMPY_DTYPES[tensor.dtype].itemsize


def expected_bytes(tensor: TensorSpec, seed: int) -> bytes:
    """What the in-memory API returns for the tensor."""
    return np.ascontiguousarray(specs.sample_into(tensor, seed)).tobytes()


def listing(root: Path) -> list[str]:
    """Every file and directory under root, hidden ones included."""
    found = []
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            found.append(os.path.relpath(os.path.join(folder, name), root))
    return sorted(found)


def temporaries_in(root: Path) -> list[str]:
    return [name for name in listing(root) if TEMPORARY_NAME.fullmatch(Path(name).name)]


def snapshot(root: Path) -> dict[str, bytes]:
    return {name: (root / name).read_bytes() for name in listing(root) if (root / name).is_file()}


def raw_tensors(path: Path) -> dict[str, bytes]:
    """Each tensor's bytes, read through the header by hand (no safetensors needed)."""
    header, data = checkpoint.read_header(path)
    blob = path.read_bytes()
    return {
        name: blob[data + info["data_offsets"][0] : data + info["data_offsets"][1]]
        for name, info in header.items()
        if name != "__metadata__"
    }


def flip_byte(path: Path, name: str, fraction: float = 0.5) -> int:
    """Flips one bit of one byte inside tensor `name`; returns its absolute offset."""
    header, data = checkpoint.read_header(path)
    begin, end = header[name]["data_offsets"]
    where = data + begin + int((end - begin - 1) * fraction)
    with open(path, "r+b") as handle:
        handle.seek(where)
        byte = handle.read(1)[0]
        handle.seek(where)
        handle.write(bytes([byte ^ 0x10]))
    return where


def o_tmpfile_works(directory: Path) -> bool:
    if not hasattr(os, "O_TMPFILE"):
        return False
    try:
        fd = os.open(directory, os.O_RDWR | os.O_TMPFILE, 0o600)
    except OSError:
        return False
    os.close(fd)
    return True


@pytest.fixture(params=["o_tmpfile", "named"])
def temporary_kind(request, monkeypatch, tmp_path):
    """Both ways of writing: unnamed O_TMPFILE files, and hidden named temporaries."""
    if request.param == "named":
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    elif not o_tmpfile_works(tmp_path):
        pytest.skip("O_TMPFILE does not work here")
    return request.param


def safetensors_numpy(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    safe_open = pytest.importorskip("safetensors").safe_open
    with safe_open(str(path), framework="np") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}, handle.metadata()


def safetensors_torch(path: Path) -> dict:
    pytest.importorskip("torch")
    return pytest.importorskip("safetensors.torch").load_file(str(path))


def torch_bytes(tensor) -> bytes:
    import torch

    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def check_format(path: Path, spec: ModelSpec) -> dict:
    """The raw safetensors layout, checked byte by byte; returns the header."""
    blob = path.read_bytes()
    length = int.from_bytes(blob[:8], "little")
    text = blob[8 : 8 + length]
    assert text.startswith(b"{") and text.rstrip(b" ").endswith(b"}")
    assert (8 + length) % 8 == 0, "the data section must start 8-aligned"
    header = json.loads(text)
    metadata = header.pop("__metadata__")
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    assert metadata["format"] == "pt"
    assert metadata["fastinit.version"] == fastinit.__version__
    assert metadata["fastinit.seed"] == str(spec.seed)
    assert metadata["fastinit.spec_sha256"] == specs.spec_digest(spec)
    by_name = {t.name: t for t in spec.tensors}
    end = 0
    for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"]):
        tensor = by_name[name]
        begin, stop = info["data_offsets"]
        assert begin == end, f"{name}: gap or overlap before it"
        assert info["shape"] == list(tensor.shape)
        assert info["dtype"] == checkpoint.SAFETENSORS_DTYPES[tensor.dtype]
        assert stop - begin == nbytes(tensor), name
        assert (8 + length + begin) % ITEMSIZE[info["dtype"]] == 0, f"{name} is misaligned"
        end = stop
    assert len(blob) == 8 + length + end
    return header


# ---------------------------------------------------------------------------
# The files, read by the official library


@pytest.mark.parametrize("sharded", [False, True], ids=["single", "sharded"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_safetensors_loads_exactly_the_in_memory_values(tmp_path, dtype, sharded):
    spec = small_spec(dtype)
    result = checkpoint.write(spec, tmp_path, max_shard_size="20KB" if sharded else None)
    assert len(result.files) > 1 if sharded else result.files == [tmp_path / "model.safetensors"]
    loaded: dict[str, bytes] = {}
    for path in result.files:
        check_format(path, spec)
        tensors = safetensors_torch(path)
        if dtype != "bfloat16":  # NumPy has no bfloat16
            arrays, metadata = safetensors_numpy(path)
            assert metadata["format"] == "pt" and metadata["fastinit.seed"] == str(spec.seed)
            assert arrays.keys() == tensors.keys()
            for name, array in arrays.items():
                assert array.dtype == np.dtype(dtype), name
                assert array.tobytes() == torch_bytes(tensors[name]), name
        for name, tensor in tensors.items():
            assert name not in loaded, f"{name} is in two files"
            assert str(tensor.dtype) == f"torch.{dtype}", name
            loaded[name] = torch_bytes(tensor)
    by_name = {t.name: t for t in spec.tensors}
    assert loaded.keys() == by_name.keys()
    for name, data in loaded.items():
        assert data == expected_bytes(by_name[name], spec.seed), name
    # Not vacuous: the rules show in the values.
    embed = np.asarray(specs.sample_into(by_name["embed.weight"], spec.seed), np.float64)
    assert not embed[[0, 7]].any() and embed[1:7].all()
    assert loaded["norm.weight"] == np.ones(48, NUMPY_DTYPES[dtype]).tobytes()


@pytest.mark.parametrize("sharded", [False, True], ids=["single", "sharded"])
def test_raw_layout_with_mixed_dtypes(tmp_path, sharded):
    spec = mixed_spec()
    result = checkpoint.write(spec, tmp_path, max_shard_size="200B" if sharded else None)
    assert (len(result.files) > 1) == sharded
    seen = []
    for path in result.files:
        header = check_format(path, spec)
        seen += header
        tensors = safetensors_torch(path)
        for name in header:
            tensor = next(t for t in spec.tensors if t.name == name)
            assert torch_bytes(tensors[name]) == expected_bytes(tensor, spec.seed), name
    assert sorted(seen) == sorted(t.name for t in spec.tensors)
    assert result.bytes == sum(p.stat().st_size for p in result.files)


# ---------------------------------------------------------------------------
# transformers loads them

LLAMA = {
    "model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 256,
}  # fmt: skip
GPT2 = {
    "model_type": "gpt2", "vocab_size": 256, "n_positions": 64, "n_embd": 64, "n_layer": 2,
    "n_head": 4, "initializer_range": 0.04,
}  # fmt: skip
HF_CASES = {
    "llama-untied-sharded": ({**LLAMA, "tie_word_embeddings": False}, "float32", "100KB"),
    "llama-tied-bf16": (
        {**LLAMA, "tie_word_embeddings": True, "initializer_range": 0.05},
        "bfloat16",
        None,
    ),
    "gpt2": (GPT2, "float32", None),
}


@pytest.fixture
def transformers_quiet():
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("safetensors")
    verbosity = transformers.logging.get_verbosity()
    bar = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    yield transformers
    transformers.logging.set_verbosity(verbosity)
    if bar:
        transformers.utils.logging.enable_progress_bar()


def init_rule(model_type: str, name: str, config: dict) -> tuple[str, float | None]:
    """What transformers' _init_weights does to the parameter `name` (from its name alone)."""
    r = config.get("initializer_range", 0.02)
    if ".ln_" in name or name.endswith("norm.weight"):
        return ("zeros" if name.endswith(".bias") else "ones"), None
    if name.endswith(".bias"):
        return "zeros", None
    if model_type == "gpt2" and name.endswith("c_proj.weight"):
        return "normal", r / math.sqrt(2 * config["n_layer"])
    return "normal", r


@pytest.mark.parametrize("case", HF_CASES)
def test_transformers_loads_the_checkpoint(tmp_path, transformers_quiet, case):
    import torch

    config, dtype, shard = HF_CASES[case]
    spec = specs.spec_from_config(config, dtype=dtype, seed=4)
    result = checkpoint.write(spec, tmp_path, max_shard_size=shard)
    assert (result.index is not None) == (shard is not None)
    assert json.loads((tmp_path / "config.json").read_text(encoding="utf-8")) == config
    model, info = transformers_quiet.AutoModelForCausalLM.from_pretrained(
        tmp_path, output_loading_info=True
    )
    assert not any(info.values()), info
    stored = {}
    for path in checkpoint.checkpoint_files(tmp_path):
        stored.update(safetensors_torch(path))
    assert stored.keys() == {t.name for t in spec.tensors}
    parameters = dict(model.named_parameters())  # a tied lm_head is listed once, as the embedding
    assert parameters.keys() == stored.keys()
    for name, values in stored.items():
        assert parameters[name].dtype == getattr(torch, dtype), name
        assert torch.equal(parameters[name].detach(), values), name
    tied = config.get("tie_word_embeddings", config["model_type"] == "gpt2")
    embedding = model.get_input_embeddings().weight
    assert (model.get_output_embeddings().weight is embedding) == tied
    for name, parameter in parameters.items():
        rule, std = init_rule(config["model_type"], name, config)
        values = parameter.detach().double().numpy().ravel()
        if rule == "ones":
            assert (values == 1).all(), name
        elif rule == "zeros":
            assert not values.any(), name
        else:
            n = values.size
            slack = 2.0**-8 if dtype == "bfloat16" else 0.0  # rounding of each value
            assert abs(values.mean()) < 6 * std / math.sqrt(n), name
            assert abs(values.std() / std - 1) < 6 / math.sqrt(2 * n) + slack, name
    if config["model_type"] == "gpt2":  # the scaled residual projections are not the base std
        c_proj = parameters["transformer.h.0.attn.c_proj.weight"].detach().double().std()
        c_attn = parameters["transformer.h.0.attn.c_attn.weight"].detach().double().std()
        assert 1.7 < float(c_attn / c_proj) < 2.3


# ---------------------------------------------------------------------------
# Shards and the index


def _unique_pairs(pairs):
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"a key repeats in {keys}"
    return dict(pairs)


def test_sharded_output_and_index(tmp_path):
    spec = small_spec("float32")._replace(config={"model_type": "toy", "hidden": 48})
    limit = 20_000
    result = checkpoint.write(spec, tmp_path / "out", max_shard_size="20KB")
    out = tmp_path / "out"
    index_path = out / checkpoint.INDEX_FILE
    assert result.index == index_path and index_path.is_file()
    index = json.loads(index_path.read_text(encoding="utf-8"), object_pairs_hook=_unique_pairs)
    assert index["metadata"]["total_size"] == sum(nbytes(t) for t in spec.tensors)
    weight_map = index["weight_map"]
    assert sorted(weight_map) == sorted(t.name for t in spec.tensors)
    shards = sorted(set(weight_map.values()))
    count = len(shards)
    assert count >= 3
    assert shards == [f"model-{k:05d}-of-{count:05d}.safetensors" for k in range(1, count + 1)]
    assert all(SHARD_NAME.fullmatch(name) for name in shards)
    assert listing(out) == sorted([*shards, checkpoint.INDEX_FILE, "config.json"])
    assert json.loads((out / "config.json").read_text(encoding="utf-8")) == spec.config
    assert result.files == [out / name for name in shards]
    assert checkpoint.checkpoint_files(out) == result.files
    holders = collections.Counter()
    shard_of = {}
    sizes = []
    by_name = {t.name: t for t in spec.tensors}
    oversized = 0
    for k, name in enumerate(shards):
        header = check_format(out / name, spec)
        names = [n for n in header if n != "__metadata__"]
        assert sorted(names) == sorted(t for t, f in weight_map.items() if f == name)
        holders.update(names)
        shard_of.update(dict.fromkeys(names, k))
        size = sum(nbytes(by_name[n]) for n in names)
        sizes.append(size)
        if len(names) > 1:
            assert size <= limit, name
        else:
            oversized += size > limit
    assert oversized >= 1, "the spec should hold a tensor larger than the limit"
    assert set(holders.values()) == {1}, "every tensor in exactly one shard"
    order = [shard_of[t.name] for t in spec.tensors]
    assert order == sorted(order), "shards follow the spec's order"
    firsts = [next(t for t in spec.tensors if shard_of[t.name] == k) for k in range(1, count)]
    for k, first in enumerate(firsts):  # greedy: the next shard's first tensor did not fit
        assert sizes[k] + nbytes(first) > limit


def test_single_file_targets(tmp_path):
    spec = small_spec("float16")._replace(config={"model_type": "toy"})
    # A .safetensors path is that one file: no shards, no index, no config.
    target = tmp_path / "x.safetensors"
    result = checkpoint.write(spec, target, max_shard_size="1KB")
    assert listing(tmp_path) == ["x.safetensors"]
    assert result.files == [target] and result.index is None
    assert checkpoint.checkpoint_files(target) == [target]
    check_format(target, spec)
    # A directory where everything fits: model.safetensors (and the config), no index.
    result = checkpoint.write(spec, tmp_path / "dir", max_shard_size="1GB")
    assert listing(tmp_path / "dir") == ["config.json", "model.safetensors"]
    assert result.index is None
    assert checkpoint.checkpoint_files(tmp_path / "dir") == [tmp_path / "dir/model.safetensors"]
    assert (tmp_path / "dir/model.safetensors").read_bytes() == target.read_bytes()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        checkpoint.checkpoint_files(tmp_path / "empty")


@pytest.mark.parametrize(
    ("text", "size"),
    [(42, 42), ("7", 7), ("512b", 512), ("100KB", 100_000), ("1.5MB", 1_500_000),
     (" 5 gb ", 5 * 10**9), ("2GiB", 2 * 2**30), ("3KiB", 3072), ("1TB", 10**12)],
)  # fmt: skip
def test_parse_size(text, size):
    assert checkpoint.parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "error"),
    [("5 parsecs", ValueError), ("", ValueError), ("KB", ValueError), ("-1KB", ValueError),
     ("0", ValueError), (0, ValueError), (-5, ValueError), (True, TypeError), (1.5, TypeError)],
)  # fmt: skip
def test_parse_size_errors(text, error):
    with pytest.raises(error, match="max_shard_size"):
        checkpoint.parse_size(text)


@pytest.mark.parametrize(
    "shape", [(), (0, 4), (5, 0), (7,), (3, 5), (3, 250), (2, 3, 50), (4, 1, 1)]
)
@pytest.mark.parametrize("limit", [1, 3, 7, 100, 10**6])
def test_boxes_tile_the_shape_in_row_major_order(shape, limit):
    flat = np.arange(math.prod(shape)).reshape(shape)
    position = 0
    for start, extent in checkpoint.boxes(shape, limit):
        count = math.prod(extent)
        assert count <= max(limit, 1)
        if count == 0:
            continue
        region = tuple(slice(s, s + e) for s, e in zip(start, extent, strict=True))
        values = flat[region].ravel() if shape else flat.ravel()
        assert list(values) == list(range(position, position + count)), (start, extent)
        position += count
    assert position == flat.size


# ---------------------------------------------------------------------------
# Failures leave nothing behind


class Injected(RuntimeError):
    pass


@pytest.mark.parametrize(
    ("when", "error"), [("first", Injected), ("last", KeyboardInterrupt)], ids=["first", "last"]
)
@pytest.mark.parametrize("sharded", [False, True], ids=["single", "sharded"])
def test_an_error_while_writing_leaves_nothing(
    tmp_path, monkeypatch, temporary_kind, sharded, when, error
):
    spec = small_spec("float32")._replace(config={"model_type": "toy"})
    out = tmp_path / "out"
    if sharded:  # an existing directory keeps exactly what it had
        out.mkdir()
        (out / "notes.txt").write_text("mine\n", encoding="utf-8")
    before, names_before = snapshot(tmp_path), listing(tmp_path)
    last = [t.name for t in spec.tensors if math.prod(t.shape)][-1]
    real = _windows.fill_piece
    calls, seen = [], []

    def failing(tensor, *args, **kwargs):
        calls.append(tensor.name)
        if when == "first" or tensor.name == last:
            seen.append(listing(tmp_path))
            raise error("injected")
        return real(tensor, *args, **kwargs)

    monkeypatch.setattr(_windows, "fill_piece", failing)
    with pytest.raises(BaseException) as raised:
        checkpoint.write(spec, out, max_shard_size="20KB" if sharded else None, window=4096)
    assert isinstance(raised.value, error) or isinstance(raised.value.__context__, error)
    assert snapshot(tmp_path) == before
    assert (len(calls) > 10) == (when == "last")
    # While writing, the temporaries were hidden names, or no names at all.
    visible = sorted(set(seen[0]) - set(names_before))
    if temporary_kind == "o_tmpfile":
        assert visible == []
    else:
        layouts = checkpoint.plan(spec, max_shard_size=20_000 if sharded else None, metadata={})
        assert len(layouts) == (4 if sharded else 1)
        staging = f".out.fastinit-{os.getpid()}.staging"  # beside the output, built whole
        expected = [staging] + [f"{staging}/{f.name}" for f in layouts]
        assert visible == sorted(expected)
    assert raised.type is error, f"{raised.type.__name__} raised instead of {error.__name__}"


def test_a_missing_parent_directory_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoint.write(small_spec(), tmp_path / "a" / "b")
    assert listing(tmp_path) == []


def test_sigterm_handler_is_restored(tmp_path, monkeypatch):
    original = signal.getsignal(signal.SIGTERM)
    real = _windows.fill_piece
    during = []

    def watching(*args, **kwargs):
        during.append(signal.getsignal(signal.SIGTERM))
        return real(*args, **kwargs)

    monkeypatch.setattr(_windows, "fill_piece", watching)
    checkpoint.write(small_spec(), tmp_path)
    assert during and all(handler is not original for handler in during)
    assert signal.getsignal(signal.SIGTERM) is original


CHILD = textwrap.dedent(
    """
    import os, sys, time
    from fastinit import _windows, cli

    kind, action, *argv = sys.argv[1:]
    if kind == "named":
        del os.O_TMPFILE
    real = _windows.fill_piece
    calls = 0

    def watched(*args, **kwargs):
        global calls
        calls += 1
        if calls == 3 and action == "block":
            print("STARTED", flush=True)
            time.sleep(60)
        return real(*args, **kwargs)

    _windows.fill_piece = watched
    if action == "fsize":
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    try:
        code = cli.main(argv)
    except BaseException as error:
        print(f"RAISED {type(error).__name__}", flush=True)
        code = 99
    print(f"CALLS {calls}", flush=True)
    sys.exit(code)
    """
)


def start_child(kind: str, action: str, argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, action, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(child: subprocess.Popen, wanted: str, timeout: float = 60.0) -> None:
    """Reads the child's stdout (unbuffered, from its descriptor) up to the line `wanted`."""
    deadline = time.monotonic() + timeout
    fd, seen = child.stdout.fileno(), b""
    while f"{wanted}\n".encode() not in seen:
        left = deadline - time.monotonic()
        chunk = os.read(fd, 4096) if left > 0 and select.select([fd], [], [], left)[0] else b""
        if not chunk:
            child.kill()
            _, err = child.communicate()
            pytest.fail(f"the writer never printed {wanted}: {seen!r} {err}")
        seen += chunk


def write_spec_file(path: Path, tensors: list[tuple[str, list[int]]]) -> Path:
    document = {
        "format": specs.SPEC_FORMAT,
        "seed": 1,
        "tensors": [{"name": n, "shape": s, "init": "normal"} for n, s in tensors],
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.fixture
def big_spec_file(tmp_path) -> Path:
    """64 MiB in 16 tensors: four shards of 16 MiB at --max-shard-size 20MB."""
    return write_spec_file(tmp_path / "big.json", [(f"w{i:02d}", [1024, 1024]) for i in range(16)])


@needs_linux("O_TMPFILE and /proc are Linux's")
@pytest.mark.parametrize("kind", ["o_tmpfile", "named"])
def test_a_killed_writer_leaves_no_final_file(tmp_path, big_spec_file, kind):
    if kind == "o_tmpfile" and not o_tmpfile_works(tmp_path):
        pytest.skip("O_TMPFILE does not work here")
    work = tmp_path / "work"
    work.mkdir()
    argv = ["init", "--spec", str(big_spec_file), "-o", str(work / "out")]
    child = start_child(kind, "block", [*argv, "--max-shard-size", "20MB"])
    try:
        wait_for_line(child, "STARTED")
        visible = listing(work)
        unnamed = []
        for fd in os.listdir(f"/proc/{child.pid}/fd"):
            with_name = os.readlink(f"/proc/{child.pid}/fd/{fd}")
            if with_name.startswith(str(work)) and with_name.endswith("(deleted)"):
                unnamed.append(with_name)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    finals = [f"model-{k:05d}-of-00004.safetensors" for k in (1, 2, 3, 4)]
    if kind == "o_tmpfile":
        assert visible == [] and len(set(unnamed)) == 4  # four reserved files, none named
        assert listing(work) == []
    else:
        staging = f".out.fastinit-{child.pid}.staging"  # the dead writer's, for the next run
        assert visible == sorted([staging] + [f"{staging}/{n}" for n in finals])
        assert listing(work) == visible


@needs_linux("O_TMPFILE is Linux's")
@pytest.mark.parametrize("kind", ["o_tmpfile", "named"])
def test_a_terminated_writer_cleans_up(tmp_path, big_spec_file, kind):
    if kind == "o_tmpfile" and not o_tmpfile_works(tmp_path):
        pytest.skip("O_TMPFILE does not work here")
    work = tmp_path / "work"
    work.mkdir()
    argv = ["init", "--spec", str(big_spec_file), "-o", str(work / "out")]
    child = start_child(kind, "block", [*argv, "--max-shard-size", "20MB"])
    try:
        wait_for_line(child, "STARTED")
        visible = listing(work)
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert "CALLS 3" in out, err  # it stopped in the middle, and did not die
    assert (visible == []) == (kind == "o_tmpfile")
    assert listing(work) == []
    assert child.returncode == 130, f"exit {child.returncode}: {out.split()[:2]}"
    assert "interrupted; no output was left behind" in err


@needs_linux("RLIMIT_FSIZE and SIGXFSZ as on Linux")
@pytest.mark.parametrize(("kind", "sharded"), [("o_tmpfile", False), ("named", True)])
def test_a_full_disk_fails_before_generating(tmp_path, kind, sharded):
    if kind == "o_tmpfile" and not o_tmpfile_works(tmp_path):
        pytest.skip("O_TMPFILE does not work here")
    spec_file = write_spec_file(
        tmp_path / "spec.json", [("small", [100, 100]), ("big", [1024, 1024])]
    )
    work = tmp_path / "work"
    work.mkdir()
    target = work / "out" if sharded else work / "x.safetensors"
    argv = ["init", "--spec", str(spec_file), "-o", str(target), "--max-shard-size", "100KB"]
    child = start_child(kind, "fsize", argv)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 2, (out, err)
    assert "CALLS 0" in out  # nothing was generated
    assert "cannot reserve" in err
    assert ("model-00002-of-00002.safetensors" if sharded else "x.safetensors") in err
    assert listing(work) == []


# ---------------------------------------------------------------------------
# Bad specs are refused before anything is written

BAD_ENTRIES = {
    "duplicate": (
        [{"name": "w", "shape": [2, 2], "init": "zeros"}] * 2,
        "duplicate tensor name (first at tensors[1])",
    ),
    "reserved": ([{"name": "__metadata__", "shape": [2], "init": "zeros"}], "is reserved"),
    "unknown-init": ([{"name": "w", "shape": [2, 2], "init": "nope"}], "unknown initializer"),
    "float-dim": ([{"name": "w", "shape": [2, 2.0], "init": "zeros"}], "must be an integer"),
    "bool-dim": ([{"name": "w", "shape": [True, 2], "init": "zeros"}], "must be an integer"),
    "negative-std": (
        [{"name": "w", "shape": [2, 2], "init": "normal", "params": {"std": -1}}],
        "tensor 'w'",
    ),
}


def _entries_as_specs(entries: list[dict]) -> ModelSpec:
    tensors = tuple(
        TensorSpec(e["name"], tuple(e["shape"]), "float32", e["init"], e.get("params", {}))
        for e in entries
    )
    return ModelSpec(0, tensors)


@pytest.mark.parametrize("case", BAD_ENTRIES)
def test_bad_specs_are_refused_before_writing(tmp_path, monkeypatch, capsys, case):
    entries, message = BAD_ENTRIES[case]
    ok = {"name": "ok", "shape": [3], "init": "ones"}
    document = {"format": specs.SPEC_FORMAT, "tensors": [ok, *entries]}
    name = entries[-1]["name"]
    named = f"tensor {name!r} (tensors[{len(entries)}])"
    with pytest.raises((ValueError, TypeError), match=re.escape(named)) as raised:
        specs.spec_from_json(document)
    assert message in str(raised.value)
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "model.safetensors").write_bytes(b"not mine to touch")
    before = snapshot(tmp_path)
    calls = []
    monkeypatch.setattr(_windows, "fill_piece", lambda *a, **k: calls.append(a))
    spec = _entries_as_specs([ok, *entries])
    for target in (tmp_path / "new", existing, tmp_path / "x.safetensors"):
        with pytest.raises((ValueError, TypeError), match=re.escape(named)) as raised:
            checkpoint.write(spec, target, force=True)
        assert message in str(raised.value)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    before["spec.json"] = path.read_bytes()
    assert cli.main(["init", "--spec", str(path), "-o", str(tmp_path / "cli")]) == 2
    assert named in capsys.readouterr().err
    assert calls == []
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [({"max_shard_size": "5 parsecs"}, ValueError, "max_shard_size"),
     ({"threads": 0}, ValueError, "threads"),
     ({"threads": 1.5}, TypeError, "threads")],
)  # fmt: skip
def test_bad_options_are_refused_before_writing(tmp_path, options, error, match):
    with pytest.raises(error, match=match):
        checkpoint.write(small_spec(), tmp_path / "out", **options)
    assert listing(tmp_path) == []


# ---------------------------------------------------------------------------
# verify


def test_verify_an_untouched_checkpoint(tmp_path):
    spec = mixed_spec()
    checkpoint.write(spec, tmp_path, max_shard_size="200B")
    result = checkpoint.verify(tmp_path)
    assert result.mismatched == []
    assert result.tensors == len(spec.tensors)
    assert result.checked_bytes == sum(nbytes(t) for t in spec.tensors)


@pytest.mark.parametrize(
    ("name", "fraction"),
    [("embed.weight", 0.0), ("embed.weight", 0.01), ("long.weight", 0.5), ("proj.bias", 1.0),
     ("scale", 0.0), ("uniform", 1.0)],
)  # fmt: skip
def test_verify_finds_one_flipped_byte(tmp_path, name, fraction):
    spec = small_spec("bfloat16")
    checkpoint.write(spec, tmp_path)
    path = tmp_path / "model.safetensors"
    flip_byte(path, name, fraction)
    result = checkpoint.verify(tmp_path, window=4096)
    assert len(result.mismatched) == 1, result.mismatched
    assert result.mismatched[0].startswith(f"model.safetensors: {name} (bytes differ")


def test_verify_names_only_the_flipped_shard(tmp_path):
    spec = small_spec("float64")
    result = checkpoint.write(spec, tmp_path, max_shard_size="20KB")
    assert len(result.files) >= 3
    victim = result.files[1]
    name = next(n for n in raw_tensors(victim) if n != "empty")
    flip_byte(victim, name)
    found = checkpoint.verify(tmp_path)
    assert len(found.mismatched) == 1, found.mismatched
    assert found.mismatched[0].startswith(f"{victim.name}: {name} (bytes differ")
    for other in result.files:
        if other != victim:
            assert checkpoint.verify(other).mismatched == []
    assert checkpoint.verify(victim).mismatched == found.mismatched


def test_verify_sample_checks_fewer_bytes_and_finds_a_sampled_flip(tmp_path):
    spec = ModelSpec(3, (TensorSpec("w", (64, 256), "float32", "normal", {}),
                         TensorSpec("v", (40, 100), "float32", "uniform", {})))  # fmt: skip
    checkpoint.write(spec, tmp_path)
    window = 1024  # a row of w, or two rows of v, per chunk
    chunks = sum(
        1
        for t in spec.tensors
        for _, extent in checkpoint.boxes(t.shape, window // 4)
        if math.prod(extent)
    )
    assert chunks == 64 + 20
    total = sum(nbytes(t) for t in spec.tensors)
    clean = checkpoint.verify(tmp_path, sample=10, sample_seed=1, window=window)
    assert clean.mismatched == [] and 0 < clean.checked_bytes <= 10 * window < total
    assert clean == checkpoint.verify(tmp_path, sample=10, sample_seed=1, window=window)
    flip_byte(tmp_path / "model.safetensors", "w", 0.3)
    everything = checkpoint.verify(tmp_path, sample=chunks, window=window)
    assert [m.split(" (")[0] for m in everything.mismatched] == ["model.safetensors: w"]
    outcomes = set()
    for seed in range(40):
        found = checkpoint.verify(tmp_path, sample=chunks // 4, sample_seed=seed, window=window)
        assert found.checked_bytes < total
        assert [m.split(" (")[0] for m in found.mismatched] in ([], ["model.safetensors: w"])
        outcomes.add(bool(found.mismatched))
    assert outcomes == {True, False}  # found when its chunk was drawn, missed otherwise


def test_verify_reports_a_truncated_file(tmp_path):
    spec = small_spec("float32")
    checkpoint.write(spec, tmp_path)
    path = tmp_path / "model.safetensors"
    header, data = checkpoint.read_header(path)
    size = path.stat().st_size
    os.truncate(path, size - 1000)
    cut = {
        n
        for n, i in header.items()
        if n != "__metadata__" and data + i["data_offsets"][1] > size - 1000
    }
    first = min(cut, key=lambda n: header[n]["data_offsets"])  # refused before any regeneration
    with pytest.raises(checkpoint.CheckpointFormatError, match=f"tensor '{first}': .* run past"):
        checkpoint.verify(tmp_path)
    os.truncate(path, 5)
    with pytest.raises(ValueError, match="not a safetensors file"):
        checkpoint.verify(tmp_path)


def test_verify_refuses_a_file_fastinit_did_not_write(tmp_path, capsys):
    save_file = pytest.importorskip("safetensors.numpy").save_file
    path = tmp_path / "other.safetensors"
    save_file({"w": np.zeros((2, 2), np.float32)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="not written by fastinit"):
        checkpoint.verify(path)
    assert cli.main(["verify", str(path)]) == 2
    assert "not written by fastinit" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# Existing outputs


@pytest.mark.parametrize("layout", ["directory", "sharded", "file"])
def test_existing_outputs_are_replaced_only_with_force(tmp_path, temporary_kind, layout):
    spec = small_spec("float32", seed=1)._replace(config={"model_type": "toy"})
    target = tmp_path / ("x.safetensors" if layout == "file" else "out")
    shard = "20KB" if layout == "sharded" else None
    first = checkpoint.write(spec, target, max_shard_size=shard)
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match="force"):
        checkpoint.write(spec._replace(seed=2), target, max_shard_size=shard)
    assert snapshot(tmp_path) == before
    second = checkpoint.write(spec._replace(seed=2), target, max_shard_size=shard, force=True)
    after = snapshot(tmp_path)
    assert sorted(after) == sorted(before)  # no temporary, nothing else
    assert second.files == first.files
    for path in second.files:
        name = str(path.relative_to(tmp_path))
        assert after[name] != before[name]
        assert checkpoint.read_header(path)[0]["__metadata__"]["fastinit.seed"] == "2"
    assert checkpoint.verify(target).mismatched == []


def test_an_existing_config_alone_blocks_the_write(tmp_path):
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(FileExistsError, match="config.json"):
        checkpoint.write(small_spec()._replace(config={"model_type": "toy"}), tmp_path)
    assert listing(tmp_path) == ["config.json"]


def test_force_with_a_new_layout_leaves_one_checkpoint(tmp_path):
    spec = small_spec("float32", seed=1)
    checkpoint.write(spec, tmp_path, max_shard_size="20KB")
    result = checkpoint.write(spec._replace(seed=2), tmp_path, force=True)  # now one file
    assert result.files == [tmp_path / "model.safetensors"] and temporaries_in(tmp_path) == []
    files = checkpoint.checkpoint_files(tmp_path)
    assert files == result.files, f"checkpoint_files reads {[p.name for p in files]}"


# ---------------------------------------------------------------------------
# The command line


def test_cli_init_from_a_config_then_verify(tmp_path, capsys):
    config = {**LLAMA, "tie_word_embeddings": False}
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    out = tmp_path / "out"
    argv = ["init", "--config", str(config_path), "-o", str(out), "--dtype", "bfloat16"]
    assert cli.main([*argv, "--seed", "7", "--max-shard-size", "200KB"]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""  # no progress bar when stderr is not a terminal
    assert "seed 7" in printed.out and "shards + model.safetensors.index.json" in printed.out
    shards = checkpoint.checkpoint_files(out)
    assert len(shards) >= 2
    assert listing(out) == sorted([p.name for p in shards] + [checkpoint.INDEX_FILE, "config.json"])
    assert json.loads((out / "config.json").read_text(encoding="utf-8")) == config
    spec = specs.spec_from_config(config, dtype="bfloat16", seed=7)
    for shard in shards:
        check_format(shard, spec)

    assert cli.main(["verify", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.out.rstrip().endswith("OK") and "MISMATCH" not in printed.out
    assert f"{len(spec.tensors)} tensors" in printed.out

    victim = shards[-1]
    name = next(iter(raw_tensors(victim)))
    flip_byte(victim, name)
    for extra in ([], ["--sample", "100000"]):
        assert cli.main(["verify", str(out), *extra]) == 1
        printed = capsys.readouterr()
        assert f"MISMATCH {victim.name}: {name} (" in printed.out
        assert printed.out.count("MISMATCH") == 1 and printed.out.rstrip().endswith("FAIL")
        assert ("sampled chunks" in printed.out) == bool(extra)


def test_cli_init_from_a_spec_to_one_file(tmp_path, capsys):
    spec = mixed_spec(seed=3)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(specs.spec_to_json(spec)), encoding="utf-8")
    out = tmp_path / "model"
    assert cli.main(["init", "--spec", str(spec_path), "-o", f"{out}.safetensors"]) == 0
    assert capsys.readouterr().err == ""
    assert listing(tmp_path) == ["model.safetensors", "spec.json"]
    api = tmp_path / "api" / "model.safetensors"
    api.parent.mkdir()
    checkpoint.write(spec, api)
    assert (tmp_path / "model.safetensors").read_bytes() == api.read_bytes()  # CLI == API
    argv = ["init", "--spec", str(spec_path), "-o", str(tmp_path / "f16.safetensors")]
    assert cli.main([*argv, "--dtype", "float16", "--seed", "11"]) == 0
    header = check_format(
        tmp_path / "f16.safetensors", specs.with_seed(specs.with_dtype(spec, "float16"), 11)
    )
    assert {info["dtype"] for info in header.values()} == {"F16"}
    assert cli.main(["verify", str(tmp_path / "f16.safetensors")]) == 0


def test_cli_preset_uses_the_embedded_config(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["init", "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert all(name in shown for name in specs.PRESETS)
    real = hf_configs.preset_config
    tiny = {**GPT2, "n_layer": 1}

    def tiny_preset(name):
        real(name)  # the name must still be a preset
        return dict(tiny)

    monkeypatch.setattr(hf_configs, "preset_config", tiny_preset)
    assert cli.main(["init", "--preset", "gpt2", "-o", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err == ""
    assert json.loads((tmp_path / "out/config.json").read_text(encoding="utf-8")) == tiny
    assert checkpoint.verify(tmp_path / "out").tensors == len(specs.spec_from_config(tiny).tensors)


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["init", "--preset", "gpt-5", "-o", "{tmp}/out"], "unknown preset 'gpt-5'"),
     (["init", "--spec", "{tmp}/missing.json", "-o", "{tmp}/out"], "No such file"),
     (["init", "--spec", "{tmp}/broken.json", "-o", "{tmp}/out"], "not valid JSON"),
     (["init", "--config", "{tmp}/broken.json", "-o", "{tmp}/out"], "Expecting property name"),
     (["init", "--spec", "{tmp}/spec.json", "-o", "{tmp}/no/such/dir"], "does not exist"),
     (["init", "--spec", "{tmp}/spec.json", "-o", "{tmp}/out", "--max-shard-size", "5 parsecs"],
      "max_shard_size"),
     (["init", "--spec", "{tmp}/spec.json", "-o", "{tmp}/out", "--dtype", "int8"], "dtype"),
     (["verify", "{tmp}/nothing"], "no model.safetensors")],
)  # fmt: skip
def test_cli_errors_exit_2_and_write_nothing(tmp_path, capsys, argv, message):
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    write_spec_file(tmp_path / "spec.json", [("w", [4, 4])])
    before = snapshot(tmp_path)
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    assert cli.main(argv) == 2
    printed = capsys.readouterr()
    assert printed.err.startswith("fastinit: error:") and message in printed.err
    assert snapshot(tmp_path) == before


def test_cli_refuses_an_existing_output_without_force(tmp_path, capsys):
    spec_path = write_spec_file(tmp_path / "spec.json", [("w", [4, 4])])
    out = tmp_path / "out"
    assert cli.main(["init", "--spec", str(spec_path), "-o", str(out)]) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert cli.main(["init", "--spec", str(spec_path), "-o", str(out), "--seed", "2"]) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "--force" in err
    assert snapshot(out) == before
    assert (
        cli.main(["init", "--spec", str(spec_path), "-o", str(out), "--seed", "2", "--force"]) == 0
    )
    assert snapshot(out) != before and listing(out) == ["model.safetensors"]


def test_progress_goes_to_stderr_only_when_asked(tmp_path, capsys):
    checkpoint.write(small_spec(), tmp_path / "quiet")  # stderr is not a terminal here
    assert capsys.readouterr().err == ""
    checkpoint.write(small_spec(), tmp_path / "off", progress=False)
    assert capsys.readouterr().err == ""
    checkpoint.write(small_spec(), tmp_path / "on", progress=True)
    err = capsys.readouterr().err
    assert err.endswith("\n") and "\n" not in err[:-1]  # one line, redrawn with \r
    # A write faster than the 0.2 s redraw interval still ends on its full bar.
    assert f"[{'#' * 30}]" in err, f"no full bar in {err!r}"


# ---------------------------------------------------------------------------
# Determinism


@pytest.mark.parametrize("direct", [True, False], ids=["o_direct", "mmap"])
def test_threads_and_window_change_no_byte(tmp_path, monkeypatch, direct):
    monkeypatch.setattr(_windows, "DIRECT_IO", direct)
    spec = mixed_spec()._replace(tensors=mixed_spec().tensors + small_spec("bfloat16").tensors)
    runs = [(1, 4096), (2, 4096), (2, 1 << 20), (None, 1000), (2, 12288)]
    files = []
    for k, (threads, window) in enumerate(runs):
        result = checkpoint.write(
            spec, tmp_path / f"{k}.safetensors", threads=threads, window=window
        )
        files.append(result.files[0].read_bytes())
    assert all(data == files[0] for data in files[1:])
    again = checkpoint.write(spec, tmp_path / "again.safetensors", threads=2, window=4096)
    assert again.files[0].read_bytes() == files[0]
    by_name = {t.name: t for t in spec.tensors}
    for name, data in raw_tensors(tmp_path / "0.safetensors").items():
        assert data == expected_bytes(by_name[name], spec.seed), name
    # One element per window, on the small spec: every box boundary there can be.
    tiny = checkpoint.write(mixed_spec(), tmp_path / "tiny.safetensors", window=1)
    whole = checkpoint.write(mixed_spec(), tmp_path / "whole.safetensors")
    assert tiny.files[0].read_bytes() == whole.files[0].read_bytes()


def test_adding_a_tensor_changes_no_other_tensor(tmp_path):
    spec = small_spec("float32")
    extra = TensorSpec("extra", (33, 7), "float64", "normal", {})
    bigger = spec._replace(tensors=(*spec.tensors[:2], extra, *spec.tensors[2:]))
    reordered = spec._replace(tensors=spec.tensors[::-1])
    checkpoint.write(spec, tmp_path / "base.safetensors")
    checkpoint.write(bigger, tmp_path / "bigger.safetensors")
    checkpoint.write(reordered, tmp_path / "reordered.safetensors")
    base = safetensors_torch(tmp_path / "base.safetensors")
    for other in ("bigger", "reordered"):
        loaded = safetensors_torch(tmp_path / f"{other}.safetensors")
        for name, tensor in base.items():
            assert torch_bytes(loaded[name]) == torch_bytes(tensor), (other, name)
    assert set(safetensors_torch(tmp_path / "bigger.safetensors")) == {*base, "extra"}
    digests = {
        checkpoint.read_header(tmp_path / f"{n}.safetensors")[0]["__metadata__"][
            "fastinit.spec_sha256"
        ]
        for n in ("base", "bigger", "reordered")
    }
    assert len(digests) == 3


def test_config_dtype_follows_the_weights(tmp_path):
    spec = small_spec("bfloat16")._replace(config={"model_type": "toy", "torch_dtype": "float16"})
    checkpoint.write(spec, tmp_path / "out")
    written = json.loads((tmp_path / "out" / "config.json").read_text(encoding="utf-8"))
    assert written == {"model_type": "toy", "torch_dtype": "bfloat16"}


def test_a_failed_index_takes_the_linked_shards_with_it(tmp_path, monkeypatch):
    real = _durable.write_small

    def failing(path, text):
        if path.name == checkpoint.INDEX_FILE:
            raise OSError(28, "No space left on device")
        return real(path, text)

    monkeypatch.setattr(_durable, "write_small", failing)
    spec = small_spec("float32")._replace(config={"model_type": "toy"})
    with pytest.raises(OSError, match="No space"):
        checkpoint.write(spec, tmp_path / "out", max_shard_size="20KB")
    assert listing(tmp_path / "out") == []


def test_direct_and_mapped_writes_are_identical(tmp_path, monkeypatch):
    spec = mixed_spec()._replace(tensors=mixed_spec().tensors + small_spec("float16").tensors)
    direct = checkpoint.write(spec, tmp_path / "direct.safetensors", window=8192)
    monkeypatch.setattr(_windows, "DIRECT_IO", False)
    mapped = checkpoint.write(spec, tmp_path / "mapped.safetensors", window=8192)
    assert direct.files[0].read_bytes() == mapped.files[0].read_bytes()
    assert direct.files[0].stat().st_size == direct.bytes  # the last block's padding is cut


@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (2, 3, 4), (4, 1, 6), (2, 0, 3)])
def test_zeroed_spans_cover_exactly_the_zero_rows_in_the_range(shape):
    """Windows are filled by flat ranges [first, stop); a zeroed row is zeroed by flat
    index: exactly its elements inside the range, whatever the range's ends."""
    size = math.prod(shape)
    rows = (0, shape[0] - 1) if shape and shape[0] > 1 else ((0,) if shape else ())
    flat = np.arange(size).reshape(shape)
    zeroed = set(flat[list(rows)].reshape(-1).tolist()) if rows else set()
    for first in range(size + 1):
        for stop in range(first, size + 1):
            covered = []
            for begin, end in _windows.zeroed_spans(shape, rows, first, stop):
                assert first <= begin < end <= stop, (shape, first, stop)
                covered += list(range(begin, end))
            expected = [i for i in range(first, stop) if i in zeroed]
            assert covered == expected, (shape, first, stop)


def test_a_window_piece_equals_the_tensor_at_its_flat_range():
    """fill_piece(first) equals the whole tensor's flat elements [first, stop): values
    and zero_rows, for every dtype and initializer kind, at ends inside rows."""
    for tensor in [*mixed_spec().tensors, *small_spec("bfloat16").tensors]:
        whole = np.ascontiguousarray(specs.sample_into(tensor, 9)).reshape(-1)
        prepared = _windows.prepare(tensor)
        for first, stop in [(0, whole.size), (1, whole.size - 1), (whole.size // 3, whole.size)]:
            if first >= stop:
                continue
            piece = np.empty(stop - first, whole.dtype)
            _windows.fill_piece(tensor, prepared, 9, piece, first, 2)
            assert piece.tobytes() == whole[first:stop].tobytes(), (tensor.name, first, stop)


def test_cli_verify_sample_seed_is_repeatable(tmp_path, capsys):
    checkpoint.write(small_spec(), tmp_path / "out", window=4096)
    argv = ["verify", str(tmp_path / "out"), "--sample", "3", "--sample-seed", "11"]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == first and "OK" in first
