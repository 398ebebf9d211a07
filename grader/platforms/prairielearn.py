"""PrairieLearn: the external grader's results.json, with the figures inlined and the whole file
kept under PrairieLearn's 1 MB limit.

What PrairieLearn documents ("External Grading", https://prairielearn.readthedocs.io/en/latest/externalGrading/):

- A question with `"gradingMethod": "External"` and `externalGradingOptions` (`enabled`, `image`,
  `entrypoint`, `serverFilesCourse`, `timeout` in seconds, 30 by default and at most 600,
  `enableNetworking`, `environment`) in its info.json runs `entrypoint` in a container of `image`.
- In the container: the student's files in `/grade/student`, the question's `tests/` folder in
  `/grade/tests`, `serverFilesCourse` entries in `/grade/serverFilesCourse`, the question's data
  object in `/grade/data/data.json`; the run writes `/grade/results/results.json` (the
  `results` folder is not made for it).
- results.json: `score` in [0, 1] (the one required field when gradable), `gradable` (false: the
  submission is "invalid, not gradable", no points awarded or lost and no attempt used; then
  `format_errors`, a string or a list of strings, may say why), `message`, `output`, `images`
  and `tests`, each test with `name`, `description`, `points`, `max_points`, `message`,
  `output` and its own `images`. An image is `{"label": ..., "url": "data:image/png;base64,..."}`
  (label optional, "Figure" by default), or the URL string alone. The file "should be limited to
  1 MB".

Our choices: `score` is the automatic points over the automatic maximum (manual criteria are the
TA's, listed at 0 of 0 points: see grader.platforms.common); a submission that failed to grade
(its model does not load, its spec is wrong) is `gradable: false` with its errors as
`format_errors`, so that fixing it costs the student no attempt; the figures go in the top-level
`images`, labelled by question and caption, re-encoded and downscaled until the file fits under
LIMIT_BYTES, and those that still do not fit are left out with a line in `message` saying so.
PrairieLearn renders every field as text, so student text is cleaned (grader.escape.clean_text)
and not otherwise escaped.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from grader.escape import clean_text
from grader.platforms.common import STAFF_PROBLEM, automatic_points, criterion_lines, json_text, manual_points, rows
from grader.result import Result

LIMIT_BYTES = 1_000_000
"""The whole results.json at most (PrairieLearn's "1 MB", read as 10^6 bytes to be safe)."""
HEADROOM_BYTES = 4_096
"""Kept free below the limit for the lines that say which figures were left out."""
SCALES = (1.0, 0.75, 0.5, 0.35)
"""Downscaling steps of every figure, tried in turn until the file fits."""


def prairielearn_results(result: Result, figures_folder: Path | None = None, notes: list[str] = (),
                         limit: int = LIMIT_BYTES) -> dict:
    """PrairieLearn's results.json for one graded (or failed) submission. `figures_folder` is the
    student's output folder (result.figures' paths are relative to it); None: no images."""
    earned, possible = automatic_points(result)
    gradable = result.status == "graded"
    message = _message(result, earned, possible, notes)
    document: dict = {
        "gradable": gradable,
        "score": round(earned / possible, 6) if possible > 0 else 0.0,
        "message": message,
        "output": _output(result),
        "tests": [_test(row) for row in rows(result)],
    }
    if not gradable:
        document["format_errors"] = [clean_text(f"{error.stage}: {error.message}", 2000) for error in result.errors] \
            or ["the submission could not be graded"]
    figures = _figures(result, figures_folder) if figures_folder is not None else []
    document["images"] = []
    left_out = fit_images(document, figures, limit)
    if left_out:
        document["message"] = message + "\n" + clean_text(
            f"{len(left_out)} figure(s) left out to keep the results under PrairieLearn's size limit: "
            f"{', '.join(left_out)}.", HEADROOM_BYTES // 8)
    return document


def crash_results(message: str) -> dict:
    """results.json when the autograder itself could not grade: not gradable (no attempt used)."""
    text = f"The autograder could not grade this submission. {clean_text(message, 2000)} {STAFF_PROBLEM}"
    return {"gradable": False, "score": 0.0, "message": text, "format_errors": [text], "tests": [], "images": []}


def _test(row) -> dict:
    lines = [clean_text(line, 2000) if student else line for line, student in criterion_lines(row)]
    return {"name": row.name, "description": row.question.title, "points": row.points,
            "max_points": row.max_points, "message": " ".join(lines), "output": ""}


def _message(result: Result, earned: float, possible: float, notes: list[str]) -> str:
    if result.status == "graded":
        lines = [f"Automatic score: {earned:g} / {possible:g}."]
    else:
        lines = ["Your submission could not be graded (no attempt used): fix what is listed below and submit again."]
    if result.accuracy is not None:
        lines.append(f"Accuracy on the course's evaluation faces: {result.accuracy:.1%}.")
    pending = manual_points(result)
    if pending and result.status == "graded":
        lines.append(f"The written answers ({pending:g} points) are graded by the TA.")
    lines += [clean_text(f"Fix ({error.stage}): {error.message}", 2000) for error in result.errors]
    lines += [clean_text(f"Warning: {warning.message}", 2000) for warning in result.warnings]
    lines += [clean_text(f"Note: {note}", 2000) for note in notes]
    return "\n".join(lines)


def _output(result: Result) -> str:
    """A plain-text score table, as `grader check` prints it."""
    lines = [f"{clean_text(result.student_id)} {clean_text(result.name)}: {result.status}"]
    for row in rows(result):
        points = "TA" if row.manual else f"{row.points:g}/{row.max_points:g}"
        value = "" if row.criterion.value is None else f" measured {row.criterion.value:.3g}"
        lines.append(f"{row.number} {row.name}: {points}{value}")
    return "\n".join(lines)


def _figures(result: Result, folder: Path) -> list[tuple[str, bytes]]:
    """(label, PNG bytes) of each figure the PDF shows, in its order; unreadable ones skipped."""
    figures = []
    for record in result.figures:
        path = (folder / record.path).resolve()
        if not path.is_relative_to(folder.resolve()) or not path.is_file():
            continue
        label = clean_text(f"{record.question}: {record.caption}" if record.caption else record.question, 300)
        figures.append((label, path.read_bytes()))
    return figures


def fit_images(document: dict, figures: list[tuple[str, bytes]], limit: int = LIMIT_BYTES) -> list[str]:
    """Put `figures` into document["images"] as PNG data URLs so that the whole document stays
    under `limit` bytes: as they are if they fit, else re-encoded with a 256-colour palette and
    downscaled step by step (SCALES); then, the largest scale's figures that still do not fit are
    left out, last first. Returns the labels left out."""
    budget = limit - HEADROOM_BYTES - len(json_text(document).encode("ascii"))
    for scale in (None, *SCALES):
        encoded = [(label, png if scale is None else _shrink(png, scale)) for label, png in figures]
        images = [_image(label, png) for label, png in encoded]
        if sum(_size(image) for image in images) <= budget:
            document["images"] = images
            return []
    kept, used = [], 0
    for image in images:  # the smallest scale's
        if used + _size(image) <= budget:
            kept.append(image)
            used += _size(image)
    document["images"] = kept
    return [image["label"] for image in images if image not in kept]


def _image(label: str, png: bytes) -> dict:
    return {"label": label, "url": "data:image/png;base64," + base64.b64encode(png).decode("ascii")}


def _size(image: dict) -> int:
    return len(json_text(image).encode("ascii")) + 4  # its separator and indentation in the list


def _shrink(png: bytes, scale: float) -> bytes:
    """The figure at `scale` of its size, as a palette PNG (figures are plots: 256 colours keep them legible)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        image = image.convert("RGB")
        if scale < 1.0:
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.quantize(colors=256).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
