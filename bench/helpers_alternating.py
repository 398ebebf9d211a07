"""The grader's own work beside a model's requests on threads or in processes (issue 20), alternating
submission by submission in one class run, so that both ways meet the same minutes of this VM.

    .venv/bin/python bench/helpers_alternating.py [--copies 17]

This VM's speed drifts by a third within minutes, more than the difference measured here, so two
class runs one after the other (bench/fixed_cost.py) cannot resolve it. Here one class of `copies`
copies of submissions/small_cnn is graded as `grader grade` with one worker grades it (bwrap where it
works, course settings, PDFs), and the submissions take turns:

- threads (as before 5ffa67c): ROAD's imputations on a helper thread of the assessment, and the
  previous submission's report written on a thread of the grading process;
- processes (grader.helper_process and grader.pipeline.report_process): both in processes of their
  own, started once for the run.

A submission's model half (grader.pipeline.student_folder.assess_submission) runs beside its own
ROAD imputations and the previous submission's report, so both are switched together for it. The
first submission (a cold start) is left out; medians of the rest, per way, and of each question's
stage. The outputs are the same either way (tests/test_report_process.py, tests/test_helper_process.py).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from example_class import ROOT, copy_examples  # bench/, beside this file

EXAMPLE = "small_cnn"
WAYS = ("threads", "processes")


class AlternatingRunner:
    """grader.pipeline.runners.Runner, with the helpers' way switched per submission: submission k
    (and the report of submission k - 1, written beside it) the way WAYS[k % 2]."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def run(self, pending: Sequence, setup, on_result: Callable) -> None:
        from grader.helper_process import HelperProcess
        from grader.pipeline.report_process import ReportProcess
        from grader.pipeline.runners import server_starter
        from grader.pipeline.student_folder import assess_submission, write_submission

        with server_starter(setup, expected=len(pending)) as servers, ReportProcess(setup) as reports, \
                HelperProcess() as helper, ThreadPoolExecutor(max_workers=1) as writer:
            writing: Future | None = None
            for index, planned in enumerate(pending):
                way = WAYS[index % 2]
                in_process = way == "processes"

                def write(planned=planned, assessed=None, in_process=in_process) -> None:
                    result = (reports.write(assessed, planned.cache_key) if in_process
                              else write_submission(assessed, setup, None, planned.cache_key))
                    on_result(planned, result)

                started = time.perf_counter()
                assessed = assess_submission(planned.folder, setup, identity=planned.identity, servers=servers,
                                             helper=helper if in_process else None)
                self.rows.append({"way": way, "wall": time.perf_counter() - started, **assessed.log.timings})
                if writing is not None:
                    writing.result()
                # this report runs beside the next submission's model half: written the next one's way
                next_in_process = WAYS[(index + 1) % 2] == "processes"
                writing = writer.submit(write, planned, assessed, next_in_process)
            if writing is not None:
                writing.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=17)
    args = parser.parse_args()

    from grader.data.bundled import bundled_evaluation
    from grader.pipeline.class_run import grade_class
    from grader.pipeline.setup import load_setup
    from grader.questions.settings import TaskSettings
    from grader.quiet import quiet_libraries
    from grader.sandbox.isolation import bwrap_works

    quiet_libraries()
    isolation = "bwrap" if bwrap_works() else "subprocess"
    runner = AlternatingRunner()
    with tempfile.TemporaryDirectory(prefix="helpers-alternating-") as scratch:
        folder = copy_examples(Path(scratch) / "class", args.copies, [EXAMPLE])
        setup = load_setup(bundled_evaluation(), ROOT / "rubric.yaml", Path(scratch) / "out", isolation=isolation,
                           tasks=TaskSettings())
        results = grade_class(folder, setup, runner=runner, force=True)
    failed = [result.student_id for result in results if result.status != "graded"]
    steady = runner.rows[1:]
    print(f"{args.copies} copies of submissions/{EXAMPLE}, course settings, one worker, isolation {isolation}, "
          f"PDFs written; the ways alternate submission by submission; medians of the steady submissions:")
    stages = [name for name in steady[0] if name not in ("way", "wall", "snapshot", "spec", "fingerprint")]
    print(f"{'way':<10} {'n':>3} {'model half':>11} " + " ".join(f"{name:>12}" for name in stages) + "   (seconds)")
    medians = {}
    for way in WAYS:
        rows = [row for row in steady if row["way"] == way]
        medians[way] = statistics.median(row["wall"] for row in rows)
        print(f"{way:<10} {len(rows):>3} {medians[way]:11.2f} "
              + " ".join(f"{statistics.median(row[name] for row in rows):12.3f}" for name in stages))
        print(f"{'':<10}     model halves: " + " ".join(f"{row['wall']:.2f}" for row in rows))
    print(f"processes against threads: {medians['threads'] - medians['processes']:+.2f} s a submission's model half"
          f"; every submission graded: {not failed}")


if __name__ == "__main__":
    main()
