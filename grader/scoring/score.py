"""Turning measurements into points, question by question, as the rubric says; then the TA's
manual scores and overrides on top."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from grader.result import CriterionResult, QuestionResult, RegradeNote
from grader.scoring.manual import ManualScore
from grader.scoring.manual_merge import AWAITING, with_manual
from grader.scoring.measurements import Measurements
from grader.scoring.metrics import METRICS, MetricUnavailable, ScoredQuestion
from grader.scoring.rubric import Criterion, ExplanationGate, Rubric
from grader.scoring.uncertainty import estimate


def score(rubric: Rubric, measured: Measurements, manual: Mapping[str, ManualScore] | None = None,
          regrades: Mapping[str, Sequence[RegradeNote]] | None = None) -> list[QuestionResult]:
    """Every question's criteria scored. `manual` (by criterion id) gives the TA's points: for a
    manual criterion its score, for an automatic one an override; manual criteria without one
    stay None (pending)."""
    manual, regrades = manual or {}, regrades or {}
    closed = _gate_closed(rubric.explanation_gate, measured)
    questions = []
    for question in rubric.questions:
        scored = ScoredQuestion(id=question.id, method=question.method)
        criteria = [with_manual(_gated(_score_criterion(criterion, scored, measured), criterion, closed),
                                manual.get(criterion.id), regrades.get(criterion.id, ()))
                    for criterion in question.criteria]
        questions.append(QuestionResult(
            id=question.id, title=question.title, max_score=question.points, criteria=criteria,
            score=sum(c.score or 0.0 for c in criteria)))
    return questions


def _score_criterion(criterion: Criterion, question: ScoredQuestion, measured: Measurements) -> CriterionResult:
    common = dict(id=criterion.id, description=criterion.description, max_score=criterion.points,
                  manual=criterion.manual)
    if criterion.manual:
        return CriterionResult(score=None, message=AWAITING, **common)
    assert criterion.metric is not None
    metric = METRICS[criterion.metric]
    try:
        computed = metric.compute(measured, question)
    except MetricUnavailable as reason:
        return CriterionResult(score=0.0, threshold=criterion.describe_bands(), message=str(reason), **common)
    value, interval = estimate(computed)
    points, borderline = criterion.points_within(value, interval)
    return CriterionResult(score=points, value=value, interval=interval, borderline=borderline,
                           threshold=criterion.describe_bands(), message=metric.description, **common)



def _gate_closed(gate: ExplanationGate | None, measured: Measurements) -> str | None:
    """Why explanation criteria score nothing (the model is below the rubric's gate), or None."""
    if gate is None:
        return None
    try:
        value = estimate(METRICS[gate.metric].compute(measured, ScoredQuestion(id="gate")))[0]
    except MetricUnavailable as reason:
        return f"no explanation points: the gate's {gate.metric} is unknown ({reason})"
    if value >= gate.min:
        return None
    return (f"no explanation points: the model's {gate.metric} is {value:.3f}, below the {gate.min:g} this rubric "
            f"requires before explanations earn points ({gate.description or 'rubric.yaml: explanation_gate'}); "
            "the explanations of a model that has learned hardly any expression explain nothing")


def _gated(result: CriterionResult, criterion: Criterion, closed: str | None) -> CriterionResult:
    """An automatic explanation criterion's points withheld while the gate is closed (value kept)."""
    if closed is None or criterion.manual or not METRICS[criterion.metric or ""].explains:
        return result
    return result.model_copy(update={"score": 0.0, "borderline": False, "message": closed})
