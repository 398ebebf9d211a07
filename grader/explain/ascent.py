"""Gradient ascent in input space, shared by the filter visualization (grader.explain.filters,
Erhan et al. 2009) and the class-model visualization (grader.explain.class_model, Simonyan et al.
2014): start from one gray noise image, and climb an objective with RMS-normalized steps, jitter,
blur and an optional L2 decay toward gray, one `input_gradient` request of every image per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.classes import IMAGE_SIDE
from grader.protocol import ModelProtocol, Objective

GRAY = 128.0
"""Where every ascent starts (plus noise), and where the L2 decay pulls toward: mid-gray, the
raw-pixel stand-in for the zero (mean) image of Simonyan et al."""
PIXEL_MAX = 255.0


@dataclass(frozen=True)
class AscentSettings:
    """How `gradient_ascent` climbs. All pixel quantities are in raw pixels (0..255).

    steps: number of gradient steps, one model request each.
    step_size: how far one step moves an image, as the RMS over its pixels: the gradient is
        divided by its own RMS first (per image), so the step does not depend on the model's
        input scaling, nor on how strongly a channel or class responds.
    l2: L2 decay toward gray per step, image <- GRAY + (1 - l2) * (image - GRAY); the proximal
        form of the penalty -lambda * ||I - GRAY||^2 (Simonyan et al. 2014; Yosinski et al. 2015).
        0 turns it off.
    noise: standard deviation of the Gaussian noise added to gray for the start image.
    blur_every, blur_sigma: a Gaussian blur of `blur_sigma` pixels after every `blur_every`-th
        step (0 turns it off); it removes the high-frequency noise a pure ascent amplifies.
    jitter: each step computes the gradient on the image rolled by a random (dy, dx) in
        -jitter..jitter and rolls the gradient back (0 turns it off); patterns must then hold up
        under small shifts, which makes them smoother and less aliased.
    seed: seeds the start noise and the jitter; the same settings give byte-identical images.
    """

    steps: int
    step_size: float
    l2: float = 0.0
    noise: float = 8.0
    blur_every: int = 0
    blur_sigma: float = 0.5
    jitter: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.steps < 0:
            problems.append(f"steps must be >= 0, not {self.steps}")
        if not self.step_size > 0:
            problems.append(f"step_size must be > 0, not {self.step_size}")
        if not 0 <= self.l2 < 1:
            problems.append(f"l2 (decay per step) must be in [0, 1), not {self.l2}")
        if self.noise < 0:
            problems.append(f"noise must be >= 0, not {self.noise}")
        if self.blur_every < 0 or (self.blur_every and not self.blur_sigma > 0):
            problems.append(f"blur needs blur_every >= 0 and blur_sigma > 0, not {self.blur_every}, {self.blur_sigma}")
        if not 0 <= self.jitter < IMAGE_SIDE // 2:
            problems.append(f"jitter must be in 0..{IMAGE_SIDE // 2 - 1} pixels, not {self.jitter}")
        if problems:
            raise ValueError("; ".join(problems))


def start_images(n: int, settings: AscentSettings) -> np.ndarray:
    """(n, 48, 48) float32 copies of ONE gray noise image drawn from `settings.seed`: every channel
    (or class) starts from the same image, so their patterns differ only by what they respond to."""
    rng = np.random.default_rng([settings.seed, 0])
    image = np.clip(GRAY + settings.noise * rng.standard_normal((IMAGE_SIDE, IMAGE_SIDE)), 0, PIXEL_MAX)
    return np.repeat(image.astype(np.float32)[None], n, axis=0)


def gradient_ascent(model: ModelProtocol, start: np.ndarray, objective: Objective,
                    settings: AscentSettings) -> np.ndarray:
    """Climb `objective` (one value per image) from `start` (N, 48, 48) for `settings.steps` steps,
    exactly one `model.input_gradient` request of all N images per step; returns float32 images,
    clipped to 0..255 after every step.

    One step: roll by the jitter, ask for the gradient, roll it back; move each image by
    step_size * gradient / RMS(gradient) (an image whose gradient is exactly zero stays); decay
    toward gray by l2; blur every blur_every steps; clip to 0..255.
    """
    images = np.array(start, dtype=np.float32)
    rng = np.random.default_rng([settings.seed, 1])
    for step in range(settings.steps):
        shift = (0, 0)
        if settings.jitter:
            shift = tuple(int(s) for s in rng.integers(-settings.jitter, settings.jitter + 1, size=2))
        _, gradient = model.input_gradient(np.roll(images, shift, axis=(1, 2)), objective)
        gradient = np.roll(np.asarray(gradient, dtype=np.float64), (-shift[0], -shift[1]), axis=(1, 2))
        if not np.all(np.isfinite(gradient)):
            raise ValueError(f"the model's input gradient is not finite at step {step + 1} of the gradient "
                             "ascent (NaN or inf in its forward or backward pass)")
        rms = np.sqrt(np.mean(gradient**2, axis=(1, 2), keepdims=True))
        scale = np.divide(settings.step_size, rms, out=np.zeros_like(rms), where=rms > 0)
        updated = images.astype(np.float64) + scale * gradient
        if settings.l2:
            updated = GRAY + (1.0 - settings.l2) * (updated - GRAY)
        if settings.blur_every and (step + 1) % settings.blur_every == 0:
            updated = gaussian_blur(updated, settings.blur_sigma)
        images = np.clip(updated, 0, PIXEL_MAX).astype(np.float32)
    return images


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """A separable Gaussian blur of (N, H, W) images, edges reflected, float64."""
    radius = max(1, int(np.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(np.asarray(images, dtype=np.float64), ((0, 0), (radius, radius), (radius, radius)),
                    mode="reflect")
    height, width = images.shape[1:]
    rows = sum(w * padded[:, radius + o:radius + o + height, :] for o, w in zip(offsets, kernel))
    return sum(w * rows[:, :, radius + o:radius + o + width] for o, w in zip(offsets, kernel))
