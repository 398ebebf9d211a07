"""The metric registry: each metric is a small function of what grading measured, documented with
what it measures and where it comes from. rubric.yaml names metrics by their registry name.

Conventions: a metric returns one float; higher is better unless its description says "low is
good" (the rubric then uses `max` bands). A metric whose input was not produced (its task
failed) raises MetricUnavailable, which scores 0 with the reason, except completeness, which
is exactly the share of what was produced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from grader.evaluate import Evaluation
from grader.result import GradientCheckSummary
from grader.scoring.measures import curve_auc, is_informative, mass_share, pattern_diversity, pointing_game, \
    rank_correlation
from grader.scoring.probes import Probes
from grader.submission.checks import ModelChecks
from grader.tasks import TaskOutput


class MetricUnavailable(Exception):
    """The metric's input was not produced (an earlier stage failed); the message says which."""


@dataclass(frozen=True)
class Measurements:
    """Everything a metric may read. Fields stay None (or empty) when the stage that makes them failed.

    tasks: each question's task output, by question id ("q1", ...).
    probes: the randomization test and deletion/insertion curves (grader.scoring.probes).
    checks: what the determinism and batch-consistency checks measured (they passed, or the
        submission failed before any metric).
    region: (N, 48, 48) bool, the face parts of the explained images (brows, eyes, nose, mouth from
        the part masks; the fixed face ellipse on real faces without masks).
    gradient_checks: the checks of the model's gradients against its own outputs, by the context
        they were made in (a question id, or "probes"); a criterion built on gradients that failed
        their check scores 0 (grader.submission.gradient_audit).
    """

    evaluation: Evaluation | None = None
    tasks: Mapping[str, TaskOutput] = field(default_factory=dict)
    probes: Probes | None = None
    region: np.ndarray | None = None
    checks: ModelChecks | None = None
    gradient_checks: Mapping[str, GradientCheckSummary] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    compute: Callable[[Measurements], float]


METRICS: dict[str, Metric] = {}


def metric(name: str, description: str) -> Callable[[Callable[[Measurements], float]], Callable]:
    """Register `compute` under `name`; the description is shown in the report next to the value."""

    def register(compute: Callable[[Measurements], float]) -> Callable[[Measurements], float]:
        METRICS[name] = Metric(name, description, compute)
        return compute

    return register


def _evaluation(measured: Measurements) -> Evaluation:
    if measured.evaluation is None:
        raise MetricUnavailable("the model could not be evaluated, so its accuracy is unknown")
    return measured.evaluation


@metric("accuracy", "top-1 accuracy on the labeled evaluation set")
def accuracy(measured: Measurements) -> float:
    return _evaluation(measured).accuracy


@metric("min_class_recall", "the lowest per-class recall (the confusion matrix's smallest diagonal entry)")
def min_class_recall(measured: Measurements) -> float:
    evaluation = _evaluation(measured)
    present = evaluation.counts.sum(axis=1) > 0
    return float(np.min(evaluation.per_class_recall[present]))


@metric("balanced_accuracy", "mean per-class recall, so that rare classes such as Disgust count as much as Happy")
def balanced_accuracy(measured: Measurements) -> float:
    evaluation = _evaluation(measured)
    present = evaluation.counts.sum(axis=1) > 0
    return float(np.mean(evaluation.per_class_recall[present]))


@metric("batch_gap", "largest difference between a face's logits in a batch and alone, relative to the largest "
                     "logit: low is good (fp32 rounding only is about 1e-6; grading fails above 1e-3)")
def batch_gap(measured: Measurements) -> float:
    if measured.checks is None:
        raise MetricUnavailable("the model's output checks did not pass")
    return measured.checks.batch_gap


# --- completeness ---------------------------------------------------------------------------

PANELS = {"saliency": ("maps",), "filters": ("patterns", "outputs"), "lime": ("weights",), "classviz": ("images",),
          "gradcam": ("maps",), "integrated_gradients": ("maps",), "smoothgrad": ("maps",)}
"""The arrays whose rows are the figures' panels, by task output name."""


def _gradients_trusted(measured: Measurements, *contexts: str) -> None:
    """Raise MetricUnavailable when the gradients the model returned in one of `contexts` did not
    match its own outputs: whatever was measured on them measures the manipulation, not the model."""
    for context in contexts:
        summary = measured.gradient_checks.get(context)
        if summary is not None and not summary.passed:
            raise MetricUnavailable(summary.failure_message())


def completeness(measured: Measurements, question: str) -> float:
    """The share of the question's panels that were produced, finite and not constant (0 when its
    task failed, or drew no figure; MetricUnavailable when its gradients failed their check)."""
    _gradients_trusted(measured, question)
    output = measured.tasks.get(question)
    if output is None or not output.figures:
        return 0.0
    panels = [panel[~np.isnan(panel)] if name == "weights" else panel
              for name in PANELS.get(output.name, ()) for panel in output.arrays[name]]
    return float(np.mean([is_informative(panel) for panel in panels])) if panels else 0.0


for _question, _name in (("q1", "saliency"), ("q2", "filters"), ("q3", "lime"), ("q4", "freeform")):
    metric(f"{_name}_completeness", f"share of the {_name} figure's panels produced, finite and not constant")(
        lambda measured, q=_question: completeness(measured, q))


# --- Q1 saliency ----------------------------------------------------------------------------


def _output(measured: Measurements, question: str, what: str) -> TaskOutput:
    _gradients_trusted(measured, question)
    output = measured.tasks.get(question)
    if output is None:
        raise MetricUnavailable(f"the {what} task did not run to the end (see the errors), so there is nothing "
                                "to measure")
    return output


def _probes(measured: Measurements) -> Probes:
    if measured.probes is None:
        raise MetricUnavailable("the sanity probes did not run (see the errors)")
    return measured.probes


@metric("saliency_randomization",
        "mean Spearman rank correlation between the saliency maps of the model and of a copy with every layer "
        "re-initialized (Adebayo et al. 2018): low is good, a map that explains the model changes with it")
def saliency_randomization(measured: Measurements) -> float:
    maps = _output(measured, "q1", "saliency").arrays["maps"]
    _gradients_trusted(measured, "probes")
    randomized = _probes(measured).randomized_saliency
    if randomized is None:
        raise MetricUnavailable("the randomized model's saliency was not computed")
    return float(np.mean(rank_correlation(np.abs(maps), np.abs(randomized))))


def _region(measured: Measurements) -> np.ndarray:
    if measured.region is None:
        raise MetricUnavailable("no face region is known for the explained images")
    return measured.region


@metric("saliency_localization",
        "how many times more saliency mass lies on the face parts (brows, eyes, nose, mouth; a central face "
        "ellipse on faces without part masks) than a uniform map would put there: 1 is chance")
def saliency_localization(measured: Measurements) -> float:
    """Mass share over area share, so the score means the same on part masks (about 11% of a
    synthetic face) and on the larger face ellipse (35%)."""
    maps = _output(measured, "q1", "saliency").arrays["maps"]
    region = np.broadcast_to(_region(measured), maps.shape)
    share = mass_share(maps, region)
    return float(np.mean(share / np.maximum(region.mean(axis=(1, 2)), 1e-12)))


@metric("saliency_pointing",
        "pointing game (Zhang et al. 2018): share of the saliency maps whose maximum lies on the face parts")
def saliency_pointing(measured: Measurements) -> float:
    return float(np.mean(pointing_game(_output(measured, "q1", "saliency").arrays["maps"], _region(measured))))


# --- deletion and insertion (Petsiuk et al. 2018) -------------------------------------------


MAP_QUESTIONS = {"saliency": "q1", "lime": "q3"}
"""The question whose task drew each map of the curves (the free choice's maps are Q4's)."""


def _curve_areas(measured: Measurements, name: str, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the area under the map's `mode` curve and under the random order's."""
    _gradients_trusted(measured, MAP_QUESTIONS.get(name, "q4"))
    curves = _probes(measured).curves
    if f"{name}_{mode}" not in curves:
        raise MetricUnavailable(f"no {name} map was drawn, so its {mode} curve was not measured")
    return curve_auc(curves[f"{name}_{mode}"]), curve_auc(curves[f"random_{mode}"])


def perturbation_gain(measured: Measurements, name: str, mode: str) -> float:
    """Mean AUC of the map's curve against the random order's: the probability area the map's
    order removes faster (deletion) or restores faster (insertion) than chance, in 0..1 units."""
    ours, chance = _curve_areas(measured, name, mode)
    return float(np.mean(chance - ours if mode == "deletion" else ours - chance))


for _name in ("saliency", "lime"):
    for _mode, _verb in (("deletion", "falls"), ("insertion", "rises")):
        metric(f"{_name}_{_mode}",
               f"{_mode} metric (Petsiuk et al. 2018): how much faster the class probability {_verb} when pixels "
               f"are {'deleted' if _mode == 'deletion' else 'inserted'} in the {_name} map's order than in a "
               "random order (area between the curves)")(
            lambda measured, n=_name, m=_mode: perturbation_gain(measured, n, m))


# --- Q2 filters -----------------------------------------------------------------------------


@metric("filter_gain", "median activation gain of the visualized channels (final over initial objective)")
def filter_gain(measured: Measurements) -> float:
    return float(np.median(_output(measured, "q2", "filter").arrays["activation_gain"]))


@metric("filter_diversity", "mean pairwise 1 - |correlation| of the filter patterns: 0 when all look alike")
def filter_diversity(measured: Measurements) -> float:
    return pattern_diversity(_output(measured, "q2", "filter").arrays["patterns"])


# --- Q3 LIME --------------------------------------------------------------------------------


@metric("lime_fidelity", "mean R² of LIME's ridge surrogates on their perturbations (lime's `score`)")
def lime_fidelity(measured: Measurements) -> float:
    score = _output(measured, "q3", "LIME").arrays["score"]
    return float(np.mean(score)) if len(score) else 0.0


@metric("lime_coverage", "share of the 7 expressions that LIME explained (an image with finite weights)")
def lime_coverage(measured: Measurements) -> float:
    arrays = _output(measured, "q3", "LIME").arrays
    explained = {int(label) for label, weights in zip(arrays["labels"], arrays["weights"])
                 if is_informative(weights[~np.isnan(weights)])}
    return len(explained) / 7


# --- Q4 free choice -------------------------------------------------------------------------


@metric("classviz_probability", "mean probability the model gives each class-model image for its target class")
def classviz_probability(measured: Measurements) -> float:
    output = _output(measured, "q4", "free-choice")
    if output.name != "classviz":
        raise MetricUnavailable(f"the free choice is {output.name}, not the class-model visualization")
    return float(np.mean(output.arrays["target_prob"]))


@metric("freeform_evidence",
        "evidence that the free-choice figure reflects the model: for class-model visualization the mean "
        "target probability; for an attribution map 1 - AUC(deletion in the map's order) / AUC(random order)")
def freeform_evidence(measured: Measurements) -> float:
    output = _output(measured, "q4", "free-choice")
    if output.name == "classviz":
        return classviz_probability(measured)
    ours, chance = _curve_areas(measured, output.name, "deletion")
    return float(np.mean(1 - ours / np.maximum(chance, 1e-12)))
