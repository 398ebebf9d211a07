"""Specifications of the NNPACK route for forward-only batches (grader.submission.nnpack): which
convolutions it takes, that it changes logits by rounding only, that it is deterministic, and that
it leaves everything else as it was."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

from grader.protocol import ClassLogit
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from grader.submission.nnpack import NNPACK_MIN_BATCH, NnpackConvolutions, nchw_weight, nnpack_available
from grader.submission.spec import InputSpec

pytestmark = pytest.mark.skipif(not nnpack_available(), reason="this torch build has no NNPACK")


def faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, 48, 48)).astype(np.float32)


class WideNet(nn.Module):
    """A course-style CNN with one convolution NNPACK takes (32 -> 64, 3x3, stride 1)."""

    def __init__(self, flatten_with_view: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2))
        self.wide = nn.Sequential(nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.AvgPool2d(2))
        self.head = nn.Linear(64 * 12 * 12, 7)
        self.flatten_with_view = flatten_with_view

    def forward(self, x):
        x = self.wide(self.stem(x))
        return self.head(x.view(len(x), -1) if self.flatten_with_view else x.flatten(1))


def eager_logits(net: nn.Module, pixels: np.ndarray) -> np.ndarray:
    """The plain eager model's logits, oneDNN throughout."""
    with torch.no_grad():
        return SubmissionModule(net, InputSpec()).eval()(torch.from_numpy(pixels)).numpy()


def kernels_run(model: InProcessModel, pixels: np.ndarray) -> set[str]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.logits(pixels)
    return {event.key for event in prof.key_averages()}


def test_a_wide_cnn_answers_logits_through_nnpack():
    model = InProcessModel(SubmissionModule(WideNet(), InputSpec()))
    assert model.module.nnpack
    assert "aten::_nnpack_spatial_convolution" in kernels_run(model, faces(NNPACK_MIN_BATCH))


def test_nnpack_logits_equal_onednns_within_rounding():
    pixels = faces(40)
    routed = InProcessModel(SubmissionModule(WideNet(), InputSpec())).logits(pixels)
    expected = eager_logits(WideNet(), pixels)
    assert np.abs(routed - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())
    assert (routed.argmax(1) == expected.argmax(1)).all()


def test_nnpack_logits_are_deterministic_and_independent_of_the_batch_around_a_face():
    model = InProcessModel(SubmissionModule(WideNet(), InputSpec()))
    pixels = faces(32)
    first = model.logits(pixels[:16])
    assert np.array_equal(first, model.logits(pixels[:16]))
    moved = model.logits(np.concatenate([pixels[16:21], pixels[:1], pixels[21:31]]))
    assert np.array_equal(moved[5], first[0])


def test_batches_smaller_than_nnpacks_minimum_stay_on_onednn():
    model = InProcessModel(SubmissionModule(WideNet(), InputSpec()))
    assert "aten::_nnpack_spatial_convolution" not in kernels_run(model, faces(NNPACK_MIN_BATCH - 1))


class Convolutions(nn.Module):
    """One convolution of each kind the rule must tell apart, each on the previous one's output."""

    def __init__(self) -> None:
        super().__init__()
        self.narrow_out = nn.Conv2d(64, 32, 3, padding=1)  # 32 out: too narrow
        self.taken = nn.Conv2d(32, 64, 3, padding=1)  # 3x3, stride 1, 32 in, 64 out
        self.strided = nn.Conv2d(64, 64, 3, stride=2, padding=1)
        self.dilated = nn.Conv2d(64, 64, 3, padding=2, dilation=2)
        self.pointwise = nn.Conv2d(64, 64, 1)
        self.grouped = nn.Conv2d(64, 64, 3, padding=1, groups=2)

    def forward(self, x):
        x = self.taken(self.narrow_out(x))
        return self.grouped(self.pointwise(self.dilated(self.strided(x))))


def test_only_3x3_stride_1_ungrouped_convolutions_with_32_in_and_64_out_are_routed():
    net, x = Convolutions().eval(), torch.rand(NNPACK_MIN_BATCH, 64, 12, 12)
    with torch.no_grad(), NnpackConvolutions() as mode:
        routed = net(x)
    assert mode.routed == 1
    with torch.no_grad():
        expected = net(x)
    assert torch.allclose(routed, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pool", [
    lambda x: F.max_pool2d(x, 2), lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
    lambda x: F.max_pool2d(x, 2, return_indices=True)[1], lambda x: nn.AvgPool2d(2)(x),
    lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False), lambda x: torch.max_pool2d(x, 2),
])
def test_pools_give_the_same_values_on_their_channels_last_copy(pool):
    x = torch.rand(NNPACK_MIN_BATCH, 8, 10, 10)
    with NnpackConvolutions():
        routed = pool(x)
    assert torch.equal(routed, pool(x))


def test_the_onednn_switch_is_restored_after_a_routed_convolution_even_when_it_fails():
    with NnpackConvolutions() as mode, pytest.raises(RuntimeError):
        # a convolution the rule routes, with a bias of the wrong length
        F.conv2d(torch.rand(NNPACK_MIN_BATCH, 32, 8, 8), torch.rand(64, 32, 3, 3), torch.rand(5))
    assert mode.routed == 1
    assert torch.backends.mkldnn.enabled


def test_a_model_of_narrow_convolutions_stays_on_onednn():
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(), nn.Linear(8 * 144, 7))
    assert not InProcessModel(SubmissionModule(net, InputSpec())).module.nnpack


def test_a_torchscript_model_stays_on_onednn():
    assert not InProcessModel(SubmissionModule(torch.jit.script(WideNet().eval()), InputSpec())).module.nnpack


def test_a_model_that_refuses_channels_last_stays_on_onednn_with_correct_logits():
    model = InProcessModel(SubmissionModule(WideNet(flatten_with_view=True), InputSpec()))
    assert model.module.memory_format == torch.contiguous_format and not model.module.nnpack
    pixels = faces(20)
    assert np.allclose(model.logits(pixels), eager_logits(WideNet(flatten_with_view=True), pixels), atol=1e-5)


def test_the_fast_profiles_bf16_autocast_keeps_onednn():
    assert not InProcessModel(SubmissionModule(WideNet(), InputSpec()), dtype="bfloat16").module.nnpack


def test_input_gradients_do_not_take_the_nnpack_route():
    model = InProcessModel(SubmissionModule(WideNet(), InputSpec()))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.input_gradient(faces(NNPACK_MIN_BATCH), ClassLogit(classes=np.zeros(NNPACK_MIN_BATCH, int)))
    assert "aten::_nnpack_spatial_convolution" not in {event.key for event in prof.key_averages()}


def test_a_routed_weight_is_copied_to_nchw_once_and_again_after_an_in_place_change():
    weight = torch.rand(64, 32, 3, 3).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        first = nchw_weight(weight)
        assert first.is_contiguous() and torch.equal(first, weight)
        assert nchw_weight(weight) is first
        weight.mul_(2)
        renewed = nchw_weight(weight)
    assert renewed is not first and torch.equal(renewed, weight)
    contiguous = torch.rand(64, 32, 3, 3)
    with torch.no_grad():
        assert nchw_weight(contiguous) is contiguous


def test_a_kept_nchw_weight_made_in_inference_mode_serves_outside_it():
    weight = torch.rand(64, 32, 3, 3).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        kept = nchw_weight(weight)
    assert not kept.is_inference()
    with torch.no_grad(), NnpackConvolutions() as mode:
        F.conv2d(torch.rand(NNPACK_MIN_BATCH, 32, 8, 8), weight, padding=1)
    assert mode.routed == 1


def test_a_routed_convolution_gives_the_same_bits_with_the_kept_weight_as_with_a_copy_per_call():
    x = torch.rand(NNPACK_MIN_BATCH, 32, 8, 8)
    weight = torch.rand(64, 32, 3, 3).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), NnpackConvolutions() as kept_mode:
        kept = F.conv2d(x, weight, padding=1)
        again = F.conv2d(x, weight, padding=1)
    with NnpackConvolutions() as copied_mode:  # autograd on: the weight is copied in the call
        copied = F.conv2d(x, weight, padding=1)
    assert kept_mode.routed == 2 and copied_mode.routed == 1
    assert torch.equal(kept, again) and torch.equal(kept, copied)


def test_a_randomized_copy_keeps_the_layout_and_nnpack_choices_without_probing_again(monkeypatch):
    model = InProcessModel(SubmissionModule(WideNet(), InputSpec()))
    assert model.module.nnpack and model.module.memory_format == torch.channels_last
    probes = []
    monkeypatch.setattr("grader.submission.module._ramp_faces",
                        lambda n, device: probes.append(n) or torch.zeros(n, 48, 48, device=device))
    random_model = model.randomized(seed=0, top_layers=2)
    assert random_model.module.nnpack and random_model.module.memory_format == torch.channels_last
    assert probes == [4]  # use_probability_outputs' probe only
    pixels = faces(NNPACK_MIN_BATCH)
    assert "aten::_nnpack_spatial_convolution" in kernels_run(random_model, pixels)


def test_a_randomized_copy_answers_as_a_freshly_probed_module_with_its_weights():
    model = InProcessModel(SubmissionModule(WideNet(), InputSpec()))
    random_model = model.randomized(seed=0, top_layers=2)
    fresh = InProcessModel(SubmissionModule(copy.deepcopy(random_model.module.net), InputSpec()))
    assert fresh.module.nnpack == random_model.module.nnpack
    pixels = faces(NNPACK_MIN_BATCH)
    assert np.array_equal(fresh.logits(pixels), random_model.logits(pixels))


def test_the_bf16_copy_of_a_probed_module_still_keeps_onednn():
    model = InProcessModel(SubmissionModule(WideNet(), InputSpec()), dtype="bfloat16")
    assert not model.randomized(seed=0, top_layers=1).module.nnpack
