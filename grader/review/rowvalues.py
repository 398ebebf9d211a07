"""Between the store's rows and its values: the lookups that check a student, a criterion or a
question exist (raising the Unknown* errors), and each row turned into its frozen value."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.review.schema import CommentRow, CriterionRow, RegradeRow, ScoreHistoryRow, ScoreRow, Student
from grader.review.values import (HistoryEntry, RegradeRequest, ReusableComment, SavedScore, StudentInfo,
                                  UnknownCriterion, UnknownQuestion, UnknownStudent, from_json, to_json)


def criterion_of(session: Session, student_id: str, criterion_id: str) -> CriterionRow:
    """The criterion, after checking that both it and the student are in the store."""
    where = f"{student_id}, {criterion_id}"
    if not isinstance(student_id, str) or session.get(Student, student_id) is None:
        raise UnknownStudent(f"{where}: the student {student_id!r} is not in this review (import the class first)")
    criterion = session.get(CriterionRow, criterion_id) if isinstance(criterion_id, str) else None
    if criterion is None:
        raise UnknownCriterion(f"{where}: the criterion {criterion_id!r} is not in the rubric")
    return criterion


def check_question(session: Session, question_id: str) -> None:
    if session.scalar(select(CriterionRow.id).filter_by(question_id=question_id).limit(1)) is None:
        raise UnknownQuestion(f"{question_id}: not a question of the rubric")


def columns(value: dict) -> dict:
    return {"score": value["score"], "items": json.dumps(value["items"], ensure_ascii=False),
            "adjustment": value["adjustment"], "adjustment_comment": value["adjustment_comment"],
            "comment": value["comment"]}


def saved(row: ScoreRow) -> SavedScore:
    return SavedScore(row.student_id, row.criterion_id, row.score, tuple(json.loads(row.items)), row.adjustment,
                      row.adjustment_comment, row.comment, row.grader, row.updated_at, row.version)


def record(session: Session, row: ScoreRow, grader: str, now: datetime, old: dict | None, new: dict,
           applied: bool) -> None:
    session.add(ScoreHistoryRow(student_id=row.student_id, criterion_id=row.criterion_id, grader=grader,
                                changed_at=now, old_value=to_json(old), new_value=to_json(new) or "{}",
                                applied=applied))
    session.flush()


def history_entry(row: ScoreHistoryRow) -> HistoryEntry:
    return HistoryEntry(row.student_id, row.criterion_id, row.grader, row.changed_at, from_json(row.old_value),
                        from_json(row.new_value) or {}, row.applied)


def student_value(row: Student) -> StudentInfo:
    return StudentInfo(row.student_id, row.name, row.status, row.folder)


def comment_value(row: CommentRow) -> ReusableComment:
    return ReusableComment(row.id, row.question_id, row.text, row.created_by, row.created_at)


def regrade_value(row: RegradeRow) -> RegradeRequest:
    return RegradeRequest(row.id, row.student_id, row.criterion_id, row.text, row.created_at, row.status,
                          row.resolution, row.resolved_by, row.resolved_at)


def plain_points(points: float) -> str:
    """Points as a plain decimal that grader.plaindecimal reads back ('0.5', '1', never '1e-05')."""
    return format(Decimal(repr(points + 0.0)).normalize(), "f")
