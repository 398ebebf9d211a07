"""`grader review OUT`: open (or create) the review workspace of a graded output folder and serve it,
or export its scores in the `grader grade --manual` format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.result import RegradeNote
from grader.review.app import create_app
from grader.review.database import default_database, open_database
from grader.review.security import Guards
from grader.review.store import ReviewStore
from grader.review.values import ImportSummary
from grader.scoring.rubric import Rubric


@dataclass(frozen=True)
class Workspace:
    store: ReviewStore
    imported: ImportSummary


def open_workspace(out_dir: Path, rubric: Rubric, database: str | Path | None = None) -> Workspace:
    """The store of `out_dir`'s review (OUT/review.sqlite unless `database` names a file or a URL),
    with the class's students and the rubric's criteria imported."""
    store = ReviewStore(open_database(database if database is not None else default_database(out_dir)))
    return Workspace(store, store.import_class(out_dir, rubric))


def export_scores(database: str | Path, target: Path) -> Path:
    """The TA scores of an existing workspace database, written to `target` in the --manual format."""
    if isinstance(database, Path) or "://" not in database:
        if not Path(database).is_file():
            raise FileNotFoundError(f"{database}: no review database here (grader review OUT creates OUT/review.sqlite)")
    ReviewStore(open_database(database)).export_manual_csv(target)
    return target


def review_regrades(database: str | Path) -> dict[str, dict[str, tuple[RegradeNote, ...]]]:
    """Every regrade request of a workspace and its resolution, by student and criterion, for the PDFs."""
    notes: dict[str, dict[str, tuple[RegradeNote, ...]]] = {}
    for request in ReviewStore(open_database(database)).regrade_requests():
        note = RegradeNote(request=request.text, status=request.status, resolution=request.resolution or "",
                           resolved_by=request.resolved_by or "")
        by_criterion = notes.setdefault(request.student_id, {})
        by_criterion[request.criterion_id] = (*by_criterion.get(request.criterion_id, ()), note)
    return notes


def review_address(host: str, port: int, guards: Guards) -> str:
    """The address the TA opens (with the token when the server listens beyond this machine)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={guards.access_token}" if guards.access_token else "")


def serve(out_dir: Path, rubric: Rubric, workspace: Workspace, host: str, port: int, grader: str = "",
          on_ready=print) -> None:
    """Serve the workspace until interrupted; `on_ready(address)` is told where to open it."""
    import uvicorn

    guards = Guards.for_host(host)
    app = create_app(out_dir, rubric, workspace.store, guards, grader=grader)
    on_ready(review_address(host, port, guards))
    uvicorn.run(app, host=host, port=port, log_level="warning")
