"""report.md: the student's written answers, one section per question."""

import os

import pytest

from grader.submission.answers import MAX_ANSWER_CHARS, answers_from, split_sections
from grader.submission.errors import SubmissionError
from grader.submission.folder import ANSWERS_MAX_BYTES, SubmissionFolder


def test_sections_follow_the_contracts_headings():
    text = "# My report\nintro\n## 1\nsaliency text\n\n## 2\nfilters\n## 3\nlime\n## 4\nfree\n"
    assert split_sections(text) == {"q1": "saliency text", "q2": "filters", "q3": "lime", "q4": "free"}


def test_headings_students_also_write_are_understood():
    text = "## Q1 Saliency\na\n## 2. Filters\nb\n### Question 3\nc\n## 第4題\nd\n"
    assert split_sections(text) == {"q1": "a", "q2": "b", "q3": "c", "q4": "d"}


def test_a_heading_without_a_question_number_stays_inside_its_section():
    assert split_sections("## 1\na\n## Discussion\nb\n") == {"q1": "a\n## Discussion\nb"}


def test_no_report_gives_no_answers(tmp_path):
    assert SubmissionFolder.read(tmp_path).answers() == {}


def test_chinese_answers_and_bad_bytes_are_read():
    assert answers_from("## 1\n模型看嘴巴".encode("utf-8") + b"\xff\n## 2\n\n") == {"q1": "模型看嘴巴\ufffd"}


def test_a_long_answer_is_cut_with_a_note():
    answer = answers_from(("## 1\n" + "x" * (MAX_ANSWER_CHARS + 10)).encode())["q1"]
    assert answer.startswith("x" * MAX_ANSWER_CHARS) and answer.endswith(f"cut at {MAX_ANSWER_CHARS} characters]")


def test_a_report_linked_to_a_file_outside_the_folder_is_never_read(tmp_path):
    (tmp_path / "labels.csv").write_text("## 1\nsecret labels\n")
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "report.md").symlink_to(tmp_path / "labels.csv")
    with pytest.raises(SubmissionError, match="outside"):
        SubmissionFolder.read(folder).answers()


def test_a_fifo_named_report_md_is_refused_without_waiting(tmp_path):
    os.mkfifo(tmp_path / "report.md")
    with pytest.raises(SubmissionError):
        SubmissionFolder.read(tmp_path)


def test_a_report_over_the_cap_is_refused_with_its_size(tmp_path):
    (tmp_path / "report.md").write_bytes(b"## 1\n" + b"x" * ANSWERS_MAX_BYTES)
    with pytest.raises(SubmissionError, match="more than the 512.0 KiB the grader reads") as raised:
        SubmissionFolder.read(tmp_path).answers()
    assert raised.value.stage == "answers"
