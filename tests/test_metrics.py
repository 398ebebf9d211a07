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
from grader.explain.results import AttributionMaps, ClassImages, FilterPatterns, LimeExplanation, LimeExplanations
from grader.explain.saliency import Saliency
from grader.protocol import ModelDescription, ModelProtocol
from grader.questions.output import QuestionOutput
from grader.questions.settings import TaskSettings
from grader.scoring.measurements import Measurements
from grader.scoring.measures import mass_share, parts_region
from grader.scoring.metrics import METRICS, MetricUnavailable, ScoredQuestion
from grader.scoring.probes import run_probes
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule

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


def saliency_output(model: ModelProtocol, images, labels) -> QuestionOutput:
    return QuestionOutput("q1", "saliency", Saliency(model).explain(images.astype(np.float32), labels))


def maps_output(name: str, images, labels, maps) -> QuestionOutput:
    return QuestionOutput("q1", name, AttributionMaps(name, images, labels, maps))


QUESTIONS = {"q1": ScoredQuestion("q1", "saliency"), "q2": ScoredQuestion("q2", "filters"),
             "q3": ScoredQuestion("q3", "lime"), "q4": ScoredQuestion("q4", "freeform")}
"""The default rubric's questions, which the metrics below are scored for."""


def value(name: str, measured: Measurements, question: str = "q1") -> float:
    return METRICS[name].value(measured, QUESTIONS[question])


# --- localization ---------------------------------------------------------------------------


def test_a_model_that_only_looks_at_the_mouth_has_its_saliency_on_the_mouth(faces):
    images, labels, masks = faces
    mouths = masks == MOUTH
    first_face = saliency_output(model_looking_at(mouths[0]), images[:1], labels[:1])
    assert mass_share(first_face.result.maps, mouths[:1]) == pytest.approx([1.0])
    # The seven classes explained on that one face, whose mouth is all the model sees.
    same_face = np.repeat(images[:1], 7, axis=0)
    output = saliency_output(model_looking_at(mouths[0]), same_face, np.arange(7))
    measured = Measurements(outputs={"q1": output}, region=parts_region(np.repeat(masks[:1], 7, axis=0)))
    # All the mass on the parts: the ratio over chance is 1 / (the parts' share of the image).
    assert value("saliency_localization", measured) == pytest.approx(1 / parts_region(masks[:1]).mean())
    assert value("saliency_pointing", measured) == 1.0


def test_a_model_that_looks_at_the_background_fails_localization(faces):
    images, labels, masks = faces
    corners = np.zeros((48, 48), bool)
    corners[:6, :6] = corners[:6, -6:] = True
    measured = Measurements(outputs={"q1": saliency_output(model_looking_at(corners), images, labels)},
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
    assert value("saliency_randomization", Measurements(outputs=outputs, probes=probes)) == pytest.approx(1.0)


def test_a_cnns_saliency_changes_when_its_layers_are_reinitialized(faces):
    images, labels, _ = faces
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 7))
    model = InProcessModel(SubmissionModule(net))
    outputs = {"q1": saliency_output(model, images, labels)}
    probes = run_probes(model, outputs, TaskSettings())
    assert value("saliency_randomization", Measurements(outputs=outputs, probes=probes)) < 0.5


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
    measured = Measurements(outputs=outputs, probes=run_probes(model, outputs, TaskSettings()))
    assert value("saliency_deletion", measured) > 0.05
    assert value("saliency_insertion", measured) > 0.05
    curves = measured.probes.curves
    assert set(curves) == {"saliency_deletion", "saliency_insertion", "random_deletion", "random_insertion"}


def test_curve_metrics_without_the_map_are_unavailable_with_the_reason():
    with pytest.raises(MetricUnavailable, match="sanity probes did not run"):
        value("lime_deletion", Measurements(), "q3")


# --- completeness ---------------------------------------------------------------------------


def test_completeness_is_the_share_of_finite_non_constant_panels(faces):
    images, labels, _ = faces
    maps = np.random.default_rng(0).random((7, 48, 48)).astype(np.float32)
    maps[1] = np.nan
    maps[2] = 0.5
    output = maps_output("saliency", images, labels, maps)
    assert value("saliency_completeness", Measurements(outputs={"q1": output})) == pytest.approx(5 / 7)


def test_a_task_that_failed_is_zero_complete():
    assert value("filters_completeness", Measurements(), "q2") == 0.0


# --- filters, LIME, class-model visualization -----------------------------------------------


def filters_output(patterns: np.ndarray, gain: np.ndarray) -> QuestionOutput:
    outputs = np.random.default_rng(1).random((len(patterns), 48, 48)).astype(np.float32)
    result = FilterPatterns(layer="conv1", channels=np.arange(len(patterns)), patterns=patterns, activation_gain=gain,
                            image=np.zeros((48, 48), np.uint8), outputs=outputs)
    return QuestionOutput("q2", "filters", result)


def test_filters_that_all_look_alike_have_no_diversity():
    same = np.repeat(np.random.default_rng(0).random((1, 48, 48)), 8, axis=0)
    varied = np.random.default_rng(0).random((8, 48, 48))
    alike = Measurements(outputs={"q2": filters_output(same, np.full(8, 2.0))})
    different = Measurements(outputs={"q2": filters_output(varied, np.array([1, 2, 3, 4, 5, 6, 7, 8.0]))})
    assert value("filter_diversity", alike, "q2") == pytest.approx(0.0)
    assert value("filter_diversity", different, "q2") > 0.9
    assert value("filter_gain", different, "q2") == 4.5


def lime_output(labels: list[int], score: list[float]) -> QuestionOutput:
    weights = np.random.default_rng(0).standard_normal((len(labels), 35))
    explanations = [LimeExplanation(label=label, segments=np.zeros((48, 48), np.int64), weights=row, score=r2,
                                    intercept=0.0, local_prediction=0.0, probability=0.5, seed=0, fill=np.nan)
                    for label, row, r2 in zip(labels, weights, score)]
    return QuestionOutput("q3", "lime", LimeExplanations.of(np.zeros((len(labels), 48, 48), np.uint8), explanations))


def test_lime_fidelity_is_the_mean_r2_and_coverage_counts_classes():
    measured = Measurements(outputs={"q3": lime_output([0, 1, 2, 3, 3], [0.2, 0.4, 0.6, 0.8, 1.0])})
    assert value("lime_fidelity", measured, "q3") == pytest.approx(0.6)
    assert value("lime_coverage", measured, "q3") == pytest.approx(4 / 7)
    assert value("lime_completeness", measured, "q3") == 1.0


def test_class_model_probability_is_the_mean_target_probability():
    output = QuestionOutput("q4", "class_model", ClassImages(images=np.zeros((7, 48, 48)),
                                                             target_prob=np.linspace(0.1, 0.7, 7)))
    measured = Measurements(outputs={"q4": output})
    assert value("class_model_probability", measured, "q4") == pytest.approx(0.4)
    assert value("freeform_evidence", measured, "q4") == pytest.approx(0.4)
    assert value("freeform_completeness", measured, "q4") == 0.0  # all-zero images: nothing was drawn


def test_class_model_probability_of_another_free_choice_is_unavailable():
    output = QuestionOutput("q4", "gradcam", AttributionMaps("gradcam", np.zeros((7, 48, 48), np.uint8), np.arange(7),
                                                             np.ones((7, 48, 48), np.float32), layer="conv2"))
    with pytest.raises(MetricUnavailable, match="the free choice is gradcam, not the class-model visualization"):
        value("class_model_probability", Measurements(outputs={"q4": output}), "q4")


def test_a_uniform_map_localizes_at_chance(faces):
    images, labels, masks = faces
    output = maps_output("saliency", images, labels, np.ones((7, 48, 48), np.float32))
    assert value("saliency_localization", Measurements(outputs={"q1": output}, region=parts_region(masks))) == \
        pytest.approx(1.0)


def mouth_lime_output(masks: np.ndarray, labels: np.ndarray, weight_on_mouth: float) -> QuestionOutput:
    """LIME with two superpixels per face, the mouth (weight `weight_on_mouth`) and the rest (weight 0.05)."""
    explanations = [LimeExplanation(label=int(label), segments=(mask == MOUTH).astype(np.int64),
                                    weights=np.array([0.05, weight_on_mouth]), score=0.5, intercept=0.0,
                                    local_prediction=0.5, probability=0.5, seed=0, fill=np.nan)
                    for mask, label in zip(masks, labels)]
    return QuestionOutput("q3", "lime", LimeExplanations.of(np.zeros((len(labels), 48, 48), np.uint8), explanations))


def test_lime_localization_counts_only_the_supporting_weight_on_the_parts(faces):
    images, labels, masks = faces
    region = parts_region(masks)
    supporting = Measurements(outputs={"q3": mouth_lime_output(masks, labels, 5.0)}, region=region)
    against = Measurements(outputs={"q3": mouth_lime_output(masks, labels, -5.0)}, region=region)
    # Against the label, the mouth's superpixel is no evidence: what is left lies off the parts.
    assert value("lime_localization", supporting, "q3") > 3.0
    assert value("lime_localization", against, "q3") < 1.0


def test_the_free_choice_evidence_of_an_attribution_map_is_its_road_value(faces):
    from grader.scoring.measurements import Probes

    images, labels, _ = faces
    output = QuestionOutput("q4", "gradcam", AttributionMaps("gradcam", images, labels, np.ones((7, 48, 48))))
    road = {"gradcam_morf": np.zeros((7, 16)), "gradcam_lerf": np.full((7, 16), 0.5)}
    measured = Measurements(outputs={"q4": output}, probes=Probes(road=road))
    assert value("freeform_evidence", measured, "q4") == pytest.approx(value("freeform_road", measured, "q4"))
    assert value("freeform_evidence", measured, "q4") == pytest.approx(0.5, abs=0.05)
