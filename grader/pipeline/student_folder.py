"""Grading one submission folder into its output folder: result.json, arrays, figures and a PDF. A
failing submission never raises: its result says what failed. One error boundary covers everything
done for a submission (reading its tree, its text, the model, the figures, the PDF): a failure of
the grader's own while handling it fails that submission's result and nothing else. Only a full
disk (grader.outfolder.OutputWriteError) stops the run. A whole class: grader.pipeline.class_run."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grader import __version__
from grader.data.faceset import FaceSet
from grader.escape import safe_file_name
from grader.outfolder import OutputFolderError, is_disk_error, staged_folder
from grader.pipeline.assessment import Assessment, assess
from grader.pipeline.result_record import profile_record, scored_result
from grader.pipeline.setup import GradingSetup, Identity
from grader.pipeline.stages import LOAD, REPORT, SANDBOX_START, SNAPSHOT, SPEC, StageListener, StageLog
from grader.protocol import ModelProtocol
from grader.report.artifacts import write_artifacts
from grader.report.pdf import render_html, write_pdf
from grader.result import Result, StageError
from grader.sandbox.client import SandboxedModel
from grader.sandbox.starter import ServerStarter
from grader.submission.errors import SubmissionError, describe_exception
from grader.submission.folder import SubmissionFolder, tree_bounds
from grader.submission.gradient_audit import AuditedModel, GradientAudit, GradientCheckSettings
from grader.submission.spec import SubmissionSpec, VisualizeSpec


@dataclass
class _Submission:
    """What reading one folder has produced so far (the model's work is in the Assessment)."""

    folder: Path
    student_id: str
    name: str = ""
    sha256: str = ""
    spec: SubmissionSpec | None = None
    answers: dict[str, str] = field(default_factory=dict)
    output: str = ""


@dataclass
class AssessedSubmission:
    """One submission after its model's work (the folder read, the model loaded, assessed and
    closed), before anything is written: `write_submission` makes its output folder from it.
    grader_error: the grader's own failure on this submission so far (it fails the result)."""

    submission: _Submission
    assessment: Assessment
    log: StageLog
    audit: GradientAudit
    grader_error: Exception | None = None


def grade_submission(folder: Path, setup: GradingSetup, listener: StageListener | None = None,
                     cache_key: str = "", identity: Identity | None = None,
                     servers: ServerStarter | None = None) -> Result:
    """Grade one submission folder and write its output folder; never raises for the student's
    faults, nor for a failure of the grader's own on this submission (that fails its result, with
    the reason). Raises OutputFolderError when the output folder cannot be written (a full disk).

    identity: the id and name the class plan settled (grader.pipeline.class_plan); None for one
    folder graded alone (`grader check`), which takes its submission.yaml's. cache_key is stored in
    result.json for grader.pipeline.class_run's resume. servers: sandbox servers started ahead
    (grader.sandbox.starter), for a batch; None starts one now.

    The two halves, `assess_submission` and `write_submission`, can run apart: a batch writes one
    submission's report while the next one's model works (grader.pipeline.runners)."""
    return write_submission(assess_submission(folder, setup, listener, identity, servers), setup, listener,
                            cache_key)


def assess_submission(folder: Path, setup: GradingSetup, listener: StageListener | None = None,
                      identity: Identity | None = None, servers: ServerStarter | None = None,
                      helper: Executor | None = None) -> AssessedSubmission:
    """The submission's stages up to and including its model's work; never raises but for
    OutputFolderError (see `grade_submission`). helper: a batch's helper process for the grader's
    own work beside the model (grader.helper_process); None: a helper thread (pipeline.assessment)."""
    setup.profile.apply(models_here=setup.isolation == "inprocess")
    submission = _Submission(folder=folder, student_id=identity.student_id if identity else folder_student_id(folder))
    log = StageLog(listener=listener)
    audit = GradientAudit(GradientCheckSettings.for_dtype(setup.profile.dtype), seed=hidden_seed(setup.evaluation))
    try:
        assessment = _read_and_assess(submission, setup, identity, log, audit, servers, helper)
    except OutputFolderError:
        raise
    except Exception as error:  # noqa: BLE001  (the grader's own failure on this submission: fail it, go on)
        return AssessedSubmission(submission, Assessment(), log, audit, grader_error=error)
    return AssessedSubmission(submission, assessment, log, audit)


def write_submission(assessed: AssessedSubmission, setup: GradingSetup, listener: StageListener | None = None,
                     cache_key: str = "") -> Result:
    """The submission's output folder (figures, result.json, the PDF) from its assessment, and its
    Result; never raises but for OutputFolderError (see `grade_submission`)."""
    if assessed.grader_error is not None:
        return _grader_failure(assessed.submission, assessed.log, setup, assessed.grader_error)
    try:
        return _write_outputs(assessed.submission, assessed.assessment, assessed.log, assessed.audit, setup, listener,
                              cache_key)
    except OutputFolderError:
        raise
    except Exception as error:  # noqa: BLE001  (the grader's own failure on this submission: fail it, go on)
        return _grader_failure(assessed.submission, assessed.log, setup, error)


def _read_and_assess(submission: _Submission, setup: GradingSetup, identity: Identity | None, log: StageLog,
                     audit: GradientAudit, servers: ServerStarter | None = None,
                     helper: Executor | None = None) -> Assessment:
    """The folder's stages (snapshot, spec, load), then the assessment of its model."""
    files = None
    with log.stage(SNAPSHOT):
        files = SubmissionFolder.read(submission.folder, tree_bounds(setup.profile.limits), exclude=(setup.out_dir,))
        submission.sha256 = files.sha256  # hashed now, inside the stage: a file changed meanwhile is its error
    if not log.failed:
        with log.stage(SPEC):
            _read_spec(submission, files, identity, log)
    model: ModelProtocol | None = None
    if not log.failed:
        opened: ModelProtocol | None = None
        with log.stage(LOAD):
            opened = open_model(submission.folder, submission.spec, setup, servers)
            model = AuditedModel(opened, audit)
        if isinstance(opened, SandboxedModel):
            log.set_apart(LOAD, SANDBOX_START, opened.start_wait)
    try:
        visualize = submission.spec.visualize if submission.spec is not None else VisualizeSpec()
        return assess(model, setup.evaluation, visualize, setup.rubric, setup.tasks, log, audit, setup.language,
                      helper) if model is not None else Assessment()
    finally:
        if model is not None:
            try:
                model.close()  # first: closing waits for the output's reader to drain the pipe
            finally:
                submission.output = getattr(model, "output", "")


def open_model(folder: Path, spec: SubmissionSpec, setup: GradingSetup,
               servers: ServerStarter | None = None) -> ModelProtocol:
    """The submission behind the model protocol, isolated as the setup says (in a server `servers`
    started ahead, when given). The sandbox's snapshot leaves out the output folder (which
    `grader check .` writes inside the student's folder)."""
    if setup.isolation == "inprocess":
        # Imported here: they import torch and Lightning (6 s of a core), which a process that
        # grades through a sandbox never needs.
        from grader.submission.build import build_model
        from grader.submission.inprocess import InProcessModel
        from grader.submission.module import SubmissionModule

        return InProcessModel(SubmissionModule(build_model(folder, spec), spec.input), setup.profile.device,
                              setup.profile.dtype)
    if servers is None:
        return SandboxedModel.open(folder, setup.profile, setup.isolation, exclude=(setup.out_dir,))
    try:
        return SandboxedModel.open(folder, setup.profile, setup.isolation, exclude=(setup.out_dir,),
                                   server=servers.take())
    finally:
        servers.start_next()  # after this load, not beside it


def hidden_seed(faces: FaceSet) -> int:
    """A seed the model cannot know, from the evaluation labels (it never sees them), for choosing
    which gradient answers to check and along which directions."""
    digest = hashlib.blake2b(np.ascontiguousarray(faces.labels).tobytes(), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


def _read_spec(submission: _Submission, files: SubmissionFolder, identity: Identity | None, log: StageLog) -> None:
    spec = submission.spec = files.spec()
    submission.student_id = identity.student_id if identity else spec.student_id
    submission.name = identity.name if identity and identity.name else spec.name
    try:
        submission.answers = files.answers()
    except SubmissionError as error:  # report.md too large to read: the model is still graded
        log.warnings.append(StageError(stage=error.stage, message=error.message))


def folder_student_id(folder: Path) -> str:
    """An id for a folder whose submission.yaml cannot be read: its name, made safe as a file name
    (with a hash of the name when it had to change, so that two folders never share an output)."""
    return safe_file_name(folder.name)


def _confusion_question(setup: GradingSetup) -> str | None:
    """The question that reads LIME with the confusion matrix: its figures include the matrix."""
    return next((q.id for q in setup.rubric.questions if q.method == "lime"), None)


def _write_outputs(submission: _Submission, assessment: Assessment, log: StageLog, audit: GradientAudit,
                   setup: GradingSetup, listener: StageListener | None, cache_key: str) -> Result:
    """Write everything into a staging folder of this run, then swap it in: a crash never leaves half
    a report. The arrays and figures come first (a figure that cannot be drawn is an error of the
    result's), then the Result, then the PDF of it (its failure, too, is the result's error)."""
    with staged_folder(setup.out_dir, submission.student_id, setup.run_id) as staging:
        written = write_artifacts(staging, assessment.outputs, assessment.probes, assessment.fingerprint,
                                  assessment.evaluation, _confusion_question(setup), setup.language)
        log.errors += written.errors
        result = scored_result(assessment, log, audit.summaries(), setup, student_id=submission.student_id,
                               name=submission.name, folder=submission.folder.name, sha256=submission.sha256,
                               output=submission.output, answers=submission.answers, cache_key=cache_key,
                               figures=written.figures,
                               input_spec=submission.spec.input.model_dump() if submission.spec else {})
        if setup.write_pdf:
            result = _with_report(result, setup, staging, listener)
        result.write(staging / "result.json")
    return result


def _with_report(result: Result, setup: GradingSetup, staging: Path, listener: StageListener | None) -> Result:
    """Write the PDF of `result`; the result with the report's timing (and its error, if any)."""
    if listener is not None:
        listener.started(REPORT.name)
    started = time.perf_counter()
    errors = list(result.errors)
    try:
        write_pdf(render_html(result, setup.language), staging, staging / "report.pdf")
    except Exception as error:  # noqa: BLE001
        if is_disk_error(error):
            raise  # a full disk is the run's problem (grader.outfolder), not this student's
        errors.append(StageError(stage=REPORT.name, message=f"the PDF could not be made ({describe_exception(error)})"))
    seconds = round(time.perf_counter() - started, 4)
    if listener is not None:
        listener.finished(REPORT.name, seconds, len(errors) == len(result.errors))
    return result.model_copy(update={"errors": errors, "timings": {**result.timings, REPORT.name: seconds}})


def _grader_failure(submission: _Submission, log: StageLog, setup: GradingSetup, error: Exception) -> Result:
    """The result of a submission the grader itself failed on: failed, with the errors so far and
    this one, written as result.json alone when that can be done (no cache key: the next run
    tries again)."""
    message = (f"the grader failed while handling this submission ({describe_exception(error)}); the rest of the "
               "class was graded. This is a fault of xai-grader's, not yours: please report it with this message")
    result = Result(student_id=submission.student_id, name=submission.name, folder=submission.folder.name,
                    status="failed", errors=[*log.errors, StageError(stage="grader", message=message)],
                    warnings=log.warnings, max_score=setup.rubric.max_score, profile=profile_record(setup.profile),
                    timings=log.timings, tool_version=__version__, isolation=setup.isolation,
                    submission_sha256=submission.sha256)
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
