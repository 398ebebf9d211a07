"""Loading the formats beside TorchScript and torch.save's pickles (issue 17): safetensors weights,
torch.export programs (.pt2) and ONNX graphs, each as an nn.Module whose layers are reachable by
name (named_modules), so that forward hooks see filter activations (Q2) and Grad-CAM's layer.

- safetensors: `safetensors.torch.load_file`, which reads tensors and nothing else (no pickle); the
  state_dict then loads like a torch.save one.
- export: `torch.export.load`, then `torch.export.unflatten`, which rebuilds the student's module
  hierarchy (features.0, layer1.0.conv1, ...) as submodules that run in call order, so hooks on them
  fire as on the eager model. A program exported with a fixed batch (torch.export.export(model,
  (example,)) without dynamic_shapes) only takes that batch; the wrapper splits or pads a batch to it.
- onnx: converted with onnx2torch to a torch.fx GraphModule of modules. Layers from torch.onnx.export
  are renamed to the student's module paths where the exporter recorded them ("/features/features.0/Conv"
  becomes features.0); other layers keep onnx2torch's names. torch.onnx.export folds a BatchNorm into
  the convolution before it (in eval mode), so that BatchNorm is no layer of its own.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from grader.submission.errors import SubmissionError
from grader.submission.weights import clip

ONNX_OPS_TESTED = ("Conv", "Relu", "MaxPool", "BatchNormalization", "Gemm", "Flatten", "Add", "GlobalAveragePool",
                   "AveragePool", "MatMul", "Reshape", "Shape", "Gather", "Unsqueeze", "Concat", "Constant", "Sigmoid",
                   "LogSoftmax")
"""ONNX ops that tests/test_formats.py converts and checks: those of the course's example architectures
(VGG, a small CNN, a residual net) exported by torch.onnx.export, and a net of the other common ones
(x.view(x.size(0), -1) is Shape, Gather, Unsqueeze, Concat and Reshape; Dropout leaves no op in eval
mode). Others onnx2torch converts may work."""


def _first_line(error: BaseException) -> str:
    return clip((str(error).strip().splitlines() or [type(error).__name__])[0])


def read_safetensors(weights: Path) -> Mapping[str, torch.Tensor]:
    """The tensors of a .safetensors file (safetensors.torch.load_file: no pickle, no code)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise SubmissionError("load", f"'{weights.name}' is not a readable safetensors file: {_first_line(error)}. "
                                      "Save it with safetensors.torch.save_file(model.state_dict(), "
                                      "'model.safetensors')") from None


def load_export(weights: Path) -> nn.Module:
    """The program of a .pt2 (torch.export.save) as a module with the student's submodules."""
    try:
        program = torch.export.load(str(weights))
    except Exception as error:  # torch raises RuntimeError, ValueError, KeyError, zipfile errors
        raise SubmissionError("load", f"'{weights.name}' is not a loadable torch.export program: "
                                      f"{_first_line(error)}. Save it with torch.export.save(torch.export.export("
                                      "model.eval(), (example,)), 'model.pt2'), with torch "
                                      f"{torch.__version__.split('+')[0]} or older") from None
    batch = _fixed_batch(program)
    if batch is not None:
        _free_batch(program, batch)
    try:
        net = torch.export.unflatten(program)
    except Exception as error:
        raise SubmissionError("load", f"the program in '{weights.name}' cannot be rebuilt into modules: "
                                      f"{_first_line(error)}") from None
    _name_kinds(net, program)
    _drop_traced_values(net)
    if batch is not None:
        _check_any_batch(net, program, batch, weights.name)
    return net


_KEPT_META = ("nn_module_stack", "stack_trace", "torch_fn")


def _drop_traced_values(net: nn.Module) -> None:
    """Take the fake tensors of the trace out of the rebuilt graphs' nodes: copy.deepcopy, with which
    the grader makes its randomized copy of the model, cannot copy one with a symbolic (dynamic)
    batch size, and running the graphs does not read them. The input check that reads them goes
    too (it would also hold a fixed-batch program to its example's batch); a wrong input shape still
    fails, in the first layer that gets it."""
    net.check_input_constraints = False
    for module in net.modules():
        graph = getattr(module, "graph", None)
        if isinstance(graph, torch.fx.Graph):
            for node in graph.nodes:
                node.meta = {key: value for key, value in node.meta.items() if key in _KEPT_META}
    for name in ("input_placeholders",):
        for node in getattr(net, name, None) or []:
            node.meta = {key: value for key, value in node.meta.items() if key in _KEPT_META}


def _name_kinds(net: nn.Module, program: torch.export.ExportedProgram) -> None:
    """Give each rebuilt submodule (an InterpreterModule) the class name it was exported from as
    `original_name`, as TorchScript modules have it, so that describe() says Conv2d and Grad-CAM
    finds the last convolution."""
    kinds: dict[str, str] = {}
    for node in program.graph.nodes:
        for path, kind in (node.meta.get("nn_module_stack") or {}).values():
            kinds.setdefault(path, str(getattr(kind, "__name__", kind)).rsplit(".", 1)[-1])
    for name, module in net.named_modules():
        if name and name in kinds:
            module.original_name = kinds[name]


_RESHAPES = (torch.ops.aten.view.default, torch.ops.aten.reshape.default, torch.ops.aten._unsafe_view.default)


def _free_batch(program: torch.export.ExportedProgram, batch: int) -> None:
    """A program exported without dynamic_shapes has its example's batch size written into its
    reshapes (x.view(x.size(0), -1) is traced as view(x, [4, 4608])). Where a reshape keeps the batch
    as its first dimension, write -1 there instead, so that the graph takes any batch."""
    graph_module = program.graph_module
    for node in graph_module.graph.nodes:
        if node.op != "call_function" or node.target not in _RESHAPES or len(node.args) < 2:
            continue
        source, shape = node.args[0], list(node.args[1])
        before = source.meta.get("val") if isinstance(source, torch.fx.Node) else None
        if (shape and shape[0] == batch and -1 not in shape and before is not None and before.dim() > 0
                and before.shape[0] == batch):
            node.args = (source, [-1, *shape[1:]], *node.args[2:])
    graph_module.recompile()


def _check_any_batch(net: nn.Module, program: torch.export.ExportedProgram, batch: int, file_name: str) -> None:
    """Check that the program, freed of its example's batch size, gives each face the logits it gives
    it in a batch of that size; a SubmissionError("load") saying how to export it otherwise."""
    shape = next(node.meta["val"].shape for node in program.graph.nodes if node.op == "placeholder"
                 and node.name in program.graph_signature.user_inputs)
    generator = torch.Generator().manual_seed(0)
    probe = torch.rand((batch + 1, *shape[1:]), generator=generator)
    try:
        with torch.no_grad():
            together = net(probe)
            alone = net(probe[:batch])
        same = together.shape[0] == batch + 1 and torch.allclose(together[:batch], alone, rtol=1e-4, atol=1e-5)
    except Exception:  # noqa: BLE001  (any failure: the graph holds the batch size somewhere else)
        same = False
    if not same:
        raise SubmissionError("load", f"'{file_name}' was exported for batches of exactly {batch} faces, and the "
                                      "grader runs other batch sizes. Export it with a dynamic batch: "
                                      "torch.export.export(model.eval(), (example,), dynamic_shapes=({0: "
                                      "torch.export.Dim('batch')},))")


def _fixed_batch(program: torch.export.ExportedProgram) -> int | None:
    """The batch size the program was exported for, or None when its batch dimension is dynamic."""
    placeholders = [node for node in program.graph.nodes if node.op == "placeholder"
                    and node.name in program.graph_signature.user_inputs]
    if not placeholders:
        return None
    value = placeholders[0].meta.get("val")
    if value is None or value.dim() == 0:
        return None
    size = value.shape[0]
    return int(size) if isinstance(size, int) else None


@contextlib.contextmanager
def _without_torchvision() -> Iterator[None]:
    """onnx2torch imports torchvision for its NMS and RoiAlign converters only; the grader's
    environment has no working torchvision (grader.submission.build), so a stand-in lets the import
    through, and is removed again so that a student's `import torchvision` still fails as it should."""
    names = ("torchvision", "torchvision.ops")
    saved = {name: sys.modules[name] for name in names if name in sys.modules}
    stub = types.ModuleType("torchvision")
    stub.ops = types.ModuleType("torchvision.ops")  # type: ignore[attr-defined]
    stub.ops.roi_align = None  # type: ignore[attr-defined]
    sys.modules.update({"torchvision": stub, "torchvision.ops": stub.ops})  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def _onnx2torch():
    if "onnx2torch" not in sys.modules:
        try:
            with _without_torchvision():
                import onnx2torch  # noqa: F401
        except ImportError:
            raise SubmissionError("load", "this grader cannot read ONNX models: onnx2torch is not installed (the "
                                          "TA installs it with pip install --no-deps onnx2torch); hand in the "
                                          "model as a state_dict, safetensors or .pt2 instead") from None
    return sys.modules["onnx2torch"]


def load_onnx(weights: Path) -> nn.Module:
    """An .onnx graph converted to a GraphModule of torch modules, its layers named after the
    student's modules where the exporter recorded them."""
    import onnx
    try:
        graph = onnx.load(str(weights))
        onnx.checker.check_model(graph)
    except Exception as error:  # onnx raises DecodeError, ValidationError, OSError
        raise SubmissionError("load", f"'{weights.name}' is not a valid ONNX model: {_first_line(error)}. Export it "
                                      "with torch.onnx.export(model.eval(), (example,), 'model.onnx')") from None
    try:
        module = _convert(graph)
    except Exception as error:  # an op onnx2torch lacks raises NotImplementedError
        raise SubmissionError("load", f"'{weights.name}' cannot be converted to torch: {_first_line(error)}. The "
                                      f"ops known to work: {', '.join(ONNX_OPS_TESTED)}") from None
    _rename_layers(module, [node.name for node in graph.graph.node])
    return module


OLDER_OPSET = 17
"""onnx2torch converts some ops only in their older versions (AveragePool from opset 19 on,
which torch.onnx.export's opset 20 has, is not among them); a graph it cannot convert is tried again after
onnx.version_converter has rewritten it to this opset."""


def _convert(graph) -> torch.fx.GraphModule:
    import onnx.version_converter
    try:
        return _onnx2torch().convert(graph)
    except NotImplementedError:
        opset = max((entry.version for entry in graph.opset_import if entry.domain in ("", "ai.onnx")), default=0)
        if opset <= OLDER_OPSET:
            raise
        try:
            older = onnx.version_converter.convert_version(graph, OLDER_OPSET)
        except Exception:  # noqa: BLE001  (the version converter lacks an adapter: report the first error)
            return _onnx2torch().convert(graph)
        return _onnx2torch().convert(older)


def _module_path(onnx_name: str) -> str | None:
    """'/features/features.0/Conv' -> 'features.0', '/stage1/conv1/Conv' -> 'stage1.conv1': torch.onnx.export
    names a node by its module scopes (a Sequential's child by its path from the Sequential's parent),
    then the op type."""
    parts = onnx_name.split("/")
    if len(parts) < 3 or parts[0] != "":
        return None
    path = ""
    for scope in parts[1:-1]:
        path = scope if not path or scope.startswith(path + ".") else f"{path}.{scope}"
    return path if path and all(piece.isidentifier() or piece.isdigit() for piece in path.split(".")) else None


def _rename_layers(module: torch.fx.GraphModule, onnx_names: list[str]) -> None:
    """Move each call_module layer to its module path when that path names one layer only and is no
    prefix of another's (a residual block's Add is scoped to the block, its convolutions below it)."""
    by_target = {name.replace(".", "/").lstrip("/"): name for name in onnx_names}
    calls = [node for node in module.graph.nodes if node.op == "call_module"]
    paths = {node: _module_path(by_target.get(str(node.target), "")) for node in calls}
    counts: dict[str, int] = {}
    for path in paths.values():
        if path:
            counts[path] = counts.get(path, 0) + 1
    chosen = {p for p, n in counts.items() if n == 1}
    chosen = {p for p in chosen if not any(other.startswith(p + ".") for other in counts)}
    existing = {str(node.target) for node in calls}
    moved = False
    for node in calls:
        path = paths[node]
        if path not in chosen or path in existing:
            continue
        layer = module.get_submodule(str(node.target))
        delattr(module, str(node.target))
        module.add_submodule(path, layer)
        node.target = path
        moved = True
    if moved:
        module.recompile()
