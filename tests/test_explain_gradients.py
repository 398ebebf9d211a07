"""Specifications of grader.explain.gradients (Saliency, SmoothGrad, IntegratedGradients), checked
against Captum on the same SubmissionModule and the same raw pixels: Captum runs on the module itself
with (N, 1, 48, 48) float32 pixels in 0..255, so its gradients are with respect to the same raw pixels
as the protocol's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients as CaptumIG
from captum.attr import NoiseTunnel
from captum.attr import Saliency as CaptumSaliency
from torch import nn

from grader.explain.base import Explainer
from grader.explain.gradients import IntegratedGradients, Saliency, SmoothGrad, integration_rule
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from grader.submission.spec import InputSpec
from tests.recording import RecordingModel

LABELS = np.array([0, 3, 6])
IG_STEPS = 16

# --- six tiny nets, each a way a student's forward can differ ----------------------------------


class FunctionalRelu(nn.Module):
    def __init__(self, in_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 7)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.adaptive_avg_pool2d(F.relu(self.conv2(x)), 4)
        return self.fc(x.flatten(1))


class SharedRelu(nn.Module):
    """One nn.ReLU module called after every layer."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc1 = nn.Linear(4 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, 7)

    def forward(self, x):
        x = self.pool(self.relu(self.conv2(self.relu(self.conv1(x)))))
        return self.fc2(self.relu(self.fc1(x.flatten(1))))


class Leaky(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
                                      nn.Conv2d(4, 4, 3, padding=1), nn.LeakyReLU(0.1), nn.AdaptiveAvgPool2d(4))
        self.fc = nn.Linear(4 * 4 * 4, 7)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 7)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.relu(x + self.conv2(F.relu(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 4).flatten(1))


def build(kind: str) -> SubmissionModule:
    torch.manual_seed(sum(map(ord, kind)))
    nets = {"functional_relu": (FunctionalRelu, None), "shared_relu": (SharedRelu, None), "leaky_relu": (Leaky, None),
            "residual": (Residual, None), "crop44": (FunctionalRelu, InputSpec(size=44)),
            "rgb": (lambda: FunctionalRelu(3), InputSpec(channels=3, mean=0.5, std=0.5))}
    factory, spec = nets[kind]
    net = factory()
    with torch.no_grad():  # larger weights than PyTorch's defaults: the maps vary over the face
        for parameter in net.parameters():
            parameter.mul_(3.0)
    return SubmissionModule(net, spec).eval()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread, as the grading profile runs: tiny nets on a busy machine run much faster so."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


KINDS = ["functional_relu", "shared_relu", "leaky_relu", "residual", "crop44", "rgb"]


@pytest.fixture(params=KINDS)
def module(request) -> SubmissionModule:
    return build(request.param)


def faces(n: int = 3, seed: int = 0) -> np.ndarray:
    """Blocky random faces, about 0..255, with a little pixel noise: each face has its own range."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(20, 235, (n, 12, 12))
    blocks = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)
    return (blocks + rng.normal(0, 5, (n, 48, 48))).astype(np.float32)


def as_tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.tensor(pixels, dtype=torch.float32).unsqueeze(1)


def negative_log_softmax(module: SubmissionModule):
    """A forward whose output at the label is the cross-entropy loss, so that Captum's `target`
    differentiates the loss."""
    return lambda x: -F.log_softmax(module(x), dim=1)


def captum_forward(module: SubmissionModule, objective: str):
    return negative_log_softmax(module) if objective == "cross_entropy" else module


def captum_saliency(module, pixels, labels, objective, absolute=True) -> np.ndarray:
    """Captum's Saliency at the model's input channels; for |gradient| the maximum over channels, as
    Simonyan et al. and the course take it (a gray model has one channel, so it is the map itself)."""
    channels = module.input_spec.channels if absolute else 1
    inputs = as_tensor(pixels).repeat(1, channels, 1, 1).requires_grad_(True)
    attributions = CaptumSaliency(captum_forward(module, objective)).attribute(
        inputs, target=torch.tensor(labels), abs=absolute)
    return attributions.amax(dim=1).detach().numpy() if absolute else attributions.squeeze(1).detach().numpy()


def close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-5, scale: float = 1e-5) -> None:
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=scale * float(np.abs(expected).max()))


def not_trivial(attributions: np.ndarray) -> None:
    assert np.abs(attributions).max() > 0
    for image in attributions:
        assert np.unique(image).size > 48, "the map is nearly constant"


# --- Saliency ------------------------------------------------------------------------------


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


# --- SmoothGrad ----------------------------------------------------------------------------


def test_smoothgrad_without_noise_is_saliency(module):
    pixels, model = faces(), InProcessModel(module)
    for objective in ("cross_entropy", "class_logit"):
        smooth = SmoothGrad(model, samples=4, noise=0.0, objective=objective).attribute(pixels, LABELS)
        # Equal up to float rounding: the 4 x 3 copies go as one batch of 12, Saliency's as one of 3.
        close(smooth, Saliency(model, objective=objective).attribute(pixels, LABELS))


def test_smoothgrad_is_the_mean_saliency_over_the_documented_noise(module):
    pixels, samples, noise, seed = faces(), 5, 0.15, 7
    maps = SmoothGrad(InProcessModel(module), samples=samples, noise=noise, seed=seed).attribute(pixels, LABELS)

    rng = np.random.default_rng(seed)  # the recipe in SmoothGrad's docstring, written out
    eps = rng.standard_normal((samples, 3, 48, 48), dtype=np.float32)
    sigma = (noise * (pixels.max(axis=(1, 2)) - pixels.min(axis=(1, 2)))).astype(np.float32)
    noisy = pixels[None] + eps * sigma[None, :, None, None]
    expected = np.mean([captum_saliency(module, copy, LABELS, "cross_entropy") for copy in noisy], axis=0)

    assert maps.dtype == np.float32 and maps.shape == (3, 48, 48)
    not_trivial(maps)
    close(maps, expected)
    assert not np.allclose(maps, Saliency(InProcessModel(module)).attribute(pixels, LABELS), rtol=1e-3)


def test_smoothgrad_is_reproducible_per_seed(module):
    pixels, model = faces(), InProcessModel(module)
    first = SmoothGrad(model, samples=3, seed=1).attribute(pixels, LABELS)

    np.testing.assert_array_equal(SmoothGrad(model, samples=3, seed=1).attribute(pixels, LABELS), first)
    assert not np.allclose(SmoothGrad(model, samples=3, seed=2).attribute(pixels, LABELS), first, rtol=1e-3)


def test_smoothgrad_matches_captums_noise_tunnel_over_the_same_noise():
    """Captum's NoiseTunnel draws its own torch noise; with a fixed stdev per image and the noise fed in by hand
    both reduce to the mean absolute gradient, checked here with Captum's class-logit Saliency."""
    module = build("residual")
    pixels, samples = faces(), 4
    smooth = SmoothGrad(InProcessModel(module), samples=samples, objective="class_logit")
    noisy = smooth.noisy_copies(pixels)
    expected = np.mean([captum_saliency(module, copy, LABELS, "class_logit") for copy in noisy], axis=0)
    close(smooth.attribute(pixels, LABELS), expected)

    # And Captum's own tunnel without noise gives the same as ours without noise.
    tunnel = NoiseTunnel(CaptumSaliency(module)).attribute(
        as_tensor(pixels).requires_grad_(True), nt_type="smoothgrad", nt_samples=3, stdevs=0.0,
        target=torch.tensor(LABELS), abs=True)
    close(SmoothGrad(InProcessModel(module), samples=3, noise=0.0, objective="class_logit").attribute(pixels, LABELS),
          tunnel.squeeze(1).numpy())


def test_smoothgrad_sends_all_noisy_copies_in_one_request_or_bounded_ones():
    model = RecordingModel(InProcessModel(build("shared_relu")))
    pixels = faces()
    whole = SmoothGrad(model, samples=6).attribute(pixels, LABELS)
    assert model.sizes("input_gradient") == [18]

    model.requests.clear()
    split = SmoothGrad(model, samples=6, batch_size=7).attribute(pixels, LABELS)
    assert model.sizes("input_gradient") == [7, 7, 4]
    close(split, whole)


def test_smoothgrad_gives_a_flat_image_no_noise():
    model = InProcessModel(build("leaky_relu"))
    flat = np.full((1, 48, 48), 100.0, np.float32)
    smooth = SmoothGrad(model, samples=3, noise=0.2)
    np.testing.assert_array_equal(smooth.noisy_copies(flat), np.repeat(flat[None], 3, axis=0))


# --- Integrated Gradients ------------------------------------------------------------------


def captum_ig(module, pixels, labels, steps=IG_STEPS, baseline=0, method="gausslegendre"):
    baselines = baseline if np.isscalar(baseline) else as_tensor(np.broadcast_to(baseline, pixels.shape))
    attributions, delta = CaptumIG(module).attribute(as_tensor(pixels), baselines=baselines,
                                                     target=torch.tensor(labels), n_steps=steps, method=method,
                                                     return_convergence_delta=True)
    return attributions.squeeze(1).detach().numpy(), delta.detach().numpy()


def delta_tolerance(attributions: np.ndarray) -> float:
    """The delta is a difference of float32 sums: its rounding grows with the attributions' magnitude."""
    return 2e-6 * float(np.abs(attributions).sum(axis=(1, 2)).max()) + 1e-6


def test_integrated_gradients_equal_captums_with_its_convergence_delta(module):
    pixels, model = faces(), InProcessModel(module)
    ig = IntegratedGradients(model, steps=IG_STEPS)
    assert ig.last_delta is None
    attributions = ig.attribute(pixels, LABELS)
    expected, expected_delta = captum_ig(module, pixels, LABELS)

    assert attributions.dtype == np.float32 and attributions.shape == (3, 48, 48)
    not_trivial(attributions)
    close(attributions, expected)
    assert ig.last_delta.dtype == np.float32 and ig.last_delta.shape == (3,)
    np.testing.assert_allclose(ig.last_delta, expected_delta, atol=delta_tolerance(expected))
    np.testing.assert_allclose(ig.convergence_delta(attributions, pixels, LABELS), expected_delta,
                               atol=delta_tolerance(expected))


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right",
                                    "riemann_middle"])
def test_integrated_gradients_use_captums_quadrature(method):
    from captum.attr._utils.approximation_methods import approximation_parameters

    step_sizes, alphas = approximation_parameters(method)
    ours_sizes, ours_alphas = integration_rule(method, 7)
    np.testing.assert_array_equal(ours_sizes, torch.tensor(step_sizes(7)).float().numpy())
    np.testing.assert_allclose(ours_alphas, alphas(7), rtol=1e-7, atol=1e-7)

    module = build("leaky_relu")
    pixels = faces()
    attributions = IntegratedGradients(InProcessModel(module), steps=8, method=method).attribute(pixels, LABELS)
    close(attributions, captum_ig(module, pixels, LABELS, steps=8, method=method)[0])


@pytest.mark.parametrize("baseline", [128.0, "image", "per_image"])
def test_integrated_gradients_take_captums_baselines(baseline):
    module, pixels = build("rgb"), faces()
    if baseline == "image":
        baseline = np.linspace(0, 255, 48 * 48, dtype=np.float32).reshape(48, 48)
    elif baseline == "per_image":
        baseline = faces(seed=5)
    ig = IntegratedGradients(InProcessModel(module), steps=IG_STEPS, baseline=baseline)
    attributions = ig.attribute(pixels, LABELS)
    expected, expected_delta = captum_ig(module, pixels, LABELS, baseline=baseline)

    not_trivial(attributions)
    close(attributions, expected)
    np.testing.assert_allclose(ig.last_delta, expected_delta, atol=delta_tolerance(expected))


def test_integrated_gradients_converge_as_steps_grow():
    module, pixels = build("residual"), faces()
    coarse = IntegratedGradients(InProcessModel(module), steps=4)
    fine = IntegratedGradients(InProcessModel(module), steps=64)
    coarse.attribute(pixels, LABELS)
    fine.attribute(pixels, LABELS)
    assert np.abs(fine.last_delta).max() <= np.abs(coarse.last_delta).max()


def test_integrated_gradients_send_every_step_in_one_request_or_bounded_ones():
    model = RecordingModel(InProcessModel(build("functional_relu")))
    pixels = faces()
    whole = IntegratedGradients(model, steps=IG_STEPS).attribute(pixels, LABELS)
    assert model.sizes("input_gradient") == [IG_STEPS * 3 + 6]  # every step of every image, plus the images and baselines

    model.requests.clear()
    ig = IntegratedGradients(model, steps=IG_STEPS, batch_size=20)
    split = ig.attribute(pixels, LABELS)
    assert model.sizes("input_gradient") == [20, 20, 14]
    close(split, whole)
    assert ig.last_delta.shape == (3,)


# --- shapes, values and arguments ----------------------------------------------------------


def explainers(model) -> list[Explainer]:
    return [Saliency(model), SmoothGrad(model, samples=2), IntegratedGradients(model, steps=4)]


def test_every_method_is_an_explainer_that_takes_any_numeric_pixels_and_no_images():
    model = InProcessModel(build("functional_relu"))
    for explainer in explainers(model):
        assert isinstance(explainer, Explainer)
        maps = explainer.attribute(faces(2).astype(np.float64), [1, 2])
        assert maps.dtype == np.float32 and maps.shape == (2, 48, 48)
        empty = explainer.attribute(np.zeros((0, 48, 48), np.float32), np.zeros(0, np.int64))
        assert empty.shape == (0, 48, 48)


@pytest.mark.parametrize("pixels, targets", [
    (np.zeros((2, 44, 44)), [0, 1]),
    (np.zeros((2, 1, 48, 48)), [0, 1]),
    (np.zeros((48, 48)), [0]),
    (np.zeros((2, 48, 48)), [0]),
    (np.zeros((2, 48, 48)), [[0, 1]]),
    (np.zeros((2, 48, 48)), [0, 7]),
    (np.zeros((2, 48, 48)), [-1, 0]),
    (np.zeros((2, 48, 48)), [0.5, 1.0]),
])
def test_shape_and_target_mismatches_raise_value_error(pixels, targets):
    model = InProcessModel(build("functional_relu"))
    for explainer in explainers(model):
        with pytest.raises(ValueError):
            explainer.attribute(pixels, np.asarray(targets))


def test_bad_arguments_raise_value_error():
    model = InProcessModel(build("functional_relu"))
    with pytest.raises(ValueError, match="objective"):
        Saliency(model, objective="logit")
    with pytest.raises(ValueError, match="samples"):
        SmoothGrad(model, samples=0)
    with pytest.raises(ValueError, match="noise"):
        SmoothGrad(model, noise=-0.1)
    with pytest.raises(ValueError, match="method"):
        IntegratedGradients(model, method="simpson")
    with pytest.raises(ValueError, match="steps"):
        IntegratedGradients(model, steps=1, method="riemann_trapezoid")
    with pytest.raises(ValueError, match="batch_size"):
        Saliency(model, batch_size=0)
    with pytest.raises(ValueError, match="baseline"):
        IntegratedGradients(model, baseline=np.zeros((3, 48, 48))).attribute(faces(2), [0, 1])
    ig = IntegratedGradients(model)
    with pytest.raises(ValueError, match="attributions"):
        ig.convergence_delta(np.zeros((2, 44, 44)), faces(2), [0, 1])
