"""How the report's figures are drawn (issue 20): each figure is drawn once and encoded once, and the
shortcuts taken for speed leave every pixel as the plain matplotlib calls draw it."""

from __future__ import annotations

import gc
import io

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from grader.report import artifacts
from grader.report.artifacts import Artifacts
from grader.report.figures.attribution import saliency_figure
from grader.report.figures.drawing import face_axes, new_figure, png_bytes, row_label
from grader.report.figures.filters import filter_patterns_figure

RNG = np.random.default_rng(0)
FACES = RNG.integers(0, 256, (3, 48, 48)).astype(np.uint8)
MAPS = RNG.random((3, 48, 48)).astype(np.float32)


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_a_tight_laid_out_figure_is_drawn_once_for_its_png(monkeypatch):
    draws = []
    real_draw = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda figure, renderer: draws.append(figure) or real_draw(figure, renderer))
    figure = saliency_figure(FACES, np.array([0, 3, 6]), MAPS)
    assert draws == []  # tight_layout measures the figure without drawing it
    png = png_bytes(figure)
    assert draws == [figure]
    assert _pixels(png).shape == (480, 450, 4)


def test_picture_axes_draw_the_pixels_of_plain_axes_without_ticks():
    def plain() -> Figure:
        figure = Figure(figsize=(3.0, 2.4), dpi=100)
        axes = figure.subplots(2, 2, squeeze=False)
        for axis in axes.flat:
            axis.set_xticks([])
            axis.set_yticks([])
        return figure

    def pictures() -> Figure:
        figure = new_figure(3.0, 2.4)
        face_axes(figure, 2, 2)
        return figure

    drawn = []
    for make in (plain, pictures):
        figure = make()
        axes = np.array(figure.axes).reshape(2, 2)
        for (row, column), face in zip(np.ndindex(2, 2), [*FACES, FACES[0]]):
            axes[row, column].imshow(face, cmap="gray", vmin=0, vmax=255)
            axes[row, column].set_title(f"face {row}{column}", fontsize=8)
        for row, text in enumerate(("face", "Grad-CAM (conv2)")):
            if make is plain:
                axes[row, 0].set_ylabel(text, fontsize=9)
            else:
                row_label(axes[row, 0], text, 9)
        figure.tight_layout()
        drawn.append(_pixels(png_bytes(figure)))
    assert drawn[0].shape == (240, 300, 4)
    assert np.array_equal(drawn[0], drawn[1])


def test_a_grid_of_maps_leaves_its_last_cells_empty():
    figure = filter_patterns_figure(RNG.random((7, 5, 5)), "conv1", np.ones(7))
    assert len(figure.axes) == 7  # a 3 x 3 grid: two cells without axes
    assert {axis.get_subplotspec().get_geometry()[:2] for axis in figure.axes} == {(3, 3)}
    assert _pixels(png_bytes(figure)).shape == (680, 640, 4)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_is_as_it_was_after_a_figure_drawn_or_failed(tmp_path, enabled):
    seen = []

    def figure() -> Figure:
        seen.append(gc.isenabled())
        return saliency_figure(FACES[:1], np.array([2]), MAPS[:1])

    def broken() -> Figure:
        seen.append(gc.isenabled())
        raise ValueError("Unknown symbol: \\undefined")

    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        written = Artifacts()
        assert artifacts._write_figure(written, tmp_path, "figures/saliency.png", figure)
        assert gc.isenabled() is enabled
        assert not artifacts._write_figure(written, tmp_path, "figures/broken.png", broken)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert seen == [False, False]  # paused while each figure is drawn
    assert (tmp_path / "figures" / "saliency.png").is_file() and not (tmp_path / "figures" / "broken.png").exists()
    assert len(written.errors) == 1 and "figures/broken.png could not be drawn" in written.errors[0].message
