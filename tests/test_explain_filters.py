"""Specifications of the filter visualization (Q2): gradient ascent on every channel of one layer
through the model protocol, checked on small hand-built CNNs wrapped as InProcessModel."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from grader.explain.ascent import start_images
from grader.explain.filters import FilterVisualization, activation_gain, layer_outputs
from grader.protocol import ChannelMean, ModelDescription
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from tests.recording import RecordingModel

# --- helpers --------------------------------------------------------------------------------


class Tripwire(nn.Module):
    """Fails the forward once armed: proves that no request runs the model past this point."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def forward(self, x):
        if self.armed:
            raise AssertionError("the forward ran past the visualized layer")
        return x


def conv_net(seed: int = 0) -> nn.Sequential:
    """Two random 3x3 convolutions (6 and 5 channels) and a linear head; layers '0' and '2' are Conv2d."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(20, 7))


def wrap(net: nn.Module) -> InProcessModel:
    return InProcessModel(SubmissionModule(net))


def face(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


FAST = dict(steps=6)  # few steps: every behaviour below shows after a handful

# --- the ascent -----------------------------------------------------------------------------


def test_every_channel_mean_activation_rises():
    model = wrap(conv_net())
    viz = FilterVisualization(model, **FAST)
    patterns, gain = viz.patterns()
    before = model.activations(start_images(6, viz.settings), "0").mean(axis=(2, 3))[np.arange(6), np.arange(6)]
    after = model.activations(patterns, "0").mean(axis=(2, 3))[np.arange(6), np.arange(6)]
    assert np.all(gain > 1)
    assert np.all(after > before)


def rectified_mean(maps: np.ndarray) -> np.ndarray:
    """mean(leaky_relu(a, 0.01)) per channel map, the filter ascent's objective, by hand."""
    return np.where(maps > 0, maps, 0.01 * maps).mean(axis=(-2, -1))


def test_the_ascent_climbs_the_rectified_mean_of_each_channel():
    model = wrap(conv_net())
    viz = FilterVisualization(model, **FAST)
    patterns, gain = viz.patterns()
    channels = np.arange(6)
    before = rectified_mean(model.activations(start_images(6, viz.settings), "0"))[channels, channels]
    after = rectified_mean(model.activations(patterns, "0"))[channels, channels]
    np.testing.assert_allclose(gain, activation_gain(before, after), rtol=1e-4)


def test_a_channel_silent_on_the_start_image_still_climbs():
    net = conv_net()
    with torch.no_grad():
        net[0].bias[2] = -1000.0  # channel 2 is below zero on every image in 0..255
    patterns, gain = FilterVisualization(wrap(net), **FAST).patterns()
    assert gain[2] > 1
    assert not np.array_equal(patterns[2], start_images(1, FilterVisualization(wrap(net), **FAST).settings)[0])


def test_a_bare_first_conv_gets_textured_patterns_where_the_plain_mean_gets_flat_ones():
    # The plain mean of a pre-activation conv channel is linear in the pixels: its ascent moves
    # every pixel alike. Rectified, only where the channel fires counts. Trained first-layer
    # kernels are mostly edge detectors that sum to about zero, as these are made to.
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.Flatten(), nn.Linear(8 * 48 * 48, 7))
    with torch.no_grad():
        net[0].weight -= net[0].weight.mean(dim=(1, 2, 3), keepdim=True)
        net[0].bias.zero_()
    flat, _ = FilterVisualization(wrap(net), steps=32, negative_slope=1.0).patterns()
    rectified, _ = FilterVisualization(wrap(net), steps=32).patterns()

    def inner_contrast(patterns: np.ndarray) -> float:  # away from the zero-padded borders
        return float(np.median(patterns[:, 8:-8, 8:-8].std(axis=(1, 2))))

    assert inner_contrast(rectified) > 3 * inner_contrast(flat)


def test_gain_is_the_ratio_for_a_positive_start_and_still_rises_from_below_zero():
    gain = activation_gain(np.array([2.0, -1.0, -1.0, 0.0, 3.0]), np.array([6.0, 3.0, -1.0, 0.0, 1.5]))
    np.testing.assert_allclose(gain, [3.0, 5.0, 1.0, 1.0, 0.5])


def test_one_input_gradient_request_per_step_carries_every_channel():
    model = RecordingModel(wrap(conv_net()))
    FilterVisualization(model, steps=5).patterns()
    steps, last = model.requests[:5], model.requests[5:]
    assert [(r.name, r.size) for r in steps] == [("input_gradient", 6)] * 5
    for objective in [r.detail for r in steps]:
        assert isinstance(objective, ChannelMean) and objective.layer == "0"
        np.testing.assert_array_equal(objective.channels, np.arange(6))
    # then one request measures the start and the final images together, for the gain
    assert [(r.name, r.size) for r in last] == [("input_gradient", 12)]


def test_channels_are_capped_at_max_channels():
    model = RecordingModel(wrap(conv_net()))
    result = FilterVisualization(model, max_channels=4, **FAST).visualize(face())
    np.testing.assert_array_equal(result.channels, [0, 1, 2, 3])
    assert result.patterns.shape == (4, 48, 48) and result.activation_gain.shape == (4,)
    assert result.outputs.shape == (4, 48, 48)
    assert all(r.size == 4 for r in model.requests[:FAST["steps"]])


def test_the_layer_defaults_to_the_first_conv2d():
    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict(
        stem=nn.Identity(),
        body=nn.Sequential(nn.ReLU(), nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(3, 4, 3, padding=1)),
        head=nn.Sequential(nn.Flatten(), nn.Linear(4 * 48 * 48, 7)),
    ))
    result = FilterVisualization(wrap(net), **FAST).visualize(face())
    assert result.layer == "body.1"
    np.testing.assert_array_equal(result.channels, np.arange(3))


def test_a_named_layer_is_visualized():
    model = RecordingModel(wrap(conv_net()))
    result = FilterVisualization(model, layer="2", **FAST).visualize(face())
    assert result.layer == "2"
    np.testing.assert_array_equal(result.channels, np.arange(5))
    assert {r.detail.layer for r in model.requests if r.name == "input_gradient"} == {"2"}
    assert result.outputs.shape == (5, 48, 48)


def test_the_forward_stops_at_the_layer():
    tripwire = Tripwire()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), tripwire, nn.Flatten(), nn.Linear(4 * 48 * 48, 7))
    model = wrap(net)
    model.describe()  # the shapes are found with one whole forward, before the wire is armed
    tripwire.armed = True
    result = FilterVisualization(model, **FAST).visualize(face())
    assert result.layer == "0" and np.all(result.activation_gain > 1)


def test_the_same_seed_gives_identical_arrays_and_another_seed_differs():
    model = wrap(conv_net())
    first = FilterVisualization(model, seed=3, **FAST).visualize(face())
    again = FilterVisualization(model, seed=3, **FAST).visualize(face())
    other = FilterVisualization(model, seed=4, **FAST).visualize(face())
    for name, array in first.arrays().items():
        assert array.tobytes() == again.arrays()[name].tobytes(), name
    assert not np.array_equal(first.patterns, other.patterns)


def test_layer_outputs_are_the_models_activations_for_the_image():
    model = wrap(conv_net())
    image = face(5)
    outputs = layer_outputs(model, image, "2", max_channels=3)
    expected = model.activations(image[None].astype(np.float32), "2")[0, :3]
    assert outputs.dtype == np.float32
    np.testing.assert_array_equal(outputs, expected)


def test_the_result_holds_the_fields_of_filters_npz():
    result = FilterVisualization(wrap(conv_net()), layer="2", **FAST).visualize(face(1))
    assert result.method == "filters"
    arrays = result.arrays()
    assert set(arrays) == {"layer", "channels", "patterns", "activation_gain", "image", "outputs"}
    assert str(arrays["layer"]) == "2"
    assert result.patterns.dtype == np.float32 and result.outputs.dtype == np.float32
    assert result.image.dtype == np.uint8 and result.image.tobytes() == face(1).tobytes()


def test_patterns_stay_within_0_and_255():
    # big steps drive many pixels into the bounds, where the clip holds them
    patterns, _ = FilterVisualization(wrap(conv_net()), steps=4, step_size=200.0).patterns()
    assert patterns.min() == 0.0 and patterns.max() == 255.0


def test_an_unknown_layer_is_refused_naming_the_layers():
    viz = FilterVisualization(wrap(conv_net()), layer="conv9")  # building it asks the model nothing
    with pytest.raises(ValueError, match=r"no layer 'conv9'; its layers are: 0, 1, 2"):
        viz.visualize(face())


def test_a_layer_without_channel_maps_is_refused():
    with pytest.raises(ValueError, match=r"layer '6' outputs shape \(7,\), not channel maps"):
        FilterVisualization(wrap(conv_net()), layer="6").patterns()


class UnknownShapes(RecordingModel):
    """A model whose description gives no layer shapes (a TorchScript layer inside an `if`)."""

    def describe(self) -> ModelDescription:
        described = self.inner.describe()
        return replace(described, layers=tuple(replace(info, output_shape=()) for info in described.layers))


def test_a_layer_of_unknown_shape_is_measured_by_one_activations_request_before_the_ascent():
    model = UnknownShapes(wrap(conv_net()))
    result = FilterVisualization(model, layer="2", **FAST).visualize(face())
    assert [(r.name, r.size) for r in model.requests] == \
        [("activations", 1)] + [("input_gradient", 5)] * FAST["steps"] + [("input_gradient", 10), ("activations", 1)]
    np.testing.assert_array_equal(result.channels, np.arange(5))
