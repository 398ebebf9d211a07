"""The report's questions as tasks over the model protocol: each picks its inputs, runs its
explanation method, and returns the arrays (arrays/<name>.npz) and figures (figures/<name>.png)
that the report shows. They hold no torch and no student code: only the protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure

from grader.classes import NUM_CLASSES, Language, class_names
from grader.data.faceset import FaceSet
from grader.evaluate import Evaluation
from grader.explain.classviz import ClassModelVisualization
from grader.explain.filters import FilterVisualization
from grader.explain.gradcam import GradCAM
from grader.explain.gradients import IntegratedGradients, Saliency, SmoothGrad
from grader.explain.lime import Lime, stack_explanations
from grader.protocol import ModelProtocol
from grader.report.figures import (class_model_figure, filter_outputs_figure, filter_patterns_figure, lime_figure,
                                   saliency_figure)
from grader.submission.spec import VisualizeSpec


@dataclass(frozen=True)
class TaskSettings:
    """How much work each task does; the defaults are the course's, `quick()` is for pre-checks."""

    lime_samples: int = 1000
    filter_steps: int = 64
    max_channels: int = 64
    classviz_steps: int = 200
    smoothgrad: bool = False
    seed: int = 0

    @classmethod
    def quick(cls) -> TaskSettings:
        """About a tenth of the work: the same figures, noisier, for a fast pre-check or a test."""
        return cls(lime_samples=100, filter_steps=16, classviz_steps=40)


@dataclass(frozen=True)
class TaskContext:
    """What every task may use: the model, the evaluation faces, one example per class, the settings."""

    model: ModelProtocol
    faces: FaceSet
    examples: ClassExamples
    settings: TaskSettings
    visualize: VisualizeSpec
    language: Language = "en"

    @property
    def images(self) -> np.ndarray:
        return self.faces.images[self.examples.indices]

    @property
    def labels(self) -> np.ndarray:
        return self.faces.labels[self.examples.indices]


@dataclass
class TaskOutput:
    """One task's arrays (written as arrays/<name>.npz) and figures (figures/<figure name>.png)."""

    name: str
    arrays: dict[str, np.ndarray]
    figures: dict[str, Figure]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ClassExamples:
    """One evaluation image per class present in the set: the first correctly classified one in the
    set's order, else the first of that class, with a note saying so."""

    indices: np.ndarray
    notes: tuple[str, ...]

    @classmethod
    def choose(cls, faces: FaceSet, evaluation: Evaluation, language: Language = "en") -> ClassExamples:
        names = class_names(language)
        indices, notes = [], []
        for label in range(NUM_CLASSES):
            of_class = np.flatnonzero(evaluation.labels == label)
            if len(of_class) == 0:
                notes.append(f"no evaluation image of class {names[label]}: it is left out")
                continue
            correct = of_class[evaluation.predictions[of_class] == label]
            if len(correct):
                indices.append(int(correct[0]))
            else:
                indices.append(int(of_class[0]))
                notes.append(f"the model classifies no {names[label]} image correctly: a misclassified one is shown")
        return cls(indices=np.array(indices, dtype=np.int64), notes=tuple(notes))


def saliency_task(context: TaskContext) -> TaskOutput:
    """Q1: |d cross-entropy / d pixels| toward the true label (SmoothGrad when settings ask for it)."""
    images, labels = context.images, context.labels
    smooth = context.settings.smoothgrad
    method = SmoothGrad(context.model, seed=context.settings.seed) if smooth else Saliency(context.model)
    maps = method.attribute(images.astype(np.float32), labels).astype(np.float32)
    figure = saliency_figure(images, labels, maps, context.language, "SmoothGrad" if smooth else "saliency")
    return TaskOutput("saliency", {"images": images, "labels": labels, "maps": maps}, {"saliency": figure},
                      list(context.examples.notes))


def filters_task(context: TaskContext) -> TaskOutput:
    """Q2: gradient ascent on the chosen layer's channels, and that layer's outputs for one face."""
    method = FilterVisualization(context.model, layer=context.visualize.filter_layer,
                                 max_channels=context.settings.max_channels, steps=context.settings.filter_steps,
                                 seed=context.settings.seed)
    result = method.visualize(context.images[0])
    figures = {"filters": filter_patterns_figure(result.patterns, result.layer, result.activation_gain),
               "filter_outputs": filter_outputs_figure(result.image, result.outputs, result.layer)}
    return TaskOutput("filters", result.arrays(), figures)


def lime_task(context: TaskContext) -> TaskOutput:
    """Q3: LIME on one image per class, for the image's own label."""
    images, labels = context.images, context.labels
    explanations = Lime(context.model, num_samples=context.settings.lime_samples, seed=context.settings.seed).explain(
        images.astype(np.float32), labels)
    return TaskOutput("lime", stack_explanations(images, explanations),
                      {"lime": lime_figure(images, explanations, context.language)}, list(context.examples.notes))


def freeform_task(context: TaskContext) -> TaskOutput:
    """Q4: the student's choice; class-model visualization by default."""
    choice = context.visualize.freeform
    if choice in ("integrated_gradients", "smoothgrad"):
        images, labels = context.images, context.labels
        method = (IntegratedGradients(context.model) if choice == "integrated_gradients"
                  else SmoothGrad(context.model, objective="class_logit", seed=context.settings.seed))
        maps = method.attribute(images.astype(np.float32), labels).astype(np.float32)
        title = "Integrated Gradients" if choice == "integrated_gradients" else "SmoothGrad"
        shown = np.abs(maps) if choice == "integrated_gradients" else maps
        return TaskOutput(choice, {"images": images, "labels": labels, "maps": maps},
                          {choice: saliency_figure(images, labels, shown, context.language, title)})
    if choice == "gradcam":
        images, labels = context.images, context.labels
        method = GradCAM(context.model)
        maps = method.attribute(images.astype(np.float32), labels)
        arrays = {"images": images, "labels": labels, "maps": maps, "layer": np.array(method.layer)}
        return TaskOutput("gradcam", arrays,
                          {"gradcam": saliency_figure(images, labels, maps, context.language,
                                                      f"Grad-CAM ({method.layer})")})
    result = ClassModelVisualization(context.model, steps=context.settings.classviz_steps,
                                     seed=context.settings.seed).visualize()
    return TaskOutput("classviz", result.arrays(),
                      {"classviz": class_model_figure(result.images, result.target_prob, context.language)})


QUESTION_TASKS: dict[str, Callable[[TaskContext], TaskOutput]] = {
    "q1": saliency_task, "q2": filters_task, "q3": lime_task, "q4": freeform_task}
