"""The user's files in a checkpoint directory being replaced: they stay in it.

Guarantees: `carry` hard-links every entry of the old directory but the checkpoint's
own files into the new one (subdirectories recreated with their mode, times and owner
where allowed, their entries linked in turn): nothing is copied or moved, so the files
stay in the old directory at every instant, and a mount point inside is refused
(EXDEV) before the commit. `reconcile`, after the swap, moves into the new directory
what appeared in the old one (or replaced a file there) in the moment before it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from pathlib import Path

from ._leftovers import fsync_directory


def carry(source: Path, destination: Path, skip: set[str]) -> None:
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


def reconcile(old: Path, new: Path, skip: set[str]) -> bool:
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
