"""Checking an answer's claims against constructed measurements (grader.claims.verify): each kind
of claim supported, contradicted, or left not checkable, with the numbers that decided it."""

from __future__ import annotations

import numpy as np
import pytest

from grader.claims.evidence import CONTRADICTED, NOT_CHECKABLE, SUPPORTED, ClaimEvidence, QuestionMaps
from grader.claims.extract import extract_claims
from grader.claims.layout import part_regions
from grader.claims.patterns import measure_patterns
from grader.claims.verify import verify, verify_answer
from grader.data.faceset import PART_NAMES

FACE, BROWS, EYES, NOSE, MOUTH = (PART_NAMES.index(p) for p in ("face", "brows", "eyes", "nose", "mouth"))


def masks(count: int = 7) -> np.ndarray:
    """Part masks of `count` identical faces: a face square with two eyes, a nose and a mouth."""
    mask = np.zeros((48, 48), np.uint8)
    mask[8:44, 10:38] = FACE
    mask[14:16, 14:34] = BROWS
    mask[18:22, 14:20] = EYES
    mask[18:22, 28:34] = EYES
    mask[24:31, 22:26] = NOSE
    mask[34:38, 17:31] = MOUTH
    return np.repeat(mask[None], count, axis=0)


def maps_on(part: int, count: int = 7, method: str = "saliency") -> QuestionMaps:
    """Maps whose mass is all on one part of masks(), one per class."""
    faces = masks(count)
    return QuestionMaps(method, (faces == part).astype(np.float32), np.arange(count), part_regions(faces, count))


def claim(question: str, sentence: str):
    [found] = extract_claims(question, sentence)
    return found


def test_a_part_that_holds_the_maps_mass_is_supported_with_its_ratio():
    check = verify(claim("q1", "The model focuses on the mouth."), ClaimEvidence(maps={"q1": maps_on(MOUTH)}))
    area = (masks(1) == MOUTH).mean()
    assert check.verdict == SUPPORTED and check.source == "saliency"
    assert check.values["mouth_share"] == pytest.approx(1.0) and check.values["mouth_ratio"] == pytest.approx(1 / area)
    assert check.values["mouth_on_masks"] == 1.0


def test_a_part_the_maps_leave_out_is_contradicted():
    check = verify(claim("q1", "The model focuses on the eyes."), ClaimEvidence(maps={"q1": maps_on(MOUTH)}))
    assert check.verdict == CONTRADICTED and check.values["eyes_ratio"] == 0.0


def test_one_part_left_out_of_several_contradicts_the_claim():
    check = verify(claim("q1", "模型重視鼻子和嘴巴。"), ClaimEvidence(maps={"q1": maps_on(MOUTH)}))
    assert check.verdict == CONTRADICTED
    assert check.values["mouth_ratio"] > 1.5 and check.values["nose_ratio"] == 0.0


def test_an_excluded_part_the_maps_avoid_supports_the_negation():
    check = verify(claim("q1", "The model looks at the mouth, not the hair."), ClaimEvidence(maps={"q1": maps_on(MOUTH)}))
    assert check.verdict == SUPPORTED and check.values["hair_ratio"] == 0.0
    assert check.values["hair_on_masks"] == 0.0  # hair comes from the canonical layout


def test_a_uniform_map_settles_nothing_between_the_thresholds():
    faces = masks()
    uniform = QuestionMaps("saliency", np.ones((7, 48, 48), np.float32), np.arange(7), part_regions(faces, 7))
    check = verify(claim("q1", "The model focuses on the mouth."), ClaimEvidence(maps={"q1": uniform}))
    assert check.verdict == NOT_CHECKABLE and check.reason == "between"
    assert check.values["mouth_ratio"] == pytest.approx(1.0)


def test_faces_without_masks_are_measured_on_the_canonical_layout():
    regions = part_regions(None, 7)
    mouth = regions.regions["mouth"].astype(np.float32)
    maps = QuestionMaps("lime", mouth, np.arange(7), regions)
    check = verify(claim("q3", "LIME highlights the mouth."), ClaimEvidence(maps={"q3": maps}))
    assert check.verdict == SUPPORTED and check.values["mouth_on_masks"] == 0.0


def test_maps_that_are_all_zero_or_not_finite_are_not_checkable():
    faces = masks()
    empty = QuestionMaps("saliency", np.full((7, 48, 48), np.nan, np.float32), np.arange(7), part_regions(faces, 7))
    check = verify(claim("q1", "The model focuses on the mouth."), ClaimEvidence(maps={"q1": empty}))
    assert (check.verdict, check.reason) == (NOT_CHECKABLE, "no_mass")


def test_a_question_that_drew_no_map_is_not_checkable():
    check = verify(claim("q1", "The model focuses on the mouth."), ClaimEvidence())
    assert (check.verdict, check.reason) == (NOT_CHECKABLE, "no_map")


RECALL = np.array([0.50, 0.20, 0.30, 0.91, 0.45, 0.90, 0.60])


@pytest.mark.parametrize("sentence, verdict", [
    ("The model does best on Happy.", SUPPORTED),
    ("Surprise is recognized best.", SUPPORTED),   # 0.90 against 0.91: a tie
    ("The model does best on Sad.", CONTRADICTED),
    ("對於「厭惡」這個類別表現最差。", SUPPORTED),
    ("Fear is the hardest class.", CONTRADICTED),
])
def test_best_and_worst_classes_are_read_from_recall(sentence, verdict):
    found = claim("q3", sentence)
    assert verify(found, ClaimEvidence(recall=RECALL)).verdict == verdict


def test_the_recall_evidence_names_the_best_class_and_the_rank():
    check = verify(claim("q3", "The model does best on Sad."), ClaimEvidence(recall=RECALL))
    assert check.values == {"class": 4.0, "recall": 0.45, "extreme_class": 3.0, "extreme_recall": 0.91, "rank": 5.0,
                            "tie": 0.02}


def test_a_class_without_evaluation_faces_is_not_checkable():
    recall = RECALL.copy()
    recall[1] = np.nan
    check = verify(claim("q3", "Disgust is recognized worst."), ClaimEvidence(recall=recall))
    assert (check.verdict, check.reason) == (NOT_CHECKABLE, "class_absent")


def confusion(rates: dict[tuple[int, int], float]) -> np.ndarray:
    matrix = np.zeros((7, 7))
    for (true, predicted), rate in rates.items():
        matrix[true, predicted] = rate
    return matrix + np.diag(1 - matrix.sum(axis=1))


CONFUSION = confusion({(2, 4): 0.15, (4, 2): 0.05, (0, 1): 0.04, (1, 0): 0.045, (6, 4): 0.02, (5, 2): 0.035,
                       (3, 6): 0.032})


@pytest.mark.parametrize("sentence, verdict", [
    ("Fear and sad are confused.", SUPPORTED),          # 15%
    ("恐懼和難過容易混淆。", SUPPORTED),
    ("Angry and disgust are confused.", SUPPORTED),     # 4.5%, but among the three most confused
    ("Happy and Surprise are confused.", CONTRADICTED),  # 0%
    ("Happy and neutral are often confused.", NOT_CHECKABLE),  # 3.2%, fifth: between the thresholds
])
def test_confused_pairs_are_read_from_the_confusion_matrix(sentence, verdict):
    assert verify(claim("q3", sentence), ClaimEvidence(confusion=CONFUSION)).verdict == verdict


def test_the_confusion_evidence_shows_both_directions_and_the_rank():
    check = verify(claim("q3", "Fear is often mistaken for sad."), ClaimEvidence(confusion=CONFUSION))
    assert (check.values["rate"], check.values["reverse_rate"], check.values["rank"]) == (0.15, 0.05, 1.0)


def gratings(angles: list[float]) -> np.ndarray:
    rows, cols = np.mgrid[0:48, 0:48].astype(np.float64)
    return np.stack([128 + 60 * np.sin(2 * np.pi * (rows * np.cos(np.radians(a)) - cols * np.sin(np.radians(a))) / 6)
                     for a in angles]).astype(np.float32)


def test_filter_claims_are_checked_on_the_patterns_orientations():
    evidence = ClaimEvidence(patterns=measure_patterns(gratings([0, 0, 90, 90, 45, 135, 0, 90])))
    check = verify(claim("q2", "The filters respond to horizontal, vertical and diagonal lines."), evidence)
    assert check.verdict == SUPPORTED and check.source == "filters"
    vertical_only = ClaimEvidence(patterns=measure_patterns(gratings([90] * 8)))
    assert verify(claim("q2", "The filters detect horizontal edges."), vertical_only).verdict == CONTRADICTED


def test_the_free_choice_method_must_be_the_figures():
    evidence = ClaimEvidence(maps={"q4": maps_on(MOUTH, method="gradcam")})
    assert verify(claim("q4", "I chose Grad-CAM."), evidence).verdict == SUPPORTED
    other = verify(claim("q4", "I chose integrated gradients."), evidence)
    assert (other.verdict, other.reason) == (CONTRADICTED, "gradcam")


def test_the_free_choice_part_is_measured_on_the_named_classes_map():
    faces = masks()
    maps = np.zeros((7, 48, 48), np.float32)
    maps[3] = faces[3] == MOUTH   # Happy on the mouth
    maps[4] = faces[4] == EYES    # Sad on the eyes
    evidence = ClaimEvidence(maps={"q4": QuestionMaps("gradcam", maps, np.arange(7), part_regions(faces, 7))})
    assert verify(claim("q4", "Grad-CAM on Happy highlights the mouth."), evidence).verdict == SUPPORTED
    assert verify(claim("q4", "Grad-CAM on Sad highlights the mouth."), evidence).verdict == CONTRADICTED


def test_another_method_named_beside_the_figures_own_is_a_comparison():
    evidence = ClaimEvidence(maps={"q4": maps_on(MOUTH, method="gradcam")})
    claims = extract_claims("q4", "Grad-CAM is smoother than integrated gradients.")
    checks = verify_answer(claims, evidence)
    verdicts = {c.subject[0]: (check.verdict, check.reason) for c, check in zip(claims, checks)}
    assert verdicts == {"gradcam": (SUPPORTED, "gradcam"), "integrated_gradients": (NOT_CHECKABLE, "comparison")}


def test_a_part_said_of_a_named_class_is_measured_on_that_classes_map():
    faces = masks()
    maps = np.zeros((7, 48, 48), np.float32)
    maps[3] = faces[3] == MOUTH
    maps[[0, 1, 2, 4, 5, 6]] = faces[[0, 1, 2, 4, 5, 6]] == EYES
    evidence = ClaimEvidence(maps={"q1": QuestionMaps("saliency", maps, np.arange(7), part_regions(faces, 7))})
    happy = claim("q1", "高興的臉，梯度集中在上揚的嘴角。")
    assert happy.classes == ("3",) and verify(happy, evidence).verdict == SUPPORTED
    assert verify(claim("q1", "For Sad the gradients are on the mouth."), evidence).verdict == CONTRADICTED
