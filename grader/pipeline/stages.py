"""The stages of grading one submission, declared in one place: their names, their order, and
whether a failure stops what follows (gating) or leaves the submission partly scored. A rubric
question with a method gives one stage, `q<N>_<method>` (grader.questions.output.stage_name)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from grader.questions.output import stage_name
from grader.result import StageError
from grader.scoring.rubric import Rubric
from grader.submission.errors import SubmissionError, describe_exception
from grader.yamlfile import ConfigError


@dataclass(frozen=True)
class Stage:
    name: str
    gating: bool = True


SNAPSHOT, SPEC, LOAD, CHECKS, EVALUATE = (Stage("snapshot"), Stage("spec"), Stage("load"), Stage("checks"),
                                         Stage("evaluate"))
SANDBOX_START = "sandbox_start"
"""Not a stage: the part of `load` spent waiting for a sandbox server's start-up (StageLog.set_apart)."""
PROBES, FINGERPRINT, REPORT = Stage("probes", gating=False), Stage("fingerprint", gating=False), \
    Stage("report", gating=False)
BEFORE_QUESTIONS = (SNAPSHOT, SPEC, LOAD, CHECKS, EVALUATE)
"""Read the folder, its submission.yaml, load the model, check its outputs, evaluate it: each must
pass for anything after it to run."""
AFTER_QUESTIONS = (PROBES, FINGERPRINT, REPORT)
"""The sanity probes, the weights fingerprint for the similarity report, the PDF: none fails the
submission."""


def question_stages(rubric: Rubric) -> tuple[Stage, ...]:
    """One non-gating stage per question that runs a method: a question that fails scores 0 on what
    it would have measured and leaves the others."""
    return tuple(Stage(stage_name(q.id, q.method), gating=False) for q in rubric.questions if q.method)


def stage_names(rubric: Rubric) -> list[str]:
    """Every stage of a submission that grades fully, in order."""
    return [stage.name for stage in (*BEFORE_QUESTIONS, *question_stages(rubric), *AFTER_QUESTIONS)]


class StageListener(Protocol):
    """Told when each stage of one submission starts and ends (a progress bar, a log)."""

    def started(self, stage: str) -> None: ...

    def finished(self, stage: str, seconds: float, ok: bool) -> None: ...


@dataclass
class StageLog:
    """What the stages of one submission recorded: their errors, warnings and timings, and whether a
    gating stage failed (then nothing after it runs)."""

    listener: StageListener | None = None
    errors: list[StageError] = field(default_factory=list)
    warnings: list[StageError] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    failed: bool = False

    def set_apart(self, stage: Stage, part: str, seconds: float) -> None:
        """Move `seconds` of `stage`'s recorded time into an entry `part` of its own, just before it:
        time the stage spent waiting for the grader's own work (a sandbox's start-up), which is
        not the submission's and should not read as its."""
        if stage.name not in self.timings:
            return
        seconds = round(min(max(seconds, 0.0), self.timings[stage.name]), 4)
        ordered = {}
        for name, value in self.timings.items():
            if name == stage.name:
                ordered[part] = seconds
                value = round(value - seconds, 4)
            ordered[name] = value
        self.timings = ordered

    @contextmanager
    def stage(self, stage: Stage | str) -> Iterator[None]:
        """Time a stage; turn any exception into the stage's error. A gating stage's error fails the
        submission; a question's error leaves the submission partly scored."""
        name, gating = (stage.name, stage.gating) if isinstance(stage, Stage) else (stage, True)
        started = time.perf_counter()
        errors_before = len(self.errors)
        if self.listener is not None:
            self.listener.started(name)
        try:
            yield
        except SubmissionError as error:
            # "request" means "whichever stage asked": the model failed while serving this stage.
            self.errors.append(StageError(stage=name if error.stage == "request" else error.stage,
                                          message=error.message))
        except ConfigError as error:
            self.errors.append(StageError(stage=name, message="; ".join(error.problems)))
        except Exception as error:  # student code can raise anything; the batch must go on
            self.errors.append(StageError(stage=name, message=describe_exception(error)))
        finally:
            self.timings[name] = round(time.perf_counter() - started, 4)
            self.failed |= gating and len(self.errors) > errors_before
            if self.listener is not None:
                self.listener.finished(name, self.timings[name], len(self.errors) == errors_before)
