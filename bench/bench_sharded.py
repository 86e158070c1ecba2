"""Sharded init on torch.distributed: each rank fills its own shard vs building the full tensor.

Part 1, one (16384, 4096) float32 weight (256 MiB) as a Shard(0) DTensor over gloo processes
on 127.0.0.1, at world 1, 2 and 4; every rank runs concurrently, each with
max(1, cpus // world) threads (fastinit and torch alike; --threads N sets it for every world,
so that the work per thread follows the shard). Three jobs, each in fresh processes:
- shard: `fastinit.torch.normal_(dtensor, std=0.02, seed=...)`: each rank fills only its
  shard (the local tensor of `torch.distributed.tensor.empty`), no communication;
- full_fastinit: the OLMo-core approach with fastinit: every rank builds the full tensor
  (`fastinit.torch.normal_` on a (16384, 4096) tensor) and copies its slice into the shard;
- full_torch: the same with `torch.nn.init.normal_` (torch's generator).
Times per rank (wall, and the process's CPU time: on 2 cores four ranks share the cores, so
wall time per rank cannot fall below the total work / 2 cores), medians of --repeat, in two
modes: "fresh" (the buffers are allocated inside
the timed region: what a real init pays, including the first touch of new memory, which is
slow on this VM) and "touched" (the buffers exist and were written once before the timer: the
initialization alone). Peak memory per rank: VmHWM after the fresh runs minus VmRSS just
before them, over the shard's bytes.

Part 2 (--model): a ~1B-parameter transformer (Embedding, 16 blocks of q/k/v/o and a gated
MLP, RMSNorms, an untied head; bench_torch_init.py's shape) built on meta and fully_shard'ed per
block and at the root at world 2: fastinit.torch.init_module(model, seed) (materialize + init)
against model.to_empty("cpu") + every submodule's reset_parameters() (torch's DTensor init;
on a CPU mesh every rank draws the same values, so its weights depend on the world size),
and to_empty + init_module; then both again with the parameters materialized and written
once before the timer ("touched: ..."), which times the initialization alone.

    python bench/bench_sharded.py                   # part 1
    python bench/bench_sharded.py --model           # part 2 too
    python bench/bench_sharded.py --rows 4096       # quick check
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

SEED = 42


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _join(rank: int, world: int, port: int, threads: int) -> None:
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "FASTINIT_NUM_THREADS": str(threads),
            "OMP_NUM_THREADS": str(threads),
        }
    )
    import torch
    import torch.distributed as dist

    torch.set_num_threads(threads)
    dist.init_process_group(
        "gloo", rank=rank, world_size=world, timeout=datetime.timedelta(minutes=10)
    )


# ---------------------------------------------------------------------------------------
# Part 1: one weight
# ---------------------------------------------------------------------------------------


def weight_rank(rank: int, world: int, port: int, options: dict, result_path: str) -> None:
    threads = options["threads"] or max(1, options["cpus"] // world)
    _join(rank, world, port, threads)
    import fastinit.torch as finit
    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, empty

    shape = (options["rows"], options["cols"])
    job = options["job"]
    mesh = init_device_mesh("cpu", (world,))

    def run(touched_shard=None, touched_full=None) -> tuple[float, float]:
        dist.barrier()
        start, start_cpu = time.perf_counter(), time.process_time()
        if touched_shard is None:
            shard = empty(shape, device_mesh=mesh, placements=[Shard(0)])
        else:
            shard = touched_shard
        if job == "shard":
            finit.normal_(shard, std=0.02, seed=SEED, stream="w")
        else:
            full = torch.empty(shape) if touched_full is None else touched_full
            if job == "full_fastinit":
                finit.normal_(full, std=0.02, seed=SEED, stream="w")
            else:
                torch.nn.init.normal_(full, std=0.02)
            local = shard.to_local()
            rows = local.shape[0]
            local.copy_(full[rank * -(-shape[0] // world) :][:rows])
            del full
        return time.perf_counter() - start, time.process_time() - start_cpu

    warm = empty((world, 8), device_mesh=mesh, placements=[Shard(0)])  # lazy imports, caches
    finit.normal_(warm, std=0.02, seed=SEED, stream="w")
    torch.nn.init.normal_(torch.empty(world, 8), std=0.02)
    baseline = _status_kib("VmRSS")
    fresh = [run() for _ in range(options["repeat"])]
    peak = _status_kib("VmHWM")
    shard = empty(shape, device_mesh=mesh, placements=[Shard(0)])
    shard.to_local().zero_()
    full = None
    if job != "shard":
        full = torch.empty(shape)
        full.zero_()
    touched = [run(shard, full) for _ in range(options["repeat"])]
    shard_bytes = shard.to_local().numel() * 4
    Path(result_path).write_text(
        json.dumps(
            {
                "rank": rank,
                "fresh": [wall for wall, _ in fresh],
                "touched": [wall for wall, _ in touched],
                "cpu": [cpu for _, cpu in touched],
                "peak_over_baseline_bytes": (peak - baseline) * 1024,
                "shard_bytes": shard_bytes,
                "threads": threads,
            }
        )
    )
    dist.barrier()
    dist.destroy_process_group()


# ---------------------------------------------------------------------------------------
# Part 2: a ~1B transformer under FSDP2 at world 2
# ---------------------------------------------------------------------------------------


def _build(options: dict):  # noqa: ANN202 - torch is imported lazily
    import torch
    from torch import nn

    d, ffn = options["d_model"], options["ffn"]

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn_norm = nn.RMSNorm(d)
            self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
            self.mlp_norm = nn.RMSNorm(d)
            self.gate = nn.Linear(d, ffn, bias=False)
            self.up = nn.Linear(d, ffn, bias=False)
            self.down = nn.Linear(ffn, d, bias=False)

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(options["vocab"], d)
            self.blocks = nn.ModuleList(Block() for _ in range(options["layers"]))
            self.norm = nn.RMSNorm(d)
            self.head = nn.Linear(d, options["vocab"], bias=False)

    with torch.device("meta"):
        return Model()


def model_rank(rank: int, world: int, port: int, options: dict, result_path: str) -> None:
    threads = max(1, options["cpus"] // world)
    _join(rank, world, port, threads)
    import fastinit.torch as finit
    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (world,))
    model = _build(options)
    parameters = sum(p.numel() for p in model.parameters())
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    local_bytes = sum(p.to_local().numel() * p.element_size() for p in model.parameters())
    baseline = _status_kib("VmRSS")
    job = options["job"]
    if job.startswith("touched"):  # materialize and write once, untimed: the init alone
        model.to_empty(device="cpu")
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.to_local().zero_()
    dist.barrier()
    start = time.perf_counter()
    if job == "init_module":
        finit.init_module(model, SEED)
    elif job in ("to_empty+init_module", "touched: init_module"):
        if job == "to_empty+init_module":
            model.to_empty(device="cpu")
        finit.init_module(model, SEED)
    else:
        if job == "to_empty+reset_parameters":
            model.to_empty(device="cpu")
        with torch.no_grad():
            for module in model.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    Path(result_path).write_text(
        json.dumps(
            {
                "rank": rank,
                "seconds": seconds,
                "parameters": parameters,
                "local_bytes": local_bytes,
                "peak_over_baseline_bytes": (peak - baseline) * 1024,
            }
        )
    )
    dist.barrier()
    dist.destroy_process_group()


# ---------------------------------------------------------------------------------------


def _world(target, world: int, options: dict, timeout: float) -> list[dict]:
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="bench-sharded-") as folder:
        port = _free_port()
        paths = [str(Path(folder) / f"rank{rank}.json") for rank in range(world)]
        processes = [
            context.Process(target=target, args=(rank, world, port, options, paths[rank]))
            for rank in range(world)
        ]
        for process in processes:
            process.start()
        deadline = time.monotonic() + timeout
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        return [json.loads(Path(p).read_text()) for p in paths if Path(p).exists()]


def _machine() -> str:
    model = "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    import torch

    return (
        f"{platform.node()}: {os.cpu_count()} CPUs ({model}), "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB, "
        f"torch {torch.__version__}, load {os.getloadavg()[0]:.2f} at start"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16384)
    parser.add_argument("--cols", type=int, default=4096)
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=0, help="threads per rank (default: cpus // world)"
    )
    parser.add_argument("--jobs", nargs="+", default=["shard", "full_fastinit", "full_torch"])
    parser.add_argument("--model", action="store_true", help="also part 2 (~1B transformer)")
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--d-model", type=int, default=2048)
    parser.add_argument("--ffn", type=int, default=5632)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--model-world", type=int, default=2)
    parser.add_argument("--model-only", action="store_true", help="skip part 1")
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0))
    print(_machine(), flush=True)

    print(f"\nPart 1: ({args.rows}, {args.cols}) float32, Shard(0), medians of {args.repeat}")
    if args.model_only:
        args.worlds = []
    print(
        "| world | job | threads/rank | fresh s/rank (max over ranks) | touched s/rank | "
        "touched CPU s/rank | peak / shard bytes (max) |"
    )
    print("|---|---|---|---|---|---|---|")
    medians: dict[tuple[int, str, str], float] = {}
    for world in args.worlds:
        for job in args.jobs:
            options = {
                "rows": args.rows,
                "cols": args.cols,
                "job": job,
                "repeat": args.repeat,
                "cpus": cpus,
                "threads": args.threads,
            }
            ranks = _world(weight_rank, world, options, timeout=900)
            if len(ranks) != world:
                print(f"| {world} | {job} | failed: {len(ranks)} of {world} ranks reported |")
                continue
            for mode in ("fresh", "touched", "cpu"):
                medians[world, job, mode] = max(statistics.median(r[mode]) for r in ranks)
            peak = max(r["peak_over_baseline_bytes"] / r["shard_bytes"] for r in ranks)
            print(
                f"| {world} | {job} | {ranks[0]['threads']} | {medians[world, job, 'fresh']:.3f} "
                f"| {medians[world, job, 'touched']:.3f} | {medians[world, job, 'cpu']:.3f} "
                f"| {peak:.2f} |",
                flush=True,
            )
    for world in args.worlds:
        for mode in ("fresh", "touched"):
            shard = medians.get((world, "shard", mode))
            ratios = [
                f"{job} / shard = {medians[world, job, mode] / shard:.2f}x"
                for job in ("full_fastinit", "full_torch")
                if shard and (world, job, mode) in medians
            ]
            print(f"world {world} {mode}: " + ", ".join(ratios))

    if args.model:
        print(f"\nPart 2: transformer under FSDP2 (per block + root) at world {args.model_world}")
        print("| job | s (max over ranks) | parameters | local bytes/rank | peak / local bytes |")
        print("|---|---|---|---|---|")
        jobs = (
            "to_empty+reset_parameters",
            "init_module",
            "to_empty+init_module",
            "touched: reset_parameters",
            "touched: init_module",
        )
        for job in jobs:
            options = {
                "job": job,
                "cpus": cpus,
                "layers": args.layers,
                "d_model": args.d_model,
                "ffn": args.ffn,
                "vocab": args.vocab,
            }
            ranks = _world(model_rank, args.model_world, options, timeout=1800)
            if len(ranks) != args.model_world:
                print(f"| {job} | failed: {len(ranks)} ranks reported |")
                continue
            seconds = max(r["seconds"] for r in ranks)
            peak = max(r["peak_over_baseline_bytes"] / r["local_bytes"] for r in ranks)
            print(
                f"| {job} | {seconds:.2f} | {ranks[0]['parameters'] / 1e9:.3f} B | "
                f"{ranks[0]['local_bytes'] / 2**30:.2f} GiB | {peak:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
