"""Reading a small CSV that a person wrote (the TA's scores.csv, the class roster) strictly, with
errors that name the file, the line and the column, the way grader.yamlfile does for YAML.

Why not csv.reader alone: it silently lets an unclosed quote swallow every later row, keeps a
global field-size limit that a long cell trips as a bare `_csv.Error`, and its callers here used to
split the text with str.splitlines(), which also breaks lines at U+2028, U+0085, \\x0b and \\x0c, so
comments lost their newlines and every later line number was off. This reader counts only \\n, \\r\\n
and \\r as line ends (what a spreadsheet counts), keeps a quoted cell exactly as written, and turns
every problem into one `file:line: field: what is wrong` line, all of them at once.

The dialect (RFC 4180, strict about quotes) is read record by record in grader.csvrecords; the
wording of the problems, and config_error that gathers them, are in grader.csvmessages.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.csvmessages import config_error, shown
from grader.csvrecords import Record, Records
from grader.yamlfile import ConfigError

MAX_FILE_BYTES = 32 * 1024 * 1024
"""A hand-kept CSV is kilobytes; 32 MiB leaves room for a large class and stops a wrong file early."""
MAX_CELL_CHARS = 4000
"""A comment is a few sentences; a longer cell is almost always an unclosed quote or the wrong file."""


def read_csv_rows(path: str | Path, required_columns: Sequence[str], optional_columns: Sequence[str] = (), *,
                  aliases: Mapping[str, str] | None = None,
                  looks_like_row: Callable[[Mapping[str, str]], bool] | None = None,
                  comma_hint: str = "quote a cell that holds a comma",
                  problems: list[str] | None = None,
                  max_cell_chars: int = MAX_CELL_CHARS,
                  max_bytes: int = MAX_FILE_BYTES) -> list[tuple[int, dict[str, str]]]:
    """The data rows of a CSV with a header, each with the physical line it starts on and a value
    (possibly '') for every required and optional column.

    A file that cannot be read as CSV text at all (missing, too large, not UTF-8, a NUL byte, a bad
    header) raises ConfigError at once. A bad row is left out and its problem added to `problems`,
    so the caller can add its own checks of the good rows and report everything together (through
    config_error); with problems=None the row problems raise here.

    Header names are matched without regard to case or surrounding spaces; `aliases` maps another
    accepted name to its column (the roster's `lms_id` for `folder`). An unknown column is an
    error: a misspelled `coment` would otherwise drop every comment without a word. `looks_like_row`
    tells whether one line of a quoted multi-line cell looks like a row of its own; such a cell is
    reported as a quote left open that runs over the next rows. `comma_hint` ends the message for a
    row with more cells than the header.
    """
    path = Path(path)
    text = _read_text(path, max_bytes)
    columns = _Columns(tuple(required_columns), tuple(optional_columns), dict(aliases or {}))
    records = Records(text, looks_like_row)
    found: list[str] = []
    rows: list[tuple[int, dict[str, str]]] = []
    reader: _Rows | None = None
    for record in records:
        if reader is None:
            if record.problem is None and record.blank:
                continue
            records.names = columns.resolve(path, record)
            reader = _Rows(path, records.names, columns.all, max_cell_chars, comma_hint, found)
            continue
        row = reader.row(record)
        if row is not None:
            rows.append((record.line, row))
    if reader is None:
        raise ConfigError(path, [f"{path}:1: header: the file is empty; the header must be {columns.header}"])
    if problems is not None:
        problems.extend(found)
    elif found:
        raise config_error(path, found)
    return rows


def _read_text(path: Path, max_bytes: int) -> str:
    """The file's text without a spreadsheet's BOM; refuses a file too large, not UTF-8, or with a NUL."""
    if not path.is_file():
        raise ConfigError(path, [f"{path}: file not found"])
    size = path.stat().st_size
    if size > max_bytes:
        raise ConfigError(path, [f"{path}: the file is {_size(size)}; a CSV read here may be at most "
                                 f"{_size(max_bytes)} (is this the right file?)"])
    data = path.read_bytes()
    problems = _encoding_problems(path, data)
    if problems:
        raise ConfigError(path, problems)
    return data.decode("utf-8").removeprefix("\ufeff")


def _size(count: int) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{round(count / scale, 1):,g} {unit}"
    return f"{count:,} bytes"


def _encoding_problems(path: Path, data: bytes, limit: int = 10) -> list[str]:
    """Where the bytes are not UTF-8 text, by line and byte offset; a NUL byte counts as not text."""
    save = "save it as UTF-8 (Excel: CSV UTF-8)"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return [f"{path}:1: the file is UTF-16 text, not UTF-8; {save}"]
    if data.startswith(b"PK\x03\x04"):
        return [f"{path}:1: the file is a zip archive (an .xlsx workbook?), not CSV text; {save}"]
    problems = []
    start = 0
    while True:
        try:
            codecs.decode(memoryview(data)[start:], "utf-8")
            break
        except UnicodeDecodeError as error:
            if len(problems) == limit:
                problems.append(f"{path}: ... and more bytes that are not UTF-8")
                break
            offset = start + error.start
            problems.append(f"{path}:{_line_at(data, offset)}: not UTF-8 text: byte 0x{data[offset]:02x} at offset "
                            f"{offset:,} ({error.reason}); {save}")
            start = start + error.end
    nul = data.find(b"\0")
    if nul >= 0:
        count = data.count(b"\0")
        also = f" ({count:,} NUL bytes in all)" if count > 1 else ""
        problems.append(f"{path}:{_line_at(data, nul)}: a NUL byte at offset {nul:,}{also}; a CSV is text: {save}")
    return problems


def _line_at(data: bytes, offset: int) -> int:
    """The physical line holding byte `offset`, counting \\n, \\r\\n and \\r as line ends."""
    head = data[:offset]
    return head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1


@dataclass(frozen=True)
class _Columns:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    aliases: dict[str, str]

    @property
    def all(self) -> tuple[str, ...]:
        return self.required + self.optional

    @property
    def header(self) -> str:
        aliases = "".join(f" ({alias} for {name})" for alias, name in self.aliases.items())
        return ",".join(self.all) + aliases

    def resolve(self, path: Path, record: Record) -> list[str]:
        """The column each header cell names ('' for an empty one); raises listing every problem."""
        where = f"{path}:{record.line}: header"
        if record.problem is not None:
            raise ConfigError(path, [f"{where}: {record.problem.message}"])
        names: list[str] = []
        problems = []
        for number, cell in enumerate(record.cells, start=1):
            given = cell.strip().casefold()
            name = self.aliases.get(given, given)
            if name and name not in self.all:
                problems.append(f"{where}: unknown column {shown(cell)} (cell {number}); the columns are "
                                f"{self.header}")
            elif name and name in names:
                problems.append(f"{where}: the column '{name}' is given twice, in cells {names.index(name) + 1} "
                                f"and {number}; keep one")
            names.append(name)
        missing = [name for name in self.required if name not in names]
        if missing:
            problems.append(f"{where}: missing column(s) {', '.join(missing)}; the header must be {self.header}")
        if problems:
            raise config_error(path, problems)
        return names


class _Rows:
    """Turns records into {column: value} rows under a header, adding each broken row's problems."""

    def __init__(self, path: Path, names: list[str], columns: tuple[str, ...], max_cell_chars: int,
                 comma_hint: str, problems: list[str]) -> None:
        self.path, self.names, self.max_cell_chars = path, names, max_cell_chars
        self.comma_hint, self.problems = comma_hint, problems
        self.empty_row = dict.fromkeys(columns, "")
        self.all_named = all(names)

    def row(self, record: Record) -> dict[str, str] | None:
        """The record as a row, or None when it is blank or broken (its problems added)."""
        cells = record.cells
        if record.problem is not None:
            problem = record.problem
            self.problems.append(f"{self.path}:{problem.line}: {_column(self.names, problem.cell)}: "
                                 f"{problem.message}")
            return None
        if not any(map(str.strip, cells)):
            return None
        if not (self.all_named and len(cells) <= len(self.names) and max(map(len, cells)) <= self.max_cell_chars):
            if self._problems(record):
                return None
        row = self.empty_row.copy()
        if self.all_named:
            row.update(zip(self.names, cells))
        else:
            row.update((name, cell) for name, cell in zip(self.names, cells) if name)
        return row

    def _problems(self, record: Record) -> bool:
        """Adds the problems of a row that is not plainly fine; whether there were any."""
        before, names, where = len(self.problems), self.names, f"{self.path}:"
        for index, cell in enumerate(record.cells):
            if not cell.strip():
                continue
            if index >= len(names):
                self.problems.append(f"{where}{record.line}: row: has {len(record.cells)} cells, the header "
                                     f"{len(names)}; {self.comma_hint}")
                break
            if not names[index]:
                self.problems.append(f"{where}{record.line_of(index)}: row: cell {index + 1} holds {shown(cell)} "
                                     f"but the header names no column for it")
            elif len(cell) > self.max_cell_chars:
                self.problems.append(f"{where}{record.line_of(index)}: {names[index]}: {len(cell):,} characters, "
                                     f"more than the {self.max_cell_chars:,} a cell may hold (is a quote missing?)")
        return len(self.problems) > before


def _column(names: list[str], index: int) -> str:
    return names[index] if index < len(names) and names[index] else f"cell {index + 1}"
