"""LIME's figure: per class, the superpixels that speak for the label and against it."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from grader.classes import Language, class_names
from grader.explain.results import LimeExplanations
from grader.report.figures.drawing import PictureGrid, new_figure


def lime_figure(result: LimeExplanations, language: Language = "en", top: int = 5) -> Figure:
    """Per class: the face with the `top` superpixels that speak for the label (green) and against
    it (red), titled with the model's probability of the label."""
    names = class_names(language)
    columns = max(len(result.images), 1)
    figure = new_figure(1.5 * columns, 2.0)
    grid = PictureGrid(figure, 1, columns, title_lines=2, title_size=8)
    for column, (image, explanation) in enumerate(zip(result.images, result.explanations)):
        rgb = np.repeat(image[..., None] / 255.0, 3, axis=2)
        for segment_ids, colour in ((explanation.top_segments(top, "positive"), (0.1, 0.8, 0.2)),
                                    (explanation.top_segments(top, "negative"), (0.9, 0.15, 0.1))):
            region = np.isin(explanation.segments, segment_ids)
            rgb[region] = 0.55 * rgb[region] + 0.45 * np.array(colour)
        grid.show(0, column, rgb)
        grid.title(column, f"{names[explanation.label]}\np={explanation.probability:.2f}")
    return figure
