"""gradebook.csv: one row a student (pandas)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from grader.atomic import atomic_write_text
from grader.result import Result

LEADING_COLUMNS = ["student_id", "name", "status"]


def gradebook_frame(results: Sequence[Result]) -> pd.DataFrame:
    """student_id, name, status, one column per question, total, max_total, then accuracy,
    whether manual scores are still missing, and the first error (the contract's columns first)."""
    question_ids = sorted({q.id for r in results for q in r.questions}, key=lambda q: int(q[1:]))
    rows = []
    for result in sorted(results, key=lambda r: r.student_id):
        row = {"student_id": result.student_id, "name": result.name, "status": result.status}
        for question_id in question_ids:
            question = result.question(question_id)
            row[question_id] = question.score if question else 0.0
        row |= {"total": result.score, "max_total": result.max_score, "accuracy": result.accuracy,
                "manual_pending": result.pending_manual,
                "error": result.errors[0].message if result.errors else ""}
        rows.append(row)
    columns = LEADING_COLUMNS + question_ids + ["total", "max_total", "accuracy", "manual_pending", "error"]
    return pd.DataFrame(rows, columns=columns)


def write_gradebook(results: Sequence[Result], path: Path) -> None:
    atomic_write_text(path, gradebook_frame(results).to_csv(index=False, float_format="%.4g"))
