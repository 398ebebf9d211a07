"""The metric registry: each metric is a small function of what grading measured, documented with
what it measures and where it comes from. rubric.yaml names metrics by their registry name.

Conventions: a metric is a function of the measurements and of the question it scores (the rubric
question its criterion belongs to: its id and method), and returns one float; higher is better
unless its description says "low is good" (the rubric then uses `max` bands). A metric reads the
question's output by the result type it needs (`_output(..., AttributionMaps)`), never by a
question id of its own. A metric whose input was not produced (its question failed) raises
MetricUnavailable, which scores 0 with the reason, except completeness, which is exactly the
share of what was produced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from grader.classes import NUM_CLASSES
from grader.evaluate import Evaluation
from grader.explain.results import AttributionMaps, ClassImages, FilterPatterns, LimeExplanations
from grader.questions.output import QuestionOutput
from grader.scoring.answer_claims import checked_claims
from grader.scoring.measurements import Measurements, Probes, seed_name
from grader.scoring.randomization import emprt, smprt
from grader.scoring.road import road_difference
from grader.scoring.uncertainty import Resampled, estimate, mean_of, median_of
from grader.scoring.measures import curve_auc, is_informative, mass_share, pairwise_diversity, pointing_game, \
    rank_correlation


class MetricUnavailable(Exception):
    """The metric's input was not produced (an earlier stage failed); the message says which."""


@dataclass(frozen=True)
class ScoredQuestion:
    """The rubric question a criterion belongs to: its id and the method it names."""

    id: str
    method: str | None = None


Compute = Callable[[Measurements, ScoredQuestion], "float | Resampled"]
"""A metric's value: a float, or a Resampled (an average over the explained images, or LIME's seeds too)
whose bootstrap interval decides its band (grader.scoring.uncertainty)."""


@dataclass(frozen=True)
class Metric:
    """explains: the metric measures an explanation (False: the model itself, such as its accuracy);
    a rubric's explanation_gate withholds the points of explanation metrics from a degenerate model."""

    name: str
    description: str
    compute: Compute
    explains: bool = True

    def value(self, measured: Measurements, question: ScoredQuestion) -> float:
        """The measured value alone, without its interval."""
        return estimate(self.compute(measured, question))[0]


METRICS: dict[str, Metric] = {}


def metric(name: str, description: str, explains: bool = True) -> Callable[[Compute], Compute]:
    """Register `compute` under `name`; the description is shown in the report next to the value.
    explains=False for a metric of the model rather than of an explanation (see Metric)."""

    def register(compute: Compute) -> Compute:
        METRICS[name] = Metric(name, description, compute, explains)
        return compute

    return register


TASK_WORDS = {"saliency": "saliency", "filters": "filter", "lime": "LIME", "freeform": "free-choice"}
"""How the reasons name a question's task, by the rubric's method."""
CHOICE_WORDS = {"freeform": "free choice"}
RESULT_WORDS = {AttributionMaps: "an attribution map", LimeExplanations: "LIME", FilterPatterns: "filter patterns",
                ClassImages: "the class-model visualization"}


def _evaluation(measured: Measurements) -> Evaluation:
    if measured.evaluation is None:
        raise MetricUnavailable("the model could not be evaluated, so its accuracy is unknown")
    return measured.evaluation


@metric("accuracy", "top-1 accuracy on the labeled evaluation set", explains=False)
def accuracy(measured: Measurements, question: ScoredQuestion) -> Resampled:
    evaluation = _evaluation(measured)
    return mean_of(evaluation.predictions == evaluation.labels)


@metric("min_class_recall", "the lowest per-class recall (the confusion matrix's smallest diagonal entry)",
        explains=False)
def min_class_recall(measured: Measurements, question: ScoredQuestion) -> Resampled:
    return _recalls(_evaluation(measured), np.min)


@metric("balanced_accuracy", "mean per-class recall, so that rare classes such as Disgust count as much as Happy",
        explains=False)
def balanced_accuracy(measured: Measurements, question: ScoredQuestion) -> Resampled:
    return _recalls(_evaluation(measured), np.mean)


def _recalls(evaluation: Evaluation, combine: Callable[..., np.ndarray]) -> Resampled:
    """`combine` of the per-class recalls of the classes present, over resampled evaluation faces (a
    class a resample happens to miss is left out of that resample, as a class absent from the set is)."""
    labels, correct = evaluation.labels, evaluation.predictions == evaluation.labels

    def statistic(rows: np.ndarray) -> np.ndarray:
        resampled_labels, resampled_correct = labels[rows], correct[rows]
        recalls = np.full((len(rows), NUM_CLASSES), np.nan)
        for label in range(NUM_CLASSES):
            of_label = resampled_labels == label
            counts = of_label.sum(axis=1)
            hits = (of_label & resampled_correct).sum(axis=1)
            recalls[:, label] = np.divide(hits, counts, out=np.full(len(rows), np.nan), where=counts > 0)
        return combine(np.ma.masked_invalid(recalls), axis=1).filled(np.nan)

    return Resampled(statistic, (len(labels),))


@metric("batch_gap", "largest difference between a face's logits in a batch and alone, relative to the largest "
                     "logit: low is good (fp32 rounding only is about 1e-6; grading fails above 1e-3)", explains=False)
def batch_gap(measured: Measurements, question: ScoredQuestion) -> float:
    if measured.checks is None:
        raise MetricUnavailable("the model's output checks did not pass")
    return measured.checks.batch_gap


# --- completeness ---------------------------------------------------------------------------

def _gradients_trusted(measured: Measurements, *contexts: str) -> None:
    """Raise MetricUnavailable when the gradients the model returned in one of `contexts` did not
    match its own outputs: whatever was measured on them measures the manipulation, not the model."""
    for context in contexts:
        summary = measured.gradient_checks.get(context)
        if summary is not None and not summary.passed:
            raise MetricUnavailable(summary.failure_message())


def completeness(measured: Measurements, question: ScoredQuestion) -> float:
    """The share of the question's panels that were produced, finite and not constant (0 when it
    failed; MetricUnavailable when its gradients failed their check)."""
    _gradients_trusted(measured, question.id)
    output = measured.outputs.get(question.id)
    if output is None:
        return 0.0
    panels = output.result.panels()
    return mean_of([is_informative(panel) for panel in panels]) if panels else 0.0


for _name in ("saliency", "filters", "lime", "freeform"):
    metric(f"{_name}_completeness", f"share of the {_name} figure's panels produced, finite and not constant")(
        completeness)


def _output(measured: Measurements, question: ScoredQuestion, kind: type | tuple[type, ...]) -> QuestionOutput:
    """The question's output, which must be a result of type `kind` (or one of the types)."""
    _gradients_trusted(measured, question.id)
    output = measured.outputs.get(question.id)
    if output is None:
        what = TASK_WORDS.get(question.method or "", question.method or question.id)
        raise MetricUnavailable(f"the {what} task did not run to the end (see the errors), so there is nothing "
                                "to measure")
    if not isinstance(output.result, kind):
        what = CHOICE_WORDS.get(question.method or "", question.method or question.id)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        raise MetricUnavailable(f"the {what} is {output.name}, not {' or '.join(RESULT_WORDS[k] for k in kinds)}")
    return output


def _probes(measured: Measurements) -> Probes:
    if measured.probes is None:
        raise MetricUnavailable("the sanity probes did not run (see the errors)")
    return measured.probes


# --- Q1 saliency ----------------------------------------------------------------------------


@metric("saliency_randomization",
        "mean Spearman rank correlation between the saliency maps of the model and of a copy with every layer "
        "re-initialized (Adebayo et al. 2018): low is good, a map that explains the model changes with it")
def saliency_randomization(measured: Measurements, question: ScoredQuestion) -> Resampled:
    maps, randomized = _randomized_pair(measured, question)
    return mean_of(rank_correlation(np.abs(maps), np.abs(randomized)))


def _randomized_pair(measured: Measurements, question: ScoredQuestion) -> tuple[np.ndarray, np.ndarray]:
    """Q1's maps and the same method's maps on the fully randomized model."""
    maps = _output(measured, question, AttributionMaps).result.maps
    _gradients_trusted(measured, "probes")
    randomized = _probes(measured).randomized_saliency
    if randomized is None:
        raise MetricUnavailable("the randomized model's saliency was not computed")
    return maps, randomized


def _region(measured: Measurements) -> np.ndarray:
    if measured.region is None:
        raise MetricUnavailable("no face region is known for the explained images")
    return measured.region


@metric("saliency_localization",
        "how many times more saliency mass lies on the face parts (brows, eyes, nose, mouth; a central face "
        "ellipse on faces without part masks) than a uniform map would put there: 1 is chance")
def saliency_localization(measured: Measurements, question: ScoredQuestion) -> Resampled:
    """Mass share over area share, so the score means the same on part masks (about 11% of a
    synthetic face) and on the larger face ellipse (35%)."""
    return _localization(measured, _output(measured, question, AttributionMaps).result.maps)


def _localization(measured: Measurements, maps: np.ndarray) -> Resampled:
    """Per face the share of |map| on the face region over the region's share of the face, resampled."""
    region = np.broadcast_to(_region(measured), maps.shape)
    share = mass_share(maps, region)
    return mean_of(share / np.maximum(region.mean(axis=(1, 2)), 1e-12))


@metric("lime_localization",
        "how many times more of LIME's supporting weight (superpixels that speak for the label) lies on the face "
        "parts than a uniform map would put there: 1 is chance")
def lime_localization(measured: Measurements, question: ScoredQuestion) -> Resampled:
    """Each pixel carries its superpixel's weight; only weights for the label count (the ones the
    figure shows as evidence), so a superpixel against the label does not count as looking there."""
    ranking = _output(measured, question, LimeExplanations).result.ranking()
    return _localization(measured, np.clip(ranking, 0.0, None))


@metric("freeform_localization",
        "for an attribution-map free choice: how many times more of the map's evidence for the label lies on the "
        "face parts than a uniform map would put there: 1 is chance")
def freeform_localization(measured: Measurements, question: ScoredQuestion) -> Resampled:
    output = _output(measured, question, (ClassImages, AttributionMaps))
    if isinstance(output.result, ClassImages):
        raise MetricUnavailable("the free choice is the class-model visualization: one synthesized image per class, "
                                "not a map over the faces, so it has no place on them to measure")
    return _localization(measured, np.clip(output.result.ranking(), 0.0, None))


@metric("saliency_pointing",
        "pointing game (Zhang et al. 2018): share of the saliency maps whose maximum lies on the face parts")
def saliency_pointing(measured: Measurements, question: ScoredQuestion) -> Resampled:
    return mean_of(pointing_game(_output(measured, question, AttributionMaps).result.maps, _region(measured)))


# --- randomization variants (Hedström et al. 2024) ---


@metric("saliency_smprt",
        "smooth MPRT (Hedström et al. 2024): mean Spearman rank correlation between the saliency maps of the model "
        "and of its fully re-initialized copy, each averaged over 50 noisy copies of the face first: low is good")
def saliency_smprt(measured: Measurements, question: ScoredQuestion) -> Resampled:
    """The full-model test on denoised maps (grader.scoring.randomization.smoothed_maps), so that
    gradient noise alone no longer makes the two maps look unlike (Binder et al. 2023)."""
    _output(measured, question, AttributionMaps)
    _gradients_trusted(measured, "probes")
    probes = _probes(measured)
    if probes.smoothed_saliency is None or probes.smoothed_randomized_saliency is None:
        raise MetricUnavailable("the denoised saliency maps of the randomization test were not computed")
    return mean_of(smprt(probes.smoothed_saliency, probes.smoothed_randomized_saliency))


@metric("saliency_emprt",
        "efficient MPRT (Hedström et al. 2024): mean relative rise in the saliency map's complexity (the entropy "
        "of its 100-bin histogram) from the model to its fully re-initialized copy: 0 when the map ignores the "
        "weights, high is good")
def saliency_emprt(measured: Measurements, question: ScoredQuestion) -> Resampled:
    """Per image (H(random) - H(model)) / H(model) (grader.scoring.randomization.emprt), averaged
    over the explained faces. Unlike the rank correlation it does not reward an uninformative map:
    an edge detector or a noise map keeps its complexity (about 0)."""
    maps, randomized = _randomized_pair(measured, question)
    return mean_of(emprt(maps, randomized))


# --- deletion and insertion (Petsiuk et al. 2018) -------------------------------------------


def _curve_areas(measured: Measurements, question: ScoredQuestion, name: str,
                 mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the area under the `mode` curve of the map called `name` and under the random order's."""
    _gradients_trusted(measured, question.id)
    curves = _probes(measured).curves
    if f"{name}_{mode}" not in curves:
        raise MetricUnavailable(f"no {name} map was drawn, so its {mode} curve was not measured")
    return curve_auc(curves[f"{name}_{mode}"]), curve_auc(curves[f"random_{mode}"])


def perturbation_gain(measured: Measurements, question: ScoredQuestion, name: str, mode: str) -> Resampled:
    """Mean AUC of the map's curve against the random order's: the probability area the map's
    order removes faster (deletion) or restores faster (insertion) than chance, in 0..1 units."""
    ours, chance = _curve_areas(measured, question, name, mode)
    return mean_of(chance - ours if mode == "deletion" else ours - chance)


for _name in ("saliency", "lime"):
    for _mode, _verb in (("deletion", "falls"), ("insertion", "rises")):
        metric(f"{_name}_{_mode}",
               f"{_mode} metric (Petsiuk et al. 2018): how much faster the class probability {_verb} when pixels "
               f"are {'deleted' if _mode == 'deletion' else 'inserted'} in the {_name} map's order than in a "
               "random order (area between the curves)")(
            lambda measured, question, n=_name, m=_mode: perturbation_gain(measured, question, n, m))


# --- ROAD (Rong et al. 2022) ---


def road_gain(measured: Measurements, name: str, seeds: int = 1) -> Resampled:
    """Mean over the faces of AUC(LeRF) - AUC(MoRF) of the map called `name` (grader.scoring.road):
    pixels removed by noisy linear imputation, least relevant first against most relevant first. With
    `seeds` > 1 (LIME's repeats, `<name>_seed<k>`), over the faces and the seeds, each resampled."""
    road = _probes(measured).road
    if f"{name}_morf" not in road or f"{name}_lerf" not in road:
        raise MetricUnavailable(f"the ROAD curves of the {name} map were not measured (see the errors)")
    names = [seed_name(name, k) for k in range(seeds) if f"{seed_name(name, k)}_morf" in road]
    gains = np.stack([road_difference(road[f"{n}_morf"], road[f"{n}_lerf"]) for n in names], axis=1)
    return mean_of(gains if len(names) > 1 else gains[:, 0])


ROAD_WORDS = ("ROAD (Rong et al. 2022, noisy linear imputation): area under the class probability as the {} "
              "map's least relevant pixels are removed first, minus as its most relevant are removed first "
              "(Blücher et al. 2024's symmetric relevance gain); 0 is no better than chance, 1 the most")


@metric("saliency_road", ROAD_WORDS.format("saliency"))
def saliency_road(measured: Measurements, question: ScoredQuestion) -> Resampled:
    return road_gain(measured, _output(measured, question, AttributionMaps).name)


@metric("lime_road", ROAD_WORDS.format("LIME"))
def lime_road(measured: Measurements, question: ScoredQuestion) -> Resampled:
    output = _output(measured, question, LimeExplanations)
    return road_gain(measured, output.name, seeds=1 + len(output.result.repeats))


@metric("freeform_road", ROAD_WORDS.format("free-choice attribution"))
def freeform_road(measured: Measurements, question: ScoredQuestion) -> Resampled:
    output = _output(measured, question, (ClassImages, AttributionMaps))
    if isinstance(output.result, ClassImages):
        raise MetricUnavailable("the free choice is the class-model visualization: one synthesized image per class, "
                                "no map over the faces, so there is no pixel order for ROAD to remove")
    return road_gain(measured, output.name)


# --- Q2 filters -----------------------------------------------------------------------------


@metric("filter_gain", "median activation gain of the visualized channels (final over initial objective)")
def filter_gain(measured: Measurements, question: ScoredQuestion) -> Resampled:
    """Resampled over the channels: the units of this figure are channels, not faces."""
    return median_of(_output(measured, question, FilterPatterns).result.activation_gain)


@metric("filter_diversity", "mean pairwise 1 - |correlation| of the filter patterns: 0 when all look alike")
def filter_diversity(measured: Measurements, question: ScoredQuestion) -> Resampled:
    """Resampled over the channels: a resample's pairs of one channel with itself are left out, as
    the measure leaves out the diagonal (a U-statistic's bootstrap)."""
    patterns = _output(measured, question, FilterPatterns).result.patterns
    distances = pairwise_diversity(patterns)

    def statistic(rows: np.ndarray) -> np.ndarray:
        pairs = distances[rows[:, :, None], rows[:, None, :]]
        distinct = rows[:, :, None] < rows[:, None, :]
        total = np.where(distinct, pairs, 0.0).sum(axis=(1, 2))
        count = distinct.sum(axis=(1, 2))
        return np.divide(total, count, out=np.zeros(len(rows)), where=count > 0)

    return Resampled(statistic, (len(patterns),))


# --- Q3 LIME --------------------------------------------------------------------------------


@metric("lime_fidelity", "mean R² of LIME's ridge surrogates on their perturbations (lime's `score`)")
def lime_fidelity(measured: Measurements, question: ScoredQuestion) -> float | Resampled:
    """Resampled over the images and LIME's seeds (TaskSettings.lime_seeds), each axis on its own."""
    result = _output(measured, question, LimeExplanations).result
    return mean_of(result.scores_by_seed()) if result.explanations else 0.0


@metric("lime_coverage", "share of the 7 expressions that LIME explained (an image with finite weights)")
def lime_coverage(measured: Measurements, question: ScoredQuestion) -> float:
    result = _output(measured, question, LimeExplanations).result
    explained = {int(label) for label, weights in zip(result.labels, result.panels()) if is_informative(weights)}
    return len(explained) / 7


# --- Q4 free choice -------------------------------------------------------------------------


@metric("class_model_probability",
        "mean probability the model gives each class-model image for its target class")
def class_model_probability(measured: Measurements, question: ScoredQuestion) -> Resampled:
    return mean_of(_output(measured, question, ClassImages).result.target_prob)


@metric("freeform_evidence",
        "evidence that the free-choice figure reflects the model: for class-model visualization the mean "
        "target probability; for an attribution map its ROAD value (freeform_road: 0 is chance)")
def freeform_evidence(measured: Measurements, question: ScoredQuestion) -> Resampled:
    """One criterion for every free choice. Until issue 19 an attribution map's evidence was gray-fill
    deletion against a random order, whose gray patches leak the map's shape (Rong et al. 2022)."""
    output = _output(measured, question, (ClassImages, AttributionMaps))
    if isinstance(output.result, ClassImages):
        return mean_of(output.result.target_prob)
    return road_gain(measured, output.name)


# --- the written answers (issue 16) ---------------------------------------------------------


@metric("answer_consistency",
        "share of the answer's checkable claims (where the model looks, best and worst classes, confused pairs, "
        "filter patterns, the free choice's subject) that the student's own measurements support")
def answer_consistency(measured: Measurements, question: ScoredQuestion) -> Resampled:
    """Off in the default rubric, which leaves the judgment to the TA; a course may turn it on (see
    rubric.yaml's comment). Claims the measurements cannot settle do not count either way."""
    claims = checked_claims({question.id: measured.answers.get(question.id, "")}, measured)
    checkable = [claim for claim in claims if claim.verdict != "not checkable"]
    if not checkable:
        raise MetricUnavailable("the answer makes no claim that the measurements can check")
    return mean_of([claim.verdict == "supported" for claim in checkable])
