"""Class-model visualization: per class, the image gradient ascent built toward it."""

from __future__ import annotations

from matplotlib.figure import Figure

from grader.classes import Language, class_names
from grader.explain.results import ClassImages
from grader.report.figures.drawing import PictureGrid, new_figure


def class_model_figure(result: ClassImages, language: Language = "en") -> Figure:
    """Per class: the image gradient ascent built toward it, titled with its probability."""
    names = class_names(language)
    figure = new_figure(1.5 * len(result.images), 2.0)
    grid = PictureGrid(figure, 1, len(result.images), title_lines=2, title_size=8)
    for column, (image, probability) in enumerate(zip(result.images, result.target_prob)):
        grid.show(0, column, image, cmap="gray", vmin=0, vmax=255)
        grid.title(column, f"{names[column]}\np={probability:.2f}")
    return figure
