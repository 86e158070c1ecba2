"""CPU throughput of fastinit beside NumPy and torch, measured in one run.

    python bench/bench_cpu.py                 # 10^6 and 10^7 elements
    python bench/bench_cpu.py --sizes 1e8     # add bigger sizes

Each case is timed on a fresh output every repetition (page faults of the new
allocation count, as they do for users); medians and the spread (min..max) of
--repeat runs are printed, with samples/s, output GB/s and the ratio against
each baseline. torch is optional and uses as many threads as fastinit.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable

import fastinit
import ml_dtypes
import numpy as np

try:
    import torch
except ImportError:  # torch is an optional extra
    torch = None

FAN = 4096  # weights are (n / FAN, FAN): glorot std = sqrt(2 / (FAN + n / FAN))


def _time(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _cases(n: int, dtype: str) -> dict[str, Callable[[], object]]:
    shape = (n // FAN, FAN)
    std = math.sqrt(2.0 / (shape[0] + shape[1]))
    limit = math.sqrt(3.0) * std
    np_dtype = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
    rng = np.random.default_rng(0)
    cases = {
        "fastinit glorot_normal (truncated)": lambda: fastinit.glorot_normal(shape, 0, dtype=dtype),
        "fastinit glorot_uniform": lambda: fastinit.glorot_uniform(shape, 0, dtype=dtype),
        "fastinit normal": lambda: fastinit.normal(shape, 0, std=std, dtype=dtype),
        "numpy standard_normal(f32)*std": lambda: (
            rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        ).astype(np_dtype, copy=False),
        "numpy random(f32) scaled": lambda: (
            rng.random(shape, dtype=np.float32) * np.float32(2 * limit) - np.float32(limit)
        ).astype(np_dtype, copy=False),
    }
    if torch is not None:
        torch_dtype = getattr(torch, dtype)

        def empty():
            return torch.empty(shape, dtype=torch_dtype)

        cases |= {
            "torch trunc_normal_": lambda: torch.nn.init.trunc_normal_(
                empty(), std=std / fastinit.TRUNCATED_NORMAL_STD, a=-2 * std, b=2 * std
            ),
            "torch normal_": lambda: torch.nn.init.normal_(empty(), std=std),
            "torch uniform_": lambda: torch.nn.init.uniform_(empty(), -limit, limit),
            "torch xavier_normal_": lambda: torch.nn.init.xavier_normal_(empty()),
            "torch kaiming_uniform_": lambda: torch.nn.init.kaiming_uniform_(empty()),
        }
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    threads = len(os.sched_getaffinity(0))
    if torch is not None:
        torch.set_num_threads(threads)
    print(f"machine: {platform.processor() or platform.machine()}, {threads} cores available")
    print(
        f"fastinit {fastinit.__version__}, numpy {np.__version__}, "
        f"torch {torch.__version__ if torch else 'absent'} ({threads} threads)"
    )
    for dtype in args.dtypes:
        itemsize = 2 if dtype in ("bfloat16", "float16") else np.dtype(dtype).itemsize
        for size in args.sizes:
            n = int(size) // FAN * FAN
            print(f"\n{n:.0e} elements, {dtype}")
            medians = {}
            for name, fn in _cases(n, dtype).items():
                times = _time(fn, args.repeat)
                medians[name] = median = statistics.median(times)
                spread = f"[{min(times) * 1e3:.2f}..{max(times) * 1e3:.2f}]"
                print(
                    f"  {name:<36} {median * 1e3:9.2f} ms  {spread}"
                    f"  {n / median / 1e6:8.1f} M/s  {n * itemsize / median / 1e9:6.2f} GB/s"
                )
            ours = medians["fastinit glorot_normal (truncated)"]
            for name in medians:
                if not name.startswith("fastinit"):
                    print(f"  glorot_normal speed / {name}: {medians[name] / ours:.2f}x")


if __name__ == "__main__":
    main()
