"""Filter visualization's two figures: the patterns gradient ascent found, and one face's outputs."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from grader.report.figures.drawing import map_grid, new_figure


def filter_patterns_figure(patterns: np.ndarray, layer: str, gain: np.ndarray) -> Figure:
    """The grid of patterns that maximize each channel's mean activation."""
    figure = new_figure(6.4, 6.8)
    map_grid(figure, patterns, layer, f"patterns by gradient ascent (median activation gain "
                                      f"{float(np.median(gain)):.2f})", "gray")
    return figure


def filter_outputs_figure(outputs: np.ndarray, layer: str) -> Figure:
    """The grid of the layer's activation maps for one evaluation face."""
    figure = new_figure(6.4, 6.8)
    map_grid(figure, outputs, layer, "filter outputs for one face", "viridis")
    return figure
