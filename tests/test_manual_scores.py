"""The TA's scores.csv: checked against the rubric with file:line: field errors, then merged as
manual scores and overrides of automatic criteria."""

import pytest

from grader.scoring.manual import load_manual_scores
from grader.scoring.rubric import load_rubric
from grader.scoring.score import score
from grader.yamlfile import ConfigError
from tests.test_scoring import VALID, measured, write

HEADER = "student_id,criterion,points,comment\n"


@pytest.fixture
def rubric(tmp_path):
    return load_rubric(write(tmp_path, VALID))


def scores_file(tmp_path, rows: str, header: str = HEADER):
    path = tmp_path / "scores.csv"
    path.write_text(header + rows, encoding="utf-8")
    return path


def problems(tmp_path, rubric, rows: str, header: str = HEADER) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_manual_scores(scores_file(tmp_path, rows, header), rubric)
    return caught.value.problems


def test_rows_are_read_by_student_and_criterion(tmp_path, rubric):
    manual = load_manual_scores(scores_file(tmp_path, '0412345,q1_answer,0.5,"clear, but short"\n'), rubric)
    given = manual.of("0412345")["q1_answer"]
    assert (given.points, given.comment, given.line) == (0.5, "clear, but short", 2)
    assert manual.of("someone else") == {}


def test_a_manual_score_fills_its_criterion_with_the_comment(tmp_path, rubric):
    manual = load_manual_scores(scores_file(tmp_path, "b1,q1_answer,1,good reading\n"), rubric)
    question = score(rubric, measured(0.9), manual.of("b1"))[0]
    answer = question.criteria[1]
    assert (answer.score, answer.comment, answer.overridden) == (1.0, "good reading", False)
    assert question.score == 3 and not question.pending_manual


def test_an_override_replaces_the_automatic_points_and_keeps_them_for_the_report(tmp_path, rubric):
    manual = load_manual_scores(scores_file(tmp_path, "b1,q1_accuracy,2,retrained on the right split\n"), rubric)
    accuracy = score(rubric, measured(0.65), manual.of("b1"))[0].criteria[0]
    assert accuracy.overridden and accuracy.auto_score == 1.0 and accuracy.score == 2.0
    assert accuracy.value == pytest.approx(0.65)
    assert accuracy.comment == "retrained on the right split"


def test_an_unknown_criterion_is_named_with_its_line(tmp_path, rubric):
    found = problems(tmp_path, rubric, "b1,q1_answer,1,\nb1,q9_answer,1,\n")
    assert found == [f"{tmp_path / 'scores.csv'}:3: criterion: 'q9_answer' is not in the rubric; its criteria "
                     "are q1_accuracy, q1_answer"]


def test_points_outside_the_criterion_are_refused(tmp_path, rubric):
    found = problems(tmp_path, rubric, "b1,q1_answer,1.5,\n")
    assert found == [f"{tmp_path / 'scores.csv'}:2: points: 1.5 is outside 0..1, what 'q1_answer' is worth"]


def test_every_problem_is_reported_at_once(tmp_path, rubric):
    found = problems(tmp_path, rubric, "b1,q1_answer,one,\n,q1_answer,1,\nb1,q1_answer,1,\nb1,q1_answer,0,\n")
    assert [p.split(": ", 2)[1] for p in found] == ["points", "student_id", "criterion"]
    assert "already has a score for 'q1_answer' on line 4" in found[2]


def test_a_missing_column_is_named(tmp_path, rubric):
    found = problems(tmp_path, rubric, "b1,q1_answer\n", header="student_id,criterion\n")
    assert found == [f"{tmp_path / 'scores.csv'}:1: header: missing column(s) points; the header must be "
                     "student_id,criterion,points,comment"]


def test_an_unquoted_comma_in_a_comment_is_caught(tmp_path, rubric):
    found = problems(tmp_path, rubric, "b1,q1_answer,1,good, but short\n")
    assert "quote a comment that holds a comma" in found[0] and ":2:" in found[0]


def test_a_spreadsheet_bom_and_blank_lines_are_fine(tmp_path, rubric):
    path = tmp_path / "scores.csv"
    path.write_text("\ufeff" + HEADER + "b1,q1_answer,1,\n,,,\n", encoding="utf-8")
    assert load_manual_scores(path, rubric).of("b1")["q1_answer"].points == 1.0


def test_students_the_ta_scored_but_nobody_submitted_are_listed(tmp_path, rubric):
    manual = load_manual_scores(scores_file(tmp_path, "b1,q1_answer,1,\nb2,q1_answer,0,\n"), rubric)
    assert manual.students_not_in({"b1"}) == ["b2"]
