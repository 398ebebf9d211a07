"""The records of a CSV text, read strictly with their physical line numbers (for grader.csvfile).

The dialect is RFC 4180: comma-separated, a cell in double quotes may hold commas, line breaks and
doubled quotes (""). Spaces and tabs around a cell are layout and are dropped; a quoted cell is kept
verbatim. A quote anywhere else, text after a closing quote, or a quote that is never closed is an
error rather than a guess.

Only \\n, \\r\\n and \\r end a line (what a spreadsheet counts; str.splitlines() would also break at
U+2028, U+0085, \\x0b and \\x0c). A record with a problem carries it, and the reading goes on where
the next record can start, so that every problem of a file is found at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from grader.csvmessages import shown

_BLANKS = re.compile(r"[ \t]*")
_PLAIN_LINE = re.compile(r'[^"\r\n]*')  # a whole physical line without a quote: the fast path
_UNQUOTED = re.compile(r'[^,"\r\n]*')
_QUOTED_BODY = re.compile(r'[^"]*(?:""[^"]*)*')  # from after the opening quote up to the closing one
_LINE_END = re.compile(r"\r\n|\r|\n")


def _line_ends(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


@dataclass(frozen=True)
class Problem:
    line: int
    cell: int  # index of the cell it is about
    message: str


@dataclass
class Record:
    """One CSV record: its cells, the line it starts on, and the line each cell starts on."""

    line: int
    cells: list[str]
    cell_lines: list[int] | None = None  # None: every cell is on `line`
    problem: Problem | None = None

    @property
    def blank(self) -> bool:
        return not any(map(str.strip, self.cells))

    def line_of(self, index: int) -> int:
        return self.cell_lines[index] if self.cell_lines is not None else self.line


class Records:
    """The records of a CSV text, one at a time. A record with a problem carries it and the reading
    goes on at a line where the next record can start, so later problems are found too."""

    def __init__(self, text: str, looks_like_row: Callable[[Mapping[str, str]], bool] | None) -> None:
        self.text = text
        self.looks_like_row = looks_like_row
        self.names: list[str] | None = None  # the header's columns, once read
        self.pos = 0
        self.line = 1

    def __iter__(self) -> Iterator[Record]:
        while self.pos < len(self.text):
            plain = _PLAIN_LINE.match(self.text, self.pos)
            if plain.end() == len(self.text) or self.text[plain.end()] != '"':
                cells = [cell.strip(" \t") for cell in plain.group().split(",")]
                record = Record(self.line, cells)
                self._next_line(plain.end())
                yield record
            else:
                yield self._record()

    def _next_line(self, pos: int) -> None:
        """Move past the line end at or after `pos` (or to the end of the text)."""
        end = _LINE_END.search(self.text, pos)
        self.pos = end.end() if end else len(self.text)
        self.line += 1

    def _record(self) -> Record:
        """A record with at least one quote, read cell by cell."""
        text, record = self.text, Record(self.line, [], [])
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

    def _unquoted(self, record: Record) -> Problem | None:
        cell = _UNQUOTED.match(self.text, self.pos)
        record.cells.append(cell.group().strip(" \t"))
        if cell.end() < len(self.text) and self.text[cell.end()] == '"':
            problem = Problem(self.line, len(record.cells) - 1,
                               'a quote inside a cell that does not start with one; put the whole cell in quotes '
                               'and write the quote inside it twice ("")')
            self._next_line(cell.end())
            return problem
        self.pos = cell.end()
        return None

    def _quoted(self, start: int, record: Record) -> Problem | None:
        text, line, index = self.text, self.line, len(record.cells)
        body = _QUOTED_BODY.match(text, start + 1)
        if body.end() >= len(text):
            spanned = _line_ends(body.group().rstrip("\r\n"))
            self._next_line(start)  # read on from the next line: its rows were swallowed, not broken
            return Problem(line, index, f"the quote that opens this cell is never closed (it runs to the end of the "
                                         f"file, over {spanned + 1:,} line(s)); close it, or write a quote inside "
                                         f'the text twice ("")')
        raw = body.group()
        overrun = self._row_inside(raw, line)
        if overrun is not None:
            self._next_line(start)
            return Problem(line, index, f"the quote that opens this cell runs over what look like further rows "
                                         f"({overrun}); close the quote on its own row, or write a quote inside "
                                         f'the text twice ("")')
        record.cells.append(raw.replace('""', '"'))
        self.line += _line_ends(raw)
        after = _BLANKS.match(text, body.end() + 1).end()
        if after < len(text) and text[after] not in ",\r\n":
            problem = Problem(self.line, index, 'text after the closing quote; write a quote inside a quoted cell '
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


__all__ = ["Problem", "Record", "Records"]
