"""fastinit.hf_record: specs recorded from transformers' own weight initialization.

Each architecture is a tiny config (2 layers, hidden 32, vocab 128). The recorded spec
must name exactly the tensors save_pretrained writes, load into from_pretrained with no
missing or unexpected key, and give per-tensor statistics that match a real transformers
initialization of the same config (fixed seeds; tolerances of 6 sigma from n).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

import transformers  # noqa: E402
from fastinit import checkpoint  # noqa: E402
from fastinit.hf_configs import spec_from_config  # noqa: E402
from fastinit.hf_record import spec_from_transformers  # noqa: E402
from fastinit.specs import ModelSpec  # noqa: E402
from transformers.modeling_utils import remove_tied_weights_from_state_dict  # noqa: E402

_DECODER = {
    "vocab_size": 128,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}
CAUSAL = "AutoModelForCausalLM"
CASES = {
    "llama": ({**_DECODER, "model_type": "llama"}, CAUSAL),
    "mistral": ({**_DECODER, "model_type": "mistral"}, CAUSAL),
    "qwen2": ({**_DECODER, "model_type": "qwen2"}, CAUSAL),
    "qwen3": ({**_DECODER, "model_type": "qwen3", "head_dim": 8}, CAUSAL),
    "gemma3_text": ({**_DECODER, "model_type": "gemma3_text", "head_dim": 8}, CAUSAL),
    "mixtral": (
        {**_DECODER, "model_type": "mixtral", "num_local_experts": 4, "num_experts_per_tok": 2},
        CAUSAL,
    ),
    "phi3": ({**_DECODER, "model_type": "phi3"}, CAUSAL),
    "olmo2": ({**_DECODER, "model_type": "olmo2"}, CAUSAL),
    "gpt_neox": ({**_DECODER, "model_type": "gpt_neox"}, CAUSAL),
    "falcon": ({**_DECODER, "model_type": "falcon"}, CAUSAL),
    "gpt2": (
        {
            "model_type": "gpt2",
            "vocab_size": 128,
            "n_embd": 32,
            "n_layer": 2,
            "n_head": 4,
            "n_positions": 64,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
        CAUSAL,
    ),
    "bert": (
        {
            "model_type": "bert",
            "vocab_size": 128,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 64,
        },
        "AutoModelForMaskedLM",
    ),
    "t5": (
        {
            "model_type": "t5",
            "vocab_size": 128,
            "d_model": 32,
            "d_kv": 8,
            "d_ff": 64,
            "num_layers": 2,
            "num_heads": 4,
        },
        "AutoModelForSeq2SeqLM",
    ),
    # State-space models: A_log a computed literal, the dt bias a computed random value.
    "mamba": (
        {
            "model_type": "mamba",
            "vocab_size": 128,
            "hidden_size": 32,
            "state_size": 8,
            "num_hidden_layers": 2,
        },
        CAUSAL,
    ),
    "mamba2": (
        {
            "model_type": "mamba2",
            "vocab_size": 128,
            "hidden_size": 32,
            "state_size": 8,
            "num_hidden_layers": 2,
            "num_heads": 4,
            "head_dim": 16,
            "n_groups": 1,
        },
        CAUSAL,
    ),
    "vit": (
        {
            "model_type": "vit",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
            "num_labels": 3,
        },
        "AutoModelForImageClassification",
    ),
}


def _hf_model(config: dict, model_class: str, *, meta: bool) -> torch.nn.Module:
    fields = {key: value for key, value in config.items() if key != "model_type"}
    hf_config = transformers.AutoConfig.for_model(config["model_type"], **fields)
    auto = getattr(transformers, model_class)
    if meta:
        with torch.device("meta"):
            return auto.from_config(hf_config)
    torch.manual_seed(0)
    return auto.from_config(hf_config)


def _saved_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return remove_tied_weights_from_state_dict(model.state_dict(), model)


@pytest.fixture(scope="module", params=sorted(CASES))
def recorded(request, tmp_path_factory):
    """(case, spec, checkpoint directory, the real model) for one architecture."""
    config, model_class = CASES[request.param]
    spec = spec_from_transformers(config, model_class=model_class, seed=5)
    output = tmp_path_factory.mktemp(request.param)
    checkpoint.write(spec, output)
    real = _hf_model(config, model_class, meta=False)
    return request.param, spec, output, real


def test_names_and_shapes_are_what_save_pretrained_writes(recorded):
    case, spec, _, _ = recorded
    config, model_class = CASES[case]
    meta = _hf_model(config, model_class, meta=True)
    expected = {name: tuple(t.shape) for name, t in _saved_state(meta).items()}
    assert {t.name: t.shape for t in spec.tensors} == expected
    assert [t.name for t in spec.tensors] == list(expected)
    assert all(t.dtype == "float32" for t in spec.tensors)


def test_loads_with_from_pretrained_without_missing_or_unexpected_keys(recorded):
    case, spec, output, _ = recorded
    auto = getattr(transformers, CASES[case][1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, info = auto.from_pretrained(output, output_loading_info=True)
    assert not info["missing_keys"]
    assert not info["unexpected_keys"]
    assert not info["mismatched_keys"]
    state = model.state_dict()
    for tensor in spec.tensors:  # the loaded values are the written ones
        if tensor.init == "zeros":
            assert not state[tensor.name].any(), tensor.name


def test_statistics_match_a_real_transformers_initialization(recorded):
    case, spec, output, real = recorded
    from safetensors.numpy import load_file

    written: dict[str, np.ndarray] = {}
    for path in sorted(output.glob("*.safetensors")):
        written.update(load_file(path))
    reference = {
        name: t.detach().numpy().astype(np.float64) for name, t in _saved_state(real).items()
    }
    assert set(written) == set(reference)
    for tensor in spec.tensors:
        ours, theirs = written[tensor.name].astype(np.float64), reference[tensor.name]
        where = f"{case}: {tensor.name} ({tensor.init} {tensor.params})"
        assert ours.shape == theirs.shape, where
        for row in tensor.zero_rows:  # zeroed padding rows, in both
            assert not ours[row].any() and not theirs[row].any(), where
        if tensor.init in ("zeros", "ones", "constant"):
            np.testing.assert_array_equal(ours, theirs, err_msg=where)
            continue
        mask = np.ones(ours.shape[0], dtype=bool)
        mask[list(tensor.zero_rows)] = False
        ours, theirs = ours[mask].reshape(-1), theirs[mask].reshape(-1)
        n = ours.size
        assert np.count_nonzero(ours == 0) == np.count_nonzero(theirs == 0) == 0, where
        sigma = max(theirs.std(), ours.std())
        # The difference of two independent sample means / stds: sd sigma*sqrt(2/n) and
        # at most sigma/sqrt(n) (kurtosis <= 3 for normal, uniform and truncated normals).
        assert abs(ours.mean() - theirs.mean()) <= 6 * sigma * math.sqrt(2 / n), where
        assert abs(ours.std() - theirs.std()) <= 6 * sigma / math.sqrt(n), where
        assert ours.min() >= theirs.min() - 6 * sigma and ours.max() <= theirs.max() + 6 * sigma


@pytest.mark.parametrize("case", ["llama", "mistral", "qwen2", "gpt2"])
def test_recorded_spec_equals_the_hand_written_one(case):
    config = CASES[case][0]
    recorded = spec_from_transformers(config, seed=3)
    written = spec_from_config(config, seed=3)
    assert {t.name: t for t in recorded.tensors} == {t.name: t for t in written.tensors}
    assert recorded.seed == written.seed and recorded.config == written.config


def test_padding_rows_are_recorded_as_zero_rows():
    spec = spec_from_transformers({**_DECODER, "model_type": "llama", "pad_token_id": 7})
    (embedding,) = [t for t in spec.tensors if t.name == "model.embed_tokens.weight"]
    assert embedding.zero_rows == (7,)
    assert embedding.init == "normal" and embedding.params == {"mean": 0.0, "std": 0.02}


def test_a_parameter_the_init_does_not_cover_is_refused_by_name(monkeypatch):
    from transformers.models.llama import modeling_llama

    original = modeling_llama.LlamaPreTrainedModel._init_weights

    def skip_norms(self, module):
        if not isinstance(module, modeling_llama.LlamaRMSNorm):
            original(self, module)

    monkeypatch.setattr(modeling_llama.LlamaPreTrainedModel, "_init_weights", skip_norms)
    with pytest.raises(ValueError, match=r"'model\.layers\.0\.input_layernorm\.weight'.*no record"):
        spec_from_transformers(CASES["llama"][0])


def test_computed_values_become_a_literal_and_formulas():
    """Mamba's A_log (log of 1..state_size in every row) is kept as one row, exactly the
    float32 values torch computes; its dt bias is the inverse softplus of a log-uniform dt
    on [time_step_min, time_step_max], recognized from the probe draws (floor below them);
    rescale_prenorm_residual's `out_proj.weight /= sqrt(n_layer)` scales kaiming's 1/3.
    (Not in CASES: transformers' from_pretrained divides the loaded out_proj again.)"""
    spec = spec_from_transformers({**CASES["mamba"][0], "rescale_prenorm_residual": True})
    tensors = {t.name: t for t in spec.tensors}
    a_log = tensors["backbone.layers.1.mixer.A_log"]
    expected = torch.log(torch.arange(1, 9, dtype=torch.float32)).double().tolist()
    assert (a_log.init, a_log.params, a_log.shape) == ("constant", {"value": expected}, (64, 8))
    bias = tensors["backbone.layers.0.mixer.dt_proj.bias"]
    assert (bias.init, bias.params) == ("inverse_softplus_log_uniform", {"low": 1e-3, "high": 0.1})
    out = tensors["backbone.layers.0.mixer.out_proj.weight"]
    assert out.params["scale"] == pytest.approx(1 / 3 / 2)


@pytest.mark.parametrize(("dtype", "kept"), [("float16", True), ("bfloat16", False)])
def test_keep_in_fp32_modules_stay_float32_as_transformers_loads_them(dtype, kept, tmp_path):
    """T5's `wo` (_keep_in_fp32_modules) is float32 in a float16 checkpoint only, the dtype
    from_pretrained(dtype=...) gives it: so no value is rounded through float16 first."""
    config, model_class = CASES["t5"]
    spec = spec_from_transformers(config, model_class=model_class, dtype=dtype)
    dtypes = {t.name: t.dtype for t in spec.tensors}
    wo = [name for name in dtypes if name.endswith(".wo.weight")]
    assert wo and all(dtypes[name] == ("float32" if kept else dtype) for name in wo)
    assert {dtypes[name] for name in dtypes if name not in wo} == {dtype}
    checkpoint.write(spec, tmp_path, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.AutoModelForSeq2SeqLM.from_pretrained(
            tmp_path, dtype=getattr(torch, dtype)
        )
    loaded = {name: str(t.dtype).removeprefix("torch.") for name, t in model.state_dict().items()}
    assert all(loaded[name] == dtypes[name] for name in dtypes)


def test_a_random_value_fitting_no_formula_is_refused_by_name(toy_registered):
    config = {"model_type": _ToyConfig.model_type, "width": 8, "squared": True}
    with pytest.raises(ValueError, match=r"tensor 'squared'.*none of fastinit\.computed"):
        spec_from_transformers(config, model_class="AutoModel")


def test_recording_leaves_torch_and_transformers_as_they_were(toy_registered):
    from transformers import initialization

    table = dict(initialization.TORCH_INIT_FUNCTIONS)
    names = ("normal_", "uniform_", "copy_", "zero_", "div_", "__itruediv__", "__mul__")
    methods = {name: getattr(torch.Tensor, name) for name in names}
    factories = {name: getattr(torch, name) for name in ("rand", "arange", "empty_like")}
    config = {"model_type": _ToyConfig.model_type, "width": 8, "squared": True}
    with pytest.raises(ValueError):
        spec_from_transformers(config, model_class="AutoModel")
    spec_from_transformers(CASES["mamba"][0])
    assert initialization.TORCH_INIT_FUNCTIONS == table
    assert {name: getattr(torch.Tensor, name) for name in methods} == methods
    assert {name: getattr(torch, name) for name in factories} == factories
    assert torch.zeros(3).normal_().std() > 0  # the real methods again
    assert torch.arange(3, device="meta").device.type == "meta"


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"config": []}, TypeError, "config must be a JSON object"),
        ({"config": {"vocab_size": 8}}, ValueError, "model_type"),
        ({"config": {"model_type": "llama"}, "model_class": "Nope"}, ValueError, "model_class"),
        ({"config": {"model_type": "llama"}, "dtype": "int8"}, ValueError, "dtype"),
        ({"config": {"model_type": "llama"}, "seed": -1}, ValueError, "seed"),
    ],
)
def test_bad_arguments_are_refused_by_name(arguments, error, match):
    with pytest.raises(error, match=match):
        spec_from_transformers(**arguments)


class _ToyConfig(transformers.PretrainedConfig):
    model_type = "fastinit_record_toy"

    def __init__(
        self, width: int = 24, extra: bool = False, squared: bool = False, **kwargs
    ) -> None:
        self.width = width
        self.extra = extra
        self.squared = squared
        super().__init__(**kwargs)


class _ToyModel(transformers.PreTrainedModel):
    """Every primitive the recorder maps, and (extra=True) a parameter no init covers."""

    config_class = _ToyConfig

    def __init__(self, config: _ToyConfig) -> None:
        super().__init__(config)
        width = config.width
        self.glorot = torch.nn.Parameter(torch.empty(width, 2 * width))
        self.glorot_n = torch.nn.Parameter(torch.empty(width, 2 * width))
        self.he_uniform = torch.nn.Parameter(torch.empty(width, 3 * width))
        self.he_normal = torch.nn.Parameter(torch.empty(2 * width, width, 3))
        self.truncated = torch.nn.Parameter(torch.empty(width, width))
        self.uniform = torch.nn.Parameter(torch.empty(width, width))
        self.halves = torch.nn.Parameter(torch.empty(width))
        self.filled = torch.nn.Parameter(torch.empty(width))
        self.data_normal = torch.nn.Parameter(torch.empty(width, width))
        self.copied = torch.nn.Parameter(torch.empty(width))
        self.literal = torch.nn.Parameter(torch.empty(width, 2, 3))
        self.log_uniform = torch.nn.Parameter(torch.empty(width))
        self.divided = torch.nn.Parameter(torch.empty(width, width))
        self.halved = torch.nn.Parameter(torch.empty(width, width))
        if config.extra:
            self.forgotten = torch.nn.Parameter(torch.empty(width))
        if config.squared:
            self.squared = torch.nn.Parameter(torch.empty(width))
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        from transformers import initialization as init

        if module is not self:
            return
        init.normal_(self.glorot, std=5.0)  # overwritten below: the last record wins
        init.xavier_uniform_(self.glorot, gain=1.5)
        init.xavier_normal_(self.glorot_n)
        init.kaiming_uniform_(self.he_uniform, a=math.sqrt(5))
        init.kaiming_normal_(self.he_normal, mode="fan_out", nonlinearity="relu")
        init.trunc_normal_(self.truncated, std=0.5, a=-0.25, b=0.75)
        init.uniform_(self.uniform, -0.3, 0.1)
        init.constant_(self.halves, 0.5)
        self.filled.data.fill_(-2.0)
        self.data_normal.data.normal_(0.25, 0.125)
        init.copy_(self.copied, torch.full((self.config.width,), 3.0))
        device = self.literal.device  # meta while recording: evaluated on the CPU
        steps = torch.arange(3, dtype=torch.float32, device=device) * 0.5 - 0.25
        init.copy_(self.literal, steps.expand(self.config.width, 2, 3))
        draws = torch.empty(self.config.width, device=device).uniform_(0.5, 2.0)
        init.copy_(self.log_uniform, draws.log_())
        init.normal_(self.divided, std=0.5)
        self.divided /= 4
        init.uniform_(self.halved, -1.0, 1.0)
        init.copy_(self.halved, self.halved * 0.5)
        if self.config.squared:
            init.copy_(self.squared, torch.rand(self.config.width, device=device) ** 2)

    def forward(self, x):  # pragma: no cover - never called
        return x


@pytest.fixture
def toy_registered():
    transformers.AutoConfig.register(_ToyConfig.model_type, _ToyConfig, exist_ok=True)
    transformers.AutoModel.register(_ToyConfig, _ToyModel, exist_ok=True)


def test_every_primitive_maps_to_its_fastinit_initializer(toy_registered, tmp_path):
    config = {"model_type": _ToyConfig.model_type, "width": 24}
    spec = spec_from_transformers(config, model_class="AutoModel", seed=1)
    inits = {t.name: (t.init, t.params) for t in spec.tensors}
    scaled = {"distribution": "uniform", "layout": "torch"}
    assert inits == {
        "glorot": ("variance_scaling", {"scale": 2.25, "mode": "fan_avg", **scaled}),
        "glorot_n": (
            "variance_scaling",
            {"scale": 1.0, "mode": "fan_avg", "distribution": "normal", "layout": "torch"},
        ),
        "he_uniform": (
            "variance_scaling",
            {"scale": pytest.approx(1 / 3), "mode": "fan_in", **scaled},
        ),
        "he_normal": (
            "variance_scaling",
            {"scale": 2.0, "mode": "fan_out", "distribution": "normal", "layout": "torch"},
        ),
        "truncated": ("truncated_normal", {"mean": 0.0, "std": 0.5, "a": -0.25, "b": 0.75}),
        "uniform": ("uniform", {"low": -0.3, "high": 0.1}),
        "halves": ("constant", {"value": 0.5}),
        "filled": ("constant", {"value": -2.0}),
        "data_normal": ("normal", {"mean": 0.25, "std": 0.125}),
        "copied": ("constant", {"value": 3.0}),
        "literal": ("constant", {"value": [-0.25, 0.25, 0.75]}),
        "log_uniform": ("log_of_uniform", {"low": 0.5, "high": 2.0}),
        "divided": ("normal", {"mean": 0.0, "std": 0.125}),
        "halved": ("uniform", {"low": -0.5, "high": 0.5}),
    }
    # The values: fastinit's against torch's, per tensor (6 sigma of n).
    from safetensors.numpy import load_file

    checkpoint.write(spec, tmp_path / "toy.safetensors")
    written = load_file(tmp_path / "toy.safetensors")
    torch.manual_seed(0)
    real = _ToyModel(_ToyConfig(width=24))
    for name, theirs in real.state_dict().items():
        ours, theirs = written[name].astype(np.float64), theirs.numpy().astype(np.float64)
        sigma, n = max(theirs.std(), ours.std()), ours.size
        assert abs(ours.mean() - theirs.mean()) <= 6 * sigma * math.sqrt(2 / n) + 1e-7, name
        assert abs(ours.std() - theirs.std()) <= 6 * sigma / math.sqrt(n) + 1e-7, name
        if sigma == 0:
            np.testing.assert_array_equal(ours, theirs, err_msg=name)


def test_a_custom_parameter_without_init_is_refused_by_name(toy_registered):
    config = {"model_type": _ToyConfig.model_type, "width": 8, "extra": True}
    with pytest.raises(ValueError, match=r"tensor 'forgotten'.*no record"):
        spec_from_transformers(config, model_class="AutoModel")


# ---------------------------------------------------------------------------
# The initial loss of a forward pass, against a transformers-initialized model.
#
# With the tiny configs' initializer_range 0.02 the logits are almost zero and every
# model's loss is ln(vocab) to 0.1%, whatever its weights: a 2% comparison would pass
# even for a checkpoint whose lm_head or final norm were all zeros. So these configs use
# initializer_range 0.25 at width 64: the final norm makes each hidden state's RMS 1, so
# the logits have std about 0.25 * sqrt(64) = 2 and the loss is ln(vocab) + ~2, some 22%
# above ln(vocab). Within 2% of transformers' loss, fastinit's checkpoint then has the
# logit scale (the lm_head / tied embedding std, the norms' ones or zeros, Gemma's
# embedding scale) right to about 6%; zeroed logits (loss ln(vocab)) or a std off by
# 10% fail. 8192 tokens keep the label-logit average's noise near 0.3%; the two
# initializations' own draws differ by under 1% for these seeds.
LOSS_VOCAB = 1024
LOSS_CASES = sorted(case for case, (_, model_class) in CASES.items() if model_class == CAUSAL)


def _loss_config(case: str) -> dict:
    widths = {"hidden_size": 64, "intermediate_size": 128}
    if case == "gpt2":
        widths = {"n_embd": 64}
    elif case.startswith("mamba"):
        widths = {"hidden_size": 64, "head_dim": 32} if case == "mamba2" else {"hidden_size": 64}
    return {**CASES[case][0], **widths, "vocab_size": LOSS_VOCAB, "initializer_range": 0.25}


def _loss(model: torch.nn.Module, tokens: torch.Tensor) -> float:
    model.eval()  # no dropout
    with torch.no_grad():
        return float(model(input_ids=tokens, labels=tokens).loss)


@pytest.mark.parametrize("case", LOSS_CASES)
def test_initial_loss_is_within_2_percent_of_transformers(case, tmp_path):
    config = _loss_config(case)
    checkpoint.write(spec_from_transformers(config, seed=5), tmp_path, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = transformers.AutoModelForCausalLM.from_pretrained(tmp_path)
    theirs = _hf_model(config, CAUSAL, meta=False)  # torch.manual_seed(0)
    tokens = torch.randint(0, LOSS_VOCAB, (128, 64), generator=torch.Generator().manual_seed(1))
    ours_loss, theirs_loss = _loss(ours, tokens), _loss(theirs, tokens)
    assert abs(ours_loss - theirs_loss) <= 0.02 * theirs_loss, (ours_loss, theirs_loss)
    # The comparison means something: both losses are far above ln(vocab), the loss of
    # zero logits, by more than five times the 2% band.
    floor = math.log(LOSS_VOCAB)
    assert min(ours_loss, theirs_loss) - floor > 5 * 0.02 * theirs_loss, (ours_loss, floor)


def test_the_initial_loss_comparison_catches_a_std_10_percent_low(tmp_path):
    """The band above is narrow enough: llama's std-0.25 tensors drawn at 0.225 move the
    loss by about 4% (every architecture above: 3.5% to 12%)."""
    config = _loss_config("llama")
    spec = spec_from_transformers(config, seed=5)
    low = tuple(
        t._replace(params={**t.params, "std": 0.225}) if t.params.get("std") == 0.25 else t
        for t in spec.tensors
    )
    assert low != spec.tensors
    checkpoint.write(ModelSpec(spec.seed, low, spec.config), tmp_path, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = transformers.AutoModelForCausalLM.from_pretrained(tmp_path)
    theirs = _hf_model(config, CAUSAL, meta=False)
    tokens = torch.randint(0, LOSS_VOCAB, (128, 64), generator=torch.Generator().manual_seed(1))
    ours_loss, theirs_loss = _loss(ours, tokens), _loss(theirs, tokens)
    assert abs(ours_loss - theirs_loss) > 0.02 * theirs_loss, (ours_loss, theirs_loss)


def test_a_random_vector_of_two_is_still_recognized_as_random():
    """Mamba-2 with 2 heads draws a dt bias of 2 values: the probe's draws differ between
    the two recordings in every element, so it is a formula, not a literal."""
    config = {
        **CASES["mamba2"][0], "num_heads": 2, "head_dim": 16, "hidden_size": 16,
    }  # fmt: skip
    tensors = {t.name: t for t in spec_from_transformers(config).tensors}
    bias = tensors["backbone.layers.0.mixer.dt_bias"]
    assert (bias.shape, bias.init) == ((2,), "inverse_softplus_log_uniform")


def test_other_threads_keep_torchs_own_functions_while_a_spec_is_recorded():
    import threading

    seen: list[torch.Tensor] = []
    stop = threading.Event()

    def draw() -> None:
        while not stop.is_set():
            seen.append(torch.rand(3))
            seen.append(torch.zeros(2, device="meta"))

    worker = threading.Thread(target=draw)
    worker.start()
    try:
        for _ in range(3):
            spec_from_transformers(CASES["mamba"][0])
    finally:
        stop.set()
        worker.join()
    draws = [t for t in seen if t.device.type == "cpu"]
    assert draws and all(t.device.type == "meta" for t in seen[1::2])
    # Probe draws start with 2^-24 and 1 - 2^-24 (or the reverse): torch's hardly ever do.
    assert not any(float(t[0]) in (2**-24, 1 - 2**-24) for t in draws)


def test_an_error_inside_the_recording_restores_everything(monkeypatch):
    from fastinit import hf_record
    from transformers import initialization

    table = dict(initialization.TORCH_INIT_FUNCTIONS)
    methods = {name: getattr(torch.Tensor, name) for name in ("normal_", "copy_", "__mul__")}

    def failing(*args, **kwargs):
        raise RuntimeError("the model's init failed")

    monkeypatch.setattr(hf_record, "_recording_functions", failing)
    with pytest.raises(RuntimeError, match="the model's init failed"):
        spec_from_transformers(CASES["llama"][0])
    assert initialization.TORCH_INIT_FUNCTIONS == table
    assert {name: getattr(torch.Tensor, name) for name in methods} == methods


def test_olmo_hybrids_a_log_from_zero_and_dt_bias_are_formulas():
    """OLMo-hybrid draws A uniform on [0, 16) (log(0) is possible in float32, never on
    fastinit's open u) and a log-uniform dt: both fit fastinit.computed's formulas."""
    defaults = transformers.AutoConfig.for_model("olmo_hybrid").to_dict()
    config = {key: value for key, value in defaults.items() if key != "transformers_version"}
    config.update(num_hidden_layers=4, vocab_size=128, layer_types=config["layer_types"][:4])
    config.update(pad_token_id=None, bos_token_id=None, eos_token_id=None)
    tensors = {t.name: t for t in spec_from_transformers(config).tensors}
    a_log = next(t for name, t in tensors.items() if name.endswith("linear_attn.A_log"))
    dt_bias = next(t for name, t in tensors.items() if name.endswith("linear_attn.dt_bias"))
    assert (a_log.init, a_log.params) == ("log_of_uniform", {"low": 0.0, "high": 16.0})
    assert (dt_bias.init, dt_bias.params) == (
        "inverse_softplus_log_uniform",
        {"low": config["linear_dt_min"], "high": config["linear_dt_max"]},
    )


def test_deriving_a_spec_from_inside_a_recorded_init_is_refused_not_a_hang(monkeypatch):
    from transformers import LlamaForCausalLM

    inner: list[BaseException] = []
    original = LlamaForCausalLM._init_weights

    def nested(self, module):
        if not inner:
            try:
                spec_from_transformers(CASES["llama"][0])
            except RuntimeError as error:
                inner.append(error)
        return original(self, module)

    monkeypatch.setattr(LlamaForCausalLM, "_init_weights", nested)
    spec_from_transformers(CASES["llama"][0])  # the outer derivation still completes
    assert inner and "while this thread records" in str(inner[0])
