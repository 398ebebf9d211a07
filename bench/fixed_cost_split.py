"""Where the fixed cost of a submission goes (issue 20): bench/fixed_cost.py says how much grading the
small example costs beyond its model's work; this says where, from one class run and a replay.

    .venv/bin/python bench/fixed_cost_split.py [--copies 6] [--rounds 3] [--no-pdf]

1. A class of `copies` copies of submissions/small_cnn graded as `grader grade` with one worker
   grades it (grader.pipeline.class_run.grade_class, the in-process Runner, bwrap where it works,
   course settings). For each submission's model half (grader.pipeline.student_folder
   .assess_submission): its wall time; the main thread's requests to its sandbox server (how many,
   and the seconds from sending each to its answer); the main thread's own CPU; the grading
   process's CPU (its helper and report threads too); and the machine's busy CPU seconds
   (/proc/stat, every process). Medians over the steady submissions (the first, a cold start, left
   out).
2. The requests of one in-process assessment, recorded (bench/fixed_cost.py's CallRecorder), are
   replayed alone, `rounds` times alternating: on an InProcessModel, and on a sandboxed model
   forked as the class run's are. In-process is the model's work; sandboxed minus in-process is
   what the sandbox adds to the same requests; per kind of request and batch.

What the class run's round trips take beyond the sandboxed replay is what the grader's own work
beside them costs the model (two cores shared with the helper threads and the report, and the
interpreter's lock); its requests beyond the replay's are the gradient audit's (grader.submission
.gradient_audit), which the in-process assessment does not make.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from example_class import ROOT, copy_examples  # bench/, beside this file
from fixed_cost import Call, recorded_calls

EXAMPLE = "small_cnn"


class RequestClock:
    """The main thread's sandbox requests (count, seconds), and the CPU clocks around one assessment."""

    def __init__(self) -> None:
        self.requests = 0
        self.seconds = 0.0

    def install(self) -> None:
        from grader.sandbox import client

        sent = client.SandboxServer.request

        def timed(server, message, what):
            started = time.perf_counter()
            try:
                return sent(server, message, what)
            finally:
                if threading.current_thread() is threading.main_thread():
                    self.requests += 1
                    self.seconds += time.perf_counter() - started

        client.SandboxServer.request = timed


def machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has spent busy (not idle, not waiting on I/O)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def class_run(copies: int, write_pdf: bool) -> list[dict[str, float]]:
    """The class graded; per submission: wall, requests, round trips, main CPU, process CPU, machine CPU."""
    from grader.data.bundled import bundled_evaluation
    from grader.pipeline import runners
    from grader.pipeline.class_run import grade_class
    from grader.pipeline.setup import load_setup
    from grader.questions.settings import TaskSettings
    from grader.sandbox.isolation import bwrap_works

    clock = RequestClock()
    clock.install()
    rows: list[dict[str, float]] = []
    assess = runners.assess_submission

    def measured(*args, **kwargs):
        clock.requests, clock.seconds = 0, 0.0
        wall, main, process = time.perf_counter(), time.thread_time(), time.process_time()
        machine = machine_busy_seconds()
        assessed = assess(*args, **kwargs)
        rows.append({"wall": time.perf_counter() - wall, "requests": clock.requests, "round trips": clock.seconds,
                     "main CPU": time.thread_time() - main, "process CPU": time.process_time() - process,
                     "machine CPU": machine_busy_seconds() - machine})
        return assessed

    runners.assess_submission = measured
    isolation = "bwrap" if bwrap_works() else "subprocess"
    with tempfile.TemporaryDirectory(prefix="fixed-cost-split-") as scratch:
        folder = copy_examples(Path(scratch) / "class", copies, [EXAMPLE])
        setup = load_setup(bundled_evaluation(), ROOT / "rubric.yaml", Path(scratch) / "out", isolation=isolation,
                           tasks=TaskSettings(), write_pdf=write_pdf)
        grade_class(folder, setup, runner=runners.Runner(), force=True, on_result=lambda *_: None)
    runners.assess_submission = assess
    return rows


def recorded_requests() -> tuple[list[Call], object, object]:
    """One in-process assessment's requests, the model they were made on, and the setup's profile."""
    from grader.data.bundled import bundled_evaluation
    from grader.pipeline.setup import load_setup
    from grader.questions.settings import TaskSettings

    with tempfile.TemporaryDirectory(prefix="fixed-cost-split-") as scratch:
        setup = load_setup(bundled_evaluation(), ROOT / "rubric.yaml", Path(scratch), isolation="inprocess",
                           tasks=TaskSettings())
    calls, model = recorded_calls(ROOT / "submissions" / EXAMPLE, setup)
    return calls, model, setup.profile


def kind(call: Call) -> str:
    """A request's kind: its method, the batch's shape, its objective, and whether on a randomized copy."""
    key, name, args, _ = call
    shape = "x".join(map(str, args[0].shape)) if args and hasattr(args[0], "shape") else ""
    objective = type(args[1]).__name__ if len(args) > 1 and name == "input_gradient" else ""
    return " ".join(part for part in (name, shape, objective, "(copy)" if key else "") if part)


def replayed(calls: list[Call], model) -> collections.Counter[str]:
    """The calls made again on `model`, one after the other; seconds by kind."""
    models = {0: model}
    seconds: collections.Counter[str] = collections.Counter()
    for index, call in enumerate(calls):
        key, name, args, kwargs = call
        started = time.perf_counter()
        value = getattr(models[key], name)(*args, **kwargs)
        seconds[kind(call)] += time.perf_counter() - started
        if name == "randomized":
            models[index] = value
    return seconds


def replay(rounds: int) -> tuple[list[Call], list[collections.Counter[str]], list[collections.Counter[str]]]:
    """The recorded requests replayed alone, in-process and sandboxed, alternating, `rounds` times each."""
    from grader.sandbox.client import SandboxedModel
    from grader.sandbox.isolation import bwrap_works
    from grader.sandbox.starter import ServerStarter

    calls, model, profile = recorded_requests()
    isolation = "bwrap" if bwrap_works() else "subprocess"
    local, sandboxed = [], []
    with ServerStarter(profile, isolation) as starter:
        for _ in range(rounds):
            local.append(replayed(calls, model))
            with SandboxedModel.open(ROOT / "submissions" / EXAMPLE, profile, isolation,
                                     server=starter.take()) as remote:
                replayed(calls, remote)  # its first pass pays for the server's warm-up
                sandboxed.append(replayed(calls, remote))
    return calls, local, sandboxed


def report(rows: list[dict[str, float]], calls: list[Call], local: list[collections.Counter[str]],
           sandboxed: list[collections.Counter[str]], write_pdf: bool) -> None:
    steady = rows[1:] or rows
    median = {name: statistics.median(row[name] for row in steady) for name in rows[0]}
    print(f"{len(rows)} copies of submissions/{EXAMPLE}, course settings, one worker, "
          f"{'PDFs written' if write_pdf else 'no PDFs'}; medians of the {len(steady)} after the first:")
    for name, value in median.items():
        print(f"  {name:<13} {value:8.2f}" + ("" if name != "requests" else "   (the main thread's, to its server)"))
    in_process = statistics.median(sum(seconds.values()) for seconds in local)
    in_sandbox = statistics.median(sum(seconds.values()) for seconds in sandboxed)
    print(f"the {len(calls)} recorded requests of one in-process assessment, replayed alone "
          f"({len(local)} rounds, alternating; medians):")
    print(f"  in-process {in_process:.2f} s (the model's work), sandboxed {in_sandbox:.2f} s "
          f"(the sandbox adds {in_sandbox - in_process:.2f} s)")
    kinds = collections.Counter(kind(call) for call in calls)
    added = {name: statistics.median(s[name] for s in sandboxed) - statistics.median(s[name] for s in local)
             for name in kinds}
    print("  what the sandbox adds, by kind (the five largest): " + "; ".join(
        f"{name} x{kinds[name]} +{added[name]:.2f} s ({added[name] / kinds[name] * 1000:.1f} ms each)"
        for name in sorted(added, key=added.get, reverse=True)[:5]))
    print("the split of one steady submission's model half (seconds):")
    print(f"  the model's work                               {in_process:6.2f}")
    print(f"  the sandbox on the same requests               {in_sandbox - in_process:6.2f}")
    print(f"  the rest of the round trips                    {median['round trips'] - in_sandbox:6.2f}   "
          f"({median['requests'] - len(calls):.0f} more requests than the replay: the gradient audit's; "
          "and the grader's work beside the model)")
    print(f"  the main thread between requests               {median['wall'] - median['round trips']:6.2f}   "
          f"(its own CPU {median['main CPU']:.2f})")
    print(f"  = the model half's wall time                   {median['wall']:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-pdf", action="store_true", help="write no PDFs (the figures are still drawn)")
    args = parser.parse_args()
    rows = class_run(args.copies, not args.no_pdf)
    calls, local, sandboxed = replay(args.rounds)
    report(rows, calls, local, sandboxed, not args.no_pdf)


if __name__ == "__main__":
    main()
