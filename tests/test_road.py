"""Specifications of ROAD (Rong et al. 2022, grader.scoring.road): the noisy linear imputation, its
agreement with Quantus 0.6.0's implementation of the same paper, and the ROAD difference on models
whose right answer is known (a model that reads only the mouth)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import quantus
import torch
from quantus.functions.perturb_func import noisy_linear_imputation as quantus_imputation
from torch import nn

from grader.data.faceset import PART_NAMES
from grader.data.synth import generate
from grader.explain.results import AttributionMaps, ClassImages
from grader.questions.output import QuestionOutput
from grader.questions.settings import TaskSettings
from grader.scoring import road
from grader.scoring.measurements import Measurements, Probes
from grader.scoring.measures import pixel_order
from grader.scoring.metrics import METRICS, MetricUnavailable, ScoredQuestion
from grader.scoring.probes import run_probes
from grader.scoring.road import ROAD_FRACTIONS, noisy_linear_imputation, road_curves, road_difference
from grader.scoring.uncertainty import Resampled
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from tests.explain_nets import one_torch_thread  # noqa: F401 (an autouse fixture: one torch thread)
from tests.recording import RecordingModel

MOUTH = PART_NAMES.index("mouth")


@pytest.fixture(scope="module")
def faces():
    """One synthetic face per class, and the union of their mouths (134 pixels, under 1/16 of a face)."""
    faces = generate(140, seed=7)
    indices = [int(np.flatnonzero(faces.labels == c)[0]) for c in range(7)]
    return faces.images[indices], (faces.masks[indices] == MOUTH).any(axis=0)


class MouthTexture(nn.Module):
    """Class 0's logit is `gain` times (the standard deviation of the pixels (0..1) in `region`, minus
    `threshold`); class 3's is 0, the others -30 (never chosen). It reads the mouth's texture and
    nothing else: a smooth fill of the mouth from the skin around it takes its evidence away."""

    def __init__(self, region: np.ndarray, gain: float = 20.0, threshold: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("region", torch.tensor(region, dtype=torch.float32))
        self.gain, self.threshold = gain, threshold

    def forward(self, x):
        pixels, weight = x[:, 0], self.region
        mean = (pixels * weight).sum(dim=(1, 2)) / weight.sum()
        spread = (((pixels - mean[:, None, None]) ** 2 * weight).sum(dim=(1, 2)) / weight.sum()).sqrt()
        logits = torch.full((len(x), 7), -30.0)
        logits[:, 0] = self.gain * (spread - self.threshold)
        logits[:, 3] = 0.0
        return logits


def mouth_model(region: np.ndarray, **kwargs) -> SubmissionModule:
    return SubmissionModule(MouthTexture(region, **kwargs)).eval()


# --- the imputation -------------------------------------------------------------------------


def test_kept_pixels_are_unchanged_and_removed_ones_change(faces):
    images, _ = faces
    removed = np.random.default_rng(0).random(images.shape) < 0.4
    filled = noisy_linear_imputation(images, removed)

    assert np.array_equal(filled[~removed], images[~removed].astype(np.float64))
    assert np.abs(filled[removed] - images[removed]).mean() > 5  # the faces' own pixels are gone
    assert filled.min() >= 0 and filled.max() <= 255


def test_a_linear_ramp_is_reconstructed_exactly_without_noise():
    rows, cols = np.mgrid[0:48, 0:48]
    ramp = (40 + 2.0 * rows + 1.5 * cols)[None]
    removed = np.zeros((1, 48, 48), bool)
    removed[0, 10:30, 5:40] = True  # a block off the border: every removed pixel has all 8 neighbours
    removed[0, 33, 20] = True  # and a pixel alone

    filled = noisy_linear_imputation(ramp, removed, noise=0.0)

    np.testing.assert_allclose(filled, ramp, rtol=0, atol=1e-9)


def test_the_imputation_agrees_with_quantus_without_noise(faces):
    """Quantus 0.6.0 (adapted from Rong et al.'s code) solves one scipy spsolve per image; ours a
    banded Cholesky per image. Same image, same pixels removed (border pixels among them)."""
    images, _ = faces
    order = pixel_order(np.random.default_rng(3).random((2, 48, 48)))
    for image, row, count in ((images[0], order[0], 900), (images[3], order[1], 2100)):
        removed = np.zeros(48 * 48, bool)
        removed[row[:count]] = True
        ours = noisy_linear_imputation(image[None], removed.reshape(1, 48, 48), noise=0.0)[0]
        theirs = quantus_imputation(image[None].astype(np.float64), row[:count].copy(), noise=0.0)[0]
        assert np.abs(ours - theirs).max() < 1e-4 * 255


@pytest.mark.parametrize("at_once", [3, road.SYSTEMS_AT_ONCE])
def test_each_image_of_a_batch_is_imputed_as_if_alone(faces, monkeypatch, at_once):
    """The band matrices of a batch are laid out together (SYSTEMS_AT_ONCE images at a time): no entry
    may land in another image's system, and each image keeps its own bandwidth (bit for bit what the
    image alone gives)."""
    monkeypatch.setattr(road, "SYSTEMS_AT_ONCE", at_once)
    images, _ = faces
    rng = np.random.default_rng(5)
    removed = rng.random(images.shape) < np.array([0.0, 0.002, 0.3, 0.6, 0.95, 0.5, 0.1])[:, None, None]
    removed[1], removed[1, 7, 9] = False, True  # one pixel alone: no entry above the diagonal
    removed[5] = False
    removed[5, 40, :] = True  # one row: each unknown touches only the next
    draws = rng.standard_normal(images.shape)

    batch = noisy_linear_imputation(images, removed, draws=draws)
    for i in range(len(images)):
        alone = noisy_linear_imputation(images[i:i + 1], removed[i:i + 1], draws=draws[i:i + 1])
        assert np.array_equal(batch[i], alone[0])


def test_the_noise_is_seeded_and_one_percent_of_the_range(faces):
    images, _ = faces
    removed = np.zeros(images.shape, bool)
    removed[:, 20:30, 10:40] = True
    exact = noisy_linear_imputation(images, removed, noise=0.0)
    noisy = noisy_linear_imputation(images, removed)

    assert np.array_equal(noisy, noisy_linear_imputation(images, removed))  # byte-identical
    assert not np.array_equal(noisy, noisy_linear_imputation(images, removed, seed=1))
    assert np.std(noisy[removed] - exact[removed]) == pytest.approx(2.55, rel=0.05)


# --- the curves -------------------------------------------------------------------------------


def test_all_maps_go_to_the_model_in_requests_of_512(faces):
    """3 maps x 7 faces x 2 orders x 15 removal fractions, and the 7 faces once: 637 images."""
    images, mouth = faces
    model = RecordingModel(InProcessModel(mouth_model(mouth)))
    rng = np.random.default_rng(0)
    curves = road_curves(model, images, np.zeros(7, np.int64), {name: rng.random((7, 48, 48)) for name in "abc"})

    assert model.sizes("logits") == [512, 125]
    assert sorted(curves) == ["a_lerf", "a_morf", "b_lerf", "b_morf", "c_lerf", "c_morf"]
    assert all(curve.shape == (7, len(ROAD_FRACTIONS)) for curve in curves.values())
    np.testing.assert_array_equal(curves["a_morf"][:, 0], curves["c_lerf"][:, 0])  # the faces themselves


def test_two_runs_give_the_same_curves_to_the_last_bit(faces):
    images, mouth = faces
    model = InProcessModel(mouth_model(mouth))
    maps = {"noise": np.random.default_rng(5).random((7, 48, 48))}
    first = road_curves(model, images, np.zeros(7, np.int64), maps)
    assert np.array_equal(first["noise_morf"], road_curves(model, images, np.zeros(7, np.int64), maps)["noise_morf"])


@pytest.mark.slow
def test_the_curves_agree_with_quantus_road_thresholded_at_one_half(faces):
    """Quantus's ROAD reports, per removal percentage, whether the model still predicts the label
    (argmax), MoRF only. Our curves are the label's probability. The model here gives every class but
    0 and 3 a logit of -30, so the argmax is the label exactly when its probability exceeds 1/2: our
    curve above 1/2 must equal Quantus's booleans, face by face and percentage by percentage. Quantus
    removes the top int(2304 * p / 100) pixels, ours floor(f * 2304): the same at multiples of 1/16.
    LeRF is Quantus's MoRF of the map turned upside down (2 - map: Quantus refuses negative maps; no
    ties in these maps). Noise off in both."""
    images, mouth = faces
    module = mouth_model(mouth, threshold=0.08)
    model = InProcessModel(module)
    maps = np.random.default_rng(11).random((7, 48, 48)) + 0.5 * mouth  # the mouth early, at random
    labels = np.zeros(7, np.int64)
    percentages = [6.25 * k for k in (1, 3, 5, 7, 9, 11, 13, 15)]
    curves = road_curves(model, images, labels, {"map": maps}, fractions=[0.0, *np.divide(percentages, 100)],
                         noise=0.0)
    road = quantus.ROAD(percentages=percentages, noise=0.0, abs=False, normalise=False, disable_warnings=True)
    x = images[:, None].astype(np.float32)
    for order, attributions in (("morf", maps), ("lerf", 2.0 - maps)):
        quantus_accuracy = road(model=module, x_batch=x, y_batch=labels, a_batch=attributions[:, None],
                                device="cpu", channel_first=True)
        ours = (curves[f"map_{order}"][:, 1:] > 0.5).mean(axis=0)
        np.testing.assert_array_equal(ours, [quantus_accuracy[p] for p in percentages])
    # Not a trivial agreement: the faces change their decision at different percentages.
    assert len(set((curves["map_morf"][:, 1:] > 0.5).mean(axis=0))) >= 3


# --- the ROAD difference on constructed cases -----------------------------------------------


@pytest.fixture(scope="module")
def mouth_cases(faces):
    """The ROAD differences of three maps for the model that reads only the mouth (its class-0
    probability about 0.35 once the mouth is a smooth fill, 0.73 to 0.98 on the faces): 1 on the
    mouth, its reverse (1 everywhere else), and pure noise."""
    images, mouth = faces
    maps = {"mouth": np.repeat(mouth[None], 7, axis=0).astype(np.float64),
            "reversed": np.repeat(~mouth[None], 7, axis=0).astype(np.float64),
            "noise": np.random.default_rng(1).random((7, 48, 48))}
    curves = road_curves(InProcessModel(mouth_model(mouth, threshold=0.05)), images, np.zeros(7, np.int64), maps)
    return curves, {name: road_difference(curves[f"{name}_morf"], curves[f"{name}_lerf"]) for name in maps}


def test_the_mouth_map_scores_clearly_positive_for_a_model_that_reads_the_mouth(mouth_cases):
    curves, difference = mouth_cases
    assert (curves["mouth_lerf"] == curves["mouth_lerf"][:, :1]).all()  # the mouth is never removed
    assert (difference["mouth"] > 0.1).all()
    assert difference["mouth"].mean() > 0.25  # 0.31


def test_the_reversed_map_scores_negative(mouth_cases):
    _, difference = mouth_cases
    assert (difference["reversed"] < -0.1).all()
    assert difference["reversed"].mean() < -0.25  # -0.42


def test_a_pure_noise_map_scores_near_zero(mouth_cases):
    """Noise and its reverse remove the mouth at equally random times: no better than chance. 0.05
    is a sixth of the mouth map's value (0.31); over the noise maps of seeds 1..20 the value stays
    within +-0.037, with a mean of 0.00."""
    _, difference = mouth_cases
    assert abs(difference["noise"].mean()) < 0.05  # 0.02


# --- the probes -----------------------------------------------------------------------------


def test_run_probes_measures_road_for_every_ranked_map_in_one_request(faces):
    """Two maps (names without Q1's randomization test), 7 faces: the gray-fill curves ask 6 times
    (2 maps and the random order, deletion and insertion, 119 faces each), ROAD once for both maps:
    7 faces + 2 maps x 2 orders x 15 fractions x 7 faces = 427. probes.npz gets road_<map>_<order>."""
    images, mouth = faces
    model = RecordingModel(InProcessModel(mouth_model(mouth)))
    rng = np.random.default_rng(2)
    outputs = {question: QuestionOutput(question, name, AttributionMaps(name, images, np.zeros(7, np.int64),
                                                                        rng.random((7, 48, 48))))
               for question, name in (("q1", "gradcam"), ("q4", "integrated_gradients"))}

    probes = run_probes(model, outputs, TaskSettings())

    assert model.sizes("logits") == [119] * 6 + [427]
    assert set(probes.road) == {"gradcam_morf", "gradcam_lerf", "integrated_gradients_morf",
                                "integrated_gradients_lerf"}
    assert probes.arrays()["road_gradcam_lerf"].shape == (7, 16)


# --- the metrics ----------------------------------------------------------------------------


def test_the_road_metrics_are_means_over_the_faces_with_an_interval(faces, mouth_cases):
    images, _ = faces
    curves, difference = mouth_cases
    outputs = {"q1": QuestionOutput("q1", "mouth", AttributionMaps("mouth", images, np.zeros(7), np.zeros((7, 48, 48)))),
               "q4": QuestionOutput("q4", "noise", AttributionMaps("noise", images, np.zeros(7), np.zeros((7, 48, 48))))}
    measured = Measurements(outputs=outputs, probes=Probes(road=curves))

    saliency = METRICS["saliency_road"].compute(measured, ScoredQuestion("q1", "saliency"))
    assert isinstance(saliency, Resampled)
    assert saliency.value() == pytest.approx(difference["mouth"].mean())
    low, high = saliency.interval()
    assert low < saliency.value() < high
    assert METRICS["freeform_road"].compute(measured, ScoredQuestion("q4", "freeform")).value() == \
        pytest.approx(difference["noise"].mean())


def test_road_is_unavailable_for_a_class_model_free_choice_and_without_probes(faces):
    output = QuestionOutput("q4", "class_model", ClassImages(images=np.zeros((7, 48, 48)),
                                                             target_prob=np.full(7, 0.5)))
    with pytest.raises(MetricUnavailable, match="class-model visualization.*no pixel order"):
        METRICS["freeform_road"].compute(Measurements(outputs={"q4": output}, probes=Probes()),
                                         ScoredQuestion("q4", "freeform"))
    images, _ = faces
    lime_less = QuestionOutput("q1", "saliency", AttributionMaps("saliency", images, np.zeros(7), np.ones((7, 48, 48))))
    with pytest.raises(MetricUnavailable, match="ROAD curves of the saliency map were not measured"):
        METRICS["saliency_road"].compute(Measurements(outputs={"q1": lime_less}, probes=Probes()),
                                         ScoredQuestion("q1", "saliency"))


def test_lime_road_is_bootstrapped_over_the_images_and_the_seeds():
    """LIME's repeats with other seeds have their own ROAD curves (`lime_seed<k>`), and lime_road
    averages over faces and seeds, resampling each axis."""
    from grader.explain.results import LimeExplanation, LimeExplanations
    from grader.questions.output import QuestionOutput
    from grader.scoring.measurements import Measurements, Probes
    from grader.scoring.metrics import METRICS, ScoredQuestion

    faces = np.zeros((2, 48, 48), np.uint8)
    segments = np.zeros((48, 48), np.int64)
    segments[24:] = 1

    def run(seed: int) -> tuple[LimeExplanation, ...]:
        return tuple(LimeExplanation(label=k, segments=segments, weights=np.array([1.0, -1.0]), score=0.5,
                                     intercept=0.0, local_prediction=0.5, probability=0.5, seed=seed, fill=0.0)
                     for k in range(2))

    result = LimeExplanations(images=faces, explanations=run(0), repeats=(run(1), run(2)))
    ones, zeros = np.ones((2, 16)), np.zeros((2, 16))
    # Seed 0 and 2 separate fully (LeRF keeps the probability, MoRF loses it); seed 1 not at all.
    road = {"lime_morf": zeros, "lime_lerf": ones, "lime_seed1_morf": ones, "lime_seed1_lerf": ones,
            "lime_seed2_morf": zeros, "lime_seed2_lerf": ones}
    measured = Measurements(outputs={"q3": QuestionOutput("q3", "lime", result)}, probes=Probes(road=road))
    computed = METRICS["lime_road"].compute(measured, ScoredQuestion("q3", "lime"))
    assert computed.shape == (2, 3)
    assert computed.value() == pytest.approx(2 / 3, abs=0.05)
    low, high = computed.interval()
    assert low < computed.value() < high


# --- faces imputed ahead ----------------------------------------------------------------------


def test_faces_imputed_ahead_give_the_same_curves_to_the_last_bit(faces):
    images, mouth = faces
    model = InProcessModel(mouth_model(mouth))
    rng = np.random.default_rng(3)
    maps = {name: rng.random((7, 48, 48)) for name in "ab"}
    ahead = {name: road.road_images(images, ranking) for name, ranking in maps.items()}

    assert ahead["a"].shape == (2, 15, 7, 48, 48) and ahead["a"].dtype == np.float32
    made_here = road_curves(model, images, np.zeros(7, np.int64), maps)
    made_ahead = road_curves(model, images, np.zeros(7, np.int64), maps, imputed=ahead)
    assert made_ahead.keys() == made_here.keys()
    assert all(np.array_equal(made_ahead[name], made_here[name]) for name in made_here)


def test_faces_imputed_ahead_must_cover_every_map(faces):
    images, mouth = faces
    maps = {name: np.random.default_rng(4).random((7, 48, 48)) for name in "ab"}
    with pytest.raises(ValueError, match="imputed must hold every map's faces"):
        road_curves(InProcessModel(mouth_model(mouth)), images, np.zeros(7, np.int64), maps,
                    imputed={"a": road.road_images(images, maps["a"])})


def test_road_ahead_imputes_each_ranked_output_on_its_helper_as_it_comes(faces, monkeypatch):
    """The assessment hands each question's output to RoadAhead as it comes; the imputation runs on
    the helper thread, and the probes' curves are those made without it, to the last bit."""
    from concurrent.futures import ThreadPoolExecutor

    from grader.scoring import probes

    images, mouth = faces
    threads: list[str] = []
    real = probes.road_images

    def watched(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(probes, "road_images", watched)
    rng = np.random.default_rng(2)
    outputs = {question: QuestionOutput(question, name, AttributionMaps(name, images, np.zeros(7, np.int64),
                                                                        rng.random((7, 48, 48))))
               for question, name in (("q1", "gradcam"), ("q4", "integrated_gradients"))}
    outputs["q2"] = QuestionOutput("q2", "class_model", ClassImages(images=np.zeros((7, 48, 48)),
                                                                    target_prob=np.full(7, 0.5)))
    model = InProcessModel(mouth_model(mouth))
    with ThreadPoolExecutor(1, thread_name_prefix="helper") as helper:
        ahead = probes.RoadAhead(helper)
        for output in outputs.values():
            ahead.add(output)
        with_helper = run_probes(model, outputs, TaskSettings(), ahead)
    assert len(threads) == 2 and all(name.startswith("helper") for name in threads)
    without = run_probes(model, outputs, TaskSettings())
    assert with_helper.road.keys() == without.road.keys() == {
        "gradcam_morf", "gradcam_lerf", "integrated_gradients_morf", "integrated_gradients_lerf"}
    assert all(np.array_equal(with_helper.road[name], without.road[name]) for name in without.road)


def test_road_ahead_makes_the_faces_itself_when_its_helper_process_died(faces):
    """A helper process that died (grader.helper_process) fails the futures of its work with
    BrokenExecutor; the probes then make those faces themselves, the same to the last bit."""
    from concurrent.futures import BrokenExecutor, Future

    from grader.scoring import probes

    class DeadHelper:
        def submit(self, *args, **kwargs) -> Future:
            future: Future = Future()
            future.set_exception(BrokenExecutor("the helper process died"))
            return future

    images, mouth = faces
    ranking = np.random.default_rng(5).random((7, 48, 48))
    ahead = probes.RoadAhead(DeadHelper())
    maps = AttributionMaps("gradcam", images, np.zeros(7, np.int64), ranking)
    ahead.add(QuestionOutput("q1", "gradcam", maps))
    assert list(ahead._made) == ["gradcam"] and ahead._made["gradcam"].exception() is not None
    made = ahead.images("gradcam", images, maps.ranking())
    assert np.array_equal(made, road.road_images(images, maps.ranking()))


def test_road_ahead_cancels_what_the_probes_did_not_take(faces):
    """A batch's helper outlives each assessment: faces the probes never asked for (a stage failed
    before them) are not made for nothing."""
    from concurrent.futures import Future

    from grader.scoring import probes

    class QueuedHelper:  # nothing it is given starts
        def __init__(self) -> None:
            self.futures: list[Future] = []

        def submit(self, *args, **kwargs) -> Future:
            self.futures.append(Future())
            return self.futures[-1]

    images, _ = faces
    helper = QueuedHelper()
    ahead = probes.RoadAhead(helper)
    ahead.add(QuestionOutput("q1", "gradcam", AttributionMaps("gradcam", images, np.zeros(7, np.int64),
                                                              np.random.default_rng(6).random((7, 48, 48)))))
    ahead.cancel()
    assert len(helper.futures) == 1 and helper.futures[0].cancelled()
