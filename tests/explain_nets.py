"""Tiny nets for the explanation methods' tests, each a way a student's forward can differ, with the
faces they explain and the Captum helpers they are checked against. Captum runs on the module itself
with (N, 1, 48, 48) float32 pixels in 0..255, so its gradients are with respect to the same raw pixels
as the protocol's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import Saliency as CaptumSaliency
from torch import nn

from grader.submission.module import SubmissionModule
from grader.submission.spec import InputSpec

LABELS = np.array([0, 3, 6])

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
def one_torch_thread():
    """One torch thread, as the grading profile runs: tiny nets on a busy machine run much faster so.
    A test module imports it (with `module`, when it uses that) to have it."""
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
