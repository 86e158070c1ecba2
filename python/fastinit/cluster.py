"""Checkpoints written and verified on a dask.distributed cluster: one task per file.

    with distributed.Client("tcp://scheduler:8786") as client:
        fastinit.checkpoint.write(spec, "/shared/out", client=client)
        fastinit.checkpoint.verify("/shared/out", client=client)

These are `parts`' three steps with dask: the client plans the files and builds the
staging directory beside the target, as a local write does (`_durable`); each worker
writes one file into it with the same writer, `Replacement.build` (reserve, generate
window by window, fsync, link), through `parts.write_part`. When every task has
succeeded the client writes config and index and commits the directory in one atomic
step.

Guarantees: the files are byte-identical to the local writer's (the same plan, the
same `_windows` fill); before anything is written, every worker runs this process's
fastinit version; before any task runs, every worker sees the staging directory (a
marker file with a random token that it must read back; a shared file system is the
user's). On any failure (a task's error, Ctrl-C, SIGTERM) the client removes the
marker, which makes every task stop before its next window (and one not started yet
before it opens a file), waits for the tasks to end, releases them, and removes the
staging directory: no index, no final file and no temporary one remain. A worker's
file is unnamed (O_TMPFILE) until it is linked, so a killed worker leaves nothing.
`distributed` is imported only here, and only when a client is used.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fastinit

from . import checkpoint, parts, runtime
from ._durable import Replacement
from ._format import FileLayout
from ._reading import CheckpointFormatError, header_of, open_regular
from ._signals import terminate_as_interrupt
from .specs import ModelSpec

ABORT_WAIT = 120.0  # seconds to wait for aborted tasks to end (each stops within a window)


def check_client(client: Any) -> None:
    """Refuses anything but a synchronous dask.distributed Client, before any write."""
    import distributed

    if not isinstance(client, distributed.Client):
        raise TypeError(f"client must be a dask.distributed Client, got {type(client).__name__}")
    if client.asynchronous:
        raise ValueError("client must be a synchronous Client (asynchronous=False)")


@contextlib.contextmanager
def connect(address: str) -> Iterator[Any]:
    """A Client of the scheduler at `address` (the CLI's --scheduler), closed on exit."""
    try:
        import distributed
    except ImportError:
        raise ValueError(
            "--scheduler needs dask.distributed: pip install 'fastinit[dask]'"
        ) from None
    with distributed.Client(address, timeout="30s", set_as_default=False) as client:
        yield client


# ---------------------------------------------------------------------------
# The client's side


def write_files(
    client: Any,
    replacement: Replacement,
    files: list[tuple[FileLayout, Path]],
    small: list[tuple[Path, str]],
    spec: ModelSpec,
    window: int,
    threads: int | None,
    advance: Callable[[int], None],
) -> None:
    """Replacement.build's job with one task per file on the cluster: `parts`' three
    steps, each file written into `replacement`'s staging directory by a worker
    (parts.write_part), then the small files (config, index) and the commit by this
    process, only after every task succeeded. threads: each worker's CPU threads (None:
    the worker's default)."""
    _check_versions(client)
    with terminate_as_interrupt():
        job = parts.start(replacement, files, spec, window)  # the staging directory, here
        _check_visible(client, job.marker, job.token)
        futures = [
            client.submit(
                parts.write_part,
                job,
                k,
                threads=threads,
                key=f"fastinit-write-{name}-{job.token[:8]}",
                pure=False,
                retries=0,
            )
            for k, name in enumerate(job.files)
        ]
        _gather(client, futures, job.marker, advance)
        parts.finish(replacement, job, small)


def verify_files(
    client: Any, chunks: list[tuple[Any, ...]], directory: Path | None, threads: int | None
) -> tuple[int, list[str]]:
    """checkpoint.compare_chunks with one task per file: (bytes checked, mismatches),
    in the order the chunks come (grouped by file, as verify lists them)."""
    version = _check_versions(client)
    by_file: dict[Path, list[tuple[Any, ...]]] = {}
    for chunk in chunks:
        by_file.setdefault(chunk[0], []).append(chunk)
    futures = [
        client.submit(
            _verify_file,
            str(file),
            directory,
            version,
            part,
            threads,
            key=f"fastinit-verify-{file.name}-{secrets.token_hex(4)}",
            pure=False,
            retries=0,
        )
        for file, part in by_file.items()
    ]
    try:
        results = client.gather(futures)
    finally:
        client.cancel(futures)
    checked = sum(result[0] for result in results)
    return checked, [line for result in results for line in result[1]]


def _check_versions(client: Any) -> str:
    """This process's fastinit version, once every worker is known to run it."""
    ours = fastinit.__version__
    versions = client.run(_worker_version)
    if not versions:
        raise ValueError("client: the cluster has no workers")
    for worker, theirs in sorted(versions.items()):
        if theirs != ours:
            raise ValueError(
                f"client: worker {worker} runs fastinit {theirs}, this process {ours}; "
                "every worker must run the same version"
            )
    return ours


def _check_visible(client: Any, marker: Path, token: str) -> None:
    for worker, seen in sorted(client.run(_read_marker, str(marker)).items()):
        if seen != token:
            raise ValueError(
                f"output: worker {worker} cannot see {marker.parent} (it read {seen!r}); "
                "a cluster write needs a file system shared by the client and every worker"
            )


def _gather(client: Any, futures: list[Any], marker: Path, advance: Callable[[int], None]) -> None:
    """Waits for every task, telling advance of each file's bytes; on a failure stops
    them all (see _abort) and raises it."""
    import distributed

    try:
        # N.B. loop=: as_completed and wait otherwise look for a default client.
        for future in distributed.as_completed(futures, loop=client.loop):
            advance(future.result())
    except BaseException:
        _abort(client, futures, marker)
        raise


def _abort(client: Any, futures: list[Any], marker: Path) -> None:
    """Without the marker every task stops before its next window, or before opening
    its file; waiting for them all to end means none links a file after the staging
    directory is removed. N.B. distributed's cancel alone cannot stop a running task:
    the worker's thread runs on, its result dropped."""
    import distributed

    with contextlib.suppress(FileNotFoundError):
        os.unlink(marker)
    try:
        for _ in distributed.as_completed(futures, loop=client.loop, timeout=ABORT_WAIT):
            pass
    except Exception:  # a task that has not ended in time: cancelled below all the same
        pass
    finally:
        client.cancel(futures)


# ---------------------------------------------------------------------------
# The workers' side (module-level functions: tasks pickle them by name)


def _worker_version() -> str:
    return fastinit.__version__


def _read_marker(marker: str) -> str | None:
    try:
        with open(marker, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def _verify_file(
    file: str,
    directory: Path | None,
    version: str,
    chunks: list[tuple[Any, ...]],
    threads: int | None,
) -> tuple[int, list[str]]:
    """A worker's task: the chunks of one file regenerated and compared."""
    if fastinit.__version__ != version:
        raise ValueError(f"this worker runs fastinit {fastinit.__version__}, the client {version}")
    path = Path(file)
    fd = open_regular(path, inside=directory)
    try:
        _, data = header_of(fd, path)
        if any(chunk[1] != data for chunk in chunks):
            raise CheckpointFormatError(path, "its header changed while it was verified")
        return checkpoint.compare_chunks(chunks, {path: fd}, runtime.resolve_threads(threads))
    finally:
        os.close(fd)
