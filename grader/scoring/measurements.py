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
class Probes:
    """randomized_saliency: (N, 48, 48) Q1's maps, same method and images, on the model with every
    parametrized layer re-initialized.
    curves: "<map>_<deletion|insertion>" -> (N, steps + 1) the target class's probability as
    pixels are deleted (insertion: put back) in the order of that map; <map> is the name of the
    question output that drew it (saliency, lime, the free-choice method's), or random (a fixed
    random order, the baseline)."""

    randomized_saliency: np.ndarray | None = None
    curves: Mapping[str, np.ndarray] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"curve_{name}": curve for name, curve in self.curves.items()}
        if self.randomized_saliency is not None:
            arrays["randomized_saliency"] = self.randomized_saliency
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
