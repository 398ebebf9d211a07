"""xai-grader installed from its wheel, used from a folder outside the repository as a student
would: build the wheel, install it into a new virtual environment, copy an example into a
temporary folder, and run `grader init` and `grader check` there.

The new environment gets the grader only from the wheel (its package data: the rubric and the
templates); its dependencies are this environment's, named by a .pth file, as for a user whose
packages live in another site-packages (installing torch and Lightning again would take minutes
here and needs the network). The sandbox must then reach those packages too
(grader.sandbox.isolation.outside_package_folders)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("require_bwrap")]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A new virtual environment with xai-grader installed from a wheel built from this tree."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(ROOT / "grader", source / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w",
         str(root / "dist"), str(source)])
    (wheel,) = (root / "dist").glob("xai_grader-*.whl")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)])
    site = Path(run([str(venv / "bin" / "python"), "-c",
                     "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def run(argv: list[str], cwd: Path | None = None) -> str:
    env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "VIRTUAL_ENV")}
    process = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, f"{argv}\n{process.stdout}\n{process.stderr}"
    return process.stdout


def test_the_installed_grader_comes_from_the_wheel_with_its_rubric(installed, tmp_path):
    where = run([str(installed / "bin" / "python"), "-c",
                 "import grader; from grader.scoring.rubric import default_rubric_path as d; "
                 "print(grader.__file__); print(d().is_file())"], cwd=tmp_path)

    module, rubric_found = where.split()
    assert Path(module).is_relative_to(installed) and rubric_found == "True"


def test_a_student_inits_and_checks_a_submission_from_their_own_folder(installed, tmp_path):
    student = tmp_path / "homework"
    shutil.copytree(EXAMPLES / "small_cnn", student, ignore=shutil.ignore_patterns("__pycache__"))
    (student / "submission.yaml").unlink()
    grader = str(installed / "bin" / "grader")

    init = run([grader, "init"], cwd=student)
    spec = (student / "submission.yaml").read_text(encoding="utf-8")
    check = run([grader, "check", ".", "--quick"], cwd=student)

    assert "entry: small_cnn" in spec and "weights: weights.pt" in spec and "wrote submission.yaml" in init
    assert "graded" in check.lower() or "report:" in check
    assert "synthetic faces" in check  # no --data or --kit: said plainly
    assert "student_id is still the placeholder" in check  # the student forgot to put their id in
    assert (student / "check-out" / "FILL_IN_YOUR_STUDENT_ID" / "report.pdf").stat().st_size > 10_000
