"""Reading a zip archive someone else made, bounded: the course kit (grader.pipeline.kit), the LMS's
bulk download and a student's own zip inside it (grader.pipeline.collect).

The rules, one place for all of them:

- an entry's name is a relative path inside the target folder: no absolute path, no drive letter, no
  `..` or `.` part, no backslash (Windows' separator, which zipfile would keep as a character here
  but another tool may split on), no control character, no empty part, each part at most 255 bytes;
- an entry is a plain file or a folder: a symbolic link (Unix mode S_IFLNK in the entry's external
  attributes) or any other special file is refused, so is an encrypted entry;
- the number of entries and the sum of the sizes they declare are bounded before anything is
  written, and every entry is copied only up to the size it declares: a forged header (declared
  small, inflating to much more, a "zip bomb") stops at the first byte past it.

`entry_problem` says what is wrong with one entry (None when nothing), `check_totals` checks the
count and the declared sizes, `copy_entry` copies one entry bounded, and `unpack_zip` does all of it
for a whole archive, refusing it at the first problem before writing anything.
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from grader.csvmessages import shorten
from grader.escape import control_characters

MAX_PART_BYTES = 255
"""The longest file name most file systems allow."""
_ENCRYPTED = 0x1
"""General purpose bit 0 of a zip entry: the entry is encrypted."""


class ArchiveError(Exception):
    """An archive, or one of its entries, that is not unpacked; str() says which and why."""


@dataclass(frozen=True)
class ZipLimits:
    """How much one archive may hold: entries, and bytes unpacked (the sum the entries declare)."""

    max_entries: int
    max_bytes: int


def entry_parts(name: str) -> tuple[str, ...] | None:
    """The path parts of an entry's name when it is a safe relative path (a folder's trailing `/`
    dropped), None otherwise."""
    if not name or "\\" in name or "\0" in name or name.startswith("/"):
        return None
    # Control, bidi-override and BOM characters only: not `str.isprintable`, which also refuses the
    # narrow no-break space of every macOS screenshot name (U+202F) or an emoji's zero-width joiner.
    if control_characters(name):
        return None
    path = PurePosixPath(name)
    parts = tuple(name.rstrip("/").split("/"))
    if path.is_absolute() or not parts or any(part in ("", ".", "..") for part in parts):
        return None
    if ":" in parts[0] and len(parts[0]) >= 2 and parts[0][1] == ":":  # C:file, a Windows drive
        return None
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_PART_BYTES for part in parts):
        return None
    return parts


def entry_problem(member: zipfile.ZipInfo, what: str) -> str | None:
    """What is wrong with one entry of an archive holding `what` ("the kit"), or None."""
    name = member.filename
    if control_characters(name):
        return f"entry '{shorten(name)}' has a control character in its name"
    if entry_parts(name) is None:
        return f"entry '{shorten(name)}' points outside {what} (an absolute path, a drive, '..' or a backslash)"
    kind = stat.S_IFMT(member.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return f"entry '{shorten(name)}' is a link; {what} may hold plain files only"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return f"entry '{shorten(name)}' is a special file (mode {kind:o}); {what} may hold plain files only"
    if member.flag_bits & _ENCRYPTED:
        return f"entry '{shorten(name)}' is encrypted"
    return None


def check_totals(members: Sequence[zipfile.ZipInfo], limits: ZipLimits, what: str) -> None:
    """Refuse an archive with more entries, or declaring more bytes, than `limits` allow."""
    if len(members) > limits.max_entries:
        raise ArchiveError(f"{len(members):,} entries, more than {what} may have ({limits.max_entries:,})")
    declared = sum(member.file_size for member in members)
    if declared > limits.max_bytes:
        raise ArchiveError(f"unpacks to {_size(declared)}, more than {what} may hold ({_size(limits.max_bytes)})")


def copy_entry(archive: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path) -> int:
    """Copy one file entry to `target` (which must not exist), stopping at the size the entry declares:
    a forged header cannot unpack more. Returns the bytes written; on ArchiveError the partial file
    is removed."""
    written = 0
    with archive.open(member) as source, open(target, "xb") as sink:
        try:
            written = _copy_bounded(source, sink, member.file_size, member.filename)
        except BaseException:
            sink.close()
            target.unlink(missing_ok=True)
            raise
    return written


def _copy_bounded(source: IO[bytes], sink: IO[bytes], declared: int, name: str) -> int:
    written = 0
    while True:
        block = source.read(min(1 << 20, declared - written + 1))
        if not block:
            return written
        written += len(block)
        if written > declared:
            raise ArchiveError(f"entry '{shorten(name)}' unpacks to more than the {declared:,} bytes it declares")
        sink.write(block)


def unpack_zip(archive_path: Path, folder: Path, limits: ZipLimits, what: str) -> Path:
    """Unpack a whole archive into `folder` (created; it must not exist), every entry checked first:
    an unsafe name, a link, too many entries or bytes refuse the archive before anything is written
    (ArchiveError). zipfile.BadZipFile passes through."""
    with zipfile.ZipFile(archive_path) as archive:
        members = archive.infolist()
        check_totals(members, limits, what)
        for member in members:
            problem = entry_problem(member, what)
            if problem is not None:
                raise ArchiveError(f"{problem}; not unpacked")
        folder.mkdir(parents=True)
        for member in members:
            target = folder.joinpath(*entry_parts(member.filename) or ())
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                raise ArchiveError(f"entry '{shorten(member.filename)}' is in the archive twice")
            copy_entry(archive, member, target)
    return folder


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count:,} bytes"
