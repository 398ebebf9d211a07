"""A GradingSetup from the options a person gives: `grader grade`, `grader check` and `grader kit`
(grader.cli) and the pytest plugin (grader.pytest_plugin) all build theirs here, so that `--kit`
means the same everywhere: the kit's rubric, task settings, language, profile and public split.

Every problem is a SetupError whose message says what to do; warnings (grading on the synthetic
faces, a kit made by another version) go to `warn` as plain text, in the order they arise.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from grader.data.faceset import DataFormatError, FaceSet
from grader.pipeline.setup import GradingSetup, Isolation, SetupError, load_setup
from grader.questions.settings import TaskSettings
from grader.scoring.rubric import default_rubric_path

SYNTHETIC_WARNING = (
    "no --data: grading on the bundled synthetic faces, not on FER2013. A model trained on real faces scores "
    "low on them (19-34% for the real student models tried), so these numbers say little about your grade: "
    "grade with the course's labelled data (--data) for numbers that do.")


def setup_from_options(out: Path, isolation: Isolation | str, *, data: Path | None = None,
                       usage: str = "PrivateTest", rubric: Path | None = None, language: str = "en",
                       profile: str = "cpu", quick: bool = False, smoothgrad: bool = False,
                       manual: Path | None = None, roster: Path | None = None, kit: Path | None = None,
                       warn: Callable[[str], None] = lambda line: None) -> GradingSetup:
    """The setup a run with these options grades under; SetupError when the grader itself cannot run."""
    tasks = replace(TaskSettings.quick() if quick else TaskSettings(), smoothgrad=smoothgrad)
    with tempfile.TemporaryDirectory() as scratch:  # a zipped kit is unpacked here and read whole
        if kit is not None:
            course_kit = read_course_kit(kit, Path(scratch), rubric=rubric, language=language, profile=profile,
                                         quick=quick, smoothgrad=smoothgrad, warn=warn)
            from_kit = data is None
            usage = usage if data is not None else course_kit.usage
            data = data if data is not None else course_kit.data
            rubric, language, profile = course_kit.rubric, course_kit.manifest.language, course_kit.manifest.profile
            tasks = course_kit.tasks
        try:
            evaluation = evaluation_set(data, usage)
        except (DataFormatError, ValueError) as error:
            raise SetupError("data", str(error)) from None
        if kit is not None and from_kit and kit.is_file():
            # result.json names the data inside the zip, not the scratch folder it was unpacked in.
            evaluation = replace(evaluation, path=f"{kit.resolve()}!/{course_kit.manifest.data.file}")
        if evaluation.synthetic:
            warn(SYNTHETIC_WARNING)
        return load_setup(evaluation, rubric or default_rubric_path(), out, profile=profile, language=language,
                          isolation=isolation,  # type: ignore[arg-type]
                          tasks=tasks, manual=manual, roster=roster)


def read_course_kit(path: Path, scratch: Path, *, rubric: Path | None = None, language: str = "en",
                    profile: str = "cpu", quick: bool = False, smoothgrad: bool = False,
                    warn: Callable[[str], None] = lambda line: None):
    """The kit at `path`, checked; the options a kit fixes may not be given beside it (the numbers
    would no longer be the TA's)."""
    from grader.pipeline.kit import KitError, read_kit

    given = [option for option, is_given in (("--rubric", rubric is not None), ("--lang", language != "en"),
                                             ("--profile", profile != "cpu"), ("--quick", quick),
                                             ("--smoothgrad", smoothgrad)) if is_given]
    if given:
        raise SetupError("kit", f"--kit sets the rubric, language, profile and task settings; leave out "
                                f"{', '.join(given)} (or grade without the kit)")
    try:
        course_kit = read_kit(path, scratch)
    except KitError as error:
        raise SetupError("kit", str(error)) from None
    if course_kit.version_note:
        warn(course_kit.version_note)
    return course_kit


def evaluation_set(data: Path | None, usage: str) -> FaceSet:
    """The labeled faces at `data` (the bundled synthetic split when None); ValueError for unlabeled ones."""
    from grader.data.bundled import bundled_evaluation
    from grader.data.readers import read_faces

    faces = bundled_evaluation() if data is None else read_faces(data, usage=usage)
    if not faces.has_labels:
        raise ValueError(f"{data}: this file has no labels (an id,feature test file?); grading needs the "
                         "labeled evaluation set (label,feature)")
    return faces
