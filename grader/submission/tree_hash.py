"""The hash of a submission's tree: the result's `submission_sha256` and the cache key."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from grader.submission.tree import DEFAULT_BOUNDS, Entry, Manifest, TreeBounds, scan_tree
from grader.submission.tree_files import file_chunks, open_manifest_root
from grader.submission.tree_words import path_key

TREE_HASH_VERSION = b"xai-grader tree v1\0"


def tree_sha256(source: Manifest | Path, bounds: TreeBounds = DEFAULT_BOUNDS, exclude: Iterable[Path] = ()) -> str:
    """A hash of a submission's tree: every entry's relative path and kind, each link's resolved
    target and each file's bytes, in path order, so any change to what the sandbox would see
    changes it, and neither the folder's location nor the order a file system lists names in does.

    Takes a manifest (hashing what was scanned, under its bounds) or a folder (scanned first
    with `bounds` and `exclude`). Files are read in chunks, each held to its scanned size.
    Raises SubmissionError("snapshot", ...) as `scan_tree` and `copy_into` do.
    """
    manifest = source if isinstance(source, Manifest) else scan_tree(source, bounds, exclude)
    digest = hashlib.sha256(TREE_HASH_VERSION)
    root_fd = open_manifest_root(manifest)
    try:
        for entry in manifest.entries:
            digest.update(_entry_record(entry))
            if entry.kind == "file":
                content = hashlib.sha256()
                for chunk in file_chunks(root_fd, entry):
                    content.update(chunk)
                digest.update(content.digest())
    finally:
        os.close(root_fd)
    return digest.hexdigest()


def _entry_record(entry: Entry) -> bytes:
    """An entry's kind, path, size and target, each length-prefixed so that no two different trees
    give the same stream of records."""
    parts = [entry.kind.encode(), path_key(entry.path)]
    if entry.kind == "file":
        parts.append(entry.size.to_bytes(8, "big"))
    if entry.kind == "link":
        parts.append(path_key(entry.target or ""))
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


__all__ = ["TREE_HASH_VERSION", "tree_sha256"]
