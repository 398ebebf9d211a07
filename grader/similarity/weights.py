"""The weights signal: how alike two models' weights are, from their fingerprints
(grader.fingerprint), whatever the parameter names.

Tensors are compared only within a shape, largest shape first, so that an unrelated pair stops
after its biggest tensor (`weights_similarity_at_least`); the sizes alone bound the score
(`shared_shape_bound`).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment  # scipy comes with scikit-learn and lime

from grader.fingerprint import ShapeGroup, WeightsFingerprint


def weights_similarity(a: WeightsFingerprint, b: WeightsFingerprint) -> float:
    """How alike two models' weights are, in [0, 1], whatever their parameter names, from their
    fingerprints (grader.fingerprint; computed from tensors by grader.submission.fingerprint).

    Tensors are matched by shape: within each shape the pairs that correlate most are matched one
    to one (an optimal assignment, so renamed and reordered modules still meet their copies), and
    each matched pair scores the absolute Pearson correlation of its values (two constant tensors
    score 1 when their values are equal). The score is the size-weighted sum over matched pairs,
    counted once for each side, over the values of both models together (a Dice coefficient):
    unmatched tensors count 0, so models with no shape in common score 0 and a copy with a layer
    added scores its share of the weights. Identical weights give exactly 1; weights plus small
    noise, or a copy fine-tuned a little, stay near 1; independently initialized or trained models
    of the same architecture score near 0 (a few hundredths; small tensors, such as a 7-way bias,
    correlate more by chance but weigh little).

    Caveats: models trained from the same initialization (a template that fixes the seed) keep
    part of it: two small CNNs trained for six epochs from one seed scored 0.63. A copy whose
    channels were permuted consistently (the same function) is not matched.
    """
    score = _weights_score(a, b, floor=None)
    assert score is not None
    return score


def weights_similarity_at_least(a: WeightsFingerprint, b: WeightsFingerprint, floor: float) -> float | None:
    """weights_similarity(a, b), or None as soon as it is certain to stay below `floor`: the
    shape groups are compared largest first, so an unrelated pair stops after its biggest tensor."""
    return _weights_score(a, b, floor)


def _weights_score(a: WeightsFingerprint, b: WeightsFingerprint, floor: float | None) -> float | None:
    """weights_similarity(a, b), or with a `floor`, weights_similarity_at_least(a, b, floor)."""
    total = a.total + b.total
    if total == 0:
        return 0.0
    if a.digest == b.digest:
        return 1.0
    shared = [(group, b.by_shape[group.shape]) for group in a.largest_first if group.shape in b.by_shape]
    still_possible = sum(g.size * min(g.count, h.count) for g, h in shared)
    matched = 0.0
    for group_a, group_b in shared:
        if floor is not None and 2.0 * (matched + still_possible) / total < floor:
            return None
        still_possible -= group_a.size * min(group_a.count, group_b.count)
        matched += group_a.size * _best_matching(_correlations(group_a, group_b))
    score = float(min(1.0, max(0.0, 2.0 * matched / total)))
    return None if floor is not None and score < floor else score


def shared_shape_bound(a: WeightsFingerprint, b: WeightsFingerprint) -> float:
    """The most `weights_similarity(a, b)` can be: the share of values whose shapes the other has."""
    if a.total + b.total == 0:
        return 0.0
    shared = sum(group.size * min(group.count, b.by_shape[group.shape].count)
                 for group in a.groups if group.shape in b.by_shape)
    return 2.0 * shared / (a.total + b.total)


def _correlations(a: ShapeGroup, b: ShapeGroup) -> np.ndarray:
    """|Pearson correlation| of every tensor of `a` with every tensor of `b` (same shape)."""
    scores = np.abs(a.units @ b.units.T).astype(np.float64)
    if a.has_constants and b.has_constants:
        difference = np.abs(a.constants[:, None] - b.constants[None, :])
        with np.errstate(invalid="ignore"):
            equal = difference <= 1e-12 + 1e-6 * np.abs(b.constants[None, :])  # False where either is NaN
        both = ~np.isnan(a.constants)[:, None] & ~np.isnan(b.constants)[None, :]
        scores[both] = equal[both]
    scores[a.digests[:, None] == b.digests[None, :]] = 1.0
    return np.minimum(scores, 1.0, out=scores)


def _best_matching(scores: np.ndarray) -> float:
    """The largest sum of scores over a one-to-one matching of rows to columns."""
    if scores.size == 1:
        return float(scores[0, 0])
    rows, cols = linear_sum_assignment(scores, maximize=True)
    return float(scores[rows, cols].sum())
