"""The TA's scores merged into scored questions, and taken out again: so that a result already
graded can take new TA scores (or lose old ones) without its model running again. Merging is
idempotent: `merged(merged(q, a), b) == merged(q, b)`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from grader.result import CriterionResult, QuestionResult, RegradeNote
from grader.scoring.manual import ManualScore

AWAITING = "awaiting the TA's score"


def with_manual(result: CriterionResult, given: ManualScore | None,
                regrades: Sequence[RegradeNote] = ()) -> CriterionResult:
    """The criterion with the TA's points: a manual criterion's score, or an override of an automatic
    one (its automatic points kept in auto_score); and the student's regrade requests on it."""
    if regrades:
        result = result.model_copy(update={"regrades": list(regrades)})
    if given is None:
        return result
    if result.manual:
        return result.model_copy(update={"score": given.points, "comment": given.comment, "message": ""})
    return result.model_copy(update={"score": given.points, "comment": given.comment, "overridden": True,
                                     "auto_score": result.score})


def without_manual(result: CriterionResult) -> CriterionResult:
    """The criterion as the automatic scoring left it: a manual one pending, an override undone."""
    if result.manual:
        return result.model_copy(update={"score": None, "comment": "", "message": AWAITING, "regrades": []})
    if result.overridden:
        return result.model_copy(update={"score": result.auto_score, "comment": "", "overridden": False,
                                         "auto_score": None, "regrades": []})
    return result.model_copy(update={"regrades": []}) if result.regrades else result


def merged(questions: Sequence[QuestionResult], manual: Mapping[str, ManualScore],
           regrades: Mapping[str, Sequence[RegradeNote]] | None = None) -> list[QuestionResult]:
    """The questions with exactly the TA's scores in `manual` and the regrade requests in `regrades`
    (both by criterion id), earlier ones replaced."""
    regrades = regrades or {}
    out = []
    for question in questions:
        criteria = [with_manual(without_manual(c), manual.get(c.id), regrades.get(c.id, ()))
                    for c in question.criteria]
        out.append(question.model_copy(update={"criteria": criteria, "score": sum(c.score or 0.0 for c in criteria)}))
    return out
