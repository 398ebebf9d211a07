"""The runner inside a platform's container: grade the one submission there with the course kit and
write the platform's results file, whatever happens.

    grader autograder gradescope   --root /autograder   (run_autograder calls this)
    grader autograder prairielearn --root /grade        (the question's entrypoint)

Layouts (the root is a parameter, so tests run against a temporary one):

    gradescope    ROOT/submission/        the student's files, flat
                  ROOT/source/kit.zip|kit the course kit, from the autograder zip
                  ROOT/results/results.json
    prairielearn  ROOT/student/           the student's files (pl-file-upload)
                  ROOT/tests/kit.zip|kit, or ROOT/serverFilesCourse/xai-grader/kit.zip|kit
                  ROOT/results/results.json

A submission is graded exactly as `grader check SUBMISSION --kit KIT` grades it: the same setup
(grader.pipeline.options.setup_from_options: the kit's rubric, data, task settings, language and
profile) and the same single-submission path (grader.pipeline.student_folder.grade_submission),
with no PDF (neither platform shows one). The student's folder is the submission folder itself; when it
has no submission.yaml but a single folder that has one (a student who uploaded their folder
rather than its files), that folder is graded, with a note. Student code runs in the bubblewrap
sandbox when bwrap works in the container, and otherwise in a plain subprocess, said in a note
(Gradescope's and PrairieLearn's containers may not allow the namespaces bwrap needs; each
container grades one submission and is thrown away).

Everything from reading the kit to writing the results is one error boundary: a failure of the
grader's own becomes a results file that says so (the platform's crash_results), never a crash of
the script without one.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from grader.platforms import gradescope, prairielearn
from grader.platforms.common import write_json
from grader.result import Result

Platform = Literal["gradescope", "prairielearn"]
SPEC_FILE = "submission.yaml"


@dataclass(frozen=True)
class Layout:
    """Where one platform puts the submission and the kit, and where it wants the results."""

    submission: Path
    kits: tuple[Path, ...]
    results: Path

    @classmethod
    def of(cls, platform: Platform, root: Path) -> Layout:
        root = Path(root)
        if platform == "gradescope":
            return cls(root / "submission", tuple(root / "source" / name for name in gradescope.KIT_NAMES),
                       root / "results" / "results.json")
        if platform == "prairielearn":
            kits = tuple(root / folder / name for folder in ("tests", "serverFilesCourse/xai-grader")
                         for name in ("kit.zip", "kit"))
            return cls(root / "student", kits, root / "results" / "results.json")
        raise ValueError(f"unknown platform '{platform}': gradescope or prairielearn")


@dataclass
class Outcome:
    """What a run produced: the Result (None when the grader itself failed), the notes for the
    student, the failure message, and the time it took."""

    result: Result | None = None
    notes: list[str] = field(default_factory=list)
    failure: str = ""
    seconds: float = 0.0
    student_folder: Path | None = None


def run(platform: Platform, root: Path, *, kit: Path | None = None, visibility: str = "visible",
        keep: Path | None = None, also: dict[Platform, Path] | None = None) -> Outcome:
    """Grade ROOT's submission and write the platform's results file (and, for each entry of
    `also`, that platform's results to that path, from the same grading). `keep`: a folder to
    keep the grading output in (result.json, figures, arrays); otherwise a scratch folder."""
    started = time.monotonic()
    layout = Layout.of(platform, root)
    targets: dict[Platform, Path] = {platform: layout.results, **(also or {})}
    for path in targets.values():
        _clear(path)
    with tempfile.TemporaryDirectory(prefix="xai-autograder-") as scratch_name:
        scratch = Path(scratch_name)
        out = Path(keep) if keep is not None else scratch / "out"
        outcome = Outcome()
        try:
            _grade(layout, kit, out, outcome)
        except Exception as error:  # noqa: BLE001  (the one boundary: always a results file)
            traceback.print_exc()
            outcome.failure = f"{type(error).__name__}: {error}"
        outcome.seconds = time.monotonic() - started
        for target_platform, path in targets.items():
            _write(target_platform, path, outcome, visibility)
    return outcome


def _grade(layout: Layout, kit_path: Path | None, out: Path, outcome: Outcome) -> None:
    """The setup `grader check --kit` builds (grader.pipeline.options), without the PDF, then the
    single-submission path."""
    from grader.pipeline.options import setup_from_options
    from grader.pipeline.setup import SetupError
    from grader.pipeline.student_folder import grade_submission
    from grader.quiet import quiet_libraries

    quiet_libraries()
    kit_path = kit_path if kit_path is not None else _find_kit(layout)
    folder = _submission_folder(layout.submission, outcome.notes)
    isolation = _isolation(outcome.notes)
    try:
        setup = setup_from_options(out, isolation, kit=kit_path, warn=lambda line: print(f"warning: {line}"))
    except SetupError as error:
        raise RuntimeError(f"the course kit cannot be used: {error.message}") from None
    out.mkdir(parents=True, exist_ok=True)
    result = grade_submission(folder, replace(setup, write_pdf=False))
    outcome.result = result
    outcome.student_folder = out / result.student_id
    print(f"graded {result.student_id}: {result.status}, {result.score:g}/{result.max_score:g}")


def _find_kit(layout: Layout) -> Path:
    for candidate in layout.kits:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no course kit at {' or '.join(str(path) for path in layout.kits)}")


def _submission_folder(folder: Path, notes: list[str]) -> Path:
    """The folder to grade; a note when submission.yaml is not where it should be."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing: the platform handed over no submission")
    if (folder / SPEC_FILE).is_file():
        return folder
    inner = [path for path in folder.iterdir() if path.is_dir() and (path / SPEC_FILE).is_file()]
    if len(inner) == 1:
        notes.append(f"submission.yaml was in the folder '{inner[0].name}' of your upload, not at its top; that "
                     "folder was graded. Upload the files themselves (submission.yaml, model.py, the weights, "
                     "report.md) next time.")
        return inner[0]
    notes.append("submission.yaml is missing from your upload: upload submission.yaml, model.py, your weights "
                 "file and report.md as files, not inside a folder or zip (grader init writes submission.yaml "
                 "for you).")
    return folder


def _isolation(notes: list[str]) -> str:
    from grader.sandbox.isolation import bwrap_works

    if bwrap_works():
        return "bwrap"
    notes.append("the autograder's container does not allow the bubblewrap sandbox, so your model ran in a "
                 "plain subprocess of this container (the container grades only your submission and is "
                 "thrown away).")
    return "subprocess"


def _write(platform: Platform, path: Path, outcome: Outcome, visibility: str) -> None:
    try:
        write_json(path, _document(platform, outcome, visibility))  # serialized inside: a NaN is caught too
    except Exception as error:  # noqa: BLE001  (a result we cannot turn into the platform's format)
        traceback.print_exc()
        write_json(path, _document(platform, Outcome(failure=f"{type(error).__name__}: {error}",
                                                     seconds=outcome.seconds), visibility))


def _document(platform: Platform, outcome: Outcome, visibility: str) -> dict:
    if outcome.result is None:
        if platform == "gradescope":
            return gradescope.crash_results(outcome.failure, execution_time=outcome.seconds, visibility=visibility)
        return prairielearn.crash_results(outcome.failure)
    if platform == "gradescope":
        return gradescope.gradescope_results(outcome.result, execution_time=outcome.seconds, notes=outcome.notes,
                                             visibility=visibility)
    return prairielearn.prairielearn_results(outcome.result, outcome.student_folder, notes=outcome.notes)


def _clear(path: Path) -> None:
    """Remove a stale results file before a run (a crash must not leave the last one standing)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
