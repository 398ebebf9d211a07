"""Grading one submission folder into result.json, figures, arrays and a PDF. A failing
submission never raises: its result says what failed. A whole class: grader.classrun."""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from grader import __version__
from grader.atomic import atomic_write_bytes, atomic_write_npz, replace_directory
from grader.classes import Language
from grader.data.faceset import FaceSet
from grader.evaluate import Evaluation, evaluate
from grader.profile import HardwareProfile
from grader.report.figures import confusion_matrix_figure, png_bytes
from grader.report.pdf import FigureRef, render_html, write_pdf
from grader.result import Result, StageError
from grader.scoring.manual import ManualScores
from grader.scoring.measures import face_ellipse, parts_region
from grader.scoring.metrics import Measurements
from grader.scoring.probes import Probes, run_probes
from grader.tasks import QUESTION_TASKS, ClassExamples, TaskContext, TaskOutput, TaskSettings
from grader.scoring.rubric import Rubric
from grader.scoring.score import score
from grader.submission.build import build_model
from grader.protocol import ModelProtocol
from grader.sandbox.client import SandboxedModel
from grader.submission.answers import read_answers
from grader.submission.checks import ModelChecks, check_logits, check_model
from grader.submission.errors import SubmissionError, describe_exception
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from grader.submission.spec import SPEC_FILE, SubmissionSpec, load_spec
from grader.yamlfile import ConfigError

CHECK_BATCH = 8  # faces used for the output checks: enough to catch batch dependence, cheap to run one by one


Isolation = Literal["bwrap", "subprocess", "inprocess"]
EVAL_CHUNK = 1024  # faces per logits request: bounds one message to a few MB


@dataclass(frozen=True)
class GradingSetup:
    """What stays the same for every submission of a batch.

    isolation: "bwrap" (the sandbox), "subprocess" (a separate process with rlimits but no
    file-system or network isolation), or "inprocess" (trusted models only: tests, the library API).
    manual: the TA's scores and overrides (scores.csv), merged into each student's result.
    """

    evaluation: FaceSet
    rubric: Rubric
    profile: HardwareProfile
    out_dir: Path
    language: Language = "en"
    write_pdf: bool = True
    isolation: Isolation = "bwrap"
    tasks: TaskSettings = TaskSettings()
    manual: ManualScores = ManualScores.none()


class StageListener(Protocol):
    """Told when each stage of one submission starts and ends (a progress bar, a log)."""

    def started(self, stage: str) -> None: ...

    def finished(self, stage: str, seconds: float, ok: bool) -> None: ...


def stage_names() -> list[str]:
    """Every stage of a submission that grades fully, in order."""
    tasks = [f"{question}_{task.__name__.removesuffix('_task')}" for question, task in QUESTION_TASKS.items()]
    return ["spec", "load", "checks", "evaluate", *tasks, "probes", "report"]


@dataclass
class _Attempt:
    """What grading one submission has produced so far; failed stages leave their fields None."""

    folder: Path
    student_id: str
    name: str = ""
    spec: SubmissionSpec | None = None
    evaluation: Evaluation | None = None
    errors: list[StageError] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    output: str = ""
    answers: dict[str, str] = field(default_factory=dict)
    tasks: dict[str, TaskOutput] = field(default_factory=dict)  # by question id
    examples: ClassExamples | None = None
    checks: ModelChecks | None = None
    probes: Probes | None = None
    gate_failed: bool = False
    listener: StageListener | None = None

    @contextmanager
    def stage(self, name: str, gating: bool = True) -> Iterator[None]:
        """Time a stage; turn any exception into the stage's error. A gating stage's error fails the
        submission and skips what follows; a task's error leaves the submission partly scored."""
        started = time.perf_counter()
        errors_before = len(self.errors)
        if self.listener is not None:
            self.listener.started(name)
        try:
            yield
        except SubmissionError as error:
            # "request" means "whichever stage asked": the model failed while serving this stage.
            stage = name if error.stage == "request" else error.stage
            self.errors.append(StageError(stage=stage, message=error.message))
        except ConfigError as error:
            self.errors.append(StageError(stage=name, message="; ".join(error.problems)))
        except Exception as error:  # student code can raise anything; the batch must go on
            self.errors.append(StageError(stage=name, message=describe_exception(error)))
        finally:
            self.timings[name] = round(time.perf_counter() - started, 4)
            self.gate_failed |= gating and len(self.errors) > errors_before
            if self.listener is not None:
                self.listener.finished(name, self.timings[name], len(self.errors) == errors_before)

    @property
    def failed(self) -> bool:
        return self.gate_failed


def grade_submission(folder: Path, setup: GradingSetup, taken_ids: dict[str, str] | None = None,
                     listener: StageListener | None = None, cache_key: str = "") -> Result:
    """Grade one submission folder and write its output folder; never raises for the student's faults.

    taken_ids: student id -> the folder that owns it; a folder whose id another folder owns fails
    at `spec`. cache_key is stored in result.json for grader.classrun's resume."""
    setup.profile.apply()
    attempt = _Attempt(folder=folder, student_id=folder_student_id(folder), listener=listener)
    taken_ids = taken_ids if taken_ids is not None else {}
    model: ModelProtocol | None = None
    with attempt.stage("spec"):
        _read_spec(attempt, taken_ids)
    if not attempt.failed:
        with attempt.stage("load"):
            model = open_model(folder, attempt.spec, setup)
    try:
        if model is not None and not attempt.failed:
            with attempt.stage("checks"):
                attempt.checks = check_model(model, setup.evaluation.images[:CHECK_BATCH].astype(np.float32))
        if model is not None and not attempt.failed:
            with attempt.stage("evaluate"):
                attempt.evaluation = evaluate(evaluation_logits(model, setup.evaluation), setup.evaluation.labels)
        if model is not None and not attempt.failed:
            _run_tasks(attempt, model, setup)
            with attempt.stage("probes", gating=False):
                attempt.probes = run_probes(model, attempt.tasks, setup.tasks)
    finally:
        if model is not None:
            attempt.output = getattr(model, "output", "")
            model.close()
    taken_ids.setdefault(attempt.student_id, folder.name)
    result = _result(attempt, setup)
    result.cache_key = cache_key
    _write_outputs(result, attempt, setup)
    return result


def _run_tasks(attempt: _Attempt, model: ModelProtocol, setup: GradingSetup) -> None:
    """Each question's task on one evaluation image per class; one failing leaves the others."""
    examples = attempt.examples = ClassExamples.choose(setup.evaluation, attempt.evaluation, setup.language)
    context = TaskContext(model=model, faces=setup.evaluation, examples=examples, settings=setup.tasks,
                          visualize=attempt.spec.visualize, language=setup.language)
    for question, task in QUESTION_TASKS.items():
        with attempt.stage(f"{question}_{task.__name__.removesuffix('_task')}", gating=False):
            attempt.tasks[question] = task(context)


def open_model(folder: Path, spec: SubmissionSpec, setup: GradingSetup) -> ModelProtocol:
    """The submission behind the model protocol, isolated as the setup says."""
    if setup.isolation == "inprocess":
        return InProcessModel(SubmissionModule(build_model(folder, spec), spec.input), setup.profile.device,
                              setup.profile.dtype)
    return SandboxedModel.open(folder, setup.profile, setup.isolation)


def evaluation_logits(model: ModelProtocol, faces: FaceSet) -> np.ndarray:
    """(N, 7) logits for the whole evaluation set, asked for in chunks and checked like the sample."""
    chunks = []
    for start in range(0, len(faces), EVAL_CHUNK):
        pixels = faces.images[start:start + EVAL_CHUNK].astype(np.float32)
        logits = model.logits(pixels)
        check_logits(logits, len(pixels))
        chunks.append(logits)
    return np.concatenate(chunks)


def _read_spec(attempt: _Attempt, taken_ids: dict[str, str]) -> None:
    if not (attempt.folder / SPEC_FILE).is_file():
        raise SubmissionError("spec", f"no {SPEC_FILE} in the submission folder '{attempt.folder.name}': add one "
                                      "(see the README for its fields)")
    spec = load_spec(attempt.folder)
    owner = taken_ids.get(spec.student_id)
    if owner is not None and owner != attempt.folder.name:
        raise SubmissionError("spec", f"student_id {spec.student_id} is already used by the submission folder "
                                      f"'{owner}'; each student needs their own id")
    attempt.spec, attempt.student_id, attempt.name = spec, spec.student_id, spec.name
    attempt.answers = read_answers(attempt.folder)


def folder_student_id(folder: Path) -> str:
    """An id for a folder whose submission.yaml cannot be read: its name, made safe as a file name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", folder.name) or "unnamed"


def _measurements(attempt: _Attempt, setup: GradingSetup) -> Measurements:
    region = None
    if attempt.examples is not None:
        masks = setup.evaluation.masks
        indices = attempt.examples.indices
        region = (parts_region(masks[indices]) if masks is not None
                  else np.broadcast_to(face_ellipse(), (len(indices), *face_ellipse().shape)))
    return Measurements(evaluation=attempt.evaluation, tasks=attempt.tasks, probes=attempt.probes, region=region,
                        checks=attempt.checks)


def _result(attempt: _Attempt, setup: GradingSetup) -> Result:
    questions = score(setup.rubric, _measurements(attempt, setup), setup.manual.of(attempt.student_id))
    evaluation = attempt.evaluation
    return Result(
        student_id=attempt.student_id, name=attempt.name, folder=attempt.folder.name,
        status="failed" if attempt.failed else "graded",
        score=sum(q.score for q in questions), max_score=setup.rubric.max_score, questions=questions,
        errors=attempt.errors,
        accuracy=evaluation.accuracy if evaluation else None,
        per_class_recall=evaluation.per_class_recall.round(6).tolist() if evaluation else None,
        confusion_matrix=evaluation.confusion.round(6).tolist() if evaluation else None,
        profile=setup.profile.model_dump(), timings=attempt.timings, tool_version=__version__,
        submission_sha256=submission_sha256(attempt.folder), data_source=setup.evaluation.source,
        isolation=setup.isolation, output=attempt.output, answers=attempt.answers,
    )


def _write_outputs(result: Result, attempt: _Attempt, setup: GradingSetup) -> None:
    """Write everything into a staging folder, then swap it in: a crash never leaves half a report."""
    setup.out_dir.mkdir(parents=True, exist_ok=True)
    staging = setup.out_dir / f".staging-{result.student_id}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    figures: dict[str, list[FigureRef]] = {}
    for question, output in attempt.tasks.items():
        atomic_write_npz(staging / "arrays" / f"{output.name}.npz", **output.arrays)
        for name, figure in output.figures.items():
            atomic_write_bytes(staging / "figures" / f"{name}.png", png_bytes(figure))
            figures.setdefault(question, []).append(FigureRef(f"figures/{name}.png", "; ".join(output.notes)))
    if attempt.probes is not None:
        atomic_write_npz(staging / "arrays" / "probes.npz", **attempt.probes.arrays())
    confusion_png = None
    if attempt.evaluation is not None:
        evaluation = attempt.evaluation
        confusion_png = "figures/confusion_matrix.png"
        atomic_write_bytes(staging / confusion_png, png_bytes(confusion_matrix_figure(evaluation.confusion,
                                                                                     setup.language)))
        atomic_write_npz(staging / "arrays" / "confusion.npz", counts=evaluation.counts,
                         confusion=evaluation.confusion.astype(np.float32), labels=evaluation.labels,
                         predictions=evaluation.predictions)
    if setup.write_pdf:
        if attempt.listener is not None:
            attempt.listener.started("report")
        started = time.perf_counter()
        if confusion_png:
            figures.setdefault("q3", []).append(FigureRef(confusion_png, ""))
        html = render_html(result, setup.language, question_figures=figures)
        write_pdf(html, staging, staging / "report.pdf")
        result.timings["report"] = round(time.perf_counter() - started, 4)
        if attempt.listener is not None:
            attempt.listener.finished("report", result.timings["report"], True)
    result.write(staging / "result.json")
    replace_directory(staging, setup.out_dir / result.student_id)


def submission_sha256(folder: Path) -> str:
    """A hash over every file's relative path and bytes, so any change to a submission changes it."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def submission_folders(root: Path) -> list[Path]:
    """Every non-hidden folder directly under `root`, in name order."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
