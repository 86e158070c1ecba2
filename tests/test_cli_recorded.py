"""`fastinit init --config/--preset` through hf_configs.spec_for_config: the spec recorded
from transformers' own init for any model_type (any head via --model-class), the
hand-written builders without transformers, and the refusals (exit 2, one line)."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch")

import transformers  # noqa: E402
from fastinit import cli, hf_configs  # noqa: E402
from fastinit.hf_record import spec_from_transformers  # noqa: E402
from test_hf_record import _DECODER  # noqa: E402
from test_hf_record import CASES as RECORDED  # noqa: E402

LLAMA = {**_DECODER, "model_type": "llama"}
QWEN3 = {**_DECODER, "model_type": "qwen3", "head_dim": 8}
# (config, --model-class or None for the default causal LM, the class that loads it)
CASES = {
    "qwen3": (QWEN3, None, "AutoModelForCausalLM"),
    "mixtral": (
        {**_DECODER, "model_type": "mixtral", "num_local_experts": 4, "num_experts_per_tok": 2},
        None,
        "AutoModelForCausalLM",
    ),
    # The recorder's own tiny encoder and encoder-decoder, loaded by the class they ask for.
    "bert": (*RECORDED["bert"], RECORDED["bert"][1]),
    "t5": (*RECORDED["t5"], RECORDED["t5"][1]),
    # A state-space model: a computed literal (A_log) and a computed random value (dt bias).
    "mamba": (RECORDED["mamba"][0], None, "AutoModelForCausalLM"),
}


def write_config(path: Path, config: dict) -> str:
    path.write_text(json.dumps(config), encoding="utf-8")
    return str(path)


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def without_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    """`import transformers` fails from here on, as where it is not installed."""
    monkeypatch.setitem(sys.modules, "transformers", None)


@pytest.mark.parametrize("case", sorted(CASES))
def test_init_config_of_any_architecture_verifies_and_loads(tmp_path, capsys, case):
    config, model_class, loader = CASES[case]
    path = write_config(tmp_path / "config.json", config)
    output = tmp_path / "out"
    argv = ["init", "--config", path, "-o", str(output), "--seed", "4"]
    argv += [] if model_class is None else ["--model-class", model_class]
    assert cli.main(argv) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    expected = spec_from_transformers(config, model_class=loader, seed=4)
    assert f"{len(expected.tensors)} tensors" in printed.out
    assert json.loads((output / "config.json").read_text(encoding="utf-8")) == config

    assert cli.main(["verify", str(output)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("OK")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, info = getattr(transformers, loader).from_pretrained(
            output, output_loading_info=True
        )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert not info["mismatched_keys"]
    state = model.state_dict()
    for tensor in expected.tensors:  # the loaded values are the recorded rules' values
        if tensor.init == "zeros":
            assert not state[tensor.name].any(), tensor.name
        elif tensor.init == "ones":
            assert bool((state[tensor.name] == 1).all()), tensor.name
        elif tensor.init == "normal":
            assert float(state[tensor.name].std()) > 0, tensor.name
        elif tensor.init == "constant":
            np.testing.assert_array_equal(
                state[tensor.name].numpy(), np.broadcast_to(tensor.params["value"], tensor.shape)
            )


def test_llama_is_byte_identical_on_both_routes(tmp_path, monkeypatch, capsys):
    path = write_config(tmp_path / "config.json", LLAMA)
    recorded, written = tmp_path / "recorded", tmp_path / "written"
    argv = ["init", "--config", path, "--dtype", "bfloat16", "--max-shard-size", "20KB"]
    assert cli.main([*argv, "-o", str(recorded)]) == 0
    without_transformers(monkeypatch)
    assert cli.main([*argv, "-o", str(written)]) == 0
    capsys.readouterr()
    recorded_files, written_files = files_of(recorded), files_of(written)
    assert len(recorded_files) > 3  # shards, the index and config.json
    assert recorded_files == written_files


def test_spec_for_config_routes(monkeypatch):
    assert hf_configs.spec_for_config(LLAMA, seed=2) == spec_from_transformers(LLAMA, seed=2)
    qwen3 = hf_configs.spec_for_config(QWEN3)
    assert any(t.name.endswith("self_attn.q_norm.weight") for t in qwen3.tensors)
    without_transformers(monkeypatch)
    assert hf_configs.spec_for_config(LLAMA, seed=2) == hf_configs.spec_from_config(LLAMA, seed=2)
    with pytest.raises(ValueError, match=r"model_type 'qwen3' needs transformers.*fastinit\[hf\]"):
        hf_configs.spec_for_config(QWEN3)
    with pytest.raises(ValueError, match=r"model_class 'AutoModel' needs transformers"):
        hf_configs.spec_for_config(LLAMA, model_class="AutoModel")


def test_without_transformers_llama_works_and_qwen3_is_refused(tmp_path, monkeypatch, capsys):
    without_transformers(monkeypatch)
    llama = write_config(tmp_path / "llama.json", LLAMA)
    qwen3 = write_config(tmp_path / "qwen3.json", QWEN3)
    output = tmp_path / "out"
    assert cli.main(["init", "--config", llama, "-o", str(output)]) == 0
    capsys.readouterr()
    assert cli.main(["verify", str(output)]) == 0
    capsys.readouterr()
    refused = tmp_path / "refused"
    assert cli.main(["init", "--config", qwen3, "-o", str(refused)]) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.count("\n") == 1
    assert "model_type 'qwen3'" in printed.err and "fastinit[hf]" in printed.err
    assert not refused.exists()


def test_dry_run_of_a_recorded_config_writes_nothing(tmp_path, capsys):
    path = write_config(tmp_path / "config.json", QWEN3)
    output = tmp_path / "out"
    assert cli.main(["init", "--config", path, "-o", str(output), "--dry-run"]) == 0
    out = capsys.readouterr().out
    spec = spec_from_transformers(QWEN3)
    assert "(dry run, nothing written)" in out
    for tensor in spec.tensors:
        assert f"  tensor {tensor.name} {list(tensor.shape)} {tensor.dtype} " in out
    assert "self_attn.q_norm.weight" in out  # a tensor only qwen3 has
    assert not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--spec", "{tmp}/spec.json", "--model-class", "AutoModel"], "--model-class applies"),
        (["--config", "{tmp}/config.json", "--model-class", "AutoBanana"], "--model-class must"),
        (["--preset", "gpt2", "--model-class", "torch"], "--model-class must"),
    ],
)
def test_model_class_refusals_exit_2(tmp_path, capsys, extra, message):
    write_config(tmp_path / "config.json", QWEN3)
    write_config(tmp_path / "spec.json", {"format": 1, "tensors": []})
    argv = ["init", *[arg.format(tmp=tmp_path) for arg in extra], "-o", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.startswith("fastinit: error: ")
    assert message in printed.err and printed.err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_model_class_selects_the_head(tmp_path, capsys):
    path = write_config(tmp_path / "config.json", LLAMA)
    output = tmp_path / "out"
    argv = ["init", "--config", path, "-o", str(output), "--model-class", "AutoModel"]
    assert cli.main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "lm_head" not in out and "  tensor embed_tokens.weight " in out
    assert cli.main(argv) == 0
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = transformers.AutoModel.from_pretrained(output, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]


def test_a_huge_layer_count_is_refused_before_any_module_is_built():
    config = {**QWEN3, "num_hidden_layers": 10**8}
    with pytest.raises(ValueError, match=r"qwen3 config: num_hidden_layers 100,000,000 makes"):
        hf_configs.spec_for_config(config)


def test_the_recorded_route_neither_changes_nor_rewrites_the_config():
    # transformers adds rope_theta into rope_scaling when it builds a config: the caller's
    # dict must stay as it was, and the spec (so config.json) must keep it exactly.
    from fastinit import hf_configs, hf_record

    config = hf_configs.preset_config("llama-3.2-1b")
    assert "rope_scaling" in config
    before = json.loads(json.dumps(config))
    spec = hf_record.spec_from_transformers(config)
    assert config == before
    assert spec.config == before
