"""The class dashboard, `out/index.html`: every student's scores in one sortable table, histograms
of the totals and of each question, the failed submissions' messages, and the submissions held
because another folder claims the same student_id (status "conflict": not graded, no report).

The page is one static file that works from file:// with no server and no network: its CSS and
its small sorting script are inline, and the histograms are inline SVG drawn here in Python.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from markupsafe import Markup, escape

from grader.atomic import atomic_write_text
from grader.classes import Language
from grader.escape import clean_text
from grader.report.pdf import template_environment
from grader.report.words import words
from grader.result import Result
from grader.similarity.pairs import SimilarPair

TEMPLATE = "dashboard.html.j2"
INDEX_NAME = "index.html"
REPORT_NAME = "report.pdf"

# Bin widths a histogram may use, smallest first. Rubric points come in quarters, so every width
# is a multiple of 0.25 and a quarter point never straddles two bins.
NICE_BIN_WIDTHS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
MAX_BINS = 12


@dataclass(frozen=True)
class Histogram:
    """Counts of values in bins over 0..max_score: bin i is [edges[i], edges[i+1]), the last one
    closed so that full marks count."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class QuestionColumn:
    """One question's column in the table and its histogram's caption."""

    id: str
    title: str
    max_score: float


@dataclass(frozen=True)
class Summary:
    """The summary line: how many submissions, how they ended (graded, failed, or held in an id
    conflict), and the graded totals' centre."""

    submissions: int
    graded: int
    failed: int
    conflicts: int
    mean_total: float | None
    median_total: float | None
    max_total: float


@dataclass(frozen=True)
class HistogramFigure:
    """A histogram ready for the page: its caption and its SVG."""

    caption: str
    svg: Markup


def write_dashboard(results: Sequence[Result], out_dir: Path, language: Language = "en",
                    similar: Sequence[SimilarPair] = ()) -> Path:
    """Write `out_dir/index.html` in one step and return its path. Each student's PDF is linked
    as `<student_id>/report.pdf`, relative to the page."""
    target = Path(out_dir) / INDEX_NAME
    atomic_write_text(target, render_dashboard(results, language=language, similar=similar))
    return target


def render_dashboard(results: Sequence[Result], language: Language = "en",
                     similar: Sequence[SimilarPair] = ()) -> str:
    """The dashboard page as HTML, students in student-id order; `similar` are the flagged pairs
    of the similarity report (grader.similarity)."""
    # Two folders in conflict may claim one student_id: the folder keeps their order fixed.
    ordered = sorted(results, key=lambda r: (r.student_id, r.folder))
    w = words(language)
    questions = question_columns(ordered)
    summary = summarize(ordered)
    return template_environment().get_template(TEMPLATE).render(
        w=w, language=language, results=ordered, questions=questions, summary=summary,
        histograms=histogram_figures(ordered, questions, summary.max_total, w),
        failures=[r for r in ordered if r.status == "failed"],
        conflicts=[r for r in ordered if r.status == "conflict"], similar=list(similar),
        points=format_points, percent=format_percent, sort_key=sort_key, shown_total=shown_total,
        report_href=report_href, warnings_title=warnings_title)


def question_columns(results: Sequence[Result]) -> list[QuestionColumn]:
    """The questions any result has, in question order (q1, q2, ..., q10), each with its title
    and its largest max_score."""
    columns: dict[str, QuestionColumn] = {}
    for result in results:
        for question in result.questions:
            known = columns.get(question.id)
            if known is None or question.max_score > known.max_score:
                columns[question.id] = QuestionColumn(question.id, known.title if known else question.title,
                                                      question.max_score)
    return sorted(columns.values(), key=lambda c: _question_number(c.id))


def _question_number(question_id: str) -> tuple[float, str]:
    # "q10" after "q9": order by the number, and keep any id without one in name order at the end.
    digits = "".join(ch for ch in question_id if ch.isdigit())
    return (int(digits) if digits else math.inf, question_id)


def summarize(results: Sequence[Result]) -> Summary:
    """Counts of submissions, graded, failed and in conflict, and the mean and median total of the
    graded. A conflict is counted apart from the failures: nothing went wrong with its code, it
    waits for the TA to say whose it is."""
    totals = [r.score for r in results if r.status == "graded"]
    return Summary(
        submissions=len(results), graded=len(totals), failed=sum(r.status == "failed" for r in results),
        conflicts=sum(r.status == "conflict" for r in results),
        mean_total=statistics.fmean(totals) if totals else None,
        median_total=statistics.median(totals) if totals else None,
        max_total=max((r.max_score for r in results), default=0.0))


def histogram_figures(results: Sequence[Result], questions: Sequence[QuestionColumn], max_total: float,
                      w: dict[str, str]) -> list[HistogramFigure]:
    """The total's histogram, then one per question, over the graded students only (a failed
    submission's zeros say nothing about how the class did)."""
    graded = [r for r in results if r.status == "graded"]
    if not graded:
        return []
    figures = [_figure(f"{w['total']} (/ {format_points(max_total)})", [r.score for r in graded], max_total, w)]
    for column in questions:
        scores = [q.score for r in graded if (q := r.question(column.id)) is not None]
        caption = f"{column.id}. {column.title} (/ {format_points(column.max_score)})"
        figures.append(_figure(caption, scores, column.max_score, w))
    return figures


def _figure(caption: str, values: Sequence[float], max_score: float, w: dict[str, str]) -> HistogramFigure:
    svg = histogram_svg(histogram(values, max_score), title=caption,
                        x_label=w["points"], y_label=w["dashboard_count"])
    return HistogramFigure(caption, svg)


def bin_width(max_score: float) -> float:
    """The smallest nice bin width that covers 0..max_score in at most MAX_BINS bins."""
    for width in NICE_BIN_WIDTHS:
        if max_score / width <= MAX_BINS:
            return width
    return max_score / MAX_BINS


def histogram(values: Sequence[float], max_score: float) -> Histogram:
    """Bin `values` over 0..max_score; a value outside the range counts in the nearest end bin."""
    if max_score <= 0:
        return Histogram(edges=(0.0, 0.0), counts=(len(values),))
    width = bin_width(max_score)
    bins = math.ceil(max_score / width - 1e-9)
    edges = tuple(min(i * width, max_score) for i in range(bins)) + (max_score,)
    counts = [0] * bins
    for value in values:
        # The small epsilon keeps 0.75 / 0.25 = 2.9999999 from landing one bin low.
        index = math.floor(value / width + 1e-9)
        counts[min(max(index, 0), bins - 1)] += 1
    return Histogram(edges=edges, counts=tuple(counts))


# The SVG's geometry in CSS pixels: the plot area sits inside these margins.
SVG_WIDTH, SVG_HEIGHT = 360, 236
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 34, 12, 32, 46
PLOT_WIDTH = SVG_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
PLOT_HEIGHT = SVG_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
PLOT_BOTTOM = MARGIN_TOP + PLOT_HEIGHT


@dataclass(frozen=True)
class _Scale:
    """Where a histogram's bins and counts land in the plot area."""

    bins: int
    y_max: int
    tick_step: int

    @classmethod
    def for_histogram(cls, hist: Histogram) -> _Scale:
        top_count = max(max(hist.counts, default=0), 1)
        tick_step = max(1, math.ceil(top_count / 4))  # at most five count ticks, whole students
        return cls(bins=len(hist.counts), y_max=tick_step * math.ceil(top_count / tick_step),
                   tick_step=tick_step)

    @property
    def bin_pixels(self) -> float:
        return PLOT_WIDTH / self.bins

    def x(self, edge_index: int) -> float:
        return MARGIN_LEFT + edge_index * self.bin_pixels

    def y(self, count: float) -> float:
        return PLOT_BOTTOM - PLOT_HEIGHT * count / self.y_max


def histogram_svg(hist: Histogram, title: str, x_label: str, y_label: str) -> Markup:
    """An inline SVG bar chart of `hist`: a bar per bin with its count above it, the bin edges
    on the x axis, count ticks on the y axis, and both axes labelled (the y label above it)."""
    scale = _Scale.for_histogram(hist)
    parts = [
        (f'<svg class="histogram" role="img" xmlns="http://www.w3.org/2000/svg" '
         f'viewBox="0 0 {SVG_WIDTH} {SVG_HEIGHT}" width="{SVG_WIDTH}" height="{SVG_HEIGHT}">'),
        f"<title>{escape(title)}</title>",
        *_count_grid(scale),
        *_bars(hist, scale),
        *_edge_ticks(hist, scale),
        *_axes(x_label, y_label),
        "</svg>",
    ]
    return Markup("".join(parts))


def _count_grid(scale: _Scale) -> list[str]:
    """A faint line and a label at each count tick."""
    parts = []
    for count in range(0, scale.y_max + 1, scale.tick_step):
        y = scale.y(count)
        parts.append(f'<line class="grid" x1="{MARGIN_LEFT}" y1="{y:.1f}" '
                     f'x2="{MARGIN_LEFT + PLOT_WIDTH}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{count}</text>')
    return parts


def _bars(hist: Histogram, scale: _Scale) -> list[str]:
    """A bar per non-empty bin, its count written above it and its range in its tooltip."""
    parts = []
    for index, count in enumerate(hist.counts):
        if not count:
            continue
        x, y = scale.x(index), scale.y(count)
        parts.append(f'<rect class="bar" x="{x + 1.5:.1f}" y="{y:.1f}" width="{scale.bin_pixels - 3:.1f}" '
                     f'height="{PLOT_BOTTOM - y:.1f}"><title>{_bin_text(hist, index)}: {count}</title></rect>')
        parts.append(f'<text class="count" x="{x + scale.bin_pixels / 2:.1f}" y="{y - 4:.1f}" '
                     f'text-anchor="middle">{count}</text>')
    return parts


def _edge_ticks(hist: Histogram, scale: _Scale) -> list[str]:
    """Tick marks and labels at the bin edges; every other one past ten bins, so that labels like
    0.25 and 0.5 do not run into each other, but always the last (the maximum)."""
    label_every = 1 if scale.bins <= 10 else 2
    parts = []
    for index, edge in enumerate(hist.edges):
        if index % label_every and index != len(hist.edges) - 1:
            continue
        x = scale.x(index)
        parts.append(f'<line class="axis" x1="{x:.1f}" y1="{PLOT_BOTTOM}" x2="{x:.1f}" y2="{PLOT_BOTTOM + 4}"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{PLOT_BOTTOM + 16}" '
                     f'text-anchor="middle">{format_points(edge)}</text>')
    return parts


def _axes(x_label: str, y_label: str) -> list[str]:
    return [
        (f'<line class="axis" x1="{MARGIN_LEFT}" y1="{PLOT_BOTTOM}" '
         f'x2="{MARGIN_LEFT + PLOT_WIDTH}" y2="{PLOT_BOTTOM}"/>'),
        f'<line class="axis" x1="{MARGIN_LEFT}" y1="{MARGIN_TOP}" x2="{MARGIN_LEFT}" y2="{PLOT_BOTTOM}"/>',
        (f'<text class="label" x="{MARGIN_LEFT + PLOT_WIDTH / 2:.1f}" y="{SVG_HEIGHT - 8}" '
         f'text-anchor="middle">{escape(x_label)}</text>'),
        # The count label sits level above the y axis rather than turned on its side, which
        # would lay Chinese characters on their backs.
        f'<text class="label" x="4" y="13">{escape(y_label)}</text>',
    ]


def _bin_text(hist: Histogram, index: int) -> str:
    closing = "]" if index == len(hist.counts) - 1 else ")"
    return f"[{format_points(hist.edges[index])}, {format_points(hist.edges[index + 1])}{closing}"


def report_href(result: Result) -> str | None:
    """The link to the student's PDF, relative to the page, or None for a conflict (no report is
    written for it). The id is cleaned before it is quoted: a lone surrogate cannot be encoded."""
    if result.status == "conflict":
        return None
    return f"{quote(clean_text(result.student_id), safe='')}/{REPORT_NAME}"


def shown_total(result: Result) -> float | None:
    """The total the table shows: none for a conflict, which was not graded (a 0 would read as a grade
    and sort among the real ones)."""
    return None if result.status == "conflict" else result.score


def warnings_title(result: Result) -> str:
    """The row's warning marker's tooltip: one line per warning (autoescape makes it a safe attribute)."""
    return "\n".join(warning.message for warning in result.warnings)


def format_points(value: float) -> str:
    """Points as the PDF prints them: 4.75, 10, 0.5."""
    return f"{value:g}"


def format_percent(value: float | None) -> str:
    """An accuracy as a percentage with one decimal, or a dash when it is unknown."""
    return "—" if value is None else f"{100 * value:.1f}%"


def sort_key(value: float | None) -> str:
    """A numeric cell's data-sort value for the page's script; empty when unknown, which the
    script sorts last in either direction."""
    return "" if value is None else repr(float(value))
