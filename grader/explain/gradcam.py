"""Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual explanations from deep networks via
gradient-based localization"), over the model protocol's layer_gradient request."""

from __future__ import annotations

import numpy as np

from grader.classes import IMAGE_SIDE, center_crop_offset
from grader.explain.base import AttributionMethod
from grader.explain.pixels import check_inputs
from grader.explain.results import AttributionMaps, as_faces
from grader.protocol import ModelDescription, ModelProtocol


class GradCAM(AttributionMethod):
    """ReLU(sum_k alpha_k A_k) with alpha_k the spatial mean of d logit_c / d A_k, upsampled bilinearly
    (as torch's F.interpolate with align_corners=False) to the model's input size and placed where
    that input sits in the 48x48 face (a model that center-crops sees only the crop).

    layer: a module name; default (None) the model's last Conv2d, found when the maps are computed.
    Equal to Captum's LayerGradCam with relu_attributions=True followed by
    LayerAttribution.interpolate(..., "bilinear"); `explain` names the layer in its result.
    """

    name = "gradcam"

    def __init__(self, model: ModelProtocol, layer: str | None = None) -> None:
        super().__init__(model)
        self.layer = layer

    def attribute(self, pixels: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(N, 48, 48) float32 maps at `layer` (default the last Conv2d)."""
        return self._maps(pixels, targets)[1]

    def explain(self, pixels: np.ndarray, targets: np.ndarray) -> AttributionMaps:
        """The maps with the faces, the targets and the layer they were taken at."""
        layer, maps = self._maps(pixels, targets)
        return AttributionMaps(method=self.name, images=as_faces(pixels), labels=np.asarray(targets),
                               maps=maps.astype(np.float32), layer=layer)

    def _maps(self, pixels: np.ndarray, targets: np.ndarray) -> tuple[str, np.ndarray]:
        description = self.model.describe()
        layer = last_conv_layer(description) if self.layer is None else self.layer
        input_size = int(description.input.get("size", IMAGE_SIDE))
        pixels, targets = check_inputs(self.model, pixels, targets)
        activations, gradients = self.model.layer_gradient(pixels, layer, targets)
        if activations.ndim != 4:
            raise ValueError(f"Grad-CAM needs channel maps (N, C, h, w) from '{layer}', got {activations.shape}")
        weights = gradients.mean(axis=(2, 3), keepdims=True)
        cam = np.maximum((weights * activations).sum(axis=1), 0.0).astype(np.float32)
        upsampled = upsample_bilinear(cam, input_size)
        offset = center_crop_offset(input_size, str(description.input.get("tta", "none")))  # where it saw the face
        maps = np.zeros((len(cam), IMAGE_SIDE, IMAGE_SIDE), np.float32)
        maps[:, offset:offset + input_size, offset:offset + input_size] = upsampled
        return layer, maps


def last_conv_layer(description: ModelDescription) -> str:
    """The name of the model's last Conv2d, Grad-CAM's default layer; ValueError when it has none."""
    if not description.conv_layers:
        raise ValueError("the model has no Conv2d layer for Grad-CAM; name one with visualize.filter_layer")
    return description.conv_layers[-1].name


def upsample_bilinear(maps: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) -> (N, size, size), as torch.nn.functional.interpolate(mode="bilinear", align_corners=False)."""
    rows = _axis_weights(maps.shape[1], size)
    columns = _axis_weights(maps.shape[2], size)
    return np.einsum("ih,nhw,jw->nij", rows, maps.astype(np.float32), columns).astype(np.float32)


def _axis_weights(source: int, target: int) -> np.ndarray:
    """(target, source) interpolation matrix of one axis, with PyTorch's half-pixel convention."""
    position = np.maximum((np.arange(target) + 0.5) * (source / target) - 0.5, 0.0)
    low = np.minimum(np.floor(position).astype(int), source - 1)
    high = np.minimum(low + 1, source - 1)
    fraction = (position - low).astype(np.float32)
    weights = np.zeros((target, source), np.float32)
    np.add.at(weights, (np.arange(target), low), 1 - fraction)
    np.add.at(weights, (np.arange(target), high), fraction)
    return weights
