"""Specifications of grader.explain.registry and of what every method shares: each name maps to its
class and result type, building a method asks the model nothing, and listing the methods stays cheap."""

from __future__ import annotations

import subprocess
import sys
import typing

import numpy as np
import pytest

from grader.explain.base import AttributionMethod, Visualization
from grader.explain.registry import FREEFORM_METHODS, METHODS
from grader.protocol import ModelProtocol
from grader.submission.inprocess import InProcessModel
from grader.submission.spec import Freeform
from tests.conftest import ROOT
from tests.explain_nets import build, faces

HEAVY = ("torch", "lime", "skimage", "sklearn", "matplotlib")

CHEAP = {"smoothgrad": dict(samples=2), "integrated_gradients": dict(steps=2), "lime": dict(num_samples=20),
         "filters": dict(steps=1, max_channels=2), "class_model": dict(steps=1)}
"""Settings that make each method quick on a tiny model."""


class Untouchable(ModelProtocol):
    """A model that fails every request, `describe` included."""

    def _refuse(self, *args, **kwargs):
        raise AssertionError("the model was asked something")

    describe = logits = input_gradient = activations = layer_gradient = randomized = _refuse


def test_every_method_is_registered_under_its_classes_name():
    assert set(METHODS) == {"saliency", "smoothgrad", "integrated_gradients", "gradcam", "lime", "filters",
                            "class_model"}
    for name, info in METHODS.items():
        assert info.name == name == info.cls.name


def test_the_kind_says_which_base_a_method_has():
    for info in METHODS.values():
        base = AttributionMethod if info.kind == "attribution" else Visualization
        assert info.kind in ("attribution", "visualization") and issubclass(info.cls, base)


def test_submission_yaml_offers_exactly_the_registrys_free_form_methods():
    assert set(FREEFORM_METHODS) <= set(METHODS)
    assert typing.get_args(Freeform) == FREEFORM_METHODS


@pytest.mark.parametrize("name", list(METHODS))
def test_building_a_method_asks_the_model_nothing(name):
    METHODS[name].cls(Untouchable())


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_returns_its_registered_result_type(name):
    info = METHODS[name]
    method = info.cls(InProcessModel(build("functional_relu")), **CHEAP.get(name, {}))
    pixels = faces(2)
    if name == "filters":
        result = method.visualize(pixels[0])
    elif name == "class_model":
        result = method.visualize()
    else:
        result = method.explain(pixels, np.array([1, 2]))
    assert type(result) is info.result_type and result.method == name


def test_importing_the_registry_imports_no_heavy_library():
    code = ("import sys, grader.explain.registry; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=ROOT).stdout.strip()
    assert loaded == ""
