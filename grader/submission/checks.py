"""Checks that a model's outputs can be graded: shape, finiteness, determinism, batch consistency."""

from __future__ import annotations

import torch

from grader.classes import NUM_CLASSES
from grader.submission.errors import SubmissionError
from grader.submission.module import SubmissionModule

# fp32 convolutions may sum in a different order for different batch sizes; a real dependence
# between samples (batch statistics in eval mode, say) moves logits by far more than this.
BATCH_TOLERANCE = 1e-3


def check_outputs(module: SubmissionModule, pixels: torch.Tensor) -> None:
    """Raise SubmissionError (stage 'checks') with a message in words for the first failing check."""
    module.eval()
    with torch.no_grad():
        try:
            logits = module(pixels)
        except Exception as error:
            raise SubmissionError("checks", f"the model's forward failed on a batch of {len(pixels)} faces "
                                            f"shaped {_input_shape(module, pixels)}: {type(error).__name__}: "
                                            f"{error}") from None
        _check_logits(logits, len(pixels))
        again = module(pixels)
        if not torch.equal(logits, again):
            raise SubmissionError("checks", "the model gives different outputs for the same input in eval mode "
                                            f"(max difference {float((logits - again).abs().max()):.3g}); remove "
                                            "randomness from forward (dropout called with training=True, "
                                            "noise, sampling)")
        singles = torch.cat([module(pixels[i:i + 1]) for i in range(len(pixels))])
        gap = float((logits - singles).abs().max())
        if gap > BATCH_TOLERANCE * max(1.0, float(logits.abs().max())):
            raise SubmissionError("checks", "the model's output for a face depends on the other faces in its batch "
                                            f"(max difference {gap:.3g} between model(x)[i] and model(x[i:i+1])); "
                                            "use module layers in eval mode, not batch statistics")


def _check_logits(logits: object, batch: int) -> None:
    if not isinstance(logits, torch.Tensor):
        raise SubmissionError("checks", f"the model returned {type(logits).__name__}, expected a tensor of logits "
                                        f"shaped (N, {NUM_CLASSES})")
    if tuple(logits.shape) != (batch, NUM_CLASSES):
        raise SubmissionError("checks", f"the model returned shape {tuple(logits.shape)} for {batch} faces, "
                                        f"expected ({batch}, {NUM_CLASSES}): one logit per expression class "
                                        "(Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral)")
    if not torch.isfinite(logits).all():
        bad = int((~torch.isfinite(logits)).any(dim=1).sum())
        raise SubmissionError("checks", f"the model returned NaN or Inf logits for {bad} of {batch} faces; "
                                        "check the weights file and any division or log in forward")


def _input_shape(module: SubmissionModule, pixels: torch.Tensor) -> str:
    return str(tuple(module.preprocess(pixels).shape))
