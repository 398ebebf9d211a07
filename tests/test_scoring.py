"""rubric.yaml validation (errors name line and field) and turning measured values into points."""

import textwrap
from pathlib import Path

import numpy as np
import pytest

from grader.evaluate import evaluate
from grader.scoring.measurements import Measurements
from grader.scoring.metrics import METRICS, ScoredQuestion
from grader.scoring.rubric import load_rubric
from grader.scoring.score import score
from grader.yamlfile import ConfigError

VALID = """\
questions:
  - id: q1
    title: Accuracy
    points: 3
    criteria:
      - id: q1_accuracy
        metric: accuracy
        points: 2
        bands:
          - {min: 0.8, points: 2}
          - {min: 0.6, points: 1}
      - id: q1_answer
        manual: true
        points: 1
"""


def write(tmp_path, text: str):
    path = tmp_path / "rubric.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_rubric(write(tmp_path, text))
    return caught.value.problems


def test_the_default_rubric_is_valid_and_worth_ten_points():
    rubric = load_rubric("rubric.yaml")
    assert [q.id for q in rubric.questions] == ["q1", "q2", "q3", "q4"]
    assert [q.points for q in rubric.questions] == [2, 3, 3, 2]
    assert rubric.max_score == 10


def test_criteria_that_do_not_add_up_name_the_question_and_its_line(tmp_path):
    found = problems(tmp_path, VALID.replace("points: 3", "points: 4"))
    assert found == [f"{tmp_path / 'rubric.yaml'}:2: questions.0: its criteria add up to 3 points "
                     "but the question is worth 4"]


def test_an_unknown_metric_is_named_with_its_line(tmp_path):
    found = problems(tmp_path, VALID.replace("metric: accuracy", "metric: acuracy"))
    assert len(found) == 1
    assert ":6: questions.0.criteria.0: unknown metric 'acuracy'" in found[0]
    assert "accuracy" in found[0].split("choose one of")[1]


def test_a_band_worth_more_than_its_criterion_is_refused(tmp_path):
    found = problems(tmp_path, VALID.replace("{min: 0.8, points: 2}", "{min: 0.8, points: 5}"))
    assert "a band gives 5 points but the criterion is worth 2" in found[0]


def test_a_band_needs_exactly_one_bound(tmp_path):
    found = problems(tmp_path, VALID.replace("{min: 0.6, points: 1}", "{min: 0.6, max: 0.9, points: 1}"))
    assert ":11: questions.0.criteria.0.bands.1: a band needs exactly one of min" in found[0]


def test_a_manual_criterion_with_a_metric_is_refused(tmp_path):
    found = problems(tmp_path, VALID.replace("manual: true", "manual: true\n        metric: accuracy"))
    assert "a manual criterion is scored by the TA" in found[0]


def test_an_automatic_criterion_without_bands_is_refused(tmp_path):
    text = VALID.replace("""        bands:
          - {min: 0.8, points: 2}
          - {min: 0.6, points: 1}
""", "")
    assert "needs a metric and at least one band" in problems(tmp_path, text)[0]


def test_duplicate_ids_are_refused(tmp_path):
    found = problems(tmp_path, VALID.replace("id: q1_answer", "id: q1_accuracy"))
    assert "the id 'q1_accuracy' is used twice" in found[0]


def test_a_misspelled_field_is_named(tmp_path):
    found = problems(tmp_path, VALID.replace("    title: Accuracy", "    titel: Accuracy"))
    assert any(":3: questions.0.titel: unknown field" in p for p in found)
    assert any("questions.0.title: missing" in p for p in found)


def test_broken_yaml_reports_its_line(tmp_path):
    found = problems(tmp_path, VALID.replace("    points: 3", "    points: [3"))
    assert len(found) == 1 and "not valid YAML" in found[0]


def measured(accuracy_target: float) -> Measurements:
    """An evaluation of 100 faces where the first `accuracy_target` share is right."""
    labels = np.arange(100) % 7
    predictions = labels.copy()
    wrong = int(round(100 * (1 - accuracy_target)))
    predictions[:wrong] = (labels[:wrong] + 1) % 7
    logits = np.eye(7)[predictions]
    return Measurements(evaluation=evaluate(logits, labels))


@pytest.mark.parametrize(("accuracy", "points"), [(0.9, 2), (0.8, 2), (0.7, 1), (0.6, 1), (0.5, 0)])
def test_the_best_band_reached_gives_the_points(tmp_path, accuracy, points):
    criterion = load_rubric(write(tmp_path, VALID)).questions[0].criteria[0]
    assert criterion.points_for(accuracy) == points


@pytest.mark.parametrize(("accuracy", "points", "borderline"),
                         [(0.95, 2, False), (0.7, 1, False), (0.8, 1, True), (0.6, 0, True), (0.4, 0, False)])
def test_a_band_is_awarded_only_when_the_whole_interval_clears_it(tmp_path, accuracy, points, borderline):
    """100 faces: the accuracy's 95% bootstrap interval is about +-0.08 wide (0.72-0.88 at 0.8)."""
    rubric = load_rubric(write(tmp_path, VALID))
    question = score(rubric, measured(accuracy))[0]
    criterion = question.criteria[0]
    assert criterion.value == pytest.approx(accuracy)
    low, high = criterion.interval
    assert low < accuracy < high or accuracy in (low, high)
    assert (criterion.score, criterion.borderline) == (points, borderline)
    assert question.score == points


def test_two_scorings_give_the_same_interval_to_the_last_bit(tmp_path):
    rubric = load_rubric(write(tmp_path, VALID))
    first, second = (score(rubric, measured(0.8))[0].criteria[0].interval for _ in range(2))
    assert first == second


def test_manual_criteria_wait_for_the_ta(tmp_path):
    question = score(load_rubric(write(tmp_path, VALID)), measured(0.9))[0]
    manual = question.criteria[1]
    assert manual.manual and manual.score is None and question.pending_manual


def test_a_metric_without_its_input_scores_zero_with_the_reason(tmp_path):
    criterion = score(load_rubric(write(tmp_path, VALID)), Measurements())[0].criteria[0]
    assert criterion.score == 0 and criterion.value is None
    assert "could not be evaluated" in criterion.message


def test_class_metrics_read_the_confusion_matrix():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predictions = np.array([0, 0, 1, 0, 2, 2])
    evaluation = Measurements(evaluation=evaluate(np.eye(7)[predictions], labels))
    assert METRICS["min_class_recall"].value(evaluation, ScoredQuestion("q3")) == pytest.approx(0.5)
    assert METRICS["balanced_accuracy"].value(evaluation, ScoredQuestion("q3")) == pytest.approx((1 + 0.5 + 1) / 3)


def test_the_default_rubric_ships_inside_the_package_and_is_the_repositorys():
    from grader.scoring.rubric import default_rubric_path

    shipped = default_rubric_path()
    assert shipped.parent.name == "grader" and shipped.is_file()
    assert shipped.read_bytes() == (Path(__file__).resolve().parents[1] / "rubric.yaml").read_bytes()


GATED = """\
explanation_gate:
  metric: balanced_accuracy
  min: 0.3
  description: the model has learned expressions (twice chance)
questions:
  - id: q1
    title: Saliency maps
    method: saliency
    points: 2
    criteria:
      - id: q1_accuracy
        metric: accuracy
        points: 1
        bands:
          - {min: 0.05, points: 1}
      - id: q1_complete
        metric: saliency_completeness
        points: 1
        bands:
          - {min: 1.0, points: 1}
"""


def with_maps(predictions: np.ndarray, labels: np.ndarray) -> Measurements:
    """Measured: an evaluation with these predictions, and seven informative saliency maps."""
    from grader.explain.results import AttributionMaps
    from grader.questions.output import QuestionOutput

    maps = np.random.default_rng(0).random((7, 48, 48)).astype(np.float32)
    faces = np.zeros((7, 48, 48), np.uint8)
    output = QuestionOutput("q1", "saliency", AttributionMaps("saliency", faces, np.arange(7), maps))
    return Measurements(evaluation=evaluate(np.eye(7)[predictions], labels), outputs={"q1": output})


def test_a_model_below_the_gate_earns_no_explanation_points_but_keeps_its_accuracy_points(tmp_path):
    labels = np.arange(140) % 7
    one_class = np.full(140, 3)  # "Happy" for every face: balanced accuracy 1/7
    criteria = score(load_rubric(write(tmp_path, GATED)), with_maps(one_class, labels))[0].criteria
    accuracy, complete = criteria
    assert accuracy.score == 1
    assert complete.score == 0 and complete.value == pytest.approx(1.0)
    assert "balanced_accuracy is 0.143, below the 0.3" in complete.message


def test_a_model_above_the_gate_earns_its_explanation_points(tmp_path):
    labels = np.arange(140) % 7
    criteria = score(load_rubric(write(tmp_path, GATED)), with_maps(labels.copy(), labels))[0].criteria
    assert [c.score for c in criteria] == [1, 1]


def test_the_gate_must_measure_the_model_not_an_explanation(tmp_path):
    found = problems(tmp_path, GATED.replace("metric: balanced_accuracy", "metric: saliency_completeness", 1))
    assert any("explanation_gate.metric" in p and "needs a metric of the model" in p for p in found)
