"""How much work each explanation method does when a question runs it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSettings:
    """How much work each task does; the defaults are the course's, `quick()` is for pre-checks.

    smoothgrad: Q1's saliency maps are SmoothGrad's (cross-entropy toward the label) instead of the
    plain gradient's.
    lime_seeds: LIME runs this many times, with seeds seed, seed + 1, ...: the figure shows the first,
    and LIME's metrics are bootstrapped over the images and the seeds (issue 19)."""

    lime_samples: int = 1000
    filter_steps: int = 64
    max_channels: int = 64
    class_model_steps: int = 200
    smoothgrad: bool = False
    seed: int = 0
    lime_seeds: int = 3

    @classmethod
    def quick(cls) -> TaskSettings:
        """About a tenth of the work: the same figures, noisier, for a fast pre-check or a test."""
        return cls(lime_samples=100, filter_steps=16, class_model_steps=40, lime_seeds=2)
