"""Measurements that need the model itself, taken while it is open, right after the questions: the
model parameter randomization test for Q1's saliency (Adebayo et al. 2018, "Sanity checks for
saliency maps"), the deletion and insertion curves (Petsiuk et al. 2018, RISE) of every
attribution map the questions made, beside those of a random pixel order, and their ROAD curves
(Rong et al. 2022: removal by noisy linear imputation, grader.scoring.road). The metrics
(grader.scoring.metrics) read them; report/ writes them as arrays/probes.npz for the TA.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import BrokenExecutor, Executor, Future

import numpy as np

from grader.explain.results import AttributionMaps, LimeExplanations
from grader.explain.saliency import Saliency
from grader.explain.smoothgrad import SmoothGrad
from grader.protocol import ModelProtocol
from grader.questions.output import QuestionOutput
from grader.questions.settings import TaskSettings
from grader.scoring.measurements import Probes, seed_name
from grader.scoring.measures import perturbation_curves, pixel_order, random_pixel_order
from grader.scoring.randomization import Explain, cascade, smoothed_maps
from grader.scoring.road import road_curves, road_images

PERTURBATION_STEPS = 16
"""Points on each deletion or insertion curve after the start: 144 pixels (1/16 of a face) a step."""
RANDOMIZE_ALL_LAYERS = 1_000_000
"""`top_layers` for `ModelProtocol.randomized` that reaches the bottom of any student's model: the
end of Adebayo et al.'s cascade, where every learned parameter is gone."""
RANDOMIZATION_SEED = 0
SMOOTHING_SEED = 0
"""sMPRT's noise: the same draws for the model and its randomized copy, so that a map that does not
depend on the weights gives a rank correlation of exactly 1 (Quantus draws each anew)."""
RANDOM_ORDER_SEED = 0
RANDOMIZED_MAPS = "saliency"
"""The output whose method the randomization test repeats on the re-initialized model (Q1's)."""


def ranked_maps(outputs: Mapping[str, QuestionOutput]) -> dict[str, AttributionMaps | LimeExplanations]:
    """Every output whose result ranks the pixels of its faces (attribution maps and LIME), by name."""
    return {output.name: output.result for output in outputs.values()
            if isinstance(output.result, (AttributionMaps, LimeExplanations))}


class RoadAhead:
    """ROAD's perturbed faces of every ranked map (grader.scoring.road.road_images), made on a helper
    thread as each question answers (`add`), while the model answers the later questions' requests:
    the imputation is about a second of the grader's own CPU a submission (issue 20), which the model
    would otherwise wait for. Without a helper, each map's faces are made when `run_probes` asks."""

    def __init__(self, helper: Executor | None = None) -> None:
        self.helper = helper
        self._made: dict[str, Future[np.ndarray]] = {}

    def add(self, output: QuestionOutput) -> None:
        """Start making the perturbed faces of `output`'s rankings, if it ranks pixels."""
        if self.helper is None or not isinstance(output.result, (AttributionMaps, LimeExplanations)):
            return
        images = np.asarray(output.result.images)
        try:
            rankings = _rankings(output.name, output.result)
        except Exception:  # noqa: BLE001  (ranked again when the probes ask, where its error is the probes')
            return
        for name, ranking in rankings.items():
            self._made[name] = self.helper.submit(road_images, images, ranking)

    def images(self, name: str, images: np.ndarray, ranking: np.ndarray) -> np.ndarray:
        """The perturbed faces of the ranking called `name` (made ahead, or now: also when the helper
        process making them died, grader.helper_process)."""
        made = self._made.pop(name, None)
        if made is not None:
            try:
                return made.result()
            except BrokenExecutor:
                pass
        return road_images(images, ranking)

    def cancel(self) -> None:
        """Drop what the probes did not take (a stage failed before them): what has not started is not
        made. A batch's helper process outlives the assessment, and would make it for nothing."""
        for made in self._made.values():
            made.cancel()
        self._made.clear()


def run_probes(model: ModelProtocol, outputs: Mapping[str, QuestionOutput], settings: TaskSettings,
               road_ahead: RoadAhead | None = None) -> Probes:
    """The randomization test (when Q1 drew its maps) and the curves of every map. road_ahead: ROAD's
    perturbed faces of the outputs, started as they came (default: made here)."""
    maps = ranked_maps(outputs)
    randomized = cascaded = None
    smoothed: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    if RANDOMIZED_MAPS in maps:
        saliency = maps[RANDOMIZED_MAPS]
        randomized = randomized_saliency(model, saliency.images, saliency.labels, settings)
        question = next(output.question for output in outputs.values() if output.name == RANDOMIZED_MAPS)
        cascaded = cascade(model, saliency.images, saliency.labels, saliency.maps, q1_method(settings),
                           RANDOMIZATION_SEED, question)
        smoothed = smoothed_saliency(model, saliency.images, saliency.labels, settings)
    curves: dict[str, np.ndarray] = {}
    for name, result in maps.items():
        curves |= _curves(model, name, result.images, result.labels, pixel_order(result.ranking()))
    road: dict[str, np.ndarray] = {}
    if maps:
        first = next(iter(maps.values()))  # every question explains the same faces
        curves |= _curves(model, "random", first.images, first.labels,
                          random_pixel_order(len(first.images), RANDOM_ORDER_SEED))
        road = _road(model, maps, road_ahead or RoadAhead())
    return Probes(randomized_saliency=randomized, curves=curves, cascade=cascaded, smoothed_saliency=smoothed[0],
                  smoothed_randomized_saliency=smoothed[1], road=road)


def _road(model: ModelProtocol, maps: Mapping[str, AttributionMaps | LimeExplanations],
          ahead: RoadAhead) -> dict[str, np.ndarray]:
    """ROAD's MoRF and LeRF curves of every map (grader.scoring.road): the maps of the same faces and
    labels (every question's, as the questions run) go to the model together, in the same requests."""
    groups: list[tuple[AttributionMaps | LimeExplanations, dict[str, np.ndarray]]] = []
    for name, result in maps.items():
        for shown, rankings in groups:
            if np.array_equal(shown.images, result.images) and np.array_equal(shown.labels, result.labels):
                rankings |= _rankings(name, result)
                break
        else:
            groups.append((result, _rankings(name, result)))
    road: dict[str, np.ndarray] = {}
    for shown, rankings in groups:
        images = np.asarray(shown.images)
        imputed = {name: ahead.images(name, images, ranking) for name, ranking in rankings.items()}
        road |= road_curves(model, images, np.asarray(shown.labels), rankings, imputed=imputed)
    return road


def _rankings(name: str, result: AttributionMaps | LimeExplanations) -> dict[str, np.ndarray]:
    """The map's ranking by its name, and for LIME each other seed's as `<name>_seed<k>` (k = 1, 2, ...),
    so that LIME's ROAD is bootstrapped over its seeds too."""
    rankings = {name: result.ranking()}
    if isinstance(result, LimeExplanations):
        rankings |= {seed_name(name, k): ranking for k, ranking in enumerate(result.repeat_rankings(), start=1)}
    return rankings


def _curves(model: ModelProtocol, name: str, images: np.ndarray, labels: np.ndarray,
            order: np.ndarray) -> dict[str, np.ndarray]:
    return {f"{name}_{mode}": perturbation_curves(model, images, labels, order, mode, steps=PERTURBATION_STEPS)
            for mode in ("deletion", "insertion")}


def randomized_saliency(model: ModelProtocol, images: np.ndarray, labels: np.ndarray,
                        settings: TaskSettings) -> np.ndarray:
    """Q1's method on a copy of the model whose every parametrized layer is re-initialized."""
    with model.randomized(seed=RANDOMIZATION_SEED, top_layers=RANDOMIZE_ALL_LAYERS) as random_model:
        return q1_method(settings)(random_model, images, labels)


def q1_method(settings: TaskSettings) -> Explain:
    """Q1's method as its question runs it (grader.questions.methods.saliency), for any model."""

    def explain(model: ModelProtocol, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        method = SmoothGrad(model, seed=settings.seed) if settings.smoothgrad else Saliency(model)
        return method.attribute(np.asarray(images, dtype=np.float32), labels).astype(np.float32)

    return explain


def smoothed_saliency(model: ModelProtocol, images: np.ndarray, labels: np.ndarray,
                      settings: TaskSettings) -> tuple[np.ndarray, np.ndarray]:
    """sMPRT's denoised Q1 maps (grader.scoring.randomization.smoothed_maps) on the model and on its
    fully randomized copy, with the same noise. With SmoothGrad as Q1's method each of the 50 copies
    is itself a SmoothGrad map: 50 times its cost, an option the course rarely turns on."""
    explain = q1_method(settings)
    with model.randomized(seed=RANDOMIZATION_SEED, top_layers=RANDOMIZE_ALL_LAYERS) as random_model:
        return tuple(smoothed_maps(m, images, labels, explain, np.random.default_rng(SMOOTHING_SEED)).astype(np.float32)
                     for m in (model, random_model))
