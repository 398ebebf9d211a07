"""Student text at the report's sinks (issue 13): the PDF, the gradebook and Canvas CSVs, and the
figures each make it safe in their one place, whatever reaches them.

The hostile results are built with `model_copy(update=...)`, which skips Result's validators: the
sinks must hold even for text that was not cleaned on the way in (the dashboard's own test of the
same is in tests/test_dashboard.py).
"""

from __future__ import annotations

import csv
import re
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grader.escape import printable_text
from grader.report.figures.attribution import saliency_figure
from grader.report.figures.drawing import png_bytes
from grader.report.figures.filters import filter_outputs_figure, filter_patterns_figure
from grader.report.gradebook import canvas_left_out, write_canvas, write_gradebook
from grader.report.pdf import render_html, template_environment, write_pdf
from grader.result import CriterionResult, QuestionResult, Result, StageError

HOSTILE = "A\ud800B\x00C\x1b[31mRED\x07 \u202eevil <script>alert(1)</script></style> {{ 7*7 }}"
SHOWN = "A\ufffdB\ufffdC\ufffd[31mRED\ufffd \ufffdevil <script>alert(1)</script></style> {{ 7*7 }}"
"""HOSTILE as a reader sees it: each control character, the surrogate and the override one U+FFFD,
the markup and the template syntax as written."""
SKEW_WARNING = "the model predicts Happy for 96% of the faces"


def _questions() -> list[QuestionResult]:
    return [QuestionResult(id=f"q{n}", title=f"Question {n}", score=1.0, max_score=2.0,
                           criteria=[CriterionResult(id=f"q{n}_auto", score=1.0, max_score=2.0, value=0.5)])
            for n in range(1, 5)]


def hostile_result() -> Result:
    """A graded result whose name, answer, error, output and one warning hold HOSTILE, uncleaned."""
    result = Result(student_id="b09902001", name="x", status="graded", score=4.0, max_score=8.0,
                    questions=_questions(), accuracy=0.8, tool_version="test")
    return result.model_copy(update={
        "name": "Name " + HOSTILE, "answers": {"q1": "Answer " + HOSTILE}, "output": "Output " + HOSTILE,
        "errors": [StageError.model_construct(stage="q2_filters", message="Error " + HOSTILE)],
        "warnings": [StageError(stage="predictions", message=SKEW_WARNING),
                     StageError.model_construct(stage="predictions", message="Warning " + HOSTILE)]})


def pdf_text(path: Path, first_page_only: bool = False) -> str:
    pages = ["-f", "1", "-l", "1"] if first_page_only else []
    return subprocess.run(["pdftotext", *pages, str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="module")
def hostile_pdf(tmp_path_factory) -> Path:
    """The hostile result's real PDF, laid out by WeasyPrint."""
    folder = tmp_path_factory.mktemp("student")
    write_pdf(render_html(hostile_result()), folder, folder / "report.pdf")
    return folder / "report.pdf"


# ---------------------------------------------------------------- PDF and HTML


def test_a_pdf_is_written_for_text_with_a_lone_surrogate_and_control_characters(hostile_pdf):
    assert hostile_pdf.read_bytes().startswith(b"%PDF-")


@pytest.mark.parametrize("field", ["Name", "Answer", "Error", "Output", "Warning"])
def test_each_student_text_appears_in_the_pdf_as_written_with_controls_replaced(hostile_pdf, field):
    assert f"{field} {SHOWN}" in pdf_text(hostile_pdf)


def test_jinja_looking_student_text_is_printed_not_evaluated(hostile_pdf):
    text = pdf_text(hostile_pdf)
    assert text.count("{{ 7*7 }}") == 5
    assert "49" not in text


def test_no_control_character_or_override_reaches_the_pdf(hostile_pdf):
    text = pdf_text(hostile_pdf)
    assert not re.search("[\x00-\x08\x0b\x1b\x7f\u202e]", text.replace("\x0c", ""))  # \f: pdftotext's page break


def test_the_report_html_escapes_the_students_markup():
    html = render_html(hostile_result())
    assert "<script>" not in html and "</style> {{" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;/style&gt; {{ 7*7 }}" in html


def test_the_cover_page_shows_the_warnings_below_the_score(tmp_path):
    result = Result(student_id="b09902001", name="Eve", status="graded", score=4.0, max_score=8.0,
                    questions=_questions(), tool_version="test",
                    warnings=[StageError(stage="predictions", message=SKEW_WARNING)])
    write_pdf(render_html(result), tmp_path, tmp_path / "report.pdf")
    cover = pdf_text(tmp_path / "report.pdf", first_page_only=True)
    assert cover.index("Total") < cover.index("Worth knowing") < cover.index(SKEW_WARNING) < cover.index("Question")
    assert "These cost no points by themselves" in cover


def test_the_chinese_cover_page_heads_the_warnings_in_chinese(tmp_path):
    result = Result(student_id="r11922055", name="林志皓", status="graded", score=4.0, max_score=8.0,
                    questions=_questions(), tool_version="test",
                    warnings=[StageError(stage="predictions", message=SKEW_WARNING)])
    write_pdf(render_html(result, language="zh-TW"), tmp_path, tmp_path / "report.pdf")
    cover = pdf_text(tmp_path / "report.pdf", first_page_only=True)
    assert "值得注意" in cover and SKEW_WARNING in cover and "這些本身不扣分" in cover


def test_a_result_without_warnings_has_no_warnings_box():
    result = Result(student_id="b1", status="graded", tool_version="test")
    assert 'class="warnings"' not in render_html(result)


def test_a_conflict_result_names_its_status_in_words():
    result = Result(student_id="b1", status="conflict", tool_version="test",
                    errors=[StageError(stage="spec", message="also claimed by the folder 'b'")])
    assert '<td class="status-conflict">ID conflict</td>' in render_html(result)


def test_the_template_environment_cleans_every_printed_value_before_escaping_it():
    environment = template_environment()
    assert environment.finalize is printable_text and environment.autoescape is True
    assert environment.from_string("{{ x }}").render(x="<b>\x1b</b>") == "&lt;b&gt;\ufffd&lt;/b&gt;"


def test_no_template_marks_anything_safe_but_the_grader_s_own_css():
    templates = resources.files("grader") / "templates"
    marked = [match for path in templates.iterdir() if path.name.endswith(".j2")
              for match in re.findall(r"\{\{[^}]*\|\s*safe\b[^}]*\}\}", path.read_text(encoding="utf-8"))]
    assert marked == ["{{ css|safe }}"]


# ---------------------------------------------------------------- gradebook.csv and the Canvas file

FORMULA_NAMES = ['=HYPERLINK("http://evil","x")', "+1", "@SUM(1)", "-2+3"]
FORMULA_ERROR = "=cmd|' /C calc'!A0"


def formula_results() -> list[Result]:
    """One graded result per formula-like name (totals 1, 2, 3, 4), and a failed one whose error is a formula."""
    results = [Result(student_id=f"b0{n}", name=name, status="graded", score=float(n), max_score=10.0,
                      questions=_questions(), tool_version="test") for n, name in enumerate(FORMULA_NAMES, 1)]
    results.append(Result(student_id="b05", name="Eve", status="failed", max_score=10.0, tool_version="test",
                          errors=[StageError(stage="load", message=FORMULA_ERROR)]))
    return results


def conflict(folder: str, other: str) -> Result:
    return Result(student_id="b09", name="Frank", folder=folder, status="conflict", max_score=10.0,
                  tool_version="test", errors=[StageError(
                      stage="spec", message=f"student_id b09 is also claimed by the submission folder '{other}'")])


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_formula_like_gradebook_cell_starts_with_an_apostrophe(tmp_path):
    write_gradebook(formula_results(), tmp_path / "gradebook.csv")
    rows = read_rows(tmp_path / "gradebook.csv")
    assert [row["name"] for row in rows[:4]] == ["'" + name for name in FORMULA_NAMES]
    assert rows[4]["error"] == "'" + FORMULA_ERROR


def test_every_formula_like_canvas_cell_starts_with_an_apostrophe(tmp_path):
    write_canvas(formula_results(), tmp_path / "canvas.csv")
    with (tmp_path / "canvas.csv").open(newline="", encoding="utf-8") as handle:
        students = [row[0] for row in csv.reader(handle)][2:]
    assert students == ["'" + name for name in FORMULA_NAMES] + ["Eve"]


def test_gradebook_numbers_stay_numbers(tmp_path):
    write_gradebook(formula_results(), tmp_path / "gradebook.csv")
    book = pd.read_csv(tmp_path / "gradebook.csv", dtype={"student_id": str})
    assert book["total"].tolist() == [1.0, 2.0, 3.0, 4.0, 0.0]
    assert pd.api.types.is_numeric_dtype(book["q1"]) and book["manual_pending"].dtype == bool
    assert read_rows(tmp_path / "gradebook.csv")[0]["total"] == "1"


def test_a_conflict_shows_in_the_gradebook_with_empty_scores_and_its_message(tmp_path):
    write_gradebook([*formula_results(), conflict("frank_b", "frank_a"), conflict("frank_a", "frank_b")],
                    tmp_path / "gradebook.csv")
    rows = [row for row in read_rows(tmp_path / "gradebook.csv") if row["status"] == "conflict"]
    assert [row["error"] for row in rows] == [  # in folder order: frank_a's row first
        "student_id b09 is also claimed by the submission folder 'frank_b'",
        "student_id b09 is also claimed by the submission folder 'frank_a'"]
    assert all(row[column] == "" for row in rows for column in ("q1", "q2", "q3", "q4", "total"))
    assert all(row["max_total"] == "10" for row in rows)


def test_a_failed_submission_still_scores_zero_in_the_gradebook(tmp_path):
    write_gradebook(formula_results(), tmp_path / "gradebook.csv")
    failed = read_rows(tmp_path / "gradebook.csv")[4]
    assert (failed["status"], failed["q1"], failed["total"]) == ("failed", "0", "0")


def test_the_canvas_file_leaves_conflicts_out_and_write_canvas_names_their_ids(tmp_path):
    left_out = write_canvas([*formula_results(), conflict("frank_b", "frank_a"), conflict("frank_a", "frank_b")],
                            tmp_path / "canvas.csv")
    assert left_out == ["b09"]
    ids = [row["SIS User ID"] for row in read_rows(tmp_path / "canvas.csv")]
    assert ids == ["", "b01", "b02", "b03", "b04", "b05"]  # the Points Possible row, then the graded and failed


def test_canvas_left_out_is_empty_without_conflicts():
    assert canvas_left_out(formula_results()) == []


# ---------------------------------------------------------------- figures

LAYER_NAMES = [r"$\undefinedcmd$", "\x1b[31m"]


@pytest.mark.parametrize("layer", LAYER_NAMES)
def test_the_filter_patterns_figure_draws_any_layer_name(layer):
    figure = filter_patterns_figure(np.random.default_rng(0).random((4, 5, 5)), layer, np.ones(4))
    assert png_bytes(figure).startswith(b"\x89PNG")


@pytest.mark.parametrize("layer", LAYER_NAMES)
def test_the_filter_outputs_figure_draws_any_layer_name(layer):
    figure = filter_outputs_figure(np.random.default_rng(0).random((4, 6, 6)), layer)
    assert png_bytes(figure).startswith(b"\x89PNG")


@pytest.mark.parametrize("layer", LAYER_NAMES)
def test_a_gradcam_saliency_figure_draws_any_layer_name(layer):
    figure = saliency_figure(np.zeros((2, 48, 48)), np.array([0, 3]), np.random.default_rng(0).random((2, 48, 48)),
                             title=f"Grad-CAM ({layer})")
    assert png_bytes(figure).startswith(b"\x89PNG")


def test_a_mathtext_layer_name_is_titled_as_written():
    figure = filter_outputs_figure(np.zeros((1, 6, 6)), r"$\undefinedcmd$")
    assert figure.get_suptitle() == r"\$\undefinedcmd\$: filter outputs for one face"


def test_an_escape_sequence_in_a_layer_name_is_labelled_with_a_replacement_character():
    figure = saliency_figure(np.zeros((1, 48, 48)), np.array([0]), np.zeros((1, 48, 48)), title="Grad-CAM (\x1b[31m)")
    assert row_labels(figure)[1] == "Grad-CAM (\ufffd[31m)"


def test_our_own_figure_words_are_unchanged():
    figure = saliency_figure(np.zeros((1, 48, 48)), np.array([0]), np.zeros((1, 48, 48)), title="SmoothGrad")
    assert row_labels(figure) == ["face", "SmoothGrad", "overlay"]


def row_labels(figure) -> list[str]:
    """The upright labels left of a picture figure's rows (grader.report.figures.drawing.PictureGrid)."""
    return [text.get_text() for text in figure.axes[0].texts if text.get_rotation() == 90]
