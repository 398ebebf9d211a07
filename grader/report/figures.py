"""Figures for the report, drawn with matplotlib's object API (no global pyplot state).

Student text reaches a figure only as a layer's name (the filter layer, Grad-CAM's layer in the
saliency row's label). The functions that receive it pass it through `figure_text` once, where it
arrives: matplotlib would parse `$...$` as mathtext and raise on an unknown command while the figure
is drawn. Class names and the grader's own words are trusted and drawn as they are.
"""

from __future__ import annotations

import io

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from grader.classes import Language, class_names
from grader.escape import figure_text

# Noto Sans CJK draws both the Latin and the Traditional Chinese class names.
matplotlib.rcParams["font.family"] = ["Noto Sans CJK TC", "Noto Sans CJK JP", "DejaVu Sans"]
matplotlib.rcParams["svg.hashsalt"] = "xai-grader"  # stable ids, so the same figure gives the same bytes


def confusion_matrix_figure(confusion: np.ndarray, language: Language = "en") -> Figure:
    """The row-normalized confusion matrix: rows are true classes, columns predictions, values in cells."""
    names = class_names(language)
    figure = Figure(figsize=(5.2, 4.6), dpi=100)
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


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG; metadata is dropped so that the same figure gives the same bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _face_axes(figure: Figure, rows: int, columns: int):
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    return axes


def saliency_figure(images: np.ndarray, labels: np.ndarray, maps: np.ndarray, language: Language = "en",
                    title: str = "saliency") -> Figure:
    """Per class: the face, the map, and the map over the face (one column a class). `title` labels the
    map's row and may hold student text (Grad-CAM's layer name)."""
    names = class_names(language)
    title = figure_text(title)
    figure = Figure(figsize=(1.5 * max(len(images), 1), 4.8), dpi=100)
    axes = _face_axes(figure, 3, max(len(images), 1))
    for column, (image, label, saliency) in enumerate(zip(images, labels, maps)):
        scaled = saliency / (saliency.max() or 1.0)
        axes[0, column].imshow(image, cmap="gray", vmin=0, vmax=255)
        axes[0, column].set_title(names[int(label)], fontsize=9)
        axes[1, column].imshow(scaled, cmap="inferno", vmin=0, vmax=1)
        axes[2, column].imshow(image, cmap="gray", vmin=0, vmax=255)
        axes[2, column].imshow(scaled, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    for row, text in enumerate(("face", title, "overlay")):
        axes[row, 0].set_ylabel(text, fontsize=9)
    figure.tight_layout()
    return figure


def lime_figure(images: np.ndarray, explanations: list, language: Language = "en", top: int = 5) -> Figure:
    """Per class: the face with the `top` superpixels that speak for the label (green) and against
    it (red), titled with the model's probability of the label."""
    names = class_names(language)
    columns = max(len(images), 1)
    figure = Figure(figsize=(1.5 * columns, 2.0), dpi=100)
    axes = _face_axes(figure, 1, columns)
    for column, (image, explanation) in enumerate(zip(images, explanations)):
        rgb = np.repeat(image[..., None] / 255.0, 3, axis=2)
        for segment_ids, colour in ((explanation.top_segments(top, "positive"), (0.1, 0.8, 0.2)),
                                    (explanation.top_segments(top, "negative"), (0.9, 0.15, 0.1))):
            region = np.isin(explanation.segments, segment_ids)
            rgb[region] = 0.55 * rgb[region] + 0.45 * np.array(colour)
        axes[0, column].imshow(rgb)
        axes[0, column].set_title(f"{names[explanation.label]}\np={explanation.probability:.2f}", fontsize=8)
    figure.tight_layout()
    return figure


def _grid(figure: Figure, maps: np.ndarray, layer: str, caption: str, cmap: str) -> None:
    """The maps in a near-square grid, titled "<layer>: <caption>"; `layer` is the student's name for
    it, made safe here for both filter figures."""
    count = len(maps)
    columns = int(np.ceil(np.sqrt(count))) or 1
    rows = int(np.ceil(count / columns)) or 1
    axes = _face_axes(figure, rows, columns)
    for index, axis in enumerate(axes.flat):
        if index < count:
            axis.imshow(maps[index], cmap=cmap)
        else:
            axis.set_visible(False)
    figure.suptitle(f"{figure_text(layer)}: {caption}", fontsize=10)


def filter_patterns_figure(patterns: np.ndarray, layer: str, gain: np.ndarray) -> Figure:
    """The grid of patterns that maximize each channel's mean activation."""
    figure = Figure(figsize=(6.4, 6.8), dpi=100)
    _grid(figure, patterns, layer, f"patterns by gradient ascent (median activation gain "
                                   f"{float(np.median(gain)):.2f})", "gray")
    return figure


def filter_outputs_figure(image: np.ndarray, outputs: np.ndarray, layer: str) -> Figure:
    """The grid of the layer's activation maps for one evaluation face."""
    figure = Figure(figsize=(6.4, 6.8), dpi=100)
    _grid(figure, outputs, layer, "filter outputs for one face", "viridis")
    return figure


def class_model_figure(images: np.ndarray, target_prob: np.ndarray, language: Language = "en") -> Figure:
    """Per class: the image gradient ascent built toward it, titled with its probability."""
    names = class_names(language)
    figure = Figure(figsize=(1.5 * len(images), 2.0), dpi=100)
    axes = _face_axes(figure, 1, len(images))
    for column, (image, probability) in enumerate(zip(images, target_prob)):
        axes[0, column].imshow(image, cmap="gray", vmin=0, vmax=255)
        axes[0, column].set_title(f"{names[column]}\np={probability:.2f}", fontsize=8)
    figure.tight_layout()
    return figure
