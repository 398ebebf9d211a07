"""Where a submission's symbolic links lead, and which of them make a walk endless.

`resolve_link` follows a link by lstat and readlink alone (nothing outside the folder is opened or
read), iteratively and with Linux's own limit on links per lookup; `looping_links` finds the kept
folder links through which a walk that follows links would never end. The scan
(grader.submission.tree) keeps a link only when both say it is safe.
"""

from __future__ import annotations

import os
import stat
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from grader.submission.tree_words import is_inside, path_key

if TYPE_CHECKING:  # the scan's entry type; grader.submission.tree itself calls into here
    from grader.submission.tree import Entry

# As many links as Linux follows in one path lookup (MAXSYMLINKS) before it says ELOOP.
MAX_LINK_HOPS = 40


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
            return None, "dangling" if is_inside(candidate, root) else "outside"
        if stat.S_ISLNK(status.st_mode):
            hops += 1
            if hops > MAX_LINK_HOPS:
                return None, "loop" if is_inside(candidate, root) else "outside"
            try:
                text = os.readlink(candidate)
            except OSError:
                return None, "dangling" if is_inside(candidate, root) else "outside"
            if text.startswith("/"):
                resolved = "/"
            parts.extendleft(reversed(text.split("/")))
            continue
        if parts and not stat.S_ISDIR(status.st_mode):
            return None, "dangling" if is_inside(candidate, root) else "outside"
        resolved = candidate
    if not is_inside(resolved, root):
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
    return sorted(looping.values(), key=lambda link: path_key(link.path))


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


def _folders_above(path: str) -> Iterator[str]:
    """"" (the folder itself), then each folder on the way down to the one holding `path`."""
    parts = path.split("/")[:-1]
    yield ""
    for end in range(1, len(parts) + 1):
        yield "/".join(parts[:end])


__all__ = ["MAX_LINK_HOPS", "looping_links", "resolve_link"]
