"""Checkpoint writing: fastinit against the disk and against transformers.

1. disk: `fastinit init --preset llama-3-8b --dtype bfloat16` (about 16 GB) against
   `dd if=/dev/zero bs=64M conv=fdatasync` writing the same number of bytes to the same
   directory, in the same run (target: fastinit <= 1.3x dd's time), with fastinit's
   peak resident memory (target <= 1 GiB).
2. transformers: a ~1B-parameter config (the llama-3.2-1b preset) through
   AutoModelForCausalLM.from_config(torch_dtype=bfloat16) + save_pretrained, against
   `fastinit init --config` of the same config (targets: >= 10x faster, >= 10x less
   peak memory).
Each job runs in its own process and reports its wall time and peak resident memory
(VmHWM). Outputs are deleted after each job. The disk job alternates fastinit, dd and
dd with oflag=direct (fastinit writes with O_DIRECT where it can) --repeat times (the
VM's write speed drifts by 2x between minutes) and compares the best of each.

    python bench/bench_checkpoint.py --dir /path/on/the/disk/to/measure
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

_PEAK = """
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
"""

_FASTINIT_JOB = (
    _PEAK
    + """
import json, sys, time
from fastinit import checkpoint, specs
source, output = sys.argv[1], sys.argv[2]
if source.endswith(".json"):
    config = json.load(open(source))
else:
    config = specs.preset_config(source)
spec = specs.spec_from_config(config, dtype="bfloat16", seed=0)
start = time.perf_counter()
result = checkpoint.write(spec, output, progress=False)
print(json.dumps({"seconds": time.perf_counter() - start, "bytes": result.bytes,
                  "peak": _peak()}))
"""
)

_TRANSFORMERS_JOB = (
    _PEAK
    + """
import json, sys, time
import torch, transformers
config = transformers.AutoConfig.for_model(**json.load(open(sys.argv[1])))
start = time.perf_counter()
model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
model.save_pretrained(sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - start, "peak": _peak()}))
"""
)


def _run(code: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _dd(path: str, nbytes: int, direct: bool = False) -> float:
    block = 64 << 20
    count = -(-nbytes // block)
    command = ["dd", "if=/dev/zero", f"of={path}", f"bs={block}", f"count={count}"]
    command += ["conv=fdatasync"] + (["oflag=direct"] if direct else [])
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    os.unlink(path)
    return seconds * nbytes / (count * block)  # the same number of bytes as fastinit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--preset", default="llama-3-8b", help="the disk-speed job's model")
    parser.add_argument("--small", default="llama-3.2-1b", help="the transformers job's model")
    parser.add_argument("--repeat", type=int, default=2, help="fastinit/dd pairs")
    parser.add_argument("--skip-transformers", action="store_true")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="fastinit-bench-", dir=args.dir)

    import fastinit
    from fastinit import specs

    print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"fastinit {fastinit.__version__}, writing under {root}")  # fmt: skip
    try:
        runs, dds, directs = [], [], []
        for _ in range(args.repeat):
            output = os.path.join(root, "fastinit")
            runs.append(_run(_FASTINIT_JOB, args.preset, output))
            shutil.rmtree(output)
            dds.append(_dd(os.path.join(root, "dd.bin"), runs[-1]["bytes"]))
            directs.append(_dd(os.path.join(root, "dd.bin"), runs[-1]["bytes"], direct=True))
        nbytes = runs[0]["bytes"]
        ours = min(run["seconds"] for run in runs)
        peak = max(run["peak"] for run in runs)
        ratio = ours / min(dds)
        times = ", ".join(f"{run['seconds']:.1f}" for run in runs)
        print(f"{args.preset} bfloat16: {nbytes / 1e9:.2f} GB, runs alternating")
        print(f"  fastinit init  {times:>20} s  best {nbytes / ours / 1e9:5.2f} GB/s")
        times = ", ".join(f"{t:.1f}" for t in dds)
        print(f"  dd fdatasync   {times:>20} s  best {nbytes / min(dds) / 1e9:5.2f} GB/s")
        times = ", ".join(f"{t:.1f}" for t in directs)
        print(f"  dd oflag=direct{times:>20} s  best {nbytes / min(directs) / 1e9:5.2f} GB/s")
        print(f"  fastinit / dd oflag=direct time (best of each): {ours / min(directs):.2f}")
        verdict = "PASS" if ratio <= 1.3 else "FAIL"
        print(f"  fastinit / dd time (best of each): {ratio:.2f}  (target <= 1.3: {verdict})")
        verdict = "PASS" if peak <= 2**30 else "FAIL"
        print(f"  peak resident: {peak / 2**20:.0f} MiB  (target <= 1024 MiB: {verdict})")

        if not args.skip_transformers:
            config_path = os.path.join(root, "config.json")
            with open(config_path, "w") as handle:
                json.dump(specs.preset_config(args.small), handle)
            output = os.path.join(root, "transformers")
            theirs = _run(_TRANSFORMERS_JOB, config_path, output)
            shutil.rmtree(output)
            output = os.path.join(root, "fastinit-small")
            small = _run(_FASTINIT_JOB, config_path, output)
            shutil.rmtree(output)
            speed = theirs["seconds"] / small["seconds"]
            memory = theirs["peak"] / small["peak"]
            print(f"{args.small} bfloat16 ({small['bytes'] / 1e9:.2f} GB):")
            print(f"  transformers from_config + save_pretrained {theirs['seconds']:8.2f} s  "
                  f"peak {theirs['peak'] / 2**20:7.0f} MiB")  # fmt: skip
            print(f"  fastinit init                              {small['seconds']:8.2f} s  "
                  f"peak {small['peak'] / 2**20:7.0f} MiB")  # fmt: skip
            verdicts = ["PASS" if x >= 10 else "FAIL" for x in (speed, memory)]
            print(f"  speed: {speed:.1f}x (target >= 10: {verdicts[0]}); "
                  f"memory: {memory:.1f}x less (target >= 10: {verdicts[1]})")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
