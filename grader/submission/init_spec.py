"""`grader init`'s trusted side: which files of a folder to ask the sandbox about, how to read its
answer, and the submission.yaml that follows from it.

1. `find_candidates` lists, through the bounded scan of grader.submission.tree (no link followed,
   nothing special opened), the weights files by suffix (WEIGHTS_SUFFIXES) and the Python files
   that mention torch (read as bounded text through tree_files.read_file), model.py first. Links
   and names that are not UTF-8 are left out (submission.yaml could not name them).
2. The sandbox (grader.sandbox.inspection, which runs grader.submission.inspection there) imports
   the sources, reads the weights and probes the models; `inspection_from` reads its answer as
   untrusted: files only by their index in what was asked, entry names only as Python identifiers,
   formats only from the spec's list, shapes only from the probe's own channels and sizes, every
   message cleaned and cut, every list bounded.
3. `decide` turns the findings into an `InitPlan`: the submission.yaml text (None when no weights
   file can be used), what was found, and what could not be decided.

Choices, when more than one thing fits (each is said in `undecided`):
- weights: the first usable file in the scan's order (shallowest first, then by name);
- entry: among the entries whose state_dict loads the weights strictly, plain nn.Modules before
  LightningModules (the grader wants the network, not its training wrapper), those returning 7
  outputs first, then the order of the sources and of the definitions in each;
- channels: 1 when the model accepts both;
- size: 48 when accepted (a model with global pooling accepts every size; a student who trained on
  center crops must say so), else the largest accepted;
- scale, mean, std, normalize, equalize, tta: never inferred (the weights do not tell how pixels
  were scaled in training); the defaults are written with a comment saying so;
- student_id and name: placeholders the student must replace (the id placeholder is a valid id, so
  that the file loads; `PLACEHOLDER_ID` lets a caller recognize it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import get_args

import yaml

from grader.escape import clean_text
from grader.submission.errors import SubmissionError
from grader.submission.spec import GRAPH_FORMATS, SPEC_FILE, SubmissionSpec, WeightsFormat
from grader.submission.tree import DEFAULT_BOUNDS, Manifest, TreeBounds, scan_tree
from grader.submission.tree_files import read_file
from grader.yamlfile import ConfigError, parse_yaml_model

WEIGHTS_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".pt2", ".onnx", ".pkl", ".bin")
MAX_WEIGHTS = 8
MAX_SOURCES = 8
MAX_ENTRIES = 64
SOURCE_MAX_BYTES = 1 << 20
"""A model.py is a few KiB; the similarity report reads at most this much of it too."""
SKIPPED_SOURCES = re.compile(r"(setup|conftest)\.py|test_.*\.py|.*_test\.py")
MESSAGE_LIMIT = 600
PLACEHOLDER_ID = "FILL_IN_YOUR_STUDENT_ID"
PLACEHOLDER_NAME = "FILL IN YOUR NAME"
PROBE_CHANNELS = (1, 3)
PROBE_SIZES = (48, 46, 44, 42, 40, 36, 32)
"""As grader.submission.inspection probes (repeated here: this module must not import torch's side)."""
NUM_CLASSES = 7


@dataclass(frozen=True)
class Candidates:
    """What the sandbox is asked about: paths relative to the folder, POSIX separators."""

    weights: tuple[str, ...]
    sources: tuple[str, ...]
    left_out: tuple[str, ...] = ()
    """Notes on files not asked about (too many, a link, a name that is not UTF-8)."""


def find_candidates(folder, bounds: TreeBounds = DEFAULT_BOUNDS) -> tuple[Candidates, bool]:
    """The candidate files of `folder` and whether it already has a submission.yaml.
    SubmissionError("snapshot") when the folder's tree is refused (a link out, a bound passed)."""
    manifest = scan_tree(folder, bounds)
    notes: list[str] = []
    weights, sources = [], []
    for entry in manifest.entries:
        suffix = PurePosixPath(entry.path).suffix.lower()
        if suffix not in WEIGHTS_SUFFIXES and suffix != ".py":
            continue
        if not _writable_name(entry.path):
            notes.append(f"{clean_text(entry.path, 120)!r}: its name is not UTF-8 text, so submission.yaml "
                         "cannot name it; rename it")
        elif entry.kind == "link":
            notes.append(f"{clean_text(entry.path, 120)}: a link, not looked at (name the file itself)")
        elif entry.kind != "file":
            continue
        elif suffix == ".py":
            if not SKIPPED_SOURCES.fullmatch(PurePosixPath(entry.path).name) and _mentions_torch(manifest, entry.path):
                sources.append(entry.path)
        else:
            weights.append(entry.path)
    weights.sort(key=lambda p: (p.count("/"), p))
    sources.sort(key=lambda p: (PurePosixPath(p).name != "model.py", p.count("/"),
                                not re.search(r"model|net", PurePosixPath(p).name, re.I), p))
    for kind, found, limit in (("weights files", weights, MAX_WEIGHTS), ("Python files", sources, MAX_SOURCES)):
        if len(found) > limit:
            notes.append(f"{len(found)} {kind}: only the first {limit} were looked at "
                         f"({', '.join(clean_text(p, 80) for p in found[:limit])})")
            del found[limit:]
    has_spec = any(entry.path == SPEC_FILE for entry in manifest.entries)
    return Candidates(tuple(weights), tuple(sources), tuple(notes)), has_spec


def _writable_name(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return clean_text(path) == path and len(path) <= 300


def _mentions_torch(manifest: Manifest, path: str) -> bool:
    try:
        data = read_file(manifest, path, SOURCE_MAX_BYTES)
    except SubmissionError:
        return False
    return data is not None and b"torch" in data


# ---------------------------------------------------------------- the sandbox's answer, as untrusted input


@dataclass(frozen=True)
class Probe:
    """The (channels, size, outputs) a forward accepted, and per channel count that nothing fits, why."""

    accepted: tuple[tuple[int, int, int], ...]
    errors: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class EntryFinding:
    source: str
    name: str
    kind: str
    lightning: bool
    error: str | None
    probe: Probe | None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.kind} in {self.source})"


@dataclass(frozen=True)
class SourceFinding:
    path: str
    error: str | None
    entries: tuple[EntryFinding, ...]


@dataclass(frozen=True)
class WeightsFinding:
    path: str
    format: WeightsFormat | None
    error: str | None
    fits: tuple[EntryFinding, ...]
    misfits: tuple[tuple[EntryFinding, str], ...]
    probe: Probe | None

    @property
    def whole_model(self) -> bool:
        return self.format in GRAPH_FORMATS

    @property
    def usable(self) -> bool:
        # A format is required: a doctored answer without one must not reach the written yaml.
        return self.error is None and self.format is not None and (
            self.probe is not None if self.whole_model else bool(self.fits))


@dataclass(frozen=True)
class Inspection:
    weights: tuple[WeightsFinding, ...]
    sources: tuple[SourceFinding, ...]
    sources_inspected: bool


def inspection_from(answer: object, candidates: Candidates) -> Inspection:
    """The sandbox's answer held to what was asked; ValueError when it is malformed."""
    if not isinstance(answer, dict):
        raise ValueError("the inspection is not an object")
    raw_sources = _list(answer.get("sources"), len(candidates.sources))
    sources = tuple(_source(raw, path) for raw, path in zip(raw_sources, candidates.sources))
    raw_weights = _list(answer.get("weights"), len(candidates.weights))
    if len(raw_weights) != len(candidates.weights) or (raw_sources and len(raw_sources) != len(candidates.sources)):
        raise ValueError("the inspection does not answer for every file asked about")
    weights = tuple(_weights(raw, path, sources) for raw, path in zip(raw_weights, candidates.weights))
    return Inspection(weights, sources, bool(answer.get("sources_inspected")))


def _list(value: object, limit: int) -> list:
    if not isinstance(value, list) or len(value) > limit:
        raise ValueError(f"expected a list of at most {limit} items")
    return value


def _text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("a message is not text")
    return clean_text(value, MESSAGE_LIMIT)


def _int(value: object, allowed: Sequence[int] | None = None, high: int = 1 << 20) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
        raise ValueError(f"{clean_text(value, 40)!r} is not a count")
    if allowed is not None and value not in allowed:
        raise ValueError(f"{value} is not one of {allowed}")
    return value


def _probe(raw: object) -> Probe | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError("a probe is not an object")
    accepted = tuple((_int(c, PROBE_CHANNELS), _int(s, PROBE_SIZES), _int(k))
                     for c, s, k in _list(raw.get("accepted"), len(PROBE_CHANNELS) * len(PROBE_SIZES)))
    errors = tuple((_int(c, PROBE_CHANNELS), _text(m) or "") for c, m in _list(raw.get("errors"), len(PROBE_CHANNELS)))
    return Probe(accepted, errors)


def _source(raw: object, path: str) -> SourceFinding:
    if not isinstance(raw, dict):
        raise ValueError("a source's answer is not an object")
    entries = []
    for item in _list(raw.get("entries"), MAX_ENTRIES):
        name, kind = item.get("name"), item.get("kind")
        if not (isinstance(name, str) and name.isidentifier() and len(name) <= 100 and kind in ("class", "function")):
            raise ValueError("an entry is not a Python name of a class or function")
        entries.append(EntryFinding(path, name, kind, bool(item.get("lightning")), _text(item.get("error")),
                                    _probe(item.get("probe"))))
    return SourceFinding(path, _text(raw.get("error")), tuple(entries))


def _entry_at(pair: object, sources: tuple[SourceFinding, ...]) -> EntryFinding:
    if not (isinstance(pair, list) and len(pair) >= 2):
        raise ValueError("an entry reference is not a pair of indices")
    s = _int(pair[0], range(len(sources)))
    return sources[s].entries[_int(pair[1], range(len(sources[s].entries)))]


def _weights(raw: object, path: str, sources: tuple[SourceFinding, ...]) -> WeightsFinding:
    if not isinstance(raw, dict):
        raise ValueError("a weights file's answer is not an object")
    fmt = raw.get("format")
    if fmt is not None and fmt not in get_args(WeightsFormat):
        raise ValueError(f"{clean_text(fmt, 40)!r} is not a weights format")
    budget = MAX_SOURCES * MAX_ENTRIES
    fits = tuple(_entry_at(pair, sources) for pair in _list(raw.get("fits"), budget))
    misfits = tuple((_entry_at(item, sources), _text(item[2]) or "") for item in _list(raw.get("misfits"), budget)
                    if isinstance(item, list) and len(item) == 3)
    return WeightsFinding(path, fmt, _text(raw.get("error")), fits, misfits, _probe(raw.get("probe")))


# ---------------------------------------------------------------- deciding, and the submission.yaml


@dataclass(frozen=True)
class InitPlan:
    """What `grader init` writes (`spec_text`, None when nothing usable was found) and tells."""

    spec_text: str | None
    found: tuple[str, ...]
    undecided: tuple[str, ...]


INFERRED_NOTHING = ("input.scale, mean and std (and normalize, equalize, tta) cannot be inferred from the weights: "
                    "the defaults are written (pixels / 255, no mean or std); set them as your training "
                    "preprocessed the faces (see 'Preprocessing and outputs' in the README)")
FILL_IN = (f"student_id and name are placeholders ({PLACEHOLDER_ID}, {PLACEHOLDER_NAME}): replace them with "
           "your own before you hand in")


def decide(candidates: Candidates, inspection: Inspection) -> InitPlan:
    found: list[str] = []
    undecided: list[str] = list(candidates.left_out)
    for source in inspection.sources:
        if source.error:
            undecided.append(f"{source.path} could not be imported: {source.error}")
        else:
            entries = ", ".join(e.name for e in source.entries if e.error is None) or "none"
            found.append(f"{source.path}: entries that build with no arguments: {entries}")
    usable = [w for w in inspection.weights if w.usable]
    for weights in inspection.weights:
        if not weights.usable:
            undecided.append(_why_unusable(weights, inspection))
    if not inspection.weights:
        undecided.append(f"no weights file ({', '.join(WEIGHTS_SUFFIXES)}) in the folder: save your trained "
                         "model's weights there, e.g. torch.save(model.state_dict(), 'model.pth'), and run "
                         "grader init again")
    if not usable:
        return InitPlan(None, tuple(found), tuple(undecided))
    chosen = usable[0]
    if len(usable) > 1:
        undecided.append(f"{len(usable)} weights files can be used ({', '.join(w.path for w in usable)}): "
                         f"{chosen.path} written; change model.weights if you meant another")
    entry = None
    if chosen.whole_model:
        found.append(f"{chosen.path}: {chosen.format}, a file that holds the whole model: no model.source or "
                     "model.entry needed")
        probe = chosen.probe
    else:
        fits = sorted(chosen.fits, key=lambda e: (e.lightning, not _gives(e.probe, NUM_CLASSES)))
        entry = fits[0]
        found.append(f"{chosen.path}: {chosen.format}; the weights load strictly into {entry.label}")
        if len(fits) > 1:
            undecided.append(f"{len(fits)} entries load {chosen.path}: {', '.join(e.label for e in fits)}; "
                             f"{entry.name} written (the first{', not a LightningModule' if fits[-1].lightning else ''}"
                             "); set model.entry to the one you trained")
        probe = entry.probe
    size, channels = _input(probe, found, undecided)
    undecided += [INFERRED_NOTHING, FILL_IN]
    text = spec_text(chosen, entry, size, channels)
    return InitPlan(text, tuple(found), tuple(undecided))


def _gives(probe: Probe | None, outputs: int) -> bool:
    return probe is not None and any(k == outputs for _, _, k in probe.accepted)


def _why_unusable(weights: WeightsFinding, inspection: Inspection) -> str:
    if weights.error:
        return f"{weights.path} cannot be used: {weights.error}"
    if weights.format is None:
        return f"{weights.path}: its format could not be told"
    if not inspection.sources:
        return (f"{weights.path} is a {weights.format} and needs the Python file that builds the model, but no "
                ".py file in the folder mentions torch: hand in your model.py")
    if all(source.error for source in inspection.sources):
        return (f"{weights.path} is a {weights.format} and needs the Python file that builds the model, but "
                f"{', '.join(s.path for s in inspection.sources)} could not be imported (see above): fix that first")
    if not weights.misfits:
        return (f"{weights.path} is a {weights.format}, but no class or zero-argument function in "
                f"{', '.join(s.path for s in inspection.sources)} builds a model (a class whose constructor needs "
                "arguments cannot be the entry: give them defaults, or add a function that returns the model)")
    shown = "; ".join(f"{entry.label}: {why}" for entry, why in weights.misfits[:3])
    more = f" (and {len(weights.misfits) - 3} more)" if len(weights.misfits) > 3 else ""
    return f"{weights.path}: no entry loads these weights strictly. {shown}{more}"


def _input(probe: Probe | None, found: list[str], undecided: list[str]) -> tuple[int | None, int | None]:
    if probe is None or not probe.accepted:
        errors = "; ".join(f"{c} channel(s): {m}" for c, m in (probe.errors if probe else ()))
        undecided.append("input.size and input.channels: the model accepted none of the shapes tried "
                         f"(1 or 3 channels, sides {', '.join(map(str, PROBE_SIZES))}), so they are not written"
                         + (f". {errors}" if errors else ""))
        return None, None
    channel_options = sorted({c for c, _, _ in probe.accepted})
    channels = channel_options[0]
    if len(channel_options) > 1:
        undecided.append("input.channels: the model accepts both 1 and 3 channels; 1 written (3 repeats the gray "
                         "face on three channels): write what you trained with")
    sizes = sorted({s for c, s, _ in probe.accepted if c == channels}, reverse=True)
    size = 48 if 48 in sizes else sizes[0]
    outputs = {k for c, s, k in probe.accepted if c == channels and s == size}.pop()
    found.append(f"input: {channels} channel{'s' if channels > 1 else ''}, accepted sides "
                 f"{', '.join(map(str, sizes))} of those tried; {outputs} outputs")
    if len(sizes) > 1:
        undecided.append(f"input.size: the model accepts several sides ({', '.join(map(str, sizes))}); {size} "
                         "written. If you trained on center crops (44 for ten-crop, say), write that side")
    if outputs != NUM_CLASSES:
        undecided.append(f"the model gives {outputs} outputs, the grader expects {NUM_CLASSES} (one per expression: "
                         "0 Angry .. 6 Neutral); it will fail to grade as it is")
    return size, channels


def _scalar(text: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./-]*", text) and text.lower() not in ("true", "false", "yes", "no", "on",
                                                                                 "off", "null", "y", "n"):
        return text
    return yaml.safe_dump(text, allow_unicode=True, default_style='"', width=1 << 20).strip()


def spec_text(weights: WeightsFinding, entry: EntryFinding | None, size: int | None, channels: int | None) -> str:
    """The submission.yaml for these choices, with comments; checked to load with the spec's loader
    and to name the files and entry chosen (ValueError otherwise: a bug here, not the student's)."""
    lines = ["# Written by grader init. Check every line; replace the two FILL IN values with your own.",
             f"student_id: {PLACEHOLDER_ID}   # FILL IN: your student id",
             f"name: {PLACEHOLDER_NAME}   # FILL IN: your name",
             "model:",
             f"  format: {weights.format}"]
    if entry is not None:
        lines += [f"  source: {_scalar(entry.source)}", f"  entry: {_scalar(entry.name)}"]
    lines += [f"  weights: {_scalar(weights.path)}", "input:"]
    if size is not None and channels is not None:
        lines += [f"  size: {size}        # probed: a side the model accepts",
                  f"  channels: {channels}     # probed"]
    lines += ["  # Not inferred (the weights cannot tell): set these as your training preprocessed the faces.",
              "  scale: 255", "  mean: 0.0", "  std: 1.0", ""]
    text = "\n".join(lines)
    try:
        spec = parse_yaml_model(text.encode("utf-8"), SPEC_FILE, SubmissionSpec)
    except ConfigError as error:
        raise ValueError(f"grader init wrote a submission.yaml its own loader refuses: {error}") from None
    if (spec.model.weights, spec.model.source, spec.model.entry) != (
            weights.path, entry and entry.source, entry and entry.name):
        raise ValueError("grader init's submission.yaml does not read back as written")
    return text
