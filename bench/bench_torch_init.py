"""Whole-model initialization: fastinit.torch.init_module against torch's default init.

A transformer-shaped torch.nn.Module (token embedding, `layers` blocks of
attention q/k/v/o and a gated MLP as nn.Linear, RMSNorms, an untied LM head) is built
on the meta device, then materialized and initialized on the CPU:
- torch: module.to_empty(device="cpu"), then reset_parameters() of every submodule
  that has one (torch's default init: kaiming_uniform_(a=sqrt(5)) for Linear, normal_
  for Embedding, ones for norms);
- fastinit: fastinit.torch.init_module(module, seed) (to_empty, then the same rules
  with Philox streams named after the parameters).
Each runs in its own process, so peak resident memory (VmHWM) is that job's alone;
the baseline is the process's resident size just before materializing. Prints
seconds, peak memory over the parameter bytes, and the ratios (targets: >= 5x faster,
peak <= parameters + 10%).

--pretouched times the initialization alone: both jobs materialize and touch the
parameter memory first, untimed. On a VM that backs guest memory lazily the first
touch of fresh memory can cost more than the initialization itself, for both jobs
alike; this separates the two costs.

    python bench/bench_torch_init.py                 # ~1.06 B parameters (4.2 GB float32)
    python bench/bench_torch_init.py --layers 2      # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time


def build(args: argparse.Namespace):  # noqa: ANN201 - torch is imported lazily
    import torch
    from torch import nn

    d, ffn = args.d_model, args.ffn

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
            self.embed = nn.Embedding(args.vocab, d)
            self.blocks = nn.ModuleList(Block() for _ in range(args.layers))
            self.norm = nn.RMSNorm(d)
            self.head = nn.Linear(d, args.vocab, bias=False)

    with torch.device("meta"):
        return Model()


def _resident_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def run_one(args: argparse.Namespace) -> dict:
    """One job in this process; returns its numbers."""
    import fastinit.torch as fit
    import torch
    from fastinit.torch.modules import materialize

    torch.set_num_threads(args.threads)
    model = build(args)
    parameters = sum(p.numel() for p in model.parameters())
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    baseline = _resident_kib("VmRSS")
    if args.pretouched:
        materialize(model, torch.device("cpu"))
        with torch.no_grad():
            for tensor in [*model.parameters(), *model.buffers()]:
                tensor.zero_()
    start = time.perf_counter()
    if args.job == "torch":
        if not args.pretouched:
            model.to_empty(device="cpu")
        with torch.no_grad():
            for module in model.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
    else:
        fit.init_module(model, seed=42)
    seconds = time.perf_counter() - start
    peak = _resident_kib("VmHWM")
    return {
        "job": args.job,
        "parameters": parameters,
        "parameter_bytes": nbytes,
        "seconds": seconds,
        "peak_over_baseline_bytes": (peak - baseline) * 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=18)
    parser.add_argument("--d-model", type=int, default=2048)
    parser.add_argument("--ffn", type=int, default=5632)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeat", type=int, default=2, help="runs of each job (fresh process)")
    parser.add_argument("--pretouched", action="store_true", help="time initialization alone")
    parser.add_argument("--job", choices=("torch", "fastinit"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        print(json.dumps(run_one(args)))
        return

    import fastinit
    import torch

    print(f"# {platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}, fastinit {fastinit.__version__}, "
          f"cpu target {fastinit.cpu_target()}, threads {args.threads}"
          + (", pre-touched: initialization alone" if args.pretouched else ""))  # fmt: skip
    results: dict[str, list[dict]] = {"torch": [], "fastinit": []}
    for _ in range(args.repeat):
        for job in ("torch", "fastinit"):
            command = [sys.executable, __file__, "--job", job]
            for name in ("layers", "d_model", "ffn", "vocab", "threads"):
                command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
            command += ["--pretouched"] if args.pretouched else []
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[job].append(json.loads(output.strip().splitlines()[-1]))
    nbytes = results["torch"][0]["parameter_bytes"]
    print(f"# model: {results['torch'][0]['parameters'] / 1e9:.3f} B parameters, "
          f"{nbytes / 2**30:.2f} GiB float32")  # fmt: skip
    print(f"{'job':10} {'seconds (each run)':>28} {'peak / parameter bytes':>24}")
    best = {}
    for job, runs in results.items():
        best[job] = min(run["seconds"] for run in runs)
        peak = max(run["peak_over_baseline_bytes"] for run in runs) / nbytes
        seconds = ", ".join(f"{run['seconds']:.2f}" for run in runs)
        print(f"{job:10} {seconds:>28} {peak:>24.3f}")
        best[job + "_peak"] = peak
    speedup = best["torch"] / best["fastinit"]
    verdict = "PASS" if speedup >= 5 else "FAIL"
    print(f"speedup (best of each): {speedup:.2f}x  (target >= 5x: {verdict})")
    verdict = "PASS" if best["fastinit_peak"] <= 1.10 else "FAIL"
    print(f"fastinit peak: {best['fastinit_peak']:.3f} x parameters (target <= 1.10: {verdict})")


if __name__ == "__main__":
    main()
