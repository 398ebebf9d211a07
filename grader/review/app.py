"""The review workspace's web app (FastAPI): a JSON API under /api over the store
(grader.review.store) and the graded output folder, and the figures and PDFs under /files (only
files inside the output folder, only figures and reports). Guards: grader.review.security.

API (JSON; every POST needs the page's X-CSRF-Token header):
  GET  /api/questions                                  questions, their manual criteria and progress
  GET  /api/questions/{q}/students?order=id|shuffle&grader=NAME&show=all|ungraded|conflicts|regrades|mine
  GET  /api/questions/{q}/students/{student_id}        answer, automatic criteria, figures, manual scores
  POST /api/scores                                     save a score (409 with the other TA's value on conflict)
  POST /api/items                                      new points for a rubric item: its students scored again
  GET  /api/history/{student_id}/{criterion_id}        every change: who, when, old and new
  GET  /api/assignments, POST /api/assignments         questions or students given to TAs (latest wins)
  GET  /api/questions/{q}/comments, POST the same      reusable comments
  GET  /api/regrades?status=open, POST /api/regrades, POST /api/regrades/{id}/resolve
A malformed request is a 4xx with {"error": message}; nothing returns a traceback."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from grader.pipeline.apply_scores import stored_results
from grader.report.pdf import template_environment
from grader.result import Result
from grader.review.item_points import change_item_points, effective_rubric
from grader.review.security import GuardMiddleware, Guards
from grader.review.store import ReviewStore
from grader.review.values import ReviewInputError, ScoreConflict
from grader.review.views import (ORDERS, Owners, find_question, plain, question_summary, saved, student_order,
                                 student_view)
from grader.scoring.rubric import Question, Rubric
from grader.scoring.rubric_items import item_score

SERVED_SUFFIXES = (".png", ".pdf")
PAGE, SCRIPT = "review.html.j2", "review.js"
PAGE_POLICY = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; " \
              "connect-src 'self'; frame-ancestors 'none'; form-action 'none'"
"""The page runs only its own script (review.js), talks only to this server, and cannot be framed."""
SHOWS = ("all", "ungraded", "conflicts", "regrades", "mine")
"""The page's filters: every student; those with a manual criterion of the question not yet scored;
those with a save refused as a conflict that its TA has not settled; those with an open regrade
request; those assigned to the TA asking (Owners.is_mine)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoreBody(_Body):
    student_id: str
    criterion_id: str
    grader: str
    items: list[str] = Field(default_factory=list, max_length=100)
    adjustment: float = 0.0
    adjustment_comment: str = ""
    comment: str = ""
    score: float | None = None  # only for a manual criterion without rubric items
    expected_version: int


class CommentBody(_Body):
    text: str
    grader: str


class RegradeBody(_Body):
    student_id: str
    criterion_id: str
    text: str


class ResolveBody(_Body):
    grader: str
    comment: str


class AssignmentBody(_Body):
    """Give a question, or some students, to a TA (`grader` names who gives it)."""

    ta: str
    grader: str
    question_id: str | None = None
    student_ids: list[str] = Field(default_factory=list, max_length=10_000)


class ItemPointsBody(_Body):
    criterion_id: str
    item_id: str
    points: float
    grader: str


def create_app(out_dir: Path, rubric: Rubric, store: ReviewStore, guards: Guards, grader: str = "") -> FastAPI:
    """The app over one graded output folder, its rubric and its review store; `grader` names the TA
    the page starts with (the page lets them change it)."""
    out_dir = Path(out_dir).resolve()
    results: dict[str, Result] = {r.student_id: r for r in stored_results(out_dir)}
    app = FastAPI(title="xai-grader review", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(GuardMiddleware, guards=guards)

    @app.exception_handler(ReviewInputError)
    async def bad_input(request: Request, error: ReviewInputError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=400)

    @app.exception_handler(ScoreConflict)
    async def conflict(request: Request, error: ScoreConflict) -> JSONResponse:
        return JSONResponse({"error": str(error), "current": saved(error.current)}, status_code=409)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    def question_of(question_id: str) -> Question:
        question = find_question(effective_rubric(rubric, store), question_id)
        if question is None:
            raise HTTPException(404, f"no question '{question_id}' in the rubric")
        return question

    def result_of(student_id: str) -> Result:
        if student_id not in results:
            raise HTTPException(404, f"no graded student '{student_id}' in {out_dir.name}")
        return results[student_id]

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        html = template_environment().get_template(PAGE).render(csrf_token=guards.csrf_token, grader=grader)
        return HTMLResponse(html, headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/static/review.js")
    def script() -> Response:
        text = (resources.files("grader") / "templates" / SCRIPT).read_text(encoding="utf-8")
        return Response(text, media_type="text/javascript")

    @app.get("/api/questions")
    def questions() -> list[dict[str, Any]]:
        owners = Owners.of(store.assignments())
        return [question_summary(q, store, owners) for q in effective_rubric(rubric, store).questions]

    @app.get("/api/questions/{question_id}/students")
    def students(question_id: str, order: str = "id", grader: str = "", show: str = "all") -> list[dict[str, Any]]:
        question = question_of(question_id)
        if order not in ORDERS or show not in SHOWS:
            raise HTTPException(400, f"order must be one of {', '.join(ORDERS)} and show one of {', '.join(SHOWS)}")
        manual = [c.id for c in question.criteria if c.manual]
        open_requests = {(r.student_id, r.criterion_id) for r in store.open_regrade_requests()}
        scored = {(score.student_id, score.criterion_id) for score in store.scores(question_id=question_id)}
        conflicted = {entry.student_id for entry in store.unsettled_conflicts(question_id)}
        owners = Owners.of(store.assignments())
        rows = []
        for student_id in student_order(list(results), order, grader):
            result = results[student_id]
            graded = all((student_id, c) in scored for c in manual)
            regrade = any((student_id, c) in open_requests for c in manual)
            keep = {"all": True, "ungraded": not graded, "conflicts": student_id in conflicted, "regrades": regrade,
                    "mine": owners.is_mine(grader, question_id, student_id)}[show]
            if keep:
                rows.append({"student_id": student_id, "name": result.name, "status": result.status,
                             "graded": graded, "regrade": regrade,
                             "assigned_to": owners.students.get(student_id, owners.questions.get(question_id, ""))})
        return rows

    @app.get("/api/questions/{question_id}/students/{student_id}")
    def student(question_id: str, student_id: str) -> dict[str, Any]:
        return student_view(result_of(student_id), question_of(question_id), store)

    @app.post("/api/scores")
    def save(body: ScoreBody) -> dict[str, Any]:
        current = effective_rubric(rubric, store)
        criterion = next((c for q in current.questions for c in q.criteria if c.id == body.criterion_id), None)
        if criterion is None or not criterion.manual:
            raise HTTPException(400, f"'{body.criterion_id}' is not a manual criterion of the rubric")
        if criterion.items:
            try:
                points = item_score(criterion, body.items, body.adjustment)
            except ValueError as error:
                raise HTTPException(400, str(error)) from None
        elif body.score is None:
            raise HTTPException(400, f"'{body.criterion_id}' has no rubric items: give its score")
        else:
            points = body.score
        stored = store.save_score(body.student_id, body.criterion_id, grader=body.grader, score=points,
                                  items=body.items, adjustment=body.adjustment,
                                  adjustment_comment=body.adjustment_comment, comment=body.comment,
                                  expected_version=body.expected_version)
        return saved(stored)

    @app.post("/api/items")
    def item_points(body: ItemPointsBody) -> dict[str, Any]:
        """New points for a rubric item: every student who has it is scored again."""
        rescored = change_item_points(store, rubric, body.criterion_id, body.item_id, body.points, grader=body.grader)
        return {"criterion_id": body.criterion_id, "item_id": body.item_id, "points": body.points,
                "rescored": rescored}

    @app.get("/api/assignments")
    def assignments() -> list[dict[str, Any]]:
        return [plain(a) for a in store.assignments()]

    @app.post("/api/assignments")
    def assign(body: AssignmentBody) -> list[dict[str, Any]]:
        """The question, or each listed student, given to `ta` (the latest assignment wins)."""
        if (body.question_id is None) == (not body.student_ids):
            raise HTTPException(400, "give a question_id or a list of student_ids (one of them)")
        if body.question_id is not None:
            return [plain(store.assign(body.ta, question_id=question_of(body.question_id).id))]
        students = [result_of(s).student_id for s in body.student_ids]  # every id known before any is assigned
        return [plain(store.assign(body.ta, student_id=s)) for s in students]

    @app.get("/api/history/{student_id}/{criterion_id}")
    def history(student_id: str, criterion_id: str) -> list[dict[str, Any]]:
        return [plain(entry) for entry in store.history(student_id, criterion_id)]

    @app.get("/api/questions/{question_id}/comments")
    def comments(question_id: str) -> list[dict[str, Any]]:
        question_of(question_id)
        return [plain(c) for c in store.comments(question_id)]

    @app.post("/api/questions/{question_id}/comments")
    def add_comment(question_id: str, body: CommentBody) -> dict[str, Any]:
        question_of(question_id)
        comment = store.add_comment(question_id, body.text, created_by=body.grader)
        return plain(comment)

    @app.get("/api/regrades")
    def regrades(status: str | None = None) -> list[dict[str, Any]]:
        return [plain(r) for r in store.regrade_requests(status=status)]

    @app.post("/api/regrades")
    def request_regrade(body: RegradeBody) -> dict[str, Any]:
        return plain(store.request_regrade(body.student_id, body.criterion_id, body.text))

    @app.post("/api/regrades/{request_id}/resolve")
    def resolve(request_id: int, body: ResolveBody) -> dict[str, Any]:
        return plain(store.resolve_regrade(request_id, resolved_by=body.grader, comment=body.comment))

    @app.get("/files/{student_id}/{path:path}")
    def files(student_id: str, path: str) -> FileResponse:
        """A figure or report of a graded student: only files inside its output folder."""
        folder = (out_dir / result_of(student_id).student_id).resolve()
        target = (folder / path).resolve()
        if not target.is_relative_to(folder) or target.suffix not in SERVED_SUFFIXES or not target.is_file():
            raise HTTPException(404, "no such figure or report")
        return FileResponse(target)

    return app
