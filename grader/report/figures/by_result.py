"""Which figures each result type draws: the one place report/ goes from a question's typed result
to its figures (figures/<name>.png)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from matplotlib.figure import Figure

from grader.classes import Language
from grader.explain.results import AttributionMaps, ClassImages, FilterPatterns, LimeExplanations
from grader.questions.output import QuestionOutput
from grader.report.figures.attribution import attribution_figure
from grader.report.figures.class_model import class_model_figure
from grader.report.figures.filters import filter_outputs_figure, filter_patterns_figure
from grader.report.figures.lime import lime_figure
from grader.report.figures.randomization import CAPTION as RANDOMIZATION_CAPTION
from grader.report.figures.randomization import randomization_figure
from grader.scoring.measurements import Probes

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


def probe_figures(probes: Probes, outputs: Mapping[str, QuestionOutput],
                  language: Language = "en") -> dict[str, tuple[str, str, FigureDrawer]]:
    """The figures of the probes, by file name: (the question it goes under, its caption, its drawer).
    The cascading randomization goes under the question whose maps it re-drew (Q1)."""
    cascade = probes.cascade
    output = outputs.get(cascade.question) if cascade is not None else None
    if cascade is None or output is None or not isinstance(output.result, AttributionMaps) \
            or not len(cascade.randomized_layers):
        return {}
    result = output.result
    return {"randomization": (cascade.question, RANDOMIZATION_CAPTION[language],
                              lambda: randomization_figure(cascade, result, language))}
