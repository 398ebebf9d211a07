"""Integrated Gradients over the model protocol, with Captum's quadrature rules: every interpolated
image of a call, the images and their baselines go as one `input_gradient` request (or requests of at
most `batch_size`)."""

from __future__ import annotations

import numpy as np

from grader.classes import IMAGE_SIDE
from grader.explain.base import AttributionMethod
from grader.explain.batching import GRADIENT_BATCH, check_batch_size, input_gradients
from grader.explain.pixels import check_inputs
from grader.protocol import ClassLogit, ModelProtocol

IG_METHODS: tuple[str, ...] = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")


class IntegratedGradients(AttributionMethod):
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

    name = "integrated_gradients"

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
        self.batch_size = check_batch_size(batch_size)
        self.last_delta: np.ndarray | None = None

    def step_sizes_and_alphas(self) -> tuple[np.ndarray, np.ndarray]:
        """The quadrature weights (float32, as Captum multiplies them) and points in [0, 1] (float64)."""
        return integration_rule(self.method, self.steps)

    def attribute(self, pixels: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(N, 48, 48) float32 attributions; also sets `last_delta`."""
        pixels, targets = check_inputs(self.model, pixels, targets)
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
        values, gradient = self._logit_gradients(batch, np.tile(targets, self.steps + 2))
        gradient = gradient[: self.steps * n].reshape(self.steps, n, IMAGE_SIDE, IMAGE_SIDE)
        total = (gradient * weights[:, None, None, None]).sum(axis=0, dtype=np.float32)
        attributions = (total * difference).astype(np.float32)
        end, start = values[self.steps * n: (self.steps + 1) * n], values[(self.steps + 1) * n:]
        self.last_delta = _delta(attributions, end, start)
        return attributions

    def convergence_delta(self, attributions: np.ndarray, pixels: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(N,) float32 ``sum(attributions_i) - (F(pixels_i) - F(baseline_i))`` for the class logit
        F of ``targets[i]`` (Captum's ``compute_convergence_delta``), with one request of 2N images."""
        pixels, targets = check_inputs(self.model, pixels, targets)
        attributions = np.asarray(attributions, dtype=np.float32)
        if attributions.shape != pixels.shape:
            raise ValueError(f"attributions shaped {attributions.shape} do not match pixels shaped {pixels.shape}")
        baseline = self._baseline_for(pixels)
        n = len(pixels)
        values, _ = self._logit_gradients(np.concatenate([pixels, baseline]), np.tile(targets, 2))
        return _delta(attributions, values[:n], values[n:])

    def _logit_gradients(self, pixels: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return input_gradients(self.model, pixels, targets, lambda classes: ClassLogit(classes=classes),
                               self.batch_size)

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


def _delta(attributions: np.ndarray, end: np.ndarray, start: np.ndarray) -> np.ndarray:
    total = attributions.reshape(len(attributions), -1).sum(axis=1, dtype=np.float64)
    return (total - (end.astype(np.float64) - start.astype(np.float64))).astype(np.float32)
