"""The hidden names a write works under, their locks, and the sweep of dead writers' leftovers.

Every hidden name (`.NAME.fastinit-PID.tmp|new|staging|old`, LEFTOVER) carries its
writer's pid and is flock'ed by the writer while it lives; the kernel drops the lock
when the process dies, even on SIGKILL or power loss. Guarantees: hidden names are
created under the parent directory's lock (`locked`), so the sweep, which runs under
the same lock, never takes a live writer's name; `sweep` removes (or renames back, for
an old directory left aside) only what no process holds, and says so on stderr;
`remove_tree` follows no symlink and enters no other file system.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

# The hidden names a writer leaves while it works (and a dead one leaves behind).
LEFTOVER = re.compile(
    r"\.(?P<name>.+)\.fastinit-(?P<pid>\d+)(?:-\d+)?\.(?P<kind>tmp|new|staging|old)"
)


def sweep(target: Path, *, single: bool) -> list[Path]:
    """Removes what dead writers left beside `target` (and, from fastinit versions
    before staging, inside it); renames an old directory left aside back to its name
    if that is free. Reports each on stderr; returns their paths."""
    found = []
    with locked(target.parent):
        places = [target.parent]
        if not single and target.is_dir() and not target.is_symlink():
            places.append(target)
        for place in places:
            with os.scandir(place) as entries:
                names = sorted(entry.name for entry in entries)
            for name in names:
                match = LEFTOVER.fullmatch(name)
                inside = place != target.parent  # only files, from older versions
                if match is None or inside and match["kind"] in ("staging", "old"):
                    continue
                path = place / name
                fd = _claim(path)
                if fd is None:
                    continue  # a live writer's, or not ours to remove
                original = place / match["name"]
                try:
                    if match["kind"] == "old" and not os.path.lexists(original):
                        os.rename(path, original)
                        fsync_directory(place)
                        done = f"renamed {path} back to {original.name}"
                    else:
                        remove_tree(path)
                        done = f"removed {path}"
                except OSError as error:
                    done = f"could not remove {path} ({error.strerror})"
                finally:
                    os.close(fd)
                pid = match["pid"]
                print(
                    f"fastinit: {done}: left by process {pid}, which did not finish",
                    file=sys.stderr,
                )
                found.append(path)
    return found


def hidden(directory: Path, name: str, kind: str, attempt: int = 0) -> Path:
    serial = f"-{attempt}" if attempt else ""
    return directory / f".{name}.fastinit-{os.getpid()}{serial}.{kind}"


def create_hidden(
    directory: Path, name: str, kind: str, create: Callable[[Path], int]
) -> tuple[Path, int]:
    """A new hidden name for this process (another thread of it may hold the first)."""
    for attempt in range(1000):
        path = hidden(directory, name, kind, attempt)
        try:
            return path, create(path)
        except FileExistsError:
            continue
    raise FileExistsError(f"{hidden(directory, name, kind)}: 1000 names taken")


def try_lock(fd: int, *, blocking: bool) -> bool | None:
    """flock(LOCK_EX): True when taken, False when another holds it, None where the file
    system has no locks (then nothing is ever treated as a dead writer's)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            return None
        raise
    return True


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """The parent directory's lock: held to create hidden names, to sweep, and to commit."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try_lock(fd, blocking=True)
        yield
    finally:
        os.close(fd)


def _claim(path: Path) -> int | None:
    """A descriptor holding the lock of a dead writer's leftover; None if a live writer
    holds it, or it is not ours to remove (a symlink, a file we may not open)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    if try_lock(fd, blocking=False):
        return fd
    os.close(fd)
    return None


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree(path: Path, removing: Callable[[Path], None] | None = None) -> None:
    """Removes a file or a directory tree, following no symlink and entering no other
    file system; `removing` is told of each entry before it goes."""
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(top.st_mode):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    pending, folders = [path], []
    while pending:
        folder = pending.pop()
        folders.append(folder)
        mode = os.lstat(folder).st_mode
        if mode & 0o700 != 0o700:  # a read-only directory of the user's, linked elsewhere
            os.chmod(folder, stat.S_IMODE(mode) | 0o700)
        with os.scandir(folder) as entries:
            listed = [(entry.name, entry.stat(follow_symlinks=False)) for entry in entries]
        for name, info in listed:
            if stat.S_ISDIR(info.st_mode):
                if info.st_dev != top.st_dev:
                    raise OSError(errno.EXDEV, f"{folder / name}: a mount point, not removed")
                pending.append(folder / name)
                continue
            if removing is not None:
                removing(folder / name)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / name)
    for folder in reversed(folders):
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(folder)
