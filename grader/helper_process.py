"""One helper process for the grader's own CPU work beside a model's requests, for a batch (issue 20).

grader.helper_thread runs such work on a thread of the grading process. ROAD's imputations (about
half a second of a core a submission, much of it in LAPACK calls that keep the interpreter's lock)
ran there while the model answered the class-model visualization's 200 small requests, and each
answer waited for the lock: in one run, alternating threads and processes submission by submission
(this work and the report's together), that question took 1.13 s with threads and 0.93 s with
processes (bench/RESULTS.md, "helpers_alternating"). A batch that grades many submissions in one
process therefore hands that work to a process of its own, started once (by `spawn`: the grading
process has threads, which a fork would copy in whatever state they are).

The work sent must be a module-level function of arrays: it is pickled there and back. The result is
the same to the last bit (the same code on the same numbers, one thread of BLAS in both).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

ORPHAN_POLL_SECONDS = 0.5


class HelperProcess(Executor):
    """An Executor of one process, started at the first `submit` (the work's modules are imported
    there by its first task); a process that died is replaced at the next `submit`. The futures of
    what a dead process was running fail with BrokenProcessPool (concurrent.futures' BrokenExecutor),
    and their callers do that work themselves."""

    def __init__(self) -> None:
        self._pool = one_process_pool()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        try:
            return self._pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = one_process_pool()
            return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def one_process_pool(initializer: Callable[[int], None] | None = None) -> ProcessPoolExecutor:
    """A pool of one process started by `spawn`, whose first act is `initializer(parent pid)`
    (default `become_helper`; one of its own must call `become_helper` too)."""
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=initializer or become_helper, initargs=(os.getpid(),))


def become_helper(parent: int) -> None:
    """A helper process's first act: Ctrl-C reaches the whole process group, but the grading process
    decides what stops, and stops its helpers; and a helper leaves when its grading process is gone
    (killed, even by SIGKILL), where it would otherwise wait for work forever (it holds its own queue's
    writing end, so it never reads an end of file)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), name="xai-grader-orphan-watch", daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_POLL_SECONDS)
    os._exit(1)
