"""How sure a measured value is: the percentile bootstrap (Efron & Tibshirani 1993, "An Introduction to
the Bootstrap", ch. 13) over the units a metric averages, the explained images (and, for LIME, also
its seeds).

Tomsett et al. (AAAI 2020, "Sanity checks for saliency metrics") found that saliency metrics computed
on a handful of images vary strongly from image to image; a band decided by the mean of seven faces
alone would be decided by chance near its edge. So a metric that averages over units returns a
`Resampled` instead of a float: its value is the statistic on all units, its interval the 2.5th and
97.5th percentiles of the statistic on resamples of the units drawn with replacement. The seed is
fixed, so two runs give the same interval to the last bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 1000
"""Resamples per interval: percentile intervals are stable to about 0.01 of their width at 1000
(Efron & Tibshirani ch. 19 suggest 1000 or more for percentiles)."""
BOOTSTRAP_LEVEL = 0.95
BOOTSTRAP_SEED = 0

Statistic = Callable[..., np.ndarray]
"""statistic(*indices) -> (B,): each argument is a (B, n_axis) int array of unit indices along one
axis of the units (images; images and seeds); row b is one resample (row of arange = all units)."""


@dataclass(frozen=True)
class Resampled:
    """A metric's value as a statistic of units that can be resampled.

    statistic: vectorized over resamples, see `Statistic`.
    shape: the number of units along each axis, such as (images,) or (images, seeds); each axis is
        resampled independently (a two-way bootstrap for images x seeds).
    """

    statistic: Statistic
    shape: tuple[int, ...]

    def value(self) -> float:
        """The statistic on every unit once."""
        return float(self.statistic(*(np.arange(n)[None, :] for n in self.shape))[0])

    def interval(self, resamples: int = BOOTSTRAP_RESAMPLES, level: float = BOOTSTRAP_LEVEL,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
        """The percentile bootstrap interval; a single unit per axis gives (value, value)."""
        if all(n <= 1 for n in self.shape):
            value = self.value()
            return value, value
        rng = np.random.default_rng(seed)
        draws = [rng.integers(0, n, size=(resamples, n)) for n in self.shape]
        values = np.asarray(self.statistic(*draws), dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            value = self.value()
            return value, value
        tail = (1.0 - level) / 2 * 100
        low, high = np.percentile(values, [tail, 100 - tail])
        return float(low), float(high)


def mean_of(values: np.ndarray) -> Resampled:
    """The mean of per-unit values: (n,) over images, or (n, r) over images and repeats (seeds)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        return Resampled(lambda rows: values[rows].mean(axis=1), (len(values),))
    if values.ndim == 2:
        return Resampled(lambda rows, repeats: values[rows[:, :, None], repeats[:, None, :]].mean(axis=(1, 2)),
                         values.shape)
    raise ValueError(f"per-unit values must be (n,) or (n, repeats), got shape {values.shape}")


def median_of(values: np.ndarray) -> Resampled:
    """The median of per-unit values (n,)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    return Resampled(lambda rows: np.median(values[rows], axis=1), (len(values),))


def estimate(computed: float | Resampled) -> tuple[float, tuple[float, float] | None]:
    """A metric's value, and its bootstrap interval when it is a statistic of resampled units."""
    if isinstance(computed, Resampled):
        return computed.value(), computed.interval()
    return float(computed), None
