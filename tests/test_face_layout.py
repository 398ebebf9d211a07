"""The canonical layout of an aligned 48x48 face (grader.claims.layout): where each part lies, how
part masks and the layout combine, and how well the layout matches the synthetic faces' masks."""

from __future__ import annotations

import numpy as np
import pytest

from grader.claims.layout import (
    CANONICAL_PARTS, INNER_PARTS, LAYOUT_ONLY_PARTS, LAYOUT_SOURCE, PartRegions, canonical_part_masks,
    layout_agreement, part_regions,
)
from grader.data.faceset import PART_NAMES
from grader.data.synth import generate
from grader.scoring.measures import face_ellipse

LAYOUT = canonical_part_masks()
ROWS, COLS = np.mgrid[0:48, 0:48] + 0.5

# What bench/layout_agreement.py measured on 2000 faces (seed 2013) was, IoU / recall: face
# 0.727/0.744, brows 0.323/0.520, eyes 0.391/0.693, nose 0.510/0.752, mouth 0.343/0.581. The
# floors sit a little below, for the 300 faces of the test (which measure within 0.02 of those).
FLOORS = {"face": (0.70, 0.72), "brows": (0.29, 0.48), "eyes": (0.36, 0.66),
          "nose": (0.47, 0.71), "mouth": (0.31, 0.54)}


def centre_row(part: str) -> float:
    return float(ROWS[LAYOUT[part]].mean())


@pytest.fixture(scope="module")
def synthetic_masks() -> np.ndarray:
    return generate(300, seed=2013, split="eval").masks


def test_every_part_is_a_48x48_bool_mask_and_none_is_empty():
    assert tuple(LAYOUT) == CANONICAL_PARTS
    for name, region in LAYOUT.items():
        assert region.shape == (48, 48) and region.dtype == bool, name
        assert region.any(), name


def test_the_face_is_the_face_ellipse_of_the_rubric_measures():
    assert np.array_equal(LAYOUT["face"], face_ellipse())


def test_parts_lie_top_to_bottom_brows_eyes_nose_mouth_chin_as_on_an_aligned_face():
    rows = [centre_row(part) for part in ("hair", "forehead", "brows", "eyes", "nose", "mouth", "chin")]
    assert rows == sorted(rows)
    # FER2013's alignment (measures.face_ellipse): eyes around row 18, mouth around row 36; the
    # synthetic faces put them at 21 and 38.5. The layout sits between.
    assert 18.0 <= centre_row("eyes") <= 21.5
    assert 36.0 <= centre_row("mouth") <= 38.5
    assert centre_row("eyes") - 7 <= centre_row("brows") <= centre_row("eyes") - 3


def test_every_part_is_mirror_symmetric_about_the_midline():
    for name, region in LAYOUT.items():
        assert np.array_equal(region, region[:, ::-1]), name


def test_eyes_and_brows_are_two_separate_blobs_and_nose_and_mouth_sit_on_the_midline():
    for part in ("eyes", "brows"):
        assert not LAYOUT[part][:, 23:25].any(), f"{part} cross the midline"
        assert LAYOUT[part][:, :24].any() and LAYOUT[part][:, 24:].any()
    for part in ("nose", "mouth"):
        assert LAYOUT[part][:, 23:25].any()
        assert abs(float(COLS[LAYOUT[part]].mean()) - 24.0) < 1e-9


def test_inner_parts_forehead_cheeks_and_chin_lie_inside_the_face_ellipse():
    for part in (*INNER_PARTS, "forehead", "cheeks", "chin"):
        assert not (LAYOUT[part] & ~LAYOUT["face"]).any(), part


def test_hair_is_outside_the_face_and_above_the_eyes_and_background_is_everything_else():
    assert not (LAYOUT["hair"] & LAYOUT["face"]).any()
    assert ROWS[LAYOUT["hair"]].max() < centre_row("eyes")
    assert ROWS[LAYOUT["hair"]].min() < ROWS[LAYOUT["face"]].min()
    assert np.array_equal(LAYOUT["background"], ~(LAYOUT["face"] | LAYOUT["hair"]))


def test_brows_eyes_nose_mouth_forehead_cheeks_and_chin_are_pairwise_disjoint():
    parts = (*INNER_PARTS, "forehead", "cheeks", "chin")
    for i, a in enumerate(parts):
        for b in parts[i + 1:]:
            assert not (LAYOUT[a] & LAYOUT[b]).any(), (a, b)


def test_other_sides_scale_the_same_geometry():
    small = canonical_part_masks(24)
    assert all(region.shape == (24, 24) for region in small.values())
    big = canonical_part_masks(96)
    for part in ("eyes", "mouth", "face"):
        assert abs(big[part].sum() / 4 - LAYOUT[part].sum()) <= 0.1 * LAYOUT[part].sum(), part


def test_without_masks_every_part_is_the_layout_repeated_per_face():
    regions = part_regions(None, 3)
    assert isinstance(regions, PartRegions)
    assert regions.from_masks == frozenset()
    assert tuple(regions.regions) == CANONICAL_PARTS
    for name, region in regions.regions.items():
        assert region.shape == (3, 48, 48) and region.dtype == bool, name
        assert all(np.array_equal(face, LAYOUT[name]) for face in region), name
    assert regions.source("eyes") == LAYOUT_SOURCE[False] == "on the canonical layout"


def test_with_masks_the_mask_parts_come_from_the_masks_and_the_rest_from_the_layout(synthetic_masks):
    masks = synthetic_masks[:5]
    regions = part_regions(masks, 5)
    assert regions.from_masks == frozenset(PART_NAMES)
    assert regions.source("mouth") == "on the part masks"
    assert regions.source("hair") == "on the canonical layout"
    for name, region in regions.regions.items():
        assert region.shape == (5, 48, 48) and region.dtype == bool, name
    for name in ("background", *INNER_PARTS):
        assert np.array_equal(regions.regions[name], masks == PART_NAMES.index(name)), name
    # face is the whole face, its parts included: everything the mask does not call background
    assert np.array_equal(regions.regions["face"], masks != PART_NAMES.index("background"))
    plain_face = masks == PART_NAMES.index("face")
    for name in ("forehead", "cheeks", "chin"):
        assert np.array_equal(regions.regions[name], LAYOUT[name] & plain_face), name
    assert np.array_equal(regions.regions["hair"], LAYOUT["hair"] & (masks == PART_NAMES.index("background")))
    assert set(LAYOUT_ONLY_PARTS).isdisjoint(regions.from_masks)


def test_with_masks_the_mask_parts_follow_each_face_not_the_layout():
    masks = np.zeros((2, 48, 48), np.uint8)
    masks[0, 5:10, 5:10] = PART_NAMES.index("eyes")  # an eye where the layout has none
    regions = part_regions(masks, 2).regions
    assert regions["eyes"][0].sum() == 25 and not regions["eyes"][1].any()
    assert not regions["forehead"].any()  # no plain face in these masks: no forehead either


def test_masks_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"\(4, 48, 48\)"):
        part_regions(np.zeros((3, 48, 48), np.uint8), 4)


def test_the_layout_agrees_with_synthetic_part_masks_at_least_as_documented(synthetic_masks):
    agreement = layout_agreement(synthetic_masks)
    assert set(agreement) == {"face", *INNER_PARTS}
    for part, (iou_floor, recall_floor) in FLOORS.items():
        result = agreement[part]
        assert result.faces == len(synthetic_masks)
        assert result.iou >= iou_floor, (part, result)
        assert result.recall >= recall_floor, (part, result)
        assert result.recall >= result.iou  # IoU divides by the union, recall by the mask alone


def test_agreement_is_perfect_on_masks_drawn_from_the_layout_itself():
    masks = np.zeros((2, 48, 48), np.uint8)
    for name in ("face", *INNER_PARTS):
        masks[:, LAYOUT[name]] = PART_NAMES.index(name)
    for part, result in layout_agreement(masks).items():
        assert result.iou == pytest.approx(1.0) and result.recall == pytest.approx(1.0), part


def test_a_part_missing_from_every_mask_reports_no_faces_not_zero():
    masks = np.full((2, 48, 48), PART_NAMES.index("face"), np.uint8)
    result = layout_agreement(masks)["nose"]
    assert result.faces == 0 and np.isnan(result.iou)
