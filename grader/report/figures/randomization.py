"""Cascading randomization (Adebayo et al. 2018, "Sanity checks for saliency maps", Fig. 2): two faces'
saliency maps as the model's layers are re-initialized from the output down, and the mean rank
correlation with the model's own maps against the number of layers re-initialized."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from grader.classes import Language, class_names
from grader.escape import figure_text
from grader.explain.results import AttributionMaps
from grader.report.figures.drawing import PictureGrid, new_figure
from grader.scoring.measurements import Cascade

SHOWN_FACES = 2
FIGURE_WIDTH, FIGURE_HEIGHT = 10.5, 5.3
PICTURES_HEIGHT = 0.35 + 0.98 * SHOWN_FACES
"""Inches at the top for the faces' rows and their titles; the plot takes the rest."""
CAPTION = {"en": "Cascading randomization (Adebayo et al. 2018): the saliency maps as the layers are re-initialized "
                 "from the output down; a map that explains the model should stop looking like its own (low rank "
                 "correlation).",
           "zh-TW": "逐層隨機化（Adebayo et al. 2018）：由輸出層往下逐層重新初始化權重時的顯著圖；能解釋模型的顯著圖應隨之改變（秩相關變低）。"}


def randomization_figure(cascade: Cascade, saliency: AttributionMaps, language: Language = "en") -> Figure:
    """Top rows: up to two faces, their map on the model, then at each stage (titled with the number
    of layers re-initialized and the lowest of them, student text); bottom: the mean Spearman rank
    correlation with the model's map per stage (1 with no layer re-initialized), each face's in gray."""
    names = class_names(language)
    faces = min(SHOWN_FACES, len(saliency.images))
    stages = len(cascade.randomized_layers)
    columns = stages + 2
    figure = new_figure(FIGURE_WIDTH, FIGURE_HEIGHT)  # one size for any number of stages (at most 8, 10 columns)
    grid = PictureGrid(figure, faces, columns, title_lines=2, title_size=6, label_size=8,
                       height=PICTURES_HEIGHT)
    for row in range(faces):
        grid.show(row, 0, saliency.images[row], cmap="gray", vmin=0, vmax=255)
        grid.row_label(row, names[int(saliency.labels[row])])
        for column, panel in enumerate([saliency.maps[row], *cascade.maps[:, row]], start=1):
            magnitude = np.abs(panel)
            grid.show(row, column, magnitude / (magnitude.max() or 1.0), cmap="inferno", vmin=0, vmax=1)
    for column in range(1, columns):
        grid.title(column, _stage_title(cascade, column - 1, language))
    plot = figure.add_axes(_plot_rectangle())
    layers = np.concatenate([[0], cascade.randomized_layers])
    per_face = np.vstack([np.ones((1, cascade.correlation.shape[1])), cascade.correlation])
    plot.plot(layers, per_face, color="0.75", linewidth=0.8)
    plot.plot(layers, per_face.mean(axis=1), color="C3", marker="o", linewidth=2.0, label="mean")
    plot.set_xticks(layers)
    plot.set_ylim(-0.2, 1.05)
    plot.axhline(0.0, color="0.5", linewidth=0.6, linestyle=":")
    plot.set_xlabel("layers re-initialized, from the output" if language == "en" else "由輸出層起重新初始化的層數",
                    fontsize=8)
    plot.set_ylabel("rank correlation" if language == "en" else "秩相關", fontsize=8)
    plot.tick_params(labelsize=7)
    return figure


def _plot_rectangle() -> tuple[float, float, float, float]:
    """Where the correlation plot goes below the pictures, in figure fractions: room on the left
    and below for its tick labels and axis labels."""
    left, right, bottom, gap = 0.7, 0.15, 0.5, 0.12
    return (left / FIGURE_WIDTH, bottom / FIGURE_HEIGHT, 1 - (left + right) / FIGURE_WIDTH,
            (FIGURE_HEIGHT - PICTURES_HEIGHT - gap - bottom) / FIGURE_HEIGHT)


def _stage_title(cascade: Cascade, index: int, language: Language) -> str:
    """"model", or "top <k> layers" over "down to <the lowest of them>" (a Sequential's layers are
    named by number, so the count and the name need their words)."""
    if index == 0:
        return "model" if language == "en" else "模型"
    count, lowest = int(cascade.randomized_layers[index - 1]), figure_text(cascade.lowest_layer[index - 1], 16)
    if language == "en":
        return f"top {count} layer{'s' if count > 1 else ''}\ndown to {lowest}"
    return f"上層 {count} 層\n至 {lowest}"
