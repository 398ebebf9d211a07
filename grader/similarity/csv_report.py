"""similarity.csv: the flagged pairs, one row each."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from grader.atomic import atomic_write_text
from grader.escape import csv_cell
from grader.similarity.pairs import SimilarPair


CSV_COLUMNS = ("student_a", "student_b", "signals", "weights_similarity", "source_identical",
               "prediction_excess", "error_agreement", "reason")


def write_similarity_csv(pairs: Sequence[SimilarPair], path: str | Path) -> None:
    """similarity.csv: one row a flagged pair (CSV_COLUMNS), written in one step
    (`grader.atomic.atomic_write_text`). signals are joined with '+'; a value the pair lacks
    (no weights, source or predictions for one of the two) is left empty; source_identical is
    true or false. The text cells (the student ids, the reason, which names the student's source
    file) go through `grader.escape.csv_cell`: a spreadsheet opening this file must not evaluate
    a student's text as a formula."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for pair in pairs:
        writer.writerow([
            csv_cell(pair.student_a), csv_cell(pair.student_b), "+".join(pair.signals),
            "" if pair.weights_similarity is None else f"{pair.weights_similarity:.4f}",
            "" if pair.source_identical is None else str(pair.source_identical).lower(),
            "" if pair.prediction_excess is None else f"{pair.prediction_excess:.1f}",
            "" if pair.error_agreement is None or math.isnan(pair.error_agreement) else f"{pair.error_agreement:.3f}",
            csv_cell(pair.reason),
        ])
    atomic_write_text(path, buffer.getvalue())

