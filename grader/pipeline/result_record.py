"""An assessment scored by the rubric, as the Result that becomes result.json."""

from __future__ import annotations

import numpy as np

from grader import __version__
from grader.classes import Language
from grader.data.faceset import FaceSet
from grader.pipeline.assessment import Assessment
from grader.pipeline.setup import GradingSetup
from grader.pipeline.stages import StageLog
from grader.profile import HardwareProfile, machine_record
from grader.report.claim_text import evidence_words
from grader.result import ClaimResult, FigureRecord, GradientCheckSummary, Result, StageError
from grader.scoring.answer_claims import checked_claims
from grader.scoring.measurements import Measurements
from grader.scoring.measures import face_ellipse, parts_region
from grader.scoring.score import score

GRADIENT_CONTEXTS = {"probes": "the randomization test of Q1"}
"""How a warning names a context of the gradient checks that is not a question (those are named Q<N>)."""


def measurements(assessment: Assessment, faces: FaceSet, checks: list[GradientCheckSummary],
                 answers: dict[str, str] | None = None) -> Measurements:
    """What the metrics read: the assessment, the face region of the explained images (the part
    masks' brows, eyes, nose and mouth; the central face ellipse on faces without masks) and their
    part masks, the gradient checks by context, and the written answers."""
    region = part_masks = None
    if assessment.examples is not None:
        indices = assessment.examples.indices
        part_masks = faces.masks[indices] if faces.masks is not None else None
        region = (parts_region(part_masks) if part_masks is not None
                  else np.broadcast_to(face_ellipse(), (len(indices), *face_ellipse().shape)))
    return Measurements(evaluation=assessment.evaluation, outputs=assessment.outputs, probes=assessment.probes,
                        region=region, checks=assessment.checks,
                        gradient_checks={summary.context: summary for summary in checks},
                        part_masks=part_masks, answers=answers or {})


def gradient_warnings(checks: list[GradientCheckSummary]) -> list[StageError]:
    """A warning per context whose gradients failed their check (its criteria already score 0)."""
    return [StageError(stage="gradient_check", message=f"{_context_name(summary.context)}: "
                                                       f"{summary.failure_message()}; its criteria score 0")
            for summary in checks if not summary.passed]


def _context_name(context: str) -> str:
    return GRADIENT_CONTEXTS.get(context, context.upper() if context.startswith("q") else context)


def scored_result(assessment: Assessment, log: StageLog, checks: list[GradientCheckSummary], setup: GradingSetup,
                  *, student_id: str, name: str, folder: str, sha256: str, output: str,
                  answers: dict[str, str], cache_key: str = "",
                  figures: list[FigureRecord] | None = None, input_spec: dict | None = None) -> Result:
    """The Result of one submission: its questions scored (with the TA's manual scores), and what
    grading recorded."""
    measured = measurements(assessment, setup.evaluation, checks, answers)
    questions = score(setup.rubric, measured, setup.manual.of(student_id), setup.manual.regrades_of(student_id))
    evaluation = assessment.evaluation
    return Result(
        student_id=student_id, name=name, folder=folder, status="failed" if log.failed else "graded",
        score=sum(q.score for q in questions), max_score=setup.rubric.max_score, questions=questions,
        errors=log.errors, warnings=log.warnings + gradient_warnings(checks), gradient_checks=checks,
        accuracy=evaluation.accuracy if evaluation else None,
        per_class_recall=evaluation.per_class_recall.round(6).tolist() if evaluation else None,
        confusion_matrix=evaluation.confusion.round(6).tolist() if evaluation else None,
        profile=profile_record(setup.profile), timings=log.timings, tool_version=__version__,
        submission_sha256=sha256, data_source=setup.evaluation.source, data_path=setup.evaluation.path,
        data_sha256=setup.evaluation.sha256, data_synthetic=setup.evaluation.synthetic, input_spec=input_spec or {},
        isolation=setup.isolation, output=output, answers=answers,
        # a failure of the grader's own is not kept for the next run to reuse: it grades again
        cache_key="" if any(error.stage == "grader" for error in log.errors) else cache_key,
        figures=figures or [], claims=_claims(answers, measured, setup.language) if not log.failed else [],
    )


def _claims(answers: dict[str, str], measured: Measurements, language: Language) -> list[ClaimResult]:
    """The answers' checked claims, each with its evidence in words in the report's language."""
    return [claim.model_copy(update={"evidence": evidence_words(claim, language)})
            for claim in checked_claims(answers, measured)]


def profile_record(profile: HardwareProfile) -> dict:
    """The profile the submission was graded under, and the machine it ran on: fp32 results are
    identical only between CPUs with the same vector extensions."""
    return {**profile.model_dump(), "machine": machine_record()}
