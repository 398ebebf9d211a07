"""The TA review workspace's store (issue 15): a graded output folder imported into a database,
scores saved by several TAs with optimistic concurrency and a full history, progress per
question, reusable comments, regrade requests, and the export to the `--manual` scores.csv."""

import math
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from grader.result import Result
from grader.review.database import default_database, open_database
from grader.review.store import ReviewStore
from grader.review.values import (ReviewInputError, ScoreConflict, UnknownCriterion, UnknownQuestion,
                                  UnknownStudent)
from grader.scoring.manual import load_manual_scores
from grader.scoring.rubric import load_rubric
from grader.yamlfile import ConfigError

ROOT = Path(__file__).resolve().parents[1]
RUBRIC = """\
questions:
  - id: q1
    title: Accuracy
    points: 3
    criteria:
      - id: q1_accuracy
        metric: accuracy
        points: 2
        bands:
          - {min: 0.8, points: 2}
      - id: q1_answer
        manual: true
        points: 1
  - id: q2
    title: Saliency, in writing
    points: 2
    criteria:
      - id: q2_answer
        description: Explains what the saliency maps show
        manual: true
        points: 1.5
      - id: q2_method
        manual: true
        points: 0.5
"""
STUDENTS = [("s001", "Ada Lovelace", "graded"), ("s002", "Grace Hopper", "graded"),
            ("s003", "Alan Turing", "failed"), ("s004", "Held Twice", "conflict")]
START = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)


class Clock:
    """One minute later on every call: each change gets its own known time."""

    def __init__(self):
        self.now = START

    def __call__(self):
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def rubric(tmp_path):
    path = tmp_path / "rubric.yaml"
    path.write_text(RUBRIC, encoding="utf-8")
    return load_rubric(path)


@pytest.fixture
def out(tmp_path):
    """A graded output folder written by hand: one result.json per student, no grading run."""
    out = tmp_path / "out"
    for student_id, name, status in STUDENTS:
        (out / student_id).mkdir(parents=True)
        Result(student_id=student_id, name=name, folder=f"{student_id}_submission", status=status,
               max_score=5.0, tool_version="test").write(out / student_id / "result.json")
    (out / ".staging-s005").mkdir()  # a killed run's leftover is no student
    return out


@pytest.fixture
def engine(out):
    return open_database(default_database(out))


@pytest.fixture
def store(engine, out, rubric):
    store = ReviewStore(engine, now=Clock())
    store.import_class(out, rubric)
    return store


def test_import_adds_every_graded_student_and_every_criterion(engine, out, rubric):
    summary = ReviewStore(engine).import_class(out, rubric)
    assert (summary.students, summary.criteria, summary.unreadable) == (4, 4, ())


def test_importing_again_changes_nothing_and_keeps_the_scores(store, out, rubric):
    store.save_score("s001", "q1_answer", grader="Bea", score=1, expected_version=0)
    summary = store.import_class(out, rubric)
    assert (summary.students, summary.criteria) == (4, 4)
    assert store.score("s001", "q1_answer").score == 1.0


def with_ta_scores(out: Path) -> None:
    """s001 as an earlier `grader grade --manual` left it: its answer scored and its accuracy overridden."""
    from grader.result import CriterionResult, QuestionResult

    criteria = [CriterionResult(id="q1_accuracy", score=1.5, max_score=2, overridden=True, auto_score=0.0,
                                comment="the course split was mislabeled"),
                CriterionResult(id="q1_answer", score=0.5, max_score=1, manual=True, comment="good"),
                CriterionResult(id="q9_gone", score=1, max_score=1, manual=True)]
    Result(student_id="s001", name="Ada Lovelace", status="graded", tool_version="test",
           questions=[QuestionResult(id="q1", title="Accuracy", score=2, max_score=3, criteria=criteria)]
           ).write(out / "s001" / "result.json")


def test_ta_scores_already_in_the_results_are_carried_into_the_workspace(engine, out, rubric):
    with_ta_scores(out)
    summary = ReviewStore(engine).import_class(out, rubric)
    store = ReviewStore(engine)
    assert summary.carried == 2  # the criterion the rubric no longer has is left out
    assert [(s.criterion_id, s.score, s.comment, s.grader) for s in store.scores(student_id="s001")] == [
        ("q1_accuracy", 1.5, "the course split was mislabeled", "grade --manual"), ("q1_answer", 0.5, "good",
                                                                                    "grade --manual")]


def test_a_score_saved_in_the_workspace_is_not_replaced_by_the_results_on_the_next_import(store, out, rubric):
    store.save_score("s001", "q1_answer", grader="Bea", score=1, expected_version=0)
    with_ta_scores(out)
    assert store.import_class(out, rubric).carried == 1
    assert store.score("s001", "q1_answer").score == 1.0 and store.score("s001", "q1_accuracy").score == 1.5
    assert store.import_class(out, rubric).carried == 0


def test_an_unreadable_result_is_reported_and_the_others_imported(engine, out, rubric):
    (out / "s009").mkdir()
    (out / "s009" / "result.json").write_text("{not json", encoding="utf-8")
    summary = ReviewStore(engine).import_class(out, rubric)
    assert summary.students == 4
    assert [path for path, _ in summary.unreadable] == [str(out / "s009" / "result.json")]


def test_student_text_is_stored_as_given(engine, out, rubric):
    Result(student_id="s005", name="<b>Bobby</b> '; DROP TABLE students;--", status="graded",
           tool_version="test").write((out / "s005").mkdir() or out / "s005" / "result.json")
    store = ReviewStore(engine)
    store.import_class(out, rubric)
    store.save_score("s005", "q1_answer", grader="Bea", score=0.5, comment="<i>=SUM(A1)</i>", expected_version=0)
    assert store.score("s005", "q1_answer").comment == "<i>=SUM(A1)</i>"
    assert ReviewStore(engine).import_class(out, rubric).students == 5


def test_a_saved_score_reads_back_with_who_when_and_version_one(store):
    saved = store.save_score("s001", "q2_answer", grader="Bea", score=1.25, items=["clear", "cites_figure"],
                             adjustment=-0.25, adjustment_comment="late", comment="Good reading of the maps",
                             expected_version=0)
    assert store.score("s001", "q2_answer") == saved
    assert (saved.score, saved.items, saved.adjustment, saved.adjustment_comment, saved.comment) == (
        1.25, ("clear", "cites_figure"), -0.25, "late", "Good reading of the maps")
    assert (saved.grader, saved.updated_at, saved.version) == ("Bea", START + timedelta(minutes=1), 1)


def test_no_score_is_none_before_a_ta_saves_one(store):
    assert store.score("s002", "q1_answer") is None


def test_a_save_on_the_stored_version_replaces_it_as_the_next_version(store):
    store.save_score("s001", "q1_answer", grader="Bea", score=0.5, expected_version=0)
    saved = store.save_score("s001", "q1_answer", grader="Carl", score=0.75, expected_version=1)
    assert (saved.score, saved.grader, saved.version) == (0.75, "Carl", 2)


def test_the_second_of_two_tas_is_told_the_first_tas_value(engine, out, rubric):
    bea, carl = ReviewStore(engine, now=Clock()), ReviewStore(open_database(default_database(out)))
    bea.import_class(out, rubric)
    first = bea.save_score("s001", "q1_answer", grader="Bea", score=1, comment="full marks", expected_version=0)
    with pytest.raises(ScoreConflict) as caught:
        carl.save_score("s001", "q1_answer", grader="Carl", score=0.5, comment="half", expected_version=0)
    assert caught.value.current == first
    assert caught.value.attempted["score"] == 0.5
    assert "Bea saved 1 points at 2026-12-02 09:01:00 UTC" in str(caught.value)
    assert carl.score("s001", "q1_answer") == first


def test_after_a_conflict_the_history_keeps_both_tas_values(store):
    store.save_score("s001", "q1_answer", grader="Bea", score=1, expected_version=0)
    with pytest.raises(ScoreConflict):
        store.save_score("s001", "q1_answer", grader="Carl", score=0.5, comment="half", expected_version=0)
    history = store.history("s001", "q1_answer")
    assert [(h.grader, h.new["score"], h.applied) for h in history] == [("Bea", 1.0, True), ("Carl", 0.5, False)]
    assert history[1].old["score"] == 1.0 and history[1].new["comment"] == "half"


def test_history_records_who_when_the_old_and_the_new_value(store):
    store.save_score("s002", "q2_answer", grader="Bea", score=1, comment="ok", expected_version=0)
    store.save_score("s002", "q2_answer", grader="Carl", score=1.5, items=["complete"], expected_version=1)
    first, second = store.history("s002", "q2_answer")
    assert (first.grader, first.changed_at, first.old, first.new["score"]) == ("Bea", START + timedelta(minutes=1),
                                                                                None, 1.0)
    assert (second.grader, second.changed_at) == ("Carl", START + timedelta(minutes=2))
    assert (second.old["score"], second.old["comment"], second.old["version"]) == (1.0, "ok", 1)
    assert (second.new["score"], second.new["items"], second.new["version"]) == (1.5, ["complete"], 2)


@pytest.mark.parametrize(("student", "criterion", "changes", "error", "says"), [
    ("s999", "q1_answer", {}, UnknownStudent, "s999, q1_answer: the student 's999' is not in this review"),
    ("s001", "q9_answer", {}, UnknownCriterion, "s001, q9_answer: the criterion 'q9_answer' is not in the rubric"),
    ("s001", "q1_answer", {"score": 1.5}, ReviewInputError, "s001, q1_answer: score 1.5 is outside 0..1"),
    ("s001", "q2_answer", {"score": -0.5}, ReviewInputError, "s001, q2_answer: score -0.5 is outside 0..1.5"),
    ("s001", "q1_answer", {"score": math.nan}, ReviewInputError, "s001, q1_answer: score is nan, not a finite"),
    ("s001", "q1_answer", {"adjustment": math.inf}, ReviewInputError, "s001, q1_answer: adjustment is inf"),
    ("s001", "q1_answer", {"grader": "  "}, ReviewInputError, "s001, q1_answer: grader is empty"),
    ("s001", "q1_answer", {"comment": "bad \ud800"}, ReviewInputError, "s001, q1_answer: comment holds a lone"),
    ("s001", "q1_answer", {"expected_version": 3}, ReviewInputError,
     "s001, q1_answer: no score is saved yet, so expected_version must be 0, not 3"),
])
def test_a_bad_save_is_refused_naming_the_student_and_criterion(store, student, criterion, changes, error, says):
    given = {"grader": "Bea", "score": 0.5, "expected_version": 0} | changes
    with pytest.raises(error, match="^" + says.replace("(", r"\(").replace(".", r"\.")) as caught:
        store.save_score(student, criterion, **given)
    assert isinstance(caught.value, ValueError)
    assert store.history("s001", "q1_answer") == []


def test_progress_counts_students_with_every_manual_criterion_scored(store):
    store.save_score("s001", "q2_answer", grader="Bea", score=1, expected_version=0)
    store.save_score("s001", "q2_method", grader="Bea", score=0.5, expected_version=0)
    store.save_score("s002", "q2_answer", grader="Bea", score=1, expected_version=0)
    progress = store.question_progress("q2")
    assert (progress.graded, progress.total) == (1, 3)  # s004 is held out as a conflict


def test_progress_of_a_question_not_in_the_rubric_is_refused(store):
    with pytest.raises(UnknownQuestion, match="q7"):
        store.question_progress("q7")


def test_reusable_comments_are_kept_per_question(store):
    store.add_comment("q2", "Say which pixels the map highlights", created_by="Bea")
    store.add_comment("q1", "Compare with the confusion matrix", created_by="Carl")
    [comment] = store.comments("q2")
    assert (comment.text, comment.created_by, comment.question_id) == ("Say which pixels the map highlights",
                                                                       "Bea", "q2")


def test_a_comment_the_question_already_keeps_is_not_kept_twice(store):
    first = store.add_comment("q2", "Say which pixels the map highlights", created_by="Bea")
    again = store.add_comment("q2", "Say which pixels the map highlights", created_by="Carl")
    assert again.id == first.id and len(store.comments("q2")) == 1


def test_a_regrade_request_is_open_until_a_ta_resolves_it(store):
    request = store.request_regrade("s002", "q2_answer", "I did explain the eyes in the second paragraph")
    assert [r.id for r in store.open_regrade_requests()] == [request.id]
    resolved = store.resolve_regrade(request.id, resolved_by="Carl", comment="Right, +0.5")
    assert (resolved.status, resolved.resolved_by, resolved.resolution) == ("resolved", "Carl", "Right, +0.5")
    assert resolved.resolved_at > request.created_at
    assert store.open_regrade_requests() == []
    assert store.regrade_requests(student_id="s002") == [resolved]


def test_a_resolved_request_cannot_be_resolved_again(store):
    request = store.request_regrade("s002", "q2_answer", "please look again")
    store.resolve_regrade(request.id, resolved_by="Carl", comment="done")
    with pytest.raises(ReviewInputError, match="s002, q2_answer: regrade request .*already resolved by Carl"):
        store.resolve_regrade(request.id, resolved_by="Bea", comment="again")


def test_regrade_requests_are_imported_from_a_csv_once(store, tmp_path):
    path = tmp_path / "regrades.csv"
    path.write_text('student_id,criterion,text\ns001,q1_answer,"I answered it, see page 2"\n'
                    "s003,q2_method,Method named in the title\n", encoding="utf-8")
    added = store.import_regrade_requests(path)
    assert [(r.student_id, r.criterion_id, r.text) for r in added] == [
        ("s001", "q1_answer", "I answered it, see page 2"), ("s003", "q2_method", "Method named in the title")]
    assert store.import_regrade_requests(path) == []
    assert len(store.open_regrade_requests()) == 2


def test_a_bad_regrade_csv_names_the_file_and_line_and_adds_nothing(store, tmp_path):
    path = tmp_path / "regrades.csv"
    path.write_text("student_id,criterion,text\ns001,q1_answer,fine\ns001,q1_answr,typo\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        store.import_regrade_requests(path)
    assert caught.value.problems == [f"{path}:3: criterion: 'q1_answr' is not in the rubric"]
    assert store.open_regrade_requests() == []


def test_the_export_loads_back_as_the_manual_scores_csv(store, tmp_path, rubric):
    store.save_score("s001", "q2_answer", grader="Bea", score=1.25, adjustment=-0.25,
                     adjustment_comment="handed in late", comment='Good, "mostly";\nsee the eyes', expected_version=0)
    store.save_score("s001", "q1_answer", grader="Bea", score=0.1, expected_version=0)
    store.save_score("s002", "q1_accuracy", grader="Carl", score=2, comment="retrained, fair", expected_version=0)
    path = tmp_path / "scores.csv"
    assert store.export_manual_csv(path) == 3
    manual = load_manual_scores(path, rubric)
    assert {(s, c, m.points, m.comment) for s, by in manual.by_student.items() for c, m in by.items()} == {
        ("s001", "q1_answer", 0.1, ""),
        ("s001", "q2_answer", 1.25, 'Good, "mostly";\nsee the eyes\nhanded in late'),
        ("s002", "q1_accuracy", 2.0, "retrained, fair")}
    assert path.read_text(encoding="utf-8").splitlines()[:3] == [
        "student_id,criterion,points,comment", "s001,q1_answer,0.1,", 's001,q2_answer,1.25,"Good, ""mostly"";']


def test_an_exported_comment_that_looks_like_a_formula_is_shown_not_evaluated(store, tmp_path, rubric):
    store.save_score("s001", "q1_answer", grader="Bea", score=1, comment="=HYPERLINK(\"x\")", expected_version=0)
    path = tmp_path / "scores.csv"
    store.export_manual_csv(path)
    assert load_manual_scores(path, rubric).of("s001")["q1_answer"].comment == "'=HYPERLINK(\"x\")"


def test_questions_and_students_are_assigned_to_tas(store):
    store.assign("Bea", question_id="q2")
    store.assign("Carl", student_id="s003")
    assert [(a.ta, a.question_id, a.student_id) for a in store.assignments("Bea")] == [("Bea", "q2", None)]
    with pytest.raises(UnknownStudent):
        store.assign("Carl", student_id="s999")


def test_a_sqlite_database_is_in_wal_mode_with_full_sync_and_foreign_keys(engine):
    with engine.connect() as connection:
        settings = [connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                    for name in ("journal_mode", "synchronous", "foreign_keys")]
    assert settings == ["wal", 2, 1]


def test_the_default_database_is_review_sqlite_in_the_output_folder(out):
    assert default_database(out) == out / "review.sqlite"


def test_a_url_is_used_as_it_is(tmp_path):
    engine = open_database(f"sqlite:///{tmp_path}/elsewhere.db")
    assert engine.url.database == f"{tmp_path}/elsewhere.db"
    assert (tmp_path / "elsewhere.db").is_file()


def test_a_score_saved_just_before_a_sigkill_is_there_when_reopened(store, out):
    script = textwrap.dedent(f"""
        import os, signal
        from grader.review.database import open_database
        from grader.review.store import ReviewStore
        store = ReviewStore(open_database({str(default_database(out))!r}))
        store.save_score("s002", "q2_answer", grader="Bea", score=1.5, comment="kept", expected_version=0)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    reopened = ReviewStore(open_database(default_database(out)))
    saved = reopened.score("s002", "q2_answer")
    assert (saved.score, saved.comment, saved.grader, saved.version) == (1.5, "kept", "Bea", 1)


def test_two_tas_saving_at_once_lose_nothing_and_never_see_a_locked_database(store, out):
    """Two TAs on their own connections save the same criterion 25 times each, each save based on
    the version just read: every save is either applied or refused as a conflict, and the history
    holds every one of them."""
    import threading

    outcomes = []

    def grade(ta):
        mine = ReviewStore(open_database(default_database(out)))
        for attempt in range(25):
            current = mine.score("s001", "q2_answer")
            try:
                mine.save_score("s001", "q2_answer", grader=ta, score=attempt / 25, comment=f"{ta} {attempt}",
                                expected_version=current.version if current else 0)
                outcomes.append("saved")
            except ScoreConflict:
                outcomes.append("conflict")

    threads = [threading.Thread(target=grade, args=(ta,)) for ta in ("Bea", "Carl")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = store.history("s001", "q2_answer")
    assert len(outcomes) == len(history) == 50
    assert sum(h.applied for h in history) == outcomes.count("saved") == store.score("s001", "q2_answer").version


def test_the_students_are_listed_in_id_order_as_the_import_found_them(store):
    assert [(s.student_id, s.name, s.status, s.folder) for s in store.students()][:2] == [
        ("s001", "Ada Lovelace", "graded", "s001_submission"), ("s002", "Grace Hopper", "graded", "s002_submission")]


def test_importing_again_takes_the_students_new_name_and_status(store, out, rubric):
    Result(student_id="s003", name="Alan M. Turing", folder="s003_submission", status="graded",
           tool_version="test").write(out / "s003" / "result.json")
    store.import_class(out, rubric)
    assert [(s.name, s.status) for s in store.students() if s.student_id == "s003"] == [("Alan M. Turing", "graded")]


def test_a_questions_scores_for_the_whole_class_come_in_one_call(store):
    store.save_score("s002", "q2_method", grader="Bea", score=0.5, expected_version=0)
    store.save_score("s001", "q1_answer", grader="Bea", score=1, expected_version=0)
    store.save_score("s001", "q2_method", grader="Bea", score=0, expected_version=0)
    store.save_score("s001", "q2_answer", grader="Bea", score=1, expected_version=0)
    assert [(s.student_id, s.criterion_id) for s in store.scores(question_id="q2")] == [
        ("s001", "q2_answer"), ("s001", "q2_method"), ("s002", "q2_method")]
    assert [s.criterion_id for s in store.scores(student_id="s001")] == ["q1_answer", "q2_answer", "q2_method"]


def test_a_rubric_that_lowers_a_criterions_points_reports_the_scores_above_it(store, out, tmp_path):
    store.save_score("s001", "q2_answer", grader="Bea", score=1.5, expected_version=0)
    smaller = tmp_path / "smaller.yaml"
    smaller.write_text(RUBRIC.replace("points: 1.5", "points: 1").replace("points: 0.5", "points: 1"),
                       encoding="utf-8")
    summary = store.import_class(out, load_rubric(smaller))
    assert summary.scores_above_maximum == (("s001", "q2_answer", 1.5, 1.0),)


def test_the_tables_compile_for_postgresql():
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateTable

    from grader.review.schema import Base

    ddl = [str(CreateTable(table).compile(dialect=postgresql.dialect())) for table in Base.metadata.sorted_tables]
    assert len(ddl) == 8 and "TIMESTAMP WITH TIME ZONE" in "".join(ddl)


def test_a_refused_save_stays_an_unsettled_conflict_until_its_ta_saves_again(store):
    store.save_score("s001", "q2_answer", grader="Bea", score=1, expected_version=0)
    with pytest.raises(ScoreConflict):
        store.save_score("s001", "q2_answer", grader="Carl", score=0.5, expected_version=0)
    [conflict] = store.unsettled_conflicts("q2")
    assert (conflict.student_id, conflict.grader, conflict.new["score"]) == ("s001", "Carl", 0.5)
    assert store.unsettled_conflicts("q1") == []
    store.save_score("s001", "q2_answer", grader="Carl", score=0.75, expected_version=1)
    assert store.unsettled_conflicts() == []
