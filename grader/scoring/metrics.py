"""The metric registry: each metric is a small function of what grading measured, documented with
what it measures and where it comes from. rubric.yaml names metrics by their registry name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from grader.evaluate import Evaluation


class MetricUnavailable(Exception):
    """The metric's input was not produced (an earlier stage failed); the message says which."""


@dataclass(frozen=True)
class Measurements:
    """Everything a metric may read. Fields stay None when the stage that makes them failed."""

    evaluation: Evaluation | None = None


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
