"""The in-memory form every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PART_NAMES: tuple[str, ...] = ("background", "face", "brows", "eyes", "nose", "mouth")
"""Values of a part mask: mask == PART_NAMES.index('mouth') marks the mouth."""


class DataFormatError(ValueError):
    """A data file that cannot be read; the message names the file, the line and the fix."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class FaceSet:
    """48x48 grayscale faces with optional labels and part masks.

    images: (N, 48, 48) uint8, row-major as in FER2013.
    labels: (N,) int64 in 0..6, or None for an unlabeled set such as the course's test.csv.
    ids: (N,) int64, the row id in the source (the `id` column, or the row's position).
    masks: (N, 48, 48) uint8 part labels (see PART_NAMES), or None where there is no ground truth.
    source: where the set came from, for the report.
    path: the file (or folder) it was read from, absolute; sha256: the file's bytes' SHA-256 ("" for
    an image folder); synthetic: the bundled synthetic faces, not real ones (grader.data.bundled).
    """

    images: np.ndarray
    labels: np.ndarray | None
    ids: np.ndarray
    masks: np.ndarray | None = None
    source: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    path: str = ""
    sha256: str = ""
    synthetic: bool = False

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.shape[1:] != (48, 48):
            raise ValueError(f"images must be (N,48,48) uint8, got {self.images.shape} {self.images.dtype}")
        for name in ("labels", "ids", "masks"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} rows for {n} images")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def class_counts(self) -> np.ndarray:
        """How many images each of the 7 classes has."""
        if self.labels is None:
            raise ValueError(f"{self.source or 'this set'} has no labels")
        return np.bincount(self.labels, minlength=7)
