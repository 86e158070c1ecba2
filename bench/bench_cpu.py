"""CPU throughput of fastinit beside NumPy and torch, all measured in one run.

    python bench/bench_cpu.py                       # 10^6, 10^7, 10^8; float32 and bfloat16
    python bench/bench_cpu.py --sizes 1e6 1e9 --dtypes float32 --only-fastinit
    python bench/bench_cpu.py --only-fastinit --reuse-output   # the kernel without page faults

Every case allocates a fresh output each repetition (page faults count, as they do
for users) and the first call is a warm-up. It prints medians and the spread
[min..max] over --repeat runs, samples/s, output GB/s, and the ratios the targets
are stated in; torch (optional) runs with as many threads as fastinit. Also: scaling
from 1 to all threads, the per-call time of a 256-element tensor, and peak memory.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import fastinit
import ml_dtypes
import numpy as np

try:
    import torch
except ImportError:  # torch is an optional extra
    torch = None

FAN = 4096  # weights are (n / FAN, FAN)


def measure(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def numpy_truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], std: float):
    """NumPy has no truncated normal: the usual resampling loop, cut at ±2 std."""
    x = rng.standard_normal(shape, dtype=np.float32)
    bad = np.abs(x) > 2
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum()), dtype=np.float32)
        bad = np.abs(x) > 2
    x *= np.float32(std)
    return x


def cases(n: int, dtype: str, args: argparse.Namespace) -> dict[str, Callable[[], object]]:
    shape = (n // FAN, FAN)
    std = math.sqrt(2.0 / (shape[0] + shape[1]))
    limit = math.sqrt(3.0) * std
    out_dtype = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
    rng = np.random.default_rng(0)
    out = None
    if args.reuse_output:  # the kernel alone: one pre-touched buffer, no page faults
        out = np.zeros(shape, dtype=out_dtype)
    found = {
        "fastinit glorot_normal": lambda: fastinit.glorot_normal(shape, 0, dtype=dtype, out=out),
        "fastinit glorot_uniform": lambda: fastinit.glorot_uniform(shape, 0, dtype=dtype, out=out),
        "fastinit normal": lambda: fastinit.normal(shape, 0, std=std, dtype=dtype, out=out),
    }
    if args.only_fastinit:
        return found
    found |= {
        "numpy standard_normal": lambda: (
            rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        ).astype(out_dtype, copy=False),
        "numpy random": lambda: (
            rng.random(shape, dtype=np.float32) * np.float32(2 * limit) - np.float32(limit)
        ).astype(out_dtype, copy=False),
        "numpy truncated (resampling)": lambda: numpy_truncated_normal(rng, shape, std).astype(
            out_dtype, copy=False
        ),
    }
    if torch is not None:
        torch_dtype = getattr(torch, dtype)
        init = torch.nn.init

        def empty():
            return torch.empty(shape, dtype=torch_dtype)

        sigma = std / fastinit.TRUNCATED_NORMAL_STD  # glorot_normal's: cut at +-2 sigma

        found |= {
            "torch trunc_normal_": lambda: init.trunc_normal_(
                empty(), std=sigma, a=-2 * sigma, b=2 * sigma
            ),
            "torch normal_": lambda: init.normal_(empty(), std=std),
            "torch uniform_": lambda: init.uniform_(empty(), -limit, limit),
            "torch xavier_normal_": lambda: init.xavier_normal_(empty()),
            "torch xavier_uniform_": lambda: init.xavier_uniform_(empty()),
            "torch kaiming_normal_": lambda: init.kaiming_normal_(empty()),
            "torch kaiming_uniform_": lambda: init.kaiming_uniform_(empty()),
        }
    return found


RATIOS = [  # (ours, theirs): the ratios the targets are stated in
    ("fastinit glorot_normal", "numpy standard_normal"),
    ("fastinit glorot_normal", "torch normal_"),
    ("fastinit glorot_normal", "torch trunc_normal_"),
    ("fastinit glorot_normal", "numpy truncated (resampling)"),
    ("fastinit glorot_uniform", "numpy random"),
    ("fastinit glorot_uniform", "torch uniform_"),
]


def throughput(args: argparse.Namespace) -> dict[tuple[str, int], float]:
    per_element = {}
    for dtype in args.dtypes:
        itemsize = np.dtype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype).itemsize
        for size in args.sizes:
            n = int(size) // FAN * FAN
            print(f"\n{n:.0e} elements, {dtype}")
            medians = {}
            for name, fn in cases(n, dtype, args).items():
                times = measure(fn, args.repeat if n < 5e8 else 2)
                medians[name] = median = statistics.median(times)
                per_element[(f"{name} {dtype}", n)] = median / n
                spread = f"[{min(times) * 1e3:.1f}..{max(times) * 1e3:.1f}]"
                print(
                    f"  {name:<30} {median * 1e3:10.2f} ms {spread:>22}"
                    f"  {n / median / 1e6:8.1f} M/s  {n * itemsize / median / 1e9:6.2f} GB/s"
                )
            for ours, theirs in RATIOS:
                if ours in medians and theirs in medians:
                    print(f"  {ours} vs {theirs}: {medians[theirs] / medians[ours]:.2f}x faster")
    return per_element


def thread_scaling(n: int, repeat: int) -> None:
    shape = (n // FAN, FAN)
    threads = fastinit.get_num_threads()
    print(f"\nthread scaling, glorot_normal float32, {n:.0e} elements")
    base = None
    for t in sorted({1, threads}):
        median = statistics.median(
            measure(lambda t=t: fastinit.glorot_normal(shape, 0, threads=t), repeat)
        )
        base = base or median
        print(f"  {t} thread(s): {median * 1e3:8.2f} ms   speed-up {base / median:.2f}x")


def small_tensors(repeat: int) -> None:
    """Per-call time for 256 elements: fastinit beside NumPy's bare draw and beside NumPy
    doing the same job (the draw scaled to the initializer's std or limit)."""
    print("\nper call, 256 elements (median of batches of 2000 calls)")
    rng = np.random.default_rng(0)
    std = np.float32(math.sqrt(2.0 / 32))  # glorot for (16, 16)
    limit = np.float32(math.sqrt(3.0) * std)
    calls = {
        "numpy standard_normal(256, float32)": lambda: rng.standard_normal(256, dtype=np.float32),
        "numpy standard_normal(...) * std": lambda: (
            rng.standard_normal(256, dtype=np.float32) * std
        ),
        "numpy random(256, float32)": lambda: rng.random(256, dtype=np.float32),
        "numpy random(...) * 2l - l": lambda: (
            rng.random(256, dtype=np.float32) * (2 * limit) - limit
        ),
        "fastinit glorot_normal((16, 16))": lambda: fastinit.glorot_normal((16, 16), 0),
        "fastinit glorot_uniform((16, 16))": lambda: fastinit.glorot_uniform((16, 16), 0),
        "fastinit normal((256,))": lambda: fastinit.normal((256,), 0),
        "fastinit uniform((256,))": lambda: fastinit.uniform((256,), 0),
        "fastinit zeros((256,))": lambda: fastinit.zeros((256,)),
    }
    if torch is not None:
        calls["torch normal_(empty(256))"] = lambda: torch.nn.init.normal_(torch.empty(256))
    medians = {}
    for name, fn in calls.items():

        def batch(fn=fn):
            for _ in range(2000):
                fn()

        medians[name] = median = statistics.median(measure(batch, repeat)) / 2000
        print(f"  {name:<38} {median * 1e6:7.2f} us")
    for ours, bare, same in [
        ("fastinit glorot_normal((16, 16))", "numpy standard_normal(256, float32)",
         "numpy standard_normal(...) * std"),
        ("fastinit glorot_uniform((16, 16))", "numpy random(256, float32)",
         "numpy random(...) * 2l - l"),
    ]:  # fmt: skip
        print(
            f"  {ours}: {medians[ours] / medians[bare]:.2f}x NumPy's bare draw, "
            f"{medians[ours] / medians[same]:.2f}x NumPy doing the same job"
        )


def peak_memory(n: int) -> None:
    """Resident memory of a fresh process before and after one glorot_normal of n float32.

    Rss comes from /proc/self/smaps_rollup, which walks the page tables: ru_maxrss
    and VmRSS lag behind pages that worker threads fault in. fastinit allocates
    nothing but the output, so the growth is the peak growth.
    """
    code = (
        "import re, fastinit\n"
        "def rss():\n"
        "    text = open('/proc/self/smaps_rollup').read()\n"
        "    return int(re.search(r'^Rss:\\s+(\\d+)', text, re.M).group(1))\n"
        "before = rss()\n"
        f"x = fastinit.glorot_normal(({n // FAN}, {FAN}), 0)\n"
        "print(before, rss())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    before, after = (int(v) for v in result.stdout.split()[-2:])
    output = n // FAN * FAN * 4 / 2**20
    grown = (after - before) / 1024
    print(f"\npeak memory, glorot_normal of {n:.0e} float32 ({output:.0f} MiB of output):")
    print(f"  resident set grew by {grown:.0f} MiB ({grown / output:.3f}x the output)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 1e8])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only-fastinit", action="store_true", help="skip NumPy and torch")
    parser.add_argument(
        "--reuse-output",
        action="store_true",
        help="fastinit fills one pre-touched out= buffer per size (kernel speed, no page faults)",
    )
    args = parser.parse_args()

    threads = fastinit.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} CPUs, {len(os.sched_getaffinity(0))} usable")
    torch_version = torch.__version__ if torch is not None else "absent"
    print(
        f"fastinit {fastinit.__version__} (target {fastinit.cpu_target()}, {threads} threads), "
        f"numpy {np.__version__}, torch {torch_version} ({threads} threads)"
    )
    per_element = throughput(args)
    largest = int(max(args.sizes)) // FAN * FAN
    thread_scaling(min(largest, 10**8), args.repeat)
    small_tensors(args.repeat)
    peak_memory(min(largest, 10**8))
    print("\nper-element time across sizes (max / min, flat is 1.00):")
    names = sorted({name for name, _ in per_element if name.startswith("fastinit")})
    for name in names:
        times = [t for (key, _), t in per_element.items() if key == name]
        print(f"  {name:<38} {max(times) / min(times):.2f}")
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nmax RSS of this run: {max_rss:.0f} MiB")


if __name__ == "__main__":
    main()
