"""Readers for the layouts courses hand out: course CSVs, Kaggle's fer2013.csv, image folders.

Every reader returns a FaceSet, and every malformed input raises DataFormatError naming the file,
the 1-based line (the header is line 1) and what was expected, so a TA can fix the file unaided.

`read_faces` (here) tells the layout apart and calls its reader: grader.data.course_csv,
grader.data.fer2013_csv or grader.data.image_folder. The two CSV readers share
grader.data.csv_rows (rows, header, columns) and grader.data.csv_cells (pixels, labels, ids).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from grader.data.course_csv import COURSE_LABELED_HEADER, COURSE_UNLABELED_HEADER, read_course_csv
from grader.data.csv_rows import ACCEPTED_LAYOUTS, csv_rows, existing_file, lowered, read_header
from grader.data.faceset import DataFormatError, FaceSet
from grader.data.fer2013_csv import FER2013_HEADER, read_fer2013_csv
from grader.data.image_folder import read_image_folder
from grader.filehash import file_sha256

__all__ = ["read_faces", "with_origin"]


def read_faces(path: str | Path, usage: str | None = "PrivateTest") -> FaceSet:
    """Read a face set in whichever known layout `path` has.

    A folder is an image folder; a CSV is told apart by its exact header (case and surrounding
    spaces ignored). `usage` only applies to fer2013.csv.
    """
    target = Path(path)
    if target.is_dir():
        return with_origin(read_image_folder(target), target)
    return with_origin(_read_csv(existing_file(target), usage), target)


def with_origin(faces: FaceSet, path: Path, synthetic: bool = False) -> FaceSet:
    """The set with the file it came from, that file's SHA-256 (a folder has none) and whether it
    is the bundled synthetic data: result.json and the PDF record them."""
    digest = file_sha256(path) if path.is_file() else ""
    return replace(faces, path=str(path.resolve()), sha256=digest, synthetic=synthetic)


def _read_csv(csv_path: Path, usage: str | None) -> FaceSet:
    rows = csv_rows(csv_path)
    try:
        line, header = read_header(csv_path, rows)
    finally:
        rows.close()  # only the header is needed here; the chosen reader reopens the file
    if header == lowered(FER2013_HEADER):
        return read_fer2013_csv(csv_path, usage)
    if header in (lowered(COURSE_LABELED_HEADER), lowered(COURSE_UNLABELED_HEADER)):
        return read_course_csv(csv_path)
    raise DataFormatError(
        csv_path,
        f"header '{','.join(header)}' is not a known layout; accepted: {ACCEPTED_LAYOUTS}",
        line,
    )
