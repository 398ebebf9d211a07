"""How far the fast profile (bf16 autocast) moves the scores from the cpu profile's, and what it
saves: grades the example submissions under both, side by side in one run, through `grader grade`
(sandboxed, one worker, so the wall times compare), and prints each student's total, every
criterion whose points differ, and the largest change of a measured value.

    .venv/bin/python bench/fast_profile.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def grade(out: Path, profile: str, quick: bool) -> float:
    command = [sys.executable, "-m", "grader.cli", "grade", "submissions", "--out", str(out), "--profile", profile,
               "--workers", "1", "--force"] + (["--quick"] if quick else [])
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def criteria(out: Path) -> dict[str, dict[str, dict]]:
    found = {}
    for path in sorted(out.glob("*/result.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        found[result["student_id"]] = {"total": result["score"], **{
            c["id"]: c for q in result["questions"] for c in q["criteria"]}}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        seconds = {p: grade(Path(scratch) / p, p, args.quick) for p in ("cpu", "fast")}
        cpu, fast = criteria(Path(scratch) / "cpu"), criteria(Path(scratch) / "fast")
    print(f"wall time, 6 examples, 1 worker: cpu {seconds['cpu']:.1f} s, fast {seconds['fast']:.1f} s "
          f"({seconds['cpu'] / seconds['fast']:.2f}x)")
    for student, cpu_criteria in cpu.items():
        fast_criteria = fast[student]
        print(f"{student}: total cpu {cpu_criteria['total']:g}, fast {fast_criteria['total']:g}")
        for name, item in cpu_criteria.items():
            if name == "total" or item["value"] is None:
                continue
            other = fast_criteria[name]
            change = abs((other["value"] or 0) - item["value"])
            moved = " <- points differ" if other["score"] != item["score"] else ""
            if moved or change > 0.01 * max(1.0, abs(item["value"])):
                print(f"    {name}: value {item['value']:.4g} -> {other['value']:.4g}, points {item['score']:g} -> "
                      f"{other['score']:g}{moved}")


if __name__ == "__main__":
    main()
