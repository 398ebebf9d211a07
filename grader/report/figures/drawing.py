"""What every figure shares: matplotlib's object API (no global pyplot state), fonts, PNG bytes."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from grader.escape import figure_text

# Noto Sans CJK draws both the Latin and the Traditional Chinese class names.
matplotlib.rcParams["font.family"] = ["Noto Sans CJK TC", "Noto Sans CJK JP", "DejaVu Sans"]
matplotlib.rcParams["svg.hashsalt"] = "xai-grader"  # stable ids, so the same figure gives the same bytes

PNG_COMPRESS_LEVEL = 3
"""zlib's level for the PNGs: the same pixels as the default (6) in under half the encoding time,
for files about a tenth larger."""


def new_figure(width: float, height: float) -> Figure:
    """A width x height inch figure at 100 dpi on an Agg canvas of its own, so that its
    tight_layout and its PNG share one renderer (and the text extents measured for the layout)
    instead of each making a throwaway one."""
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure) -> bytes:
    """The figure as an RGB PNG, drawn once, without metadata, so that the same figure gives the same
    bytes. RGB rather than savefig's RGBA: the figures are opaque, and WeasyPrint splits an alpha
    channel off into a second image of each figure it puts in the PDF."""
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(figure)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="png", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


class PictureGrid:
    """rows x columns pictures in one frameless Axes over the whole figure (or its top `height`
    inches), laid out in inches here rather than by tight_layout: one Axes per picture cost each
    figure its Axis and tick objects (21 for a saliency figure) and their measuring, about three
    quarters of its drawing time (issue 20). The Axes' data units are inches from the top left, so a
    picture's extent is its cell and text is placed beside it by font size.

    The first row may carry titles of `title_lines` lines at `title_size` points, the first column
    row labels at `label_size` points; `heading` reserves inches at the top for a title of the
    figure's own. Cells are square, as large as fit, and the grid is centred in what is left."""

    MARGIN = 0.08
    GAP = 0.14
    PAD = 0.05

    def __init__(self, figure: Figure, rows: int, columns: int, *, title_lines: int = 0, title_size: float = 9,
                 label_size: float | None = None, heading: float = 0.0, height: float | None = None) -> None:
        width, full_height = figure.get_size_inches()
        height = full_height if height is None else height
        self.axes = figure.add_axes((0.0, 1.0 - height / full_height, 1.0, height / full_height))
        self.axes.set_axis_off()
        self.axes.set_xlim(0.0, width)
        self.axes.set_ylim(height, 0.0)  # y down, as the pictures' rows are
        rows, columns = max(rows, 1), max(columns, 1)
        self.title_size, self.label_size = title_size, label_size
        titles = title_lines * title_size * 1.25 / 72 + self.PAD if title_lines else 0.0
        labels = label_size * 1.3 / 72 + self.PAD if label_size else 0.0
        across = width - 2 * self.MARGIN - labels - (columns - 1) * self.GAP
        down = height - 2 * self.MARGIN - heading - titles - (rows - 1) * self.GAP
        self.cell = max(min(across / columns, down / rows), 0.01)
        used_across = columns * self.cell + (columns - 1) * self.GAP + labels
        used_down = rows * self.cell + (rows - 1) * self.GAP + titles
        self.left = (width - used_across) / 2 + labels
        self.top = heading + self.MARGIN + (height - heading - 2 * self.MARGIN - used_down) / 2 + titles
        self._framed: set[tuple[int, int]] = set()

    def corner(self, row: int, column: int) -> tuple[float, float]:
        """The top left of a cell, in the grid's inches."""
        return self.left + column * (self.cell + self.GAP), self.top + row * (self.cell + self.GAP)

    def show(self, row: int, column: int, picture: np.ndarray, **imshow: object) -> None:
        """Draw `picture` as large as its cell allows, centred, its aspect kept (imshow's keywords:
        cmap, vmin, vmax, alpha); a second picture in the same cell is drawn over the first. Each
        drawn cell has a thin frame round its first picture."""
        x, y = self.corner(row, column)
        tall, wide = np.shape(picture)[:2]
        width, height = (self.cell, self.cell * tall / wide) if wide >= tall else (self.cell * wide / tall, self.cell)
        x, y = x + (self.cell - width) / 2, y + (self.cell - height) / 2  # centred, its aspect kept
        self.axes.imshow(picture, extent=(x, x + width, y + height, y), aspect="auto", **imshow)
        if (row, column) not in self._framed:
            self._framed.add((row, column))
            self.axes.add_patch(Rectangle((x, y), width, height, fill=False, linewidth=0.8, edgecolor="black",
                                          zorder=3))

    def title(self, column: int, text: str) -> None:
        """`text` centred above the first row's picture in `column`."""
        x, y = self.corner(0, column)
        self.axes.text(x + self.cell / 2, y - self.PAD, text, ha="center", va="bottom", fontsize=self.title_size)

    def row_label(self, row: int, text: str) -> None:
        """`text` upright, left of the first picture of `row`."""
        x, y = self.corner(row, 0)
        self.axes.text(x - self.PAD, y + self.cell / 2, text, rotation=90, ha="right", va="center",
                       fontsize=self.label_size or 9)


def map_grid(figure: Figure, maps: np.ndarray, layer: str, caption: str, cmap: str) -> None:
    """The maps in a near-square grid under the title "<layer>: <caption>"; `layer` is the student's
    name for it, made safe here for both filter figures."""
    count = len(maps)
    columns = int(np.ceil(np.sqrt(count))) or 1
    rows = int(np.ceil(count / columns)) or 1
    title_size = 10
    grid = PictureGrid(figure, rows, columns, heading=title_size * 1.6 / 72)
    for index, picture in enumerate(maps):  # the cells past the last map are left empty
        grid.show(*divmod(index, columns), picture, cmap=cmap)
    figure.suptitle(f"{figure_text(layer)}: {caption}", y=1.0 - PictureGrid.MARGIN / figure.get_size_inches()[1],
                    va="top", fontsize=title_size)
