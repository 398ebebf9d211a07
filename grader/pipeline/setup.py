"""What stays the same for every submission of a run, and the one place it is built from the files a
TA names (the CLI, the tests and the scripts all call `load_setup`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from grader.classes import Language
from grader.data.faceset import FaceSet
from grader.outfolder import new_run_id
from grader.profile import HardwareProfile, get_profile
from grader.questions.settings import TaskSettings
from grader.roster import Roster, load_roster
from grader.scoring.manual import ManualScores, load_manual_scores
from grader.scoring.rubric import Rubric, load_rubric
from grader.yamlfile import ConfigError

Isolation = Literal["bwrap", "subprocess", "inprocess"]
LANGUAGES: tuple[Language, ...] = ("en", "zh-TW")


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
    roster: Roster = Roster.none()  # who is whose (grader.pipeline.class_plan settles identities with it)
    run_id: str = field(default_factory=new_run_id)  # names this run's staging folders (grader.outfolder)


@dataclass(frozen=True)
class Identity:
    """Who a submission folder is graded as, settled by the class plan (grader.pipeline.class_plan)
    before anything runs: the student_id its output goes under, and the name to print (the roster's
    when the roster has one, else the submission.yaml's)."""

    student_id: str
    name: str | None = None


class SetupError(Exception):
    """A file the run needs cannot be used: `what` names it (the rubric, the manual scores, the roster,
    the profile), the message says why (with file, line and field where the file has them)."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what
        self.message = message


def load_setup(evaluation: FaceSet, rubric: str | Path | Rubric, out_dir: Path, *, profile: str = "cpu",
               language: str = "en", isolation: Isolation = "bwrap", tasks: TaskSettings = TaskSettings(),
               manual: str | Path | None = None, roster: str | Path | None = None,
               write_pdf: bool = True) -> GradingSetup:
    """A GradingSetup from the files a run names; raises SetupError naming the file that cannot be used."""
    if language not in LANGUAGES:
        raise SetupError("language", f"--lang must be en or zh-TW, not '{language}'")
    rubric_model = rubric if isinstance(rubric, Rubric) else _read("rubric", load_rubric, rubric)
    manual_scores = (_read("manual scores", lambda path: load_manual_scores(path, rubric_model), manual)
                     if manual else ManualScores.none())
    roster_model = _read("roster", load_roster, roster) if roster else Roster.none()
    try:
        hardware = get_profile(profile)
    except ValueError as error:
        raise SetupError("profile", str(error)) from None
    if hardware.unavailable_reason():
        raise SetupError("profile", hardware.unavailable_reason())
    return GradingSetup(evaluation=evaluation, rubric=rubric_model, profile=hardware, out_dir=Path(out_dir),
                        language=language, isolation=isolation, tasks=tasks,  # type: ignore[arg-type]
                        manual=manual_scores, roster=roster_model, write_pdf=write_pdf)


def _read(what: str, reader, path):
    try:
        return reader(path)
    except ConfigError as error:
        raise SetupError(what, f"the {what} cannot be used:\n{error}") from None
