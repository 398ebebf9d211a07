"""What encoding and decoding a small request and its answer costs (issue 20), this tree's
grader/sandbox/wire.py against a previous commit's, interleaved in one process.

    .venv/bin/python bench/wire_headers.py [--against 127c3a9] [--rounds 7]

The request is the commonest of a grading (the class model visualization's and the filters'
gradient requests: 7 faces of 48x48 and their targets), the answer its values and gradients; each
round encodes and decodes both 2000 times with each version, the two taking turns. The frames must
be the same bytes: the script says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from example_class import ROOT  # bench/, beside this file
from grader.sandbox import wire

FACES = np.random.default_rng(0).random((7, 48, 48), dtype=np.float32)
TARGETS = np.arange(7, dtype=np.int64)


def wire_of(revision: str, scratch: Path) -> ModuleType:
    """grader/sandbox/wire.py as it was at `revision`, imported as a module of its own."""
    source = subprocess.run(["git", "show", f"{revision}:grader/sandbox/wire.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = scratch / "wire_before.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("wire_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def round_trip(module: ModuleType) -> None:
    """A gradient request and its answer, each encoded and decoded as the two ends do."""
    request = module.Message({"op": "input_gradient", "handle": 0, "objective": "class_logit"},
                             {"pixels": FACES, "targets": TARGETS})
    module.decode(memoryview(module.encode(request))[8:])
    answer = module.Message({"ok": True}, {"values": np.zeros(7, np.float32), "gradient": FACES})
    module.decode(memoryview(module.encode(answer))[8:])


def milliseconds(module: ModuleType, repeats: int = 2000) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        round_trip(module)
    return (time.perf_counter() - started) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="127c3a9", help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wire-headers-") as scratch:
        before = wire_of(args.against, Path(scratch))
    message = {"op": "input_gradient"}, {"pixels": FACES, "targets": TARGETS}
    same = before.encode(before.Message(*message)) == wire.encode(wire.Message(*message))
    times = [(milliseconds(before), milliseconds(wire)) for _ in range(args.rounds)]
    old, new = (statistics.median(column) for column in zip(*times))
    print(f"a gradient request of 7 faces and its answer, encoded and decoded (ms, median of {args.rounds} "
          f"rounds of 2000, interleaved; Python {sys.version.split()[0]}, numpy {np.__version__}):")
    print(f"  {args.against} (previous) {old:.3f}   this tree {new:.3f}   ({old / new:.1f}x)")
    print(f"  the same bytes on the wire: {same}")


if __name__ == "__main__":
    main()
