"""Durable files: written under a temporary (or no) name, reserved, fsynced, linked.

Files are written as unnamed temporary files (O_TMPFILE) in the output's directory
where the file system allows it, else as hidden named ones; their space is reserved
up front (a full disk fails before any generation); each is fsynced, then given its
final name, and the directory is fsynced. SIGTERM and SIGHUP become
KeyboardInterrupt while writing, so the caller's cleanup runs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._format import FileLayout


@dataclass
class Output:
    """One file being written: its descriptor, and the temporary name if it has one."""

    layout: FileLayout
    final: Path
    fd: int = -1
    temporary: Path | None = None  # None: an unnamed O_TMPFILE file
    linked: bool = False
    extra: list[Path] = field(default_factory=list)


def open_temporary(directory: Path, final: Path, layout: FileLayout) -> Output:
    flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)
    if hasattr(os, "O_TMPFILE"):
        try:
            fd = os.open(directory, flags | os.O_TMPFILE, 0o644)
            return Output(layout, final, fd, None)
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                raise
    temporary = directory / f".{final.name}.fastinit-{os.getpid()}.tmp"
    fd = os.open(temporary, flags | os.O_CREAT | os.O_EXCL, 0o644)
    return Output(layout, final, fd, temporary)


def reserve(fd: int, size: int, name: str) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            reason = os.strerror(error.errno)
            raise OSError(
                error.errno, f"cannot reserve {size:,} bytes for {name}: {reason}"
            ) from None
        if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        os.ftruncate(fd, size)


def link(output: Output, force: bool) -> None:
    """Gives the finished file its final name (replacing an old one only with force)."""
    if output.temporary is None:
        staging = output.final
        if force and output.final.exists():
            staging = output.final.with_name(f".{output.final.name}.fastinit-{os.getpid()}.new")
            output.extra.append(staging)
        # N.B. with a directory fd, os.link calls linkat(..., AT_SYMLINK_FOLLOW), which
        # follows /proc's link to the unnamed file; plain link(2) would not.
        directory = os.open(staging.parent, os.O_RDONLY)
        try:
            os.link(f"/proc/self/fd/{output.fd}", staging.name, dst_dir_fd=directory)
        finally:
            os.close(directory)
        if staging != output.final:
            os.replace(staging, output.final)
    elif force:
        os.replace(output.temporary, output.final)
    else:
        os.link(output.temporary, output.final)  # fails if it exists
        os.unlink(output.temporary)
    output.linked = True
    output.temporary = None


def write_small(path: Path, text: str, force: bool) -> None:
    """A small file (config, index) through a temporary name, fsynced, then renamed."""
    temporary = path.with_name(f".{path.name}.fastinit-{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if not force and path.exists():
            raise FileExistsError(f"{path} exists; pass force=True (--force) to replace it")
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt while writing, so cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
