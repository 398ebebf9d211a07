"""How a question runs each method of the registry (grader.explain.registry) from the settings: the
method's parameters, and which faces it explains. One entry per method name."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from grader.explain.class_model import ClassModelVisualization
from grader.explain.filters import FilterVisualization
from grader.explain.gradcam import GradCAM
from grader.explain.integrated_gradients import IntegratedGradients
from grader.explain.lime import Lime
from grader.explain.results import ExplanationResult
from grader.explain.saliency import Saliency
from grader.explain.smoothgrad import SmoothGrad
from grader.questions.context import QuestionContext


def saliency(context: QuestionContext) -> ExplanationResult:
    """|d cross-entropy / d pixels| toward the true label (SmoothGrad's when the settings ask)."""
    method = (SmoothGrad(context.model, seed=context.settings.seed) if context.settings.smoothgrad
              else Saliency(context.model))
    return method.explain(context.images.astype(np.float32), context.labels)


def smoothgrad(context: QuestionContext) -> ExplanationResult:
    """SmoothGrad of the class logit, as a free choice."""
    method = SmoothGrad(context.model, objective="class_logit", seed=context.settings.seed)
    return method.explain(context.images.astype(np.float32), context.labels)


def integrated_gradients(context: QuestionContext) -> ExplanationResult:
    return IntegratedGradients(context.model).explain(context.images.astype(np.float32), context.labels)


def gradcam(context: QuestionContext) -> ExplanationResult:
    return GradCAM(context.model).explain(context.images.astype(np.float32), context.labels)


def lime(context: QuestionContext) -> ExplanationResult:
    """LIME on one image per class, for the image's own label; again with the next seeds
    (settings.lime_seeds in all), so that its metrics can say how much the draw of perturbations moves them."""
    settings, pixels = context.settings, context.images.astype(np.float32)
    methods = [Lime(context.model, num_samples=settings.lime_samples, seed=settings.seed + offset)
               for offset in range(max(settings.lime_seeds, 1))]
    segments = methods[0].segment(pixels)  # superpixels have no randomness: one segmentation for every seed
    runs = [method.explain(pixels, context.labels, segments=segments) for method in methods]
    return runs[0].with_repeats(runs[1:])


def filters(context: QuestionContext) -> ExplanationResult:
    """Gradient ascent on the chosen layer's channels, and that layer's outputs for the first example."""
    settings = context.settings
    method = FilterVisualization(context.model, layer=context.filter_layer, max_channels=settings.max_channels,
                                 steps=settings.filter_steps, seed=settings.seed)
    return method.visualize(context.images[0])


def class_model(context: QuestionContext) -> ExplanationResult:
    method = ClassModelVisualization(context.model, steps=context.settings.class_model_steps, seed=context.settings.seed)
    return method.visualize()


RUNS: dict[str, Callable[[QuestionContext], ExplanationResult]] = {
    "saliency": saliency, "smoothgrad": smoothgrad, "integrated_gradients": integrated_gradients,
    "gradcam": gradcam, "lime": lime, "filters": filters, "class_model": class_model}
"""Every method of grader.explain.registry.METHODS, by name (a test checks they agree)."""
