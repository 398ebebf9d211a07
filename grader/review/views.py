"""What the review page shows of one student for one question, assembled from the stored result
(result.json) and the store: the written answer, the automatic criteria with their measured values,
the figures, and each manual criterion with its rubric items and the saved score. Plain data for
the JSON API; the page escapes every string it shows (answers stay plain text)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from grader.report.claim_text import claim_line
from grader.result import Result
from grader.review.store import ReviewStore
from grader.review.values import Assignment, SavedScore
from grader.scoring.rubric import Question, Rubric

ORDERS = ("id", "shuffle")


def manual_criteria(question: Question) -> list[dict[str, Any]]:
    return [{"id": c.id, "description": c.description, "points": c.points,
             "items": [item.model_dump() for item in c.items]} for c in question.criteria if c.manual]


def question_summary(question: Question, store: ReviewStore, owners: Owners) -> dict[str, Any]:
    progress = store.question_progress(question.id)
    return {"id": question.id, "title": question.title, "points": question.points,
            "manual": manual_criteria(question), "progress": {"graded": progress.graded, "total": progress.total},
            "assigned_to": owners.questions.get(question.id, "")}


@dataclass(frozen=True)
class Owners:
    """Who each question and student is assigned to: the latest assignment wins, so a TA can hand
    work on by assigning it again."""

    questions: dict[str, str]
    students: dict[str, str]

    @classmethod
    def of(cls, assignments: list[Assignment]) -> Owners:
        questions = {a.question_id: a.ta for a in assignments if a.question_id is not None}
        students = {a.student_id: a.ta for a in assignments if a.student_id is not None}
        return cls(questions, students)

    def is_mine(self, ta: str, question_id: str, student_id: str) -> bool:
        """A student is a TA's for a question when the student is assigned to them, or the question is
        and the student is not assigned to someone else."""
        owner = self.students.get(student_id)
        return owner == ta if owner is not None else self.questions.get(question_id) == ta


def plain(value: Any) -> dict[str, Any]:
    """A store value (a dataclass) as JSON-ready data: its times in ISO 8601."""
    return {key: field.isoformat() if isinstance(field, datetime) else field for key, field in asdict(value).items()}


def saved(score: SavedScore | None) -> dict[str, Any] | None:
    return None if score is None else plain(score)


def student_order(student_ids: list[str], order: str, grader: str) -> list[str]:
    """Students by id, or in a shuffle that is stable for each TA (the same TA always sees the same
    order; two TAs see different ones), to counter the order bias of grading."""
    if order == "shuffle":
        return sorted(student_ids, key=lambda s: hashlib.sha256(f"{grader}\0{s}".encode()).hexdigest())
    return sorted(student_ids)


def student_view(result: Result, question: Question, store: ReviewStore) -> dict[str, Any]:
    """One student's evidence and scores for one question."""
    scored = result.question(question.id)
    automatic = [] if scored is None else [
        {"id": c.id, "description": c.description, "score": c.score, "max_score": c.max_score, "value": c.value,
         "interval": c.interval, "borderline": c.borderline, "threshold": c.threshold, "message": c.message}
        for c in scored.criteria if not c.manual]
    figures = [{"url": f"/files/{quote(result.student_id)}/{quote(f.path)}", "caption": f.caption}
               for f in result.figures if f.question == question.id]
    requests = store.regrade_requests(student_id=result.student_id)
    manual = [{**criterion, "saved": saved(store.score(result.student_id, criterion["id"])),
               "regrades": [plain(r) for r in requests if r.criterion_id == criterion["id"]]}
              for criterion in manual_criteria(question)]
    claims = [asdict(claim_line(claim)) for claim in result.claims if claim.question == question.id]
    return {"student_id": result.student_id, "name": result.name, "status": result.status,
            "answer": result.answers.get(question.id, ""), "claims": claims, "automatic": automatic, "figures": figures,
            "manual": manual, "report": f"/files/{quote(result.student_id)}/report.pdf"}


def find_question(rubric: Rubric, question_id: str) -> Question | None:
    return next((q for q in rubric.questions if q.id == question_id), None)
