"""The TA's scores applied to results already graded: merged idempotently into the stored results,
written back with their PDFs and the gradebook, with no model run again."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from grader.data.readers import read_faces
from grader.pipeline import student_folder
from grader.pipeline.apply_scores import apply_manual_scores, stored_results
from grader.pipeline.setup import load_setup
from grader.pipeline.student_folder import grade_submission
from grader.questions.settings import TaskSettings
from grader.result import CriterionResult, QuestionResult
from grader.scoring.manual import ManualScore, ManualScores
from grader.scoring.manual_merge import AWAITING, merged
from tests.conftest import EXAMPLES, ROOT


def question() -> QuestionResult:
    return QuestionResult(id="q1", title="Saliency", score=0.25, max_score=1.25, criteria=[
        CriterionResult(id="q1_complete", score=0.25, max_score=0.25, value=1.0, message="share of panels"),
        CriterionResult(id="q1_answer", score=None, max_score=1.0, manual=True, message=AWAITING)])


def scores(student: str = "b1", **points: float) -> ManualScores:
    return ManualScores({student: {criterion: ManualScore(student, criterion, value, f"note {criterion}", 2)
                                   for criterion, value in points.items()}})


def test_merging_scores_a_manual_criterion_and_overrides_an_automatic_one():
    [q] = merged([question()], scores(q1_answer=0.75, q1_complete=0.1).of("b1"))
    complete, answer = q.criteria
    assert (answer.score, answer.comment, answer.message) == (0.75, "note q1_answer", "")
    assert (complete.score, complete.overridden, complete.auto_score) == (0.1, True, 0.25)
    assert q.score == pytest.approx(0.85)


def test_merging_again_replaces_the_earlier_scores_instead_of_stacking_them():
    once = merged([question()], scores(q1_answer=0.75, q1_complete=0.1).of("b1"))
    again = merged(once, scores(q1_answer=0.5).of("b1"))
    assert again == merged([question()], scores(q1_answer=0.5).of("b1"))
    assert again[0].criteria[0].score == 0.25 and not again[0].criteria[0].overridden


def test_merging_no_scores_gives_back_the_automatic_result():
    once = merged([question()], scores(q1_answer=0.75, q1_complete=0.1).of("b1"))
    assert merged(once, {}) == [question()]


@pytest.fixture(scope="module")
def graded(tmp_path_factory, small_eval_csv) -> Path:
    """The small example graded once, in-process, quick, with its PDF."""
    root = tmp_path_factory.mktemp("apply")
    shutil.copytree(EXAMPLES / "small_cnn", root / "small_cnn", ignore=shutil.ignore_patterns("__pycache__"))
    out = root / "out"
    setup = load_setup(read_faces(small_eval_csv), ROOT / "rubric.yaml", out, isolation="inprocess",
                       tasks=TaskSettings.quick())
    assert grade_submission(root / "small_cnn", setup).status == "graded"
    return out


def test_applied_scores_rewrite_the_result_pdf_and_gradebook_without_running_the_model(graded, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was opened")

    monkeypatch.setattr(student_folder, "open_model", no_model)
    before = stored_results(graded)[0]
    manual = scores_for(before.student_id)
    [after] = apply_manual_scores(graded, manual)
    assert after.question("q1").criteria[-1].score == 0.75
    assert after.score == pytest.approx(before.score + 0.75)
    assert stored_results(graded) == [after]
    assert "0.75" in (graded / "gradebook.csv").read_text()
    text = subprocess.run(["pdftotext", str(graded / after.student_id / "report.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "reads the maps per class" in text
    [back] = apply_manual_scores(graded, ManualScores.none())
    assert back == before


def scores_for(student_id: str) -> ManualScores:
    return ManualScores({student_id: {"q1_answer": ManualScore(student_id, "q1_answer", 0.75,
                                                               "reads the maps per class", 2)}})
