"""The presets only the recorded route builds (hf_record.spec_from_transformers).

qwen3-8b, mixtral-8x7b, deepseek-v3 and gemma-3-4b-it are model types the hand-written
builders do not know. Each preset's spec, recorded from transformers' own init on the meta
device (no memory, no weights), must name exactly the tensors save_pretrained writes, with
their shapes, in order, and hold exactly the meta model's parameters (a tied parameter
once). docs/spec.md says where each config.json was read.
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

import transformers  # noqa: E402
from fastinit.hf_configs import PRESETS, SUPPORTED_MODEL_TYPES, preset_config  # noqa: E402
from fastinit.hf_record import spec_from_transformers  # noqa: E402
from fastinit.specs import spec_from_json, spec_to_json  # noqa: E402
from transformers.modeling_utils import remove_tied_weights_from_state_dict  # noqa: E402

# The state dict's element counts. deepseek-v3's is DeepSeek's own published total
# (671,026,419,200, its 58 MoE layers' e_score_correction_bias buffers included);
# gemma-3-4b-it's is the 4.30B its model card states.
COUNTS = {
    "deepseek-v3": 671_026_419_200,
    "gemma-3-4b-it": 4_300_079_472,
    "mixtral-8x7b": 46_702_792_704,
    "qwen3-8b": 8_190_735_360,
}
RECORDED_PRESETS = sorted(COUNTS)


def test_the_recorded_presets_are_the_presets_the_builders_do_not_know():
    unknown = [n for n in PRESETS if preset_config(n)["model_type"] not in SUPPORTED_MODEL_TYPES]
    assert sorted(unknown) == RECORDED_PRESETS


@pytest.fixture(scope="module", params=RECORDED_PRESETS)
def recorded(request):
    """(name, config, spec, meta model, the state dict save_pretrained writes)."""
    config = preset_config(request.param)
    spec = spec_from_transformers(config)
    with torch.device("meta"):  # transformers writes into the dicts it gets: a fresh copy
        model = transformers.AutoModelForCausalLM.from_config(
            transformers.AutoConfig.for_model(**preset_config(request.param))
        )
    saved = remove_tied_weights_from_state_dict(model.state_dict(), model)
    return request.param, config, spec, model, saved


def test_names_and_shapes_are_the_saved_state_dict(recorded):
    _, _, spec, _, saved = recorded
    assert [t.name for t in spec.tensors] == list(saved)
    assert [t.shape for t in spec.tensors] == [tuple(v.shape) for v in saved.values()]


def test_parameter_count_equals_the_meta_model(recorded):
    name, _, spec, model, saved = recorded
    count = sum(math.prod(t.shape) for t in spec.tensors)
    assert count == sum(v.numel() for v in saved.values()) == COUNTS[name]
    # parameters() yields a tied parameter once; what the state dict adds is buffers
    # (deepseek-v3's router correction biases), which save_pretrained writes too.
    parameters = dict(model.named_parameters())
    buffers = sum(v.numel() for key, v in saved.items() if key not in parameters)
    assert count == sum(p.numel() for p in model.parameters()) + buffers
    assert buffers == (58 * 256 if name == "deepseek-v3" else 0)


def test_spec_keeps_the_config_and_its_dtype(recorded):
    name, config, spec, _, _ = recorded
    assert spec.config == config == preset_config(name)  # as published, untouched
    # torch_dtype bfloat16, but what transformers keeps float32 when it loads in bfloat16
    # (_keep_in_fp32_modules_strict: DeepSeek-V3's router correction biases)
    kept = {t.name for t in spec.tensors if t.dtype == "float32"}
    assert {t.dtype for t in spec.tensors} - {"float32"} == {"bfloat16"}
    assert kept == {t.name for t in spec.tensors if "e_score_correction_bias" in t.name}
    assert bool(kept) == (name == "deepseek-v3")
    assert spec_from_json(spec_to_json(spec)) == spec


def test_initializers_are_transformers_rules(recorded):
    name, _, spec, _, _ = recorded
    rules = {t.name: (t.init, t.params, t.zero_rows) for t in spec.tensors}
    normal = ("normal", {"mean": 0.0, "std": 0.02}, ())
    if name == "gemma-3-4b-it":
        # Gemma3TextScaledWordEmbedding with pad_token_id 0 (the text config's default).
        embedding = rules["model.language_model.embed_tokens.weight"]
        assert embedding == ("normal", {"mean": 0.0, "std": 0.02}, (0,))
        # Gemma's RMSNorm scales by (1 + weight): zeros.
        assert rules["model.language_model.norm.weight"] == ("zeros", {}, ())
        assert "lm_head.weight" not in rules  # tied
        return
    assert rules["model.embed_tokens.weight"] == normal
    assert rules["lm_head.weight"] == normal  # untied in all three
    assert rules["model.norm.weight"] == ("ones", {}, ())
    inits = {init for init, _, _ in rules.values()}
    assert inits == ({"normal", "ones", "zeros"} if name == "deepseek-v3" else {"normal", "ones"})
    if name == "deepseek-v3":
        bias = "model.layers.3.mlp.gate.e_score_correction_bias"
        assert rules[bias] == ("zeros", {}, ())
        assert "model.layers.2.mlp.gate.e_score_correction_bias" not in rules  # dense layer


PUBLISHED = {  # fields that are not shapes, as the published config.json files have them
    "qwen3-8b": {
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "head_dim": 128,
        "max_position_embeddings": 40960,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    },
    "mixtral-8x7b": {
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-05,
        "rope_theta": 1000000.0,
        "router_aux_loss_coef": 0.02,
        "sliding_window": None,
        "tie_word_embeddings": False,
    },
    "deepseek-v3": {
        "n_routed_experts": 256,
        "n_shared_experts": 1,
        "num_experts_per_tok": 8,
        "first_k_dense_replace": 3,
        "q_lora_rank": 1536,
        "kv_lora_rank": 512,
        "qk_nope_head_dim": 128,
        "qk_rope_head_dim": 64,
        "v_head_dim": 128,
        "routed_scaling_factor": 2.5,
        "topk_method": "noaux_tc",
        "scoring_func": "sigmoid",
        "max_position_embeddings": 163840,
    },
    "gemma-3-4b-it": {
        "eos_token_id": [1, 106],
        "mm_tokens_per_image": 256,
        "text_config": {
            "hidden_size": 2560,
            "intermediate_size": 10240,
            "model_type": "gemma3_text",
            "num_hidden_layers": 34,
            "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
            "sliding_window": 1024,
        },
    },
}


@pytest.mark.parametrize("name", RECORDED_PRESETS)
def test_published_fields(name):
    config = preset_config(name)
    assert {key: config.get(key) for key in PUBLISHED[name]} == PUBLISHED[name]
    # Served copies' extras are left out: nothing loads remote code or quantizes.
    assert "auto_map" not in config and "quantization_config" not in config
