"""SubmissionModule: the student's nn.Module behind one LightningModule that takes raw pixels."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

from grader.classes import IMAGE_SIDE
from grader.submission.spec import InputSpec


class SubmissionModule(pl.LightningModule):
    """Wraps a student's model with its declared preprocessing.

    Everything downstream feeds raw (N, 48, 48) or (N, 1, 48, 48) pixels in 0..255; this module
    center-crops to `input.size`, repeats the gray channel when the model wants three, and maps
    pixels to `(pixel / scale - mean) / std`, as submission.yaml declares. Gradients flow through
    the preprocessing, so an input gradient is with respect to the raw pixels.
    """

    def __init__(self, net: nn.Module, input_spec: InputSpec | None = None) -> None:
        super().__init__()
        self.net = net
        self.input_spec = input_spec or InputSpec()

    def preprocess(self, pixels: torch.Tensor) -> torch.Tensor:
        spec = self.input_spec
        x = pixels if pixels.dim() == 4 else pixels.unsqueeze(1)
        if spec.size < IMAGE_SIDE:
            top = (IMAGE_SIDE - spec.size) // 2
            x = x[:, :, top:top + spec.size, top:top + spec.size]
        if spec.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        return (x / spec.scale - spec.mean) / spec.std

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(self.preprocess(pixels))

    def predict_step(self, batch: tuple[torch.Tensor, ...] | torch.Tensor, batch_idx: int) -> torch.Tensor:
        pixels = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(pixels)
