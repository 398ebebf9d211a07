"""What a question hands on: its typed result with the names it is filed under (types only, so that
scoring and report/ import no explanation method)."""

from __future__ import annotations

from dataclasses import dataclass

from grader.explain.results import ExplanationResult

FREEFORM = "freeform"
"""The rubric's method name for "the student's choice" (submission.yaml's visualize.freeform)."""


@dataclass(frozen=True)
class QuestionOutput:
    """One question's explanation.

    question: the rubric's question id. name: what its arrays and figures are called
    (arrays/<name>.npz, figures/<name>.png): the rubric's method, or for the free choice the
    method the student chose. notes: what the reader should know about the faces shown.
    """

    question: str
    name: str
    result: ExplanationResult
    notes: tuple[str, ...] = ()


def stage_name(question: str, method: str) -> str:
    """The grading stage that runs a question (its timing and its errors go under this name)."""
    return f"{question}_{method}"
