"""report.md: the student's written answers, one section per question."""

from grader.submission.answers import MAX_ANSWER_CHARS, read_answers, split_sections


def test_sections_follow_the_contracts_headings():
    text = "# My report\nintro\n## 1\nsaliency text\n\n## 2\nfilters\n## 3\nlime\n## 4\nfree\n"
    assert split_sections(text) == {"q1": "saliency text", "q2": "filters", "q3": "lime", "q4": "free"}


def test_headings_students_also_write_are_understood():
    text = "## Q1 Saliency\na\n## 2. Filters\nb\n### Question 3\nc\n## 第4題\nd\n"
    assert split_sections(text) == {"q1": "a", "q2": "b", "q3": "c", "q4": "d"}


def test_a_heading_without_a_question_number_stays_inside_its_section():
    assert split_sections("## 1\na\n## Discussion\nb\n") == {"q1": "a\n## Discussion\nb"}


def test_no_report_gives_no_answers(tmp_path):
    assert read_answers(tmp_path) == {}


def test_chinese_answers_and_bad_bytes_are_read(tmp_path):
    (tmp_path / "report.md").write_bytes("## 1\n模型看嘴巴".encode("utf-8") + b"\xff\n## 2\n\n")
    assert read_answers(tmp_path) == {"q1": "模型看嘴巴\ufffd"}  # q2 is empty: no answer


def test_a_long_answer_is_cut_with_a_note(tmp_path):
    (tmp_path / "report.md").write_text("## 1\n" + "x" * (MAX_ANSWER_CHARS + 10), encoding="utf-8")
    answer = read_answers(tmp_path)["q1"]
    assert answer.startswith("x" * MAX_ANSWER_CHARS) and answer.endswith(f"cut at {MAX_ANSWER_CHARS} characters]")
