"""Specifications of the explanation-map measures, on constructed maps whose right answer is known
and on a hand-weighted linear model whose decision depends on one corner of the face only."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from grader.data.faceset import PART_NAMES
from grader.data.synth import generate
from grader.scoring.measures import (
    curve_auc,
    face_ellipse,
    is_informative,
    mass_share,
    parts_region,
    pattern_diversity,
    perturbation_curves,
    pixel_order,
    pointing_game,
    random_pixel_order,
    rank_correlation,
)
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from tests.recording import RecordingModel

MOUTH = PART_NAMES.index("mouth")


def noise(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape)


def one_map(rows: list[list[float]]) -> np.ndarray:
    """A stack holding one map."""
    return np.array([rows], dtype=np.float64)


# --- rank_correlation -----------------------------------------------------------------------


def test_a_map_ranks_exactly_like_itself_and_like_any_increasing_function_of_itself():
    maps = noise(3, 48, 48)
    np.testing.assert_allclose(rank_correlation(maps, maps), 1.0)
    np.testing.assert_allclose(rank_correlation(maps, np.exp(maps)), 1.0)


def test_a_negated_map_ranks_exactly_the_other_way():
    maps = noise(3, 48, 48)
    np.testing.assert_allclose(rank_correlation(maps, -maps), -1.0)


def test_one_swapped_pair_of_four_pixels_gives_the_textbook_value():
    # Spearman's 1 - 6 sum(d^2) / (n (n^2 - 1)) = 1 - 6 * 2 / (4 * 15) = 0.8
    assert rank_correlation(one_map([[1, 2], [3, 4]]), one_map([[1, 3], [2, 4]])) == pytest.approx([0.8])


def test_ties_share_their_average_rank_as_in_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 4, (2, 6, 8)), rng.integers(0, 3, (2, 6, 8))  # many ties in both

    expected = [stats.spearmanr(a[i].ravel(), b[i].ravel()).statistic for i in range(2)]
    np.testing.assert_allclose(rank_correlation(a, b), expected, rtol=1e-12)


def test_a_constant_map_correlates_zero_with_anything():
    maps = noise(2, 48, 48)
    constant = np.full_like(maps, 0.1)
    np.testing.assert_array_equal(rank_correlation(constant, maps), [0.0, 0.0])
    np.testing.assert_array_equal(rank_correlation(constant, constant), [0.0, 0.0])


def test_each_image_is_ranked_on_its_own():
    maps = noise(2, 48, 48)
    np.testing.assert_allclose(rank_correlation(maps, np.stack([maps[0], -maps[1]])), [1.0, -1.0])


# --- regions --------------------------------------------------------------------------------


def test_parts_region_is_brows_eyes_nose_and_mouth_but_not_face_or_background():
    masks = np.arange(6, dtype=np.uint8).reshape(1, 1, 6)
    np.testing.assert_array_equal(parts_region(masks), [[[False, False, True, True, True, True]]])


def test_the_face_ellipse_holds_the_centre_and_not_the_corners():
    ellipse = face_ellipse()
    assert ellipse.shape == (48, 48) and ellipse.dtype == bool
    assert ellipse[24, 24] and ellipse[18, 16] and ellipse[36, 24]  # centre, left eye, mouth
    assert not ellipse[[0, 0, 47, 47], [0, 47, 0, 47]].any()


def test_the_face_ellipse_is_a_third_of_the_image_and_mirror_symmetric():
    ellipse = face_ellipse()
    assert ellipse.sum() == 802  # pi * 17 * 15 = 801.1
    assert np.array_equal(ellipse, ellipse[:, ::-1])
    assert face_ellipse(96).mean() == pytest.approx(ellipse.mean(), abs=0.005)


def test_the_face_ellipse_holds_most_of_the_synthetic_faces_parts():
    parts = parts_region(generate(100, seed=5).masks)
    assert (parts & face_ellipse()).sum() / parts.sum() > 0.85


# --- mass_share -----------------------------------------------------------------------------


def test_a_map_on_the_mouth_only_has_all_its_mass_on_the_mouth():
    masks = np.zeros((1, 48, 48), np.uint8)
    masks[0, 34:38, 18:30] = MOUTH
    maps = (masks == MOUTH) * 3.0

    assert mass_share(maps, masks == MOUTH) == pytest.approx([1.0])


def test_a_uniform_map_shares_its_mass_as_the_region_its_area():
    region = face_ellipse()
    assert mass_share(np.ones((2, 48, 48)), region) == pytest.approx([802 / 2304] * 2)


def test_mass_counts_negative_values_by_magnitude():
    maps = np.ones((1, 48, 48))
    maps[0, :12] = -1.0
    top_half = np.zeros((48, 48), bool)
    top_half[:24] = True
    assert mass_share(maps, top_half) == pytest.approx([0.5])


def test_a_region_per_image_applies_to_its_own_image():
    maps = np.zeros((2, 48, 48))
    maps[:, 0, 0] = 1.0
    regions = np.zeros((2, 48, 48), bool)
    regions[0, 0, 0] = True
    np.testing.assert_array_equal(mass_share(maps, regions), [1.0, 0.0])


def test_an_all_zero_map_has_no_share():
    np.testing.assert_array_equal(mass_share(np.zeros((1, 48, 48)), face_ellipse()), [0.0])


# --- pointing_game --------------------------------------------------------------------------


def square_region() -> np.ndarray:
    region = np.zeros((48, 48), bool)
    region[20:23, 20:23] = True
    return region


def peak_at(row: int, col: int, value: float = 1.0) -> np.ndarray:
    maps = np.zeros((1, 48, 48))
    maps[0, row, col] = value
    return maps


def test_a_peak_inside_the_region_is_a_hit():
    assert pointing_game(peak_at(21, 21), square_region(), tolerance=0).tolist() == [True]


def test_a_peak_two_pixels_outside_is_a_hit_with_tolerance_two_and_a_miss_with_one():
    for peak in (peak_at(24, 21), peak_at(24, 24)):  # straight below, and diagonally: Chebyshev distance 2
        assert pointing_game(peak, square_region(), tolerance=2).tolist() == [True]
        assert pointing_game(peak, square_region(), tolerance=1).tolist() == [False]


def test_the_default_tolerance_is_two_pixels():
    assert pointing_game(peak_at(18, 21), square_region()).tolist() == [True]
    assert pointing_game(peak_at(17, 21), square_region()).tolist() == [False]


def test_the_peak_is_the_largest_magnitude_even_when_negative():
    maps = peak_at(21, 21, value=-5.0) + peak_at(0, 0, value=4.0)
    assert pointing_game(maps, square_region(), tolerance=0).tolist() == [True]


def test_tied_peaks_take_the_first_in_row_major_order():
    maps = peak_at(0, 0) + peak_at(21, 21)
    assert pointing_game(maps, square_region()).tolist() == [False]


def test_the_tolerance_window_stops_at_the_image_border():
    region = np.zeros((48, 48), bool)
    region[2, 2] = True
    assert pointing_game(peak_at(0, 0), region, tolerance=2).tolist() == [True]


def test_an_all_zero_map_misses():
    assert pointing_game(np.zeros((1, 48, 48)), np.ones((48, 48), bool)).tolist() == [False]


# --- pixel orders ---------------------------------------------------------------------------


def test_pixel_order_goes_from_highest_signed_value_down_with_ties_in_row_major_order():
    np.testing.assert_array_equal(pixel_order(one_map([[3, -5], [3, 2]])), [[0, 2, 3, 1]])
    assert pixel_order(noise(2, 48, 48)).dtype == np.int64


def test_pixel_order_of_an_unsigned_map_is_not_wrapped_around():
    np.testing.assert_array_equal(pixel_order(np.array([[[0, 255], [1, 2]]], np.uint8)), [[1, 3, 2, 0]])


def test_random_pixel_orders_are_permutations_fixed_by_the_seed():
    orders = random_pixel_order(3, seed=7)
    assert orders.shape == (3, 2304) and orders.dtype == np.int64
    assert all(np.array_equal(np.sort(row), np.arange(2304)) for row in orders)
    assert not np.array_equal(orders[0], orders[1])
    np.testing.assert_array_equal(orders, random_pixel_order(3, seed=7))
    assert not np.array_equal(orders, random_pixel_order(3, seed=8))


# --- perturbation_curves and curve_auc ------------------------------------------------------

GAIN = 10.0  # the class-0 logit of a fully bright corner


def corner_model() -> RecordingModel:
    """A model whose class-0 logit is GAIN * (mean of the top-left 8x8 corner - 128) / 255 and whose
    other logits are 0: a mid-gray corner leaves all classes at 1/7."""
    corner = np.zeros((48, 48), bool)
    corner[:8, :8] = True
    linear = nn.Linear(48 * 48, 7)
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
        linear.weight[0] = torch.tensor(corner.ravel() * GAIN / 64)  # inputs arrive as pixels / 255
        linear.bias[0] = -GAIN * 128 / 255
    return RecordingModel(InProcessModel(SubmissionModule(nn.Sequential(nn.Flatten(), linear))))


def bright_corner_faces(n: int) -> np.ndarray:
    """uint8 faces with a white top-left corner and dark noise elsewhere (never 128, the baseline)."""
    faces = np.random.default_rng(3).integers(0, 100, (n, 48, 48)).astype(np.uint8)
    faces[:, :8, :8] = 255
    return faces


P_BRIGHT = math.exp(GAIN * 127 / 255) / (math.exp(GAIN * 127 / 255) + 6)  # the bright corner's class-0 softmax


def test_deleting_the_corner_first_drops_to_chance_after_one_step():
    faces = bright_corner_faces(2)
    curves = perturbation_curves(corner_model(), faces, np.zeros(2, np.int64), pixel_order(faces), "deletion")

    assert curves.shape == (2, 17) and curves.dtype == np.float64
    np.testing.assert_allclose(curves[:, 0], P_BRIGHT, rtol=1e-5)  # the unperturbed face
    np.testing.assert_allclose(curves[:, 1:], 1 / 7, rtol=1e-5)  # 144 pixels deleted, the corner's 64 among them


def test_inserting_the_corner_first_reaches_the_faces_probability_after_one_step():
    faces = bright_corner_faces(2)
    curves = perturbation_curves(corner_model(), faces, np.zeros(2, np.int64), pixel_order(faces), "insertion")

    np.testing.assert_allclose(curves[:, 0], 1 / 7, rtol=1e-5)  # the all-baseline image
    np.testing.assert_allclose(curves[:, 1:], P_BRIGHT, rtol=1e-5)


def test_an_order_that_ranks_the_used_pixels_first_beats_a_random_order_both_ways():
    faces, targets = bright_corner_faces(4), np.zeros(4, np.int64)
    model, good, chance = corner_model(), pixel_order(faces), random_pixel_order(4, seed=0)

    deletion = [curve_auc(perturbation_curves(model, faces, targets, o, "deletion")) for o in (good, chance)]
    insertion = [curve_auc(perturbation_curves(model, faces, targets, o, "insertion")) for o in (good, chance)]

    assert (deletion[0] < deletion[1] - 0.2).all()
    assert (insertion[0] > insertion[1] + 0.2).all()


def test_deletion_ends_on_the_all_baseline_image_and_insertion_on_the_face():
    faces = bright_corner_faces(1)
    order = random_pixel_order(1, seed=2)
    model = corner_model()
    deletion = perturbation_curves(model, faces, np.array([3]), order, "deletion", steps=5)
    insertion = perturbation_curves(model, faces, np.array([3]), order, "insertion", steps=5)

    assert np.array_equal(model.requests[0].pixels[-1], np.full((48, 48), 128.0, np.float32))
    assert np.array_equal(model.requests[1].pixels[-1], faces[0].astype(np.float32))
    assert deletion[0, -1] == pytest.approx(1 / 7, rel=1e-5)
    assert insertion[0, -1] == pytest.approx(1 / (math.exp(GAIN * 127 / 255) + 6), rel=1e-5)


def test_step_k_changes_round_k_times_2304_over_steps_pixels_in_order():
    faces = bright_corner_faces(1)
    order = random_pixel_order(1, seed=4)
    model = corner_model()
    perturbation_curves(model, faces, np.array([0]), order, "deletion", steps=7, baseline=128.0)

    pixels = model.requests[0].pixels.reshape(8, -1)
    counts = (pixels == 128.0).sum(axis=1)
    np.testing.assert_array_equal(counts, [0, 329, 658, 987, 1317, 1646, 1975, 2304])  # 2304 / 7 = 329.14
    assert (pixels[3, order[0, :987]] == 128.0).all()


def test_all_perturbed_images_go_in_as_few_float32_requests_as_the_batch_allows():
    faces, model = bright_corner_faces(5), corner_model()
    perturbation_curves(model, faces, np.zeros(5, np.int64), random_pixel_order(5, seed=1), "insertion",
                        steps=16, batch=20)

    assert model.sizes("logits") == [20, 20, 20, 20, 5]  # ceil(5 * 17 / 20) requests
    assert all(r.pixels.dtype == np.float32 for r in model.requests)


@pytest.mark.parametrize("change, message", [
    ({"targets": np.zeros(3, np.int64)}, r"targets must be shaped \(2,\)"),
    ({"order": np.zeros((2, 100), np.int64)}, r"order \(2, 2304\); got \(2,\) and \(2, 100\)"),
    ({"order": np.zeros((2, 2304), np.int64)}, "each row of order must be a permutation"),
    ({"mode": "blur"}, "mode must be 'deletion' or 'insertion', not 'blur'"),
    ({"steps": 0}, "steps and batch must be 1 or more"),
])
def test_bad_arguments_are_refused_in_words(change, message):
    arguments = {"images": bright_corner_faces(2), "targets": np.zeros(2, np.int64),
                 "order": random_pixel_order(2, seed=0), "mode": "deletion", "steps": 4}
    with pytest.raises(ValueError, match=message):
        perturbation_curves(corner_model(), **(arguments | change))


def test_curve_auc_is_the_trapezoid_area_over_a_unit_x_axis():
    curves = np.array([[0.5, 0.5, 0.5], [0.0, 0.5, 1.0], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(curve_auc(curves), [0.5, 0.5, 0.25])
    random = noise(3, 17)
    np.testing.assert_allclose(curve_auc(random), np.trapezoid(random, dx=1 / 16, axis=1))


# --- pattern_diversity ----------------------------------------------------------------------


def test_identical_patterns_have_no_diversity():
    assert pattern_diversity(np.repeat(noise(1, 8, 8), 4, axis=0)) == pytest.approx(0.0, abs=1e-12)


def test_a_pattern_and_its_negative_count_as_the_same_feature():
    pattern = noise(1, 8, 8)
    assert pattern_diversity(np.concatenate([pattern, 255 - 2 * pattern])) == pytest.approx(0.0, abs=1e-12)


def test_diversity_averages_one_minus_absolute_correlation_over_pairs():
    x, y = [[1, -1], [1, -1]], [[1, 1], [-1, -1]]  # uncorrelated; x repeated
    assert pattern_diversity(np.array([x, y, x], np.float64)) == pytest.approx((1 + 0 + 1) / 3)


def test_independent_noise_patterns_are_nearly_fully_diverse():
    assert pattern_diversity(noise(6, 48, 48)) > 0.9


def test_a_constant_pattern_adds_no_diversity():
    patterns = np.concatenate([np.full((1, 48, 48), 0.1), noise(1, 48, 48)])
    assert pattern_diversity(patterns) == 0.0


def test_fewer_than_two_patterns_have_no_diversity():
    assert pattern_diversity(noise(1, 8, 8)) == 0.0
    assert pattern_diversity(np.zeros((0, 8, 8))) == 0.0


# --- is_informative -------------------------------------------------------------------------


@pytest.mark.parametrize("array, expected", [
    (noise(4, 4), True),
    (np.array([0, 0, 1], np.uint8), True),
    (np.array([1.0, np.nan]), False),
    (np.array([1.0, np.inf]), False),
    (np.full((4, 4), 3.0), False),
    (np.zeros((0, 48, 48)), False),
])
def test_an_array_is_informative_when_non_empty_finite_and_not_constant(array, expected):
    assert is_informative(array) is expected
