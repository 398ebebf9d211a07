"""Attribution maps: per class, the face, the map, and the map over the face."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from grader.classes import Language, class_names
from grader.escape import figure_text
from grader.explain.results import AttributionMaps
from grader.report.figures.drawing import PictureGrid, new_figure

SIGNED_SHOWN_AS_MAGNITUDE = ("integrated_gradients",)
"""Signed maps drawn as |map|: the figure's colour scale starts at 0."""


def attribution_figure(result: AttributionMaps, language: Language = "en") -> Figure:
    """The figure of an attribution method's maps, titled with the method (and Grad-CAM's layer)."""
    maps = np.abs(result.maps) if result.method in SIGNED_SHOWN_AS_MAGNITUDE else result.maps
    return saliency_figure(result.images, result.labels, maps, language, result.title)


def saliency_figure(images: np.ndarray, labels: np.ndarray, maps: np.ndarray, language: Language = "en",
                    title: str = "saliency") -> Figure:
    """Per class: the face, the map, and the map over the face (one column a class). `title` labels the
    map's row and may hold student text (Grad-CAM's layer name)."""
    names = class_names(language)
    title = figure_text(title)
    figure = new_figure(1.5 * max(len(images), 1), 4.8)
    grid = PictureGrid(figure, 3, len(images), title_lines=1, title_size=9, label_size=9)
    for column, (image, label, saliency) in enumerate(zip(images, labels, maps)):
        scaled = saliency / (saliency.max() or 1.0)
        grid.show(0, column, image, cmap="gray", vmin=0, vmax=255)
        grid.title(column, names[int(label)])
        grid.show(1, column, scaled, cmap="inferno", vmin=0, vmax=1)
        grid.show(2, column, image, cmap="gray", vmin=0, vmax=255)
        grid.show(2, column, scaled, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    for row, text in enumerate(("face", title, "overlay")):
        grid.row_label(row, text)
    return figure
