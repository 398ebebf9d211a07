"""The confusion matrix figure."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from grader.classes import Language, class_names
from grader.report.figures.drawing import new_figure


def confusion_matrix_figure(confusion: np.ndarray, language: Language = "en") -> Figure:
    """The row-normalized confusion matrix: rows are true classes, columns predictions, values in cells."""
    names = class_names(language)
    figure = new_figure(5.2, 4.6)
    axes = figure.add_subplot()
    image = axes.imshow(confusion, cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted" if language == "en" else "預測")
    axes.set_ylabel("true" if language == "en" else "實際")
    for row in range(confusion.shape[0]):
        for column in range(confusion.shape[1]):
            value = confusion[row, column]
            axes.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                      color="white" if value > 0.55 else "black")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    return figure
