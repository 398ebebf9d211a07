"""The helper process of a batch (grader.helper_process): the grader's own work beside the model's
requests runs in another interpreter, with the same result; a process that died is replaced, and one
whose grading process was killed leaves."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import BrokenExecutor
from pathlib import Path

import numpy as np
import pytest

from grader.helper_process import HelperProcess
from grader.scoring.road import road_images

pytestmark = pytest.mark.slow  # each test starts an interpreter or two


def test_work_sent_to_the_helper_process_runs_there_and_gives_the_same_result():
    rng = np.random.default_rng(0)
    images, ranking = rng.uniform(0, 255, (7, 48, 48)).astype(np.float32), rng.random((7, 48, 48))
    helper = HelperProcess()
    try:
        assert helper.submit(os.getpid).result() != os.getpid()
        assert np.array_equal(helper.submit(road_images, images, ranking).result(), road_images(images, ranking))
    finally:
        helper.shutdown()


def test_a_helper_process_that_died_fails_its_work_and_is_replaced_at_the_next_submit():
    helper = HelperProcess()
    try:
        first = helper.submit(os.getpid).result()
        dying = helper.submit(os._exit, 9)
        with pytest.raises(BrokenExecutor):
            dying.result()
        second = helper.submit(os.getpid).result()
        assert second not in (first, os.getpid())
    finally:
        helper.shutdown()


KILLED_GRADER = """
import os, signal
from grader.helper_process import HelperProcess

if __name__ == "__main__":
    print(HelperProcess().submit(os.getpid).result(), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_helper_process_leaves_when_its_grading_process_is_killed(tmp_path):
    script = tmp_path / "killed_grader.py"
    script.write_text(KILLED_GRADER)
    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    helper = int(ran.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _alive(helper) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(helper)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
