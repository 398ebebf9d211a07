"""How the report's figures are drawn (issue 20): each figure is drawn once and encoded once; pictures
are laid out in one Axes by PictureGrid, each in its cell, with no text over a picture or off the figure."""

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
from grader.report.figures.confusion import confusion_matrix_figure
from grader.report.figures.drawing import PictureGrid, new_figure, png_bytes
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
    figure = confusion_matrix_figure(np.eye(7))
    assert draws == []  # tight_layout measures the figure without drawing it
    png = png_bytes(figure)
    assert draws == [figure]
    assert _pixels(png).shape == (460, 520, 3)


def test_a_figure_is_an_opaque_rgb_png_and_the_same_figure_gives_the_same_bytes():
    first, second = (png_bytes(saliency_figure(FACES, np.array([0, 3, 6]), MAPS)) for _ in range(2))
    assert first == second
    with Image.open(io.BytesIO(first)) as image:
        assert image.mode == "RGB" and image.size == (450, 480) and not image.info  # no metadata


def test_a_picture_fills_its_cell_and_a_second_one_is_drawn_over_it():
    figure = new_figure(3.0, 2.0)
    grid = PictureGrid(figure, 2, 3)
    grid.show(1, 2, np.full((48, 48), 200, dtype=np.uint8), cmap="gray", vmin=0, vmax=255)
    grid.show(0, 0, np.zeros((48, 48)), cmap="gray", vmin=0, vmax=1)
    grid.show(0, 0, np.ones((48, 48)), cmap="gray", vmin=0, vmax=1, alpha=0.5)
    pixels = _pixels(png_bytes(figure))
    for (row, column), value in (((1, 2), 200), ((0, 0), 127)):
        x, y = (round(inches * 100) for inches in grid.corner(row, column))
        inside = pixels[y + 3:y + round(grid.cell * 100) - 3, x + 3:x + round(grid.cell * 100) - 3]
        assert inside.size and np.all(np.abs(inside.astype(int) - value) <= 1), (row, column)
    x, y = (round(inches * 100) for inches in grid.corner(0, 1))  # a cell with no picture stays white
    assert np.all(pixels[y + 3:y + 20, x + 3:x + 20] == 255)


def test_a_picture_that_is_not_square_keeps_its_aspect_centred_in_its_cell():
    figure = new_figure(2.0, 2.0)
    grid = PictureGrid(figure, 1, 1)
    grid.show(0, 0, np.zeros((24, 48)), cmap="gray", vmin=0, vmax=1)
    dark = np.argwhere(_pixels(png_bytes(figure))[..., 0] < 128)
    height, width = dark.max(axis=0) - dark.min(axis=0) + 1
    assert abs(width - 2 * height) <= 3
    x, y = grid.corner(0, 0)
    assert abs((dark[:, 0].min() + dark[:, 0].max()) / 2 - (y + grid.cell / 2) * 100) <= 2


@pytest.mark.parametrize("language", ["en", "zh-TW"])
def test_no_title_or_label_of_a_picture_figure_overlaps_a_picture_or_leaves_the_figure(language):
    faces = RNG.integers(0, 256, (7, 48, 48)).astype(np.uint8)
    maps = RNG.random((7, 48, 48)).astype(np.float32)
    figure = saliency_figure(faces, np.arange(7), maps, language, title="Grad-CAM (features.conv_block_3)")
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    whole = figure.bbox
    pictures = [image.get_window_extent(renderer) for image in figure.axes[0].images]
    texts = [text.get_window_extent(renderer) for text in figure.axes[0].texts]
    assert len(pictures) == 28 and len(texts) == 10  # 7 titles, 3 row labels
    for text in texts:
        assert whole.x0 <= text.x0 and text.x1 <= whole.x1 and whole.y0 <= text.y0 and text.y1 <= whole.y1
        assert not any(text.overlaps(picture) for picture in pictures)


def test_a_grid_of_maps_leaves_its_last_cells_empty():
    figure = filter_patterns_figure(RNG.random((7, 5, 5)), "conv1", np.ones(7))
    assert len(figure.axes) == 1 and len(figure.axes[0].images) == 7  # a 3 x 3 grid: two cells empty
    assert _pixels(png_bytes(figure)).shape == (680, 640, 3)


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
