"""The bootstrap intervals the bands are decided on (grader/scoring/uncertainty.py)."""

import numpy as np
import pytest
from scipy import stats

from grader.scoring.uncertainty import Resampled, estimate, mean_of, median_of


def test_the_value_is_the_statistic_on_every_unit_once():
    assert mean_of(np.array([0.1, 0.2, 0.6])).value() == pytest.approx(0.3)
    assert median_of(np.array([5.0, 1.0, 3.0, 100.0])).value() == pytest.approx(4.0)


def test_the_interval_of_a_mean_agrees_with_scipys_percentile_bootstrap():
    values = np.random.default_rng(3).normal(0.5, 0.2, size=40)
    ours = mean_of(values).interval(resamples=4000)
    theirs = stats.bootstrap((values,), np.mean, n_resamples=4000, method="percentile", confidence_level=0.95,
                             random_state=1).confidence_interval
    width = theirs.high - theirs.low
    assert ours[0] == pytest.approx(theirs.low, abs=0.05 * width)
    assert ours[1] == pytest.approx(theirs.high, abs=0.05 * width)


def test_the_interval_narrows_as_the_images_grow():
    rng = np.random.default_rng(0)
    few, many = (mean_of(rng.normal(0, 1, size=n)).interval() for n in (7, 700))
    assert (few[1] - few[0]) > 5 * (many[1] - many[0])


def test_equal_units_give_an_interval_of_zero_width():
    assert mean_of(np.full(7, 0.25)).interval() == (0.25, 0.25)


def test_one_unit_gives_the_value_as_both_ends():
    assert mean_of(np.array([0.7])).interval() == (0.7, 0.7)


def test_two_runs_give_the_same_interval_to_the_last_bit():
    values = np.random.default_rng(5).random(7)
    assert mean_of(values).interval() == mean_of(values.copy()).interval()


def test_images_and_seeds_are_resampled_each_on_its_own_axis():
    """Seeds that disagree widen the interval even when the images' means agree."""
    images = np.linspace(0.4, 0.6, 7)
    agreeing = np.repeat(images[:, None], 3, axis=1)
    disagreeing = agreeing + np.array([-0.2, 0.0, 0.2])
    assert mean_of(agreeing).value() == pytest.approx(mean_of(disagreeing).value())
    narrow, wide = mean_of(agreeing).interval(), mean_of(disagreeing).interval()
    assert (wide[1] - wide[0]) > 2 * (narrow[1] - narrow[0])


def test_a_plain_float_has_no_interval():
    assert estimate(0.5) == (0.5, None)


def test_resamples_where_the_statistic_is_undefined_are_left_out():
    values = np.array([1.0, 2.0, 3.0, 4.0])

    def mean_unless_first_is_drawn(rows: np.ndarray) -> np.ndarray:
        return np.where((rows == 0).any(axis=1), np.nan, values[rows].mean(axis=1))

    low, high = Resampled(mean_unless_first_is_drawn, (4,)).interval()
    assert 2.0 <= low <= high <= 4.0
