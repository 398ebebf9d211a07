"""Grading the planned submissions of a class in this process, one after the other. The same
interface on Dask workers: grader.pipeline.dask_runner."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from grader.pipeline.class_plan import PlannedSubmission
from grader.pipeline.setup import GradingSetup
from grader.pipeline.student_folder import grade_submission
from grader.result import Result


class Runner:
    """Grades planned submissions and hands back each result as it is done (any order)."""

    def run(self, pending: Sequence[PlannedSubmission], setup: GradingSetup,
            on_result: Callable[[PlannedSubmission, Result], None]) -> None:
        for planned in pending:
            on_result(planned, grade_submission(planned.folder, setup, cache_key=planned.cache_key,
                                                identity=planned.identity))
