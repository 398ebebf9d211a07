"""Specifications of grader.explain.saliency: Saliency equals Captum's on the same SubmissionModule and
the same raw pixels, for every kind of student forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grader.explain.saliency import Saliency
from grader.submission.inprocess import InProcessModel
from tests.explain_nets import LABELS, as_tensor, build, captum_saliency, close, faces, not_trivial
from tests.explain_nets import module, one_torch_thread  # noqa: F401 (fixtures)
from tests.recording import RecordingModel


@pytest.mark.parametrize("objective", ["cross_entropy", "class_logit"])
def test_saliency_equals_captums_saliency(module, objective):
    pixels = faces()
    maps = Saliency(InProcessModel(module), objective=objective).attribute(pixels, LABELS)

    assert maps.dtype == np.float32 and maps.shape == (3, 48, 48)
    not_trivial(maps)
    close(maps, captum_saliency(module, pixels, LABELS, objective))


def test_signed_saliency_equals_captums_signed_saliency_and_autograd_of_the_loss(module):
    pixels = faces()
    logit = Saliency(InProcessModel(module), objective="class_logit", absolute=False).attribute(pixels, LABELS)
    loss = Saliency(InProcessModel(module), objective="cross_entropy", absolute=False).attribute(pixels, LABELS)

    close(logit, captum_saliency(module, pixels, LABELS, "class_logit", absolute=False))
    x = as_tensor(pixels).requires_grad_(True)
    F.cross_entropy(module(x), torch.tensor(LABELS), reduction="sum").backward()
    close(loss, x.grad.squeeze(1).numpy())
    assert (logit < 0).any() and (loss < 0).any()


def test_saliency_of_a_3_channel_model_is_the_largest_channel_gradient_not_their_sum():
    module, pixels = build("rgb"), faces()
    maps = Saliency(InProcessModel(module)).attribute(pixels, LABELS)
    gray = np.abs(Saliency(InProcessModel(module), absolute=False).attribute(pixels, LABELS))

    x = as_tensor(pixels).repeat(1, 3, 1, 1).requires_grad_(True)
    F.cross_entropy(module(x), torch.tensor(LABELS), reduction="sum").backward()
    close(maps, x.grad.abs().amax(dim=1).numpy())
    assert not np.allclose(maps, gray, rtol=1e-2)  # |sum over channels| is another map


def test_saliency_of_a_crop_is_zero_outside_the_crop():
    pixels = faces()
    maps = Saliency(InProcessModel(build("crop44"))).attribute(pixels, LABELS)

    assert not maps[:, :2].any() and not maps[:, -2:].any() and not maps[:, :, :2].any() and not maps[:, :, -2:].any()
    assert maps[:, 2:-2, 2:-2].any()


def test_saliency_sends_one_request_and_splits_larger_batches():
    model = RecordingModel(InProcessModel(build("functional_relu")))
    pixels, labels = faces(5), np.array([0, 1, 2, 3, 4])
    whole = Saliency(model).attribute(pixels, labels)
    assert model.sizes("input_gradient") == [5]

    model.requests.clear()
    split = Saliency(model, batch_size=2).attribute(pixels, labels)
    assert model.sizes("input_gradient") == [2, 2, 1]
    close(split, whole)
