"""Specifications of grader.explain.lime: LIME on the lime package, with SLIC superpixels, batched
requests and fixed seeds; checked against lime's own LimeImageExplainer.explain_instance."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import sklearn.metrics
import torch
from lime.lime_image import LimeImageExplainer
from lime.wrappers.scikit_image import SegmentationAlgorithm
from skimage.color import gray2rgb
from torch import nn

from grader.data.synth import generate
from grader.explain.lime import KERNEL_WIDTH, Lime, image_seed, slic_segments
from grader.explain.results import LimeExplanation
from grader.numerics import softmax
from grader.protocol import ModelProtocol
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from tests.recording import RecordingModel
from tests.explain_nets import KINDS, build

MOUTH_ROWS, MOUTH_COLS = slice(34, 42), slice(16, 32)

# --- helpers --------------------------------------------------------------------------------


def tiny_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(3 * 4 * 4, 7))


class MouthNet(nn.Module):
    """Class 3's logit follows the mean brightness of the mouth region; every other logit is 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, 1, 48, 48) pixels / 255
        logits = torch.zeros(len(x), 7)
        logits[:, 3] = 6 * (x[:, 0, MOUTH_ROWS, MOUTH_COLS].mean(dim=(1, 2)) - 0.5)
        return logits


@pytest.fixture(scope="module")
def model() -> InProcessModel:
    return InProcessModel(SubmissionModule(tiny_cnn()))


@pytest.fixture(scope="module")
def faces():
    return generate(40, seed=5)


def classifier_fn(model: ModelProtocol, seen: list[np.ndarray] | None = None):
    """lime's classifier_fn over the protocol: RGB faces from lime, the gray channel to the model."""

    def predict(rgb: np.ndarray) -> np.ndarray:
        gray = np.ascontiguousarray(rgb[..., 0], dtype=np.float32)
        if seen is not None:
            seen.append(gray)
        return softmax(model.logits(gray))

    return predict


def dense(local_exp: list[tuple[int, float]], size: int) -> np.ndarray:
    weights = np.full(size, np.nan)
    for segment, weight in local_exp:
        weights[segment] = weight
    return weights


def overlap(explanation: LimeExplanation, segment: int) -> int:
    """How many pixels of `segment` lie in the mouth region."""
    return int((explanation.segments[MOUTH_ROWS, MOUTH_COLS] == segment).sum())


# --- agreement with the lime package --------------------------------------------------------


@pytest.mark.parametrize("fill", ["mean", 0.0, "segments"])
def test_matches_lime_explain_instance(model, faces, fill):
    assert_matches_lime(model, faces.images[0].astype(np.float32), int(faces.labels[0]), fill)


@pytest.mark.parametrize("kind", KINDS)
def test_matches_lime_for_every_kind_of_student_forward(faces, kind):
    assert_matches_lime(InProcessModel(build(kind)), faces.images[1].astype(np.float32), int(faces.labels[1]), "mean")


def assert_matches_lime(model, face: np.ndarray, label: int, fill) -> None:
    samples = 300
    recording = RecordingModel(model)
    mine = Lime(recording, num_samples=samples, batch_size=samples, seed=7, fill=fill).explain_one(face, label, index=2)
    assert mine.seed == image_seed(7, 2)

    seen: list[np.ndarray] = []
    theirs = LimeImageExplainer(random_state=mine.seed).explain_instance(
        gray2rgb(face), classifier_fn(model, seen), labels=(label,), top_labels=None,
        hide_color=None if fill == "segments" else mine.fill, num_samples=samples,
        segmentation_fn=lambda _: mine.segments, batch_size=samples)

    # The same perturbed faces reach the model: the same draws, the same fill.
    if fill == "segments":  # lime averages each superpixel in float32, we in float64
        np.testing.assert_allclose(recording.requests[0].pixels, seen[0], atol=1e-3)
    else:
        np.testing.assert_array_equal(recording.requests[0].pixels, seen[0])
    # ...and lime's surrogate is the one we report.
    np.testing.assert_allclose(mine.weights, dense(theirs.local_exp[label], mine.num_segments), rtol=1e-7, atol=1e-12)
    assert mine.score == pytest.approx(theirs.score, rel=1e-9)
    assert mine.intercept == pytest.approx(theirs.intercept[label], rel=1e-9)
    assert mine.local_prediction == pytest.approx(float(theirs.local_pred[0]), rel=1e-9)
    # Ours comes from the face's row in the batch of perturbations, this from a batch of one: oneDNN
    # may sum in another order for another batch size (it does on some Xeons), which moves fp32
    # logits by a few ulps of their scale and p by about that much relative to it.
    assert mine.probability == pytest.approx(classifier_fn(model)(gray2rgb(face)[None])[0, label], rel=1e-4)
    assert 0 < mine.score <= 1


def test_the_surrogate_on_one_blas_thread_is_lime_s_own_to_the_last_bit(model, faces):
    """Our fits run on one BLAS thread (grader.explain.lime's docstring); lime's own fit of the same
    perturbations, on as many threads as BLAS likes, gives the same numbers bit for bit. (Against
    explain_instance the weights agree to ~1e-16 only: its feature selection reorders the columns.)"""
    lime, face = Lime(model, seed=3), faces.images[0].astype(np.float32)
    perturbations = lime._perturb(face, lime.segment(face)[0], seed=11)
    probabilities = lime._probabilities(perturbations.images)
    mine = lime._fit(perturbations, probabilities, 3)

    data = perturbations.data
    distances = sklearn.metrics.pairwise_distances(data, data[:1], metric="cosine").ravel()
    surrogate = LimeImageExplainer(kernel_width=KERNEL_WIDTH).base
    intercept, local_exp, score, local_pred = surrogate.explain_instance_with_data(
        data, probabilities, distances, 3, data.shape[1], feature_selection="none")
    assert np.array_equal(mine.weights, dense(local_exp, data.shape[1]))
    assert (mine.score, mine.intercept, mine.local_prediction) == (score, intercept, float(local_pred[0]))


def test_fill_is_the_image_mean_by_default(model, faces):
    face = faces.images[1].astype(np.float32)
    explanation = Lime(model, num_samples=50).explain_one(face, 3)
    assert explanation.fill == pytest.approx(face.mean())


# --- reproducibility and batching -----------------------------------------------------------


def test_same_seed_same_arrays_other_seed_other_weights(model, faces):
    pixels, labels = faces.images[:3].astype(np.float32), faces.labels[:3]
    first = Lime(model, num_samples=200, seed=3).explain(pixels, labels).arrays()
    second = Lime(model, num_samples=200, seed=3).explain(pixels, labels).arrays()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    other = Lime(model, num_samples=200, seed=4).explain(pixels, labels).arrays()
    np.testing.assert_array_equal(other["segments"], first["segments"])  # segmentation has no randomness
    assert not np.allclose(np.nan_to_num(other["weights"]), np.nan_to_num(first["weights"]))


def test_one_face_alone_reproduces_its_explanation_in_a_batch(model, faces):
    pixels, labels = faces.images[:3].astype(np.float32), faces.labels[:3]
    lime = Lime(model, num_samples=150, seed=1)
    batch = lime.explain(pixels, labels).explanations
    alone = lime.explain_one(pixels[2], int(labels[2]), index=2)
    np.testing.assert_allclose(alone.weights, batch[2].weights, rtol=1e-6, atol=1e-9)
    assert alone.seed == batch[2].seed and alone.seed != batch[1].seed


def test_one_segmentation_serves_every_seed(model, faces):
    pixels, labels = faces.images[:3].astype(np.float32), faces.labels[:3]
    calls: list[np.ndarray] = []

    def counted(face: np.ndarray) -> np.ndarray:
        calls.append(face)
        return slic_segments(face)

    segments = Lime(model, segmentation=counted).segment(pixels)
    assert len(calls) == 3 and all(s.dtype == np.int64 and s.shape == (48, 48) for s in segments)
    for seed in (0, 1):
        shared = Lime(model, num_samples=100, seed=seed, segmentation=counted).explain(pixels, labels,
                                                                                     segments=segments)
        alone = Lime(model, num_samples=100, seed=seed).explain(pixels, labels)
        for key, value in alone.arrays().items():
            np.testing.assert_array_equal(shared.arrays()[key], value)  # bit for bit
    assert len(calls) == 3  # the two runs segmented nothing again
    with pytest.raises(ValueError, match="2 segmentations for 3 faces"):
        Lime(model, num_samples=20).explain(pixels, labels, segments=segments[:2])
    with pytest.raises(ValueError, match="segmentation returned shape"):
        Lime(model, num_samples=20).explain(pixels[:1], labels[:1], segments=[segments[0][:40]])


def test_requests_are_few_and_large(model, faces):
    pixels, labels = faces.images[:3].astype(np.float32), faces.labels[:3]

    one_per_image = RecordingModel(model)
    Lime(one_per_image, num_samples=1000).explain(pixels[:2], labels[:2])
    assert one_per_image.sizes("logits") == [1000, 1000]

    shared = RecordingModel(model)
    Lime(shared, num_samples=200, batch_size=1000).explain(pixels, labels)
    assert shared.sizes("logits") == [600]  # three images' perturbations in one request

    chunked = RecordingModel(model)
    Lime(chunked, num_samples=300, batch_size=256).explain(pixels[:1], labels[:1])
    assert chunked.sizes("logits") == [256, 44]

    # lime's own default sends batches of 10: 10 requests for 100 samples.
    lime_default = RecordingModel(model)
    LimeImageExplainer(random_state=0).explain_instance(
        gray2rgb(pixels[0]), classifier_fn(lime_default), labels=(int(labels[0]),), top_labels=None,
        num_samples=100, segmentation_fn=lambda _: slic_segments(pixels[0]))
    assert lime_default.sizes("logits") == [10] * 10


# --- segmentation ---------------------------------------------------------------------------


def test_slic_gives_tens_of_segments_where_quickshift_gives_a_few(faces):
    slic_counts = np.array([len(np.unique(slic_segments(face))) for face in faces.images])
    quickshift = SegmentationAlgorithm("quickshift", kernel_size=4, max_dist=200, ratio=0.2, random_seed=0)
    quickshift_counts = np.array([len(np.unique(quickshift(gray2rgb(face)))) for face in faces.images[:20]])
    print(f"SLIC segments: {sorted(slic_counts.tolist())}\nquickshift (lime's default): "
          f"{sorted(quickshift_counts.tolist())}")

    assert slic_counts.min() >= 15 and slic_counts.max() <= 80
    assert np.mean(quickshift_counts < 5) >= 0.8
    assert np.median(slic_counts) > 5 * np.median(quickshift_counts)


def test_slic_ids_are_dense_and_deterministic(faces):
    segments = slic_segments(faces.images[0])
    assert segments.shape == (48, 48) and segments.dtype == np.int64
    np.testing.assert_array_equal(np.unique(segments), np.arange(segments.max() + 1))
    np.testing.assert_array_equal(segments, slic_segments(faces.images[0]))


# --- sanity on a model whose answer is known ------------------------------------------------


@pytest.fixture(scope="module")
def mouth_model() -> InProcessModel:
    return InProcessModel(SubmissionModule(MouthNet()))


def test_black_fill_puts_the_most_positive_segments_on_the_mouth(mouth_model, faces):
    lime = Lime(mouth_model, num_samples=500, fill=0.0)
    for explanation in lime.explain(faces.images[:3].astype(np.float32), 3).explanations:
        top = explanation.top_segments(3, "positive")
        assert len(top) == 3 and all(overlap(explanation, s) > 0 for s in top)
        outside = [s for s in range(explanation.num_segments) if overlap(explanation, s) == 0]
        # Segments the model never sees get only the surrogate's sampling noise (about 5% here).
        assert np.abs(explanation.weights[outside]).max() < 0.25 * explanation.weights.max()


def test_mean_fill_weights_the_mouth_with_the_sign_of_its_brightness(mouth_model, faces):
    lime = Lime(mouth_model, num_samples=500)
    explanations = lime.explain(faces.images[3:6].astype(np.float32), 3).explanations
    for face, explanation in zip(faces.images[3:6], explanations):
        for segment in explanation.top_segments(3, "any"):
            assert overlap(explanation, segment) > 0
            inside = face[MOUTH_ROWS, MOUTH_COLS][explanation.segments[MOUTH_ROWS, MOUTH_COLS] == segment]
            # Turning a segment off paints it with the fill: it helps class 3 if it was brighter.
            assert np.sign(explanation.weights[segment]) == np.sign(inside.mean() - explanation.fill)


# --- outputs --------------------------------------------------------------------------------


def test_lime_npz_arrays_have_the_documented_shapes_and_nan_padding(model, faces):
    pixels, labels = faces.images[:7].astype(np.float32), faces.labels[:7]
    result = Lime(model, num_samples=60).explain(pixels, labels)
    explanations, arrays = result.explanations, result.arrays()

    assert set(arrays) == {"images", "labels", "segments", "weights", "score", "score_by_seed", "seeds"}
    assert arrays["images"].shape == (7, 48, 48) and arrays["images"].dtype == np.uint8
    np.testing.assert_array_equal(arrays["images"], faces.images[:7])
    np.testing.assert_array_equal(arrays["labels"], labels)
    assert arrays["segments"].shape == (7, 48, 48) and np.issubdtype(arrays["segments"].dtype, np.integer)
    sizes = [e.num_segments for e in explanations]
    assert arrays["weights"].shape == (7, max(sizes)) and arrays["weights"].dtype == np.float64
    assert len(set(sizes)) > 1  # the faces differ in their number of segments, so padding shows
    for row, segments, explanation, size in zip(arrays["weights"], arrays["segments"], explanations, sizes):
        np.testing.assert_array_equal(row[:size], explanation.weights)
        assert np.isfinite(row[:size]).all() and np.isnan(row[size:]).all()
        np.testing.assert_array_equal(segments, explanation.segments)
        assert segments.max() == size - 1
    assert arrays["score"].shape == (7,) and np.all(arrays["score"] <= 1)
    np.testing.assert_array_equal(arrays["score_by_seed"], arrays["score"][:, None])


def test_repeats_with_other_seeds_give_a_score_column_per_seed(model, faces):
    pixels, labels = faces.images[:3].astype(np.float32), faces.labels[:3]
    runs = [Lime(model, num_samples=40, seed=seed).explain(pixels, labels) for seed in (0, 1)]
    arrays = runs[0].with_repeats(runs[1:]).arrays()
    assert arrays["score_by_seed"].shape == (3, 2)
    np.testing.assert_array_equal(arrays["score_by_seed"][:, 1], [e.score for e in runs[1].explanations])
    assert (arrays["seeds"][:, 0] != arrays["seeds"][:, 1]).all()


def test_a_repeat_must_explain_the_same_faces(model, faces):
    first = Lime(model, num_samples=40).explain(faces.images[:2].astype(np.float32), faces.labels[:2])
    other = Lime(model, num_samples=40).explain(faces.images[2:4].astype(np.float32), faces.labels[2:4])
    with pytest.raises(ValueError, match="same faces"):
        first.with_repeats([other])


def test_attribute_paints_each_pixel_with_its_segment_weight(model, faces):
    pixels, labels = faces.images[:2].astype(np.float32), faces.labels[:2]
    lime = Lime(model, num_samples=80)
    maps = lime.attribute(pixels, labels)
    explanations = lime.explain(pixels, labels).explanations
    assert maps.shape == (2, 48, 48) and maps.dtype == np.float32
    for heatmap, explanation in zip(maps, explanations):
        np.testing.assert_allclose(heatmap, explanation.weights[explanation.segments], rtol=1e-6)


def test_bad_arguments_are_refused(model, faces):
    with pytest.raises(ValueError, match="fill"):
        Lime(model, num_samples=20, fill="median").explain_one(faces.images[0], 0)
    with pytest.raises(ValueError, match="label 9"):
        Lime(model, num_samples=20).explain_one(faces.images[0], 9)
    with pytest.raises(ValueError, match="one gray"):
        slic_segments(gray2rgb(faces.images[0]))
    with pytest.raises(ValueError, match="48"):
        Lime(model).explain(np.zeros((2, 32, 32), np.float32), [0, 1])


# --- the grader's own work beside the model's ---------------------------------------------------


def test_the_next_face_is_segmented_and_perturbed_while_the_model_answers(model, faces):
    """The first request waits until the second face has been segmented: that happens on LIME's helper
    thread meanwhile (grader.helper_thread), and the explanations are those of one face at a time."""
    pixels, labels = faces.images[:3].astype(np.float32), faces.labels[:3]
    segmented: list[str] = []
    second_face = threading.Event()

    def segmentation(face: np.ndarray) -> np.ndarray:
        segmented.append(threading.current_thread().name)
        if len(segmented) == 2:
            second_face.set()
        return slic_segments(face)

    class FirstRequestWaits(RecordingModel):
        waited: list[bool] = []

        def logits(self, pixels):
            if not self.waited:
                self.waited.append(second_face.wait(10))
            return super().logits(pixels)

    waiting = FirstRequestWaits(model)
    together = Lime(waiting, num_samples=200, batch_size=200, seed=4, segmentation=segmentation).explain(pixels, labels)
    assert waiting.waited == [True]
    assert len(segmented) == 3 and all(name.startswith("xai-grader-lime") for name in segmented)
    for i, explanation in enumerate(together.explanations):
        alone = Lime(model, num_samples=200, batch_size=200, seed=4).explain_one(pixels[i], int(labels[i]), index=i)
        assert np.array_equal(explanation.weights, alone.weights) and explanation.score == alone.score
