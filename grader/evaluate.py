"""Accuracy and the confusion matrix of a submission on the labeled evaluation set, via Trainer.predict."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
import torch

from grader.classes import NUM_CLASSES
from grader.data.datamodule import FaceDataModule
from grader.profile import HardwareProfile
from grader.submission.module import SubmissionModule


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


def predict_logits(module: SubmissionModule, data: FaceDataModule, profile: HardwareProfile) -> np.ndarray:
    """(N, 7) float32 logits for the evaluation images, in order, through Lightning's predict loop."""
    trainer = pl.Trainer(accelerator=profile.device, devices=1, deterministic=profile.deterministic,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    batches = trainer.predict(module, dataloaders=data.predict_dataloader())
    return torch.cat(batches).float().cpu().numpy()


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
