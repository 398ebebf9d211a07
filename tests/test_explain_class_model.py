"""Specifications of the class-model visualization (Q4 default): gradient ascent from noise toward
every class at once, with an L2 decay toward gray, on small hand-built models."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from grader.explain.class_model import ClassModelVisualization
from grader.numerics import softmax
from grader.protocol import ClassLogit
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from tests.recording import RecordingModel

# --- helpers --------------------------------------------------------------------------------


def linear_model(seed: int = 0) -> InProcessModel:
    """A random linear classifier over the pixels: every class can be driven up."""
    torch.manual_seed(seed)
    return InProcessModel(SubmissionModule(nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 7))))


def small_cnn(seed: int = 0) -> InProcessModel:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                        nn.Linear(4 * 4 * 4, 7))
    return InProcessModel(SubmissionModule(net))


def rms_from_gray(images: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean((images.astype(np.float64) - 128.0) ** 2, axis=(1, 2)))


# --- specifications -------------------------------------------------------------------------


def test_every_class_probability_rises_from_the_start_and_ends_above_chance():
    model = linear_model()
    start = ClassModelVisualization(model, steps=0).visualize()  # the same seed: the start images
    end = ClassModelVisualization(model, steps=30, step_size=8.0).visualize()
    assert np.all(end.target_prob > start.target_prob)
    assert np.all(end.target_prob > 1 / 7)


def test_a_small_cnn_is_driven_toward_each_class_too():
    model = small_cnn()
    start = ClassModelVisualization(model, steps=0).visualize()
    end = ClassModelVisualization(model, steps=30, step_size=8.0).visualize()
    assert np.all(end.target_prob > start.target_prob)


def test_one_request_per_step_carries_all_seven_classes_then_one_logits_request():
    model = RecordingModel(linear_model())
    ClassModelVisualization(model, steps=4).visualize()
    assert [(r.name, r.size) for r in model.requests] == [("input_gradient", 7)] * 4 + [("logits", 7)]
    for objective in [r.detail for r in model.requests[:4]]:
        assert isinstance(objective, ClassLogit)
        np.testing.assert_array_equal(objective.classes, np.arange(7))


def test_target_prob_is_each_images_softmax_probability_of_its_class():
    model = small_cnn()
    result = ClassModelVisualization(model, steps=5).visualize()
    expected = softmax(model.logits(result.images))[np.arange(7), np.arange(7)]
    assert result.target_prob.shape == (7,)
    assert np.all((result.target_prob >= 0) & (result.target_prob <= 1))
    np.testing.assert_allclose(result.target_prob, expected)


def test_the_result_holds_the_fields_of_classviz_npz():
    result = ClassModelVisualization(linear_model(), steps=2).visualize()
    assert result.method == "class_model"
    assert set(result.arrays()) == {"images", "target_prob"}
    assert result.images.shape == (7, 48, 48) and result.images.dtype == np.float32


def test_the_same_seed_gives_identical_arrays_and_another_seed_differs():
    model = small_cnn()
    first = ClassModelVisualization(model, steps=5, seed=1).visualize()
    again = ClassModelVisualization(model, steps=5, seed=1).visualize()
    other = ClassModelVisualization(model, steps=5, seed=2).visualize()
    assert first.images.tobytes() == again.images.tobytes()
    assert first.target_prob.tobytes() == again.target_prob.tobytes()
    assert not np.array_equal(first.images, other.images)


def test_the_l2_decay_bounds_the_distance_from_gray():
    # A linear model's gradient never changes, so without decay the images run to the clip;
    # with decay l2 each image's RMS distance from gray stays within step_size * (1 - l2) / l2.
    model = linear_model()
    settings = dict(steps=40, step_size=4.0, blur_every=0, jitter=0)
    free = ClassModelVisualization(model, l2=0.0, **settings).visualize().images
    held = ClassModelVisualization(model, l2=0.2, **settings).visualize().images
    bound = 4.0 * (1 - 0.2) / 0.2
    assert np.all(rms_from_gray(held) <= bound + 1e-3)
    assert np.all(rms_from_gray(free) > 2 * bound)
    for images in (free, held):
        assert images.min() >= 0 and images.max() <= 255
