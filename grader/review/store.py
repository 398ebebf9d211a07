"""ReviewStore: every read and write of the TA review workspace, over one SQLAlchemy engine.

Saves use optimistic concurrency: a TA's page loads a score with its version, and the save names
that version (expected_version, 0 before the first save). When another TA saved in between, the
save is refused with ScoreConflict carrying the other TA's value, who and when; the refused value
is kept in the history (applied false), so nothing either TA typed is lost. On SQLite every write
is one BEGIN IMMEDIATE transaction; on PostgreSQL the row is locked (SELECT ... FOR UPDATE) and a
race on the first save ends in a conflict, not an error.

Every method returns frozen values (grader.review.values), never live ORM rows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grader.atomic import atomic_write_text
from grader.csvfile import read_csv_rows
from grader.csvmessages import config_error, shown
from grader.escape import csv_cell
from grader.result import Result
from grader.review import checks
from grader.review.rowvalues import (check_question, columns, comment_value, criterion_of, plain_points, record,
                                     history_entry, regrade_value, saved, student_value)
from grader.review.database import writing
from grader.review.schema import (AssignmentRow, CommentRow, CriterionRow, RegradeRow, ScoreHistoryRow, ScoreRow,
                                  Student)
from grader.review.values import (Assignment, HistoryEntry, ImportSummary, QuestionProgress, RegradeRequest,
                                  ReusableComment, ReviewInputError, SavedScore, ScoreConflict, StudentInfo,
                                  UnknownQuestion, UnknownRegradeRequest, UnknownStudent)
from grader.scoring.manual import COLUMNS as MANUAL_COLUMNS
from grader.scoring.rubric import Rubric

REGRADE_COLUMNS = ("student_id", "criterion", "text")
HELD = "conflict"
"""A result held out of grading (two folders claim one student): not a student to grade yet."""


CARRIED = "grade --manual"
"""Who a score carried over from result.json is stored under (the scores.csv it came from)."""


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class ReviewStore:
    """The review workspace of one graded output folder. `now` gives the time stored with each change."""

    def __init__(self, engine: Engine, now: Callable[[], datetime] = _utc_now) -> None:
        self._engine, self._writer, self._now = engine, writing(engine), now

    @property
    def engine(self) -> Engine:
        """The database's engine, for a part of the workspace with tables of its own (item_points)."""
        return self._engine

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with Session(self._engine) as session, session.begin():
            yield session

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    # -- the class ------------------------------------------------------------------------------

    def import_class(self, out_dir: str | Path, rubric: Rubric) -> ImportSummary:
        """Read every OUT/*/result.json and the rubric into the store, adding or refreshing students
        and criteria; scores, history and requests stay. Running it again changes nothing more. A
        result.json that cannot be read is reported in the summary and left out."""
        results: list[Result] = []
        unreadable: list[tuple[str, str]] = []
        for folder in sorted(Path(out_dir).iterdir()):
            path = folder / "result.json"
            if folder.name.startswith(".") or not path.is_file():
                continue
            try:
                results.append(Result.read(path))
            except (OSError, ValueError) as error:
                unreadable.append((str(path), str(error).splitlines()[0] if str(error) else type(error).__name__))
        with self._writing() as session:
            position = 0
            for question in rubric.questions:
                for criterion in question.criteria:
                    session.merge(CriterionRow(id=criterion.id, question_id=question.id, manual=criterion.manual,
                                               max_points=criterion.points, description=criterion.description,
                                               position=position))
                    position += 1
            for result in results:
                session.merge(Student(student_id=result.student_id, name=result.name, status=result.status,
                                      folder=result.folder))
            carried = sum(self._carry_scores(session, result) for result in results)
            students = session.scalar(select(func.count()).select_from(Student)) or 0
            criteria = session.scalar(select(func.count()).select_from(CriterionRow)) or 0
            above = session.execute(select(ScoreRow.student_id, ScoreRow.criterion_id, ScoreRow.score,
                                           CriterionRow.max_points)
                                    .join(CriterionRow, ScoreRow.criterion_id == CriterionRow.id)
                                    .where(ScoreRow.score > CriterionRow.max_points)
                                    .order_by(ScoreRow.student_id, CriterionRow.position))
            above_maximum = tuple((r.student_id, r.criterion_id, r.score, r.max_points) for r in above)
        return ImportSummary(students, criteria, tuple(unreadable), above_maximum, carried)

    def _carry_scores(self, session: Session, result: Result) -> int:
        """Store the TA scores a result already holds (an earlier `grader grade --manual`) where the
        workspace has none for that criterion, under the name CARRIED: moving from scores.csv to the
        review loses no score or override. Returns how many were carried."""
        carried = 0
        known = set(session.scalars(select(CriterionRow.id)))
        for question in result.questions:
            for criterion in question.criteria:
                by_ta = criterion.score is not None and (criterion.manual or criterion.overridden)
                if not by_ta or criterion.id not in known or session.get(ScoreRow, (result.student_id, criterion.id)):
                    continue
                value = {"score": criterion.score, "items": [], "adjustment": 0.0, "adjustment_comment": "",
                         "comment": criterion.comment}
                now = self._now()
                row = ScoreRow(student_id=result.student_id, criterion_id=criterion.id, grader=CARRIED,
                               updated_at=now, version=1, **columns(value))
                session.add(row)
                record(session, row, CARRIED, now, None, saved(row).value(), applied=True)
                carried += 1
        return carried

    def students(self) -> list[StudentInfo]:
        """Every student of the review, in id order (held-out conflicts among them: see `status`)."""
        with self._reading() as session:
            return [student_value(row) for row in session.scalars(select(Student).order_by(Student.student_id))]

    # -- scores ---------------------------------------------------------------------------------

    def save_score(self, student_id: str, criterion_id: str, *, grader: str, score: float,
                   items: Sequence[str] = (), adjustment: float = 0.0, adjustment_comment: str = "",
                   comment: str = "", expected_version: int) -> SavedScore:
        """Store a TA's score, based on the stored version `expected_version` (0 when none was saved
        yet). Raises ScoreConflict when another TA saved since, ReviewInputError for a bad input."""
        where = f"{student_id}, {criterion_id}"
        with self._writing() as session:
            criterion = criterion_of(session, student_id, criterion_id)
            value = {
                "score": checks.points(where, score, criterion.max_points),
                "items": list(checks.items(where, items)),
                "adjustment": checks.number(where, "adjustment", adjustment),
                "adjustment_comment": checks.text(where, "adjustment_comment", adjustment_comment),
                "comment": checks.text(where, "comment", comment),
            }
            if len(checks.export_comment(value["comment"], value["adjustment_comment"])) > checks.TEXT_LIMIT:
                raise ReviewInputError(f"{where}: the comment and the adjustment's comment together are longer than "
                                       f"the {checks.TEXT_LIMIT:,} characters scores.csv keeps")
            grader = checks.name(where, "grader", grader)
            expected = checks.version(where, expected_version)
            now = self._now()
            row = session.scalars(select(ScoreRow).filter_by(student_id=student_id, criterion_id=criterion_id)
                                  .with_for_update()).one_or_none()
            if row is None and expected != 0:
                raise ReviewInputError(f"{where}: no score is saved yet, so expected_version must be 0, not {expected}")
            if row is None:
                row = ScoreRow(student_id=student_id, criterion_id=criterion_id, grader=grader, updated_at=now,
                               version=1, **columns(value))
                try:
                    with session.begin_nested():
                        session.add(row)
                except IntegrityError:  # another TA's first save won the race (PostgreSQL)
                    row = session.scalars(select(ScoreRow).filter_by(student_id=student_id,
                                                                     criterion_id=criterion_id)).one()
                else:
                    record(session, row, grader, now, None, saved(row).value(), applied=True)
                    return saved(row)
            if row.version != expected:
                current = saved(row)
                attempted = {**value, "version": expected}
                record(session, row, grader, now, current.value(), attempted, applied=False)
                conflict = ScoreConflict(current, attempted, expected, grader)
            else:
                old = saved(row).value()
                for key, column in columns(value).items():
                    setattr(row, key, column)
                row.grader, row.updated_at, row.version = grader, now, row.version + 1
                session.flush()
                record(session, row, grader, now, old, saved(row).value(), applied=True)
                return saved(row)
        raise conflict  # after the commit, so that the refused value stays in the history

    def score(self, student_id: str, criterion_id: str) -> SavedScore | None:
        """The stored score, or None when no TA scored it yet."""
        with self._reading() as session:
            criterion_of(session, student_id, criterion_id)
            row = session.get(ScoreRow, (student_id, criterion_id))
            return None if row is None else saved(row)

    def scores(self, *, question_id: str | None = None, student_id: str | None = None) -> list[SavedScore]:
        """The stored scores of a question's criteria and/or of one student, in one query (a
        question's page for the whole class), by student id, then in rubric order."""
        query = (select(ScoreRow).join(CriterionRow, ScoreRow.criterion_id == CriterionRow.id)
                 .order_by(ScoreRow.student_id, CriterionRow.position))
        if question_id is not None:
            query = query.where(CriterionRow.question_id == question_id)
        if student_id is not None:
            query = query.where(ScoreRow.student_id == student_id)
        with self._reading() as session:
            return [saved(row) for row in session.scalars(query)]

    def history(self, student_id: str, criterion_id: str) -> list[HistoryEntry]:
        """Every save of the score, oldest first, refused ones (applied false) among them."""
        with self._reading() as session:
            criterion_of(session, student_id, criterion_id)
            rows = session.scalars(select(ScoreHistoryRow).filter_by(student_id=student_id, criterion_id=criterion_id)
                                   .order_by(ScoreHistoryRow.id))
            return [history_entry(row) for row in rows]

    def unsettled_conflicts(self, question_id: str | None = None) -> list[HistoryEntry]:
        """Saves refused as conflicts that their TA has not followed with an applied save of the same
        criterion and student (the page's "conflicts" filter), oldest first; of one question's
        criteria, or of all."""
        query = select(ScoreHistoryRow).order_by(ScoreHistoryRow.id)
        if question_id is not None:
            query = query.join(CriterionRow, ScoreHistoryRow.criterion_id == CriterionRow.id).where(
                CriterionRow.question_id == question_id)
        with self._reading() as session:
            unsettled: dict[tuple[str, str, str], HistoryEntry] = {}
            for row in session.scalars(query):
                key = (row.student_id, row.criterion_id, row.grader)
                if row.applied:
                    unsettled.pop(key, None)
                else:
                    unsettled[key] = history_entry(row)
            return sorted(unsettled.values(), key=lambda entry: entry.changed_at)

    def question_progress(self, question_id: str) -> QuestionProgress:
        """How many students have every manual criterion of the question scored, of those to grade
        (every imported student but those held out as a conflict)."""
        with self._reading() as session:
            criteria = session.scalars(select(CriterionRow).filter_by(question_id=question_id)).all()
            if not criteria:
                raise UnknownQuestion(f"{question_id}: not a question of the rubric")
            manual = [c.id for c in criteria if c.manual]
            to_grade = select(Student.student_id).where(Student.status != HELD)
            total = session.scalar(select(func.count()).select_from(to_grade.subquery())) or 0
            if not manual:
                return QuestionProgress(question_id, total, total)
            done = (select(ScoreRow.student_id).where(ScoreRow.criterion_id.in_(manual),
                                                      ScoreRow.student_id.in_(to_grade))
                    .group_by(ScoreRow.student_id).having(func.count() == len(manual)))
            graded = session.scalar(select(func.count()).select_from(done.subquery())) or 0
            return QuestionProgress(question_id, graded, total)

    def export_manual_csv(self, path: str | Path) -> int:
        """Write every stored score as a `grader grade --manual` scores.csv (student_id, criterion,
        points, comment), students in id order and criteria in rubric order; returns the rows
        written. The comment leaves through grader.escape.csv_cell like every CSV the grader writes;
        the ids are the rubric's and the graded ones, written as they are."""
        with self._reading() as session:
            rows = session.scalars(select(ScoreRow).join(CriterionRow, ScoreRow.criterion_id == CriterionRow.id)
                                   .order_by(ScoreRow.student_id, CriterionRow.position)).all()
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(MANUAL_COLUMNS)
            for row in rows:
                writer.writerow([row.student_id, row.criterion_id, plain_points(row.score),
                                 csv_cell(checks.export_comment(row.comment, row.adjustment_comment))])
        atomic_write_text(path, buffer.getvalue())
        return len(rows)

    # -- reusable comments ----------------------------------------------------------------------

    def add_comment(self, question_id: str, text: str, *, created_by: str) -> ReusableComment:
        """Keep a comment for reuse on a question; a text the question already keeps is not kept
        twice (the kept one is returned)."""
        with self._writing() as session:
            check_question(session, question_id)
            text = checks.text(question_id, "comment", text)
            if not text.strip():
                raise ReviewInputError(f"{question_id}: the comment is empty")
            kept = session.scalars(select(CommentRow).filter_by(question_id=question_id, text=text)).first()
            if kept is not None:
                return comment_value(kept)
            row = CommentRow(question_id=question_id, text=text, created_by=checks.name(question_id, "created_by",
                                                                                        created_by),
                             created_at=self._now())
            session.add(row)
            session.flush()
            return comment_value(row)

    def comments(self, question_id: str) -> list[ReusableComment]:
        with self._reading() as session:
            check_question(session, question_id)
            return [comment_value(row) for row in
                    session.scalars(select(CommentRow).filter_by(question_id=question_id).order_by(CommentRow.id))]

    # -- regrade requests -----------------------------------------------------------------------

    def request_regrade(self, student_id: str, criterion_id: str, text: str) -> RegradeRequest:
        where = f"{student_id}, {criterion_id}"
        with self._writing() as session:
            criterion_of(session, student_id, criterion_id)
            text = checks.text(where, "text", text)
            if not text.strip():
                raise ReviewInputError(f"{where}: the regrade request is empty; say what to look at again")
            row = RegradeRow(student_id=student_id, criterion_id=criterion_id, text=text, created_at=self._now())
            session.add(row)
            session.flush()
            return regrade_value(row)

    def import_regrade_requests(self, path: str | Path) -> list[RegradeRequest]:
        """Add the requests of a CSV with the columns student_id, criterion, text; all or none: a
        ConfigError lists every problem as `file:line: column: what is wrong`. A request already in
        the store (same student, criterion and text) is not added twice. Returns those added."""
        path = Path(path)
        with self._writing() as session:
            criteria = set(session.scalars(select(CriterionRow.id)))
            students = set(session.scalars(select(Student.student_id)))
            problems: list[str] = []
            rows = read_csv_rows(path, REGRADE_COLUMNS, problems=problems,
                                 looks_like_row=lambda row: row.get("criterion", "").strip() in criteria,
                                 comma_hint="quote a text that holds a comma")
            wanted: list[tuple[str, str, str]] = []
            for line, row in rows:
                where = f"{path}:{line}"
                student_id, criterion_id, text = row["student_id"].strip(), row["criterion"].strip(), row["text"]
                if student_id not in students:
                    problems.append(f"{where}: student_id: {shown(student_id)} is not a student of this review")
                if criterion_id not in criteria:
                    problems.append(f"{where}: criterion: {shown(criterion_id)} is not in the rubric")
                if not text.strip():
                    problems.append(f"{where}: text: empty; say what the student wants looked at again")
                wanted.append((student_id, criterion_id, text))
            if problems:
                raise config_error(path, problems)
            known = {(row.student_id, row.criterion_id, row.text) for row in
                     session.execute(select(RegradeRow.student_id, RegradeRow.criterion_id, RegradeRow.text))}
            added = []
            for request in wanted:
                if request not in known:
                    known.add(request)
                    row = RegradeRow(student_id=request[0], criterion_id=request[1], text=request[2],
                                     created_at=self._now())
                    session.add(row)
                    added.append(row)
            session.flush()
            return [regrade_value(row) for row in added]

    def regrade_requests(self, *, status: str | None = None, student_id: str | None = None) -> list[RegradeRequest]:
        """The requests, oldest first: all, or those with the status ('open', 'resolved') or of one student."""
        query = select(RegradeRow).order_by(RegradeRow.id)
        if status is not None:
            query = query.filter_by(status=status)
        if student_id is not None:
            query = query.filter_by(student_id=student_id)
        with self._reading() as session:
            return [regrade_value(row) for row in session.scalars(query)]

    def open_regrade_requests(self) -> list[RegradeRequest]:
        return self.regrade_requests(status="open")

    def resolve_regrade(self, request_id: int, *, resolved_by: str, comment: str) -> RegradeRequest:
        with self._writing() as session:
            row = session.get(RegradeRow, request_id)
            if row is None:
                raise UnknownRegradeRequest(f"regrade request {request_id}: no such request")
            where = f"{row.student_id}, {row.criterion_id}: regrade request {request_id}"
            if row.status != "open":
                raise ReviewInputError(f"{where}: already resolved by {row.resolved_by}")
            row.resolution = checks.text(where, "comment", comment)
            row.resolved_by = checks.name(where, "resolved_by", resolved_by)
            row.status, row.resolved_at = "resolved", self._now()
            session.flush()
            return regrade_value(row)

    # -- assignments ----------------------------------------------------------------------------

    def assign(self, ta: str, *, question_id: str | None = None, student_id: str | None = None) -> Assignment:
        """Give a question or a student (exactly one) to a TA."""
        with self._writing() as session:
            ta = checks.name("assignment", "ta", ta)
            if (question_id is None) == (student_id is None):
                raise ReviewInputError(f"assignment for {ta}: give a question_id or a student_id (one of them)")
            if question_id is not None:
                check_question(session, question_id)
            elif session.get(Student, student_id) is None:
                raise UnknownStudent(f"{student_id}: not a student of this review")
            row = AssignmentRow(ta=ta, question_id=question_id, student_id=student_id)
            session.add(row)
            session.flush()
            return Assignment(row.id, row.ta, row.question_id, row.student_id)

    def assignments(self, ta: str | None = None) -> list[Assignment]:
        query = select(AssignmentRow).order_by(AssignmentRow.id)
        if ta is not None:
            query = query.filter_by(ta=ta)
        with self._reading() as session:
            return [Assignment(r.id, r.ta, r.question_id, r.student_id) for r in session.scalars(query)]

