"""Student text, made safe for each place it goes: one function per sink.

Everything a submission supplies as text is untrusted: its student_id and name, report.md, its file
and layer names, the messages its exceptions raise and what it prints. Such text is cleaned where
it enters the grader (`clean_text`: valid Unicode, no control characters, bounded), and escaped
where it leaves, by the sink's own function here and nowhere else:

- the TA's terminal: `terminal_text` (Rich markup and every control or escape sequence, ANSI CSI
  and OSC among them, so that a message cannot paint a fake "graded" line or retitle the window);
- CSV files a spreadsheet opens (gradebook, Canvas import, similarity): `csv_cell`, against formula
  injection as OWASP's "CSV Injection" page describes it;
- HTML and the PDF: Jinja's autoescape, with `printable_text` as the environment's `finalize`;
- figure titles and labels: `figure_text` (matplotlib parses `$...$` as mathtext, and an unknown
  command raises while the figure is drawn);
- file names: `safe_file_name`;
- Markdown that an LMS renders (Gradescope's `md` output): `markdown_text`.
"""

from __future__ import annotations

import hashlib
import re

from markupsafe import Markup
from rich.markup import escape as rich_escape

REPLACEMENT = "\ufffd"

_SURROGATES = re.compile("[\ud800-\udfff]")
# C0 controls but tab and newline, DEL, C1 controls; the bidirectional embeddings, overrides and
# isolates, which reorder what a reader sees (the "Trojan Source" characters); and the BOM/ZWNBSP.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")
_LINE_BREAKS = re.compile("\r\n|[\r\u2028\u2029]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")
FILE_NAME_LIMIT = 64


def clean_text(text: object, limit: int | None = None) -> str:
    """`text` as valid, printable Unicode: lone surrogates (which cannot be encoded as UTF-8) and
    control characters become U+FFFD, line breaks become "\\n", and text longer than `limit`
    characters is cut with an ellipsis. Tab and newline stay."""
    cleaned = _LINE_BREAKS.sub("\n", str(text))
    cleaned = _SURROGATES.sub(REPLACEMENT, cleaned)
    cleaned = _CONTROLS.sub(REPLACEMENT, cleaned)
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[: max(limit - 1, 0)] + "…"
    return cleaned


def terminal_text(text: object, limit: int = 2000) -> str:
    """Student text for a Rich console line: cleaned (so no escape sequence reaches the terminal),
    on one line (a newline could start a line that looks like the grader's own), and with Rich's
    markup escaped (`[/x]` would otherwise raise, `[green]` would colour)."""
    one_line = clean_text(text, limit).replace("\n", " ⏎ ").replace("\t", " ")
    return rich_escape(one_line)


def csv_cell(value: object) -> object:
    """A cell for a CSV file a spreadsheet may open: text that starts with = + - @, a tab or a line
    break gets a leading apostrophe, so Excel, LibreOffice and Google Sheets show it instead of
    evaluating it as a formula (OWASP, "CSV Injection"). Numbers, booleans and None pass unchanged."""
    if not isinstance(value, str):
        return value
    cleaned = clean_text(value)
    return "'" + cleaned if cleaned.startswith(_FORMULA_START) else cleaned


def printable_text(value: object) -> object:
    """Jinja's `finalize` for the HTML and PDF templates: every str printed into a page is cleaned
    (WeasyPrint cannot encode a lone surrogate, and control characters are not allowed in HTML);
    Markup the grader built itself (the dashboard's SVG) passes as it is. Autoescape then escapes."""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return clean_text(value)


def figure_text(text: object, limit: int = 120) -> str:
    """Student text for a matplotlib title or label: cleaned, and with `$` escaped so that it is
    drawn as written rather than parsed as mathtext."""
    return clean_text(text, limit).replace("$", r"\$")


def safe_file_name(name: str, limit: int = FILE_NAME_LIMIT, unique: bool = False) -> str:
    """A name for a file or folder the grader writes: letters, digits, _ and - only, at most
    `limit` characters. A name that had to change gets a short hash of the original, so that two
    different names (`john.doe`, `john_doe`) never share a folder; `unique` adds the hash always
    (a name then never equals any name that needed no change)."""
    safe = _UNSAFE_NAME.sub("_", name).strip("_-")
    if safe == name and 0 < len(name) <= limit and not unique:
        return name
    digest = hashlib.sha256(clean_text(name).encode("utf-8")).hexdigest()[:8]
    return f"{(safe or 'unnamed')[: limit - 9]}-{digest}"


_MARKDOWN_PUNCTUATION = re.compile(r"([!\"#$%'()*+,\-./:;=?@\[\\\]^_`{|}~])")


def control_characters(text: str) -> bool:
    """Whether `text` holds a character `clean_text` would replace (controls, bidi overrides, BOM)."""
    return _CONTROLS.search(text) is not None


def markdown_text(text: object, limit: int = 2000) -> str:
    """Student text for a Markdown sink that also passes some HTML (Gradescope renders `md` output
    and sanitizes its HTML): cleaned and on one line (a line break could start a heading, list or
    code block of the student's), `&`, `<` and `>` as HTML entities (no tag, comment or entity of
    the student's), and every other ASCII punctuation character backslash-escaped, which CommonMark
    defines for all of them (so `*`, `_`, `[x](url)`, `![img](...)`, `#` and backquotes stay
    literal: no link, image, emphasis or code span)."""
    one_line = clean_text(text, limit).replace("\n", " ⏎ ").replace("\t", " ")
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", one_line)
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
