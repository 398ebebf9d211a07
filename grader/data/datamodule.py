"""A LightningDataModule over any FaceSet: the course CSVs, fer2013.csv, an image folder or synthetic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from grader.data.faceset import FaceSet
from grader.data.readers import read_faces


def _pixels(faces: FaceSet) -> torch.Tensor:
    """(N, 48, 48) float32 pixels in 0..255: the raw form every SubmissionModule takes."""
    return torch.from_numpy(faces.images.astype(np.float32))


class FaceDataModule(pl.LightningDataModule):
    """Serves a training set (optional, labeled) and an evaluation set.

    `predict_dataloader` yields pixels only, never labels: the grader keeps the labels on its own
    side and compares predictions to them after the model has answered.
    """

    def __init__(self, evaluation: FaceSet, train: FaceSet | None = None, batch_size: int = 256,
                 seed: int = 0) -> None:
        super().__init__()
        self.evaluation = evaluation
        self.train = train
        self.batch_size = batch_size
        self.seed = seed

    @classmethod
    def from_paths(cls, evaluation: str | Path, train: str | Path | None = None, usage: str | None = "PrivateTest",
                   **kwargs) -> FaceDataModule:
        """Read any supported layout (course CSV, fer2013.csv, image folder) through `read_faces`."""
        return cls(read_faces(evaluation, usage=usage),
                   read_faces(train, usage="Training") if train is not None else None, **kwargs)

    def train_dataloader(self) -> DataLoader:
        if self.train is None or self.train.labels is None:
            raise ValueError("this FaceDataModule has no labeled training set")
        dataset = TensorDataset(_pixels(self.train), torch.from_numpy(self.train.labels))
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        if self.evaluation.labels is None:
            raise ValueError(f"{self.evaluation.source} has no labels to validate against")
        dataset = TensorDataset(_pixels(self.evaluation), torch.from_numpy(self.evaluation.labels))
        return DataLoader(dataset, batch_size=self.batch_size)

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(_pixels(self.evaluation)), batch_size=self.batch_size)
