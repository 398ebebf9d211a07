"""Accuracy and the confusion matrix of a submission on the labeled evaluation set.

The logits come from the model protocol (InProcessModel.logits runs Lightning's Trainer.predict);
the labels never leave the grader: they are compared here, after the model has answered."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.classes import NUM_CLASSES


@dataclass(frozen=True)
class Evaluation:
    """What the model predicted on the evaluation set, compared with the labels the grader holds.

    confusion: (7, 7) row-normalized, rows = true class, columns = predicted class
    (scikit-learn's convention); a class with no images has a row of zeros.
    """

    predictions: np.ndarray
    labels: np.ndarray
    confusion: np.ndarray
    counts: np.ndarray  # (7, 7) raw counts behind `confusion`

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean())

    @property
    def per_class_recall(self) -> np.ndarray:
        """(7,) share of each class's images classified correctly: the confusion matrix's diagonal."""
        return np.diag(self.confusion).copy()


def confusion_counts(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    return np.bincount(labels * NUM_CLASSES + predictions, minlength=NUM_CLASSES**2).reshape(
        NUM_CLASSES, NUM_CLASSES)


def evaluate(logits: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Compare predicted classes with the true `labels`."""
    predictions = logits.argmax(axis=1)
    counts = confusion_counts(labels, predictions)
    totals = counts.sum(axis=1, keepdims=True)
    confusion = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    return Evaluation(predictions=predictions, labels=labels, confusion=confusion, counts=counts)
