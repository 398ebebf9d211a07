"""The `grader` command: grade a class, check one submission, make the synthetic data."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from grader.classes import Language
from grader.csvmessages import summarize_ids
from grader.escape import terminal_text
from grader.quiet import quiet_libraries
from grader.result import CriterionResult, Result
from grader.scoring.rubric import default_rubric_path
from grader.yamlfile import ConfigError

app = typer.Typer(help="Grade 'explain your CNN' assignments and write each student a report.",
                  no_args_is_help=True, add_completion=False)
data_app = typer.Typer(help="Evaluation data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(soft_wrap=True)  # long paths and messages stay on one line, to copy

DEFAULT_SUBMISSIONS = Path("submissions")
DataOption = Annotated[Optional[Path], typer.Option(
    "--data", help="labeled evaluation set: the course's label,feature CSV, an image folder or fer2013.csv "
                   "(default: the bundled synthetic evaluation split)")]
UsageOption = Annotated[str, typer.Option("--usage", help="fer2013.csv rows to evaluate on (its Usage column)")]
RubricOption = Annotated[Optional[Path], typer.Option(
    "--rubric", help="the rubric to score against (default: the course rubric shipped with xai-grader)")]
OutOption = Annotated[Path, typer.Option("--out", help="output folder")]
LanguageOption = Annotated[str, typer.Option("--lang", help="report language: en or zh-TW")]
ProfileOption = Annotated[str, typer.Option("--profile", help="hardware profile (cpu)")]
SmoothGradOption = Annotated[bool, typer.Option("--smoothgrad", help="Q1 saliency maps by SmoothGrad "
                                                                    "(Smilkov et al. 2017) instead of plain gradients")]
KitOption = Annotated[Optional[Path], typer.Option(
    "--kit", help="the course kit (made by grader kit): its rubric, task settings, language and profile, and "
                  "its public labeled split unless --data is given")]
QuickOption = Annotated[bool, typer.Option("--quick", help="about a tenth of the explanation work (LIME "
                                                          "samples, ascent steps): same figures, noisier")]


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {_plain(message)}", highlight=False)
    return typer.Exit(code=2)


def _plain(text: object) -> str:
    """Text for the console that may hold a path or a file's content: Rich markup escaped, line
    breaks kept (our own multi-line messages), every control character replaced."""
    return "\n".join(terminal_text(line) for line in str(text).split("\n"))


def _isolation(no_sandbox: bool, strict: bool) -> str:
    """bwrap when it works; otherwise `grade` refuses unless --no-sandbox, and `check` warns."""
    from grader.sandbox.isolation import bwrap_works

    if no_sandbox:
        console.print("[yellow]warning:[/] --no-sandbox: student code runs in a plain subprocess that can read "
                      "and write your files and use the network", highlight=False)
        return "subprocess"
    if bwrap_works():
        return "bwrap"
    if strict:
        raise _fail("bubblewrap (bwrap) is missing or cannot create namespaces here, so student code cannot be "
                    "isolated. Install it (apt-get install bubblewrap) or pass --no-sandbox to run submissions "
                    "in a plain subprocess")
    console.print("[yellow]warning:[/] bubblewrap is not available: your code runs in a plain subprocess "
                  "(the TA's grader runs it in the sandbox)", highlight=False)
    return "subprocess"


def _setup(data: Path | None, usage: str, rubric: Path | None, out: Path, language: str, profile: str, isolation: str,
           quick: bool = False, smoothgrad: bool = False, manual: Path | None = None, roster: Path | None = None,
           kit: Path | None = None):
    """Everything a batch needs (grader.pipeline.options, shared with the pytest plugin), or a clear
    error and exit code 2 when the grader itself cannot run."""
    from grader.pipeline.options import setup_from_options
    from grader.pipeline.setup import SetupError

    try:
        return setup_from_options(out, isolation, data=data, usage=usage, rubric=rubric, language=language,
                                  profile=profile, quick=quick, smoothgrad=smoothgrad, manual=manual, roster=roster,
                                  kit=kit, warn=lambda line: console.print(f"[yellow]warning:[/] {_plain(line)}",
                                                                           highlight=False))
    except SetupError as error:
        raise _fail(error.message) from None


@app.command()
def grade(
    submissions: Annotated[Path, typer.Argument(help="folder holding one folder per submission")] = DEFAULT_SUBMISSIONS,
    data: DataOption = None, usage: UsageOption = "PrivateTest",
    rubric: RubricOption = None, out: OutOption = Path("out"),
    lang: LanguageOption = "en", profile: ProfileOption = "cpu", quick: QuickOption = False,
    smoothgrad: SmoothGradOption = False,
    no_sandbox: Annotated[bool, typer.Option("--no-sandbox", help="run student code in a plain subprocess "
                                                                  "when bubblewrap is unavailable")] = False,
    manual: Annotated[Path | None, typer.Option(
        "--manual", help="the TA's scores.csv (student_id, criterion, points, comment): scores and overrides")] = None,
    canvas: Annotated[Path | None, typer.Option("--canvas", help="also write Canvas's grade-import CSV here")] = None,
    assignment: Annotated[str, typer.Option(help="the assignment's column in the Canvas CSV")] = "Explain your CNN",
    workers: Annotated[int | None, typer.Option(help="parallel Dask workers on this machine (default: one per "
                                                      "core that memory allows; 1 grades in this process)")] = None,
    scheduler: Annotated[str | None, typer.Option(help="an existing Dask scheduler, tcp://HOST:PORT, whose workers "
                                                       "share this file system")] = None,
    force: Annotated[bool, typer.Option("--force", help="regrade even what an earlier run finished")] = False,
    roster: Annotated[Path | None, typer.Option(
        "--roster", help="roster.csv (student_id, name, folder): who each submission folder belongs to; settles "
                         "folders that claim the same student_id")] = None,
    review: Annotated[Optional[str], typer.Option(
        "--review", help="the TA scores of a review workspace (grader review): its database file or URL, "
                         "used as --manual")] = None,
    kit: KitOption = None,
) -> None:
    """Grade every submission folder under SUBMISSIONS; a failing submission never stops the batch.
    A re-run reuses every result whose submission, rubric, data, profile and settings are unchanged."""
    quiet_libraries()
    if not submissions.is_dir():
        raise _fail(f"{submissions} is not a folder of submissions")
    from grader.pipeline.class_run import grade_class
    from grader.pipeline.dask_runner import DaskRunner, local_worker_count
    from grader.pipeline.runners import Runner
    from grader.pipeline.student_folder import submission_folders
    from grader.outfolder import OutputFolderError, check_out_folder

    try:
        check_out_folder(out, [submissions], label="submissions folder")
    except OutputFolderError as error:
        raise _fail(str(error)) from None
    if review is not None and manual is not None:
        raise _fail("give the TA's scores once: --manual scores.csv or --review out/review.sqlite, not both")
    with tempfile.TemporaryDirectory() as scratch:
        if review is not None:
            from grader.review.serve import export_scores

            try:
                manual = export_scores(review, Path(scratch) / "review-scores.csv")
            except FileNotFoundError as error:
                raise _fail(str(error)) from None
        setup = _setup(data, usage, rubric, out, lang, profile, _isolation(no_sandbox, strict=True), quick,
                       smoothgrad, manual, roster, kit)
        if review is not None:
            from grader.review.serve import review_regrades

            setup = replace(setup, manual=replace(setup.manual, regrades=review_regrades(review)))
    if workers is not None and workers < 1:
        raise _fail(f"--workers must be at least 1, not {workers}")
    count = len(submission_folders(submissions))
    # The runner starts no more local workers than submissions left to grade (grader.pipeline.dask_runner).
    local_workers = workers or local_worker_count(setup)
    parallel = scheduler is not None or local_workers > 1
    runner = DaskRunner(local_workers, scheduler) if parallel else Runner()
    where = f"Dask scheduler {scheduler}" if scheduler else (
        f"up to {local_workers} local Dask worker(s), one per submission left to grade" if parallel
        else "this process")
    console.print(_plain(f"Grading {count} submission(s) from {submissions} on {setup.evaluation.source}, "
                         f"profile {setup.profile.describe()}, isolation {setup.isolation}, in {where}"),
                  highlight=False)

    from grader.pipeline.dask_runner import SchedulerUnreachable

    try:
        with BatchProgress(count) as progress:
            results = grade_class(submissions, setup, runner=runner, force=force, on_result=progress.result)
    except (SchedulerUnreachable, OutputFolderError) as error:
        raise _fail(str(error)) from None
    if canvas is not None:
        from grader.report.gradebook import write_canvas

        left_out = write_canvas(results, canvas, assignment)
        console.print(_plain(f"Canvas grade import: {canvas}"), highlight=False)
        if left_out:
            console.print(f"[yellow]warning:[/] {len(left_out)} student id(s) with conflicting submissions are not in "
                          f"the Canvas file: {terminal_text(summarize_ids(left_out[:10], len(left_out)))}",
                          highlight=False)
    _warn_unknown_scores(setup, manual, results)
    counts = {status: sum(r.status == status for r in results) for status in ("graded", "failed", "conflict")}
    held = f", {counts['conflict']} held for conflicting ids (see the dashboard)" if counts["conflict"] else ""
    console.print(_plain(f"{counts['graded']} graded, {counts['failed']} failed{held}; gradebook: "
                         f"{out / 'gradebook.csv'}, dashboard: {out / 'index.html'}"), highlight=False)


def _warn_unknown_scores(setup, manual: Path | None, results: list[Result]) -> None:
    """One short line for the TA's scores of students with no submission here, however many."""
    count, first = setup.manual.unknown_students({r.student_id for r in results})
    if count:
        console.print(f"[yellow]warning:[/] {_plain(manual)} scores {count} student(s) with no submission here: "
                      f"{terminal_text(summarize_ids(first, count))}", highlight=False)



def _result_line(folder: Path, result: Result, reused: bool = False) -> str:
    """One console line a submission; every piece of student text goes through terminal_text."""
    again = " [dim](submission unchanged: not run again)[/]" if reused else ""
    who = f"{terminal_text(folder.name)} ({terminal_text(result.student_id)})"
    if result.status in ("failed", "conflict"):
        colour = "red" if result.status == "failed" else "yellow"
        message = terminal_text(result.errors[0].message if result.errors else "")
        return f"[{colour}]{result.status}[/]  {who}: {message}{again}"
    accuracy = f", accuracy {result.accuracy:.1%}" if result.accuracy is not None else ""
    warned = f" [yellow]({len(result.warnings)} warning(s))[/]" if result.warnings else ""
    return f"[green]graded[/]  {who}: {result.score:g}/{result.max_score:g}{accuracy}{warned}{again}"


class BatchProgress:
    """A Rich progress bar over the batch (done, failed, remaining, ETA) and a log line a submission."""

    def __init__(self, total: int) -> None:
        self.failed = 0
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"),
                                 TextColumn("[red]{task.fields[failed]} failed"),
                                 TextColumn("{task.fields[remaining]} remaining"), TimeRemainingColumn(),
                                 console=console, transient=True)
        self.task = self.progress.add_task("grading", total=total, failed=0, remaining=total)

    def __enter__(self) -> BatchProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def result(self, folder: Path, result: Result, reused: bool) -> None:
        self.failed += result.status != "graded"
        self.progress.console.print(_result_line(folder, result, reused), highlight=False)
        self.progress.advance(self.task)
        task = self.progress.tasks[0]
        self.progress.update(self.task, failed=self.failed, remaining=int(task.total - task.completed))


@app.command()
def check(
    submission: Annotated[Path, typer.Argument(help="your submission folder")],
    data: DataOption = None, usage: UsageOption = "PrivateTest",
    rubric: RubricOption = None, out: OutOption = Path("check-out"),
    lang: LanguageOption = "en", profile: ProfileOption = "cpu", quick: QuickOption = False,
    smoothgrad: SmoothGradOption = False, kit: KitOption = None,
) -> None:
    """Grade one submission as the TA will and show the scores; exits 1 when it would fail to grade."""
    quiet_libraries()
    if not submission.is_dir():
        raise _fail(f"{submission} is not a folder")
    from grader.pipeline.student_folder import grade_submission
    from grader.outfolder import OutputFolderError, OutputLock, check_out_folder, clean_stale
    from grader.pipeline.stages import stage_names

    try:
        # `grader check .` from the student's own folder writes check-out inside it: allowed, and
        # left out of what is graded.
        check_out_folder(out, [submission], allow_inside=True, label="submission folder",
                         suggestion=Path("check-out"))
    except OutputFolderError as error:
        raise _fail(str(error)) from None
    setup = _setup(data, usage, rubric, out, lang, profile, _isolation(False, strict=False), quick, smoothgrad,
                   kit=kit)
    try:
        with OutputLock(out), StageProgress(len(stage_names(setup.rubric))) as listener:
            clean_stale(out)
            result = grade_submission(submission, setup, listener=listener)
    except OutputFolderError as error:
        raise _fail(str(error)) from None
    console.print(_score_table(result))
    for error in result.errors:
        console.print(f"[red]fix ({terminal_text(error.stage)}):[/] {terminal_text(error.message)}", highlight=False)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {terminal_text(warning.message)}", highlight=False)
    for line in _shortfalls(result):
        console.print(f"[yellow]improve:[/] {terminal_text(line)}", highlight=False)
    _print_claims(result, setup.language)
    from grader.submission.init_spec import PLACEHOLDER_ID

    if result.student_id == PLACEHOLDER_ID:
        console.print("[yellow]warning:[/] submission.yaml's student_id is still the placeholder grader init "
                      "wrote: put your own student id (and name) there before you hand it in", highlight=False)
    console.print(_plain(f"report: {out / result.student_id / 'report.pdf'}"), highlight=False)
    if result.status == "failed":
        raise typer.Exit(code=1)


class StageProgress:
    """A Rich progress bar over one submission's stages, and a line for each stage as it ends."""

    def __init__(self, stages: int) -> None:
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description:<14}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total} stages"), TimeElapsedColumn(),
                                 console=console, transient=True)
        self.task = self.progress.add_task("starting", total=stages)

    def __enter__(self) -> StageProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def started(self, stage: str) -> None:
        self.progress.update(self.task, description=stage)

    def finished(self, stage: str, seconds: float, ok: bool) -> None:
        mark = "[green]done[/]" if ok else "[red]failed[/]"
        self.progress.console.print(f"{mark:<20} {stage:<14} {seconds:6.1f} s", highlight=False)
        self.progress.advance(self.task)


def _shortfalls(result: Result) -> list[str]:
    """One line per automatic criterion below full points: what was measured, what full points need.
    None for a submission that failed: only what to fix matters then, not tasks that never ran."""
    if result.status != "graded":
        return []
    lines = []
    for question in result.questions:
        for criterion in question.criteria:
            if criterion.manual or criterion.score is None or criterion.score >= criterion.max_score:
                continue
            measured = f"measured {_measured_text(criterion)}" if criterion.value is not None else criterion.message
            borderline = (" (borderline: the 95% interval reaches a better band, but points need the whole interval "
                          "inside it)") if criterion.borderline else ""
            lines.append(f"{criterion.id} ({criterion.description or criterion.id}): {measured}; "
                         f"points for {criterion.threshold}{borderline}")
    return lines


CLAIM_COLOURS = {"supported": "green", "contradicted": "red", "unchecked": "dim"}


def _print_claims(result: Result, language: Language) -> None:
    """What each answer claims and whether the student's own measurements support it, so a student
    sees before handing in that the answer says "eyes" where the maps show the mouth."""
    from grader.report.claim_text import claim_line

    for claim in result.claims:
        line = claim_line(claim, language)
        console.print(f"[{CLAIM_COLOURS[line.css]}]{terminal_text(line.verdict)}[/] {terminal_text(claim.question)} "
                      f"\"{terminal_text(line.quote, 200)}\": {terminal_text(line.claim)}: {terminal_text(line.evidence)}",
                      highlight=False)


def _measured_text(criterion: CriterionResult) -> str:
    """The value, with its 95% bootstrap interval when it has one."""
    if criterion.interval is None:
        return f"{criterion.value:.3f}"
    low, high = criterion.interval
    return f"{criterion.value:.3f} ({low:.3f}-{high:.3f})"


def _score_table(result: Result) -> Table:
    table = Table(title=f"{terminal_text(result.student_id)} {terminal_text(result.name)}: {result.status}, "
                        f"{result.score:g}/{result.max_score:g}")
    for column in ("criterion", "measured", "points", "max"):
        table.add_column(column)
    for question in result.questions:
        for criterion in question.criteria:
            points = "TA" if criterion.score is None else f"{criterion.score:g}"
            points += " borderline" if criterion.borderline else ""
            value = "" if criterion.value is None else _measured_text(criterion)
            table.add_row(f"{question.id} {criterion.description or criterion.id}", value, points,
                          f"{criterion.max_score:g}")
    return table


@app.command()
def kit(
    data: Annotated[Optional[Path], typer.Option("--data", help="the public labeled split students may see (course "
                                                                "CSV, image folder or fer2013.csv)")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="the kit to write: a folder, or a .zip")] = None,
    usage: UsageOption = "PublicTest", rubric: RubricOption = None, lang: LanguageOption = "en",
    profile: ProfileOption = "cpu", quick: QuickOption = False, smoothgrad: SmoothGradOption = False,
    github_workflow: Annotated[Optional[Path], typer.Option(
        "--github-workflow", help="also write the GitHub Actions workflow for student repositories here (e.g. "
                                  ".github/workflows/xai-grader.yml): grader check . --kit on every push, the PDF "
                                  "as an artifact")] = None,
    wheel_url: Annotated[Optional[str], typer.Option(
        "--wheel-url", help="the xai-grader wheel the workflow installs: a URL, or a path in the student "
                            "repository")] = None,
    workflow_kit: Annotated[Optional[str], typer.Option(
        "--workflow-kit", help="where the workflow gets the kit: a URL, or a path in the student repository "
                               "(default: the --out kit's file name, at the repository's root)")] = None,
) -> None:
    """Write the course kit: the rubric, the public labeled split, the task settings and the tool
    version in one folder or zip, for `grader check --kit` and `grader grade --kit`; and/or the
    GitHub Classroom workflow that runs that check on every push."""
    from grader.pipeline.kit import KitError, write_kit

    if (data is None) != (out is None) or (data is None and github_workflow is None):
        raise _fail("give --data and --out to write a kit, and/or --github-workflow PATH to write the workflow")
    if data is not None and out is not None:
        setup = _setup(data, usage, rubric, Path(tempfile.gettempdir()), lang, profile, "inprocess", quick,
                       smoothgrad)
        try:
            written = write_kit(out, data=data, rubric=rubric or default_rubric_path(), usage=usage,
                                rows=len(setup.evaluation.labels), tasks=setup.tasks, language=lang, profile=profile)
        except (KitError, OSError) as error:
            raise _fail(str(error)) from None
        console.print(_plain(f"kit: {written} ({len(setup.evaluation.labels)} labeled faces from {data}, "
                             f"rubric {rubric or 'the course default'}, language {lang}, profile {profile})\n"
                             f"students: grader check SUBMISSION --kit {written.name}\n"
                             f"TA:       grader grade SUBMISSIONS --kit {written.name} --data PRIVATE.csv"),
                      highlight=False)
    if github_workflow is not None:
        _write_workflow(github_workflow, kit=workflow_kit or (out.name if out is not None else "course-kit.zip"),
                        wheel=wheel_url)


def _write_workflow(path: Path, kit: str, wheel: str | None) -> None:
    from grader.pipeline.classroom import write_github_workflow
    from grader.pipeline.kit import KitError

    try:
        written = write_github_workflow(path, kit=kit, wheel=wheel)
    except (KitError, OSError) as error:
        raise _fail(str(error)) from None
    console.print(_plain(f"workflow: {written} (kit {kit}, wheel {wheel or 'not set'}): commit it to the template "
                         "repository under .github/workflows/"), highlight=False)
    if wheel is None:
        console.print(f"[yellow]warning:[/] {_plain(f'no --wheel-url: set XAI_GRADER_WHEEL in {written} to the')} "
                      "course's xai-grader wheel (a URL, or a path in the repository); until then the workflow "
                      "stops with that message", highlight=False)


@app.command()
def review(
    out: Annotated[Path, typer.Argument(help="a graded output folder (grader grade --out)")],
    rubric: RubricOption = None,
    db: Annotated[Optional[str], typer.Option("--db", help="the database: a file, or a SQLAlchemy URL such as "
                                                           "postgresql://... (default OUT/review.sqlite)")] = None,
    host: Annotated[str, typer.Option("--host", help="listen address; any but 127.0.0.1 needs the printed token")] =
    "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    grader: Annotated[str, typer.Option("--grader", help="your name, stored with every score you save")] = "",
    export: Annotated[Optional[Path], typer.Option("--export", help="write the TA scores as a --manual "
                                                                   "scores.csv and exit")] = None,
) -> None:
    """Grade the written answers question by question in the browser, beside the measured evidence."""
    from grader.review.serve import open_workspace, serve
    from grader.scoring.rubric import load_rubric

    if not (out.is_dir() and any(out.glob("*/result.json"))):
        raise _fail(f"{out} holds no graded results (*/result.json): run grader grade --out {out} first")
    try:
        rubric_model = load_rubric(rubric or default_rubric_path())
    except ConfigError as error:
        raise _fail(f"the rubric cannot be used:\n{error}") from None
    workspace = open_workspace(out, rubric_model, db)
    if export is not None:
        rows = workspace.store.export_manual_csv(export)
        console.print(_plain(f"{rows} score(s) written to {export}; merge them with grader grade --manual {export}"),
                      highlight=False)
        return
    carried = workspace.imported.carried
    console.print(_plain(f"{workspace.imported.students} students, {len(rubric_model.questions)} questions"
                         + (f"; {carried} TA score(s) carried over from the results (grade --manual)" if carried
                            else "")), highlight=False)
    serve(out, rubric_model, workspace, host, port, grader,
          on_ready=lambda address: console.print(_plain(f"review at {address} (Ctrl+C to stop)"), highlight=False))


@data_app.command("synth")
def synth(
    out: Annotated[Path, typer.Option("--out", help="folder to write train.csv, eval.csv, test.csv and masks into")],
    seed: Annotated[int, typer.Option(help="generator seed; the same seed gives the same bytes")] = 2013,
    train_size: Annotated[int, typer.Option(help="training faces")] = 12000,
    eval_size: Annotated[int, typer.Option(help="evaluation faces")] = 3589,
    shortcut: Annotated[Optional[float], typer.Option(
        help="plant a shortcut cue (a square in each top corner whose gray level encodes the label) on this share "
             "of the training faces, 0..1; the evaluation faces stay clean")] = None,
) -> None:
    """Write the synthetic FER data in the course's CSV layout, with part masks."""
    from grader.data.synth import ShortcutCue, write_synthetic

    try:
        cue = None if shortcut is None else ShortcutCue(rate=shortcut)
    except ValueError as error:
        raise _fail(str(error)) from None
    for path in write_synthetic(out, seed=seed, train_size=train_size, eval_size=eval_size, shortcut=cue).values():
        console.print(f"wrote {path}", highlight=False)


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="the submission folder (default: this one)")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="replace an existing submission.yaml")] = False,
) -> None:
    """Write submission.yaml by inspecting the folder (in the sandbox): the weights file and its format, the
    model.py entry whose state_dict fits them, the input size and channels the model accepts. Exit 1 when
    nothing was written."""
    import os

    from grader.atomic import atomic_write_text
    from grader.escape import clean_text
    from grader.profile import get_profile
    from grader.sandbox.init_folder import plan_init
    from grader.submission.errors import SubmissionError
    from grader.submission.spec import SPEC_FILE

    quiet_libraries()
    if not folder.is_dir():
        raise _fail(f"{folder} is not a folder")
    try:
        findings = plan_init(folder, get_profile("cpu"), _isolation(False, strict=False))  # type: ignore[arg-type]
    except SubmissionError as error:
        console.print(f"[red]fix ({terminal_text(error.stage)}):[/] {terminal_text(error.message)}", highlight=False)
        raise typer.Exit(code=1) from None
    plan = findings.plan
    for line in plan.found:
        console.print(f"[green]found:[/] {terminal_text(line)}", highlight=False)
    for line in plan.undecided:
        console.print(f"[yellow]not decided:[/] {terminal_text(line)}", highlight=False)
    if plan.spec_text is None:
        console.print(f"[red]no {SPEC_FILE} written:[/] no usable weights file (see above)", highlight=False)
        raise typer.Exit(code=1)
    target = folder / SPEC_FILE
    yaml_lines = clean_text(plan.spec_text.rstrip("\n"))  # printed as it is: no markup, no emoji codes
    if (findings.has_spec or os.path.lexists(target)) and not force:
        console.print(_plain(f"{target} exists and is left as it is (--force replaces it); grader init would "
                             "write:"), highlight=False)
        console.print(yaml_lines, highlight=False, markup=False, emoji=False)
        raise typer.Exit(code=1)
    atomic_write_text(target, plan.spec_text)
    console.print(_plain(f"wrote {target}:"), highlight=False)
    console.print(yaml_lines, highlight=False, markup=False, emoji=False)


@app.command()
def collect(
    download: Annotated[Path, typer.Argument(help="the LMS's bulk download: Canvas's 'Download Submissions' zip or "
                                                  "Moodle's 'Download all submissions' zip")],
    roster: Annotated[Path, typer.Option("--roster", help="roster.csv (student_id, name, folder/lms_id = the Canvas "
                                                          "user id or Moodle participant id) or a Canvas gradebook "
                                                          "export")],
    out: Annotated[Path, typer.Option("--out", help="a new or empty folder: one submission folder per student id")],
) -> None:
    """Turn an LMS's bulk download into one submission folder per student (named by student id), with
    the students' own zips unpacked; lists late and missing students and the files not placed. Exit 2
    when nothing could be collected."""
    from grader.outfolder import OutputFolderError
    from grader.pipeline.collect import REPORT_NAME, CollectError
    from grader.pipeline.collect import collect as collect_download
    from grader.pipeline.lms_names import read_collect_roster

    try:
        students, kind = read_collect_roster(roster)
        report = collect_download(download, students, out, roster_kind=kind)
    except (ConfigError, CollectError, OutputFolderError) as error:
        raise _fail(str(error)) from None
    formats = ", ".join(f"{count} {lms.capitalize()} files" for lms, count in sorted(report.formats.items()))
    console.print(_plain(f"collected {len(report.collected)} of {len(students)} students ({kind} roster; "
                         f"{formats or 'no LMS files'}) into {report.out}"), highlight=False)
    for item in report.collected:
        if item.by_name:
            console.print(f"[yellow]placed by name:[/] {terminal_text(item.student.student_id)} "
                          f"({terminal_text(item.student.name)}): LMS id {terminal_text(' '.join(item.lms_ids))} "
                          "is in no roster row", highlight=False)
    if report.late:
        console.print(f"[yellow]late ({len(report.late)}):[/] " + ", ".join(
            f"{terminal_text(item.student.student_id)} ({terminal_text(item.student.name)})" for item in report.late),
            highlight=False)
    if report.missing:
        console.print(f"[yellow]missing ({len(report.missing)}):[/] " + ", ".join(
            f"{terminal_text(entry.student_id)} ({terminal_text(entry.name)})" for entry in report.missing),
            highlight=False)
    for unplaced in report.unplaced:
        console.print(f"[red]not placed:[/] {terminal_text(unplaced.entry, 300)}: {terminal_text(unplaced.reason)}",
                      highlight=False)
    console.print(_plain(f"wrote {report.out / REPORT_NAME}"), highlight=False)


# --- course platforms (issue 18): the logic is in grader/platforms/ -----------------------------


@app.command()
def gradescope(
    kit: Annotated[Path, typer.Option("--kit", help="the course kit (grader kit) to grade with")],
    out: Annotated[Path, typer.Option("--out", help="the zip to write")] = Path("autograder.zip"),
    wheel: Annotated[Optional[Path], typer.Option("--wheel", help="the xai-grader wheel to install in Gradescope's "
                                                                  "image (default: built from this source tree)")] = None,
    visibility: Annotated[str, typer.Option("--visibility", help="when students see the tests: visible, "
                                                                "after_due_date, after_published or hidden")] = "visible",
) -> None:
    """Build Gradescope's autograder zip: setup.sh, run_autograder, the kit and the xai-grader wheel."""
    from grader.platforms.gradescope import AutograderBuildError, build_autograder

    try:
        built = build_autograder(kit, out, wheel=wheel, visibility=visibility)
    except AutograderBuildError as error:
        raise _fail(str(error)) from None
    manual = "; ".join(f"{name} ({points:g})" for name, points in built.manual) or "none"
    console.print(_plain(f"autograder: {built.path}\nGradescope: a Programming Assignment, autograder points "
                         f"{built.automatic_points:g}; upload this zip under Configure Autograder.\nManual "
                         f"questions to add for the TA: {manual}"), highlight=False)


@app.command()
def autograder(
    platform: Annotated[str, typer.Argument(help="gradescope or prairielearn")],
    root: Annotated[Optional[Path], typer.Option("--root", help="the platform's folder (default /autograder "
                                                                "or /grade)")] = None,
    kit: Annotated[Optional[Path], typer.Option("--kit", help="the course kit (default: the one in ROOT)")] = None,
    visibility: Annotated[str, typer.Option("--visibility", help="Gradescope's test visibility")] = "visible",
    keep: Annotated[Optional[Path], typer.Option("--keep", help="keep the grading output (result.json, "
                                                                "figures) in this folder")] = None,
) -> None:
    """Inside a platform's container: grade its one submission with the kit and write the platform's
    results.json (always, even when grading fails)."""
    from grader.platforms.gradescope import VISIBILITIES
    from grader.platforms.run import run

    if platform not in ("gradescope", "prairielearn"):
        raise _fail(f"the platform is gradescope or prairielearn, not '{platform}'")
    if visibility not in VISIBILITIES:
        raise _fail(f"--visibility must be one of {', '.join(VISIBILITIES)}")
    root = root if root is not None else Path("/autograder" if platform == "gradescope" else "/grade")
    outcome = run(platform, root, kit=kit, visibility=visibility, keep=keep)  # type: ignore[arg-type]
    status = outcome.result.status if outcome.result is not None else f"not graded ({outcome.failure})"
    console.print(_plain(f"{platform}: {status}; {outcome.seconds:.0f} s"), highlight=False)


if __name__ == "__main__":
    app()
