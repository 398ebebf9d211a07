"""The student's written answers: report.md in the submission, one section per question.

A section starts at a heading that names the question's number: `## 1` as the contract asks, and
also `## Q1`, `## 1. Saliency`, `## Question 1` or `## 第1題`, because students write all of them.
Text before the first such heading (a title, say) belongs to no question. The text is kept as
written; the PDF shows it as plain text (no HTML or Markdown is interpreted, so nothing in it can
reach outside the report).
"""

from __future__ import annotations

import re

ANSWERS_FILE = "report.md"
MAX_ANSWER_CHARS = 6000
"""Per question: about two PDF pages. Longer answers are cut, with a note saying so."""

_HEADING = re.compile(r"^#{1,3}\s*(?:q(?:uestion)?\s*|第\s*|問題\s*)?(\d{1,2})(?!\d)", re.IGNORECASE)


def answers_from(data: bytes) -> dict[str, str]:
    """Question id ("q1", ...) -> the section's text of report.md's bytes, stripped and cut at
    MAX_ANSWER_CHARS; bytes that are not UTF-8 become U+FFFD."""
    text = data.decode("utf-8", errors="replace")
    return {question: _bounded(body) for question, body in split_sections(text).items() if body}


def split_sections(text: str) -> dict[str, str]:
    """The sections of a report.md by question id; a repeated number adds to the first section."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        heading = _HEADING.match(line.strip())
        if heading:
            current = sections.setdefault(f"q{int(heading.group(1))}", [])
            continue
        if current is not None:
            current.append(line)
    return {question: "\n".join(lines).strip() for question, lines in sections.items()}


def _bounded(answer: str) -> str:
    if len(answer) <= MAX_ANSWER_CHARS:
        return answer
    return answer[:MAX_ANSWER_CHARS].rstrip() + f"\n[… cut at {MAX_ANSWER_CHARS} characters]"
