"""Hugging Face config.json -> spec: the tensors transformers' save_pretrained writes.

    spec = spec_from_config(json.load(open("config.json")))        # a Hugging Face config
    spec = spec_from_config(preset_config("llama-3-8b"), seed=7)   # an embedded config
    spec = spec_for_config(config, model_class="AutoModel")          # any model_type

spec_from_config mirrors transformers' own `_init_weights` for model_type llama,
mistral, qwen2 (the *ForCausalLM models) and gpt2 (GPT2LMHeadModel): the tensor
names, shapes and order of the state dict save_pretrained writes (a tied lm_head is
not written), with normal(0, initializer_range) for Linear, Conv1D and Embedding
weights, GPT-2's residual projections scaled by 1 / sqrt(2 n_layer), ones for norm
weights, zeros for biases, and the embedding's padding row (pad_token_id) zeroed.

Guarantees: a config is checked whole before any tensor is made. Its fields are read
with the transformers config class's defaults and type-checked on access (errors name
the field); the model's tensor count and bytes are computed from a blueprint (head,
one layer, tail) and held to the spec limits (specs.MAX_TENSORS, MAX_BYTES); the seed,
dtype, nesting and config copy go through the spec document's own checks
(specs.check_seed, check_dtype, check_depth, plain_config), and each distinct tensor
through its sampler (specs.check_sampler). So a config yields exactly the spec whose
document specs.spec_from_json would accept. docs/spec.md has the rules and presets.

spec_for_config is the route `fastinit init --config/--preset` takes: the spec recorded
from transformers' own init (hf_record) when transformers is installed, for any model_type
and auto class; these hand-written builders without it (equal specs, tested).
"""

from __future__ import annotations

import importlib.resources
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, cast

from . import dtypes, specs
from .specs import DTYPES, ModelSpec, TensorSpec

PRESETS: tuple[str, ...] = (
    "gpt2",
    "llama-3-8b",
    "llama-3.1-8b-instruct",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "llama-3.2-1b",
    "mistral-7b",
    "qwen2-0.5b",
    # Model types only the recorded route (hf_record) builds; docs/spec.md has their sources.
    "deepseek-v3",
    "gemma-3-4b-it",
    "mixtral-8x7b",
    "qwen3-8b",
)
SUPPORTED_MODEL_TYPES = ("gpt2", "llama", "mistral", "qwen2")

# The config classes' defaults (transformers 5.23) for the fields that shape the weights.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {
        "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": None,
        "head_dim": None, "attention_bias": False, "mlp_bias": False,
        "tie_word_embeddings": False, "initializer_range": 0.02, "pad_token_id": None,
    },
    "mistral": {
        "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
        "head_dim": None, "tie_word_embeddings": False, "initializer_range": 0.02,
        "pad_token_id": None,
    },
    "qwen2": {
        "vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
        "head_dim": None, "tie_word_embeddings": False, "initializer_range": 0.02,
        "pad_token_id": None,
    },
    "gpt2": {
        "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12,
        "n_inner": None, "initializer_range": 0.02, "tie_word_embeddings": True,
        "add_cross_attention": False,
    },
}  # fmt: skip
# GPT2Config.attribute_map: the common names of its fields.
_GPT2_ALIASES = {
    "n_embd": "hidden_size",
    "n_positions": "max_position_embeddings",
    "n_head": "num_attention_heads",
    "n_layer": "num_hidden_layers",
}


DEFAULT_MODEL_CLASS = "AutoModelForCausalLM"
HF_EXTRA_HINT = "install transformers: pip install 'fastinit[hf]'"
# Config fields that multiply a model's modules: one past MAX_TENSORS cannot be a spec, and
# would make the meta model build that many modules before the tensor limit could refuse it.
_COUNT_FIELDS = (
    "num_hidden_layers", "n_layer", "num_layers", "n_layers", "num_decoder_layers",
    "encoder_layers", "decoder_layers", "num_local_experts", "n_routed_experts", "num_experts",
)  # fmt: skip


def _transformers_available() -> bool:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def check_model_class(model_class: str | None, *, argument: str = "model_class") -> str:
    """The transformers auto class name to build (None -> DEFAULT_MODEL_CLASS), refused
    naming `argument` unless it is a transformers class with from_config. Without
    transformers only the default passes (the hand-written builders are causal LMs)."""
    if model_class is None:
        return DEFAULT_MODEL_CLASS
    if not isinstance(model_class, str) or not model_class:
        raise TypeError(f"{argument} must be a transformers class name, got {model_class!r}")
    if not _transformers_available():
        if model_class == DEFAULT_MODEL_CLASS:
            return model_class
        raise ValueError(f"{argument} {model_class!r} needs transformers; {HF_EXTRA_HINT}")
    import transformers

    if not hasattr(getattr(transformers, model_class, None), "from_config"):
        raise ValueError(
            f"{argument} must name a transformers class with from_config (e.g. "
            f"AutoModelForCausalLM, AutoModel, AutoModelForSeq2SeqLM, AutoModelForMaskedLM, "
            f"AutoModelForImageClassification), got {model_class!r}"
        )
    return model_class


def spec_for_config(
    config: Mapping[str, Any],
    *,
    model_class: str | None = None,
    dtype: str | None = None,
    seed: int = 0,
) -> ModelSpec:
    """The spec of `model_class.from_config(config).save_pretrained`, by the best route here
    (what `fastinit init --config/--preset` uses).

    With transformers installed: recorded from transformers' own weight initialization
    (hf_record.spec_from_transformers) for any model_type it knows; model_class (a
    transformers auto class name) defaults to AutoModelForCausalLM. For llama, mistral,
    qwen2 and gpt2 with the default class, spec_from_config checks the config first (its
    tensors counted and sized before any module is built, its errors naming the field);
    the two routes give equal specs (tests/test_hf_record.py). Without transformers: the
    hand-written builders (spec_from_config) for those four with the default class; any
    other model_type or class is a ValueError naming it and the `hf` extra. The spec keeps
    the config as given.
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a JSON object, got {type(config).__name__}")
    specs.check_depth("config", config)
    model_class = check_model_class(model_class)
    model_type = config.get("model_type")
    hand_written = model_type in SUPPORTED_MODEL_TYPES and model_class == DEFAULT_MODEL_CLASS
    if hand_written:
        written = spec_from_config(config, dtype=dtype, seed=seed)
    if not _transformers_available():
        if hand_written:
            return written
        raise ValueError(
            f"config model_type {model_type!r} needs transformers (without it: "
            f"{', '.join(SUPPORTED_MODEL_TYPES)}); {HF_EXTRA_HINT}"
        )
    for field in _COUNT_FIELDS:
        count = config.get(field)
        if type(count) is int and count > specs.MAX_TENSORS:
            raise ValueError(
                f"{model_type} config: {field} {count:,} makes more than {specs.MAX_TENSORS:,} "
                f"tensors, the most a spec holds (fastinit.specs.MAX_TENSORS)"
            )
    from .hf_record import spec_from_transformers

    recorded = spec_from_transformers(config, model_class=model_class, dtype=dtype, seed=seed)
    # transformers may fill in nested fields of the config it was given (rope_scaling's
    # rope_theta): the checkpoint's config.json is the user's.
    return recorded._replace(config=specs.plain_config(config))


def spec_from_config(
    config: Mapping[str, Any], *, dtype: str | None = None, seed: int = 0
) -> ModelSpec:
    """The spec of the checkpoint transformers' save_pretrained writes for this config.

    config: a Hugging Face config.json (parsed) whose model_type is llama, mistral,
    qwen2 (-> *ForCausalLM) or gpt2 (-> GPT2LMHeadModel); fields it lacks take the
    transformers config class's defaults. dtype: every tensor's dtype; None takes the
    config's dtype / torch_dtype when it is one of DTYPES, else float32. The config
    is kept in the spec (config=) to be written beside the weights.

    The tensors are counted and sized from the config's fields before any is made
    (at most MAX_TENSORS, MAX_BYTES each and in all), and each distinct tensor is
    checked by its sampler: errors name the config field or the tensor.
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a JSON object, got {type(config).__name__}")
    specs.check_depth("config", config)
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"unsupported model_type {model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    if dtype is None:
        declared = config.get("dtype", config.get("torch_dtype"))
        dtype = declared if declared in DTYPES else "float32"
    dtype = specs.check_dtype("dtype", dtype)
    seed = specs.check_seed("seed", seed)
    kept = cast("dict[str, Any]", specs.plain_config(config))  # not None: config is a Mapping
    fields = _Fields(model_type, kept)
    build = _build_gpt2 if model_type == "gpt2" else _build_llama_family
    blueprint = build(model_type, fields)
    _check_size(model_type, blueprint, dtype)
    _check_samplers(model_type, fields, blueprint, dtype, seed)
    tensors = tuple(
        TensorSpec(name, shape, dtype, init, dict(params), zero_rows)
        for name, shape, init, params, zero_rows in blueprint.rows()
    )
    return ModelSpec(seed, tensors, kept)


def _check_size(model_type: str, blueprint: _Blueprint, dtype: str) -> None:
    """Refuses a model of more than MAX_TENSORS tensors or MAX_BYTES bytes (one tensor
    or all), from its blueprint: nothing is built yet."""
    count = blueprint.tensor_count()
    if count > specs.MAX_TENSORS:
        raise ValueError(
            f"{model_type} config: {blueprint.layers:,} layers make {count:,} tensors; a spec "
            f"holds at most {specs.MAX_TENSORS:,} (fastinit.specs.MAX_TENSORS)"
        )
    total = 0
    for name, shape, times in blueprint.kinds():
        if not times:  # a layer of a model with no layers
            continue
        nbytes = math.prod(shape) * dtypes.BY_NAME[dtype].numpy.itemsize
        if nbytes > specs.MAX_BYTES:
            raise ValueError(
                f"{model_type} config: tensor {name!r} of shape {list(shape)} in {dtype} is "
                f"{nbytes:,} bytes; a tensor may have at most 2^62 (fastinit.specs.MAX_BYTES)"
            )
        total += nbytes * times
    if total > specs.MAX_BYTES:
        raise ValueError(
            f"{model_type} config: its {count:,} tensors are {total:,} bytes in {dtype}; a "
            f"spec may have at most 2^62 (fastinit.specs.MAX_BYTES)"
        )


def _check_samplers(
    model_type: str, fields: _Fields, blueprint: _Blueprint, dtype: str, seed: int
) -> None:
    """The sampler's checks (specs.check_sampler) for each distinct tensor: the head, the first
    layer and the tail. The other layers differ from the first only by their names,
    which are ASCII made here, so the checks of their streams cannot fail."""
    for index, row in blueprint.distinct():
        name, shape, init, params, zero_rows = row
        tensor = TensorSpec(name, shape, dtype, init, params, zero_rows)
        try:
            specs.check_sampler(index, tensor, seed)
        except (TypeError, ValueError) as error:
            source = f"initializer_range {fields.raw('initializer_range')!r} in {dtype}"
            raise type(error)(f"{model_type} config ({source}): {error}") from None


def preset_config(name: str) -> dict[str, Any]:
    """The Hugging Face config.json of an embedded preset (a fresh dict each call)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    resource = importlib.resources.files("fastinit") / "presets" / f"{name}.json"
    return json.loads(resource.read_text(encoding="utf-8"))


class _Fields:
    """A config's fields with its model_type's defaults, type-checked on access."""

    def __init__(self, model_type: str, config: dict[str, Any]) -> None:
        self.model_type, self.config = model_type, config
        self.defaults = _DEFAULTS[model_type]

    def raw(self, key: str) -> Any:
        if key in self.config:
            return self.config[key]
        alias = _GPT2_ALIASES.get(key) if self.model_type == "gpt2" else None
        if alias is not None and alias in self.config:
            return self.config[alias]
        return self.defaults[key]

    def size(self, key: str, *, optional: bool = False, positive: bool = False) -> Any:
        value = self.raw(key)
        if value is None and optional:
            return None
        if type(value) is not int or value < (1 if positive else 0):
            kind = "a positive" if positive else "a non-negative"
            raise ValueError(
                f"{self.model_type} config: {key} must be {kind} integer, got {value!r}"
            )
        return value

    def flag(self, key: str) -> bool:
        value = self.raw(key)
        if not isinstance(value, bool):
            raise ValueError(
                f"{self.model_type} config: {key} must be true or false, got {value!r}"
            )
        return value

    def initializer_range(self) -> float | None:
        value = self.raw("initializer_range")
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0
        ):
            raise ValueError(
                f"{self.model_type} config: initializer_range must be a number >= 0, got {value!r}"
            )
        return value


_Row = tuple[str, tuple[int, ...], str, dict[str, Any], tuple[int, ...]]


class _Blueprint(NamedTuple):
    """A model's tensors before they are made: `head`, then `block` once per layer (the
    names of layer i begin with f"{prefix}{i}."), then `tail`. Its size is known from
    its fields; rows() makes the tensors."""

    head: list[_Row]
    prefix: str
    block: list[_Row]
    layers: int
    tail: list[_Row]

    def tensor_count(self) -> int:
        return len(self.head) + self.layers * len(self.block) + len(self.tail)

    def kinds(self) -> Iterator[tuple[str, tuple[int, ...], int]]:
        """(name, shape, how many such tensors) of each row; block names hold "{i}"."""
        for name, shape, *_ in self.head:
            yield name, shape, 1
        for name, shape, *_ in self.block:
            yield f"{self.prefix}{{i}}.{name}", shape, self.layers
        for name, shape, *_ in self.tail:
            yield name, shape, 1

    def distinct(self) -> Iterator[tuple[int, _Row]]:
        """(index in rows(), row) of the head, the first layer and the tail."""
        yield from enumerate(self.head)
        if self.layers:
            for k, (name, shape, init, params, zero_rows) in enumerate(self.block):
                yield len(self.head) + k, (f"{self.prefix}0.{name}", shape, init, params, zero_rows)
        first_tail = len(self.head) + self.layers * len(self.block)
        for k, row in enumerate(self.tail):
            yield first_tail + k, row

    def rows(self) -> Iterator[_Row]:
        yield from self.head
        for i in range(self.layers):
            prefix = f"{self.prefix}{i}."
            for name, shape, init, params, zero_rows in self.block:
                yield prefix + name, shape, init, params, zero_rows
        yield from self.tail


def _normal(std: float) -> tuple[str, dict[str, Any]]:
    return "normal", {"mean": 0.0, "std": float(std)}


def _padding_rows(fields: _Fields, vocab_size: int) -> tuple[int, ...]:
    """nn.Embedding(vocab, hidden, padding_idx=pad_token_id): the row _init_weights zeroes."""
    pad = fields.raw("pad_token_id")
    if pad is None:
        return ()
    if type(pad) is not int:
        raise ValueError(
            f"{fields.model_type} config: pad_token_id must be an integer, got {pad!r}"
        )
    if not -vocab_size <= pad < vocab_size:  # nn.Embedding asserts the same
        raise ValueError(
            f"{fields.model_type} config: pad_token_id {pad} is out of range for "
            f"vocab_size {vocab_size}"
        )
    return (pad % vocab_size,)


def _build_llama_family(model_type: str, fields: _Fields) -> _Blueprint:
    """LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM: models/<type>/modeling_<type>.py."""
    vocab = fields.size("vocab_size")
    hidden = fields.size("hidden_size")
    inner = fields.size("intermediate_size")
    layers = fields.size("num_hidden_layers")
    heads = fields.size("num_attention_heads", positive=True)
    kv_heads = fields.size("num_key_value_heads", optional=True, positive=True)
    kv_heads = heads if kv_heads is None else kv_heads
    head_dim = fields.size("head_dim", optional=True)
    if head_dim is None or (model_type == "mistral" and head_dim == 0):
        head_dim = hidden // heads  # MistralAttention: `getattr(config, "head_dim") or ...`
    if model_type == "llama":
        q_bias = kv_bias = o_bias = fields.flag("attention_bias")
        mlp_bias = fields.flag("mlp_bias")
    else:  # Mistral: no biases; Qwen2: q, k, v biases only
        q_bias = kv_bias = model_type == "qwen2"
        o_bias = mlp_bias = False
    std = fields.initializer_range() or 0.02  # PreTrainedModel._init_weights
    weight = _normal(std)
    zeros: tuple[str, dict[str, Any]] = ("zeros", {})
    ones: tuple[str, dict[str, Any]] = ("ones", {})

    head: list[_Row] = [
        ("model.embed_tokens.weight", (vocab, hidden), *weight, _padding_rows(fields, vocab))
    ]
    block: list[_Row] = []
    tail: list[_Row] = []

    def linear(
        rows: list[_Row], name: str, out_features: int, in_features: int, bias: bool
    ) -> None:
        rows.append((f"{name}.weight", (out_features, in_features), *weight, ()))
        if bias:
            rows.append((f"{name}.bias", (out_features,), *zeros, ()))

    # One layer, model.layers.{i}. is prepended to each name.
    linear(block, "self_attn.q_proj", heads * head_dim, hidden, q_bias)
    linear(block, "self_attn.k_proj", kv_heads * head_dim, hidden, kv_bias)
    linear(block, "self_attn.v_proj", kv_heads * head_dim, hidden, kv_bias)
    linear(block, "self_attn.o_proj", hidden, heads * head_dim, o_bias)
    linear(block, "mlp.gate_proj", inner, hidden, mlp_bias)
    linear(block, "mlp.up_proj", inner, hidden, mlp_bias)
    linear(block, "mlp.down_proj", hidden, inner, mlp_bias)
    block.append(("input_layernorm.weight", (hidden,), *ones, ()))
    block.append(("post_attention_layernorm.weight", (hidden,), *ones, ()))
    tail.append(("model.norm.weight", (hidden,), *ones, ()))
    if not fields.flag("tie_word_embeddings"):
        linear(tail, "lm_head", vocab, hidden, False)
    return _Blueprint(head, "model.layers.", block, layers, tail)


def _build_gpt2(model_type: str, fields: _Fields) -> _Blueprint:
    """GPT2LMHeadModel (modeling_gpt2.py): Conv1D weights are (in, out)."""
    vocab = fields.size("vocab_size")
    positions = fields.size("n_positions")
    embed = fields.size("n_embd")
    layers = fields.size("n_layer")
    heads = fields.size("n_head", positive=True)
    if embed % heads:  # GPT2Attention raises the same
        raise ValueError(f"gpt2 config: n_embd {embed} is not divisible by n_head {heads}")
    inner = fields.size("n_inner", optional=True)
    inner = 4 * embed if inner is None else inner
    initializer_range = fields.initializer_range()
    if initializer_range is None:
        raise ValueError("gpt2 config: initializer_range must be a number >= 0, got None")
    base = _normal(initializer_range or 0.02)  # PreTrainedModel._init_weights: nn.Embedding
    conv = _normal(initializer_range)  # GPT2PreTrainedModel._init_weights: Conv1D
    # ... then c_proj of every GPT2Attention and GPT2MLP: 2 residual paths per block.
    residual = _normal(initializer_range / math.sqrt(2 * layers)) if layers else conv
    zeros: tuple[str, dict[str, Any]] = ("zeros", {})
    ones: tuple[str, dict[str, Any]] = ("ones", {})
    head: list[_Row] = [
        ("transformer.wte.weight", (vocab, embed), *base, ()),  # no padding_idx in GPT-2
        ("transformer.wpe.weight", (positions, embed), *base, ()),
    ]
    block: list[_Row] = []
    tail: list[_Row] = []

    def conv1d(name: str, in_features: int, out_features: int, rule: Any) -> None:
        block.append((f"{name}.weight", (in_features, out_features), *rule, ()))
        block.append((f"{name}.bias", (out_features,), *zeros, ()))

    def layer_norm(rows: list[_Row], name: str) -> None:
        rows.append((f"{name}.weight", (embed,), *ones, ()))
        rows.append((f"{name}.bias", (embed,), *zeros, ()))

    # One block, transformer.h.{i}. is prepended to each name.
    layer_norm(block, "ln_1")
    conv1d("attn.c_attn", embed, 3 * embed, conv)
    conv1d("attn.c_proj", embed, embed, residual)
    layer_norm(block, "ln_2")
    if fields.flag("add_cross_attention"):
        conv1d("crossattention.c_attn", embed, 2 * embed, conv)
        conv1d("crossattention.q_attn", embed, embed, conv)
        conv1d("crossattention.c_proj", embed, embed, residual)
        layer_norm(block, "ln_cross_attn")
    conv1d("mlp.c_fc", embed, inner, conv)
    conv1d("mlp.c_proj", inner, embed, residual)
    layer_norm(tail, "transformer.ln_f")
    if not fields.flag("tie_word_embeddings"):
        tail.append(("lm_head.weight", (vocab, embed), *base, ()))  # nn.Linear, no bias
    return _Blueprint(head, "transformer.h.", block, layers, tail)
