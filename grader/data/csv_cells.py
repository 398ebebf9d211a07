"""The cells of a face-set CSV: pixel strings, class labels and ids, parsed in bulk and checked
strictly, each error naming the file, the line and the value."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from grader.classes import IMAGE_SIDE, NUM_CLASSES
from grader.data.faceset import DataFormatError
from grader.data.reader_words import quoted

PIXELS = IMAGE_SIDE * IMAGE_SIDE

# Parsing pixels a few thousand rows at a time bounds the memory of the temporary arrays
# on the full fer2013.csv, and lets the slow, row-by-row error search stay within one chunk.
_CHUNK_ROWS = 4096

# Stricter than int(), which would also accept '1_000' and non-ASCII digits.
_INTEGER = re.compile(r"[+-]?[0-9]+")


def parse_pixels(
    path: Path, column: str, texts: Sequence[str], lines: Sequence[int]
) -> np.ndarray:
    """Turn the pixel strings into (N, 48, 48) uint8, row-major like FER2013."""
    flat = np.empty((len(texts), PIXELS), dtype=np.uint8)
    for start in range(0, len(texts), _CHUNK_ROWS):
        stop = start + _CHUNK_ROWS
        flat[start:stop] = _parse_pixel_chunk(path, column, texts[start:stop], lines[start:stop])
    return flat.reshape(len(texts), IMAGE_SIDE, IMAGE_SIDE)


def _parse_pixel_chunk(
    path: Path, column: str, texts: Sequence[str], lines: Sequence[int]
) -> np.ndarray:
    """Parse rows in bulk with numpy's C reader; go row by row only to name the bad row."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # all-empty input warns before we report it properly
            values = np.loadtxt(texts, dtype=np.uint8, comments=None, ndmin=2)
    except ValueError:
        values = None
    # A uint8 parse rejects values outside 0..255, but blank rows are silently skipped and
    # ragged rows fail, so anything but the exact shape goes to the row-by-row check.
    if values is not None and values.shape == (len(texts), PIXELS):
        return values
    return np.stack(
        [_parse_pixel_row(path, column, text, line) for text, line in zip(texts, lines)]
    )


def _parse_pixel_row(path: Path, column: str, text: str, line: int) -> np.ndarray:
    """One row's pixels, or an error saying which value is wrong and what is expected."""
    tokens = text.split()
    if len(tokens) != PIXELS:
        raise DataFormatError(
            path,
            f"{column} has {len(tokens)} values, expected {PIXELS} ({IMAGE_SIDE}x{IMAGE_SIDE})",
            line,
        )
    values = np.empty(PIXELS, dtype=np.uint8)
    for index, token in enumerate(tokens):
        where = f"pixel {index + 1} of {PIXELS}"
        if not _INTEGER.fullmatch(token):
            raise DataFormatError(
                path,
                f"pixel value {quoted(token)} is not an integer ({where}); expected 0..255",
                line,
            )
        value = int(token)
        if not 0 <= value <= 255:
            raise DataFormatError(path, f"pixel value {value} is outside 0..255 ({where})", line)
        values[index] = value
    return values


def _parse_integer(path: Path, column: str, text: str, line: int) -> int:
    """One integer cell, or an error quoting what was there instead."""
    stripped = text.strip()
    if not _INTEGER.fullmatch(stripped):
        raise DataFormatError(path, f"{column} {quoted(text)} is not an integer", line)
    return int(stripped)


def parse_labels(
    path: Path, column: str, texts: Sequence[str], lines: Sequence[int]
) -> np.ndarray:
    """Class labels 0..6 as int64, naming the first line that holds anything else."""
    values = [_parse_integer(path, column, text, line) for text, line in zip(texts, lines)]
    for value, line in zip(values, lines):
        if not 0 <= value < NUM_CLASSES:
            raise DataFormatError(
                path, f"{column} {value} is not a class (expected 0..{NUM_CLASSES - 1})", line
            )
    return np.asarray(values, dtype=np.int64)


def parse_ids(path: Path, texts: Sequence[str], lines: Sequence[int]) -> np.ndarray:
    """The `id` column as int64; ids must be unique because predictions are matched by id."""
    first_line: dict[int, int] = {}
    for text, line in zip(texts, lines):
        value = _parse_integer(path, "id", text, line)
        if not 0 <= value < 2**63:
            raise DataFormatError(path, f"id {value} is not a non-negative 64-bit integer", line)
        if value in first_line:
            raise DataFormatError(
                path, f"id {value} repeats line {first_line[value]}; ids must be unique", line
            )
        first_line[value] = line
    return np.fromiter(first_line, dtype=np.int64, count=len(first_line))


__all__ = ["PIXELS", "parse_ids", "parse_labels", "parse_pixels"]
