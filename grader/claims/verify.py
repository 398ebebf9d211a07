"""Check each claim of an answer against what the student's own model measurably does.

One small check per claim kind; each returns a Check (grader.claims.evidence) whose `values` hold
the numbers a reader needs. The thresholds are named and documented here, as the rubric's bands
are in rubric.yaml; a claim between its two thresholds is NOT_CHECKABLE ("the measurement does not
settle it"), never forced either way.

- attention (where the model looks): per named part, the map's mass share on the part over the
  part's area share, averaged over the explained faces (the rubric's saliency_localization, per
  part): 1 is what a uniform map gives. Parts come from the faces' part masks where they have
  them, else from the canonical layout of an aligned face (grader.claims.layout); `<part>_on_masks`
  says which.
- best_class / worst_class: the class's recall against the best (worst) recall.
- confused_pair: the confusion matrix's off-diagonal rate between the two classes (row-normalized,
  true -> predicted), in either direction; the direction is shown, not judged.
- filter_pattern: the Q2 patterns' orientation and blob measures (grader.claims.patterns).
- freeform_subject: the free-choice figure's method against submission.yaml's, then the named
  part's share on the named class's map.
"""

from __future__ import annotations

import numpy as np

from grader.claims.evidence import CONTRADICTED, NOT_CHECKABLE, SUPPORTED, Check, ClaimEvidence, QuestionMaps
from grader.claims.extract import (ATTENTION, BEST_CLASS, CONFUSED_PAIR, FILTER_PATTERN, FREEFORM_CHOICES,
                                   FREEFORM_SUBJECT, WORST_CLASS, Claim)
from grader.claims.patterns import verify_pattern_claim

# Why a claim is NOT_CHECKABLE (Check.reason; the report says each in words, grader.report.claim_text).
NO_CHECK, NO_MAP, NO_CLASS_MAP, NO_REGION, NO_MASS = "no_check", "no_map", "no_class_map", "no_region", "no_mass"
NOT_EVALUATED, CLASS_ABSENT, NO_PATTERNS, COMPARISON = "not_evaluated", "class_absent", "no_patterns", "comparison"
BETWEEN = "between"  # measured, but between the two thresholds

ATTENTION_SUPPORTED = 1.5
"""A named part holds at least 1.5 times the map mass its area would get by chance: the lower band of
the rubric's saliency_localization (>= 1.5: partial credit; >= 2: full). On a region that covers
much of the image (the face, about half of it) 1.5 may be out of reach: there the threshold is
halfway between chance (1) and the region's ceiling (1 / its area share)."""
ATTENTION_CONTRADICTED = 1.0
"""A named part gets no more mass than a uniform map would give it: the map does not single it out.
A part the answer excludes ("not the hair") is supported at or below this, contradicted at or
above ATTENTION_SUPPORTED."""
RECALL_TIE = 0.02
"""Recalls within two points of the best (worst) count as tied for it: on a class of a few hundred
evaluation faces a difference of 2 points is a handful of faces."""
CONFUSION_SUPPORTED = 0.10
"""Two classes are 'confused' when at least 10% of one class's faces are predicted as the other
(FER2013 baselines confuse Fear and Sad at 10-20%), or when the pair is among the three most
confused pairs of the matrix and above CONFUSION_CONTRADICTED."""
CONFUSION_CONTRADICTED = 0.03
"""Below 3% in both directions the pair is not confused in any sense a reader would mean."""
CONFUSION_TOP = 3
"""How many of the most confused (off-diagonal) cells count as 'confused' whatever their rate."""


def verify(claim: Claim, evidence: ClaimEvidence) -> Check:
    """The verdict on one claim, with its numbers."""
    check = _CHECKS.get(claim.kind)
    if check is None:
        return Check(NOT_CHECKABLE, "none", reason=NO_CHECK)
    return check(claim, evidence)


# -- attention ------------------------------------------------------------------------------------


def part_ratios(maps: np.ndarray, region: np.ndarray) -> tuple[float, float, float]:
    """(mass share, area share, ratio) of `region` (N, 48, 48) bool under |maps| (N, 48, 48), each
    averaged over the faces whose map has mass and whose region is not empty."""
    mass = np.abs(np.nan_to_num(maps.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0))
    total = mass.sum(axis=(1, 2))
    area = region.mean(axis=(1, 2))
    usable = (total > 0) & (area > 0)
    if not usable.any():
        return float("nan"), float("nan"), float("nan")
    share = (mass * region).sum(axis=(1, 2))[usable] / total[usable]
    return float(share.mean()), float(area[usable].mean()), float(np.mean(share / area[usable]))


def supported_threshold(area: float) -> float:
    """ATTENTION_SUPPORTED, or halfway to the ceiling on a region too large to reach it."""
    return min(ATTENTION_SUPPORTED, (1.0 + 1.0 / area) / 2.0) if area > 0 else ATTENTION_SUPPORTED


def _maps_for(claim: Claim, evidence: ClaimEvidence) -> QuestionMaps | Check:
    maps = evidence.maps.get(claim.question)
    if maps is None:
        return Check(NOT_CHECKABLE, "none", reason=NO_MAP)
    return maps


def _attention(claim: Claim, evidence: ClaimEvidence, labels: tuple[int, ...] = ()) -> Check:
    maps = _maps_for(claim, evidence)
    if isinstance(maps, Check):
        return maps
    faces = np.isin(maps.labels, labels) if labels else np.ones(len(maps.labels), bool)
    if not faces.any():
        return Check(NOT_CHECKABLE, "none", maps.method, reason=NO_CLASS_MAP)
    values: dict[str, float] = {}
    verdicts = []
    for part, excluded in [(p, False) for p in claim.subject] + [(p, True) for p in claim.negated]:
        region = maps.regions.regions.get(part)
        if region is None:
            return Check(NOT_CHECKABLE, "none", maps.method, reason=NO_REGION)
        share, area, ratio = part_ratios(maps.maps[faces], region[faces])
        if np.isnan(ratio):
            return Check(NOT_CHECKABLE, "none", maps.method, reason=NO_MASS)
        values |= {f"{part}_share": share, f"{part}_area": area, f"{part}_ratio": ratio,
                   f"{part}_on_masks": float(part in maps.regions.from_masks)}
        verdicts.append(_part_verdict(ratio, supported_threshold(area), excluded))
    values |= {"supported_at": ATTENTION_SUPPORTED, "contradicted_at": ATTENTION_CONTRADICTED}
    verdict = _all_of(verdicts)
    return Check(verdict, "part_share", maps.method, values, reason=BETWEEN if verdict == NOT_CHECKABLE else "")


def _part_verdict(ratio: float, threshold: float, excluded: bool) -> str:
    if excluded:
        return SUPPORTED if ratio <= ATTENTION_CONTRADICTED else CONTRADICTED if ratio >= threshold else NOT_CHECKABLE
    return SUPPORTED if ratio >= threshold else CONTRADICTED if ratio < ATTENTION_CONTRADICTED else NOT_CHECKABLE


def _all_of(verdicts: list[str]) -> str:
    """A claim of several parts: contradicted when any part is, supported when every part is."""
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    return SUPPORTED if verdicts and all(v == SUPPORTED for v in verdicts) else NOT_CHECKABLE


def attention(claim: Claim, evidence: ClaimEvidence) -> Check:
    """Where the model looks: on the maps of the classes the sentence names, else on every face the
    question explains."""
    return _attention(claim, evidence, tuple(int(label) for label in claim.classes))


# -- recall and confusion -------------------------------------------------------------------------


def _ranked(claim: Claim, evidence: ClaimEvidence, best: bool) -> Check:
    recall = evidence.recall
    if recall is None:
        return Check(NOT_CHECKABLE, "none", "recall", reason=NOT_EVALUATED)
    label = int(claim.subject[0])
    known = np.flatnonzero(np.isfinite(recall))
    if label not in known:
        return Check(NOT_CHECKABLE, "none", "recall", reason=CLASS_ABSENT)
    extreme = int(known[np.argmax(recall[known])] if best else known[np.argmin(recall[known])])
    gap = (recall[extreme] - recall[label]) if best else (recall[label] - recall[extreme])
    order = known[np.argsort(-recall[known] if best else recall[known], kind="stable")]
    values = {"class": float(label), "recall": float(recall[label]), "extreme_class": float(extreme),
              "extreme_recall": float(recall[extreme]), "rank": float(int(np.flatnonzero(order == label)[0]) + 1),
              "tie": RECALL_TIE}
    return Check(SUPPORTED if gap <= RECALL_TIE else CONTRADICTED, "recall", "recall", values)


def best_class(claim: Claim, evidence: ClaimEvidence) -> Check:
    return _ranked(claim, evidence, best=True)


def worst_class(claim: Claim, evidence: ClaimEvidence) -> Check:
    return _ranked(claim, evidence, best=False)


def confused_pair(claim: Claim, evidence: ClaimEvidence) -> Check:
    """The larger of the two directions decides; both are shown."""
    confusion = evidence.confusion
    if confusion is None:
        return Check(NOT_CHECKABLE, "none", "confusion", reason=NOT_EVALUATED)
    first, second = (int(label) for label in claim.subject[:2])
    rates = np.nan_to_num(np.asarray(confusion, dtype=np.float64), nan=0.0)
    off = rates.copy()
    np.fill_diagonal(off, -1.0)
    rate, reverse = float(rates[first, second]), float(rates[second, first])
    larger = max(rate, reverse)
    rank = int((off > larger).sum()) + 1
    values = {"first": float(first), "second": float(second), "rate": rate, "reverse_rate": reverse,
              "rank": float(rank), "supported_at": CONFUSION_SUPPORTED, "contradicted_at": CONFUSION_CONTRADICTED}
    if larger >= CONFUSION_SUPPORTED or (rank <= CONFUSION_TOP and larger > CONFUSION_CONTRADICTED):
        verdict = SUPPORTED
    elif larger < CONFUSION_CONTRADICTED:
        verdict = CONTRADICTED
    else:
        verdict = NOT_CHECKABLE
    return Check(verdict, "confusion", "confusion", values, reason=BETWEEN if verdict == NOT_CHECKABLE else "")


# -- filters and the free choice ------------------------------------------------------------------


def filter_pattern(claim: Claim, evidence: ClaimEvidence) -> Check:
    if evidence.patterns is None:
        return Check(NOT_CHECKABLE, "none", "filters", reason=NO_PATTERNS)
    found = verify_pattern_claim(claim.subject, claim.negated, evidence.patterns)
    return Check(found.verdict, "filter_patterns", "filters", dict(found.values))


def freeform_subject(claim: Claim, evidence: ClaimEvidence) -> Check:
    """The method first: an answer about another free-choice method than the figure's is
    contradicted (a method named beside the figure's own in the same sentence is a comparison:
    see verify_answer). Then, when the sentence names a part, that part on the named class's map (on
    every map when no class is named)."""
    method, label, part = (claim.subject + ("", "", ""))[:3]
    drawn = evidence.maps.get(claim.question)
    if drawn is None:
        return Check(NOT_CHECKABLE, "none", "method", reason=NO_MAP)
    if method != drawn.method:
        if method not in FREEFORM_CHOICES:
            return Check(NOT_CHECKABLE, "none", "method", reason=COMPARISON)
        return Check(CONTRADICTED, "method", "method", {"matches": 0.0}, reason=drawn.method)
    if not part:
        return Check(SUPPORTED, "method", "method", {"matches": 1.0}, reason=drawn.method)
    part_claim = Claim(claim.question, claim.quote, claim.start, claim.end, ATTENTION, (part,), (), claim.language)
    return _attention(part_claim, evidence, (int(label),) if label else ())


def verify_answer(claims: list[Claim], evidence: ClaimEvidence) -> list[Check]:
    """The checks of one answer's claims, in order. A free-choice method named in the same sentence
    as the figure's own method is a comparison, not a claim about the figure: not checkable."""
    checks = [verify(claim, evidence) for claim in claims]
    own = {(c.start, c.end) for c in claims if c.kind == FREEFORM_SUBJECT and _is_drawn(c, evidence)}
    return [_COMPARISON if c.kind == FREEFORM_SUBJECT and check.verdict == CONTRADICTED and (c.start, c.end) in own
            else check for c, check in zip(claims, checks)]


def _is_drawn(claim: Claim, evidence: ClaimEvidence) -> bool:
    drawn = evidence.maps.get(claim.question)
    return drawn is not None and claim.subject[0] == drawn.method


_COMPARISON = Check(NOT_CHECKABLE, "none", "method", reason=COMPARISON)


_CHECKS = {ATTENTION: attention, BEST_CLASS: best_class, WORST_CLASS: worst_class, CONFUSED_PAIR: confused_pair,
           FILTER_PATTERN: filter_pattern, FREEFORM_SUBJECT: freeform_subject}
