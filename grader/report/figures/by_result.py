"""Which figures each result type draws: the one place report/ goes from a question's typed result
to its figures (figures/<name>.png)."""

from __future__ import annotations

from collections.abc import Callable

from matplotlib.figure import Figure

from grader.classes import Language
from grader.explain.results import AttributionMaps, ClassImages, FilterPatterns, LimeExplanations
from grader.questions.output import QuestionOutput
from grader.report.figures.attribution import attribution_figure
from grader.report.figures.class_model import class_model_figure
from grader.report.figures.filters import filter_outputs_figure, filter_patterns_figure
from grader.report.figures.lime import lime_figure

FigureDrawer = Callable[[], Figure]


def question_figures(output: QuestionOutput, language: Language = "en") -> dict[str, FigureDrawer]:
    """The figures of one question's output, by file name (without .png), each drawn when called, so
    that one figure that cannot be drawn leaves the others."""
    result = output.result
    if isinstance(result, FilterPatterns):
        return {output.name: lambda: filter_patterns_figure(result.patterns, result.layer, result.activation_gain),
                "filter_outputs": lambda: filter_outputs_figure(result.outputs, result.layer)}
    if isinstance(result, AttributionMaps):
        return {output.name: lambda: attribution_figure(result, language)}
    if isinstance(result, LimeExplanations):
        return {output.name: lambda: lime_figure(result, language)}
    if isinstance(result, ClassImages):
        return {output.name: lambda: class_model_figure(result, language)}
    raise TypeError(f"no figure is known for {type(result).__name__}")
