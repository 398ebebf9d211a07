"""Specifications of SubmissionModule (raw pixels in, the student's preprocessing applied, gradients
back to the pixels) and of check_model (a model the grader can score, or stage 'checks' saying why not)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.submission.checks import check_model
from grader.submission.inprocess import InProcessModel
from grader.submission.errors import SubmissionError
from grader.submission.module import SubmissionModule
from grader.submission.spec import InputSpec

# --- helpers --------------------------------------------------------------------------------


class Preprocessed(nn.Module):
    """A 'model' that returns its input: shows what the student's network is fed."""

    def forward(self, x):
        return x


class PixelSum(nn.Module):
    """One output per face: the sum of everything it is fed (so d output / d input = 1)."""

    def forward(self, x):
        return x.sum(dim=(1, 2, 3)).unsqueeze(1)


class GoodNet(nn.Module):
    """A small CNN with BatchNorm and Dropout: correct once in eval mode."""

    def __init__(self, classes: int = 7, in_channels: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 4 * 4, classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(torch.relu(self.bn(self.conv(x))), 4)
        return self.fc(self.drop(x.flatten(1)))


class Wraps(nn.Module):
    """GoodNet with something done to its logits (or instead of returning them)."""

    def __init__(self, after):
        super().__init__()
        self.net = GoodNet()
        self.after = after

    def forward(self, x):
        return self.after(self.net(x), x)


def faces(n: int = 8, seed: int = 0) -> torch.Tensor:
    """n raw 48x48 faces, pixels in 0..255 as the grader feeds them."""
    return torch.rand(n, 48, 48, generator=torch.Generator().manual_seed(seed)) * 255


def columns(n: int = 2) -> torch.Tensor:
    """n faces whose pixel value is its column index."""
    return torch.arange(48.0).expand(n, 48, 48).clone()


def check_outputs(module: SubmissionModule, pixels: torch.Tensor) -> None:
    check_model(InProcessModel(module), pixels.numpy())


def checks_error(net: nn.Module, pixels: torch.Tensor, input_spec: InputSpec | None = None) -> str:
    """The message of the check that fails; its stage is 'checks', or 'request' for a forward that
    raised (the batch files that under whichever stage made the request)."""
    with pytest.raises(SubmissionError) as caught:
        check_outputs(SubmissionModule(net, input_spec), pixels)
    assert caught.value.stage in ("checks", "request")
    return caught.value.message


def trained(net: nn.Module) -> nn.Module:
    """Give BatchNorm running statistics that are not the identity, as after training."""
    net.train()
    channels = net.conv.in_channels
    with torch.no_grad():
        for _ in range(3):
            net(faces(16, seed=9).unsqueeze(1).expand(-1, channels, -1, -1) / 255)
    return net


# --- preprocessing --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 48, 48), (5, 1, 48, 48)])
def test_faces_with_or_without_a_channel_axis_reach_the_model_as_n_1_48_48(shape):
    pixels = torch.rand(shape) * 255

    fed = SubmissionModule(Preprocessed())(pixels)

    assert fed.shape == (5, 1, 48, 48)
    assert torch.allclose(fed, pixels.reshape(5, 1, 48, 48) / 255)


def test_without_an_input_spec_the_defaults_apply():
    assert SubmissionModule(Preprocessed()).input_spec == InputSpec()


def test_a_smaller_size_takes_the_center_crop():
    module = SubmissionModule(Preprocessed(), InputSpec(size=44, scale=1))

    fed = module(columns())

    assert fed.shape == (2, 1, 44, 44)
    assert (fed[..., 0] == 2).all()  # columns 0 and 1 are cut off
    assert (fed[..., -1] == 45).all()  # and so are columns 46 and 47
    assert torch.equal(module(columns().transpose(1, 2))[..., 0, :], fed[..., 0].new_full((2, 1, 44), 2))


def test_an_odd_crop_loses_one_more_pixel_at_the_bottom_right():
    fed = SubmissionModule(Preprocessed(), InputSpec(size=45, scale=1))(columns())

    assert fed.shape == (2, 1, 45, 45)
    assert (fed[..., 0] == 1).all() and (fed[..., -1] == 45).all()


def test_three_channels_repeat_the_gray_channel():
    pixels = faces(3)

    fed = SubmissionModule(Preprocessed(), InputSpec(channels=3))(pixels)

    assert fed.shape == (3, 3, 48, 48)
    for channel in range(3):
        assert torch.equal(fed[:, channel], pixels / 255)


def test_pixels_are_mapped_to_pixel_over_scale_minus_mean_over_std():
    pixels = torch.zeros(1, 48, 48)
    pixels[0, 0, :3] = torch.tensor([0.0, 51.0, 255.0])

    fed = SubmissionModule(Preprocessed(), InputSpec(scale=255, mean=0.5, std=0.25))(pixels)

    assert torch.allclose(fed[0, 0, 0, :3], torch.tensor([-2.0, -1.2, 2.0]))


def test_gradients_reach_the_raw_pixels_inside_the_crop_only():
    pixels = faces(2).requires_grad_(True)
    module = SubmissionModule(PixelSum(), InputSpec(size=44, channels=3, scale=255, std=0.5))

    module(pixels).sum().backward()

    assert pixels.grad.shape == (2, 48, 48)
    inside = pixels.grad[:, 2:46, 2:46]
    assert torch.allclose(inside, torch.full_like(inside, 3 / (255 * 0.5)))  # three channels, each 1/(scale*std)
    border = pixels.grad.clone()
    border[:, 2:46, 2:46] = 0
    assert (border == 0).all()


# --- predict_step ---------------------------------------------------------------------------


def test_predict_step_takes_a_tuple_batch_or_a_bare_tensor():
    module = SubmissionModule(trained(GoodNet())).eval()
    pixels, labels = faces(4), torch.arange(4)

    with torch.no_grad():
        expected = module(pixels)
        assert torch.equal(module.predict_step((pixels,), 0), expected)
        assert torch.equal(module.predict_step((pixels, labels), 0), expected)
        assert torch.equal(module.predict_step([pixels, labels], 0), expected)
        assert torch.equal(module.predict_step(pixels, 0), expected)
    assert expected.shape == (4, 7)


# --- check_outputs --------------------------------------------------------------------------


def test_a_good_model_with_batchnorm_and_dropout_passes_and_is_left_in_eval_mode():
    net = trained(GoodNet())
    module = SubmissionModule(net)
    assert net.training

    check_outputs(module, faces(8))

    assert not any(m.training for m in module.modules())


def test_a_three_channel_model_with_a_crop_passes():
    check_outputs(SubmissionModule(trained(GoodNet(in_channels=3)), InputSpec(size=40, channels=3)), faces(8))


def test_the_wrong_number_of_classes_is_reported_with_both_shapes():
    message = checks_error(GoodNet(classes=6), faces(8))

    assert message.startswith("the model returned shape (8, 6) for 8 faces, expected (8, 7): ")
    assert "one logit per expression class" in message
    assert "Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral" in message


def test_nan_logits_are_counted_by_face():
    pixels = faces(8)
    pixels[[1, 4, 6]] = 0  # a blank face: 0 / 0 below

    def per_face_brightness(logits, x):
        brightness = x.flatten(1).mean(dim=1, keepdim=True)
        return logits * brightness / brightness

    message = checks_error(Wraps(per_face_brightness), pixels)

    assert message.startswith("the model returned NaN or Inf logits for 3 of 8 faces; ")
    assert "check the weights file" in message


def test_a_forward_that_returns_a_tuple_is_refused():
    message = checks_error(Wraps(lambda logits, x: (logits, x)), faces(8))

    assert message == "the model returned tuple, expected a tensor of logits shaped (N, 7)"


def test_a_forward_that_raises_names_the_input_shape_it_got():
    # The model wants three channels; submission.yaml forgot to say so.
    message = checks_error(GoodNet(in_channels=3), faces(8), InputSpec(size=44))

    assert message.startswith("the model's forward failed on a batch of 8 faces shaped (8, 1, 44, 44): "
                              "RuntimeError: ")
    assert "channels" in message


def test_outputs_that_change_between_calls_in_eval_mode_are_refused():
    message = checks_error(Wraps(lambda logits, x: F.dropout(logits, 0.5, training=True)), faces(8))

    assert message.startswith("the model gives different outputs for the same input in eval mode (max difference ")
    assert "dropout called with training=True" in message


def test_outputs_that_depend_on_the_other_faces_in_the_batch_are_refused():
    message = checks_error(Wraps(lambda logits, x: logits - logits.mean(dim=0, keepdim=True)), faces(8))

    assert message.startswith("the model's output for a face depends on the other faces in its batch "
                              "(max difference ")
    assert "model(x)[i] and model(x[i:i+1])" in message
    assert "not batch statistics" in message


def test_a_model_that_passes_reports_its_batch_gap_as_rounding_only():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 46 * 46, 7))
    checks = check_model(InProcessModel(SubmissionModule(net)), faces().numpy())
    assert 0 <= checks.batch_gap < 1e-5
    assert checks.description.num_classes == 7


def test_the_softmax_and_layout_probes_build_their_faces_on_the_model_s_device(monkeypatch):
    # On a GPU the softmax probe ran CPU faces through a CUDA model, failed, and was read as "no
    # softmax": such a model's probabilities would have been taken for its logits.
    import grader.submission.module as module_file

    asked: list[torch.device] = []
    ramp = module_file._ramp_faces
    monkeypatch.setattr(module_file, "_ramp_faces", lambda count, device: asked.append(device) or ramp(count, device))
    module = SubmissionModule(nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 7), nn.Softmax(dim=1)))
    assert module.use_probability_outputs()
    module.use_channels_last()
    assert asked == [module.device, module.device]
