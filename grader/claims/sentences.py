"""Sentence splitting with exact offsets, for English and Chinese answers.

A sentence ends at . ! ? ; (and their full-width forms 。！？；．), at a blank line, and at a line
break that starts a markdown list item, heading or quote or ends a heading; a single line break
inside a paragraph is the author's wrapping (markdown joins such lines), not an end. A period
does not end a sentence inside a number (0.5), after a known abbreviation (e.g., i.e., etc.) or
after a list number at the start of a line ("1. The model ..."). Closing quotes and brackets
right after the end mark belong to the sentence. Each sentence comes back with its (start, end)
in the original text, trimmed of surrounding whitespace and of a leading markdown marker
(heading #, list bullet, list number, quote >), so `text[start:end]` is the sentence exactly.
"""

import re
from dataclasses import dataclass

# Marks that always end a sentence (ASCII and full-width); "." is decided by _period_ends.
_ALWAYS_END = frozenset("!?;。！？；")
_PERIOD = frozenset(".．")
# Line breaks of every kind; whether one ends a sentence is decided by _break_ends.
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
# Closing quotes and brackets that stay with the sentence they close.
_CLOSERS = frozenset("\"'”’」』）)]】")
# Lower-cased tokens that end with a period without ending the sentence.
_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "etc", "vs", "cf", "fig", "figs", "eq", "approx", "al", "dr", "mr", "mrs",
     "ms", "no", "resp", "ca", "p.s", "u.s"}
)
# A leading markdown marker that is not part of the sentence itself.
_LEADING_MARKUP = re.compile(r"(?:#{1,6}\s+|[-*+]\s+|\d{1,3}[.)]\s+|>\s*)+")


@dataclass(frozen=True)
class Sentence:
    """One sentence: its text and where it sits in the original answer."""

    text: str
    start: int
    end: int


def split_sentences(text: str) -> list[Sentence]:
    """The sentences of `text`, in order, each with exact offsets; empty pieces are dropped."""
    sentences: list[Sentence] = []
    for start, end in _raw_spans(text):
        span = _trim(text, start, end)
        if span is not None:
            sentences.append(Sentence(text[span[0]:span[1]], span[0], span[1]))
    return sentences


def _raw_spans(text: str) -> list[tuple[int, int]]:
    """Spans between sentence ends, before trimming."""
    spans: list[tuple[int, int]] = []
    start = 0
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char in _LINE_BREAKS and _break_ends(text, start, index):
            spans.append((start, index))
            start = index + 1
        elif char in _ALWAYS_END or (char in _PERIOD and _period_ends(text, index)):
            end = _absorb_closers(text, index + 1)
            spans.append((start, end))
            start = end
            index = end
            continue
        index += 1
    spans.append((start, length))
    return spans


_BLOCK_START = re.compile(r"[ \t]*(?:#{1,6}\s|[-*+]\s|\d{1,3}[.)]\s|>|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]|$)")


def _break_ends(text: str, start: int, index: int) -> bool:
    """Whether the line break at `index` ends the sentence that began at `start`: at a blank line,
    before a list item, heading or quote, after a heading; not where a paragraph merely wraps."""
    if text[start:index].lstrip().startswith("#"):
        return True
    following = index + 2 if text[index] == "\r" and text[index + 1:index + 2] == "\n" else index + 1
    return _BLOCK_START.match(text, following) is not None


def _absorb_closers(text: str, index: int) -> int:
    """Past repeated end marks ("?!", "...") and closing quotes right after an end mark."""
    while index < len(text) and (text[index] in _CLOSERS or text[index] in _ALWAYS_END
                                 or text[index] in _PERIOD):
        index += 1
    return index


def _period_ends(text: str, index: int) -> bool:
    """Whether the period at `index` ends a sentence (not a decimal, abbreviation or list number)."""
    after = text[index + 1] if index + 1 < len(text) else ""
    if after and not (after.isspace() or after in _CLOSERS or after in _PERIOD):
        return False  # 0.5, file.py, e.g.: something follows right away
    token = _token_before(text, index)
    if token.lower() in _ABBREVIATIONS:
        return False
    return not (token.isdigit() and _starts_line(text, index - len(token)))


def _token_before(text: str, index: int) -> str:
    """The run of letters, digits and inner periods that ends just before `index`."""
    start = index
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == ".") and index - start < 12:
        start -= 1
    return text[start:index].strip(".")


def _starts_line(text: str, index: int) -> bool:
    """Whether only spaces or tabs stand between the previous line break (or the start) and `index`."""
    before = index - 1
    while before >= 0 and text[before] in " \t":
        before -= 1
    return before < 0 or text[before] in _LINE_BREAKS


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span without surrounding whitespace and leading markdown; None when nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    marker = _LEADING_MARKUP.match(text, start, end)
    if marker:
        start = marker.end()
    return (start, end) if start < end else None
