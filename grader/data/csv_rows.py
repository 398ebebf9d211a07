"""Reading the rows of a face-set CSV: the file checked, the rows streamed with their 1-based
physical lines (the header is line 1), the header matched case-insensitively, and the data rows
transposed into columns. The course's and Kaggle's readers share it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from grader.data.faceset import DataFormatError
from grader.data.reader_words import counted

ACCEPTED_LAYOUTS = (
    "label,feature (course train.csv), id,feature (course test.csv), "
    "emotion,pixels,Usage (Kaggle fer2013.csv), or a folder of <class>/*.png images"
)


@dataclass(frozen=True)
class Rows:
    """The kept data rows of a CSV, transposed into columns."""

    columns: list[list[str]]
    lines: list[int]
    """1-based line of each kept row, for error messages."""
    positions: list[int]
    """0-based position of each kept row among all data rows of the file."""


def existing_file(path: str | Path) -> Path:
    """The path as a Path, or an error a TA can act on if it is not a readable file."""
    file = Path(path)
    if not file.exists():
        raise DataFormatError(file, "file does not exist")
    if not file.is_file():
        raise DataFormatError(file, "is not a file; expected a CSV file")
    return file


def csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
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


def read_header(path: Path, rows: Iterator[tuple[int, list[str]]]) -> tuple[int, tuple[str, ...]]:
    """The first non-blank row, lower-cased and stripped so 'Label , Feature' still matches."""
    first = next(rows, None)
    if first is None:
        raise DataFormatError(path, f"empty file; expected a header such as {ACCEPTED_LAYOUTS}")
    line, fields = first
    return line, tuple(field.strip().lower() for field in fields)


def collect_rows(
    path: Path,
    rows: Iterator[tuple[int, list[str]]],
    header: tuple[str, ...],
    keep: Callable[[list[str]], bool] | None = None,
) -> Rows:
    """Transpose the data rows into columns, dropping rows `keep` rejects before they pile up."""
    columns: list[list[str]] = [[] for _ in header]
    lines: list[int] = []
    positions: list[int] = []
    position = -1
    for position, (line, row) in enumerate(rows):
        if len(row) != len(header):
            raise DataFormatError(
                path,
                f"row has {counted(len(row), 'field')}, expected {len(header)} ({','.join(header)})",
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
    return Rows(columns, lines, positions)


def lowered(header: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name.lower() for name in header)


__all__ = ["ACCEPTED_LAYOUTS", "Rows", "collect_rows", "csv_rows", "existing_file", "lowered", "read_header"]
