"""Specifications of grader.helper_thread: the one helper thread beside a model's requests."""

from __future__ import annotations

import threading

import pytest

from grader.helper_thread import helper_thread


def test_the_work_runs_on_a_named_thread_and_the_block_waits_for_it():
    ran: list[str] = []
    with helper_thread("test") as helper:
        helper.submit(lambda: ran.append(threading.current_thread().name))
    assert len(ran) == 1 and ran[0].startswith("xai-grader-test")


def test_work_not_yet_started_is_cancelled_when_the_block_raises():
    release = threading.Event()
    started = threading.Event()

    def first() -> str:
        started.set()
        release.wait(10)
        return "done"

    with pytest.raises(RuntimeError, match="the model's request failed"):
        with helper_thread("test") as helper:
            running = helper.submit(first)
            waiting = helper.submit(lambda: "never")
            assert started.wait(10)
            release.set()  # lets the running work end, so that shutting down returns
            raise RuntimeError("the model's request failed")
    assert running.result() == "done"
    assert waiting.cancelled()
