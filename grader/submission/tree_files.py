"""Opening and reading inside a submission folder through descriptors, never through a link.

Every open starts from the folder's own descriptor and goes one path component at a time with
O_NOFOLLOW, so a folder on the way that became a link (to /etc, to another student) fails instead of
being followed. Files are opened with O_NONBLOCK too, so a FIFO swapped in after the scan cannot
block, and each must still be the regular file of the size the scan saw (`file_chunks`, which the
copy, the hash and `read_file` all read through). `read_file` reads one small file of a scanned
tree for the trusted side (submission.yaml, report.md).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import TYPE_CHECKING

from grader.submission.errors import SubmissionError
from grader.submission.tree_words import STAGE, join_path, reason, shown, size_words, special_kind

if TYPE_CHECKING:  # the scan's types; grader.submission.tree itself opens folders through here
    from grader.submission.tree import Entry, Manifest

CHUNK_BYTES = 1 << 20

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def open_root(root: str) -> int:
    """The folder's own descriptor, which every later open starts from (an OSError in words: its
    text would name the grader's path)."""
    try:
        return os.open(root, DIR_FLAGS)
    except OSError as error:
        raise SubmissionError(STAGE, f"the submission folder cannot be read ({reason(error)})") from None


def open_manifest_root(manifest: Manifest) -> int:
    return open_root(str(manifest.root))


def open_beneath(root_fd: int, path: str, flags: int) -> int:
    """Open `path` below the folder one component at a time, each folder with O_NOFOLLOW: a folder
    on the way that became a link (to /etc, to another student) fails with ELOOP or ENOTDIR
    instead of being followed."""
    *folders, name = path.split("/")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise ValueError(f"not a relative path inside the folder: {path!r}")
    parent = os.dup(root_fd)
    try:
        for folder in folders:
            child = os.open(folder, DIR_FLAGS, dir_fd=parent)
            os.close(parent)
            parent = child
        return os.open(name, flags, dir_fd=parent)
    finally:
        os.close(parent)


def file_chunks(root_fd: int, entry: Entry) -> Iterator[bytes]:
    """A scanned file's bytes in chunks, from a descriptor that cannot have come through a link
    (O_NOFOLLOW on every component) nor block (O_NONBLOCK), and that must still be the regular
    file of the scanned size; never more than that size is read."""
    try:
        fd = open_beneath(root_fd, entry.path, FILE_FLAGS)
    except OSError as error:
        raise _changed(entry, f"it can no longer be opened: {reason(error)}") from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise _changed(entry, f"it is now a {special_kind(status.st_mode)}")
        if status.st_size != entry.size:
            raise _changed(entry, f"its size went from {entry.size:,} to {status.st_size:,} bytes")
        left = entry.size
        while left:
            chunk = _read(fd, min(CHUNK_BYTES, left), entry)
            if not chunk:
                raise _changed(entry, "it became shorter")
            left -= len(chunk)
            yield chunk
        if _read(fd, 1, entry):
            raise _changed(entry, "it became longer")
    finally:
        os.close(fd)


def _read(fd: int, size: int, entry: Entry) -> bytes:
    try:
        return os.read(fd, size)
    except OSError as error:
        raise _changed(entry, f"it could not be read: {reason(error)}") from None


def _changed(entry: Entry, how: str) -> SubmissionError:
    return SubmissionError(STAGE, f"{shown(entry.path)} changed while the grader was copying the submission "
                                  f"({how}); leave the folder alone while it is graded, then grade it again")


def read_file(manifest: Manifest, path: str, max_bytes: int) -> bytes | None:
    """The bytes of the file at `path` (relative to the folder, through kept links as the sandbox
    would see them), for trusted readers of small student text (submission.yaml, report.md): read
    by the same checked descriptor as a copy, so a link out of the folder, a FIFO or a 64 GiB file
    can never be read. None when the manifest has no file there.

    Raises SubmissionError("snapshot", ...) when the file is larger than `max_bytes` or changed
    since the scan.
    """
    entry = find_file(manifest, path)
    if entry is None:
        return None
    if entry.size > max_bytes:
        raise SubmissionError(STAGE, f"{shown(path)} is {size_words(entry.size)}, more than the "
                                     f"{size_words(max_bytes)} the grader reads of it; make it smaller")
    root_fd = open_manifest_root(manifest)
    try:
        return b"".join(file_chunks(root_fd, entry))
    finally:
        os.close(root_fd)


def find_file(manifest: Manifest, path: str) -> Entry | None:
    """The file entry `path` leads to inside the manifest, following kept links (their targets are
    already fully resolved, so each needs one step); None for a folder, a missing path, or a path
    with `..` in it (nothing a student names may climb)."""
    index = {entry.path: entry for entry in manifest.entries}
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts or not parts:
        return None
    current = ""
    for part in parts:
        entry = index.get(join_path(current, part))
        if entry is not None and entry.kind == "link":
            entry = index.get(entry.target or "")
        if entry is None:
            return None
        current = entry.path
    return entry if entry.kind == "file" else None


__all__ = ["CHUNK_BYTES", "DIR_FLAGS", "FILE_FLAGS", "file_chunks", "find_file", "open_beneath", "open_manifest_root",
           "open_root", "read_file"]
