"""Grading a whole class: resume from finished results, settled duplicate ids, SIGKILL in the
middle of a batch, and the same results on a Dask scheduler with two worker processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from grader.data.readers import read_faces
from grader.pipeline.class_plan import plan_class
from grader.pipeline.class_run import grade_class
from grader.pipeline.dask_runner import DaskRunner
from grader.pipeline.runners import Runner
from grader.pipeline.setup import GradingSetup, load_setup
from grader.profile import get_profile
from grader.questions.settings import TaskSettings
from grader.result import Result
from tests.conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.slow
GRADER = [sys.executable, "-m", "grader.cli"]


@pytest.fixture
def class_folder(tmp_path) -> Path:
    """Two copies of the small example under two ids, and one broken submission."""
    return make_class(tmp_path / "class")


def make_class(root: Path) -> Path:
    for index in range(2):
        target = root / f"student{index}"
        shutil.copytree(EXAMPLES / "small_cnn", target, ignore=shutil.ignore_patterns("__pycache__"))
        spec = target / "submission.yaml"
        spec.write_text(spec.read_text().replace("b09902022", f"b0000000{index}"))
    shutil.copytree(EXAMPLES / "broken_six_classes", root / "zz_broken", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def setup_for(out: Path, small_eval_csv: Path, **changes) -> GradingSetup:
    setup = load_setup(read_faces(small_eval_csv), ROOT / "rubric.yaml", out, isolation="inprocess",
                       tasks=TaskSettings.quick())
    return replace(setup, **changes)


def graded_ids(**kwargs) -> tuple[list, list]:
    log = []
    results = grade_class(on_result=lambda folder, result, reused: log.append((folder.name, reused)), **kwargs)
    return results, log


@pytest.fixture
def finished_copy(finished_run, tmp_path) -> tuple[Path, Path]:
    """A copy of the class and of its finished run's output folder, to rerun and change: results are
    keyed by content and settings, not by where the folders are."""
    shutil.copytree(finished_run / "class", tmp_path / "class")
    shutil.copytree(finished_run / "out", tmp_path / "out")
    return tmp_path / "class", tmp_path / "out"


def stored_results(out: Path) -> dict[str, dict]:
    return {path.parent.name: Result.read(path).model_dump() for path in sorted(out.glob("*/result.json"))}


def test_a_rerun_reuses_every_finished_result(finished_copy, small_eval_csv):
    class_folder, out = finished_copy
    before = stored_results(out)
    stamp = (out / "b00000001" / "result.json").stat().st_mtime_ns

    again, log = graded_ids(root=class_folder, setup=setup_for(out, small_eval_csv))
    assert all(reused for _, reused in log) and len(log) == 3
    assert {r.student_id: r.model_dump() for r in again} == before
    assert (out / "b00000001" / "result.json").stat().st_mtime_ns == stamp


def test_a_changed_submission_or_force_regrades_only_what_it_must(finished_copy, small_eval_csv):
    class_folder, out = finished_copy
    setup = setup_for(out, small_eval_csv)
    (class_folder / "student1" / "report.md").write_text("## 1\nnew answer\n", encoding="utf-8")

    _, log = graded_ids(root=class_folder, setup=setup)
    assert dict(log) == {"student0": True, "student1": False, "zz_broken": True}
    _, log = graded_ids(root=class_folder, setup=setup, force=True)
    assert not any(reused for _, reused in log)


def test_a_rerun_with_one_submission_left_grades_it_without_starting_a_cluster(finished_copy, small_eval_csv,
                                                                              monkeypatch):
    import dask.distributed

    def no_cluster(*args, **kwargs):
        raise AssertionError("a local Dask cluster was started for one submission")

    monkeypatch.setattr(dask.distributed, "LocalCluster", no_cluster)
    class_folder, out = finished_copy
    (class_folder / "student1" / "report.md").write_text("## 1\nnew answer\n", encoding="utf-8")
    results, log = graded_ids(root=class_folder, setup=setup_for(out, small_eval_csv), runner=DaskRunner(workers=2))
    assert dict(log) == {"student0": True, "student1": False, "zz_broken": True}
    assert {r.student_id: r.status for r in results}["b00000001"] == "graded"


def test_new_ta_scores_are_applied_to_reused_results_without_grading_again(finished_copy, small_eval_csv):
    from grader.scoring.manual import ManualScore, ManualScores

    class_folder, out = finished_copy
    first = stored_results(out)
    given = ManualScores({"b00000001": {"q1_answer": ManualScore("b00000001", "q1_answer", 0.5, "reads the maps", 2)}})
    again, log = graded_ids(root=class_folder, setup=setup_for(out, small_eval_csv, manual=given))
    assert all(reused for _, reused in log)
    scored = {r.student_id: r for r in again}["b00000001"]
    assert scored.question("q1").criteria[-1].score == 0.5
    assert scored.score == pytest.approx(first["b00000001"]["score"] + 0.5)
    stored = json.loads((out / "b00000001" / "result.json").read_text())
    assert stored["questions"][0]["criteria"][-1]["comment"] == "reads the maps"


def test_the_review_workspaces_scores_reach_the_results_without_grading_again(finished_copy, small_eval_csv):
    from typer.testing import CliRunner

    from grader.cli import app
    from grader.review.serve import open_workspace
    from grader.scoring.rubric import load_rubric

    class_folder, out = finished_copy
    command = ["grade", str(class_folder), "--out", str(out), "--data", str(small_eval_csv), "--quick",
               "--no-sandbox", "--workers", "1"]
    workspace = open_workspace(out, load_rubric(ROOT / "rubric.yaml"))
    workspace.store.save_score("b00000000", "q1_answer", grader="Ann", score=0.75, comment="clear",
                               expected_version=0)
    request = workspace.store.request_regrade("b00000000", "q1_sanity", "my maps do change")
    workspace.store.resolve_regrade(request.id, resolved_by="Ann", comment="they do: see the figure")
    stamp = (out / "b00000001" / "result.json").stat().st_mtime_ns
    outcome = CliRunner().invoke(app, [*command, "--review", str(out / "review.sqlite")])
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.count("not run again") == 3  # all reused: no model ran
    scored = json.loads((out / "b00000000" / "result.json").read_text())
    assert scored["questions"][0]["criteria"][-1]["score"] == 0.75
    sanity = next(c for c in scored["questions"][0]["criteria"] if c["id"] == "q1_sanity")
    assert sanity["regrades"] == [{"request": "my maps do change", "status": "resolved",
                                   "resolution": "they do: see the figure", "resolved_by": "Ann"}]
    text = subprocess.run(["pdftotext", str(out / "b00000000" / "report.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    text = " ".join(text.split())  # the criterion's cell wraps its lines wherever its width says
    assert "my maps do change" in text and "Ann: they do: see the figure" in text
    assert (out / "b00000001" / "result.json").stat().st_mtime_ns == stamp  # no score changed: not rewritten


def test_other_settings_are_a_different_key(class_folder, tmp_path, small_eval_csv):
    quick = plan_class(class_folder, setup_for(tmp_path / "out", small_eval_csv))
    full = plan_class(class_folder, setup_for(tmp_path / "out", small_eval_csv, tasks=TaskSettings()))
    chinese = plan_class(class_folder, setup_for(tmp_path / "out", small_eval_csv, language="zh-TW"))
    gpu = plan_class(class_folder, setup_for(tmp_path / "out", small_eval_csv, profile=get_profile("gpu")))
    keys = [{p.cache_key for p in plan.submissions} for plan in (quick, full, chinese, gpu)]
    assert all(not (keys[0] & other) for other in keys[1:])


class Reversed(Runner):
    """Grades the last folder first, as a parallel run may."""

    def run(self, pending, setup, on_result):
        super().run(list(reversed(pending)), setup, on_result)


def claim(class_folder: Path, folder: str, student_id: str) -> None:
    spec = class_folder / folder / "submission.yaml"
    spec.write_text("\n".join(f"student_id: {student_id}" if line.startswith("student_id:") else line
                              for line in spec.read_text().splitlines()) + "\n")


def test_two_folders_claiming_one_id_are_both_held_whatever_order_they_sort_in(class_folder, tmp_path,
                                                                              small_eval_csv):
    # An impostor whose folder sorts first must not take the victim's row.
    shutil.copytree(class_folder / "student1", class_folder / "aaa_impostor")
    claim(class_folder, "aaa_impostor", "b00000001")
    results = grade_class(class_folder, setup_for(tmp_path / "out", small_eval_csv), runner=Reversed())
    by_folder = {r.folder: r for r in results}
    for folder, other in (("aaa_impostor", "student1"), ("student1", "aaa_impostor")):
        assert by_folder[folder].status == "conflict" and by_folder[folder].student_id == "b00000001"
        assert f"also claimed by the submission folder '{other}'" in by_folder[folder].errors[0].message
    assert by_folder["student0"].status == "graded"
    assert not (tmp_path / "out" / "b00000001").exists()  # neither is graded under the id
    gradebook = (tmp_path / "out" / "gradebook.csv").read_text()
    assert gradebook.count("conflict") == 2


def test_ids_equal_but_for_case_are_a_conflict(class_folder, tmp_path, small_eval_csv):
    claim(class_folder, "student1", "B00000000")
    plan = plan_class(class_folder, setup_for(tmp_path / "out", small_eval_csv))
    held = {p.folder.name for p in plan.submissions if p.conflict}
    assert held == {"student0", "student1"}


def test_folders_whose_names_clean_alike_get_their_own_output_folders(class_folder, tmp_path, small_eval_csv):
    for name in ("john.doe", "john_doe"):
        (class_folder / name).mkdir()  # no submission.yaml: planned under the folder's own name
    plan = plan_class(class_folder, setup_for(tmp_path / "out", small_eval_csv))
    ids = {p.folder.name: p.student_id for p in plan.submissions}
    assert ids["john_doe"] == "john_doe" and ids["john.doe"].startswith("john_doe-")
    assert not any(p.conflict for p in plan.submissions)


def test_a_folder_named_like_a_students_id_without_a_submission_yaml_does_not_block_them(class_folder, tmp_path,
                                                                                          small_eval_csv):
    (class_folder / "b00000001").mkdir()  # no submission.yaml: it claims nothing
    plan = plan_class(class_folder, setup_for(tmp_path / "out", small_eval_csv))
    by_folder = {p.folder.name: p for p in plan.submissions}
    assert by_folder["student1"].conflict is None and by_folder["student1"].student_id == "b00000001"
    assert by_folder["b00000001"].conflict is None and by_folder["b00000001"].student_id.startswith("b00000001-")


def write_roster(path: Path, rows: list[str]) -> Path:
    path.write_text("student_id,name,folder\n" + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def test_a_roster_settles_a_conflict_and_holds_the_folder_that_names_someone_else(class_folder, tmp_path,
                                                                                 small_eval_csv):
    from grader.roster import load_roster

    shutil.copytree(class_folder / "student1", class_folder / "aaa_impostor")
    claim(class_folder, "aaa_impostor", "b00000001")
    roster = load_roster(write_roster(tmp_path / "roster.csv", [
        "b00000000,Ann,student0", "b00000001,Ben Lee,student1", "b00000009,Imp,aaa_impostor"]))
    plan = plan_class(class_folder, setup_for(tmp_path / "out", small_eval_csv, roster=roster))
    by_folder = {p.folder.name: p for p in plan.submissions}
    assert by_folder["student1"].conflict is None and by_folder["student1"].identity.name == "Ben Lee"
    assert by_folder["aaa_impostor"].conflict.startswith(
        "submission.yaml says student_id b00000001, but the roster (line 4) gives the folder 'aaa_impostor' to "
        "b00000009")


def test_a_folder_the_roster_does_not_list_cannot_claim_an_id_it_gives_to_another_folder(class_folder, tmp_path,
                                                                                        small_eval_csv):
    from grader.roster import load_roster

    roster = load_roster(write_roster(tmp_path / "roster.csv", ["b00000001,Ben,elsewhere"]))
    plan = plan_class(class_folder, setup_for(tmp_path / "out", small_eval_csv, roster=roster))
    by_folder = {p.folder.name: p for p in plan.submissions}
    assert "which the roster (line 2) gives to the folder 'elsewhere'" in by_folder["student1"].conflict
    assert by_folder["student0"].conflict is None


def run_grader(*args, **popen) -> subprocess.Popen:
    return subprocess.Popen([*GRADER, "grade", *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


def grade_cli(class_folder: Path, out: Path, data: Path, *extra: str) -> str:
    """`grader grade` sandboxed, as a TA runs it (as root, a worker's servers fork from one zygote: a
    plain-subprocess run starts a fresh Python importing torch and Lightning for every submission)."""
    process = run_grader(class_folder, "--out", out, "--data", data, "--quick", *extra)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    return output


@pytest.fixture(scope="module")
def finished_run(require_bwrap, tmp_path_factory, small_eval_csv) -> Path:
    """The class (`class`) graded in one process (`out`), once for the module: what a killed-and-resumed
    run and a run on a Dask cluster must both reproduce, and what reruns start from (`finished_copy`)."""
    root = tmp_path_factory.mktemp("reference")
    grade_cli(make_class(root / "class"), root / "out", small_eval_csv, "--workers", "1")
    return root


@pytest.fixture(scope="module")
def one_worker_run(finished_run) -> Path:
    return finished_run / "out"


def test_a_batch_killed_by_sigkill_resumes_to_the_same_gradebook(class_folder, tmp_path, small_eval_csv,
                                                                 one_worker_run):

    killed = tmp_path / "killed"
    process = run_grader(class_folder, "--out", killed, "--data", small_eval_csv, "--quick",
                         "--workers", "1", start_new_session=True)
    deadline = time.monotonic() + 300
    while not (killed / "b00000000" / "result.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # the grader, its sandbox, everything it started
    process.wait()
    assert not (killed / "gradebook.csv").exists()  # it really died in the middle

    output = grade_cli(class_folder, killed, small_eval_csv, "--workers", "1")
    assert "(submission unchanged: not run again)" in output
    assert (killed / "gradebook.csv").read_bytes() == (one_worker_run / "gradebook.csv").read_bytes()
    assert sorted(p.name for p in killed.iterdir() if p.is_dir()) == \
        sorted(p.name for p in one_worker_run.iterdir() if p.is_dir())


def comparable(out: Path) -> dict[str, dict]:
    """Every result.json of a run, without the wall-clock timings (the one field runs differ in)."""
    results = {}
    for path in sorted(out.glob("*/result.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        result.pop("timings")
        results[path.parent.name] = result
    return results


def test_a_scheduler_with_two_worker_processes_gives_the_same_results(class_folder, tmp_path, small_eval_csv,
                                                                      one_worker_run):
    dask = Path(sys.executable).with_name("dask")
    scheduler_file = tmp_path / "scheduler.json"
    started = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                 "--scheduler-file", scheduler_file], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        for _ in range(2):
            started.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard"],
                                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            start_new_session=True))
        output = grade_cli(class_folder, tmp_path / "cluster", small_eval_csv, "--scheduler", address)
    finally:
        for process in started:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert f"Dask scheduler {address}" in output
    assert comparable(tmp_path / "cluster") == comparable(one_worker_run)
    assert len(comparable(one_worker_run)) == 3


def test_copies_under_different_ids_are_flagged_in_similarity_csv_and_the_dashboard(one_worker_run):
    import pandas as pd

    pairs = pd.read_csv(one_worker_run / "similarity.csv", dtype=str)
    assert list(zip(pairs["student_a"], pairs["student_b"])) == [("b00000000", "b00000001")]
    assert all("weights" in signals and "source" in signals for signals in pairs["signals"])
    page = (one_worker_run / "index.html").read_text(encoding="utf-8")
    assert "Similar submissions" in page and "b00000001" in page.split('id="similar"')[1]


def test_an_unreachable_scheduler_is_a_clear_error_and_grades_nothing(class_folder, tmp_path, small_eval_csv,
                                                                    monkeypatch):
    from typer.testing import CliRunner

    from grader.pipeline import dask_runner
    from grader.cli import app

    monkeypatch.setattr(dask_runner, "CONNECT_TIMEOUT", "2s")
    outcome = CliRunner().invoke(app, ["grade", str(class_folder), "--out", str(tmp_path / "out"), "--data",
                                       str(small_eval_csv), "--quick", "--no-sandbox", "--scheduler",
                                       "tcp://127.0.0.1:9"])
    assert outcome.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in outcome.output
    assert not (tmp_path / "out" / "gradebook.csv").exists()
