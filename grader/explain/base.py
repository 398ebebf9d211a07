"""The base class every explanation method subclasses (after Captum's `attr`: one class per
method, one `attribute()` entry)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from grader.protocol import ModelProtocol


class Explainer(ABC):
    """A method that explains `model`'s decisions on raw (N, 48, 48) float32 pixels in 0..255."""

    def __init__(self, model: ModelProtocol) -> None:
        self.model = model

    @abstractmethod
    def attribute(self, pixels: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """One explanation per image, for the class `targets[i]`."""


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, stable for large logits."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
