"""InProcessModel: the model protocol over a SubmissionModule in this process.

The sandbox server answers every request with this class, so the sandboxed and the in-process
model compute the same numbers by construction; tests, benchmarks and the library API use it
directly on trusted models.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.plugins.environments import LightningEnvironment
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.hooks import RemovableHandle

from grader.fingerprint import WeightsFingerprint
from grader.protocol import ChannelMean, ClassLogit, CrossEntropy, LayerInfo, ModelDescription, ModelProtocol, Objective
from grader.quiet import quiet_loggers
from grader.submission.errors import SubmissionError, describe_exception, is_out_of_memory, memory_error
from grader.submission.fingerprint import weights_fingerprint
from grader.submission.module import SubmissionModule
from grader.submission.resident_strategy import ResidentSingleDevice
from grader.submission.scripted import LayerTaps, observable_layers

PREDICT_BATCH = 16
"""Faces per forward in `logits`. Small batches keep a conv layer's maps in the CPU's cache: at one
thread, channels_last, the typical course CNN runs 137 faces/s at 16, 129 at 32, 107 at 256; the
VGG example 566, 542 and 342 (bench/grading_cost.py). 16 is also the least batch that NNPACK
takes (grader.submission.nnpack), which runs these batches faster still."""


class _StopForward(BaseException):
    """Raised by a forward hook once the target layer has produced its output. A BaseException,
    so that a student's `except Exception` around a layer cannot swallow it and run on."""


class InProcessModel(ModelProtocol):
    """Answers the protocol's requests with torch, on `device` (the profile's: cpu, or cuda), one
    whole batch per request; numpy in and out."""

    def __init__(self, module: SubmissionModule, device: str = "cpu", dtype: str = "float32") -> None:
        self.device = torch.device(device)
        self.module = module.eval().to(self.device)
        if self.device.type == "cpu":
            self.module.use_channels_last()
        self.module.use_probability_outputs()  # a final softmax: its log-probabilities become the logits
        if dtype != "float32":
            self.module.autocast_dtype = getattr(torch, dtype)
        self.dtype = dtype
        self.module.use_nnpack()
        for parameter in self.module.parameters():
            # Only input gradients are ever needed: frozen parameters skip their weight gradients.
            parameter.requires_grad_(False)
        self._description: ModelDescription | None = None
        self._taps: dict[tuple[str, bool], LayerTaps] = {}
        self._predictor: pl.Trainer | None = None

    # --- requests -------------------------------------------------------------------------

    def describe(self) -> ModelDescription:
        if self._description is None:
            self._description = self._describe()
        return self._description

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """Logits through Lightning's predict loop, in batches of PREDICT_BATCH."""
        if len(pixels) == 0:
            return np.zeros((0, self.describe().num_classes), np.float32)
        loader = DataLoader(_Batches(_tensor(pixels), PREDICT_BATCH), batch_size=None)  # Lightning moves batches
        with self._forward_errors(pixels):
            batches = self._trainer().predict(self.module, dataloaders=loader)
        return _as_numpy(torch.cat([_logits_tensor(b) for b in batches]))

    def input_gradient(self, pixels: np.ndarray, objective: Objective) -> tuple[np.ndarray, np.ndarray]:
        x = self._tensor(pixels).requires_grad_(True)
        with torch.enable_grad(), self._forward_errors(pixels):
            values = self._objective_values(x, objective)
            (gradient,) = torch.autograd.grad(values.sum(), x)
        return _as_numpy(values.detach()), _as_numpy(gradient)

    def activations(self, pixels: np.ndarray, layer: str) -> np.ndarray:
        with torch.no_grad(), self._forward_errors(pixels):
            return _as_numpy(self._forward_to(self._tensor(pixels), layer))

    def layer_gradient(self, pixels: np.ndarray, layer: str, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        target = self._module_named(layer)
        if self._scripted:
            with torch.enable_grad(), self._forward_errors(pixels):
                x = self._tensor(pixels).requires_grad_(True)
                with self.module.precision():
                    activation, logits = self._tapped(layer, with_output=True)(self.module.preprocess(x))
                picked = _pick(_logits_tensor(self.module.as_logits(logits)), classes)
                (gradient,) = torch.autograd.grad(picked.sum(), activation)
            return _as_numpy(activation), _as_numpy(gradient)
        captured: list[torch.Tensor] = []

        def capture(_module: nn.Module, _inputs: object, output: object) -> None:
            if isinstance(output, torch.Tensor) and not captured:  # a shared module: its first call
                captured.append(output)

        handle = target.register_forward_hook(capture)
        try:
            with torch.enable_grad(), self._forward_errors(pixels):
                x = self._tensor(pixels).requires_grad_(True)  # so the graph reaches the layer with frozen weights
                with self.module.single_view():  # tta: the center crop's layer and logits
                    logits = _logits_tensor(self.module(x))
                if not captured:
                    raise SubmissionError("request", f"layer '{layer}' is never called in the model's forward")
                picked = _pick(logits, classes)
                (gradient,) = torch.autograd.grad(picked.sum(), captured[0])
        finally:
            handle.remove()
        return _as_numpy(captured[0]), _as_numpy(gradient)

    def randomized(self, seed: int, top_layers: int) -> InProcessModel:
        clone = copy.deepcopy(self.module)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            for _, layer in _parametrized_layers(clone.net)[::-1][:top_layers]:
                _reinitialize(layer)
        finally:
            torch.random.set_rng_state(generator_state)
        return InProcessModel(clone, str(self.device), self.dtype)

    def weights_fingerprint(self) -> WeightsFingerprint:
        """The fingerprint of the loaded network's state_dict (`self.module.net.state_dict()`),
        floating-point tensors only, computed here, inside the sandbox for a student's model.

        For the similarity report this is equivalent to fingerprinting the weights file, which the
        grader did before: the fingerprint ignores names, and the network's state_dict holds the
        file's tensors as loaded into it (a Lightning checkpoint's entries outside the model, such
        as a loss's class weights, are not the model's and are left out)."""
        try:
            return weights_fingerprint(self.module.net.state_dict())
        except ValueError as error:  # more values than MAX_WEIGHT_ELEMENTS
            raise SubmissionError("request", f"no weights fingerprint: {error}") from None

    # --- helpers ------------------------------------------------------------------------

    @contextmanager
    def _forward_errors(self, pixels: np.ndarray) -> Iterator[None]:
        """Put an exception from the student's forward into words, with the input shape it got."""
        try:
            yield
        except (SubmissionError, _StopForward):
            raise
        except Exception as error:
            if is_out_of_memory(error):
                raise memory_error(error) from None
            shape = tuple(self.module.preprocess(self._tensor(pixels[:1])).shape[1:])
            raise SubmissionError("request", f"the model's forward failed on a batch of {len(pixels)} faces shaped "
                                             f"{(len(pixels), *shape)}: {describe_exception(error)}") from None

    def _objective_values(self, x: torch.Tensor, objective: Objective) -> torch.Tensor:
        if isinstance(objective, ChannelMean):
            maps = self._channel_maps(x, objective.layer, objective.channels).reshape(len(x), -1)
            if objective.negative_slope != 1.0:
                maps = F.leaky_relu(maps, objective.negative_slope)
            return maps.mean(dim=1)
        logits = _logits_tensor(self.module(x))
        if isinstance(objective, ClassLogit):
            return _pick(logits, objective.classes)
        if isinstance(objective, CrossEntropy):
            labels = torch.as_tensor(objective.labels, dtype=torch.long, device=x.device)
            return F.cross_entropy(logits, labels, reduction="none")
        raise TypeError(f"unknown objective {objective!r}")

    def _channel_maps(self, x: torch.Tensor, layer: str, channels: np.ndarray) -> torch.Tensor:
        """Image i's map of channel `channels[i]` of `layer`, (N, ...).

        Picked before anything else, so the rectification and its backward touch one map an image,
        not all C of them. For a plain Conv2d (no hooks of the student's own) only those maps are
        computed at all: the layer's input, then one grouped convolution with each image's own
        filter, the same arithmetic as the layer's for that channel and 1/C of its cost (the
        typical course CNN's first conv: 64 times less work a step).
        """
        target = self._module_named(layer)
        if self._scripted or not _plain_conv(target):
            return _pick(self._forward_to(x, layer), channels)
        inputs = self._input_of(x, layer, target)
        picked = torch.as_tensor(channels, dtype=torch.long, device=inputs.device)
        bias = None if target.bias is None else target.bias[picked]
        with self.module.precision():
            maps = F.conv2d(inputs.reshape(1, -1, *inputs.shape[2:]), target.weight[picked], bias, target.stride,
                            target.padding, target.dilation, groups=len(inputs))
        return maps.reshape(len(inputs), *maps.shape[2:])

    def _input_of(self, x: torch.Tensor, layer: str, target: nn.Module) -> torch.Tensor:
        """Run the model until `target` is called, and return its input (its first call's)."""
        return self._first_capture(x, layer, lambda keep: target.register_forward_pre_hook(
            lambda _module, inputs: keep(inputs[0])))

    def _forward_to(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """Run the model until `layer` has its output, and stop there."""
        target = self._module_named(layer)
        if self._scripted:
            with self.module.precision():
                return self._tapped(layer, with_output=False)(self.module.preprocess(x))[0]

        def check(output: object) -> torch.Tensor:
            if not isinstance(output, torch.Tensor):
                raise SubmissionError("request", f"layer '{layer}' outputs {type(output).__name__}, not a tensor")
            return output

        return self._first_capture(x, layer, lambda keep: target.register_forward_hook(
            lambda _module, _inputs, output: keep(check(output))))

    def _first_capture(self, x: torch.Tensor, layer: str,
                       register: Callable[[Callable[[torch.Tensor], None]], RemovableHandle]) -> torch.Tensor:
        """Run the model with the hook `register` installs (it hands its tensor to `keep`), and stop
        the forward at the first tensor kept: nothing after that layer runs."""
        captured: list[torch.Tensor] = []

        def keep(value: torch.Tensor) -> None:
            captured.append(value)
            raise _StopForward

        handle = register(keep)
        try:
            with self.module.single_view():  # tta: the layer sees the center crop only
                self.module(x)
        except _StopForward:
            pass
        finally:
            handle.remove()
        if not captured:
            raise SubmissionError("request", f"layer '{layer}' is never called in the model's forward")
        return captured[0]

    def _tensor(self, pixels: np.ndarray) -> torch.Tensor:
        return _tensor(pixels).to(self.device)

    def _trainer(self) -> pl.Trainer:
        """One Trainer for every logits request (making one costs about 14 ms; a LIME run asks 21 times)."""
        if self._predictor is None:
            quiet_loggers()  # Lightning resets its loggers' levels when imported after the grader quieted them
            accelerator = "gpu" if self.device.type == "cuda" else "cpu"
            device = self.device
            if device.type == "cuda" and device.index is None:  # Lightning's CUDA accelerator sets an indexed one
                device = torch.device("cuda", torch.cuda.current_device())
            # One process, one device: Lightning's own environment, never one it detects. Its detection
            # reads SLURM's variables on a cluster node and imports mpi4py where that is installed,
            # whose MPI_Init aborts the process outside an MPI launch (seen on a CUDA image).
            self._predictor = pl.Trainer(accelerator=accelerator, devices=1, strategy=ResidentSingleDevice(device),
                                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                         enable_model_summary=False, plugins=[LightningEnvironment()])
        return self._predictor

    @property
    def _scripted(self) -> bool:
        return isinstance(self.module.net, torch.jit.ScriptModule)

    def _tapped(self, layer: str, with_output: bool) -> LayerTaps:
        """TorchScript runs no forward hooks: its layers are read from a cut of its graph instead."""
        key = (layer, with_output)
        if key not in self._taps:
            self._taps[key] = LayerTaps(self.module.net, [layer], with_output=with_output)
        return self._taps[key]

    def _module_named(self, layer: str) -> nn.Module:
        modules = dict(self.module.net.named_modules())
        if layer not in modules or layer == "":
            raise SubmissionError("request", f"the model has no layer '{layer}'; use a name from "
                                             f"named_modules(), such as {', '.join(_some_names(modules))}")
        return modules[layer]

    def _describe(self) -> ModelDescription:
        """Every named module with its output shape for one face, found with forward hooks (for
        TorchScript, with a cut of its graph; a layer it cannot observe keeps an unknown shape)."""
        shapes: dict[str, tuple[int, ...]] = {}
        zeros = torch.zeros(1, 48, 48, device=self.device)
        if self._scripted:
            logits = self._scripted_shapes(zeros, shapes)
        else:
            handles = [layer.register_forward_hook(_record_shape(name, shapes))
                       for name, layer in self.module.net.named_modules() if name]
            try:
                with torch.no_grad(), self._forward_errors(np.zeros((1, 48, 48), np.float32)), \
                        self.module.single_view():  # tta: the shapes of one crop's maps
                    logits = _logits_tensor(self.module(zeros))
            finally:
                for handle in handles:
                    handle.remove()
        # A TorchScript module's type is RecursiveScriptModule; original_name keeps "Conv2d".
        layers = tuple(LayerInfo(name=name, kind=getattr(layer, "original_name", type(layer).__name__),
                                 output_shape=shapes.get(name, ()), parametrized=_has_parameters(layer))
                       for name, layer in self.module.net.named_modules() if name)
        return ModelDescription(num_classes=int(logits.shape[-1]), input=self.module.input_spec.model_dump(),
                                layers=layers,
                                outputs="probabilities" if self.module.outputs_probabilities else "logits")


    def _scripted_shapes(self, pixels: torch.Tensor, shapes: dict[str, tuple[int, ...]]) -> torch.Tensor:
        """Fill `shapes` for the TorchScript layers that can be observed; returns the logits."""
        names = observable_layers(self.module.net, [name for name, _ in self.module.net.named_modules() if name])
        with torch.no_grad(), self._forward_errors(np.zeros((1, 48, 48), np.float32)):
            *outputs, logits = LayerTaps(self.module.net, names, with_output=True)(self.module.preprocess(pixels))
        shapes.update((name, tuple(output.shape[1:])) for name, output in zip(names, outputs)
                      if isinstance(output, torch.Tensor))
        return _logits_tensor(logits)


class _Batches(Dataset):
    """Consecutive slices of `size` faces, one DataLoader item each (with batch_size=None): the
    batches DataLoader(TensorDataset(pixels), batch_size=size) makes, as views, without indexing and
    stacking face by face."""

    def __init__(self, pixels: torch.Tensor, size: int) -> None:
        self.pixels = pixels
        self.size = size

    def __len__(self) -> int:
        return -(-len(self.pixels) // self.size)

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.pixels[index * self.size:(index + 1) * self.size]


def _record_shape(name: str, shapes: dict[str, tuple[int, ...]]):
    def hook(_module: nn.Module, _inputs: object, output: object) -> None:
        # A module called twice (a shared ReLU) keeps the shape of its first call.
        if isinstance(output, torch.Tensor) and name not in shapes:
            shapes[name] = tuple(output.shape[1:])

    return hook


def _parametrized_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """Layers with parameters of their own, in definition order."""
    return [(name, layer) for name, layer in net.named_modules() if _has_parameters(layer)]


def _has_parameters(layer: nn.Module) -> bool:
    return any(True for _ in layer.parameters(recurse=False))


def _reinitialize(layer: nn.Module) -> None:
    """PyTorch's own initialization where the layer has one; otherwise (TorchScript modules keep no
    Python methods) the same defaults by hand: Kaiming-uniform weights, biases uniform in
    +-1/sqrt(fan_in), and ones and zeros for the 1-D weights of normalization layers."""
    if hasattr(layer, "reset_parameters"):
        layer.reset_parameters()
        return
    with torch.no_grad():
        weight = getattr(layer, "weight", None)
        fan_in = weight[0].numel() if isinstance(weight, torch.Tensor) and weight.dim() > 1 else 0
        for name, parameter in layer.named_parameters(recurse=False):
            if parameter.dim() > 1:
                nn.init.kaiming_uniform_(parameter, a=5**0.5)
            elif name == "bias" and fan_in:
                nn.init.uniform_(parameter, -1 / fan_in**0.5, 1 / fan_in**0.5)
            else:
                nn.init.ones_(parameter) if name == "weight" else nn.init.zeros_(parameter)
        for name, buffer in layer.named_buffers(recurse=False):
            if name in ("running_mean", "running_var"):
                buffer.fill_(1.0 if name == "running_var" else 0.0)


def _some_names(modules: dict[str, nn.Module], limit: int = 6) -> list[str]:
    return [name for name in modules if name][:limit]


def _tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))


def _plain_conv(module: nn.Module) -> bool:
    """A torch Conv2d as torch defines it: nothing of the student's can change what it computes."""
    return (type(module) is nn.Conv2d and module.groups == 1 and module.padding_mode == "zeros"
            and not module._forward_hooks and not module._forward_pre_hooks)


def _pick(values: torch.Tensor, columns: np.ndarray) -> torch.Tensor:
    """values[i, columns[i]] for every row i."""
    rows = torch.arange(len(values), device=values.device)
    return values[rows, torch.as_tensor(columns, dtype=torch.long, device=values.device)]


def _logits_tensor(output: object) -> torch.Tensor:
    if not isinstance(output, torch.Tensor):
        raise SubmissionError("checks", f"the model returned {type(output).__name__}, expected a tensor of "
                                        "logits shaped (N, 7)")
    if not output.is_floating_point():
        # Caught here, before the grader's own loss or softmax fails on it and seems to blame forward.
        raise SubmissionError("checks", f"the model returned {str(output.dtype).removeprefix('torch.')} outputs, not "
                                        "floating-point logits: return the last layer's float scores (no argmax, "
                                        "round or .long() at the end of forward)")
    return output


def _as_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(torch.float32).cpu().numpy()
