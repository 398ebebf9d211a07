"""Grading submissions in parallel on Dask distributed workers.

By default a LocalCluster sized to the machine: one single-threaded worker process per core, as
many as the memory allows at the profile's per-submission limit (each worker runs one sandbox at
a time, and the profile pins torch to one thread in it), so results are the same numbers as a
sequential run. `scheduler="tcp://HOST:PORT"` uses an existing cluster: any machines running
`dask worker HOST:PORT` with this package installed and the submissions and the output folder
on a shared file system (see the README for Slurm with dask-jobqueue).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from grader.pipeline.setup import GradingSetup, Identity
from grader.pipeline.student_folder import grade_submission
from grader.pipeline.class_plan import PlannedSubmission
from grader.pipeline.runners import Runner
from grader.outfolder import OutputFolderError
from grader.result import Result, StageError
from grader.sandbox.starter import ServerStarter

WORKER_OVERHEAD_MB = 1024
"""Memory a worker process needs beside its sandbox (torch, the evaluation set, figures)."""
CONNECT_TIMEOUT = "15s"


class SchedulerUnreachable(RuntimeError):
    """The Dask scheduler named by --scheduler did not answer; nothing was graded."""


def local_worker_count(setup: GradingSetup) -> int:
    """One worker per core, no more than the memory holds at the profile's limit per sandbox."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError):
        return max(1, cores)
    by_memory = memory_mb // (setup.profile.limits.memory_mb + WORKER_OVERHEAD_MB)
    return max(1, min(cores, by_memory))


class DaskRunner(Runner):
    """Submits one task per submission to Dask and reports each result as it completes. A local
    cluster has at most one worker per submission left to grade; a lone one is graded in this
    process, as Runner does."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, not {workers}")
        self.workers = workers
        self.scheduler = scheduler

    def run(self, pending: Sequence[PlannedSubmission], setup: GradingSetup,
            on_result: Callable[[PlannedSubmission, Result], None]) -> None:
        if not pending:
            return
        # No more local workers than submissions left to grade (a rerun may have one of 500 left): each
        # worker imports torch before it does anything, and one submission is graded in this process.
        local_workers = min(self.workers or local_worker_count(setup), len(pending))
        if self.scheduler is None and local_workers == 1:
            super().run(pending, setup, on_result)
            return
        from dask.distributed import Client, LocalCluster, as_completed

        cluster = None
        if self.scheduler is None:
            cluster = LocalCluster(n_workers=local_workers, threads_per_worker=1,
                                   processes=True, dashboard_address=None, silence_logs=logging.ERROR)
        try:
            client = Client(self.scheduler or cluster, timeout=CONNECT_TIMEOUT)
        except OSError as error:
            raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {self.scheduler}: {error}; start it "
                                       "(`dask scheduler`) and its workers (`dask worker ADDRESS`), or leave out "
                                       "--scheduler to grade on this machine") from None
        try:
            shared_setup = client.scatter(setup, broadcast=True)
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            per_worker = max(1, len(pending) // workers)  # the least each worker grades: no import wasted
            futures = {client.submit(grade_on_worker, planned.folder, shared_setup, planned.cache_key,
                                     planned.identity, per_worker, key=f"grade-{planned.student_id}-{planned.cache_key[:16]}",
                                     pure=False): planned
                       for planned in pending}
            for future in as_completed(futures):
                planned = futures[future]
                try:
                    result = future.result()
                except OutputFolderError:
                    client.cancel(list(futures))  # the output folder cannot take more: stop the run
                    raise
                except Exception as error:  # a worker died under the task: say so, grade the rest
                    result = _worker_failure(planned, error)
                on_result(planned, result)
        finally:
            _close_worker_servers(client)
            client.close()
            if cluster is not None:
                cluster.close()


_worker_servers: dict[str, ServerStarter] = {}
"""This worker process's sandbox servers started ahead, by run (GradingSetup.run_id)."""


def grade_on_worker(folder: Path, setup: GradingSetup, cache_key: str, identity: Identity | None,
                    expected: int | None = None) -> Result:
    """grade_submission on a Dask worker, in a sandbox server the worker started while it graded its
    previous submission (grader.sandbox.starter). `expected`: about how many this worker will grade
    (the run's share per worker); it starts no server ahead beyond that, and the run ends by stopping
    any still waiting (`close_servers_started_ahead`)."""
    servers = None
    if setup.isolation != "inprocess":
        servers = _worker_servers.get(setup.run_id)
        if servers is None:
            close_servers_started_ahead()  # an earlier run's, on a long-lived worker
            servers = _worker_servers[setup.run_id] = ServerStarter(setup.profile, setup.isolation, expected)
    return grade_submission(folder, setup, None, cache_key, identity, servers=servers)


def close_servers_started_ahead() -> None:
    """Stop this worker's servers started ahead (run on every worker at the end of a run)."""
    for servers in _worker_servers.values():
        servers.close()
    _worker_servers.clear()


def _close_worker_servers(client) -> None:
    try:
        client.run(close_servers_started_ahead)
    except Exception:  # noqa: BLE001  (a worker that is gone took its server with it)
        pass


def _worker_failure(planned: PlannedSubmission, error: Exception) -> Result:
    from grader import __version__

    message = (f"the Dask worker grading this submission failed ({type(error).__name__}: {error}); "
               "nothing was written for it, so the next run grades it again")
    return Result(student_id=planned.student_id, folder=planned.folder.name, status="failed",
                  errors=[StageError(stage="worker", message=message)], tool_version=__version__)
