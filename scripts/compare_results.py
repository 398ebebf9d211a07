"""Compare two graded output folders: every student's result.json, ignoring what is expected to
differ between two runs of different code (timings, the tool version, the cache key, which hashes
both), and every array file by name and content. Prints one line per difference; exits 1 if any.

    python scripts/compare_results.py OUT_BEFORE OUT_AFTER [--renamed classviz=class_model]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

IGNORED = {"timings", "tool_version", "cache_key"}


def _json_differences(before: object, after: object, path: str) -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after)):
            if path == "" and key in IGNORED:
                continue
            if key not in before or key not in after:
                out.append(f"{path}/{key}: only in {'after' if key in after else 'before'}")
            else:
                out += _json_differences(before[key], after[key], f"{path}/{key}")
        return out
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [f"{path}: {len(before)} items before, {len(after)} after"]
        return [d for i, (a, b) in enumerate(zip(before, after)) for d in _json_differences(a, b, f"{path}[{i}]")]
    return [] if before == after else [f"{path}: {before!r} before, {after!r} after"]


def _array_differences(before: Path, after: Path, renamed: dict[str, str]) -> list[str]:
    out = []
    names_before = {renamed.get(p.stem, p.stem): p for p in before.glob("*.npz")}
    names_after = {p.stem: p for p in after.glob("*.npz")}
    if set(names_before) != set(names_after):
        out.append(f"{after}: arrays {sorted(names_before)} before, {sorted(names_after)} after")
    for name in sorted(set(names_before) & set(names_after)):
        with np.load(names_before[name]) as a, np.load(names_after[name]) as b:
            if set(a.files) != set(b.files):
                out.append(f"{name}.npz: keys {sorted(a.files)} before, {sorted(b.files)} after")
            for key in sorted(set(a.files) & set(b.files)):
                x, y = a[key], b[key]
                if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                    out.append(f"{after.parent.name}/{name}.npz[{key}] differs")
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--renamed", action="append", default=[], help="OLD=NEW array name")
    args = parser.parse_args()
    renamed = dict(item.split("=", 1) for item in args.renamed)
    differences, compared = [], 0
    for result in sorted(args.before.glob("*/result.json")):
        twin = args.after / result.parent.name / "result.json"
        if not twin.is_file():
            differences.append(f"{twin}: missing")
            continue
        compared += 1
        differences += [f"{result.parent.name}: {d}" for d in
                        _json_differences(json.loads(result.read_text()), json.loads(twin.read_text()), "")]
        differences += _array_differences(result.parent / "arrays", twin.parent / "arrays", renamed)
    for line in differences:
        print(line)
    print(f"{compared} results compared, {len(differences)} differences")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
