"""Gradient-based attributions over the model protocol: Saliency, SmoothGrad, Integrated Gradients.

After Captum's `attr` (one class per method, one `attribute()` entry), but written against
`grader.protocol.ModelProtocol` only: numpy in, numpy out, no torch here, so the same code runs on
an in-process and on a sandboxed model. Every gradient is with respect to the raw (N, 48, 48)
pixels in 0..255; the model's declared preprocessing (crop, channel repeat, scaling) lies inside
the model, and its gradient reaches the raw pixels through it.

Each `attribute()` call sends its images, and for SmoothGrad and Integrated Gradients all their
noisy or interpolated copies, as one `input_gradient` request, split into requests of at most
`batch_size` images when there are more (to bound the model's memory, in the sandbox's limits).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from grader.classes import IMAGE_SIDE
from grader.explain.base import Explainer
from grader.protocol import ClassLogit, CrossEntropy, ModelProtocol, Objective

GRADIENT_BATCH = 128
"""The most images one `input_gradient` request carries by default. A gradient request keeps every
activation for the backward pass, so it is smaller than the forward-only predict batch."""

ObjectiveName = Literal["cross_entropy", "class_logit"]
OBJECTIVES: tuple[str, ...] = ("cross_entropy", "class_logit")

IG_METHODS: tuple[str, ...] = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")


class Saliency(Explainer):
    """Vanilla gradient saliency (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional
    Networks: Visualising Image Classification Models and Saliency Maps", arXiv:1312.6034).

    The map of image i is ``|d objective_i / d pixels_i|``, on the raw (48, 48) pixels, float32.

    - ``objective="cross_entropy"`` (the report's choice): the cross-entropy of the logits toward
      ``targets[i]``, i.e. the gradient of the training loss at the true label. Its absolute value
      equals that of the negative loss ``log p(target | x)``. With ``absolute=False`` the sign is
      that of the loss: positive where a brighter pixel raises the loss.
    - ``objective="class_logit"``: the logit of ``targets[i]`` (the class score S_c of the paper;
      Captum's ``Saliency(forward).attribute(x, target=c, abs=...)``).

    The paper takes the maximum of |gradient| over colour channels, at the model's input. Raw faces
    have one channel, so that maximum is the identity for a gray model. A model that declares
    ``channels: 3`` is asked for the gradient of each of its three channels (the gray face repeated
    on each, (N, 3, 48, 48) pixels, see grader.protocol), and its map is the maximum over channels of
    their absolute values, as the paper and the course take it (Captum's Saliency on the 3-channel
    input, then the maximum over channels). With ``absolute=False`` the signed map is the gradient
    with respect to the gray face, the sum of the channel gradients (one gray pixel feeds all three).
    The model's normalization (scale, mean, std) is the same number for every channel, so the map at
    the raw pixels is the map at the model's input times one constant.
    """

    def __init__(self, model: ModelProtocol, objective: ObjectiveName = "cross_entropy", absolute: bool = True,
                 batch_size: int = GRADIENT_BATCH) -> None:
        super().__init__(model)
        self.objective = _objective_name(objective)
        self.absolute = bool(absolute)
        self.batch_size = _batch_size(batch_size)

    def attribute(self, pixels: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(N, 48, 48) float32 maps for raw (N, 48, 48) pixels and (N,) integer targets."""
        pixels, targets = _check_inputs(self.model, pixels, targets)
        if not self.absolute:
            return _input_gradient(self.model, pixels, targets, self.objective, self.batch_size)[1]
        return _channel_max(_input_gradient(self.model, _per_channel(self.model, pixels), targets, self.objective,
                                            self.batch_size)[1])


class SmoothGrad(Explainer):
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
        self.objective = _objective_name(objective)
        self.absolute = bool(absolute)
        self.batch_size = _batch_size(batch_size)

    def noisy_copies(self, pixels: np.ndarray) -> np.ndarray:
        """The (samples, N, 48, 48) float32 noisy images that `attribute` explains (see the class doc)."""
        pixels = _check_pixels(pixels)
        rng = np.random.default_rng(self.seed)
        eps = rng.standard_normal((self.samples, *pixels.shape), dtype=np.float32)
        sigma = (self.noise * (pixels.max(axis=(1, 2)) - pixels.min(axis=(1, 2)))).astype(np.float32)
        return pixels[None] + eps * sigma[None, :, None, None]

    def attribute(self, pixels: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(N, 48, 48) float32 maps for raw (N, 48, 48) pixels and (N,) integer targets."""
        pixels, targets = _check_inputs(self.model, pixels, targets)
        n = len(pixels)
        if n == 0:
            return np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), np.float32)
        noisy = self.noisy_copies(pixels).reshape(self.samples * n, IMAGE_SIDE, IMAGE_SIDE)
        if self.absolute:
            gradient = _channel_max(_input_gradient(self.model, _per_channel(self.model, noisy),
                                                    np.tile(targets, self.samples), self.objective, self.batch_size)[1])
        else:
            _, gradient = _input_gradient(self.model, noisy, np.tile(targets, self.samples), self.objective,
                                          self.batch_size)
        gradient = gradient.reshape(self.samples, n, IMAGE_SIDE, IMAGE_SIDE)
        # Accumulate in float64: the mean of identical maps is that map, to the bit.
        return gradient.mean(axis=0, dtype=np.float64).astype(np.float32)


class IntegratedGradients(Explainer):
    """Integrated Gradients (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep
    Networks", ICML, arXiv:1703.01365) of the class logit of ``targets[i]``::

        IG_i(x) = (x - x') * integral_0^1 dF(x' + a (x - x')) / dx da

    with ``x'`` the baseline in raw pixels (a number, default 0.0 = a black face; or an array
    (48, 48) or (N, 48, 48)) and F the target's logit (the `ClassLogit` objective).

    The integral is approximated exactly as Captum's ``IntegratedGradients(f).attribute(x,
    baselines, target, n_steps=steps, method=method)`` does it
    (``captum.attr._utils.approximation_methods.approximation_parameters``), so the two agree to
    float32 rounding on the same model: ``method="gausslegendre"`` (Captum's default) uses the
    ``steps``-point Gauss-Legendre rule mapped from [-1, 1] to [0, 1] (alphas ``(1 + nodes) / 2``,
    weights ``weights / 2``); the ``riemann_*`` methods use ``steps`` equal steps of 1/steps at the
    left ends, right ends, middles, or (trapezoid) ``linspace(0, 1, steps)`` with the two end
    weights halved. As in Captum, the interpolated images are ordered step-major, the weights are
    float32 and the attribution is ``(x - x') * sum_k w_k * grad_k``.

    The convergence delta (completeness: ``sum(IG_i) - (F(x_i) - F(x'_i))``, Captum's
    ``return_convergence_delta``) of the last call is kept in `last_delta` (N,) float32; F(x) and
    F(x') come with the same request as the interpolated images. `convergence_delta()` computes it
    for any attributions.
    """

    def __init__(self, model: ModelProtocol, steps: int = 50, baseline: float | np.ndarray = 0.0,
                 method: str = "gausslegendre", batch_size: int = GRADIENT_BATCH) -> None:
        super().__init__(model)
        if method not in IG_METHODS:
            raise ValueError(f"unknown integration method '{method}'; choose one of {', '.join(IG_METHODS)}")
        least = 1 if method == "gausslegendre" else 2
        if int(steps) != steps or steps < least:
            raise ValueError(f"steps must be an integer >= {least} for method '{method}', got {steps!r}")
        self.steps = int(steps)
        self.method = method
        self.baseline = baseline
        self.batch_size = _batch_size(batch_size)
        self.last_delta: np.ndarray | None = None

    def step_sizes_and_alphas(self) -> tuple[np.ndarray, np.ndarray]:
        """The quadrature weights (float32, as Captum multiplies them) and points in [0, 1] (float64)."""
        return integration_rule(self.method, self.steps)

    def attribute(self, pixels: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(N, 48, 48) float32 attributions; also sets `last_delta`."""
        pixels, targets = _check_inputs(self.model, pixels, targets)
        baseline = self._baseline_for(pixels)
        n = len(pixels)
        if n == 0:
            self.last_delta = np.zeros(0, np.float32)
            return np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), np.float32)
        weights, alphas = self.step_sizes_and_alphas()
        difference = pixels - baseline
        # Step-major, as Captum concatenates them: [a_0 * all images, a_1 * all images, ...],
        # then the images themselves and their baselines, whose logits give the delta.
        path = baseline[None] + alphas.astype(np.float32)[:, None, None, None] * difference[None]
        batch = np.concatenate([path.reshape(self.steps * n, IMAGE_SIDE, IMAGE_SIDE), pixels, baseline])
        values, gradient = _input_gradient(self.model, batch, np.tile(targets, self.steps + 2), "class_logit",
                                           self.batch_size)
        gradient = gradient[: self.steps * n].reshape(self.steps, n, IMAGE_SIDE, IMAGE_SIDE)
        total = (gradient * weights[:, None, None, None]).sum(axis=0, dtype=np.float32)
        attributions = (total * difference).astype(np.float32)
        end, start = values[self.steps * n: (self.steps + 1) * n], values[(self.steps + 1) * n:]
        self.last_delta = _delta(attributions, end, start)
        return attributions

    def convergence_delta(self, attributions: np.ndarray, pixels: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(N,) float32 ``sum(attributions_i) - (F(pixels_i) - F(baseline_i))`` for the class logit
        F of ``targets[i]`` (Captum's ``compute_convergence_delta``), with one request of 2N images."""
        pixels, targets = _check_inputs(self.model, pixels, targets)
        attributions = np.asarray(attributions, dtype=np.float32)
        if attributions.shape != pixels.shape:
            raise ValueError(f"attributions shaped {attributions.shape} do not match pixels shaped {pixels.shape}")
        baseline = self._baseline_for(pixels)
        n = len(pixels)
        values, _ = _input_gradient(self.model, np.concatenate([pixels, baseline]), np.tile(targets, 2),
                                    "class_logit", self.batch_size)
        return _delta(attributions, values[:n], values[n:])

    def _baseline_for(self, pixels: np.ndarray) -> np.ndarray:
        """The baseline as (N, 48, 48) float32: a number, one (48, 48) image, or one per image."""
        baseline = np.asarray(self.baseline, dtype=np.float32)
        if baseline.shape not in ((), (IMAGE_SIDE, IMAGE_SIDE), pixels.shape):
            raise ValueError(f"the baseline must be a number, (48, 48) or shaped like the pixels {pixels.shape}, "
                             f"got shape {baseline.shape}")
        return np.ascontiguousarray(np.broadcast_to(baseline, pixels.shape), dtype=np.float32)


def integration_rule(method: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Captum's step sizes (float32) and alphas (float64) for `method` with `steps` points."""
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (0.5 * weights).astype(np.float32), 0.5 * (1 + nodes)
    if method not in IG_METHODS:
        raise ValueError(f"unknown integration method '{method}'; choose one of {', '.join(IG_METHODS)}")
    sizes = np.full(steps, 1 / steps)
    if method == "riemann_trapezoid":
        sizes[0] /= 2
        sizes[-1] /= 2
        alphas = np.linspace(0, 1, steps)
    elif method == "riemann_left":
        alphas = np.linspace(0, 1 - 1 / steps, steps)
    elif method == "riemann_middle":
        alphas = np.linspace(1 / (2 * steps), 1 - 1 / (2 * steps), steps)
    else:  # riemann_right
        alphas = np.linspace(1 / steps, 1, steps)
    # Captum builds its riemann alphas with float32 torch.linspace: the same points to float32 rounding.
    return sizes.astype(np.float32), alphas.astype(np.float32).astype(np.float64)


# --- helpers ------------------------------------------------------------------------------


def _input_gradient(model: ModelProtocol, pixels: np.ndarray, targets: np.ndarray, objective: str,
                     batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Objective values (M,) and gradients (M, 48, 48), float32, in requests of at most batch_size."""
    values, gradients = [], []
    for start in range(0, len(pixels), batch_size):
        chunk = slice(start, start + batch_size)
        value, gradient = model.input_gradient(np.ascontiguousarray(pixels[chunk]),
                                               _objective(objective, targets[chunk]))
        values.append(np.asarray(value, dtype=np.float32).reshape(-1))
        gradients.append(np.asarray(gradient, dtype=np.float32))
    if not values:
        return np.zeros(0, np.float32), np.zeros((0, *pixels.shape[1:]), np.float32)
    values_all, gradients_all = np.concatenate(values), np.concatenate(gradients)
    if values_all.shape != (len(pixels),) or gradients_all.shape != pixels.shape:
        raise ValueError(f"the model answered {len(pixels)} images with values shaped {values_all.shape} and "
                         f"gradients shaped {gradients_all.shape}")
    return values_all, gradients_all


def _per_channel(model: ModelProtocol, pixels: np.ndarray) -> np.ndarray:
    """(N, C, 48, 48): the gray faces on each of the model's C input channels; (N, 48, 48) for a
    gray model, whose one channel needs no axis."""
    channels = int(model.describe().input.get("channels", 1))
    return pixels if channels == 1 else np.ascontiguousarray(np.repeat(pixels[:, None], channels, axis=1))


def _channel_max(gradient: np.ndarray) -> np.ndarray:
    """|gradient|, the maximum over the channel axis when there is one (Simonyan et al. 2014, Sec. 3.1)."""
    magnitude = np.abs(gradient)
    return magnitude.max(axis=1) if magnitude.ndim == 4 else magnitude


def _objective(name: str, targets: np.ndarray) -> Objective:
    return CrossEntropy(labels=targets) if name == "cross_entropy" else ClassLogit(classes=targets)


def _delta(attributions: np.ndarray, end: np.ndarray, start: np.ndarray) -> np.ndarray:
    total = attributions.reshape(len(attributions), -1).sum(axis=1, dtype=np.float64)
    return (total - (end.astype(np.float64) - start.astype(np.float64))).astype(np.float32)


def _objective_name(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective '{objective}'; choose one of {', '.join(OBJECTIVES)}")
    return objective


def _batch_size(batch_size: int) -> int:
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _check_pixels(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"pixels must be shaped (N, {IMAGE_SIDE}, {IMAGE_SIDE}), got {pixels.shape}")
    return np.ascontiguousarray(pixels, dtype=np.float32)


def _check_inputs(model: ModelProtocol, pixels: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 (N, 48, 48) pixels and int64 (N,) targets, each a class of the model."""
    pixels = _check_pixels(pixels)
    raw = np.asarray(targets)
    if raw.shape != (len(pixels),):
        raise ValueError(f"targets must be shaped ({len(pixels)},), one class per image, got {raw.shape}")
    if raw.size and not (np.issubdtype(raw.dtype, np.integer)
                         or (np.issubdtype(raw.dtype, np.floating) and np.all(np.mod(raw, 1) == 0))):
        raise ValueError(f"targets must be integer class indices, got {raw.dtype}")
    targets = raw.astype(np.int64)
    if targets.size:
        num_classes = model.describe().num_classes
        if targets.min() < 0 or targets.max() >= num_classes:
            raise ValueError(f"targets must be classes 0..{num_classes - 1}, got {sorted(set(targets.tolist()))}")
    return pixels, targets
