"""`grader init`'s look inside a submission, run in the sandbox (grader.sandbox.serve.serve_inspection):
the student's code is imported and their weights files are parsed here, never on the trusted side.

`inspect_folder(folder, weights, sources)` gets the candidate files the trusted side found
(grader.submission.init_spec.find_candidates: paths relative to the folder) and answers, for each:

- a weights file: its format as the grader would take it (build.sniff_format: the suffix, a .pt/.pth by
  its content); for torchscript, export and onnx the model is loaded as grading loads it
  (build.build_model) and its input probed; for state_dict, lightning_ckpt and safetensors the
  state_dict is read (build's readers: no pickled code runs) and each entry of the sources is
  tried on it, strictly (build._load_into: every key and shape, a Lightning `model.` prefix taken
  off as grading does);
- a source file (imported as grading imports it, build._import_source): its entries, the nn.Module
  subclasses and the zero-argument functions returning an nn.Module defined in that file, each
  built once with no arguments (a class whose constructor needs arguments is listed with that
  error: it is a building block, not an entry) and its input probed.

The probe (`probe_input`) runs the model in eval mode under no_grad on a batch of two zero images for
each channel count in PROBE_CHANNELS and side in PROBE_SIZES, and lists the shapes whose forward
returns a (2, k) float tensor, with k. Zeros, not faces: only the shapes matter here. The whole
forward is run, not only the first layers: a first convolution takes any side, and it is the
flatten before a Linear layer that fixes the size.

Functions whose names say they do something else (train, main, test, ...: SKIPPED_FUNCTION_PREFIXES)
are not called: a zero-argument `main()` in model.py usually trains. Every import, constructor call,
load and probe runs under an alarm of CALL_SECONDS (`_budget`), so one endless constructor costs
that much, not the whole request's limit. Sources are imported only when some weights file needs
them (or none was found: the entries are still listed, for a submission.yaml without weights).

The answer is a JSON-able dict that refers to files by their index in the request, never by a path
it makes up; messages are the grader's usual words for the student's errors. The trusted side
reads it as untrusted (grader.submission.init_spec.inspection_from).
"""

from __future__ import annotations

import inspect
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from grader.submission.build import _import_source, _load_into, _read_state_dict, build_model, sniff_format
from grader.submission.errors import SubmissionError, describe_exception
from grader.submission.graphs import read_safetensors
from grader.submission.spec import GRAPH_FORMATS, ModelSpec, SubmissionSpec

PROBE_CHANNELS = (1, 3)
PROBE_SIZES = (48, 46, 44, 42, 40, 36, 32)
"""Sides tried: the whole face, and the center crops course models are trained on (44 for ten-crop,
42, 40) and a few smaller ones."""
PROBE_BATCH = 2
CALL_SECONDS = 30
"""The alarm on one import, constructor, weights read or probe."""
MESSAGE_CHARS = 600
SKIPPED_FUNCTION_PREFIXES = ("main", "train", "test", "eval", "fit", "run", "plot", "show", "save", "download",
                             "predict", "visual", "explain")


class _TooSlow(BaseException):
    """The alarm went off (a BaseException, so that a student's `except Exception` does not swallow it)."""


@contextmanager
def _budget(seconds: int = CALL_SECONDS) -> Iterator[None]:
    def ring(signum, frame):  # noqa: ARG001
        raise _TooSlow(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _message(error: BaseException) -> str:
    if isinstance(error, _TooSlow):
        return f"stopped: it {error}"
    text = error.message if isinstance(error, SubmissionError) else describe_exception(error)
    return text[:MESSAGE_CHARS]


@dataclass
class _Entry:
    name: str
    kind: str  # "class" | "function"
    lightning: bool
    model: nn.Module | None = None
    error: str | None = None
    probe: dict | None = None

    def answer(self) -> dict:
        return {"name": self.name, "kind": self.kind, "lightning": self.lightning, "error": self.error,
                "probe": self.probe}


@dataclass
class _Source:
    path: str
    error: str | None = None
    entries: list[_Entry] = field(default_factory=list)

    def answer(self) -> dict:
        return {"error": self.error, "entries": [entry.answer() for entry in self.entries]}


def inspect_folder(folder: Path, weights: list[str], sources: list[str]) -> dict:
    """The answer described in the module's docstring, for the files `weights` and `sources` (paths
    relative to `folder`)."""
    sniffed = [_sniff(folder, path) for path in weights]
    needs_source = not weights or any(fmt is not None and fmt not in GRAPH_FORMATS for fmt, _ in sniffed)
    inspected = [_inspect_source(folder, path) for path in sources] if needs_source else []
    answers = []
    for path, (fmt, error) in zip(weights, sniffed):
        answer: dict = {"format": fmt, "error": error, "fits": [], "misfits": [], "probe": None}
        if error is None and fmt in GRAPH_FORMATS:
            _whole_model(folder, path, fmt, answer)
        elif error is None and fmt is not None:
            _fitting_entries(folder, path, fmt, inspected, answer)
        answers.append(answer)
    return {"weights": answers, "sources": [source.answer() for source in inspected],
            "sources_inspected": needs_source}


def _sniff(folder: Path, path: str) -> tuple[str | None, str | None]:
    try:
        with _budget():
            return sniff_format(folder / path, None), None
    except BaseException as error:  # noqa: BLE001  (a broken file is a finding, not a failure)
        return None, _message(error)


def _whole_model(folder: Path, path: str, fmt: str, answer: dict) -> None:
    spec = SubmissionSpec(student_id="init", model=ModelSpec(format=fmt, weights=path))
    try:
        with _budget():
            model = build_model(folder, spec)
    except BaseException as error:  # noqa: BLE001
        answer["error"] = _message(error)
        return
    answer["probe"] = probe_input(model)


def _fitting_entries(folder: Path, path: str, fmt: str, sources: list[_Source], answer: dict) -> None:
    try:
        with _budget():
            state = read_safetensors(folder / path) if fmt == "safetensors" else _read_state_dict(folder / path, fmt)
    except BaseException as error:  # noqa: BLE001
        answer["error"] = _message(error)
        return
    for s, source in enumerate(sources):
        for e, entry in enumerate(source.entries):
            if entry.model is None:
                continue
            try:
                with _budget():
                    _load_into(entry.model, state, Path(path).name)
            except BaseException as error:  # noqa: BLE001
                answer["misfits"].append([s, e, _message(error)])
            else:
                answer["fits"].append([s, e])


def _inspect_source(folder: Path, path: str) -> _Source:
    source = _Source(path)
    try:
        with _budget():
            module = _import_source(folder / path, folder)
    except BaseException as error:  # noqa: BLE001
        source.error = _message(error)
        return source
    for name, value in list(vars(module).items()):
        try:
            entry = _entry(module.__name__, name, value)
        except BaseException:  # noqa: BLE001  (an object whose attributes raise is no entry)
            continue
        if entry is None:
            continue
        try:
            with _budget():
                built = value()
        except BaseException as error:  # noqa: BLE001
            if entry.kind == "function":
                continue  # a function that cannot be called without arguments is no entry
            entry.error = f"calling {name}() failed: {_message(error)}"
            source.entries.append(entry)
            continue
        if not isinstance(built, nn.Module):
            continue  # a helper that returns something else (transforms, a loss, ...)
        entry.model = built
        entry.probe = probe_input(built)
        source.entries.append(entry)
    return source


def _entry(module_name: str, name: str, value: object) -> _Entry | None:
    """An entry candidate: defined in the student's file itself (not imported), public, and a
    Module subclass or a function that can be called without arguments."""
    if name.startswith("_") or getattr(value, "__module__", None) != module_name:
        return None
    if isinstance(value, type) and issubclass(value, nn.Module):
        lightning = any(base.__name__ == "LightningModule" for base in value.__mro__)
        return _Entry(name, "class", lightning)
    if inspect.isfunction(value) and not name.lower().startswith(SKIPPED_FUNCTION_PREFIXES):
        try:
            inspect.signature(value).bind()
        except (TypeError, ValueError):
            return None
        return _Entry(name, "function", False)
    return None


def probe_input(model: nn.Module) -> dict:
    """{"accepted": [[channels, size, outputs], ...], "errors": [[channels, message], ...]}: the
    shapes a forward accepts, and for a channel count that no size fits, the error at 48."""
    accepted: list[list[int]] = []
    errors: list[list] = []
    try:
        model.eval()
    except BaseException as error:  # noqa: BLE001
        return {"accepted": [], "errors": [[1, _message(error)]]}
    for channels in PROBE_CHANNELS:
        first_error = None
        for size in PROBE_SIZES:
            try:
                with _budget(), torch.no_grad():
                    output = model(torch.zeros(PROBE_BATCH, channels, size, size))
            except BaseException as error:  # noqa: BLE001
                first_error = first_error or _message(error)
                continue
            if (isinstance(output, torch.Tensor) and output.is_floating_point() and output.dim() == 2
                    and output.shape[0] == PROBE_BATCH):
                accepted.append([channels, size, int(output.shape[1])])
            else:
                shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
                first_error = first_error or (f"the model returned {shape} for a batch of {PROBE_BATCH}, expected "
                                              f"({PROBE_BATCH}, 7) logits")
        if not any(a[0] == channels for a in accepted) and first_error:
            errors.append([channels, first_error])
    return {"accepted": accepted, "errors": errors}
