"""The `fastinit` command: initialize checkpoints, verify them, and check a sample.

    fastinit init --preset llama-3-8b -o llama-3-8b-init        # sharded safetensors + index
    fastinit init --config config.json -o out --dtype bfloat16 --seed 7 --max-shard-size 5GB
    fastinit init --spec spec.json -o model.safetensors           # one file
    fastinit init --config t5.json --model-class AutoModelForSeq2SeqLM -o t5-init
    fastinit init --preset llama-3.1-405b -o out --dry-run        # the files, nothing written
    fastinit verify llama-3-8b-init [--sample 64]                 # regenerate, compare bytes
    fastinit                         # sample: glorot_normal of a 4096 x 4096 weight, float32
    fastinit sample --init he_uniform --shape 64 3 7 7 --dtype bfloat16

`sample` prints the formula's std, the sample's mean and std with the tolerance
derived from the sample size, and the median time beside NumPy's generator doing the
nearest equivalent job in the same run; it exits 1 if the sample fails its check.
`verify` exits 0 when every byte checked equals its regeneration, 1 when some differ,
2 when a file is not a valid fastinit checkpoint (one line naming the file and the
field) or an argument is bad, and 3 on an internal error (never 1, never a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, checkpoint, hf_configs, initializers, specs
from ._checks import check_dtype
from ._signals import CommittedInterrupt
from .fans import compute_fans

# Kurtosis (mu4 / sigma^4) of each distribution, for the standard error of the std.
_KURTOSIS = {"truncated_normal": 2.3637, "uniform": 1.8}
_SIGMAS = 6.0  # tolerance in standard errors: a correct sampler never fails it
_SCHEDULER_HELP = "a dask.distributed scheduler address (shared file system); "


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: first-touch page faults of a fresh allocation are measured below
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sample(args: argparse.Namespace) -> int:
    scale, mode, distribution, _ = initializers.NAMED[args.init]
    shape = tuple(args.shape)
    if math.prod(shape) == 0:
        raise ValueError(f"shape {list(shape)} has no elements to check")
    dtype = check_dtype(args.dtype)
    fan_in, fan_out = compute_fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    std = math.sqrt(scale / n)
    init = getattr(initializers, args.init)

    x = init(shape, args.seed, dtype=dtype).astype(np.float64)
    size = x.size
    mean, sample_std = float(x.mean()), float(x.std())
    mean_tol = _SIGMAS * std / math.sqrt(size)
    std_tol = _SIGMAS * std * math.sqrt((_KURTOSIS[distribution] - 1) / (4 * size))
    # bfloat16 keeps 8 bits: its rounding adds up to 2^-9 relative to each value.
    if dtype.itemsize == 2:
        std_tol += std * 2.0**-9
    ok = abs(mean) <= mean_tol and abs(sample_std - std) <= std_tol
    print(f"fastinit {__version__}: {args.init}{list(shape)} {dtype.name}, seed {args.seed}")
    print(f"  formula  std = sqrt({scale:g} / {mode} {n:g}) = {std:.6g}  ({distribution})")
    print(f"  sample  mean = {mean:+.3e}   (|mean| <= {mean_tol:.2e})")
    error = abs(sample_std - std)
    print(f"  sample   std = {sample_std:.6g}  (|std - formula| = {error:.2e} <= {std_tol:.2e})")
    print(f"  check: {'PASS' if ok else 'FAIL'}")

    ours = _median_seconds(lambda: init(shape, args.seed, dtype=dtype), args.repeat)
    rng = np.random.default_rng(args.seed)
    if distribution == "uniform":
        limit = math.sqrt(3.0) * std
        baseline_name = "numpy random(float32) * 2l - l"

        def baseline() -> np.ndarray:
            return (
                rng.random(shape, dtype=np.float32) * np.float32(2 * limit) - np.float32(limit)
            ).astype(dtype, copy=False)
    else:
        baseline_name = "numpy standard_normal(float32) * std (untruncated)"

        def baseline() -> np.ndarray:
            return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(
                dtype, copy=False
            )

    theirs = _median_seconds(baseline, args.repeat)
    print(f"  time (median of {args.repeat}, {size:,} values):")
    print(f"    fastinit {args.init:<15} {ours * 1e3:9.2f} ms  {size / ours / 1e6:8.1f} M/s")
    print(f"    {baseline_name:<24} {theirs * 1e3:9.2f} ms  {size / theirs / 1e6:8.1f} M/s")
    print(f"    fastinit / numpy speed: {theirs / ours:.2f}x")
    return 0 if ok else 1


def _init(args: argparse.Namespace) -> int:
    if args.spec is not None and args.model_class is not None:
        raise ValueError("--model-class applies to --config and --preset, not to --spec")
    if args.preset is not None or args.config is not None:
        model_class = hf_configs.check_model_class(args.model_class, argument="--model-class")
        if args.preset is not None:
            config = hf_configs.preset_config(args.preset)
        else:
            config = specs.load_config(args.config)
        with _quiet_transformers():
            spec = hf_configs.spec_for_config(config, model_class=model_class, dtype=args.dtype)
    else:
        spec = specs.load_spec(args.spec)
        if args.dtype is not None:
            spec = specs.with_dtype(spec, args.dtype)
    if args.seed is not None:
        spec = specs.with_seed(spec, args.seed)
    if args.dry_run:
        return _dry_run(spec, args)
    try:
        with _scheduler(args.scheduler) as client:
            result = checkpoint.write(
                spec, args.output, max_shard_size=args.max_shard_size, threads=args.threads,
                force=args.force, client=client,
            )  # fmt: skip
    except CommittedInterrupt:  # too late to stop: the new checkpoint was already in place
        print(
            f"fastinit: interrupted; {args.output} holds the complete new checkpoint",
            file=sys.stderr,
        )
        return 130
    names = ", ".join(path.name for path in result.files)
    if result.index is not None:
        names = f"{len(result.files)} shards + {result.index.name}"
    rate = result.bytes / result.seconds / 1e9 if result.seconds > 0 else 0.0
    print(
        f"fastinit {__version__}: {len(spec.tensors)} tensors, "
        f"{sum(math.prod(t.shape) for t in spec.tensors):,} parameters, seed {spec.seed} -> "
        f"{args.output} ({names}): {result.bytes / 1e9:.3f} GB in {result.seconds:.2f} s, "
        f"{rate:.2f} GB/s"
    )
    return 0


def _dry_run(spec: specs.ModelSpec, args: argparse.Namespace) -> int:
    """Prints the files `fastinit init` would write (checkpoint.plan, the writer's own
    layout) and writes nothing: no file, no directory, nothing swept or replaced."""
    target = Path(args.output)
    single = target.suffix == ".safetensors"
    limit = None if single else checkpoint.parse_size(args.max_shard_size)
    layouts = checkpoint.plan(spec, max_shard_size=limit, metadata=checkpoint.metadata_of(spec))
    # The write's own refusals of its output, read-only: the dry run fails where it would.
    if not target.parent.is_dir():
        raise FileNotFoundError(f"directory {target.parent} does not exist")
    checkpoint._check_place(target, single)
    if not args.force:
        directory = target.parent if single else target
        names = [target.name] if single else [layout.name for layout in layouts]
        if not single:
            names += [checkpoint.INDEX_FILE, "config.json"]
        existing = [directory / n for n in names if os.path.lexists(directory / n)]
        existing += [] if single else checkpoint._checkpoint_files_in(directory)
        if existing:
            raise FileExistsError(f"{existing[0]} exists; pass --force to replace it")
    parameters = sum(math.prod(t.shape) for t in spec.tensors)
    total = sum(layout.size for layout in layouts)
    print(
        f"fastinit {__version__} (dry run, nothing written): {len(spec.tensors)} tensors, "
        f"{parameters:,} parameters, seed {spec.seed} -> {args.output}"
    )
    for tensor in spec.tensors:
        print(f"  tensor {tensor.name} {list(tensor.shape)} {tensor.dtype} {tensor.init}")
    for layout in layouts:
        name = target.name if single else layout.name
        print(f"  file {name}: {len(layout.entries)} tensors, {layout.size:,} bytes")
    if not single and len(layouts) > 1:
        print(f"  index {checkpoint.INDEX_FILE}")
    if not single and spec.config is not None:
        print("  config config.json")
    print(f"  total {total:,} bytes in {len(layouts)} file(s), {parameters:,} parameters")
    return 0


def _verify(args: argparse.Namespace) -> int:
    with _scheduler(args.scheduler) as client:
        result = checkpoint.verify(
            args.path, sample=args.sample, sample_seed=args.sample_seed, threads=args.threads,
            client=client,
        )  # fmt: skip
    what = f"{args.sample} sampled chunks" if args.sample else "every byte"
    for line in result.mismatched:
        print(f"MISMATCH {line}")
    verdict = "FAIL" if result.mismatched else "OK"
    print(
        f"fastinit verify {args.path}: {result.tensors} tensors, {what}, "
        f"{result.checked_bytes / 1e9:.3f} GB regenerated: {verdict}"
    )
    return 1 if result.mismatched else 0


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' logger at ERROR while it builds the meta model: its config checks warn
    about running the model (token ids outside a tiny vocabulary, ...), not about the weights
    written, and init's stderr is for fastinit's own errors."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        yield
        return
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)


@contextlib.contextmanager
def _scheduler(address: str | None) -> Iterator[Any]:
    """--scheduler: a dask.distributed Client of that scheduler, else None (this process)."""
    if address is None:
        yield None
        return
    from . import cluster  # imports distributed only when asked to

    with cluster.connect(address) as client:
        yield client


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastinit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"fastinit {__version__}")
    commands = parser.add_subparsers(dest="command")
    sample = commands.add_parser("sample", help="sample a weight, check it, time it (default)")
    sample.add_argument("--init", choices=sorted(initializers.NAMED), default="glorot_normal")
    sample.add_argument("--shape", type=int, nargs="+", default=[4096, 4096])
    sample.add_argument("--dtype", default="float32", help="float32, float64, float16 or bfloat16")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--repeat", type=int, default=5, help="timed runs (median reported)")

    init = commands.add_parser("init", help="write a freshly initialized safetensors checkpoint")
    source = init.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--preset", help=f"an embedded model config: {', '.join(hf_configs.PRESETS)}"
    )
    source.add_argument(
        "--config",
        help="a Hugging Face config.json: any model_type transformers knows (without "
        "transformers: llama, mistral, qwen2, gpt2)",
    )
    source.add_argument("--spec", help="a fastinit spec JSON (docs/spec.md)")
    init.add_argument(
        "--model-class",
        help="the transformers auto class of --config/--preset (default AutoModelForCausalLM; "
        "e.g. AutoModel, AutoModelForSeq2SeqLM, AutoModelForMaskedLM)",
    )
    init.add_argument("-o", "--output", required=True, help="a directory, or a .safetensors file")
    init.add_argument("--dtype", help="float32, bfloat16, float16 or float64 for every tensor")
    init.add_argument("--seed", type=int, help="the global seed (default: the spec's, or 0)")
    init.add_argument("--max-shard-size", default="5GB", help="shard limit (default 5GB)")
    init.add_argument("--threads", type=int, help="CPU threads (default: all available)")
    init.add_argument("--force", action="store_true", help="replace existing output files")
    init.add_argument(
        "--dry-run", action="store_true", help="print the files, tensors and bytes; write nothing"
    )
    init.add_argument("--scheduler", help=_SCHEDULER_HELP + "write each shard on a worker")

    verify = commands.add_parser("verify", help="regenerate a checkpoint and compare its bytes")
    verify.add_argument("path", help="a checkpoint directory or .safetensors file")
    verify.add_argument("--sample", type=int, help="check this many random chunks, not all")
    verify.add_argument("--sample-seed", type=int, help="choose the sampled chunks repeatably")
    verify.add_argument("--threads", type=int, help="CPU threads (default: all available)")
    verify.add_argument("--scheduler", help=_SCHEDULER_HELP + "verify each file on a worker")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "sample")
    args = _parser().parse_args(argv)
    job = {"sample": _sample, "init": _init, "verify": _verify}[args.command]
    try:
        return job(args)
    except (ValueError, TypeError, OverflowError, OSError) as error:
        print(f"fastinit: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if args.command != "verify":
            raise
        # N.B. Python exits 1 on an uncaught exception, and verify's 1 means "bytes differ".
        text = f"{type(error).__name__}: {error}".replace("\n", " ")
        print(f"fastinit: internal error: {text} (a bug in fastinit)", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        left = "; no output was left behind" if args.command == "init" else ""
        print(f"fastinit: interrupted{left}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
