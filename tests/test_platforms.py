"""Gradescope's autograder and PrairieLearn's external grader (grader/platforms/, issue 18).

The autograder zip is built from this tree and unpacked into a temporary /autograder layout; its
run_autograder grades a real example (small_cnn) there, and the runner grades a failing one
(broken_six_classes) in PrairieLearn's /grade layout, writing both platforms' results from that one
run. Every results.json is validated against a JSON Schema written from the platform's docs
(tests/data/*_results.schema.json). Slow: grading runs in the sandbox (tests/conftest.py SLOW_FILES).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from grader.pipeline.kit import write_kit
from grader.platforms.common import write_json
from grader.platforms.gradescope import Autograder, build_autograder, gradescope_results
from grader.platforms.prairielearn import LIMIT_BYTES, fit_images, prairielearn_results
from grader.platforms.run import run
from grader.questions.settings import TaskSettings
from grader.result import CriterionResult, FigureRecord, QuestionResult, Result, StageError
from grader.scoring.rubric import default_rubric_path, load_rubric
from tests.conftest import EXAMPLES

DATA = Path(__file__).parent / "data"
GRADER_BIN = Path(sys.executable).parent / "grader"


def schema(name: str) -> jsonschema.Draft202012Validator:
    document = json.loads((DATA / f"{name}_results.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


GRADESCOPE = schema("gradescope")
PRAIRIELEARN = schema("prairielearn")
RUBRIC = load_rubric(default_rubric_path())
CRITERIA = [(q, c) for q in RUBRIC.questions for c in q.criteria]
AUTOMATIC_MAX = sum(c.points for _, c in CRITERIA if not c.manual)


def valid_gradescope(document: dict) -> dict:
    GRADESCOPE.validate(document)
    return document


def valid_prairielearn(path: Path) -> dict:
    """The file under 1 MB, valid, every image a PNG that decodes."""
    from PIL import Image

    assert path.stat().st_size < LIMIT_BYTES
    document = json.loads(path.read_text(encoding="ascii"))
    PRAIRIELEARN.validate(document)
    for image in document.get("images", []):
        header, payload = image["url"].split(",", 1)
        assert header == "data:image/png;base64"
        with Image.open(io.BytesIO(base64.b64decode(payload, validate=True))) as decoded:
            assert decoded.format == "PNG"
            decoded.load()
    return document


# ---------------------------------------------------------------- fixtures: the kit, the zip, two runs


@pytest.fixture(scope="module")
def kit(tmp_path_factory, small_eval_csv) -> Path:
    return write_kit(tmp_path_factory.mktemp("kit") / "course-kit.zip", data=small_eval_csv,
                     rubric=default_rubric_path(), usage="PublicTest", rows=400, tasks=TaskSettings.quick(),
                     language="en", profile="cpu")


@pytest.fixture(scope="module")
def autograder(tmp_path_factory, kit) -> Autograder:
    return build_autograder(kit, tmp_path_factory.mktemp("zip") / "autograder.zip", visibility="after_due_date")


def gradescope_root(base: Path, archive: Path, submission: Path | None) -> Path:
    """/autograder as Gradescope lays it out: the zip in source/, run_autograder copied to the
    root, the student's files flat in submission/."""
    root = base / "autograder"
    with zipfile.ZipFile(archive) as unpacked:
        unpacked.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    (root / "submission").mkdir()
    if submission is not None:
        for path in submission.iterdir():
            if path.is_file():
                shutil.copy(path, root / "submission" / path.name)
    return root


def run_autograder(root: Path, *args: str, grader_bin: Path = GRADER_BIN, path: str | None = None):
    env = {**os.environ, "XAI_GRADER_BIN": str(grader_bin)}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([str(root / "run_autograder"), str(root), *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, autograder, require_bwrap):
    """small_cnn through the generated run_autograder; the grading output kept for PrairieLearn."""
    base = tmp_path_factory.mktemp("graded")
    root = gradescope_root(base, autograder.path, EXAMPLES / "small_cnn")
    keep = base / "keep"
    finished = run_autograder(root, "--keep", str(keep))
    assert finished.returncode == 0, finished.stderr
    document = json.loads((root / "results" / "results.json").read_text())
    (folder,) = [path for path in keep.iterdir() if (path / "result.json").is_file()]
    return document, folder


@pytest.fixture(scope="module")
def failed(tmp_path_factory, kit, require_bwrap):
    """broken_six_classes in PrairieLearn's /grade layout, both platforms' results from one run."""
    root = tmp_path_factory.mktemp("failed") / "grade"
    shutil.copytree(EXAMPLES / "broken_six_classes", root / "student", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tests").mkdir()
    shutil.copy(kit, root / "tests" / "kit.zip")
    also = root / "gradescope" / "results.json"
    outcome = run("prairielearn", root, also={"gradescope": also})
    assert outcome.result is not None and outcome.result.status == "failed"
    return root / "results" / "results.json", json.loads(also.read_text())


# ---------------------------------------------------------------- the zip


def test_the_zip_has_setup_and_an_executable_run_autograder_at_its_root_the_kit_and_the_wheel(autograder, kit):
    with zipfile.ZipFile(autograder.path) as archive:
        names = archive.namelist()
        modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in archive.infolist()}
        setup = archive.read("setup.sh").decode()
        runner = archive.read("run_autograder").decode()
        assert archive.read("kit.zip") == kit.read_bytes()
    (wheel,) = [name for name in names if name.startswith("xai_grader-") and name.endswith(".whl")]
    assert {"setup.sh", "run_autograder", "kit.zip"} <= set(names) and "/" not in wheel
    assert modes["run_autograder"] == 0o755 and modes["setup.sh"] == 0o755
    assert setup.startswith("#!/usr/bin/env bash") and runner.startswith("#!/usr/bin/env bash")
    for needed in ("bubblewrap", "fonts-noto-cjk", "poppler-utils", "libpango-1.0-0", '"torch==2.13.0"',
                   "https://download.pytorch.org/whl/cpu", f"/autograder/source/{wheel}"):
        assert needed in setup
    assert "--visibility after_due_date" in runner
    for script in ("setup.sh", "run_autograder"):
        with zipfile.ZipFile(autograder.path) as archive:
            checked = subprocess.run(["bash", "-n"], input=archive.read(script), capture_output=True)
        assert checked.returncode == 0, checked.stderr
    assert autograder.automatic_points == AUTOMATIC_MAX
    assert [points for _, points in autograder.manual] == [c.points for _, c in CRITERIA if c.manual]


# ---------------------------------------------------------------- Gradescope results


def test_a_graded_submission_gives_one_test_per_criterion_and_the_accuracy_leaderboard(graded):
    document, _ = graded
    valid_gradescope(document)
    tests = document["tests"]
    assert [test["number"] for test in tests] == [f"{qi}.{ci}" for qi, q in enumerate(RUBRIC.questions, 1)
                                                  for ci, _ in enumerate(q.criteria, 1)]
    assert document["score"] == pytest.approx(sum(test["score"] for test in tests))
    assert 0 < document["score"] <= AUTOMATIC_MAX
    for test, (question, criterion) in zip(tests, CRITERIA):
        assert test["name"].startswith(question.id)
        if criterion.manual:
            assert test["score"] == 0 and test["max_score"] == 0 and "Graded by the TA" in test["output"]
            assert "status" not in test
        else:
            assert test["max_score"] == criterion.points
            assert test["status"] == ("passed" if test["score"] >= test["max_score"] else "failed")
    (board,) = document["leaderboard"]
    assert board["name"] == "Accuracy" and 0 < board["value"] <= 1 and board["order"] == "desc"
    assert document["visibility"] == "after_due_date" and document["stdout_visibility"] == "hidden"
    assert {test["visibility"] for test in document["tests"]} == {"after_due_date"}  # a test's own overrides
    assert document["output"].startswith("**Automatic score:") and document["output_format"] == "md"
    assert document["extra_data"]["status"] == "graded"


def test_a_failed_submission_says_what_to_fix(failed):
    _, document = failed
    valid_gradescope(document)
    assert document["score"] == 0 and "leaderboard" not in document
    assert "could not be graded" in document["output"] and "**Fix**" in document["output"]
    assert "one logit per expression class" in document["output"]  # the six-class model: what to fix
    assert all(test["score"] == 0 for test in document["tests"])


def test_grader_gradescope_writes_the_zip_and_says_what_to_set_up_in_gradescope(tmp_path, autograder, kit):
    from typer.testing import CliRunner

    from grader.cli import app

    with zipfile.ZipFile(autograder.path) as archive:
        (wheel,) = [name for name in archive.namelist() if name.endswith(".whl")]
        archive.extract(wheel, tmp_path)
    outcome = CliRunner().invoke(app, ["gradescope", "--kit", str(kit), "--out", str(tmp_path / "ag.zip"),
                                       "--wheel", str(tmp_path / wheel)])
    assert outcome.exit_code == 0, outcome.output
    assert f"autograder points {AUTOMATIC_MAX:g}" in outcome.output and "Manual questions to add" in outcome.output
    with zipfile.ZipFile(tmp_path / "ag.zip") as archive:
        assert {"setup.sh", "run_autograder", "kit.zip", wheel} <= set(archive.namelist())
    again = CliRunner().invoke(app, ["gradescope", "--kit", str(kit), "--out", str(tmp_path / "ag.zip"),
                                     "--wheel", str(tmp_path / wheel)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_an_upload_without_submission_yaml_is_told_so(tmp_path, kit):
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "model.py").write_text("import torch\n")
    (root / "source").mkdir()
    shutil.copy(kit, root / "source" / "kit.zip")
    outcome = run("gradescope", root)
    document = valid_gradescope(json.loads((root / "results" / "results.json").read_text()))
    assert outcome.result is not None and outcome.result.status == "failed"
    assert r"submission\.yaml is missing from your upload" in document["output"]  # escaped for Markdown


def test_without_bubblewrap_the_output_says_the_model_ran_in_a_plain_subprocess(tmp_path, kit, monkeypatch):
    import grader.sandbox.isolation

    monkeypatch.setattr(grader.sandbox.isolation, "bwrap_works", lambda: False)
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "source").mkdir()
    shutil.copy(kit, root / "source" / "kit.zip")
    run("gradescope", root)
    document = valid_gradescope(json.loads((root / "results" / "results.json").read_text()))
    assert "does not allow the bubblewrap sandbox" in document["output"]


def test_a_folder_uploaded_whole_is_graded_with_a_note(tmp_path, kit):
    root = tmp_path / "autograder"
    (root / "submission" / "hw").mkdir(parents=True)
    (root / "submission" / "hw" / "submission.yaml").write_text("student_id: [\n")  # unreadable: fails fast
    (root / "source").mkdir()
    shutil.copy(kit, root / "source" / "kit.zip")
    run("gradescope", root)
    document = valid_gradescope(json.loads((root / "results" / "results.json").read_text()))
    assert r"was in the folder \'hw\' of your upload" in document["output"]


def test_a_missing_kit_still_gives_results_that_send_the_student_to_the_staff(tmp_path):
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "results").mkdir()
    (root / "results" / "results.json").write_text('{"score": 99}')  # a stale one is never left standing
    outcome = run("gradescope", root)
    document = valid_gradescope(json.loads((root / "results" / "results.json").read_text()))
    assert outcome.result is None and document["score"] == 0
    assert "no course kit" in document["output"] and "tell the course staff" in document["output"]


def test_run_autograder_writes_results_even_when_the_grader_cannot_start(tmp_path, autograder):
    root = gradescope_root(tmp_path, autograder.path, EXAMPLES / "small_cnn")
    finished = run_autograder(root, grader_bin=tmp_path / "missing", path="/usr/bin:/bin")
    assert finished.returncode == 0
    document = valid_gradescope(json.loads((root / "results" / "results.json").read_text()))
    assert document["score"] == 0 and "could not start" in document["output"]


def student_result(**changes) -> Result:
    criteria = [CriterionResult(id="acc", description="accuracy", score=1.0, max_score=2.0, value=0.5,
                                threshold="value >= 0.6: 2 pt", message="**bold** <img src=x onerror=alert(1)>"),
                CriterionResult(id="answer", description="the answer", score=None, max_score=1.0, manual=True)]
    fields = dict(student_id="b01", name="[click](javascript:alert(1))", status="graded", score=1.0, max_score=3.0,
                  questions=[QuestionResult(id="q1", title="Saliency", score=1.0, max_score=3.0, criteria=criteria)],
                  errors=[StageError(stage="q1_saliency", message="# heading\n<script>x</script> ![i](http://e/x)")],
                  accuracy=0.5, tool_version="0.1.0")
    return Result(**{**fields, **changes})


def test_student_text_cannot_become_markdown_or_html_in_gradescope():
    document = valid_gradescope(gradescope_results(student_result(), execution_time=3.2))
    text = document["output"] + "".join(test["output"] for test in document["tests"])
    for raw in ("<script>", "<img", "![i](", "**bold**", "\n# heading"):
        assert raw not in text
    assert "&lt;script&gt;" in text and r"\*\*bold\*\*" in text
    assert document["score"] == 1.0 and document["execution_time"] == 3


# ---------------------------------------------------------------- PrairieLearn results


def test_a_graded_submission_for_prairielearn_has_points_and_its_figures_under_1_mb(graded, tmp_path):
    _, folder = graded
    result = Result.read(folder / "result.json")
    path = tmp_path / "results.json"
    write_json(path, prairielearn_results(result, folder))
    document = valid_prairielearn(path)
    assert document["gradable"] is True and 0 < document["score"] <= 1
    auto = [test for test, (_, c) in zip(document["tests"], CRITERIA) if not c.manual]
    assert document["score"] == pytest.approx(sum(t["points"] for t in auto) / AUTOMATIC_MAX, abs=1e-6)
    assert len(document["tests"]) == len(CRITERIA)
    assert len(document["images"]) == len(result.figures) > 0
    assert all(image["label"].startswith("q") for image in document["images"])


def test_a_failed_submission_for_prairielearn_is_not_gradable_and_says_why(failed):
    path, _ = failed
    document = valid_prairielearn(path)
    assert document["gradable"] is False and document["format_errors"]
    assert "could not be graded" in document["message"] and "no attempt used" in document["message"]


def test_figures_over_the_limit_are_downscaled_then_left_out_with_a_note(tmp_path):
    """The same rule as at 1 MB, at 30 kB so that a few small figures cross it."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "figures").mkdir()
    records = []
    for index in range(6):  # noise does not compress: 6 x ~120 kB
        name = f"figures/noise{index}.png"
        Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(tmp_path / name)
        records.append(FigureRecord(question="q1", path=name, caption=f"noise {index}"))
    path = tmp_path / "results.json"
    write_json(path, prairielearn_results(student_result(figures=records), tmp_path, limit=30_000))
    document = valid_prairielearn(path)
    assert path.stat().st_size < 30_000
    assert 0 < len(document["images"]) < 6
    assert "left out to keep the results under PrairieLearn's size limit" in document["message"]
    with Image.open(io.BytesIO(base64.b64decode(document["images"][0]["url"].split(",", 1)[1]))) as first:
        assert first.width < 200  # downscaled before anything was left out


def test_small_figures_go_in_unchanged():
    png = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(png, format="PNG")
    document: dict = {"score": 1.0}
    assert fit_images(document, [("q1: red", png.getvalue())]) == []
    assert base64.b64decode(document["images"][0]["url"].split(",", 1)[1]) == png.getvalue()
