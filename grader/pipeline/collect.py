"""`grader collect DOWNLOAD.zip --roster ROSTER --out submissions/`: an LMS's bulk download made into
one submission folder per student, named by student id, ready for `grader grade` (issue 18).

The download's file names (grader.pipeline.lms_names: Canvas and Moodle, as their source writes
them) say whose each file is, by the LMS's own id for the student; the roster says who that is: the
grader's roster.csv (its `folder`/`lms_id` column holds the Canvas user id or the Moodle participant
id) or a Canvas gradebook export (its `ID` column). A file whose id no roster row has is placed by
the student's name only when exactly one roster student without an LMS id has that name, and the
report says so; otherwise it is listed as not placed, with why.

Per student:
- Canvas's resubmission copies (`model-1.py` for a second `model.py`) are collected under the name
  they were resubmitted for when the student also has that name, or it is submission.yaml or
  report.md, or the student's submission.yaml names it (model.source, model.weights) and not the
  copy; of several files for one name the latest is kept (the larger number, then the larger Canvas
  attachment id) and the others are listed;
- a zip the student handed in is unpacked into their folder (one level: a zip inside it stays a
  file), under the same rules as the download, with one top folder inside it dropped (`hw3/model.py`
  -> `model.py`) and macOS's `__MACOSX/` and `.DS_Store` left out; a loose file of the same name
  wins; a zip that breaks a rule is not unpacked, and is listed;
- late: Canvas's `LATE` marker on any of their files (Moodle's download has no such marker).

The download is untrusted: every entry's name, type, count and size is checked
(grader.pipeline.ziparchive) before anything is written, and a name that could leave the output
folder, a link or a special file, too many entries or bytes refuse the whole download (neither LMS
writes such an entry, so the file was made or changed by someone else); nothing is written outside
--out. Everything is written into a staging folder beside --out and renamed to --out at the end, so
a failure (a full disk included) leaves no half-collected folder; an --out that exists must be an
empty folder. `OUT/collect-report.csv` lists every student collected, late, missing, every file not
placed and every note, one row each.
"""

from __future__ import annotations

import csv
import io
import lzma
import os
import secrets
import shutil
import struct
import tempfile
import zipfile
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from grader.atomic import atomic_write_text, make_directories, publish_modes
from grader.escape import csv_cell
from grader.outfolder import is_disk_error, translate_disk_full
from grader.pipeline.lms_names import CANVAS, LmsEntry, name_key, parse_entry, resubmitted_name, roster_name_keys
from grader.pipeline.ziparchive import (
    ArchiveError,
    ZipLimits,
    check_totals,
    copy_entry,
    entry_parts,
    entry_problem,
)
from grader.roster import Roster, RosterEntry

REPORT_NAME = "collect-report.csv"
DOWNLOAD_LIMITS = ZipLimits(max_entries=100_000, max_bytes=64 << 30)
"""A whole class's download: 300 students of a few files each and weights of up to 100 MB fit well."""
STUDENT_LIMITS = ZipLimits(max_entries=10_000, max_bytes=1024 << 20)
"""One student's files, their own zip unpacked: the cpu profile's submission_entries and
submission_mb (grader.profile), so a collected folder is one `grader grade` can scan."""
MAX_DEPTH = 32
"""Path parts inside a student's folder: the profile's submission_depth."""
MAX_SPEC_BYTES = 64 << 10
"""submission.yaml is read (to follow Canvas's renames) only up to the size grading reads."""
SPEC_NAMES = ("submission.yaml", "report.md")
_MAC_METADATA = ("__MACOSX", ".DS_Store")


class CollectError(Exception):
    """The download cannot be collected at all; nothing was written. str() says why."""


@dataclass(frozen=True)
class Unplaced:
    entry: str      # the entry's name in the download (or `student zip!inner name`)
    reason: str
    student_id: str = ""


@dataclass(frozen=True)
class Collected:
    student: RosterEntry
    files: int
    late: bool
    by_name: bool   # placed by the student's name (the LMS id was not in the roster)
    lms_ids: tuple[str, ...]


@dataclass
class CollectReport:
    out: Path
    roster_kind: str = "roster.csv"
    collected: list[Collected] = field(default_factory=list)
    missing: list[RosterEntry] = field(default_factory=list)
    unplaced: list[Unplaced] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)   # (student_id, what was done)
    formats: dict[str, int] = field(default_factory=dict)      # LMS -> files read

    @property
    def late(self) -> list[Collected]:
        return [item for item in self.collected if item.late]


@dataclass
class _Candidate:
    member: zipfile.ZipInfo
    entry: LmsEntry
    path: tuple[str, ...]
    rank: tuple[int, int] = (0, 0)


@dataclass
class _Student:
    roster: RosterEntry
    candidates: list[_Candidate] = field(default_factory=list)
    by_name: bool = False
    lms_ids: set[str] = field(default_factory=set)


def collect(download: Path, roster: Roster, out: Path, *, roster_kind: str = "roster.csv",
            download_limits: ZipLimits = DOWNLOAD_LIMITS, student_limits: ZipLimits = STUDENT_LIMITS) -> CollectReport:
    """Collect `download` into `out` (see the module's docstring); CollectError when it cannot be."""
    download, out = Path(download), Path(os.path.abspath(out))
    _check_out(out)
    if not download.is_file() or not zipfile.is_zipfile(download):
        raise CollectError(f"{download} is not a zip file (Canvas's 'Download Submissions' or Moodle's "
                           "'Download all submissions' gives one)")
    report = CollectReport(out=out, roster_kind=roster_kind)
    try:
        archive = zipfile.ZipFile(download)
    except (zipfile.BadZipFile, OSError) as error:
        raise CollectError(f"{download}: not a readable zip file ({error})") from None
    with archive:
        members = archive.infolist()
        _check_download(download, members, download_limits, out)
        students = _assign(members, roster, report)
        make_directories(out.parent)
        staging = out.parent / f".{out.name}.collect-{secrets.token_hex(4)}"
        with translate_disk_full(out, staging):
            staging.mkdir()
            for student in sorted(students.values(), key=lambda item: item.roster.line):
                _write_student(archive, student, staging, student_limits, report)
            placed = {item.student.student_id for item in report.collected}
            report.missing = [entry for entry in roster.entries if entry.student_id not in placed]
            atomic_write_text(staging / REPORT_NAME, _report_csv(report))
            publish_modes(staging)
            if out.is_dir():
                out.rmdir()  # checked empty above; a file put there meanwhile makes this fail, not vanish
            os.replace(staging, out)
    return report


def _check_out(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise CollectError(f"{out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        raise CollectError(f"{out} is not empty; collect into a new or empty folder (nothing already there is "
                           "ever replaced)")


def _check_download(download: Path, members: list[zipfile.ZipInfo], limits: ZipLimits, out: Path) -> None:
    """Every entry's name and type, their count and declared size: any problem refuses the download."""
    try:
        check_totals(members, limits, "a class's download")
    except ArchiveError as error:
        raise CollectError(f"{download}: {error}; not collected") from None
    problems = [problem for problem in (entry_problem(member, "the download") for member in members) if problem]
    if problems:
        more = f" (and {len(problems) - 1:,} more)" if len(problems) > 1 else ""
        raise CollectError(f"{download}: {problems[0]}{more}. Neither Canvas nor Moodle writes such an entry, so "
                           "this file was made or changed by someone else: nothing was collected")
    declared = sum(member.file_size for member in members)
    parent = out.parent if out.parent.exists() else Path.cwd()
    free = shutil.disk_usage(parent).free
    if declared > free:
        raise CollectError(f"{download} unpacks to {declared:,} bytes and {parent} has {free:,} free; "
                           "choose an --out on a disk with room")


def _assign(members: list[zipfile.ZipInfo], roster: Roster, report: CollectReport) -> dict[str, _Student]:
    """Each file of the download to its roster student, or to report.unplaced with why."""
    by_key: dict[str, list[RosterEntry]] = defaultdict(list)
    for entry in roster.entries:
        if not entry.folder:  # a student with an LMS id is placed by that id only
            for key in roster_name_keys(entry.name):
                by_key[key].append(entry)
    students: dict[str, _Student] = {}
    strip = _wrapper_depth(members)
    for member in members:
        if member.is_dir():
            continue
        full = entry_parts(member.filename) or ()
        parts = full[strip:]
        if _is_mac_metadata(full) or _is_mac_metadata(parts):
            report.unplaced.append(Unplaced(member.filename, "macOS metadata (__MACOSX, .DS_Store); left out"))
            continue
        entry = parse_entry(parts) if parts else None
        if entry is None:
            report.unplaced.append(Unplaced(member.filename, "not named the way Canvas or Moodle names a submission's "
                                                             "file, so whose it is is unknown"))
            continue
        report.formats[entry.lms] = report.formats.get(entry.lms, 0) + 1
        if entry.user.startswith("anon_"):
            report.unplaced.append(Unplaced(member.filename, "anonymous grading: Canvas gave no name or user id; "
                                                             "download again with the students' names shown"))
            continue
        found = roster.by_folder(entry.user)
        by_name = False
        if found is None:
            matches = {item.student_id: item for item in by_key.get(name_key(entry.name), [])}
            if len(matches) != 1:
                how = ("no roster student without an LMS id has that name" if not matches else
                       f"{len(matches)} roster students have that name ({', '.join(sorted(matches))})")
                report.unplaced.append(Unplaced(member.filename, f"LMS id {entry.user} is in no roster row's "
                                                                 f"folder/lms_id, and {how}"))
                continue
            found, by_name = next(iter(matches.values())), True
            other = students.get(found.student_id)
            if other is not None and other.by_name and entry.user not in other.lms_ids:
                # Two LMS accounts of one name: never merge two people's files into one folder.
                report.unplaced.append(Unplaced(member.filename, f"LMS id {entry.user} matches {found.student_id} "
                                                                 f"by name only, as LMS id {sorted(other.lms_ids)[0]} "
                                                                 "already does; add lms_id to the roster", found.student_id))
                continue
        if len(entry.path) > MAX_DEPTH:
            report.unplaced.append(Unplaced(member.filename, f"more than {MAX_DEPTH} folders deep", found.student_id))
            continue
        student = students.setdefault(found.student_id, _Student(found))
        student.by_name = student.by_name or by_name
        student.lms_ids.add(entry.user)
        student.candidates.append(_Candidate(member, entry, entry.path))
    return students


def _wrapper_depth(members: list[zipfile.ZipInfo]) -> int:
    """1 when every file of the download lies in one folder that is not an LMS's own (a download
    unpacked and zipped again, `HW3 submissions/smithjohn_...`): that folder is looked through."""
    paths = [entry_parts(member.filename) or () for member in members if not member.is_dir()]
    paths = [parts for parts in paths if not _is_mac_metadata(parts)]
    if not paths or any(len(parts) < 2 for parts in paths) or len({parts[0] for parts in paths}) != 1:
        return 0
    return 0 if parse_entry(paths[0][:1] + ("x",)) is not None else 1


def _is_mac_metadata(parts: tuple[str, ...]) -> bool:
    return any(part in _MAC_METADATA or part.startswith("._") for part in parts)


def _write_student(archive: zipfile.ZipFile, student: _Student, staging: Path, limits: ZipLimits,
                   report: CollectReport) -> None:
    sid = student.roster.student_id
    declared = sum(candidate.member.file_size for candidate in student.candidates)
    if declared > limits.max_bytes or len(student.candidates) > limits.max_entries:
        for candidate in student.candidates:
            report.unplaced.append(Unplaced(candidate.member.filename, f"{sid}'s files hold {declared:,} bytes in "
                                            f"{len(student.candidates):,} files, more than a submission may "
                                            f"({limits.max_bytes:,} bytes, {limits.max_entries:,} files)", sid))
        return
    chosen = _choose(archive, student, report)
    folder = staging / sid
    folder.mkdir()
    budget = _Budget(limits.max_bytes - sum(c.member.file_size for c in chosen),
                     limits.max_entries - len(chosen))
    written = 0
    zips: list[_Candidate] = []
    for candidate in chosen:
        if candidate.path[-1].lower().endswith(".zip"):
            zips.append(candidate)
            continue
        if _place(archive, candidate.member, folder, candidate.path, sid, report):
            written += 1
    for candidate in zips:
        written += _unpack_student_zip(archive, candidate, folder, budget, sid, report)
    if student.by_name:
        report.notes.append((sid, "placed by name: the LMS id " + ", ".join(sorted(student.lms_ids)) +
                             " is in no roster row (add it as the student's folder/lms_id to be sure)"))
    report.collected.append(Collected(student.roster, written, any(c.entry.late for c in student.candidates),
                                      student.by_name, tuple(sorted(student.lms_ids))))


def _choose(archive: zipfile.ZipFile, student: _Student, report: CollectReport) -> list[_Candidate]:
    """The file kept for each name: Canvas's resubmission copies under the name they stand for, the
    latest of several (see the module's docstring); the others are listed."""
    sid = student.roster.student_id
    names = {candidate.path for candidate in student.candidates}
    referenced = _spec_references(archive, student.candidates)
    for candidate in student.candidates:
        if candidate.entry.lms != CANVAS:
            continue
        original, number = resubmitted_name(candidate.path[-1])
        candidate.rank = (0, candidate.entry.attachment)
        if number and ((original,) in names or original in SPEC_NAMES or
                       (original in referenced and candidate.path[-1] not in referenced)):
            candidate.path, candidate.rank = (original,), (number, candidate.entry.attachment)
            report.notes.append((sid, f"{candidate.member.filename}: Canvas's resubmission copy, collected as "
                                      f"{original}"))
    kept: dict[tuple[str, ...], _Candidate] = {}
    for candidate in student.candidates:
        other = kept.get(candidate.path)
        if other is None:
            kept[candidate.path] = candidate
            continue
        newer, older = (candidate, other) if candidate.rank > other.rank else (other, candidate)
        kept[candidate.path] = newer
        report.unplaced.append(Unplaced(older.member.filename, f"an older copy of {'/'.join(candidate.path)}; "
                                        f"{newer.member.filename} is kept", sid))
    return list(kept.values())


def _spec_references(archive: zipfile.ZipFile, candidates: list[_Candidate]) -> set[str]:
    """The file names the student's submission.yaml gives as model.source and model.weights, read
    bounded; an unreadable one names none."""
    for candidate in candidates:
        if resubmitted_name(candidate.path[-1])[0] != "submission.yaml" or len(candidate.path) != 1:
            continue
        if candidate.member.file_size > MAX_SPEC_BYTES:
            continue
        try:
            with archive.open(candidate.member) as handle:
                spec = yaml.safe_load(handle.read(MAX_SPEC_BYTES + 1)[:MAX_SPEC_BYTES])
        except (yaml.YAMLError, zipfile.BadZipFile, OSError, ValueError, RuntimeError):
            continue
        model = spec.get("model") if isinstance(spec, dict) else None
        if isinstance(model, dict):
            return {value for key in ("source", "weights") if isinstance(value := model.get(key), str)}
    return set()


def _place(archive: zipfile.ZipFile, member: zipfile.ZipInfo, folder: Path, path: tuple[str, ...], sid: str,
           report: CollectReport, shown: str | None = None) -> bool:
    """Copy one entry to folder/path; a clash or a broken entry is listed, not raised."""
    target = folder.joinpath(*path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_entry(archive, member, target)
        return True
    except ArchiveError as error:
        report.unplaced.append(Unplaced(shown or member.filename, str(error), sid))
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        report.unplaced.append(Unplaced(shown or member.filename, f"{'/'.join(path)} is already in {sid}'s "
                                        "folder (a file and a folder, or two files, of one name)", sid))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, zlib.error,
            lzma.LZMAError, ValueError, struct.error) as error:
        report.unplaced.append(Unplaced(shown or member.filename, f"cannot be read from the zip: its bytes do not match the size or "
                                        f"checksum it declares ({error})", sid))
    except OSError as error:
        if is_disk_error(error):
            raise
        report.unplaced.append(Unplaced(shown or member.filename, f"cannot be written ({error.strerror})", sid))
    return False


@dataclass
class _Budget:
    bytes: int
    entries: int


def _unpack_student_zip(archive: zipfile.ZipFile, candidate: _Candidate, folder: Path, budget: _Budget, sid: str,
                        report: CollectReport) -> int:
    """Unpack a student's own zip into their folder (see the module's docstring); files written."""
    name = candidate.member.filename
    with tempfile.TemporaryDirectory(prefix=".student-zip-", dir=folder.parent) as scratch:
        copy = Path(scratch) / "student.zip"
        try:
            copy_entry(archive, candidate.member, copy)
            inner = zipfile.ZipFile(copy)
        except (ArchiveError, zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError, zlib.error,
                lzma.LZMAError, ValueError, struct.error) as error:  # UnicodeDecodeError: a bad UTF-8 name
            if is_disk_error(error):
                raise
            report.unplaced.append(Unplaced(name, f"{sid}'s zip is not unpacked: not a readable zip ({error})", sid))
            return 0
        with inner:
            members = [member for member in inner.infolist() if not member.is_dir()]
            problem = _student_zip_problem(inner.infolist(), members, budget)
            if problem is not None:
                report.unplaced.append(Unplaced(name, f"{sid}'s zip is not unpacked: {problem}", sid))
                return 0
            paths = [entry_parts(member.filename) or () for member in members]
            kept = [(member, parts) for member, parts in zip(members, paths) if parts and not _is_mac_metadata(parts)]
            top = {parts[0] for _, parts in kept}
            strip = 1 if len(top) == 1 and all(len(parts) > 1 for _, parts in kept) else 0
            written = 0
            for member, parts in kept:
                inside = parts[strip:]
                if len(inside) > MAX_DEPTH:
                    report.unplaced.append(Unplaced(f"{name}!{member.filename}", f"more than {MAX_DEPTH} folders deep",
                                                    sid))
                    continue
                if _place(inner, member, folder, inside, sid, report, shown=f"{name}!{member.filename}"):
                    written += 1
            budget.bytes -= sum(member.file_size for member, _ in kept)
            budget.entries -= len(kept)
            report.notes.append((sid, f"{name}: the student's zip, unpacked ({written} files)"))
            return written


def _student_zip_problem(everything: list[zipfile.ZipInfo], files: list[zipfile.ZipInfo],
                         budget: _Budget) -> str | None:
    for member in everything:
        problem = entry_problem(member, "a submission")
        if problem is not None:
            return problem
    try:
        check_totals(files, ZipLimits(max(budget.entries, 0), max(budget.bytes, 0)), "what is left of the submission")
    except ArchiveError as error:
        return str(error)
    return None


# --- the report ----------------------------------------------------------------------------------

REPORT_COLUMNS = ("kind", "student_id", "name", "lms_id", "entry", "detail")


def _report_csv(report: CollectReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    rows: list[tuple[str, ...]] = []
    for item in report.collected:
        detail = f"{item.files} files" + ("; placed by name" if item.by_name else "")
        rows.append(("collected", item.student.student_id, item.student.name, " ".join(item.lms_ids), "", detail))
    for item in report.late:
        rows.append(("late", item.student.student_id, item.student.name, " ".join(item.lms_ids), "",
                     "Canvas marked the submission LATE"))
    for entry in report.missing:
        rows.append(("missing", entry.student_id, entry.name, entry.folder, "", "nothing collected"))
    for unplaced in report.unplaced:
        rows.append(("unplaced", unplaced.student_id, "", "", unplaced.entry, unplaced.reason))
    for student_id, note in report.notes:
        rows.append(("note", student_id, "", "", "", note))
    writer.writerows([csv_cell(cell) for cell in row] for row in rows)
    return buffer.getvalue()
