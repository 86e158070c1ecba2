"""A checkpoint's files written from any engine (Ray, a job array, your own pool): three steps.

    job = fastinit.checkpoint.prepare(spec, "/shared/out", max_shard_size="5GB")
    try:
        for k in range(len(job.files)):             # anywhere that sees /shared
            fastinit.checkpoint.write_part(job, k)
        fastinit.checkpoint.commit(job)             # where prepare ran
    except BaseException:
        fastinit.checkpoint.abort(job)
        raise

`prepare` checks and plans the write as `checkpoint.write` does, sweeps dead writers'
leftovers, and creates the staging directory beside the target with a marker file (a
random token) in it; it returns a `Job`, a small picklable description. `write_part`
writes file k into the staging directory with the local writer itself,
`Replacement.build` (reserve, generate window by window, fsync, link) through
`_SharedStaging`, in any process of any machine that sees the file system; it refuses a
job whose marker is gone or which another fastinit version prepared. `commit` (in the
process that prepared the job: it holds the staging directory's lock) refuses until
every part is written, then writes config and index and commits the directory in one
atomic step. `abort` removes the marker, which stops every part before its next window
(and a part not yet started before it opens a file), and removes the staging
directory. `cluster` is these same steps on dask.distributed.

Guarantees: the files are byte-identical to `checkpoint.write`'s (the same plan, the
same `_windows` fill); the output holds its complete old checkpoint or the complete new
one at every instant; a part's file is unnamed (O_TMPFILE) until it is complete, so a
killed part leaves nothing, and what a dead preparer leaves the next write sweeps.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import fastinit

from . import _checks, _windows
from ._durable import Output, Replacement, write_small
from ._format import DEFAULT_MAX_SHARD_SIZE, FileLayout
from ._leftovers import fsync_directory, remove_tree
from ._signals import step, terminate_as_interrupt
from ._windows import BLOCK, DEFAULT_WINDOW
from .specs import ModelSpec, check_spec

__all__ = ["Aborted", "Job", "abort", "commit", "prepare", "write_part"]

# In the staging directory while the parts are written; removed before the commit, or to abort.
MARKER = ".fastinit-parts-marker"
_DONE = ".fastinit-done-"  # + a file's name: that part is complete (removed before the commit)


class Aborted(ValueError):
    """A part refused or stopped: the job's marker is gone (it was aborted or committed)."""


@dataclass(frozen=True)
class Job:
    """A prepared checkpoint write: everything a part needs, picklable."""

    out: Path  # the checkpoint directory it becomes
    staging: Path  # the hidden directory beside it where the files are built
    token: str  # the marker's content: this job's, not an earlier one's
    version: str  # the fastinit version that planned it; every part must run the same
    files: tuple[str, ...]  # the file names, in order: part k writes files[k]
    sizes: tuple[int, ...]  # their sizes in bytes
    layouts: tuple[FileLayout, ...]
    seed: int
    window: int

    @property
    def marker(self) -> Path:
        return self.staging / MARKER


# The jobs this process prepared: their Replacement (which holds the staging directory's
# lock) and their small files (config, index), until commit or abort.
_prepared: dict[str, tuple[Replacement, list[tuple[Path, str]]]] = {}


def prepare(
    spec: ModelSpec,
    output: str | os.PathLike[str],
    *,
    max_shard_size: int | str | None = DEFAULT_MAX_SHARD_SIZE,
    force: bool = False,
    window: int = DEFAULT_WINDOW,
) -> Job:
    """The write of `spec` into the directory `output` checked and planned as
    `checkpoint.write` plans it, and its staging directory created: a Job whose
    files[k] `write_part(job, k)` writes, then `commit(job)` (or `abort(job)`)."""
    from . import checkpoint

    if not isinstance(force, bool):
        raise TypeError(f"force must be a bool, got {type(force).__name__}")
    window = _checks.check_int("window", window, low=1)
    window = max(BLOCK, window - window % BLOCK)
    spec = check_spec(spec)
    target = Path(output)
    if target.suffix == ".safetensors":
        raise ValueError(
            f"output {target} is one .safetensors file, written by checkpoint.write; "
            "prepare writes a directory, whose files the parts write"
        )
    planned = checkpoint._planned(spec, target, max_shard_size, force)
    replacement = Replacement(planned.place, single=False, force=force, replaced=planned.replaced)
    try:
        job = start(
            replacement, list(zip(planned.layouts, planned.finals, strict=True)), spec, window
        )
    except BaseException:
        replacement.close()
        raise
    _prepared[job.token] = (replacement, planned.small)
    return job


def start(
    replacement: Replacement, files: list[tuple[FileLayout, Path]], spec: ModelSpec, window: int
) -> Job:
    """The staging directory created with its marker: the job its parts write."""
    marker = replacement.staged(MARKER)  # the staging directory is created here
    token = secrets.token_hex(16)
    write_small(marker, token)
    return Job(
        out=replacement.target,
        staging=marker.parent,
        token=token,
        version=fastinit.__version__,
        files=tuple(final.name for _, final in files),
        sizes=tuple(layout.size for layout, _ in files),
        layouts=tuple(layout for layout, _ in files),
        seed=spec.seed,
        window=window,
    )


def write_part(job: Job, k: int, *, threads: int | None = None) -> int:
    """Writes file k of `job` into its staging directory, as checkpoint.write writes
    it; `threads` CPU threads (None: this process's default). Returns its size."""
    if not isinstance(job, Job):
        raise TypeError(f"job must be a Job from checkpoint.prepare, got {type(job).__name__}")
    k = _checks.check_int("k", k, low=0)
    if k >= len(job.files):
        raise ValueError(f"k must be below the job's {len(job.files)} files, got {k}")
    threads = None if threads is None else _checks.check_int("threads", threads, low=1)
    if fastinit.__version__ != job.version:
        raise ValueError(
            f"job: prepared by fastinit {job.version}, this process runs "
            f"{fastinit.__version__}; every part must run the version that prepared it"
        )
    marker = str(job.marker)
    if _read_marker(marker) != job.token:
        raise Aborted(
            f"job for {job.out}: its marker {marker} is gone or not this job's "
            "(the job was aborted or committed, or this machine cannot see its directory)"
        )
    layout, final = job.layouts[k], job.out / job.files[k]

    def generate(fd: int, layout: FileLayout) -> None:
        _windows.fill_file(
            fd, layout, job.seed, job.window, threads, lambda _: _still_wanted(marker)
        )

    with _SharedStaging(job.out, marker) as replacement:
        replacement.build([(layout, final)], generate, [])
    write_small(job.staging / f"{_DONE}{job.files[k]}", "")
    return layout.size


def commit(job: Job) -> None:
    """Once every part is written: config and index written and the checkpoint put in
    place of `output` in one atomic step, as checkpoint.write does. In the process
    that prepared `job`. Refuses, changing nothing, while a part is missing."""
    replacement, small = _owned(job, "commit")
    missing(job)  # before anything changes: the parts may still be written, then commit
    try:
        with terminate_as_interrupt():
            finish(replacement, job, small)
    finally:
        del _prepared[job.token]
        replacement.close()  # before the commit point, this removes the staging directory


def abort(job: Job) -> None:
    """Stops every part still running (each before its next window) and removes the
    staging directory: nothing of the job remains. Idempotent."""
    if not isinstance(job, Job):
        raise TypeError(f"job must be a Job from checkpoint.prepare, got {type(job).__name__}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(job.marker)
    entry = _prepared.pop(job.token, None)
    if entry is not None:
        entry[0].close()  # removes the staging directory, and drops its lock
    elif os.path.lexists(job.staging):
        remove_tree(job.staging)


def missing(job: Job) -> None:
    """Refuses a job with a part not written yet, naming the files."""
    absent = [name for name in job.files if not (job.staging / f"{_DONE}{name}").exists()]
    if absent:
        raise ValueError(
            f"job: {len(absent)} of {len(job.files)} files not written yet "
            f"({', '.join(absent)}); write_part each of them before commit"
        )


def finish(replacement: Replacement, job: Job, small: list[tuple[Path, str]]) -> None:
    """Every part written: the marker and the parts' records removed, the small files
    (config, index) written, and the commit."""
    missing(job)
    os.unlink(job.marker)
    for name in job.files:
        os.unlink(job.staging / f"{_DONE}{name}")
    for final, text in small:
        write_small(replacement.staged(final.name), text)
        step("written", final)
    replacement.commit()


def _owned(job: Job, action: str) -> tuple[Replacement, list[tuple[Path, str]]]:
    if not isinstance(job, Job):
        raise TypeError(f"job must be a Job from checkpoint.prepare, got {type(job).__name__}")
    entry = _prepared.get(job.token)
    if entry is None:
        raise ValueError(
            f"job for {job.out}: not prepared by this process, or already committed or "
            f"aborted; {action} it in the process that prepared it"
        )
    return entry


# ---------------------------------------------------------------------------
# A part's side


def _read_marker(marker: str) -> str | None:
    try:
        with open(marker, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def _still_wanted(marker: str) -> None:
    if not os.path.exists(marker):
        raise Aborted(f"{marker} was removed: the checkpoint write failed or stopped")


class _SharedStaging(Replacement):
    """One file of a checkpoint whose staging directory `prepare` made: `build` opens,
    reserves, generates, fsyncs and links it there exactly as in a local write; the
    commit is the preparer's, so here it only makes the link durable. On failure only
    this file is removed (the staging directory is the preparer's)."""

    def __init__(self, target: Path, marker: str) -> None:
        super().__init__(target, single=False, force=False, replaced=lambda _: set())
        self.staging = Path(marker).parent
        self.marker = marker

    def link(self, out: Output) -> None:
        _still_wanted(self.marker)  # the preparer may be removing the directory
        super().link(out)

    def commit(self) -> None:
        assert self.staging is not None
        fsync_directory(self.staging)
        self.committed = True

    def close(self) -> None:
        for out in self.outputs:
            if out.fd >= 0:
                os.close(out.fd)
                out.fd = -1
            if not self.committed and out.temporary is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(out.temporary)
