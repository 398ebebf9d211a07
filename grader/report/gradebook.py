"""gradebook.csv (one row a student, pandas) and Canvas's grade-import CSV."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from grader.atomic import atomic_write_text
from grader.result import Result

LEADING_COLUMNS = ["student_id", "name", "status"]
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "Section"]
DEFAULT_ASSIGNMENT = "Explain your CNN"


def _question_ids(results: Sequence[Result]) -> list[str]:
    return sorted({q.id for r in results for q in r.questions}, key=lambda q: int(q[1:]))


def _criterion_ids(results: Sequence[Result]) -> list[str]:
    """Every criterion id, in the rubric's order (the first result that has them all sets it)."""
    ordered: list[str] = []
    for result in results:
        for question in result.questions:
            ordered += [c.id for c in question.criteria if c.id not in ordered]
    return ordered


def gradebook_frame(results: Sequence[Result]) -> pd.DataFrame:
    """student_id, name, status, one column per question, total, max_total (the contract's columns
    first), then one column per criterion (its points; empty while a manual one awaits the TA),
    accuracy, whether manual scores are still missing, and the first error."""
    question_ids, criterion_ids = _question_ids(results), _criterion_ids(results)
    rows = []
    for result in sorted(results, key=lambda r: r.student_id):
        row = {"student_id": result.student_id, "name": result.name, "status": result.status}
        for question_id in question_ids:
            question = result.question(question_id)
            row[question_id] = question.score if question else 0.0
        row |= {"total": result.score, "max_total": result.max_score}
        scores = {c.id: c.score for q in result.questions for c in q.criteria}
        row |= {criterion_id: scores.get(criterion_id) for criterion_id in criterion_ids}
        row |= {"accuracy": result.accuracy, "manual_pending": result.pending_manual,
                "error": result.errors[0].message if result.errors else ""}
        rows.append(row)
    columns = (LEADING_COLUMNS + question_ids + ["total", "max_total"] + criterion_ids
               + ["accuracy", "manual_pending", "error"])
    return pd.DataFrame(rows, columns=columns)


def write_gradebook(results: Sequence[Result], path: Path) -> None:
    atomic_write_text(path, gradebook_frame(results).to_csv(index=False, float_format="%.4g"))


def canvas_frame(results: Sequence[Result], assignment: str = DEFAULT_ASSIGNMENT) -> pd.DataFrame:
    """Canvas's grade-import layout: Student, ID, SIS User ID, Section, then the assignment's
    column, with the "Points Possible" row Canvas's own export has under the header.

    Canvas matches rows on its ID or on the SIS User ID; the grader knows only the school's
    student id, so it goes in SIS User ID and ID stays empty. A failed submission scores 0.
    """
    max_total = max((r.max_score for r in results), default=0.0)
    rows = [{"Student": "Points Possible", "ID": "", "SIS User ID": "", "Section": "", assignment: max_total}]
    rows += [{"Student": r.name or r.student_id, "ID": "", "SIS User ID": r.student_id, "Section": "",
              assignment: r.score} for r in sorted(results, key=lambda r: r.student_id)]
    return pd.DataFrame(rows, columns=CANVAS_COLUMNS + [assignment])


def write_canvas(results: Sequence[Result], path: Path, assignment: str = DEFAULT_ASSIGNMENT) -> None:
    atomic_write_text(path, canvas_frame(results, assignment).to_csv(index=False, float_format="%.4g"))
