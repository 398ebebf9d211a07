"""What ReviewStore hands back (frozen dataclasses, detached from the database) and the errors it
raises. Every refusal of an input is a ReviewInputError, a ValueError whose message names the
student and the criterion: the web API answers it with a 4xx (UnknownStudent, UnknownCriterion,
UnknownQuestion and UnknownRegradeRequest with 404). A ScoreConflict is not an input error: the
save was well formed but another TA saved first (the API's 409), and it carries their value."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


class ReviewInputError(ValueError):
    """An input the store refuses: str() says which student, criterion or field and why."""


class UnknownStudent(ReviewInputError):
    pass


class UnknownCriterion(ReviewInputError):
    pass


class UnknownQuestion(ReviewInputError):
    pass


class UnknownRegradeRequest(ReviewInputError):
    pass


@dataclass(frozen=True)
class SavedScore:
    """One criterion's score for one student, as stored: the points, the checked rubric items, the
    adjustment and its comment, the comment for the student, who saved it, when, and its version
    (what the next save must name as expected_version)."""

    student_id: str
    criterion_id: str
    score: float
    items: tuple[str, ...]
    adjustment: float
    adjustment_comment: str
    comment: str
    grader: str
    updated_at: datetime
    version: int

    def value(self) -> dict[str, Any]:
        """The stored value as history keeps it (JSON-ready)."""
        value = asdict(self)
        for key in ("student_id", "criterion_id", "grader", "updated_at"):
            del value[key]
        value["items"] = list(self.items)
        return value


class ScoreConflict(Exception):
    """Another TA saved this criterion after the version the save was based on. `current` is their
    stored value (who, when, what); `attempted` the refused value, which history keeps as well."""

    def __init__(self, current: SavedScore, attempted: dict[str, Any], expected_version: int, grader: str) -> None:
        self.current, self.attempted, self.expected_version, self.grader = current, attempted, expected_version, grader
        when = current.updated_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        super().__init__(
            f"{current.student_id}, {current.criterion_id}: {current.grader} saved {current.score:g} points at {when} "
            f"(version {current.version}) after the version {expected_version} that {grader}'s save was based on; "
            f"{grader}'s {attempted['score']:g} points were not saved but are kept in the history: look at both "
            f"and save again with expected_version={current.version}")


@dataclass(frozen=True)
class HistoryEntry:
    """One save of a score (applied) or one refused as a conflict (not applied); old is None for the
    first save."""

    student_id: str
    criterion_id: str
    grader: str
    changed_at: datetime
    old: dict[str, Any] | None
    new: dict[str, Any]
    applied: bool


@dataclass(frozen=True)
class QuestionProgress:
    """Students with every manual criterion of the question scored, of the students to grade."""

    question_id: str
    graded: int
    total: int


@dataclass(frozen=True)
class ImportSummary:
    """What import_class found: students and criteria now in the store; result.json files it could
    not read (path, why), left out rather than stopping the import; and stored scores that the
    rubric's points no longer allow (a criterion made smaller: student_id, criterion_id, score,
    new maximum), which the export would write and `grader grade --manual` refuse until a TA
    saves them again; and the TA scores carried over from the results (an earlier --manual)."""

    students: int
    criteria: int
    unreadable: tuple[tuple[str, str], ...] = ()
    scores_above_maximum: tuple[tuple[str, str, float, float], ...] = ()
    carried: int = 0


@dataclass(frozen=True)
class StudentInfo:
    """A student of the review as the last import found them in OUT (status: graded, failed or conflict)."""

    student_id: str
    name: str
    status: str
    folder: str


@dataclass(frozen=True)
class ReusableComment:
    id: int
    question_id: str
    text: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class RegradeRequest:
    id: int
    student_id: str
    criterion_id: str
    text: str
    created_at: datetime
    status: str
    resolution: str
    resolved_by: str | None
    resolved_at: datetime | None


def to_json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def from_json(text: str | None) -> dict[str, Any] | None:
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class Assignment:
    """A question (question_id) or a student (student_id) given to one TA."""

    id: int
    ta: str
    question_id: str | None
    student_id: str | None
