"""The class roster (`--roster roster.csv`): who the students are and which submission folder is
whose, for classes whose LMS names the downloaded folders by its own ids rather than by student id.

roster.csv has a header row and the columns student_id (required), name and folder (optional;
`lms_id` is accepted as another name for folder). folder is either the submission folder's name or
the LMS's id for the student that the folder is named by (Canvas and Moodle put it among other
parts of the name, e.g. `smithjohn_12345_67890_report`). It is read by grader.csvfile, so every
problem is reported at once as `file:line: field: what is wrong`.

This module reads and looks up; deciding what to do when a roster and a submission.yaml disagree
is grader.pipeline.class_plan's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from grader.csvfile import read_csv_rows
from grader.csvmessages import config_error, shown
from grader.submission.spec import STUDENT_ID

REQUIRED = ("student_id",)
OPTIONAL = ("name", "folder")
ALIASES = {"lms_id": "folder"}
MAX_ID_CHARS = 64
MAX_FOLDER_BYTES = 255  # the longest file name most file systems allow
_TOKEN = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class RosterEntry:
    """One student of the roster; folder is '' when the roster does not give one."""

    student_id: str
    name: str
    folder: str
    line: int


@dataclass(frozen=True)
class Roster:
    """The roster's students, looked up by student id or by submission folder."""

    entries: tuple[RosterEntry, ...] = ()
    _ids: dict[str, RosterEntry] = field(init=False, repr=False, compare=False)
    _folders: dict[str, RosterEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ids", {entry.student_id: entry for entry in self.entries})
        object.__setattr__(self, "_folders", {entry.folder: entry for entry in self.entries if entry.folder})

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def none(cls) -> Roster:
        """No roster: every lookup finds nothing, so the folders and submission.yaml decide alone."""
        return cls(())

    def by_id(self, student_id: str) -> RosterEntry | None:
        return self._ids.get(student_id)

    def by_folder(self, folder_name: str) -> RosterEntry | None:
        """The student whose folder this is: the entry whose folder is exactly `folder_name`, else the
        one entry whose folder is one or more whole parts of the name (split at anything but letters
        and digits: 12345 in `smithjohn_12345_67890_report`); None when none, or several, match."""
        exact = self._folders.get(folder_name)
        if exact is not None:
            return exact
        matches = self.folder_matches(folder_name)
        return matches[0] if len(matches) == 1 else None

    def folder_matches(self, folder_name: str) -> tuple[RosterEntry, ...]:
        """Every entry whose folder is `folder_name` or a run of its whole parts, in roster order: more
        than one means the name is ambiguous (by_folder then finds none), worth telling the TA."""
        tokens = list(_TOKEN.finditer(folder_name))
        found = {folder_name} & self._folders.keys()
        for first, start in enumerate(tokens):
            for end in tokens[first:]:
                if folder_name[start.start():end.end()] in self._folders:
                    found.add(folder_name[start.start():end.end()])
        return tuple(sorted((self._folders[name] for name in found), key=lambda entry: entry.line))


def load_roster(path: str | Path) -> Roster:
    """Read and check roster.csv; raises ConfigError listing every problem: an id listed twice, or
    one folder given to two students, names both lines."""
    path = Path(path)
    problems: list[str] = []
    rows = read_csv_rows(path, REQUIRED, OPTIONAL, aliases=ALIASES, problems=problems,
                         comma_hint="quote a name that holds a comma")
    entries: list[RosterEntry] = []
    ids: dict[str, RosterEntry] = {}
    folders: dict[str, RosterEntry] = {}
    for line, row in rows:
        entry = _entry(f"{path}:{line}", line, row, problems)
        if entry is None:
            continue
        _check_unique(f"{path}:{line}", entry, ids, folders, problems)
        ids.setdefault(entry.student_id, entry)
        if entry.folder:
            folders.setdefault(entry.folder, entry)
        entries.append(entry)
    if problems:
        raise config_error(path, problems)
    return Roster(tuple(entries))


def _entry(where: str, line: int, row: Mapping[str, str], problems: list[str]) -> RosterEntry | None:
    """One row as an entry, or None with its problems added."""
    before = len(problems)
    values = {column: row[column].strip() for column in REQUIRED + OPTIONAL}
    for column in values:
        if "\n" in row[column] or "\r" in row[column]:
            problems.append(f"{where}: {column}: a line break inside the cell; a roster cell is one line "
                            f"(is a quote left open?)")
    if len(problems) == before:
        _check_id(where, values["student_id"], problems)
        _check_folder(where, values["folder"], problems)
    if len(problems) > before:
        return None
    return RosterEntry(values["student_id"], values["name"], values["folder"], line)


def _check_id(where: str, student_id: str, problems: list[str]) -> None:
    """The id names the student's output folder, so it follows submission.yaml's rule for ids."""
    if not student_id:
        problems.append(f"{where}: student_id: empty")
    elif len(student_id) > MAX_ID_CHARS:
        problems.append(f"{where}: student_id: {len(student_id)} characters; at most {MAX_ID_CHARS}")
    elif not STUDENT_ID.fullmatch(student_id):
        problems.append(f"{where}: student_id: {shown(student_id)} may use only letters, digits, _ and -, starting "
                        f"with a letter or digit (it names the student's output folder)")


def _check_folder(where: str, folder: str, problems: list[str]) -> None:
    """A folder value that no folder could be named is a typo or the wrong column."""
    if not folder:
        return
    if folder in (".", "..") or any(c in folder for c in "/\\") or not folder.isprintable():
        problems.append(f"{where}: folder: {shown(folder)} cannot be a folder's name (no /, \\ or control "
                        f"characters, not . or ..)")
    elif len(folder.encode("utf-8")) > MAX_FOLDER_BYTES:
        problems.append(f"{where}: folder: longer than the {MAX_FOLDER_BYTES} bytes a folder's name may have")


def _check_unique(where: str, entry: RosterEntry, ids: Mapping[str, RosterEntry],
                  folders: Mapping[str, RosterEntry], problems: list[str]) -> None:
    """One row per student and one student per folder; the message names both lines."""
    earlier = ids.get(entry.student_id)
    if earlier is not None:
        problems.append(f"{where}: student_id: '{entry.student_id}' is listed twice, on lines {earlier.line} and "
                        f"{entry.line}; keep one")
    owner = folders.get(entry.folder) if entry.folder else None
    if owner is not None and owner.student_id != entry.student_id:
        problems.append(f"{where}: folder: {shown(entry.folder)} is listed for two students, "
                        f"'{owner.student_id}' on line {owner.line} and '{entry.student_id}' on line "
                        f"{entry.line}; a folder holds one student's submission")
