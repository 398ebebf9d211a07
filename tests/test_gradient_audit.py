"""Specifications of grader.submission.gradient_audit: the gradients a model returns are checked
against its own outputs; honest models pass, models that fake their gradients do not."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from grader.data.synth import generate
from grader.explain.class_model import ClassModelVisualization
from grader.explain.filters import FilterVisualization
from grader.explain.gradcam import GradCAM
from grader.explain.integrated_gradients import IntegratedGradients
from grader.explain.saliency import Saliency
from grader.explain.smoothgrad import SmoothGrad
from grader.protocol import ClassLogit
from grader.scoring.measurements import Measurements
from grader.scoring.metrics import MetricUnavailable, ScoredQuestion, completeness, saliency_localization
from grader.submission.build import build_model
from grader.submission.errors import SubmissionError
from grader.submission.gradient_audit import AuditedModel, GradientAudit, GradientCheckSettings
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from grader.submission.spec import load_spec
from tests.conftest import EXAMPLES
from tests.faked_gradients import write_fake

EVERY_REQUEST = replace(GradientCheckSettings(), always_first=10**6)


@pytest.fixture(scope="module")
def faces():
    return generate(16, seed=3)


def open_folder(folder, dtype: str = "float32") -> InProcessModel:
    spec = load_spec(folder)
    return InProcessModel(SubmissionModule(build_model(folder, spec), spec.input), dtype=dtype)


def audited(folder, settings: GradientCheckSettings = EVERY_REQUEST, dtype: str = "float32"):
    audit = GradientAudit(settings, seed=1)
    return AuditedModel(open_folder(folder, dtype), audit), audit


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    root = tmp_path_factory.mktemp("fakes")
    return {kind: write_fake(root / kind, kind) for kind in
            ("template_bump", "grad_mode_switch", "randomization_detector", "nan_gradients")}


def run_every_method(model: AuditedModel, audit: GradientAudit, faces) -> None:
    images, labels = faces.images[:7].astype(np.float32), faces.labels[:7]
    runs = {"saliency": lambda: Saliency(model).attribute(images, labels),
            "smoothgrad": lambda: SmoothGrad(model, samples=3).attribute(images, labels),
            "integrated_gradients": lambda: IntegratedGradients(model, steps=4).attribute(images, labels),
            "filters": lambda: FilterVisualization(model, max_channels=4, steps=3).visualize(images[0]),
            "class_model": lambda: ClassModelVisualization(model, steps=3).visualize(),
            "gradcam": lambda: GradCAM(model).attribute(images, labels)}
    for name, run in runs.items():
        with audit.within(name):
            run()
    with audit.within("randomized"), model.randomized(seed=0, top_layers=10**6) as copy:
        Saliency(copy).attribute(images, labels)


@pytest.mark.parametrize("example", ["small_cnn", "lightning_ckpt", "torchscript", "residual_zh"])
def test_honest_examples_pass_every_check(example, faces):
    model, audit = audited(EXAMPLES / example)
    run_every_method(model, audit, faces)
    summaries = audit.summaries()
    assert {s.context for s in summaries} == {"saliency", "smoothgrad", "integrated_gradients", "filters",
                                             "class_model", "gradcam", "randomized"}
    assert all(s.passed for s in summaries), [s for s in summaries if not s.passed]
    assert max(s.worst_error for s in summaries) < 0.2


def test_a_template_added_to_the_gradient_fails_the_direction_check(fakes, faces):
    model, audit = audited(fakes["template_bump"])
    with audit.within("q1"):
        Saliency(model).attribute(faces.images[:7].astype(np.float32), faces.labels[:7])
    summary = audit.summary("q1")
    assert not summary.passed and summary.worst_error > 0.9
    assert summary.worst_value_gap < 1e-5  # the values are honest: only the gradient lies


def test_a_different_function_under_gradients_fails_the_value_check(fakes, faces):
    model, audit = audited(fakes["grad_mode_switch"])
    with audit.within("q1"):
        Saliency(model).attribute(faces.images[:7].astype(np.float32), faces.labels[:7])
    assert audit.summary("q1").worst_value_gap > 1e-2 and not audit.summary("q1").passed


def test_noise_on_the_randomized_copy_fails_there_and_only_there(fakes, faces):
    model, audit = audited(fakes["randomization_detector"])
    images, labels = faces.images[:7].astype(np.float32), faces.labels[:7]
    with audit.within("q1"):
        Saliency(model).attribute(images, labels)
    with audit.within("probes"), model.randomized(seed=0, top_layers=10**6) as copy:
        Saliency(copy).attribute(images, labels)
    assert audit.summary("q1").passed
    assert not audit.summary("probes").passed


def test_nan_gradients_are_an_error_that_says_so(fakes, faces):
    model, _ = audited(fakes["nan_gradients"])
    with pytest.raises(SubmissionError, match="input gradient is NaN or Inf for 7 of 7 faces"):
        Saliency(model).attribute(faces.images[:7].astype(np.float32), faces.labels[:7])


def test_the_fast_profile_checks_values_only_and_passes_honest_models(faces):
    settings = replace(GradientCheckSettings.for_dtype("bfloat16"), always_first=10**6)
    model, audit = audited(EXAMPLES / "small_cnn", settings, dtype="bfloat16")
    run_every_method(model, audit, faces)
    assert all(s.passed for s in audit.summaries())
    assert max(s.worst_error for s in audit.summaries()) == 0.0


def test_the_fast_profile_still_catches_a_different_function_under_gradients(fakes, faces):
    settings = replace(GradientCheckSettings.for_dtype("bfloat16"), always_first=10**6)
    model, audit = audited(fakes["grad_mode_switch"], settings, dtype="bfloat16")
    with audit.within("q1"):
        Saliency(model).attribute(faces.images[:7].astype(np.float32), faces.labels[:7])
    assert not audit.summary("q1").passed


def test_after_the_first_requests_a_sample_is_checked(faces):
    settings = replace(GradientCheckSettings(), always_first=2, probability=0.25)
    model, audit = audited(EXAMPLES / "small_cnn", settings)
    pixels = faces.images[:2].astype(np.float32)
    for _ in range(40):
        model.input_gradient(pixels, ClassLogit(classes=np.array([0, 1])))
    assert 2 + 3 <= len(audit.checks) <= 2 + 20


def test_the_same_seed_checks_the_same_requests_and_rows(faces):
    settings = replace(GradientCheckSettings(), always_first=1, probability=0.3, rows=2)

    def checked() -> list[tuple[int, float]]:
        model, audit = audited(EXAMPLES / "small_cnn", settings)
        for _ in range(10):
            model.input_gradient(faces.images[:5].astype(np.float32), ClassLogit(classes=np.arange(5)))
        return [(c.rows, c.error) for c in audit.checks]

    assert checked() == checked()


def test_a_failed_check_zeroes_the_question_with_the_reason(fakes, faces):
    model, audit = audited(fakes["template_bump"])
    with audit.within("q1"):
        Saliency(model).attribute(faces.images[:7].astype(np.float32), faces.labels[:7])
    measured = Measurements(gradient_checks={"q1": audit.summary("q1")})
    with pytest.raises(MetricUnavailable, match="gradients do not match its own outputs"):
        saliency_localization(measured, ScoredQuestion("q1", "saliency"))
    with pytest.raises(MetricUnavailable, match="gradients do not match"):
        completeness(measured, ScoredQuestion("q1", "saliency"))


def test_an_equalizing_model_passes_every_check(faces):
    """equalize: true has a true gradient (grader/submission/equalize.py), on the integer faces of
    saliency and on the real-valued ones of SmoothGrad, Integrated Gradients and the ascents."""
    folder = EXAMPLES / "small_cnn"
    spec = load_spec(folder)
    module = SubmissionModule(build_model(folder, spec), spec.input.model_copy(update={"equalize": True}))
    audit = GradientAudit(EVERY_REQUEST, seed=1)
    model = AuditedModel(InProcessModel(module), audit)

    run_every_method(model, audit, faces)

    failed = [s for s in audit.summaries() if not s.passed]
    assert not failed, failed
