"""Specs recorded from transformers (issue 15): derivation time, and writing a state-space model.

1. derivation: `hf_record.spec_from_transformers` of every preset and of full-size Mamba
   and Mamba-2 configs, each in a fresh process: the import of transformers, the first
   derivation (which imports the model's module) and a second one (target: <= 5 s each).
2. writing: the recorded spec of Mamba-2.8B in bfloat16 (its A_log literal and dt bias
   formula are made on the host, the rest by the kernel), written by a process that
   loads the spec (no torch or transformers in it), against `dd ... conv=fdatasync` of
   the same bytes in the same directory, alternating, best of --repeat; the writer's
   peak resident memory (target: <= 200 MB).

    python bench/bench_recorded.py [--dir /path/on/the/disk] [--repeat 2]
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

# state-spaces/mamba-2.8b-hf (d_model 2560, 64 layers, d_state 16, vocab 50277 padded to 8)
MAMBA_2_8B = {
    "model_type": "mamba", "hidden_size": 2560, "num_hidden_layers": 64, "state_size": 16,
    "vocab_size": 50280, "expand": 2, "conv_kernel": 4,
}  # fmt: skip
# Mamba-2 at the same width (80 heads of 64, d_state 128, as state-spaces/mamba2-2.7b)
MAMBA2_2_7B = {
    "model_type": "mamba2", "hidden_size": 2560, "num_hidden_layers": 64, "state_size": 128,
    "vocab_size": 50288, "num_heads": 80, "head_dim": 64, "n_groups": 1, "expand": 2,
}  # fmt: skip

_DERIVE_JOB = """
import json, sys, time
start = time.perf_counter()
import transformers
from fastinit import specs
from fastinit.hf_record import spec_from_transformers
imported = time.perf_counter() - start
source = sys.argv[1]
config = json.loads(source) if source.startswith("{") else specs.preset_config(source)
times = []
for _ in range(2):
    start = time.perf_counter()
    spec = spec_from_transformers(config)
    times.append(time.perf_counter() - start)
print(json.dumps({"import": imported, "first": times[0], "second": times[1],
                  "tensors": len(spec.tensors)}))
"""

_SPEC_JOB = """
import json, sys
from fastinit import specs
from fastinit.hf_record import spec_from_transformers
spec = spec_from_transformers(json.loads(sys.argv[1]), dtype="bfloat16")
json.dump(specs.spec_to_json(spec), open(sys.argv[2], "w"))
print("{}")
"""

# The writer alone, from the recorded spec: no torch or transformers in the process.
_WRITE_JOB = """
import json, sys, time
from fastinit import checkpoint, specs
spec = specs.load_spec(sys.argv[1])
start = time.perf_counter()
result = checkpoint.write(spec, sys.argv[2], progress=False)
seconds = time.perf_counter() - start
peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "bytes": result.bytes, "peak": peak}))
"""


def _run(code: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _dd(path: str, nbytes: int) -> float:
    block = 64 << 20
    count = -(-nbytes // block)
    command = ["dd", "if=/dev/zero", f"of={path}", f"bs={block}", f"count={count}"]
    start = time.perf_counter()
    subprocess.run([*command, "conv=fdatasync"], check=True, capture_output=True)
    seconds = time.perf_counter() - start
    os.unlink(path)
    return seconds * nbytes / (count * block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=2, help="fastinit/dd pairs")
    args = parser.parse_args()

    import fastinit
    from fastinit import specs

    print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"fastinit {fastinit.__version__}")  # fmt: skip
    sources = {name: name for name in sorted(specs.PRESETS)}
    sources["mamba-2.8b"] = json.dumps(MAMBA_2_8B)
    sources["mamba2-2.7b"] = json.dumps(MAMBA2_2_7B)
    print("derivation, each in a fresh process (s):  import  first  second  tensors")
    slowest = 0.0
    for name, source in sources.items():
        run = _run(_DERIVE_JOB, source)
        slowest = max(slowest, run["first"])
        print(f"  {name:22} {run['import']:6.2f} {run['first']:6.2f} {run['second']:7.2f} "
              f"{run['tensors']:8}")  # fmt: skip
    verdict = "PASS" if slowest <= 5 else "FAIL"
    print(f"  slowest first derivation {slowest:.2f} s (target <= 5 s: {verdict})")

    root = tempfile.mkdtemp(prefix="fastinit-bench-", dir=args.dir)
    try:
        spec_path = os.path.join(root, "mamba-spec.json")
        _run(_SPEC_JOB, json.dumps(MAMBA_2_8B), spec_path)
        runs, dds = [], []
        for _ in range(args.repeat):
            output = os.path.join(root, "mamba")
            runs.append(_run(_WRITE_JOB, spec_path, output))
            shutil.rmtree(output)
            dds.append(_dd(os.path.join(root, "dd.bin"), runs[-1]["bytes"]))
        nbytes = runs[0]["bytes"]
        ours, peak = min(run["seconds"] for run in runs), max(run["peak"] for run in runs)
        print(f"mamba-2.8b bfloat16: {nbytes / 1e9:.2f} GB under {root}")
        times = ", ".join(f"{run['seconds']:.1f}" for run in runs)
        print(f"  fastinit write  {times:>12} s  best {nbytes / ours / 1e9:5.2f} GB/s")
        print(f"  dd fdatasync    {', '.join(f'{t:.1f}' for t in dds):>12} s  "
              f"best {nbytes / min(dds) / 1e9:5.2f} GB/s")  # fmt: skip
        print(f"  fastinit / dd time (best of each): {ours / min(dds):.2f}")
        verdict = "PASS" if peak <= 200e6 else "FAIL"
        print(f"  peak resident: {peak / 1e6:.0f} MB (target <= 200 MB: {verdict})")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
