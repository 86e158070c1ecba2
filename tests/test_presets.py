"""Presets and `fastinit init --dry-run`.

Every embedded preset is a config transformers accepts, and its spec has exactly the
parameters of the model transformers builds from it (on the meta device: no memory).
A dry run prints the files the writer would make (checkpoint.plan, the writer's own
layout) for every route (--preset, --config, --spec) and creates nothing.
"""

from __future__ import annotations

import json
import math
import re

import pytest
from fastinit import checkpoint, cli, specs
from fastinit.specs import PRESETS, preset_config, spec_from_config, spec_to_json

# The published models' parameter counts (each also equals transformers' count below).
PARAMETERS = {
    "gpt2": 124_439_808,
    "llama-3-8b": 8_030_261_248,
    "llama-3.1-8b-instruct": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.1-405b": 405_853_388_800,
    "llama-3.2-1b": 1_235_814_400,
    "mistral-7b": 7_241_732_096,
    "qwen2-0.5b": 494_032_768,
    # Built by the recorded route only: tests/test_presets_recorded.py checks these.
    "deepseek-v3": 671_026_419_200,
    "gemma-3-4b-it": 4_300_079_472,
    "mixtral-8x7b": 46_702_792_704,
    "qwen3-8b": 8_190_735_360,
}
# The presets the hand-written builders (spec_from_config) know.
HAND_WRITTEN_PRESETS = [
    name for name in PRESETS if preset_config(name)["model_type"] in specs.SUPPORTED_MODEL_TYPES
]


def parameter_count(spec: specs.ModelSpec) -> int:
    return sum(math.prod(t.shape) for t in spec.tensors)


def test_every_preset_has_a_count():
    assert sorted(PARAMETERS) == sorted(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_with_transformers(name):
    transformers = pytest.importorskip("transformers")
    config = preset_config(name)
    hf_config = transformers.AutoConfig.for_model(**config)
    assert hf_config.model_type == config["model_type"]
    text_config = hf_config.get_text_config()  # gemma-3-4b-it: its text_config's default
    assert text_config.vocab_size == config.get("vocab_size", text_config.vocab_size)
    assert hf_config.tie_word_embeddings is config.get("tie_word_embeddings", True)


@pytest.mark.parametrize("name", HAND_WRITTEN_PRESETS)
def test_preset_parameters_equal_the_meta_model(name):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    config = preset_config(name)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(
            transformers.AutoConfig.for_model(**config)
        )
    # parameters() yields a tied parameter once, as save_pretrained writes it once.
    expected = sum(p.numel() for p in model.parameters())
    spec = spec_from_config(config)
    assert parameter_count(spec) == expected == PARAMETERS[name]
    assert len(spec.tensors) == len(list(model.parameters()))


@pytest.mark.parametrize("name", ["llama-3.1-8b-instruct", "llama-3.1-70b", "llama-3.1-405b"])
def test_llama_3_1_presets_published_fields(name):
    """The fields that are not shapes, as the published configs have them (docs/spec.md)."""
    config = preset_config(name)
    assert config["rope_theta"] == 500000.0
    assert config["rope_scaling"] == {
        "factor": 8.0,
        "high_freq_factor": 4.0,
        "low_freq_factor": 1.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    }
    assert config["max_position_embeddings"] == 131072
    assert config["rms_norm_eps"] == 1e-05
    assert config["bos_token_id"] == 128000
    assert config["torch_dtype"] == "bfloat16"
    assert config["tie_word_embeddings"] is False


# The non-shape fields of the older presets, as the published files have them.
PUBLISHED = {
    "gpt2": {"bos_token_id": 50256, "eos_token_id": 50256, "layer_norm_epsilon": 1e-05},
    "llama-3-8b": {
        "bos_token_id": 128000,
        "eos_token_id": 128001,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    "llama-3.2-1b": {
        "bos_token_id": 128000,
        "eos_token_id": 128001,
        "max_position_embeddings": 131072,
        "rms_norm_eps": 1e-05,
        "rope_theta": 500000.0,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    },
    "mistral-7b": {
        "bos_token_id": 1,
        "eos_token_id": 2,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    "qwen2-0.5b": {
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "max_position_embeddings": 131072,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 131072,
        "use_sliding_window": False,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    },
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_older_presets_published_fields(name):
    config = preset_config(name)
    assert {key: config.get(key) for key in PUBLISHED[name]} == PUBLISHED[name]


# ---------------------------------------------------------------------------
# --dry-run

FILE_LINE = re.compile(r"^  file (\S+): (\d+) tensors, ([\d,]+) bytes$", re.MULTILINE)


def dry_run(capsys, *argv: str) -> str:
    assert cli.main(["init", *argv, "--dry-run"]) == 0
    return capsys.readouterr().out


def planned(spec: specs.ModelSpec, max_shard_size: int | None) -> list[tuple[str, int, int]]:
    layouts = checkpoint.plan(
        spec, max_shard_size=max_shard_size, metadata=checkpoint.metadata_of(spec)
    )
    return [(layout.name, len(layout.entries), layout.size) for layout in layouts]


def printed_files(out: str) -> list[tuple[str, int, int]]:
    return [(n, int(k), int(b.replace(",", ""))) for n, k, b in FILE_LINE.findall(out)]


def test_dry_run_lists_the_planned_shards_and_writes_nothing(tmp_path, capsys):
    output = tmp_path / "gpt2-init"
    out = dry_run(capsys, "--preset", "gpt2", "-o", str(output), "--max-shard-size", "100MB")
    spec = spec_from_config(preset_config("gpt2"))
    files = planned(spec, checkpoint.parse_size("100MB"))
    assert len(files) > 1  # sharded: the index is listed too
    assert printed_files(out) == files
    assert "  index model.safetensors.index.json" in out
    assert "  config config.json" in out
    total = sum(size for _, _, size in files)
    assert f"total {total:,} bytes in {len(files)} file(s), 124,439,808 parameters" in out
    for tensor in spec.tensors:
        assert f"  tensor {tensor.name} {list(tensor.shape)} {tensor.dtype} " in out
    assert not output.exists()
    assert list(tmp_path.iterdir()) == []


def test_dry_run_matches_what_write_writes(tmp_path, capsys):
    spec = spec_from_config(preset_config("gpt2"))
    spec = specs.ModelSpec(spec.seed, spec.tensors[:6], spec.config)  # a few MB
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec_to_json(spec)), encoding="utf-8")
    output = tmp_path / "out"
    out = dry_run(capsys, "--spec", str(path), "-o", str(output), "--max-shard-size", "50MB")
    assert not output.exists()
    result = checkpoint.write(spec, output, max_shard_size="50MB", progress=False)
    written = [(p.name, p.stat().st_size) for p in result.files]
    assert [(name, size) for name, _, size in printed_files(out)] == written
    assert (result.index is not None) == ("  index " in out)


def test_dry_run_of_a_config_file_and_a_single_file(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(preset_config("qwen2-0.5b")), encoding="utf-8")
    output = tmp_path / "model.safetensors"
    out = dry_run(capsys, "--config", str(config), "-o", str(output), "--dtype", "float32")
    spec = spec_from_config(preset_config("qwen2-0.5b"), dtype="float32")
    [(_, count, size)] = planned(spec, None)
    assert printed_files(out) == [("model.safetensors", count, size)]
    assert "  index " not in out and "  config " not in out  # one file: no index, no config
    assert "494,032,768 parameters" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_dry_run_of_405b_prints_its_exact_size_and_writes_nothing(tmp_path, capsys):
    output = tmp_path / "llama-405b"
    out = dry_run(capsys, "--preset", "llama-3.1-405b", "-o", str(output), "--seed", "3")
    spec = spec_from_config(preset_config("llama-3.1-405b"))
    files = printed_files(out)
    assert files == planned(spec, checkpoint.parse_size("5GB"))
    assert len(files) > 100
    total = sum(size for _, _, size in files)
    assert total > 2 * 405_853_388_800  # bfloat16 weights and their headers
    assert f"1137 tensors, 405,853,388,800 parameters, seed 3 -> {output}" in out
    assert f"total {total:,} bytes in {len(files)} file(s), 405,853,388,800 parameters" in out
    assert not output.exists()
    assert list(tmp_path.iterdir()) == []


def test_dry_run_refusals_are_the_write_refusals(tmp_path, capsys):
    output = str(tmp_path / "x")
    assert cli.main(["init", "--preset", "llama-4", "-o", output, "--dry-run"]) == 2
    assert "unknown preset 'llama-4'" in capsys.readouterr().err
    argv = ["init", "--preset", "gpt2", "-o", output, "--dry-run", "--max-shard-size", "lots"]
    assert cli.main(argv) == 2
    assert "max_shard_size" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_dry_run_refuses_what_the_write_refuses(tmp_path, capsys):
    missing = tmp_path / "no-such-folder" / "out"
    assert cli.main(["init", "--preset", "gpt2", "-o", str(missing), "--dry-run"]) == 2
    assert f"directory {missing.parent} does not exist" in capsys.readouterr().err
    output = tmp_path / "out"
    output.mkdir()
    (output / "model.safetensors").write_bytes(b"old")
    assert cli.main(["init", "--preset", "gpt2", "-o", str(output), "--dry-run"]) == 2
    assert "model.safetensors exists; pass --force" in capsys.readouterr().err
    out = dry_run(capsys, "--preset", "gpt2", "-o", str(output), "--force")
    assert "124,439,808 parameters" in out
    assert [p.name for p in output.iterdir()] == ["model.safetensors"]
    assert (output / "model.safetensors").read_bytes() == b"old"
    single = tmp_path / "model.safetensors"
    single.mkdir()
    assert cli.main(["init", "--preset", "gpt2", "-o", str(single), "--dry-run"]) == 2
    assert "is a directory" in capsys.readouterr().err
