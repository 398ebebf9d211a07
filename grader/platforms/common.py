"""What both platforms' results say about one graded Result, before either platform's escaping.

Points: the platforms get the automatic criteria's points only. A manual criterion (the written
answers) is graded by the TA on the platform itself (Gradescope's manual grading, PrairieLearn's
manual points), so it is listed with 0 of 0 points and a note saying what it is worth; counting its
points here would either hand them out unearned or fail everyone until the TA has read the answer.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from grader.atomic import atomic_write_text
from grader.result import CriterionResult, QuestionResult, Result

STAFF_PROBLEM = ("This is a problem with the course's autograder, not with your submission: tell the course "
                 "staff, and include this message.")


@dataclass(frozen=True)
class Row:
    """One rubric criterion as a platform's test: its number ("1.2"), name and the criterion."""

    number: str
    name: str
    question: QuestionResult
    criterion: CriterionResult

    @property
    def manual(self) -> bool:
        return self.criterion.manual

    @property
    def points(self) -> float:
        """Points this test awards: the automatic score; 0 for a manual criterion (the TA's)."""
        if self.manual or self.criterion.score is None:
            return 0.0
        return finite(self.criterion.score)

    @property
    def max_points(self) -> float:
        return 0.0 if self.manual else finite(self.criterion.max_score)


def rows(result: Result) -> list[Row]:
    """Every criterion of every question, in the rubric's order, numbered question.criterion."""
    listed = []
    for q_index, question in enumerate(result.questions, start=1):
        for c_index, criterion in enumerate(question.criteria, start=1):
            description = criterion.description or criterion.id
            listed.append(Row(number=f"{q_index}.{c_index}", name=f"{question.id} {description}",
                              question=question, criterion=criterion))
    return listed


def automatic_points(result: Result) -> tuple[float, float]:
    """(earned, possible) over the automatic criteria."""
    listed = [row for row in rows(result) if not row.manual]
    return round(sum(row.points for row in listed), 6), round(sum(row.max_points for row in listed), 6)


def manual_points(result: Result) -> float:
    return round(sum(finite(row.criterion.max_score) for row in rows(result) if row.manual), 6)


def finite(value: float | None, default: float = 0.0) -> float:
    return default if value is None or not math.isfinite(value) else float(value)


def criterion_lines(row: Row) -> list[tuple[str, bool]]:
    """What a test says, as (text, is_student_text) pairs: the sink escapes the student's text.
    The rubric's text and the grader's numbers are the course's; a criterion's message can carry a
    submission's exception text."""
    criterion = row.criterion
    if row.manual:
        return [(f"Graded by the TA ({criterion.max_score:g} points): 0 here until the TA has read your "
                 "answer.", False)]
    lines: list[tuple[str, bool]] = []
    if criterion.value is not None and math.isfinite(criterion.value):
        interval = (f" (95% interval {criterion.interval[0]:.3g} to {criterion.interval[1]:.3g})"
                    if criterion.interval and all(math.isfinite(end) for end in criterion.interval) else "")
        lines.append((f"Measured {criterion.value:.3g}{interval}.", False))
    if criterion.borderline:
        lines.append(("Borderline: the interval reaches into a better band; points need the whole interval "
                      "inside a band.", False))
    if criterion.threshold:
        lines.append((f"Points for {criterion.threshold}.", False))
    if criterion.message:
        lines.append((criterion.message, True))
    if not lines:
        lines.append((f"{row.points:g} of {row.max_points:g} points.", False))
    return lines


def write_json(path: Path, document: dict) -> None:
    """The results file, strict JSON (no NaN), ASCII only (every platform reads that)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json_text(document))


def json_text(document: dict) -> str:
    return json.dumps(document, indent=1, ensure_ascii=True, allow_nan=False) + "\n"
