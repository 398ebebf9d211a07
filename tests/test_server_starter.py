"""Sandbox servers started ahead of need (grader.sandbox.starter): a server waits with torch imported
and nothing of a student in it, takes its submission when handed one, and the time it waited is not
its submission's. A batch graded with servers started ahead, each report written while the next
submission's model works (grader.pipeline.runners.Runner), gives what grading each alone gives."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from grader.pipeline.class_run import grade_class
from grader.pipeline.runners import Runner
from grader.pipeline.student_folder import grade_submission
from grader.sandbox import client
from grader.sandbox.client import SandboxedModel, SandboxServer
from grader.sandbox.starter import ServerStarter
from grader.submission.errors import SubmissionError
from tests.test_sandbox import PROFILE, sandboxed_setup, submission

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("require_bwrap")]

FACES = np.zeros((2, 48, 48), np.float32)
SHORT = PROFILE.model_copy(update={"limits": PROFILE.limits.model_copy(update={"wall_seconds_per_submission": 4})})
ONE_SECOND_LOAD = PROFILE.model_copy(update={"limits": PROFILE.limits.model_copy(update={"wall_seconds_per_load": 1})})


def test_a_server_started_ahead_waits_for_its_submission_and_the_wait_is_not_the_submissions(tmp_path):
    folder = submission(tmp_path, "honest")
    server = SandboxServer(SHORT, "bwrap")
    time.sleep(5)  # the server waits longer than its submission may take
    model = SandboxedModel.open(folder, SHORT, "bwrap", server=server)
    try:
        assert model.logits(FACES).shape == (2, 7)
        assert model.start_wait < 1.0  # started long before: opening it did not wait for its imports
    finally:
        model.close()


def test_a_server_s_start_up_is_not_counted_in_its_submission_s_load_limit(tmp_path):
    # Started and handed its submission at once: the imports (seconds) run past the 1 s load limit,
    # which counts only the student's own import and constructor.
    model = SandboxedModel.open(submission(tmp_path, "honest"), ONE_SECOND_LOAD, "bwrap")
    try:
        assert model.logits(FACES).shape == (2, 7)
    finally:
        model.close()


def test_the_wait_for_a_sandbox_s_start_up_is_set_apart_from_the_submission_s_load_time(tmp_path):
    # A server started for the submission itself: its imports (seconds) are the grader's, and the
    # report says so, instead of showing them as the student's load time.
    setup = sandboxed_setup(tmp_path / "out")
    result = grade_submission(submission(tmp_path / "submissions", "honest"), setup)
    stages = list(result.timings)
    assert stages.index("sandbox_start") == stages.index("load") - 1
    assert result.timings["sandbox_start"] > 0.5 > result.timings["load"]


def test_a_server_started_when_taken_counts_its_start_up_as_waited_for(tmp_path):
    with ServerStarter(PROFILE, "bwrap", expected=1) as servers:
        model = SandboxedModel.open(submission(tmp_path, "honest"), PROFILE, "bwrap", server=servers.take())
        try:
            assert model.start_wait > 0.5  # torch and Lightning imported (by its zygote, or by itself)
        finally:
            model.close()


def test_a_server_that_does_not_start_in_time_is_the_graders_failure_not_the_students(tmp_path, monkeypatch):
    monkeypatch.setattr(client, "STARTUP_SECONDS", 0.2)  # no server imports torch and Lightning this fast
    server = SandboxServer(PROFILE, "bwrap")
    with pytest.raises(SubmissionError) as raised:
        server.load(submission(tmp_path, "honest"))
    assert raised.value.stage == "grader"
    assert "did not start within 0.2 s" in raised.value.message and "not the submission's fault" in raised.value.message
    assert server.process.poll() is not None and not server.snapshot.parent.exists()


def test_a_submission_whose_server_did_not_start_is_graded_again_on_the_next_run(tmp_path, monkeypatch):
    submission(tmp_path / "submissions", "honest")
    monkeypatch.setattr(client, "STARTUP_SECONDS", 0.2)
    [result] = grade_class(tmp_path / "submissions", sandboxed_setup(tmp_path / "out"), runner=Runner())
    assert result.status == "failed" and [error.stage for error in result.errors] == ["grader"]
    assert not result.cache_key  # a re-run does not reuse it
    assert (tmp_path / "out" / "honest" / "result.json").is_file()


def test_no_server_is_started_beyond_the_submissions_expected():
    with ServerStarter(PROFILE, "bwrap", expected=2) as servers:
        servers.take().close()
        servers.start_next()
        assert servers.waiting is not None
        servers.take().close()
        servers.start_next()
        assert servers.waiting is None


def test_a_server_that_died_waiting_is_replaced_rather_than_failing_the_next_submission(tmp_path):
    folder = submission(tmp_path, "honest")
    with ServerStarter(PROFILE, "bwrap", expected=None) as servers:
        servers.take().close()
        servers.start_next()
        dead = servers.waiting
        dead.process.kill()
        model = SandboxedModel.open(folder, PROFILE, "bwrap", server=servers.take())
        try:
            assert model.logits(FACES).shape == (2, 7)
        finally:
            model.close()


def test_closing_the_starter_stops_the_waiting_server_and_removes_its_snapshot():
    servers = ServerStarter(PROFILE, "bwrap", expected=None)
    servers.start_next()
    waiting = servers.waiting
    servers.close()
    assert waiting.process.poll() is not None
    assert not waiting.snapshot.parent.exists()


def test_a_batch_with_servers_ahead_and_reports_alongside_grades_as_each_alone(tmp_path):
    root = tmp_path / "submissions"
    for name in ("honest_a", "honest_b"):
        submission(root, name)
    batch = {r.student_id: r for r in grade_class(root, sandboxed_setup(tmp_path / "out"), runner=Runner())}
    assert batch["honest_a"].status == "graded" and (tmp_path / "out" / "honest_a" / "result.json").is_file()
    # honest_b took the server started ahead, and was assessed while honest_a's report was written.
    alone = grade_submission(root / "honest_b", sandboxed_setup(tmp_path / "alone"))
    assert batch["honest_b"].status == alone.status == "graded"
    assert batch["honest_b"].questions == alone.questions
    assert batch["honest_b"].confusion_matrix == alone.confusion_matrix
    assert (tmp_path / "out" / "honest_b" / "result.json").is_file()
