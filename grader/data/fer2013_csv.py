"""Kaggle's fer2013.csv (`emotion,pixels,Usage`), one usage (Training, PublicTest, PrivateTest) or all."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grader.data.csv_cells import parse_labels, parse_pixels
from grader.data.csv_rows import collect_rows, csv_rows, existing_file, lowered, read_header
from grader.data.faceset import DataFormatError, FaceSet
from grader.data.reader_words import counted

# Canonical spelling, used in messages; files are matched case-insensitively.
FER2013_HEADER = ("emotion", "pixels", "Usage")


def read_fer2013_csv(path: str | Path, usage: str | None = "PrivateTest") -> FaceSet:
    """Read Kaggle's fer2013.csv (`emotion,pixels,Usage`), keeping the rows whose Usage is `usage`.

    `usage` is Training, PublicTest or PrivateTest (the usual held-out test set); None keeps every
    row. ids are the rows' 0-based positions among all data rows, so they stay stable across usages.
    """
    csv_path = existing_file(path)
    rows = csv_rows(csv_path)
    line, header = read_header(csv_path, rows)
    if header != lowered(FER2013_HEADER):
        raise DataFormatError(
            csv_path, f"header is '{','.join(header)}', expected '{','.join(FER2013_HEADER)}'", line
        )
    usages_found: set[str] = set()

    def keep(row: list[str]) -> bool:
        found = row[2].strip()
        usages_found.add(found)
        return usage is None or found == usage

    data = collect_rows(csv_path, rows, header, keep)
    if not data.lines:
        found = ", ".join(sorted(usages_found))
        raise DataFormatError(
            csv_path,
            f"no row has Usage '{usage}' (found: {found}); pass one of those or None for all",
        )
    emotions, pixels, _ = data.columns
    images = parse_pixels(csv_path, "pixels", pixels, data.lines)
    labels = parse_labels(csv_path, "emotion", emotions, data.lines)
    selection = usage if usage is not None else "all usages"
    return FaceSet(
        images=images,
        labels=labels,
        ids=np.asarray(data.positions, dtype=np.int64),
        source=f"{csv_path.name} (FER2013 {selection}, {counted(len(images), 'row')})",
        meta={"layout": "fer2013", "path": str(csv_path), "usage": usage or "all"},
    )


__all__ = ["FER2013_HEADER", "read_fer2013_csv"]
