"""The questions layer: every registered method can be run by a question, the free choice runs the
student's method under its own name, and a question's stage is named from the rubric."""

from __future__ import annotations

import numpy as np
import pytest

from grader.data.synth import generate
from grader.evaluate import evaluate
from grader.explain.registry import FREEFORM_METHODS, METHODS
from grader.explain.results import AttributionMaps, ClassImages, FilterPatterns, LimeExplanations
from grader.pipeline.setup import load_setup
from grader.pipeline.stages import stage_names
from grader.questions.answer import answer_question
from grader.questions.context import QuestionContext
from grader.questions.examples import ClassExamples
from grader.questions.methods import RUNS
from grader.questions.output import FREEFORM
from grader.questions.settings import TaskSettings
from grader.scoring.rubric import load_rubric
from grader.submission.build import build_model
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from grader.submission.spec import Freeform, load_spec
from grader.yamlfile import ConfigError
from tests.conftest import EXAMPLES, ROOT

TINY = TaskSettings(lime_samples=20, filter_steps=2, max_channels=4, class_model_steps=2)


@pytest.fixture(scope="module")
def context() -> QuestionContext:
    folder = EXAMPLES / "small_cnn"
    spec = load_spec(folder)
    model = InProcessModel(SubmissionModule(build_model(folder, spec), spec.input))
    faces = generate(70, seed=5)
    evaluation = evaluate(model.logits(faces.images.astype(np.float32)), faces.labels)
    return QuestionContext(model=model, faces=faces, examples=ClassExamples.choose(evaluation), settings=TINY)


def test_every_registered_method_has_a_run_and_nothing_else_does():
    assert set(RUNS) == set(METHODS)


def test_the_free_choices_of_the_registry_are_the_ones_submission_yaml_accepts():
    from typing import get_args

    assert set(FREEFORM_METHODS) == set(get_args(Freeform))
    assert set(FREEFORM_METHODS) <= set(METHODS)


@pytest.mark.parametrize("method, kind", [("saliency", AttributionMaps), ("smoothgrad", AttributionMaps),
                                          ("integrated_gradients", AttributionMaps), ("gradcam", AttributionMaps),
                                          ("lime", LimeExplanations), ("filters", FilterPatterns),
                                          ("class_model", ClassImages)])
def test_each_method_returns_its_typed_result_under_its_name(context, method, kind):
    output = answer_question("q9", method, context)
    assert isinstance(output.result, kind) and isinstance(output.result, METHODS[method].result_type)
    assert output.question == "q9" and output.name == method


def test_the_free_choice_runs_the_students_method_under_that_methods_name(context):
    from dataclasses import replace

    output = answer_question("q4", FREEFORM, replace(context, freeform="gradcam"))
    assert output.name == "gradcam" and output.result.method == "gradcam" and output.result.layer


def test_only_questions_that_show_the_example_faces_carry_their_notes(context):
    from dataclasses import replace

    noted = replace(context, examples=ClassExamples(context.examples.indices, ("a note",)))
    assert answer_question("q1", "saliency", noted).notes == ("a note",)
    assert answer_question("q2", "filters", noted).notes == ()


def test_stage_names_come_from_the_rubrics_questions_and_methods():
    assert stage_names(load_rubric(ROOT / "rubric.yaml")) == [
        "snapshot", "spec", "load", "checks", "evaluate", "q1_saliency", "q2_filters", "q3_lime", "q4_freeform",
        "probes", "fingerprint", "report"]


def test_a_rubric_naming_an_unknown_method_is_refused_with_the_choices(tmp_path):
    text = (ROOT / "rubric.yaml").read_text().replace("method: lime", "method: shap", 1)
    (tmp_path / "rubric.yaml").write_text(text)
    with pytest.raises(ConfigError, match="unknown method 'shap': choose one of .*class_model.*freeform"):
        load_rubric(tmp_path / "rubric.yaml")


def test_a_question_without_a_method_runs_no_stage(tmp_path):
    text = (ROOT / "rubric.yaml").read_text().replace("    method: filters\n", "", 1)
    (tmp_path / "rubric.yaml").write_text(text)
    assert "q2_filters" not in stage_names(load_rubric(tmp_path / "rubric.yaml"))


def test_loading_the_rubric_imports_no_figure_no_lime_and_no_torch():
    import subprocess
    import sys

    code = ("import sys; from grader.scoring.rubric import load_rubric; load_rubric('rubric.yaml'); "
            "print(sorted(m for m in ('matplotlib', 'lime', 'skimage', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_setup_names_the_file_it_cannot_use(tmp_path):
    from grader.pipeline.setup import SetupError

    (tmp_path / "rubric.yaml").write_text("questions: []\n")
    with pytest.raises(SetupError, match="the rubric cannot be used") as caught:
        load_setup(generate(14, seed=1), tmp_path / "rubric.yaml", tmp_path / "out")
    assert caught.value.what == "rubric"
    with pytest.raises(SetupError, match="unknown profile 'tpu'"):
        load_setup(generate(14, seed=1), ROOT / "rubric.yaml", tmp_path / "out", profile="tpu")
