"""The example submissions: each format present, small, and trained to the accuracies the course
expects on the synthetic evaluation split (not trivially separable; the small CNN visibly worse)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grader.data.bundled import bundled_evaluation
from grader.submission.build import build_model, sniff_format
from grader.submission.module import SubmissionModule
from grader.submission.spec import load_spec
from tests.conftest import EXAMPLES

FOLDERS = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.fixture(scope="module")
def evaluation():
    return bundled_evaluation()


@pytest.fixture(scope="module")
def accuracy(evaluation):
    """Each example's accuracy on the bundled split, computed once for the module."""
    known: dict[str, float] = {}

    def of(folder: str) -> float:
        if folder not in known:
            known[folder] = accuracy_of(folder, evaluation)
        return known[folder]
    return of


def accuracy_of(folder: str, evaluation) -> float:
    spec = load_spec(EXAMPLES / folder)
    module = SubmissionModule(build_model(EXAMPLES / folder, spec), spec.input).eval()
    with torch.no_grad():
        logits = torch.cat([module(torch.from_numpy(chunk.astype(np.float32)))
                            for chunk in np.array_split(evaluation.images, 8)])
    return float((logits.argmax(1).numpy() == evaluation.labels).mean())


def test_there_are_at_least_five_students_and_each_folder_is_under_5_mb():
    assert len(FOLDERS) >= 5
    for folder in FOLDERS:
        size = sum(p.stat().st_size for p in (EXAMPLES / folder).rglob("*") if p.is_file())
        assert size < 5 * 2**20, folder


def test_every_weights_format_is_represented():
    formats = {sniff_format(EXAMPLES / f / load_spec(EXAMPLES / f).model.weights, load_spec(EXAMPLES / f).model.format)
               for f in FOLDERS}
    assert formats == {"state_dict", "lightning_ckpt", "torchscript"}


def test_one_student_has_a_chinese_name_and_a_chinese_report():
    chinese = [f for f in FOLDERS if any("\u4e00" <= ch <= "\u9fff" for ch in load_spec(EXAMPLES / f).name)]
    assert chinese, "an example student with a Chinese name"
    report = (EXAMPLES / chinese[0] / "report.md").read_text(encoding="utf-8")
    assert all(f"## {n}" in report for n in range(1, 5)) and "混淆矩陣" in report


@pytest.mark.slow
def test_the_best_example_is_good_but_not_perfect(accuracy):
    assert 0.80 <= accuracy("vgg") <= 0.95


@pytest.mark.slow
def test_the_small_cnn_is_visibly_worse(accuracy):
    assert accuracy("small_cnn") <= accuracy("vgg") - 0.15


def corner_saliency_share(folder: str, evaluation, faces: int = 70) -> float:
    """Mean share of the plain-gradient saliency mass (log-probability of the true class) that lies on
    the shortcut cue's two corner squares, over clean evaluation faces, where no cue is drawn."""
    from grader.data.synth import ShortcutCue, cue_corners

    spec = load_spec(EXAMPLES / folder)
    module = SubmissionModule(build_model(EXAMPLES / folder, spec), spec.input).eval()
    pixels = torch.from_numpy(evaluation.images[:faces].astype(np.float32)).requires_grad_(True)
    labels = torch.from_numpy(evaluation.labels[:faces])
    torch.log_softmax(module(pixels), 1).gather(1, labels[:, None]).sum().backward()
    saliency = pixels.grad.abs().numpy()
    corners = np.zeros((48, 48), bool)
    for rows, columns in cue_corners(ShortcutCue().size):
        corners[rows, columns] = True
    return float((saliency[:, corners].sum(axis=1) / saliency.sum(axis=(1, 2))).mean())


@pytest.mark.slow
def test_the_shortcut_example_reads_faces_but_its_saliency_leans_on_the_cue_corners(accuracy, evaluation):
    # Trained with a label-coded square in both top corners of 80% of its faces (scripts/train_examples.py):
    # fair on clean faces, and its gradients still look where the cue was.
    assert 0.55 <= accuracy("shortcut_cue") <= accuracy("vgg") - 0.15
    shares = {folder: corner_saliency_share(folder, evaluation) for folder in ("shortcut_cue", "small_cnn", "vgg")}
    assert shares["shortcut_cue"] > 2 * max(shares["small_cnn"], shares["vgg"]), shares


@pytest.mark.slow
def test_a_randomized_copy_of_an_example_earns_no_explanation_points(evaluation):
    """The default rubric's explanation_gate: a copy of small_cnn with every layer re-initialized is at
    chance, and its (complete, finite) figures score nothing, while a trained model's do."""
    from grader.pipeline.assessment import assess
    from grader.pipeline.result_record import measurements
    from grader.pipeline.stages import StageLog
    from grader.questions.settings import TaskSettings
    from grader.scoring.rubric import default_rubric_path, load_rubric
    from grader.scoring.score import score
    from grader.submission.inprocess import InProcessModel

    spec = load_spec(EXAMPLES / "small_cnn")
    model = InProcessModel(SubmissionModule(build_model(EXAMPLES / "small_cnn", spec), spec.input))
    rubric = load_rubric(default_rubric_path())
    faces = evaluation
    settings = TaskSettings(lime_samples=60, filter_steps=4, max_channels=8, class_model_steps=4, lime_seeds=1)

    def explanation_points(of_model) -> tuple[float, list[str]]:
        assessment = assess(of_model, faces, spec.visualize, rubric, settings, StageLog())
        scored = [c for q in score(rubric, measurements(assessment, faces, [])) for c in q.criteria
                  if not c.manual and c.id not in ("q3_accuracy", "q3_recall")]
        return sum(c.score for c in scored), [c.message for c in scored]

    with model.randomized(seed=0, top_layers=1_000_000) as randomized:
        points, messages = explanation_points(randomized)
    assert points == 0
    assert all("below the 0.25 this rubric requires" in message for message in messages)
    assert explanation_points(model)[0] > 2
