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

The names, their locks and the sweep of dead writers' leftovers are _leftovers'; the
user's files carried over, _carry's; the signals, _signals'. Guarantee of this module:
`Replacement.build` runs the whole write in order (open and reserve every file,
generate, fsync, name, small files, commit), and leaving its `with` block before the
commit point removes everything it made.

N.B. about 450 lines, over the ~400 the project aims at: one job, the replacement's
state machine (staging directory, temporaries, commit point, tidy-up), whose steps
share one object's state; cutting it between staging and commit would pass that state
across modules and split the invariant the module doc states in two.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import platform
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ._carry import carry, reconcile
from ._format import FileLayout
from ._leftovers import create_hidden, fsync_directory, hidden, locked, remove_tree, try_lock
from ._signals import signals_deferred, step, terminate_as_interrupt

_TMPFILE_REFUSED = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT)
_FLAGS_UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2  # linux/fs.h
_AT_FDCWD = -100
# renameat2's number where the C library lacks a wrapper (glibc < 2.28).
_RENAMEAT2_SYSCALL = {"x86_64": 316, "aarch64": 276, "riscv64": 276, "ppc64le": 357}


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

    # -- the files ----------------------------------------------------------------------

    def __enter__(self) -> Replacement:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()

    def build(
        self,
        files: list[tuple[FileLayout, Path]],
        generate: Callable[[int, FileLayout], None],
        small: list[tuple[Path, str]],
    ) -> None:
        """The write, in order: each file (layout, final name) opened and its space
        reserved (a full disk fails before any generation), generated by
        generate(fd, layout), fsynced and named; then the small files (final path, text:
        config, index), fsynced; then the commit. SIGTERM and SIGHUP interrupt it
        (_signals.terminate_as_interrupt) until the commit point."""
        with terminate_as_interrupt():
            outputs = []
            for layout, final in files:
                out = self.open(layout, final)
                reserve(out.fd, layout.size, str(final))
                step("reserved", final)
                outputs.append(out)
            for out in outputs:
                generate(out.fd, out.layout)
                step("generated", out.final)
            # N.B. only now: an fsync per shard would stall generation while the shard
            # drains, where the kernel can write one shard back while we fill the next.
            for out in outputs:
                os.fsync(out.fd)
                step("fsynced", out.final)
            for out in outputs:
                self.link(out)
            for final, text in small:
                write_small(self.staged(final.name), text)
                step("written", final)
            self.commit()

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
                    try_lock(out.fd, blocking=False)
                return out
        if self.single:
            with locked(self.parent), _explained(self.target):
                out.temporary, out.fd = create_hidden(
                    self.parent,
                    self.target.name,
                    "tmp",
                    lambda path: os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644),
                )
                try_lock(out.fd, blocking=False)
        else:
            out.temporary = self.staged(final.name)
            out.fd = os.open(out.temporary, flags | os.O_CREAT | os.O_EXCL, 0o644)
        return out

    def staged(self, name: str) -> Path:
        """Where the file `name` of a directory checkpoint is built."""
        return self._staging_directory() / name

    def _staging_directory(self) -> Path:
        if self.staging is None:
            with locked(self.parent), _explained(self.target):
                self.staging, self.staging_fd = create_hidden(
                    self.parent, self.target.name, "staging", _make_directory
                )
                try_lock(self.staging_fd, blocking=False)
            step("staging-created", self.staging)
        return self.staging

    def link(self, out: Output) -> None:
        """Names a finished, fsynced file: in the staging directory, or beside a one-file
        target (`.NAME.fastinit-PID.new`)."""
        if out.temporary is None:
            if self.single:
                with locked(self.parent):
                    out.temporary, _ = create_hidden(
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
            with locked(self.parent), signals_deferred():
                self._commit_file()
            return
        staging = self._staging_directory()
        os.fsync(self.staging_fd)
        step("staging-fsynced", staging)
        with locked(self.parent):
            replacing = self._prepare_swap(staging)
            with signals_deferred():
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
        carry(self.target, staging, replaced)
        step("carried", staging)
        self.old_fd = os.open(self.target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        if try_lock(self.old_fd, blocking=False) is False:
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
        self.aside = hidden(self.parent, self.target.name, "old")
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
            if reconcile(self.old, self.target, self.carried_over):
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
# Renames, fsyncs and the messages they need


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
