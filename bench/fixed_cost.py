"""The fixed cost of a submission (issue 20): what grading the small example costs beyond its model's
own work, first and in steady state, for this tree and a previous commit side by side in one run.

    .venv/bin/python bench/fixed_cost.py [--against REV] [--copies 8] [--rounds 1] [--quick]

Each tree grades a class of `copies` copies of submissions/small_cnn end to end, as `grader grade`
with one worker does (grader.pipeline.class_run.grade_class with the in-process Runner: sandboxed
with bubblewrap where it works, course settings, PDFs), from an empty output folder, and records
when each result is done:

- first: from the start of grade_class to the first result (a cold start: the first sandbox);
- steady: the median time between consecutive results, the first and the last left out (what
  each further submission of a class adds; the last result has only its report left to do);
- model work: the seconds the same submission's requests take on an InProcessModel with nothing
  else running, the least of three runs: every protocol call of one assessment (the checks, the
  evaluation, every question, the probes, the fingerprint: grader.pipeline.assessment.assess) is
  recorded with a copy of its arguments, then the calls are replayed alone, each timed. Timing the
  calls as the assessment makes them would count the grader's own work that overlaps them (its
  helper threads, grader.helper_thread) as the model's;
- fixed cost: steady minus model work, what this issue brings under 2 s; the medians' difference,
  and each run's own (its steady state minus the model work measured right after it, in the same
  minutes), whose spread shows how far this VM's drift reaches.

The previous commit (`--against`, default HEAD~1) is checked out into a temporary git worktree and
measured by this same file run with that tree first on PYTHONPATH, one tree after the other, so the
two sets of numbers come from the same machine in the same minutes. With `--rounds N` each tree grades
the class N times, in the order ABBA ABBA..., and each number is the median of its tree's runs: this
VM's speed drifts by a third within minutes (one tree against itself: 7.44 and 6.11 s steady in
consecutive runs, 2026-12-04), so a single pair of runs favours whichever ran in the faster minutes.
Its results must be identical to this tree's (result.json without timings and ids, the arrays byte
for byte): the script says so.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from example_class import ROOT, copy_examples  # bench/example_class.py, beside this file

EXAMPLE = "small_cnn"
VOLATILE = {"timings", "student_id", "cache_key", "folder", "submission_sha256", "graded_at", "run_id", "name"}


# --- measuring one tree (runs with that tree's grader package) -------------------------------------

def measure(folder: Path, out: Path, quick: bool) -> dict:
    """Grade the class with the grader on sys.path; the completion times and the model work."""
    from grader.data.bundled import bundled_evaluation
    from grader.pipeline.class_run import grade_class
    from grader.pipeline.runners import Runner
    from grader.pipeline.setup import load_setup
    from grader.questions.settings import TaskSettings
    from grader.quiet import quiet_libraries
    from grader.sandbox.isolation import bwrap_works

    quiet_libraries()
    isolation = "bwrap" if bwrap_works() else "subprocess"
    tasks = TaskSettings.quick() if quick else TaskSettings()
    faces = bundled_evaluation()
    setup = load_setup(faces, Path.cwd() / "rubric.yaml", out, isolation=isolation, tasks=tasks)  # the tree's own
    done: list[float] = []
    started = time.perf_counter()
    grade_class(folder, setup, runner=Runner(), force=True,
                on_result=lambda *_: done.append(time.perf_counter() - started))
    example = next(iter(sorted(folder.iterdir())))
    return {"isolation": isolation, "done": done, "model_work": model_work(example, setup)}


def model_work(folder: Path, setup) -> float:
    """Seconds the model takes for one in-process assessment's requests, replayed alone (the least of three)."""
    calls, model = recorded_calls(folder, setup)
    # The least of three: the same code's model work varied 3.9-5.9 s between runs on this VM
    # (2026-12-03), and noise only ever adds time.
    return min(replayed_seconds(calls, model) for _ in range(3))


def recorded_calls(folder: Path, setup) -> tuple[list[Call], object]:
    """Every protocol call of one in-process assessment of `folder` (with copies of its arguments),
    and the InProcessModel it was made on, with the setup's profile applied."""
    from grader.pipeline.assessment import assess
    from grader.pipeline.stages import StageLog
    from grader.submission.build import build_model
    from grader.submission.inprocess import InProcessModel
    from grader.submission.module import SubmissionModule
    from grader.submission.spec import load_spec

    spec = load_spec(folder)
    model = InProcessModel(SubmissionModule(build_model(folder, spec), spec.input), setup.profile.device,
                           setup.profile.dtype)
    setup.profile.apply()
    calls: list[Call] = []
    log = StageLog()
    assess(CallRecorder(model, calls), setup.evaluation, spec.visualize, setup.rubric, setup.tasks, log)
    if log.errors:  # a stage that failed would leave its model work out
        raise RuntimeError(f"the in-process assessment failed: {log.errors}")
    return calls, model


Call = tuple[int, str, tuple, dict]
"""(the model's key: 0, or the index of the `randomized` call that made it; the method; args; kwargs)."""


class CallRecorder:
    """A model protocol proxy that records every call with a copy of its arguments (the callers may
    change their arrays afterwards, as gradient ascent does), randomized copies included."""

    def __init__(self, model, calls: list[Call], key: int = 0) -> None:
        self._model = model
        self._calls = calls
        self._key = key

    def __enter__(self) -> CallRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str):
        attribute = getattr(self._model, name)
        if not callable(attribute):
            return attribute

        def recorded(*args, **kwargs):
            self._calls.append((self._key, name, copy.deepcopy(args), copy.deepcopy(kwargs)))
            value = attribute(*args, **kwargs)
            return CallRecorder(value, self._calls, len(self._calls) - 1) if name == "randomized" else value

        return recorded


def replayed_seconds(calls: list[Call], model) -> float:
    """The recorded calls made again on `model` (and the copies its `randomized` calls make), one
    after the other with nothing else running; the seconds they took."""
    models = {0: model}
    seconds = 0.0
    for index, (key, name, args, kwargs) in enumerate(calls):
        started = time.perf_counter()
        value = getattr(models[key], name)(*args, **kwargs)
        seconds += time.perf_counter() - started
        if name == "randomized":
            models[index] = value
    return seconds


# --- comparing trees ---------------------------------------------------------------------------------

def run_tree(tree: Path, folder: Path, out: Path, quick: bool) -> dict:
    """This file run with `tree` first on PYTHONPATH; its measurement as a dict."""
    report = out.parent / f"{out.name}.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", str(folder), "--out", str(out),
               "--report", str(report)] + (["--quick"] if quick else [])
    subprocess.run(command, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(report.read_text())


def comparable(out: Path) -> dict[str, str]:
    """Each student's result.json (without timings, ids and paths) and arrays, as digests."""
    digests = {}
    for result_file in sorted(out.glob("*/result.json")):
        result = json.loads(result_file.read_text())
        kept = {key: value for key, value in result.items() if key not in VOLATILE}
        digests[f"{result['student_id']}/result.json"] = hashlib.sha256(
            json.dumps(kept, sort_keys=True).encode()).hexdigest()
        for array in sorted((result_file.parent / "arrays").glob("*")):
            digests[f"{result['student_id']}/arrays/{array.name}"] = hashlib.sha256(array.read_bytes()).hexdigest()
    return digests


def steady_state(done: list[float]) -> float:
    """The median time between consecutive results, leaving out the first (a cold start) and the
    last (only its report was left to do)."""
    intervals = [b - a for a, b in zip(done, done[1:])][:-1]
    return statistics.median(intervals) if intervals else float("nan")


def summary(name: str, measured: dict) -> list[str]:
    work = measured["model_work"]
    intervals = " | ".join(" ".join(f"{i:.2f}" for i in run) for run in measured["intervals"])
    by_run = " ".join(f"{fixed:.2f}" for fixed in measured["fixed_by_run"])
    return [f"{name:<22} {measured['first']:8.2f} {measured['steady']:8.2f} {work:11.2f} "
            f"{measured['steady'] - work:11.2f}   intervals {intervals}",
            f"{'':<22} fixed cost of each run (its steady state minus its own model work): {by_run}"]


def compare(against: str, copies: int, quick: bool, rounds: int = 1) -> None:
    revision = subprocess.run(["git", "rev-parse", "--short", against], cwd=ROOT, check=True, capture_output=True,
                              text=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip())
    with tempfile.TemporaryDirectory(prefix="fixed-cost-") as scratch:
        scratch_path = Path(scratch)
        folder = copy_examples(scratch_path / "class", copies, [EXAMPLE])
        old_tree = scratch_path / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(old_tree), revision], cwd=ROOT, check=True)
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        try:
            for index, which in enumerate(abba(rounds)):
                tree = old_tree if which == "old" else ROOT
                runs[which].append(run_tree(tree, folder, scratch_path / f"out_{which}_{index}", quick))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT, check=False)
        outs = [out for out in scratch_path.glob("out_*") if out.is_dir()]
        same = len({json.dumps(comparable(out), sort_keys=True) for out in outs}) == 1
    old, new = (merged(runs[which]) for which in ("old", "new"))
    medians = f"; medians of {rounds} runs a tree, ABBA" if rounds > 1 else ""
    print(f"{copies} copies of submissions/{EXAMPLE}, {'quick' if quick else 'course'} settings, one worker, "
          f"isolation {new['isolation']}, PDFs written{medians}")
    print(f"{'tree':<22} {'first':>8} {'steady':>8} {'model work':>11} {'fixed cost':>11}   (seconds)")
    for line in summary(f"{revision} (previous)", old) + summary(f"{head}{'+changes' if dirty else ''} (this)", new):
        print(line)
    print(f"steady state: {old['steady'] / new['steady']:.2f}x faster; fixed cost "
          f"{old['steady'] - old['model_work']:.2f} s -> {new['steady'] - new['model_work']:.2f} s")
    print(f"results identical (result.json without timings and ids, arrays byte for byte): {same}")


def abba(rounds: int) -> list[str]:
    """The order of the runs: old, new, then new, old, and so on."""
    return [which for index in range(rounds) for which in (("old", "new") if index % 2 == 0 else ("new", "old"))]


def merged(runs: list[dict]) -> dict:
    """One tree's runs as one: the medians of their first results, steady states and model work, and
    every run's intervals."""
    return {"isolation": runs[0]["isolation"],
            "first": statistics.median(run["done"][0] for run in runs),
            "steady": statistics.median(steady_state(run["done"]) for run in runs),
            "model_work": statistics.median(run["model_work"] for run in runs),
            "intervals": [[b - a for a, b in zip(run["done"], run["done"][1:])] for run in runs],
            "fixed_by_run": [steady_state(run["done"]) - run["model_work"] for run in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="HEAD~1", help="the commit to compare with (default HEAD~1)")
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="runs of each tree, in the order ABBA... (medians)")
    parser.add_argument("--quick", action="store_true", help="quick task settings (a tenth of the explanation work)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # one tree's run, inside compare
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        args.report.write_text(json.dumps(measure(args.measure, args.out, args.quick)))
        return
    compare(args.against, args.copies, args.quick, args.rounds)


if __name__ == "__main__":
    main()
