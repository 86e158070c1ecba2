"""A spec recorded from transformers' own weight initialization.

    spec = spec_from_transformers(json.load(open("config.json")))
    spec = spec_from_transformers(config, model_class="AutoModelForSeq2SeqLM", seed=7)

The model is built from the config on the `meta` device (no memory, no values), then
its own `initialize_weights` runs while every init primitive it can reach records what
it was asked to do instead of doing it: the functions transformers routes all of
torch.nn.init through (`transformers.initialization.TORCH_INIT_FUNCTIONS`),
`transformers.initialization.copy_`, and the Tensor methods normal_, uniform_, zero_,
fill_ and copy_ when they write a parameter (model code that writes `.data` directly).

Rules (chosen here; docs/spec.md is the reference for the spec itself):
- A record that writes the whole tensor replaces every record before it, as the real
  calls would overwrite each other: the LAST whole-tensor record is the initializer.
  Zeroing (or filling with 0) one row of axis 0 afterwards, as `weight[padding_idx]
  .zero_()` does, adds that row to zero_rows; a whole-tensor record clears them.
- Each primitive becomes the fastinit initializer with the same formula: normal_ ->
  normal(mean, std); uniform_ -> uniform(low, high); constant_/fill_ -> zeros, ones or
  constant(value); trunc_normal_ -> truncated_normal(mean, std, a, b) (absolute bounds,
  as torch's); xavier_*/kaiming_* -> variance_scaling with scale = gain^2, the same mode
  (xavier: fan_avg) and layout "torch" (torch's fans: dim 1 x receptive field in, dim 0
  x receptive field out).
- A value the model computes (copy_) is evaluated on the CPU: the tensor factories it
  calls with the meta device make CPU tensors, and torch.rand / uniform_ on its own
  scratch tensors hand out known probe draws. Recorded twice with different probes,
  a value the same both times is a literal (`constant` with the smallest array that
  broadcasts back to it: Mamba's A_log); one that changes must fit a formula of
  fastinit.computed at the probe's draws (the dt bias; Qwen3-Next's A_log), else it
  is refused naming the tensor. In-place scalings (`p /= k`, `copy_(p, p / k)`) scale
  the recorded initializer.
- eye_, dirac_, orthogonal_ and sparse_ (not in specs.INITIALIZERS), a partial write
  that is not a zeroed row, a non-floating tensor and a tensor with no record are
  refused naming the tensor.
- Every tensor has `dtype`, but those transformers keeps in float32 when it loads a
  model in that dtype (`_keep_in_fp32_modules` under float16, `_keep_in_fp32_modules_
  strict` under float16 and bfloat16: T5's `wo`, DeepSeek-V3's e_score_correction_bias).
- Names, shapes and order are the meta model's state dict after what save_pretrained
  drops (`_keys_to_ignore_on_save`, tied copies: transformers' own
  remove_tied_weights_from_state_dict); the stream of a tensor is its name.
- Tied parameters: a real model is initialized before tie_weights copies the source
  onto the target, so the record is taken with each target untied (a parameter of its
  own, not saved): the saved tensor carries the source's init (an embedding's zeroed
  padding row survives a tied lm_head's normal_).

The primitives are patched process-wide while the init runs (as transformers' own
guard_torch_init_functions does), but each replacement serves the recording thread
only: other threads meanwhile get torch's own functions, and recordings in several
threads take turns (a lock). Deriving a spec takes well under a second once transformers
and the model's classes are imported (bench/RESULTS.md: DeepSeek-V3, 967 tensors, 0.14 s;
Mamba-2.8B, recorded twice, 0.66 s).
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, cast

import numpy as np

from . import computed, specs
from .specs import DTYPES, ModelSpec, TensorSpec

__all__ = ["spec_from_transformers"]

# Tensor methods model code calls on parameters (or their .data) to initialize them.
_TENSOR_METHODS = ("normal_", "uniform_", "zero_", "fill_", "copy_")
# In-place scalings of an initialized parameter (`weight /= math.sqrt(2 * n_layer)`):
# name -> whether the number divides.
_SCALINGS = {"mul_": False, "__imul__": False, "div_": True, "__itruediv__": True}
# ... and out of place, copied back (`init.copy_(p, p / math.sqrt(n))`).
_DERIVED = {"__mul__": False, "__rmul__": False, "__truediv__": True, "mul": False, "div": True}
# Factories whose meta-device tensors are made on the CPU while the init runs, so that a
# value the model computes (A_log = log(arange), dt from rand) can be evaluated.
_FACTORIES = (
    "arange", "empty", "zeros", "ones", "full", "linspace", "rand",
    "empty_like", "zeros_like", "ones_like", "full_like", "rand_like",
)  # fmt: skip


class _Entry:
    """What the init asked of one parameter: the last whole-tensor initializer and the
    rows of axis 0 zeroed after it (or the reason it cannot be a spec tensor)."""

    __slots__ = ("init", "params", "zero_rows", "refusal", "computed")

    def __init__(self) -> None:
        self.init: str | None = None
        self.params: dict[str, Any] = {}
        self.zero_rows: list[int] = []
        self.refusal: str | None = None
        # A value the model computed (copy_): its values and the probes drawn before it.
        self.computed: _Computed | None = None

    def whole(self, init: str, params: dict[str, Any]) -> None:
        self.init, self.params, self.zero_rows, self.refusal = init, params, [], None
        self.computed = None

    def refuse(self, why: str) -> None:
        self.init, self.params, self.zero_rows, self.refusal = None, {}, [], why
        self.computed = None


class _Computed(NamedTuple):
    values: np.ndarray  # float64, the parameter's shape
    probes: tuple[np.ndarray, ...]  # the uniform draws handed out before the copy, newest first


def _constant(value: float) -> tuple[str, dict[str, Any]]:
    if value == 0.0:
        return "zeros", {}
    if value == 1.0:
        return "ones", {}
    return "constant", {"value": float(value)}


class _Recorder:
    """Maps every tensor an init call targets back to the parameter whose storage it
    views (a meta tensor's storage is its own, shared by its views and its .data)."""

    def __init__(self, model: Any, probe_seed: int = 1) -> None:
        self.targets: dict[int, Any] = {}  # storage id -> the parameter or buffer
        for tensor in list(model.parameters()) + list(model.buffers()):
            self.targets.setdefault(_storage_id(tensor), tensor)
        self.entries: dict[int, _Entry] = {}
        self.probes: list[np.ndarray] = []
        self.probe_seed = probe_seed
        self._probe_draws = np.random.default_rng(probe_seed)

    def probe(self, count: int) -> np.ndarray:
        """Uniform [0, 1) values handed to the model's own draws (torch.rand, uniform_ on a
        tensor of its own) in place of random ones: known, so that a value computed from
        them can be recognized (_fit_formula). The first two are 2^-24 and 1 - 2^-24, so
        the ends of a formula's range are always seen (0 itself could make log(0))."""
        draws = self._probe_draws.random(count).astype(np.float32)
        ends = np.array([2.0**-24, 1.0 - 2.0**-24], np.float32)
        # Reversed in the second run: no draw is the same in both, even for 1 or 2 draws.
        draws[:2] = (ends if self.probe_seed % 2 else ends[::-1])[: min(count, 2)]
        self.probes.append(draws.astype(np.float64))
        return draws

    def computed(self, tensor: Any, values: np.ndarray) -> bool:
        """Records a whole-tensor copy_ of computed `values` (decided after the run)."""
        found = self.entry(tensor)
        if found is None:
            return False
        target, entry = found
        if not _is_whole(tensor, target):
            entry.refuse(f"a partial copy_ into a {list(tensor.shape)} view is not a spec")
            return True
        entry.whole("constant", {})
        entry.computed = _Computed(values.reshape(tuple(target.shape)), tuple(self.probes[::-1]))
        return True

    def scale(self, tensor: Any, factor: Any) -> bool:
        """Records an in-place multiplication of a recorded tensor by a number (as GPT-2
        style residual scaling `weight /= sqrt(2 n_layer)` does)."""
        found = self.entry(tensor)
        if found is None:
            return False
        target, entry = found
        if not _is_whole(tensor, target) or isinstance(factor, bool):
            entry.refuse("a partial or non-numeric in-place scaling is not a spec")
        elif entry.computed is not None:
            values = entry.computed.values * float(factor)
            entry.computed = entry.computed._replace(values=values)
        elif entry.init is not None:
            scaled = _scaled(entry.init, entry.params, float(factor))
            if scaled is None:
                entry.refuse(f"its init scales a {entry.init} in place, which has no spec form")
            else:
                entry.init, entry.params = scaled
                entry.computed = None
        return True

    def entry(self, tensor: Any) -> tuple[Any, _Entry] | None:
        key = _storage_id(tensor)
        target = self.targets.get(key)
        if target is None:
            return None
        return target, self.entries.setdefault(key, _Entry())

    def write(self, tensor: Any, init: str, params: dict[str, Any]) -> bool:
        """Records an initializer of `tensor`; False when it is no parameter/buffer."""
        found = self.entry(tensor)
        if found is None:
            return False
        target, entry = found
        if _is_whole(tensor, target):
            entry.whole(init, params)
            return True
        row = _row_of(tensor, target)
        if row is not None and init == "zeros":
            if entry.init is not None and row not in entry.zero_rows:
                entry.zero_rows.append(row)
            return True
        entry.refuse(f"a partial write ({init} of a {list(tensor.shape)} view) is not a spec")
        return True

    def refuse(self, tensor: Any, why: str) -> bool:
        found = self.entry(tensor)
        if found is None:
            return False
        found[1].refuse(why)
        return True


def _storage_id(tensor: Any) -> int:
    return int(tensor.untyped_storage()._cdata)


def _is_whole(tensor: Any, target: Any) -> bool:
    return bool(
        tuple(tensor.shape) == tuple(target.shape)
        and tensor.storage_offset() == target.storage_offset()
        and tensor.stride() == target.stride()
    )


def _row_of(tensor: Any, target: Any) -> int | None:
    """The row of axis 0 that `tensor` is (as weight[i] gives), else None."""
    if target.dim() < 1 or tuple(tensor.shape) != tuple(target.shape[1:]):
        return None
    if tensor.stride() != target.stride()[1:]:
        return None
    offset = tensor.storage_offset() - target.storage_offset()
    row_stride = target.stride()[0]
    if row_stride <= 0 or offset % row_stride or not 0 <= offset // row_stride < target.shape[0]:
        return None
    return int(offset // row_stride)


def _scaled(init: str, params: dict[str, Any], factor: float) -> tuple[str, dict[str, Any]] | None:
    """The initializer of `factor` times the values of (init, params), or None."""
    if not math.isfinite(factor):
        return None
    if init == "zeros":
        return init, params
    if init in ("ones", "constant") and not isinstance(params.get("value"), list):
        return _constant(float(params.get("value", 1.0)) * factor)
    if init == "normal":
        return init, {"mean": params["mean"] * factor, "std": params["std"] * abs(factor)}
    if init == "uniform":
        low, high = sorted((params["low"] * factor, params["high"] * factor))
        return init, {"low": low, "high": high}
    if init == "truncated_normal":
        a, b = sorted((params["a"] * factor, params["b"] * factor))
        return init, {"mean": params["mean"] * factor, "std": params["std"] * abs(factor),
                      "a": a, "b": b}  # fmt: skip
    if init == "variance_scaling" and factor:  # symmetric: the sign changes no distribution
        return init, {**params, "scale": params["scale"] * factor * factor}
    return None


def _literal(values: np.ndarray) -> float | list[Any] | None:
    """`values` as the smallest literal that broadcasts back to them (each axis along which
    they are constant kept at size 1, leading size-1 axes dropped), or None when that
    is more than specs.MAX_LITERAL numbers."""
    reduced = values
    for axis in range(values.ndim):
        first = reduced.take([0], axis=axis)
        if np.array_equal(np.broadcast_to(first, reduced.shape), reduced):
            reduced = first
    while reduced.ndim and reduced.shape[0] == 1:
        reduced = reduced[0]
    if reduced.size > specs.MAX_LITERAL:
        return None
    return cast("float | list[Any]", reduced.tolist())


def _snap(value: float, known: list[float]) -> float:
    """A fitted parameter as the config's number it came from (within 1e-4 of it), else
    as the shortest decimal within 2e-5 of it (the model code's own constant, 0.01 from
    0.00999989): the fit only sees float32 values."""
    for number in known:
        if number and abs(value - number) <= 1e-4 * abs(number):
            return number
    for digits in range(1, 7):
        short = float(f"{value:.{digits}g}")
        if abs(short - value) <= 2e-5 * abs(value):
            return short
    return float(f"{value:.7g}")


def _fit_inverse_softplus(u: np.ndarray, v: np.ndarray, known: list[float]) -> Any:
    """(init, params) of inverse_softplus_log_uniform when v is it at u, else None."""
    dt = np.logaddexp(0.0, v)  # softplus
    if not (dt > 0).all():
        return None
    y = np.log(dt)
    clamped = dt <= dt.min() * (1 + 1e-5)
    for keep, floor in ((np.ones_like(clamped), None), (~clamped, float(dt.min()))):
        if keep.sum() < 2 or np.ptp(u[keep]) == 0:
            continue
        slope, intercept = np.polyfit(u[keep], y[keep], 1)
        if np.abs(intercept + slope * u[keep] - y[keep]).max() > 1e-4:
            continue
        params: dict[str, Any] = {
            "low": _snap(math.exp(intercept), known),
            "high": _snap(math.exp(intercept + slope), known),
        }
        if floor is not None:
            params["floor"] = _snap(floor, known)
        return _checked_fit("inverse_softplus_log_uniform", params, u, v)
    return None


def _fit_log_of_uniform(u: np.ndarray, v: np.ndarray, known: list[float]) -> Any:
    """(init, params) of log_of_uniform when v is it at u, else None."""
    a = np.exp(v)
    slope, intercept = np.polyfit(u, a, 1)
    if np.abs(intercept + slope * u - a).max() > 1e-5 * np.abs(a).max():
        return None
    if abs(intercept) <= 1e-6 * abs(slope):  # uniform from 0 (OLMo-hybrid's A)
        intercept = 0.0
    params = {"low": _snap(float(intercept), known), "high": _snap(float(intercept + slope), known)}
    return _checked_fit("log_of_uniform", params, u, v)


def _checked_fit(init: str, params: dict[str, Any], u: np.ndarray, v: np.ndarray) -> Any:
    """(init, params) when the formula with them gives v at u to float32 accuracy."""
    try:
        expected = computed.FORMULAS[init](**params).fast(u)[0]
    except ValueError:
        return None
    if not np.allclose(expected, v, rtol=1e-5, atol=1e-5):
        return None
    return init, params


def _numbers(config: Any) -> list[float]:
    """Every number in a config, nested ones included: what a fitted parameter snaps to."""
    if isinstance(config, dict):
        return [n for value in config.values() for n in _numbers(value)]
    if isinstance(config, (list, tuple)):
        return [n for value in config for n in _numbers(value)]
    if isinstance(config, (int, float)) and not isinstance(config, bool):
        return [float(config)] if math.isfinite(config) else []
    return []


def _resolve(name: str, first: _Computed, second: _Computed | None, known: list[float]) -> Any:
    """The initializer of a computed value, from two runs with different probe draws:
    the same values -> a literal (no randomness in them); else the formula of fastinit.
    computed they fit at the probe's draws; else the reason there is none."""
    if second is not None and np.array_equal(first.values, second.values):
        literal = _literal(first.values)
        if literal is None:
            return f"its init computes {first.values.size:,} values with no smaller literal"
        return (
            _constant(literal) if isinstance(literal, float) else ("constant", {"value": literal})
        )
    flat = first.values.reshape(-1)
    for u in first.probes:
        if u.size == flat.size:
            for fit in (_fit_inverse_softplus, _fit_log_of_uniform):
                found = fit(u, flat, known)
                if found is not None:
                    return found
    return (
        "its init computes its values from a random draw, and they fit none of "
        f"fastinit.computed's formulas ({', '.join(computed.FORMULAS)})"
    )


def _gain_squared(nonlinearity: str, a: Any) -> float:
    """torch's calculate_gain(nonlinearity, a) squared: the variance scale. relu and
    leaky_relu gains are square roots, squared here without the rounding of sqrt."""
    import torch

    if nonlinearity == "relu":
        return 2.0
    if nonlinearity == "leaky_relu":
        slope = 0.01 if a is None else float(a)
        return 2.0 / (1.0 + slope**2)
    return float(torch.nn.init.calculate_gain(cast("Any", nonlinearity), a)) ** 2


def _recording_functions(recorder: _Recorder, originals: Mapping[str, Any]) -> dict[str, Any]:
    """Replacements for transformers.initialization.TORCH_INIT_FUNCTIONS: they record;
    a tensor that is no parameter or buffer of the model gets the real call."""

    def recording(name: str, rule: Any) -> Any:
        def function(tensor: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs.pop("generator", None)
            made = rule(tensor, *args, **kwargs)
            if isinstance(made, str):
                handled = recorder.refuse(tensor, made)
            else:
                handled = recorder.write(tensor, *made)
            if handled:
                return tensor
            return originals[name](tensor, *args, **kwargs)

        return function

    def scaled(fan: str, distribution: str, scale: float) -> tuple[str, dict[str, Any]]:
        mode = fan if fan in ("fan_in", "fan_out") else "fan_avg"
        params = {"scale": scale, "mode": mode, "distribution": distribution, "layout": "torch"}
        return "variance_scaling", params

    def kaiming(distribution: str) -> Any:
        def rule(
            tensor: Any, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
        ) -> Any:
            return scaled(mode, distribution, _gain_squared(nonlinearity, a))

        return rule

    rules: dict[str, Any] = {
        "uniform_": lambda t, a=0.0, b=1.0: ("uniform", {"low": float(a), "high": float(b)}),
        "normal_": lambda t, mean=0.0, std=1.0: (
            "normal",
            {"mean": float(mean), "std": float(std)},
        ),
        "constant_": lambda t, val: _constant(float(val)),
        "ones_": lambda t: ("ones", {}),
        "zeros_": lambda t: ("zeros", {}),
        "trunc_normal_": lambda t, mean=0.0, std=1.0, a=-2.0, b=2.0: (
            "truncated_normal",
            {"mean": float(mean), "std": float(std), "a": float(a), "b": float(b)},
        ),
        "xavier_uniform_": lambda t, gain=1.0: scaled("fan_avg", "uniform", float(gain) ** 2),
        "xavier_normal_": lambda t, gain=1.0: scaled("fan_avg", "normal", float(gain) ** 2),
        "kaiming_uniform_": kaiming("uniform"),
        "kaiming_normal_": kaiming("normal"),
    }
    for name in ("eye_", "dirac_", "orthogonal_", "sparse_"):
        rules[name] = lambda t, *a, _name=name, **k: f"{_name} has no spec initializer"
    return {name: recording(name, rules[name]) for name in originals if name in rules}


def _pair(args: tuple[Any, ...], kwargs: dict[str, Any], first: str, second: str) -> Any:
    """The two parameters of Tensor.normal_ / uniform_ (positional or by keyword, defaults
    0 and 1), as floats."""
    given = {**dict(zip((first, second), args, strict=False)), **kwargs}
    return float(given.get(first, 0.0)), float(given.get(second, 1.0))


_ONE_RECORDING = threading.Lock()  # the patches of one recording at a time
_RECORDING_HERE = threading.local()  # set while this thread records


@contextlib.contextmanager
def _one_recording() -> Iterator[None]:
    """The lock of recordings, refused (not waited for) when this thread already holds it:
    a model whose init derives another spec would otherwise wait for itself forever."""
    if getattr(_RECORDING_HERE, "active", False):
        raise RuntimeError(
            "spec_from_transformers was called while this thread records a model's init "
            "(from inside initialize_weights); derive the other spec before or after"
        )
    with _ONE_RECORDING:
        _RECORDING_HERE.active = True
        try:
            yield
        finally:
            _RECORDING_HERE.active = False


@contextlib.contextmanager
def _recording(recorder: _Recorder) -> Iterator[None]:
    import torch
    from transformers import initialization

    table = initialization.TORCH_INIT_FUNCTIONS
    saved_table = dict(table)
    patched = (*_TENSOR_METHODS, *_SCALINGS, *_DERIVED)
    real = {name: getattr(torch.Tensor, name) for name in patched}

    def copied(tensor: Any, other: Any) -> Any:
        """copy_: a value the model computed (on the CPU, see on_cpu): one constant, or
        values decided after the run (a literal or a fastinit.computed formula)."""
        if recorder.targets.get(_storage_id(tensor)) is None:
            return real["copy_"](tensor, other)
        if isinstance(other, torch.Tensor) and other.device.type == "cpu":
            values = other.detach().to(torch.float64).numpy()
            flat = values.reshape(-1)
            if flat.size and bool((flat == flat[0]).all()):
                recorder.write(tensor, *_constant(float(flat[0])))
            elif flat.size == tensor.numel() and np.isfinite(flat).all():
                recorder.computed(tensor, np.array(np.broadcast_to(values, tensor.shape)))
            else:
                recorder.refuse(tensor, f"its init copies in {flat.size} values it computed")
        elif isinstance(other, (int, float)) and not isinstance(other, bool):
            recorder.write(tensor, *_constant(float(other)))
        elif derived.get(_storage_id(other), (None, 0.0))[0] == _storage_id(tensor):
            recorder.scale(tensor, derived[_storage_id(other)][1])  # p.copy_(p / k)
        else:
            recorder.refuse(
                tensor, "its init copies in a value computed from the model's own tensors"
            )
        return tensor

    def probed(tensor: Any, low: float, high: float) -> Any:
        """uniform_ on a CPU tensor of the model's own making: the probe's draws."""
        draws = torch.from_numpy(recorder.probe(tensor.numel())).reshape(tensor.shape)
        return real["copy_"](tensor, draws.to(tensor.dtype) * (high - low) + low)

    def on_cpu(name: str) -> Any:
        """A tensor factory that makes on the CPU what the model asks for on the meta
        device (its parameters' device here), so that a value it computes has values;
        rand / rand_like hand out the probe's draws."""
        made = getattr(torch, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            kwargs.pop("generator", None)
            device = kwargs.get("device")
            like_meta = name.endswith("_like") and args and args[0].device.type == "meta"
            if (device is not None and torch.device(device).type == "meta") or (
                device is None and like_meta
            ):
                kwargs["device"] = "cpu"
            result = made(*args, **kwargs)
            if name.startswith("rand") and result.device.type == "cpu":
                probed(result, 0.0, 1.0)
            return result

        return call

    def method(name: str) -> Any:
        def call(tensor: Any, *args: Any, **kwargs: Any) -> Any:
            if recorder.targets.get(_storage_id(tensor)) is None:
                if name == "uniform_" and tensor.device.type == "cpu":
                    return probed(tensor, *_pair(args, kwargs, "from", "to"))
                return real[name](tensor, *args, **kwargs)
            kwargs.pop("generator", None)
            if name == "copy_":
                return copied(tensor, *args, **kwargs)
            if name == "zero_":
                recorder.write(tensor, "zeros", {})
            elif name == "fill_":
                (value,) = args or (kwargs["value"],)
                recorder.write(tensor, *_constant(float(value)))
            elif name == "normal_":
                mean, std = _pair(args, kwargs, "mean", "std")
                recorder.write(tensor, "normal", {"mean": mean, "std": std})
            else:  # uniform_
                low, high = _pair(args, kwargs, "from", "to")
                recorder.write(tensor, "uniform", {"low": low, "high": high})
            return tensor

        return call

    def scaling(name: str, inverse: bool) -> Any:
        def call(tensor: Any, other: Any, *args: Any, **kwargs: Any) -> Any:
            if recorder.targets.get(_storage_id(tensor)) is None or args or kwargs:
                return real[name](tensor, other, *args, **kwargs)
            if isinstance(other, (int, float)) and not isinstance(other, bool) and other:
                recorder.scale(tensor, 1.0 / other if inverse else other)
            else:
                recorder.refuse(tensor, f"its init scales it in place by {other!r}")
            return tensor

        return call

    # Out-of-place scalings of a parameter (p / k): result storage -> (p's storage, factor).
    derived: dict[int, tuple[int, float]] = {}

    def derive(name: str, inverse: bool) -> Any:
        def call(tensor: Any, other: Any, *args: Any, **kwargs: Any) -> Any:
            result = real[name](tensor, other, *args, **kwargs)
            numeric = isinstance(other, (int, float)) and not isinstance(other, bool) and other
            if numeric and recorder.targets.get(_storage_id(tensor)) is not None:
                factor = 1.0 / other if inverse else float(other)
                derived[_storage_id(result)] = (_storage_id(tensor), factor)
            return result

        return call

    # Other threads keep torch's own functions: each replacement serves this thread only.
    owner = threading.get_ident()

    def here_only(replacement: Any, original: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            chosen = replacement if threading.get_ident() == owner else original
            return chosen(*args, **kwargs)

        return call

    undo: list[tuple[Any, str, Any]] = []  # (owner object, name, its own attribute or None)

    def patch(target: Any, name: str, replacement: Any) -> None:
        undo.append((target, name, vars(target).get(name)))
        setattr(target, name, here_only(replacement, getattr(target, name)))

    try:
        recording = _recording_functions(recorder, saved_table)
        table.update({name: here_only(f, saved_table[name]) for name, f in recording.items()})
        patch(initialization, "copy_", copied)
        for name in _TENSOR_METHODS:
            patch(torch.Tensor, name, method(name))
        for name, inverse in _SCALINGS.items():
            patch(torch.Tensor, name, scaling(name, inverse))
        for name, inverse in _DERIVED.items():
            patch(torch.Tensor, name, derive(name, inverse))
        for name in _FACTORIES:
            patch(torch, name, on_cpu(name))
        yield
    finally:
        table.clear()
        table.update(saved_table)
        for target, name, own in reversed(undo):
            if own is None:
                delattr(target, name)  # it was inherited (Tensor's from TensorBase)
            else:
                setattr(target, name, own)


def _meta_model(config: Mapping[str, Any], model_class: str) -> Any:
    import torch
    import transformers

    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise ValueError(f"config model_type must be a non-empty string, got {model_type!r}")
    auto = getattr(transformers, model_class, None) if isinstance(model_class, str) else None
    if auto is None or not hasattr(auto, "from_config"):
        raise ValueError(
            f"model_class must name a transformers class with from_config "
            f"(e.g. AutoModelForCausalLM, AutoModel), got {model_class!r}"
        )
    fields = {key: value for key, value in config.items() if key != "model_type"}
    try:
        hf_config = transformers.AutoConfig.for_model(model_type, **fields)
    except ValueError as error:
        raise ValueError(f"config model_type {model_type!r}: {error}") from None
    with torch.device("meta"):
        try:
            return auto.from_config(hf_config)
        except ValueError as error:
            raise ValueError(f"model_class {model_class!r}: {error}") from None


def _saved_names(model: Any) -> dict[str, Any]:
    """The state dict save_pretrained writes: ignored keys and tied copies dropped."""
    from transformers.modeling_utils import remove_tied_weights_from_state_dict

    state = model.state_dict(keep_vars=True)
    for key in getattr(model, "_keys_to_ignore_on_save", None) or ():
        state.pop(key, None)
    return cast("dict[str, Any]", remove_tied_weights_from_state_dict(state, model))


def _untie(model: Any) -> None:
    """Gives each tied target (lm_head.weight, ...) a parameter of its own, as it has while
    transformers initializes a model (tie_weights runs after): the target's own init then
    lands on a tensor that is not saved, and the saved source keeps the source's init."""
    import torch

    for target in getattr(model, "all_tied_weights_keys", None) or {}:
        owner_name, _, attribute = target.rpartition(".")
        owner = model.get_submodule(owner_name)
        tied = getattr(owner, attribute, None)
        if isinstance(tied, torch.nn.Parameter):
            fresh = torch.nn.Parameter(torch.empty_like(tied, device="meta"), tied.requires_grad)
            setattr(owner, attribute, fresh)


def _kept_in_float32(model: Any, dtype: str) -> Any:
    """Whether a tensor name stays float32 in a checkpoint of `dtype`, as transformers
    loads it: `_keep_in_fp32_modules` under float16, `_keep_in_fp32_modules_strict` under
    float16 and bfloat16 (each an unanchored pattern, `*` any text, searched in the name:
    transformers' dtype plan)."""
    patterns: set[str] = set()
    if dtype == "float16":
        patterns.update(getattr(model, "_keep_in_fp32_modules", None) or ())
    if dtype in ("float16", "bfloat16"):
        patterns.update(getattr(model, "_keep_in_fp32_modules_strict", None) or ())
    if not patterns:
        return lambda name: False
    pattern = re.compile("|".join(f"(?:{p.replace('*', '.*')})" for p in sorted(patterns)))
    return lambda name: pattern.search(name) is not None


def _record(
    config: dict[str, Any], model_class: str, *, probe_seed: int
) -> tuple[Any, dict[str, Any], dict[str, _Entry | None]]:
    """The meta model, the tensors save_pretrained writes and, by their names, what the
    init recorded of each (None: nothing)."""
    import torch

    # N.B. transformers writes into the dicts it is given (rope_scaling gains rope_theta):
    # it gets a copy, and the spec keeps the config exactly as the caller gave it.
    model = _meta_model(specs.plain_config(config) or {}, model_class)
    saved = _saved_names(model)
    _untie(model)
    recorder = _Recorder(model, probe_seed)
    with _one_recording(), _recording(recorder), torch.no_grad():
        model.initialize_weights()
    return model, saved, {name: recorder.entries.get(_storage_id(t)) for name, t in saved.items()}


def spec_from_transformers(
    config: Mapping[str, Any],
    *,
    model_class: str = "AutoModelForCausalLM",
    dtype: str | None = None,
    seed: int = 0,
) -> ModelSpec:
    """The spec of the checkpoint `model_class.from_config(config).save_pretrained` writes,
    each tensor initialized as transformers' own initialize_weights would (see the module
    docstring for the rules).

    config: a Hugging Face config.json (parsed) with model_type. model_class: the name of
    a transformers auto class (AutoModelForCausalLM, AutoModel, AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM, AutoModelForImageClassification, ...). dtype: every tensor's
    dtype; None takes the config's dtype / torch_dtype when it is one of DTYPES, else
    float32. The config is kept in the spec. Raises ValueError naming the tensor when a
    parameter's init has no spec equivalent or there is none.
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a JSON object, got {type(config).__name__}")
    specs.check_depth("config", config)
    if dtype is None:
        declared = config.get("dtype", config.get("torch_dtype"))
        dtype = declared if declared in DTYPES else "float32"
    dtype = specs.check_dtype("dtype", dtype)
    seed = specs.check_seed("seed", seed)
    kept = cast("dict[str, Any]", specs.plain_config(config))
    model, saved, entries = _record(kept, model_class, probe_seed=1)
    if any(entry is not None and entry.computed is not None for entry in entries.values()):
        # A second run with other probe draws tells computed literals from random values.
        _, _, again = _record(kept, model_class, probe_seed=2)
        known = _numbers(model.config.to_dict())
        for name, entry in entries.items():
            if entry is not None and entry.computed is not None:
                other = again.get(name)
                second = other.computed if other is not None else None
                resolved = _resolve(name, entry.computed, second, known)
                if isinstance(resolved, str):
                    entry.refuse(resolved)
                else:
                    entry.whole(*resolved)
    in_float32 = _kept_in_float32(model, dtype)
    tensors = []
    for name, tensor in saved.items():
        if not tensor.is_floating_point():
            raise ValueError(
                f"tensor {name!r} is {tensor.dtype}; a spec holds only floating tensors"
            )
        entry = entries[name]
        if entry is None or (entry.init is None and entry.refusal is None):
            raise ValueError(
                f"tensor {name!r}: {type(model).__name__}'s weight initialization does not "
                "initialize it (no record), so it has no spec initializer"
            )
        if entry.init is None:
            raise ValueError(f"tensor {name!r}: {entry.refusal}")
        shape = tuple(int(size) for size in tensor.shape)
        zero_rows = tuple(sorted(entry.zero_rows))
        own_dtype = "float32" if in_float32(name) else dtype
        tensors.append(
            TensorSpec(name, shape, own_dtype, entry.init, dict(entry.params), zero_rows)
        )
    if not tensors:
        raise ValueError(f"model_class {model_class!r}: the model has no tensors")
    return specs.check_spec(ModelSpec(seed, tuple(tensors), kept))
