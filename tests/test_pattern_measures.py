"""Filter-pattern measures (grader.claims.patterns): orientation, coherence, spots and flatness of
first-layer ascent patterns, and Q2 filter claims checked against them.

Synthetic 48x48 patterns in raw pixels: sinusoidal gratings, Gaussian dots, noise, uniform.
Angles are counter-clockwise from the horizontal as displayed (row 0 at the top).
"""

import math

import numpy as np
import pytest
from skimage.feature import structure_tensor as sk_structure_tensor
from skimage.feature import structure_tensor_eigenvalues

from grader.claims.patterns import (
    BLOB_SPOTS,
    FLAT_CONTRAST,
    ORIENTED_COHERENCE,
    PatternMeasures,
    measure_patterns,
    structure_orientation,
    verify_pattern_claim,
)

SIDE = 48
ROWS, COLS = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)


def grating(angle_deg: float, period: float = 6.0, amplitude: float = 100.0, phase: float = 0.3) -> np.ndarray:
    """Sinusoidal stripes running at `angle_deg` (0 = horizontal lines), around mid-gray."""
    t = math.radians(angle_deg)
    across = -math.sin(t) * COLS + math.cos(t) * (-ROWS)  # the normal to the stripes, y up
    return 128.0 + amplitude * np.sin(2 * np.pi * across / period + phase)


def dot_grid(spacing: int = 8, size: float = 1.5) -> np.ndarray:
    """Gaussian dots of sigma `size` every `spacing` pixels on a dark background."""
    pattern = np.zeros((SIDE, SIDE))
    for r in range(3, SIDE, spacing):
        for c in range(3, SIDE, spacing):
            pattern += np.exp(-((ROWS - r) ** 2 + (COLS - c) ** 2) / (2 * size**2))
    return 60.0 + 120.0 * pattern


def single_dot(size: float = 3.0) -> np.ndarray:
    """One bright Gaussian dot in the middle of a dark pattern."""
    return 60.0 + 150.0 * np.exp(-((ROWS - 23.5) ** 2 + (COLS - 24) ** 2) / (2 * size**2))


def white_noise(seed: int) -> np.ndarray:
    """Gaussian white noise around mid-gray, standard deviation 40 levels."""
    return 128.0 + 40.0 * np.random.default_rng(seed).standard_normal((SIDE, SIDE))


def measure(*patterns: np.ndarray) -> PatternMeasures:
    return measure_patterns(np.stack(patterns).astype(np.float32))


def angle_error(a: float, b: float) -> float:
    """The difference of two orientations, modulo 180 degrees."""
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


# ---------------------------------------------------------------- orientation


@pytest.mark.parametrize(("angle", "bin_name"), [(0, "horizontal"), (45, "diagonal"), (90, "vertical"),
                                                 (135, "diagonal")])
def test_a_grating_gets_its_orientation_bin_and_angle(angle: float, bin_name: str) -> None:
    m = measure(grating(angle, period=6), grating(angle, period=4), grating(angle, period=10))
    assert list(m.orientation) == [bin_name] * 3
    assert list(m.kind) == ["oriented"] * 3
    assert max(angle_error(a, angle) for a in m.angle) < 3.0


def test_horizontal_lines_vary_from_row_to_row() -> None:
    rows_alternate = np.where(ROWS % 4 < 2, 200.0, 50.0)
    m = measure(rows_alternate, rows_alternate.T)
    assert list(m.orientation) == ["horizontal", "vertical"]
    assert angle_error(m.angle[0], 0) < 1 and angle_error(m.angle[1], 90) < 1


def test_lines_rising_to_the_right_are_at_45_degrees_and_falling_ones_at_135() -> None:
    rising = np.where((COLS - (SIDE - ROWS)) % 6 < 3, 200.0, 50.0)  # constant along col + row
    falling = np.fliplr(rising)
    m = measure(rising, falling)
    assert angle_error(m.angle[0], 45) < 3 and angle_error(m.angle[1], 135) < 3


def test_angles_near_a_bin_edge_fall_on_the_right_side() -> None:
    angles = (15, 30, 60, 75, 105, 120, 165)
    m = measure(*(grating(a, period=8) for a in angles))
    assert list(m.orientation) == ["horizontal", "diagonal", "diagonal", "vertical", "vertical", "diagonal",
                                   "horizontal"]


# ---------------------------------------------------------------- coherence


def test_a_grating_is_coherent_and_white_noise_is_not() -> None:
    gratings = measure(*(grating(a, period=p) for a in (0, 30, 100) for p in (3, 5, 12)))
    noise = measure(*(white_noise(seed) for seed in range(10)))
    assert gratings.coherence.min() > 0.95
    assert noise.coherence.max() < 0.15
    assert set(noise.kind) == {"texture"}


def test_a_grating_under_noise_of_its_own_strength_is_still_oriented() -> None:
    stripes = grating(30, period=6, amplitude=40)
    noisy = stripes + stripes.std() * np.random.default_rng(1).standard_normal(stripes.shape)
    m = measure(noisy)
    assert ORIENTED_COHERENCE < m.coherence[0] < 0.8
    assert m.orientation[0] == "diagonal" and angle_error(m.angle[0], 30) < 5


def test_crossed_gratings_of_equal_strength_are_not_oriented() -> None:
    plaid = grating(0, period=8) + grating(90, period=8) - 128.0
    m = measure(plaid)
    assert m.coherence[0] < 0.05
    assert m.orientation[0] == "none"


@pytest.mark.parametrize("name", ["grating 0", "grating 30", "grating 120", "noise", "dots", "plaid"])
def test_the_structure_tensor_agrees_with_scikit_image(name: str) -> None:
    pattern = {
        "grating 0": grating(0), "grating 30": grating(30, period=9), "grating 120": grating(120, period=5),
        "noise": white_noise(7), "dots": dot_grid(), "plaid": grating(0, 8) + 0.5 * grating(90, 8),
    }[name]
    coherence, angle = structure_orientation(pattern)
    arr, arc, acc = (element[3:-3, 3:-3].mean() for element in
                     sk_structure_tensor(pattern, sigma=1.0, mode="reflect", order="rc"))
    l1, l2 = structure_tensor_eigenvalues([np.array([arr]), np.array([arc]), np.array([acc])])[:, 0]
    assert coherence == pytest.approx((l1 - l2) / (l1 + l2), abs=0.03)
    if coherence > ORIENTED_COHERENCE:
        # skimage's tensor is in (row, col); the dominant gradient's angle with y up is
        # 0.5 * atan2(-2 Arc, Acc - Arr), the stripes run across it
        reference = (0.5 * math.degrees(math.atan2(-2 * arc, acc - arr)) + 90.0) % 180.0
        assert angle_error(angle, reference) < 1.0


# ---------------------------------------------------------------- spots


def test_a_grid_of_gaussian_dots_is_spots() -> None:
    m = measure(dot_grid(6, 1.0), dot_grid(8, 1.5), dot_grid(12, 2.0), dot_grid(16, 3.0))
    assert m.blob.min() > BLOB_SPOTS + 0.2
    assert set(m.kind) == {"spots"}
    assert set(m.orientation) == {"none"}


def test_an_isolated_dot_scores_higher_on_blob_than_a_grid() -> None:
    m = measure(single_dot(3.0), dot_grid(8, 1.5))
    assert m.blob[0] > 1.5 > m.blob[1]
    assert m.kind[0] == "spots"


def test_stripes_score_low_on_blob() -> None:
    m = measure(*(grating(a, period=p) for a in (0, 45, 90, 160) for p in (4, 10)))
    assert m.blob.max() < 0.35 < BLOB_SPOTS


def test_white_noise_is_texture_not_spots() -> None:
    m = measure(*(white_noise(seed) for seed in range(20)))
    assert m.blob.max() < BLOB_SPOTS
    assert set(m.kind) == {"texture"}


# ---------------------------------------------------------------- flat patterns


def test_a_uniform_pattern_is_flat_with_no_orientation() -> None:
    m = measure(np.full((SIDE, SIDE), 77.0), np.full((SIDE, SIDE), 255.0))
    assert list(m.kind) == ["flat", "flat"]
    assert list(m.contrast) == [0.0, 0.0]
    assert list(m.coherence) == [0.0, 0.0] and np.isnan(m.angle).all()
    assert list(m.blob) == [0.0, 0.0]
    assert list(m.orientation) == ["none", "none"]


def test_a_faint_ripple_on_a_bright_pattern_is_flat() -> None:
    ripple = 230.0 + 2.0 * np.sin(COLS)
    m = measure(ripple)
    assert m.contrast[0] == pytest.approx(2.0 / math.sqrt(2) / 255, rel=0.05)
    assert m.contrast[0] < FLAT_CONTRAST
    assert m.kind[0] == "flat" and m.orientation[0] == "none"


def test_contrast_is_the_standard_deviation_over_255() -> None:
    half = np.where(COLS < 24, 0.0, 255.0)
    assert measure(half).contrast[0] == pytest.approx(0.5)


# ---------------------------------------------------------------- invariance


def test_the_shape_measures_ignore_brightness_offset_and_scale() -> None:
    patterns = [grating(30, period=7), dot_grid(), white_noise(3), grating(90, period=4)]
    base = measure(*patterns)
    moved = measure(*(0.4 * p + 50.0 for p in patterns))
    np.testing.assert_allclose(moved.coherence, base.coherence, atol=1e-5)
    np.testing.assert_allclose(moved.angle, base.angle, atol=1e-3)
    np.testing.assert_allclose(moved.blob, base.blob, rtol=1e-4)
    assert list(moved.kind) == list(base.kind) and list(moved.orientation) == list(base.orientation)


def test_contrast_follows_scale_but_not_offset() -> None:
    pattern = grating(45)
    base, offset, scaled = measure(pattern, pattern - 60.0, 0.5 * pattern).contrast
    assert offset == pytest.approx(base, rel=1e-5)
    assert scaled == pytest.approx(base / 2, rel=1e-5)


def test_a_non_finite_pattern_is_not_measured() -> None:
    broken = grating(0).copy()
    broken[5, 5] = np.nan
    m = measure(broken, grating(90))
    assert m.kind[0] == "invalid" and np.isnan(m.coherence[0]) and m.orientation[0] == "none"
    assert m.kind[1] == "oriented"


def test_patterns_must_be_a_stack_of_images() -> None:
    with pytest.raises(ValueError, match="K, H, W"):
        measure_patterns(np.zeros((48, 48)))


# ---------------------------------------------------------------- checking claims


def mixed_set() -> PatternMeasures:
    """Eight patterns: two horizontal, two vertical, two diagonal gratings, two dot grids."""
    return measure(grating(0), grating(0, 4), grating(90), grating(90, 9), grating(45), grating(135, 5),
                   dot_grid(8, 1.5), dot_grid(12, 2.0))


def test_horizontal_vertical_and_diagonal_are_supported_when_all_three_are_there() -> None:
    verdict = verify_pattern_claim(("diagonal", "horizontal", "vertical"), (), mixed_set())
    assert verdict.verdict == "supported"
    assert verdict.values["horizontal"] == verdict.values["vertical"] == verdict.values["diagonal"] == 2
    assert verdict.values["patterns"] == 8 and verdict.values["spots"] == 2


def test_the_enumeration_of_lines_and_spots_is_supported_on_a_mixed_set() -> None:
    subject = ("diagonal", "horizontal", "lines", "several_orientations", "spots", "vertical")
    assert verify_pattern_claim(subject, (), mixed_set()).verdict == "supported"


def test_horizontal_is_contradicted_when_every_pattern_is_vertical() -> None:
    verticals = measure(*(grating(90 + d, period=p) for d in (-5, 0, 5) for p in (4, 7)))
    verdict = verify_pattern_claim(("horizontal",), (), verticals)
    assert verdict.verdict == "contradicted"
    assert verdict.values["horizontal"] == 0 and verdict.values["vertical"] == 6


def test_one_stray_pattern_in_thirty_two_is_neither_support_nor_contradiction() -> None:
    patterns = measure(grating(0), *(grating(90, period=3 + i % 5) for i in range(31)))
    verdict = verify_pattern_claim(("horizontal",), (), patterns)
    assert verdict.verdict == "not checkable"
    assert verdict.values["horizontal"] == 1 and verdict.values["needed"] == 2


def test_spots_are_supported_on_dots_and_contradicted_on_gratings() -> None:
    dots = measure(dot_grid(6, 1.0), dot_grid(8, 1.5), dot_grid(16, 3.0))
    assert verify_pattern_claim(("spots",), (), dots).verdict == "supported"
    gratings = measure(grating(0), grating(60), grating(90))
    assert verify_pattern_claim(("spots",), (), gratings).verdict == "contradicted"


def test_not_colour_is_supported_on_oriented_patterns() -> None:
    gratings = measure(grating(0), grating(45), grating(90), grating(135))
    verdict = verify_pattern_claim(("lines",), ("color",), gratings)
    assert verdict.verdict == "supported"
    assert verdict.values["oriented_share"] == 1.0


def test_colour_is_supported_on_flat_patterns_and_its_negation_contradicted() -> None:
    patterns = measure(np.full((SIDE, SIDE), 240.0), np.full((SIDE, SIDE), 20.0), grating(0), grating(90))
    assert verify_pattern_claim(("color",), (), patterns).verdict == "supported"
    assert verify_pattern_claim(("lines",), ("color",), patterns).verdict == "contradicted"


def test_several_orientations_is_contradicted_when_all_stripes_run_one_way() -> None:
    horizontals = measure(grating(0), grating(5, 4), grating(175, 9))
    assert verify_pattern_claim(("several_orientations",), (), horizontals).verdict == "contradicted"


def test_lines_are_contradicted_when_no_pattern_is_oriented() -> None:
    dots = measure(dot_grid(8, 1.5), single_dot(), np.full((SIDE, SIDE), 128.0))
    assert verify_pattern_claim(("lines",), (), dots).verdict == "contradicted"


def test_no_patterns_is_not_checkable() -> None:
    empty = measure_patterns(np.zeros((0, SIDE, SIDE), dtype=np.float32))
    verdict = verify_pattern_claim(("horizontal",), (), empty)
    assert verdict.verdict == "not checkable"
    assert verdict.values["patterns"] == 0


def test_a_nan_pattern_makes_the_claim_not_checkable() -> None:
    broken = np.full((SIDE, SIDE), np.nan)
    verdict = verify_pattern_claim(("vertical",), (), measure(broken, grating(90), grating(90, 4)))
    assert verdict.verdict == "not checkable"


def test_an_unknown_pattern_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown pattern names"):
        verify_pattern_claim(("zigzag",), (), mixed_set())
