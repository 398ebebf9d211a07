"""Each metric of the registry on constructed cases whose right answer is known: a model that
looks only at the mouth, an edge detector that passes for a saliency map by eye, filters that all
look alike, LIME that skipped classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from grader.data.faceset import PART_NAMES
from grader.data.synth import generate
from grader.explain.gradients import Saliency
from grader.protocol import ModelDescription, ModelProtocol
from grader.scoring.measures import mass_share, parts_region
from grader.scoring.metrics import METRICS, Measurements, MetricUnavailable
from grader.scoring.probes import run_probes
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from grader.tasks import TaskOutput, TaskSettings

MOUTH = PART_NAMES.index("mouth")


@pytest.fixture(scope="module")
def faces():
    """One synthetic face per class, with its part masks."""
    faces = generate(140, seed=7)
    indices = [int(np.flatnonzero(faces.labels == c)[0]) for c in range(7)]
    return faces.images[indices], faces.labels[indices], faces.masks[indices]


class LooksAt(nn.Module):
    """Logit c = sum over the pixels in `region` of weight[c] * pixel: sees nothing else."""

    def __init__(self, region: np.ndarray, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.register_buffer("region", torch.tensor(region, dtype=torch.float32).flatten())
        self.fc = nn.Linear(48 * 48, 7)
        with torch.no_grad():
            self.fc.weight *= 40  # confident enough that removing what it sees moves its probabilities

    def forward(self, x):
        return self.fc(x.flatten(1) * self.region)


def model_looking_at(region: np.ndarray) -> InProcessModel:
    return InProcessModel(SubmissionModule(LooksAt(region)))


def saliency_output(model: ModelProtocol, images, labels) -> TaskOutput:
    maps = Saliency(model).attribute(images.astype(np.float32), labels).astype(np.float32)
    return TaskOutput("saliency", {"images": images, "labels": labels, "maps": maps}, {"saliency": object()})


def value(name: str, measured: Measurements) -> float:
    return METRICS[name].compute(measured)


# --- localization ---------------------------------------------------------------------------


def test_a_model_that_only_looks_at_the_mouth_has_its_saliency_on_the_mouth(faces):
    images, labels, masks = faces
    mouths = masks == MOUTH
    first_face = saliency_output(model_looking_at(mouths[0]), images[:1], labels[:1])
    assert mass_share(first_face.arrays["maps"], mouths[:1]) == pytest.approx([1.0])
    # The seven classes explained on that one face, whose mouth is all the model sees.
    same_face = np.repeat(images[:1], 7, axis=0)
    output = saliency_output(model_looking_at(mouths[0]), same_face, np.arange(7))
    measured = Measurements(tasks={"q1": output}, region=parts_region(np.repeat(masks[:1], 7, axis=0)))
    # All the mass on the parts: the ratio over chance is 1 / (the parts' share of the image).
    assert value("saliency_localization", measured) == pytest.approx(1 / parts_region(masks[:1]).mean())
    assert value("saliency_pointing", measured) == 1.0


def test_a_model_that_looks_at_the_background_fails_localization(faces):
    images, labels, masks = faces
    corners = np.zeros((48, 48), bool)
    corners[:6, :6] = corners[:6, -6:] = True
    measured = Measurements(tasks={"q1": saliency_output(model_looking_at(corners), images, labels)},
                            region=parts_region(masks))
    assert value("saliency_localization", measured) < 0.05  # far below chance (1)
    assert value("saliency_pointing", measured) == 0.0


# --- randomization (Adebayo et al. 2018) ----------------------------------------------------


class EdgeDetector(ModelProtocol):
    """Its 'gradient' is the image's edge magnitude whatever its parameters: a map that looks like
    a saliency map by eye, and is the same for a randomized copy."""

    def describe(self):
        return ModelDescription(num_classes=7, input={})

    def logits(self, pixels):
        return np.zeros((len(pixels), 7), np.float32)

    def input_gradient(self, pixels, objective):
        rows, cols = np.gradient(np.asarray(pixels, np.float64), axis=(1, 2))
        return np.zeros(len(pixels)), np.hypot(rows, cols).astype(np.float32)

    def activations(self, pixels, layer):
        raise NotImplementedError

    def layer_gradient(self, pixels, layer, classes):
        raise NotImplementedError

    def randomized(self, seed, top_layers):
        return EdgeDetector()


def test_an_edge_detector_passes_by_eye_but_fails_the_randomization_check(faces):
    images, labels, _ = faces
    model = EdgeDetector()
    outputs = {"q1": saliency_output(model, images, labels)}
    probes = run_probes(model, outputs, TaskSettings())
    assert value("saliency_randomization", Measurements(tasks=outputs, probes=probes)) == pytest.approx(1.0)


def test_a_cnns_saliency_changes_when_its_layers_are_reinitialized(faces):
    images, labels, _ = faces
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 7))
    model = InProcessModel(SubmissionModule(net))
    outputs = {"q1": saliency_output(model, images, labels)}
    probes = run_probes(model, outputs, TaskSettings())
    assert value("saliency_randomization", Measurements(tasks=outputs, probes=probes)) < 0.5


# --- deletion and insertion (Petsiuk et al. 2018) -------------------------------------------


class MouthContrast(nn.Module):
    """Class 0's logit is the mouth's contrast against mid-gray; the other logits are 0. Deleting
    (graying) the mouth removes the evidence for class 0, and only that does."""

    def __init__(self, mouth: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mouth", torch.tensor(mouth, dtype=torch.float32))

    def forward(self, x):
        # Scaled to a logit of a few units: a saturated softmax has no cross-entropy gradient at all.
        evidence = 0.05 * ((x[:, 0] - 0.5).abs() * self.mouth).sum(dim=(1, 2))
        return torch.nn.functional.pad(evidence[:, None], (0, 6))


def test_deleting_what_the_saliency_ranks_first_beats_a_random_order(faces):
    images, _, masks = faces
    model = InProcessModel(SubmissionModule(MouthContrast((masks == MOUTH).any(axis=0))))
    outputs = {"q1": saliency_output(model, images, np.zeros(7, np.int64))}
    measured = Measurements(tasks=outputs, probes=run_probes(model, outputs, TaskSettings()))
    assert value("saliency_deletion", measured) > 0.05
    assert value("saliency_insertion", measured) > 0.05
    curves = measured.probes.curves
    assert set(curves) == {"saliency_deletion", "saliency_insertion", "random_deletion", "random_insertion"}


def test_curve_metrics_without_the_map_are_unavailable_with_the_reason():
    with pytest.raises(MetricUnavailable, match="sanity probes did not run"):
        value("lime_deletion", Measurements())


# --- completeness ---------------------------------------------------------------------------


def test_completeness_is_the_share_of_finite_non_constant_panels(faces):
    images, labels, _ = faces
    maps = np.random.default_rng(0).random((7, 48, 48)).astype(np.float32)
    maps[1] = np.nan
    maps[2] = 0.5
    output = TaskOutput("saliency", {"images": images, "labels": labels, "maps": maps}, {"saliency": object()})
    assert value("saliency_completeness", Measurements(tasks={"q1": output})) == pytest.approx(5 / 7)


def test_a_task_that_failed_is_zero_complete():
    assert value("filters_completeness", Measurements()) == 0.0


# --- filters, LIME, class-model visualization -----------------------------------------------


def filters_output(patterns: np.ndarray, gain: np.ndarray) -> TaskOutput:
    outputs = np.random.default_rng(1).random((len(patterns), 48, 48)).astype(np.float32)
    return TaskOutput("filters", {"patterns": patterns, "activation_gain": gain, "outputs": outputs},
                      {"filters": object()})


def test_filters_that_all_look_alike_have_no_diversity():
    same = np.repeat(np.random.default_rng(0).random((1, 48, 48)), 8, axis=0)
    varied = np.random.default_rng(0).random((8, 48, 48))
    alike = Measurements(tasks={"q2": filters_output(same, np.full(8, 2.0))})
    different = Measurements(tasks={"q2": filters_output(varied, np.array([1, 2, 3, 4, 5, 6, 7, 8.0]))})
    assert value("filter_diversity", alike) == pytest.approx(0.0)
    assert value("filter_diversity", different) > 0.9
    assert value("filter_gain", different) == 4.5


def lime_output(labels: list[int], score: list[float]) -> TaskOutput:
    weights = np.random.default_rng(0).standard_normal((len(labels), 40))
    weights[:, 35:] = np.nan  # padding past each image's segments
    return TaskOutput("lime", {"labels": np.array(labels), "weights": weights, "score": np.array(score),
                               "segments": np.zeros((len(labels), 48, 48), np.int64),
                               "images": np.zeros((len(labels), 48, 48), np.uint8)}, {"lime": object()})


def test_lime_fidelity_is_the_mean_r2_and_coverage_counts_classes():
    measured = Measurements(tasks={"q3": lime_output([0, 1, 2, 3, 3], [0.2, 0.4, 0.6, 0.8, 1.0])})
    assert value("lime_fidelity", measured) == pytest.approx(0.6)
    assert value("lime_coverage", measured) == pytest.approx(4 / 7)
    assert value("lime_completeness", measured) == 1.0


def test_class_model_probability_is_the_mean_target_probability():
    output = TaskOutput("classviz", {"images": np.zeros((7, 48, 48)), "target_prob": np.linspace(0.1, 0.7, 7)},
                        {"classviz": object()})
    measured = Measurements(tasks={"q4": output})
    assert value("classviz_probability", measured) == pytest.approx(0.4)
    assert value("freeform_evidence", measured) == pytest.approx(0.4)
    assert value("freeform_completeness", measured) == 0.0  # all-zero images: nothing was drawn


def test_class_model_probability_of_another_free_choice_is_unavailable():
    output = TaskOutput("gradcam", {"maps": np.ones((7, 48, 48))}, {"gradcam": object()})
    with pytest.raises(MetricUnavailable, match="the free choice is gradcam"):
        value("classviz_probability", Measurements(tasks={"q4": output}))


def test_a_uniform_map_localizes_at_chance(faces):
    images, labels, masks = faces
    output = TaskOutput("saliency", {"images": images, "labels": labels, "maps": np.ones((7, 48, 48), np.float32)},
                        {"saliency": object()})
    assert value("saliency_localization", Measurements(tasks={"q1": output}, region=parts_region(masks))) == \
        pytest.approx(1.0)
