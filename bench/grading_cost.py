"""What grading one submission costs (issue 8), measured, not optimized: per task, our code paths
against the naive way a student's script does the same work, and against the FLOP floor of this
machine, side by side in one run, for three models:

- vgg: the VGG example (submissions/vgg), built as grader.pipeline.student_folder.open_model builds it in-process;
- typical: a typical course-size CNN with random weights (conv 64-64-pool-128-128-pool-256-256-pool-
  512-pool, FC 512-7, BatchNorm after each conv, ReLU, Dropout before the FC layers), eval mode;
- resnet: a ResNet-style network as a student writes one for the course, random weights, eval mode,
  on 3-channel 44x44 input (InputSpec size 44, channels 3: the 48x48 face center-cropped and its gray
  replicated): ResNet18's basic blocks (3x3 convolutions, stride-2 downsampling with 1x1 projection
  shortcuts, BatchNorm, ReLU) with a CIFAR-style 3x3 stem, one depthwise-separable block (depthwise
  3x3, groups = channels, then 1x1), global average pooling and a linear layer to 7.

    .venv/bin/python bench/grading_cost.py [--quick] [--models vgg,typical,resnet] [--threads N] [--results bench/RESULTS.md]

Ours: the project's one assessment of a submission (grader.pipeline.assessment.assess: the checks,
the evaluation, each rubric question, the probes, the fingerprint), each stage timed by its own
StageLog, then the scoring (grader.scoring.score.score), on an InProcessModel (no sandbox:
bench/sandbox_overhead.py measures what the sandbox adds), under the "cpu" hardware profile.
Naive: plain torch, parameters left trainable, one image (LIME: lime's batch of 10) at a time;
the long parts are timed on a subset and scaled linearly (marked * in the table).
Floor: the FLOPs each task's requests need (counted image by image through a counting proxy of
the model protocol, times per-image FLOPs from torch.utils.flop_counter) over this machine's fp32
matmul rate measured in the same run with the same thread count. The counter counts the direct
convolution's multiply-adds; our logits requests run wide 3x3 convolutions through NNPACK's
Winograd kernels (grader/submission/nnpack.py), which need fewer, so those tasks can run under it.
The PDF is timed separately: grader.pipeline.student_folder.grade_submission on the VGG example, write_pdf=True,
reading its own "report" timing (render_html + write_pdf); cold (first report of the process) and warm.

A full run of all three models writes its output into RESULTS.md (its own section); --quick, or
--models naming fewer of them (one model alone: --models resnet), writes nothing unless --results is
given.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import cProfile
import io
import pstats
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from results import RESULTS, machine_line, write_section  # bench/results.py, beside this file

from grader.data.bundled import bundled_evaluation
from grader.data.faceset import FaceSet
from grader.evaluate import Evaluation
from grader.fingerprint import WeightsFingerprint
from grader.explain.filters import resolve_layer
from grader.pipeline.assessment import Assessment, assess
from grader.pipeline.result_record import measurements
from grader.pipeline.setup import load_setup
from grader.pipeline.stages import StageLog
from grader.pipeline.student_folder import grade_submission
from grader.profile import HardwareProfile, get_profile
from grader.protocol import ChannelMean, ModelDescription, ModelProtocol, Objective
from grader.questions.answer import answer_question
from grader.questions.context import QuestionContext
from grader.questions.examples import ClassExamples
from grader.questions.settings import TaskSettings
from grader.quiet import quiet_libraries
from grader.scoring.rubric import Rubric, load_rubric
from grader.scoring.score import score
from grader.submission.build import build_model
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from grader.submission.spec import InputSpec, VisualizeSpec, load_spec

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
MATMUL_SIDE = 2048
PDF_FACES = 359  # faces graded before the timed PDFs: the report has the same pages whatever their number
NUM_CLASSES = 7
FILTER_STEP = 3.0  # pixels RMS per step, as FilterVisualization
CLASS_MODEL_STEP, CLASS_MODEL_L2 = 2.0, 0.02  # as ClassModelVisualization


# --- the typical course-size CNN ------------------------------------------------------------------


class TypicalCNN(nn.Module):
    """conv 64-64-pool-128-128-pool-256-256-pool-512-pool, FC 512-7: BatchNorm and ReLU after each
    conv, Dropout before each FC layer. About 4.7M parameters and 0.77 GFLOP per 48x48 face."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for width in (64, 64, "pool", 128, 128, "pool", 256, 256, "pool", 512, "pool"):
            if width == "pool":
                layers.append(nn.MaxPool2d(2))
                continue
            layers += [nn.Conv2d(channels, int(width), 3, padding=1), nn.BatchNorm2d(int(width)), nn.ReLU(inplace=True)]
            channels = int(width)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(512 * 3 * 3, 512),
                                        nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(512, NUM_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """ResNet's basic block: 3x3 conv (stride 1 or 2), BN, ReLU, 3x3 conv, BN, plus the shortcut
    (a 1x1 stride-2 projection and BN where the shape changes), then ReLU."""

    def __init__(self, channels_in: int, channels_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class DepthwiseSeparableBlock(nn.Module):
    """MobileNet's block with a residual: depthwise 3x3 (groups = channels), BN, ReLU, pointwise 1x1, BN."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.depthwise(x)))
        return self.relu(x + self.bn2(self.pointwise(out)))


class StudentResNet(nn.Module):
    """ResNet18 as course students adapt it to 44x44x3 faces: a 3x3 stem (64), four stages of two
    basic blocks (64, 128, 256, 512 channels; stages 2-4 start with a stride-2 block and a 1x1
    projection shortcut), a depthwise-separable block after stage 3, global average pooling and a
    linear layer to 7. About 11.3M parameters and 2.2 GFLOP per face."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256), DepthwiseSeparableBlock(256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


def _randomize_batchnorm(net: nn.Module, generator: torch.Generator) -> None:
    """Running statistics and affine parameters as a trained network has them (not the identity of a
    fresh BatchNorm), so that eval-mode arithmetic is that of a trained model."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                module.weight.copy_(0.8 + 0.4 * torch.rand(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))


# --- the models under test ------------------------------------------------------------------------


@dataclass
class Subject:
    """One model: `ours` for the project's code (parameters frozen by InProcessModel), `naive` an
    independent copy with trainable parameters, as a student's script holds it."""

    name: str
    ours: InProcessModel
    naive: SubmissionModule
    visualize: VisualizeSpec


def vgg_subject() -> Subject:
    """The VGG example, built as grader.pipeline.student_folder.open_model builds it for isolation="inprocess"."""
    folder = ROOT / "submissions" / "vgg"
    spec = load_spec(folder)
    naive = SubmissionModule(build_model(folder, spec), spec.input).eval()
    ours = InProcessModel(SubmissionModule(build_model(folder, spec), spec.input))
    return Subject("vgg", ours, naive, spec.visualize)


def typical_subject(seed: int = 0) -> Subject:
    """The typical CNN with random weights (seeded), eval mode, default input and visualize specs."""
    torch.manual_seed(seed)
    net = TypicalCNN().eval()
    naive = SubmissionModule(copy.deepcopy(net), InputSpec()).eval()
    ours = InProcessModel(SubmissionModule(net, InputSpec()))
    return Subject("typical", ours, naive, VisualizeSpec())


RESNET_INPUT = InputSpec(size=44, channels=3)


def resnet_subject(seed: int = 0) -> Subject:
    """The ResNet-style network with random weights (seeded, BatchNorm statistics as trained), eval
    mode, on 44x44x3 input; default visualize spec (the filter layer is the stem's convolution)."""
    torch.manual_seed(seed)
    net = StudentResNet()
    _randomize_batchnorm(net, torch.Generator().manual_seed(seed))
    net.eval()
    naive = SubmissionModule(copy.deepcopy(net), RESNET_INPUT).eval()
    ours = InProcessModel(SubmissionModule(net, RESNET_INPUT))
    return Subject("resnet", ours, naive, VisualizeSpec())


def warm_up(subject: Subject) -> None:
    """One forward at batch 256 and 1 and one backward on each copy, so no timing pays first-call costs."""
    pixels = np.full((256, 48, 48), 128, np.float32)
    subject.ours.logits(pixels)
    subject.ours.logits(pixels[:1])
    x = torch.from_numpy(pixels[:1]).requires_grad_(True)
    subject.naive(x).sum().backward()
    subject.naive.zero_grad()


# --- counting the work: a proxy of the model protocol ---------------------------------------------


@dataclass(frozen=True)
class Request:
    """One protocol request: its kind ("logits", "gradient", "cut_gradient", "activations",
    "layer_gradient"), how many images it carried, the layer it stops at (cut requests), and the
    seconds the model took to answer it."""

    kind: str
    images: int
    layer: str = ""
    seconds: float = 0.0


class CountingModel(ModelProtocol):
    """Forwards every request to `inner`, timing it, and records it in `log` (shared with its
    randomized copies). Its own cost is one Python call and two clock reads a request."""

    def __init__(self, inner: ModelProtocol, log: list[Request] | None = None) -> None:
        self.inner = inner
        self.log: list[Request] = log if log is not None else []

    def _timed(self, kind: str, images: int, layer: str, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return call()
        finally:
            self.log.append(Request(kind, images, layer, time.perf_counter() - started))

    def describe(self) -> ModelDescription:
        return self.inner.describe()

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        return self._timed("logits", len(pixels), "", lambda: self.inner.logits(pixels))

    def input_gradient(self, pixels: np.ndarray, objective: Objective) -> tuple[np.ndarray, np.ndarray]:
        cut = isinstance(objective, ChannelMean)
        return self._timed("cut_gradient" if cut else "gradient", len(pixels), objective.layer if cut else "",
                           lambda: self.inner.input_gradient(pixels, objective))

    def activations(self, pixels: np.ndarray, layer: str) -> np.ndarray:
        return self._timed("activations", len(pixels), layer, lambda: self.inner.activations(pixels, layer))

    def layer_gradient(self, pixels: np.ndarray, layer: str, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._timed("layer_gradient", len(pixels), layer,
                           lambda: self.inner.layer_gradient(pixels, layer, classes))

    def randomized(self, seed: int, top_layers: int) -> ModelProtocol:
        return CountingModel(self.inner.randomized(seed, top_layers), self.log)

    def weights_fingerprint(self) -> WeightsFingerprint:
        return self.inner.weights_fingerprint()

    def close(self) -> None:
        self.inner.close()


def request_summary(requests: list[Request]) -> str:
    """'logits 3589 img in 4 req, gradient 7 img in 1 req' for a stage's requests."""
    totals: dict[str, list[int]] = {}
    for request in requests:
        key = request.kind + (f"@{request.layer}" if request.layer else "")
        totals.setdefault(key, [0, 0])
        totals[key][0] += request.images
        totals[key][1] += 1
    return ", ".join(f"{key} {images} img/{count} req" for key, (images, count) in totals.items()) or "no requests"


# --- FLOPs ----------------------------------------------------------------------------------------


def counted_flops(call: Callable[[], object]) -> int:
    """The FLOPs torch.utils.flop_counter counts for `call` (matmuls and convolutions, forward and backward)."""
    counter = FlopCounterMode(display=False)
    with counter:
        call()
    return int(counter.get_total_flops())


@dataclass
class PerImageFlops:
    """FLOPs per 48x48 face: forward; forward + backward to the input with frozen parameters (all
    that an input gradient needs); forward + backward with trainable parameters (what the naive
    scripts run); and, per cut layer, forward (+ backward) up to that layer only."""

    forward: float
    input_gradient: float
    with_parameter_gradients: float
    cut_forward: dict[str, float] = field(default_factory=dict)
    cut_gradient: dict[str, float] = field(default_factory=dict)

    def of(self, request: Request) -> float:
        """The floor FLOPs of one request."""
        per_image = {"logits": self.forward, "gradient": self.input_gradient,
                     "layer_gradient": self.input_gradient,
                     "cut_gradient": self.cut_gradient.get(request.layer, self.input_gradient),
                     "activations": self.cut_forward.get(request.layer, self.forward)}[request.kind]
        return per_image * request.images


def per_image_flops(subject: Subject, layer: str, batch: int = 4) -> PerImageFlops:
    """Count on `batch` faces and divide, with plain torch on a frozen copy (on the trainable copy
    for the naive count). The cut counts stop the forward at `layer` by raising in a forward hook,
    as InProcessModel does. (FlopCounterMode cannot watch torch.autograd.grad on a leaf, which
    InProcessModel.input_gradient calls, so the counts use .backward().)"""
    pixels = np.full((batch, 48, 48), 128, np.float32)
    frozen = copy.deepcopy(subject.naive).requires_grad_(False)

    def forward() -> None:
        with torch.no_grad():
            frozen(torch.from_numpy(pixels))

    def backward(module: nn.Module) -> Callable[[], None]:
        def run() -> None:
            x = torch.from_numpy(pixels.copy()).requires_grad_(True)
            module(x)[:, 0].sum().backward()
            module.zero_grad()
        return run

    def to_layer(with_gradient: bool) -> Callable[[], None]:
        def run() -> None:
            x = torch.from_numpy(pixels.copy()).requires_grad_(with_gradient)
            with torch.set_grad_enabled(with_gradient):
                output = forward_to(frozen, x, layer)
                if with_gradient:
                    F.leaky_relu(output, 0.01)[:, 0].mean().backward()
        return run

    return PerImageFlops(
        forward=counted_flops(forward) / batch,
        input_gradient=counted_flops(backward(frozen)) / batch,
        with_parameter_gradients=counted_flops(backward(subject.naive)) / batch,
        cut_forward={layer: counted_flops(to_layer(False)) / batch},
        cut_gradient={layer: counted_flops(to_layer(True)) / batch},
    )


class _Stop(BaseException):
    """Raised by the forward hook of `forward_to` once the layer has its output."""


def forward_to(module: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """`layer`'s output for x, the forward stopped right after it (module: a SubmissionModule)."""
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        captured.append(output)
        raise _Stop

    handle = dict(module.net.named_modules())[layer].register_forward_hook(hook)
    try:
        module(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured[0]


def matmul_gflops(seconds: float = 3.0, side: int = MATMUL_SIDE) -> float:
    """This machine's best fp32 torch.mm rate (GFLOP/s) over ~`seconds` of side x side products,
    at the current torch thread count: the peak the floor divides by."""
    a, b = torch.randn(side, side), torch.randn(side, side)
    out = torch.empty(side, side)
    torch.mm(a, b, out=out)
    best, started = 0.0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = max(best, 2 * side**3 / (time.perf_counter() - t0) / 1e9)
    return best


# --- timing ---------------------------------------------------------------------------------------


@contextmanager
def stopwatch(into: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        into[name] = time.perf_counter() - started


@dataclass
class Row:
    """One line of the table: our time, the naive time (None: same code as ours), how much of the
    naive work was timed (1.0: all of it), and the floor's FLOPs."""

    task: str
    ours: float
    naive: float | None = None
    naive_share: float = 1.0
    naive_note: str = ""
    flops: float = 0.0
    requests: str = ""
    in_model: float = 0.0


# --- ours -----------------------------------------------------------------------------------------


@dataclass
class OursRun:
    rows: dict[str, Row]
    evaluation: Evaluation
    examples: ClassExamples
    assessment: Assessment


class StageRequests:
    """A stage listener that keeps the requests each stage made of the counting model."""

    def __init__(self, model: CountingModel) -> None:
        self.model = model
        self.logs: dict[str, list[Request]] = {}

    def started(self, stage: str) -> None:
        self.model.log.clear()

    def finished(self, stage: str, seconds: float, ok: bool) -> None:
        if not ok:
            raise RuntimeError(f"the stage {stage} failed on the benchmark's model")
        self.logs[stage] = list(self.model.log)


def run_ours(subject: Subject, faces: FaceSet, settings: TaskSettings, rubric: Rubric,
             flops: PerImageFlops) -> OursRun:
    """Grade one submission with the project's one assessment (grader.pipeline.assessment), each stage
    timed by the assessment's own StageLog, then score it."""
    model = CountingModel(subject.ours)
    requests = StageRequests(model)
    log = StageLog(listener=requests)
    assessment = assess(model, faces, subject.visualize, rubric, settings, log)
    times = dict(log.timings)
    with stopwatch(times, "scoring"):
        score(rubric, measurements(assessment, faces, []))
    requests.logs["scoring"] = []
    rows = {name: Row(name, seconds, flops=sum(flops.of(r) for r in requests.logs[name]),
                      requests=request_summary(requests.logs[name]),
                      in_model=sum(r.seconds for r in requests.logs[name]))
            for name, seconds in times.items()}
    return OursRun(rows, assessment.evaluation, assessment.examples, assessment)


# --- the naive way --------------------------------------------------------------------------------


def naive_confusion(net: nn.Module, faces: FaceSet, count: int) -> float:
    """Seconds for the first `count` faces' predictions at batch 1, no_grad."""
    pixels = torch.from_numpy(faces.images[:count].astype(np.float32))
    started = time.perf_counter()
    with torch.no_grad():
        for i in range(count):
            net(pixels[i:i + 1]).argmax(dim=1)
    return time.perf_counter() - started


def naive_saliency(net: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    """Seconds for |d cross-entropy / d pixels| one image at a time, parameters trainable."""
    started = time.perf_counter()
    for image, label in zip(images, labels, strict=True):
        x = torch.tensor(image[None], dtype=torch.float32, requires_grad=True)
        F.cross_entropy(net(x), torch.tensor([int(label)])).backward()
        x.grad.abs()
        net.zero_grad()
    return time.perf_counter() - started


def _noise_start(seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.clip(128 + 8 * rng.standard_normal((1, 48, 48)), 0, 255).astype(np.float32))


def _ascent_step(x: torch.Tensor, step: float, l2: float = 0.0) -> None:
    """x += step * grad / RMS(grad), decay toward gray, clip; clears the gradient."""
    with torch.no_grad():
        gradient = x.grad
        x += step * gradient / gradient.pow(2).mean().sqrt().clamp_min(1e-12)
        if l2:
            x.copy_(128 + (1 - l2) * (x - 128))
        x.clamp_(0, 255)
    x.grad = None


def naive_filters(net: SubmissionModule, layer: str, channels: int, steps: int) -> float:
    """Seconds for gradient ascent on channels 0..channels-1 of `layer`, one channel at a time, each
    step a full forward of the whole network (the layer's output taken by a forward hook) and a
    backward with parameter gradients."""
    captured: list[torch.Tensor] = []
    layers = dict(net.net.named_modules())
    handle = layers[layer].register_forward_hook(lambda _m, _i, out: captured.append(out))
    started = time.perf_counter()
    try:
        for channel in range(channels):
            x = _noise_start().requires_grad_(True)
            for _ in range(steps):
                captured.clear()
                net(x)
                captured[0][0, channel].mean().backward()
                _ascent_step(x, FILTER_STEP)
                net.zero_grad()
    finally:
        handle.remove()
    return time.perf_counter() - started


def naive_class_model(net: nn.Module, classes: int, steps: int) -> float:
    """Seconds for class-model visualization of classes 0..classes-1, one class at a time."""
    started = time.perf_counter()
    for target in range(classes):
        x = _noise_start().requires_grad_(True)
        for _ in range(steps):
            net(x)[0, target].backward()
            _ascent_step(x, CLASS_MODEL_STEP, CLASS_MODEL_L2)
            net.zero_grad()
    return time.perf_counter() - started


def naive_lime(net: nn.Module, images: np.ndarray, num_samples: int) -> float:
    """Seconds for lime's own LimeImageExplainer().explain_instance with its defaults (batch_size 10,
    quickshift, top_labels 5), one image at a time, the classifier a plain no_grad forward."""
    from lime.lime_image import LimeImageExplainer

    def classifier_fn(batch: np.ndarray) -> np.ndarray:
        pixels = torch.from_numpy(np.ascontiguousarray(batch[..., 0] * 255, dtype=np.float32))
        with torch.no_grad():
            return F.softmax(net(pixels), dim=1).numpy()

    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # lime's progress bar
        for image in images:
            LimeImageExplainer().explain_instance(image.astype(np.float64) / 255, classifier_fn,
                                                  num_samples=num_samples, random_seed=0)
    return time.perf_counter() - started


@dataclass(frozen=True)
class NaiveShare:
    """How much of each naive task is timed: the rest is scaled linearly."""

    confusion_faces: int
    lime_images: int
    filter_channels: int
    class_model_classes: int


def run_naive(subject: Subject, faces: FaceSet, run: OursRun, settings: TaskSettings, share: NaiveShare,
              rows: dict[str, Row]) -> None:
    """Fill each row's naive time (scaled up from the timed share)."""
    net = subject.naive
    images, labels = faces.images[run.examples.indices], faces.labels[run.examples.indices]
    description = subject.ours.describe()
    layer = resolve_layer(description, subject.visualize.filter_layer)
    total_channels = min(description.layer(layer).output_shape[0], settings.max_channels)

    def fill(task: str, seconds: float, done: int, of: int, what: str) -> None:
        done = min(done, of)
        rows[task].naive, rows[task].naive_share = seconds * of / done, done / of
        rows[task].naive_note = f"{done} of {of} {what}"

    fill("evaluate", naive_confusion(net, faces, min(share.confusion_faces, len(faces))),
         share.confusion_faces, len(faces), "faces at batch 1")
    fill("q1_saliency", naive_saliency(net, images, labels), len(images), len(images), "images one at a time")
    channels = min(share.filter_channels, total_channels)
    fill("q2_filters", naive_filters(net, layer, channels, settings.filter_steps), channels, total_channels,
         f"channels of {layer}, {settings.filter_steps} full f+b steps each")
    classes = min(share.class_model_classes, NUM_CLASSES)
    fill("q4_freeform", naive_class_model(net, classes, settings.class_model_steps), classes, NUM_CLASSES,
         f"classes, {settings.class_model_steps} steps each")
    lime_images = min(share.lime_images, len(images))
    fill("q3_lime", naive_lime(net, images[:lime_images], settings.lime_samples), lime_images, len(images),
         f"images, lime defaults, {settings.lime_samples} samples at batch 10")


# --- the PDF --------------------------------------------------------------------------------------


def pdf_seconds(faces: FaceSet, rubric: Rubric, profile: HardwareProfile, threads: int) -> tuple[float, float]:
    """The report stage's own timing (render_html + write_pdf) of grade_submission on the VGG example,
    in-process with quick task settings on `faces` (the report has the same pages and figures as a
    full grading's): cold (the first report in this process, weasyprint's import included) and warm
    (a second run)."""
    times = []
    with tempfile.TemporaryDirectory() as out:
        setup = load_setup(faces, rubric, Path(out), profile=profile.name, isolation="inprocess",
                           tasks=TaskSettings.quick())
        for _ in range(2):
            result = grade_submission(ROOT / "submissions" / "vgg", setup)
            torch.set_num_threads(threads)  # grade_submission re-applies the profile
            times.append(result.timings["report"])
    return times[0], times[1]


# --- reporting ------------------------------------------------------------------------------------


class Output:
    """Prints each line and keeps it for RESULTS.md."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.1f}x" if denominator > 0 else "—"


def print_table(out: Output, subject: str, rows: dict[str, Row], gflops: float) -> None:
    """task | ours (s) | naive (s) | speed-up | floor (s) | ours/floor, and a total row. Rows without
    a naive counterpart (checks, probes, scoring) count our time on both sides of the total."""
    out(f"\n{subject}:")
    out(f"{'task':14} {'ours (s)':>9} {'naive (s)':>11} {'speed-up':>9} {'floor (s)':>10} {'ours/floor':>11}")
    total_ours = total_naive = total_floor = 0.0
    for row in rows.values():
        floor = row.flops / (gflops * 1e9)
        naive = row.naive if row.naive is not None else row.ours
        total_ours, total_naive, total_floor = total_ours + row.ours, total_naive + naive, total_floor + floor
        naive_text = "= ours" if row.naive is None else f"{row.naive:.2f}{'*' if row.naive_share < 1 else ' '}"
        speed = "—" if row.naive is None else _ratio(row.naive, row.ours)
        out(f"{row.task:14} {row.ours:9.2f} {naive_text:>11} {speed:>9} {floor:10.3f} "
            f"{_ratio(row.ours, floor) if row.flops else '—':>11}")
    out(f"{'total':14} {total_ours:9.2f} {total_naive:10.2f}* {_ratio(total_naive, total_ours):>9} "
        f"{total_floor:10.3f} {_ratio(total_ours, total_floor):>11}")
    for row in rows.values():
        if row.naive_note:
            star = "* extrapolated linearly from " if row.naive_share < 1 else "  timed in full: "
            out(f"  {row.task}: naive {star}{row.naive_note}")
    out("  * the total's naive side is partly extrapolated; checks, probes, fingerprint and scoring count our time on both sides")
    out("  ours/floor under 1x: Winograd convolutions (NNPACK) need fewer multiplications than the direct ones the floor counts")
    out("  our requests per task (images/requests), the floor's FLOPs, and the share of our time spent inside model requests:")
    for row in rows.values():
        share = f"{100 * row.in_model / row.ours:.0f}%" if row.ours > 0 else "—"
        out(f"  {row.task}: {row.requests}; floor {row.flops / 1e9:.2f} GFLOP; in model {row.in_model:.2f} s ({share})")


def profile_tasks(subject: Subject, run: OursRun, faces: FaceSet, settings: TaskSettings, out: Output,
                  top: int = 14) -> None:
    """cProfile of our q2 and q3 on `subject`: where their time goes, by own time."""
    context = QuestionContext(model=subject.ours, faces=faces, examples=run.examples, settings=settings,
                              filter_layer=subject.visualize.filter_layer, freeform=subject.visualize.freeform)
    for question, method in (("q2", "filters"), ("q3", "lime")):
        profiler = cProfile.Profile()
        profiler.enable()
        answer_question(question, method, context)
        profiler.disable()
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(top)
        out(f"\ncProfile of our {question} on {subject.name}, top {top} by own time:")
        for line in buffer.getvalue().splitlines():
            if line.strip() and not line.startswith(("   Ordered", "   List reduced")):
                out("  " + line.rstrip())


# --- main -----------------------------------------------------------------------------------------


MODELS: dict[str, Callable[[], Subject]] = {"vgg": vgg_subject, "typical": typical_subject, "resnet": resnet_subject}


def first_faces(faces: FaceSet, count: int) -> FaceSet:
    """The first `count` faces of a set, with their labels and masks."""
    return FaceSet(images=faces.images[:count], labels=None if faces.labels is None else faces.labels[:count],
                   ids=faces.ids[:count], masks=None if faces.masks is None else faces.masks[:count],
                   source=faces.source)


def evaluation_faces(quick: bool) -> FaceSet:
    """The 3,589 bundled evaluation faces; the first tenth of them with --quick."""
    faces = bundled_evaluation()
    return first_faces(faces, len(faces) // 10) if quick else faces


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the work, to check the script")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: the cpu profile's setting)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, of {', '.join(MODELS)} (default all; fewer write nothing unless --results)")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"write the output there (default {RESULTS.relative_to(ROOT)} for a full run)")
    parser.add_argument("--profile-tasks", action="store_true",
                        help="also cProfile our q2 and q3 on the last model")
    parser.add_argument("--no-pdf", action="store_true", help="skip the PDF timing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(unknown)}: choose from {', '.join(MODELS)}")
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/grading_cost.py", *sys.argv[1:]])
    started = time.perf_counter()
    quiet_libraries()
    profile = get_profile("cpu")
    profile.apply()
    threads = args.threads or profile.threads
    torch.set_num_threads(threads)
    out = Output()
    settings = TaskSettings.quick() if args.quick else TaskSettings()
    share = (NaiveShare(confusion_faces=50, lime_images=1, filter_channels=2, class_model_classes=1) if args.quick
             else NaiveShare(confusion_faces=500, lime_images=2, filter_channels=8, class_model_classes=2))
    faces = evaluation_faces(args.quick)
    rubric = load_rubric(ROOT / "rubric.yaml")
    machine = machine_line(threads)

    out(f"machine: {machine}")
    out(f"profile: {profile.describe()}" + (f"; threads overridden to {threads}" if threads != profile.threads else ""))
    out(f"work: {'--quick (a tenth): ' if args.quick else ''}{len(faces)} evaluation faces, {settings}")
    out("ours: the project's code on an InProcessModel (no sandbox; see bench/sandbox_overhead.py)")
    # The floor's rate is the best of three measurements (before, between and after the models), so a
    # moment of load from other processes lowers it less; every table divides by the same rate.
    rates = [matmul_gflops()]
    runs: list[tuple[Subject, OursRun]] = []
    for name in names:
        subject = MODELS[name]()
        warm_up(subject)
        layer = resolve_layer(subject.ours.describe(), subject.visualize.filter_layer)
        flops = per_image_flops(subject, layer)
        params = sum(p.numel() for p in subject.naive.parameters())
        out(f"\n== {name}: {params / 1e6:.2f}M parameters; per face: forward {flops.forward / 1e9:.3f} GFLOP, "
            f"forward+input gradient {flops.input_gradient / 1e9:.3f}, with parameter gradients "
            f"{flops.with_parameter_gradients / 1e9:.3f}; filter layer {layer}: forward to it "
            f"{flops.cut_forward[layer] / 1e6:.1f} MFLOP, with input gradient {flops.cut_gradient[layer] / 1e6:.1f} MFLOP; "
            f"our logits: {'wide 3x3 convolutions through NNPACK' if subject.ours.module.nnpack else 'oneDNN throughout'}")
        run = run_ours(subject, faces, settings, rubric, flops)
        run_naive(subject, faces, run, settings, share, run.rows)
        runs.append((subject, run))
        rates.append(matmul_gflops())
    gflops = max(rates)
    out(f"\nfp32 matmul ({MATMUL_SIDE}x{MATMUL_SIDE} torch.mm, {threads} thread(s), best call of ~3 s, measured "
        f"{len(rates)} times: {', '.join(f'{r:.1f}' for r in rates)}): the floor uses {gflops:.1f} GFLOP/s")
    for subject, run in runs:
        print_table(out, subject.name, run.rows, gflops)

    if not args.no_pdf:
        pdf_faces = first_faces(faces, PDF_FACES)
        cold, warm = pdf_seconds(pdf_faces, rubric, profile, threads)
        out(f"\nPDF (VGG example: grade_submission, write_pdf=True, in-process, quick tasks on the first {len(pdf_faces)} "
            f"faces; its own 'report' timing = render_html + write_pdf): cold {cold:.2f} s (the process's first "
            f"report, weasyprint's import included), warm {warm:.2f} s (the next)")
    if args.profile_tasks and runs:
        profile_tasks(*runs[-1], faces=faces, settings=settings, out=out)
    out(f"\nbenchmark wall time: {time.perf_counter() - started:.0f} s")

    full = not args.quick and set(names) == set(MODELS)
    target = args.results if args.results is not None else (RESULTS if full else None)
    if target is not None:
        write_section("grading_cost", "Grading cost: ours, the naive way and the FLOP floor (bench/grading_cost.py)",
                      command, machine, out.lines, target)
        print(f"written to {target}")


if __name__ == "__main__":
    main()
