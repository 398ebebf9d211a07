"""A submission folder's file tree, read as the hostile input it is.

The folder is untrusted in its shape as much as in its contents: a symbolic link can point at the
TA's evaluation labels or at another student's folder, two links to `.` make a naive copy grow
without end, a FIFO makes a naive read hang, a sparse file claims 64 GiB, a tree 1,200 folders deep
overflows a recursive walk. Everything that touches the tree on the trusted side goes through this
module and the tree_* modules beside it:

- `scan_tree` (here) walks the folder once (iteratively, by lstat, never through a link) into a
  `Manifest` of files, folders and links, refusing what cannot be copied safely and stopping as
  soon as one of the `TreeBounds` is passed; links are judged by grader.submission.tree_links;
- `copy_into` (grader.submission.tree_copy) writes the manifest's snapshot (the sandbox's read-only
  view of the submission);
- `tree_sha256` (grader.submission.tree_hash) hashes it (the result's `submission_sha256`, the
  cache key);
- `read_file` (grader.submission.tree_files) reads one small file of it for the trusted side
  (submission.yaml, report.md).

A link is kept only when its fully resolved target is a file or folder inside the folder; it is
recreated as a relative link to the same place, so that it resolves inside the sandbox's copy
too. Files are read through descriptors opened one path component at a time with O_NOFOLLOW
(and O_NONBLOCK, so a FIFO swapped in after the scan cannot block), and each must still be the
regular file of the size the scan saw (grader.submission.tree_files).

Every refusal is a `SubmissionError("snapshot", ...)` whose message names paths relative to the
submission folder only (never the grader's own paths), shows names through `repr` (no raw control
characters), and says what to do.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grader.submission.errors import SubmissionError
from grader.submission.tree_files import DIR_FLAGS, open_beneath, open_root
from grader.submission.tree_links import MAX_LINK_HOPS, looping_links, resolve_link
from grader.submission.tree_words import STAGE, is_inside, join_path, path_key, reason, shown, size_words, special_kind

# Tool folders no model needs: byte code the sandbox regenerates (or must not trust), a repository.
SKIPPED_FOLDERS = frozenset({"__pycache__", ".git"})

FIX_LINK = "replace the link with the file itself, or remove it"
FIX_SPECIAL = "replace it with the file itself, or remove it"
FIX_SIZE = ("hand in only what the model needs: remove data sets, virtual environments, "
            "checkpoints and outputs")

Kind = Literal["file", "dir", "link"]


@dataclass(frozen=True)
class TreeBounds:
    """How much of a submission folder the grader is willing to read, copy and hash.

    The course's submissions are a few MB (a model.py, a state_dict, a report.md); the defaults
    leave two orders of magnitude of room (a VGG-16 state_dict is 0.5 GiB) while keeping one
    snapshot per worker small and quick, and refuse what is certainly a mistake or an attack
    (a data set, a virtual environment, a sparse file, a tree built to exhaust a walk):

    - `max_bytes`: total st_size of the regular files (each file counted once; links add nothing);
    - `max_entries`: files, folders and links together (skipped folders not counted);
    - `max_depth`: folders below the submission folder (a file at `a/b/c.py` has depth 3);
    - `max_path_bytes`: one entry's relative path in UTF-8, so that the snapshot's paths stay far
      below the system's PATH_MAX wherever the snapshot lives.
    """

    max_bytes: int = 1 << 30
    max_entries: int = 10_000
    max_depth: int = 32
    max_path_bytes: int = 1024


DEFAULT_BOUNDS = TreeBounds()


@dataclass(frozen=True)
class Entry:
    """One file, folder or link of a submission.

    `path` is relative to the submission folder, POSIX separators (names that are not valid UTF-8
    are kept as Python's surrogate escapes). `size` is a file's st_size (0 otherwise). `target`
    is a link's fully resolved target relative to the folder (`""` would be the folder itself).
    """

    path: str
    kind: Kind
    size: int = 0
    target: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A submission folder's tree as scanned: `root` is the folder's real path, `entries` are in
    byte order of their paths (a folder always before what it holds), `bounds` what it was
    scanned under and what copies and hashes of it are held to."""

    root: Path
    entries: tuple[Entry, ...]
    bounds: TreeBounds

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.entries)


# ---------------------------------------------------------------------------------------------
# Scanning


def scan_tree(folder: Path, bounds: TreeBounds = DEFAULT_BOUNDS, exclude: Iterable[Path] = ()) -> Manifest:
    """The manifest of `folder`, or a refusal that says what to fix.

    `exclude` names further paths to leave out, like `.git` and `__pycache__` (e.g. the output
    folder `grader check .` writes inside the student's own folder); paths outside the folder,
    and the folder itself, are ignored.

    Raises SubmissionError("snapshot", ...) for: a link that resolves outside the folder, dangles,
    loops, or points into a left-out folder; a FIFO, socket or device; an unreadable folder; and,
    at once and without walking further, a bound passed.
    """
    root = _real_folder(folder)
    scan = _Scan(root, bounds, _excluded_paths(root, exclude))
    scan.walk()
    scan.check_links()
    if scan.problems:
        raise SubmissionError(STAGE, _problems_message(scan.problems))
    entries = sorted(scan.entries, key=lambda entry: path_key(entry.path))
    return Manifest(root=Path(root), entries=tuple(entries), bounds=bounds)


def _real_folder(folder: Path) -> str:
    """The folder's real path: the TA may well reach the submissions through a link of their own;
    it is what the folder's links are judged against."""
    try:
        root = os.path.realpath(folder, strict=True)
    except OSError as error:
        raise SubmissionError(STAGE, f"the submission folder {shown(Path(folder).name)} cannot be read "
                                     f"({reason(error)})") from None
    if not os.path.isdir(root):
        raise SubmissionError(STAGE, f"the submission {shown(Path(folder).name)} is not a folder")
    return root


def _excluded_paths(root: str, exclude: Iterable[Path]) -> frozenset[str]:
    """The excluded paths that lie inside the folder, relative to it (the last component itself
    is not resolved, so excluding a link leaves out the link)."""
    inside = set()
    for path in exclude:
        absolute = os.path.abspath(path)
        real = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
        if is_inside(real, root) and real != root:
            inside.add(Path(os.path.relpath(real, root)).as_posix())
    return frozenset(inside)


class _Scan:
    """One walk's state: what was found, what is wrong with it, and the running totals the bounds
    are checked against as each entry is seen."""

    def __init__(self, root: str, bounds: TreeBounds, excluded: frozenset[str]) -> None:
        self.root = root
        self.bounds = bounds
        self.excluded = excluded
        self.entries: list[Entry] = []
        self.problems: list[tuple[str, str]] = []  # (path, sentence), sorted when reported
        self.counted = 0
        self.total_bytes = 0

    def walk(self) -> None:
        """Depth first with an explicit stack (a deep tree reaches the depth bound early and
        never Python's recursion limit); folders are opened beneath the folder's own descriptor,
        one component at a time, so a folder swapped for a link is never entered."""
        root_fd = open_root(self.root)
        try:
            pending = [""]
            while pending:
                folder = pending.pop()
                try:
                    with closing(_listing(root_fd, folder)) as listing:
                        for name, status in listing:
                            self._see(join_path(folder, name), name, status, pending)
                except OSError as error:
                    self.problems.append((folder, f"the folder {shown(folder or '.')} cannot be read "
                                                  f"({reason(error)}); make it readable, or remove it"))
        finally:
            os.close(root_fd)

    def _see(self, path: str, name: str, status: os.stat_result, pending: list[str]) -> None:
        mode = status.st_mode
        if path in self.excluded or (stat.S_ISDIR(mode) and name in SKIPPED_FOLDERS):
            return
        self._count(path)
        if stat.S_ISREG(mode):
            self._add_bytes(path, status.st_size)
            self.entries.append(Entry(path, "file", status.st_size))
        elif stat.S_ISDIR(mode):
            self.entries.append(Entry(path, "dir"))
            pending.append(path)
        elif stat.S_ISLNK(mode):
            self._see_link(path)
        else:
            self.problems.append((path, f"{shown(path)} is a {special_kind(mode)}, not a file or folder; "
                                        f"the grader copies only files, folders and links inside the folder. "
                                        f"{FIX_SPECIAL.capitalize()}"))

    def _count(self, path: str) -> None:
        """Check the entry, depth and path-length bounds before anything else is done with it."""
        bounds = self.bounds
        self.counted += 1
        if self.counted > bounds.max_entries:
            raise _bound_error(f"holds more than {bounds.max_entries:,} files, folders and links",
                               "max_entries", f"{self.counted:,} counted so far")
        depth = path.count("/") + 1
        if depth > bounds.max_depth:
            raise _bound_error(f"is nested more than {bounds.max_depth} folders deep", "max_depth",
                               f"at {shown(path)}")
        if len(path_key(path)) > bounds.max_path_bytes:
            raise _bound_error(f"has a path longer than {bounds.max_path_bytes:,} bytes", "max_path_bytes",
                               f"at {shown(path)}")

    def _add_bytes(self, path: str, size: int) -> None:
        self.total_bytes += size
        if self.total_bytes > self.bounds.max_bytes:
            raise _bound_error(f"holds more than {size_words(self.bounds.max_bytes)} of files", "max_bytes",
                               f"{size_words(self.total_bytes)} counted so far, the last "
                               f"{shown(path)} of {size_words(size)}")

    def _see_link(self, path: str) -> None:
        """Keep a link whose resolved target is inside the folder; refuse the others. The target
        is found by lstat and readlink alone: nothing outside the folder is opened or read."""
        target, failure = resolve_link(self.root, path)
        if target is not None:
            self.entries.append(Entry(path, "link", target=target))
            return
        what = {"outside": "points outside the submission folder (the grader copies only what is inside it)",
                "dangling": "points at something that does not exist",
                "loop": f"loops (it leads back to itself, or through more than {MAX_LINK_HOPS} links)"}[failure]
        self.problems.append((path, f"{shown(path)} is a symbolic link that {what}; {FIX_LINK}"))

    def check_links(self) -> None:
        """After the walk, with every entry known: a kept link must lead to a file or folder that
        is itself copied, and following folder links must never lead back to where it started."""
        kinds = {entry.path: entry.kind for entry in self.entries}
        links = [entry for entry in self.entries if entry.kind == "link"]
        kept = []
        for link in links:
            if link.target == "" or kinds.get(link.target) in ("file", "dir"):
                kept.append(link)
            else:
                self.problems.append((link.path, f"{shown(link.path)} is a symbolic link to {shown(link.target)}, "
                                                 "which the grader leaves out (it is inside .git, __pycache__ "
                                                 f"or the output folder, or is not a file or folder); {FIX_LINK}"))
        folder_links = [link for link in kept if link.target == "" or kinds[link.target] == "dir"]
        for link in looping_links(folder_links):
            where = "the submission folder itself" if link.target == "" else f"the folder {shown(link.target)}"
            self.problems.append((link.path, f"{shown(link.path)} is a symbolic link to {where}, which makes a "
                                             f"loop (following it leads back to where it is); {FIX_LINK}"))


def _listing(root_fd: int, folder: str) -> Iterator[tuple[str, os.stat_result]]:
    """A folder's names and lstat results, read lazily: a folder of a million names is only read
    as far as the entry bound lets it."""
    fd = os.dup(root_fd) if folder == "" else open_beneath(root_fd, folder, DIR_FLAGS)
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                yield entry.name, entry.stat(follow_symlinks=False)
    finally:
        os.close(fd)


def _bound_error(what: str, bound: str, detail: str) -> SubmissionError:
    return SubmissionError(STAGE, f"the submission folder {what} (the grader's {bound} limit; {detail}); {FIX_SIZE}")


def _problems_message(problems: list[tuple[str, str]], shown: int = 10) -> str:
    """One problem as its sentence; several numbered, in path order, the first `shown` of them."""
    ordered = [sentence for _, sentence in sorted(problems, key=lambda problem: path_key(problem[0]))]
    if len(ordered) == 1:
        return ordered[0]
    listed = " ".join(f"({number}) {sentence}." for number, sentence in enumerate(ordered[:shown], 1))
    more = f" And {len(ordered) - shown} more." if len(ordered) > shown else ""
    return f"the submission folder has {len(ordered)} entries the grader cannot copy: {listed}{more}"


__all__ = ["DEFAULT_BOUNDS", "Entry", "Manifest", "TreeBounds", "scan_tree"]
