"""result.json: what grading one submission produced (schema in docs/ARCHITECTURE.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from grader.atomic import atomic_write_text
from grader.escape import clean_text

MESSAGE_LIMIT = 2000
"""Characters of one error or warning message kept: a student's exception text can be megabytes."""


class RegradeNote(BaseModel):
    """A student's regrade request on one criterion (from the review workspace) and how the TA
    resolved it: shown under the criterion in the student's PDF."""

    request: str
    status: Literal["open", "resolved"]
    resolution: str = ""
    resolved_by: str = ""

    @field_validator("request", "resolution", "resolved_by")
    @classmethod
    def _printable(cls, text: str) -> str:
        return clean_text(text, MESSAGE_LIMIT)


class CriterionResult(BaseModel):
    id: str
    description: str = ""
    score: float | None = Field(description="points earned; None while a manual criterion awaits the TA")
    max_score: float
    value: float | None = Field(None, description="the measured value the points were derived from")
    interval: tuple[float, float] | None = Field(
        None, description="the 95% percentile bootstrap interval of value over the explained images (and LIME's "
                          "seeds); None for a value that is not an average over images (grader/scoring/uncertainty.py)")
    borderline: bool = Field(False, description="the interval reaches into another band than the one awarded: the "
                                                "points are the band the whole interval clears")
    threshold: str = Field("", description="how value maps to points, in words")
    manual: bool = False
    message: str = ""
    comment: str = Field("", description="the TA's comment (scores.csv)")
    overridden: bool = Field(False, description="the TA replaced this automatic criterion's points")
    auto_score: float | None = Field(None, description="the automatic points a TA override replaced")
    regrades: list[RegradeNote] = Field(default_factory=list, description="regrade requests and their resolution")


class QuestionResult(BaseModel):
    id: str
    title: str
    score: float
    max_score: float
    criteria: list[CriterionResult]

    @property
    def pending_manual(self) -> bool:
        return any(c.manual and c.score is None for c in self.criteria)


class StageError(BaseModel):
    """A problem in one stage of grading a submission (an error fails it or a task; a warning only informs)."""

    stage: str
    message: str

    @field_validator("stage", "message")
    @classmethod
    def _printable(cls, text: str) -> str:
        # Messages carry the student's exception text: valid Unicode and bounded before any sink sees them.
        return clean_text(text, MESSAGE_LIMIT)


class GradientCheckSummary(BaseModel):
    """The checks of the gradients a model returned while one context (a question, or the probes)
    ran, against the model's own outputs (grader.submission.gradient_audit)."""

    context: str
    requests: int = Field(description="gradient requests checked")
    rows: int = Field(description="faces checked over those requests")
    worst_error: float = Field(description="worst relative error of a directional derivative")
    worst_value_gap: float = Field(description="worst gap between a gradient request's value and the forward's, "
                                               "over the outputs' scale")
    tolerance: float
    value_tolerance: float
    passed: bool

    def failure_message(self) -> str:
        return (f"the model's gradients do not match its own outputs: along checked directions its outputs change "
                f"{self.worst_error:.0%} differently from what the returned gradient claims (tolerance "
                f"{self.tolerance:.0%}), or a gradient request's value differs from the forward pass's by "
                f"{self.worst_value_gap:.2g} of the outputs' scale (tolerance {self.value_tolerance:g}); an "
                "explanation built on these gradients would not show what the model computes")


class FigureRecord(BaseModel):
    """A figure the PDF shows under a question: its file relative to the student's output folder, and
    its caption (what the reader should know about the faces shown)."""

    question: str
    path: str
    caption: str = ""


class ClaimResult(BaseModel):
    """A checkable claim of a written answer and what the student's own measurements say of it
    (grader.claims; issue 16). quote: the sentence, exactly as in report.md (start, end: its
    characters there). kind and subject: what it claims (grader.claims.extract). verdict: supported,
    contradicted or not checkable. measure, source and values: what was measured, on which map or
    table, and the numbers (grader.claims.verify documents each); reason: why nothing could be
    measured, or the method the figure was drawn with; evidence: all of it in words."""

    question: str
    quote: str
    start: int = 0
    end: int = 0
    kind: str
    subject: list[str] = []
    negated: list[str] = []
    classes: list[str] = Field(default_factory=list, description="attention: the classes whose maps it is "
                                                                   "said of (none: every map)")
    language: str = "en"
    verdict: Literal["supported", "contradicted", "not checkable"]
    measure: str = "none"
    source: str = ""
    values: dict[str, float] = {}
    reason: str = ""
    evidence: str = Field("", description="the numbers in words, in the report's language "
                                          "(grader.report.claim_text)")

    @field_validator("quote", "reason")
    @classmethod
    def _printable(cls, text: str) -> str:
        return clean_text(text, MESSAGE_LIMIT)


class Result(BaseModel):
    """One student's graded submission; written as result.json in the student's output folder."""

    student_id: str
    name: str = ""
    folder: str = Field("", description="the submission folder's name")
    status: Literal["graded", "failed", "conflict"] = Field(
        description="conflict: another folder claims the same student_id (or the roster gives this folder to "
                    "someone else); held ungraded until a roster settles it")
    score: float = 0.0
    max_score: float = 0.0
    questions: list[QuestionResult] = []
    errors: list[StageError] = []
    gradient_checks: list[GradientCheckSummary] = Field(
        default_factory=list, description="the gradients the model returned, checked against its own outputs")
    warnings: list[StageError] = Field(default_factory=list, description="what the student should know but "
                                                                        "that costs no points by itself")
    accuracy: float | None = None
    per_class_recall: list[float] | None = None
    confusion_matrix: list[list[float]] | None = Field(None, description="rows = true class, row-normalized")
    profile: dict = {}
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
    tool_version: str
    submission_sha256: str = ""
    data_source: str = ""
    data_path: str = Field("", description="the evaluation data's file (or folder), absolute")
    data_sha256: str = Field("", description="the evaluation data file's SHA-256 (none for an image folder)")
    data_synthetic: bool = Field(False, description="graded on the bundled synthetic faces, not on real ones")
    input_spec: dict[str, float | int | str | bool] = Field(
        default_factory=dict, description="submission.yaml's input spec as applied (size, channels, scale, mean, "
                                          "std, normalize, equalize, tta)")
    isolation: str = Field("", description="how the student's code was run: bwrap, subprocess or inprocess")
    output: str = Field("", description="what the student's code printed (stdout and stderr, bounded)")
    answers: dict[str, str] = Field(default_factory=dict, description="report.md's section per question id")
    claims: list[ClaimResult] = Field(default_factory=list, description="what each answer claims and whether the "
                                                                       "student's own measurements support it")
    figures: list[FigureRecord] = Field(default_factory=list, description="the figures the PDF shows, per question, "
                                                                         "so that it can be rendered again without "
                                                                         "grading again")
    cache_key: str = Field("", description="hash of everything the result depends on; a re-run with the same key "
                                           "reuses it (see grader.pipeline.class_run)")

    @field_validator("name", "folder", "output")
    @classmethod
    def _printable_text(cls, text: str) -> str:
        return clean_text(text)

    @field_validator("answers")
    @classmethod
    def _printable_answers(cls, answers: dict[str, str]) -> dict[str, str]:
        return {clean_text(question): clean_text(text) for question, text in answers.items()}

    @property
    def pending_manual(self) -> bool:
        return any(q.pending_manual for q in self.questions)

    def question(self, question_id: str) -> QuestionResult | None:
        return next((q for q in self.questions if q.id == question_id), None)

    def write(self, path: str | Path) -> None:
        atomic_write_text(path, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> Result:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
