"""The claims of a student's written answers, checked against what grading measured of their model
(issue 16): the evidence built from the Measurements, and the ClaimResults that result.json keeps."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from grader.claims.evidence import Check, ClaimEvidence, QuestionMaps
from grader.claims.extract import Claim, extract_claims
from grader.claims.layout import part_regions
from grader.claims.patterns import measure_patterns
from grader.claims.verify import verify_answer
from grader.escape import clean_text
from grader.explain.results import AttributionMaps, ClassImages, FilterPatterns, LimeExplanations
from grader.questions.output import QuestionOutput
from grader.result import ClaimResult
from grader.scoring.measurements import Measurements


def question_maps(output: QuestionOutput, part_masks: np.ndarray | None) -> QuestionMaps | None:
    """What a question's figure shows as one map per face, where |value| is attention: attribution
    maps as they are; LIME's superpixel weights painted on their segments, the positive ones (the
    regions that speak for the class: what "the model looks at" means for LIME); a class model
    image's departure from its own mean brightness (what the ascent drew, on the canonical layout:
    it is no evaluation face). Filter patterns are not maps of a face: None. `part_masks`: the
    explained faces' masks, or None."""
    result = output.result
    if isinstance(result, ClassImages):
        images = result.images.astype(np.float64)
        return QuestionMaps(output.name, images - images.mean(axis=(1, 2), keepdims=True), np.arange(len(images)),
                            part_regions(None, len(images)))
    if isinstance(result, AttributionMaps):
        maps = result.maps
    elif isinstance(result, LimeExplanations):
        maps = np.stack([np.clip(e.heatmap(), 0, None) for e in result.explanations]) if result.explanations \
            else np.zeros((0, 48, 48), np.float32)
    else:
        return None
    masks = part_masks if part_masks is not None and len(part_masks) == len(maps) else None
    return QuestionMaps(output.name, maps, result.labels, part_regions(masks, len(maps)))


def claim_evidence(measured: Measurements) -> ClaimEvidence:
    """The evidence of one submission: every question's maps whose gradients passed their check (a
    map built on gradients that did not match the model's own outputs measures the manipulation),
    the face parts of the explained faces, recall, confusion and the filter patterns' measures."""
    maps: dict[str, QuestionMaps] = {}
    patterns = None
    for question, output in measured.outputs.items():
        check = measured.gradient_checks.get(question)
        if check is not None and not check.passed:
            continue
        if isinstance(output.result, FilterPatterns):
            patterns = measure_patterns(output.result.patterns)
        elif (found := question_maps(output, measured.part_masks)) is not None:
            maps[question] = found
    evaluation = measured.evaluation
    return ClaimEvidence(maps=maps, recall=None if evaluation is None else evaluation.per_class_recall,
                         confusion=None if evaluation is None else evaluation.confusion, patterns=patterns)


def checked_claims(answers: Mapping[str, str], measured: Measurements) -> list[ClaimResult]:
    """Every claim of every answer (question order as in `answers`), with its verdict. The answers are
    cleaned as result.json keeps them, so each claim's start and end index the stored answer."""
    evidence = claim_evidence(measured)
    results: list[ClaimResult] = []
    for question, answer in answers.items():
        claims = extract_claims(question, clean_text(answer))
        results += [claim_result(claim, check) for claim, check in zip(claims, verify_answer(claims, evidence))]
    return results


def claim_result(claim: Claim, check: Check) -> ClaimResult:
    return ClaimResult(question=claim.question, quote=claim.quote, start=claim.start, end=claim.end, kind=claim.kind,
                       subject=list(claim.subject), negated=list(claim.negated), classes=list(claim.classes),
                       language=claim.language,
                       verdict=check.verdict, measure=check.measure, source=check.source,
                       values={name: round(float(v), 6) for name, v in check.values.items() if math.isfinite(v)},
                       reason=check.reason)
