"""SubmissionModule: the student's nn.Module behind one LightningModule that takes raw pixels."""

from __future__ import annotations

import contextlib

import pytorch_lightning as pl
import torch
from torch import nn

from grader.classes import IMAGE_SIDE
from grader.submission.nnpack import NNPACK_MIN_BATCH, NnpackConvolutions, nnpack_available
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
        self.memory_format = torch.contiguous_format
        self.autocast_dtype: torch.dtype | None = None  # bf16 under the fast profile
        self.nnpack = False  # forward-only batches through NNPACK: see use_nnpack

    def preprocess(self, pixels: torch.Tensor) -> torch.Tensor:
        spec = self.input_spec
        x = pixels if pixels.dim() == 4 else pixels.unsqueeze(1)
        if spec.size < IMAGE_SIDE:
            top = (IMAGE_SIDE - spec.size) // 2
            x = x[:, :, top:top + spec.size, top:top + spec.size]
        if spec.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        return ((x / spec.scale - spec.mean) / spec.std).contiguous(memory_format=self.memory_format)

    def use_channels_last(self) -> bool:
        """Run the network in channels_last (NHWC) memory, where oneDNN's convolutions are faster on
        CPUs (1.4x for the typical course CNN, 1.3x for the VGG example, at batch 16, one thread),
        when it gives the same logits. A student's `x.view(n, -1)` on an NHWC map raises, so a
        model that fails or differs stays as it is. True when switched."""
        probe = _ramp_faces(2)
        with torch.no_grad():
            try:
                expected = self(probe)
                self.net.to(memory_format=torch.channels_last)
                self.memory_format = torch.channels_last
                same = torch.allclose(self(probe), expected, rtol=1e-4, atol=1e-5)
            except Exception:  # noqa: BLE001  (any failure means: keep the layout the student wrote for)
                same = False
        if not same:
            self.net.to(memory_format=torch.contiguous_format)
            self.memory_format = torch.contiguous_format
        return same

    def use_nnpack(self) -> bool:
        """Answer forward-only batches of NNPACK_MIN_BATCH or more faces with their wide 3x3
        convolutions through NNPACK's Winograd kernels (grader.submission.nnpack; at one thread the
        typical course CNN runs 1.5x as fast, the VGG example 1.3x), when the model has such a
        convolution and the logits agree with oneDNN's within rounding (1e-4 of their scale). Only
        for a float32 model in channels_last on the CPU: bf16 autocast and CUDA have kernels of
        their own, and a model that refused channels_last might refuse a channels_last pool.
        True when switched on."""
        self.nnpack = False
        if (self.device.type != "cpu" or self.autocast_dtype is not None or not nnpack_available()
                or self.memory_format != torch.channels_last):
            return False
        probe = _ramp_faces(NNPACK_MIN_BATCH)
        with torch.no_grad():
            try:
                expected = self(probe)
                with NnpackConvolutions() as mode:
                    routed = self(probe)
                scale = max(1.0, float(expected.abs().max()))
                self.nnpack = mode.routed > 0 and float((routed - expected).abs().max()) <= 1e-4 * scale
            except Exception:  # noqa: BLE001  (any failure means: stay on oneDNN, which the checks try)
                self.nnpack = False
        return self.nnpack

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        with self.precision():
            output = self.net(self.preprocess(pixels))
        # Under autocast the logits come out in bf16; everything after the model works in fp32.
        return output.float() if self.autocast_dtype is not None and isinstance(output, torch.Tensor) else output

    def precision(self) -> contextlib.AbstractContextManager:
        """Autocast to `autocast_dtype` when set (the fast profile); otherwise plain fp32."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def predict_step(self, batch: tuple[torch.Tensor, ...] | torch.Tensor, batch_idx: int) -> torch.Tensor:
        pixels = batch[0] if isinstance(batch, (tuple, list)) else batch
        if self.nnpack and self.autocast_dtype is None and len(pixels) >= NNPACK_MIN_BATCH:
            with NnpackConvolutions():
                return self(pixels)
        return self(pixels)


def _ramp_faces(count: int) -> torch.Tensor:
    """`count` faces of one gray ramp from 0 to 255 across them all: the probe the layout and kernel
    choices compare their logits on."""
    return torch.linspace(0, 255, count * IMAGE_SIDE * IMAGE_SIDE).reshape(count, IMAGE_SIDE, IMAGE_SIDE)
