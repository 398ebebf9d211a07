"""Specifications of grader.explain.smoothgrad: the mean saliency over the documented noise, checked
against Captum's Saliency on the same noisy copies and its NoiseTunnel without noise."""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import NoiseTunnel
from captum.attr import Saliency as CaptumSaliency

from grader.explain.saliency import Saliency
from grader.explain.smoothgrad import SmoothGrad
from grader.submission.inprocess import InProcessModel
from tests.explain_nets import LABELS, as_tensor, build, captum_saliency, close, faces, not_trivial
from tests.explain_nets import module, one_torch_thread  # noqa: F401 (fixtures)
from tests.recording import RecordingModel


def test_smoothgrad_without_noise_is_saliency(module):
    pixels, model = faces(), InProcessModel(module)
    for objective in ("cross_entropy", "class_logit"):
        smooth = SmoothGrad(model, samples=4, noise=0.0, objective=objective).attribute(pixels, LABELS)
        # Equal up to float rounding: the 4 x 3 copies go as one batch of 12, Saliency's as one of 3.
        close(smooth, Saliency(model, objective=objective).attribute(pixels, LABELS))


def test_smoothgrad_is_the_mean_saliency_over_the_documented_noise(module):
    pixels, samples, noise, seed = faces(), 5, 0.15, 7
    maps = SmoothGrad(InProcessModel(module), samples=samples, noise=noise, seed=seed).attribute(pixels, LABELS)

    rng = np.random.default_rng(seed)  # the recipe in SmoothGrad's docstring, written out
    eps = rng.standard_normal((samples, 3, 48, 48), dtype=np.float32)
    sigma = (noise * (pixels.max(axis=(1, 2)) - pixels.min(axis=(1, 2)))).astype(np.float32)
    noisy = pixels[None] + eps * sigma[None, :, None, None]
    expected = np.mean([captum_saliency(module, copy, LABELS, "cross_entropy") for copy in noisy], axis=0)

    assert maps.dtype == np.float32 and maps.shape == (3, 48, 48)
    not_trivial(maps)
    close(maps, expected)
    assert not np.allclose(maps, Saliency(InProcessModel(module)).attribute(pixels, LABELS), rtol=1e-3)


def test_smoothgrad_is_reproducible_per_seed(module):
    pixels, model = faces(), InProcessModel(module)
    first = SmoothGrad(model, samples=3, seed=1).attribute(pixels, LABELS)

    np.testing.assert_array_equal(SmoothGrad(model, samples=3, seed=1).attribute(pixels, LABELS), first)
    assert not np.allclose(SmoothGrad(model, samples=3, seed=2).attribute(pixels, LABELS), first, rtol=1e-3)


def test_smoothgrad_matches_captums_noise_tunnel_over_the_same_noise():
    """Captum's NoiseTunnel draws its own torch noise; with a fixed stdev per image and the noise fed in by hand
    both reduce to the mean absolute gradient, checked here with Captum's class-logit Saliency."""
    module = build("residual")
    pixels, samples = faces(), 4
    smooth = SmoothGrad(InProcessModel(module), samples=samples, objective="class_logit")
    noisy = smooth.noisy_copies(pixels)
    expected = np.mean([captum_saliency(module, copy, LABELS, "class_logit") for copy in noisy], axis=0)
    close(smooth.attribute(pixels, LABELS), expected)

    # And Captum's own tunnel without noise gives the same as ours without noise.
    tunnel = NoiseTunnel(CaptumSaliency(module)).attribute(
        as_tensor(pixels).requires_grad_(True), nt_type="smoothgrad", nt_samples=3, stdevs=0.0,
        target=torch.tensor(LABELS), abs=True)
    close(SmoothGrad(InProcessModel(module), samples=3, noise=0.0, objective="class_logit").attribute(pixels, LABELS),
          tunnel.squeeze(1).numpy())


def test_smoothgrad_sends_all_noisy_copies_in_one_request_or_bounded_ones():
    model = RecordingModel(InProcessModel(build("shared_relu")))
    pixels = faces()
    whole = SmoothGrad(model, samples=6).attribute(pixels, LABELS)
    assert model.sizes("input_gradient") == [18]

    model.requests.clear()
    split = SmoothGrad(model, samples=6, batch_size=7).attribute(pixels, LABELS)
    assert model.sizes("input_gradient") == [7, 7, 4]
    close(split, whole)


def test_smoothgrad_gives_a_flat_image_no_noise():
    model = InProcessModel(build("leaky_relu"))
    flat = np.full((1, 48, 48), 100.0, np.float32)
    smooth = SmoothGrad(model, samples=3, noise=0.2)
    np.testing.assert_array_equal(smooth.noisy_copies(flat), np.repeat(flat[None], 3, axis=0))
