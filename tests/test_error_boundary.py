"""One error boundary per submission (issue 13, class 3): whatever fails while the grader handles
one submission, from its figures and PDF to the grader's own code, fails that submission's result
with the reason, and the class outputs are written for everyone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from grader.pipeline import student_folder
from grader.pipeline.class_run import grade_class
from grader.pipeline.student_folder import grade_submission
from grader.report import artifacts
from tests.test_classrun import class_folder, setup_for  # noqa: F401  (class_folder is a fixture)

pytestmark = pytest.mark.slow


@pytest.fixture
def two_students(class_folder) -> Path:
    """The class-run tests' class without its broken submission: two copies of the small example."""
    shutil.rmtree(class_folder / "zz_broken")
    return class_folder


def test_a_pdf_that_cannot_be_made_is_an_error_of_that_result(two_students, tmp_path, small_eval_csv, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("WeasyPrint could not lay this out")

    monkeypatch.setattr(student_folder, "write_pdf", broken)
    result = grade_submission(two_students / "student0", setup_for(tmp_path / "out", small_eval_csv))
    assert result.status == "graded"
    assert [e.stage for e in result.errors] == ["report"]
    assert "the PDF could not be made (ValueError: WeasyPrint could not lay this out" in result.errors[0].message
    written = json.loads((tmp_path / "out" / "b00000000" / "result.json").read_text())
    assert written["errors"][0]["stage"] == "report"


def test_a_figure_that_cannot_be_drawn_is_left_out_with_an_error(two_students, tmp_path, small_eval_csv,
                                                                monkeypatch):
    real = artifacts.png_bytes
    calls = []

    def fussy(figure):  # the first figure written is Q1's saliency figure
        calls.append(figure)
        if len(calls) == 1:
            raise ValueError("mathtext could not parse the title")
        return real(figure)

    monkeypatch.setattr(artifacts, "png_bytes", fussy)
    result = grade_submission(two_students / "student0", setup_for(tmp_path / "out", small_eval_csv))
    messages = [e.message for e in result.errors if e.stage == "report"]
    assert messages and "figures/saliency.png could not be drawn" in messages[0]
    figures = tmp_path / "out" / "b00000000" / "figures"
    assert not (figures / "saliency.png").exists() and (figures / "lime.png").exists()
    assert (tmp_path / "out" / "b00000000" / "report.pdf").is_file()


def test_a_failure_of_the_graders_own_fails_only_that_submission(two_students, tmp_path, small_eval_csv,
                                                                 monkeypatch):
    # A stand-in for a bug of the grader's own that shows only when a submission is written: an answer
    # that is not text, made where the folder is read (here) and failing where its result is built (in
    # the batch's report process, grader.pipeline.report_process, which a monkeypatch does not reach).
    real = student_folder._read_spec

    def flawed(submission, *args, **kwargs):
        real(submission, *args, **kwargs)
        if submission.student_id == "b00000001":
            submission.answers = {**submission.answers, "q1": ["not", "text"]}

    monkeypatch.setattr(student_folder, "_read_spec", flawed)
    results = {r.student_id: r for r in grade_class(two_students, setup_for(tmp_path / "out", small_eval_csv))}
    assert results["b00000000"].status == "graded"
    failed = results["b00000001"]
    assert failed.status == "failed" and failed.errors[-1].stage == "grader"
    assert "ValidationError" in failed.errors[-1].message and "answers.q1" in failed.errors[-1].message
    assert "not yours" in failed.errors[-1].message
    assert json.loads((tmp_path / "out" / "b00000001" / "result.json").read_text())["status"] == "failed"
    assert not failed.cache_key  # the next run tries again
    for name in ("gradebook.csv", "similarity.csv", "index.html"):
        assert (tmp_path / "out" / name).is_file()


def test_the_class_outputs_are_written_when_the_similarity_report_fails(two_students, tmp_path, small_eval_csv,
                                                                      monkeypatch):
    from grader.pipeline import class_run

    def broken(*args, **kwargs):
        raise MemoryError("a fingerprint too large")

    monkeypatch.setattr(class_run, "find_similar_pairs", broken)
    grade_class(two_students, setup_for(tmp_path / "out", small_eval_csv))
    assert (tmp_path / "out" / "similarity.csv").read_text().count("\n") == 1  # the header alone
    assert (tmp_path / "out" / "index.html").is_file() and (tmp_path / "out" / "gradebook.csv").is_file()
