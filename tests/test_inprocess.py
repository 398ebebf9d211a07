"""Specifications of InProcessModel: the model protocol answered with torch over a SubmissionModule,
checked on small hand-built nets against values computed by hand or with plain autograd."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.protocol import ChannelMean, ClassLogit, CrossEntropy
from grader.submission.errors import SubmissionError
from grader.submission.inprocess import PREDICT_BATCH, InProcessModel
from grader.submission.module import SubmissionModule
from grader.submission.spec import InputSpec

# --- helpers --------------------------------------------------------------------------------


def faces(n: int, seed: int = 0) -> np.ndarray:
    """n random raw faces, float32 in 0..255."""
    return np.random.default_rng(seed).uniform(0, 255, (n, 48, 48)).astype(np.float32)


def wrap(net: nn.Module, spec: InputSpec | None = None) -> InProcessModel:
    return InProcessModel(SubmissionModule(net, spec))


def linear_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 7))


def small_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(3 * 4 * 4, 7))


def autograd_reference(pixels: np.ndarray, objective) -> tuple[np.ndarray, np.ndarray]:
    """An objective's values per image and its gradient wrt the raw pixels, with plain autograd and
    the default InputSpec's preprocessing written out: (N, 1, 48, 48) pixels / 255."""
    x = torch.tensor(pixels).requires_grad_(True)
    values = objective(x.unsqueeze(1) / 255)
    (gradient,) = torch.autograd.grad(values.sum(), x)
    return values.detach().numpy(), gradient.numpy()


class ReturnsTuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(48 * 48, 7)

    def forward(self, x):
        logits = self.fc(x.flatten(1))
        return logits, logits.softmax(1)


class Tripwire(nn.Module):
    """Counts its calls and fails: a layer the forward must never reach."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        raise AssertionError("the forward went past the target layer")


class Raises(nn.Module):
    def __init__(self, error: Exception):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.error = error

    def forward(self, x):
        raise self.error


class SharedRelu(nn.Module):
    """One ReLU module used twice, on outputs of different shapes."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(2, 5, 3, stride=2, padding=1)
        self.fc = nn.Linear(5 * 24 * 24, 7)

    def forward(self, x):
        return self.fc(self.relu(self.conv2(self.relu(self.conv1(x)))).flatten(1))


class HasUnusedLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(48 * 48, 7)
        self.unused = nn.Linear(7, 7)

    def forward(self, x):
        return self.fc(x.flatten(1))


# --- logits ---------------------------------------------------------------------------------


def test_logits_of_more_faces_than_one_predict_batch_are_the_nets_logits_in_order():
    net = linear_net()
    weight, bias = net[1].weight.detach().numpy().astype(np.float64), net[1].bias.detach().numpy().astype(np.float64)
    pixels = faces(300)
    assert len(pixels) > PREDICT_BATCH

    logits = wrap(net).logits(pixels)

    expected = (pixels.reshape(300, -1).astype(np.float64) / 255) @ weight.T + bias
    assert logits.dtype == np.float32 and logits.shape == (300, 7)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_a_net_returning_a_tuple_gives_a_checks_error():
    with pytest.raises(SubmissionError) as caught:
        wrap(ReturnsTuple()).logits(faces(3))

    assert caught.value.stage == "checks"
    assert "tuple" in caught.value.message


# --- input gradients ------------------------------------------------------------------------


def test_class_logit_of_a_linear_net_has_the_class_weights_over_255_as_gradient():
    net = linear_net()
    weight, bias = net[1].weight.detach().numpy().astype(np.float64), net[1].bias.detach().numpy().astype(np.float64)
    pixels, classes = faces(4), np.array([0, 6, 3, 3])

    values, gradient = wrap(net).input_gradient(pixels, ClassLogit(classes=classes))

    logits = (pixels.reshape(4, -1).astype(np.float64) / 255) @ weight.T + bias
    np.testing.assert_allclose(values, logits[np.arange(4), classes], rtol=1e-4, atol=1e-4)
    assert gradient.shape == (4, 48, 48) and gradient.dtype == np.float32
    for image, c in enumerate(classes):
        np.testing.assert_allclose(gradient[image], weight[c].reshape(48, 48) / 255, rtol=1e-5, atol=1e-9)


def test_cross_entropy_values_and_gradient_equal_plain_autograd():
    net = small_cnn()
    pixels, labels = faces(5), np.array([0, 1, 2, 6, 4])
    expected_values, expected_gradient = autograd_reference(
        pixels, lambda x: F.cross_entropy(net(x), torch.as_tensor(labels), reduction="none"))

    values, gradient = wrap(net).input_gradient(pixels, CrossEntropy(labels=labels))

    np.testing.assert_allclose(values, expected_values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-4, atol=1e-8)
    assert np.abs(gradient).sum() > 0


def test_channel_mean_is_the_chosen_channels_mean_activation_for_each_image():
    net = small_cnn()
    conv = net[0]
    pixels, channels = faces(4), np.array([2, 0, 1, 2])

    values, _ = wrap(net).input_gradient(pixels, ChannelMean(layer="1", channels=channels))

    with torch.no_grad():
        activation = torch.relu(F.conv2d(torch.tensor(pixels).unsqueeze(1) / 255, conv.weight, conv.bias, padding=1))
    expected = [activation[i, c].mean().item() for i, c in enumerate(channels)]
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-7)


def test_channel_mean_stops_the_forward_at_its_layer():
    tripwire = Tripwire()
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), tripwire)
    model = wrap(net)
    tripwire.calls = 0  # wrapping runs the forward once to choose the memory layout

    model.input_gradient(faces(2), ChannelMean(layer="0", channels=np.array([0, 1])))
    model.activations(faces(2), "1")

    assert tripwire.calls == 0


def test_channel_mean_gradient_equals_autograd_of_that_mean():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                        Tripwire())
    pixels, channels = faces(3), np.array([3, 1, 0])
    expected_values, expected_gradient = autograd_reference(
        pixels, lambda x: net[3](net[2](net[1](net[0](x))))[torch.arange(3), torch.as_tensor(channels)].mean(dim=(1, 2)))

    values, gradient = wrap(net).input_gradient(pixels, ChannelMean(layer="3", channels=channels))

    np.testing.assert_allclose(values, expected_values, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-4, atol=1e-9)
    assert np.abs(gradient).sum() > 0


def test_wrapping_freezes_the_parameters_and_gradients_still_reach_the_pixels():
    net = small_cnn()
    assert all(p.requires_grad for p in net.parameters())

    model = wrap(net)
    _, gradient = model.input_gradient(faces(2), ClassLogit(classes=np.array([1, 5])))

    assert not any(p.requires_grad for p in net.parameters())
    assert all(p.grad is None for p in net.parameters())
    assert np.abs(gradient).sum() > 0


# --- activations ----------------------------------------------------------------------------


def test_activations_are_the_layers_output():
    net = small_cnn()
    conv = net[0]
    pixels = faces(3)

    activations = wrap(net).activations(pixels, "0")

    with torch.no_grad():
        expected = F.conv2d(torch.tensor(pixels).unsqueeze(1) / 255, conv.weight, conv.bias, padding=1).numpy()
    assert activations.shape == (3, 3, 48, 48) and activations.dtype == np.float32
    np.testing.assert_allclose(activations, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer", ["conv9", ""])
def test_an_unknown_layer_gives_an_error_naming_available_layers(layer):
    with pytest.raises(SubmissionError) as caught:
        wrap(small_cnn()).activations(faces(1), layer)

    assert caught.value.stage == "request"
    assert f"no layer '{layer}'" in caught.value.message
    assert "0, 1, 2, 3, 4" in caught.value.message


def test_a_layer_never_called_in_forward_gives_a_clear_error():
    with pytest.raises(SubmissionError) as caught:
        wrap(HasUnusedLayer()).activations(faces(1), "unused")

    assert caught.value.stage == "request"
    assert "'unused' is never called" in caught.value.message


# --- describe -------------------------------------------------------------------------------


def test_describe_lists_classes_input_spec_and_layer_shapes_without_batch_axis():
    spec = InputSpec(size=40, channels=3, scale=1.0, mean=0.5, std=0.25)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(4 * 20 * 20, 7))

    description = wrap(net, spec).describe()

    assert description.num_classes == 7
    assert description.input == {"size": 40, "channels": 3, "scale": 1.0, "mean": 0.5, "std": 0.25,
                                 "normalize": "fixed", "equalize": False, "tta": "none"}
    assert [(layer.name, layer.kind, layer.output_shape) for layer in description.layers] == [
        ("0", "Conv2d", (4, 40, 40)),
        ("1", "ReLU", (4, 40, 40)),
        ("2", "MaxPool2d", (4, 20, 20)),
        ("3", "Flatten", (1600,)),
        ("4", "Linear", (7,)),
    ]
    assert [layer.name for layer in description.conv_layers] == ["0"]
    assert description.outputs == "logits"


def test_a_module_used_twice_keeps_the_shape_of_its_first_call():
    description = wrap(SharedRelu()).describe()

    assert description.layer("relu").output_shape == (2, 48, 48)
    assert description.layer("conv2").output_shape == (5, 24, 24)
    assert [layer.name for layer in description.layers] == ["conv1", "relu", "conv2", "fc"]


# --- errors from the forward ----------------------------------------------------------------


@pytest.mark.parametrize("ask", ["logits", "input_gradient"])
def test_a_forward_that_raises_gives_a_request_error_with_the_batch_shape(ask):
    model = wrap(Raises(ValueError("shapes do not line up")))
    pixels = faces(5)

    with pytest.raises(SubmissionError) as caught:
        if ask == "logits":
            model.logits(pixels)
        else:
            model.input_gradient(pixels, ClassLogit(classes=np.zeros(5, np.int64)))

    assert caught.value.stage == "request"
    assert "forward failed on a batch of 5 faces shaped (5, 1, 48, 48)" in caught.value.message
    assert "ValueError: shapes do not line up" in caught.value.message


def test_the_error_shape_is_what_the_net_is_fed_after_preprocessing():
    model = wrap(Raises(ValueError("no")), InputSpec(size=32, channels=3))

    with pytest.raises(SubmissionError, match=r"batch of 2 faces shaped \(2, 3, 32, 32\)"):
        model.input_gradient(faces(2), ClassLogit(classes=np.zeros(2, np.int64)))


def test_an_allocation_failure_gives_a_memory_error():
    failure = RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 123456789 bytes.")
    model = wrap(Raises(failure))

    with pytest.raises(SubmissionError) as caught:
        model.input_gradient(faces(2), ClassLogit(classes=np.zeros(2, np.int64)))

    assert caught.value.stage == "memory"
    assert "can't allocate memory" in caught.value.message


# --- randomized -----------------------------------------------------------------------------


def two_layer_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 8), nn.ReLU(), nn.Linear(8, 7))


def test_randomized_reinitializes_only_the_top_parametrized_layer():
    model = wrap(two_layer_net())
    original = copy.deepcopy(model.module.net.state_dict())

    randomized = model.randomized(seed=3, top_layers=1).module.net

    assert torch.equal(randomized[1].weight, original["1.weight"])
    assert torch.equal(randomized[1].bias, original["1.bias"])
    assert not torch.equal(randomized[3].weight, original["3.weight"])
    assert not torch.equal(randomized[3].bias, original["3.bias"])
    assert all(torch.equal(value, original[name]) for name, value in model.module.net.state_dict().items())


def test_randomized_counts_parametrized_layers_from_the_output():
    model = wrap(two_layer_net())
    original = copy.deepcopy(model.module.net.state_dict())

    randomized = model.randomized(seed=3, top_layers=2).module.net

    assert not torch.equal(randomized[1].weight, original["1.weight"])
    assert not torch.equal(randomized[3].weight, original["3.weight"])


def test_randomized_is_determined_by_its_seed():
    model = wrap(two_layer_net())

    first, again, other = (model.randomized(seed, top_layers=1).module.net[3].weight for seed in (5, 5, 6))

    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_randomized_leaves_torchs_global_random_state_alone():
    model = wrap(two_layer_net())
    torch.manual_seed(1234)
    state = torch.random.get_rng_state()

    model.randomized(seed=9, top_layers=1)

    assert torch.equal(torch.random.get_rng_state(), state)


def test_randomized_models_are_frozen_too():
    randomized = wrap(two_layer_net()).randomized(seed=1, top_layers=1)

    assert not any(p.requires_grad for p in randomized.module.parameters())


def test_randomizing_no_layers_leaves_the_outputs_equal():
    model = wrap(two_layer_net())
    pixels = faces(4)

    same = model.randomized(seed=2, top_layers=0)

    assert np.array_equal(same.logits(pixels), model.logits(pixels))


# --- TorchScript ----------------------------------------------------------------------------


def scripted_net() -> torch.jit.ScriptModule:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 46 * 46, 7))
    with torch.no_grad():
        net[3].weight.fill_(1.0)  # far outside PyTorch's initial range, so re-initialization is plain to see
        net[3].bias.fill_(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script is deprecated, still handed in
        return torch.jit.script(net)


def test_randomized_reinitializes_a_torchscript_model_by_hand():
    model = wrap(scripted_net())
    pixels = faces(3)

    randomized = model.randomized(seed=0, top_layers=1)

    before, after = dict(model.module.net.named_modules()), dict(randomized.module.net.named_modules())
    assert torch.equal(after["0"].weight, before["0"].weight)
    assert torch.equal(before["3"].weight, torch.ones(7, 2 * 46 * 46))  # the original is unchanged
    bound = 1 / (2 * 46 * 46) ** 0.5  # PyTorch's default for a Linear: weights and biases in +-1/sqrt(fan_in)
    assert 0 < after["3"].weight.abs().max() <= bound
    assert 0 < after["3"].bias.abs().max() <= bound
    assert not np.allclose(randomized.logits(pixels), model.logits(pixels))


def scripted(net: nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(net)


class SharedReluNet(nn.Module):
    """One ReLU module called after both convs, and a functional flatten: an eager-style forward."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.conv2(self.act(self.conv1(x)))))


@pytest.mark.parametrize("layer", ["conv1", "act", "conv2", "head.0", "head"])
def test_torchscript_activations_equal_the_eager_models(layer):
    eager = SharedReluNet()
    pixels = faces(3)

    assert np.allclose(wrap(scripted(copy.deepcopy(eager))).activations(pixels, layer),
                       wrap(eager).activations(pixels, layer), atol=1e-6)


def test_torchscript_describe_gives_the_eager_models_shapes():
    eager = SharedReluNet()
    assert wrap(scripted(copy.deepcopy(eager))).describe().layers == wrap(eager).describe().layers


def test_torchscript_channel_mean_gradient_equals_the_eager_models():
    eager = SharedReluNet()
    objective = ChannelMean("conv2", np.array([0, 3, 1]), negative_slope=0.01)

    values, gradient = wrap(scripted(copy.deepcopy(eager))).input_gradient(faces(3), objective)
    expected_values, expected_gradient = wrap(eager).input_gradient(faces(3), objective)

    assert np.allclose(values, expected_values, atol=1e-6)
    assert np.allclose(gradient, expected_gradient, atol=1e-7)


def test_torchscript_layer_gradient_equals_the_eager_models():
    eager = SharedReluNet()
    classes = np.array([0, 6, 2])

    activation, gradient = wrap(scripted(copy.deepcopy(eager))).layer_gradient(faces(3), "conv2", classes)
    expected_activation, expected_gradient = wrap(eager).layer_gradient(faces(3), "conv2", classes)

    assert np.allclose(activation, expected_activation, atol=1e-6)
    assert np.allclose(gradient, expected_gradient, atol=1e-7)


class BranchingNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 48 * 48, 7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.mean() > -100):
            x = self.conv(x)
        else:
            x = torch.cat([x, x], 1)
        return self.head(x)


def test_a_torchscript_layer_run_only_inside_an_if_is_refused_in_words():
    model = wrap(scripted(BranchingNet()))

    with pytest.raises(SubmissionError) as caught:
        model.activations(faces(1), "conv")

    assert caught.value.stage == "request"
    assert "layer 'conv' of this TorchScript model cannot be observed" in caught.value.message
    assert model.describe().layer("conv").output_shape == ()  # unknown, but still listed
    assert model.describe().layer("head").output_shape == (7,)


def test_torchscript_layers_keep_their_original_kind():
    description = wrap(scripted_net()).describe()
    assert description.layers[0].kind == "Conv2d"
    assert [layer.name for layer in description.conv_layers] == ["0"]


class Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x


class SwallowsEverything(nn.Module):
    """A student forward that wraps each layer in a broad try/except."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.after = Counter()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 48 * 48, 7))

    def forward(self, x):
        try:
            x = self.conv(x)
        except Exception:
            pass
        return self.head(self.after(x))


def test_a_broad_except_in_forward_cannot_run_past_the_target_layer():
    net = SwallowsEverything()
    model = wrap(net)
    net.after.calls = 0  # wrapping runs the forward once to choose the memory layout
    model.activations(faces(2), "conv")
    assert net.after.calls == 0


def test_logits_of_no_faces_are_an_empty_batch():
    assert wrap(small_cnn()).logits(np.zeros((0, 48, 48), np.float32)).shape == (0, 7)


@pytest.mark.parametrize("conv", [nn.Conv2d(1, 6, 3, padding=1), nn.Conv2d(1, 6, 5, stride=2, padding=2, bias=False),
                                  nn.Conv2d(1, 6, 3, padding="same", dilation=2)])
def test_a_conv_layers_channel_objective_computes_only_the_picked_channels_with_the_same_result(conv):
    torch.manual_seed(0)
    net = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 7))
    hooked = copy.deepcopy(net)
    hooked[0].register_forward_hook(lambda *_: None)  # a student's hook: the layer must run as written
    objective = ChannelMean(layer="0", channels=np.array([5, 0, 3, 3]), negative_slope=0.01)

    values, gradient = wrap(net).input_gradient(faces(4), objective)
    expected_values, expected_gradient = wrap(hooked).input_gradient(faces(4), objective)

    np.testing.assert_allclose(values, expected_values, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-4, atol=1e-8)


def test_the_predicting_trainer_ignores_a_cluster_s_variables_and_detects_no_mpi(monkeypatch):
    # On a SLURM node (or where mpi4py is installed) Lightning would otherwise pick a cluster
    # environment for a single-process prediction, or import mpi4py and abort in MPI_Init.
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_JOB_NAME", "grading")
    from lightning_fabric.plugins.environments import MPIEnvironment

    def no_detection():
        raise AssertionError("Lightning detected its cluster environment")

    monkeypatch.setattr(MPIEnvironment, "detect", staticmethod(no_detection))
    model = wrap(small_cnn())
    logits = model.logits(faces(3))
    assert logits.shape == (3, 7)
    assert type(model._trainer()._accelerator_connector.cluster_environment).__name__ == "LightningEnvironment"


def test_a_logits_request_leaves_the_model_on_its_device(monkeypatch):
    # Lightning's teardown moves the module to the CPU after each predict; on a GPU the next request
    # then found its weights on the CPU and its inputs on the GPU.
    model = wrap(small_cnn())
    moved = []
    monkeypatch.setattr(type(model.module), "cpu", lambda self: moved.append(self) or self)
    first = model.logits(faces(3))
    second = model.logits(faces(3))
    assert moved == []
    np.testing.assert_array_equal(first, second)
