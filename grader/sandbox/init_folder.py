"""`grader init`'s trip through the sandbox: find the candidate files (trusted, bounded:
grader.submission.init_spec), start a server with `--inspect` on a snapshot of the folder (it loads
no model: grader.sandbox.serve.serve_inspection), ask it one `inspect` request
(grader.submission.inspection runs there), read the answer as untrusted, and decide.

The server is the grading server under the same isolation and limits, so importing the student's
model.py and parsing their weights files happen only there; a server that crashes, hangs or answers
garbage is a SubmissionError with the usual words (grader.sandbox.client).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.profile import HardwareProfile
from grader.sandbox.client import SandboxServer
from grader.sandbox.isolation import Isolation
from grader.sandbox.requests import INSPECT
from grader.sandbox.wire import Message
from grader.submission.errors import SubmissionError
from grader.submission.folder import tree_bounds
from grader.submission.init_spec import InitPlan, decide, find_candidates, inspection_from


@dataclass(frozen=True)
class InitFindings:
    """The plan, whether the folder already has a submission.yaml, and what the student's code printed."""

    plan: InitPlan
    has_spec: bool
    output: str


def plan_init(folder: Path, profile: HardwareProfile, isolation: Isolation) -> InitFindings:
    """What `grader init` would write for `folder`; SubmissionError when the folder's tree is refused
    or the sandbox fails (not when the student's code fails: that is a finding)."""
    candidates, has_spec = find_candidates(folder, tree_bounds(profile.limits))
    server = SandboxServer(profile, isolation, server_args=("--inspect",))
    server.load(Path(folder))
    try:
        response = server.request(Message({"op": INSPECT, "weights": list(candidates.weights),
                                           "sources": list(candidates.sources)}),
                                  "inspecting the submission's files")
    finally:
        server.close()
    try:
        inspection = inspection_from(response.header.get("inspection"), candidates)
    except (ValueError, TypeError, AttributeError, IndexError) as error:
        raise SubmissionError("request", f"the sandbox's inspection is malformed: {error}") from None
    return InitFindings(decide(candidates, inspection), has_spec, server.output.text())
