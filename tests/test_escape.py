"""Specifications of grader.escape: student text made safe for each sink."""

from __future__ import annotations

import csv
import io

import pytest
from markupsafe import Markup
from rich.console import Console

from grader.escape import clean_text, csv_cell, figure_text, printable_text, safe_file_name, terminal_text

ANSI_FAKE_LINE = "oops\x1b[2K\r\x1b[32mgraded\x1b[0m  victim: 10/10"
OSC_TITLE = "\x1b]0;pwned\x07 and \x9b31m"


def test_clean_text_replaces_a_lone_surrogate_so_the_text_encodes():
    cleaned = clean_text("Eve \ud800 Wu")
    assert cleaned == "Eve \ufffd Wu"
    cleaned.encode("utf-8")


def test_clean_text_replaces_control_characters_but_keeps_tabs_and_newlines():
    assert clean_text("a\x00b\x07c\td\ne\x7f\x85") == "a\ufffdb\ufffdc\td\ne\ufffd\ufffd"


def test_clean_text_turns_every_line_break_into_a_newline():
    assert clean_text("a\r\nb\rc\u2028d\u2029e") == "a\nb\nc\nd\ne"


def test_clean_text_removes_bidirectional_overrides():
    assert "\u202e" not in clean_text("txt.\u202eexe")


def test_clean_text_cuts_at_the_limit_with_an_ellipsis():
    assert clean_text("x" * 50, limit=10) == "x" * 9 + "…"


@pytest.mark.parametrize("text", [ANSI_FAKE_LINE, OSC_TITLE, "[/x] closing tag", "[bold red]fake error[/]"])
def test_terminal_text_prints_as_written_with_no_escape_sequence(text):
    console = Console(file=io.StringIO(), force_terminal=False, width=500)
    console.print(terminal_text(text), highlight=False)
    printed = console.file.getvalue()
    assert "\x1b" not in printed and "\x9b" not in printed and "\x07" not in printed
    assert printed.count("\n") == 1  # one line: no fake line of its own


def test_terminal_text_keeps_rich_markup_visible():
    console = Console(file=io.StringIO(), width=200)
    console.print(terminal_text("[/x] and [green]graded[/]"), highlight=False)
    assert console.file.getvalue() == "[/x] and [green]graded[/]\n"


def test_terminal_text_puts_a_multi_line_message_on_one_line():
    assert "\n" not in terminal_text("first\ngraded  victim: 10/10")


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)", "\tcmd", "\r=1"])
def test_csv_cell_defuses_a_formula(text):
    cell = csv_cell(text)
    assert cell.startswith("'")
    assert cell[1:] == clean_text(text)


def test_csv_cell_leaves_plain_text_and_numbers_alone():
    assert csv_cell("b09902011") == "b09902011"
    assert csv_cell("林志皓") == "林志皓"
    assert csv_cell(-0.5) == -0.5
    assert csv_cell(None) is None


def test_csv_cell_round_trips_through_the_csv_module():
    buffer = io.StringIO()
    csv.writer(buffer).writerow([csv_cell("=1+1"), csv_cell("a,\"b\"\nc")])
    assert next(csv.reader(io.StringIO(buffer.getvalue()))) == ["'=1+1", "a,\"b\"\nc"]


def test_printable_text_cleans_strings_and_leaves_markup():
    assert printable_text("a\ud800") == "a\ufffd"
    svg = Markup("<svg>\x01</svg>")
    assert printable_text(svg) is svg
    assert printable_text(3.5) == 3.5


def test_figure_text_is_drawn_without_mathtext():
    from matplotlib.figure import Figure

    figure = Figure()
    figure.add_subplot().set_title(figure_text(r"$\undefinedcmd$ layer"))
    figure.savefig(io.BytesIO(), format="png")  # mathtext would raise ValueError here
    assert figure_text("a$b") == r"a\$b"


def test_safe_file_name_keeps_a_safe_name():
    assert safe_file_name("b09902011") == "b09902011"


def test_safe_file_name_tells_apart_names_that_clean_alike():
    assert safe_file_name("john.doe") != safe_file_name("john_doe") == "john_doe"
    assert safe_file_name("john.doe").startswith("john_doe-")


def test_safe_file_name_bounds_the_length():
    name = safe_file_name("a" * 300)
    assert len(name) <= 64 and name != safe_file_name("a" * 299)


@pytest.mark.parametrize("name", ["-rf", "..", "", "\ud800", "a/b", "名字"])
def test_safe_file_name_is_always_a_plain_name(name):
    safe = safe_file_name(name)
    assert safe and safe[0].isalnum() and all(c.isalnum() or c in "_-" for c in safe) and safe.isascii()


def test_a_unique_safe_file_name_never_equals_a_name_that_needed_no_change():
    unique = safe_file_name("b00000001", unique=True)
    assert unique != "b00000001" and unique.startswith("b00000001-") and len(unique) <= 64
    assert unique == safe_file_name("b00000001", unique=True)
