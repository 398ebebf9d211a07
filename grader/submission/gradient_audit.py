"""Verifying the gradients a model returns against its own outputs.

A submission controls what its model answers, and a gradient is just another answer: a model can
return honest logits and engineered input gradients (`real + (bump - bump.detach())` with a
face-part template adds the template's gradient and nothing to the value), answer differently
when gradients are enabled, or return noise once it notices that its weights were re-initialized
for the randomization test. Explanations can be manipulated this way while predictions stay the
same (Dombrowski et al. 2019, "Explanations can be manipulated and geometry is to blame", NeurIPS;
Heo, Joo & Moon 2019, "Fooling neural network interpretations via adversarial model manipulation",
NeurIPS). Every gradient-based method here (saliency, SmoothGrad, Integrated Gradients, Grad-CAM's
layer gradient, the gradient ascents of Q2 and Q4) reads gradients through the protocol, so the
check sits at the protocol: `AuditedModel` wraps a model and checks sampled rows of its gradient
answers against the model's own forward answers, which are what it is graded on.

For a checked row x with returned objective value f_g and gradient g:
- value: f_g must equal the objective computed from a logits (or, for a channel objective, an
  activations) request on the same x, within `value_tolerance` of the outputs' scale;
- directional derivatives: along the gradient's own direction v0 = g / rms(g) and along
  `random_directions` Gaussian directions v (each scaled to an RMS of one pixel level), the claimed
  <g, v> must match the central difference (f(x + e v) - f(x - e v)) / 2e from forward requests.
  Along v0 an added template shows at once (the outputs change by |r|^2/|g|, not |g|, for a real
  gradient r); along random directions a gradient with a part removed shows.
For Grad-CAM's layer gradient dS/dA, <dS/dA, (A(x + e v) - A(x - e v)) / 2e> must match the central
difference of the class logit S, and A must equal the activations request's.

The step e and the tolerances follow the dtype (`GradientCheckSettings.for_dtype`); the numbers
come from bench/gradient_checks.py (every request of every gradient-based method checked, on the
five loadable examples and their randomized copies). fp32 at e = 0.01 pixel levels: honest models
stay within 7 % (Grad-CAM's layer gradient on the residual example 15 %), values within 2e-6 of the
outputs' scale; faked gradients are off by 100 % or more. The tolerance is 35 % (directions) and
1e-3 (values). In bf16 (the fast profile, for pre-checks) forward differences are rounding and
curvature at any step (73 % on honest models along their own gradient), so only values (honest
within 0.0013, tolerance 0.01) and finiteness are checked there.

Which requests and rows are checked, and the random directions, come from a generator seeded by
the caller with something the model cannot see (the grader seeds it with a hash of the evaluation
labels): the first `always_first` requests of each kind, then each request with probability
`probability`, `rows` rows each. Limits: a model that remembers every input it was asked about
could answer later forward requests near them consistently with its fake gradient; a fresh
process for the checks would raise that bar.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from grader.protocol import ChannelMean, ClassLogit, CrossEntropy, ModelDescription, ModelProtocol, Objective
from grader.result import GradientCheckSummary
from grader.submission.errors import SubmissionError


@dataclass(frozen=True)
class GradientCheckSettings:
    """How gradients are checked (see the module docstring for the calibration).

    step: e, in pixel levels (0..255) of RMS over the image.
    own_direction: whether the gradient's own direction is checked.
    random_directions: random directions per checked row, besides the gradient's own.
    tolerance: the largest relative error of a directional derivative that passes.
    value_tolerance: the largest |value - value from the forward| over max(1, |outputs|).
    rows, always_first, probability: which rows and requests are checked.
    """

    step: float = 0.01
    own_direction: bool = True
    random_directions: int = 2
    tolerance: float = 0.35
    value_tolerance: float = 1e-3
    rounding: float = 8 * 2.0**-24
    rows: int = 8
    always_first: int = 2
    probability: float = 1 / 16

    @classmethod
    def for_dtype(cls, dtype: str) -> GradientCheckSettings:
        if dtype == "float32":
            return cls()
        # bf16 keeps 8 bits of mantissa: forward differences are rounding and curvature at any step
        # (bench/gradient_checks.py: up to 73 % on honest models along the gradient's own direction at
        # e = 0.3, worse at larger steps), so only values and finiteness are checked.
        return cls(own_direction=False, random_directions=0, value_tolerance=0.01)


@dataclass(frozen=True)
class GradientCheck:
    """One checked request. error: the worst relative error of a directional derivative over its
    rows (0 when none could be measured); value_gap: the worst value difference over the scale."""

    context: str
    request: str
    rows: int
    error: float
    value_gap: float
    passed: bool


@dataclass
class GradientAudit:
    """The checks of one submission, tagged with the context the pipeline is in."""

    settings: GradientCheckSettings
    seed: int
    context: str = ""
    checks: list[GradientCheck] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    @contextlib.contextmanager
    def within(self, context: str) -> Iterator[None]:
        """Tag the checks made inside with `context` (a question id, or "probes")."""
        previous, self.context = self.context, context
        try:
            yield
        finally:
            self.context = previous

    def should_check(self, request: str) -> bool:
        count = self._counts.get(request, 0)
        self._counts[request] = count + 1
        return count < self.settings.always_first or bool(self.rng.random() < self.settings.probability)

    def record(self, request: str, rows: int, error: float, value_gap: float) -> None:
        settings = self.settings
        passed = error <= settings.tolerance and value_gap <= settings.value_tolerance
        self.checks.append(GradientCheck(self.context, request, rows, float(error), float(value_gap), passed))

    def summaries(self) -> list[GradientCheckSummary]:
        """One summary per context, in the order the contexts were first checked."""
        contexts = list(dict.fromkeys(check.context for check in self.checks))
        return [self.summary(context) for context in contexts]

    def summary(self, context: str) -> GradientCheckSummary | None:
        checks = [check for check in self.checks if check.context == context]
        if not checks:
            return None
        return GradientCheckSummary(context=context, requests=len(checks), rows=sum(c.rows for c in checks),
                                    worst_error=round(max(c.error for c in checks), 6),
                                    worst_value_gap=float(f"{max(c.value_gap for c in checks):.3g}"),
                                    tolerance=self.settings.tolerance,
                                    value_tolerance=self.settings.value_tolerance,
                                    passed=all(c.passed for c in checks))


class AuditedModel(ModelProtocol):
    """`model`, with every gradient answer checked for finiteness and sampled rows checked against
    the model's forward answers (recorded in `audit`). Forward requests pass through unchanged."""

    def __init__(self, model: ModelProtocol, audit: GradientAudit) -> None:
        self.model = model
        self.audit = audit

    @property
    def output(self) -> str:
        return getattr(self.model, "output", "")

    def describe(self) -> ModelDescription:
        return self.model.describe()

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        return self.model.logits(pixels)

    def activations(self, pixels: np.ndarray, layer: str) -> np.ndarray:
        return self.model.activations(pixels, layer)

    def input_gradient(self, pixels: np.ndarray, objective: Objective) -> tuple[np.ndarray, np.ndarray]:
        values, gradient = self.model.input_gradient(pixels, objective)
        _require_finite(gradient, values, "input gradient")
        request = f"input_gradient:{type(objective).__name__}"
        rows = self._rows_to_check(request, len(pixels))
        if rows is not None:
            chosen = _subset(objective, rows)

            def ask(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                answer = self.model.input_gradient(faces, chosen)
                _require_finite(answer[1], answer[0], "input gradient")
                return answer

            self._check(request, np.asarray(pixels, np.float32)[rows], (values[rows], gradient[rows]), ask,
                        lambda faces, answer: self._check_input_gradient(faces, chosen, *answer))
        return values, gradient

    def layer_gradient(self, pixels: np.ndarray, layer: str, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        activations, gradient = self.model.layer_gradient(pixels, layer, classes)
        _require_finite(gradient, activations, f"gradient at layer '{layer}'")
        rows = self._rows_to_check("layer_gradient", len(pixels))
        if rows is not None:
            chosen = np.asarray(classes)[rows]

            def ask(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                answer = self.model.layer_gradient(faces, layer, chosen)
                _require_finite(answer[1], answer[0], f"gradient at layer '{layer}'")
                return answer

            self._check("layer_gradient", np.asarray(pixels, np.float32)[rows], (activations[rows], gradient[rows]),
                        ask, lambda faces, answer: self._check_layer_gradient(faces, layer, chosen, *answer))
        return activations, gradient

    def randomized(self, seed: int, top_layers: int) -> ModelProtocol:
        return AuditedModel(self.model.randomized(seed, top_layers), self.audit)

    def weights_fingerprint(self):  # noqa: ANN201  (grader.fingerprint.WeightsFingerprint)
        return self.model.weights_fingerprint()

    def close(self) -> None:
        self.model.close()

    def __getattr__(self, name: str):
        # Requests added to the protocol later (and the sandboxed model's extras) pass through.
        return getattr(self.model, name)

    # --- the checks ---------------------------------------------------------------------------

    def _rows_to_check(self, request: str, count: int) -> np.ndarray | None:
        """The rows of this request to check, or None when it is not one of the sampled requests."""
        if not count or not self.audit.should_check(request):
            return None
        take = min(self.audit.settings.rows, count)
        return np.sort(self.audit.rng.choice(count, size=take, replace=False))

    def _check(self, request: str, faces: np.ndarray, answer: tuple[np.ndarray, np.ndarray],
               ask: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
               measure: Callable[[np.ndarray, tuple[np.ndarray, np.ndarray]], tuple[float, float]]) -> None:
        """Measure the model's answer at `faces`; when it fails, measure again at faces a step away
        (`_jittered`, asked afresh), and record what was measured there."""
        error, gap = measure(faces, answer)
        if error > self.audit.settings.tolerance:
            moved = self._jittered(faces)
            error, moved_gap = measure(moved, ask(moved))
            gap = max(gap, moved_gap)
        self.audit.record(request, len(faces), error, gap)

    def _jittered(self, faces: np.ndarray) -> np.ndarray:
        """The faces moved by -1, 0 or +1 pixel level at random, within 0..255: a nearby point of the
        same kind (whole pixel values stay whole). Where the model is not differentiable at a face
        (max-pooling over a flat region ties, as on IG's black baseline, or a ReLU sits exactly at its
        kink) the directional derivatives differ from any gradient; a model whose gradients are real
        is differentiable a step away, a model that fakes them fakes them there too."""
        steps = self.audit.rng.integers(-1, 2, size=faces.shape).astype(np.float32)
        low, high = min(0.0, float(faces.min())), max(255.0, float(faces.max()))
        return np.clip(faces + steps, low, high)

    def _directions(self, gradient: np.ndarray) -> list[np.ndarray]:
        """The gradient's own direction (where it is not zero) and random ones, each of RMS 1 per row."""
        directions = [_unit_rms(gradient)] if self.audit.settings.own_direction else []
        for _ in range(self.audit.settings.random_directions):
            directions.append(_unit_rms(self.audit.rng.standard_normal(gradient.shape).astype(np.float32)))
        return directions

    def _floor(self, scale: float) -> float:
        """Directional derivatives the forward's rounding can fake: `rounding` relative errors of the
        outputs' scale over the step's width."""
        settings = self.audit.settings
        return settings.rounding * scale / (2 * settings.step)

    def _check_input_gradient(self, pixels: np.ndarray, objective: Objective, values: np.ndarray,
                              gradient: np.ndarray) -> tuple[float, float]:
        step = self.audit.settings.step
        directions = self._directions(gradient)
        probes = np.concatenate([pixels] + [pixels + sign * step * v for v in directions for sign in (1, -1)])
        outputs, scale = self._objective(probes, objective, len(directions) * 2 + 1)
        n = len(pixels)
        value_gap = float(np.max(np.abs(outputs[:n] - values))) / scale
        if not directions:
            return 0.0, value_gap
        claimed, measured = [], []
        for index, direction in enumerate(directions):
            plus = outputs[n * (1 + 2 * index): n * (2 + 2 * index)]
            minus = outputs[n * (2 + 2 * index): n * (3 + 2 * index)]
            measured.append((plus - minus) / (2 * step))
            claimed.append(_dot(gradient, direction))
        own_first = self.audit.settings.own_direction
        return _direction_error(np.stack(claimed, 1), np.stack(measured, 1), self._floor(scale), own_first), value_gap

    def _objective(self, probes: np.ndarray, objective: Objective, copies: int) -> tuple[np.ndarray, float]:
        """The objective of every probe from a forward request, float64, and the outputs' scale."""
        if isinstance(objective, ChannelMean):
            maps = self.model.activations(probes, objective.layer)
            channels = np.tile(np.asarray(objective.channels, np.int64), copies)
            picked = maps[np.arange(len(maps)), channels].reshape(len(maps), -1).astype(np.float64)
            rectified = np.where(picked >= 0, picked, objective.negative_slope * picked)
            return rectified.mean(axis=1), max(1.0, float(np.abs(picked).max(initial=0.0)))
        logits = self.model.logits(probes).astype(np.float64)
        scale = max(1.0, float(np.abs(logits).max(initial=0.0)))
        if isinstance(objective, ClassLogit):
            return logits[np.arange(len(logits)), np.tile(objective.classes, copies)], scale
        labels = np.tile(np.asarray(objective.labels, np.int64), copies)
        top = logits.max(axis=1, keepdims=True)
        log_sum = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        return log_sum - logits[np.arange(len(logits)), labels], scale

    def _check_layer_gradient(self, pixels: np.ndarray, layer: str, classes: np.ndarray, activations: np.ndarray,
                              gradient: np.ndarray) -> tuple[float, float]:
        settings = self.audit.settings
        step = settings.step
        # No own direction here (the input gradient is not asked for): one random direction more.
        count = settings.random_directions + 1 if settings.random_directions else 0
        directions = [_unit_rms(self.audit.rng.standard_normal(pixels.shape).astype(np.float32))
                      for _ in range(count)]
        probes = np.concatenate([pixels] + [pixels + sign * step * v for v in directions for sign in (1, -1)])
        maps = self.model.activations(probes, layer).astype(np.float64)
        n = len(pixels)
        scale = max(1.0, float(np.abs(maps).max(initial=0.0)))
        value_gap = float(np.max(np.abs(maps[:n] - activations), initial=0.0)) / scale
        if not directions:
            return 0.0, value_gap
        logits = self.model.logits(probes[n:]).astype(np.float64)
        picked = logits[np.arange(len(logits)), np.tile(np.asarray(classes, np.int64), 2 * len(directions))]
        claimed, measured = [], []
        for index in range(len(directions)):
            plus, minus = slice(n * 2 * index, n * (2 * index + 1)), slice(n * (2 * index + 1), n * (2 * index + 2))
            change = (maps[n:][plus] - maps[n:][minus]) / (2 * step)
            claimed.append(_dot(gradient, change))
            measured.append((picked[plus] - picked[minus]) / (2 * step))
        logit_scale = max(1.0, float(np.abs(logits).max(initial=0.0)))
        return (_direction_error(np.stack(claimed, 1), np.stack(measured, 1), self._floor(logit_scale), own_first=False),
                value_gap)


def _require_finite(gradient: np.ndarray, values: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(gradient.reshape(len(gradient), -1)).all(axis=1) | ~np.isfinite(
        np.asarray(values).reshape(len(values), -1)).all(axis=1)
    if bad.any():
        raise SubmissionError("request", f"the model's {what} is NaN or Inf for {int(bad.sum())} of {len(bad)} "
                                         "faces, so no explanation can be drawn from it: look for a division, log or "
                                         "sqrt in forward that reaches 0 or infinity (a NaN gradient with finite "
                                         "outputs often comes from sqrt(0) or x / x)")


def _subset(objective: Objective, rows: np.ndarray) -> Objective:
    if isinstance(objective, ClassLogit):
        return ClassLogit(classes=np.asarray(objective.classes)[rows])
    if isinstance(objective, CrossEntropy):
        return CrossEntropy(labels=np.asarray(objective.labels)[rows])
    return ChannelMean(layer=objective.layer, channels=np.asarray(objective.channels)[rows],
                       negative_slope=objective.negative_slope)


def _unit_rms(array: np.ndarray) -> np.ndarray:
    """Each row scaled to an RMS of 1; a row of zeros stays zero."""
    flat = array.reshape(len(array), -1).astype(np.float64)
    rms = np.sqrt(np.mean(flat**2, axis=1, keepdims=True))
    unit = np.divide(flat, rms, out=np.zeros_like(flat), where=rms > 0)
    return unit.reshape(array.shape).astype(np.float32)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64))


def _direction_error(claimed: np.ndarray, measured: np.ndarray, floor: float, own_first: bool) -> float:
    """The worst relative error of the directional derivatives (rows x directions): along the
    gradient's own direction (column 0 when `own_first`) row by row, along the random directions
    over all rows together (one row's random derivatives can all be near zero, where the forward's
    rounding decides). Differences below `floor` (the forward's rounding over the step) count as
    agreement."""
    errors = [0.0]
    if own_first:
        own_claimed, own_measured = claimed[:, 0], measured[:, 0]
        largest = np.maximum(np.maximum(np.abs(own_claimed), np.abs(own_measured)), floor)
        errors.append(float(np.max(np.abs(own_claimed - own_measured) / largest)))
        claimed, measured = claimed[:, 1:], measured[:, 1:]
    if claimed.size:
        largest = max(float(np.linalg.norm(claimed)), float(np.linalg.norm(measured)), floor)
        errors.append(float(np.linalg.norm(claimed - measured)) / largest)
    return max(errors)
