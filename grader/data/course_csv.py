"""The course's own layout: train.csv (`label,feature`) and test.csv (`id,feature`), with optional
part masks in `<stem>_masks.npz` beside the CSV."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from grader.classes import IMAGE_SIDE
from grader.data.csv_cells import parse_ids, parse_labels, parse_pixels
from grader.data.csv_rows import collect_rows, csv_rows, existing_file, lowered, read_header
from grader.data.faceset import PART_NAMES, DataFormatError, FaceSet
from grader.data.reader_words import counted

# Canonical spelling, used in messages; files are matched case-insensitively.
COURSE_LABELED_HEADER = ("label", "feature")
COURSE_UNLABELED_HEADER = ("id", "feature")


def read_course_csv(path: str | Path) -> FaceSet:
    """Read the course's train.csv (`label,feature`) or test.csv (`id,feature`).

    `feature` holds 2304 space-separated integers 0..255, a 48x48 face in row-major order.
    A labeled file gets its 0-based row positions as ids; an unlabeled one gets the `id` column
    and labels=None. Part masks are attached from `<stem>_masks.npz` beside the CSV, if present.
    """
    csv_path = existing_file(path)
    rows = csv_rows(csv_path)
    line, header = read_header(csv_path, rows)
    _check_course_header(csv_path, header, line)
    data = collect_rows(csv_path, rows, header)
    keys, features = data.columns
    images = parse_pixels(csv_path, "feature", features, data.lines)
    if header == lowered(COURSE_LABELED_HEADER):
        labels = parse_labels(csv_path, "label", keys, data.lines)
        ids = np.asarray(data.positions, dtype=np.int64)
    else:
        labels = None
        ids = parse_ids(csv_path, keys, data.lines)
    masks = _read_masks(csv_path, len(images))
    parts = ", with part masks" if masks is not None else ""
    return FaceSet(
        images=images,
        labels=labels,
        ids=ids,
        masks=masks,
        source=f"{csv_path.name} (course CSV, {counted(len(images), 'row')}{parts})",
        meta={"layout": "course_csv", "path": str(csv_path)},
    )


def _check_course_header(path: Path, header: tuple[str, ...], line: int) -> None:
    """Accept only `label,feature` or `id,feature`, naming what is missing otherwise."""
    if header in (lowered(COURSE_LABELED_HEADER), lowered(COURSE_UNLABELED_HEADER)):
        return
    expected = "expected header 'label,feature' or 'id,feature'"
    if "feature" not in header:
        message = f"missing column 'feature'; {expected}"
    elif "label" not in header and "id" not in header:
        message = f"missing column 'label' or 'id'; {expected}"
    else:
        message = f"header is '{','.join(header)}'; {expected}"
    raise DataFormatError(path, message, line)


def _read_masks(csv_path: Path, rows: int) -> np.ndarray | None:
    """Part masks from `<stem>_masks.npz` beside the CSV, checked against its row count."""
    npz = csv_path.with_name(f"{csv_path.stem}_masks.npz")
    if not npz.exists():
        return None
    masks = _load_mask_array(npz)
    expected = (rows, IMAGE_SIDE, IMAGE_SIDE)
    if masks.shape != expected:
        raise DataFormatError(
            npz,
            f"masks has shape {masks.shape}, expected {expected}: one "
            f"{IMAGE_SIDE}x{IMAGE_SIDE} mask per row of {csv_path.name}",
        )
    if not np.issubdtype(masks.dtype, np.integer):
        raise DataFormatError(npz, f"masks has dtype {masks.dtype}, expected uint8 part labels")
    parts = len(PART_NAMES)
    if masks.size and (masks.min() < 0 or masks.max() >= parts):
        bad = masks.min() if masks.min() < 0 else masks.max()
        raise DataFormatError(
            npz,
            f"mask value {bad} is not a part (expected 0..{parts - 1}: {', '.join(PART_NAMES)})",
        )
    return masks.astype(np.uint8, copy=False)


def _load_mask_array(npz: Path) -> np.ndarray:
    """The `masks` array of an .npz, or an error saying why it could not be read."""
    try:
        with np.load(npz, allow_pickle=False) as archive:
            names = list(archive.files)
            masks = archive["masks"] if "masks" in names else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError) as error:
        # AttributeError: np.load of a plain .npy returns an array, which has no `.files`.
        raise DataFormatError(
            npz, f"cannot read masks ({error}); expected an .npz with an array 'masks'"
        ) from None
    if masks is None:
        raise DataFormatError(
            npz, f"no array 'masks' (found: {', '.join(names) or 'none'}); expected (N,48,48) uint8"
        )
    return masks


__all__ = ["COURSE_LABELED_HEADER", "COURSE_UNLABELED_HEADER", "read_course_csv"]
