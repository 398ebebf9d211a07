"""A student's arrays and figures, written from the typed results after scoring: arrays/<name>.npz
and figures/<name>.png per question output, the probes, the weights fingerprint and the confusion
matrix. A figure that cannot be drawn is left out with an error (stage `report`) of the result's,
not of the batch."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from grader.atomic import atomic_write_bytes, atomic_write_npz
from grader.classes import Language
from grader.evaluate import Evaluation
from grader.fingerprint import FINGERPRINT_FILE, WeightsFingerprint, write_fingerprint
from grader.questions.output import QuestionOutput
from grader.report.figures.by_result import probe_figures, question_figures
from grader.report.figures.confusion import confusion_matrix_figure
from grader.report.figures.drawing import png_bytes
from grader.result import FigureRecord, StageError
from grader.scoring.measurements import Probes
from grader.submission.errors import describe_exception

CONFUSION_FIGURE = "figures/confusion_matrix.png"


@dataclass
class Artifacts:
    """What was written: the figures the PDF shows (per question, in order), and the errors of the
    figures that could not be drawn."""

    figures: list[FigureRecord] = field(default_factory=list)
    errors: list[StageError] = field(default_factory=list)


def write_artifacts(staging: Path, outputs: Mapping[str, QuestionOutput], probes: Probes | None,
                    fingerprint: WeightsFingerprint | None, evaluation: Evaluation | None,
                    confusion_question: str | None, language: Language = "en") -> Artifacts:
    """Write everything under `staging`; the confusion matrix's figure goes with
    `confusion_question` (the one that reads LIME with it)."""
    written = Artifacts()
    figures = written.figures
    for question, output in outputs.items():
        atomic_write_npz(staging / "arrays" / f"{output.name}.npz", **output.result.arrays())
        for name, draw in question_figures(output, language).items():
            if _write_figure(written, staging, f"figures/{name}.png", draw):
                figures.append(FigureRecord(question=question, path=f"figures/{name}.png",
                                            caption="; ".join(output.notes)))
    if probes is not None:
        atomic_write_npz(staging / "arrays" / "probes.npz", **probes.arrays())
        for name, (question, caption, draw) in probe_figures(probes, outputs, language).items():
            if _write_figure(written, staging, f"figures/{name}.png", draw):
                figures.append(FigureRecord(question=question, path=f"figures/{name}.png", caption=caption))
    if fingerprint is not None:
        write_fingerprint(staging / "arrays" / FINGERPRINT_FILE, fingerprint)
    if evaluation is not None:
        atomic_write_npz(staging / "arrays" / "confusion.npz", counts=evaluation.counts,
                         confusion=evaluation.confusion.astype(np.float32), labels=evaluation.labels,
                         predictions=evaluation.predictions)
        drawn = _write_figure(written, staging, CONFUSION_FIGURE,
                              lambda: confusion_matrix_figure(evaluation.confusion, language))
        if drawn and confusion_question is not None:
            figures.append(FigureRecord(question=confusion_question, path=CONFUSION_FIGURE))
    return written


def read_predictions(student_dir: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(predictions, labels) of the evaluation set as arrays/confusion.npz holds them, or None."""
    confusion = student_dir / "arrays" / "confusion.npz"
    if not confusion.is_file():
        return None
    with np.load(confusion, allow_pickle=False) as arrays:
        return arrays["predictions"], arrays["labels"]


def _write_figure(written: Artifacts, staging: Path, relative: str, draw: Callable[[], Figure]) -> bool:
    """Draw one figure to PNG; a figure that cannot be drawn is left out with an error that says so."""
    try:
        with _collector_paused():
            data = png_bytes(draw())
    except Exception as error:  # noqa: BLE001  (matplotlib on a student's layer name, say)
        written.errors.append(StageError(stage="report", message=f"the figure {relative} could not be drawn "
                                                                  f"({describe_exception(error)}); it is left out"))
        return False
    atomic_write_bytes(staging / relative, data)
    return True


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while one figure is drawn: matplotlib makes tens of
    thousands of objects for it, and each collection they trigger also walks the grading process's
    whole heap (torch's objects). The figure's garbage goes at the next collection after."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
