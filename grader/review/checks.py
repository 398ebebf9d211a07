"""The checks of what a TA (or the web API on their behalf) hands the store: each refusal is a
ReviewInputError whose message starts with `where` (the student and criterion, or the field)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from grader.csvfile import MAX_CELL_CHARS
from grader.review.schema import ID_LENGTH, NAME_LENGTH
from grader.review.values import ReviewInputError

TEXT_LIMIT = MAX_CELL_CHARS - 1
"""A comment goes into the exported scores.csv, whose reader takes cells of MAX_CELL_CHARS; one
character is kept for the apostrophe that grader.escape.csv_cell may put in front."""


def text(where: str, field: str, value: object, limit: int = TEXT_LIMIT) -> str:
    """Text as given (not cleaned: each sink escapes), refused when no database could keep it
    (a lone surrogate is not UTF-8, PostgreSQL refuses NUL) or it is longer than `limit`."""
    if not isinstance(value, str):
        raise ReviewInputError(f"{where}: {field} must be text, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ReviewInputError(f"{where}: {field} holds a lone surrogate (not valid Unicode text)") from None
    if "\0" in value:
        raise ReviewInputError(f"{where}: {field} holds a NUL character")
    if len(value) > limit:
        raise ReviewInputError(f"{where}: {field} has {len(value):,} characters; at most {limit:,} are kept")
    return value


def name(where: str, field: str, value: object) -> str:
    """A TA's name: text, not blank, at most NAME_LENGTH characters; kept without surrounding spaces."""
    given = text(where, field, value, NAME_LENGTH).strip()
    if not given:
        raise ReviewInputError(f"{where}: {field} is empty; name the TA")
    return given


def number(where: str, field: str, value: object) -> float:
    """A finite int or float (not a bool, not NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ReviewInputError(f"{where}: {field} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise ReviewInputError(f"{where}: {field} is {value}, not a finite number")
    return float(value) + 0.0  # + 0.0 turns -0.0 into 0.0


def points(where: str, value: object, maximum: float) -> float:
    score = number(where, "score", value)
    if not 0 <= score <= maximum:
        raise ReviewInputError(f"{where}: score {score:g} is outside 0..{maximum:g}, what the criterion is worth")
    return score


def items(where: str, value: object) -> tuple[str, ...]:
    """The checked rubric item ids: a sequence of distinct, non-empty ids."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ReviewInputError(f"{where}: items must be a list of rubric item ids")
    checked = tuple(text(where, "item", item, ID_LENGTH) for item in value)
    if any(not item.strip() for item in checked):
        raise ReviewInputError(f"{where}: an item id is empty")
    if len(set(checked)) != len(checked):
        raise ReviewInputError(f"{where}: an item is checked twice: {', '.join(checked)}")
    return checked


def version(where: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReviewInputError(f"{where}: expected_version must be a whole number >= 0 (0 before the first save)")
    return value


def export_comment(comment: str, adjustment_comment: str) -> str:
    """The comment the student sees: the TA's comment, then the adjustment's on its own line."""
    return "\n".join(part for part in (comment, adjustment_comment) if part)
