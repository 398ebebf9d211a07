"""Q1: vanilla gradient saliency over the model protocol.

Every gradient is with respect to the raw (N, 48, 48) pixels in 0..255; the model's declared
preprocessing (crop, channel repeat, scaling) lies inside the model, and its gradient reaches the raw
pixels through it. One `attribute()` call sends its images as one `input_gradient` request, split
into requests of at most `batch_size` images when there are more (grader.explain.batching).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from grader.explain.base import AttributionMethod
from grader.explain.batching import GRADIENT_BATCH, check_batch_size, input_gradients
from grader.explain.pixels import channel_max, check_inputs, per_channel
from grader.protocol import ClassLogit, CrossEntropy, ModelProtocol, Objective

ObjectiveName = Literal["cross_entropy", "class_logit"]
OBJECTIVES: tuple[str, ...] = ("cross_entropy", "class_logit")


class Saliency(AttributionMethod):
    """Vanilla gradient saliency (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional
    Networks: Visualising Image Classification Models and Saliency Maps", arXiv:1312.6034).

    The map of image i is ``|d objective_i / d pixels_i|``, on the raw (48, 48) pixels, float32.

    - ``objective="cross_entropy"`` (the report's choice): the cross-entropy of the logits toward
      ``targets[i]``, i.e. the gradient of the training loss at the true label. Its absolute value
      equals that of the negative loss ``log p(target | x)``. With ``absolute=False`` the sign is
      that of the loss: positive where a brighter pixel raises the loss.
    - ``objective="class_logit"``: the logit of ``targets[i]`` (the class score S_c of the paper;
      Captum's ``Saliency(forward).attribute(x, target=c, abs=...)``).

    The paper takes the maximum of |gradient| over colour channels, at the model's input. Raw faces
    have one channel, so that maximum is the identity for a gray model. A model that declares
    ``channels: 3`` is asked for the gradient of each of its three channels (the gray face repeated
    on each, (N, 3, 48, 48) pixels, see grader.protocol), and its map is the maximum over channels of
    their absolute values, as the paper and the course take it (Captum's Saliency on the 3-channel
    input, then the maximum over channels). With ``absolute=False`` the signed map is the gradient
    with respect to the gray face, the sum of the channel gradients (one gray pixel feeds all three).
    The model's normalization (scale, mean, std) is the same number for every channel, so the map at
    the raw pixels is the map at the model's input times one constant.
    """

    name = "saliency"

    def __init__(self, model: ModelProtocol, objective: ObjectiveName = "cross_entropy", absolute: bool = True,
                 batch_size: int = GRADIENT_BATCH) -> None:
        super().__init__(model)
        self.objective = check_objective(objective)
        self.absolute = bool(absolute)
        self.batch_size = check_batch_size(batch_size)

    def attribute(self, pixels: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(N, 48, 48) float32 maps for raw (N, 48, 48) pixels and (N,) integer targets."""
        pixels, targets = check_inputs(self.model, pixels, targets)
        return saliency_maps(self.model, pixels, targets, self.objective, self.absolute, self.batch_size)


def saliency_maps(model: ModelProtocol, pixels: np.ndarray, targets: np.ndarray, objective: str, absolute: bool,
                  batch_size: int) -> np.ndarray:
    """The saliency maps (M, 48, 48) float32 of checked pixels and targets, as `Saliency` defines them:
    |gradient| (the maximum over a 3-channel model's channels), or the signed gray gradient."""
    make = objective_for(objective)
    if not absolute:
        return input_gradients(model, pixels, targets, make, batch_size)[1]
    return channel_max(input_gradients(model, per_channel(model, pixels), targets, make, batch_size)[1])


def objective_for(name: str) -> Callable[[np.ndarray], Objective]:
    """The objective of one request, for its targets: `CrossEntropy` or `ClassLogit`."""
    if name == "cross_entropy":
        return lambda targets: CrossEntropy(labels=targets)
    return lambda targets: ClassLogit(classes=targets)


def check_objective(objective: str) -> str:
    """`objective` if it is one of OBJECTIVES, else ValueError naming them."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective '{objective}'; choose one of {', '.join(OBJECTIVES)}")
    return objective
