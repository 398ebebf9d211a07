"""A submission's output folder written in a separate process, beside the next submission's model work
(issue 20).

A batch graded in one process (grader.pipeline.runners) writes each submission's figures, result.json
and PDF while the next submission's model works. On a thread, that writing (matplotlib and WeasyPrint,
about 2 s of a core, almost all of it holding the interpreter's lock) made the model's requests wait:
the thread that sends them needs the lock for a moment after every answer, and got it only when the
writer gave it up, about 1 ms later on average, over some 365 requests a submission, and its own work
between requests ran at half speed. A process has its own interpreter's lock (bench/RESULTS.md,
"helpers_alternating").

The process is started by `spawn` (a fresh interpreter: the grading process has threads, which a fork
would copy in whatever state they are), is handed the run's GradingSetup once, and runs the same
`write_submission` a thread would: the output is the same, byte for byte. If it dies while writing (a
crash in a native library on some student's text, say), that submission's result is the grader's
failure and the next one is written by a new process: one submission can fail only its own result.
"""

from __future__ import annotations

from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

from grader.helper_process import become_helper, one_process_pool
from grader.outfolder import OutputFolderError
from grader.pipeline.setup import GradingSetup
from grader.pipeline.student_folder import AssessedSubmission, write_submission
from grader.quiet import quiet_libraries
from grader.result import Result

_setup: GradingSetup | None = None
"""The run's setup, in the report process (given once, when the process starts)."""


class ReportProcessDied(Exception):
    """The process writing a submission's output folder stopped before it was done."""


class ReportProcess:
    """`write_submission` for one run, in one process of its own; used by one thread at a time.

    write(assessed, cache_key) blocks until the submission is written and returns its Result, as
    write_submission does; an OutputFolderError (a full disk) comes back raised, as it does.

    own_process: False writes in the calling thread instead, for a batch of one submission, where
    nothing runs beside the writing and a new interpreter's imports (about 2 s of a core) would be
    all a process added. A process that cannot start at all (say, the grading program was read from
    standard input, which `spawn` cannot import again) also leaves the writing to the calling thread."""

    def __init__(self, setup: GradingSetup, own_process: bool = True) -> None:
        self.setup = setup
        self.own_process = own_process
        self._executor: ProcessPoolExecutor | None = None
        self._started: Future[None] | None = None

    def __enter__(self) -> ReportProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the process now (its imports take a core for a few seconds; a batch starts it while
        its first submission's model works)."""
        if self.own_process and self._executor is None:
            self._executor = one_process_pool(_become_report_process)
            # The setup (the evaluation faces: megabytes) goes as the first task, not as the initializer's
            # argument: multiprocessing writes those to a new process through a pipe whose reading end
            # it holds itself until done, so a process that died at start would leave it waiting forever.
            self._started = self._executor.submit(_install_setup, self.setup)

    def write(self, assessed: AssessedSubmission, cache_key: str = "") -> Result:
        if assessed.grader_error is None and self._process_started():
            try:
                return self._executor.submit(_write, assessed, cache_key).result()
            except OutputFolderError:
                raise  # a full disk stops the run, as it does when written here
            except BrokenProcessPool as error:
                self._stop()  # the next submission gets a new process
                return self._failed(assessed, ReportProcessDied(f"the process writing its report stopped ({error})"))
            except Exception as error:  # noqa: BLE001  (say, an assessment that could not be sent: fail it, go on)
                return self._failed(assessed, error)
        return write_submission(assessed, self.setup, None, cache_key)  # a grader error: its result.json alone

    def _process_started(self) -> bool:
        """Whether there is a process to write in (started now, or earlier and ready). One that
        cannot start is not tried again: the writing stays in this process for the rest of the run."""
        self.start()
        if self._started is None:
            return False
        try:
            self._started.result()
        except Exception:  # noqa: BLE001  (BrokenProcessPool: it died before it was ready)
            self._stop()
            self.own_process = False
            return False
        return True

    def _failed(self, assessed: AssessedSubmission, error: Exception) -> Result:
        """The submission's result as the grader's failure (its result.json alone, written here)."""
        return write_submission(replace(assessed, grader_error=error), self.setup, None)

    def _stop(self, wait: bool = False) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)
        self._executor = self._started = None

    def close(self) -> None:
        self._stop(wait=True)


def _become_report_process(parent: int) -> None:
    become_helper(parent)
    quiet_libraries()


def _install_setup(setup: GradingSetup) -> None:
    """The first task: the run's setup kept for every report, and what the first report needs imported,
    while the first submission's model works."""
    global _setup
    _setup = setup
    if setup.write_pdf:
        import weasyprint  # noqa: F401  (grader.report.pdf imports it when it first writes a PDF)


def _write(assessed: AssessedSubmission, cache_key: str) -> Result:
    return write_submission(assessed, _setup, None, cache_key)
