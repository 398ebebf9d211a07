"""Specifications of grader.explain.integrated_gradients: equal to Captum's IntegratedGradients, with
its quadrature rules, baselines and convergence delta, on the same SubmissionModule and raw pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients as CaptumIG

from grader.explain.integrated_gradients import IntegratedGradients, integration_rule
from grader.submission.inprocess import InProcessModel
from tests.explain_nets import LABELS, as_tensor, build, close, faces, not_trivial
from tests.explain_nets import module, one_torch_thread  # noqa: F401 (fixtures)
from tests.recording import RecordingModel

IG_STEPS = 16


def captum_ig(module, pixels, labels, steps=IG_STEPS, baseline=0, method="gausslegendre"):
    baselines = baseline if np.isscalar(baseline) else as_tensor(np.broadcast_to(baseline, pixels.shape))
    attributions, delta = CaptumIG(module).attribute(as_tensor(pixels), baselines=baselines,
                                                     target=torch.tensor(labels), n_steps=steps, method=method,
                                                     return_convergence_delta=True)
    return attributions.squeeze(1).detach().numpy(), delta.detach().numpy()


def delta_tolerance(attributions: np.ndarray) -> float:
    """The delta is a difference of float32 sums: its rounding grows with the attributions' magnitude."""
    return 2e-6 * float(np.abs(attributions).sum(axis=(1, 2)).max()) + 1e-6


def test_integrated_gradients_equal_captums_with_its_convergence_delta(module):
    pixels, model = faces(), InProcessModel(module)
    ig = IntegratedGradients(model, steps=IG_STEPS)
    assert ig.last_delta is None
    attributions = ig.attribute(pixels, LABELS)
    expected, expected_delta = captum_ig(module, pixels, LABELS)

    assert attributions.dtype == np.float32 and attributions.shape == (3, 48, 48)
    not_trivial(attributions)
    close(attributions, expected)
    assert ig.last_delta.dtype == np.float32 and ig.last_delta.shape == (3,)
    np.testing.assert_allclose(ig.last_delta, expected_delta, atol=delta_tolerance(expected))
    np.testing.assert_allclose(ig.convergence_delta(attributions, pixels, LABELS), expected_delta,
                               atol=delta_tolerance(expected))


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right",
                                    "riemann_middle"])
def test_integrated_gradients_use_captums_quadrature(method):
    from captum.attr._utils.approximation_methods import approximation_parameters

    step_sizes, alphas = approximation_parameters(method)
    ours_sizes, ours_alphas = integration_rule(method, 7)
    np.testing.assert_array_equal(ours_sizes, torch.tensor(step_sizes(7)).float().numpy())
    np.testing.assert_allclose(ours_alphas, alphas(7), rtol=1e-7, atol=1e-7)

    module = build("leaky_relu")
    pixels = faces()
    attributions = IntegratedGradients(InProcessModel(module), steps=8, method=method).attribute(pixels, LABELS)
    close(attributions, captum_ig(module, pixels, LABELS, steps=8, method=method)[0])


@pytest.mark.parametrize("baseline", [128.0, "image", "per_image"])
def test_integrated_gradients_take_captums_baselines(baseline):
    module, pixels = build("rgb"), faces()
    if baseline == "image":
        baseline = np.linspace(0, 255, 48 * 48, dtype=np.float32).reshape(48, 48)
    elif baseline == "per_image":
        baseline = faces(seed=5)
    ig = IntegratedGradients(InProcessModel(module), steps=IG_STEPS, baseline=baseline)
    attributions = ig.attribute(pixels, LABELS)
    expected, expected_delta = captum_ig(module, pixels, LABELS, baseline=baseline)

    not_trivial(attributions)
    close(attributions, expected)
    np.testing.assert_allclose(ig.last_delta, expected_delta, atol=delta_tolerance(expected))


def test_integrated_gradients_converge_as_steps_grow():
    module, pixels = build("residual"), faces()
    coarse = IntegratedGradients(InProcessModel(module), steps=4)
    fine = IntegratedGradients(InProcessModel(module), steps=64)
    coarse.attribute(pixels, LABELS)
    fine.attribute(pixels, LABELS)
    assert np.abs(fine.last_delta).max() <= np.abs(coarse.last_delta).max()


def test_integrated_gradients_send_every_step_in_one_request_or_bounded_ones():
    model = RecordingModel(InProcessModel(build("functional_relu")))
    pixels = faces()
    whole = IntegratedGradients(model, steps=IG_STEPS).attribute(pixels, LABELS)
    assert model.sizes("input_gradient") == [IG_STEPS * 3 + 6]  # every step of every image, plus the images and baselines

    model.requests.clear()
    ig = IntegratedGradients(model, steps=IG_STEPS, batch_size=20)
    split = ig.attribute(pixels, LABELS)
    assert model.sizes("input_gradient") == [20, 20, 14]
    close(split, whole)
    assert ig.last_delta.shape == (3,)
