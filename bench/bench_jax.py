"""A sharded glorot_normal jax.Array: fastinit.jax against JAX's own initializer, same run.

One (8192, 4096) float32 glorot_normal kernel (128 MiB), sharded by rows over 4 forced CPU
devices (XLA_FLAGS=--xla_force_host_platform_device_count=4, set here before jax starts):
- fastinit: `fastinit.jax.glorot_normal()(seed, shape, out_sharding=s)`: each device block is
  a `region=` of fastinit's C++ fill (all cores), placed by `jax.make_array_from_callback`;
- jax: `jax.jit(lambda key: jax.nn.initializers.glorot_normal()(key, shape),
  out_shardings=s)`: threefry and the truncated normal compiled by XLA, each device computing
  its own block. Its first call (trace + compile) is timed apart from the steady state.
Each timed call makes a new array and waits for it (`block_until_ready`); medians of --repeat,
after one untimed warm-up call each; and the unsharded NumPy call alone (median of --repeat),
to show what placing the blocks on the devices adds. The two results are checked for shape,
sharding and standard deviation (fastinit's also bit for bit against the NumPy call) before
timing.

    python bench/bench_jax.py                 # the issue's measurement
    python bench/bench_jax.py --rows 1024     # quick check
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import time

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()

import fastinit  # noqa: E402
import fastinit.jax as fj  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

SEED = 42


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _median_seconds(make, repeat: int) -> tuple[float, list[float]]:
    make().block_until_ready()  # warm-up, untimed
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        array = make()
        array.block_until_ready()
        times.append(time.perf_counter() - start)
        del array
    return statistics.median(times), times


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--cols", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    shape = (args.rows, args.cols)
    devices = jax.devices("cpu")[:4]
    sharding = NamedSharding(Mesh(np.array(devices), ("x",)), P("x"))
    key = jax.random.key(SEED)

    ours = fj.glorot_normal()
    jax_init = jax.nn.initializers.glorot_normal()
    jitted = jax.jit(lambda k: jax_init(k, shape, jnp.float32), out_shardings=sharding)

    start = time.perf_counter()
    theirs = jitted(key)
    theirs.block_until_ready()
    jax_first = time.perf_counter() - start

    # Correctness before timing: both sharded as asked, both with the right std.
    mine = ours(SEED, shape, out_sharding=sharding)
    expected = fastinit.glorot_normal(shape, SEED, layout="jax")
    assert mine.sharding == sharding and theirs.sharding == sharding
    assert np.array_equal(np.asarray(mine), expected)
    std = 1 / math.sqrt((args.rows + args.cols) / 2)
    for array in (mine, theirs):
        assert abs(float(np.asarray(array).std()) / std - 1) < 0.01
    del mine, theirs

    def make_ours() -> jax.Array:
        return ours(SEED, shape, out_sharding=sharding)

    fast, fast_times = _median_seconds(make_ours, args.repeat)
    slow, slow_times = _median_seconds(lambda: jitted(key), args.repeat)
    # The NumPy call alone: what placing the blocks on the devices adds to the fill.
    numpy_fill = statistics.median(
        _seconds(lambda: fastinit.glorot_normal(shape, SEED, layout="jax"))
        for _ in range(args.repeat)
    )
    elements = math.prod(shape)
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "load_1min_before": load_before,
        "jax": jax.__version__,
        "fastinit": fastinit.__version__,
        "fastinit_threads": fastinit.get_num_threads(),
        "shape": shape,
        "devices": len(devices),
        "fastinit_s": fast,
        "jax_jit_s": slow,
        "jax_first_call_s": jax_first,
        "numpy_call_s": numpy_fill,
        "fastinit_melem_per_s": elements / fast / 1e6,
        "jax_melem_per_s": elements / slow / 1e6,
        "speedup": slow / fast,
        "fastinit_times": fast_times,
        "jax_times": slow_times,
    }
    print(json.dumps(result, indent=1))
    print(
        f"{shape} float32 glorot_normal over {len(devices)} CPU devices: fastinit.jax "
        f"{fast * 1e3:.1f} ms, jax.jit {slow * 1e3:.1f} ms (first call {jax_first:.2f} s): "
        f"{slow / fast:.2f}x; the NumPy call alone (median) "
        f"{numpy_fill * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
