"""Reading a small CSV that a person wrote (the TA's scores.csv, the class roster) strictly, with
errors that name the file, the line and the column, the way grader.yamlfile does for YAML.

Why not csv.reader alone: it silently lets an unclosed quote swallow every later row, keeps a
global field-size limit that a long cell trips as a bare `_csv.Error`, and its callers here used to
split the text with str.splitlines(), which also breaks lines at U+2028, U+0085, \\x0b and \\x0c, so
comments lost their newlines and every later line number was off. This reader counts only \\n, \\r\\n
and \\r as line ends (what a spreadsheet counts), keeps a quoted cell exactly as written, and turns
every problem into one `file:line: field: what is wrong` line, all of them at once.

The dialect is RFC 4180: comma-separated, a cell in double quotes may hold commas, line breaks and
doubled quotes (""). Spaces and tabs around a cell are layout and are dropped; a quoted cell is kept
verbatim. A quote anywhere else, text after a closing quote, or a quote that is never closed is an
error rather than a guess.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.yamlfile import ConfigError

MAX_FILE_BYTES = 32 * 1024 * 1024
"""A hand-kept CSV is kilobytes; 32 MiB leaves room for a large class and stops a wrong file early."""
MAX_CELL_CHARS = 4000
"""A comment is a few sentences; a longer cell is almost always an unclosed quote or the wrong file."""
MAX_PROBLEMS = 100
"""More problems than this are counted, not listed: past that point the file is the wrong one."""
SHOWN_CHARS = 60
"""How much of a cell an error message repeats back."""

_BLANKS = re.compile(r"[ \t]*")
_PLAIN_LINE = re.compile(r'[^"\r\n]*')  # a whole physical line without a quote: the fast path
_UNQUOTED = re.compile(r'[^,"\r\n]*')
_QUOTED_BODY = re.compile(r'[^"]*(?:""[^"]*)*')  # from after the opening quote up to the closing one
_LINE_END = re.compile(r"\r\n|\r|\n")
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_PROBLEM_LINE = re.compile(r":([0-9]+):")


def plain_decimal(text: str) -> float | None:
    """`text` as a number when it is a plain decimal (digits with at most one point and an optional
    sign: '1', '0.5', '.5', '1.', '+1', '-1'), else None.

    float() also takes '0.2_5', '1e3', 'inf', ' nan', and int() takes '½'-like digits from other
    scripts; a score typed by hand is none of these, so any of them is a typo to report, not a value.
    """
    if not _PLAIN_DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value + 0.0 if math.isfinite(value) else None  # + 0.0 turns '-0' into 0.0


def shorten(text: str, width: int = SHOWN_CHARS) -> str:
    """`text` made safe to repeat in a one-line message: control and line-separator characters
    escaped (a U+2028 would break the message's line) and anything past `width` cut with '...'."""
    safe = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text[:width + 1])
    return safe if len(text) <= width else safe[:width] + "..."


def shown(text: str) -> str:
    """`text` quoted and shortened for an error message."""
    return f"'{shorten(text)}'"


def summarize_ids(first: Sequence[str], count: int, width: int = 40) -> str:
    """'a, b, c and 999,997 more': a list of ids short enough for one warning line however many
    there are (a scores.csv for another class once printed ten megabytes of them)."""
    names = [shorten(item, width) for item in first]
    rest = count - len(names)
    if not names:
        return f"{count:,}"
    return ", ".join(names) if rest <= 0 else f"{', '.join(names)} and {rest:,} more"


def config_error(path: str | Path, problems: list[str]) -> ConfigError:
    """A ConfigError with the problems in line order and at most MAX_PROBLEMS of them listed, so a
    reader's own checks and the CSV's can be reported together and a wrong file stays readable."""
    ordered = sorted(problems, key=lambda problem: _line_of_problem(str(path), problem))
    if len(ordered) > MAX_PROBLEMS:
        rest = len(ordered) - MAX_PROBLEMS
        ordered = ordered[:MAX_PROBLEMS] + [f"{path}: ... and {rest:,} more problem(s); is this the right file?"]
    return ConfigError(path, ordered)


def _line_of_problem(path: str, problem: str) -> int:
    match = _PROBLEM_LINE.match(problem, len(path)) if problem.startswith(path) else None
    return int(match.group(1)) if match else 0


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
    records = _Records(text, looks_like_row)
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


def _line_ends(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


@dataclass(frozen=True)
class _Problem:
    line: int
    cell: int  # index of the cell it is about
    message: str


@dataclass
class _Record:
    """One CSV record: its cells, the line it starts on, and the line each cell starts on."""

    line: int
    cells: list[str]
    cell_lines: list[int] | None = None  # None: every cell is on `line`
    problem: _Problem | None = None

    @property
    def blank(self) -> bool:
        return not any(map(str.strip, self.cells))

    def line_of(self, index: int) -> int:
        return self.cell_lines[index] if self.cell_lines is not None else self.line


class _Records:
    """The records of a CSV text, one at a time. A record with a problem carries it and the reading
    goes on at a line where the next record can start, so later problems are found too."""

    def __init__(self, text: str, looks_like_row: Callable[[Mapping[str, str]], bool] | None) -> None:
        self.text = text
        self.looks_like_row = looks_like_row
        self.names: list[str] | None = None  # the header's columns, once read
        self.pos = 0
        self.line = 1

    def __iter__(self) -> Iterator[_Record]:
        while self.pos < len(self.text):
            plain = _PLAIN_LINE.match(self.text, self.pos)
            if plain.end() == len(self.text) or self.text[plain.end()] != '"':
                cells = [cell.strip(" \t") for cell in plain.group().split(",")]
                record = _Record(self.line, cells)
                self._next_line(plain.end())
                yield record
            else:
                yield self._record()

    def _next_line(self, pos: int) -> None:
        """Move past the line end at or after `pos` (or to the end of the text)."""
        end = _LINE_END.search(self.text, pos)
        self.pos = end.end() if end else len(self.text)
        self.line += 1

    def _record(self) -> _Record:
        """A record with at least one quote, read cell by cell."""
        text, record = self.text, _Record(self.line, [], [])
        while True:
            start = _BLANKS.match(text, self.pos).end()
            record.cell_lines.append(self.line)  # type: ignore[union-attr]
            if start < len(text) and text[start] == '"':
                problem = self._quoted(start, record)
            else:
                problem = self._unquoted(record)
            if problem is not None:
                record.problem = problem
                return record
            if self.pos < len(text) and text[self.pos] == ",":
                self.pos += 1
                continue
            self._next_line(self.pos)
            return record

    def _unquoted(self, record: _Record) -> _Problem | None:
        cell = _UNQUOTED.match(self.text, self.pos)
        record.cells.append(cell.group().strip(" \t"))
        if cell.end() < len(self.text) and self.text[cell.end()] == '"':
            problem = _Problem(self.line, len(record.cells) - 1,
                               'a quote inside a cell that does not start with one; put the whole cell in quotes '
                               'and write the quote inside it twice ("")')
            self._next_line(cell.end())
            return problem
        self.pos = cell.end()
        return None

    def _quoted(self, start: int, record: _Record) -> _Problem | None:
        text, line, index = self.text, self.line, len(record.cells)
        body = _QUOTED_BODY.match(text, start + 1)
        if body.end() >= len(text):
            spanned = _line_ends(body.group().rstrip("\r\n"))
            self._next_line(start)  # read on from the next line: its rows were swallowed, not broken
            return _Problem(line, index, f"the quote that opens this cell is never closed (it runs to the end of the "
                                         f"file, over {spanned + 1:,} line(s)); close it, or write a quote inside "
                                         f'the text twice ("")')
        raw = body.group()
        overrun = self._row_inside(raw, line)
        if overrun is not None:
            self._next_line(start)
            return _Problem(line, index, f"the quote that opens this cell runs over what look like further rows "
                                         f"({overrun}); close the quote on its own row, or write a quote inside "
                                         f'the text twice ("")')
        record.cells.append(raw.replace('""', '"'))
        self.line += _line_ends(raw)
        after = _BLANKS.match(text, body.end() + 1).end()
        if after < len(text) and text[after] not in ",\r\n":
            problem = _Problem(self.line, index, 'text after the closing quote; write a quote inside a quoted cell '
                                                 'twice ("")')
            self._next_line(after)
            return problem
        self.pos = after
        return None

    def _row_inside(self, raw: str, line: int) -> str | None:
        """'line N: ...' for the first line of a multi-line quoted cell that looks like a row of its
        own, else None. The first line is the text after the opening quote, never a whole row."""
        if self.looks_like_row is None or self.names is None:
            return None
        for offset, part in enumerate(_LINE_END.split(raw)[1:], start=1):
            cells = part.split(",")
            if len(cells) > 1 and self.looks_like_row(dict(zip(self.names, cells))):
                return f"line {line + offset:,}: {shown(part)}"
        return None


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

    def resolve(self, path: Path, record: _Record) -> list[str]:
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

    def row(self, record: _Record) -> dict[str, str] | None:
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

    def _problems(self, record: _Record) -> bool:
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
