"""Issue 17's weight formats: each example architecture written as safetensors, a torch.export
program (.pt2, dynamic and fixed batch) and ONNX builds a model whose logits, saliency maps, Q2 filter
patterns (hooks on a named layer) and Grad-CAM maps match the state_dict version's; an unreadable
file in any of them is a SubmissionError("load"), never a traceback."""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

from grader.data.synth import generate
from grader.explain.filters import FilterVisualization
from grader.explain.gradcam import GradCAM
from grader.explain.saliency import Saliency
from grader.submission.build import build_model, sniff_format
from grader.submission.errors import SubmissionError
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from grader.submission.spec import load_spec
from tests.conftest import EXAMPLES

ARCHITECTURES = ["vgg", "small_cnn", "residual_zh"]
FORMATS = ["safetensors", "export", "export_fixed_batch", "onnx", "onnx_folded"]
FILE = {"safetensors": "model.safetensors", "export": "model.pt2", "export_fixed_batch": "model.pt2",
        "onnx": "model.onnx", "onnx_folded": "model.onnx"}
LAYER_FREE = ("logits", "saliency")
"""What a folded ONNX file (torch.onnx.export's default: each BatchNorm folded into the convolution
before it) still gives as the state_dict does: its convolutions' outputs are the BatchNorms' outputs."""


def write_as(example: str, fmt: str, root: Path) -> Path:
    """The example's folder with its model written in `fmt`, submission.yaml naming the file (the
    format itself left to the suffix)."""
    source = EXAMPLES / example
    spec = load_spec(source)
    model = build_model(source, spec)
    folder = root / f"{example}_{fmt}"
    shutil.copytree(source, folder)
    target = folder / FILE[fmt]
    example_input = torch.rand(4, spec.input.channels, spec.input.size, spec.input.size)
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, target)
    elif fmt.startswith("export"):
        dynamic = None if fmt == "export_fixed_batch" else ({0: torch.export.Dim("batch", min=1, max=4096)},)
        torch.export.save(torch.export.export(model, (example_input,), dynamic_shapes=dynamic), target)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated; dynamo needs onnxscript
            torch.onnx.export(model, (example_input,), str(target), dynamo=False, input_names=["x"],
                              dynamic_axes={"x": {0: "batch"}}, do_constant_folding=fmt == "onnx_folded")
    document = yaml.safe_load((source / "submission.yaml").read_text(encoding="utf-8"))
    document["model"] = {"weights": FILE[fmt]}
    if fmt == "safetensors":
        document["model"].update(source=spec.model.source, entry=spec.model.entry)
    (folder / "submission.yaml").write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return folder


def open_folder(folder: Path) -> InProcessModel:
    spec = load_spec(folder)
    return InProcessModel(SubmissionModule(build_model(folder, spec), spec.input))


def arrays(model: InProcessModel, folder: Path, faces) -> dict[str, np.ndarray]:
    images, labels = faces.images[:6].astype(np.float32), faces.labels[:6]
    layer = load_spec(folder).visualize.filter_layer
    filters = FilterVisualization(model, layer=layer, max_channels=4, steps=3).visualize(images[0])
    return {"logits": model.logits(images),
            "saliency": Saliency(model).attribute(images, labels),
            "filter_patterns": filters.patterns, "filter_outputs": filters.outputs,
            "gradcam": GradCAM(model).attribute(images, labels)}


@pytest.fixture(scope="module")
def faces():
    return generate(8, seed=5)


@pytest.fixture(scope="module")
def reference(faces):
    return {example: arrays(open_folder(EXAMPLES / example), EXAMPLES / example, faces) for example in ARCHITECTURES}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("example", ARCHITECTURES)
def test_every_format_gives_the_state_dicts_logits_and_maps(example, fmt, tmp_path, faces, reference):
    folder = write_as(example, fmt, tmp_path)
    assert sniff_format(folder / FILE[fmt], None) == fmt.removesuffix("_fixed_batch").removesuffix("_folded")
    got = arrays(open_folder(folder), folder, faces)
    expected = reference[example]
    for name, values in expected.items():
        if fmt == "onnx_folded" and name not in LAYER_FREE:
            continue
        if fmt == "safetensors":
            np.testing.assert_array_equal(got[name], values, err_msg=name)
        else:  # the same arithmetic in another graph; ONNX folds BatchNorm into the convolution
            scale = float(np.abs(values).max()) or 1.0
            np.testing.assert_allclose(got[name], values, rtol=1e-5, atol=1e-5 * scale, err_msg=name)


def test_an_exported_program_keeps_the_students_layer_names(tmp_path):
    net = build_model(folder := write_as("vgg", "export_fixed_batch", tmp_path), load_spec(folder))
    reference = build_model(EXAMPLES / "vgg", load_spec(EXAMPLES / "vgg"))
    assert {n for n, _ in reference.named_modules()} <= {n for n, _ in net.named_modules()}


def test_onnx_layers_are_named_after_the_students_modules(tmp_path):
    folder = write_as("residual_zh", "onnx", tmp_path)
    names = {n for n, _ in build_model(folder, load_spec(folder)).named_modules()}
    assert {"stem.0", "stage1.conv1", "stage3.conv2"} <= names


def test_a_program_that_keeps_its_batch_size_elsewhere_says_how_to_export_it(tmp_path):
    class Fixed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)
            self.register_buffer("offset", torch.zeros(3, 7))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x).mean(dim=(2, 3)).repeat(1, 4)[:, :7] + self.offset  # (3, 7): batch 3 only

    folder = tmp_path / "fixed"
    folder.mkdir()
    torch.export.save(torch.export.export(Fixed().eval(), (torch.rand(3, 1, 48, 48),)), folder / "model.pt2")
    (folder / "submission.yaml").write_text("student_id: s1\nname: S\nmodel:\n  weights: model.pt2\n")
    with pytest.raises(SubmissionError, match="exported for batches of exactly 3 faces"):
        build_model(folder, load_spec(folder))


def test_a_pt2_renamed_to_pt_is_sniffed_as_export(tmp_path):
    folder = write_as("small_cnn", "export", tmp_path)
    renamed = folder / "model.pt"
    (folder / "model.pt2").rename(renamed)
    assert sniff_format(renamed, None) == "export"


def test_loading_onnx_leaves_no_torchvision_behind(tmp_path):
    folder = write_as("small_cnn", "onnx", tmp_path)
    build_model(folder, load_spec(folder))
    assert "torchvision" not in sys.modules or not hasattr(sys.modules["torchvision"], "roi_align")


@pytest.mark.parametrize(("fmt", "says"), [("safetensors", "is not a readable safetensors file"),
                                           ("export", "is not a loadable torch.export program"),
                                           ("onnx", "is not a valid ONNX model")])
def test_a_file_that_is_not_its_format_is_a_load_error(fmt, says, tmp_path):
    folder = write_as("small_cnn", fmt, tmp_path)
    (folder / FILE[fmt]).write_bytes(b"not a model at all\x00" * 10)
    with pytest.raises(SubmissionError) as caught:
        build_model(folder, load_spec(folder))
    assert caught.value.stage == "load" and says in str(caught.value)


def test_a_state_dict_saved_as_safetensors_for_another_model_says_what_does_not_fit(tmp_path):
    folder = write_as("small_cnn", "safetensors", tmp_path)
    save_file({"conv.weight": torch.zeros(3, 3)}, folder / "model.safetensors")
    with pytest.raises(SubmissionError, match="do not fit the model"):
        build_model(folder, load_spec(folder))


class OtherOps(torch.nn.Module):
    """The ops of course CNNs the examples do not use: AvgPool2d, x.view(x.size(0), -1) (Shape,
    Gather, Unsqueeze, Concat, Reshape), a matmul, Dropout, concatenated branches, sigmoid, softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.side = torch.nn.Conv2d(1, 2, 1)
        self.pool = torch.nn.AvgPool2d(4)
        self.drop = torch.nn.Dropout(0.5)
        self.weight = torch.nn.Parameter(torch.randn(6 * 12 * 12, 7) * 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([torch.relu(self.conv(x)), torch.sigmoid(self.side(x))], dim=1)
        x = self.drop(self.pool(x))
        return torch.log_softmax(torch.matmul(x.view(x.size(0), -1), self.weight), dim=1)


def test_onnx_ops_beyond_the_examples_convert(tmp_path):
    torch.manual_seed(0)
    model = OtherOps().eval()
    folder = tmp_path / "other_ops"
    folder.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(2, 1, 48, 48),), str(folder / "model.onnx"), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    import onnx
    ops = {node.op_type for node in onnx.load(str(folder / "model.onnx")).graph.node}
    assert {"AveragePool", "MatMul", "Reshape", "Concat", "Sigmoid", "LogSoftmax"} <= ops, ops
    (folder / "submission.yaml").write_text("student_id: s1\nname: S\nmodel:\n  weights: model.onnx\n")
    net = build_model(folder, load_spec(folder))
    assert {"conv", "side", "pool"} <= {name for name, _ in net.named_modules()}
    x = torch.rand(5, 1, 48, 48) * 255
    torch.testing.assert_close(net(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fmt", ["export", "export_fixed_batch", "onnx"])
def test_the_randomized_copy_of_a_graph_format_runs_and_differs(fmt, tmp_path, faces):
    # The grader's randomization check deep-copies the model: an exported program's traced fake
    # tensors (symbolic batch) must not be in the copy's way.
    model = open_folder(write_as("residual_zh", fmt, tmp_path))
    images, labels = faces.images[:4].astype(np.float32), faces.labels[:4]
    with model.randomized(seed=0, top_layers=3) as copy:
        randomized = Saliency(copy).attribute(images, labels)
    assert np.abs(randomized - Saliency(model).attribute(images, labels)).max() > 0
