"""The in-process and the sandboxed model give identical arrays for identical requests, on every
example submission: explain/ and scoring/ cannot tell which one they hold, nor can the similarity
report tell which one fingerprinted the weights."""

from __future__ import annotations

import numpy as np
import pytest

from grader.data.synth import generate
from grader.profile import HardwareProfile
from grader.protocol import ChannelMean, ClassLogit, CrossEntropy
from grader.sandbox.client import SandboxedModel
from grader.submission.build import build_model
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from grader.submission.spec import load_spec
from tests.conftest import EXAMPLES
from tests.test_formats import write_as

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("require_bwrap")]
WORKING = ["vgg", "small_cnn", "lightning_ckpt", "torchscript", "residual_zh"]
OTHER_FORMATS = ["small_cnn:export", "vgg:onnx", "residual_zh:safetensors"]
"""Issue 17's formats, parsed only inside the sandbox: an example written in each (tests/test_formats.py)."""
FACES = generate(16, seed=21)
PIXELS = FACES.images.astype(np.float32)


@pytest.fixture(scope="module", params=WORKING + OTHER_FORMATS)
def pair(request, tmp_path_factory):
    profile = HardwareProfile()
    profile.apply()  # the same threads and determinism as the sandbox
    example, _, fmt = request.param.partition(":")
    folder = write_as(example, fmt, tmp_path_factory.mktemp("formats")) if fmt else EXAMPLES / example
    spec = load_spec(folder)
    local = InProcessModel(SubmissionModule(build_model(folder, spec), spec.input))
    with SandboxedModel.open(folder, profile, "bwrap") as remote:
        yield local, remote


def test_descriptions_are_equal(pair):
    local, remote = pair
    assert local.describe() == remote.describe()


def test_logits_are_identical(pair):
    local, remote = pair
    assert np.array_equal(local.logits(PIXELS), remote.logits(PIXELS))


@pytest.mark.parametrize("objective", [ClassLogit(classes=FACES.labels), CrossEntropy(labels=FACES.labels)],
                         ids=["class_logit", "cross_entropy"])
def test_input_gradients_are_identical(pair, objective):
    local, remote = pair
    (value_a, grad_a), (value_b, grad_b) = local.input_gradient(PIXELS, objective), remote.input_gradient(PIXELS, objective)
    assert np.array_equal(value_a, value_b) and np.array_equal(grad_a, grad_b)
    assert np.abs(grad_a).sum() > 0


def test_channel_gradients_and_activations_are_identical(pair):
    local, remote = pair
    convs = local.describe().conv_layers
    layer = convs[0].name if convs else "conv1"
    objective = ChannelMean(layer=layer, channels=np.arange(len(PIXELS)) % 4, negative_slope=0.01)
    grad_a, grad_b = local.input_gradient(PIXELS, objective), remote.input_gradient(PIXELS, objective)
    act_a, act_b = local.activations(PIXELS, layer), remote.activations(PIXELS, layer)
    assert np.array_equal(grad_a[0], grad_b[0]) and np.array_equal(grad_a[1], grad_b[1])
    assert np.array_equal(act_a, act_b)


def test_randomized_copies_are_identical_and_differ_from_the_model(pair):
    local, remote = pair
    random_local, random_remote = local.randomized(seed=5, top_layers=2), remote.randomized(seed=5, top_layers=2)
    logits = random_local.logits(PIXELS)
    assert np.array_equal(logits, random_remote.logits(PIXELS))
    assert not np.array_equal(logits, local.logits(PIXELS))
    random_remote.close()


def test_layer_gradients_are_identical(pair):
    local, remote = pair
    convs = local.describe().conv_layers
    layer = convs[-1].name if convs else "conv3"
    local_answer = local.layer_gradient(PIXELS, layer, FACES.labels)
    remote_answer = remote.layer_gradient(PIXELS, layer, FACES.labels)
    assert all(np.array_equal(a, b) for a, b in zip(local_answer, remote_answer))


def test_weights_fingerprints_are_identical(pair):
    """The sandbox fingerprints the model it loaded; the grader rebuilds the same fingerprint from
    the validated arrays (grader.fingerprint), as the similarity report needs."""
    local, remote = pair
    fingerprint = remote.weights_fingerprint()
    assert fingerprint.same_as(local.weights_fingerprint())
    assert fingerprint.total > 0


def test_a_randomized_copys_fingerprint_is_identical_and_differs_from_the_model(pair):
    local, remote = pair
    random_local, random_remote = local.randomized(seed=5, top_layers=2), remote.randomized(seed=5, top_layers=2)
    fingerprint = random_remote.weights_fingerprint()
    assert fingerprint.same_as(random_local.weights_fingerprint())
    assert fingerprint.digest != local.weights_fingerprint().digest
    random_remote.close()
