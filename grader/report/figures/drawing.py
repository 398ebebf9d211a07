"""What every figure shares: matplotlib's object API (no global pyplot state), fonts, PNG bytes."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from grader.escape import figure_text

# Noto Sans CJK draws both the Latin and the Traditional Chinese class names.
matplotlib.rcParams["font.family"] = ["Noto Sans CJK TC", "Noto Sans CJK JP", "DejaVu Sans"]
matplotlib.rcParams["svg.hashsalt"] = "xai-grader"  # stable ids, so the same figure gives the same bytes


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG; metadata is dropped so that the same figure gives the same bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def face_axes(figure: Figure, rows: int, columns: int):
    """A rows x columns grid of axes without ticks."""
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    return axes


def map_grid(figure: Figure, maps: np.ndarray, layer: str, caption: str, cmap: str) -> None:
    """The maps in a near-square grid, titled "<layer>: <caption>"; `layer` is the student's name for
    it, made safe here for both filter figures."""
    count = len(maps)
    columns = int(np.ceil(np.sqrt(count))) or 1
    rows = int(np.ceil(count / columns)) or 1
    axes = face_axes(figure, rows, columns)
    for index, axis in enumerate(axes.flat):
        if index < count:
            axis.imshow(maps[index], cmap=cmap)
        else:
            axis.set_visible(False)
    figure.suptitle(f"{figure_text(layer)}: {caption}", fontsize=10)
