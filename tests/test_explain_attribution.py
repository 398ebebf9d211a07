"""Specifications shared by the gradient attribution methods (Saliency, SmoothGrad, Integrated
Gradients): what they take, what `explain` returns, and which arguments they refuse."""

from __future__ import annotations

import numpy as np
import pytest

from grader.explain.base import AttributionMethod
from grader.explain.integrated_gradients import IntegratedGradients
from grader.explain.saliency import Saliency
from grader.explain.smoothgrad import SmoothGrad
from grader.submission.inprocess import InProcessModel
from tests.explain_nets import build, faces, one_torch_thread  # noqa: F401 (fixture)


def explainers(model) -> list[AttributionMethod]:
    return [Saliency(model), SmoothGrad(model, samples=2), IntegratedGradients(model, steps=4)]


def test_every_method_is_an_attribution_method_that_takes_any_numeric_pixels_and_no_images():
    model = InProcessModel(build("functional_relu"))
    for explainer in explainers(model):
        assert isinstance(explainer, AttributionMethod)
        maps = explainer.attribute(faces(2).astype(np.float64), [1, 2])
        assert maps.dtype == np.float32 and maps.shape == (2, 48, 48)
        empty = explainer.attribute(np.zeros((0, 48, 48), np.float32), np.zeros(0, np.int64))
        assert empty.shape == (0, 48, 48)


def test_explain_returns_the_maps_with_the_faces_the_labels_and_the_methods_name():
    model = InProcessModel(build("functional_relu"))
    pixels = faces(2)
    for explainer in explainers(model):
        result = explainer.explain(pixels, [1, 2])
        assert result.method == explainer.name and result.layer is None
        np.testing.assert_array_equal(result.images, np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
        np.testing.assert_array_equal(result.labels, [1, 2])
        np.testing.assert_array_equal(result.maps, explainer.attribute(pixels, [1, 2]))


@pytest.mark.parametrize("pixels, targets", [
    (np.zeros((2, 44, 44)), [0, 1]),
    (np.zeros((2, 1, 48, 48)), [0, 1]),
    (np.zeros((48, 48)), [0]),
    (np.zeros((2, 48, 48)), [0]),
    (np.zeros((2, 48, 48)), [[0, 1]]),
    (np.zeros((2, 48, 48)), [0, 7]),
    (np.zeros((2, 48, 48)), [-1, 0]),
    (np.zeros((2, 48, 48)), [0.5, 1.0]),
])
def test_shape_and_target_mismatches_raise_value_error(pixels, targets):
    model = InProcessModel(build("functional_relu"))
    for explainer in explainers(model):
        with pytest.raises(ValueError):
            explainer.attribute(pixels, np.asarray(targets))


def test_bad_arguments_raise_value_error():
    model = InProcessModel(build("functional_relu"))
    with pytest.raises(ValueError, match="objective"):
        Saliency(model, objective="logit")
    with pytest.raises(ValueError, match="samples"):
        SmoothGrad(model, samples=0)
    with pytest.raises(ValueError, match="noise"):
        SmoothGrad(model, noise=-0.1)
    with pytest.raises(ValueError, match="method"):
        IntegratedGradients(model, method="simpson")
    with pytest.raises(ValueError, match="steps"):
        IntegratedGradients(model, steps=1, method="riemann_trapezoid")
    with pytest.raises(ValueError, match="batch_size"):
        Saliency(model, batch_size=0)
    with pytest.raises(ValueError, match="baseline"):
        IntegratedGradients(model, baseline=np.zeros((3, 48, 48))).attribute(faces(2), [0, 1])
    ig = IntegratedGradients(model)
    with pytest.raises(ValueError, match="attributions"):
        ig.convergence_delta(np.zeros((2, 44, 44)), faces(2), [0, 1])
