"""Building the student's nn.Module from model.py + a state_dict, a Lightning checkpoint, safetensors,
TorchScript, a torch.export program (.pt2) or ONNX (grader.submission.graphs).

Weights are read without running code from them (grader.submission.weights): torch.load(weights_only=True)
where torch's unpickler knows the pickle, a restricted unpickler elsewhere. A pickle that carries
Python objects beyond tensors and plain containers is refused, never executed.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from grader.submission.errors import SubmissionError
from grader.submission.graphs import load_export, load_onnx, read_safetensors
from grader.submission.spec import SubmissionSpec, WeightsFormat, infer_format
from grader.submission.weights import clip, read_weights, state_dict_from


def build_model(folder: str | Path, spec: SubmissionSpec) -> nn.Module:
    """The student's model in eval mode with its weights loaded, or a SubmissionError saying why not."""
    folder = Path(folder)
    weights = folder / spec.model.weights
    if weights.is_dir():
        raise SubmissionError("load", f"'{spec.model.weights}' is a folder, not a weights file: model.weights in "
                                      "submission.yaml must name the file torch.save wrote")
    if not weights.is_file():
        raise SubmissionError("load", f"weights file '{spec.model.weights}' not found in the submission folder "
                                      f"(model.weights in submission.yaml)")
    fmt = sniff_format(weights, spec.model.format)
    if fmt == "torchscript":
        model = _load_torchscript(weights)
    elif fmt == "export":
        model = load_export(weights)
    elif fmt == "onnx":
        model = load_onnx(weights)
    else:
        model = instantiate(folder, spec)
        state = read_safetensors(weights) if fmt == "safetensors" else _read_state_dict(weights, fmt)
        _load_into(model, state, spec.model.weights)
    return model.eval()


def sniff_format(weights: Path, declared: WeightsFormat | None) -> WeightsFormat:
    """The declared format, or the one the file name says (spec.infer_format: .ckpt, .pt2, .safetensors,
    .onnx), or for a .pt/.pth the one its content shows: TorchScript archives hold a code/ folder, a
    torch.export archive (.pt2 renamed) a models/ folder beside its serialized program."""
    if declared is not None:
        return declared
    inferred = infer_format(weights.name)
    if inferred != "state_dict":
        return inferred
    if zipfile.is_zipfile(weights):
        try:
            with zipfile.ZipFile(weights) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return "state_dict"  # read_weights says what is wrong with it
        if any("/code/" in name for name in names):
            return "torchscript"
        if any(name.endswith("/models/model.json") for name in names):
            return "export"
    return "state_dict"


def _load_torchscript(weights: Path) -> nn.Module:
    try:
        return torch.jit.load(str(weights), map_location="cpu")
    except Exception as error:  # torch raises RuntimeError or ValueError, with C++ context
        raise SubmissionError("load", f"'{weights.name}' is not a loadable TorchScript file: "
                                      f"{_first_line(error)}. Save it with torch.jit.script(model).save(...)") from None


def instantiate(folder: Path, spec: SubmissionSpec) -> nn.Module:
    if spec.model.source is None or spec.model.entry is None:
        # The spec allows a .pt/.pth without source in case it is TorchScript; this one is not.
        missing = " and ".join(f"model.{f}" for f in ("source", "entry") if getattr(spec.model, f) is None)
        raise SubmissionError("load", f"{missing} required: '{spec.model.weights}' is not TorchScript but a "
                                      "state_dict, so name the Python file and the class (or function) that "
                                      "builds your model, e.g. source: model.py, entry: Net")
    source = folder / spec.model.source
    if not source.is_file():
        raise SubmissionError("load", f"model.source '{spec.model.source}' not found in the submission folder")
    module = _import_source(source, folder)
    entry = getattr(module, spec.model.entry, None)
    if entry is None:
        names = sorted(n for n, v in vars(module).items()
                       if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == module.__name__)
        hint = f" It defines: {_some([clip(n, 60) for n in names], 10)}." if names else ""
        raise SubmissionError("load", f"{spec.model.source} has no '{spec.model.entry}' (model.entry in "
                                      f"submission.yaml).{hint}")
    try:
        model = entry()
    except Exception as error:
        raise SubmissionError("load", _code_failure(f"calling {spec.model.entry}()", error, source, folder)) from None
    if not isinstance(model, nn.Module):
        raise SubmissionError("load", f"{spec.model.entry}() returned {type(model).__name__}, expected a "
                                      "torch.nn.Module (a class or a zero-argument function that builds one)")
    return model


def _import_source(source: Path, folder: Path) -> ModuleType:
    """Import the student's file under a fresh name, with its folder first on sys.path for its helpers."""
    name = f"submission_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    before = set(sys.modules)
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        where = Path(error.filename).name if error.filename else source.name  # model.py or a helper it imports
        raise SubmissionError("load", f"syntax error in {where} line {error.lineno}: {error.msg}") from None
    except Exception as error:
        raise SubmissionError("load", _code_failure(f"importing {source.name}", error, source, folder)) from None
    finally:
        sys.path.remove(str(folder))
        _forget_helpers(folder, before)
    return module


def _forget_helpers(folder: Path, before: set[str]) -> None:
    """Drop from sys.modules what the student's file imported from its own folder, so that the next
    submission's helpers.py is imported afresh instead of reusing this one's."""
    root = folder.resolve()
    for name in set(sys.modules) - before:
        module = sys.modules[name]
        places = [getattr(module, "__file__", None), *(getattr(module, "__path__", None) or [])]
        if any(place and Path(place).resolve().is_relative_to(root) for place in places):
            del sys.modules[name]


def _read_state_dict(weights: Path, fmt: WeightsFormat) -> Mapping[str, torch.Tensor]:
    """The state_dict in the weights file; see grader.submission.weights for what it reads and how."""
    return state_dict_from(read_weights(weights), weights.name, lightning=fmt == "lightning_ckpt")


def _load_into(model: nn.Module, state: Mapping[str, torch.Tensor], file_name: str) -> None:
    state = _strip_wrapper_prefix(state, set(model.state_dict()))
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                   for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"missing {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected {_some(unexpected)}")
    if wrong_shape:
        problems.append(f"wrong shape {_some(wrong_shape)}")
    if problems:
        raise SubmissionError("load", f"the weights in '{file_name}' do not fit the model: {'; '.join(problems)}. "
                                      "Check that model.py builds the same architecture you trained")
    model.load_state_dict(state, strict=True)


def _strip_wrapper_prefix(state: Mapping[str, torch.Tensor], wanted: set[str]) -> Mapping[str, torch.Tensor]:
    """Lightning saves `self.model.conv1.weight` as 'model.conv1.weight'. When the keys do not match
    the model's as they are, take the keys under one leading component (or two, for a wrapper in a
    wrapper) that give exactly the model's keys; entries outside it (a loss's class weights, say)
    belong to the LightningModule, not the model. Otherwise return the state unchanged, so that
    the mismatch is reported against the keys the student saved."""
    if set(state) == wanted:
        return state
    for depth in (1, 2):
        groups: dict[str, dict[str, torch.Tensor]] = {}
        for key, value in state.items():
            parts = key.split(".", depth)
            if len(parts) > depth:
                groups.setdefault(".".join(parts[:depth]), {})[parts[depth]] = value
        for group in groups.values():
            if set(group) == wanted:
                return group
    return state


def _some(items: list[str], limit: int = 4) -> str:
    shown = ", ".join(clip(item, 120) for item in items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


def _first_line(error: BaseException) -> str:
    return clip((str(error).strip().splitlines() or [type(error).__name__])[0])


def _student_trace(error: BaseException, source: Path) -> str:
    """The error with the last line of the student's own file that led to it."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).name == source.name]
    where = f" (at {source.name} line {frames[-1].lineno}: {clip(frames[-1].line or '', 200)})" if frames else ""
    return f"{type(error).__name__}: {clip(str(error))}{where}"


def _code_failure(what: str, error: BaseException, source: Path, folder: Path) -> str:
    """`importing model.py failed: <error> (at <line>)`, plus why a missing module is missing; for
    torchvision, a message of its own."""
    return (_torchvision_message(error, folder)
            or f"{what} failed: {_student_trace(error, source)}{_missing_module_hint(error)}")


def _torchvision_message(error: BaseException, folder: Path) -> str | None:
    """The message for a model that needs torchvision, or None. torchvision is not installed beside
    the grader's torch; where one is, it was built for another torch and its import fails with
    "operator torchvision::nms does not exist", so either way the text or the module names it."""
    missing = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
    if (missing or "").split(".")[0] != "torchvision" and "torchvision" not in str(error):
        return None
    return (f"{_student_line(error, folder)} imports torchvision, which the grader's environment does not "
            "provide. Build the model with torch.nn only: if you used a torchvision model such as resnet18, "
            "copy its definition into your own file (its source is short), or hand in TorchScript "
            "(torch.jit.script(model).save('model.pt'), model.format: torchscript)")


def _missing_module_hint(error: BaseException) -> str:
    """Why a module is missing: the sandbox runs the grader's own Python environment, not the
    student's, so any package beyond it (and beside torch and numpy, nothing is promised) is absent."""
    if not isinstance(error, ModuleNotFoundError) or not error.name:
        return ""
    return (f". '{clip(error.name, 100)}' is not installed in the grader's environment, nor a .py file in the "
            "submission folder: the model may use torch, numpy, the Python standard library and the .py "
            "files handed in beside it")


def _student_line(error: BaseException, folder: Path) -> str:
    """`model.py line 3` (or the helper file's): the last traceback frame in the submission folder."""
    root = folder.resolve()
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if Path(f.filename).resolve().is_relative_to(root)]
    return f"{Path(frames[-1].filename).name} line {frames[-1].lineno}" if frames else "the model source"
