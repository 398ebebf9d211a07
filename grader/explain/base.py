"""The two kinds of explanation method, after Captum's `attr` (one class per method, constructed on
the model with its settings, one entry point that takes the inputs and the targets) and
pytorch-grad-cam (one class per CAM method, called on a batch and its targets).

- `AttributionMethod`: one map per image for a target class (Saliency, SmoothGrad, Integrated
  Gradients, Grad-CAM, LIME). `attribute(pixels, targets)` returns the raw (N, 48, 48) maps, as
  Captum's ``attribute(inputs, target=...)`` does; `explain(pixels, targets)` wraps them with the
  faces and targets in an `AttributionMaps`, the result the report and the metrics read.
- `Visualization`: an image synthesized from the model (the filter and class-model
  visualizations): `visualize(...)` returns its typed result.

Every method works on `grader.protocol.ModelProtocol` only (numpy in, numpy out, no torch), so the
same code runs on an in-process and on a sandboxed model. A constructor only stores and checks its
settings: it sends the model no request (not even `describe`), so building a method is free and
every request happens inside `attribute`, `explain` or `visualize`, in a fixed order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from grader.explain.results import AttributionMaps, ClassImages, FilterPatterns, as_faces
from grader.protocol import ModelProtocol


class AttributionMethod(ABC):
    """Explains `model`'s decisions on raw (N, 48, 48) pixels in 0..255, one map per image."""

    name: ClassVar[str]
    """The method's name in grader.explain.registry (and in the arrays it writes)."""

    def __init__(self, model: ModelProtocol) -> None:
        self.model = model

    @abstractmethod
    def attribute(self, pixels: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(N, 48, 48) maps, one per image, for the class `targets[i]`."""

    def explain(self, pixels: np.ndarray, targets: np.ndarray) -> AttributionMaps:
        """The maps of `attribute` (float32) with the faces (uint8) and the targets they explain.
        Grad-CAM adds the layer; LIME returns its richer `LimeExplanations` instead."""
        return AttributionMaps(method=self.name, images=as_faces(pixels), labels=np.asarray(targets),
                               maps=self.attribute(pixels, targets).astype(np.float32))


class Visualization(ABC):
    """Synthesizes images from `model` (gradient ascent in input space)."""

    name: ClassVar[str]
    """The method's name in grader.explain.registry."""

    def __init__(self, model: ModelProtocol) -> None:
        self.model = model

    @abstractmethod
    def visualize(self, *inputs: np.ndarray) -> FilterPatterns | ClassImages:
        """The visualization, as its typed result (grader.explain.results)."""
