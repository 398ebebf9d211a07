"""The TA's scores (`grader grade --manual scores.csv`): points for the manual criteria, and
overrides of automatic ones, each with an optional comment that the student's PDF shows.

scores.csv has a header row and the columns student_id, criterion, points, comment (comment may be
empty or left out). Every problem is reported at once as `file:line: field: what is wrong`,
before any submission runs.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from grader.scoring.rubric import Rubric
from grader.yamlfile import ConfigError

COLUMNS = ("student_id", "criterion", "points", "comment")
REQUIRED = COLUMNS[:3]


@dataclass(frozen=True)
class ManualScore:
    """One row of scores.csv."""

    student_id: str
    criterion: str
    points: float
    comment: str
    line: int


@dataclass(frozen=True)
class ManualScores:
    """The TA's scores by student id, then by criterion id."""

    by_student: dict[str, dict[str, ManualScore]]

    def of(self, student_id: str) -> dict[str, ManualScore]:
        return self.by_student.get(student_id, {})

    def students_not_in(self, student_ids: set[str]) -> list[str]:
        """Ids the TA scored that no graded submission has (a typo, or a student graded elsewhere)."""
        return sorted(set(self.by_student) - student_ids)

    @classmethod
    def none(cls) -> ManualScores:
        return cls({})


def load_manual_scores(path: str | Path, rubric: Rubric) -> ManualScores:
    """Read and check scores.csv against the rubric; raises ConfigError listing every problem."""
    path = Path(path)
    rows, problems = _read_rows(path)
    criteria = {c.id: c for q in rubric.questions for c in q.criteria}
    scores: dict[str, dict[str, ManualScore]] = {}
    for line, row in rows:
        where = f"{path}:{line}"
        student_id, criterion_id = row["student_id"].strip(), row["criterion"].strip()
        before = len(problems)
        if not student_id:
            problems.append(f"{where}: student_id: empty")
        criterion = criteria.get(criterion_id)
        if criterion is None:
            problems.append(f"{where}: criterion: '{criterion_id}' is not in the rubric; its criteria are "
                            f"{', '.join(criteria)}")
        points = _points(row["points"], where, problems)
        if criterion is not None and points is not None and not 0 <= points <= criterion.points:
            problems.append(f"{where}: points: {points:g} is outside 0..{criterion.points:g}, what "
                            f"'{criterion_id}' is worth")
        earlier = scores.get(student_id, {}).get(criterion_id)
        if earlier is not None:
            problems.append(f"{where}: criterion: {student_id} already has a score for '{criterion_id}' on "
                            f"line {earlier.line}; keep one")
        if len(problems) == before:
            comment = (row.get("comment") or "").strip()
            scores.setdefault(student_id, {})[criterion_id] = ManualScore(student_id, criterion_id, points, comment,
                                                                          line)
    if problems:
        raise ConfigError(path, problems)
    return ManualScores(scores)


def _read_rows(path: Path) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """The data rows with their line numbers; a file that cannot be read at all raises at once."""
    if not path.is_file():
        raise ConfigError(path, [f"{path}: file not found"])
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets often save a BOM
    except UnicodeDecodeError as error:
        raise ConfigError(path, [f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"]) from None
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise ConfigError(path, [f"{path}:1: header: missing column(s) {', '.join(missing)}; the header must be "
                                 f"{','.join(COLUMNS)}"])
    reader.fieldnames = header
    rows, problems = [], []
    for row in reader:
        line = reader.line_num
        if None in row:  # more cells than the header has columns
            problems.append(f"{path}:{line}: row has {len(header) + len(row[None])} cells, the header "
                            f"{len(header)}; quote a comment that holds a comma")
            continue
        if all(not (value or "").strip() for value in row.values()):
            continue
        rows.append((line, {key: value or "" for key, value in row.items()}))
    return rows, problems


def _points(text: str, where: str, problems: list[str]) -> float | None:
    try:
        points = float(text)
    except ValueError:
        problems.append(f"{where}: points: '{text}' is not a number")
        return None
    if not math.isfinite(points):
        problems.append(f"{where}: points: '{text}' is not a finite number")
        return None
    return points
