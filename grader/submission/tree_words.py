"""The words and path keys the submission-tree modules share (grader.submission.tree and its
tree_* siblings): the stage every refusal carries, how a student's path, a size, an OSError and a
special file are put into a message, and the byte form of a relative path that is sorted, bounded
and hashed.

Refusal messages name paths relative to the submission folder only (never the grader's own paths)
and show names through `repr` (no raw control characters).
"""

from __future__ import annotations

import os
import stat

STAGE = "snapshot"


def special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISDIR(mode):
        return "folder"
    return "special file"


def shown(path: str, limit: int = 120) -> str:
    """A student's file name as safe text: repr escapes control characters, bidirectional
    overrides and undecodable bytes; very long paths are shortened in the middle."""
    if len(path) > limit:
        path = path[: limit // 2] + "…" + path[-limit // 2:]
    return repr(path)


def size_words(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def reason(error: OSError) -> str:
    """An OSError in words without its file name (which would be a grader path)."""
    return os.strerror(error.errno) if error.errno else type(error).__name__


def path_key(path: str) -> bytes:
    """A path's bytes as the file system holds them: the sort key and what is hashed."""
    return path.encode("utf-8", "surrogateescape")


def join_path(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def is_inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


__all__ = ["STAGE", "is_inside", "join_path", "path_key", "reason", "shown", "size_words", "special_kind"]
