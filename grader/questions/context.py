"""What a question may use while it runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.data.faceset import FaceSet
from grader.protocol import ModelProtocol
from grader.questions.examples import ClassExamples
from grader.questions.settings import TaskSettings


@dataclass(frozen=True)
class QuestionContext:
    """The model, the evaluation faces, one example per class, the settings, and the student's two
    choices from submission.yaml's `visualize`: the layer whose filters Q2 shows (None: the first
    convolution) and the free-choice method (a name from grader.explain.registry.FREEFORM_METHODS)."""

    model: ModelProtocol
    faces: FaceSet
    examples: ClassExamples
    settings: TaskSettings
    filter_layer: str | None = None
    freeform: str = "class_model"

    @property
    def images(self) -> np.ndarray:
        return self.faces.images[self.examples.indices]

    @property
    def labels(self) -> np.ndarray:
        return self.faces.labels[self.examples.indices]
