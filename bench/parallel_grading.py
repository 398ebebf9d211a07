"""Wall time of grading a class of 8 copies of the VGG example with 1 and with 2 local Dask
workers, side by side in one run (issue 7), through `grader grade` itself, in the sandbox.

    .venv/bin/python bench/parallel_grading.py [--copies 8] [--quick]

Each run starts from an empty output folder (no resume), on the bundled 3,589-face evaluation
set. Prints the wall time of each and the speed-up; the numbers go into bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from example_class import ROOT, copy_examples  # bench/example_class.py, beside this file


def make_class(root: Path, copies: int) -> Path:
    """`copies` copies of submissions/vgg, each under its own student id."""
    return copy_examples(root / "class", copies, ["vgg"])


def grade(folder: Path, out: Path, workers: int, quick: bool) -> float:
    command = [sys.executable, "-m", "grader.cli", "grade", str(folder), "--out", str(out), "--workers", str(workers),
               "--force"] + (["--quick"] if quick else [])
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="a tenth of the explanation work")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = make_class(Path(scratch), args.copies)
        times = {workers: grade(folder, Path(scratch) / f"out{workers}", workers, args.quick) for workers in (1, 2)}
    for workers, seconds in times.items():
        print(f"{args.copies} x VGG, {workers} worker(s): {seconds:7.1f} s "
              f"({seconds / args.copies:5.1f} s a submission)")
    print(f"speed-up with 2 workers: {times[1] / times[2]:.2f}x")


if __name__ == "__main__":
    main()
