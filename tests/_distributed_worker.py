"""The code test_distributed.py runs in other processes: gloo worlds and fake-process-group worlds.

Two launchers, each returning a report {case name: "ok" or the failure text}:
- run_gloo_world(world_size): spawns `world_size` processes that join one gloo process group
  on 127.0.0.1 (a free port) and run EVERY gloo case in order; each case compares the
  sharded result (`full_tensor()`) with the single-process result computed in the same
  worker with the same seed, bit for bit.
- run_fake_worlds(world_sizes): spawns one clean launcher process that computes the
  single-process references once, then forks one process per simulated rank (torch's fake
  process group: no communication; a device mesh leaks state between ranks of one process,
  so each rank has a process of its own); every rank compares its local shards with the
  matching slices of the references.

Hard limits: every process is joined with a deadline and killed after it; a rank that never
reports a case fails that case with its captured stdout/stderr. Cases collect mismatches
instead of raising at the first one, so every rank issues the same collectives in the same
order even when a comparison fails.

Run by path for debugging: `python tests/_distributed_worker.py gloo 4` or `... fake 8 16`.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEED = 20260
OK = "ok"

# --------------------------------------------------------------------------------------
# Launchers (run in the test process; import no torch)
# --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _join_all(processes: list[Any], deadline: float) -> list[str]:
    """Join every process by `deadline`, kill the stragglers; the problems, as text."""
    problems = []
    for rank, process in enumerate(processes):
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(10)
            problems.append(f"rank {rank} timed out and was killed")
        elif process.exitcode != 0:
            problems.append(f"rank {rank} exited with code {process.exitcode}")
    return problems


def _read_log(path: Path, limit: int = 6000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _merge(
    case_names: list[str], per_rank: list[dict[str, str]], problems: list[str], logs: str
) -> dict[str, str]:
    """{case: "ok"} where every rank said ok, else every rank's failure (and the logs)."""
    report = {}
    for case in case_names:
        by_text: dict[str, list[int]] = {}
        for rank, results in enumerate(per_rank):
            result = results.get(case, "no result (crashed or timed out)")
            if result != OK:
                by_text.setdefault(result, []).append(rank)
        failures = [f"ranks {ranks}: {text}" for text, ranks in by_text.items()]
        if failures:
            report[case] = "\n".join([*failures, *problems, "---- worker output ----", logs])
        else:
            report[case] = OK
    return report


def run_gloo_world(world_size: int, timeout: float = 150.0) -> dict[str, str]:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix=f"fastinit-gloo{world_size}-") as folder:
        directory = Path(folder)
        port = free_port()
        processes = [
            context.Process(
                target=gloo_rank_main, args=(rank, world_size, port, str(directory)), daemon=True
            )
            for rank in range(world_size)
        ]
        for process in processes:
            process.start()
        problems = _join_all(processes, time.monotonic() + timeout)
        per_rank = [_read_results(directory / f"rank{rank}.json") for rank in range(world_size)]
        logs = "\n".join(
            f"== rank {rank} ==\n{_read_log(directory / f'rank{rank}.log')}"
            for rank in range(world_size)
        )
    return _merge(gloo_case_names(world_size), per_rank, problems, logs)


def run_fake_worlds(world_sizes: tuple[int, ...], timeout: float = 120.0) -> dict[str, str]:
    """Report keyed "world{N}/{case}"; one spawned launcher forks every simulated rank."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="fastinit-fake-") as folder:
        directory = Path(folder)
        launcher = context.Process(
            target=fake_launcher_main, args=(tuple(world_sizes), str(directory)), daemon=True
        )
        launcher.start()
        problems = _join_all([launcher], time.monotonic() + timeout)
        report = {}
        for world in world_sizes:
            per_rank = [
                _read_results(directory / f"world{world}-rank{rank}.json") for rank in range(world)
            ]
            logs = _read_log(directory / "launcher.log") + "".join(
                f"\n== world {world} rank {rank} ==\n"
                + _read_log(directory / f"world{world}-rank{rank}.log", 1500)
                for rank in range(world)
                if per_rank[rank].get("__done__") != OK
            )
            names = fake_case_names(world)
            merged = _merge(names, per_rank, problems, logs)
            report.update({f"world{world}/{case}": text for case, text in merged.items()})
    return report


def _read_results(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------------------
# Shared by every worker
# --------------------------------------------------------------------------------------


def _capture_output(log_path: Path) -> None:
    """Send this process's stdout and stderr (C and Python) to `log_path`."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


class Checks:
    """Mismatches of one case, collected so that a failing comparison never skips a
    collective the other ranks are about to issue."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def same_bits(self, what: str, actual: Any, expected: Any) -> None:
        import torch

        if actual.dtype != expected.dtype or tuple(actual.shape) != tuple(expected.shape):
            self.failures.append(
                f"{what}: {actual.dtype}{tuple(actual.shape)} vs "
                f"{expected.dtype}{tuple(expected.shape)}"
            )
            return
        if actual.numel() == 0:
            return
        a = actual.detach().contiguous().reshape(-1).view(torch.uint8)
        b = expected.detach().contiguous().reshape(-1).view(torch.uint8)
        if not torch.equal(a, b):
            unequal = a.reshape(actual.numel(), -1).ne(b.reshape(actual.numel(), -1)).any(1)
            first = int(unequal.nonzero()[0, 0])
            index = tuple(int(i) for i in torch.unravel_index(torch.tensor(first), actual.shape))
            self.failures.append(
                f"{what}: {int(unequal.sum())} of {actual.numel()} elements differ, the first at "
                f"{index}: {actual.reshape(-1)[first].item()!r} vs "
                f"{expected.reshape(-1)[first].item()!r}"
            )

    def true(self, what: str, condition: bool) -> None:
        if not condition:
            self.failures.append(what)

    def raises(self, what: str, errors: tuple[type, ...], words: tuple[str, ...], call) -> None:
        try:
            call()
        except errors as error:
            missing = [word for word in words if word not in str(error)]
            if missing:
                self.failures.append(f"{what}: message {str(error)!r:.300} lacks {missing}")
        except Exception as error:  # noqa: BLE001 - a wrong exception type is a failure
            self.failures.append(f"{what}: raised {type(error).__name__}: {error!s:.300}")
        else:
            self.failures.append(f"{what}: did not raise")

    def result(self) -> str:
        return OK if not self.failures else "\n".join(self.failures)


def _run_cases(cases: dict[str, Callable[[Checks], None]], results_path: Path) -> None:
    """Run every case; write all results after each so a crash keeps what came before."""
    results: dict[str, str] = {}
    for name, case in cases.items():
        checks = Checks()
        started = time.monotonic()
        try:
            case(checks)
            results[name] = checks.result()
        except Exception:  # noqa: BLE001 - reported, and the next case still runs
            results[name] = "".join([*checks.failures, traceback.format_exc()])
        print(f"case {name}: {time.monotonic() - started:.2f} s", flush=True)
        results_path.write_text(json.dumps(results))
    results["__done__"] = OK
    results_path.write_text(json.dumps(results))


# --------------------------------------------------------------------------------------
# Models (the same definitions serve the sharded run and the single-process reference)
# --------------------------------------------------------------------------------------

VOCAB, DIM, HIDDEN, LAYERS = 37, 24, 48, 2
# Row 33 of 37: on the last rank at world 4 (rows 30..36), on rank 1 at world 2.
PADDING_IDX = 33


def _model_classes():
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(DIM)
            self.fc1 = nn.Linear(DIM, HIDDEN)
            self.fc2 = nn.Linear(HIDDEN, DIM)
            self.post_norm = nn.RMSNorm(DIM)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.post_norm(x + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm(x)))))

    class TinyLM(nn.Module):
        """Embedding with padding_idx, Linear, LayerNorm, RMSNorm, tied embedding/head."""

        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(VOCAB, DIM, padding_idx=PADDING_IDX)
            self.blocks = nn.ModuleList([Block() for _ in range(LAYERS)])
            self.norm = nn.RMSNorm(DIM)
            self.head = nn.Linear(DIM, VOCAB, bias=False)
            self.head.weight = self.embed.weight

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            x = self.embed(tokens)
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm(x))

    class TitanLayer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention_norm = nn.RMSNorm(DIM)
            self.wq = nn.Linear(DIM, DIM, bias=False)
            self.wo = nn.Linear(DIM, DIM, bias=False)
            self.ffn_norm = nn.RMSNorm(DIM)
            self.w1 = nn.Linear(DIM, HIDDEN, bias=False)
            self.w2 = nn.Linear(HIDDEN, DIM, bias=False)

        def init_weights(self, init_std: float) -> None:
            for norm in (self.attention_norm, self.ffn_norm):
                norm.reset_parameters()  # torch.nn.init.ones_
            nn.init.trunc_normal_(self.wq.weight, mean=0.0, std=0.02)
            nn.init.trunc_normal_(self.w1.weight, mean=0.0, std=0.02)
            for linear in (self.wo, self.w2):
                nn.init.trunc_normal_(linear.weight, mean=0.0, std=init_std)

    class Titan(nn.Module):
        """torchtitan's Llama init_weights, unchanged in spirit: per-layer std, normal_
        embedding, ones_ norms, a cut-off output projection."""

        def __init__(self) -> None:
            super().__init__()
            self.tok_embeddings = nn.Embedding(VOCAB, DIM)
            self.layers = nn.ModuleDict({str(i): TitanLayer() for i in range(LAYERS)})
            self.norm = nn.RMSNorm(DIM)
            self.output = nn.Linear(DIM, VOCAB, bias=False)

        def init_weights(self) -> None:
            nn.init.normal_(self.tok_embeddings.weight)
            for layer_id, layer in self.layers.items():
                layer.init_weights(0.02 / (2 * (int(layer_id) + 1)) ** 0.5)
            self.norm.reset_parameters()
            final_out_std = DIM**-0.5
            cutoff = 3.0
            nn.init.trunc_normal_(
                self.output.weight,
                mean=0.0,
                std=final_out_std,
                a=-cutoff * final_out_std,
                b=cutoff * final_out_std,
            )

    return TinyLM, Titan


def _tokens():
    import torch

    generator = torch.Generator().manual_seed(7)
    tokens = torch.randint(0, VOCAB, (2, 5), generator=generator)
    tokens[0, 0] = PADDING_IDX
    return tokens


def _reference_lm():
    """The single-process init_module result (seed SEED) of TinyLM built on meta."""
    import fastinit.torch as finit
    import torch

    TinyLM, _ = _model_classes()
    with torch.device("meta"):
        model = TinyLM()
    return finit.init_module(model, SEED)


def _reference_titan():
    import fastinit.torch as finit
    import torch

    _, Titan = _model_classes()
    torch.manual_seed(0)
    model = Titan()
    with finit.reproducible(model, SEED):
        model.init_weights()
    return model


def _full_state(model) -> dict[str, Any]:
    """Every parameter and buffer as a plain full tensor (all-gathers DTensors)."""
    from torch.distributed.tensor import DTensor

    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    return {
        name: (t.full_tensor() if isinstance(t, DTensor) else t).detach()
        for name, t in tensors.items()
    }


def _canonical(name: str) -> str:
    for wrapper in ("_orig_mod.", "_checkpoint_wrapped_module.", "_fsdp_wrapped_module."):
        name = name.replace(wrapper, "")
    return name


def _compare_models(checks: Checks, label: str, model, reference) -> None:
    actual = {_canonical(name): t for name, t in _full_state(model).items()}
    expected = _full_state(reference)
    checks.true(
        f"{label}: names {sorted(actual)} != {sorted(expected)}", set(actual) == set(expected)
    )
    for name in sorted(set(actual) & set(expected)):
        checks.same_bits(f"{label} {name}", actual[name], expected[name])


def _poison(model) -> None:
    """NaN in every local shard, so an element init never writes is caught."""
    import torch
    from torch.distributed.tensor import DTensor

    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            local = t.to_local() if isinstance(t, DTensor) else t
            if local.is_floating_point():
                local.fill_(float("nan"))


# --------------------------------------------------------------------------------------
# gloo cases
# --------------------------------------------------------------------------------------


# (name, call(tensor, seed, stream), shape): every drop-in with non-default arguments.
def _dropins():
    import fastinit.torch as finit

    square_ish, conv = (13, 7), (6, 4, 3)
    return [
        ("normal_", lambda t, **k: finit.normal_(t, mean=0.5, std=0.02, **k), square_ish),
        ("uniform_", lambda t, **k: finit.uniform_(t, a=-0.1, b=0.3, **k), square_ish),
        (
            "trunc_normal_",
            lambda t, **k: finit.trunc_normal_(t, std=0.02, a=-0.03, b=0.04, **k),
            square_ish,
        ),
        ("constant_", lambda t, **k: finit.constant_(t, 0.25, **k), square_ish),
        ("ones_", lambda t, **k: finit.ones_(t, **k), square_ish),
        ("zeros_", lambda t, **k: finit.zeros_(t, **k), square_ish),
        ("eye_", lambda t, **k: finit.eye_(t, **k), square_ish),
        ("dirac_", lambda t, **k: finit.dirac_(t, **k), conv),
        ("xavier_uniform_", lambda t, **k: finit.xavier_uniform_(t, gain=1.5, **k), square_ish),
        ("xavier_normal_", lambda t, **k: finit.xavier_normal_(t, **k), conv),
        (
            "kaiming_uniform_",
            lambda t, **k: finit.kaiming_uniform_(t, a=math.sqrt(5), **k),
            square_ish,
        ),
        ("kaiming_normal_", lambda t, **k: finit.kaiming_normal_(t, mode="fan_out", **k), conv),
        ("orthogonal_", lambda t, **k: finit.orthogonal_(t, gain=2.0, **k), square_ish),
    ]


def _dtensor(size, dtype, mesh, placements):
    """A DTensor of global `size` whose local shard (torch's layout) is NaN everywhere."""
    import torch
    from torch.distributed.tensor import DTensor
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    local_shape, _ = compute_local_shape_and_global_offset(size, mesh, placements)
    return DTensor.from_local(
        torch.full(local_shape, float("nan"), dtype=dtype),
        mesh,
        placements,
        run_check=False,
        shape=torch.Size(size),
        stride=torch.empty(size).stride(),
    )


def _raw_dtensor_case(mesh_of: Callable[[], Any], placements_of: Callable[[], list], shape=None):
    """Every drop-in on a DTensor in the given placements (float32, and bfloat16 for the
    samplers), against the same call on a plain tensor."""

    def case(checks: Checks) -> None:
        import torch
        from torch.distributed.tensor import DTensor

        mesh, placements = mesh_of(), placements_of()
        for index, (name, call, default_shape) in enumerate(_dropins()):
            for dtype in (torch.float32, torch.bfloat16) if index < 3 else (torch.float32,):
                size = shape if shape is not None and name != "dirac_" else default_shape
                if name == "dirac_" and shape is not None:
                    size = (shape[0], shape[1], 3)
                tensor = _dtensor(size, dtype, mesh, placements)
                returned = call(tensor, seed=SEED, stream=f"raw.{name}")
                expected = call(torch.empty(size, dtype=dtype), seed=SEED, stream=f"raw.{name}")
                checks.true(f"{name} returned another object", returned is tensor)
                checks.true(f"{name} replaced the DTensor type", isinstance(tensor, DTensor))
                checks.same_bits(f"{name} {dtype} {size}", tensor.full_tensor(), expected)

    return case


def _shard_lm(model, mesh, per_layer: bool = True) -> None:
    from torch.distributed.fsdp import fully_shard

    if per_layer:
        for block in model.blocks:
            fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)


def _fsdp_case(via_to_empty: bool, mesh_name: str = "1d"):
    """FSDP2 on a meta TinyLM: init_module (or to_empty + init_module) gives the
    single-process bits, keeps the tie, zeroes the padding row, issues no collective, and
    a forward equals the single-process forward exactly."""

    def case(checks: Checks) -> None:
        import fastinit.torch as finit
        import torch
        from torch.distributed.tensor import DTensor
        from torch.distributed.tensor.debug import CommDebugMode

        TinyLM, _ = _model_classes()
        reference = _reference_lm()
        with torch.device("meta"):
            model = TinyLM()
        _shard_lm(model, _MESHES[mesh_name])
        if via_to_empty:
            model.to_empty(device="cpu")
            _poison(model)
        with CommDebugMode() as comm:
            returned = finit.init_module(model, SEED)
        checks.true("init_module returned another module", returned is model)
        checks.true(
            f"init issued collectives: {comm.get_comm_counts()}", comm.get_total_counts() == 0
        )
        checks.true("embedding/head tie broken", model.embed.weight is model.head.weight)
        checks.true(
            "parameters are not DTensors",
            all(isinstance(p, DTensor) for p in model.parameters()),
        )
        _compare_models(checks, "fsdp", model, reference)
        padding = model.embed.weight.full_tensor()[PADDING_IDX]
        checks.true("padding row not zero", bool((padding == 0).all()))
        with torch.no_grad():  # N.B. the root's parameters stay unsharded after it
            tokens = _tokens()
            checks.same_bits("forward", model(tokens), reference(tokens))

    return case


def _tp_fsdp_case(checks: Checks) -> None:
    """TP (Colwise fc1, Rowwise fc2) over mesh dim "tp", FSDP2 over "dp", on a 2x2 mesh."""
    import fastinit.torch as finit
    import torch
    from torch.distributed.tensor import DTensor
    from torch.distributed.tensor.debug import CommDebugMode
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        RowwiseParallel,
        parallelize_module,
    )
    from torch.distributed.tensor.placement_types import _StridedShard

    TinyLM, _ = _model_classes()
    reference = _reference_lm()
    mesh = _MESHES["dp_tp"]
    with torch.device("meta"):
        model = TinyLM()
    for block in model.blocks:
        parallelize_module(block, mesh["tp"], {"fc1": ColwiseParallel(), "fc2": RowwiseParallel()})
    _shard_lm(model, mesh["dp"])
    model.to_empty(device="cpu")
    _poison(model)
    with CommDebugMode() as comm:
        finit.init_module(model, SEED)
    checks.true(f"init issued collectives: {comm.get_comm_counts()}", comm.get_total_counts() == 0)
    checks.true("embedding/head tie broken", model.embed.weight is model.head.weight)
    placements = {
        name: tuple(p.placements) for name, p in model.named_parameters() if isinstance(p, DTensor)
    }
    checks.true(
        f"torch laid no _StridedShard (FSDP2 over Colwise): {placements}",
        any(isinstance(pl, _StridedShard) for pls in placements.values() for pl in pls),
    )
    _compare_models(checks, "tp+fsdp", model, reference)


def _hsdp_case(checks: Checks) -> None:
    """HSDP: fully_shard with a 2-D mesh, placements (Replicate, Shard(0))."""
    import fastinit.torch as finit
    import torch
    from torch.distributed.tensor import Replicate, Shard

    TinyLM, _ = _model_classes()
    reference = _reference_lm()
    with torch.device("meta"):
        model = TinyLM()
    _shard_lm(model, _MESHES["hsdp"])
    checks.true(
        f"HSDP placements are {model.embed.weight.placements}",
        tuple(model.embed.weight.placements) == (Replicate(), Shard(0)),
    )
    model.to_empty(device="cpu")
    _poison(model)
    finit.init_module(model, SEED)
    _compare_models(checks, "hsdp", model, reference)
    with torch.no_grad():
        tokens = _tokens()
        checks.same_bits("forward", model(tokens), reference(tokens))


def _reproducible_case(wrapper: str):
    """An unchanged torchtitan-style init_weights under fastinit.torch.reproducible gives the
    plain world-1 weights at world 1 and sharded by FSDP2 here, also with activation
    checkpointing and under torch.compile's name prefix."""

    def case(checks: Checks) -> None:
        import fastinit.torch as finit
        import torch
        from torch.distributed.fsdp import fully_shard
        from torch.distributed.tensor.debug import CommDebugMode

        _, Titan = _model_classes()
        reference = _reference_titan()
        originals = (torch.nn.init.normal_, torch.nn.init.trunc_normal_, torch.Tensor.fill_)
        for sharded in (False, True):
            with torch.device("meta" if sharded else "cpu"):
                model = Titan()
            if wrapper == "checkpoint":
                from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
                    checkpoint_wrapper,
                )

                for key in list(model.layers):
                    model.layers[key] = checkpoint_wrapper(model.layers[key])
            if sharded:
                for layer in model.layers.values():
                    fully_shard(layer, mesh=_MESHES["1d"])
                fully_shard(model, mesh=_MESHES["1d"])
                model.to_empty(device="cpu")
            _poison(model)
            target = torch.compile(model) if wrapper == "compile" else model
            names = [name for name, _ in target.named_parameters()]
            marker = {"checkpoint": "_checkpoint_wrapped_module.", "compile": "_orig_mod."}
            checks.true(
                f"no {marker.get(wrapper)} in the names {names}",
                wrapper not in marker or any(marker[wrapper] in n for n in names),
            )
            with CommDebugMode() as comm, finit.reproducible(target, SEED):
                (target._orig_mod if wrapper == "compile" else target).init_weights()
            checks.true(
                f"init_weights issued collectives: {comm.get_comm_counts()}",
                comm.get_total_counts() == 0,
            )
            label = f"reproducible[{wrapper}, {'sharded' if sharded else 'world 1'}]"
            _compare_models(checks, label, target, reference)
        checks.true(
            "torch's functions not restored on exit",
            originals == (torch.nn.init.normal_, torch.nn.init.trunc_normal_, torch.Tensor.fill_),
        )

    return case


def _refusals_case(checks: Checks) -> None:
    """A DTensor as fastinit's out= (its DLPack has a null data pointer) and a Partial
    placement are refused, naming `out` and the parameter."""
    import fastinit
    import fastinit.torch as finit
    import torch
    from torch import nn
    from torch.distributed.tensor import DTensor, Partial, Replicate, Shard, empty

    mesh = _MESHES["1d"]
    sharded = empty((8, 4), device_mesh=mesh, placements=[Shard(0)])
    sharded.to_local().fill_(1.5)
    checks.raises(
        "DTensor as out=",
        (TypeError, ValueError),
        ("out",),
        lambda: fastinit.normal((8, 4), SEED, out=sharded),
    )
    checks.true("refused out= was written", bool((sharded.to_local() == 1.5).all()))
    partial = DTensor.from_local(torch.full((4, 4), 2.0), mesh, [Partial()], run_check=False)
    checks.raises(
        "Partial DTensor drop-in",
        (ValueError,),
        ("artial",),
        lambda: finit.normal_(partial, seed=SEED),
    )
    holder = nn.Module()
    holder.proj = nn.Linear(4, 4)
    holder.proj.weight = nn.Parameter(partial)
    checks.raises(
        "Partial parameter in init_module",
        (ValueError,),
        ("proj.weight",),
        lambda: finit.init_module(holder, SEED),
    )
    checks.true("refused Partial was written", bool((partial.to_local() == 2.0).all()))
    # Partial on a mesh dimension of size 1 holds the whole value: filled like a replicate
    size_one = _MESHES["1xW"]
    size = (2 * mesh.size() + 1, 3)
    local_rows = -(-size[0] // mesh.size())
    rows = max(0, min(local_rows, size[0] - mesh.get_local_rank() * local_rows))
    accepted = DTensor.from_local(
        torch.full((rows, 3), float("nan")),
        size_one,
        [Partial(), Shard(0)],
        run_check=False,
        shape=torch.Size(size),
        stride=(3, 1),
    )
    finit.normal_(accepted, seed=SEED, stream="size-one partial")
    expected = finit.normal_(torch.empty(size), seed=SEED, stream="size-one partial")
    checks.same_bits(
        "Partial on a size-1 mesh dim",
        accepted.redistribute(size_one, [Replicate(), Shard(0)]).full_tensor(),
        expected,
    )


_MESHES: dict[str, Any] = {}


def _gloo_cases(world_size: int) -> dict[str, Callable[[Checks], None]]:
    def mesh(name):
        return lambda: _MESHES[name]

    def placements(*names):
        def make():
            from torch.distributed.tensor import Replicate, Shard
            from torch.distributed.tensor.placement_types import _StridedShard

            # _StridedShard(0, 2), Shard(0): how FSDP2 over TP (Colwise) lays a weight out
            table = {
                "S0": Shard(0),
                "S1": Shard(1),
                "R": Replicate(),
                "SS0": _StridedShard(0, split_factor=2),
            }
            return [table[n] for n in names]

        return make

    cases: dict[str, Callable[[Checks], None]] = {
        "raw_shard0": _raw_dtensor_case(mesh("1d"), placements("S0")),
        "raw_shard1": _raw_dtensor_case(mesh("1d"), placements("S1")),
        "raw_replicate": _raw_dtensor_case(mesh("1d"), placements("R")),
        # 3 rows over 4 ranks (torch.chunk: 1, 1, 1, 0) / 1 row over 2 ranks: empty tail ranks
        "raw_uneven_empty_tail": _raw_dtensor_case(
            mesh("1d"), placements("S0"), shape=(world_size - 1, 5)
        ),
        "raw_uneven_shard1": _raw_dtensor_case(
            mesh("1d"), placements("S1"), shape=(6, 2 * world_size + 1)
        ),
        "fsdp2_init_module": _fsdp_case(via_to_empty=False),
        "fsdp2_to_empty_init_module": _fsdp_case(via_to_empty=True),
        "reproducible_plain": _reproducible_case("plain"),
        "reproducible_checkpoint": _reproducible_case("checkpoint"),
        "reproducible_compile": _reproducible_case("compile"),
        "refusals": _refusals_case,
    }
    if world_size == 4:
        cases.update(
            {
                "mesh2d_shard0_shard1": _raw_dtensor_case(mesh("2x2"), placements("S0", "S1")),
                "mesh2d_replicate_shard0": _raw_dtensor_case(mesh("2x2"), placements("R", "S0")),
                "mesh2d_shard0_shard0": _raw_dtensor_case(
                    mesh("2x2"), placements("S0", "S0"), shape=(7, 5)
                ),
                "strided_shard": _raw_dtensor_case(mesh("2x2"), placements("SS0", "S0")),
                "strided_shard_uneven": _raw_dtensor_case(
                    mesh("2x2"), placements("SS0", "S0"), shape=(10, 3)
                ),
                "tp_fsdp2_2x2": _tp_fsdp_case,
                "hsdp_2x2": _hsdp_case,
            }
        )
    return cases


def gloo_case_names(world_size: int) -> list[str]:
    return list(_gloo_cases(world_size))


def gloo_rank_main(rank: int, world_size: int, port: int, directory: str) -> None:
    folder = Path(directory)
    _capture_output(folder / f"rank{rank}.log")
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "FASTINIT_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
        }
    )
    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=45)
    )
    try:
        _MESHES["1d"] = init_device_mesh("cpu", (world_size,))
        _MESHES["1xW"] = init_device_mesh("cpu", (1, world_size), mesh_dim_names=("one", "all"))
        if world_size == 4:
            _MESHES["2x2"] = init_device_mesh("cpu", (2, 2), mesh_dim_names=("a", "b"))
            _MESHES["dp_tp"] = init_device_mesh("cpu", (2, 2), mesh_dim_names=("dp", "tp"))
            _MESHES["hsdp"] = init_device_mesh("cpu", (2, 2), mesh_dim_names=("rep", "shard"))
        _run_cases(_gloo_cases(world_size), folder / f"rank{rank}.json")
    finally:
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


# --------------------------------------------------------------------------------------
# fake process group worlds: one forked process per simulated rank
# --------------------------------------------------------------------------------------

# name -> (mesh shape, mesh dim names, how to shard): "fsdp" (1-D), "hsdp" (2-D fully_shard),
# "tp_fsdp" (TP over "tp", FSDP2 over "dp").
_FAKE_CASES = {
    8: {
        "fsdp2_8": ((8,), ("dp",), "fsdp"),
        "hsdp_2x4": ((2, 4), ("rep", "shard"), "hsdp"),
        "tp4_fsdp2_dp2xtp4": ((2, 4), ("dp", "tp"), "tp_fsdp"),
        "tp2_fsdp2_dp4xtp2": ((4, 2), ("dp", "tp"), "tp_fsdp"),
    },
    16: {
        "fsdp2_16": ((16,), ("dp",), "fsdp"),
        "hsdp_4x4": ((4, 4), ("rep", "shard"), "hsdp"),
        "tp4_fsdp2_dp4xtp4": ((4, 4), ("dp", "tp"), "tp_fsdp"),
        "tp2_fsdp2_dp8xtp2": ((8, 2), ("dp", "tp"), "tp_fsdp"),
    },
}


def fake_case_names(world_size: int) -> list[str]:
    return list(_FAKE_CASES[world_size])


def _fake_case(layout, reference):
    """Shard a meta TinyLM as `layout` says, init_module, and compare every local shard with
    torch's own slicing of the single-process result (distribute_tensor without a source
    rank slices locally, no communication)."""

    def case(checks: Checks) -> None:
        import fastinit.torch as finit
        import torch
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.tensor import DTensor, distribute_tensor
        from torch.distributed.tensor.parallel import (
            ColwiseParallel,
            RowwiseParallel,
            parallelize_module,
        )

        shape, names, how = layout
        mesh = init_device_mesh("cpu", shape, mesh_dim_names=names)
        TinyLM, _ = _model_classes()
        with torch.device("meta"):
            model = TinyLM()
        if how == "tp_fsdp":
            for block in model.blocks:
                parallelize_module(
                    block, mesh["tp"], {"fc1": ColwiseParallel(), "fc2": RowwiseParallel()}
                )
            _shard_lm(model, mesh["dp"])
        else:
            _shard_lm(model, mesh)
        finit.init_module(model, SEED)
        checks.true("embedding/head tie broken", model.embed.weight is model.head.weight)
        expected = dict(reference.named_parameters())
        for name, param in model.named_parameters():
            checks.true(f"{name} is not a DTensor", isinstance(param, DTensor))
            if not isinstance(param, DTensor):
                continue
            sliced = distribute_tensor(
                expected[name].detach(), param.device_mesh, param.placements, src_data_rank=None
            ).to_local()
            checks.same_bits(f"{name} {tuple(param.placements)}", param.to_local(), sliced)
            checks.same_bits(
                f"{name}: fastinit.shards boxes vs torch's slicing",
                _assemble_from_boxes(expected[name].detach(), param),
                sliced,
            )

    return case


def _assemble_from_boxes(full, dtensor):
    """This rank's local tensor rebuilt from `full` with fastinit.shards.shard_boxes (a
    second oracle for the slice, independent of the code under test's fill)."""
    import torch
    from fastinit.shards import local_shape, shard_boxes
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor.placement_types import _StridedShard

    def as_tuple(placement):
        if isinstance(placement, _StridedShard):
            return ("strided_shard", placement.dim, placement.split_factor)
        if isinstance(placement, Shard):
            return ("shard", placement.dim)
        assert isinstance(placement, Replicate), placement
        return ("replicate",)

    mesh = dtensor.device_mesh
    arguments = (
        tuple(full.shape),
        tuple(mesh.shape),
        tuple(mesh.get_coordinate()),
        [as_tuple(p) for p in dtensor.placements],
    )
    local = torch.full(local_shape(*arguments), float("nan"), dtype=full.dtype)
    for box in shard_boxes(*arguments):
        source = tuple(slice(s, s + e) for s, e in zip(box.start, box.extent, strict=True))
        target = tuple(slice(s, s + e) for s, e in zip(box.local_start, box.extent, strict=True))
        local[target] = full[source]
    return local


def fake_launcher_main(world_sizes: tuple[int, ...], directory: str) -> None:
    folder = Path(directory)
    _capture_output(folder / "launcher.log")
    os.environ.update({"FASTINIT_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    import torch

    torch.set_num_threads(1)  # before any parallel region: the forked ranks stay safe
    reference = _reference_lm()  # once, inherited by every forked rank
    for world in world_sizes:
        children = {}
        for rank in range(world):
            pid = os.fork()
            if pid == 0:  # the simulated rank; never returns into the launcher's code
                status = 1
                try:
                    _fake_rank_main(world, rank, folder, reference)
                    status = 0
                finally:
                    os._exit(status)  # skip the launcher's atexit handlers
            children[pid] = rank
        _reap(children, time.monotonic() + 75, f"world {world}")


def _reap(children: dict[int, int], deadline: float, label: str) -> None:
    """Wait for the forked ranks until `deadline`, then kill the rest."""
    import signal

    while children and time.monotonic() < deadline:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            time.sleep(0.05)
            continue
        rank = children.pop(pid, None)
        if rank is not None and status != 0:
            print(f"{label}: rank {rank} exited with status {status}", flush=True)
    for pid, rank in children.items():
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print(f"{label}: rank {rank} timed out and was killed", flush=True)


def _fake_rank_main(world: int, rank: int, folder: Path, reference) -> None:
    _capture_output(folder / f"world{world}-rank{rank}.log")
    import torch.distributed as dist
    from torch.testing._internal.distributed.fake_pg import FakeStore

    dist.init_process_group("fake", store=FakeStore(), rank=rank, world_size=world)
    cases = {name: _fake_case(layout, reference) for name, layout in _FAKE_CASES[world].items()}
    _run_cases(cases, folder / f"world{world}-rank{rank}.json")


if __name__ == "__main__":
    kind, *sizes = sys.argv[1:]
    if kind == "gloo":
        outcome = {size: run_gloo_world(int(size)) for size in sizes}
    else:
        outcome = {"fake": run_fake_worlds(tuple(int(size) for size in sizes))}
    for label, report in outcome.items():
        for case, text in report.items():
            print(f"[{label}] {case}: {text}")
