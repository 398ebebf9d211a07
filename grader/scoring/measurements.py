"""What the metrics read (grader.scoring.metrics), as types only: what grading measured of one
submission, and the probes taken while its model was open (grader.scoring.probes). report/ writes
them; nothing here runs a method."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from grader.evaluate import Evaluation
from grader.questions.output import QuestionOutput
from grader.result import GradientCheckSummary
from grader.submission.checks import ModelChecks


@dataclass(frozen=True)
class Cascade:
    """Q1's maps under cascading randomization (Adebayo et al. 2018; grader.scoring.randomization).

    question: the rubric question whose maps these are. randomized_layers: (S,) how many parametrized
    layers, counted from the output, stage s re-initialized (increasing; the last is every one).
    lowest_layer: (S,) the model's name of the lowest layer re-initialized at each stage (student text).
    maps: (S, N, 48, 48) float32, the method's maps at each stage. correlation: (S, N) the Spearman rank
    correlation of each stage's |map| with the model's own |map|."""

    question: str
    randomized_layers: np.ndarray
    lowest_layer: tuple[str, ...]
    maps: np.ndarray
    correlation: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {"cascade_randomized_layers": self.randomized_layers,
                "cascade_lowest_layer": np.asarray(self.lowest_layer, dtype=str),
                "cascade_saliency": self.maps, "cascade_correlation": self.correlation}


def seed_name(name: str, seed: int) -> str:
    """What the curves of a map's repeat with another seed are called (LIME's repeats, issue 19):
    `<name>_seed<k>`; seed 0 keeps the map's own name."""
    return name if seed == 0 else f"{name}_seed{seed}"


@dataclass(frozen=True)
class Probes:
    """randomized_saliency: (N, 48, 48) Q1's maps, same method and images, on the model with every
    parametrized layer re-initialized.
    curves: "<map>_<deletion|insertion>" -> (N, steps + 1) the target class's probability as
    pixels are deleted (insertion: put back) in the order of that map; <map> is the name of the
    question output that drew it (saliency, lime, the free-choice method's), or random (a fixed
    random order, the baseline).
    cascade: Q1's maps as the layers are re-initialized from the top, one stage at a time.
    smoothed_saliency, smoothed_randomized_saliency: (N, 48, 48) sMPRT's denoised Q1 maps (the mean
    over noisy copies of each face, normalized, absolute) on the model and on its fully randomized
    copy (Hedström et al. 2024; grader.scoring.randomization.smoothed_maps).
    road: "<map>_<morf|lerf>" -> (N, len(ROAD_FRACTIONS)) the target class's probability as the map's
    most (MoRF) or least (LeRF) relevant pixels are removed by noisy linear imputation (ROAD, Rong et
    al. 2022; grader.scoring.road), at the removal fractions grader.scoring.road.ROAD_FRACTIONS; LIME's
    repeats with other seeds add "<map>_seed<k>_<morf|lerf>" (`seed_name`)."""

    randomized_saliency: np.ndarray | None = None
    curves: Mapping[str, np.ndarray] = field(default_factory=dict)
    cascade: Cascade | None = None
    smoothed_saliency: np.ndarray | None = None
    smoothed_randomized_saliency: np.ndarray | None = None
    road: Mapping[str, np.ndarray] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"curve_{name}": curve for name, curve in self.curves.items()}
        arrays |= {f"road_{name}": curve for name, curve in self.road.items()}
        if self.randomized_saliency is not None:
            arrays["randomized_saliency"] = self.randomized_saliency
        if self.cascade is not None:
            arrays |= self.cascade.arrays()
        for name in ("smoothed_saliency", "smoothed_randomized_saliency"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name).astype(np.float32)
        return arrays


@dataclass(frozen=True)
class Measurements:
    """Everything a metric may read. Fields stay None (or empty) when the stage that makes them failed.

    outputs: each question's explanation, by question id.
    probes: the randomization test and deletion/insertion curves (grader.scoring.probes).
    checks: what the determinism and batch-consistency checks measured (they passed, or the
        submission failed before any metric).
    region: (N, 48, 48) bool, the face parts of the explained images (brows, eyes, nose, mouth from
        the part masks; the fixed face ellipse on real faces without masks).
    gradient_checks: the checks of the model's gradients against its own outputs, by the context
        they were made in (a question id, or "probes"); a criterion built on gradients that failed
        their check scores 0 (grader.submission.gradient_audit).
    part_masks: (N, 48, 48) uint8 part labels of the explained images (grader.data.faceset's
        PART_NAMES), or None on faces without masks.
    answers: the written answers (report.md's section per question id), whose claims are checked
        (grader.scoring.answer_claims).
    """

    evaluation: Evaluation | None = None
    outputs: Mapping[str, QuestionOutput] = field(default_factory=dict)
    probes: Probes | None = None
    region: np.ndarray | None = None
    checks: ModelChecks | None = None
    gradient_checks: Mapping[str, GradientCheckSummary] = field(default_factory=dict)
    part_masks: np.ndarray | None = None
    answers: Mapping[str, str] = field(default_factory=dict)
