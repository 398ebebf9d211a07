"""Settling a class before anything runs: every submission folder with the identity it is graded
under (or the conflict it is held for) and its cache key.

Identity: a student_id in submission.yaml is a claim, settled before anything runs and never by
order. Two folders whose ids claim the same output folder (equal ids, or ids equal but for case,
which share a folder on case-insensitive file systems) are both held as `conflict`, ungraded, each
naming the other, until a roster (`--roster`) says which folder is whose. With a roster, a folder
it lists is graded under the roster's id and name, and one whose submission.yaml names another
student is held; a folder the roster does not list, claiming an id the roster gives to another
folder, is held too.

Cache key: a hash of everything a submission's model work depends on (its files, the rubric, the
evaluation data, the hardware profile, the task settings, the report language, its identity and
the tool version), stored in result.json as `cache_key` (grader.pipeline.class_run reuses a result
whose key matches). The TA's scores are not part of it: a reused result takes the current scores
without grading again (grader.pipeline.apply_scores).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from grader import __version__
from grader.escape import safe_file_name
from grader.pipeline.setup import GradingSetup, Identity
from grader.pipeline.student_folder import folder_student_id, submission_folders
from grader.roster import Roster
from grader.submission.errors import SubmissionError
from grader.submission.folder import SubmissionFolder, tree_bounds
from grader.submission.spec import SubmissionSpec
from grader.yamlfile import ConfigError


@dataclass(frozen=True)
class PlannedSubmission:
    """One folder of the batch: who it is graded as, its cache key, and, for a folder held out of
    grading, why (`conflict`)."""

    folder: Path
    identity: Identity
    cache_key: str
    conflict: str | None = None
    spec: SubmissionSpec | None = None  # as the plan read it (None when it could not be read)

    @property
    def student_id(self) -> str:
        return self.identity.student_id


@dataclass(frozen=True)
class ClassPlan:
    submissions: list[PlannedSubmission]



@dataclass(frozen=True)
class _Claim:
    """What one folder says about itself, read before anything runs."""

    folder: Path
    student_id: str
    name: str | None
    sha256: str
    conflict: str | None = None
    spec: SubmissionSpec | None = None
    source: Literal["roster", "spec", "folder"] = "spec"  # where the id comes from


def plan_class(root: Path, setup: GradingSetup) -> ClassPlan:
    """Every submission folder with the identity it is graded under (or the conflict it is held
    for) and its cache key. A folder whose tree or submission.yaml cannot be read is planned under
    its folder's name; grading it reports why."""
    claims = [_claim(folder, setup) for folder in submission_folders(root)]
    claims = _hold_shared_claims(claims)
    shared = _setup_digest(setup)
    return ClassPlan([PlannedSubmission(claim.folder, Identity(claim.student_id, claim.name),
                                        _cache_key(claim, shared, setup), claim.conflict, claim.spec)
                      for claim in claims])


def _claim(folder: Path, setup: GradingSetup) -> _Claim:
    spec, sha256 = None, ""
    try:
        files = SubmissionFolder.read(folder, tree_bounds(setup.profile.limits), exclude=(setup.out_dir,))
        sha256 = files.sha256
        spec = files.spec()
    except (SubmissionError, ConfigError, OSError):
        pass  # grading reports what is wrong; the folder's own name stands in
    return replace(_roster_claim(folder, spec, sha256, setup.roster), spec=spec)


def _roster_claim(folder: Path, spec: SubmissionSpec | None, sha256: str, roster: Roster) -> _Claim:
    """The folder's identity: the roster's for a folder it lists, else the submission.yaml's, else
    the folder's name; held when the roster and the submission.yaml disagree."""
    listed = roster.by_folder(folder.name)
    if listed is not None:
        conflict = None
        if spec is not None and spec.student_id != listed.student_id:
            conflict = (f"submission.yaml says student_id {spec.student_id}, but the roster (line {listed.line}) "
                        f"gives the folder '{folder.name}' to {listed.student_id}: held until the roster or the "
                        "submission.yaml is corrected")
        return _Claim(folder, listed.student_id, listed.name or (spec.name if spec else None), sha256, conflict,
                      source="roster")
    if spec is None:
        matches = roster.folder_matches(folder.name)
        conflict = None if len(matches) < 2 else (
            f"the roster matches the folder '{folder.name}' to several students "
            f"({', '.join(m.student_id for m in matches)}): give its full name in the roster's folder column")
        return _Claim(folder, folder_student_id(folder), None, sha256, conflict, source="folder")
    entry = roster.by_id(spec.student_id)
    conflict = None
    if entry is not None and entry.folder and entry.folder != folder.name:
        conflict = (f"submission.yaml claims student_id {spec.student_id}, which the roster (line {entry.line}) gives "
                    f"to the folder '{entry.folder}': held until the roster says this folder is whose")
    name = entry.name if entry is not None and entry.name else spec.name
    return _Claim(folder, spec.student_id, name, sha256, conflict)


def _hold_shared_claims(claims: list[_Claim]) -> list[_Claim]:
    """Settle the claims of one output folder (ids equal up to case): a folder the roster lists keeps
    its id; folders whose submission.yaml claims an id another folder also claims are held, all of
    them; a folder with no readable submission.yaml claims nothing, so one named like a student's
    id is given a name of its own instead of blocking that student."""
    by_key: dict[str, list[_Claim]] = {}
    for claim in claims:
        if claim.conflict is None:
            by_key.setdefault(claim.student_id.casefold(), []).append(claim)
    settled: dict[Path, _Claim] = {}
    for group in (group for group in by_key.values() if len(group) > 1):
        for claim in group:
            if claim.source == "folder":
                settled[claim.folder] = replace(claim, student_id=unique_folder_id(claim.folder))
        claimants = [claim for claim in group if claim.source != "folder"]
        owners = [claim for claim in claimants if claim.source == "roster"]
        if len(owners) == 1:
            claimants = [claim for claim in claimants if claim is not owners[0]]
        if len(owners) == 1 or len(claimants) > 1:
            for claim in claimants:
                settled[claim.folder] = replace(claim, conflict=_shared_claim_message(claim, group))
    return [settled.get(claim.folder, claim) for claim in claims]


def _shared_claim_message(claim: _Claim, group: list[_Claim]) -> str:
    others = ", ".join(f"'{other.folder.name}' ({other.student_id})" for other in group
                       if other is not claim and other.source != "folder")
    return (f"student_id {claim.student_id} is also claimed by the submission folder {others}; neither is graded "
            "under it until a roster (grader grade --roster roster.csv) says which folder is whose")


def unique_folder_id(folder: Path) -> str:
    """An output id from a folder's name that no student id can equal: the safe name and a hash."""
    return safe_file_name(folder.name, unique=True)


def _setup_digest(setup: GradingSetup) -> str:
    """What every submission's result depends on besides its own files and identity."""
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


def _cache_key(claim: _Claim, shared: str, setup: GradingSetup) -> str:
    """"" for a folder whose tree could not be read (never reused: it is graded, and fails, again)."""
    if not claim.sha256:
        return ""
    digest = hashlib.sha256()
    for part in (shared, claim.student_id, claim.name or "", claim.sha256):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()
