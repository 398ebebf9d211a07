"""Grading the planned submissions of a class in this process, one after the other. The same
interface on Dask workers: grader.pipeline.dask_runner."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from grader.helper_process import HelperProcess
from grader.pipeline.class_plan import PlannedSubmission
from grader.pipeline.setup import GradingSetup
from grader.pipeline.report_process import ReportProcess
from grader.pipeline.student_folder import AssessedSubmission, assess_submission
from grader.result import Result
from grader.sandbox.starter import ServerStarter


class Runner:
    """Grades planned submissions in order and hands back each result as it is done.

    What is not the model's work is kept off the critical path (issue 20): the next submission's
    sandbox server is started while this one is graded (grader.sandbox.starter), and a submission's
    figures, result.json and PDF are written in a process of their own (grader.pipeline
    .report_process) while the next one's model works; a second thread waits for each and calls
    `on_result` as each is written. At most one submission waits to be written, so memory holds two
    assessments at most. The grader's own work beside a model's requests (ROAD's imputations) runs
    in a helper process (grader.helper_process). A batch of one submission, where nothing runs
    beside, starts neither process."""

    def run(self, pending: Sequence[PlannedSubmission], setup: GradingSetup,
            on_result: Callable[[PlannedSubmission, Result], None]) -> None:
        def write(planned: PlannedSubmission, assessed: AssessedSubmission) -> None:
            on_result(planned, reports.write(assessed, planned.cache_key))  # as soon as it is done

        batch = len(pending) > 1
        with server_starter(setup, expected=len(pending)) as servers, \
                ReportProcess(setup, own_process=batch) as reports, \
                (HelperProcess() if batch else contextlib.nullcontext()) as helper, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="xai-grader-report") as writer:
            writing: Future[None] | None = None
            for planned in pending:
                assessed = assess_submission(planned.folder, setup, identity=planned.identity, servers=servers,
                                             helper=helper)
                if writing is not None:
                    writing.result()  # an OutputFolderError stops the run here
                writing = writer.submit(write, planned, assessed)
            if writing is not None:
                writing.result()


def server_starter(setup: GradingSetup, expected: int | None) -> contextlib.AbstractContextManager[
        ServerStarter | None]:
    """Sandbox servers started ahead for `expected` submissions (None: however many come); none for
    in-process grading."""
    if setup.isolation == "inprocess":
        return contextlib.nullcontext()
    return ServerStarter(setup.profile, setup.isolation, expected)
