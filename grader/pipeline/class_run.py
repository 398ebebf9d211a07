"""Grading a whole class: plan the batch (grader.pipeline.class_plan), reuse what an earlier run
finished, grade the rest (grader.pipeline.runners in this process, grader.pipeline.dask_runner on
Dask workers), then write the class outputs.

The output folder is locked for the run (grader.outfolder.OutputLock): a second run into it is
refused, and what a killed run left (staging folders) is removed first.

Resume: a re-run reuses every result whose `cache_key` matches its plan's and whose output folder
is complete, and grades the rest. Every output file is written atomically and each student's folder
is swapped in whole (grader.pipeline.student_folder), so a run killed at any moment (even by
SIGKILL) leaves complete results or none, and the next run picks up where it stopped without
losing or duplicating one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from grader import __version__
from grader.fingerprint import FINGERPRINT_FILE
from grader.outfolder import OutputLock, check_out_folder, clean_stale, translate_disk_full
from grader.pipeline.apply_scores import rescored
from grader.pipeline.class_plan import ClassPlan, PlannedSubmission, plan_class
from grader.pipeline.runners import Runner
from grader.pipeline.setup import GradingSetup
from grader.report.artifacts import read_predictions
from grader.report.dashboard import write_dashboard
from grader.report.gradebook import write_gradebook
from grader.result import Result, StageError
from grader.similarity.csv_report import write_similarity_csv
from grader.similarity.evidence import gather_evidence
from grader.similarity.pairs import SimilarPair, find_similar_pairs


def held_result(planned: PlannedSubmission, setup: GradingSetup) -> Result:
    """The result of a folder held out of grading: status conflict, the reason, nothing written."""
    return Result(student_id=planned.student_id, name=planned.identity.name or "", folder=planned.folder.name,
                  status="conflict", max_score=setup.rubric.max_score,
                  errors=[StageError(stage="identity", message=planned.conflict or "")], tool_version=__version__)


def cached_result(planned: PlannedSubmission, setup: GradingSetup) -> Result | None:
    """The finished result of an earlier run with the same key, when its folder is complete, with the
    TA's current scores (its result.json and PDF rewritten when they changed; no model runs)."""
    folder = setup.out_dir / planned.student_id
    try:
        result = Result.read(folder / "result.json")
    except (OSError, ValueError):
        return None
    if (not result.cache_key or result.cache_key != planned.cache_key
            or (setup.write_pdf and not (folder / "report.pdf").is_file())):
        return None
    return rescored(folder, result, setup.manual, setup.language, setup.write_pdf)


def grade_class(root: Path, setup: GradingSetup, runner: Runner | None = None, force: bool = False,
                on_result: Callable[[Path, Result, bool], None] | None = None) -> list[Result]:
    """Grade every submission folder under `root` (reusing finished results unless `force`), then
    write gradebook.csv, similarity.csv and the dashboard. on_result(folder, result, reused) follows
    progress. Results come back in folder-name order whatever order they were graded in.

    Raises OutputFolderError (grader.outfolder) before anything runs when the output folder is, holds
    or lies in `root`, or another run holds it; and when it fills up (a full disk)."""
    check_out_folder(setup.out_dir, [root], label="submissions folder")
    with OutputLock(setup.out_dir):
        clean_stale(setup.out_dir)
        plan = plan_class(root, setup)
        done: dict[Path, Result] = {}

        def collect(planned: PlannedSubmission, result: Result, reused: bool = False) -> None:
            done[planned.folder] = result
            if on_result is not None:
                on_result(planned.folder, result, reused)

        pending = []
        for planned in plan.submissions:
            if planned.conflict is not None:
                collect(planned, held_result(planned, setup))
                continue
            result = None if force else cached_result(planned, setup)
            if result is None:
                pending.append(planned)
            else:
                collect(planned, result, reused=True)
        (runner or Runner()).run(pending, setup, collect)
        results = [done[planned.folder] for planned in plan.submissions]
        with translate_disk_full(setup.out_dir):
            write_class_outputs(plan, results, setup)
    return results


def write_class_outputs(plan: ClassPlan, results: Sequence[Result], setup: GradingSetup) -> None:
    """gradebook.csv, similarity.csv and the dashboard (index.html). Whatever a submission did,
    these are written: the similarity report, which reads what the grading stored for every
    student, gives up (an empty report) rather than stop the others."""
    write_gradebook(results, setup.out_dir / "gradebook.csv")
    try:
        pairs = similar_submissions(plan, results, setup)
    except Exception:  # noqa: BLE001  (a report of suspicion is worth less than the gradebook and dashboard)
        pairs = []
    write_similarity_csv(pairs, setup.out_dir / "similarity.csv")
    write_dashboard(results, setup.out_dir, setup.language, similar=pairs)


def similar_submissions(plan: ClassPlan, results: Sequence[Result], setup: GradingSetup) -> list[SimilarPair]:
    """Pairs with near-identical weights, the same normalized source, or predictions that agree far
    more than their accuracies explain (grader.similarity). The weights enter as the fingerprint the
    sandbox computed (arrays/weights_fingerprint.npz) and model.py as bounded text: no student code
    runs and no student binary is parsed here. Held folders are left out."""
    evidence = []
    for planned, result in zip(plan.submissions, results):
        if planned.conflict is not None:
            continue
        student_dir = setup.out_dir / result.student_id
        predictions, labels = read_predictions(student_dir) or (None, None)
        evidence.append(gather_evidence(planned.folder, predictions, labels, student_id=result.student_id,
                                        fingerprint_file=student_dir / "arrays" / FINGERPRINT_FILE,
                                        spec=planned.spec))
    return find_similar_pairs(evidence)


