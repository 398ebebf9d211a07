"""What a claim is checked against: the student's own measurements, as plain arrays (types only).

The scoring layer builds a ClaimEvidence from what grading measured (grader.scoring.answer_claims);
the checks (grader.claims.verify) read nothing else, so they can be tested on constructed cases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from grader.claims.layout import PartRegions
from grader.claims.patterns import PatternMeasures

from grader.claims.verdicts import CONTRADICTED, NOT_CHECKABLE, SUPPORTED, VERDICTS  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class QuestionMaps:
    """The maps a question's figure shows, one per explained face: maps (N, 48, 48), where a larger
    |value| is more of the model's attention; labels (N,) the class each map explains; method: the
    registry name of what drew them (saliency, lime, gradcam, class_model, ...); regions: the face
    parts of those faces (the part masks where the faces have them, else the canonical layout)."""

    method: str
    maps: np.ndarray
    labels: np.ndarray
    regions: PartRegions


@dataclass(frozen=True)
class ClaimEvidence:
    """Everything the checks may read; each field is None (or empty) where grading did not measure it.

    maps: each question's maps, by question id. recall: (7,) per-class
    recall, NaN for a class without evaluation faces. confusion: (7, 7) row-normalized (rows = true
    class). patterns: the Q2 filter patterns' measures. The free-choice question's maps carry the
    method the student chose (submission.yaml's visualize.freeform)."""

    maps: Mapping[str, QuestionMaps] = field(default_factory=dict)
    recall: np.ndarray | None = None
    confusion: np.ndarray | None = None
    patterns: PatternMeasures | None = None


@dataclass(frozen=True)
class Check:
    """One claim's verdict and the numbers behind it.

    verdict: SUPPORTED, CONTRADICTED or NOT_CHECKABLE. measure: what was measured (the key the
    report's words use to say it: "part_share", "recall", "confusion", "filter_patterns",
    "method", or "none" with `reason` saying why nothing could be measured). source: the map or
    table measured ("saliency", "lime", "recall", ...). values: the numbers, by name (documented
    with each check in grader.claims.verify). reason: for NOT_CHECKABLE, why (a code of
    grader.claims.verify); for the method check, the method the figure was drawn with."""

    verdict: str
    measure: str
    source: str = ""
    values: Mapping[str, float] = field(default_factory=dict)
    reason: str = ""
