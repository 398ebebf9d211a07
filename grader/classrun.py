"""Grading a whole class: plan the batch, reuse what an earlier run finished, grade the rest
(in this process, or in parallel on Dask workers), then write the class outputs.

Resume: each submission's result is keyed by a hash of everything it depends on (its files, the
rubric, the evaluation data, the hardware profile, the task settings, the report language, the
TA's scores for that student and the tool version), stored in result.json as `cache_key`. A re-run
reuses every result whose key matches and whose output folder is complete, and grades the rest.
Every output file is written atomically and each student's folder is swapped in whole
(grader.batch), so a run killed at any moment (even by SIGKILL) leaves complete results or
none, and the next run picks up where it stopped without losing or duplicating one.

Duplicate student ids are settled before anything runs (the first folder in name order owns an
id), so the outcome does not depend on which worker grades which folder first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from grader import __version__
from grader.batch import GradingSetup, folder_student_id, grade_submission, submission_folders, submission_sha256
from grader.report.dashboard import write_dashboard
from grader.report.gradebook import write_gradebook
from grader.result import Result
from grader.similarity import SimilarPair, find_similar_pairs, gather_evidence, write_similarity_csv
from grader.submission.spec import load_spec
from grader.yamlfile import ConfigError


@dataclass(frozen=True)
class PlannedSubmission:
    """One folder of the batch: the id its output goes under, and its cache key."""

    folder: Path
    student_id: str
    cache_key: str


@dataclass(frozen=True)
class ClassPlan:
    submissions: list[PlannedSubmission]
    owners: dict[str, str]  # student id -> the folder name that owns it


class Runner:
    """Grades planned submissions and hands back each result as it is done (any order)."""

    def run(self, pending: Sequence[PlannedSubmission], setup: GradingSetup, owners: dict[str, str],
            on_result: Callable[[PlannedSubmission, Result], None]) -> None:
        for planned in pending:
            on_result(planned, grade_submission(planned.folder, setup, owners, cache_key=planned.cache_key))


def plan_class(root: Path, setup: GradingSetup) -> ClassPlan:
    """Every submission folder with its output id and cache key."""
    owners: dict[str, str] = {}
    spec_ids: dict[Path, str | None] = {}
    for folder in submission_folders(root):
        spec_ids[folder] = _spec_id(folder)
        if spec_ids[folder] is not None:
            owners.setdefault(spec_ids[folder], folder.name)
    shared = _setup_digest(setup)
    planned = []
    for folder, spec_id in spec_ids.items():
        student_id = spec_id if spec_id is not None and owners[spec_id] == folder.name else folder_student_id(folder)
        planned.append(PlannedSubmission(folder, student_id, _cache_key(folder, student_id, shared, setup)))
    return ClassPlan(planned, owners)


def cached_result(planned: PlannedSubmission, setup: GradingSetup) -> Result | None:
    """The finished result of an earlier run with the same key, when its folder is complete."""
    folder = setup.out_dir / planned.student_id
    try:
        result = Result.read(folder / "result.json")
    except (OSError, ValueError):
        return None
    if result.cache_key != planned.cache_key or (setup.write_pdf and not (folder / "report.pdf").is_file()):
        return None
    return result


def grade_class(root: Path, setup: GradingSetup, runner: Runner | None = None, force: bool = False,
                on_result: Callable[[Path, Result, bool], None] | None = None) -> list[Result]:
    """Grade every submission folder under `root` (reusing finished results unless `force`), then
    write gradebook.csv and the dashboard. on_result(folder, result, reused) follows progress.
    Results come back in folder-name order whatever order they were graded in."""
    plan = plan_class(root, setup)
    done: dict[Path, Result] = {}
    pending = []
    for planned in plan.submissions:
        result = None if force else cached_result(planned, setup)
        if result is None:
            pending.append(planned)
            continue
        done[planned.folder] = result
        if on_result is not None:
            on_result(planned.folder, result, True)

    def collect(planned: PlannedSubmission, result: Result) -> None:
        done[planned.folder] = result
        if on_result is not None:
            on_result(planned.folder, result, False)

    (runner or Runner()).run(pending, setup, plan.owners, collect)
    results = [done[planned.folder] for planned in plan.submissions]
    write_class_outputs(plan, results, setup)
    return results


def write_class_outputs(plan: ClassPlan, results: Sequence[Result], setup: GradingSetup) -> None:
    """gradebook.csv, similarity.csv and the dashboard (index.html)."""
    write_gradebook(results, setup.out_dir / "gradebook.csv")
    pairs = similar_submissions(plan, results, setup)
    write_similarity_csv(pairs, setup.out_dir / "similarity.csv")
    write_dashboard(results, setup.out_dir, setup.language, similar=pairs)


def similar_submissions(plan: ClassPlan, results: Sequence[Result], setup: GradingSetup) -> list[SimilarPair]:
    """Pairs with near-identical weights, the same normalized source, or predictions that agree far
    more than their accuracies explain (grader.similarity). Weights are read with weights_only and
    model.py as text: no student code runs here."""
    evidence = []
    for planned, result in zip(plan.submissions, results):
        predictions = labels = None
        confusion = setup.out_dir / result.student_id / "arrays" / "confusion.npz"
        if confusion.is_file():
            with np.load(confusion) as arrays:
                predictions, labels = arrays["predictions"], arrays["labels"]
        evidence.append(replace(gather_evidence(planned.folder, predictions, labels), student_id=result.student_id))
    return find_similar_pairs(evidence)


def _spec_id(folder: Path) -> str | None:
    try:
        return load_spec(folder).student_id
    except (ConfigError, OSError, ValueError):
        return None  # grading reports the problem; the folder's own name stands in


def _setup_digest(setup: GradingSetup) -> str:
    """What every submission's result depends on besides its own files."""
    digest = hashlib.sha256()
    digest.update(__version__.encode())
    digest.update(setup.rubric.model_dump_json().encode())
    digest.update(setup.profile.model_dump_json().encode())
    digest.update(json.dumps(asdict(setup.tasks), sort_keys=True).encode())
    digest.update(f"{setup.language}|{setup.write_pdf}".encode())
    faces = setup.evaluation
    for array in (faces.images, faces.labels, faces.masks):
        digest.update(b"-" if array is None else np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _cache_key(folder: Path, student_id: str, shared: str, setup: GradingSetup) -> str:
    manual = sorted((s.criterion, s.points, s.comment) for s in setup.manual.of(student_id).values())
    digest = hashlib.sha256()
    for part in (shared, student_id, submission_sha256(folder), json.dumps(manual, ensure_ascii=False)):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()
