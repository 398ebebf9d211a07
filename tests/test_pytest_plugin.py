"""The pytest plugin (grader/pytest_plugin.py, found through its pytest11 entry point): run with pytester in
a temporary project, as course staff would: `pytest --xai-submission PATH --xai-kit KIT` grades once
and yields a test per rubric criterion, and the fixtures serve the staff's own checks. Slow (it grades
in the sandbox: tests/conftest.py SLOW_FILES)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.pipeline.kit import write_kit
from grader.questions.settings import TaskSettings
from grader.result import Result
from grader.scoring.rubric import default_rubric_path, load_rubric
from tests.conftest import EXAMPLES

pytest_plugins = ["pytester"]

# Read now, not inside a test: pytester drops the modules a test imported when it ends, and numpy's
# extensions cannot be imported twice in one process.
RUBRIC = load_rubric(default_rubric_path())
REAL_HOME = str(Path.home())  # pytester points HOME at its project; matplotlib's font cache lives in the real one

STAFF_CHECKS = '''
import numpy as np

from grader.pytest_plugin import PLUGIN_NAME


def test_every_figure_is_a_png(xai_figures):
    assert "confusion_matrix" in xai_figures and len(xai_figures) > 3
    for path in xai_figures.values():
        assert path.read_bytes()[:8] == b"\\x89PNG\\r\\n\\x1a\\n", path


def test_the_arrays_read_back(xai_arrays):
    confusion = xai_arrays["confusion"]["confusion"]
    assert confusion.shape == (7, 7) and np.isfinite(confusion).all()
    assert "saliency" in xai_arrays and all(len(xai_arrays[name]) > 0 for name in xai_arrays)


def test_graded_once_per_session(request, xai_result, xai_output):
    assert request.config.pluginmanager.get_plugin(PLUGIN_NAME).result() is xai_result
    assert (xai_output / "report.pdf").is_file() and (xai_output / "result.json").is_file()
    assert xai_result.status == "graded"
'''


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    """A --quick kit over 60 synthetic labeled faces."""
    from grader.data.synth import write_synthetic

    folder = tmp_path_factory.mktemp("kit")
    public = write_synthetic(folder / "public", seed=5, train_size=0, eval_size=60)["eval.csv"]
    return write_kit(folder / "course-kit.zip", data=public, rubric=default_rubric_path(), usage="PublicTest",
                     rows=60, tasks=TaskSettings.quick(), language="en", profile="cpu")


@pytest.fixture()
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("HOME", REAL_HOME)
    return pytester


def outcome(criterion) -> str:
    if criterion.manual:
        return "SKIPPED"
    return "PASSED" if criterion.score is not None and criterion.score >= criterion.max_score - 1e-9 else "FAILED"


def test_each_criterion_is_a_test_and_the_fixtures_serve_staff_checks(project, kit, require_bwrap):
    submission = project.path / "small_cnn"
    shutil.copytree(EXAMPLES / "small_cnn", submission, ignore=shutil.ignore_patterns("__pycache__"))
    project.makepyfile(test_staff=STAFF_CHECKS)

    # --xai-kit=PATH: pytest finds its rootdir before it loads plugins, and would take a kit path given
    # as a separate word for a test path (and the kit's folder for the rootdir).
    run = project.runpytest_subprocess("--xai-submission", "small_cnn", f"--xai-kit={kit}", "--xai-out", "out",
                                       "-v", "-rs", "-p", "no:cacheprovider", timeout=300)

    results = list((project.path / "out").glob("*/result.json"))
    assert len(results) == 1, run.stdout.str()
    graded = Result.read(results[0])
    assert graded.status == "graded", graded.errors
    criteria = [(question.id, criterion) for question in graded.questions for criterion in question.criteria]
    assert [c.id for _, c in criteria] == [c.id for q in RUBRIC.questions for c in q.criteria]
    counts = {kind: sum(outcome(c) == kind for _, c in criteria) for kind in ("PASSED", "FAILED", "SKIPPED")}
    assert counts["PASSED"] and counts["SKIPPED"]
    run.assert_outcomes(passed=counts["PASSED"] + 3, failed=counts["FAILED"], skipped=counts["SKIPPED"])
    assert run.ret == (1 if counts["FAILED"] else 0)
    run.stdout.fnmatch_lines_random([f"xai::{question}::{c.id} {outcome(c)}*" for question, c in criteria])
    run.stdout.fnmatch_lines(["*xai-grader: grading *small_cnn with the kit *course-kit.zip*"])
    run.stdout.fnmatch_lines(["SKIPPED [[]1] xai::q1::q1_answer: manual: the TA scores *from the written answer*"])
    run.stdout.fnmatch_lines([f"*{graded.student_id}*: graded, {graded.score:g}/{graded.max_score:g} points*",
                              "*output: *report.pdf*"])
    for question, criterion in criteria:
        if outcome(criterion) == "FAILED":  # the failure text: points, the measured value and the bands
            run.stdout.fnmatch_lines([f"*{question}/{criterion.id}: {criterion.score:g} of {criterion.max_score:g} "
                                      "points*", "*measured: *", f"*bands: {criterion.threshold}*"])


def test_a_submission_that_fails_to_grade_fails_every_criterion_with_what_to_fix(project, kit):
    submission = project.path / "broken"
    shutil.copytree(EXAMPLES / "small_cnn", submission, ignore=shutil.ignore_patterns("__pycache__"))
    (submission / "weights.pt").unlink()

    run = project.runpytest_subprocess("--xai-submission", "broken", f"--xai-kit={kit}", "-p", "no:cacheprovider",
                                       timeout=300)

    run.assert_outcomes(failed=sum(len(q.criteria) for q in RUBRIC.questions))
    run.stdout.fnmatch_lines(["*failed to grade (status failed), so q1/q1_complete scores 0 of *; what to fix:",
                              "*fix (*weights.pt*"])


def test_nothing_inside_the_submission_is_collected_or_imported(project):
    student = project.path / "homework"
    student.mkdir()
    marker = project.path / "student-code-ran"
    for name in ("conftest.py", "test_mine.py"):
        (student / name).write_text(f"open({str(marker)!r}, 'w').write('ran')\n")

    run = project.runpytest_subprocess("--xai-submission", "homework", "--collect-only", "-q", "-p", "no:cacheprovider")

    assert not marker.exists(), run.stdout.str()
    assert "test_mine" not in run.stdout.str()


def test_without_a_submission_the_plugin_adds_nothing(project):
    project.makepyfile(
        test_plain="def test_one():\n    pass\n",
        test_fixture="def test_needs_a_submission(xai_result):\n    pass\n",
        test_inert="""
import sys

def test_loaded_but_nothing_heavy_imported():
    assert "grader.pytest_plugin" in sys.modules  # found through the entry point
    heavy = [name for name in sys.modules if name.split(".")[0] in ("torch", "numpy", "matplotlib")
             or name.startswith("grader.pipeline")]
    assert not heavy, heavy
""")

    run = project.runpytest_subprocess("-v", "-rs", "-p", "no:cacheprovider")

    run.assert_outcomes(passed=2, skipped=1)
    assert not any("xai::" in line for line in run.outlines)
    run.stdout.fnmatch_lines(["*no submission to check: run pytest with --xai-submission PATH*"])
    assert "--xai-submission" in project.runpytest_subprocess("--help").stdout.str()
    refused = project.runpytest_subprocess("--xai-kit", "kit.zip")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    assert "--xai-kit need --xai-submission PATH" in refused.stderr.str()
    in_workers = project.runpytest_subprocess("--xai-submission", "anything", "-n", "2")
    assert in_workers.ret == pytest.ExitCode.USAGE_ERROR and "without pytest-xdist's -n" in in_workers.stderr.str()
