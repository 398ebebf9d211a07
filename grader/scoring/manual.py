"""The TA's scores (`grader grade --manual scores.csv`): points for the manual criteria, and
overrides of automatic ones, each with an optional comment that the student's PDF shows.

scores.csv has a header row and the columns student_id, criterion, points, comment (comment may be
empty or left out). It is read by grader.csvfile: every problem is reported at once as
`file:line: field: what is wrong`, before any submission runs. Points are plain decimals ('1', '0.5',
'.5'); a comment is kept exactly as written, line breaks included, when it is quoted.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from grader.csvfile import read_csv_rows
from grader.csvmessages import config_error, shown
from grader.plaindecimal import plain_decimal
from grader.result import RegradeNote
from grader.scoring.rubric import Criterion, Rubric
from grader.submission.spec import STUDENT_ID

COLUMNS = ("student_id", "criterion", "points", "comment")
REQUIRED = COLUMNS[:3]
_DECIMAL_COMMA = re.compile(r"[0-9]*,[0-9]+")


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
    """The TA's scores by student id, then by criterion id; and the students' regrade requests with
    their resolutions (from the review workspace), the same way."""

    by_student: dict[str, dict[str, ManualScore]]
    regrades: dict[str, dict[str, tuple[RegradeNote, ...]]] = field(default_factory=dict)

    def of(self, student_id: str) -> dict[str, ManualScore]:
        return self.by_student.get(student_id, {})

    def regrades_of(self, student_id: str) -> dict[str, tuple[RegradeNote, ...]]:
        return self.regrades.get(student_id, {})

    def students_not_in(self, student_ids: set[str]) -> list[str]:
        """Ids the TA scored that no graded submission has (a typo, or a student graded elsewhere)."""
        return sorted(set(self.by_student) - student_ids)

    def unknown_students(self, student_ids: Collection[str], limit: int = 3) -> tuple[int, list[str]]:
        """How many ids the TA scored that no graded submission has, and the first `limit` of them in
        sorted order: enough to spot a typo in one warning line, even when the file is another
        class's with thousands of ids (format it with grader.csvmessages.summarize_ids)."""
        unknown = self.by_student.keys() - set(student_ids)
        return len(unknown), heapq.nsmallest(limit, unknown)

    @classmethod
    def none(cls) -> ManualScores:
        return cls({})


def load_manual_scores(path: str | Path, rubric: Rubric) -> ManualScores:
    """Read and check scores.csv against the rubric; raises ConfigError listing every problem, so
    the TA fixes the file once instead of once per run."""
    path = Path(path)
    criteria = {c.id: c for q in rubric.questions for c in q.criteria}
    problems: list[str] = []
    rows = read_csv_rows(path, REQUIRED, COLUMNS[3:], problems=problems,
                         looks_like_row=lambda row: row.get("criterion", "").strip() in criteria,
                         comma_hint="quote a comment that holds a comma")
    scores: dict[str, dict[str, ManualScore]] = {}
    for line, row in rows:
        score = _score(f"{path}:{line}", line, row, criteria, scores, problems)
        if score is not None:
            scores.setdefault(score.student_id, {})[score.criterion] = score
    if problems:
        raise config_error(path, problems)
    return ManualScores(scores)


def _score(where: str, line: int, row: Mapping[str, str], criteria: Mapping[str, Criterion],
           scores: Mapping[str, Mapping[str, ManualScore]], problems: list[str]) -> ManualScore | None:
    """One row as a score, or None with its problems added."""
    before = len(problems)
    student_id, criterion_id = row["student_id"].strip(), row["criterion"].strip()
    _check_student_id(where, student_id, problems)
    criterion = criteria.get(criterion_id)
    if criterion is None:
        problems.append(f"{where}: criterion: {shown(criterion_id)} is not in the rubric; its criteria are "
                        f"{', '.join(criteria)}")
    points = _points(row["points"].strip(), where, problems)
    if criterion is not None and points is not None and not 0 <= points <= criterion.points:
        problems.append(f"{where}: points: {points:g} is outside 0..{criterion.points:g}, what "
                        f"'{criterion_id}' is worth")
    earlier = scores.get(student_id, {}).get(criterion_id)
    if earlier is not None:
        problems.append(f"{where}: criterion: {student_id} already has a score for '{criterion_id}' on "
                        f"line {earlier.line}; keep one")
    if len(problems) > before or points is None:
        return None
    return ManualScore(student_id, criterion_id, points, row["comment"], line)


def _check_student_id(where: str, student_id: str, problems: list[str]) -> None:
    """A graded id is always letters, digits, _ and -, so any other id can never be matched."""
    if not student_id:
        problems.append(f"{where}: student_id: empty")
    elif not STUDENT_ID.fullmatch(student_id):
        problems.append(f"{where}: student_id: {shown(student_id)} may use only letters, digits, _ and - "
                        f"(no submission can have this id)")


def _points(text: str, where: str, problems: list[str]) -> float | None:
    """The points as a plain decimal; '0.2_5', '1e3' or 'nan' are typos, not scores."""
    points = plain_decimal(text)
    if points is not None:
        return points
    if not text:
        problems.append(f"{where}: points: empty; give the points, e.g. 1 or 0.5")
    elif _DECIMAL_COMMA.fullmatch(text):
        problems.append(f"{where}: points: {shown(text)} has a decimal comma; write it with a point, e.g. 0.5")
    else:
        problems.append(f"{where}: points: {shown(text)} is not a plain decimal number; write it like 1, 0.5 or .5")
    return None
