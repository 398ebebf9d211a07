"""`grader grade` and `grader check` end to end on the example submissions, as a TA runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from grader.cli import app
from tests.conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.slow
runner = CliRunner()
EXAMPLE_IDS = {"vgg": "b09902011", "small_cnn": "b09902022", "lightning_ckpt": "b09902033",
               "torchscript": "b09902044", "residual_zh": "r11922055", "broken_six_classes": "b09902066"}


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


MANUAL_SCORES = """student_id,criterion,points,comment
r11922055,q1_answer,1,讀圖清楚，但沒有比較不同類別
b09902022,q3_accuracy,0.4,"accepted: the course split was mislabeled"
b09999999,q1_answer,1,nobody submitted under this id
"""


@pytest.fixture(scope="module")
def six_examples(tmp_path_factory) -> Path:
    """The six examples named above, not whatever submissions/ holds: a later example (shortcut_cue,
    a demonstration for the explanation metrics) would add its grading time and a gradebook row."""
    examples = tmp_path_factory.mktemp("examples") / "submissions"
    for folder in EXAMPLE_IDS:
        shutil.copytree(EXAMPLES / folder, examples / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return examples


@pytest.fixture(scope="module")
def graded(tmp_path_factory, small_eval_csv, six_examples) -> Path:
    out = tmp_path_factory.mktemp("out")
    scores = tmp_path_factory.mktemp("ta") / "scores.csv"
    scores.write_text(MANUAL_SCORES, encoding="utf-8")
    result = invoke("grade", six_examples, "--data", small_eval_csv, "--rubric", ROOT / "rubric.yaml", "--out", out,
                    "--quick", "--manual", scores, "--canvas", out / "canvas.csv")
    assert "scores 1 student(s) with no submission here: b09999999" in result.output
    assert result.exit_code == 0, result.output
    return out


def read_result(out: Path, folder: str) -> dict:
    return json.loads((out / EXAMPLE_IDS[folder] / "result.json").read_text(encoding="utf-8"))


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def test_every_example_gets_a_result_and_a_pdf(graded):
    for student_id in EXAMPLE_IDS.values():
        assert (graded / student_id / "result.json").is_file()
        assert (graded / student_id / "report.pdf").read_bytes().startswith(b"%PDF")


def test_working_examples_are_graded_and_the_broken_one_failed(graded):
    statuses = {folder: read_result(graded, folder)["status"] for folder in EXAMPLE_IDS}
    assert statuses == {**{folder: "graded" for folder in EXAMPLE_IDS}, "broken_six_classes": "failed"}


def test_the_broken_example_is_told_what_to_fix(graded):
    result = read_result(graded, "broken_six_classes")
    assert result["errors"][0]["stage"] == "checks"
    assert "returned shape (8, 6) for 8 faces, expected (8, 7)" in result["errors"][0]["message"]
    assert result["accuracy"] is None and result["score"] == 0
    assert "expected (8, 7)" in pdf_text(graded / "b09902066" / "report.pdf")


def test_result_json_holds_the_contract_fields(graded):
    result = read_result(graded, "vgg")
    for key in ("student_id", "name", "status", "score", "max_score", "questions", "errors", "accuracy",
                "confusion_matrix", "profile", "timings", "tool_version", "submission_sha256"):
        assert key in result, key
    criterion = result["questions"][0]["criteria"][0]
    assert set(criterion) >= {"id", "score", "max_score", "value", "manual", "message"}
    assert result["max_score"] == 10 and len(result["submission_sha256"]) == 64
    assert result["profile"]["name"] == "cpu" and result["profile"]["threads"] == 1
    assert result["isolation"] == "bwrap"


def test_confusion_matrix_rows_sum_to_one(graded):
    matrix = read_result(graded, "vgg")["confusion_matrix"]
    assert len(matrix) == 7 and all(len(row) == 7 for row in matrix)
    assert all(abs(sum(row) - 1) < 1e-5 for row in matrix)


def test_accuracy_in_result_matches_its_criterion(graded):
    result = read_result(graded, "residual_zh")
    q3 = next(q for q in result["questions"] if q["id"] == "q3")
    assert q3["criteria"][0]["value"] == pytest.approx(result["accuracy"])


def test_gradebook_has_one_row_a_student_with_the_contract_columns(graded):
    book = pd.read_csv(graded / "gradebook.csv", dtype={"student_id": str})
    assert list(book.columns[:9]) == ["student_id", "name", "status", "q1", "q2", "q3", "q4", "total", "max_total"]
    assert sorted(book["student_id"]) == sorted(EXAMPLE_IDS.values())
    assert book.set_index("student_id").loc["r11922055", "name"] == "林志皓"
    assert (book["max_total"] == 10).all()


def test_the_pdf_shows_the_student_and_the_scores(graded):
    text = pdf_text(graded / "r11922055" / "report.pdf")
    result = read_result(graded, "residual_zh")
    assert "r11922055" in text and "林志皓" in text
    assert f"{result['score']:g} / 10" in text
    assert f"{100 * result['accuracy']:.1f}%" in text


def test_no_staging_folders_are_left_behind(graded):
    assert not [p.name for p in graded.iterdir() if p.name.startswith(".")]


def test_arrays_and_figures_back_the_confusion_matrix(graded):
    import numpy as np

    arrays = np.load(graded / "b09902011" / "arrays" / "confusion.npz")
    assert arrays["counts"].sum() == 400
    assert (graded / "b09902011" / "figures" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_a_bad_submission_never_stops_the_batch(examples_copy, small_eval_csv, tmp_path):
    for folder in ("vgg", "lightning_ckpt", "torchscript", "residual_zh", "broken_six_classes"):
        shutil.rmtree(examples_copy / folder)
    shutil.copytree(examples_copy / "small_cnn", examples_copy / "small_cnn_copy")
    (examples_copy / "empty").mkdir()
    (examples_copy / "syntax").mkdir()
    shutil.copy(examples_copy / "small_cnn" / "weights.pt", examples_copy / "syntax")
    (examples_copy / "syntax" / "submission.yaml").write_text(
        (examples_copy / "small_cnn" / "submission.yaml").read_text().replace("b09902022", "b0000001"))
    (examples_copy / "syntax" / "model.py").write_text("def small_cnn(:\n    pass\n")
    out = tmp_path / "out"

    # One worker: what is tested is the batch going on, which does not depend on the runner (the
    # Dask runner's own batches: tests/test_sandbox.py, tests/test_classrun.py).
    outcome = invoke("grade", examples_copy, "--data", small_eval_csv, "--out", out,
                     "--rubric", ROOT / "rubric.yaml", "--quick", "--workers", "1")

    assert outcome.exit_code == 0, outcome.output
    book = pd.read_csv(out / "gradebook.csv", dtype={"student_id": str})
    claims = book[book["student_id"] == "b09902022"]
    assert list(claims["status"]) == ["conflict", "conflict"]  # the copy and the original both claim the id
    assert any("also claimed by the submission folder 'small_cnn_copy'" in error for error in claims["error"])
    by_id = book.set_index("student_id")
    assert "no submission.yaml" in by_id.loc["empty", "error"]
    assert "syntax error in model.py line 1" in by_id.loc["b0000001", "error"]


def test_a_broken_rubric_stops_before_any_submission_runs(tmp_path, small_eval_csv):
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text((ROOT / "rubric.yaml").read_text().replace("metric: accuracy", "metric: acc"))
    outcome = invoke("grade", EXAMPLES, "--data", small_eval_csv, "--rubric", rubric, "--out", tmp_path / "out")
    assert outcome.exit_code == 2
    assert "unknown metric 'acc'" in outcome.output and "rubric.yaml:" in outcome.output
    assert not (tmp_path / "out").exists()


def test_unlabeled_data_is_refused_with_a_reason(tmp_path, small_eval_csv):
    outcome = invoke("grade", EXAMPLES, "--data", small_eval_csv.with_name("test.csv"), "--out", tmp_path / "o")
    assert outcome.exit_code == 2 and "has no labels" in outcome.output


def test_malformed_data_names_the_file_and_line(tmp_path):
    bad = tmp_path / "eval.csv"
    bad.write_text("label,feature\n3,1 2 3\n")
    outcome = invoke("grade", EXAMPLES, "--data", bad, "--out", tmp_path / "o")
    assert outcome.exit_code == 2 and f"{bad}:2" in outcome.output.replace("\n", "")


def test_check_passes_a_good_submission_and_prints_its_scores(small_cnn_checked):
    out, output = small_cnn_checked
    assert "b09902022" in output and "Model accuracy" in output and "report:" in output
    assert (out / "b09902022" / "report.pdf").is_file()


def test_check_tells_the_student_which_claims_their_measurements_contradict(tmp_path, small_eval_csv):
    """In the course's language: a student sees before handing in that the answer names the wrong class."""
    outcome = invoke("check", EXAMPLES / "lightning_ckpt", "--data", small_eval_csv, "--out", tmp_path, "--quick",
                     "--lang", "zh-TW")
    assert outcome.exit_code == 0, outcome.output
    line = next(line for line in outcome.output.splitlines() if "worst on Fear" in line and "恐懼" in line)
    assert line.startswith("與量測不符 q3") and "最差的是厭惡 0%" in line
    result = json.loads((tmp_path / "b09902033" / "result.json").read_text(encoding="utf-8"))
    worst = next(c for c in result["claims"] if c["kind"] == "worst_class")
    assert worst["evidence"].startswith("恐懼的召回率")


def test_check_fails_a_broken_submission_and_says_what_to_fix(tmp_path, small_eval_csv):
    outcome = invoke("check", EXAMPLES / "broken_six_classes", "--data", small_eval_csv, "--out", tmp_path)
    assert outcome.exit_code == 1
    assert "fix (checks)" in outcome.output and "expected (8, 7)" in outcome.output.replace("\n", "")
    assert "improve:" not in outcome.output  # only what to fix: no task ran, so nothing to improve


def test_data_synth_writes_the_course_layout(tmp_path):
    outcome = invoke("data", "synth", "--out", tmp_path, "--train-size", "14", "--eval-size", "7")
    assert outcome.exit_code == 0, outcome.output
    assert (tmp_path / "train.csv").read_text().splitlines()[0] == "label,feature"
    assert (tmp_path / "test.csv").read_text().splitlines()[0] == "id,feature"
    assert len((tmp_path / "eval.csv").read_text().splitlines()) == 8


def test_grade_refuses_to_run_student_code_unsandboxed_unless_told(monkeypatch, tmp_path, small_eval_csv):
    import grader.sandbox.isolation as isolation

    monkeypatch.setattr(isolation, "bwrap_works", lambda: False)
    refused = invoke("grade", EXAMPLES, "--data", small_eval_csv, "--out", tmp_path / "refused")
    assert refused.exit_code == 2 and "--no-sandbox" in refused.output
    assert not (tmp_path / "refused").exists()


def test_grade_with_no_sandbox_runs_submissions_in_a_plain_subprocess(examples_copy, tmp_path, small_eval_csv):
    for folder in examples_copy.iterdir():
        if folder.name != "small_cnn":
            shutil.rmtree(folder)
    outcome = invoke("grade", examples_copy, "--data", small_eval_csv, "--out", tmp_path / "out", "--no-sandbox",
                     "--quick")
    assert outcome.exit_code == 0, outcome.output
    assert "plain subprocess" in outcome.output
    assert json.loads((tmp_path / "out" / "b09902022" / "result.json").read_text())["isolation"] == "subprocess"


def test_check_without_bwrap_warns_and_still_checks(monkeypatch, tmp_path, small_eval_csv):
    import grader.sandbox.isolation as isolation

    monkeypatch.setattr(isolation, "bwrap_works", lambda: False)
    outcome = invoke("check", EXAMPLES / "small_cnn", "--data", small_eval_csv, "--out", tmp_path,
                     "--quick")
    assert outcome.exit_code == 0, outcome.output
    assert "bubblewrap is not available" in outcome.output


# Each figure's size in pixels: its matplotlib figsize at 100 dpi (grader/report/figures/), for
# seven classes. The free-choice figure is the one each example's submission.yaml asks for.
FIGURE_SIZES = {"confusion_matrix": (520, 460), "saliency": (1050, 480), "lime": (1050, 200),
                "filters": (640, 680), "filter_outputs": (640, 680), "randomization": (1050, 530)}
FREEFORM_FIGURES = {"gradcam": (1050, 480), "integrated_gradients": (1050, 480), "class_model": (1050, 200)}


@pytest.mark.parametrize("folder", [folder for folder in EXAMPLE_IDS if folder != "broken_six_classes"])
def test_every_figure_of_an_example_is_a_png_of_its_size_that_is_not_blank(graded, folder):
    from PIL import Image

    freeform = {"lightning_ckpt": "gradcam", "residual_zh": "integrated_gradients"}.get(folder, "class_model")
    expected = {**FIGURE_SIZES, freeform: FREEFORM_FIGURES[freeform]}
    figures = graded / EXAMPLE_IDS[folder] / "figures"
    assert sorted(path.stem for path in figures.iterdir()) == sorted(expected)
    for name, size in expected.items():
        with Image.open(figures / f"{name}.png") as image:
            assert image.format == "PNG" and image.size == size, name
            pixels = np.asarray(image.convert("L"), dtype=np.float64)
        assert pixels.std() > 10, f"{name} is blank"


def test_task_arrays_follow_the_contract(graded):
    saliency = np.load(graded / "b09902011" / "arrays" / "saliency.npz")
    assert saliency["images"].shape == (7, 48, 48) and saliency["images"].dtype == np.uint8
    assert saliency["maps"].shape == (7, 48, 48) and saliency["maps"].dtype == np.float32
    assert sorted(saliency["labels"].tolist()) == list(range(7))
    lime = np.load(graded / "b09902011" / "arrays" / "lime.npz")
    assert lime["segments"].shape == (7, 48, 48) and lime["weights"].shape[0] == 7 and lime["score"].shape == (7,)


@pytest.fixture(scope="module")
def small_cnn_checked(tmp_path_factory, small_eval_csv) -> tuple[Path, str]:
    """`grader check` of the small example with --quick, once for the module: its output folder
    and what it printed."""
    out = tmp_path_factory.mktemp("small_cnn_check")
    outcome = invoke("check", EXAMPLES / "small_cnn", "--data", small_eval_csv, "--out", out, "--quick")
    assert outcome.exit_code == 0, outcome.output
    return out, outcome.output


def test_two_checks_of_one_submission_give_byte_identical_arrays(small_cnn_checked, tmp_path, small_eval_csv):
    outcome = invoke("check", EXAMPLES / "small_cnn", "--data", small_eval_csv, "--out", tmp_path / "second",
                     "--quick")
    assert outcome.exit_code == 0, outcome.output
    first, second = (sorted((run / "b09902022" / "arrays").iterdir()) for run in (small_cnn_checked[0], tmp_path / "second"))
    assert [p.name for p in first] == ["class_model.npz", "confusion.npz", "filters.npz", "lime.npz", "probes.npz",
                                      "saliency.npz", "weights_fingerprint.npz"]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name
    # The scores too: every criterion's value, bootstrap interval, borderline flag and points (issue 19).
    criteria = [[c for q in read_result(run, "small_cnn")["questions"] for c in q["criteria"]]
                for run in (small_cnn_checked[0], tmp_path / "second")]
    assert criteria[0] == criteria[1]
    assert any(c["interval"] is not None for c in criteria[0])


def test_a_torchscript_model_gets_its_filter_task_through_its_graph(graded):
    result = read_result(graded, "torchscript")
    assert result["status"] == "graded" and result["errors"] == []
    filters = np.load(graded / "b09902044" / "arrays" / "filters.npz")
    assert str(filters["layer"]) == "conv1" and filters["patterns"].shape == (32, 48, 48)
    assert filters["outputs"].shape == (32, 48, 48)


def test_check_with_smoothgrad_draws_q1_by_smoothgrad(small_cnn_checked, tmp_path, small_eval_csv):
    smooth = invoke("check", EXAMPLES / "small_cnn", "--data", small_eval_csv, "--out", tmp_path / "smooth", "--quick",
                    "--smoothgrad")
    assert smooth.exit_code == 0, smooth.output
    maps = [np.load(run / "b09902022" / "arrays" / "saliency.npz")["maps"] for run in (small_cnn_checked[0], tmp_path / "smooth")]
    assert maps[0].shape == maps[1].shape == (7, 48, 48)
    assert not np.allclose(maps[0], maps[1])


def criterion(result: dict, criterion_id: str) -> dict:
    return next(c for q in result["questions"] for c in q["criteria"] if c["id"] == criterion_id)


def test_the_tas_manual_score_and_comment_reach_the_result_and_the_pdf(graded):
    result = read_result(graded, "residual_zh")
    answer = criterion(result, "q1_answer")
    assert answer["score"] == 1 and answer["comment"] == "讀圖清楚，但沒有比較不同類別"
    text = pdf_text(graded / "r11922055" / "report.pdf")
    assert "讀圖清楚，但沒有比較不同類別" in text


def test_an_override_shows_the_automatic_points_it_replaced(graded):
    result = read_result(graded, "small_cnn")
    accuracy = criterion(result, "q3_accuracy")
    assert accuracy["overridden"] and accuracy["score"] == 0.4 and accuracy["auto_score"] == 0
    text = " ".join(pdf_text(graded / "b09902022" / "report.pdf").split())  # cells wrap where their width says
    assert "Points set by the TA; the automatic score was 0" in text
    assert "accepted: the course split was mislabeled" in text


def test_the_students_written_answers_are_in_the_pdf_beside_each_question(graded):
    result = read_result(graded, "residual_zh")
    assert sorted(result["answers"]) == ["q1", "q2", "q3", "q4"]
    text = pdf_text(graded / "r11922055" / "report.pdf").replace(" ", "")
    assert "你的書面回答" not in text  # the report is in English; the answer itself is Chinese
    assert "顯著圖（saliencymap）顯示模型主要看嘴巴與眉毛" in text
    assert "No written answer found: report.md needs a section headed '## 1'." in pdf_text(
        graded / "b09902011" / "report.pdf")


def verdicts(result: dict) -> dict[tuple[str, str, tuple[str, ...]], str]:
    """Claims said of every map (no class named), by question, kind and subject."""
    return {(c["question"], c["kind"], tuple(c["subject"])): c["verdict"] for c in result["claims"] if not c["classes"]}


def test_each_answers_claims_are_checked_against_the_students_own_measurements(graded):
    found = verdicts(read_result(graded, "lightning_ckpt"))
    assert found[("q1", "attention", ("eyes", "mouth"))] == "supported"
    assert found[("q3", "best_class", ("3",))] == "supported"
    assert found[("q3", "worst_class", ("2",))] == "contradicted"  # the answer says Fear; Disgust is worst
    assert found[("q4", "freeform_subject", ("gradcam", "",  ""))] == "supported"
    chinese = verdicts(read_result(graded, "residual_zh"))
    assert chinese[("q1", "attention", ("brows", "mouth"))] == "supported"
    assert chinese[("q4", "freeform_subject", ("integrated_gradients", "", ""))] == "supported"


def test_the_pdf_shows_what_each_answer_claims_and_what_was_measured(graded):
    text = " ".join(pdf_text(graded / "b09902033" / "report.pdf").split())
    assert "What your answer claims, and what we measured" in text
    assert ("contradicted “The model does best on Happy and worst on Fear.” Fear is recognized worst recall of Fear "
            in text) and "the worst is Disgust 0%" in text


def test_the_result_records_the_data_file_and_the_input_spec_as_applied(graded, small_eval_csv):
    import hashlib

    result = read_result(graded, "lightning_ckpt")
    assert result["data_path"] == str(small_eval_csv.resolve()) and not result["data_synthetic"]
    assert result["data_sha256"] == hashlib.sha256(small_eval_csv.read_bytes()).hexdigest()
    assert result["input_spec"] == {"size": 44, "channels": 1, "scale": 255.0, "mean": 0.5, "std": 0.25,
                                    "normalize": "fixed", "equalize": False, "tta": "none"}
    text = " ".join(pdf_text(graded / "b09902033" / "report.pdf").split())
    assert result["data_sha256"] in text and "size 44, channels 1, scale 255.0, mean 0.5, std 0.25" in text


def test_without_data_the_grader_says_it_grades_on_synthetic_faces_with_the_shipped_rubric(tmp_path, monkeypatch):
    """From a folder outside the repository, with no rubric.yaml there: the packaged rubric is used."""
    monkeypatch.chdir(tmp_path)
    outcome = invoke("check", EXAMPLES / "small_cnn", "--out", tmp_path / "out", "--lang", "xx")
    assert "no --data: grading on the bundled synthetic faces, not on FER2013" in " ".join(outcome.output.split())
    assert outcome.exit_code == 2 and "--lang must be en or zh-TW" in outcome.output  # stopped before grading


def test_every_criterion_has_its_value_and_points_in_the_result(graded):
    result = read_result(graded, "vgg")
    for question in result["questions"]:
        for item in question["criteria"]:
            if item["manual"]:
                assert item["value"] is None and item["score"] is None
            else:
                assert item["value"] is not None and 0 <= item["score"] <= item["max_score"], item["id"]


def test_the_better_model_earns_more_automatic_points(graded):
    def automatic(folder: str) -> float:
        result = read_result(graded, folder)
        return sum(c["score"] for q in result["questions"] for c in q["criteria"]
                   if not c["manual"] and not c["overridden"])

    assert automatic("vgg") > automatic("small_cnn")
    assert automatic("residual_zh") > automatic("small_cnn")


def test_the_gradebook_has_a_column_per_criterion_and_marks_pending_manual_scores(graded):
    book = pd.read_csv(graded / "gradebook.csv", dtype={"student_id": str}).set_index("student_id")
    assert {"q1_sanity", "q2_gain", "q3_accuracy", "q4_answer"} <= set(book.columns)
    assert book.loc["r11922055", "q1_answer"] == 1  # the TA's score
    assert pd.isna(book.loc["r11922055", "q2_answer"])  # still waiting
    assert bool(book.loc["r11922055", "manual_pending"])
    assert book.loc["b09902011", "total"] == pytest.approx(read_result(graded, "vgg")["score"])


def test_the_canvas_csv_has_canvas_columns_and_points_possible(graded):
    canvas = pd.read_csv(graded / "canvas.csv", dtype={"SIS User ID": str}, keep_default_na=False)
    assert list(canvas.columns) == ["Student", "ID", "SIS User ID", "Section", "Explain your CNN"]
    assert canvas.iloc[0]["Student"] == "Points Possible" and float(canvas.iloc[0]["Explain your CNN"]) == 10
    rows = canvas.iloc[1:].set_index("SIS User ID")
    assert rows.loc["r11922055", "Student"] == "林志皓"
    assert float(rows.loc["b09902066", "Explain your CNN"]) == 0  # the broken submission


@pytest.mark.parametrize("folder", list(EXAMPLE_IDS))
def test_every_examples_pdf_shows_its_id_name_questions_and_scores(graded, folder):
    result = read_result(graded, folder)
    text = pdf_text(graded / result["student_id"] / "report.pdf")
    assert result["student_id"] in text and result["name"] in text
    assert f"{result['score']:g} / {result['max_score']:g}" in text
    for question in result["questions"]:
        assert f"{question['id']}. {question['title']} — {question['score']:g} / {question['max_score']:g}" in text
        for item in question["criteria"]:
            if item["score"] is not None:  # pdftotext may drop the spaces around a narrow "/"
                assert f"{item['score']:g}/{item['max_score']:g}" in text.replace(" ", "")


def test_grade_writes_the_dashboard_linking_every_students_pdf(graded):
    import re

    page = (graded / "index.html").read_text(encoding="utf-8")
    links = set(re.findall(r'href="([^"]+/report\.pdf)"', page))
    assert links == {f"{student_id}/report.pdf" for student_id in EXAMPLE_IDS.values()}
    assert all((graded / link).is_file() for link in links)


def test_the_examples_are_not_flagged_as_similar(graded):
    rows = pd.read_csv(graded / "similarity.csv")
    assert list(rows.columns[:3]) == ["student_a", "student_b", "signals"] and rows.empty
    assert "No two submissions look copied." in (graded / "index.html").read_text(encoding="utf-8")


REUSABLE = "Names the parts and compares the classes; say where the maps mislead."


def test_a_ta_grades_q1_of_every_example_by_keyboard_and_the_regenerated_pdfs_show_it(graded, browser, tmp_path,
                                                                                      small_eval_csv, six_examples):
    """The TA's whole loop on the six real examples: `grader review`, Q1 graded by keyboard alone in
    Chromium (items 1, 2 and 4, a reusable comment by r 1, s to save, j to go on), a regrade request
    recorded and resolved in the page, the export, and `grader grade --review` re-rendering the
    PDFs from the stored results (no model runs again)."""
    from playwright.sync_api import expect

    from tests.test_review_page import Server, exported, open_page

    out = tmp_path / "out"
    shutil.copytree(graded, out)
    server = Server(out).start()
    try:
        page = open_page(browser, server, "Ann")
        page.fill("#comment", REUSABLE)
        page.click("#keep-comment")
        expect(page.locator("#reusable")).to_contain_text(f"1: {REUSABLE}")
        for student_id in sorted(EXAMPLE_IDS.values()):
            expect(page.locator("#student")).to_contain_text(student_id)
            for key in ("1", "2", "4", "r", "1", "s"):
                page.keyboard.press(key)
            expect(page.locator("#status")).to_have_text("saved")
            page.keyboard.press("j")
        assert page.text_content("#progress") == "6/6 graded"
        page.keyboard.press("k")  # back from the last student to the first
        page.select_option("#show", "all")
        expect(page.locator("#student")).to_contain_text(EXAMPLE_IDS["vgg"])
        page.click("#regrade-box summary")
        page.fill("#regrade-text", "My answer does say where the maps mislead.")
        page.click("#regrade-add")
        page.fill("#regrades .resolution", "It does: the comment stands, the points too.")
        page.click("#regrades button")
        expect(page.locator("#regrades")).to_contain_text("Ann: It does")
    finally:
        server.stop()

    rows = {(r["student_id"], r["criterion"]): r for r in exported(out)}
    for student_id in EXAMPLE_IDS.values():
        assert float(rows[student_id, "q1_answer"]["points"]) == 0.75
        assert rows[student_id, "q1_answer"]["comment"].endswith(REUSABLE)
    assert float(rows["b09902022", "q3_accuracy"]["points"]) == 0.4  # the earlier --manual override is kept

    regraded = invoke("grade", six_examples, "--data", small_eval_csv, "--rubric", ROOT / "rubric.yaml", "--out", out,
                      "--quick", "--canvas", out / "canvas.csv", "--review", out / "review.sqlite")
    assert regraded.exit_code == 0, regraded.output
    assert regraded.output.count("not run again") == 6, regraded.output  # no model ran
    for folder, student_id in EXAMPLE_IDS.items():
        assert criterion(read_result(out, folder), "q1_answer")["score"] == 0.75
        text = " ".join(pdf_text(out / student_id / "report.pdf").split())
        assert "0.75 / 1" in text and "say where the maps mislead" in text, (folder, text)
    vgg = " ".join(pdf_text(out / EXAMPLE_IDS["vgg"] / "report.pdf").split())
    assert "My answer does say where the maps mislead." in vgg and "Ann: It does: the comment stands" in vgg
