"""The sandbox server: loads one submission and answers protocol requests until told to stop.

    python -m grader.sandbox.server --submission DIR [--uid U --gid G] --limits JSON --profile JSON

It speaks on its original stdin/stdout (wire frames); before any student code runs it moves
those to private descriptors and points fd 0 at /dev/null and fd 1 at stderr, so whatever the
student prints lands in the captured stderr, never in the protocol. Then it sets the rlimits,
drops root for an unprivileged uid (so the process limit counts), and only then imports the
student's model.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

MB = 1 << 20


def _take_protocol_fds() -> tuple[int, int]:
    requests, responses = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    return requests, responses


def _apply_limits(limits: dict, device: str = "cpu") -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # On the CPU the address space bounds everything a model allocates. CUDA reserves address space
    # far beyond what it uses (unified addressing: the host's and the GPU's memory and more), so
    # under RLIMIT_AS it cannot even count its devices ("cudaGetDeviceCount ... out of memory");
    # there the bound is the private writable memory (RLIMIT_DATA, Linux 4.7+), which those
    # reservations are not.
    memory = resource.RLIMIT_DATA if device == "cuda" else resource.RLIMIT_AS
    resource.setrlimit(memory, (limits["memory_mb"] * MB,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_size_mb"] * MB,) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"] + 5))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"],) * 2)


def _drop_privileges(uid: int | None, gid: int | None) -> None:
    if os.getuid() != 0 or uid is None or gid is None:
        return
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submission", required=True)
    parser.add_argument("--uid", type=int)
    parser.add_argument("--gid", type=int)
    parser.add_argument("--limits", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--inspect", action="store_true", help="grader init: answer inspect requests, load nothing")
    args = parser.parse_args()
    run(args.submission, json.loads(args.limits), json.loads(args.profile), args.uid, args.gid, args.inspect)


def run(submission: str, limits: dict, profile: dict, uid: int | None, gid: int | None, inspect: bool) -> None:
    """Serve one submission on stdin/stdout: the protocol moved to private descriptors, then the
    rlimits, then root dropped for `uid`, and only then the serving code (and, through it, the
    student's) imported. A server forked by the zygote (grader.sandbox.zygote_server) comes here
    with torch and Lightning already imported, and the same order for everything else."""
    requests, responses = _take_protocol_fds()
    _apply_limits(limits, profile.get("device", "cpu"))
    _drop_privileges(uid, gid)

    # Imported only now: torch's import already runs under the limits, as the student's code will.
    from grader.sandbox.serve import serve, serve_inspection

    (serve_inspection if inspect else serve)(submission, profile, requests, responses)


def run_and_exit(serve_once: Callable[[], None]) -> NoReturn:
    """Run `serve_once` and leave at once (`_exit_now`), whatever happens: 0 when it returned, 3 when
    it raised (the client reports a server that died; the trace goes to the captured stderr). Never
    returns: a server forked by the zygote must not go back into the zygote's loop."""
    try:
        serve_once()
    except SystemExit as exit_:
        _exit_now(exit_.code if isinstance(exit_.code, int) else 1)
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        _exit_now(3)
    _exit_now(0)


def _exit_now(code: int) -> NoReturn:
    """Leave without the interpreter's teardown: with torch and Lightning loaded it takes about a
    second per submission, and nothing after the last answer is needed (nor should the student's
    atexit handlers run)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    run_and_exit(main)
