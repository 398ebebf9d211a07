"""roster.csv: students mapped to submission folders, read strictly with file:line: field errors."""

import dataclasses

import pytest

from grader.roster import Roster, RosterEntry, load_roster
from grader.yamlfile import ConfigError


def roster_file(tmp_path, text: str):
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_roster(roster_file(tmp_path, text))
    return caught.value.problems


def test_entries_are_read_with_their_lines(tmp_path):
    roster = load_roster(roster_file(tmp_path, 'student_id,name,folder\nb1,"Smith, Ann",smith_ann\nb2,Bo Li,\n'))
    assert roster.entries == (RosterEntry("b1", "Smith, Ann", "smith_ann", 2), RosterEntry("b2", "Bo Li", "", 3))
    assert len(roster) == 2


def test_a_student_is_found_by_id(tmp_path):
    roster = load_roster(roster_file(tmp_path, "student_id,folder\nb1,f1\nb2,f2\n"))
    assert roster.by_id("b2") == RosterEntry("b2", "", "f2", 3)
    assert roster.by_id("b3") is None


def test_a_student_is_found_by_the_exact_folder_name(tmp_path):
    roster = load_roster(roster_file(tmp_path, "student_id,folder\nb1,smith ann (late)\n"))
    assert roster.by_folder("smith ann (late)").student_id == "b1"
    assert roster.by_folder("smith ann") is None


def test_lms_id_is_another_name_for_the_folder_column(tmp_path):
    roster = load_roster(roster_file(tmp_path, "student_id,LMS_ID\nb1,12345\n"))
    assert roster.by_id("b1").folder == "12345"


def test_a_folder_named_by_the_lms_id_among_other_parts_is_found(tmp_path):
    roster = load_roster(roster_file(tmp_path, "student_id,lms_id\nb1,12345\nb2,u-777\n"))
    assert roster.by_folder("smithann_12345_67890_report").student_id == "b1"
    assert roster.by_folder("Li Bo_u-777_assignsubmission_file_").student_id == "b2"


def test_an_lms_id_inside_a_longer_number_does_not_match(tmp_path):
    roster = load_roster(roster_file(tmp_path, "student_id,lms_id\nb1,12345\n"))
    assert roster.by_folder("smithann_123456_report") is None


def test_a_folder_name_matching_two_students_finds_none_and_lists_both(tmp_path):
    roster = load_roster(roster_file(tmp_path, "student_id,lms_id\nb1,12345\nb2,67890\n"))
    assert roster.by_folder("smithann_12345_67890") is None
    assert [entry.student_id for entry in roster.folder_matches("smithann_12345_67890")] == ["b1", "b2"]


def test_an_exact_folder_name_wins_over_its_parts(tmp_path):
    roster = load_roster(roster_file(tmp_path, "student_id,folder\nb1,12345\nb2,x_12345\n"))
    assert roster.by_folder("x_12345").student_id == "b2"


def test_no_roster_finds_nobody():
    roster = Roster.none()
    assert (len(roster), roster.by_id("b1"), roster.by_folder("b1"), bool(roster)) == (0, None, None, False)


def test_a_roster_is_frozen(tmp_path):
    roster = load_roster(roster_file(tmp_path, "student_id\nb1\n"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        roster.entries = ()


def test_a_student_listed_twice_names_both_lines(tmp_path):
    found = problems(tmp_path, "student_id,folder\nb1,f1\nb2,f2\nb1,f3\n")
    assert found == [f"{tmp_path / 'roster.csv'}:4: student_id: 'b1' is listed twice, on lines 2 and 4; keep one"]


def test_a_folder_listed_for_two_students_names_both_lines(tmp_path):
    found = problems(tmp_path, "student_id,folder\nb1,f1\nb2,f2\nb3,f1\n")
    assert found == [f"{tmp_path / 'roster.csv'}:4: folder: 'f1' is listed for two students, 'b1' on line 2 and "
                     "'b3' on line 4; a folder holds one student's submission"]


def test_an_empty_student_id_is_refused(tmp_path):
    found = problems(tmp_path, "student_id,name\n,Ann\n")
    assert found == [f"{tmp_path / 'roster.csv'}:2: student_id: empty"]


def test_a_student_id_outside_the_submission_charset_is_refused(tmp_path):
    found = problems(tmp_path, "student_id\nb1.x\n")
    assert found == [f"{tmp_path / 'roster.csv'}:2: student_id: 'b1.x' may use only letters, digits, _ and -, "
                     "starting with a letter or digit (it names the student's output folder)"]


def test_a_student_id_over_64_characters_is_refused(tmp_path):
    found = problems(tmp_path, f"student_id\n{'a' * 64}\n{'a' * 65}\n")
    assert found == [f"{tmp_path / 'roster.csv'}:3: student_id: 65 characters; at most 64"]


def test_a_folder_no_folder_could_be_named_is_refused(tmp_path):
    found = problems(tmp_path, "student_id,folder\nb1,a/b\nb2,..\n")
    assert [p.split(": ", 2)[0].rsplit(":", 1)[1] for p in found] == ["2", "3"]
    assert "'a/b' cannot be a folder's name" in found[0]


def test_an_unquoted_comma_in_a_name_is_caught(tmp_path):
    found = problems(tmp_path, "student_id,name,folder\nb1,Smith, Ann,f1\n")
    assert found == [f"{tmp_path / 'roster.csv'}:2: row: has 4 cells, the header 3; quote a name that holds a "
                     "comma"]


def test_a_quote_left_open_in_a_name_is_named_at_its_line(tmp_path):
    found = problems(tmp_path, 'student_id,name\nb1,"Ann\nb2,Bo\n')
    assert found == [f"{tmp_path / 'roster.csv'}:2: name: the quote that opens this cell is never closed (it runs "
                     'to the end of the file, over 2 line(s)); close it, or write a quote inside the text twice ("")']


def test_a_line_break_in_a_roster_cell_is_refused(tmp_path):
    found = problems(tmp_path, 'student_id,name\nb1,"Ann\nLee"\nb2,Bo\n')
    assert found == [f"{tmp_path / 'roster.csv'}:2: name: a line break inside the cell; a roster cell is one line "
                     "(is a quote left open?)"]


def test_a_roster_without_a_student_id_column_is_refused(tmp_path):
    found = problems(tmp_path, "name,folder\nAnn,f1\n")
    assert found == [f"{tmp_path / 'roster.csv'}:1: header: missing column(s) student_id; the header must be "
                     "student_id,name,folder (lms_id for folder)"]


def test_folder_and_lms_id_together_are_one_column_given_twice(tmp_path):
    found = problems(tmp_path, "student_id,folder,lms_id\nb1,f1,1\n")
    assert found == [f"{tmp_path / 'roster.csv'}:1: header: the column 'folder' is given twice, in cells 2 and 3; "
                     "keep one"]


def test_every_roster_problem_is_reported_at_once(tmp_path):
    found = problems(tmp_path, "student_id,folder\nb 1,f1\nb2,f1\nb2,f2\n")
    assert [p.split(": ", 2)[0].rsplit(":", 1)[1] for p in found] == ["2", "4"]


def test_a_quoted_id_ending_in_a_line_break_is_refused(tmp_path):
    found = problems(tmp_path, 'student_id\n"b1\n"\n')
    assert found == [f"{tmp_path / 'roster.csv'}:2: student_id: a line break inside the cell; a roster cell is one "
                     "line (is a quote left open?)"]
