"""What a grading process imports (issue 20): when its models run in sandbox servers, the process that
grades (the CLI's, a Dask worker) never imports torch or Lightning, which cost each such process about
6 s of a core; the servers import them before their limits count."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("require_bwrap")]

GRADE_AND_LIST = """
import sys
from pathlib import Path
from grader.cli import app
try:
    app(["grade", sys.argv[1], "--out", sys.argv[2], "--data", sys.argv[3], "--quick", "--workers", "1"])
except SystemExit as done:
    assert done.code == 0, done.code
heavy = ("torch", "pytorch_lightning", "lightning", "lightning_fabric")
print("loaded:", *sorted(name for name in sys.modules if name.split(".")[0] in heavy))
"""


def test_a_grading_process_whose_models_run_in_sandbox_servers_imports_no_torch_or_lightning(tmp_path, small_eval_csv):
    submissions = tmp_path / "submissions"
    shutil.copytree(EXAMPLES / "small_cnn", submissions / "small_cnn", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-c", GRADE_AND_LIST, str(submissions), str(tmp_path / "out"),
                           str(small_eval_csv)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "graded  small_cnn" in done.stdout
    assert done.stdout.splitlines()[-1] == "loaded:"  # neither, yet the model ran
    assert (tmp_path / "out" / "b09902022" / "report.pdf").is_file()
