"""A class of copies of the example submissions graded by `grader grade` with two local workers
(issue 20): submissions per minute and where a submission's time goes, stage by stage.

    .venv/bin/python bench/class_throughput.py [--copies 20] [--workers 2] [--quick] [--against REV]

The class cycles through the examples that grade (bench/example_class.py), each copy under its own
student id, graded from an empty output folder in the sandbox (bubblewrap where it works, else
--no-sandbox), on the bundled 3,589-face evaluation set, with PDFs. With --against REV the same class
is graded first by that commit (a temporary git worktree, its own rubric and settings), so the two
lines come from the same machine in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from example_class import ROOT, copy_examples  # bench/example_class.py, beside this file

STAGES = ("sandbox_start", "load", "checks", "evaluate", "q1_saliency", "q2_filters", "q3_lime", "q4_freeform",
          "probes", "report")


def grade(tree: Path, folder: Path, out: Path, workers: int, quick: bool) -> float:
    """Wall seconds of `grader grade` from `tree` over `folder`."""
    from grader.sandbox.isolation import bwrap_works

    command = [sys.executable, "-m", "grader.cli", "grade", str(folder), "--out", str(out), "--workers", str(workers),
               "--force", *(["--quick"] if quick else []), *([] if bwrap_works() else ["--no-sandbox"])]
    env = dict(os.environ, PYTHONPATH=str(tree))
    started = time.perf_counter()
    subprocess.run(command, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def report(name: str, out: Path, seconds: float) -> list[str]:
    results = [json.loads(path.read_text()) for path in sorted(out.glob("*/result.json"))]
    graded = sum(result["status"] == "graded" for result in results)
    means = {stage: statistics.fmean(result["timings"].get(stage, 0.0) for result in results) for stage in STAGES}
    return [f"{name}: {len(results)} submissions ({graded} graded) in {seconds:.1f} s: "
            f"{60 * len(results) / seconds:.2f} submissions/min",
            "  mean seconds a submission by stage (each worker's own clock; stages of different workers overlap):",
            "  " + "  ".join(f"{stage} {means[stage]:.2f}" for stage in STAGES)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="quick task settings (a tenth of the explanation work)")
    parser.add_argument("--against", help="also grade the class with this commit, first")
    args = parser.parse_args()
    print(f"{args.copies} copies of the examples, {args.workers} workers, "
          f"{'quick' if args.quick else 'course'} settings, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="class-throughput-") as scratch:
        scratch_path = Path(scratch)
        folder = copy_examples(scratch_path / "class", args.copies)
        lines = []
        if args.against:
            revision = subprocess.run(["git", "rev-parse", "--short", args.against], cwd=ROOT, check=True,
                                      capture_output=True, text=True).stdout.strip()
            tree = scratch_path / "tree"
            subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), revision], cwd=ROOT, check=True)
            try:
                seconds = grade(tree, folder, scratch_path / "out_old", args.workers, args.quick)
                lines += report(f"{revision} (previous)", scratch_path / "out_old", seconds)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
        seconds = grade(ROOT, folder, scratch_path / "out", args.workers, args.quick)
        lines += report("this tree", scratch_path / "out", seconds)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
