"""fastinit.torch.reproducible: a model's unchanged init code draws fastinit's bits.

- A torchtitan-style init_weights() under the context equals the fastinit.torch drop-ins
  called directly on each canonical name, whatever torch's RNG holds, and unchanged by
  torch.compile's and activation checkpointing's wrappers, or by a pipeline stage's
  prefix / rename; standard layers' reset_parameters() equal init_module.
- Everything else is torch's: other tensors, other threads, meta tensors, views
  (deterministic fills), bad calls; a random fill of a view is refused.
- torch.nn.init and torch.Tensor are restored on exit, also after an exception.

Single process, no process groups (tests/test_distributed.py runs the context at world
1, 2 and 4). Fixed seeds throughout.
"""

from __future__ import annotations

import math
import threading

import pytest

torch = pytest.importorskip("torch")
ft = pytest.importorskip("fastinit.torch")
from fastinit.torch.reproducible import WRAPPER_COMPONENTS  # noqa: E402

nn = torch.nn
init = torch.nn.init

SEED = 20261128
DIM, VOCAB, LAYERS, PAD = 16, 40, 4, 3
PATCHED_INITS = [
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
]
METHODS = ["normal_", "uniform_", "zero_", "fill_"]


# ---------------------------------------------------------------------------
# A small torchtitan-style model, its init_weights written with torch.nn.init only
# ---------------------------------------------------------------------------


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(DIM, DIM, bias=False) for _ in range(4))

    def init_weights(self, std: float) -> None:
        for linear in (self.wq, self.wk, self.wv):
            init.trunc_normal_(linear.weight, mean=0.0, std=0.02)
        init.trunc_normal_(self.wo.weight, mean=0.0, std=std)


class FeedForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Linear(DIM, 2 * DIM)
        self.w2 = nn.Linear(2 * DIM, DIM, bias=False)

    def init_weights(self, std: float) -> None:
        init.trunc_normal_(self.w1.weight, mean=0.0, std=0.02)
        init.zeros_(self.w1.bias)
        init.trunc_normal_(self.w2.weight, mean=0.0, std=std)


class Block(nn.Module):
    def __init__(self, layer_id: int) -> None:
        super().__init__()
        self.attention_norm = nn.RMSNorm(DIM)
        self.attention = Attention()
        self.ffn_norm = nn.LayerNorm(DIM)
        self.feed_forward = FeedForward()
        self.weight_init_std = 0.02 / (2 * (layer_id + 1)) ** 0.5  # per-layer std

    def init_weights(self) -> None:
        for norm in (self.attention_norm, self.ffn_norm):
            norm.reset_parameters()  # init.ones_ / init.zeros_
        self.attention.init_weights(self.weight_init_std)
        self.feed_forward.init_weights(self.weight_init_std)


class Transformer(nn.Module):
    def __init__(self, layer_ids=range(LAYERS)) -> None:
        super().__init__()
        self.tok_embeddings = nn.Embedding(VOCAB, DIM, padding_idx=PAD)
        self.layers = nn.ModuleDict({str(i): Block(i) for i in layer_ids})
        self.norm = nn.RMSNorm(DIM)
        self.output = nn.Linear(DIM, VOCAB, bias=False)
        self.register_buffer("logit_scale", torch.empty(VOCAB))

    def init_weights(self) -> None:
        self.tok_embeddings.reset_parameters()  # init.normal_, then the padding row zeroed
        for layer in self.layers.values():
            layer.init_weights()
        self.norm.reset_parameters()
        final_std = DIM**-0.5
        init.trunc_normal_(self.output.weight, std=final_std, a=-3 * final_std, b=3 * final_std)
        self.logit_scale.fill_(0.5)


def expected(model: nn.Module, seed: int, prefix: str = "") -> dict[str, torch.Tensor]:
    """The drop-ins called directly on each name of an unwrapped Transformer (or of the
    blocks of a stage named `prefix` + i), as init_weights calls torch.nn.init."""
    state = {name: torch.empty_like(t) for name, t in model.state_dict().items()}
    for name, tensor in state.items():
        key = dict(seed=seed, stream=prefix + name)
        parts = name.split(".")
        if name == "tok_embeddings.weight":
            ft.normal_(tensor, **key)
            tensor[PAD] = 0
        elif name == "output.weight":
            std = DIM**-0.5
            ft.trunc_normal_(tensor, std=std, a=-3 * std, b=3 * std, **key)
        elif name == "logit_scale":
            ft.constant_(tensor, 0.5)
        elif name.endswith("norm.weight"):
            ft.ones_(tensor)
        elif name.endswith("bias"):
            ft.zeros_(tensor)
        else:  # a block's matrix: [layers.]i.(attention|feed_forward).w*.weight
            layer_id = int((prefix + name).split(".")[1])
            layer_std = 0.02 / (2 * (layer_id + 1)) ** 0.5
            std = layer_std if parts[-2] in ("wo", "w2") else 0.02
            ft.trunc_normal_(tensor, mean=0.0, std=std, **key)
    return state


def assert_state_equal(model: nn.Module, reference: dict[str, torch.Tensor]) -> None:
    state = {strip(name): t for name, t in model.state_dict().items()}
    assert state.keys() == reference.keys()
    for name, tensor in reference.items():
        assert torch.equal(state[name], tensor), name


def strip(name: str) -> str:
    return ".".join(p for p in name.split(".") if p not in WRAPPER_COMPONENTS)


def saved_attributes() -> dict[str, object]:
    state = {f"init.{n}": getattr(init, n) for n in dir(init) if not n.startswith("__")}
    state.update({f"Tensor.{n}": torch.Tensor.__dict__.get(n) for n in METHODS})
    for layer in (nn.Embedding, nn.EmbeddingBag):
        state[layer.__name__] = layer.__dict__.get("_fill_padding_idx_with_zero")
    return state


@pytest.fixture
def restored():
    """Every test leaves torch.nn.init and torch.Tensor as it found them."""
    before = saved_attributes()
    yield
    assert saved_attributes() == before


pytestmark = pytest.mark.usefixtures("restored")


# ---------------------------------------------------------------------------
# init_weights served by the drop-ins, by canonical name
# ---------------------------------------------------------------------------


def test_init_weights_equals_the_drop_ins_on_each_name_whatever_torchs_rng():
    reference = expected(Transformer(), SEED)
    for torch_seed in (0, 1):
        torch.manual_seed(torch_seed)
        model = Transformer()
        rng = torch.get_rng_state()
        with ft.reproducible(model, SEED):
            model.init_weights()
        assert torch.equal(torch.get_rng_state(), rng)  # nothing drawn from torch's RNG
        assert_state_equal(model, reference)
    # the seed matters, and so does the name: no two matrices alike
    other = Transformer()
    with ft.reproducible(other, SEED + 1):
        other.init_weights()
    assert not torch.equal(other.output.weight, model.output.weight)
    q0, q1 = (model.layers[i].attention.wq.weight for i in "01")
    assert not torch.equal(q0, q1)


def test_torch_compile_and_activation_checkpointing_do_not_change_the_weights():
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    reference = expected(Transformer(), SEED)
    model = Transformer()
    for key in list(model.layers):
        model.layers[key] = checkpoint_wrapper(model.layers[key])
    compiled = torch.compile(model, backend="eager")  # no forward: names only
    names = [name for name, _ in compiled.named_parameters()]
    assert names[0].startswith("_orig_mod.")
    assert any("._checkpoint_wrapped_module." in name for name in names)
    with ft.reproducible(compiled, SEED):
        compiled.init_weights()
    assert_state_equal(compiled, reference)


def test_a_stage_holding_layers_2_and_3_equals_those_layers_of_the_full_model():
    full = Transformer()
    with ft.reproducible(full, SEED):
        full.init_weights()
    # the stage keeps the full model's keys below `layers`: prefix
    stage = nn.ModuleDict({str(i): Block(i) for i in (2, 3)})
    with ft.reproducible(stage, SEED, prefix="layers."):
        for block in stage.values():
            block.init_weights()
    # the stage numbers its blocks from 0: rename
    renumbered = nn.ModuleList([Block(2), Block(3)])

    def rename(name: str) -> str:
        index, rest = name.split(".", 1)
        return f"layers.{int(index) + 2}.{rest}"

    with ft.reproducible(renumbered, SEED, rename=rename):
        for block in renumbered:
            block.init_weights()
    for offset, i in enumerate((2, 3)):
        whole = full.layers[str(i)].state_dict()
        for part in (stage[str(i)], renumbered[offset]):
            for name, tensor in part.state_dict().items():
                assert torch.equal(tensor, whole[name]), (i, name)


def test_standard_layers_reset_parameters_equal_init_module():
    def build():
        torch.manual_seed(5)
        return nn.Sequential(
            nn.Linear(12, 8),
            nn.Conv2d(3, 4, 3),
            nn.Embedding(10, 8, padding_idx=2),
            nn.LayerNorm(8),
            nn.RMSNorm(8),
            nn.BatchNorm1d(8),
        )

    model = build()
    with ft.reproducible(model, SEED, prefix="net."):
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    reference = ft.init_module(build(), SEED, prefix="net.")
    for (name, tensor), (_, expected_tensor) in zip(
        model.state_dict().items(), reference.state_dict().items(), strict=True
    ):
        assert torch.equal(tensor, expected_tensor), name


def test_tied_weights_draw_from_the_first_name():
    model = Transformer()
    model.output.weight = model.tok_embeddings.weight  # tied: (VOCAB, DIM) both
    with ft.reproducible(model, SEED):
        init.normal_(model.output.weight, std=0.5)  # through its second name
    direct = ft.normal_(torch.empty(VOCAB, DIM), std=0.5, seed=SEED, stream="tok_embeddings.weight")
    assert torch.equal(model.tok_embeddings.weight, direct)


def test_every_served_function_and_method_is_the_drop_in():
    """Each torch.nn.init function and Tensor method on a module tensor (also through
    its .data / .detach() aliases) equals the drop-in with the same arguments."""
    model = nn.Module()
    model.w = nn.Parameter(torch.empty(6, 4))
    model.register_buffer("b", torch.empty(5))
    w, gain = model.w, math.sqrt(5)
    cases = {
        "uniform_": (
            lambda: init.uniform_(w, -2.0, 3.0),
            lambda t, **k: ft.uniform_(t, -2.0, 3.0, **k),
        ),
        "normal_": (lambda: init.normal_(w, 1.0, 2.0), lambda t, **k: ft.normal_(t, 1.0, 2.0, **k)),
        "trunc_normal_": (
            lambda: init.trunc_normal_(w, 0.0, 1.0, -1.0, 1.5),
            lambda t, **k: ft.trunc_normal_(t, 0.0, 1.0, -1.0, 1.5, **k),
        ),
        "constant_": (lambda: init.constant_(w, 0.1), lambda t, **k: ft.constant_(t, 0.1)),
        "ones_": (lambda: init.ones_(w), lambda t, **k: ft.ones_(t)),
        "zeros_": (lambda: init.zeros_(w), lambda t, **k: ft.zeros_(t)),
        "eye_": (lambda: init.eye_(w), lambda t, **k: ft.eye_(t)),
        "xavier_uniform_": (
            lambda: init.xavier_uniform_(w, gain=2.0),
            lambda t, **k: ft.xavier_uniform_(t, gain=2.0, **k),
        ),
        "xavier_normal_": (lambda: init.xavier_normal_(w), ft.xavier_normal_),
        "kaiming_uniform_": (
            lambda: init.kaiming_uniform_(w, a=gain),
            lambda t, **k: ft.kaiming_uniform_(t, a=gain, **k),
        ),
        "kaiming_normal_": (
            lambda: init.kaiming_normal_(w, mode="fan_out"),
            lambda t, **k: ft.kaiming_normal_(t, mode="fan_out", **k),
        ),
        "orthogonal_": (
            lambda: init.orthogonal_(w, 0.5),
            lambda t, **k: ft.orthogonal_(t, 0.5, **k),
        ),
        "sparse_": (
            lambda: init.sparse_(w, 0.5, std=0.2),
            lambda t, **k: ft.sparse_(t, 0.5, std=0.2, **k),
        ),
        "generator ignored": (
            lambda: init.uniform_(w, 0.0, 1.0, torch.Generator()),
            ft.uniform_,
        ),
        ".data.normal_": (
            lambda: w.data.normal_(0.0, 0.02),
            lambda t, **k: ft.normal_(t, 0.0, 0.02, **k),
        ),
        ".detach().uniform_": (
            lambda: w.detach().uniform_(**{"from": -1.0, "to": 1.0}),
            lambda t, **k: ft.uniform_(t, -1.0, 1.0, **k),
        ),
        ".data.fill_": (lambda: w.data.fill_(0.3), lambda t, **k: ft.constant_(t, 0.3)),
        ".data.zero_": (lambda: w.data.zero_(), lambda t, **k: ft.zeros_(t)),
    }
    for case, (call, direct) in cases.items():
        with torch.no_grad():
            w.fill_(float("nan"))
        with ft.reproducible(model, SEED):
            call()
        reference = direct(torch.empty(6, 4), seed=SEED, stream="w")
        assert torch.equal(w, reference), case
    with ft.reproducible(model, SEED):
        model.b.normal_(std=3.0)
    assert torch.equal(model.b, ft.normal_(torch.empty(5), std=3.0, seed=SEED, stream="b"))
    conv = nn.Module()
    conv.k = nn.Parameter(torch.full((4, 2, 3), float("nan")))
    with ft.reproducible(conv, SEED):
        init.dirac_(conv.k, 2)
    assert torch.equal(conv.k, ft.dirac_(torch.empty(4, 2, 3), 2))


def test_a_deprecated_alias_is_served_and_still_warns():
    if not callable(getattr(init, "normal", None)):
        pytest.skip("this torch has no torch.nn.init.normal")
    model = nn.Linear(4, 3)
    with ft.reproducible(model, SEED), pytest.warns(FutureWarning, match="deprecated"):
        init.normal(model.weight, std=0.1)
    direct = ft.normal_(torch.empty(3, 4), std=0.1, seed=SEED, stream="weight")
    assert torch.equal(model.weight, direct)


def test_calls_on_the_same_name_are_stateless():
    """Each call draws from its name's one stream: the order and number of calls never
    change a tensor's values, so the last call decides."""
    model = nn.Linear(8, 8)
    with ft.reproducible(model, SEED):
        init.trunc_normal_(model.weight, std=0.02)
        init.trunc_normal_(model.weight, std=0.02)
        first = model.weight.detach().clone()
        init.normal_(model.weight)
        init.trunc_normal_(model.weight, std=0.02)
    assert torch.equal(model.weight, first)
    assert torch.equal(
        first, ft.trunc_normal_(torch.empty(8, 8), std=0.02, seed=SEED, stream="weight")
    )


# ---------------------------------------------------------------------------
# What stays torch's
# ---------------------------------------------------------------------------


def torch_calls_on(scratch: list[torch.Tensor]) -> None:
    a, b, c, d = scratch
    init.orthogonal_(a)  # draws into tensors of its own
    init.kaiming_uniform_(b, a=math.sqrt(5))
    init.trunc_normal_(c, std=0.02)
    c.normal_(1.0, 2.0)
    d.uniform_(-1.0, 1.0)
    d[0].fill_(7.0)
    d[1].zero_()


def test_other_tensors_get_torchs_own_bits():
    model = Transformer()
    shapes = [(6, 4), (5, 3), (4, 4), (3, 4)]
    torch.manual_seed(11)
    outside = [torch.empty(s) for s in shapes]
    torch_calls_on(outside)
    torch.manual_seed(11)
    inside = [torch.empty(s) for s in shapes]
    with ft.reproducible(model, SEED):
        torch_calls_on(inside)
    for x, y in zip(outside, inside, strict=True):
        assert torch.equal(x, y)


def test_views_of_a_module_tensor():
    """A deterministic fill of a view is torch's; a random one is refused before it writes."""
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.fill_(2.0)
    with ft.reproducible(model, SEED):
        with torch.no_grad():
            model.weight[0].zero_()
        model.weight.data[1].fill_(-1.0)
        init.constant_(model.weight.data[2, :2], 5.0)
        for refused in (
            lambda: model.weight.data[1].normal_(),
            lambda: model.weight.data[:, 1:].uniform_(),
            lambda: init.trunc_normal_(model.weight.data[0], std=0.02),
            lambda: init.orthogonal_(model.weight.data[:2]),
        ):
            with pytest.raises(ValueError, match="view of part of 'weight'"):
                refused()
    expected_weight = torch.tensor([[0.0] * 4, [-1.0] * 4, [5.0, 5.0, 2.0, 2.0]])
    assert torch.equal(model.weight, expected_weight)


def test_meta_tensors_are_left_alone():
    with torch.device("meta"):
        model = Transformer()
    rng = torch.get_rng_state()
    with ft.reproducible(model, SEED):
        model.init_weights()
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(t.is_meta for t in model.state_dict().values())


def test_tensors_replaced_inside_the_context_are_found_again():
    """to_empty inside the context replaces every parameter and buffer; .data = ...
    keeps the Parameter with new memory: calls on them, and on their aliases, are served."""
    with torch.device("meta"):
        model = Transformer()
    with ft.reproducible(model, SEED):
        model.to_empty(device="cpu")
        model.init_weights()
    assert_state_equal(model, expected(Transformer(), SEED))
    linear = nn.Linear(4, 3)
    with ft.reproducible(linear, SEED):
        linear.weight.data.normal_()  # indexes the memory
        linear.weight.data = torch.empty(3, 4)
        linear.weight.data.uniform_()
    assert torch.equal(linear.weight, ft.uniform_(torch.empty(3, 4), seed=SEED, stream="weight"))


def test_another_threads_calls_are_torchs():
    model = Transformer()
    entered, done = threading.Event(), threading.Event()
    results: dict[str, torch.Tensor] = {}

    def other_thread() -> None:
        entered.wait(timeout=60)
        generator = torch.Generator().manual_seed(3)
        init.normal_(model.output.weight, generator=generator)
        model.logit_scale.uniform_(generator=generator)
        results["weight"] = model.output.weight.detach().clone()
        results["scale"] = model.logit_scale.clone()
        done.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with ft.reproducible(model, SEED):
        entered.set()
        assert done.wait(timeout=60)
    thread.join(timeout=60)
    generator = torch.Generator().manual_seed(3)
    weight = init.normal_(torch.empty(VOCAB, DIM), generator=generator)
    scale = torch.empty(VOCAB).uniform_(generator=generator)
    assert torch.equal(results["weight"], weight)
    assert torch.equal(results["scale"], scale)


def test_a_leaf_that_requires_grad_keeps_torchs_error():
    model = nn.Linear(4, 3)
    with ft.reproducible(model, SEED), pytest.raises(RuntimeError, match="leaf Variable"):
        model.weight.normal_()


# ---------------------------------------------------------------------------
# Entering and leaving
# ---------------------------------------------------------------------------


def test_restored_after_exit_and_after_an_exception():
    before = saved_attributes()
    model = Transformer()
    with ft.reproducible(model, SEED):
        assert init.normal_ is not before["init.normal_"]
        assert "normal_" in torch.Tensor.__dict__
        assert nn.Embedding._fill_padding_idx_with_zero is not before["Embedding"]
    assert saved_attributes() == before
    with pytest.raises(KeyError, match="boom"), ft.reproducible(model, SEED):
        model.init_weights()
        raise KeyError("boom")
    assert saved_attributes() == before
    assert "normal_" not in torch.Tensor.__dict__  # the inherited method shows again


def test_contexts_nest_and_the_innermost_serves():
    model = Transformer()
    block = model.layers["1"]
    with ft.reproducible(model, SEED):
        with ft.reproducible(block, SEED + 1, prefix="layers.1."):
            model.init_weights()
        inner = block.attention.wq.weight.detach().clone()
        outer = model.layers["0"].attention.wq.weight.detach().clone()
        assert "normal_" in torch.Tensor.__dict__  # the outer context still patches
        block.init_weights()
    one = ft.trunc_normal_(
        torch.empty(DIM, DIM), std=0.02, seed=SEED + 1, stream="layers.1.attention.wq.weight"
    )
    zero = ft.trunc_normal_(
        torch.empty(DIM, DIM), std=0.02, seed=SEED, stream="layers.0.attention.wq.weight"
    )
    assert torch.equal(inner, one)
    assert torch.equal(outer, zero)
    assert not torch.equal(block.attention.wq.weight, inner)  # the outer seed again


def test_the_context_can_be_entered_again():
    model = nn.Linear(3, 3)
    context = ft.reproducible(model, SEED)
    for _ in range(2):
        with context:
            init.normal_(model.weight)
    assert torch.equal(model.weight, ft.normal_(torch.empty(3, 3), seed=SEED, stream="weight"))


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ((object(), SEED), TypeError, "module must be a torch.nn.Module"),
        ((nn.Linear(2, 2), -1), OverflowError, "seed"),
        ((nn.Linear(2, 2), "1"), TypeError, "seed"),
        ((nn.Linear(2, 2), SEED, {"prefix": 3}), TypeError, "prefix must be a str"),
        ((nn.Linear(2, 2), SEED, {"rename": "x"}), TypeError, "rename must be a callable"),
        (
            (nn.Linear(2, 2), SEED, {"rename": len}),
            TypeError,
            r"rename\('weight'\) must return a str",
        ),
        ((nn.Linear(2, 2), SEED, {"rename": lambda n: "x"}), ValueError, "same canonical name 'x'"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_patched(arguments, error, match):
    *positional, options = arguments if isinstance(arguments[-1], dict) else (*arguments, {})
    with pytest.raises(error, match=match):
        ft.reproducible(*positional, **options)
