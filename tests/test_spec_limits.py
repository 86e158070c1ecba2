"""Issue 11, section 3: `init` refuses what it cannot write correctly.

Each reproducer is refused before anything is built or written, through the Python
API and through `fastinit init` (exit 2, one line on stderr, nothing written): JSON
nested past MAX_DEPTH (I1), configs whose layer count makes more than MAX_TENSORS
tensors (I1), parameters whose values would not be finite (I3), tensors of more than
MAX_BYTES bytes (I4). The memory bound README.md states is measured in a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from fastinit import checkpoint, cli, hf_configs, specs
from fastinit.specs import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_TENSORS,
    SPEC_FORMAT,
    ModelSpec,
    TensorSpec,
    check_spec,
    load_config,
    load_spec,
    spec_from_config,
    spec_from_json,
)

DEEP = 100_000  # the campaign's nesting depth
TINY_GPT2 = {
    "model_type": "gpt2",
    "vocab_size": 96,
    "n_positions": 40,
    "n_embd": 32,
    "n_layer": 2,
    "n_head": 4,
}


def document(*extra: dict) -> dict:
    """A valid spec with one plain tensor, then the `extra` tensor entries."""
    entries = [{"name": "w", "shape": [4, 4], "init": "glorot_uniform"}, *extra]
    return {"format": SPEC_FORMAT, "seed": 3, "tensors": entries}


def first(entry: dict) -> dict:
    """A spec whose first tensor entry is `entry`."""
    doc = document()
    doc["tensors"].insert(0, entry)
    return doc


def nested(levels: int) -> dict:
    """JSON objects `levels` deep ({} is one level), built without recursion."""
    value: dict = {}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


def deep_text(levels: int) -> str:
    return "[" * levels + "]" * levels


def no_building(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes building or sampling any tensor fail the test: a refusal must come first."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a tensor was built or sampled before the refusal")

    monkeypatch.setattr(specs, "_tensor", forbidden)
    monkeypatch.setattr(specs, "check_sampler", forbidden)
    monkeypatch.setattr(hf_configs._Blueprint, "rows", forbidden)


# ---------------------------------------------------------------------------
# I1: nesting


def test_depth_limit_is_exact():
    # The document is level 1, its config level 2: a config of 63 levels is 64 deep.
    spec_from_json({**document(), "config": nested(MAX_DEPTH - 1)})
    with pytest.raises(ValueError, match=f"spec config: JSON nested more than {MAX_DEPTH}"):
        spec_from_json({**document(), "config": nested(MAX_DEPTH)})
    spec_from_config({**TINY_GPT2, "extra": nested(MAX_DEPTH - 1)})
    with pytest.raises(ValueError, match=f"config: JSON nested more than {MAX_DEPTH}"):
        spec_from_config({**TINY_GPT2, "extra": nested(MAX_DEPTH)})


@pytest.mark.parametrize(
    ("make", "where"),
    [
        (lambda deep: {**document(), "config": deep}, "spec config"),
        (lambda deep: {**document(), "format": deep}, "spec format"),
        (lambda deep: {**document(), "dtype": deep}, "spec dtype"),
        (lambda deep: first({"name": "v", "shape": deep, "init": "zeros"}), r"tensors\[0\]"),
        (lambda deep: first({"name": deep, "shape": [2], "init": "zeros"}), r"tensors\[0\]"),
        (
            lambda deep: first({"name": "v", "shape": [2], "init": "ones", "params": deep}),
            r"tensors\[0\]",
        ),
    ],
)
def test_deep_spec_documents_are_refused_before_any_tensor(monkeypatch, make, where):
    deep_list = json.loads(deep_text(500))  # deep, but within what json itself parses
    no_building(monkeypatch)
    for deep in (nested(DEEP), deep_list):
        with pytest.raises(ValueError, match=f"{where}: JSON nested more than {MAX_DEPTH}"):
            spec_from_json(make(deep))


def test_deep_configs_are_refused_before_any_tensor(monkeypatch):
    no_building(monkeypatch)
    with pytest.raises(ValueError, match=f"config: JSON nested more than {MAX_DEPTH}"):
        spec_from_config({**TINY_GPT2, "task_specific_params": nested(DEEP)})
    with pytest.raises(ValueError, match="config: JSON nested"):
        spec_from_config(nested(DEEP))  # model_type is not even looked at


def test_circular_data_is_refused():
    loop: dict = {"model_type": "gpt2"}
    loop["self"] = loop
    with pytest.raises(ValueError, match="config: JSON nested .* or circular"):
        spec_from_config(loop)
    knot: list = []
    knot.append(knot)
    knot.append(knot)  # two ways back: a walk that followed both would never end
    with pytest.raises(ValueError, match="spec config: JSON nested .* or circular"):
        check_spec(ModelSpec(0, (TensorSpec("w", (2,), "float32", "zeros", {}),), {"k": knot}))


def test_shared_containers_are_walked_again_only_deeper():
    shared = nested(MAX_DEPTH - 2)  # its deepest level is MAX_DEPTH when it starts at level 3
    # The walk meets the last key first: `shared` is walked shallow, then again deeper.
    for fits in ({"b": {"c": shared}, "a": shared}, {"a": shared, "b": {"c": shared}}):
        spec_from_config({**TINY_GPT2, **fits})
    for deeper in (
        {"b": {"c": {"d": shared}}, "a": shared},
        {"a": shared, "b": {"c": {"d": shared}}},
    ):
        with pytest.raises(ValueError, match="JSON nested"):
            spec_from_config({**TINY_GPT2, **deeper})


@pytest.mark.parametrize("text", [deep_text(DEEP), '{"a": ' * DEEP + "1" + "}" * DEEP])
def test_deep_files_name_the_file(tmp_path, text):
    path = tmp_path / "deep.json"
    path.write_text(text, encoding="utf-8")
    for load in (load_spec, load_config):
        with pytest.raises(ValueError, match=f"deep.json: JSON nested more than {MAX_DEPTH}"):
            load(path)


def test_files_past_the_limit_but_within_the_parser_name_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**TINY_GPT2, "x": nested(MAX_DEPTH)}), encoding="utf-8")
    with pytest.raises(ValueError, match=f"config.json: JSON nested more than {MAX_DEPTH}"):
        load_config(path)
    path.write_text(json.dumps({**TINY_GPT2, "x": nested(MAX_DEPTH - 1)}), encoding="utf-8")
    assert load_config(path)["x"] == nested(MAX_DEPTH - 1)


def test_bad_bytes_and_repeated_keys_name_the_file(tmp_path):
    path = tmp_path / "spec.json"
    path.write_bytes(b'{"format": "\xff"}')
    with pytest.raises(ValueError, match="spec.json: 'utf-8' codec"):
        load_spec(path)
    path.write_text('{"format": 1, "format": 2}', encoding="utf-8")
    with pytest.raises(ValueError, match="spec.json: JSON object has the key 'format' twice"):
        load_spec(path)
    assert load_config(path) == {"format": 2}  # json.load's rule for configs, as before


# ---------------------------------------------------------------------------
# I1: tensor counts


@pytest.mark.parametrize(
    ("config", "count"),
    [
        ({"model_type": "llama", "num_hidden_layers": 100_000_000}, "900,000,003"),
        ({"model_type": "mistral", "num_hidden_layers": 10**18}, "9,000,000,000,000,000,003"),
        ({"model_type": "qwen2", "num_hidden_layers": 200_000}, "2,400,003"),
        ({"model_type": "gpt2", "n_layer": 100_000_000}, "1,200,000,004"),
        ({"model_type": "gpt2", "num_hidden_layers": 100_000_000}, "1,200,000,004"),
    ],
)
def test_huge_layer_counts_are_refused_from_the_fields(monkeypatch, config, count):
    no_building(monkeypatch)
    with pytest.raises(
        ValueError, match=f"config: [0-9,]+ layers make {count} tensors; .* at most 1,000,000"
    ):
        spec_from_config(config)


def test_tensor_count_limit_is_exact(monkeypatch):
    tiny = {**TINY_GPT2, "n_layer": 3}
    count = len(spec_from_config(tiny).tensors)  # 2 + 12 per layer + 2
    assert count == 40
    monkeypatch.setattr(specs, "MAX_TENSORS", count)
    assert len(spec_from_config(tiny).tensors) == count
    with pytest.raises(ValueError, match="4 layers make 52 tensors; a spec holds at most 40"):
        spec_from_config({**tiny, "n_layer": 4})
    doc = {
        "format": SPEC_FORMAT,
        "tensors": [{"name": f"t{i}", "shape": [1], "init": "ones"} for i in range(count)],
    }
    assert len(spec_from_json(doc).tensors) == count
    doc["tensors"].append({"name": "one more", "shape": [1], "init": "ones"})
    no_building(monkeypatch)
    with pytest.raises(ValueError, match="41 tensors; a spec holds at most 40"):
        spec_from_json(doc)
    with pytest.raises(ValueError, match="41 tensors; a spec holds at most 40"):
        check_spec(ModelSpec(0, (TensorSpec("w", (1,), "float32", "ones", {}),) * 41))


def test_a_spec_of_more_than_a_million_tensors_is_refused_unread(monkeypatch):
    entry = {"name": "w", "shape": [1], "init": "ones"}
    no_building(monkeypatch)
    with pytest.raises(ValueError, match="1,000,001 tensors; a spec holds at most 1,000,000"):
        spec_from_json({"format": SPEC_FORMAT, "tensors": [entry] * (MAX_TENSORS + 1)})


def test_blueprints_count_and_size_exactly():
    configs = [specs.preset_config(name) for name in specs.PRESETS]
    configs = [c for c in configs if c["model_type"] in specs.SUPPORTED_MODEL_TYPES]
    configs += [{"model_type": t} for t in specs.SUPPORTED_MODEL_TYPES]
    configs += [{**TINY_GPT2, "add_cross_attention": True, "tie_word_embeddings": False}]
    configs += [{"model_type": "llama", "num_hidden_layers": 0, "attention_bias": True}]
    for config in configs:
        fields = hf_configs._Fields(config["model_type"], config)
        build = (
            hf_configs._build_gpt2
            if config["model_type"] == "gpt2"
            else hf_configs._build_llama_family
        )
        blueprint = build(config["model_type"], fields)
        tensors = spec_from_config(config).tensors
        assert blueprint.tensor_count() == len(tensors)
        assert sum(math.prod(shape) * n for _, shape, n in blueprint.kinds()) == sum(
            math.prod(t.shape) for t in tensors
        )
        distinct = dict(blueprint.distinct())
        for index, row in distinct.items():
            assert (tensors[index].name, tensors[index].shape) == (row[0], row[1])


# ---------------------------------------------------------------------------
# I3: every tensor passes the public API's checks

NON_FINITE = [  # (init, params, dtype, shape, the argument named)
    ("uniform", {"low": -1e300}, "float32", [1000], "low"),
    ("uniform", {"low": -1e300, "high": 1e300}, "float64", [1000], "low"),
    ("normal", {"std": 1e38}, "float64", [1 << 20], "std"),
    ("truncated_normal", {"std": 3.4e38, "a": -1.0}, "float32", [1024, 1024], "std"),
    ("he_normal", {"gain": 1e300}, "float64", [4, 4], "gain"),
    ("variance_scaling", {"scale": 1e300}, "float64", [4, 4], "scale"),
    ("constant", {"value": 1e300}, "float32", [4], "value"),
]


@pytest.mark.parametrize(("init", "params", "dtype", "shape", "argument"), NON_FINITE)
def test_spec_parameters_the_api_refuses_are_refused(init, params, dtype, shape, argument):
    entry = {"name": "x", "shape": shape, "dtype": dtype, "init": init, "params": params}
    with pytest.raises(ValueError, match=rf"^tensor 'x' \(tensors\[1\]\): .*{argument}="):
        spec_from_json(document(entry))
    built = ModelSpec(0, (TensorSpec("x", tuple(shape), dtype, init, params),))
    with pytest.raises(ValueError, match=rf"^tensor 'x' \(tensors\[0\]\): .*{argument}="):
        check_spec(built)


def test_config_initializer_range_the_api_refuses_names_field_and_tensor():
    config = {**TINY_GPT2, "initializer_range": 1e38, "torch_dtype": "float64"}
    with pytest.raises(
        ValueError,
        match=r"^gpt2 config \(initializer_range 1e\+38 in float64\): "
        r"tensor 'transformer.wte.weight' \(tensors\[0\]\): .*std=1e\+38",
    ):
        spec_from_config(config)
    llama = {
        "model_type": "llama",
        "hidden_size": 8,
        "intermediate_size": 8,
        "vocab_size": 8,
        "num_attention_heads": 2,
        "num_hidden_layers": 1,
    }
    llama["initializer_range"] = 1e39
    with pytest.raises(ValueError, match=r"'model.embed_tokens.weight' \(tensors\[0\]\): .*std="):
        spec_from_config(llama, dtype="float64")
    assert spec_from_config({**config, "initializer_range": 1e30}).tensors[0].params["std"] == 1e30


def test_config_tensors_are_checked_per_distinct_tensor(monkeypatch):
    """Every kind of tensor, the first layer's included, goes through the sampler."""
    checked = []
    real = specs.check_sampler

    def spy(index, tensor, seed):
        checked.append((index, tensor))
        real(index, tensor, seed)

    monkeypatch.setattr(specs, "check_sampler", spy)
    spec = spec_from_config({**TINY_GPT2, "tie_word_embeddings": False}, seed=5)
    by_index = {i: t for i, t in checked}
    assert len(by_index) == len(checked) == 2 + 12 + 3  # head, one layer, tail
    for index, tensor in by_index.items():
        assert spec.tensors[index] == tensor
    assert "transformer.h.0.attn.c_proj.weight" in {t.name for t in by_index.values()}


def test_a_sampled_value_that_is_not_finite_is_refused(monkeypatch):
    """The last guard: one element is drawn by the real sampler and must be finite."""
    monkeypatch.setattr(specs, "sample_into", lambda *a, **k: np.array([np.inf], np.float32))
    with pytest.raises(ValueError, match=r"tensor 'w' \(tensors\[0\]\): glorot_uniform .* inf"):
        spec_from_json(document())


def test_one_element_is_drawn_and_it_is_the_tensors_first(monkeypatch):
    seen = []
    real = specs.sample_into

    def spy(tensor, seed, out=None, region=None, threads=None):
        values = real(tensor, seed, out, region, threads)
        seen.append((tensor.name, region, values.copy()))
        return values

    monkeypatch.setattr(specs, "sample_into", spy)
    spec = spec_from_json(
        document(
            {"name": "s", "shape": [], "init": "normal"},
            {"name": "e", "shape": [3, 0], "init": "normal"},
        )
    )
    regions = {name: region for name, region, _ in seen}
    assert regions == {"w": (slice(0, 1),) * 2, "s": None, "e": (slice(0, 0),)}
    first = specs.sample_into(spec.tensors[0], spec.seed)
    assert seen[0][2].ravel()[0] == first.ravel()[0]


# ---------------------------------------------------------------------------
# I4: bytes


def test_shape_of_more_than_max_bytes_names_the_tensor():
    entry = {"name": "big", "shape": [2**61, 2], "init": "zeros"}
    with pytest.raises(
        ValueError,
        match=r"tensor 'big' \(tensors\[1\]\): shape \[2305843009213693952, 2\]"
        r" of float32 is 18,446,744,073,709,551,616 bytes; .* at most 2\^62",
    ):
        spec_from_json(document(entry))
    # Exactly MAX_BYTES passes (it is never allocated: one element is drawn).
    alone = {"format": SPEC_FORMAT, "tensors": [{**entry, "shape": [2**60]}]}
    assert math.prod(spec_from_json(alone).tensors[0].shape) * 4 == MAX_BYTES
    alone["tensors"][0]["dtype"] = "float64"
    with pytest.raises(ValueError, match=r"'big' \(tensors\[0\]\): .* of float64 is"):
        spec_from_json(alone)


def test_total_bytes_over_max_bytes_names_the_tensor_that_crosses():
    entries = [{"name": f"t{i}", "shape": [2**58], "init": "ones"} for i in range(3)]
    spec = spec_from_json(document(*entries))  # 64 + 3 * 2^60 bytes: under 2^62
    assert sum(math.prod(t.shape) * 4 for t in spec.tensors) < MAX_BYTES
    entries.append({"name": "t3", "shape": [2**58], "init": "ones"})
    with pytest.raises(
        ValueError, match=r"tensor 't3' \(tensors\[4\]\): the tensors up to this one need"
    ):
        spec_from_json(document(*entries))


def test_config_sizes_name_the_tensor(monkeypatch):
    # 3 * 2^60 bytes a layer, each tensor under 2^62: one layer fits, two do not.
    spec_from_config({"model_type": "gpt2", "n_layer": 1, "n_embd": 2**28, "n_head": 1})
    no_building(monkeypatch)
    with pytest.raises(
        ValueError, match=r"llama config: tensor 'model.embed_tokens.weight' of shape \[2305843"
    ):
        spec_from_config({"model_type": "llama", "vocab_size": 2**61})
    with pytest.raises(
        ValueError,
        match=r"tensor 'model.layers.\{i\}.mlp.gate_proj.weight' of shape \[4611686018427387904,",
    ):
        spec_from_config({"model_type": "llama", "intermediate_size": 2**62})
    with pytest.raises(ValueError, match=r"gpt2 config: its 28 tensors are [0-9,]+ bytes"):
        spec_from_config({"model_type": "gpt2", "n_layer": 2, "n_embd": 2**28, "n_head": 1})


def test_writing_refuses_oversized_and_nonfinite_specs_and_writes_nothing(tmp_path):
    for tensor in (
        TensorSpec("big", (2**61, 2), "float32", "zeros", {}),
        TensorSpec("wide", (4,), "float32", "uniform", {"low": -1e300}),
    ):
        with pytest.raises(ValueError, match=rf"tensor '{tensor.name}' \(tensors\[0\]\)"):
            checkpoint.write(ModelSpec(1, (tensor,)), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_check_spec_keeps_checked_tensors_and_canonicalizes_the_rest():
    spec = spec_from_json(document({"name": "n", "shape": [3], "init": "normal"}))
    checked = check_spec(spec)
    assert checked == spec and all(
        a is b for a, b in zip(checked.tensors, spec.tensors, strict=True)
    )
    as_int = spec._replace(tensors=(spec.tensors[0]._replace(params={"gain": 2}),))
    (made,) = check_spec(as_int).tensors
    assert made.params == {"gain": 2.0} and type(made.params["gain"]) is float
    with pytest.raises(TypeError, match="spec must be a fastinit.specs.ModelSpec"):
        check_spec(specs.spec_to_json(spec))


# ---------------------------------------------------------------------------
# The command line: exit 2, one line, nothing written


def _cli_cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    def spec_file(name: str, *entries: dict) -> str:
        path = tmp / name
        path.write_text(json.dumps({"format": SPEC_FORMAT, "tensors": entries}), encoding="utf-8")
        return str(path)

    def config_file(name: str, config: dict) -> str:
        path = tmp / name
        path.write_text(json.dumps(config), encoding="utf-8")
        return str(path)

    (tmp / "deep.json").write_text(deep_text(DEEP), encoding="utf-8")
    (tmp / "deep-config.json").write_text(
        '{"model_type": "gpt2", "x": ' + deep_text(DEEP) + "}", encoding="utf-8"
    )
    big = {"name": "big", "shape": [2**61, 2], "init": "zeros"}
    low = {"name": "x", "shape": [1000], "init": "uniform", "params": {"low": -1e300}}
    near = {"name": "near", "shape": [2**60], "init": "zeros"}  # 2^62 bytes as float32
    return {
        "deep spec": (["--spec", str(tmp / "deep.json")], "deep.json: JSON nested more than 64"),
        "deep config": (["--config", str(tmp / "deep-config.json")], "deep-config.json: JSON"),
        "layers": (
            [
                "--config",
                config_file("layers.json", {"model_type": "llama", "num_hidden_layers": 10**8}),
            ],
            "llama config: 100,000,000 layers make 900,000,003 tensors",
        ),
        "low": (["--spec", spec_file("low.json", low)], "tensor 'x' (tensors[0]): low="),
        "range": (
            [
                "--config",
                config_file(
                    "range.json", {**TINY_GPT2, "initializer_range": 1e38, "torch_dtype": "float64"}
                ),
            ],
            "gpt2 config (initializer_range 1e+38 in float64): tensor 'transformer.wte.weight'",
        ),
        "shape": (["--spec", spec_file("big.json", big)], "tensor 'big' (tensors[0]): shape"),
        "dtype": (
            ["--spec", spec_file("near.json", near), "--dtype", "float64"],
            "tensor 'near' (tensors[0]): shape [1152921504606846976] of float64",
        ),
    }


CLI_CASES = ["deep spec", "deep config", "layers", "low", "range", "shape", "dtype"]


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_refuses_with_one_line_and_writes_nothing(tmp_path, capsys, case):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    argv, message = _cli_cases(inputs)[case]
    out = tmp_path / "out"
    assert cli.main(["init", *argv, "-o", str(out)]) == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err.startswith("fastinit: error: ") and printed.err.count("\n") == 1
    assert message in printed.err and "Traceback" not in printed.err
    assert os.listdir(tmp_path) == ["inputs"]  # no output, no temporary or staging file


# ---------------------------------------------------------------------------
# Memory: README.md states the bound; checked here for a metadata-heavy spec

_MEASURE = textwrap.dedent(
    """
    import json, sys
    from fastinit import checkpoint, specs

    def status(field):  # kB; VmHWM is this process's peak since exec (ru_maxrss is not)
        with open("/proc/self/status") as lines:
            return next(int(line.split()[1]) for line in lines if line.startswith(field))

    spec_path, out = sys.argv[1], sys.argv[2]
    before = status("VmRSS:")
    checkpoint.write(specs.load_spec(spec_path), out)
    peak = status("VmHWM:")
    with open(out, "rb") as handle:
        header = int.from_bytes(handle.read(8), "little")
    print(json.dumps({"grown": (peak - before) * 1024, "header": header}))
    """
)
# README.md: under 200 MB (the windows; here the file is small and so are they), plus
# 1.5 KB per tensor and 6 times the largest header.
BYTES_PER_TENSOR = 1500
HEADERS = 6
SMALL_WINDOWS = 50_000_000


@pytest.mark.parametrize(("count", "name_length"), [(30_000, 400), (60_000, 10)])
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux's VmHWM")
def test_memory_stays_within_the_stated_bound(tmp_path, count, name_length):
    """Loading and writing a metadata-heavy spec (tiny tensors, long names: megabytes of
    header) grows the peak RSS by no more than README.md says, windows included."""
    pad = "n" * name_length
    tensors = [
        {
            "name": f"model.layers.{i}.{pad}",
            "shape": [8],
            "init": "normal",
            "params": {"mean": 0.0, "std": 0.02},
            "zero_rows": [1],
        }
        for i in range(count)
    ]
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({"format": SPEC_FORMAT, "tensors": tensors}), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(spec_path), str(tmp_path / "model.safetensors")],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        env={**os.environ, "FASTINIT_NUM_THREADS": "1"},
    )
    measured = json.loads(result.stdout)
    assert measured["header"] > 5e6  # metadata-heavy indeed
    bound = SMALL_WINDOWS + HEADERS * measured["header"] + BYTES_PER_TENSOR * count
    assert measured["grown"] <= bound, (measured, bound)
