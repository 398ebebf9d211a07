"""The per-student PDF: Jinja2 renders HTML from templates/, WeasyPrint lays it out."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import jinja2

from grader.atomic import atomic_write_bytes
from grader.classes import Language, class_names
from grader.escape import printable_text
from grader.report.claim_text import WORDS as CLAIM_WORDS
from grader.report.claim_text import claims_by_question
from grader.report.words import words
from grader.result import CriterionResult, FigureRecord, Result


@lru_cache(maxsize=1)
def template_environment() -> jinja2.Environment:
    """The one Jinja environment of the PDF and the dashboard, and so the one place their student text is
    made safe: `printable_text` cleans every printed str (WeasyPrint cannot encode a lone surrogate, and
    HTML allows no control characters), then autoescape escapes it. Values are data, never templates:
    student text that looks like `{{ 7*7 }}` is printed as written. No template marks student text `|safe`."""
    loader = jinja2.FileSystemLoader(str(resources.files("grader") / "templates"))
    return jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined,
                              finalize=printable_text)


def render_html(result: Result, language: Language = "en") -> str:
    """The report as HTML; figure paths (the result's `figures`) are relative to the student's output folder."""
    question_figures: dict[str, list[FigureRecord]] = {}
    for figure in result.figures:
        question_figures.setdefault(figure.question, []).append(figure)
    w = words(language)
    css = (resources.files("grader") / "templates" / "report.css").read_text(encoding="utf-8")
    profile = result.profile
    profile_text = ", ".join(f"{k} {v}" for k, v in profile.items() if k != "limits") if profile else "—"
    return template_environment().get_template("report.html.j2").render(
        result=result, w=w, css=css, language=language, class_names=class_names(language),
        question_figures=question_figures, claim_lines=claims_by_question(result.claims, language),
        claims_title=CLAIM_WORDS[language]["title"], profile_text=profile_text, verdict=lambda c: _verdict(c, w))


def _verdict(criterion: CriterionResult, w: dict[str, str]) -> str:
    if criterion.score is None:
        return w["pending"]
    if criterion.score >= criterion.max_score:
        return w["pass"]
    return w["partial"] if criterion.score > 0 else w["fail"]


def write_pdf(html: str, student_dir: Path, target: Path) -> None:
    """Lay out `html` (relative links resolved in `student_dir`) and write the PDF atomically."""
    import weasyprint  # imported here: it takes a second to load, and only reports need it

    pdf = weasyprint.HTML(string=html, base_url=str(student_dir)).write_pdf()
    atomic_write_bytes(target, pdf)
