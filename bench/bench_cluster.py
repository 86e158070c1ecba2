"""Cluster checkpoint writing: 2 dask.distributed worker processes against one process.

A ~1B-parameter bfloat16 checkpoint (the llama-3.2-1b preset, 2.47 GB, in several
shards) is written by `checkpoint.write(spec, out)` in one process and by
`checkpoint.write(spec, out, client=client)` through a LocalCluster of 2 worker
processes (threads_per_worker=1) on this machine, alternating --repeat times (the VM's
write speed drifts between minutes), into the same directory. Targets: the cluster
write within 1.2x the single-process time (both share one disk and its cores: the
point is no overhead), and the client's peak resident memory <= 200 MB. The cluster
(scheduler and workers) runs in its own process, so the client's peak (VmHWM) is the
client's alone. The per-node rate it prints is what RESULTS.md's 405B estimate uses.

    python bench/bench_cluster.py [--dir /tmp] [--repeat 3] [--max-shard-size 600MB]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

_PEAK = """
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
"""

_SPEC = """
from fastinit import hf_configs
spec = hf_configs.spec_from_config(hf_configs.preset_config(preset), dtype="bfloat16")
"""

_SINGLE_JOB = (
    _PEAK
    + """
import json, sys, time
from fastinit import checkpoint
preset, output, shard = sys.argv[1:4]
"""
    + _SPEC
    + """
start = time.perf_counter()
result = checkpoint.write(spec, output, max_shard_size=shard, progress=False)
print(json.dumps({"seconds": time.perf_counter() - start, "bytes": result.bytes,
                  "files": len(result.files), "peak": _peak()}))
"""
)

_CLIENT_JOB = (
    _PEAK
    + """
import json, sys, time
import distributed
from fastinit import checkpoint
preset, output, shard, address, threads = sys.argv[1:6]
"""
    + _SPEC
    + """
with distributed.Client(address, set_as_default=False) as client:
    connected = _peak()
    start = time.perf_counter()
    result = checkpoint.write(spec, output, max_shard_size=shard, progress=False,
                              client=client, threads=int(threads) if threads else None)
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "bytes": result.bytes, "files": len(result.files),
                  "peak": _peak(), "connected": connected}))
"""
)

_CLUSTER_JOB = """
import sys, distributed
with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                              host="127.0.0.1", dashboard_address=None) as cluster:
    with distributed.Client(cluster) as client:
        client.wait_for_workers(2)
    print(cluster.scheduler_address, flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
"""


def _run(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"a benchmark job failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--preset", default="llama-3.2-1b")
    parser.add_argument("--max-shard-size", default="600MB")
    parser.add_argument("--repeat", type=int, default=3, help="single/cluster pairs")
    parser.add_argument("--worker-threads", default="", help="threads= per task (default: all)")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="fastinit-bench-cluster-", dir=args.dir)

    import fastinit

    load = os.getloadavg()[0]
    print(
        f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, load {load:.2f}, "
        f"fastinit {fastinit.__version__}, writing under {root}"
    )
    cluster = subprocess.Popen(
        [sys.executable, "-c", _CLUSTER_JOB],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert cluster.stdout is not None
        address = cluster.stdout.readline().strip()
        singles, clustered = [], []
        output = os.path.join(root, "out")
        for _ in range(args.repeat):
            singles.append(_run(_SINGLE_JOB, args.preset, output, args.max_shard_size))
            shutil.rmtree(output)
            clustered.append(
                _run(
                    _CLIENT_JOB,
                    args.preset,
                    output,
                    args.max_shard_size,
                    address,
                    args.worker_threads,
                )
            )
            shutil.rmtree(output)
        nbytes, files = singles[0]["bytes"], singles[0]["files"]
        one = [run["seconds"] for run in singles]
        two = [run["seconds"] for run in clustered]
        print(
            f"{args.preset} bfloat16: {nbytes / 1e9:.2f} GB in {files} files "
            f"(max_shard_size {args.max_shard_size}), runs alternating"
        )
        for name, times in (("one process", one), ("2-worker cluster", two)):
            listed = ", ".join(f"{t:.2f}" for t in times)
            print(
                f"  {name:<17} {listed:>24} s  best {nbytes / min(times) / 1e9:5.2f} GB/s  "
                f"median {nbytes / statistics.median(times) / 1e9:5.2f} GB/s"
            )
        best = min(two) / min(one)
        median = statistics.median(two) / statistics.median(one)
        verdict = "PASS" if best <= 1.2 else "FAIL"
        print(
            f"  cluster / one-process time: best {best:.2f}, median {median:.2f}  "
            f"(target <= 1.2: {verdict})"
        )
        peak = max(run["peak"] for run in clustered)
        connected = max(run["connected"] for run in clustered)
        verdict = "PASS" if peak <= 200e6 else "FAIL"
        print(
            f"  client peak resident: {peak / 1e6:.0f} MB ({connected / 1e6:.0f} MB once "
            f"connected, before the write)  (target <= 200 MB: {verdict})"
        )
        print(f"  one-process peak resident: {max(r['peak'] for r in singles) / 1e6:.0f} MB")
        print(f"  per-node rate (this machine, 2 workers): {nbytes / min(two) / 1e9:.2f} GB/s")
    finally:
        if cluster.stdin is not None:
            cluster.stdin.close()
        try:
            cluster.wait(timeout=60)
        except subprocess.TimeoutExpired:
            cluster.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
