"""Turning measurements into points, question by question, as the rubric says."""

from __future__ import annotations

from grader.result import CriterionResult, QuestionResult
from grader.scoring.metrics import METRICS, Measurements, MetricUnavailable
from grader.scoring.rubric import Criterion, Rubric


def score(rubric: Rubric, measured: Measurements) -> list[QuestionResult]:
    """Every question's criteria scored; manual criteria stay None until the TA's scores are merged."""
    questions = []
    for question in rubric.questions:
        criteria = [_score_criterion(criterion, measured) for criterion in question.criteria]
        questions.append(QuestionResult(
            id=question.id, title=question.title, max_score=question.points, criteria=criteria,
            score=sum(c.score or 0.0 for c in criteria)))
    return questions


def _score_criterion(criterion: Criterion, measured: Measurements) -> CriterionResult:
    common = dict(id=criterion.id, description=criterion.description, max_score=criterion.points,
                  manual=criterion.manual)
    if criterion.manual:
        return CriterionResult(score=None, message="awaiting the TA's score", **common)
    assert criterion.metric is not None
    metric = METRICS[criterion.metric]
    try:
        value = float(metric.compute(measured))
    except MetricUnavailable as reason:
        return CriterionResult(score=0.0, threshold=criterion.describe_bands(), message=str(reason), **common)
    return CriterionResult(score=criterion.points_for(value), value=value, threshold=criterion.describe_bands(),
                           message=metric.description, **common)
