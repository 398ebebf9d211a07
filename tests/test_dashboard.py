"""The class dashboard (out/index.html): what the page says, checked on its HTML, and how it
behaves, checked in a real headless Chromium driven by Playwright.

The browser tests need Debian's `chromium` and the `playwright` package (scripts/system-deps.sh
and the test extra install both); `playwright install` is never needed, the system browser is used.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

from grader.report.dashboard import (
    histogram,
    render_dashboard,
    summarize,
    write_dashboard,
)
from grader.result import CriterionResult, QuestionResult, Result, StageError

QUESTION_MAX = {"q1": 2.0, "q2": 3.0, "q3": 3.0, "q4": 2.0}
TITLES = {"q1": "Saliency maps", "q2": "Filter visualization", "q3": "LIME with the confusion matrix",
          "q4": "Free-choice visualization"}
HOSTILE_MESSAGE = "the model printed <script>alert('pwned')</script> & returned shape (8, 6)"


def graded(student_id: str, name: str, scores: tuple[float, float, float, float], accuracy: float,
           pending: bool = False) -> Result:
    """A graded result whose questions score `scores`; `pending` leaves a manual criterion unscored."""
    questions = []
    for (question_id, max_score), score in zip(QUESTION_MAX.items(), scores, strict=True):
        criteria = [CriterionResult(id=f"{question_id}_auto", score=score, max_score=max_score - 1),
                    CriterionResult(id=f"{question_id}_answer", score=None if pending else 0.0,
                                    max_score=1.0, manual=True)]
        questions.append(QuestionResult(id=question_id, title=TITLES[question_id], score=score,
                                        max_score=max_score, criteria=criteria))
    return Result(student_id=student_id, name=name, status="graded", score=sum(scores), max_score=10.0,
                  questions=questions, accuracy=accuracy, tool_version="test")


def failed(student_id: str, name: str, message: str) -> Result:
    return Result(student_id=student_id, name=name, status="failed", max_score=10.0,
                  errors=[StageError(stage="checks", message=message)], tool_version="test")


# Totals 9, 2.5, 6.75, 7.5 and 0 (failed); given out of id order so the page has to sort them.
RESULTS = [
    graded("r11922004", "林志皓", (1.0, 3.0, 1.5, 2.0), accuracy=0.87, pending=True),
    graded("b09902001", "Alice Wang", (2.0, 2.5, 3.0, 1.5), accuracy=0.9),
    graded("b09902003", "Carol Hsu", (1.5, 2.0, 2.25, 1.0), accuracy=0.82),
    failed("b09902005", "Eve Wu", HOSTILE_MESSAGE),
    graded("b09902002", "Bob Lin", (0.5, 1.0, 0.75, 0.25), accuracy=0.49, pending=True),
]
IDS_IN_ORDER = ["b09902001", "b09902002", "b09902003", "b09902005", "r11922004"]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory) -> Path:
    """The dashboard written into an output folder that holds every student's (fake) report.pdf."""
    out_dir = tmp_path_factory.mktemp("out")
    for result in RESULTS:
        (out_dir / result.student_id).mkdir()
        (out_dir / result.student_id / "report.pdf").write_bytes(b"%PDF-1.4\n")
    return write_dashboard(RESULTS, out_dir)


@pytest.fixture(scope="module")
def html(dashboard) -> str:
    return dashboard.read_text(encoding="utf-8")


# ---------------------------------------------------------------- the page's content


def test_write_dashboard_writes_index_html_in_the_output_folder(dashboard):
    assert dashboard.name == "index.html"
    assert (dashboard.parent / "b09902001" / "report.pdf").is_file()
    assert '<meta charset="utf-8">' in dashboard.read_text(encoding="utf-8")


def test_the_page_lists_every_student_with_the_chinese_name_intact(html):
    for result in RESULTS:
        assert f'<td data-column="student_id">{result.student_id}</td>' in html
    assert '<td data-column="name">林志皓</td>' in html


def test_rows_start_in_student_id_order(html):
    assert re.findall(r'<td data-column="student_id">([^<]+)</td>', html) == IDS_IN_ORDER


def test_a_failed_students_error_is_listed_with_its_stage_and_escaped(html):
    failures = html.split('<section id="failures">')[1]
    assert "b09902005 · Eve Wu" in failures
    assert ('<span class="stage">checks</span>: the model printed '
            "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; returned shape (8, 6)") in failures
    assert "<script>alert" not in html


def test_each_row_links_its_students_pdf_relatively(html):
    assert '<a href="r11922004/report.pdf">PDF</a>' in html
    assert '<a href="b09902005/report.pdf">PDF</a>' in html  # a failed student has a report too


def test_there_is_one_histogram_svg_for_the_total_and_one_per_question(html):
    captions = re.findall(r"<figcaption>([^<]+)</figcaption><svg class=\"histogram\"", html)
    assert captions == ["Total (/ 10)", "q1. Saliency maps (/ 2)", "q2. Filter visualization (/ 3)",
                        "q3. LIME with the confusion matrix (/ 3)", "q4. Free-choice visualization (/ 2)"]
    assert html.count("<svg") == 5


def test_histograms_count_graded_students_only_and_say_how_many_failed(html):
    total_svg = html.split('<svg class="histogram"')[1]
    counts = [int(n) for n in re.findall(r'<text class="count"[^>]*>(\d+)</text>', total_svg)]
    assert sum(counts) == 4
    assert "Graded submissions only; 1 failed submission(s) not counted." in html


def test_histogram_bins_cover_zero_to_max_with_full_marks_in_the_last_bin():
    result = histogram([0.0, 0.25, 0.75, 1.9, 2.0], max_score=2.0)
    assert result.edges == (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
    assert result.counts == (1, 1, 0, 1, 0, 0, 0, 2)


def test_histogram_of_a_ten_point_total_uses_one_point_bins():
    result = histogram([4.75, 4.5, 3.75, 10.0], max_score=10.0)
    assert result.edges == tuple(float(i) for i in range(11))
    assert result.counts == (0, 0, 0, 1, 2, 0, 0, 0, 0, 1)


def test_summary_counts_submissions_and_centres_the_graded_totals(html):
    summary = summarize(RESULTS)
    assert (summary.submissions, summary.graded, summary.failed) == (5, 4, 1)
    assert summary.mean_total == pytest.approx(statistics.fmean([9.0, 2.5, 6.75, 7.5]))  # 6.4375
    assert summary.median_total == pytest.approx(7.125)
    assert "Mean total <b>6.44</b>" in html
    assert "Median total <b>7.125</b>" in html


def test_headings_follow_the_report_language():
    page = render_dashboard(RESULTS, language="zh-TW")
    assert '<html lang="zh-TW">' in page
    assert "<h1>解釋你的 CNN：全班總覽</h1>" in page
    assert "<h2>失敗的繳交</h2>" in page


def test_a_dashboard_with_no_graded_student_says_so_instead_of_drawing_histograms():
    page = render_dashboard([failed("b1", "", "no submission.yaml")])
    assert "<svg" not in page
    assert "No submission has been graded." in page


def test_the_page_fetches_nothing(html):
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=", html)


# ---------------------------------------------------------------- conflicts, warnings, hostile text

HOSTILE = "A\ud800B\x00C\x1b[31mRED\x07 \u202eevil <script>alert(1)</script></style> {{ 7*7 }}"
HOSTILE_ESCAPED = ("A\ufffdB\ufffdC\ufffd[31mRED\ufffd \ufffdevil &lt;script&gt;alert(1)&lt;/script&gt;"
                   "&lt;/style&gt; {{ 7*7 }}")
SKEW_WARNING = "the model predicts Happy for 96% of the faces"


def conflict(folder: str, other: str) -> Result:
    """A submission held because the folder `other` claims the same student_id."""
    return Result(student_id="b09902010", name="Frank Lee", folder=folder, status="conflict", max_score=10.0,
                  tool_version="test", errors=[StageError(
                      stage="spec", message=f"student_id b09902010 is also claimed by the submission folder '{other}'")])


def warned(*messages: str) -> Result:
    result = graded("b09902007", "Dan Chen", (1.0, 1.0, 1.0, 1.0), accuracy=0.3)
    return result.model_copy(update={"warnings": [StageError(stage="predictions", message=m) for m in messages]})


CONFLICTS = [conflict("frank_v2", "frank"), conflict("frank", "frank_v2")]


@pytest.fixture(scope="module")
def conflict_html() -> str:
    return render_dashboard([*RESULTS, *CONFLICTS])


def test_summary_counts_conflicts_apart_from_graded_and_failed(conflict_html):
    summary = summarize([*RESULTS, *CONFLICTS])
    assert (summary.submissions, summary.graded, summary.failed, summary.conflicts) == (7, 4, 1, 2)
    assert "ID conflicts <b>2</b>" in conflict_html
    assert "Failed <b>1</b>" in conflict_html


def test_a_conflicts_row_says_so_and_shows_no_total_and_no_pdf_link(conflict_html):
    rows = re.findall(r'<tr class="conflict">(.*?)</tr>', conflict_html, flags=re.S)
    assert len(rows) == 2
    for row in rows:
        assert '<td data-column="status" class="status-conflict" data-sort="ID conflict">ID conflict</td>' in row
        assert '<td data-column="total" class="number" data-sort="">—</td>' in row
        assert "<a " not in row and '<span class="no-report">none</span>' in row


def test_conflicts_are_listed_with_their_folder_and_message_in_folder_order(conflict_html):
    section = conflict_html.split('<section id="conflicts">')[1].split("</section>")[0]
    headings = re.findall(r"<h3>(.*?)</h3>", section)
    assert headings == ['b09902010 · Frank Lee · folder <span class="folder">frank</span>',
                        'b09902010 · Frank Lee · folder <span class="folder">frank_v2</span>']
    assert ("<span class=\"stage\">spec</span>: student_id b09902010 is also claimed by the submission folder "
            "&#39;frank_v2&#39;") in section
    assert "report.pdf" not in section


def test_a_page_without_conflicts_says_none_are_held(html):
    section = html.split('<section id="conflicts">')[1]
    assert "No two submission folders claim the same student ID." in section
    assert "ID conflicts <b>0</b>" in html


def test_conflicts_are_left_out_of_the_histograms_and_the_note_says_how_many(conflict_html):
    total_svg = conflict_html.split('<svg class="histogram"')[1]
    assert sum(int(n) for n in re.findall(r'<text class="count"[^>]*>(\d+)</text>', total_svg)) == 4
    assert "2 submission(s) held for an ID conflict not counted either." in conflict_html


def test_a_warning_marker_carries_every_warning_as_its_title():
    page = render_dashboard([warned(SKEW_WARNING, "second <b>one</b>")])
    marker = re.search(r'<span class="warning-mark" title="([^"]*)"[^>]*>([^<]*)</span>', page)
    assert marker is not None
    assert marker.group(1) == f"{SKEW_WARNING}\nsecond &lt;b&gt;one&lt;/b&gt;"
    assert marker.group(2) == "⚠ 2"


def test_a_row_without_warnings_has_no_marker(html):
    assert "warning-mark" not in html.split("<tbody>")[1]


def test_the_chinese_page_names_conflicts_in_chinese():
    page = render_dashboard([*RESULTS, *CONFLICTS], language="zh-TW")
    assert "<h2>學號衝突</h2>" in page and "學號衝突 <b>2</b>" in page
    assert 'data-sort="學號衝突">學號衝突</td>' in page


def test_hostile_student_text_reaches_the_page_cleaned_and_escaped():
    """The sink holds even for text that skipped Result's validators (model_copy does not validate)."""
    hostile = RESULTS[3].model_copy(update={
        "name": HOSTILE, "errors": [StageError.model_construct(stage="checks", message=HOSTILE)],
        "warnings": [StageError.model_construct(stage="x", message=HOSTILE)]})
    page = render_dashboard([hostile, RESULTS[0]])
    assert f'<td data-column="name">{HOSTILE_ESCAPED}</td>' in page
    assert f"<span class=\"stage\">checks</span>: {HOSTILE_ESCAPED}</li>" in page
    assert f'title="{HOSTILE_ESCAPED}"' in page
    assert page.count("<script>") == 1  # the page's own sorting script


# ---------------------------------------------------------------- the page in Chromium


@dataclass
class Tab:
    """A browser tab showing the dashboard, with what went wrong in it and what it fetched."""

    page: Any
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def column(self, name: str) -> list[str]:
        """The column's cells, top to bottom, as the page shows them now."""
        return self.page.locator(f'#students tbody td[data-column="{name}"]').all_text_contents()

    def click_header(self, name: str) -> None:
        self.page.click(f'#students th[data-column="{name}"] button')

    def arrow(self, name: str) -> str:
        return self.page.inner_text(f'#students th[data-column="{name}"] .arrow')


def open_tab(browser, page_path: Path) -> Tab:
    """A fresh tab showing `page_path` from file://, recording errors and every request."""
    page = browser.new_page()
    opened = Tab(page)
    page.on("console", lambda message: opened.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.on("request", lambda request: opened.requests.append(request.url))
    page.goto(page_path.as_uri())
    return opened


@pytest.fixture()
def tab(browser, dashboard) -> Iterator[Tab]:
    """A fresh tab showing the dashboard."""
    opened = open_tab(browser, dashboard)
    yield opened
    opened.page.close()


@pytest.fixture()
def conflict_tab(browser, tmp_path) -> Iterator[Tab]:
    """A fresh tab showing a dashboard with two folders in conflict and a student with warnings."""
    opened = open_tab(browser, write_dashboard([*RESULTS, *CONFLICTS, warned(SKEW_WARNING)], tmp_path))
    yield opened
    opened.page.close()


def test_the_page_loads_from_file_without_errors_or_network_requests(tab, dashboard):
    assert tab.page.title() == "Explain your CNN: class dashboard"
    assert tab.errors == []
    assert tab.requests == [dashboard.as_uri()]


def test_clicking_total_sorts_ascending_then_descending(tab):
    tab.click_header("total")
    assert tab.column("total") == ["0", "2.5", "6.75", "7.5", "9"]
    assert tab.column("student_id") == ["b09902005", "b09902002", "b09902003", "r11922004", "b09902001"]
    tab.click_header("total")
    assert tab.column("total") == ["9", "7.5", "6.75", "2.5", "0"]
    assert tab.errors == []


def test_the_sorted_column_shows_an_arrow_and_only_it(tab):
    assert tab.arrow("student_id") == "▲"
    tab.click_header("total")
    assert tab.arrow("total") == "▲"
    assert tab.arrow("student_id") == ""
    tab.click_header("total")
    assert tab.page.get_attribute('th[data-column="total"]', "aria-sort") == "descending"
    assert tab.arrow("total") == "▼"


def test_question_columns_sort_numerically(tab):
    tab.click_header("q2")
    # "—" is the failed student's missing score: unknown values stay last.
    assert tab.column("q2") == ["1", "2", "2.5", "3", "—"]


def test_accuracy_sorts_by_value_with_an_unknown_one_last_in_both_directions(tab):
    # 0.87 before 0.9: compared as numbers, not digit run by digit run ("87" > "9").
    tab.click_header("accuracy")
    assert tab.column("accuracy") == ["49.0%", "82.0%", "87.0%", "90.0%", "—"]
    tab.click_header("accuracy")
    assert tab.column("accuracy") == ["90.0%", "87.0%", "82.0%", "49.0%", "—"]


def test_text_columns_sort_by_locale_and_reverse(tab):
    tab.click_header("name")
    assert tab.column("name") == ["Alice Wang", "Bob Lin", "Carol Hsu", "Eve Wu", "林志皓"]
    tab.click_header("name")
    assert tab.column("name") == ["林志皓", "Eve Wu", "Carol Hsu", "Bob Lin", "Alice Wang"]


def test_clicking_the_sorted_student_id_header_reverses_the_default_order(tab):
    tab.click_header("student_id")
    assert tab.column("student_id") == list(reversed(IDS_IN_ORDER))


def test_every_pdf_link_resolves_to_that_students_report(tab, dashboard):
    hrefs = tab.page.eval_on_selector_all("a", "links => links.map(link => link.href)")
    targets = {Path(url2pathname(urlparse(href).path)) for href in hrefs}
    assert targets == {dashboard.parent / student_id / "report.pdf" for student_id in IDS_IN_ORDER}
    assert all(target.is_file() for target in targets)
    assert len(tab.page.locator("#students a").all()) == len(RESULTS)


def test_a_conflicts_empty_total_sorts_last_both_ways(conflict_tab):
    conflict_tab.click_header("total")
    assert conflict_tab.column("total") == ["0", "2.5", "4", "6.75", "7.5", "9", "—", "—"]
    conflict_tab.click_header("total")
    assert conflict_tab.column("total") == ["9", "7.5", "6.75", "4", "2.5", "0", "—", "—"]
    assert conflict_tab.errors == []


def test_the_status_column_sorts_by_the_word_not_the_warning_marker(conflict_tab):
    # Equal words tie, and ties keep the student-id order in both directions: the marked row
    # (b09902007) stays between b09902003 and r11922004 instead of sorting after every "graded".
    graded_ids = ["b09902001", "b09902002", "b09902003", "b09902007", "r11922004"]
    conflict_tab.click_header("status")
    assert conflict_tab.column("student_id") == ["b09902005", *graded_ids, "b09902010", "b09902010"]
    conflict_tab.click_header("status")
    assert conflict_tab.column("student_id") == ["b09902010", "b09902010", *graded_ids, "b09902005"]


def test_the_warning_marker_shows_its_message_on_hover(conflict_tab):
    assert conflict_tab.page.get_attribute("#students .warning-mark", "title") == SKEW_WARNING
    assert conflict_tab.page.locator("#students .warning-mark").is_visible()


def test_only_graded_and_failed_rows_link_a_pdf(conflict_tab):
    assert len(conflict_tab.page.locator("#students a").all()) == len(RESULTS) + 1
