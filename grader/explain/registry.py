"""Every explanation method by its name: the names a rubric, a submission's `visualize.freeform`,
the questions (grader.questions.methods) and the arrays use, each with its class and the type of its
result.

Importing this module imports the methods' modules, which import numpy and the model protocol
only: no torch, lime, scikit-image, scikit-learn or matplotlib (LIME imports its libraries when it
runs), so that validating rubric.yaml's `method` names stays cheap. submission.yaml's schema
(grader.submission.spec, a layer below) writes the free-form names out; a test checks they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from grader.explain.base import AttributionMethod, Visualization
from grader.explain.class_model import ClassModelVisualization
from grader.explain.filters import FilterVisualization
from grader.explain.gradcam import GradCAM
from grader.explain.integrated_gradients import IntegratedGradients
from grader.explain.lime import Lime
from grader.explain.results import AttributionMaps, ClassImages, FilterPatterns, LimeExplanations
from grader.explain.saliency import Saliency
from grader.explain.smoothgrad import SmoothGrad


@dataclass(frozen=True)
class MethodInfo:
    """name: the registry name (the class's `name`); cls: the method's class; result_type: what its
    `explain` or `visualize` returns; kind: "attribution" (`explain(pixels, targets)`, one map per
    face) or "visualization" (`visualize(...)`, images synthesized from the model)."""

    name: str
    cls: type[AttributionMethod] | type[Visualization]
    result_type: type
    kind: Literal["attribution", "visualization"]


METHODS: dict[str, MethodInfo] = {info.name: info for info in (
    MethodInfo("saliency", Saliency, AttributionMaps, "attribution"),
    MethodInfo("smoothgrad", SmoothGrad, AttributionMaps, "attribution"),
    MethodInfo("integrated_gradients", IntegratedGradients, AttributionMaps, "attribution"),
    MethodInfo("gradcam", GradCAM, AttributionMaps, "attribution"),
    MethodInfo("lime", Lime, LimeExplanations, "attribution"),
    MethodInfo("filters", FilterVisualization, FilterPatterns, "visualization"),
    MethodInfo("class_model", ClassModelVisualization, ClassImages, "visualization"),
)}
"""Every method, by name."""

FREEFORM_METHODS: tuple[str, ...] = ("class_model", "gradcam", "integrated_gradients", "smoothgrad")
"""The methods a submission.yaml may name as `visualize.freeform` (question 4's free choice)."""
