"""Forward-only batches with their wide 3x3 convolutions through NNPACK.

A `logits` request needs no gradients, so on the CPU its convolutions may run through NNPACK
(Dukhan, github.com/Maratyszcza/NNPACK), whose 3x3 convolutions use Winograd's minimal filtering
F(6x6, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016): a
fraction of the multiplications of the direct convolution that oneDNN runs. Measured at one thread
on a batch of 16 (channels_last oneDNN against NNPACK): 64->64 channels on 24x24 maps 1.8x, 128->128
on 24x24 2.2x, 256->256 on 12x12 1.9x, 32->64 on 24x24 1.5x; but 32->32 on 48x48 1.0x, and narrower
layers lose what they gain to the change of memory layout. Hence the rule in `_worth_nnpack`: 3x3,
stride 1, no dilation or groups, at least 32 input and 64 output channels.

ATen picks NNPACK for such a float32 convolution when oneDNN is switched off and the batch has at
least NNPACK_MIN_BATCH images, and returns an NCHW map. Everything else stays on oneDNN in
channels_last; PyTorch's pools are 6-18x slower on NCHW maps than on channels_last ones (a 2x2 max
pool of 16x64x48x48: 12.6 ms against 0.7 ms), so a pool gets a channels_last copy. Layout changes
no value; NNPACK's Winograd arithmetic rounds differently from the direct convolution (logits
within 1e-5 of oneDNN's on the examples), and is deterministic and independent of a face's place
in its batch.

The choice is made per convolution inside a torch-function mode, which sees the calls of eager
code only: TorchScript models have no call it could route and stay on oneDNN as a whole.

NNPACK takes an NCHW-contiguous weight, and a channels_last model's 3x3 weights are not: each
routed weight's NCHW copy is kept (`nchw_weight`, renewed when the weight changes in place) instead
of being made on every call (9.4 MB a call for a 512 -> 512 layer of a ResNet18). The values are
the same, so are the logits, to the bit.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.modules.utils import _pair
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

NNPACK_MIN_BATCH = 16
"""ATen's ConvParams::use_nnpack: a batch of at least 16 (non-mobile builds); smaller batches
would fall to the slow reference convolution, so they stay on oneDNN."""

MIN_IN_CHANNELS, MIN_OUT_CHANNELS = 32, 64

# What nn.MaxPool2d, nn.AvgPool2d, F.max_pool2d(return_indices=...) and torch.max_pool2d hand a mode.
_POOLS = frozenset({F.max_pool2d, F.max_pool2d_with_indices, F.avg_pool2d, torch.max_pool2d,
                    torch._C._nn.max_pool2d_with_indices})
_CONV2D_PARAMETERS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")


def nnpack_available() -> bool:
    """Whether this torch build carries NNPACK and the CPU supports it."""
    return bool(torch.backends.nnpack.is_available())


_NCHW_WEIGHTS: WeakIdKeyDictionary = WeakIdKeyDictionary()
"""weight -> (its version counter when copied, its NCHW-contiguous copy); an entry goes with its weight."""


def nchw_weight(weight: torch.Tensor) -> torch.Tensor:
    """`weight` as an NCHW-contiguous tensor of the same values: itself when it is one; without
    autograd, a copy kept for as long as the weight lives and is not changed in place (its version
    counter), made outside inference mode so that it stays usable outside it."""
    if weight.is_contiguous() or weight.requires_grad or torch.is_grad_enabled() or weight.is_inference():
        return weight.contiguous()
    kept = _NCHW_WEIGHTS.get(weight)
    if kept is None or kept[0] != weight._version or kept[1].shape != weight.shape:
        with torch.inference_mode(False), torch.no_grad():
            kept = (weight._version, weight.contiguous())
        _NCHW_WEIGHTS[weight] = kept
    return kept[1]


class NnpackConvolutions(TorchFunctionMode):
    """Within this mode, every conv2d that `_worth_nnpack` accepts runs through NNPACK on an NCHW
    input, every other one through oneDNN on a channels_last input, and every 2-D max or average
    pool on a channels_last map. `routed` counts the convolutions sent to NNPACK."""

    def __init__(self) -> None:
        super().__init__()
        self.routed = 0

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.conv2d:
            return self._conv2d(dict(zip(_CONV2D_PARAMETERS, args), **kwargs))
        if func in _POOLS and args and _is_batch_of_maps(args[0]):
            return func(args[0].contiguous(memory_format=torch.channels_last), *args[1:], **kwargs)
        return func(*args, **kwargs)

    def _conv2d(self, call: dict[str, Any]) -> torch.Tensor:
        if not _worth_nnpack(call):
            if _is_batch_of_maps(call["input"]):
                call["input"] = call["input"].contiguous(memory_format=torch.channels_last)
            return F.conv2d(**call)
        self.routed += 1
        call["input"] = call["input"].contiguous()
        call["weight"] = nchw_weight(call["weight"])
        # A process-wide switch; a model process answers one request at a time. (Not
        # torch.backends.mkldnn.flags(): it also resets oneDNN's TF32 switch, with a warning a call.)
        enabled, torch.backends.mkldnn.enabled = torch.backends.mkldnn.enabled, False
        try:
            return F.conv2d(**call)
        finally:
            torch.backends.mkldnn.enabled = enabled


def _is_batch_of_maps(value: object) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() == 4


def _worth_nnpack(call: dict[str, Any]) -> bool:
    """A float32 CPU 3x3 convolution, stride 1, undilated, ungrouped, at least MIN_IN_CHANNELS in
    and MIN_OUT_CHANNELS out, on a batch NNPACK takes."""
    x, weight = call["input"], call["weight"]
    return (_is_batch_of_maps(x) and x.dtype == torch.float32 and x.device.type == "cpu"
            and len(x) >= NNPACK_MIN_BATCH and isinstance(weight, torch.Tensor) and weight.dim() == 4
            and tuple(weight.shape[2:]) == (3, 3) and _pair(call.get("stride", 1)) == (1, 1)
            and _pair(call.get("dilation", 1)) == (1, 1) and call.get("groups", 1) == 1
            and weight.shape[1] >= MIN_IN_CHANNELS and weight.shape[0] >= MIN_OUT_CHANNELS)
