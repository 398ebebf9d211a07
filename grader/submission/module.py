"""SubmissionModule: the student's nn.Module behind one LightningModule that takes raw pixels."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytorch_lightning as pl
import torch
from torch import nn

from grader.classes import IMAGE_SIDE, center_crop_offset
from grader.submission.equalize import equalize_faces
from grader.submission.nnpack import NNPACK_MIN_BATCH, NnpackConvolutions, nnpack_available
from grader.submission.spec import InputSpec


class SubmissionModule(pl.LightningModule):
    """Wraps a student's model with its declared preprocessing.

    Everything downstream feeds raw (N, 48, 48) or (N, 1, 48, 48) pixels in 0..255; this module
    applies what submission.yaml declares, in this order: histogram equalization of each 0-255
    face (`equalize`, see `equalize_faces`), the crop (`size`: one center crop; with `tta` the four
    corner and the center crops, ten_crop adding their mirror images, as torchvision's five_crop /
    ten_crop cut them), the gray channel repeated when the model wants three, then `normalize`:
    "fixed" maps pixels to `(pixel / scale - mean) / std`, "per_image" standardizes each view of a
    face by its own mean and std after `/ scale` (tf.image.per_image_standardization). With `tta`
    the network runs on every crop and the logits are averaged. Gradients flow through all of it,
    so an input gradient is with respect to the raw 48x48 pixels.

    Layer-level requests (activations, layer gradients for Grad-CAM, a channel's mean for the
    filter questions, the layer shapes of `describe`) hook a layer during one forward; with `tta`
    they run inside `single_view()`, which feeds the center crop only, so a layer sees one crop of
    each face and its maps keep the shape of one view (InProcessModel does this for every such request).

    A model that ends in a softmax (found at load by `use_probability_outputs`) gives
    `log(p.clamp_min(1e-12))` as its logits, per crop before any averaging: the softmax of these
    equals the probabilities, and every explanation works on log-probabilities as on logits.
    """

    def __init__(self, net: nn.Module, input_spec: InputSpec | None = None) -> None:
        super().__init__()
        self.net = net
        self.input_spec = input_spec or InputSpec()
        self.memory_format = torch.contiguous_format
        self.autocast_dtype: torch.dtype | None = None  # bf16 under the fast profile
        self.nnpack = False  # forward-only batches through NNPACK: see use_nnpack
        self.outputs_probabilities = False  # the net ends in a softmax: see use_probability_outputs
        self.center_only = False  # tta models: run the center crop alone (see single_view)
        # The layout and NNPACK probes have run on this network, or on the one it was deep-copied
        # from (ModelProtocol.randomized): see use_channels_last and use_nnpack.
        self.layout_probed = False
        self.nnpack_probed = False

    @property
    def views(self) -> int:
        """How many crops of each face the network runs on in a forward (1 without tta)."""
        if self.center_only:
            return 1
        return {"none": 1, "five_crop": 5, "ten_crop": 10}[self.input_spec.tta]

    @contextlib.contextmanager
    def single_view(self) -> Iterator[None]:
        """Within it, a tta model runs on each face's center crop only (the layer-level requests)."""
        before, self.center_only = self.center_only, True
        try:
            yield
        finally:
            self.center_only = before

    def preprocess(self, pixels: torch.Tensor) -> torch.Tensor:
        """The network's input for one view of each face: (N, C, size, size). With `tta` (outside
        `single_view` too) this is the center crop; `preprocess_views` gives every crop."""
        return self._finish(self._crops(self._faces(pixels))[-1 if self.input_spec.tta == "none" else 4])

    def preprocess_views(self, pixels: torch.Tensor) -> torch.Tensor:
        """Every view the network runs on, view-major: (views * N, C, size, size)."""
        crops = self._crops(self._faces(pixels))
        if self.views == 1:
            return self._finish(crops[-1 if self.input_spec.tta == "none" else 4])
        return self._finish(torch.cat(crops[:self.views]))

    def _faces(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels if pixels.dim() == 4 else pixels.unsqueeze(1)
        return equalize_faces(x) if self.input_spec.equalize else x

    def _crops(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Without tta: [the center crop] (top-left at (48 - size) // 2, as before tta existed).
        With tta: torchvision's five_crop order (top-left, top-right, bottom-left, bottom-right,
        center at round((48 - size) / 2)), then the same five of the mirrored face (ten_crop)."""
        side = self.input_spec.size
        if side >= IMAGE_SIDE:
            return [x]
        if self.input_spec.tta == "none":
            top = center_crop_offset(side)
            return [x[:, :, top:top + side, top:top + side]]
        crops = _five_crops(x, side)
        if self.input_spec.tta == "ten_crop" and not self.center_only:
            crops += _five_crops(x.flip(-1), side)
        return crops

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.input_spec
        if spec.channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if spec.normalize == "per_image":
            x = per_image_standardization(x / spec.scale)
        else:
            x = (x / spec.scale - spec.mean) / spec.std
        return x.contiguous(memory_format=self.memory_format)

    def use_probability_outputs(self) -> bool:
        """Probe the network's raw outputs on ramp faces (like use_channels_last): when every row is
        non-negative and sums to 1 within 1e-4, the model ends in a softmax, and from now on its
        logits are log(p.clamp_min(1e-12)). True when so (also kept in outputs_probabilities)."""
        self.outputs_probabilities = False
        with torch.no_grad():
            try:
                output = self(_ramp_faces(4, self.device))
                self.outputs_probabilities = bool(
                    isinstance(output, torch.Tensor) and output.is_floating_point() and output.dim() == 2
                    and output.shape[-1] > 1 and torch.isfinite(output).all() and (output >= 0).all()
                    and ((output.float().sum(dim=-1) - 1).abs() <= 1e-4).all())
            except Exception:  # noqa: BLE001  (a failing forward is reported by the checks, not here)
                self.outputs_probabilities = False
        return self.outputs_probabilities

    def as_logits(self, output: object) -> object:
        """The network's output as logits: log-probabilities for a model that ends in a softmax."""
        if self.outputs_probabilities and isinstance(output, torch.Tensor) and output.is_floating_point():
            return torch.log(output.float().clamp_min(1e-12))
        return output

    def use_channels_last(self) -> bool:
        """Run the network in channels_last (NHWC) memory, where oneDNN's convolutions are faster on
        CPUs (1.4x for the typical course CNN, 1.3x for the VGG example, at batch 16, one thread),
        when it gives the same logits. A student's `x.view(n, -1)` on an NHWC map raises, so a
        model that fails or differs stays as it is. True when switched.

        The choice is the architecture's: a deep copy of a probed module (a randomized copy, whose
        layers have the same code and shapes and new weights) keeps it without probing again."""
        if self.layout_probed:
            return self.memory_format == torch.channels_last
        self.layout_probed = True
        probe = _ramp_faces(2, self.device)
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
        True when switched on.

        A deep copy of a probed module (ModelProtocol.randomized: the same layers, new weights)
        keeps the probe's answer: which convolutions NNPACK takes and whether the model runs in the
        mode are the architecture's, and Winograd's rounding error is relative to the weights'
        scale. The probe is two forwards of 16 faces (1.4 of the 1.9 s a randomized copy of a
        ResNet18 at 44x44 took to open, ten copies a grading)."""
        if (self.device.type != "cpu" or self.autocast_dtype is not None or not nnpack_available()
                or self.memory_format != torch.channels_last):
            self.nnpack = False
            return False
        if self.nnpack_probed:
            return self.nnpack
        self.nnpack, self.nnpack_probed = False, True
        probe = _ramp_faces(NNPACK_MIN_BATCH, self.device)
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
        views = self.views
        with self.precision():
            output = self.net(self.preprocess_views(pixels))
        # Under autocast the logits come out in bf16; everything after the model works in fp32.
        if self.autocast_dtype is not None and isinstance(output, torch.Tensor):
            output = output.float()
        output = self.as_logits(output)
        if views > 1 and isinstance(output, torch.Tensor) and output.dim() >= 1 and len(output) % views == 0:
            output = output.reshape(views, len(output) // views, *output.shape[1:]).mean(dim=0)
        return output

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


def _ramp_faces(count: int, device: torch.device) -> torch.Tensor:
    """`count` faces of one gray ramp from 0 to 255 across them all, on the model's device: the probe
    the layout and kernel choices compare their logits on."""
    ramp = torch.linspace(0, 255, count * IMAGE_SIDE * IMAGE_SIDE, device=device)
    return ramp.reshape(count, IMAGE_SIDE, IMAGE_SIDE)


def _five_crops(x: torch.Tensor, side: int) -> list[torch.Tensor]:
    """torchvision.transforms.functional.five_crop of (N, C, 48, 48): top-left, top-right,
    bottom-left, bottom-right, center (its top-left corner at int(round((48 - side) / 2)))."""
    far = IMAGE_SIDE - side
    center = center_crop_offset(side, "five_crop")
    return [x[:, :, :side, :side], x[:, :, :side, far:], x[:, :, far:, :side], x[:, :, far:, far:],
            x[:, :, center:center + side, center:center + side]]


def per_image_standardization(x: torch.Tensor) -> torch.Tensor:
    """tf.image.per_image_standardization of each face of (N, ...): (x - mean) / max(std, 1 /
    sqrt(number of elements)), mean and (population) std over all of a face's pixels and channels."""
    flat = x.reshape(len(x), -1)
    mean = flat.mean(dim=1, keepdim=True)
    # max(std, 1/sqrt(n)) as sqrt(max(var, 1/n)): the same value, and a finite gradient on a flat face.
    std = flat.var(dim=1, correction=0, keepdim=True).clamp_min(1.0 / flat.shape[1]).sqrt()
    return ((flat - mean) / std).reshape(x.shape)
