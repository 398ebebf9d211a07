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
    accuracy = score(rubric, measured(0.7), manual.of("b1"))[0].criteria[0]  # interval 0.61-0.79: 1 point
    assert accuracy.overridden and accuracy.auto_score == 1.0 and accuracy.score == 2.0
    assert accuracy.value == pytest.approx(0.7)
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


# Strict reading (issue 13): every case below once lost rows, crashed or shifted line numbers.

def scores_bytes(tmp_path, data: bytes):
    path = tmp_path / "scores.csv"
    path.write_bytes(data)
    return path


def test_a_quote_left_open_to_the_end_of_the_file_is_named_at_its_line(tmp_path, rubric):
    found = problems(tmp_path, rubric, 'b1,q1_answer,1,"good start\nb2,q1_answer,0,weak\nb3,q1_accuracy,2,ok\n')
    assert found == [f"{tmp_path / 'scores.csv'}:2: comment: the quote that opens this cell is never closed (it "
                     "runs to the end of the file, over 3 line(s)); close it, or write a quote inside the text "
                     'twice ("")']


def test_a_quote_left_open_over_further_rows_is_named_at_its_line(tmp_path, rubric):
    rows = 'b1,q1_answer,1,"good start\nb2,q1_answer,0,weak\nb3,q1_accuracy,2,"retrained"\n'
    found = problems(tmp_path, rubric, rows)
    assert found == [f"{tmp_path / 'scores.csv'}:2: comment: the quote that opens this cell runs over what look "
                     "like further rows (line 3: 'b2,q1_answer,0,weak'); close the quote on its own row, or write "
                     'a quote inside the text twice ("")']


def test_rows_after_an_open_quote_are_still_checked(tmp_path, rubric):
    rows = 'b1,q1_answer,1,"good start\nb2,q1_answer,0,weak\nb3,q1_accuracy,9,"retrained"\n'
    found = problems(tmp_path, rubric, rows)
    assert [p.split(": ")[0].rsplit(":", 1)[1] for p in found] == ["2", "4"]
    assert found[1].endswith("points: 9 is outside 0..2, what 'q1_accuracy' is worth")


def test_a_128_kib_comment_is_an_error_at_its_line(tmp_path, rubric):
    found = problems(tmp_path, rubric, 'b1,q1_answer,1,ok\nb2,q1_answer,1,"' + "x" * 131072 + '"\n')
    assert found == [f"{tmp_path / 'scores.csv'}:3: comment: 131,072 characters, more than the 4,000 a cell may "
                     "hold (is a quote missing?)"]


def test_a_comment_of_4000_characters_is_kept(tmp_path, rubric):
    manual = load_manual_scores(scores_file(tmp_path, "b1,q1_answer,1," + "x" * 4000 + "\n"), rubric)
    assert len(manual.of("b1")["q1_answer"].comment) == 4000


def test_line_breaks_inside_a_quoted_comment_are_kept_exactly(tmp_path, rubric):
    rows = 'b1,q1_answer,1,"first\nsecond\r\nthird\rfourth"\nb2,q1_answer,0,\n'
    manual = load_manual_scores(scores_file(tmp_path, rows), rubric)
    assert manual.of("b1")["q1_answer"].comment == "first\nsecond\r\nthird\rfourth"
    assert (manual.of("b1")["q1_answer"].line, manual.of("b2")["q1_answer"].line) == (2, 6)


def test_unicode_line_separators_in_a_comment_are_kept_and_do_not_shift_lines(tmp_path, rubric):
    comment = "a\u2028b\u2029c\x85d\x0be\x0cf"
    found = problems(tmp_path, rubric, f"b1,q1_answer,1,{comment}\nb2,q9_answer,1,\n")
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'scores.csv'}:3: criterion: 'q9_answer'")
    manual = load_manual_scores(scores_file(tmp_path, f"b1,q1_answer,1,{comment}\nb2,q1_answer,0,\n"), rubric)
    assert manual.of("b1")["q1_answer"].comment == comment
    assert manual.of("b2")["q1_answer"].line == 3


def test_line_numbers_count_carriage_returns_as_a_spreadsheet_does(tmp_path, rubric):
    path = scores_bytes(tmp_path, b"student_id,criterion,points,comment\rb1,q1_answer,1,\r\n\rb2,q9_answer,1,\r")
    with pytest.raises(ConfigError) as caught:
        load_manual_scores(path, rubric)
    assert caught.value.problems[0].startswith(f"{path}:4: criterion:")


@pytest.mark.parametrize("text", ["0.2_5", "1e3", "inf", " nan", "0x1", "\u00bd", "\u0661", "1/2", "0..5", "."])
def test_points_that_are_not_a_plain_decimal_are_refused(tmp_path, rubric, text):
    found = problems(tmp_path, rubric, f'b1,q1_answer,"{text}",\n')
    assert found == [f"{tmp_path / 'scores.csv'}:2: points: '{text.strip()}' is not a plain decimal number; write "
                     "it like 1, 0.5 or .5"]


@pytest.mark.parametrize(("text", "points"), [("1", 1.0), ("0.5", 0.5), (".5", 0.5), ("1.", 1.0), ("+1", 1.0),
                                              ("0", 0.0), ("-0", 0.0)])
def test_plain_decimal_points_are_read(tmp_path, rubric, text, points):
    manual = load_manual_scores(scores_file(tmp_path, f"b1,q1_answer,{text},\n"), rubric)
    assert manual.of("b1")["q1_answer"].points == points


def test_negative_points_are_outside_the_criterion(tmp_path, rubric):
    found = problems(tmp_path, rubric, "b1,q1_answer,-0.5,\n")
    assert found == [f"{tmp_path / 'scores.csv'}:2: points: -0.5 is outside 0..1, what 'q1_answer' is worth"]


def test_a_decimal_comma_gets_its_own_hint(tmp_path, rubric):
    found = problems(tmp_path, rubric, 'b1,q1_answer,"0,5",\n')
    assert found == [f"{tmp_path / 'scores.csv'}:2: points: '0,5' has a decimal comma; write it with a point, "
                     "e.g. 0.5"]


def test_a_million_unknown_ids_summarize_in_one_short_line(rubric):
    from grader.csvmessages import summarize_ids
    from grader.scoring.manual import ManualScores

    manual = ManualScores({f"s{i:07d}": {} for i in range(1_000_000)} | {"b1": {}})
    count, first = manual.unknown_students({"b1"})
    line = summarize_ids(first, count)
    assert (count, line) == (1_000_000, "s0000000, s0000001, s0000002 and 999,997 more")
    assert len(line) == 45


def test_unknown_students_are_all_named_when_few(tmp_path, rubric):
    from grader.csvmessages import summarize_ids

    manual = load_manual_scores(scores_file(tmp_path, "b2,q1_answer,1,\nb1,q1_answer,0,\nb3,q1_answer,0,\n"), rubric)
    assert summarize_ids(*reversed(manual.unknown_students(["b3"]))) == "b1, b2"


def test_a_nul_byte_is_named_with_its_line_and_offset(tmp_path, rubric):
    path = scores_bytes(tmp_path, HEADER.encode() + b"b1,q1_answer,1,\nb2,q1_answer,1,o\0k\n")
    with pytest.raises(ConfigError) as caught:
        load_manual_scores(path, rubric)
    assert caught.value.problems == [f"{path}:3: a NUL byte at offset 68; a CSV is text: save it as UTF-8 (Excel: "
                                     "CSV UTF-8)"]


def test_latin_1_text_is_named_with_its_line_and_offset(tmp_path, rubric):
    path = scores_bytes(tmp_path, HEADER.encode() + "b1,q1_answer,1,très bien\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_manual_scores(path, rubric)
    assert caught.value.problems == [f"{path}:2: not UTF-8 text: byte 0xe8 at offset 53 (invalid continuation "
                                     "byte); save it as UTF-8 (Excel: CSV UTF-8)"]


def test_a_file_over_32_mib_is_refused_before_it_is_read(tmp_path, rubric):
    path = tmp_path / "scores.csv"
    with path.open("wb") as file:
        file.truncate(33 * 2**20)
    with pytest.raises(ConfigError) as caught:
        load_manual_scores(path, rubric)
    assert caught.value.problems == [f"{path}: the file is 33 MiB; a CSV read here may be at most 32 MiB (is "
                                     "this the right file?)"]


def test_a_misspelled_column_is_an_error_not_a_dropped_column(tmp_path, rubric):
    found = problems(tmp_path, rubric, "b1,q1_answer,1,good\n", header="student_id,criterion,points,coment\n")
    assert found == [f"{tmp_path / 'scores.csv'}:1: header: unknown column 'coment' (cell 4); the columns are "
                     "student_id,criterion,points,comment"]


def test_a_quote_inside_an_unquoted_comment_is_an_error(tmp_path, rubric):
    found = problems(tmp_path, rubric, 'b1,q1_answer,1,she said "fine"\n')
    assert found == [f"{tmp_path / 'scores.csv'}:2: comment: a quote inside a cell that does not start with one; "
                     'put the whole cell in quotes and write the quote inside it twice ("")']


def test_text_after_a_closing_quote_is_an_error(tmp_path, rubric):
    found = problems(tmp_path, rubric, 'b1,q1_answer,1,"she said "fine" twice"\n')
    assert found == [f"{tmp_path / 'scores.csv'}:2: comment: text after the closing quote; write a quote inside "
                     'a quoted cell twice ("")']


def test_a_quoted_comment_keeps_its_spaces_and_doubled_quotes(tmp_path, rubric):
    manual = load_manual_scores(scores_file(tmp_path, 'b1 , q1_answer , 1 , "  she said ""fine"" " \n'), rubric)
    assert manual.of("b1")["q1_answer"].comment == '  she said "fine" '


def test_an_id_no_submission_can_have_is_refused(tmp_path, rubric):
    found = problems(tmp_path, rubric, "b 1,q1_answer,1,\n")
    assert found == [f"{tmp_path / 'scores.csv'}:2: student_id: 'b 1' may use only letters, digits, _ and - (no "
                     "submission can have this id)"]


def test_a_file_of_wrong_rows_lists_a_hundred_problems_and_counts_the_rest(tmp_path, rubric):
    found = problems(tmp_path, rubric, "b1,q1_answer,x,\n" * 150)
    assert len(found) == 101 and found[99].startswith(f"{tmp_path / 'scores.csv'}:101: points:")
    assert found[100] == f"{tmp_path / 'scores.csv'}: ... and 50 more problem(s); is this the right file?"


def test_an_empty_file_is_named(tmp_path, rubric):
    found = problems(tmp_path, rubric, "", header="")
    assert found == [f"{tmp_path / 'scores.csv'}:1: header: the file is empty; the header must be "
                     "student_id,criterion,points,comment"]
