"""One submission's evidence for the similarity report, read from what the grader already has:
its submission.yaml, its model source, the weights fingerprint the sandbox computed and its
predictions. No weights file is opened here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grader.fingerprint import FingerprintError, WeightsFingerprint, read_fingerprint
from grader.similarity.pairs import SubmissionEvidence
from grader.similarity.predictions import as_class_indices
from grader.similarity.source import normalized_source, read_source
from grader.submission.folder import SubmissionFolder
from grader.submission.spec import SPEC_FILE, SubmissionSpec


def gather_evidence(folder: str | Path, predictions: np.ndarray | None = None, labels: np.ndarray | None = None,
                    *, student_id: str | None = None, fingerprint: WeightsFingerprint | None = None,
                    fingerprint_file: str | Path | None = None, spec: SubmissionSpec | None = None) -> SubmissionEvidence:
    """The evidence of one submission: its submission.yaml (`spec` when the caller has read it, else
    read bounded through the folder's scanned tree, grader.submission.folder; for the id and the
    source's name), its normalized model source (model.source, else a model.py kept beside TorchScript,
    read as at most MAX_SOURCE_BYTES of text, `read_source`), the weights fingerprint the sandbox
    computed (`fingerprint`, or read from `fingerprint_file`, the arrays/weights_fingerprint.npz the
    batch wrote; grader.fingerprint.read_fingerprint validates it), and the predictions.

    No weights file is opened here: without a fingerprint there is no weights evidence. A file
    that is missing or cannot be read leaves its field None with a note; this never raises for a
    student's broken files. The student id is `student_id`, else the spec's, else the folder's name."""
    folder = Path(folder)
    notes: list[str] = []
    if spec is None:
        try:
            spec = SubmissionFolder.read(folder).spec()
        except Exception as error:  # noqa: BLE001  (a missing, invalid or hostile submission.yaml or tree)
            notes.append(f"{SPEC_FILE}: {_first_line(error)}")
    if fingerprint is None:
        fingerprint = _read_fingerprint_file(fingerprint_file, notes)
    source_name = spec.model.source if spec is not None and spec.model.source else "model.py"
    source = _source_evidence(folder, source_name, notes)
    pred, lab = _prediction_evidence(predictions, labels, notes)
    return SubmissionEvidence(
        student_id=student_id or (spec.student_id if spec is not None else folder.name), folder=folder,
        weights=fingerprint, source=source, predictions=pred, labels=lab,
        source_name=source_name if source is not None else None, notes=tuple(notes),
    )


def _read_fingerprint_file(path: str | Path | None, notes: list[str]) -> WeightsFingerprint | None:
    if path is None:
        notes.append("weights: no fingerprint (the model was not loaded)")
        return None
    try:
        return read_fingerprint(path)
    except FingerprintError as error:
        notes.append(f"weights: {_first_line(error)}")
    except Exception as error:  # noqa: BLE001  (MemoryError, ...: a broken file is less evidence)
        notes.append(f"weights: {Path(path).name}: {_first_line(error)}")
    return None


def _source_evidence(folder: Path, source_name: str, notes: list[str]) -> str | None:
    """The normalized source, or None with a note."""
    try:
        text = read_source(folder, source_name)
    except FileNotFoundError:
        notes.append(f"source: no {source_name}")
        return None
    except Exception as error:  # noqa: BLE001  (OSError, ValueError: a broken file is less evidence)
        notes.append(f"source: {source_name}: {_first_line(error)}")
        return None
    try:
        return normalized_source(text)
    except Exception as error:  # noqa: BLE001  (RecursionError, ...)
        notes.append(f"source: {source_name}: {_first_line(error)}")
        return None


def _prediction_evidence(predictions: np.ndarray | None, labels: np.ndarray | None,
                         notes: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
    if predictions is None or labels is None:
        return None, None
    try:
        pred, lab = as_class_indices(predictions, "predictions"), as_class_indices(labels, "labels")
        if pred.shape != lab.shape:
            raise ValueError(f"{pred.shape[0]} predictions for {lab.shape[0]} labels")
    except ValueError as error:
        notes.append(f"predictions: {error}")
        return None, None
    return pred, lab


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
