"""CUDA throughput of fastinit beside torch, CuPy and the card's write bandwidth, in one run.

    python bench/bench_cuda.py                      # 2^28 and 2^30 elements; float32, bfloat16
    python bench/bench_cuda.py --sizes 24 28 --repeat 50 --json bench_cuda.json

Every call is timed with CUDA events on torch's current stream: synchronize, record a
start event, make the call (Python, argument checks, allocation where the call
allocates, the launch), record an end event, wait for it. Since the GPU is idle when
the start event is recorded, the interval covers everything the call costs until its
kernel is done. --warmup calls come first; medians over --repeat timed calls, with the
spread [min..max] and the host's wall time (perf_counter around record..wait) beside.

fastinit fills torch tensors in place through out= (it launches on torch's current
stream), so allocation is not timed; one row allocates (device="cuda", cudaMalloc per
call; freeing is not timed). torch.randn writes into the same tensor through out=.
CuPy's standard_normal allocates from CuPy's memory pool (after the warm-up a pool hit,
no cudaMalloc). The write bandwidth is the best of cudaMemsetAsync, torch zero_() and
torch fill_(1.0) on the same tensor; GB/s is bytes of output / time (10^9 bytes).

Before timing, fastinit's GPU results (out= a torch tensor, and device="cuda") for 2^20
elements must equal its CPU results bit for bit; the run stops if they do not.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

FAN = 4096  # weights are (n / FAN, FAN): fan_in 4096, fan_out n / 4096
SEED = 20261123
STREAM = "bench"  # the bit check's stream; timed calls use the default, 0
CHECK_ELEMENTS = 2**20

MEMSET = "cudaMemsetAsync(0)"
ZERO = "torch zero_()"
FILL = "torch fill_(1.0)"
WRITE_CASES = (MEMSET, ZERO, FILL)
OURS = "fastinit glorot_normal out="
TRUNC = "torch nn.init.trunc_normal_"
RANDN = "torch randn(out=)"
# fastinit glorot_normal's share of the write bandwidth, by dtype; speed-ups over torch.
BANDWIDTH_TARGETS = {"float32": 85.0, "bfloat16": 70.0}
SPEEDUP_TARGETS = ((TRUNC, 5.0), (RANDN, 1.0))


class Unavailable(Exception):
    """Why this machine cannot run the benchmark (no torch, no GPU, no CUDA fastinit)."""


@dataclass
class Case:
    name: str
    call: Callable[[], object]
    note: str = ""


@dataclass
class Row:
    name: str
    dtype: str
    n: int
    shape: tuple[int, ...]
    bytes: int
    note: str = ""
    median_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    host_median_ms: float | None = None
    gb_per_s: float | None = None
    percent_of_write: float | None = None
    error: str | None = None
    times_ms: list[float] = field(default_factory=list)


def load_modules() -> tuple[Any, Any]:
    """torch and fastinit, once both can run CUDA work here; Unavailable says why not."""
    try:
        import torch
    except (ImportError, OSError) as error:
        raise Unavailable(f"torch is needed and cannot be imported ({error})") from None
    try:
        import fastinit
    except (ImportError, OSError) as error:
        raise Unavailable(
            f"fastinit cannot be imported ({error}); build and install it first "
            "(python3 -m pip install --no-build-isolation .)"
        ) from None
    if not torch.cuda.is_available():
        built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise Unavailable(
            f"torch {torch.__version__} ({built}) sees no CUDA device; "
            "run this on a machine with an NVIDIA GPU"
        )
    status = fastinit.cuda_status()
    if not status.available:
        raise Unavailable(f"fastinit cannot run CUDA kernels here: {status.reason}")
    return torch, fastinit


def load_cupy() -> tuple[Any, str]:
    """CuPy, or None and why it is left out."""
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # absent, or present without a usable CUDA runtime
        return None, f"absent ({type(error).__name__}: {error})"
    return cupy, cupy.__version__


def find_memset(cupy: Any) -> tuple[Callable[[int, int, int], None] | None, str]:
    """cudaMemsetAsync(pointer, 0, bytes, stream): through CuPy, else the CUDA runtime
    that torch loaded (ctypes). torch's zero_() is a fill kernel, not a memset."""
    if cupy is not None:

        def cupy_memset(pointer: int, nbytes: int, stream: int) -> None:
            cupy.cuda.runtime.memsetAsync(pointer, 0, nbytes, stream)

        return cupy_memset, "cupy.cuda.runtime.memsetAsync"
    names = ["libcudart.so.13", "libcudart.so.12", "libcudart.so"]
    for entry in sys.path:
        names += sorted(glob.glob(os.path.join(entry, "nvidia", "*", "lib", "libcudart.so*")))
        names += sorted(glob.glob(os.path.join(entry, "nvidia", "*", "*", "lib", "libcudart.so*")))
    for name in names:
        try:
            runtime = ctypes.CDLL(name)
            function = runtime.cudaMemsetAsync
        except (OSError, AttributeError):
            continue
        function.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t, ctypes.c_void_p]
        function.restype = ctypes.c_int

        def ctypes_memset(pointer: int, nbytes: int, stream: int, function=function) -> None:
            status = function(pointer, 0, nbytes, stream)
            if status != 0:
                raise RuntimeError(f"cudaMemsetAsync returned error {status}")

        return ctypes_memset, f"ctypes {name}"
    return None, "no CUDA runtime library found (CuPy absent)"


def driver_versions(torch: Any) -> dict[str, str]:
    found = {}
    get = getattr(torch._C, "_cuda_getDriverVersion", None)
    if get is not None:
        try:
            version = int(get())
            found["driver_cuda_api"] = f"{version // 1000}.{version % 1000 // 10}"
        except Exception as error:
            found["driver_cuda_api"] = f"unknown ({error})"
    if shutil.which("nvidia-smi"):
        try:
            result = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
            )
            found["driver"] = result.stdout.strip().splitlines()[0] if result.stdout else "?"
        except (OSError, subprocess.SubprocessError, IndexError) as error:
            found["driver"] = f"unknown ({error})"
    return found


def machine_info(torch: Any, fastinit: Any, cupy: Any, cupy_version: str) -> dict[str, Any]:
    device = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(device)
    info: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device),
        "device_index": device,
        "compute_capability": f"{props.major}.{props.minor}",
        "sm_count": props.multi_processor_count,
        "memory_gib": round(props.total_memory / 2**30, 1),
        **driver_versions(torch),
        "torch_cuda_runtime": torch.version.cuda,
        "torch": torch.__version__,
        "cupy": cupy_version,
        "fastinit": fastinit.__version__,
        "fastinit_cuda_devices": fastinit.cuda_status().device_count,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "torch_current_stream": torch.cuda.current_stream().cuda_stream,
    }
    l2 = getattr(props, "L2_cache_size", None)
    if l2:
        info["l2_mib"] = round(l2 / 2**20, 1)
    clock_khz = getattr(props, "memory_clock_rate", None)
    bus_bits = getattr(props, "memory_bus_width", None)
    if clock_khz and bus_bits:  # double data rate: two transfers per clock
        info["dram_peak_gb_per_s"] = round(2 * clock_khz * 1e3 * bus_bits / 8 / 1e9, 1)
    if cupy is not None:
        try:
            info["cupy_cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        except Exception as error:
            info["cupy_cuda_runtime"] = f"unknown ({error})"
    return info


def print_machine(info: dict[str, Any], memset_source: str) -> None:
    print(
        f"device: {info['device']} (cuda:{info['device_index']}, compute capability "
        f"{info['compute_capability']}, {info['sm_count']} SMs, {info['memory_gib']} GiB"
        + (f", L2 {info['l2_mib']} MiB" if "l2_mib" in info else "")
        + ")"
    )
    if "dram_peak_gb_per_s" in info:
        print(
            f"  theoretical DRAM bandwidth (2 x memory clock x bus width): "
            f"{info['dram_peak_gb_per_s']:.0f} GB/s"
        )
    print(
        f"driver {info.get('driver', '?')} (CUDA API {info.get('driver_cuda_api', '?')}), "
        f"torch's CUDA runtime {info['torch_cuda_runtime']}, "
        f"CuPy's CUDA runtime {info.get('cupy_cuda_runtime', '-')}"
    )
    print(
        f"fastinit {info['fastinit']} ({info['fastinit_cuda_devices']} CUDA device(s)), "
        f"torch {info['torch']}, CuPy {info['cupy']}, NumPy {info['numpy']}, "
        f"Python {info['python']}"
    )
    stream = info["torch_current_stream"]
    print(
        f"torch's current stream: {stream:#x}"
        + (" (the legacy default stream)" if stream == 0 else "")
        + f"; memset through {memset_source}"
    )


def weight_shape(n: int) -> tuple[int, ...]:
    return (n // FAN, FAN) if n >= FAN else (1, n)


def glorot_std(shape: tuple[int, ...]) -> float:
    return math.sqrt(2.0 / (shape[0] + shape[1]))


def bits_of_tensor(torch: Any, tensor: Any) -> np.ndarray:
    """A host copy of a CUDA tensor's bits as unsigned integers."""
    view = {torch.float32: torch.int32, torch.bfloat16: torch.int16}[tensor.dtype]
    host = tensor.view(view).cpu().numpy()
    return host.view(np.uint32 if host.itemsize == 4 else np.uint16)


def bits_of_array(array: np.ndarray) -> np.ndarray:
    return array.view(np.uint32 if array.dtype.itemsize == 4 else np.uint16)


def check_against_cpu(torch: Any, fastinit: Any, dtypes: list[str]) -> list[str]:
    """Mismatches between fastinit's GPU and CPU results (empty: all equal bit for bit)."""
    failures = []
    samplers = {
        "glorot_normal": fastinit.glorot_normal,
        "glorot_uniform": fastinit.glorot_uniform,
        "normal": lambda *a, **k: fastinit.normal(*a, std=0.02, **k),
    }
    for shape in (weight_shape(CHECK_ELEMENTS), (999, 1001)):  # whole groups; ragged ends
        for dtype in dtypes:
            for name, sample in samplers.items():
                want = bits_of_array(sample(shape, SEED, dtype=dtype, stream=STREAM))
                tensor = torch.empty(shape, dtype=getattr(torch, dtype), device="cuda")
                tensor.fill_(float("nan"))
                sample(shape, SEED, dtype=dtype, stream=STREAM, out=tensor)
                fresh = sample(shape, SEED, dtype=dtype, stream=STREAM, device="cuda")
                got = {
                    "out=torch": bits_of_tensor(torch, tensor),
                    'device="cuda"': bits_of_array(fresh.to_numpy()),
                }
                for how, bits in got.items():
                    differ = np.flatnonzero(bits != want)
                    if differ.size:
                        first = int(differ[0])
                        failures.append(
                            f"{name} {dtype} {shape} {how}: {differ.size} of {want.size} "
                            f"elements differ, first at flat index {first} "
                            f"(GPU {bits.flat[first]:#x}, CPU {want.flat[first]:#x})"
                        )
                del tensor, fresh
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    return failures


def measure(torch: Any, call: Callable[[], object], repeat: int, warmup: int):
    """(event ms, host ms) of each timed call, after `warmup` untimed calls."""
    for _ in range(warmup):
        result = call()
        torch.cuda.synchronize()
        del result
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()  # create both events before timing anything
    end.record()
    end.synchronize()
    event_ms, host_ms = [], []
    for _ in range(repeat):
        torch.cuda.synchronize()
        began = time.perf_counter()
        start.record()
        result = call()
        end.record()
        end.synchronize()
        host_ms.append((time.perf_counter() - began) * 1e3)
        event_ms.append(start.elapsed_time(end))
        del result  # a fresh output is freed here, outside the timed interval
    return event_ms, host_ms


def cases_for(
    torch: Any,
    fastinit: Any,
    cupy: Any,
    memset: Callable[[int, int, int], None] | None,
    tensor: Any,
    dtype: str,
) -> list[Case]:
    shape = tuple(tensor.shape)
    std = glorot_std(shape)
    sigma = std / fastinit.TRUNCATED_NORMAL_STD  # the normal that glorot_normal cuts at ±2σ
    nbytes = tensor.numel() * tensor.element_size()
    found = []
    if memset is not None:
        found.append(
            Case(
                MEMSET,
                lambda: memset(tensor.data_ptr(), nbytes, torch.cuda.current_stream().cuda_stream),
                "the runtime's memset",
            )
        )
    found += [
        Case(ZERO, lambda: tensor.zero_(), "torch's fill kernel (not a memset)"),
        Case(FILL, lambda: tensor.fill_(1.0), "a store-only kernel"),
        Case(
            OURS,
            lambda: fastinit.glorot_normal(shape, SEED, dtype=dtype, out=tensor),
            "truncated normal, in place",
        ),
        Case(
            "fastinit glorot_uniform out=",
            lambda: fastinit.glorot_uniform(shape, SEED, dtype=dtype, out=tensor),
            "in place",
        ),
        Case(
            "fastinit normal out=",
            lambda: fastinit.normal(shape, SEED, std=std, dtype=dtype, out=tensor),
            "untruncated, in place",
        ),
    ]
    if dtype == "float32":
        found.append(
            Case(
                'fastinit glorot_normal device="cuda"',
                lambda: fastinit.glorot_normal(shape, SEED, device="cuda"),
                "cudaMalloc per call included (free not timed)",
            )
        )
    found += [
        Case(
            TRUNC,
            lambda: torch.nn.init.trunc_normal_(tensor, std=sigma, a=-2 * sigma, b=2 * sigma),
            "same distribution as glorot_normal, in place",
        ),
        Case(
            "torch nn.init.normal_",
            lambda: torch.nn.init.normal_(tensor, std=std),
            "untruncated, in place",
        ),
        Case(
            RANDN,
            lambda: torch.randn(shape, out=tensor),
            "out=: no allocation; standard normal, unscaled",
        ),
    ]
    if cupy is not None and dtype == "float32":
        found.append(
            Case(
                "cupy random.standard_normal",
                lambda: cupy.random.standard_normal(shape, dtype=cupy.float32),
                "allocates (CuPy's pool); cuRAND standard normal, unscaled",
            )
        )
    return found


def run_size(
    torch: Any,
    fastinit: Any,
    cupy: Any,
    memset: Callable[[int, int, int], None] | None,
    dtype: str,
    n: int,
    args: argparse.Namespace,
) -> list[Row]:
    shape = weight_shape(n)
    n = math.prod(shape)
    itemsize = 4 if dtype == "float32" else 2
    nbytes = n * itemsize
    free, _ = torch.cuda.mem_get_info()
    if free < 2.2 * nbytes:  # the tensor, plus one fresh output (fastinit or CuPy)
        print(
            f"\n{dtype}, {n} elements: skipped, {nbytes / 1e9:.2f} GB of output needs "
            f"2.2x that free and {free / 1e9:.2f} GB are"
        )
        return []
    tensor = torch.empty(shape, dtype=getattr(torch, dtype), device="cuda")
    rows = []
    print(
        f"\n{dtype}, 2^{int(math.log2(n))} = {n} elements {shape}, {nbytes / 1e9:.3f} GB of output"
    )
    for case in cases_for(torch, fastinit, cupy, memset, tensor, dtype):
        row = Row(case.name, dtype, n, shape, nbytes, case.note)
        try:
            event_ms, host_ms = measure(torch, case.call, args.repeat, args.warmup)
        except Exception as error:  # report the case and go on with the others
            torch.cuda.synchronize()
            row.error = f"{type(error).__name__}: {error}"
            rows.append(row)
            continue
        row.times_ms = [round(t, 5) for t in event_ms]
        row.median_ms = statistics.median(event_ms)
        row.min_ms, row.max_ms = min(event_ms), max(event_ms)
        row.host_median_ms = statistics.median(host_ms)
        row.gb_per_s = nbytes / (row.median_ms * 1e-3) / 1e9
        rows.append(row)
    write = max((r.gb_per_s for r in rows if r.name in WRITE_CASES and r.gb_per_s), default=None)
    for row in rows:
        if write and row.gb_per_s:
            row.percent_of_write = 100.0 * row.gb_per_s / write
    print_rows(rows)
    del tensor
    if cupy is not None:
        cupy.get_default_memory_pool().free_all_blocks()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    return rows


def print_rows(rows: list[Row]) -> None:
    print(
        f"  {'case':<36} {'dtype':<8} {'n':>5} {'median ms':>10} {'[min..max] ms':>19} "
        f"{'host ms':>8} {'GB/s':>7} {'% write':>7}  note"
    )
    for row in rows:
        if row.error:
            print(f"  {row.name:<36} {row.dtype:<8} failed: {row.error}")
            continue
        spread = f"[{row.min_ms:.3f}..{row.max_ms:.3f}]"
        percent = f"{row.percent_of_write:6.1f}%" if row.percent_of_write else "      -"
        print(
            f"  {row.name:<36} {row.dtype:<8} 2^{int(math.log2(row.n)):<3} {row.median_ms:10.3f} "
            f"{spread:>19} {row.host_median_ms:8.3f} {row.gb_per_s:7.0f} {percent}  {row.note}"
        )


def verdicts(rows: list[Row]) -> list[dict[str, Any]]:
    """The targets for each (dtype, n): glorot_normal's share of the write bandwidth
    and its speed-ups over torch, each with its verdict (None where not measured)."""
    found = []
    keys = sorted({(row.dtype, row.n) for row in rows}, key=lambda k: (k[0] != "float32", k[1]))
    for dtype, n in keys:
        by_name = {r.name: r for r in rows if (r.dtype, r.n) == (dtype, n) and r.median_ms}
        ours = by_name.get(OURS)
        write = max(
            (by_name[name].gb_per_s for name in WRITE_CASES if name in by_name), default=None
        )
        share = 100.0 * ours.gb_per_s / write if ours and write else None
        target = BANDWIDTH_TARGETS.get(dtype, 70.0)
        found.append(
            {
                "dtype": dtype,
                "n": n,
                "what": "glorot_normal share of write bandwidth",
                "value": share,
                "unit": "%",
                "target": target,
                "write_gb_per_s": write,
                "pass": None if share is None else share >= target,
            }
        )
        for theirs, target in SPEEDUP_TARGETS:
            other = by_name.get(theirs)
            speedup = other.median_ms / ours.median_ms if ours and other else None
            found.append(
                {
                    "dtype": dtype,
                    "n": n,
                    "what": f"glorot_normal speed-up vs {theirs}",
                    "value": speedup,
                    "unit": "x",
                    "target": target,
                    "pass": None if speedup is None else speedup >= target,
                }
            )
    return found


def print_verdicts(found: list[dict[str, Any]]) -> None:
    print("\ntargets (fastinit glorot_normal, in place):")
    for v in found:
        label = {True: "PASS", False: "FAIL", None: "n/a (not measured)"}[v["pass"]]
        size = f"{v['dtype']:<8} 2^{int(math.log2(v['n']))}"
        if v["unit"] == "%":
            value = "-" if v["value"] is None else f"{v['value']:.1f}%"
            write = f" of {v['write_gb_per_s']:.0f} GB/s" if v["write_gb_per_s"] else ""
            print(f"  {size}  {v['what']}: {value}{write}  (target >= {v['target']:g}%)  {label}")
        else:
            value = "-" if v["value"] is None else f"{v['value']:.2f}x"
            print(f"  {size}  {v['what']}: {value}  (target >= {v['target']:g}x)  {label}")
    judged = [v for v in found if v["pass"] is not None]
    met = sum(v["pass"] for v in judged)
    print(
        f"  {met} of {len(judged)} targets met"
        + (f"; {len(found) - len(judged)} not measured" if len(judged) < len(found) else "")
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[28, 30],
        metavar="EXP",
        help="element counts as powers of two (default: 28 30)",
    )
    parser.add_argument(
        "--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"]
    )
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per case (>= 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (>= 3)")
    parser.add_argument("--json", metavar="PATH", help="write every number here as JSON")
    parser.add_argument(
        "--strict", action="store_true", help="exit 3 when a measured target is missed"
    )
    args = parser.parse_args(argv)
    if args.repeat < 10:
        parser.error("--repeat must be >= 10")
    if args.warmup < 3:
        parser.error("--warmup must be >= 3")
    if any(not 10 <= e <= 34 for e in args.sizes):
        parser.error("--sizes: exponents from 10 to 34")
    return args


def write_json(path: str, report: dict[str, Any]) -> None:
    def plain(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    rows = [{k: plain(v) for k, v in row.items()} for row in report.get("results", [])]
    with open(path, "w") as handle:
        json.dump({**report, "results": rows}, handle, indent=1)
        handle.write("\n")
    print(f"\nwrote {path}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report: dict[str, Any] = {"command": [sys.argv[0], *(argv or sys.argv[1:])]}
    try:
        torch, fastinit = load_modules()
    except Unavailable as error:
        print(f"bench_cuda: cannot run: {error}", file=sys.stderr)
        if args.json:
            write_json(args.json, {**report, "error": str(error)})
        return 2
    cupy, cupy_version = load_cupy()
    memset, memset_source = find_memset(cupy)
    info = machine_info(torch, fastinit, cupy, cupy_version)
    info["memset"] = memset_source
    report["machine"] = info
    report["settings"] = {
        "repeat": args.repeat,
        "warmup": args.warmup,
        "seed": SEED,
        "stream": 0,
        "bit_check_stream": STREAM,
        "fan": FAN,
        "timing": "CUDA events on torch's current stream around each call",
    }
    print_machine(info, memset_source)

    began = time.perf_counter()
    failures = check_against_cpu(torch, fastinit, args.dtypes)
    report["bit_check"] = {"elements": CHECK_ELEMENTS, "failures": failures}
    if failures:
        print("\nfastinit's GPU results differ from its CPU results; not timing anything:")
        for line in failures:
            print(f"  {line}")
        if args.json:
            write_json(args.json, report)
        return 1
    print(
        f"\nbit check: GPU == CPU for glorot_normal, glorot_uniform, normal "
        f'({", ".join(args.dtypes)}), out= and device="cuda", {CHECK_ELEMENTS} and '
        f"999 x 1001 elements ({time.perf_counter() - began:.1f} s)"
    )

    rows: list[Row] = []
    try:
        for dtype in args.dtypes:
            for exponent in args.sizes:
                rows += run_size(torch, fastinit, cupy, memset, dtype, 2**exponent, args)
    finally:
        report["results"] = [asdict(row) for row in rows]
        found = verdicts(rows)
        report["targets"] = found
        report["seconds"] = round(time.perf_counter() - began, 1)
        if rows:
            print_verdicts(found)
        print(f"\nbenchmark time {report['seconds']} s")
        if args.json:
            write_json(args.json, report)
    missed = any(v["pass"] is False for v in found)
    return 3 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
