"""gradebook.csv (one row a student, pandas) and Canvas's grade-import CSV.

Both files are opened in a spreadsheet, so every text cell leaves through `csv_cell` (formula
injection), in one place: `_write_csv`. The frames themselves hold the values as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from grader.atomic import atomic_write_text
from grader.escape import csv_cell
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


def _in_id_order(results: Sequence[Result]) -> list[Result]:
    """Results by student_id, then folder: two folders in conflict may claim the same id, and
    their rows must not swap places from one run to the next."""
    return sorted(results, key=lambda r: (r.student_id, r.folder))


def _question_score(result: Result, question_id: str) -> float | None:
    """A question's points: 0 for a failed submission (it was graded and earned nothing), empty for a
    conflict (it was not graded under that id at all, and a 0 would read as a grade)."""
    if result.status == "conflict":
        return None
    question = result.question(question_id)
    return question.score if question else 0.0


def gradebook_frame(results: Sequence[Result]) -> pd.DataFrame:
    """student_id, name, status, one column per question, total, max_total (the contract's columns
    first), then one column per criterion (its points; empty while a manual one awaits the TA),
    accuracy, whether manual scores are still missing, and the first error (for a conflict, which
    other folder claims the id). A conflict's question and total cells are empty."""
    question_ids, criterion_ids = _question_ids(results), _criterion_ids(results)
    rows = []
    for result in _in_id_order(results):
        row = {"student_id": result.student_id, "name": result.name, "status": result.status}
        row |= {question_id: _question_score(result, question_id) for question_id in question_ids}
        row |= {"total": None if result.status == "conflict" else result.score, "max_total": result.max_score}
        scores = {c.id: c.score for q in result.questions for c in q.criteria}
        row |= {criterion_id: scores.get(criterion_id) for criterion_id in criterion_ids}
        row |= {"accuracy": result.accuracy, "manual_pending": result.pending_manual,
                "error": result.errors[0].message if result.errors else ""}
        rows.append(row)
    columns = (LEADING_COLUMNS + question_ids + ["total", "max_total"] + criterion_ids
               + ["accuracy", "manual_pending", "error"])
    return pd.DataFrame(rows, columns=columns)


def write_gradebook(results: Sequence[Result], path: Path) -> None:
    _write_csv(gradebook_frame(results), path)


def canvas_frame(results: Sequence[Result], assignment: str = DEFAULT_ASSIGNMENT) -> pd.DataFrame:
    """Canvas's grade-import layout: Student, ID, SIS User ID, Section, then the assignment's
    column, with the "Points Possible" row Canvas's own export has under the header.

    Canvas matches rows on its ID or on the SIS User ID; the grader knows only the school's
    student id, so it goes in SIS User ID and ID stays empty. A failed submission scores 0. A
    conflict has no row: it was not graded under the id it claims, and an import would give that
    student someone else's points, or a 0 (`canvas_left_out` names them).
    """
    max_total = max((r.max_score for r in results), default=0.0)
    rows = [{"Student": "Points Possible", "ID": "", "SIS User ID": "", "Section": "", assignment: max_total}]
    rows += [{"Student": r.name or r.student_id, "ID": "", "SIS User ID": r.student_id, "Section": "",
              assignment: r.score} for r in _in_id_order(results) if r.status != "conflict"]
    return pd.DataFrame(rows, columns=CANVAS_COLUMNS + [assignment])


def canvas_left_out(results: Sequence[Result]) -> list[str]:
    """The student ids the Canvas file leaves out (each claimed by a submission in conflict), sorted, once each."""
    return sorted({r.student_id for r in results if r.status == "conflict"})


def write_canvas(results: Sequence[Result], path: Path, assignment: str = DEFAULT_ASSIGNMENT) -> list[str]:
    """Write the Canvas import file and return the student ids it left out (`canvas_left_out`), so
    that the caller can tell the TA whose grade still has to be settled by hand."""
    _write_csv(canvas_frame(results, assignment), path)
    return canvas_left_out(results)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """The one CSV sink: every text cell through `csv_cell` (a name like `=HYPERLINK(...)` is shown,
    not run, when a TA opens the file), numbers as numbers, written in one step."""
    text_columns = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    safe = frame.assign(**{str(c): frame[c].map(csv_cell) for c in text_columns})
    atomic_write_text(path, safe.to_csv(index=False, float_format="%.4g"))
