"""Measurements that need the model itself, taken while it is open, right after the tasks: the
model parameter randomization test for Q1's saliency (Adebayo et al. 2018, "Sanity checks for
saliency maps") and the deletion and insertion curves (Petsiuk et al. 2018, RISE) of every
attribution map the tasks drew, beside those of a random pixel order. The metrics
(grader.scoring.metrics) read them; arrays/probes.npz keeps them for the TA.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from grader.explain.gradients import Saliency, SmoothGrad
from grader.protocol import ModelProtocol
from grader.scoring.measures import perturbation_curves, pixel_order, random_pixel_order
from grader.tasks import TaskOutput, TaskSettings

PERTURBATION_STEPS = 16
"""Points on each deletion or insertion curve after the start: 144 pixels (1/16 of a face) a step."""
RANDOMIZE_ALL_LAYERS = 1_000_000
"""`top_layers` for `ModelProtocol.randomized` that reaches the bottom of any student's model: the
end of Adebayo et al.'s cascade, where every learned parameter is gone."""
RANDOMIZATION_SEED = 0
RANDOM_ORDER_SEED = 0


@dataclass(frozen=True)
class Probes:
    """randomized_saliency: (N, 48, 48) Q1's maps, same method and images, on the model with every
    parametrized layer re-initialized.
    curves: "<map>_<deletion|insertion>" -> (N, steps + 1) the target class's probability as
    pixels are deleted (insertion: put back) in the order of that map; <map> is saliency, lime,
    the free-choice method's name, or random (a fixed random order, the baseline)."""

    randomized_saliency: np.ndarray | None = None
    curves: Mapping[str, np.ndarray] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"curve_{name}": curve for name, curve in self.curves.items()}
        if self.randomized_saliency is not None:
            arrays["randomized_saliency"] = self.randomized_saliency
        return arrays


def attribution_maps(outputs: Mapping[str, TaskOutput]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every map the tasks drew, by name: (images, labels, maps (N, 48, 48), higher = more for the
    label). LIME's map paints each pixel with its superpixel's weight."""
    found = {}
    for output in outputs.values():
        arrays = output.arrays
        if output.name == "lime":
            weights = np.nan_to_num(arrays["weights"])
            maps = np.stack([row[segments] for row, segments in zip(weights, arrays["segments"])]) \
                if len(weights) else np.zeros((0, 48, 48))
            found["lime"] = (arrays["images"], arrays["labels"], maps)
        elif "maps" in arrays and arrays["maps"].ndim == 3:
            found[output.name] = (arrays["images"], arrays["labels"], arrays["maps"])
    return found


def run_probes(model: ModelProtocol, outputs: Mapping[str, TaskOutput], settings: TaskSettings) -> Probes:
    """The randomization test (when Q1 drew its maps) and the curves of every map."""
    maps = attribution_maps(outputs)
    randomized = None
    if "saliency" in maps:
        images, labels, _ = maps["saliency"]
        randomized = randomized_saliency(model, images, labels, settings)
    curves: dict[str, np.ndarray] = {}
    for name, (images, labels, attribution) in maps.items():
        # Q1's maps are |gradient|: both signs count. The others are signed: high speaks for the label.
        order = pixel_order(np.abs(attribution) if name == "saliency" else attribution)
        curves |= _curves(model, name, images, labels, order)
    if maps:
        images, labels, _ = next(iter(maps.values()))  # every task explains the same faces
        curves |= _curves(model, "random", images, labels, random_pixel_order(len(images), RANDOM_ORDER_SEED))
    return Probes(randomized_saliency=randomized, curves=curves)


def _curves(model: ModelProtocol, name: str, images: np.ndarray, labels: np.ndarray,
            order: np.ndarray) -> dict[str, np.ndarray]:
    return {f"{name}_{mode}": perturbation_curves(model, images, labels, order, mode, steps=PERTURBATION_STEPS)
            for mode in ("deletion", "insertion")}


def randomized_saliency(model: ModelProtocol, images: np.ndarray, labels: np.ndarray,
                        settings: TaskSettings) -> np.ndarray:
    """Q1's method on a copy of the model whose every parametrized layer is re-initialized."""
    with model.randomized(seed=RANDOMIZATION_SEED, top_layers=RANDOMIZE_ALL_LAYERS) as random_model:
        method = SmoothGrad(random_model, seed=settings.seed) if settings.smoothgrad else Saliency(random_model)
        return method.attribute(np.asarray(images, dtype=np.float32), labels).astype(np.float32)
