"""The snapshot of a scanned submission: the sandbox's read-only view of it.

Files are streamed through the checked descriptors of grader.submission.tree_files (a file that is
no longer the regular file of the size scanned is refused, never copied whole), links are recreated
relative to where they are, so that they resolve inside the copy too, and the result is made
world-readable and read-only.
"""

from __future__ import annotations

import os
from pathlib import Path

from grader.submission.tree import Entry, Manifest
from grader.submission.tree_files import file_chunks, open_manifest_root

_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def copy_into(manifest: Manifest, destination: Path) -> None:
    """Write the manifest's tree at `destination` (a new or empty folder, in a place only the grader
    can write to), then make it world-readable and read-only: the sandbox server reads it as an
    unprivileged uid and must not change it.

    Files are streamed, links recreated relative (`_relative_link`), folders created. A file that
    is no longer the regular file of the size scanned (grown, shrunk, swapped for a link or a
    FIFO) is refused, never copied whole. Raises SubmissionError("snapshot", ...) for the
    submission's side; an OSError writing the destination (a full disk) is the grader's and
    propagates as it is. After either, what was written is left for the caller to remove.
    """
    destination = Path(destination)
    destination.mkdir(mode=0o700, exist_ok=True)  # or made empty ahead (grader.sandbox.isolation.empty_snapshot)
    root_fd = open_manifest_root(manifest)
    try:
        for entry in manifest.entries:
            place = destination / entry.path
            if entry.kind == "dir":
                place.mkdir(mode=0o700)
            elif entry.kind == "link":
                os.symlink(_relative_link(entry.path, entry.target or ""), place)
            else:
                _copy_file(root_fd, entry, place)
    finally:
        os.close(root_fd)
    _make_read_only(destination, manifest)


def _copy_file(root_fd: int, entry: Entry, place: Path) -> None:
    out = os.open(place, _NEW_FILE_FLAGS, 0o600)
    try:
        for chunk in file_chunks(root_fd, entry):
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view):]
        os.fchmod(out, 0o444)
    finally:
        os.close(out)


def _relative_link(path: str, target: str) -> str:
    """The link text that leads from the link at `path` to `target` (both relative to the folder)
    without leaving it: it resolves the same in the original, in the snapshot and in the
    sandbox's /submission."""
    start = path.split("/")[:-1]
    goal = target.split("/") if target else []
    common = 0
    while common < min(len(start), len(goal)) and start[common] == goal[common]:
        common += 1
    return "/".join([".."] * (len(start) - common) + goal[common:]) or "."


def _make_read_only(destination: Path, manifest: Manifest) -> None:
    """Folders r-x for everyone, deepest first, and the destination last (files were made r--
    when written; links have no mode of their own and are never chmod-ed, which on Linux would
    change their target)."""
    for entry in reversed(manifest.entries):
        if entry.kind == "dir":
            os.chmod(destination / entry.path, 0o555)
    os.chmod(destination, 0o555)


__all__ = ["copy_into"]
