"""Durable replacement: the output path holds the complete old checkpoint or the complete
new one at every instant, never a mix and never nothing.

A directory checkpoint is built whole in a hidden staging directory beside the target, on
the same file system (`.NAME.fastinit-PID.staging`). Its weights are written as unnamed
O_TMPFILE files where the file system allows it (a writer killed while generating leaves
nothing at all), else as named files in the staging directory; each file's space is
reserved first (a full disk fails before any generation), each is fsynced, then named in
the staging directory, beside the fsynced config and index. The user's other files in an
existing target (anything the new checkpoint does not replace) are hard-linked into the
staging directory, subdirectories recreated and their entries linked in turn: nothing is
copied or moved, so they stay in the target at every instant. The commit is one atomic
step, under a lock on the parent directory: rename(2) where the target does not exist,
renameat2(RENAME_EXCHANGE) where it does; the parent is fsynced and the old directory,
now at the staging name, is removed. Where EXCHANGE is unsupported the old directory is
renamed aside (`.NAME.fastinit-PID.old`) and the new one renamed in: a writer killed
between the two leaves no target, and the next write renames the old one back. A one-file
output is written beside its target (`.NAME.fastinit-PID.tmp`, or unnamed then
`.NAME.fastinit-PID.new`) and renamed over it.

Every hidden name carries its writer's pid and is flock'ed by the writer while it lives;
the kernel drops the lock when the process dies, even on SIGKILL or power loss. A later
write, under the parent's lock, removes (or renames back) those no process holds and says
so on stderr. Writers of one target commit one after another; without force the second
refuses. SIGTERM and SIGHUP (and SIGINT) raise KeyboardInterrupt while writing, so
cleanup runs, and again at the next step if Python swallowed it; a signal that arrives
while committing waits until the commit and the old checkpoint's removal are done, then
raises CommittedInterrupt.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import platform
import re
import shutil
import signal
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._format import FileLayout

# Test hook: called as step_hook(step, path) at every step of a write and its commit.
step_hook: Callable[[str, Path | None], None] | None = None

_signalled: list[int] = []  # the signal whose KeyboardInterrupt was raised while writing

# The hidden names a writer leaves while it works (and a dead one leaves behind).
LEFTOVER = re.compile(
    r"\.(?P<name>.+)\.fastinit-(?P<pid>\d+)(?:-\d+)?\.(?P<kind>tmp|new|staging|old)"
)
_TMPFILE_REFUSED = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT)
_FLAGS_UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2  # linux/fs.h
_AT_FDCWD = -100
# renameat2's number where the C library lacks a wrapper (glibc < 2.28).
_RENAMEAT2_SYSCALL = {"x86_64": 316, "aarch64": 276, "riscv64": 276, "ppc64le": 357}


def step(name: str, path: Path | None = None) -> None:
    """Between two steps: raises a signal's KeyboardInterrupt that Python swallowed (it
    drops exceptions raised in a weakref callback or __del__), then calls the test hook."""
    if _signalled and threading.current_thread() is threading.main_thread():
        signum = _signalled.pop()
        raise KeyboardInterrupt(f"signal {signum}")
    if step_hook is not None:
        step_hook(name, path)


class CommittedInterrupt(KeyboardInterrupt):
    """A signal arrived while the new checkpoint was being put in place: it is complete."""


@dataclass
class Output:
    """One file being written: its descriptor, and its name until it is committed."""

    layout: FileLayout
    final: Path  # its name in the finished checkpoint
    fd: int = -1
    temporary: Path | None = None  # None: an unnamed O_TMPFILE file


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


def write_small(path: Path, text: str) -> None:
    """A small file (config, index) created in the staging directory and fsynced."""
    with open(path, "x", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Replacement:
    """A checkpoint built beside `target` and put in its place whole (see the module doc).

    replaced(directory) names the entries of an existing target directory that the new
    checkpoint replaces (the old checkpoint's files); the rest are the user's, carried over.
    """

    def __init__(
        self, target: Path, *, single: bool, force: bool, replaced: Callable[[Path], set[str]]
    ) -> None:
        self.target = target
        self.parent = target.parent
        self.single = single
        self.force = force
        self.replaced = replaced
        self.outputs: list[Output] = []
        self.staging: Path | None = None
        self.staging_fd = -1
        self.old_fd = -1  # holds the lock of the old directory until it is removed
        self.aside: Path | None = None  # the old directory, renamed aside (no EXCHANGE)
        self.old: Path | None = None  # the old directory once the new one is in place
        self.carried_over: set[str] = set()
        self.committed = False

    # -- before the write -------------------------------------------------------------

    def sweep(self) -> list[Path]:
        """Removes what dead writers left beside the target (and, from fastinit versions
        before staging, inside it); renames an old directory left aside back to its name
        if that is free. Reports each on stderr; returns their paths."""
        found = []
        with _locked(self.parent):
            places = [self.parent]
            if not self.single and self.target.is_dir() and not self.target.is_symlink():
                places.append(self.target)
            for place in places:
                with os.scandir(place) as entries:
                    names = sorted(entry.name for entry in entries)
                for name in names:
                    match = LEFTOVER.fullmatch(name)
                    inside = place != self.parent  # only files, from older versions
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

    # -- the files ----------------------------------------------------------------------

    def open(self, layout: FileLayout, final: Path) -> Output:
        """An empty file for `layout`: unnamed (O_TMPFILE) where the file system allows
        it, else named in the staging directory (or beside a one-file target)."""
        out = Output(layout, final)
        self.outputs.append(out)
        flags = os.O_RDWR | os.O_CLOEXEC
        if hasattr(os, "O_TMPFILE"):
            try:
                with _explained(self.target):
                    out.fd = os.open(self.parent, flags | os.O_TMPFILE, 0o644)
            except OSError as error:
                if error.errno not in _TMPFILE_REFUSED:
                    raise
            else:
                if self.single:  # it gets a hidden name before the commit
                    _try_lock(out.fd, blocking=False)
                return out
        if self.single:
            with _locked(self.parent), _explained(self.target):
                out.temporary, out.fd = _create_hidden(
                    self.parent,
                    self.target.name,
                    "tmp",
                    lambda path: os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644),
                )
                _try_lock(out.fd, blocking=False)
        else:
            out.temporary = self.staged(final.name)
            out.fd = os.open(out.temporary, flags | os.O_CREAT | os.O_EXCL, 0o644)
        return out

    def staged(self, name: str) -> Path:
        """Where the file `name` of a directory checkpoint is built."""
        return self._staging_directory() / name

    def _staging_directory(self) -> Path:
        if self.staging is None:
            with _locked(self.parent), _explained(self.target):
                self.staging, self.staging_fd = _create_hidden(
                    self.parent, self.target.name, "staging", _make_directory
                )
                _try_lock(self.staging_fd, blocking=False)
            step("staging-created", self.staging)
        return self.staging

    def link(self, out: Output) -> None:
        """Names a finished, fsynced file: in the staging directory, or beside a one-file
        target (`.NAME.fastinit-PID.new`)."""
        if out.temporary is None:
            if self.single:
                with _locked(self.parent):
                    out.temporary, _ = _create_hidden(
                        self.parent,
                        self.target.name,
                        "new",
                        lambda path: _link_unnamed(out.fd, path),
                    )
            else:
                out.temporary = self.staged(out.final.name)
                _link_unnamed(out.fd, out.temporary)
            step("linked", out.final)

    # -- the commit -----------------------------------------------------------------------

    def commit(self) -> None:
        """Puts the new checkpoint in the target's place in one atomic step, then removes
        the old one. Signals wait until it is done."""
        if self.single:
            with _locked(self.parent), _signals_deferred():
                self._commit_file()
            return
        staging = self._staging_directory()
        os.fsync(self.staging_fd)
        step("staging-fsynced", staging)
        with _locked(self.parent):
            replacing = self._prepare_swap(staging)
            with _signals_deferred():
                try:
                    self._swap(staging, replacing)
                    self._finish(step)
                except BaseException:
                    if not self.committed:
                        raise
                    self._finish(lambda *_: None)  # the new one is in: tidy up, then raise
                    raise

    def _commit_file(self) -> None:
        (out,) = self.outputs
        assert out.temporary is not None
        if self.force:
            os.replace(out.temporary, self.target)
        else:
            try:
                os.link(out.temporary, self.target)  # fails if it exists
            except FileExistsError:
                raise _exists(self.target) from None
        self.committed = True
        if not self.force:
            os.unlink(out.temporary)
        out.temporary = None
        step("renamed", self.target)
        _fsync_committed(self.parent, self.target)
        step("parent-fsynced", self.parent)

    def _prepare_swap(self, staging: Path) -> bool:
        """Under the parent's lock, before the commit point: whether the target exists;
        if it does, refused without force where it holds a checkpoint, its other files
        carried into the staging directory, and its lock taken until it is removed."""
        try:
            info = os.lstat(self.target)
        except FileNotFoundError:
            return False
        if not stat.S_ISDIR(info.st_mode):
            raise NotADirectoryError(f"{self.target} exists and is not a directory")
        replaced = self.replaced(self.target)
        if replaced and not self.force:
            raise _exists(self.target / sorted(replaced)[0])
        self.carried_over = replaced
        _carry(self.target, staging, replaced)
        step("carried", staging)
        self.old_fd = os.open(self.target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        if _try_lock(self.old_fd, blocking=False) is False:
            raise BlockingIOError(errno.EWOULDBLOCK, f"{self.target} is locked by another process")
        return True

    def _swap(self, staging: Path, replacing: bool) -> None:
        """The commit point: the staging directory takes the target's name."""
        if not replacing:
            try:
                _renameat2(staging, self.target, _RENAME_NOREPLACE)
            except FileExistsError:
                raise _exists(self.target) from None
            except OSError as error:
                if error.errno not in _FLAGS_UNSUPPORTED:
                    raise
                os.rename(staging, self.target)  # absent, and writers hold the parent's lock
            self._committed(None)
            step("renamed", self.target)
            return
        try:
            _renameat2(staging, self.target, _RENAME_EXCHANGE)
        except OSError as error:
            if error.errno not in _FLAGS_UNSUPPORTED:
                raise
        else:
            self._committed(staging)
            step("exchanged", self.target)
            return
        # No RENAME_EXCHANGE here (NFS, some FUSE): rename aside, then in. A writer killed
        # between the two leaves no target; the next write renames the old one back.
        self.aside = _hidden(self.parent, self.target.name, "old")
        os.rename(self.target, self.aside)
        step("aside", self.aside)
        os.rename(staging, self.target)
        self._committed(self.aside)
        step("renamed-in", self.target)

    def _committed(self, old: Path | None) -> None:
        self.committed = True
        self.old = old
        os.close(self.staging_fd)  # its directory is the target now: nothing to guard
        self.staging_fd = -1

    def _finish(self, note: Callable[[str, Path | None], None]) -> None:
        """After the commit point: the parent fsynced; files that appeared in the old
        directory while it was swapped carried over; the old directory removed."""
        if self.aside is not None:  # removed from the staging name, like an exchanged one
            assert self.staging is not None
            os.rename(self.aside, self.staging)
            self.old, self.aside = self.staging, None
            note("old-moved", self.old)
        _fsync_committed(self.parent, self.target)
        note("parent-fsynced", self.parent)
        if self.old is None or not os.path.lexists(self.old):
            self.old = None
            return
        try:
            if _reconcile(self.old, self.target, self.carried_over):
                fsync_directory(self.target)
        except OSError as error:  # never lose the user's files: keep them in sight
            kept = self.parent / f"{self.target.name}.fastinit-kept-{os.getpid()}"
            os.rename(self.old, kept)
            self.old = None
            raise OSError(
                error.errno,
                f"{self.target} holds the new checkpoint, but files added to it "
                f"while it was replaced could not be carried over ({error}); they are in {kept}",
            ) from error
        note("reconciled", self.target)
        try:
            remove_tree(self.old, lambda path: note("removing-old", path))
        except OSError as error:  # the new checkpoint is complete; a later write retries
            print(
                f"fastinit: could not remove the replaced checkpoint {self.old}: {error}",
                file=sys.stderr,
            )
        else:
            removed, self.old = self.old, None
            note("old-removed", removed)
        self.old = None

    def close(self) -> None:
        """Closes every descriptor; before the commit point, removes everything this
        writer made and puts an old directory renamed aside back."""
        for out in self.outputs:
            if out.fd >= 0:
                os.close(out.fd)
                out.fd = -1
        if not self.committed:
            if self.aside is not None and not os.path.lexists(self.target):
                os.rename(self.aside, self.target)
                fsync_directory(self.parent)
            self.aside = None
            for out in self.outputs:
                if out.temporary is not None and out.temporary.parent == self.parent:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(out.temporary)
            if self.staging is not None:
                remove_tree(self.staging)
        for fd in (self.staging_fd, self.old_fd):
            if fd >= 0:
                os.close(fd)
        self.staging_fd = self.old_fd = -1


# ---------------------------------------------------------------------------
# Names, locks, renames


def _hidden(directory: Path, name: str, kind: str, attempt: int = 0) -> Path:
    serial = f"-{attempt}" if attempt else ""
    return directory / f".{name}.fastinit-{os.getpid()}{serial}.{kind}"


def _create_hidden(
    directory: Path, name: str, kind: str, create: Callable[[Path], int]
) -> tuple[Path, int]:
    """A new hidden name for this process (another thread of it may hold the first)."""
    for attempt in range(1000):
        path = _hidden(directory, name, kind, attempt)
        try:
            return path, create(path)
        except FileExistsError:
            continue
    raise FileExistsError(f"{_hidden(directory, name, kind)}: 1000 names taken")


def _make_directory(path: Path) -> int:
    os.mkdir(path)
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        os.rmdir(path)
        raise


def _link_unnamed(fd: int, path: Path) -> int:
    # N.B. with a directory fd, os.link calls linkat(..., AT_SYMLINK_FOLLOW), which
    # follows /proc's link to the unnamed file; plain link(2) would not.
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.link(f"/proc/self/fd/{fd}", path.name, dst_dir_fd=directory)
    finally:
        os.close(directory)
    return -1


def _try_lock(fd: int, *, blocking: bool) -> bool | None:
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
def _locked(directory: Path) -> Iterator[None]:
    """The parent directory's lock: held to create hidden names, to sweep, and to commit."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _try_lock(fd, blocking=True)
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
    if _try_lock(fd, blocking=False):
        return fd
    os.close(fd)
    return None


def _renameat2(source: Path, destination: Path, flags: int) -> None:
    function = _renameat2_function()
    if function is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    result = function(
        _AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(destination), ctypes.c_uint(flags)
    )
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(source), None, str(destination))


@functools.cache
def _renameat2_function() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    if hasattr(libc, "renameat2"):
        return libc.renameat2
    number = _RENAMEAT2_SYSCALL.get(platform.machine())
    if number is None:
        return None
    return lambda *args: libc.syscall(ctypes.c_long(number), *args)


def _fsync_committed(parent: Path, target: Path) -> None:
    try:
        fsync_directory(parent)
    except OSError as error:
        raise OSError(
            error.errno, f"{target} is in place, but fsync of {parent} failed: {error.strerror}"
        ) from error


def _exists(path: Path) -> FileExistsError:
    return FileExistsError(f"{path} exists; pass force=True (--force) to replace it")


@contextlib.contextmanager
def _explained(target: Path) -> Iterator[None]:
    try:
        yield
    except PermissionError as error:
        raise PermissionError(
            error.errno,
            f"cannot write beside {target} in {target.parent} ({error.strerror}): a checkpoint "
            "is built there, then put in place whole",
        ) from None


# ---------------------------------------------------------------------------
# The user's files, and removal


def _carry(source: Path, destination: Path, skip: set[str]) -> None:
    """Hard-links every entry of `source` but `skip` into `destination`: files, symlinks
    and the like are linked, subdirectories recreated (mode, times, owner where allowed)
    and their entries linked in turn. Nothing is copied or moved."""
    device = os.lstat(source).st_dev
    pending = [(source, destination, skip)]
    made = [(source, destination)]
    while pending:
        folder, into, skipped = pending.pop()
        with os.scandir(folder) as entries:
            listed = [(entry.name, entry.stat(follow_symlinks=False)) for entry in entries]
        for name, info in listed:
            if name in skipped:
                continue
            there = into / name
            if stat.S_ISDIR(info.st_mode):
                if info.st_dev != device:
                    raise OSError(
                        errno.EXDEV,
                        f"{folder / name} is a mount point: it cannot be carried "
                        "into the new checkpoint directory (the old one is untouched)",
                    )
                os.mkdir(there, 0o700)
                made.append((folder / name, there))
                pending.append((folder / name, there, set()))
                continue
            try:
                os.link(folder / name, there, follow_symlinks=False)
            except OSError as error:
                raise OSError(
                    error.errno,
                    f"cannot carry {folder / name} into the new checkpoint "
                    f"directory as a hard link ({error.strerror}); the old one is untouched",
                ) from None
    for original, copy in reversed(made):  # the deepest first: a read-only one last
        fsync_directory(copy)
        shutil.copystat(original, copy, follow_symlinks=False)
        owner = os.lstat(original)
        with contextlib.suppress(PermissionError):
            if (owner.st_uid, owner.st_gid) != (os.geteuid(), os.getegid()):
                os.chown(copy, owner.st_uid, owner.st_gid, follow_symlinks=False)


def _reconcile(old: Path, new: Path, skip: set[str]) -> bool:
    """Moves into `new` what appeared in `old` (or replaced a file there) after the carry,
    in the moment before the swap. True if anything moved."""
    moved = False
    pending = [(old, new, skip)]
    while pending:
        folder, into, skipped = pending.pop()
        with os.scandir(folder) as entries:
            listed = [(entry.name, entry.stat(follow_symlinks=False)) for entry in entries]
        for name, mine in listed:
            if name in skipped:
                continue
            try:
                theirs = os.lstat(into / name)
            except FileNotFoundError:
                os.rename(folder / name, into / name)
                moved = True
                continue
            if stat.S_ISDIR(mine.st_mode) and stat.S_ISDIR(theirs.st_mode):
                pending.append((folder / name, into / name, set()))
            elif not stat.S_ISDIR(mine.st_mode | theirs.st_mode) and mine.st_ino != theirs.st_ino:
                os.replace(folder / name, into / name)
                moved = True
    return moved


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


# ---------------------------------------------------------------------------
# Signals


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP (and SIGINT, where it is Python's KeyboardInterrupt) raise
    KeyboardInterrupt while writing, so cleanup runs; the next step raises it again if
    Python swallowed it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        _signalled[:] = [signum]
        raise KeyboardInterrupt(f"signal {signum}")

    numbers = [signal.SIGTERM, signal.SIGHUP]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        numbers.append(signal.SIGINT)
    _signalled.clear()
    previous = {s: signal.signal(s, interrupt) for s in numbers}
    try:
        yield
    finally:
        _signalled.clear()
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait while the commit runs; then CommittedInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _signalled:  # one Python swallowed, before the commit: it still stops the write
        raise KeyboardInterrupt(f"signal {_signalled.pop()}")
    pending: list[int] = []
    previous = {}
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(number) not in (signal.SIG_IGN, None):
            previous[number] = signal.signal(number, lambda signum, _: pending.append(signum))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if pending:
        raise CommittedInterrupt(f"signal {pending[0]} (the new checkpoint is complete)")
