"""Grading one submission folder into result.json, figures, arrays and a PDF. A failing
submission never raises: its result says what failed. One error boundary covers everything done
for a submission (reading its tree, its text, the model, the figures, the PDF): a failure of the
grader's own while handling it fails that submission's result and nothing else. Only a full disk
(grader.outfolder.OutputWriteError) stops the run. A whole class: grader.classrun."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from grader import __version__
from grader.atomic import atomic_write_bytes, atomic_write_npz
from grader.classes import NUM_CLASSES, Language, class_names
from grader.data.faceset import FaceSet
from grader.escape import safe_file_name
from grader.evaluate import Evaluation, evaluate
from grader.fingerprint import FINGERPRINT_FILE, WeightsFingerprint, write_fingerprint
from grader.outfolder import OutputFolderError, is_disk_error, new_run_id, staged_folder
from grader.profile import HardwareProfile, machine_record
from grader.protocol import ModelProtocol
from grader.report.figures import confusion_matrix_figure, png_bytes
from grader.report.pdf import FigureRef, render_html, write_pdf
from grader.result import GradientCheckSummary, Result, StageError
from grader.roster import Roster
from grader.sandbox.client import SandboxedModel
from grader.scoring.manual import ManualScores
from grader.scoring.measures import face_ellipse, parts_region
from grader.scoring.metrics import Measurements
from grader.scoring.probes import Probes, run_probes
from grader.scoring.rubric import Rubric
from grader.scoring.score import score
from grader.submission.build import build_model
from grader.submission.checks import ModelChecks, check_logits, check_model
from grader.submission.errors import SubmissionError, describe_exception
from grader.submission.folder import SubmissionFolder, tree_bounds
from grader.submission.gradient_audit import AuditedModel, GradientAudit, GradientCheckSettings
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from grader.submission.spec import SubmissionSpec
from grader.tasks import QUESTION_TASKS, ClassExamples, TaskContext, TaskOutput, TaskSettings
from grader.yamlfile import ConfigError

CHECK_BATCH = 8  # faces used for the output checks: enough to catch batch dependence, cheap to run one by one
ONE_CLASS_SHARE = 0.9
"""A model that predicts one class for this share of the evaluation faces or more is said to have
learned no expression (FER2013's largest class, Happy, is a quarter of its test split)."""
LOGIT_LIMIT = 1e4
"""Logits beyond this saturate softmax in fp32 (exp(-104) underflows): probabilities become 0 or 1,
cross-entropy gradients vanish, and LIME and the deletion curves lose their meaning."""


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
    roster: Roster = Roster.none()  # who is whose (grader.classrun settles identities with it)
    run_id: str = field(default_factory=new_run_id)  # names this run's staging folders (grader.outfolder)


@dataclass(frozen=True)
class Identity:
    """Who a submission folder is graded as, settled by the class plan (grader.classrun) before
    anything runs: the student_id its output goes under, and the name to print (the roster's when
    the roster has one, else the submission.yaml's)."""

    student_id: str
    name: str | None = None


class StageListener(Protocol):
    """Told when each stage of one submission starts and ends (a progress bar, a log)."""

    def started(self, stage: str) -> None: ...

    def finished(self, stage: str, seconds: float, ok: bool) -> None: ...


def stage_names() -> list[str]:
    """Every stage of a submission that grades fully, in order."""
    tasks = [f"{question}_{task.__name__.removesuffix('_task')}" for question, task in QUESTION_TASKS.items()]
    return ["snapshot", "spec", "load", "checks", "evaluate", *tasks, "probes", "fingerprint", "report"]


@dataclass
class _Attempt:
    """What grading one submission has produced so far; failed stages leave their fields None."""

    folder: Path
    student_id: str
    audit: GradientAudit
    name: str = ""
    files: SubmissionFolder | None = None
    sha256: str = ""
    spec: SubmissionSpec | None = None
    evaluation: Evaluation | None = None
    errors: list[StageError] = field(default_factory=list)
    warnings: list[StageError] = field(default_factory=list)
    fingerprint: WeightsFingerprint | None = None
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


def grade_submission(folder: Path, setup: GradingSetup, listener: StageListener | None = None,
                     cache_key: str = "", identity: Identity | None = None) -> Result:
    """Grade one submission folder and write its output folder; never raises for the student's
    faults, nor for a failure of the grader's own on this submission (that fails its result, with
    the reason). Raises OutputFolderError when the output folder cannot be written (a full disk).

    identity: the id and name the class plan settled (grader.classrun); None for one folder graded
    alone (`grader check`), which takes its submission.yaml's. cache_key is stored in result.json
    for grader.classrun's resume."""
    setup.profile.apply()
    attempt = _Attempt(folder=folder, student_id=identity.student_id if identity else folder_student_id(folder),
                       audit=GradientAudit(GradientCheckSettings.for_dtype(setup.profile.dtype),
                                           seed=hidden_seed(setup.evaluation)),
                       listener=listener)
    try:
        _grade(attempt, setup, identity)
        result = _result(attempt, setup)
        result.cache_key = cache_key
        _write_outputs(result, attempt, setup)
        return result
    except OutputFolderError:
        raise
    except Exception as error:  # noqa: BLE001  (the grader's own failure on this submission: fail it, go on)
        return _grader_failure(attempt, setup, error)


def _grade(attempt: _Attempt, setup: GradingSetup, identity: Identity | None) -> None:
    """Every stage, each gated by the ones before it."""
    with attempt.stage("snapshot"):
        files = SubmissionFolder.read(attempt.folder, tree_bounds(setup.profile.limits), exclude=(setup.out_dir,))
        attempt.sha256 = files.sha256  # hashed now, inside the stage: a file changed meanwhile is its error
        attempt.files = files
    if not attempt.failed:
        with attempt.stage("spec"):
            _read_spec(attempt, identity)
    model: ModelProtocol | None = None
    if not attempt.failed:
        with attempt.stage("load"):
            model = AuditedModel(open_model(attempt.folder, attempt.spec, setup), attempt.audit)
    try:
        if model is not None and not attempt.failed:
            with attempt.stage("checks"):
                attempt.checks = check_model(model, setup.evaluation.images[:CHECK_BATCH].astype(np.float32))
        if model is not None and not attempt.failed:
            with attempt.stage("evaluate"):
                logits = evaluation_logits(model, setup.evaluation)
                attempt.evaluation = evaluate(logits, setup.evaluation.labels)
                attempt.warnings += output_warnings(logits, attempt.evaluation, setup.language)
        if model is not None and not attempt.failed:
            _run_tasks(attempt, model, setup)
            with attempt.stage("probes", gating=False), attempt.audit.within("probes"):
                attempt.probes = run_probes(model, attempt.tasks, setup.tasks)
            with attempt.stage("fingerprint", gating=False):  # the similarity report's weights evidence
                attempt.fingerprint = model.weights_fingerprint()
    finally:
        if model is not None:
            attempt.output = getattr(model, "output", "")
            model.close()


def _run_tasks(attempt: _Attempt, model: ModelProtocol, setup: GradingSetup) -> None:
    """Each question's task on one evaluation image per class; one failing leaves the others. The
    gradients each task receives are checked under the question's id (grader.submission.gradient_audit)."""
    examples = attempt.examples = ClassExamples.choose(setup.evaluation, attempt.evaluation, setup.language)
    context = TaskContext(model=model, faces=setup.evaluation, examples=examples, settings=setup.tasks,
                          visualize=attempt.spec.visualize, language=setup.language)
    for question, task in QUESTION_TASKS.items():
        with attempt.stage(f"{question}_{task.__name__.removesuffix('_task')}", gating=False), \
                attempt.audit.within(question):
            attempt.tasks[question] = task(context)


def open_model(folder: Path, spec: SubmissionSpec, setup: GradingSetup) -> ModelProtocol:
    """The submission behind the model protocol, isolated as the setup says. The sandbox's snapshot
    leaves out the output folder (which `grader check .` writes inside the student's folder)."""
    if setup.isolation == "inprocess":
        return InProcessModel(SubmissionModule(build_model(folder, spec), spec.input), setup.profile.device,
                              setup.profile.dtype)
    return SandboxedModel.open(folder, setup.profile, setup.isolation, exclude=(setup.out_dir,))


def evaluation_logits(model: ModelProtocol, faces: FaceSet) -> np.ndarray:
    """(N, 7) logits for the whole evaluation set, asked for in chunks and checked like the sample."""
    chunks = []
    for start in range(0, len(faces), EVAL_CHUNK):
        pixels = faces.images[start:start + EVAL_CHUNK].astype(np.float32)
        logits = model.logits(pixels)
        check_logits(logits, len(pixels))
        chunks.append(logits)
    return np.concatenate(chunks)


def output_warnings(logits: np.ndarray, evaluation: Evaluation, language: Language = "en") -> list[StageError]:
    """What the checks let pass but the student should hear: logits so large that softmax
    saturates, and a model that predicts one class for nearly every face."""
    warnings = []
    largest = float(np.abs(logits).max(initial=0.0))
    if largest > LOGIT_LIMIT:
        warnings.append(StageError(stage="evaluate", message=(
            f"the model's logits reach {largest:.3g}: softmax saturates at such values (probabilities of exactly 0 "
            "or 1), so cross-entropy gradients vanish and LIME and the deletion curves say little; look for a "
            "missing normalization or a very large weight at the end of forward")))
    predicted = np.bincount(evaluation.predictions, minlength=NUM_CLASSES)
    top = int(predicted.argmax())
    share = float(predicted[top]) / max(len(evaluation.predictions), 1)
    if share >= ONE_CLASS_SHARE:
        warnings.append(StageError(stage="evaluate", message=(
            f"the model predicts {class_names(language)[top]} for {share:.0%} of the {len(evaluation.predictions)} "
            "evaluation faces: it has learned hardly any expression, so its explanations describe one class's "
            "score, not the expressions; check the training, the labels and the input scaling in submission.yaml")))
    return warnings


def hidden_seed(faces: FaceSet) -> int:
    """A seed the model cannot know, from the evaluation labels (it never sees them), for choosing
    which gradient answers to check and along which directions."""
    digest = hashlib.blake2b(np.ascontiguousarray(faces.labels).tobytes(), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


def _read_spec(attempt: _Attempt, identity: Identity | None) -> None:
    spec = attempt.spec = attempt.files.spec()
    attempt.student_id = identity.student_id if identity else spec.student_id
    attempt.name = identity.name if identity and identity.name else spec.name
    try:
        attempt.answers = attempt.files.answers()
    except SubmissionError as error:  # report.md too large to read: the model is still graded
        attempt.warnings.append(StageError(stage=error.stage, message=error.message))


def folder_student_id(folder: Path) -> str:
    """An id for a folder whose submission.yaml cannot be read: its name, made safe as a file name
    (with a hash of the name when it had to change, so that two folders never share an output)."""
    return safe_file_name(folder.name)


def _measurements(attempt: _Attempt, setup: GradingSetup, checks: list[GradientCheckSummary]) -> Measurements:
    region = None
    if attempt.examples is not None:
        masks = setup.evaluation.masks
        indices = attempt.examples.indices
        region = (parts_region(masks[indices]) if masks is not None
                  else np.broadcast_to(face_ellipse(), (len(indices), *face_ellipse().shape)))
    return Measurements(evaluation=attempt.evaluation, tasks=attempt.tasks, probes=attempt.probes, region=region,
                        checks=attempt.checks,
                        gradient_checks={summary.context: summary for summary in checks})


GRADIENT_CONTEXTS = {"q1": "Q1", "q2": "Q2", "q3": "Q3", "q4": "Q4", "probes": "the randomization test of Q1"}


def _gradient_warnings(checks: list[GradientCheckSummary]) -> list[StageError]:
    """A warning per context whose gradients failed their check (its criteria already score 0)."""
    return [StageError(stage="gradient_check", message=f"{GRADIENT_CONTEXTS.get(summary.context, summary.context)}: "
                                                       f"{summary.failure_message()}; its criteria score 0")
            for summary in checks if not summary.passed]


def _result(attempt: _Attempt, setup: GradingSetup) -> Result:
    checks = attempt.audit.summaries()
    questions = score(setup.rubric, _measurements(attempt, setup, checks), setup.manual.of(attempt.student_id))
    evaluation = attempt.evaluation
    return Result(
        student_id=attempt.student_id, name=attempt.name, folder=attempt.folder.name,
        status="failed" if attempt.failed else "graded",
        score=sum(q.score for q in questions), max_score=setup.rubric.max_score, questions=questions,
        errors=attempt.errors, warnings=attempt.warnings + _gradient_warnings(checks), gradient_checks=checks,
        accuracy=evaluation.accuracy if evaluation else None,
        per_class_recall=evaluation.per_class_recall.round(6).tolist() if evaluation else None,
        confusion_matrix=evaluation.confusion.round(6).tolist() if evaluation else None,
        profile=_profile_record(setup.profile), timings=attempt.timings, tool_version=__version__,
        submission_sha256=attempt.sha256, data_source=setup.evaluation.source,
        isolation=setup.isolation, output=attempt.output, answers=attempt.answers,
    )


def _profile_record(profile: HardwareProfile) -> dict:
    """The profile the submission was graded under, and the machine it ran on: fp32 results are
    identical only between CPUs with the same vector extensions."""
    return {**profile.model_dump(), "machine": machine_record()}


def _write_outputs(result: Result, attempt: _Attempt, setup: GradingSetup) -> None:
    """Write everything into a staging folder of this run, then swap it in: a crash never leaves half
    a report. A figure or the PDF that cannot be made is an error of the result's, not of the batch."""
    with staged_folder(setup.out_dir, result.student_id, setup.run_id) as staging:
        figures = _write_arrays_and_figures(result, attempt, setup, staging)
        if setup.write_pdf:
            _write_report(result, attempt, setup, staging, figures)
        result.write(staging / "result.json")


def _write_arrays_and_figures(result: Result, attempt: _Attempt, setup: GradingSetup,
                              staging: Path) -> dict[str, list[FigureRef]]:
    figures: dict[str, list[FigureRef]] = {}
    for question, output in attempt.tasks.items():
        atomic_write_npz(staging / "arrays" / f"{output.name}.npz", **output.arrays)
        for name, figure in output.figures.items():
            if _write_figure(result, staging, f"figures/{name}.png", figure):
                figures.setdefault(question, []).append(FigureRef(f"figures/{name}.png", "; ".join(output.notes)))
    if attempt.probes is not None:
        atomic_write_npz(staging / "arrays" / "probes.npz", **attempt.probes.arrays())
    if attempt.fingerprint is not None:
        write_fingerprint(staging / "arrays" / FINGERPRINT_FILE, attempt.fingerprint)
    if attempt.evaluation is not None:
        evaluation = attempt.evaluation
        atomic_write_npz(staging / "arrays" / "confusion.npz", counts=evaluation.counts,
                         confusion=evaluation.confusion.astype(np.float32), labels=evaluation.labels,
                         predictions=evaluation.predictions)
        confusion = confusion_matrix_figure(evaluation.confusion, setup.language)
        if _write_figure(result, staging, "figures/confusion_matrix.png", confusion):
            figures.setdefault("q3", []).append(FigureRef("figures/confusion_matrix.png", ""))
    return figures


def _write_figure(result: Result, staging: Path, relative: str, figure) -> bool:
    """Draw one figure to PNG; a figure that cannot be drawn is left out with an error that says so."""
    try:
        data = png_bytes(figure)
    except Exception as error:  # noqa: BLE001  (matplotlib on a student's layer name, say)
        result.errors.append(StageError(stage="report", message=f"the figure {relative} could not be drawn "
                                                                  f"({describe_exception(error)}); it is left out"))
        return False
    atomic_write_bytes(staging / relative, data)
    return True


def _write_report(result: Result, attempt: _Attempt, setup: GradingSetup, staging: Path,
                  figures: dict[str, list[FigureRef]]) -> None:
    if attempt.listener is not None:
        attempt.listener.started("report")
    started = time.perf_counter()
    ok = True
    try:
        write_pdf(render_html(result, setup.language, question_figures=figures), staging, staging / "report.pdf")
    except Exception as error:  # noqa: BLE001
        if is_disk_error(error):
            raise  # a full disk is the run's problem (grader.outfolder), not this student's
        ok = False
        result.errors.append(StageError(stage="report", message=f"the PDF could not be made "
                                                                  f"({describe_exception(error)})"))
    result.timings["report"] = round(time.perf_counter() - started, 4)
    if attempt.listener is not None:
        attempt.listener.finished("report", result.timings["report"], ok)


def _grader_failure(attempt: _Attempt, setup: GradingSetup, error: Exception) -> Result:
    """The result of a submission the grader itself failed on: failed, with the errors so far and
    this one, written as result.json alone when that can be done (no cache key: the next run
    tries again)."""
    message = (f"the grader failed while handling this submission ({describe_exception(error)}); the rest of the "
               "class was graded. This is a fault of xai-grader's, not yours: please report it with this message")
    result = Result(student_id=attempt.student_id, name=attempt.name, folder=attempt.folder.name, status="failed",
                    errors=[*attempt.errors, StageError(stage="grader", message=message)], warnings=attempt.warnings,
                    max_score=setup.rubric.max_score, profile=_profile_record(setup.profile),
                    timings=attempt.timings, tool_version=__version__, isolation=setup.isolation,
                    submission_sha256=attempt.sha256)
    try:
        with staged_folder(setup.out_dir, result.student_id, setup.run_id) as staging:
            result.write(staging / "result.json")
    except OutputFolderError:
        raise
    except Exception:  # noqa: BLE001  (nothing more can be written for it; the class outputs still list it)
        pass
    return result


def submission_folders(root: Path) -> list[Path]:
    """Every non-hidden folder directly under `root`, in name order."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
