"""The model protocol: the one narrow interface between the grader and a student's model.

Every explanation method and every metric talks to a model only through `ModelProtocol`, on
batches of raw pixels (N, 48, 48) float32 in 0..255, with numpy arrays in and out. A request may
also carry (N, C, 48, 48) pixels, C the model's declared input channels, one raw image per channel
(Q1's saliency on a 3-channel model needs the gradient of each channel: the maximum of their
absolute values is the map); (N, 48, 48) gives the gray face to every channel. Two
implementations exist: `InProcessModel` (grader.submission.inprocess) over a trusted nn.Module,
for tests, benchmarks and the library API; and `SandboxedModel` (grader.sandbox.client), which
forwards each request to a server process that holds the untrusted student code. Both must give
the same numbers for the same inputs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from grader.fingerprint import WeightsFingerprint


@dataclass(frozen=True)
class ClassLogit:
    """The logit of `classes[i]` for image i (vanilla gradients, Simonyan et al. 2014)."""

    classes: np.ndarray


@dataclass(frozen=True)
class CrossEntropy:
    """Cross-entropy of image i's logits toward `labels[i]` (the loss the model was trained on)."""

    labels: np.ndarray


@dataclass(frozen=True)
class ChannelMean:
    """The mean activation of channel `channels[i]` of `layer` for image i (Erhan et al. 2009).

    negative_slope: the mean of leaky_relu(activation, negative_slope) instead; 1 (the default)
    is the plain mean, 0 the mean of what a ReLU after the layer passes on.
    The forward pass stops at `layer`: the layers after it cannot change this objective.
    """

    layer: str
    channels: np.ndarray
    negative_slope: float = 1.0


Objective = ClassLogit | CrossEntropy | ChannelMean


@dataclass(frozen=True)
class LayerInfo:
    """A named module of the model and the shape of its output for one 48x48 face (no batch axis)."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    parametrized: bool = False
    """Whether the layer has parameters of its own: the layers `ModelProtocol.randomized` counts."""


OUTPUT_KINDS = ("logits", "probabilities")
"""What a model's network returns: logits, or probabilities (a softmax at its end)."""


@dataclass(frozen=True)
class ModelDescription:
    num_classes: int
    input: dict[str, float | int | str | bool]
    layers: tuple[LayerInfo, ...] = field(default_factory=tuple)
    outputs: str = "logits"
    """One of OUTPUT_KINDS: "probabilities" when the network ends in a softmax; its outputs were
    then taken as log-probabilities (grader.submission.module.SubmissionModule.use_probability_outputs)."""

    def layer(self, name: str) -> LayerInfo:
        for info in self.layers:
            if info.name == name:
                return info
        raise KeyError(f"the model has no layer '{name}'; its layers are {', '.join(i.name for i in self.layers)}")

    @property
    def conv_layers(self) -> tuple[LayerInfo, ...]:
        return tuple(info for info in self.layers if info.kind == "Conv2d")

    @property
    def parametrized_layers(self) -> tuple[LayerInfo, ...]:
        """The layers with parameters of their own, in definition order: `randomized(seed, top_layers=k)`
        re-initializes the last k of them (a model with parameters on its root module has one more,
        re-initialized last)."""
        return tuple(info for info in self.layers if info.parametrized)


class ModelProtocol(ABC):
    """What the grader may ask of a model. Every request carries a whole batch."""

    @abstractmethod
    def describe(self) -> ModelDescription:
        """Number of classes, the declared input spec, and every named layer with its output shape."""

    @abstractmethod
    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """(N, num_classes) float32 logits for (N, 48, 48) raw pixels."""

    @abstractmethod
    def input_gradient(self, pixels: np.ndarray, objective: Objective) -> tuple[np.ndarray, np.ndarray]:
        """The objective's value per image (N,) and its gradient with respect to the pixels (N, 48, 48)."""

    @abstractmethod
    def activations(self, pixels: np.ndarray, layer: str) -> np.ndarray:
        """The output of `layer` for each image, float32, batch axis first."""

    @abstractmethod
    def layer_gradient(self, pixels: np.ndarray, layer: str, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`layer`'s output A (N, ...) and the gradient of image i's logit of `classes[i]` with
        respect to it, dS/dA (N, ...), both float32 (what Grad-CAM needs, Selvaraju et al. 2017)."""

    @abstractmethod
    def randomized(self, seed: int, top_layers: int) -> ModelProtocol:
        """A copy whose `top_layers` parametrized layers, counted from the output, are re-initialized
        (the model parameter randomization test of Adebayo et al. 2018)."""

    def weights_fingerprint(self) -> WeightsFingerprint:
        """The name-independent fingerprint of the loaded model's floating-point weights (parameters
        and buffers), for the similarity report (grader.similarity). It is computed where the model
        is loaded, inside the sandbox for a student's model, so that the trusted grader never parses
        a weights file; the sandboxed implementation validates the arrays it gets back.

        Not abstract, so that wrappers and fakes written before it need not answer it; the default
        says that this model cannot."""
        raise NotImplementedError(f"{type(self).__name__} does not compute a weights fingerprint")

    def close(self) -> None:
        """Release what the model holds (a server process, for the sandboxed one)."""

    def __enter__(self) -> ModelProtocol:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
