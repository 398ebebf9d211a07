"""SmoothGrad over the model protocol: `Saliency` averaged over noisy copies of each face, all the
copies of a call sent as one `input_gradient` request (or requests of at most `batch_size`)."""

from __future__ import annotations

import numpy as np

from grader.classes import IMAGE_SIDE
from grader.explain.base import AttributionMethod
from grader.explain.batching import GRADIENT_BATCH, check_batch_size
from grader.explain.pixels import check_inputs, check_pixels
from grader.explain.saliency import ObjectiveName, check_objective, saliency_maps
from grader.protocol import ModelProtocol


class SmoothGrad(AttributionMethod):
    """SmoothGrad (Smilkov, Thorat, Kim, Viegas & Wattenberg 2017, "SmoothGrad: removing noise by
    adding noise", arXiv:1706.03825): the saliency map averaged over noisy copies of the image.

    The map of image i is ``mean_s |d objective / d pixels| (pixels_i + eps_s,i * sigma_i)`` over
    ``samples`` copies, as Captum's ``NoiseTunnel(Saliency(f)).attribute(..., nt_type="smoothgrad",
    abs=True)`` (the absolute value is taken per sample, before the mean; ``absolute=False``
    averages the signed gradients, the paper's formula before visualization).

    The noise, so that anyone can regenerate it::

        rng = np.random.default_rng(seed)
        eps = rng.standard_normal((samples, N, 48, 48), dtype=np.float32)
        sigma = (noise * (pixels.max(axis=(1, 2)) - pixels.min(axis=(1, 2)))).astype(np.float32)  # (N,)
        noisy = pixels[None] + eps * sigma[None, :, None, None]        # (samples, N, 48, 48)

    - The noise level is the paper's ``sigma / (x_max - x_min)``, with the range taken over each
      image's own raw pixels (the paper recommends 10-20 %; the default is 15 %). A flat image
      (max == min) therefore gets no noise.
    - The noisy pixels are not clipped to 0..255 (neither the paper nor Captum clips).
    - A fresh generator is seeded on every call, so the same seed, images and settings give the
      same map every time; the noise of image i depends on the batch size N (it is drawn for the
      whole batch at once).
    - ``noise=0`` gives `Saliency` with the same objective (up to float rounding: the copies go to the
      model as a larger batch).
    - A 3-channel model: the noise is added to the gray face, which then goes to every channel, and
      each sample's map is the maximum over channels of |gradient|, as for `Saliency`.

    The objective is as for `Saliency` (default the report's cross-entropy toward the targets).
    All ``samples x N`` noisy images go to the model as one request (or requests of at most
    ``batch_size`` images).
    """

    name = "smoothgrad"

    def __init__(self, model: ModelProtocol, samples: int = 25, noise: float = 0.15, seed: int = 0,
                 objective: ObjectiveName = "cross_entropy", absolute: bool = True,
                 batch_size: int = GRADIENT_BATCH) -> None:
        super().__init__(model)
        if int(samples) != samples or samples < 1:
            raise ValueError(f"samples must be a positive integer, got {samples!r}")
        if not np.isfinite(noise) or noise < 0:
            raise ValueError(f"noise must be a finite number >= 0 (a fraction of each image's range), got {noise!r}")
        self.samples = int(samples)
        self.noise = float(noise)
        self.seed = seed
        self.objective = check_objective(objective)
        self.absolute = bool(absolute)
        self.batch_size = check_batch_size(batch_size)

    def noisy_copies(self, pixels: np.ndarray) -> np.ndarray:
        """The (samples, N, 48, 48) float32 noisy images that `attribute` explains (see the class doc)."""
        pixels = check_pixels(pixels)
        rng = np.random.default_rng(self.seed)
        eps = rng.standard_normal((self.samples, *pixels.shape), dtype=np.float32)
        sigma = (self.noise * (pixels.max(axis=(1, 2)) - pixels.min(axis=(1, 2)))).astype(np.float32)
        return pixels[None] + eps * sigma[None, :, None, None]

    def attribute(self, pixels: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(N, 48, 48) float32 maps for raw (N, 48, 48) pixels and (N,) integer targets."""
        pixels, targets = check_inputs(self.model, pixels, targets)
        n = len(pixels)
        if n == 0:
            return np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), np.float32)
        noisy = self.noisy_copies(pixels).reshape(self.samples * n, IMAGE_SIDE, IMAGE_SIDE)
        gradient = saliency_maps(self.model, noisy, np.tile(targets, self.samples), self.objective, self.absolute,
                                 self.batch_size)
        gradient = gradient.reshape(self.samples, n, IMAGE_SIDE, IMAGE_SIDE)
        # Accumulate in float64: the mean of identical maps is that map, to the bit.
        return gradient.mean(axis=0, dtype=np.float64).astype(np.float32)
