"""The faces every question explains: one evaluation image per class."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.classes import NUM_CLASSES, Language, class_names
from grader.evaluate import Evaluation


@dataclass(frozen=True)
class ClassExamples:
    """One evaluation image per class present in the set: the first correctly classified one in the
    set's order, else the first of that class, with a note saying so."""

    indices: np.ndarray
    notes: tuple[str, ...]

    @classmethod
    def choose(cls, evaluation: Evaluation, language: Language = "en") -> ClassExamples:
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
