"""Readers for the layouts courses hand out: course CSVs, Kaggle's fer2013.csv, image folders.

Every reader returns a FaceSet, and every malformed input raises DataFormatError naming the file,
the 1-based line (the header is line 1) and what was expected, so a TA can fix the file unaided.
"""

from __future__ import annotations

import csv
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from grader.classes import IMAGE_SIDE, NUM_CLASSES, class_index
from grader.data.faceset import PART_NAMES, DataFormatError, FaceSet

__all__ = ["read_course_csv", "read_faces", "read_fer2013_csv", "read_image_folder"]

PIXELS = IMAGE_SIDE * IMAGE_SIDE

# Canonical spelling, used in messages; files are matched case-insensitively.
COURSE_LABELED_HEADER = ("label", "feature")
COURSE_UNLABELED_HEADER = ("id", "feature")
FER2013_HEADER = ("emotion", "pixels", "Usage")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

# Parsing pixels a few thousand rows at a time bounds the memory of the temporary arrays
# on the full fer2013.csv, and lets the slow, row-by-row error search stay within one chunk.
_CHUNK_ROWS = 4096

# Stricter than int(), which would also accept '1_000' and non-ASCII digits.
_INTEGER = re.compile(r"[+-]?[0-9]+")

_ACCEPTED_LAYOUTS = (
    "label,feature (course train.csv), id,feature (course test.csv), "
    "emotion,pixels,Usage (Kaggle fer2013.csv), or a folder of <class>/*.png images"
)


@dataclass(frozen=True)
class _Rows:
    """The kept data rows of a CSV, transposed into columns."""

    columns: list[list[str]]
    lines: list[int]
    """1-based line of each kept row, for error messages."""
    positions: list[int]
    """0-based position of each kept row among all data rows of the file."""


# --- public readers -------------------------------------------------------------------------


def read_course_csv(path: str | Path) -> FaceSet:
    """Read the course's train.csv (`label,feature`) or test.csv (`id,feature`).

    `feature` holds 2304 space-separated integers 0..255, a 48x48 face in row-major order.
    A labeled file gets its 0-based row positions as ids; an unlabeled one gets the `id` column
    and labels=None. Part masks are attached from `<stem>_masks.npz` beside the CSV, if present.
    """
    csv_path = _existing_file(path)
    rows = _csv_rows(csv_path)
    line, header = _read_header(csv_path, rows)
    _check_course_header(csv_path, header, line)
    data = _collect_rows(csv_path, rows, header)
    keys, features = data.columns
    images = _parse_pixels(csv_path, "feature", features, data.lines)
    if header == _lowered(COURSE_LABELED_HEADER):
        labels = _parse_labels(csv_path, "label", keys, data.lines)
        ids = np.asarray(data.positions, dtype=np.int64)
    else:
        labels = None
        ids = _parse_ids(csv_path, keys, data.lines)
    masks = _read_masks(csv_path, len(images))
    parts = ", with part masks" if masks is not None else ""
    return FaceSet(
        images=images,
        labels=labels,
        ids=ids,
        masks=masks,
        source=f"{csv_path.name} (course CSV, {_count(len(images), 'row')}{parts})",
        meta={"layout": "course_csv", "path": str(csv_path)},
    )


def read_fer2013_csv(path: str | Path, usage: str | None = "PrivateTest") -> FaceSet:
    """Read Kaggle's fer2013.csv (`emotion,pixels,Usage`), keeping the rows whose Usage is `usage`.

    `usage` is Training, PublicTest or PrivateTest (the usual held-out test set); None keeps every
    row. ids are the rows' 0-based positions among all data rows, so they stay stable across usages.
    """
    csv_path = _existing_file(path)
    rows = _csv_rows(csv_path)
    line, header = _read_header(csv_path, rows)
    if header != _lowered(FER2013_HEADER):
        raise DataFormatError(
            csv_path, f"header is '{','.join(header)}', expected '{','.join(FER2013_HEADER)}'", line
        )
    usages_found: set[str] = set()

    def keep(row: list[str]) -> bool:
        found = row[2].strip()
        usages_found.add(found)
        return usage is None or found == usage

    data = _collect_rows(csv_path, rows, header, keep)
    if not data.lines:
        found = ", ".join(sorted(usages_found))
        raise DataFormatError(
            csv_path,
            f"no row has Usage '{usage}' (found: {found}); pass one of those or None for all",
        )
    emotions, pixels, _ = data.columns
    images = _parse_pixels(csv_path, "pixels", pixels, data.lines)
    labels = _parse_labels(csv_path, "emotion", emotions, data.lines)
    selection = usage if usage is not None else "all usages"
    return FaceSet(
        images=images,
        labels=labels,
        ids=np.asarray(data.positions, dtype=np.int64),
        source=f"{csv_path.name} (FER2013 {selection}, {_count(len(images), 'row')})",
        meta={"layout": "fer2013", "path": str(csv_path), "usage": usage or "all"},
    )


def read_image_folder(path: str | Path) -> FaceSet:
    """Read `<class>/*.png` (or .jpg, .jpeg, .bmp) faces, <class> being 0-6 or a class name.

    Images are converted to grayscale and must already be 48x48: resizing would change what the
    students' models see, so a wrong size is an error. Faces are ordered by class, then folder
    name, then file name; ids are positions in that order. Hidden entries and non-image files are
    skipped, since file managers and macOS leave them behind.
    """
    root = Path(path)
    if not root.exists():
        raise DataFormatError(root, "folder does not exist")
    if not root.is_dir():
        raise DataFormatError(root, "is not a folder; expected <class>/*.png images")
    entries = _image_entries(root)
    if not entries:
        raise DataFormatError(
            root,
            f"no images found; expected <class>/*{{{','.join(IMAGE_SUFFIXES)}}} "
            "with <class> 0-6 or a class name such as Happy",
        )
    images = np.stack([_read_image(file) for _, file in entries])
    labels = np.asarray([label for label, _ in entries], dtype=np.int64)
    return FaceSet(
        images=images,
        labels=labels,
        ids=np.arange(len(images), dtype=np.int64),
        source=f"{root.name}/ (image folder, {_count(len(images), 'image')})",
        meta={"layout": "image_folder", "path": str(root)},
    )


def read_faces(path: str | Path, usage: str | None = "PrivateTest") -> FaceSet:
    """Read a face set in whichever known layout `path` has.

    A folder is an image folder; a CSV is told apart by its exact header (case and surrounding
    spaces ignored). `usage` only applies to fer2013.csv.
    """
    target = Path(path)
    if target.is_dir():
        return read_image_folder(target)
    csv_path = _existing_file(target)
    rows = _csv_rows(csv_path)
    try:
        line, header = _read_header(csv_path, rows)
    finally:
        rows.close()  # only the header is needed here; the chosen reader reopens the file
    if header == _lowered(FER2013_HEADER):
        return read_fer2013_csv(csv_path, usage)
    if header in (_lowered(COURSE_LABELED_HEADER), _lowered(COURSE_UNLABELED_HEADER)):
        return read_course_csv(csv_path)
    raise DataFormatError(
        csv_path,
        f"header '{','.join(header)}' is not a known layout; accepted: {_ACCEPTED_LAYOUTS}",
        line,
    )


# --- CSV plumbing ---------------------------------------------------------------------------


def _existing_file(path: str | Path) -> Path:
    """The path as a Path, or an error a TA can act on if it is not a readable file."""
    file = Path(path)
    if not file.exists():
        raise DataFormatError(file, "file does not exist")
    if not file.is_file():
        raise DataFormatError(file, "is not a file; expected a CSV file")
    return file


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (line, fields) for each non-blank row, streaming so big files are never held twice."""
    reader = None
    try:
        # utf-8-sig: files saved by Excel start with a byte-order mark that would otherwise
        # become part of the first column name.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            for row in reader:
                # Blank lines (often a trailing one) carry no face; skip them, keeping line numbers.
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                yield reader.line_num, row
    except UnicodeDecodeError:
        raise _not_utf8_error(path) from None
    except csv.Error as error:
        line = reader.line_num if reader is not None else None
        raise DataFormatError(path, f"not a valid CSV file: {error}", line) from None


def _not_utf8_error(path: Path) -> DataFormatError:
    """Locate the first non-UTF-8 byte: the decoder's offset is into its buffer, not the file."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        byte = data[error.start]
        message = f"byte 0x{byte:02x} is not UTF-8; save the file as UTF-8"
        return DataFormatError(path, message, line)
    return DataFormatError(path, "file is not UTF-8; save it as UTF-8")


def _read_header(path: Path, rows: Iterator[tuple[int, list[str]]]) -> tuple[int, tuple[str, ...]]:
    """The first non-blank row, lower-cased and stripped so 'Label , Feature' still matches."""
    first = next(rows, None)
    if first is None:
        raise DataFormatError(path, f"empty file; expected a header such as {_ACCEPTED_LAYOUTS}")
    line, fields = first
    return line, tuple(field.strip().lower() for field in fields)


def _check_course_header(path: Path, header: tuple[str, ...], line: int) -> None:
    """Accept only `label,feature` or `id,feature`, naming what is missing otherwise."""
    if header in (_lowered(COURSE_LABELED_HEADER), _lowered(COURSE_UNLABELED_HEADER)):
        return
    expected = "expected header 'label,feature' or 'id,feature'"
    if "feature" not in header:
        message = f"missing column 'feature'; {expected}"
    elif "label" not in header and "id" not in header:
        message = f"missing column 'label' or 'id'; {expected}"
    else:
        message = f"header is '{','.join(header)}'; {expected}"
    raise DataFormatError(path, message, line)


def _collect_rows(
    path: Path,
    rows: Iterator[tuple[int, list[str]]],
    header: tuple[str, ...],
    keep: Callable[[list[str]], bool] | None = None,
) -> _Rows:
    """Transpose the data rows into columns, dropping rows `keep` rejects before they pile up."""
    columns: list[list[str]] = [[] for _ in header]
    lines: list[int] = []
    positions: list[int] = []
    position = -1
    for position, (line, row) in enumerate(rows):
        if len(row) != len(header):
            raise DataFormatError(
                path,
                f"row has {_count(len(row), 'field')}, expected {len(header)} ({','.join(header)})",
                line,
            )
        if keep is not None and not keep(row):
            continue
        for column, value in zip(columns, row):
            column.append(value)
        lines.append(line)
        positions.append(position)
    if position < 0:
        raise DataFormatError(path, "no data rows; expected one row per face after the header")
    return _Rows(columns, lines, positions)


# --- values ---------------------------------------------------------------------------------


def _parse_pixels(
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
                f"pixel value {_quoted(token)} is not an integer ({where}); expected 0..255",
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
        raise DataFormatError(path, f"{column} {_quoted(text)} is not an integer", line)
    return int(stripped)


def _parse_labels(
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


def _parse_ids(path: Path, texts: Sequence[str], lines: Sequence[int]) -> np.ndarray:
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


# --- image folders --------------------------------------------------------------------------


def _image_entries(root: Path) -> list[tuple[int, Path]]:
    """(label, file) for every image under root, in class, folder, file-name order."""
    entries: list[tuple[int, str, str, Path]] = []
    for child in root.iterdir():
        if child.name.startswith("."):
            continue
        if child.is_file():
            if child.suffix.lower() in IMAGE_SUFFIXES:
                raise DataFormatError(
                    child, "image is not inside a class folder; expected <class>/<name>.png"
                )
            continue  # a README or listing beside the class folders is harmless
        label = _folder_class(child)
        for file in child.iterdir():
            if _is_image_file(file):
                entries.append((label, child.name, file.name, file))
    entries.sort(key=lambda entry: entry[:3])
    return [(label, file) for label, _, _, file in entries]


def _is_image_file(file: Path) -> bool:
    # Names starting with '.' are macOS '._x.png' resource forks and the like, not faces.
    visible = not file.name.startswith(".")
    return visible and file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES


def _folder_class(folder: Path) -> int:
    """The label a class folder stands for ('3', 'happy' or '高興')."""
    try:
        return class_index(folder.name)
    except ValueError as error:
        raise DataFormatError(folder, f"folder is not a class: {error}") from None


def _read_image(file: Path) -> np.ndarray:
    """One 48x48 image as grayscale uint8, row-major (rows are the image's height)."""
    try:
        with Image.open(file) as image:
            width, height = image.size
            if (width, height) != (IMAGE_SIDE, IMAGE_SIDE):
                raise DataFormatError(
                    file,
                    f"image is {width}x{height}, expected {IMAGE_SIDE}x{IMAGE_SIDE}; "
                    "resize it before grading (the grader does not resize)",
                )
            gray = image.convert("L")
    except OSError as error:  # includes PIL.UnidentifiedImageError and truncated files
        raise DataFormatError(file, f"cannot read image: {error}") from None
    return np.asarray(gray, dtype=np.uint8)


# --- small helpers --------------------------------------------------------------------------


def _lowered(header: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name.lower() for name in header)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _quoted(text: str, limit: int = 20) -> str:
    """Quote a cell for a message, cut short so one garbage cell cannot flood the report."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
