"""A submission folder's file tree, read as the hostile input it is.

The folder is untrusted in its shape as much as in its contents: a symbolic link can point at the
TA's evaluation labels or at another student's folder, two links to `.` make a naive copy grow
without end, a FIFO makes a naive read hang, a sparse file claims 64 GiB, a tree 1,200 folders deep
overflows a recursive walk. Everything that touches the tree on the trusted side goes through here:

- `scan_tree` walks the folder once (iteratively, by lstat, never through a link) into a `Manifest`
  of files, folders and links, refusing what cannot be copied safely and stopping as soon as one of
  the `TreeBounds` is passed;
- `copy_into` writes the manifest's snapshot (the sandbox's read-only view of the submission);
- `tree_sha256` hashes it (the result's `submission_sha256`, the cache key);
- `read_file` reads one small file of it for the trusted side (submission.yaml, report.md).

A link is kept only when its fully resolved target is a file or folder inside the folder; it is
recreated as a relative link to the same place, so that it resolves inside the sandbox's copy
too. Files are read through descriptors opened one path component at a time with O_NOFOLLOW
(and O_NONBLOCK, so a FIFO swapped in after the scan cannot block), and each must still be the
regular file of the size the scan saw.

Every refusal is a `SubmissionError("snapshot", ...)` whose message names paths relative to the
submission folder only (never the grader's own paths), shows names through `repr` (no raw control
characters), and says what to do.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grader.submission.errors import SubmissionError

STAGE = "snapshot"
# Tool folders no model needs: byte code the sandbox regenerates (or must not trust), a repository.
SKIPPED_FOLDERS = frozenset({"__pycache__", ".git"})
# As many links as Linux follows in one path lookup (MAXSYMLINKS) before it says ELOOP.
MAX_LINK_HOPS = 40
CHUNK_BYTES = 1 << 20
TREE_HASH_VERSION = b"xai-grader tree v1\0"

FIX_LINK = "replace the link with the file itself, or remove it"
FIX_SPECIAL = "replace it with the file itself, or remove it"
FIX_SIZE = ("hand in only what the model needs: remove data sets, virtual environments, "
            "checkpoints and outputs")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

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
    entries = sorted(scan.entries, key=lambda entry: _path_key(entry.path))
    return Manifest(root=Path(root), entries=tuple(entries), bounds=bounds)


def _real_folder(folder: Path) -> str:
    """The folder's real path: the TA may well reach the submissions through a link of their own;
    it is what the folder's links are judged against."""
    try:
        root = os.path.realpath(folder, strict=True)
    except OSError as error:
        raise SubmissionError(STAGE, f"the submission folder {_shown(Path(folder).name)} cannot be read "
                                     f"({_reason(error)})") from None
    if not os.path.isdir(root):
        raise SubmissionError(STAGE, f"the submission {_shown(Path(folder).name)} is not a folder")
    return root


def _excluded_paths(root: str, exclude: Iterable[Path]) -> frozenset[str]:
    """The excluded paths that lie inside the folder, relative to it (the last component itself
    is not resolved, so excluding a link leaves out the link)."""
    inside = set()
    for path in exclude:
        absolute = os.path.abspath(path)
        real = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
        if _is_inside(real, root) and real != root:
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
        root_fd = _open_root(self.root)
        try:
            pending = [""]
            while pending:
                folder = pending.pop()
                try:
                    with closing(_listing(root_fd, folder)) as listing:
                        for name, status in listing:
                            self._see(_join(folder, name), name, status, pending)
                except OSError as error:
                    self.problems.append((folder, f"the folder {_shown(folder or '.')} cannot be read "
                                                  f"({_reason(error)}); make it readable, or remove it"))
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
            self.problems.append((path, f"{_shown(path)} is a {_special_kind(mode)}, not a file or folder; "
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
                               f"at {_shown(path)}")
        if len(_path_key(path)) > bounds.max_path_bytes:
            raise _bound_error(f"has a path longer than {bounds.max_path_bytes:,} bytes", "max_path_bytes",
                               f"at {_shown(path)}")

    def _add_bytes(self, path: str, size: int) -> None:
        self.total_bytes += size
        if self.total_bytes > self.bounds.max_bytes:
            raise _bound_error(f"holds more than {_size_words(self.bounds.max_bytes)} of files", "max_bytes",
                               f"{_size_words(self.total_bytes)} counted so far, the last "
                               f"{_shown(path)} of {_size_words(size)}")

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
        self.problems.append((path, f"{_shown(path)} is a symbolic link that {what}; {FIX_LINK}"))

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
                self.problems.append((link.path, f"{_shown(link.path)} is a symbolic link to {_shown(link.target)}, "
                                                 "which the grader leaves out (it is inside .git, __pycache__ "
                                                 f"or the output folder, or is not a file or folder); {FIX_LINK}"))
        folder_links = [link for link in kept if link.target == "" or kinds[link.target] == "dir"]
        for link in looping_links(folder_links):
            where = "the submission folder itself" if link.target == "" else f"the folder {_shown(link.target)}"
            self.problems.append((link.path, f"{_shown(link.path)} is a symbolic link to {where}, which makes a "
                                             f"loop (following it leads back to where it is); {FIX_LINK}"))


def _listing(root_fd: int, folder: str) -> Iterator[tuple[str, os.stat_result]]:
    """A folder's names and lstat results, read lazily: a folder of a million names is only read
    as far as the entry bound lets it."""
    fd = os.dup(root_fd) if folder == "" else _open_beneath(root_fd, folder, _DIR_FLAGS)
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                yield entry.name, entry.stat(follow_symlinks=False)
    finally:
        os.close(fd)


def resolve_link(root: str, path: str) -> tuple[str | None, Literal["outside", "dangling", "loop"] | None]:
    """Where the link at `path` (relative to the real folder `root`) finally leads, like
    realpath(strict=True) but iterative (a chain of 1,200 links cannot overflow the stack) and
    with Linux's own limit on links per lookup: `(target relative to root, None)` when that is
    inside the folder (`""` being the folder itself), else `(None, why)`.

    Why is "outside" whenever the resolution ends or fails outside the folder, so that the answer
    says nothing about what does or does not exist outside it.
    """
    resolved = root
    parts = deque(path.split("/"))
    hops = 0
    while parts:
        part = parts.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            resolved = os.path.dirname(resolved)
            continue
        candidate = os.path.join(resolved, part)
        try:
            status = os.lstat(candidate)
        except OSError:
            return None, "dangling" if _is_inside(candidate, root) else "outside"
        if stat.S_ISLNK(status.st_mode):
            hops += 1
            if hops > MAX_LINK_HOPS:
                return None, "loop" if _is_inside(candidate, root) else "outside"
            try:
                text = os.readlink(candidate)
            except OSError:
                return None, "dangling" if _is_inside(candidate, root) else "outside"
            if text.startswith("/"):
                resolved = "/"
            parts.extendleft(reversed(text.split("/")))
            continue
        if parts and not stat.S_ISDIR(status.st_mode):
            return None, "dangling" if _is_inside(candidate, root) else "outside"
        resolved = candidate
    if not _is_inside(resolved, root):
        return None, "outside"
    return ("" if resolved == root else Path(os.path.relpath(resolved, root)).as_posix()), None


def looping_links(folder_links: list[Entry]) -> list[Entry]:
    """The folder links through which a walk that follows links would never end.

    Following a link to folder T and walking down inside T, a walk meets the links under T; so
    there is an edge T -> U for every link to U that lies below T. A walk is endless exactly when
    it can come back to a folder it entered: a link lies on such a loop when its own edge (from
    each folder above it that some link enters, to its target) is inside one strongly connected
    component. A link to the folder itself or to one of its own ancestors is the simplest case
    (an edge from its target to its target). Each link has at most depth-many edges, so this is
    linear in links x depth, whatever the links point at.
    """
    targets = {link.target for link in folder_links}
    edges: dict[str, list[str]] = {}
    link_edges: list[tuple[Entry, str]] = []
    for link in folder_links:
        for above in _folders_above(link.path):
            if above in targets:
                edges.setdefault(above, []).append(link.target)
                link_edges.append((link, above))
    component = _strong_components(targets, edges)
    looping = {link.path: link for link, above in link_edges if component[above] == component[link.target]}
    return sorted(looping.values(), key=lambda link: _path_key(link.path))


def _strong_components(nodes: set[str], edges: dict[str, list[str]]) -> dict[str, int]:
    """Kosaraju's algorithm with explicit stacks: node -> component number."""
    order: list[str] = []
    seen: set[str] = set()
    for start in sorted(nodes):
        if start in seen:
            continue
        seen.add(start)
        stack = [(start, iter(edges.get(start, ())))]
        while stack:
            node, successors = stack[-1]
            advanced = False
            for successor in successors:
                if successor not in seen:
                    seen.add(successor)
                    stack.append((successor, iter(edges.get(successor, ()))))
                    advanced = True
                    break
            if not advanced:
                order.append(node)
                stack.pop()
    reverse: dict[str, list[str]] = {}
    for node, successors in edges.items():
        for successor in successors:
            reverse.setdefault(successor, []).append(node)
    component: dict[str, int] = {}
    for number, start in enumerate(reversed(order)):
        if start in component:
            continue
        component[start] = number
        stack_nodes = [start]
        while stack_nodes:
            node = stack_nodes.pop()
            for predecessor in reverse.get(node, ()):
                if predecessor not in component:
                    component[predecessor] = number
                    stack_nodes.append(predecessor)
    return component


# ---------------------------------------------------------------------------------------------
# Copying and hashing


def copy_into(manifest: Manifest, destination: Path) -> None:
    """Write the manifest's tree at `destination` (a new folder, in a place only the grader can
    write to), then make it world-readable and read-only: the sandbox server reads it as an
    unprivileged uid and must not change it.

    Files are streamed, links recreated relative (`_relative_link`), folders created. A file that
    is no longer the regular file of the size scanned (grown, shrunk, swapped for a link or a
    FIFO) is refused, never copied whole. Raises SubmissionError("snapshot", ...) for the
    submission's side; an OSError writing the destination (a full disk) is the grader's and
    propagates as it is. After either, what was written is left for the caller to remove.
    """
    destination = Path(destination)
    destination.mkdir(mode=0o700)
    root_fd = _open_manifest_root(manifest)
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
    root_fd = _open_manifest_root(manifest)
    try:
        for entry in manifest.entries:
            digest.update(_entry_record(entry))
            if entry.kind == "file":
                content = hashlib.sha256()
                for chunk in _file_chunks(root_fd, entry):
                    content.update(chunk)
                digest.update(content.digest())
    finally:
        os.close(root_fd)
    return digest.hexdigest()


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
        raise SubmissionError(STAGE, f"{_shown(path)} is {_size_words(entry.size)}, more than the "
                                     f"{_size_words(max_bytes)} the grader reads of it; make it smaller")
    root_fd = _open_manifest_root(manifest)
    try:
        return b"".join(_file_chunks(root_fd, entry))
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
        entry = index.get(_join(current, part))
        if entry is not None and entry.kind == "link":
            entry = index.get(entry.target or "")
        if entry is None:
            return None
        current = entry.path
    return entry if entry.kind == "file" else None


def _entry_record(entry: Entry) -> bytes:
    """An entry's kind, path, size and target, each length-prefixed so that no two different trees
    give the same stream of records."""
    parts = [entry.kind.encode(), _path_key(entry.path)]
    if entry.kind == "file":
        parts.append(entry.size.to_bytes(8, "big"))
    if entry.kind == "link":
        parts.append(_path_key(entry.target or ""))
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def _copy_file(root_fd: int, entry: Entry, place: Path) -> None:
    out = os.open(place, _NEW_FILE_FLAGS, 0o600)
    try:
        for chunk in _file_chunks(root_fd, entry):
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view):]
        os.fchmod(out, 0o444)
    finally:
        os.close(out)


def _file_chunks(root_fd: int, entry: Entry) -> Iterator[bytes]:
    """A scanned file's bytes in chunks, from a descriptor that cannot have come through a link
    (O_NOFOLLOW on every component) nor block (O_NONBLOCK), and that must still be the regular
    file of the scanned size; never more than that size is read."""
    try:
        fd = _open_beneath(root_fd, entry.path, _FILE_FLAGS)
    except OSError as error:
        raise _changed(entry, f"it can no longer be opened: {_reason(error)}") from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise _changed(entry, f"it is now a {_special_kind(status.st_mode)}")
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
        raise _changed(entry, f"it could not be read: {_reason(error)}") from None


def _changed(entry: Entry, how: str) -> SubmissionError:
    return SubmissionError(STAGE, f"{_shown(entry.path)} changed while the grader was copying the submission "
                                  f"({how}); leave the folder alone while it is graded, then grade it again")


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


# ---------------------------------------------------------------------------------------------
# Descriptors and words


def _open_root(root: str) -> int:
    """The folder's own descriptor, which every later open starts from (an OSError in words: its
    text would name the grader's path)."""
    try:
        return os.open(root, _DIR_FLAGS)
    except OSError as error:
        raise SubmissionError(STAGE, f"the submission folder cannot be read ({_reason(error)})") from None


def _open_manifest_root(manifest: Manifest) -> int:
    return _open_root(str(manifest.root))


def _open_beneath(root_fd: int, path: str, flags: int) -> int:
    """Open `path` below the folder one component at a time, each folder with O_NOFOLLOW: a folder
    on the way that became a link (to /etc, to another student) fails with ELOOP or ENOTDIR
    instead of being followed."""
    *folders, name = path.split("/")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise ValueError(f"not a relative path inside the folder: {path!r}")
    parent = os.dup(root_fd)
    try:
        for folder in folders:
            child = os.open(folder, _DIR_FLAGS, dir_fd=parent)
            os.close(parent)
            parent = child
        return os.open(name, flags, dir_fd=parent)
    finally:
        os.close(parent)


def _special_kind(mode: int) -> str:
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


def _bound_error(what: str, bound: str, detail: str) -> SubmissionError:
    return SubmissionError(STAGE, f"the submission folder {what} (the grader's {bound} limit; {detail}); {FIX_SIZE}")


def _problems_message(problems: list[tuple[str, str]], shown: int = 10) -> str:
    """One problem as its sentence; several numbered, in path order, the first `shown` of them."""
    ordered = [sentence for _, sentence in sorted(problems, key=lambda problem: _path_key(problem[0]))]
    if len(ordered) == 1:
        return ordered[0]
    listed = " ".join(f"({number}) {sentence}." for number, sentence in enumerate(ordered[:shown], 1))
    more = f" And {len(ordered) - shown} more." if len(ordered) > shown else ""
    return f"the submission folder has {len(ordered)} entries the grader cannot copy: {listed}{more}"


def _shown(path: str, limit: int = 120) -> str:
    """A student's file name as safe text: repr escapes control characters, bidirectional
    overrides and undecodable bytes; very long paths are shortened in the middle."""
    if len(path) > limit:
        path = path[: limit // 2] + "…" + path[-limit // 2:]
    return repr(path)


def _size_words(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _reason(error: OSError) -> str:
    """An OSError in words without its file name (which would be a grader path)."""
    return os.strerror(error.errno) if error.errno else type(error).__name__


def _path_key(path: str) -> bytes:
    """A path's bytes as the file system holds them: the sort key and what is hashed."""
    return path.encode("utf-8", "surrogateescape")


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _folders_above(path: str) -> Iterator[str]:
    """"" (the folder itself), then each folder on the way down to the one holding `path`."""
    parts = path.split("/")[:-1]
    yield ""
    for end in range(1, len(parts) + 1):
        yield "/".join(parts[:end])


def _is_inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


__all__ = ["DEFAULT_BOUNDS", "Entry", "Manifest", "TreeBounds", "copy_into", "find_file", "looping_links",
           "read_file", "resolve_link", "scan_tree", "tree_sha256"]
