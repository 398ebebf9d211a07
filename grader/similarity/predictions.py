"""The predictions signal: how two models' predictions on one labeled evaluation set agree,
against what two models that err independently would show (`prediction_agreement`,
`AgreementStats`), and the screen that finds the candidate pairs among all pairs at once with
matrix products (`PredictionScreen`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AgreementStats:
    """How two models' predictions on one labeled evaluation set agree, against chance.

    observed: share of faces where the two predictions are equal.
    expected: the same if the two models erred independently given the true class, each with its
        own confusion matrix: sum over y of P(y) * sum over k of P_a(k|y) * P_b(k|y). Its k = y
        terms are "both right", sum_y P(y) recall_a(y) recall_b(y), the class-wise form of
        acc_a * acc_b (which ignores that both models find some classes easier, and so expects
        too little agreement for honest pairs); its k != y terms are "both wrong the same way".
    excess: (observed - expected) / sqrt(expected * (1 - expected) / n), a z-score. It grows with
        sqrt(n), and honest models exceed independence too (they find the same faces hard), so
        it is a guard against chance, not the verdict alone.
    relative_excess: (observed - expected) / (1 - expected), Cohen's kappa against the
        independence baseline; it does not grow with n.
    both_wrong, either_wrong: how many faces both models, or at least one, got wrong.
    error_jaccard: both_wrong / either_wrong, how much the two sets of mistakes overlap.
    error_agreement: among the faces at least one model got wrong, the share where the two
        predictions are equal (error_jaccard times joint_error_agreement): the sharpest sign of a
        copy, which makes the same mistakes, and only those (NaN when neither errs).
    joint_error_agreement: among the faces both got wrong, the share with the same wrong class
        (NaN when none is wrong for both). Alone it does not separate copies: on faces that are
        truly ambiguous between two expressions, honest models that both err pick the same wrong
        class (93-96% for the examples on the bundled data, where independence expects 55%).
    expected_error_agreement, expected_joint_error_agreement: the same two under independence
        given the true class.
    """

    n: int
    accuracy_a: float
    accuracy_b: float
    observed: float
    expected: float
    excess: float
    relative_excess: float
    both_wrong: int
    either_wrong: int
    error_jaccard: float
    error_agreement: float
    expected_error_agreement: float
    joint_error_agreement: float
    expected_joint_error_agreement: float


@dataclass(frozen=True, eq=False)
class _PredictionPrint:
    predictions: np.ndarray
    labels: np.ndarray
    correct: np.ndarray
    conditional: np.ndarray  # (K, K) P(prediction k | true class y)


def _prediction_print(predictions: np.ndarray, labels: np.ndarray, classes: int) -> _PredictionPrint:
    counts = np.zeros((classes, classes), dtype=np.float64)
    np.add.at(counts, (labels, predictions), 1.0)
    rows = counts.sum(axis=1, keepdims=True)
    conditional = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    return _PredictionPrint(predictions, labels, predictions == labels, conditional)


def as_class_indices(values: np.ndarray, what: str) -> np.ndarray:
    """`values` as a 1-d int64 array of class indices (>= 0); ValueError naming `what` otherwise."""
    array = np.asarray(values)
    if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise ValueError(f"{what} must be a 1-d integer array, got {array.dtype} {array.shape}")
    if array.size and array.min() < 0:
        raise ValueError(f"{what} must be class indices >= 0")
    return array.astype(np.int64, copy=False)


def prediction_agreement(pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray) -> AgreementStats:
    """Agreement of two models' predictions (N,) on the same evaluation faces with `labels` (N,),
    against what independent errors would give (see `AgreementStats` for each number)."""
    pred_a, pred_b = as_class_indices(pred_a, "pred_a"), as_class_indices(pred_b, "pred_b")
    labels = as_class_indices(labels, "labels")
    if not (pred_a.shape == pred_b.shape == labels.shape) or labels.size == 0:
        raise ValueError(f"predictions and labels must be non-empty and of one length, got "
                         f"{pred_a.shape}, {pred_b.shape}, {labels.shape}")
    classes = int(max(pred_a.max(), pred_b.max(), labels.max())) + 1
    prior = np.bincount(labels, minlength=classes) / labels.size
    return _agreement(_prediction_print(pred_a, labels, classes), _prediction_print(pred_b, labels, classes), prior)


def _agreement(a: _PredictionPrint, b: _PredictionPrint, prior: np.ndarray) -> AgreementStats:
    n = a.labels.size
    same = a.predictions == b.predictions
    observed = float(same.mean())
    joint = np.einsum("y,yk,yk->yk", prior, a.conditional, b.conditional)
    expected = float(joint.sum())
    expected_right = float(np.trace(joint))
    diagonal_a, diagonal_b = np.diag(a.conditional), np.diag(b.conditional)
    expected_both_wrong = float((prior * (1 - diagonal_a) * (1 - diagonal_b)).sum())
    variance = expected * (1 - expected) / n
    if variance > 0:
        excess = (observed - expected) / math.sqrt(variance)
    else:
        excess = 0.0 if observed == expected else math.copysign(math.inf, observed - expected)
    relative = (observed - expected) / (1 - expected) if expected < 1 else 0.0
    wrong_a, wrong_b = ~a.correct, ~b.correct
    both, either = wrong_a & wrong_b, wrong_a | wrong_b
    both_wrong, either_wrong = int(both.sum()), int(either.sum())
    return AgreementStats(
        n=n,
        accuracy_a=float(a.correct.mean()),
        accuracy_b=float(b.correct.mean()),
        observed=observed,
        expected=expected,
        excess=float(excess),
        relative_excess=float(relative),
        both_wrong=both_wrong,
        either_wrong=either_wrong,
        error_jaccard=both_wrong / either_wrong if either_wrong else math.nan,
        error_agreement=float(same[either].mean()) if either_wrong else math.nan,
        expected_error_agreement=(expected - expected_right) / (1 - expected_right) if expected_right < 1 else math.nan,
        joint_error_agreement=float(same[both].mean()) if both_wrong else math.nan,
        expected_joint_error_agreement=((expected - expected_right) / expected_both_wrong
                                        if expected_both_wrong > 0 else math.nan),
    )


class PredictionScreen:
    """The prediction signal for all pairs at once: submissions graded on one evaluation set
    (equal labels) are grouped, and each group's pairwise counts of equal predictions and of
    faces both got right come from two matrix products, so that the full `AgreementStats` is
    computed only for pairs whose error agreement already reaches the threshold (and, for the
    report, for pairs another signal flagged).

    evaluations: each submission's (predictions, labels), None where it has none; a pair is a
    candidate when at least `min_errors` faces are wrong for one of the two and their error
    agreement reaches `error_agreement` (grader.similarity.pairs.SimilarityThresholds)."""

    def __init__(self, evaluations: Sequence[tuple[np.ndarray | None, np.ndarray | None]], *,
                 min_errors: int, error_agreement: float) -> None:
        self.min_errors = min_errors
        self.error_agreement = error_agreement
        self.prints: dict[int, _PredictionPrint] = {}
        self.priors: dict[int, np.ndarray] = {}
        self.place: dict[int, tuple[int, int]] = {}  # submission -> (group, row)
        groups: dict[bytes, list[int]] = {}
        usable: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for index, (given_predictions, given_labels) in enumerate(evaluations):
            try:
                if given_predictions is None or given_labels is None:
                    continue
                predictions = as_class_indices(given_predictions, "predictions")
                labels = as_class_indices(given_labels, "labels")
            except ValueError:
                continue
            if predictions.shape == labels.shape and labels.size:
                usable[index] = predictions, labels
                key = hashlib.blake2b(labels.tobytes(), digest_size=16).digest()
                groups.setdefault(key, []).append(index)
        self.candidate: list[np.ndarray] = []
        for number, members in enumerate(groups.values()):
            labels = usable[members[0]][1]
            predictions = np.stack([usable[m][0] for m in members])
            classes = int(max(predictions.max(), labels.max())) + 1
            prior = np.bincount(labels, minlength=classes) / labels.size
            for row, member in enumerate(members):
                self.place[member] = number, row
                self.prints[member] = _prediction_print(predictions[row], labels, classes)
                self.priors[member] = prior
            self.candidate.append(self._candidates(predictions, labels, classes))

    def _candidates(self, predictions: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
        """(S, S) whether a pair's error agreement reaches the threshold over enough faces."""
        right = (predictions == labels).astype(np.float32)  # counts are exact in float32 up to 2**24
        both_right = (right @ right.T).astype(np.float64)
        same = np.zeros_like(both_right)
        for k in range(classes):
            said = (predictions == k).astype(np.float32)
            same += said @ said.T
        either_wrong = labels.size - both_right
        with np.errstate(divide="ignore", invalid="ignore"):
            agreement = (same - both_right) / either_wrong
        return (either_wrong >= self.min_errors) & (agreement >= self.error_agreement)

    def pair(self, i: int, j: int) -> ScreenedPair | None:
        """None when submissions i and j have no predictions on one evaluation set."""
        if i not in self.place or j not in self.place or self.place[i][0] != self.place[j][0]:
            return None
        group, row = self.place[i]
        return ScreenedPair(self, i, j, candidate=bool(self.candidate[group][row, self.place[j][1]]))


@dataclass(frozen=True)
class ScreenedPair:
    """A pair of submissions with predictions on one evaluation set, as the screen found it."""

    screen: PredictionScreen
    i: int
    j: int
    candidate: bool  # the error agreement reaches the threshold over enough faces

    def agreement(self) -> AgreementStats:
        return _agreement(self.screen.prints[self.i], self.screen.prints[self.j], self.screen.priors[self.i])

