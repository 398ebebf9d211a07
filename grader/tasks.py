"""The report's questions as tasks over the model protocol: each picks its inputs, runs its
explanation method, and returns the arrays (arrays/<name>.npz) and figures (figures/<name>.png)
that the report shows. They hold no torch and no student code: only the protocol."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure

from grader.classes import NUM_CLASSES, Language, class_names
from grader.data.faceset import FaceSet
from grader.evaluate import Evaluation
from grader.explain.gradients import Saliency, SmoothGrad
from grader.explain.lime import Lime, stack_explanations
from grader.protocol import ModelProtocol
from grader.report.figures import lime_figure, saliency_figure


@dataclass(frozen=True)
class TaskSettings:
    """How much work each task does; the defaults are the course's, tests use smaller ones."""

    lime_samples: int = 1000
    smoothgrad: bool = False
    seed: int = 0


@dataclass
class TaskOutput:
    arrays: dict[str, np.ndarray]
    figure: Figure
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


def saliency_task(model: ModelProtocol, faces: FaceSet, examples: ClassExamples, settings: TaskSettings,
                  language: Language = "en") -> TaskOutput:
    """Q1: |d cross-entropy / d pixels| toward the true label (SmoothGrad when settings ask for it)."""
    images = faces.images[examples.indices]
    labels = faces.labels[examples.indices]
    method = SmoothGrad(model, seed=settings.seed) if settings.smoothgrad else Saliency(model)
    maps = method.attribute(images.astype(np.float32), labels).astype(np.float32)
    arrays = {"images": images, "labels": labels, "maps": maps}
    title = "SmoothGrad" if settings.smoothgrad else "saliency"
    return TaskOutput(arrays, saliency_figure(images, labels, maps, language, title), list(examples.notes))


def lime_task(model: ModelProtocol, faces: FaceSet, examples: ClassExamples, settings: TaskSettings,
              language: Language = "en") -> TaskOutput:
    """Q3: LIME on one image per class, for the image's own label."""
    images = faces.images[examples.indices]
    labels = faces.labels[examples.indices]
    explanations = Lime(model, num_samples=settings.lime_samples, seed=settings.seed).explain(
        images.astype(np.float32), labels)
    arrays = stack_explanations(images, explanations)
    return TaskOutput(arrays, lime_figure(images, explanations, language), list(examples.notes))
