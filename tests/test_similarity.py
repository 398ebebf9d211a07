"""The similarity report (grader.similarity): the example submissions are not flagged against each
other; copies are, by weights (also renamed and with noise), by source (also with comments, names
and docstrings changed) and by predictions; a broken or malicious submission only has less
evidence. Weights enter as the fingerprint the protocol's `weights_fingerprint` computes from the
loaded model (here InProcessModel; in a batch the sandbox); the report itself opens no weights
file. Building the examples' models runs their model.py: trusted code, in tests only."""

from __future__ import annotations

import ast
import csv
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import grader.similarity
from grader.data.synth import generate
from grader.fingerprint import FINGERPRINT_FILE, WeightsFingerprint, write_fingerprint
from grader.similarity.csv_report import CSV_COLUMNS, write_similarity_csv
from grader.similarity.evidence import gather_evidence
from grader.similarity.pairs import SimilarityThresholds, SubmissionEvidence, find_similar_pairs
from grader.similarity.predictions import prediction_agreement
from grader.similarity.source import MAX_SOURCE_BYTES, normalized_source, source_similarity
from grader.similarity.torch_names import shipped_torch_names
from grader.similarity.weights import weights_similarity
from grader.submission.build import build_model
from grader.submission.fingerprint import weights_fingerprint
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from grader.submission.spec import load_spec
from tests.conftest import EXAMPLES, ROOT

FOLDERS = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir() and (p / "submission.yaml").is_file())


@pytest.fixture(scope="module")
def faces():
    """500 synthetic faces: enough to tell the examples apart, cheap to predict."""
    return generate(500, seed=3)


@pytest.fixture(scope="module")
def predictions(faces) -> dict[str, np.ndarray]:
    result = {}
    for folder in FOLDERS:
        spec = load_spec(EXAMPLES / folder)
        module = SubmissionModule(build_model(EXAMPLES / folder, spec), spec.input).eval()
        with torch.no_grad():
            logits = module(torch.from_numpy(faces.images.astype(np.float32)))
        result[folder] = logits.argmax(1).numpy()
    return result


def fingerprint_of(folder: Path) -> WeightsFingerprint:
    """The fingerprint as a batch gets it: the protocol's request on the loaded model (in-process
    here: the sandbox answers it with this same class, tests/test_protocol_parity.py)."""
    spec = load_spec(folder)
    return InProcessModel(SubmissionModule(build_model(folder, spec), spec.input)).weights_fingerprint()


def evidence_of(folder: Path, predictions: np.ndarray | None = None,
                labels: np.ndarray | None = None) -> SubmissionEvidence:
    return gather_evidence(folder, predictions, labels, fingerprint=fingerprint_of(folder))


@pytest.fixture(scope="module")
def evidence(predictions, faces) -> dict[str, SubmissionEvidence]:
    return {folder: evidence_of(EXAMPLES / folder, predictions[folder], faces.labels) for folder in FOLDERS}


def copy_submission(source: Path, target: Path, student_id: str) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    spec = target / "submission.yaml"
    spec.write_text(re.sub(r"(?m)^student_id:.*$", f"student_id: {student_id}", spec.read_text(encoding="utf-8")),
                    encoding="utf-8")
    return target


def flagged(pairs, a: str, b: str):
    found = [p for p in pairs if {p.student_a, p.student_b} == {a, b}]
    assert len(found) <= 1
    return found[0] if found else None


# --- the examples -------------------------------------------------------------------------


def test_every_example_yields_all_three_kinds_of_evidence(evidence):
    for folder, item in evidence.items():
        assert item.weights is not None, (folder, item.notes)
        assert item.source is not None, (folder, item.notes)
        assert item.predictions is not None and item.notes == (), folder
    assert len({item.student_id for item in evidence.values()}) == len(FOLDERS)


def test_the_examples_are_not_flagged_against_each_other(evidence, faces):
    assert find_similar_pairs(list(evidence.values())) == []
    # ... and not narrowly: the margins the default thresholds were calibrated with.
    for a, b in itertools.combinations(evidence.values(), 2):
        assert weights_similarity(a.weights, b.weights) < 0.05, (a.student_id, b.student_id)
        assert a.source != b.source
        stats = prediction_agreement(a.predictions, b.predictions, faces.labels)
        assert stats.error_agreement < 0.7, (a.student_id, b.student_id, stats)


def test_honest_strong_models_share_wrong_classes_so_joint_error_agreement_alone_would_flag_them(evidence, faces):
    """Why the threshold is on the faces either got wrong: the residual net and the VGG, trained
    separately, pick the same wrong class on most faces both get wrong (ambiguous faces), far
    above independence, yet disagree on many faces only one gets wrong."""
    stats = prediction_agreement(evidence["residual_zh"].predictions, evidence["vgg"].predictions, faces.labels)
    assert stats.joint_error_agreement > 0.85 > stats.expected_joint_error_agreement
    assert stats.error_agreement < 0.7
    assert stats.excess > SimilarityThresholds().prediction_excess  # z alone would flag them too


# --- copies ------------------------------------------------------------------------------


def test_two_copies_of_an_example_are_flagged_for_identical_weights_and_source(evidence, predictions, faces,
                                                                             tmp_path):
    copies = [evidence_of(copy_submission(EXAMPLES / "vgg", tmp_path / name, name), predictions["vgg"],
                          faces.labels) for name in ("copy1", "copy2")]
    pairs = find_similar_pairs([*evidence.values(), *copies])
    assert len(pairs) == 3  # the original and both copies, pairwise; nothing else
    for a, b in (("b09902011", "copy1"), ("b09902011", "copy2"), ("copy1", "copy2")):
        pair = flagged(pairs, a, b)
        assert pair is not None
        assert pair.signals == ("weights", "source", "predictions")
        assert pair.weights_similarity == 1.0 and pair.weights_identical and pair.source_identical
        assert pair.error_agreement == 1.0
        assert pair.reason.startswith("identical weights; same model.py after normalization")


def test_a_copy_with_noisy_weights_saved_in_another_format_is_flagged_by_weights(evidence, tmp_path):
    """The Lightning example's weights with noise of 1e-3 of each tensor's spread, saved as a plain
    state_dict (no 'model.' prefix): the fingerprint of the model as loaded does not depend on the
    file's format or names."""
    original = build_model(EXAMPLES / "lightning_ckpt", load_spec(EXAMPLES / "lightning_ckpt")).state_dict()
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, tensor in original.items():
        if tensor.is_floating_point() and tensor.numel() > 1:
            tensor = tensor + torch.randn(tensor.shape, generator=generator) * tensor.std() * 1e-3
        state[key] = tensor
    folder = copy_submission(EXAMPLES / "lightning_ckpt", tmp_path / "noisy", "noisy")
    (folder / "last.ckpt").unlink()
    torch.save(state, folder / "weights.pth")
    spec = (folder / "submission.yaml").read_text(encoding="utf-8")
    (folder / "submission.yaml").write_text(spec.replace("format: lightning_ckpt", "format: state_dict")
                                            .replace("weights: last.ckpt", "weights: weights.pth"), encoding="utf-8")
    copy = evidence_of(folder)
    pair = flagged(find_similar_pairs([*evidence.values(), copy]), "b09902033", "noisy")
    assert pair is not None and "weights" in pair.signals
    assert not pair.weights_identical
    assert 0.999 < pair.weights_similarity < 1.0
    assert pair.reason.startswith("weights correlate 0.99999")  # never rounded up to 1
    assert pair.agreement is None  # the copy was not graded: no predictions to compare


def test_torchscript_weights_resaved_as_a_state_dict_are_identical(evidence, tmp_path):
    """The TorchScript example's tensors loaded into its reference model.py: the same weights."""
    state = torch.jit.load(str(EXAMPLES / "torchscript" / "model.pt")).state_dict()  # trusted example file
    folder = tmp_path / "resaved"
    folder.mkdir()
    shutil.copy(EXAMPLES / "torchscript" / "model.py", folder / "model.py")
    torch.save({f"net.{k}": v for k, v in state.items()}, folder / "model.pth")
    (folder / "submission.yaml").write_text(
        "student_id: resaved\nmodel:\n  format: state_dict\n  source: model.py\n  entry: RGBNet\n"
        "  weights: model.pth\ninput:\n  channels: 3\n", encoding="utf-8")
    fingerprint = fingerprint_of(folder)
    (folder / "model.py").unlink()  # so that only the weights can flag the pair
    copy = gather_evidence(folder, fingerprint=fingerprint)
    assert copy.source is None and copy.notes == ("source: no model.py",)
    pair = flagged(find_similar_pairs([*evidence.values(), copy]), "b09902044", "resaved")
    assert pair is not None and pair.signals == ("weights",) and pair.weights_identical
    assert pair.reason == "identical weights"
    assert pair.source_identical is None


RESIDUAL_DISGUISED = '''
import torch.nn as nn

# My own residual network (I wrote every line of this myself)


class Block(nn.Module):
    """A residual block."""
    def __init__(self, c, activation):
        super().__init__()

        self.first = nn.Conv2d(c, c, 3, padding=1, bias=False)   # first conv
        self.first_norm = nn.BatchNorm2d(c)
        self.second = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.second_norm = nn.BatchNorm2d(c)
        self.activation = activation

    def forward(self, inp):
        h = self.activation(self.first_norm(self.first(inp)))
        return self.activation(inp + self.second_norm(self.second(h)))


class Net(nn.Module):
    def __init__(self):
        """Builds the network."""
        super().__init__()
        self.relu = nn.ReLU()
        self.entry = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32))
        self.block_a = Block(32, self.relu)
        self.shrink = nn.Sequential(nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64))
        self.block_b = Block(64, self.relu)
        self.pooling = nn.MaxPool2d(2)
        self.block_c = Block(64, self.relu)
        self.out = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 7))

    def forward(self, img):
        img = self.relu(self.entry(img))
        img = self.block_a(img)
        img = self.block_b(self.relu(self.shrink(img)))
        img = self.block_c(self.pooling(img))
        return self.out(img)
'''


def test_a_copied_model_py_with_comments_names_and_docstrings_changed_is_flagged_by_source(evidence, tmp_path):
    """The residual example's model.py disguised, with weights of its own (a fresh initialization)."""
    folder = copy_submission(EXAMPLES / "residual_zh", tmp_path / "disguised", "disguised")
    (folder / "model.py").write_text(RESIDUAL_DISGUISED, encoding="utf-8")
    spec = (folder / "submission.yaml").read_text(encoding="utf-8")
    (folder / "submission.yaml").write_text(spec.replace("entry: ResNetLite", "entry: Net"), encoding="utf-8")
    namespace: dict[str, object] = {}
    exec(compile(RESIDUAL_DISGUISED, "disguised.py", "exec"), namespace)  # noqa: S102  (the test's own source)
    torch.manual_seed(1)
    torch.save(namespace["Net"]().state_dict(), folder / "resnet.pth")
    copy = evidence_of(folder)
    pair = flagged(find_similar_pairs([*evidence.values(), copy]), "r11922055", "disguised")
    assert pair is not None and pair.signals == ("source",)
    assert pair.source_identical and pair.source_similarity == 1.0
    assert pair.weights_similarity < 0.05
    assert pair.reason == "same model.py after normalization (comments, docstrings and names ignored)"
    # The course's template is no evidence: an unchanged template is not flagged.
    template = (EXAMPLES / "residual_zh" / "model.py").read_text(encoding="utf-8")
    assert find_similar_pairs([*evidence.values(), copy], templates=[template]) == []
    assert find_similar_pairs([*evidence.values(), copy], SimilarityThresholds(source=False)) == []


# --- weights ------------------------------------------------------------------------------


def example_state(folder: str) -> dict[str, torch.Tensor]:
    return build_model(EXAMPLES / folder, load_spec(EXAMPLES / folder)).state_dict()


def similarity(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return weights_similarity(weights_fingerprint(a), weights_fingerprint(b))


def test_weights_similarity_ignores_names_and_order_and_is_exactly_one_for_identical_weights():
    state = example_state("vgg")
    renamed = {f"backbone.layer{i}": state[k] for i, k in reversed(list(enumerate(state)))}
    assert similarity(state, state) == 1.0
    assert similarity(state, renamed) == 1.0
    assert weights_fingerprint(state).digest == weights_fingerprint(renamed).digest


def test_weights_similarity_is_zero_without_shared_shapes_and_near_zero_for_a_fresh_initialization():
    assert similarity({"a": torch.randn(3, 4)}, {"b": torch.randn(4, 3), "c": torch.randn(5)}) == 0.0
    assert similarity({}, {}) == 0.0
    spec = load_spec(EXAMPLES / "vgg")
    trained = build_model(EXAMPLES / "vgg", spec)
    fresh = build_model(EXAMPLES / "vgg", spec)
    torch.manual_seed(5)
    for module in fresh.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()  # BatchNorm's running statistics back to 0 and 1, too
    assert similarity(trained.state_dict(), fresh.state_dict()) < 0.05


def test_weights_similarity_counts_unmatched_tensors_as_zero_and_skips_integer_counters():
    state = {"w": torch.randn(64, 32), "b": torch.randn(64), "bn.num_batches_tracked": torch.tensor(7)}
    extended = {**state, "extra": torch.randn(64, 32), "bn.num_batches_tracked": torch.tensor(9)}
    assert similarity(state, extended) == pytest.approx(2 * (64 * 32 + 64) / (2 * (64 * 32 + 64) + 64 * 32))
    assert weights_fingerprint(state).total == 64 * 32 + 64
    assert similarity(state, {"w": -state["w"], "b": 3 * state["b"] + 1}) == pytest.approx(1.0)


# --- source -------------------------------------------------------------------------------

ORIGINAL = '''
import torch.nn as nn


class Net(nn.Module):
    """Two convolutions."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 48 * 48, 7)

    def forward(self, x: "torch.Tensor"):
        y = self.conv1(x).relu()
        return self.fc(y.flatten(1))
'''

COSMETIC = '''
import torch.nn as nn
# a comment


class MyModel(nn.Module):
    def __init__(self):
        """A different docstring."""

        super().__init__()
        self.first = nn.Conv2d(1, 16, 3,
                               padding=1)  # same layer, other name
        self.classifier = nn.Linear(16*48*48, 7)

    def forward(self, images):

        features = self.first(images).relu()
        return self.classifier(features.flatten(1))
'''


def test_normalized_source_ignores_comments_names_docstrings_layout_and_annotations():
    assert normalized_source(ORIGINAL) == normalized_source(COSMETIC)
    assert source_similarity(normalized_source(ORIGINAL), normalized_source(COSMETIC)) == 1.0
    normal = normalized_source(ORIGINAL)
    assert "nn.Conv2d(1, 16, 3, padding=1)" in normal and "relu()" in normal  # API names are kept
    assert "conv1" not in normal and "Net" not in normal and "Two convolutions" not in normal


def test_normalized_source_keeps_a_real_change():
    bigger = ORIGINAL.replace("nn.Conv2d(1, 16", "nn.Conv2d(1, 32").replace("16 * 48", "32 * 48")
    a, b = normalized_source(ORIGINAL), normalized_source(bigger)
    assert a != b
    assert 0.5 < source_similarity(a, b) < 1.0


def test_source_that_does_not_parse_falls_back_to_its_lines_without_comments_and_spaces():
    broken = "def f(:   # oops\n\n    return   1\n"
    assert normalized_source(broken) == "def f(:\nreturn 1"
    assert normalized_source(broken.replace("# oops", "# other")) == normalized_source(broken)


# --- predictions --------------------------------------------------------------------------


def classifier(labels: np.ndarray, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    """Right with probability `accuracy`; else mostly the class after the true one (a fixed
    confusion, as fear/surprise), sometimes another wrong class."""
    wrong = np.where(rng.random(labels.size) < 0.7, (labels + 1) % 7, (labels + rng.integers(1, 7, labels.size)) % 7)
    return np.where(rng.random(labels.size) < accuracy, labels, wrong)


def with_predictions(student_id: str, predictions: np.ndarray, labels: np.ndarray) -> SubmissionEvidence:
    return SubmissionEvidence(student_id, Path(student_id), predictions=predictions, labels=labels)


def test_two_independent_classifiers_are_not_flagged():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 3000)
    a, b = classifier(labels, 0.8, rng), classifier(labels, 0.8, rng)
    stats = prediction_agreement(a, b, labels)
    assert abs(stats.excess) < 4  # they err independently given the class: chance agreement only
    assert stats.observed == pytest.approx(stats.expected, abs=0.02)
    assert stats.joint_error_agreement == pytest.approx(stats.expected_joint_error_agreement, abs=0.15)
    assert stats.error_agreement < 0.3
    assert find_similar_pairs([with_predictions("a", a, labels), with_predictions("b", b, labels)]) == []


def test_a_copy_with_two_percent_of_its_predictions_changed_is_flagged():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 7, 3000)
    original = classifier(labels, 0.8, rng)
    copy = original.copy()
    changed = rng.choice(labels.size, 60, replace=False)
    copy[changed] = (copy[changed] + rng.integers(1, 7, changed.size)) % 7
    pairs = find_similar_pairs([with_predictions("a", original, labels), with_predictions("b", copy, labels),
                                with_predictions("c", classifier(labels, 0.8, rng), labels)])
    assert [(p.student_a, p.student_b, p.signals) for p in pairs] == [("a", "b", ("predictions",))]
    stats = pairs[0].agreement
    assert stats.error_agreement > 0.85 and stats.excess > 30
    assert pairs[0].reason.startswith(f"predictions agree on {stats.error_agreement:.0%} of the "
                                      f"{stats.either_wrong} faces either got wrong, where ")


def test_prediction_agreement_expectation_follows_each_models_confusion_given_the_class():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    a = np.array([0, 0, 1, 2, 1, 1, 1, 0])  # class 0: right 1/2, 1: 1/4, 2: 1/4; class 1: right 3/4, 0: 1/4
    b = np.array([0, 1, 0, 2, 1, 0, 1, 1])  # the same conditional shares, on other faces
    stats = prediction_agreement(a, b, labels)
    expected = 0.5 * (0.25 + 0.0625 + 0.0625) + 0.5 * (0.5625 + 0.0625)
    assert stats.expected == pytest.approx(expected)
    assert stats.observed == pytest.approx(4 / 8)
    assert (stats.both_wrong, stats.either_wrong) == (1, 5)  # both wrong on face 3 only
    assert stats.joint_error_agreement == 1.0  # both say 2 there
    assert stats.error_agreement == pytest.approx(1 / 5)
    assert stats.excess == pytest.approx((0.5 - expected) / np.sqrt(expected * (1 - expected) / 8))
    with pytest.raises(ValueError):
        prediction_agreement(a, b[:-1], labels)


def test_predictions_on_different_evaluation_sets_are_not_compared():
    labels = np.arange(100) % 7
    other = np.roll(labels, 1)
    pairs = find_similar_pairs([with_predictions("a", labels, labels), with_predictions("b", labels, other)])
    assert pairs == []


# --- evidence from broken and hostile folders -------------------------------------------------


class Explodes:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_gather_evidence_never_opens_the_weights_file_nor_runs_student_code(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / "submission.yaml").write_text(
        "student_id: hostile\nmodel:\n  source: model.py\n  entry: Net\n  weights: model.pth\n", encoding="utf-8")
    (hostile / "model.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).touch()\nclass Net: pass\n",
                                      encoding="utf-8")
    torch.save({"w": torch.zeros(2), "payload": Explodes(marker)}, hostile / "model.pth")

    def refuse(*args, **kwargs):
        raise AssertionError("the similarity report parsed a weights file")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(torch.jit, "load", refuse)
    item = gather_evidence(hostile)
    assert not marker.exists()
    assert item.weights is None and item.notes == ("weights: no fingerprint (the model was not loaded)",)
    assert item.source is not None and "Path" in item.source  # read as text, never imported


def test_gather_evidence_never_raises_for_a_broken_folder(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "submission.yaml").write_text("student_id: [not, an, id\n", encoding="utf-8")
    (broken / "model.py").write_bytes(b"def f(:\n  \xff\xfe return 1  # bad bytes\n")
    item = gather_evidence(broken, np.zeros(3, dtype=np.int64), np.zeros(4, dtype=np.int64))
    assert item.student_id == "broken" and item.weights is None and item.predictions is None
    assert item.source is not None
    assert [note.split(":")[0] for note in item.notes] == ["submission.yaml", "weights", "predictions"]
    assert find_similar_pairs([item, gather_evidence(tmp_path / "nothing-here")]) == []


def test_a_fingerprint_file_that_is_missing_or_corrupt_is_no_weights_evidence_with_a_note(tmp_path):
    folder = copy_submission(EXAMPLES / "small_cnn", tmp_path / "student", "student")
    missing = gather_evidence(folder, fingerprint_file=tmp_path / "out" / FINGERPRINT_FILE)
    assert missing.weights is None and missing.notes == (f"weights: no {FINGERPRINT_FILE}",)
    corrupt = tmp_path / FINGERPRINT_FILE
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    item = gather_evidence(folder, fingerprint_file=corrupt)
    assert item.weights is None and item.notes[0].startswith(f"weights: {FINGERPRINT_FILE} cannot be read")
    assert item.source is not None  # the rest of the evidence stands


def test_the_fingerprint_written_to_the_output_folder_is_read_back_as_evidence(tmp_path):
    fingerprint = fingerprint_of(EXAMPLES / "small_cnn")
    path = tmp_path / "out" / "b09902022" / "arrays" / FINGERPRINT_FILE
    write_fingerprint(path, fingerprint)
    item = gather_evidence(EXAMPLES / "small_cnn", fingerprint_file=path)
    assert item.notes == () and item.weights is not None and item.weights.same_as(fingerprint)


def test_a_model_source_that_is_a_fifo_is_skipped_without_blocking(tmp_path):
    folder = copy_submission(EXAMPLES / "small_cnn", tmp_path / "fifo", "fifo")
    (folder / "model.py").unlink()
    os.mkfifo(folder / "model.py")  # reading it would wait for a writer forever
    item = gather_evidence(folder)
    assert item.source is None and "source: model.py: not a regular file" in item.notes


def test_a_model_source_over_the_size_cap_or_linked_elsewhere_is_no_source_evidence(tmp_path):
    big = copy_submission(EXAMPLES / "small_cnn", tmp_path / "big", "big")
    (big / "model.py").write_bytes(b"#" * (MAX_SOURCE_BYTES + 1))
    assert "source: model.py: larger than 1 MB" in gather_evidence(big).notes
    linked = copy_submission(EXAMPLES / "small_cnn", tmp_path / "linked", "linked")
    (linked / "model.py").unlink()
    (linked / "model.py").symlink_to(EXAMPLES / "vgg" / "model.py")
    item = gather_evidence(linked)
    assert item.source is None and "source: model.py: not a regular file" in item.notes


@pytest.mark.parametrize("path", sorted(Path(grader.similarity.__file__).parent.glob("*.py")), ids=lambda p: p.name)
def test_the_similarity_module_loads_no_weights_file(path):
    """An AST check over each of the package's modules: no torch.load or jit.load call, no import
    of the model builder (its readers parse weights files). Weights reach the report only as a
    fingerprint the sandbox computed."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert [call for call in calls if call.split(".")[-1] == "load"] == []  # torch.load, torch.jit.load, np.load
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "grader.submission.build" not in imported


# --- the report ---------------------------------------------------------------------------


def test_similarity_csv_has_one_row_a_flagged_pair(evidence, predictions, faces, tmp_path):
    copy = evidence_of(copy_submission(EXAMPLES / "small_cnn", tmp_path / "c", "copycat"),
                       predictions["small_cnn"], faces.labels)
    pairs = find_similar_pairs([*evidence.values(), copy])
    write_similarity_csv(pairs, tmp_path / "similarity.csv")
    with open(tmp_path / "similarity.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows == [{
        "student_a": "b09902022", "student_b": "copycat", "signals": "weights+source+predictions",
        "weights_similarity": "1.0000", "source_identical": "true",
        "prediction_excess": f"{pairs[0].prediction_excess:.1f}", "error_agreement": "1.000",
        "reason": pairs[0].reason,
    }]
    write_similarity_csv([], tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_text(encoding="utf-8") == ",".join(CSV_COLUMNS) + "\n"


def test_similarity_csv_escapes_student_text_that_a_spreadsheet_would_run_as_a_formula(tmp_path):
    """A student_id may start with '-' ([A-Za-z0-9_-]+), and ids reach the reason too."""
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 7, 600)
    guesses = classifier(labels, 0.7, rng)
    pairs = find_similar_pairs([with_predictions("-2+3", guesses, labels),
                                with_predictions("@SUM(A1)", guesses, labels)])
    write_similarity_csv(pairs, tmp_path / "similarity.csv")
    with open(tmp_path / "similarity.csv", newline="", encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["student_a"], row["student_b"]) == ("'-2+3", "'@SUM(A1)")
    assert row["reason"].startswith("predictions agree on 100% of the")


def test_two_hundred_submissions_of_one_architecture_are_compared_in_seconds():
    """The worst case: everyone trained the template's architecture. 19,900 pairs, each with
    weights and predictions on 3,589 faces; the one planted copy is found."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 7, 3589)
    shapes = [(32, 1, 3, 3), (32,), (32,), (32,), (32,), (64, 32, 3, 3), (64,), (64,), (64,), (64,),
              (128, 64, 3, 3), (128,), (128,), (128,), (128,), (128, 1152), (128,), (7, 128), (7,)]
    generator = torch.Generator().manual_seed(3)
    students = []
    for i in range(200):
        state = {f"p{k}": torch.randn(shape, generator=generator) for k, shape in enumerate(shapes)}
        students.append(SubmissionEvidence(f"s{i}", Path(f"s{i}"), weights=weights_fingerprint(state),
                                           source="template", predictions=classifier(labels, 0.7, rng),
                                           labels=labels))
    students.append(SubmissionEvidence("copy", Path("copy"), weights=students[7].weights,
                                       predictions=students[7].predictions, labels=labels))
    start = time.perf_counter()
    pairs = find_similar_pairs(students, SimilarityThresholds(source=False))
    elapsed = time.perf_counter() - start
    assert [(p.student_a, p.student_b, p.signals) for p in pairs] == [("s7", "copy", ("weights", "predictions"))]
    assert elapsed < 10, elapsed  # about 1 s on 2 cores


def test_the_torch_names_shipped_with_the_grader_are_the_installed_torchs():
    """Read in a fresh interpreter, as `python -m grader.similarity.torch_names` writes them: this one
    has imported more of torch's submodules, and dir(torch) grows with them. After a torch upgrade,
    that command writes the file again."""
    listing = ("import json\nfrom grader.similarity.torch_names import installed_torch_names\n"
               "names = installed_torch_names()\n"
               "print(json.dumps([names.torch_version, sorted(names.namespaces), sorted(names.module)]))\n")
    done = subprocess.run([sys.executable, "-c", listing], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    version, namespaces, module = json.loads(done.stdout)
    shipped = shipped_torch_names()
    assert shipped.torch_version == version == torch.__version__
    assert shipped.namespaces == frozenset(namespaces)
    assert {"Conv2d", "relu", "padding", "flatten"} <= shipped.namespaces
    assert shipped.module == frozenset(module) and "forward" in shipped.module
