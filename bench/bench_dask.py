"""`.sum()` of a fastinit Dask array against the NumPy path, same run (issue 14 target).

    python bench/bench_dask.py                    # (65536, 8192) float32 glorot_normal
    python bench/bench_dask.py --rows 4096 --repeat 1    # a quick check of the script

The target: a Dask array of a (65536, 8192) float32 glorot_normal computes `.sum()` at
>= 0.8x the NumPy path's rate (elements per second, fill and sum together). Measured:

- numpy full:   `fastinit.glorot_normal(shape, seed).sum()`: the whole 2 GiB array, then
                NumPy's sum; what a user without Dask writes (the target's NumPy path);
- numpy chunks: the same array filled and summed block by block with `region=` in a
                Python loop, blocks the size of Dask's chunks: no 2 GiB allocation;
- dask:         `fastinit.dask.glorot_normal(shape, seed, chunks=...).sum().compute()`
                on the threads scheduler (one worker per CPU), each chunk's fill with
                fastinit's default threads, and with `threads=1` per chunk.

Each case runs once to warm up, then --repeat times interleaved; medians and
[min..max] are printed, and the load average before and after (run it on a quiet
machine). The sums are compared: every path sums the same values, in other orders.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import dask
import fastinit
import fastinit.dask
import numpy as np

SEED = 14


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def numpy_full(shape: tuple[int, int]) -> float:
    return float(fastinit.glorot_normal(shape, SEED).sum())


def numpy_chunks(shape: tuple[int, int], rows: int) -> float:
    total = 0.0
    for start in range(0, shape[0], rows):
        region = (slice(start, min(start + rows, shape[0])),)
        total += float(fastinit.glorot_normal(shape, SEED, region=region).sum())
    return total


def dask_sum(shape: tuple[int, int], chunks: object, threads: int | None) -> float:
    array = fastinit.dask.glorot_normal(shape, SEED, chunks=chunks, threads=threads)
    return float(array.sum().compute(scheduler="threads"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=65536)
    parser.add_argument("--cols", type=int, default=8192)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunks", default="auto", help='"auto" or rows per chunk')
    args = parser.parse_args()
    shape = (args.rows, args.cols)
    chunks: object = "auto" if args.chunks == "auto" else (int(args.chunks), args.cols)
    array = fastinit.dask.glorot_normal(shape, SEED, chunks=chunks)
    chunk_rows = array.chunks[0][0]
    cpus = os.cpu_count()
    print(
        f"{cpu_model()}, {cpus} CPUs, {platform.python_version()}, fastinit "
        f"{fastinit.__version__} ({fastinit.cpu_target()}, {fastinit.get_num_threads()} "
        f"threads), numpy {np.__version__}, dask {dask.__version__}"
    )
    print(
        f"shape {shape} float32 ({np.prod(shape) * 4 / 2**30:.2f} GiB), dask chunks "
        f"{array.chunksize} x {array.npartitions}, load {os.getloadavg()[0]:.2f}"
    )
    cases: dict[str, Callable[[], float]] = {
        "numpy full": lambda: numpy_full(shape),
        "numpy chunks": lambda: numpy_chunks(shape, chunk_rows),
        "dask": lambda: dask_sum(shape, chunks, None),
        "dask threads=1": lambda: dask_sum(shape, chunks, 1),
    }
    sums = {name: case() for name, case in cases.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, case in cases.items():
            start = time.perf_counter()
            case()
            times[name].append(time.perf_counter() - start)
    elements = np.prod(shape)
    rates = {name: elements / statistics.median(seconds) for name, seconds in times.items()}
    for name, seconds in times.items():
        print(
            f"{name:15s} {statistics.median(seconds):7.3f} s "
            f"[{min(seconds):.3f}..{max(seconds):.3f}]  {rates[name] / 1e6:7.1f} M elements/s  "
            f"sum {sums[name]:+.6e}"
        )
    for name in ("dask", "dask threads=1"):
        print(
            f"{name} / numpy full: {rates[name] / rates['numpy full']:.2f}x, "
            f"/ numpy chunks: {rates[name] / rates['numpy chunks']:.2f}x"
        )
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
