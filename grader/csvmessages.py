"""The wording of the strict CSV reader's problems (grader.csvfile) and of the warnings its callers
print: a cell repeated back safely and briefly, a long list of ids summarized on one line, and the
problems of a file gathered into one ConfigError in line order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from grader.yamlfile import ConfigError

MAX_PROBLEMS = 100
"""More problems than this are counted, not listed: past that point the file is the wrong one."""
SHOWN_CHARS = 60
"""How much of a cell an error message repeats back."""

_PROBLEM_LINE = re.compile(r":([0-9]+):")


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


__all__ = ["MAX_PROBLEMS", "SHOWN_CHARS", "config_error", "shorten", "shown", "summarize_ids"]
