"""A model protocol wrapper for tests that records every request it passes on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.protocol import ModelProtocol


@dataclass(frozen=True)
class Request:
    name: str  # logits, input_gradient, activations, randomized
    pixels: np.ndarray | None
    detail: object = None  # the objective, or the layer

    @property
    def size(self) -> int:
        return 0 if self.pixels is None else len(self.pixels)


class RecordingModel(ModelProtocol):
    """Passes every request on to `inner` and records it, with a copy of its pixels."""

    def __init__(self, inner: ModelProtocol) -> None:
        self.inner = inner
        self.requests: list[Request] = []

    def sizes(self, name: str) -> list[int]:
        """The number of images in each request of that kind, in order."""
        return [r.size for r in self.requests if r.name == name]

    def describe(self):
        return self.inner.describe()

    def logits(self, pixels):
        self.requests.append(Request("logits", np.array(pixels)))
        return self.inner.logits(pixels)

    def input_gradient(self, pixels, objective):
        self.requests.append(Request("input_gradient", np.array(pixels), objective))
        return self.inner.input_gradient(pixels, objective)

    def activations(self, pixels, layer):
        self.requests.append(Request("activations", np.array(pixels), layer))
        return self.inner.activations(pixels, layer)

    def layer_gradient(self, pixels, layer, classes):
        self.requests.append(Request("layer_gradient", np.array(pixels), layer))
        return self.inner.layer_gradient(pixels, layer, classes)

    def randomized(self, seed, top_layers):
        self.requests.append(Request("randomized", None, (seed, top_layers)))
        return self.inner.randomized(seed, top_layers)
