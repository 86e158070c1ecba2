"""Model specs: the JSON schema and its checks, and specs from Hugging Face configs.

The config -> spec rules are checked against transformers itself (an optional test
dependency): names, shapes and order against the state dict save_pretrained would
write for a model built on the meta device, and each tensor's initializer against
the values transformers' own _init_weights gives a tiny model on the CPU.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import math

import fastinit
import numpy as np
import pytest
from fastinit import specs
from fastinit.specs import (
    INITIALIZERS,
    PRESETS,
    SPEC_FORMAT,
    ModelSpec,
    TensorSpec,
    load_spec,
    preset_config,
    spec_digest,
    spec_from_config,
    spec_from_json,
    spec_to_json,
    with_dtype,
    with_seed,
)

# Parameter counts of the published models (also checked against transformers below).
PRESET_COUNTS = {
    "gpt2": 124_439_808,
    "llama-3-8b": 8_030_261_248,
    "mistral-7b": 7_241_732_096,
    "qwen2-0.5b": 494_032_768,
    "llama-3.2-1b": 1_235_814_400,
    "llama-3.1-8b-instruct": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.1-405b": 405_853_388_800,
    # Built by the recorded route only (tests/test_presets_recorded.py checks these).
    "deepseek-v3": 671_026_419_200,
    "gemma-3-4b-it": 4_300_079_472,
    "mixtral-8x7b": 46_702_792_704,
    "qwen3-8b": 8_190_735_360,
}
# The presets the hand-written builders (spec_from_config) know.
HAND_WRITTEN_PRESETS = [
    name for name in PRESETS if preset_config(name)["model_type"] in specs.SUPPORTED_MODEL_TYPES
]

TINY = {"vocab_size": 96, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2}
TINY_CONFIGS = {
    "llama-biases": {
        "model_type": "llama", **TINY, "num_attention_heads": 4, "num_key_value_heads": 2,
        "attention_bias": True, "mlp_bias": True,
    },
    "llama-2-pad": {  # Llama 2 style: no GQA, pad_token_id set, float16
        "model_type": "llama", **TINY, "num_attention_heads": 4, "pad_token_id": 0,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float16",
    },
    "llama-head-dim-tied": {
        "model_type": "llama", **TINY, "num_attention_heads": 4, "num_key_value_heads": 1,
        "head_dim": 12, "tie_word_embeddings": True, "pad_token_id": 95,
    },
    "llama-negative-pad": {"model_type": "llama", **TINY, "num_attention_heads": 4,
                           "pad_token_id": -1},
    "mistral": {  # attention_bias is not a Mistral field: no biases whatever it says
        "model_type": "mistral", **TINY, "num_attention_heads": 4, "num_key_value_heads": 2,
        "attention_bias": True, "sliding_window": 16,
    },
    "mistral-default-kv": {"model_type": "mistral", **TINY, "num_attention_heads": 8,
                           "head_dim": 0},
    "qwen2-tied": {
        "model_type": "qwen2", **TINY, "num_attention_heads": 4, "num_key_value_heads": 2,
        "tie_word_embeddings": True, "pad_token_id": 7,
    },
    "qwen2-untied": {
        "model_type": "qwen2", **TINY, "num_attention_heads": 4, "num_key_value_heads": 2,
        "tie_word_embeddings": False, "head_dim": 16,
    },
    "gpt2": {"model_type": "gpt2", "vocab_size": 96, "n_positions": 40, "n_embd": 32,
             "n_layer": 2, "n_head": 4, "n_inner": None, "pad_token_id": 3},
    "gpt2-inner-untied": {"model_type": "gpt2", "vocab_size": 96, "n_positions": 40,
                          "n_embd": 32, "n_layer": 2, "n_head": 4, "n_inner": 80,
                          "tie_word_embeddings": False},
    "gpt2-aliases-cross": {"model_type": "gpt2", "vocab_size": 96, "hidden_size": 32,
                           "num_hidden_layers": 2, "num_attention_heads": 4,
                           "max_position_embeddings": 24, "add_cross_attention": True},
}  # fmt: skip
DEFAULT_CONFIGS = {f"{t}-defaults": {"model_type": t} for t in specs.SUPPORTED_MODEL_TYPES}


def parameter_count(spec: ModelSpec) -> int:
    return sum(math.prod(t.shape) for t in spec.tensors)


def names_and_shapes(spec: ModelSpec) -> list[tuple[str, tuple[int, ...]]]:
    return [(t.name, t.shape) for t in spec.tensors]


def transformers_model(config: dict, *, meta: bool):
    """transformers' causal-LM model for a config.json, with its weights initialized
    unless meta, and the state dict save_pretrained would write."""
    pytest.importorskip("transformers")
    import torch
    import transformers

    hf_config = transformers.AutoConfig.for_model(**config)
    if meta:
        with torch.device("meta"):
            model = transformers.AutoModelForCausalLM.from_config(hf_config)
    else:
        model = transformers.AutoModelForCausalLM.from_config(hf_config)
    state = model.state_dict()
    try:
        from transformers.modeling_utils import remove_tied_weights_from_state_dict
    except ImportError:  # not every version has it: drop what the model ties
        tied = getattr(model, "all_tied_weights_keys", None) or {}
        state = {k: v for k, v in state.items() if k not in tied}
    else:
        state = remove_tied_weights_from_state_dict(state, model)
    return model, state


# ---------------------------------------------------------------------------
# Presets


def test_presets_are_the_shipped_files():
    folder = importlib.resources.files("fastinit") / "presets"
    shipped = sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))
    assert shipped == sorted(PRESETS) == sorted(PRESET_COUNTS)


@pytest.mark.parametrize("name", HAND_WRITTEN_PRESETS)
def test_preset_parameter_count(name):
    spec = spec_from_config(preset_config(name))
    assert parameter_count(spec) == PRESET_COUNTS[name]
    assert spec.config == preset_config(name)
    assert len({t.name for t in spec.tensors}) == len(spec.tensors)
    assert spec_from_json(spec_to_json(spec)) == spec


@pytest.mark.parametrize("name", HAND_WRITTEN_PRESETS)
def test_preset_matches_transformers(name):
    config = preset_config(name)
    model, state = transformers_model(config, meta=True)
    spec = spec_from_config(config)
    assert names_and_shapes(spec) == [(k, tuple(v.shape)) for k, v in state.items()]
    assert parameter_count(spec) == sum(p.numel() for p in model.parameters())


def test_preset_dtypes_and_ties():
    assert {t.dtype for t in spec_from_config(preset_config("gpt2")).tensors} == {"float32"}
    for name in ("llama-3-8b", "mistral-7b", "qwen2-0.5b", "llama-3.2-1b"):
        spec = spec_from_config(preset_config(name))
        assert {t.dtype for t in spec.tensors} == {"bfloat16"}
        tied = preset_config(name)["tie_word_embeddings"]
        assert ("lm_head.weight" in {t.name for t in spec.tensors}) is not tied


def test_preset_config_errors_and_copies():
    with pytest.raises(ValueError, match="presets: gpt2, llama-3-8b"):
        preset_config("llama-4")
    config = preset_config("gpt2")
    config["n_layer"] = 1
    assert preset_config("gpt2")["n_layer"] == 12


# ---------------------------------------------------------------------------
# Configs -> specs, against transformers


@pytest.mark.parametrize("key", [*TINY_CONFIGS, *DEFAULT_CONFIGS])
def test_names_and_shapes_match_transformers(key):
    config = {**TINY_CONFIGS, **DEFAULT_CONFIGS}[key]
    model, state = transformers_model(config, meta=True)
    spec = spec_from_config(config)
    assert names_and_shapes(spec) == [(k, tuple(v.shape)) for k, v in state.items()]
    assert parameter_count(spec) == sum(p.numel() for p in model.parameters())


def _check_normal(values: np.ndarray, mean: float, std: float, where: str) -> None:
    """Sample mean and std within 6 standard errors; untruncated (reaches past 2.5 std)."""
    n = values.size
    assert n >= 500, where
    assert abs(values.mean() - mean) < 6 * std / math.sqrt(n), where
    assert abs(values.std() / std - 1) < 6 / math.sqrt(2 * n), where
    if n >= 2000:
        assert np.abs(values - mean).max() > 2.5 * std, where


def _check_rule(tensor: TensorSpec, values: np.ndarray, where: str) -> None:
    values = values.astype(np.float64)
    if tensor.init == "zeros":
        assert not values.any(), where
    elif tensor.init == "ones":
        assert (values == 1).all(), where
    else:
        assert tensor.init == "normal", where
        rows = [r for r in range(tensor.shape[0]) if r not in tensor.zero_rows]
        assert not values[list(tensor.zero_rows)].any(), where
        assert all(values[r].any() for r in rows), where  # no other row is zeroed
        _check_normal(values[rows], tensor.params["mean"], tensor.params["std"], where)


def _sample(tensor: TensorSpec, seed: int) -> np.ndarray:
    """What the spec means: the sampler on stream stream_id(name), then zero_rows."""
    if tensor.init in ("zeros", "ones"):
        return getattr(fastinit, tensor.init)(tensor.shape, dtype=tensor.dtype)
    sampler = getattr(fastinit, tensor.init)
    values = sampler(tensor.shape, seed, stream=tensor.name, dtype=tensor.dtype, **tensor.params)
    values[list(tensor.zero_rows)] = 0
    return values


INIT_CONFIGS = {
    "llama": {"model_type": "llama", "vocab_size": 200, "hidden_size": 64,
              "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
              "num_key_value_heads": 2, "attention_bias": True, "mlp_bias": True,
              "pad_token_id": 5, "initializer_range": 0.05},
    "qwen2-tied": {"model_type": "qwen2", "vocab_size": 200, "hidden_size": 64,
                   "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
                   "num_key_value_heads": 2, "tie_word_embeddings": True, "pad_token_id": 199},
    "mistral": {"model_type": "mistral", "vocab_size": 200, "hidden_size": 64,
                "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
                "num_key_value_heads": 2, "initializer_range": 0.1},
    "gpt2": {"model_type": "gpt2", "vocab_size": 200, "n_positions": 64, "n_embd": 64,
             "n_layer": 8, "n_head": 4, "pad_token_id": 3, "tie_word_embeddings": False,
             "initializer_range": 0.04},
}  # fmt: skip


@pytest.mark.parametrize("key", INIT_CONFIGS)
def test_init_rules_match_transformers(key):
    config = INIT_CONFIGS[key]
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    _, state = transformers_model(config, meta=False)
    spec = spec_from_config(config, seed=3)
    assert [t.name for t in spec.tensors] == list(state)
    for tensor in spec.tensors:
        reference = state[tensor.name].detach().numpy()
        _check_rule(tensor, reference, f"transformers {tensor.name}")
        _check_rule(tensor, _sample(tensor, spec.seed), f"fastinit {tensor.name}")


@pytest.mark.parametrize("key", ["llama-head-dim-tied", "qwen2-untied", "gpt2"])
def test_transformers_loads_the_spec_exactly(key, tmp_path):
    """A checkpoint with exactly the spec's tensors loads with no missing, unexpected or
    mismatched key, and the model holds the spec's values."""
    pytest.importorskip("transformers")
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    import torch
    import transformers

    spec = spec_from_config(TINY_CONFIGS[key], dtype="float32", seed=11)
    values = {t.name: np.ascontiguousarray(_sample(t, spec.seed)) for t in spec.tensors}
    safetensors_numpy.save_file(values, tmp_path / "model.safetensors", {"format": "pt"})
    (tmp_path / "config.json").write_text(json.dumps(spec.config), encoding="utf-8")
    model, info = transformers.AutoModelForCausalLM.from_pretrained(
        tmp_path, output_loading_info=True
    )
    assert not any(info.values()), info
    state = model.state_dict()
    for name, array in values.items():
        assert torch.equal(state[name], torch.from_numpy(array)), name


def test_init_rules_spelled_out():
    gpt2 = {t.name: t for t in spec_from_config(INIT_CONFIGS["gpt2"]).tensors}
    scaled = {"init": "normal", "params": {"mean": 0.0, "std": 0.04 / math.sqrt(16)}}
    for name in ("transformer.h.7.attn.c_proj.weight", "transformer.h.0.mlp.c_proj.weight"):
        assert {"init": gpt2[name].init, "params": gpt2[name].params} == scaled
    assert gpt2["transformer.h.0.attn.c_attn.weight"].params["std"] == 0.04
    assert gpt2["transformer.h.0.attn.c_attn.weight"].shape == (64, 192)  # Conv1D: (in, out)
    assert gpt2["transformer.wte.weight"].zero_rows == ()  # GPT-2 has no padding_idx
    assert gpt2["transformer.ln_f.bias"].init == "zeros"
    llama = {t.name: t for t in spec_from_config(INIT_CONFIGS["llama"]).tensors}
    assert llama["model.embed_tokens.weight"].zero_rows == (5,)
    assert llama["lm_head.weight"].zero_rows == ()
    assert llama["model.layers.0.self_attn.o_proj.bias"].init == "zeros"
    assert llama["model.norm.weight"].init == "ones"
    negative = spec_from_config(TINY_CONFIGS["llama-negative-pad"])
    assert negative.tensors[0].zero_rows == (95,)  # nn.Embedding: padding_idx += vocab
    zero_range = spec_from_config({**INIT_CONFIGS["llama"], "initializer_range": 0})
    assert zero_range.tensors[0].params["std"] == 0.02  # `initializer_range or 0.02`


def test_config_dtype_and_seed():
    assert {t.dtype for t in spec_from_config(TINY_CONFIGS["llama-2-pad"]).tensors} == {"float16"}
    assert spec_from_config({**TINY_CONFIGS["mistral"], "dtype": "float64"}).tensors[0].dtype == (
        "float64"
    )
    odd = {**TINY_CONFIGS["mistral"], "torch_dtype": "float8_e4m3fn"}
    assert spec_from_config(odd).tensors[0].dtype == "float32"
    spec = spec_from_config(odd, dtype="bfloat16", seed=2**64 - 1)
    assert spec.seed == 2**64 - 1 and {t.dtype for t in spec.tensors} == {"bfloat16"}
    assert spec.config == odd and spec.config is not odd


@pytest.mark.parametrize(
    ("config", "options", "error", "match"),
    [
        ({"model_type": "bert"}, {}, ValueError, "supported: gpt2, llama, mistral, qwen2"),
        ({}, {}, ValueError, "model_type None"),
        ({"model_type": "llama"}, {"dtype": "int8"}, ValueError, "dtype must be one of"),
        ({"model_type": "llama"}, {"seed": -1}, ValueError, "seed"),
        ({"model_type": "llama"}, {"seed": 1.0}, TypeError, "seed"),
        ({"model_type": "llama", "pad_token_id": 32000}, {}, ValueError, "pad_token_id"),
        ({"model_type": "llama", "vocab_size": 1.5}, {}, ValueError, "vocab_size"),
        ({"model_type": "llama", "mlp_bias": 1}, {}, ValueError, "mlp_bias"),
        ({"model_type": "gpt2", "n_head": 5}, {}, ValueError, "not divisible"),
        ({"model_type": "gpt2", "initializer_range": None}, {}, ValueError, "initializer"),
    ],
)
def test_config_errors(config, options, error, match):
    with pytest.raises(error, match=match):
        spec_from_config(config, **options)


# ---------------------------------------------------------------------------
# The JSON document


def document() -> dict:
    return {
        "format": SPEC_FORMAT,
        "seed": 42,
        "dtype": "bfloat16",
        "tensors": [
            {"name": "embed", "shape": [10, 4], "init": "normal", "params": {"std": 0.02},
             "zero_rows": [0]},
            {"name": "w", "shape": [4, 4], "dtype": "float32", "init": "glorot_uniform"},
            {"name": "b", "shape": [4], "init": "zeros"},
            {"name": "scale", "shape": [], "init": "constant", "params": {"value": 2}},
            {"name": "t", "shape": [3, 5], "init": "truncated_normal",
             "params": {"std": 0.5, "a": -1, "b": None}},
            {"name": "v", "shape": [8, 3, 3], "init": "variance_scaling",
             "params": {"scale": 2.0, "mode": "fan_out", "distribution": "uniform",
                        "layout": "jax"}},
        ],
        "config": {"model_type": "custom"},
    }  # fmt: skip


def test_document_parses_with_defaults():
    spec = spec_from_json(document())
    assert spec.seed == 42 and spec.config == {"model_type": "custom"}
    assert [t.dtype for t in spec.tensors] == ["bfloat16", "float32", *["bfloat16"] * 4]
    embed, w, b, scale, t, _ = spec.tensors
    assert embed == TensorSpec("embed", (10, 4), "bfloat16", "normal", {"std": 0.02}, (0,))
    assert w.params == {} and w.zero_rows == () and b.shape == (4,) and scale.shape == ()
    assert scale.params == {"value": 2.0} and type(scale.params["value"]) is float
    assert t.params == {"std": 0.5, "a": -1.0, "b": None}
    bare = {"format": SPEC_FORMAT, "tensors": [{"name": "x", "shape": [2], "init": "ones"}]}
    assert spec_from_json(bare) == ModelSpec(0, (TensorSpec("x", (2,), "float32", "ones", {}),))


def test_initializer_table_matches_the_samplers():
    import inspect

    for init, params in INITIALIZERS.items():
        function = getattr(fastinit, init)
        accepted = set(inspect.signature(function).parameters)
        assert set(params) <= accepted, init


def test_json_round_trip_and_files(tmp_path):
    spec = spec_from_json(document())
    assert spec_from_json(spec_to_json(spec)) == spec
    text = json.dumps(spec_to_json(spec))
    assert spec_from_json(json.loads(text)) == spec
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(document(), indent=2), encoding="utf-8")
    assert load_spec(path) == spec
    assert load_spec(str(path)) == spec
    path.write_text('{"format": "fastinit.spec/1", "seed": 1, "seed": 2}', encoding="utf-8")
    with pytest.raises(ValueError, match="'seed' twice"):
        load_spec(path)
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_spec(path)
    path.write_text(json.dumps(preset_config("gpt2")), encoding="utf-8")
    with pytest.raises(ValueError, match="spec_from_config"):
        load_spec(path)


def test_digest():
    spec = spec_from_json(document())
    digest = spec_digest(spec)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert spec_digest(spec_from_json(spec_to_json(spec))) == digest
    assert spec_digest(spec_from_json(copy.deepcopy(document()))) == digest
    reordered = document()
    reordered["tensors"][0] = dict(reversed(list(reordered["tensors"][0].items())))
    assert spec_digest(spec_from_json(reordered)) == digest  # key order is not content
    changed = [
        with_seed(spec, 43),
        with_dtype(spec, "float32"),
        spec._replace(config=None),
    ]
    first = spec.tensors[0]
    for tensor in (
        first._replace(shape=(10, 5)),
        first._replace(params={"std": 0.03}),
        first._replace(params={"std": 0.02, "mean": 0.0}),
        first._replace(init="uniform", params={}),
        first._replace(zero_rows=()),
        first._replace(name="embed2"),
    ):
        changed.append(spec._replace(tensors=(tensor, *spec.tensors[1:])))
    digests = {spec_digest(s) for s in changed}
    assert digest not in digests and len(digests) == len(changed)
    # Numbers are canonical: 2 and 2.0 are the same parameter.
    as_int = spec._replace(tensors=(first._replace(params={"std": 1}), *spec.tensors[1:]))
    as_float = spec._replace(tensors=(first._replace(params={"std": 1.0}), *spec.tensors[1:]))
    assert spec_digest(as_int) == spec_digest(as_float)
    assert spec_digest(spec_from_config(preset_config("gpt2"))) == spec_digest(
        spec_from_config(preset_config("gpt2"))
    )


def test_adding_a_tensor_changes_no_other():
    base = spec_from_json(document())
    grown = document()
    grown["tensors"].insert(0, {"name": "new", "shape": [7, 7], "init": "normal"})
    grown = spec_from_json(grown)
    assert grown.tensors[1:] == base.tensors
    old_entries = spec_to_json(base)["tensors"]
    assert spec_to_json(grown)["tensors"][1:] == old_entries
    for entry in old_entries:  # nothing positional: the stream is the name's
        assert set(entry) <= {"name", "shape", "dtype", "init", "params", "zero_rows"}
    embed = base.tensors[0]
    alone = _sample(embed, base.seed)
    np.testing.assert_array_equal(alone, _sample(grown.tensors[1], grown.seed))
    expected = fastinit.normal(
        (10, 4), 42, std=0.02, dtype="bfloat16", stream=fastinit.stream_id("embed")
    )
    expected[0] = 0
    np.testing.assert_array_equal(alone, expected)


def test_with_dtype_and_seed():
    spec = spec_from_json(document())
    assert {t.dtype for t in with_dtype(spec, "float64").tensors} == {"float64"}
    assert with_dtype(spec, "float64").config == spec.config
    assert with_seed(spec, 7).seed == 7 and with_seed(spec, 7).tensors == spec.tensors
    with pytest.raises(ValueError, match="dtype must be one of"):
        with_dtype(spec, "fp8")
    with pytest.raises(TypeError, match="seed"):
        with_seed(spec, True)
    with pytest.raises(ValueError, match=r"2\^64"):
        with_seed(spec, 2**64)
    assert specs.check_spec(spec) == spec


def _mutated(index: int, **changes) -> dict:
    doc = document()
    for key, value in changes.items():
        if value is _DELETE:
            del doc["tensors"][index][key]
        else:
            doc["tensors"][index][key] = value
    return doc


_DELETE = object()

# (document, exception, text the message must hold)
TENSOR_ERRORS = {
    "duplicate": (_mutated(2, name="embed"), ValueError, r"'embed' \(tensors\[2\]\).*duplicate"),
    "metadata": (_mutated(1, name="__metadata__"), ValueError, "'__metadata__'.*reserved"),
    "empty name": (_mutated(1, name=""), TypeError, r"tensors\[1\]"),
    "no name": (_mutated(1, name=_DELETE), TypeError, r"tensors\[1\]"),
    "unknown init": (_mutated(1, init="xavier"), ValueError, "'w'.*unknown initializer"),
    "unknown param": (_mutated(0, params={"sd": 1.0}), ValueError, "'embed'.*'sd'"),
    "param of other init": (_mutated(2, params={"std": 1.0}), ValueError, "'b'.*no parameter"),
    "float dim": (_mutated(1, shape=[4.0, 4]), TypeError, r"'w'.*shape\[0\]"),
    "bool dim": (_mutated(1, shape=[4, True]), TypeError, r"'w'.*shape\[1\]"),
    "negative dim": (_mutated(1, shape=[4, -1]), ValueError, r"'w'.*shape\[1\] must be >= 0"),
    "str shape": (_mutated(1, shape="44"), TypeError, "'w'.*shape"),
    "huge shape": (_mutated(1, shape=[2**32, 2**32]), ValueError, "'w'.*2\\^63"),
    "no shape": (_mutated(1, shape=_DELETE), ValueError, "'w'.*shape is missing"),
    "bad dtype": (_mutated(1, dtype="float8"), ValueError, "'w'.*dtype must be one of"),
    "int dtype": (_mutated(1, dtype="int32"), ValueError, "'w'.*dtype"),
    "row out of range": (_mutated(0, zero_rows=[10]), ValueError, "'embed'.*out of range"),
    "negative row": (_mutated(0, zero_rows=[-1]), ValueError, "'embed'.*out of range"),
    "float row": (_mutated(0, zero_rows=[1.0]), TypeError, "'embed'.*zero_rows"),
    "repeated row": (_mutated(0, zero_rows=[1, 1]), ValueError, "'embed'.*twice"),
    "row of 0-d": (_mutated(3, zero_rows=[0]), ValueError, "'scale'.*at least one axis"),
    "bool param": (_mutated(0, params={"std": True}), TypeError, "'embed'.*params.std"),
    "str param": (_mutated(0, params={"std": "0.02"}), TypeError, "'embed'.*params.std"),
    "nan param": (_mutated(0, params={"std": float("nan")}), ValueError, "'embed'.*finite"),
    "none param": (_mutated(0, params={"std": None}), TypeError, "'embed'.*params.std"),
    "list param": (_mutated(5, params={"mode": ["fan_in"]}), TypeError, "'v'.*params.mode"),
    "params not dict": (_mutated(0, params=[0.02]), TypeError, "'embed'.*params"),
    "constant needs value": (_mutated(3, params={}), ValueError, "'scale'.*'value'"),
    "unknown field": (_mutated(1, stream=3), ValueError, "'w'.*unknown field.*'stream'"),
    # Checked by the sampler itself, on an empty region: nothing is sampled.
    "negative std": (_mutated(0, params={"std": -1.0}), ValueError, "'embed'.*std"),
    "bad mode": (_mutated(5, params={"mode": "fan_sum"}), ValueError, "'v'.*mode"),
    "no fans of 1-d": (_mutated(2, init="he_normal"), ValueError, "'b'.*fan"),
    "too big for float16": (
        _mutated(0, dtype="float16", params={"std": 1e5}),
        ValueError,
        "'embed'.*float16",
    ),
    "empty bounds": (_mutated(4, params={"a": 1.0, "b": 0.0}), ValueError, "'t'.*a must be < b"),
    "entry not object": (
        {**document(), "tensors": [document()["tensors"][0], ["w", [4, 4]]]},
        TypeError,
        r"tensors\[1\] must be a JSON object",
    ),
}


@pytest.mark.parametrize("case", TENSOR_ERRORS)
def test_tensor_errors_name_the_tensor(case):
    doc, error, match = TENSOR_ERRORS[case]
    with pytest.raises(error, match=match):
        spec_from_json(doc)


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"format": "fastinit.spec/2"}, ValueError, "format must be 'fastinit.spec/1'"),
        ({"format": None}, ValueError, "format"),
        ({"seed": -1}, ValueError, r"\[0, 2\^64\)"),
        ({"seed": 2**64}, ValueError, r"\[0, 2\^64\)"),
        ({"seed": 1.0}, TypeError, "seed must be an integer"),
        ({"seed": True}, TypeError, "seed must be an integer"),
        ({"seed": "1"}, TypeError, "seed must be an integer"),
        ({"dtype": "float8"}, ValueError, "spec dtype"),
        ({"tensors": []}, ValueError, "must not be empty"),
        ({"tensors": {"w": {}}}, TypeError, "tensors must be a list"),
        ({"config": [1]}, TypeError, "config must be a JSON object"),
        ({"config": {"x": float("inf")}}, ValueError, "config is not plain JSON"),
        ({"name": "model"}, ValueError, "unknown spec field"),
    ],
)
def test_document_errors(changes, error, match):
    with pytest.raises(error, match=match):
        spec_from_json({**document(), **changes})
    with pytest.raises(TypeError, match="JSON object"):
        spec_from_json([document()])


def test_missing_format_and_seed():
    doc = document()
    del doc["format"]
    with pytest.raises(ValueError, match="format"):
        spec_from_json(doc)
    doc = document()
    del doc["seed"], doc["config"]
    assert spec_from_json(doc).seed == 0 and spec_from_json(doc).config is None
