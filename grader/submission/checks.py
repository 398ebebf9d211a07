"""Checks that a model's outputs can be graded: shape, finiteness, determinism, batch consistency.

They run over the model protocol, so they hold the same for a sandboxed and an in-process model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.classes import NUM_CLASSES
from grader.protocol import ModelDescription, ModelProtocol
from grader.submission.errors import SubmissionError

# fp32 convolutions may sum in a different order for different batch sizes; a real dependence
# between samples (batch statistics in eval mode, say) moves logits by far more than this.
BATCH_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ModelChecks:
    """What the checks measured on a model that passed them.

    batch_gap: the largest |model(x)[i] - model(x[i:i+1])| over the logits, relative to the
    largest |logit| (at least 1): fp32 summation order only, for a well-behaved model.
    """

    description: ModelDescription
    batch_gap: float


def check_model(model: ModelProtocol, pixels: np.ndarray) -> ModelChecks:
    """Raise SubmissionError (stage 'checks') with a message in words for the first failing check."""
    logits = model.logits(pixels)
    check_logits(logits, len(pixels))
    description = model.describe()
    again = model.logits(pixels)
    if not np.array_equal(logits, again):
        raise SubmissionError("checks", "the model gives different outputs for the same input in eval mode "
                                        f"(max difference {float(np.abs(logits - again).max()):.3g}); remove "
                                        "randomness from forward (dropout called with training=True, "
                                        "noise, sampling)")
    singles = np.concatenate([model.logits(pixels[i:i + 1]) for i in range(len(pixels))])
    check_logits(singles, len(pixels))
    gap = float(np.abs(logits - singles).max())
    scale = max(1.0, float(np.abs(logits).max()))
    if gap > BATCH_TOLERANCE * scale:
        raise SubmissionError("checks", "the model's output for a face depends on the other faces in its batch "
                                        f"(max difference {gap:.3g} between model(x)[i] and model(x[i:i+1])); "
                                        "use module layers in eval mode, not batch statistics")
    return ModelChecks(description=description, batch_gap=gap / scale)


def check_logits(logits: np.ndarray, batch: int) -> None:
    """(batch, 7) finite logits, or a SubmissionError saying what came back instead."""
    if logits.shape != (batch, NUM_CLASSES):
        raise SubmissionError("checks", f"the model returned shape {tuple(logits.shape)} for {batch} faces, "
                                        f"expected ({batch}, {NUM_CLASSES}): one logit per expression class "
                                        "(Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral)")
    if not np.isfinite(logits).all():
        bad = int((~np.isfinite(logits)).any(axis=1).sum())
        raise SubmissionError("checks", f"the model returned NaN or Inf logits for {bad} of {batch} faces; "
                                        "check the weights file and any division or log in forward")
