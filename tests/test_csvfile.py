"""grader.csvfile: the one strict CSV reader behind scores.csv and roster.csv."""

import pytest

from grader.csvfile import read_csv_rows
from grader.csvmessages import config_error, shorten, summarize_ids
from grader.plaindecimal import plain_decimal
from grader.yamlfile import ConfigError


def csv_file(tmp_path, data: str | bytes):
    path = tmp_path / "table.csv"
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", newline="")
    else:
        path.write_bytes(data)
    return path


def rows_of(tmp_path, data, required=("a",), optional=("b",), **options):
    return read_csv_rows(csv_file(tmp_path, data), required, optional, **options)


def problems(tmp_path, data, required=("a",), optional=("b",), **options) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        rows_of(tmp_path, data, required, optional, **options)
    return caught.value.problems


@pytest.mark.parametrize(("text", "value"), [("1", 1.0), ("0.5", 0.5), (".5", 0.5), ("1.", 1.0), ("+1", 1.0),
                                             ("-2.5", -2.5), ("-0", 0.0), ("007", 7.0)])
def test_plain_decimals_are_numbers(text, value):
    assert plain_decimal(text) == value


@pytest.mark.parametrize("text", ["0.2_5", "1e3", "inf", "nan", " nan", "1 ", "0x1", "\u00bd", "\u0661", "",
                                  ".", "+", "1.2.3", "--1", "1" * 400])
def test_anything_else_is_not_a_plain_decimal(text):
    assert plain_decimal(text) is None


def test_minus_zero_reads_as_plain_zero():
    assert str(plain_decimal("-0")) == "0.0"


def test_shorten_escapes_line_separators_and_cuts_long_text():
    assert shorten("a\u2028b\nc") == "a\\u2028b\\nc"
    assert shorten("x" * 100, width=10) == "x" * 10 + "..."


def test_summarize_ids_names_all_when_few_and_counts_the_rest():
    assert summarize_ids(["a", "b"], 2) == "a, b"
    assert summarize_ids(["a", "b", "c"], 1_000_000) == "a, b, c and 999,997 more"


def test_summarize_ids_cuts_a_long_id():
    assert summarize_ids(["x" * 1000], 1) == "x" * 40 + "..."


def test_rows_have_every_column_and_their_physical_line(tmp_path):
    assert rows_of(tmp_path, "a,b\n1,2\n\n3\n") == [(2, {"a": "1", "b": "2"}), (4, {"a": "3", "b": ""})]


def test_a_quoted_row_after_a_multi_line_cell_has_its_physical_line(tmp_path):
    found = rows_of(tmp_path, 'a,b\n1,"x\n\ny"\n"2",z\n')
    assert found == [(2, {"a": "1", "b": "x\n\ny"}), (5, {"a": "2", "b": "z"})]


def test_header_names_ignore_case_and_spaces_and_may_follow_blank_lines(tmp_path):
    assert rows_of(tmp_path, "\n B , A \n1,2\n") == [(3, {"a": "2", "b": "1"})]


def test_an_alias_names_its_column(tmp_path):
    assert rows_of(tmp_path, "a,other\n1,2\n", aliases={"other": "b"}) == [(2, {"a": "1", "b": "2"})]


def test_blank_trailing_cells_and_unnamed_columns_are_fine_when_empty(tmp_path):
    assert rows_of(tmp_path, "a,b,,\n1,2,,\n3,4\n") == [(2, {"a": "1", "b": "2"}), (3, {"a": "3", "b": "4"})]


def test_text_under_an_unnamed_column_is_an_error(tmp_path):
    found = problems(tmp_path, "a,,b\n1,x,2\n")
    assert found == [f"{tmp_path / 'table.csv'}:2: row: cell 2 holds 'x' but the header names no column for it"]


def test_row_problems_can_be_collected_by_the_caller(tmp_path):
    collected: list[str] = []
    rows = rows_of(tmp_path, 'a,b\n1,"open\n2,3\n', problems=collected)
    assert rows == [(3, {"a": "2", "b": "3"})]
    assert len(collected) == 1 and collected[0].startswith(f"{tmp_path / 'table.csv'}:2: b: the quote")


def test_a_quote_in_the_header_left_open_is_named(tmp_path):
    found = problems(tmp_path, 'a,"b\n1,2\n')
    assert found[0].startswith(f"{tmp_path / 'table.csv'}:1: header: the quote that opens this cell is never closed")


def test_a_long_cell_is_measured_against_the_cap_given(tmp_path):
    found = problems(tmp_path, "a,b\n1,12345\n", max_cell_chars=4)
    assert found == [f"{tmp_path / 'table.csv'}:2: b: 5 characters, more than the 4 a cell may hold (is a quote "
                     "missing?)"]


def test_a_long_cell_on_a_later_line_of_its_row_is_named_at_that_line(tmp_path):
    found = problems(tmp_path, 'a,b\n"1\n",12345\n', max_cell_chars=4)
    assert found[0].startswith(f"{tmp_path / 'table.csv'}:3: b: 5 characters")


def test_a_file_larger_than_the_cap_is_refused(tmp_path):
    found = problems(tmp_path, "a,b\n" + "1,2\n" * 300, max_bytes=1024)
    assert found == [f"{tmp_path / 'table.csv'}: the file is 1.2 KiB; a CSV read here may be at most 1 KiB (is "
                     "this the right file?)"]


def test_utf16_text_is_named_as_such(tmp_path):
    found = problems(tmp_path, "a,b\n1,2\n".encode("utf-16"))
    assert found == [f"{tmp_path / 'table.csv'}:1: the file is UTF-16 text, not UTF-8; save it as UTF-8 (Excel: "
                     "CSV UTF-8)"]


def test_an_xlsx_workbook_is_named_as_such(tmp_path):
    found = problems(tmp_path, b"PK\x03\x04rest")
    assert "a zip archive (an .xlsx workbook?)" in found[0]


def test_many_bytes_that_are_not_utf8_are_listed_ten_at_most(tmp_path):
    found = problems(tmp_path, b"a,b\n" + b"1,\xe9\n" * 30)
    assert len(found) == 11 and found[9].startswith(f"{tmp_path / 'table.csv'}:11: not UTF-8 text: byte 0xe9")
    assert found[10] == f"{tmp_path / 'table.csv'}: ... and more bytes that are not UTF-8"


def test_several_nul_bytes_are_counted(tmp_path):
    found = problems(tmp_path, b"a,b\n1,2\n\0\0\0\n")
    assert found == [f"{tmp_path / 'table.csv'}:3: a NUL byte at offset 8 (3 NUL bytes in all); a CSV is text: "
                     "save it as UTF-8 (Excel: CSV UTF-8)"]


def test_config_error_puts_problems_in_line_order(tmp_path):
    path = tmp_path / "t.csv"
    error = config_error(path, [f"{path}:10: a: x", f"{path}:2: b: y", f"{path}: whole file", f"{path}:2: a: z"])
    assert error.problems == [f"{path}: whole file", f"{path}:2: b: y", f"{path}:2: a: z", f"{path}:10: a: x"]


def test_looks_like_row_sees_the_header_columns(tmp_path):
    seen = []
    rows_of(tmp_path, 'a,b\n1,"x\ny,z"\n', looks_like_row=lambda row: seen.append(dict(row)) or False)
    assert seen == [{"a": "y", "b": "z"}]
