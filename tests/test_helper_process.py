"""The helper process of a batch (grader.helper_process): the grader's own work beside the model's
requests runs in another interpreter, with the same result, and a process that died is replaced."""

from __future__ import annotations

import os
from concurrent.futures import BrokenExecutor

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
