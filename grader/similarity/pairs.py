"""Which pairs of submissions look copied, and why: a submission's evidence
(`SubmissionEvidence`), the thresholds (`SimilarityThresholds`), and `find_similar_pairs`, which
compares every pair on the three signals and says in words why a pair is flagged (`SimilarPair`).

This module imports no torch (the dashboard imports `SimilarPair`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.fingerprint import WeightsFingerprint
from grader.similarity.predictions import AgreementStats, PredictionScreen, ScreenedPair
from grader.similarity.source import normalized_source, source_similarity
from grader.similarity.weights import weights_similarity, weights_similarity_at_least

SIGNALS = ("weights", "source", "predictions")


@dataclass(frozen=True, eq=False)
class SubmissionEvidence:
    """What the similarity report knows of one submission; a field it could not read is None.

    weights: the fingerprint of the loaded model's weights (grader.fingerprint), as the sandbox
        computed it.
    source: the normalized model source (`normalized_source`); source_name the file it came from.
    predictions, labels: (N,) the model's predicted and the true classes on the evaluation set
        (arrays/confusion.npz in the student's output folder).
    notes: why a field is missing, in words (for the grader's log; never raised).
    """

    student_id: str
    folder: Path
    weights: WeightsFingerprint | None = None
    source: str | None = None
    predictions: np.ndarray | None = None
    labels: np.ndarray | None = None
    source_name: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SimilarityThresholds:
    """When a pair is flagged; calibrated on the example submissions (tests/test_similarity.py).

    weights: `weights_similarity` at or above this. The examples (all different architectures)
        reach 0.007 at most against each other, and 0.005-0.03 against a fresh initialization of
        their own architecture; a copy with Gaussian noise of 1e-3 (3e-2) of each tensor's spread
        scores 0.99999 (0.9996), a copy fine-tuned for an epoch 0.999. Two small CNNs trained
        from the same seed on different batch orders scored 0.63, from different seeds 0.02: a
        course template that fixes the seed makes honest weights correlate, so do not lower this
        much.
    source: flag sources that are equal after normalization (False: never flag on source). No
        two examples are; their closest pair is 0.70 alike.
    prediction_excess: the agreement's z-score at or above this: a guard against chance on small
        evaluation sets, not the verdict. Honest example pairs reach z 23 on the 3,589 bundled
        faces (z grows with sqrt(n)); a copy 31-58, a copy with 2% of its predictions changed 30-57.
    error_agreement: agreement on the faces at least one of the two got wrong, at or above this.
        Honest example pairs reach 0.61 on the bundled faces (0.64 on a 500-face set), where
        independence expects about 0.06; a copy scores 1, a copy with 2% of its predictions
        changed 0.86-0.96, a copy with weight noise of 3e-2 of each tensor's spread 0.84-0.91.
    min_errors: fewer faces wrong for at least one of the two make error_agreement meaningless.
    """

    weights: float = 0.98
    source: bool = True
    prediction_excess: float = 5.0
    error_agreement: float = 0.8
    min_errors: int = 20


@dataclass(frozen=True)
class SimilarPair:
    """Two submissions flagged by at least one signal (`signals`, in SIGNALS' order).

    weights_similarity: None when either has no weights evidence; weights_identical when the two
    fingerprints are equal. source_identical: None when either has no source; source_similarity
    the ratio (informational). agreement: None without predictions on a shared evaluation set.
    reason: one line in words.
    """

    student_a: str
    student_b: str
    signals: tuple[str, ...]
    weights_similarity: float | None
    weights_identical: bool
    source_identical: bool | None
    source_similarity: float | None
    agreement: AgreementStats | None
    reason: str
    folder_a: Path | None = None
    folder_b: Path | None = None

    @property
    def prediction_excess(self) -> float | None:
        return None if self.agreement is None else self.agreement.excess

    @property
    def error_agreement(self) -> float | None:
        return None if self.agreement is None else self.agreement.error_agreement


def find_similar_pairs(submissions: Sequence[SubmissionEvidence],
                       thresholds: SimilarityThresholds = SimilarityThresholds(), *,
                       templates: Iterable[str] = ()) -> list[SimilarPair]:
    """Every pair of submissions that at least one signal flags, most signals first.

    A pair is flagged for weights when `weights_similarity` >= thresholds.weights; for source
    when both normalized sources are equal (and not equal to the normalized form of one of
    `templates`, the raw source files the course handed out); for predictions when, on the same
    evaluation set (equal labels), the agreement's excess z >= thresholds.prediction_excess and
    its error_agreement (on the faces at least one got wrong, at least thresholds.min_errors of
    them) >= thresholds.error_agreement. For a flagged pair every available signal's value is filled in.
    """
    template_sources = {normalized_source(text) for text in templates}
    screen = PredictionScreen([(s.predictions, s.labels) for s in submissions],
                              min_errors=thresholds.min_errors, error_agreement=thresholds.error_agreement)
    pairs = []
    for i, a in enumerate(submissions):
        for j in range(i + 1, len(submissions)):
            pair = _compare(a, submissions[j], screen.pair(i, j), thresholds, template_sources)
            if pair is not None:
                pairs.append(pair)
    pairs.sort(key=lambda p: (-len(p.signals), -(p.weights_similarity or 0.0)))
    return pairs


def _compare(a: SubmissionEvidence, b: SubmissionEvidence,
             screened: ScreenedPair | None,
             thresholds: SimilarityThresholds, templates: set[str]) -> SimilarPair | None:
    signals = []
    weights = None
    identical = False
    if a.weights is not None and b.weights is not None:
        identical = a.weights.digest == b.weights.digest
        weights = weights_similarity_at_least(a.weights, b.weights, thresholds.weights)
        if weights is not None:
            signals.append("weights")
    source_identical = None if a.source is None or b.source is None else a.source == b.source
    if thresholds.source and source_identical and a.source not in templates:
        signals.append("source")
    agreement = None
    if screened is not None and screened.candidate:
        agreement = screened.agreement()
        if (agreement.excess >= thresholds.prediction_excess and agreement.either_wrong >= thresholds.min_errors
                and agreement.error_agreement >= thresholds.error_agreement):
            signals.append("predictions")
    if not signals:
        return None
    if weights is None and a.weights is not None and b.weights is not None:
        weights = weights_similarity(a.weights, b.weights)
    if agreement is None and screened is not None:
        agreement = screened.agreement()
    ratio = None if a.source is None or b.source is None else source_similarity(a.source, b.source)
    return SimilarPair(
        student_a=a.student_id, student_b=b.student_id, signals=tuple(signals),
        weights_similarity=weights, weights_identical=identical,
        source_identical=source_identical, source_similarity=ratio, agreement=agreement,
        reason=_reason(signals, weights, identical, a, b, agreement, ratio), folder_a=a.folder, folder_b=b.folder,
    )


def _reason(signals: list[str], weights: float | None, identical: bool, a: SubmissionEvidence,
            b: SubmissionEvidence, agreement: AgreementStats | None, ratio: float | None) -> str:
    parts = []
    if "weights" in signals:
        parts.append("identical weights" if identical
                     else f"weights correlate {_correlation(weights)} after renaming (matched by shape, names ignored)")
    if "source" in signals:
        name = a.source_name if a.source_name == b.source_name and a.source_name else "model source"
        parts.append(f"same {name} after normalization (comments, docstrings and names ignored)")
    if "predictions" in signals:
        assert agreement is not None
        parts.append(f"predictions agree on {agreement.error_agreement:.0%} of the {agreement.either_wrong} faces "
                     f"either got wrong, where {agreement.expected_error_agreement:.0%} is expected "
                     f"(on all faces {agreement.observed:.1%} vs {agreement.expected:.1%}, z {agreement.excess:.0f})")
    if "weights" not in signals and weights is not None and weights >= 0.5:
        parts.append(f"weights correlate {_correlation(weights)}")
    if "source" not in signals and ratio is not None and ratio >= 0.9:
        parts.append(f"sources {ratio:.0%} alike after normalization")
    return "; ".join(parts)


def _correlation(value: float) -> str:
    """0.981, or 0.999997 for a near copy: cut, never rounded up to 1."""
    if value >= 1.0:
        return "1"
    digits = 3 if value < 0.999 else 6
    return f"{math.floor(value * 10**digits) / 10**digits:.{digits}f}"

