"""Grad-CAM equals Captum's LayerGradCam (ReLU, bilinear upsampling) on the same model and input,
for every kind of student forward; and the layer_gradient request behind it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerAttribution, LayerGradCam

from grader.explain.gradcam import GradCAM, upsample_bilinear
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from tests.explain_nets import KINDS, build, faces

LABELS = np.array([3, 0, 5])


def last_conv(module) -> tuple[str, torch.nn.Module]:
    convs = [(name, layer) for name, layer in module.net.named_modules() if isinstance(layer, torch.nn.Conv2d)]
    return convs[-1]


@pytest.mark.parametrize("kind", KINDS)
def test_gradcam_equals_captums_layer_gradcam(kind):
    module = build(kind)
    name, layer = last_conv(module)
    pixels = faces()
    maps = GradCAM(InProcessModel(module)).attribute(pixels, LABELS)

    x = torch.from_numpy(pixels).unsqueeze(1)
    cam = LayerGradCam(module, layer).attribute(x, target=torch.from_numpy(LABELS), relu_attributions=True)
    size = module.input_spec.size
    expected = LayerAttribution.interpolate(cam, (size, size), interpolate_mode="bilinear")[:, 0].detach().numpy()
    offset = (48 - size) // 2
    # atol: channels_last sums in another order; cells near 0 (where Grad-CAM's ReLU cuts) differ in
    # their last bits, relative to the map's maximum.
    np.testing.assert_allclose(maps[:, offset:offset + size, offset:offset + size], expected, rtol=1e-4,
                               atol=1e-5 * float(np.abs(expected).max()))
    assert maps.shape == (3, 48, 48) and maps.max() > 0
    if offset:
        assert not maps[:, :offset].any() and not maps[:, :, :offset].any()  # outside the crop the model sees nothing


def test_the_default_layer_is_the_last_conv_and_the_result_names_it():
    module = build("residual")
    result = GradCAM(InProcessModel(module)).explain(faces(), LABELS)
    assert result.method == "gradcam" and result.layer == last_conv(module)[0] == "conv2"
    assert result.title == "Grad-CAM (conv2)"


def test_a_named_layer_is_used_and_named():
    module = build("functional_relu")
    result = GradCAM(InProcessModel(module), layer="conv1").explain(faces(), LABELS)
    cam = GradCAM(InProcessModel(module), layer="conv1").attribute(faces(), LABELS)
    assert result.layer == "conv1"
    np.testing.assert_array_equal(result.maps, cam)
    assert not np.array_equal(cam, GradCAM(InProcessModel(module)).attribute(faces(), LABELS))


def test_a_model_without_conv2d_is_refused_when_the_maps_are_asked_for():
    torch.manual_seed(0)
    model = InProcessModel(SubmissionModule(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48 * 48, 7))))
    method = GradCAM(model)  # building the method asks the model nothing
    with pytest.raises(ValueError, match="no Conv2d layer for Grad-CAM"):
        method.attribute(faces(), LABELS)


def test_bilinear_upsampling_matches_torch():
    maps = np.random.default_rng(0).random((2, 6, 5)).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(maps)[:, None], size=(44, 44), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(upsample_bilinear(maps, 44), expected[:, 0].numpy(), rtol=1e-5, atol=1e-6)


def test_layer_gradient_is_the_logit_gradient_at_the_layer():
    module = build("functional_relu")
    pixels = faces()
    activations, gradient = InProcessModel(module).layer_gradient(pixels, "conv2", LABELS)

    x = torch.from_numpy(pixels).requires_grad_(True)  # the wrapped net's weights are frozen
    captured = []
    handle = module.net.conv2.register_forward_hook(lambda m, i, o: captured.append(o))
    logits = module(x)
    handle.remove()
    expected = torch.autograd.grad(logits[torch.arange(3), torch.from_numpy(LABELS)].sum(), captured[0])[0]
    np.testing.assert_allclose(activations, captured[0].detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(gradient, expected.numpy(), rtol=1e-5, atol=1e-8)
