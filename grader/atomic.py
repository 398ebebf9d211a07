"""Writing files so that a reader never sees half of one: a temporary file, then a rename.

Modes: every file written here ends 0644 and every folder made here 0755, set with chmod rather
than left to the umask or to mkstemp (which creates 0600), so a TA can share the output folder
with colleagues and web servers (issue 13).
"""

from __future__ import annotations

import errno
import io
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np

FILE_MODE = 0o644
DIR_MODE = 0o755


def make_directories(folder: str | Path) -> None:
    """Create `folder` and its missing parents, each made one set to 0755 whatever the umask.

    Folders that already exist keep their mode: they are the user's, not ours."""
    missing = []
    current = Path(folder)
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:  # made meanwhile by another writer (a parallel worker): theirs to set
            continue
        os.chmod(path, DIR_MODE)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is out (it may write fewer than asked). Raw os.write, not a
    buffered file object, so a full disk surfaces here as OSError(ENOSPC), where tests can raise it."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:  # a regular file only takes nothing when there is no room left
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` in one step: a crash leaves the old file or the new one, never a part.
    On any failure (a full disk included) the temporary file is removed and the old file is kept."""
    target = Path(path)
    make_directories(target.parent)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        try:
            os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600; the rename keeps whatever mode the file has
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """A compressed .npz, written in one step. numpy dates every member 1980-01-01, so the same
    arrays give the same bytes."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def publish_modes(folder: Path) -> None:
    """Set `folder` and every folder under it to 0755 and every file to 0644, whoever made them
    (a staging folder made with mkdir under a 077 umask is 0700). Links are left alone."""
    os.chmod(folder, DIR_MODE)
    for parent, folders, files in os.walk(folder):
        for name in folders + files:
            path = os.path.join(parent, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                os.chmod(path, DIR_MODE)
            elif stat.S_ISREG(mode):
                os.chmod(path, FILE_MODE)


def old_name(target: Path) -> Path:
    """Where replace_directory puts the previous folder during a swap: `.<name>.<random>.old`, a
    new name every time, so two swaps never share one (grader.outfolder.clean_stale removes the
    leftovers of a killed run)."""
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.old")


def replace_directory(staging: Path, target: Path) -> None:
    """Move a fully written `staging` folder to `target`, replacing what was there.

    The old folder is renamed aside first and removed last, so at every moment `target` is either
    the complete old result or the complete new one; if moving `staging` in fails, the old folder is
    put back. The new folder is published 0755 with 0644 files.
    """
    publish_modes(staging)
    old = old_name(target)
    try:
        os.replace(target, old)
        kept_aside = True
    except FileNotFoundError:
        kept_aside = False  # nothing to keep aside: a first run
    try:
        os.replace(staging, target)
    except BaseException:
        if kept_aside:
            os.replace(old, target)  # the previous result back where it was
        raise
    if kept_aside:
        shutil.rmtree(old, ignore_errors=True)  # a leftover is harmless; the next run's clean_stale takes it
