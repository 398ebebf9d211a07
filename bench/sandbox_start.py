"""How sandbox servers start on this machine (issue 20): forked by a zygote or started by bubblewrap
with their own imports, and how long a submission waits for one.

    python bench/sandbox_start.py [--profile gpu] [--count 3]

Opens `count` copies of submissions/small_cnn one after the other through one ServerStarter, as a
grading worker does, each taking its server right after the previous was loaded (so each waits for
a whole start-up: the first includes the zygote's own imports, the others a fork, the profile and,
under a CUDA profile, the device's context). Prints, per submission, its `sandbox_start` (the wait)
and whether a zygote forked its server, and the grader's warnings (a zygote that refused to fork
says why). Run by bench/gpu_check.sh before the class; on the CPU it runs as it is.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.profile import get_profile  # noqa: E402
from grader.sandbox.client import SandboxedModel  # noqa: E402
from grader.sandbox.isolation import bwrap_works  # noqa: E402
from grader.sandbox.starter import ServerStarter  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--count", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="  grader warned: %(message)s")
    profile = get_profile(args.profile)
    isolation = "bwrap" if bwrap_works() else "subprocess"
    with tempfile.TemporaryDirectory() as scratch:
        folders = [shutil.copytree(ROOT / "submissions" / "small_cnn", Path(scratch) / f"s{index}")
                   for index in range(args.count)]
        with ServerStarter(profile, isolation, expected=None) as servers:
            print(f"sandbox start ({args.profile} profile, {isolation}; zygote possible: {servers.fork})")
            for index, folder in enumerate(folders):
                started = time.monotonic()
                model = SandboxedModel.open(folder, profile, isolation, server=servers.take())
                opened = time.monotonic() - started
                forked = servers.zygote is not None and servers.fork
                model.close()
                print(f"  submission {index + 1}: waited {model.start_wait:.2f} s for its server "
                      f"({'forked by the zygote' if forked else 'started by ' + isolation}), "
                      f"opened in {opened:.2f} s")


if __name__ == "__main__":
    main()
