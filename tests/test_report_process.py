"""A submission's output folder written in a process of its own (grader.pipeline.report_process), as a
batch graded in one process writes it beside the next submission's model work: the same folder as
writing it here, and a process that dies fails only the submission it was writing."""

from __future__ import annotations

import json
import multiprocessing.spawn
import os
from dataclasses import replace
from pathlib import Path

import pytest

from grader.data.synth import generate
from grader.pipeline.report_process import ReportProcess
from grader.pipeline.setup import GradingSetup, load_setup
from grader.pipeline.student_folder import AssessedSubmission, assess_submission, write_submission
from grader.questions.settings import TaskSettings
from tests.test_sandbox import submission

pytestmark = pytest.mark.slow  # each test starts an interpreter or two (seconds of a core)

ROOT = Path(__file__).resolve().parents[1]
VOLATILE = ("timings", "graded_at")


def inprocess_setup(out: Path) -> GradingSetup:
    return load_setup(generate(64, seed=3), ROOT / "rubric.yaml", out, isolation="inprocess",
                      tasks=TaskSettings.quick())


@pytest.fixture(scope="module")
def assessed(tmp_path_factory) -> tuple[AssessedSubmission, GradingSetup]:
    root = tmp_path_factory.mktemp("report-process")
    setup = inprocess_setup(root / "unused")
    return assess_submission(submission(root, "honest"), setup), setup


class DiesWhenUnpickled:
    """Kills the process that unpickles it: a report process dying while it writes a submission."""

    def __reduce__(self):
        return os._exit, (9,)


def comparable(result_file: Path) -> dict:
    return {key: value for key, value in json.loads(result_file.read_text()).items() if key not in VOLATILE}


def test_the_output_folder_written_in_its_own_process_is_the_one_written_here(assessed, tmp_path):
    assessment, setup = assessed
    here = write_submission(assessment, replace(setup, out_dir=tmp_path / "here"))
    with ReportProcess(replace(setup, out_dir=tmp_path / "apart")) as reports:
        apart = reports.write(assessment)
    assert apart.status == here.status == "graded"
    assert apart.model_dump(exclude=set(VOLATILE)) == here.model_dump(exclude=set(VOLATILE))
    assert comparable(tmp_path / "apart/honest/result.json") == comparable(tmp_path / "here/honest/result.json")
    written = sorted(path.relative_to(tmp_path / "here/honest") for path in (tmp_path / "here/honest").rglob("*.*")
                     if path.suffix in (".png", ".npz"))
    assert len(written) >= 10
    for name in written:  # by the same code in another interpreter: the same arrays and pixels, byte for byte
        assert (tmp_path / "apart/honest" / name).read_bytes() == (tmp_path / "here/honest" / name).read_bytes()
    assert (tmp_path / "apart/honest/report.pdf").read_bytes().startswith(b"%PDF")


def test_a_report_process_that_dies_fails_only_the_submission_it_was_writing(assessed, tmp_path):
    assessment, setup = assessed
    doomed = replace(assessment, submission=replace(assessment.submission, student_id="doomed",
                                                    answers={"q1": DiesWhenUnpickled()}))
    with ReportProcess(replace(setup, out_dir=tmp_path)) as reports:
        failed = reports.write(doomed)
        after = reports.write(assessment)
    assert failed.status == "failed" and [error.stage for error in failed.errors] == ["grader"]
    assert "the process writing its report stopped" in failed.errors[0].message
    assert json.loads((tmp_path / "doomed/result.json").read_text())["status"] == "failed"
    assert after.status == "graded" and (tmp_path / "honest/report.pdf").is_file()


def test_an_assessment_that_cannot_be_sent_to_the_report_process_fails_only_its_submission(assessed, tmp_path):
    assessment, setup = assessed
    unsendable = replace(assessment, submission=replace(assessment.submission, student_id="unsendable",
                                                        answers={"q1": lambda: "not picklable"}))
    with ReportProcess(replace(setup, out_dir=tmp_path)) as reports:
        failed = reports.write(unsendable)
        after = reports.write(assessment)
    assert failed.status == "failed" and "pickle" in failed.errors[-1].message.lower()
    assert after.status == "graded" and (tmp_path / "honest/report.pdf").is_file()


def test_a_report_process_that_cannot_start_leaves_the_writing_to_this_process(assessed, tmp_path):
    assessment, setup = assessed
    python = multiprocessing.spawn.get_executable()
    multiprocessing.spawn.set_executable("/bin/false")  # every new interpreter exits at once
    try:
        with ReportProcess(replace(setup, out_dir=tmp_path)) as reports:
            result = reports.write(assessment)
            assert not reports.own_process
    finally:
        multiprocessing.spawn.set_executable(python)
    assert result.status == "graded" and (tmp_path / "honest/report.pdf").is_file()


def test_a_batch_of_one_writes_in_the_calling_process(assessed, tmp_path):
    assessment, setup = assessed
    with ReportProcess(replace(setup, out_dir=tmp_path), own_process=False) as reports:
        result = reports.write(assessment)
        assert reports._executor is None  # no interpreter started for nothing to run beside
    assert result.status == "graded" and (tmp_path / "honest/report.pdf").is_file()
