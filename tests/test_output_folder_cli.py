"""The output folder through the commands a TA and a student type (issue 13, class 5): an --out that
would destroy the submissions is refused, a second run into a busy --out is refused naming the first,
a full disk is one clear message with earlier results untouched, and `grader check .` run from the
student's own folder leaves its output out of what it grades."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grader.cli import app
from tests.conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.slow
runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def one_student(tmp_path) -> Path:
    root = tmp_path / "submissions"
    shutil.copytree(EXAMPLES / "small_cnn", root / "small_cnn", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize("where", ["same", "inside"])
def test_an_out_that_is_or_lies_inside_the_submissions_is_refused_and_nothing_changes(one_student, where,
                                                                                       small_eval_csv):
    out = one_student if where == "same" else one_student / "out"
    before = tree_digest(one_student)
    outcome = invoke("grade", one_student, "--out", out, "--data", small_eval_csv, "--quick", "--no-sandbox")
    assert outcome.exit_code == 2
    assert "submissions folder" in outcome.output and "--out" in outcome.output
    assert tree_digest(one_student) == before


def test_a_second_run_into_a_busy_out_is_refused_naming_the_first(one_student, tmp_path, small_eval_csv):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from grader.outfolder import OutputLock\n"
        f"with OutputLock(Path({str(out)!r})):\n    print('locked', flush=True); time.sleep(120)")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        outcome = invoke("grade", one_student, "--out", out, "--data", small_eval_csv, "--quick", "--no-sandbox")
    finally:
        holder.kill()
        holder.wait()
    assert outcome.exit_code == 2
    assert f"pid {holder.pid}" in outcome.output
    assert not (out / "gradebook.csv").exists()


def test_a_full_disk_is_one_message_and_the_earlier_results_stay(one_student, tmp_path, small_eval_csv,
                                                                 monkeypatch):
    from grader import atomic

    out = tmp_path / "out"
    first = invoke("grade", one_student, "--out", out, "--data", small_eval_csv, "--quick", "--no-sandbox",
                   "--workers", "1")
    assert first.exit_code == 0, first.output
    before = tree_digest(out)

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic, "_write_all", full)
    again = invoke("grade", one_student, "--out", out, "--data", small_eval_csv, "--quick", "--no-sandbox",
                   "--workers", "1", "--force")
    assert again.exit_code == 2
    assert "the disk is full" in again.output and "Traceback" not in again.output
    assert tree_digest(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".staging-")]


def test_output_files_are_readable_by_everyone(one_student, tmp_path, small_eval_csv):
    out = tmp_path / "out"
    old = os.umask(0o077)
    try:
        outcome = invoke("grade", one_student, "--out", out, "--data", small_eval_csv, "--quick", "--no-sandbox",
                         "--workers", "1")
    finally:
        os.umask(old)
    assert outcome.exit_code == 0, outcome.output
    for path in out.rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path


def test_check_from_the_students_own_folder_leaves_its_output_out_of_what_it_grades(tmp_path, small_eval_csv,
                                                                                    monkeypatch):
    folder = tmp_path / "my_submission"
    shutil.copytree(EXAMPLES / "small_cnn", folder, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(folder)
    hashes = []
    for _ in range(2):
        outcome = invoke("check", ".", "--data", small_eval_csv, "--rubric", ROOT / "rubric.yaml", "--quick")
        assert outcome.exit_code == 0, outcome.output
        result = json.loads((folder / "check-out" / "b09902022" / "result.json").read_text())
        hashes.append(result["submission_sha256"])
        time.sleep(0.01)
    assert hashes[0] == hashes[1]  # check-out/ (written by the first run) is not part of the submission
    assert (folder / "check-out" / "b09902022" / "report.pdf").is_file()
