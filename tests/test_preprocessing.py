"""Specifications of submission.yaml's input options (issue 17) in SubmissionModule: histogram
equalization, per-image standardization, five/ten-crop test-time augmentation, and a model that
outputs probabilities; each checked against a plain reference written here (numpy, skimage)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.classes import NUM_CLASSES
from grader.evaluate import evaluate
from grader.explain.gradcam import GradCAM
from grader.pipeline.assessment import output_warnings
from grader.protocol import ClassLogit
from grader.sandbox.requests import description_from, description_header
from grader.sandbox.wire import Message, decode, encode
from grader.submission.inprocess import InProcessModel
from grader.submission.equalize import equalize_faces
from grader.submission.module import SubmissionModule
from grader.submission.spec import InputSpec


def faces(n: int, seed: int = 0) -> np.ndarray:
    """n faces of whole pixel values 0..255 (as FER2013's), float32."""
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48)).astype(np.float32)


def crop_net(side: int, seed: int = 0, softmax: bool = False) -> nn.Sequential:
    torch.manual_seed(seed)
    layers = [nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(3), nn.Flatten(),
              nn.Linear(36, NUM_CLASSES)]
    return nn.Sequential(*layers, *([nn.Softmax(dim=1)] if softmax else []))


# --- equalize -------------------------------------------------------------------------------


def textbook_equalization(face: np.ndarray) -> np.ndarray:
    """s = 255 * cdf(r) over the 256 levels (Gonzalez & Woods 3.3; OpenCV's equalizeHist docs)."""
    levels = face.astype(np.int64)
    return (255 * np.cumsum(np.bincount(levels.ravel(), minlength=256)) / levels.size)[levels]


def central_difference_error(pixels: torch.Tensor, step: float = 0.01, directions: int = 4) -> float:
    """The largest relative gap between <gradient, v> and (f(x + e v) - f(x - e v)) / 2e for a
    random weighting of the equalized outputs, along random directions and the gradient's own."""
    generator = torch.Generator().manual_seed(5)
    weights = torch.randn(pixels.shape, generator=generator, dtype=torch.float64)
    x = pixels.double().clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad((equalize_faces(x) * weights).sum(), x)
    along = [torch.randn(pixels.shape, generator=generator, dtype=torch.float64) for _ in range(directions)]
    along.append(gradient / gradient.pow(2).mean().sqrt())
    errors = []
    for v in along:
        def f(z: torch.Tensor) -> float:
            return (equalize_faces(z) * weights).sum().item()
        measured = (f(x.detach() + step * v) - f(x.detach() - step * v)) / (2 * step)
        errors.append(abs(measured - (gradient * v).sum().item()) / abs(measured))
    return max(errors)


def test_equalize_is_the_textbook_transform_on_integer_faces():
    pixels = faces(4)
    pixels[1] = np.clip(pixels[1] * 0.3 + 60, 0, 255).round()  # a low-contrast face
    pixels[2, :10] = 0.0
    pixels[2, -10:] = 255.0  # both ends of the range present
    expected = np.stack([textbook_equalization(face) for face in pixels])

    got = equalize_faces(torch.from_numpy(pixels).unsqueeze(1)).squeeze(1).numpy()

    np.testing.assert_allclose(got, expected, atol=1e-3)
    assert got[2].max() == pytest.approx(255.0)


def test_equalize_is_continuous_across_a_level():
    pixels = torch.from_numpy(faces(1, seed=4)).unsqueeze(1).double()
    below, above = pixels.clone(), pixels.clone()
    below[0, 0, 20, 20], above[0, 0, 20, 20] = 99.999999, 100.000001

    gap = (equalize_faces(above) - equalize_faces(below)).abs().max().item()

    assert gap < 1e-4


def test_equalize_runs_before_the_crop_and_normalization():
    spec = InputSpec(size=44, equalize=True, scale=255.0, mean=0.5, std=0.25)
    pixels = faces(2, seed=1)
    equalized = np.stack([textbook_equalization(face) for face in pixels])

    got = SubmissionModule(crop_net(44), spec).preprocess(torch.from_numpy(pixels)).squeeze(1).numpy()

    np.testing.assert_allclose(got, (equalized[:, 2:46, 2:46] / 255 - 0.5) / 0.25, atol=1e-4)


def test_equalizes_gradient_matches_central_differences_on_integer_faces():
    pixels = torch.from_numpy(faces(3, seed=2)).unsqueeze(1)
    pixels[0, 0, :6] = 0.0
    pixels[0, 0, -6:] = 255.0  # the clamped ends: one-sided outside 0..255

    assert central_difference_error(pixels) < 0.02


def test_equalizes_gradient_is_the_derivative_between_levels():
    # Off the levels the map is smooth: central differences converge to the gradient (a step small
    # enough that almost no pixel crosses a level; the audit's checks on a model are in
    # test_gradient_audit.py::test_an_equalizing_model_passes_every_check).
    generator = torch.Generator().manual_seed(6)
    pixels = torch.from_numpy(faces(3, seed=2)).unsqueeze(1).double()
    noisy = pixels + 20 * torch.randn(pixels.shape, generator=generator, dtype=pixels.dtype)  # SmoothGrad's
    scaled = pixels * 0.37  # an Integrated Gradients step

    assert central_difference_error(noisy, step=1e-5) < 1e-3
    assert central_difference_error(scaled, step=1e-5) < 1e-3


# --- normalize: per_image ---------------------------------------------------------------------


def test_per_image_standardizes_each_face_like_tensorflow():
    spec = InputSpec(normalize="per_image", scale=255.0, channels=3)
    pixels = faces(3, seed=3)
    pixels[2] = 128.0  # flat: std floored at 1 / sqrt(number of elements)
    x = np.repeat(pixels[:, None] / 255.0, 3, axis=1).astype(np.float64)
    flat = x.reshape(3, -1)
    std = np.maximum(flat.std(axis=1), 1 / np.sqrt(flat.shape[1]))
    expected = ((flat - flat.mean(axis=1, keepdims=True)) / std[:, None]).reshape(x.shape)

    got = SubmissionModule(crop_net(48), spec).preprocess(torch.from_numpy(pixels)).numpy()

    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_per_image_gives_finite_gradients_on_a_flat_face():
    module = SubmissionModule(crop_net(48), InputSpec(normalize="per_image"))
    pixels = torch.full((1, 48, 48), 90.0, requires_grad=True)

    (gradient,) = torch.autograd.grad(module(pixels)[0, 0], pixels)

    assert torch.isfinite(gradient).all()


# --- tta ----------------------------------------------------------------------------------


def reference_crops(face: np.ndarray, side: int, ten: bool) -> list[np.ndarray]:
    """torchvision's five_crop / ten_crop of one (48, 48) face, written out."""
    far, center = 48 - side, int(round((48 - side) / 2.0))

    def five(image: np.ndarray) -> list[np.ndarray]:
        return [image[:side, :side], image[:side, far:], image[far:, :side], image[far:, far:],
                image[center:center + side, center:center + side]]

    return five(face) + (five(face[:, ::-1]) if ten else [])


@pytest.mark.parametrize("tta, count", [("five_crop", 5), ("ten_crop", 10)])
def test_tta_runs_the_net_on_torchvisions_crops(tta, count):
    seen: list[torch.Tensor] = []
    net = crop_net(40)
    net.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach().clone()))
    module = SubmissionModule(net, InputSpec(size=40, tta=tta, scale=1.0))
    pixels = faces(2, seed=4)

    with torch.no_grad():
        module(torch.from_numpy(pixels))

    crops = seen[0].squeeze(1).numpy().reshape(count, 2, 40, 40)
    for face in range(2):
        expected = reference_crops(pixels[face], 40, ten=count == 10)
        for view in range(count):
            np.testing.assert_array_equal(crops[view, face], expected[view])


@pytest.mark.parametrize("tta", ["five_crop", "ten_crop"])
def test_tta_averages_the_logits_over_the_crops(tta):
    spec = InputSpec(size=44, tta=tta, mean=0.5, std=0.25)
    net = crop_net(44, seed=5).eval()
    pixels = faces(3, seed=5)
    expected = []
    with torch.no_grad():
        for face in pixels:
            crops = [(c / 255.0 - 0.5) / 0.25 for c in reference_crops(face, 44, ten=tta == "ten_crop")]
            batch = torch.from_numpy(np.ascontiguousarray(np.stack(crops)[:, None], dtype=np.float32))
            expected.append(net(batch).mean(dim=0).numpy())

    got = InProcessModel(SubmissionModule(net, spec)).logits(pixels)

    np.testing.assert_allclose(got, np.stack(expected), atol=1e-5)


def test_gradients_through_tta_are_finite_and_reach_every_corner():
    model = InProcessModel(SubmissionModule(crop_net(40, seed=6), InputSpec(size=40, tta="ten_crop")))

    _, gradient = model.input_gradient(faces(2, seed=6), ClassLogit(classes=np.array([0, 3])))

    assert gradient.shape == (2, 48, 48) and np.isfinite(gradient).all()
    for corner in (gradient[:, :4, :4], gradient[:, :4, -4:], gradient[:, -4:, :4], gradient[:, -4:, -4:]):
        assert np.abs(corner).sum(axis=(1, 2)).min() > 0  # only the corner crops see these pixels


def test_without_tta_a_smaller_size_is_one_center_crop():
    seen: list[torch.Tensor] = []
    net = crop_net(45)
    net.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0]))
    pixels = faces(1, seed=7)

    with torch.no_grad():
        SubmissionModule(net, InputSpec(size=45, scale=1.0))(torch.from_numpy(pixels))

    np.testing.assert_array_equal(seen[0].numpy()[0, 0], pixels[0, 1:46, 1:46])


def test_layer_requests_of_a_tta_model_see_the_center_crop_only():
    net = crop_net(44, seed=8)
    model = InProcessModel(SubmissionModule(net, InputSpec(size=44, tta="ten_crop", mean=0.5, std=0.25)))
    pixels = faces(3, seed=8)
    center = torch.from_numpy((pixels[:, None, 2:46, 2:46] / 255.0 - 0.5) / 0.25)

    activations = model.activations(pixels, "0")
    maps = GradCAM(model, layer="0").attribute(pixels, np.array([0, 1, 2]))

    assert model.describe().layer("0").output_shape == (4, 44, 44)
    with torch.no_grad():
        np.testing.assert_allclose(activations, net[0](center.float()).numpy(), atol=1e-5)
    assert maps.shape == (3, 48, 48) and np.isfinite(maps).all()
    assert model.layer_gradient(pixels, "0", np.array([0, 1, 2]))[1].shape == (3, 4, 44, 44)


@pytest.mark.parametrize("tta, top", [("none", 1), ("five_crop", 2)])
def test_grad_cam_places_the_map_where_the_model_saw_the_face(tta, top):
    # side 45: (48 - 45) // 2 = 1 without tta, torchvision's round(1.5) = 2 with it.
    net = crop_net(45, seed=9)
    model = InProcessModel(SubmissionModule(net, InputSpec(size=45, tta=tta, scale=1.0)))
    pixels = faces(2, seed=9)
    layer_maps = model.layer_gradient(pixels, "0", np.array([0, 1]))[0]

    maps = GradCAM(model, layer="0").attribute(pixels, np.array([0, 1]))

    inside = np.zeros((48, 48), bool)
    inside[top:top + 45, top:top + 45] = True
    assert layer_maps.shape == (2, 4, 45, 45)
    assert (maps[:, ~inside] == 0).all() and (maps[0, top] != 0).any() and (maps[0, :, top] != 0).any()


# --- probabilities ----------------------------------------------------------------------------


def test_a_final_softmax_is_detected_and_described():
    with_softmax = InProcessModel(SubmissionModule(crop_net(48, seed=9, softmax=True)))
    plain = InProcessModel(SubmissionModule(crop_net(48, seed=9)))

    assert with_softmax.module.outputs_probabilities and with_softmax.describe().outputs == "probabilities"
    assert not plain.module.outputs_probabilities and plain.describe().outputs == "logits"


@pytest.mark.parametrize("spec", [InputSpec(), InputSpec(size=44, tta="five_crop")], ids=["plain", "tta"])
def test_a_softmax_model_answers_as_the_same_model_without_it(spec):
    with_softmax = InProcessModel(SubmissionModule(crop_net(44, seed=10, softmax=True), spec))
    plain = InProcessModel(SubmissionModule(crop_net(44, seed=10), spec))
    pixels = faces(4, seed=10)

    logits, reference = with_softmax.logits(pixels), plain.logits(pixels)
    probabilities = torch.softmax(torch.from_numpy(logits), 1)

    np.testing.assert_allclose(probabilities, torch.softmax(torch.from_numpy(reference), 1), atol=1e-5)
    np.testing.assert_array_equal(logits.argmax(1), reference.argmax(1))
    x = torch.from_numpy(pixels).requires_grad_(True)
    (expected,) = torch.autograd.grad(F.log_softmax(plain.module(x), 1)[:, 2].sum(), x)
    # The returned logits are log-probabilities already: their gradient is log-softmax's.
    _, gradient = with_softmax.input_gradient(pixels, ClassLogit(classes=np.full(4, 2)))
    np.testing.assert_allclose(gradient, expected.numpy(), atol=1e-5)


def test_probabilities_get_a_warning():
    logits = np.log(np.full((7, 7), 1 / 7) + np.eye(7))
    evaluation = evaluate(logits, np.arange(7))

    said = [w.message for w in output_warnings(logits, evaluation, outputs="probabilities")]

    assert any("your model outputs probabilities" in message for message in said)
    assert not any("probabilities (a softmax" in w.message for w in output_warnings(logits, evaluation))


def test_the_outputs_field_crosses_the_wire():
    description = InProcessModel(SubmissionModule(crop_net(48, softmax=True))).describe()

    decoded = description_from(decode(encode(Message(description_header(description)))[8:]).header)

    assert decoded == description and decoded.outputs == "probabilities"
