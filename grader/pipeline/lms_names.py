"""What an LMS's bulk download names its files, and whose each one is: Canvas and Moodle, as their
own source code writes them (read 2026-12; cited so the next person can check a change).

Canvas, "Download Submissions" (instructure/canvas-lms, lib/content_zipper.rb, `get_filename`,
`add_upload_submission`, `add_text_or_url`, `sanitize_user_name`, `sanitize_attachment_filename`):

    <name>[_LATE]_<user id>_<attachment id>_<file name>      one uploaded file
    <name>[_LATE]_<user id>_text.html / _link.html           a text entry / a URL submission

  all flat at the top of the zip. <name> is the student's sortable name ("Smith, John") lower-cased,
  with every non-word character removed (`smithjohn`) and any `_<digits>_` run squeezed out, so the
  first `_<digits>_` after it is the user id; `LATE` is there when Canvas marks the submission late;
  under anonymous grading the name is left out and the id is `anon_<anonymous id>`. The third part
  is the attachment's id (not the submission's), and the file name has `/ \\ : * ? " < > |` turned
  into `_`. Only the latest attempt's files are in the zip. A student who uploads a file with a name
  already in their Canvas files gets it renamed with `-1`, `-2`, ... before the extension
  (`model-1.py`; "Canvas automatically adds a version number", nus-cs2103-AY2223S2/forum#361 and
  nus-cs2103-AY2324S1/forum#459), so a resubmitted `model.py` may arrive as `model-1.py`.

Moodle, "Download all submissions" (moodle/moodle, mod/assign/locallib.php,
`assign::download_submissions`): the prefix is clean_filename(fullname with `_` made a space, `_`,
the participant id), the participant id being the assignment's own id for the student
(`get_uniqueid_for_user`, the "Participant 12345" of blind marking, not the Moodle user id). With
"Download submissions in folders" (the default since Moodle 3.1):

    <Full Name>_<participant id>_assignsubmission_file_/<the student's path>/<file name>
    <Full Name>_<participant id>_assignsubmission_onlinetext_/onlinetext.html

  and without it, flat: `<Full Name>_<participant id>_assignsubmission_file_<file name>`. Under
  blind marking the name is `Participant`; a team submission's is `<group>-<full name>`.

The Canvas gradebook export (instructure/canvas-lms, lib/gradebook_exporter.rb): header `Student`
(or `LastName`,`FirstName`), `ID` (the Canvas user id of the file names), `SIS User ID`, `SIS Login
ID`, optionally `Integration ID` and `Root Account`, `Section`, then custom columns, one column per
assignment and the totals; then perhaps a "Manual Posting" row and a `    Points Possible` row, whose
ID is empty; students by sortable name ("Smith, John"), a name starting with `=` written as
`="..."`; the course's Test Student ("Student, Test", no SIS ids) last.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from grader.csvfile import read_csv_rows
from grader.csvmessages import config_error, shown
from grader.escape import safe_file_name
from grader.roster import Roster, RosterEntry, load_roster
from grader.submission.spec import STUDENT_ID
from grader.yamlfile import ConfigError

CANVAS = "canvas"
MOODLE = "moodle"

_CANVAS_FILE = re.compile(
    r"(?:(?P<name>[^/]*?)_)?(?:(?P<late>LATE)_)?(?P<user>\d+|anon_[A-Za-z0-9]+)_"
    r"(?:(?P<attachment>\d+)_(?P<original>[^/]+)|(?P<kind>text|link)\.html)")
_MOODLE_PREFIX = re.compile(r"(?P<name>[^_/]*)_(?P<user>\d+)_assignsubmission_(?P<plugin>[a-z0-9]+)_(?P<rest>[^/]*)")
_RESUBMITTED = re.compile(r"(?P<stem>.+?)-(?P<number>[1-9][0-9]{0,2})(?P<suffix>(?:\.[A-Za-z0-9]+)*)")
_NOT_NAME = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class LmsEntry:
    """One entry of the bulk download, read from its name: whose (the LMS's id for the student and
    the name as written), the path it has inside the student's submission, and what Canvas says."""

    lms: str                # CANVAS or MOODLE
    user: str               # Canvas user id (or anon_...), Moodle participant id
    name: str               # the name part as the LMS wrote it
    path: tuple[str, ...]   # inside the student's folder
    late: bool = False
    attachment: int = 0     # Canvas's attachment id: a later upload has a larger one


def parse_entry(parts: tuple[str, ...]) -> LmsEntry | None:
    """The entry whose safe path parts are `parts`, or None when neither LMS names files so."""
    first = parts[0]
    moodle = _MOODLE_PREFIX.fullmatch(first)
    if moodle is not None:
        rest = moodle["rest"]
        if rest and len(parts) == 1:  # flat layout: the file name follows the prefix
            path: tuple[str, ...] = (rest,)
        elif not rest and len(parts) > 1:  # folder layout
            path = parts[1:]
        else:
            return None
        return LmsEntry(MOODLE, moodle["user"], moodle["name"], path)
    canvas = _CANVAS_FILE.fullmatch(first) if len(parts) == 1 else None
    if canvas is None:
        return None
    original = canvas["original"] or f"{canvas['kind']}.html"
    return LmsEntry(CANVAS, canvas["user"], canvas["name"] or "", (original,), late=bool(canvas["late"]),
                    attachment=int(canvas["attachment"] or 0))


def resubmitted_name(name: str) -> tuple[str, int]:
    """`model-2.py` -> (`model.py`, 2): the name Canvas renamed a resubmitted file from, and its
    number; (name, 0) for a name without such a suffix."""
    match = _RESUBMITTED.fullmatch(name)
    if match is None:
        return name, 0
    return match["stem"] + match["suffix"], int(match["number"])


def name_key(text: str) -> str:
    """A name reduced to its letters and digits, case-folded (NFKC): Canvas's `smithjohn`,
    Moodle's `John Smith` and the roster's `Smith, John` compare by these keys."""
    return _NOT_NAME.sub("", unicodedata.normalize("NFKC", text).casefold())


def roster_name_keys(name: str) -> set[str]:
    """Every key a roster name may appear under in a download: as written, and with the family name
    moved (`Smith, John` -> `John Smith`; `John Smith` -> `Smith John`, Canvas's sortable order)."""
    keys = {name_key(name)}
    if "," in name:
        last, _, first = name.partition(",")
        keys.add(name_key(first + last))
    else:
        words = name.split()
        if len(words) >= 2:
            keys.add(name_key(words[-1] + "".join(words[:-1])))
    keys.discard("")
    return keys


# --- the roster: the grader's roster.csv, or a Canvas gradebook export -----------------------------

CANVAS_REQUIRED = ("id",)
_TEST_STUDENT = "student, test"


def read_collect_roster(path: Path) -> tuple[Roster, str]:
    """The roster for `grader collect`, and which kind of file it was ("roster.csv" or "Canvas
    gradebook"). A Canvas gradebook export (its header has `ID` and `Student` or `LastName`) gives
    each student: student_id = the SIS User ID, else the SIS Login ID (made a safe name when it is
    an e-mail address or holds other characters), else `canvas-<ID>`; name = Student; folder = ID,
    the Canvas user id the download's file names carry. The Points Possible and Manual Posting rows
    and the Test Student are left out. Anything else is read as the grader's roster.csv."""
    header = _header(path)
    if "id" in header and ("student" in header or "lastname" in header) and "student_id" not in header:
        return _gradebook_roster(path, header), "Canvas gradebook"
    return load_roster(path), "roster.csv"


def _header(path: Path) -> list[str]:
    """The first line's cells, case-folded; [] when it cannot be read (load_roster then says why)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            line = handle.readline(1 << 16)
    except (OSError, UnicodeDecodeError):
        return []
    try:
        return [cell.strip().casefold() for cell in next(csv.reader([line]), [])]
    except csv.Error:
        return []


def _gradebook_roster(path: Path, header: list[str]) -> Roster:
    problems: list[str] = []
    optional = tuple(dict.fromkeys(cell for cell in header if cell and cell not in CANVAS_REQUIRED))
    rows = read_csv_rows(path, CANVAS_REQUIRED, optional, problems=problems, max_cell_chars=4000)
    entries: list[RosterEntry] = []
    ids: dict[str, int] = {}
    for line, row in rows:
        canvas_id = row["id"].strip()
        name = _gradebook_name(row)
        if not canvas_id:
            continue  # Points Possible, Manual Posting
        where = f"{path}:{line}"
        if not canvas_id.isdigit():
            problems.append(f"{where}: ID: {shown(canvas_id)} is not a Canvas user id (digits)")
            continue
        sis_user, sis_login = row.get("sis user id", "").strip(), row.get("sis login id", "").strip()
        if name.casefold() == _TEST_STUDENT and not sis_user and not sis_login:
            continue
        student_id = _student_id(sis_user or sis_login, canvas_id)
        if student_id in ids:
            problems.append(f"{where}: {shown(student_id)} is the id of line {ids[student_id]} too; one row a "
                            "student")
            continue
        ids[student_id] = line
        entries.append(RosterEntry(student_id, name, canvas_id, line))
    if problems:
        raise config_error(path, problems)
    if not entries:
        raise ConfigError(path, [f"{path}: a Canvas gradebook export with no student rows"])
    return Roster(tuple(entries))


def _gradebook_name(row: dict[str, str]) -> str:
    name = row.get("student", "").strip()
    if not name:
        last, first = row.get("lastname", "").strip(), row.get("firstname", "").strip()
        name = f"{last}, {first}" if last and first else last or first
    if name.startswith('="') and name.endswith('"'):  # Canvas's guard against a formula
        name = name[2:-1]
    return name


def _student_id(sis: str, canvas_id: str) -> str:
    if sis and STUDENT_ID.fullmatch(sis):
        return sis
    if sis:
        local = sis.partition("@")[0]
        return local if STUDENT_ID.fullmatch(local) and "@" in sis else safe_file_name(sis)
    return f"canvas-{canvas_id}"
