"""The model parameter randomization test done right (grader.scoring.randomization): the cascade of
Adebayo et al. 2018, and sMPRT and eMPRT of Hedström et al. 2024 checked against Quantus 0.6.0, the
authors' implementation, and on constructed cases whose right answer is known.

What is compared with Quantus, exactly: Quantus's metric runs on the same tiny torch model (a
SubmissionModule, which takes the raw (N, 1, 48, 48) pixels), with Q1's saliency through the protocol
as its explanation function (for SmoothMPRT, which calls `quantus.explain` for each noisy copy,
`quantus.explain` itself is replaced by it). Our side gets the very weights Quantus randomizes
(its own `get_random_layer_generator`, bottom-up, seed 42, run to the end: every layer re-initialized)
and, for sMPRT, the same Gaussian draws (numpy's global generator seeded as a RandomState, consumed
in Quantus's order: the reference explanation, the "original" layer, then the randomized model).
Then the noise, the averaging, Binder et al.'s normalization, the absolute value, the Spearman
correlation, the histogram entropy and the relative rise are all ours against all theirs.
"""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import replace

import numpy as np
import pytest
import quantus
import torch
from quantus.functions.complexity_func import discrete_entropy as quantus_discrete_entropy
from quantus.helpers.model.pytorch_model import PyTorchModel

from grader.data.synth import generate
from grader.explain.results import AttributionMaps
from grader.explain.saliency import Saliency
from grader.protocol import LayerInfo, ModelDescription
from grader.questions.output import QuestionOutput
from grader.questions.settings import TaskSettings
from grader.scoring.measurements import Measurements
from grader.scoring.measures import rank_correlation
from grader.scoring.metrics import ScoredQuestion, saliency_emprt, saliency_randomization, saliency_smprt
from grader.scoring.probes import run_probes
from grader.scoring.randomization import cascade, cascade_stages, discrete_entropy, emprt, smoothed_maps, smprt
from grader.submission.build import build_model
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from grader.submission.spec import load_spec
from tests.conftest import EXAMPLES
from tests.explain_nets import LABELS, build, faces, one_torch_thread  # noqa: F401  (a fixture)

Q1 = ScoredQuestion("q1", "saliency")


def explain(model, images, labels):
    """Q1's method (the report's saliency: |d cross-entropy / d pixels|)."""
    return Saliency(model).attribute(np.asarray(images, np.float32), np.asarray(labels))


def quantus_explain(model, inputs, targets, **kwargs):
    """The same, as Quantus calls an explanation function: a torch module and (N, 1, 48, 48) inputs."""
    return explain(InProcessModel(copy.deepcopy(model)), np.asarray(inputs)[:, 0], targets)[:, None]


def quantus_randomized(module: SubmissionModule) -> SubmissionModule:
    """The copy Quantus compares with: its cascade from the bottom, seed 42, every layer re-initialized."""
    *_, (_, randomized) = PyTorchModel(copy.deepcopy(module), channel_first=True).get_random_layer_generator(
        order="bottom_up", seed=42)
    return randomized


def in_process(module: SubmissionModule) -> InProcessModel:
    return InProcessModel(copy.deepcopy(module))


@pytest.fixture(scope="module")
def small_cnn():
    """The small example, trained on synthetic faces, and a face per class (the first it classifies
    right, as Q1 picks them, else the first)."""
    spec = load_spec(EXAMPLES / "small_cnn")
    model = InProcessModel(SubmissionModule(build_model(EXAMPLES / "small_cnn", spec), spec.input))
    faces = generate(140, seed=3)
    right = model.logits(faces.images.astype(np.float32)).argmax(axis=1) == faces.labels
    indices = [int(np.flatnonzero((right | ~right[faces.labels == c].any()) & (faces.labels == c))[0])
               for c in range(7)]
    return model, faces.images[indices].astype(np.float32), faces.labels[indices]


# --- agreement with Quantus 0.6.0 -----------------------------------------------------------


def test_the_denoised_maps_are_quantus_smooth_mprts_for_the_same_draws(monkeypatch):
    module, pixels = build("functional_relu"), faces(3)
    monkeypatch.setattr(quantus, "explain", quantus_explain)
    np.random.seed(1)
    expected = quantus.SmoothMPRT(nr_samples=4, disable_warnings=True).explain_smooth_batch(
        model=copy.deepcopy(module), x_batch=pixels[:, None], y_batch=LABELS, explain_func=quantus_explain)
    ours = smoothed_maps(in_process(module), pixels, LABELS, explain, np.random.RandomState(1), samples=4)
    np.testing.assert_allclose(ours, expected[:, 0], rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def test_smprt_agrees_with_quantus_on_the_same_weights_and_draws(monkeypatch):
    module, pixels = build("functional_relu"), faces(3)
    monkeypatch.setattr(quantus, "explain", quantus_explain)
    np.random.seed(0)
    expected = quantus.SmoothMPRT(nr_samples=4, return_last_correlation=True, skip_layers=True,
                                  disable_warnings=True)(
        model=copy.deepcopy(module), x_batch=pixels[:, None], y_batch=LABELS, explain_func=quantus_explain,
        channel_first=True)
    draws = np.random.RandomState(0)
    reference = smoothed_maps(in_process(module), pixels, LABELS, explain, draws, samples=4)
    smoothed_maps(in_process(module), pixels, LABELS, explain, draws, samples=4)  # Quantus's "original" entry
    randomized = smoothed_maps(InProcessModel(quantus_randomized(module)), pixels, LABELS, explain, draws, samples=4)
    np.testing.assert_allclose(smprt(reference, randomized), expected, atol=1e-5)


def test_emprt_agrees_with_quantus_on_the_same_weights():
    module, pixels = build("functional_relu"), faces(3)
    expected = quantus.EfficientMPRT(disable_warnings=True)(
        model=copy.deepcopy(module), x_batch=pixels[:, None], y_batch=LABELS, explain_func=quantus_explain,
        channel_first=True, softmax=True)
    ours = emprt(explain(in_process(module), pixels, LABELS),
                 explain(InProcessModel(quantus_randomized(module)), pixels, LABELS))
    np.testing.assert_allclose(ours, expected, rtol=1e-9)


def test_the_complexity_is_quantus_discrete_entropy():
    rng = np.random.default_rng(0)
    maps = np.stack([rng.normal(size=(48, 48)), rng.exponential(size=(48, 48)) ** 4, np.full((48, 48), 3.0),
                     np.where(rng.random((48, 48)) < 0.05, 1.0, 0.0)])
    expected = [quantus_discrete_entropy(a=m, x=m) for m in maps]
    np.testing.assert_allclose(discrete_entropy(maps), expected, rtol=1e-12)
    assert expected[2] == 0.0  # a constant map fills one bin


# --- the cascade (Adebayo et al. 2018) ------------------------------------------------------


def describe(count: int) -> ModelDescription:
    return ModelDescription(num_classes=7, input={},
                            layers=tuple(LayerInfo(f"l{i}", "Conv2d", (), parametrized=True) for i in range(count)))


@pytest.mark.parametrize(("layers", "stages"), [(0, ()), (1, (1,)), (4, (1, 2, 3, 4)), (8, tuple(range(1, 9))),
                                                (14, (1, 3, 5, 7, 8, 10, 12, 14)), (40, (1, 7, 12, 18, 23, 29, 34, 40))])
def test_the_cascade_has_at_most_eight_stages_evenly_spaced_ending_at_every_layer(layers, stages):
    assert cascade_stages(describe(layers)) == stages


def test_the_protocol_describes_which_layers_randomized_counts():
    model = in_process(build("functional_relu"))
    assert [layer.name for layer in model.describe().parametrized_layers] == ["conv1", "conv2", "fc"]


def test_the_cascades_correlation_falls_as_a_trained_models_layers_are_reinitialized(small_cnn):
    model, images, labels = small_cnn
    maps = explain(model, images, labels)
    result = cascade(model, images, labels, maps, explain, seed=0, question="q1")
    mean = result.correlation.mean(axis=1)
    assert result.randomized_layers.tolist() == [1, 2, 3, 4] and result.lowest_layer == ("9", "7", "3", "0")
    assert np.all(np.diff(mean) < 0), mean
    assert mean[0] > 0.5 and mean[-1] < 0.15, mean
    # Its last stage is the full-model test's copy: the same seed re-initializes the same weights.
    with model.randomized(seed=0, top_layers=1_000_000) as randomized:
        np.testing.assert_array_equal(result.maps[-1], explain(randomized, images, labels))


# --- eMPRT and sMPRT on constructed cases ---------------------------------------------------


def edge_detector(model, images, labels):
    """A map of the image alone, whatever the weights: its edge magnitude (looks like saliency by eye)."""
    rows, cols = np.gradient(np.asarray(images, np.float64), axis=(1, 2))
    return np.hypot(rows, cols).astype(np.float32)


def pure_noise():
    """A map of fresh uniform noise on every call: nothing of the image or the weights."""
    seeds = itertools.count()

    def noise(model, images, labels):
        return np.random.default_rng(next(seeds)).random(np.shape(images)).astype(np.float32)

    return noise


@pytest.mark.parametrize("method", ["edge detector", "pure noise"])
def test_a_map_that_ignores_the_weights_fails_emprt(small_cnn, method):
    model, images, labels = small_cnn
    map_of = edge_detector if method == "edge detector" else pure_noise()
    with model.randomized(seed=0, top_layers=1_000_000) as randomized:
        rise = emprt(map_of(model, images, labels), map_of(randomized, images, labels))
    assert np.abs(rise).max() < 0.02, rise  # H(random) / H(model) is 1 within 2%
    if method == "pure noise":  # which the full-model rank correlation took for a perfect pass
        with model.randomized(seed=0, top_layers=1_000_000) as randomized:
            correlation = rank_correlation(map_of(model, images, labels), map_of(randomized, images, labels))
        assert np.abs(correlation).max() < 0.1


def test_a_trained_models_saliency_passes_emprt_clearly(small_cnn):
    model, images, labels = small_cnn
    with model.randomized(seed=0, top_layers=1_000_000) as randomized:
        rise = emprt(explain(model, images, labels), explain(randomized, images, labels))
    assert rise.mean() > 0.4 and np.all(rise > 0.1), rise


def test_smprt_of_a_map_that_ignores_the_weights_is_one(small_cnn):
    model, images, labels = small_cnn
    with model.randomized(seed=0, top_layers=1_000_000) as randomized:
        maps = [smoothed_maps(m, images, labels, edge_detector, np.random.default_rng(0), samples=5)
                for m in (model, randomized)]
    np.testing.assert_allclose(smprt(*maps), 1.0)


# --- the metrics, from what the probes stored -----------------------------------------------


def test_the_metrics_read_the_probes_and_resample_over_the_images(small_cnn):
    model, images, labels = small_cnn
    outputs = {"q1": QuestionOutput("q1", "saliency", Saliency(model).explain(images, labels))}
    probes = run_probes(model, outputs, TaskSettings())
    measured = Measurements(outputs=outputs, probes=probes)
    maps = outputs["q1"].result.maps
    for compute, per_image in [
            (saliency_randomization, rank_correlation(np.abs(maps), np.abs(probes.randomized_saliency))),
            (saliency_smprt, smprt(probes.smoothed_saliency, probes.smoothed_randomized_saliency)),
            (saliency_emprt, emprt(maps, probes.randomized_saliency))]:
        resampled = compute(measured, Q1)
        assert resampled.shape == (7,)
        assert resampled.value() == pytest.approx(per_image.mean())
    assert saliency_emprt(measured, Q1).value() > 0.4
    # Denoising takes away the gradient noise that made the two maps look unlike (Binder et al. 2023).
    assert saliency_smprt(measured, Q1).value() > saliency_randomization(measured, Q1).value()
    assert probes.cascade.question == "q1" and probes.cascade.maps.shape == (4, 7, 48, 48)
    assert set(probes.arrays()) >= {"cascade_randomized_layers", "cascade_lowest_layer", "cascade_saliency",
                                    "cascade_correlation", "smoothed_saliency", "smoothed_randomized_saliency"}


@pytest.mark.slow
def test_the_randomization_figure_goes_under_the_question_it_redrew(small_cnn):
    from grader.report.figures.by_result import probe_figures
    from grader.report.figures.drawing import png_bytes
    from grader.report.figures.randomization import randomization_figure
    from grader.scoring.measurements import Probes

    model, images, labels = small_cnn
    result = AttributionMaps("saliency", images.astype(np.uint8), labels, explain(model, images, labels))
    outputs = {"q1": QuestionOutput("q1", "saliency", result)}
    probes = Probes(cascade=cascade(model, images, labels, result.maps, explain, seed=0, question="q1"))
    figures = probe_figures(probes, outputs)
    assert list(figures) == ["randomization"]
    question, caption, draw = figures["randomization"]
    assert question == "q1" and "Adebayo" in caption
    assert png_bytes(draw())[:4] == b"\x89PNG"
    assert probe_figures(Probes(), outputs) == {}
    # A layer's name is student text: matplotlib must not parse it as mathtext (it would raise).
    hostile = replace(probes.cascade, lowest_layer=(r"$\undefinedcommand$",) * len(probes.cascade.lowest_layer))
    assert png_bytes(randomization_figure(hostile, result))[:4] == b"\x89PNG"


@pytest.mark.slow
def test_the_cascade_on_the_vgg_example_takes_a_few_seconds():
    """The cost bound: VGG's 14 parametrized layers in 8 stages (about 1.5 s on one free core)."""
    spec = load_spec(EXAMPLES / "vgg")
    model = InProcessModel(SubmissionModule(build_model(EXAMPLES / "vgg", spec), spec.input))
    faces_ = generate(14, seed=3)
    images, labels = faces_.images[:7].astype(np.float32), faces_.labels[:7]
    start = time.perf_counter()
    result = cascade(model, images, labels, explain(model, images, labels), explain, seed=0, question="q1")
    assert len(result.randomized_layers) == 8 and result.randomized_layers[-1] == 14
    assert time.perf_counter() - start < 10.0
