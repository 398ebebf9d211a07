"""The typed results of the explanation methods: what every method returns, what the metrics
(grader.scoring) read, and what report/ draws and writes as arrays/<name>.npz. Numpy only: no
torch, no matplotlib, no student code, so that every layer above explain/ may import this file.

One type per kind of explanation:
- `AttributionMaps`: one map per image (Saliency, SmoothGrad, Integrated Gradients, Grad-CAM);
- `LimeExplanations`: LIME's superpixels and surrogate weights per image;
- `FilterPatterns`: gradient ascent on one layer's channels, and that layer's outputs for one face;
- `ClassImages`: class-model visualization, one image per class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from grader.classes import IMAGE_SIDE

ATTRIBUTION_TITLES = {"saliency": "saliency", "smoothgrad": "SmoothGrad",
                      "integrated_gradients": "Integrated Gradients", "gradcam": "Grad-CAM"}
"""How each attribution method is named in a figure's title."""

MAGNITUDE_METHODS = ("saliency", "smoothgrad")
"""Methods whose maps are gradient magnitudes: both signs of the gradient count, so a pixel's rank
is its |value|. The others are signed: a high value speaks for the label."""


def as_faces(pixels: np.ndarray) -> np.ndarray:
    """Raw pixels as (N, 48, 48) uint8 faces, as they are stored beside every explanation."""
    faces = np.asarray(pixels)
    if faces.ndim == 2:
        faces = faces[None]
    return np.clip(np.rint(faces), 0, 255).astype(np.uint8) if faces.dtype != np.uint8 else faces


@dataclass(frozen=True)
class AttributionMaps:
    """One attribution map per image, for the image's label.

    method: the registry name of the method (grader.explain.registry) that made the maps.
    images: (N, 48, 48) uint8, the explained faces; labels: (N,) int, the class each map explains.
    maps: (N, 48, 48) float32 on the raw pixels.
    layer: the layer the maps were taken at (Grad-CAM), else None.
    """

    method: str
    images: np.ndarray
    labels: np.ndarray
    maps: np.ndarray
    layer: str | None = None

    @property
    def title(self) -> str:
        title = ATTRIBUTION_TITLES.get(self.method, self.method)
        return f"{title} ({self.layer})" if self.layer else title

    def arrays(self) -> dict[str, np.ndarray]:
        """The npz contents: images, labels, maps (and layer for Grad-CAM)."""
        arrays = {"images": self.images, "labels": self.labels, "maps": self.maps}
        if self.layer is not None:
            arrays["layer"] = np.array(self.layer)
        return arrays

    def panels(self) -> list[np.ndarray]:
        """The arrays shown one per panel of the figure."""
        return list(self.maps)

    def ranking(self) -> np.ndarray:
        """(N, 48, 48): the higher, the more a pixel speaks for the label (the deletion and insertion
        orders): |map| for gradient magnitudes, the signed map otherwise."""
        return np.abs(self.maps) if self.method in MAGNITUDE_METHODS else self.maps


@dataclass(frozen=True)
class LimeExplanation:
    """LIME's explanation of one face for one label.

    segments: (48, 48) int64 superpixel ids 0..S-1; weights: (S,) the surrogate's weight of each
    segment for `label` (indexed by segment id); score: the surrogate's weighted R^2 on the
    perturbations; intercept: its intercept; local_prediction: its prediction for the unperturbed
    face; probability: the model's probability of `label` on the unperturbed face; seed: the
    RandomState seed of the draws; fill: the brightness of a superpixel that is off (NaN when each
    superpixel was painted with its own mean).
    """

    label: int
    segments: np.ndarray
    weights: np.ndarray
    score: float
    intercept: float
    local_prediction: float
    probability: float
    seed: int
    fill: float

    @property
    def num_segments(self) -> int:
        return len(self.weights)

    def heatmap(self) -> np.ndarray:
        """(48, 48) float32: each pixel carries its segment's weight."""
        return self.weights[self.segments].astype(np.float32)

    def top_segments(self, k: int = 5, sign: Literal["positive", "negative", "any"] = "positive") -> np.ndarray:
        """The ids of the (at most) k segments with the largest weights of the given sign, largest first."""
        weights = self.weights
        if sign == "positive":
            order = np.argsort(-weights, kind="stable")
            order = order[weights[order] > 0]
        elif sign == "negative":
            order = np.argsort(weights, kind="stable")
            order = order[weights[order] < 0]
        else:
            order = np.argsort(-np.abs(weights), kind="stable")
        return order[:k]


@dataclass(frozen=True)
class LimeExplanations:
    """LIME (Ribeiro et al. 2016) on several faces: images (N, 48, 48) uint8 and one explanation each."""

    images: np.ndarray
    explanations: tuple[LimeExplanation, ...]
    method: str = "lime"
    repeats: tuple[tuple[LimeExplanation, ...], ...] = ()
    """The same faces and labels explained again with other seeds (TaskSettings.lime_seeds): not drawn,
    measured (LIME's metrics are bootstrapped over the seeds too)."""

    def with_repeats(self, runs: Sequence[LimeExplanations]) -> LimeExplanations:
        """These explanations with `runs` (the same faces and labels, other seeds) as repeats."""
        for run in runs:
            if not np.array_equal(run.images, self.images) or not np.array_equal(run.labels, self.labels):
                raise ValueError("a repeat of LIME must explain the same faces for the same labels")
        return LimeExplanations(images=self.images, explanations=self.explanations, method=self.method,
                                repeats=tuple(run.explanations for run in runs))

    def scores_by_seed(self) -> np.ndarray:
        """(N, 1 + repeats) float64: each image's surrogate R² (lime's `score`) under each seed."""
        runs = (self.explanations, *self.repeats)
        return np.array([[e.score for e in run] for run in runs], np.float64).reshape(len(runs), -1).T

    @classmethod
    def of(cls, pixels: np.ndarray, explanations: Sequence[LimeExplanation]) -> LimeExplanations:
        faces = as_faces(pixels)
        if len(faces) != len(explanations):
            raise ValueError(f"{len(faces)} images for {len(explanations)} explanations")
        return cls(images=faces, explanations=tuple(explanations))

    @property
    def labels(self) -> np.ndarray:
        return np.array([e.label for e in self.explanations], np.int64)

    def padded_weights(self) -> np.ndarray:
        """(N, S_max) float64: each image's segment weights, padded with NaN past its own S."""
        width = max((e.num_segments for e in self.explanations), default=0)
        weights = np.full((len(self.explanations), width), np.nan, np.float64)
        for row, e in zip(weights, self.explanations):
            row[:e.num_segments] = e.weights
        return weights

    def arrays(self) -> dict[str, np.ndarray]:
        """lime.npz: images (N,48,48) uint8, labels (N,) int64, segments (N,48,48) int64,
        weights (N,S_max) float64 padded with NaN past each image's own S, score (N,) float64."""
        return {
            "images": self.images,
            "labels": self.labels,
            "segments": np.stack([e.segments for e in self.explanations]).astype(np.int64)
            if self.explanations else np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), np.int64),
            "weights": self.padded_weights(),
            "score": np.array([e.score for e in self.explanations], np.float64),
            "score_by_seed": self.scores_by_seed(),
            "seeds": np.array([[e.seed for e in run] for run in (self.explanations, *self.repeats)],
                              np.int64).reshape(1 + len(self.repeats), -1).T,
        }

    def panels(self) -> list[np.ndarray]:
        """Each image's segment weights (its own S of them)."""
        return [row[~np.isnan(row)] for row in self.padded_weights()]

    def ranking(self) -> np.ndarray:
        """(N, 48, 48) float64: each pixel carries its superpixel's weight (NaN as 0)."""
        return _lime_ranking(self.explanations)

    def repeat_rankings(self) -> list[np.ndarray]:
        """`ranking()` of each repeat (the other seeds), in seed order."""
        return [_lime_ranking(run) for run in self.repeats]


def _lime_ranking(explanations: Sequence[LimeExplanation]) -> np.ndarray:
    if not explanations:
        return np.zeros((0, IMAGE_SIDE, IMAGE_SIDE))
    return np.stack([np.nan_to_num(np.asarray(e.weights, np.float64))[e.segments] for e in explanations])


@dataclass(frozen=True)
class FilterPatterns:
    """Filter visualization (filters.npz).

    layer: the visualized layer's name.
    channels: (K,) int64, the visualized channels (the layer's first K).
    patterns: (K, 48, 48) float32 raw pixels in 0..255, the image the ascent reached per channel.
    activation_gain: (K,) float64, final over initial objective of each channel's ascent.
    image: (48, 48) uint8, the evaluation face whose filter outputs are shown.
    outputs: (K, h, w) float32, the layer's maps of those channels for `image`.
    """

    layer: str
    channels: np.ndarray
    patterns: np.ndarray
    activation_gain: np.ndarray
    image: np.ndarray
    outputs: np.ndarray
    method: str = "filters"

    def arrays(self) -> dict[str, np.ndarray]:
        return {"layer": np.array(self.layer), "channels": self.channels, "patterns": self.patterns,
                "activation_gain": self.activation_gain, "image": self.image, "outputs": self.outputs}

    def panels(self) -> list[np.ndarray]:
        return [*self.patterns, *self.outputs]


@dataclass(frozen=True)
class ClassImages:
    """Class-model visualization (Simonyan et al. 2014), class_model.npz.

    images: (C, 48, 48) float32 raw pixels in 0..255, image c is class c's model.
    target_prob: (C,) float64, image c's softmax probability of class c.
    """

    images: np.ndarray
    target_prob: np.ndarray
    method: str = "class_model"

    def arrays(self) -> dict[str, np.ndarray]:
        return {"images": self.images, "target_prob": self.target_prob}

    def panels(self) -> list[np.ndarray]:
        return list(self.images)


ExplanationResult = AttributionMaps | LimeExplanations | FilterPatterns | ClassImages
"""Any method's result."""
