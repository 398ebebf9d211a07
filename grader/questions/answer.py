"""Running one question: the method the rubric names for it (or, for `freeform`, the one the
student chose in submission.yaml) on the context's faces, as a typed result."""

from __future__ import annotations

from grader.explain.results import AttributionMaps, LimeExplanations
from grader.questions.context import QuestionContext
from grader.questions.methods import RUNS
from grader.questions.output import FREEFORM, QuestionOutput


def answer_question(question: str, method: str, context: QuestionContext) -> QuestionOutput:
    """Run `method` (a registry name, or FREEFORM) for `question` on one face per class."""
    name = context.freeform if method == FREEFORM else method
    result = RUNS[name](context)
    shows_examples = isinstance(result, (AttributionMaps, LimeExplanations))
    return QuestionOutput(question=question, name=name, result=result,
                          notes=context.examples.notes if shows_examples else ())
