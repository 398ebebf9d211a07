"""The grader's side of a zygote (grader.sandbox.zygote_server): one per grading worker, started once,
forking a sandbox server per submission in tens of milliseconds instead of the 3-5 s of a core that
a server started by bwrap spends importing torch and Lightning (issue 20).

Each server still serves one submission, in namespaces and mounts of its own, with its own uid,
rlimits, fresh /tmp and only its own snapshot visible; the zygote itself never holds anything of a
student's. Only as root (bwrap then keeps the capabilities the zygote's children need for their
namespaces and mounts): `zygote_available` says whether this process can have one.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

from grader.profile import HardwareProfile
from grader.sandbox.captured_output import CapturedOutput
from grader.sandbox.isolation import (SNAPSHOT_PREFIX, Isolation, bwrap_works, fresh_uid, launch_zygote,
                                      remove_snapshot)
from grader.sandbox.server_process import ServerProcess, kill_session

SNAPSHOTS_PREFIX = "xai-grader-snapshots-"
REPLY_BYTES = 1 << 16
KILL_SECONDS = 30
"""How long a kill may take (a namespace's processes killed and reaped by its init) before the grader
gives the server up as lost."""


class ZygoteError(Exception):
    """The zygote could not fork a server (it died, refused, or did not answer in time): no
    submission's fault; the caller starts a server by bwrap instead."""


def zygote_available(isolation: Isolation) -> bool:
    """Whether servers for `isolation` can be forked by a zygote here: bwrap, run as root."""
    return isolation == "bwrap" and os.geteuid() == 0 and bwrap_works()


class Zygote:
    """A zygote started by bwrap with `profile`'s environment, and the folder its servers'
    snapshots live in (`snapshots`: bound into the zygote, hidden from each server).

    `spawn` forks a server; `close` stops the zygote (and with it any server it forked that still
    runs) and removes the snapshots folder."""

    def __init__(self, profile: HardwareProfile, startup_seconds: float) -> None:
        self.startup_seconds = startup_seconds
        self.snapshots = Path(tempfile.mkdtemp(prefix=SNAPSHOTS_PREFIX))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            launched = launch_zygote(self.snapshots, profile.model_dump(exclude={"limits"}))
            self.process = subprocess.Popen(launched.argv, env=launched.env, stdin=theirs.fileno(),
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                            start_new_session=True, umask=0o022)
        except BaseException:
            ours.close()
            shutil.rmtree(self.snapshots, ignore_errors=True)
            raise
        finally:
            theirs.close()
        self._control = ours
        self._lock = threading.Lock()
        self.output = CapturedOutput(self.process.stderr)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def spawn(self, snapshot: Path, profile: HardwareProfile) -> ZygoteServerProcess:
        """A server forked on `snapshot` (made by `empty_snapshot(self.snapshots)`), with
        `profile`'s limits and a fresh uid; ZygoteError when the zygote cannot fork one. The first
        call waits for the zygote's own start-up (its imports), up to `startup_seconds`."""
        if Path(snapshot).parent.parent != self.snapshots:
            raise ValueError(f"not a snapshot of this zygote's: {snapshot}")
        uid = fresh_uid()
        header = {"snapshot": Path(snapshot).parent.name, "uid": uid, "gid": uid,
                  "limits": profile.limits.model_dump(), "profile": profile.model_dump(exclude={"limits"})}
        grader_ends, server_ends = _server_pipes()
        try:
            reply = self._ask(header, server_ends)
        except BaseException:
            _close(grader_ends)
            raise
        finally:
            _close(server_ends)
        if not reply.get("ok"):
            _close(grader_ends)
            raise ZygoteError(f"the zygote could not fork a server: {reply.get('message')}")
        return ZygoteServerProcess(*grader_ends)

    def _ask(self, header: dict, fds: list[int]) -> dict:
        with self._lock:
            try:
                self._control.settimeout(self.startup_seconds)
                socket.send_fds(self._control, [json.dumps(header).encode()], fds)
                answer = self._control.recv(REPLY_BYTES)
            except (OSError, TimeoutError) as error:
                raise ZygoteError(f"the zygote did not answer ({error}); its output: "
                                  f"{self.output.text()[-400:]}") from None
        if not answer:
            raise ZygoteError(f"the zygote has stopped; its output: {self.output.text(wait=1.0)[-400:]}")
        return json.loads(answer)

    def close(self) -> None:
        """Stop the zygote and everything it forked, and remove the snapshots folder (with any
        snapshot a server left: each server removes its own when closed)."""
        self._control.close()
        kill_session(self.process)
        self.output.text(wait=2.0)
        for leftover in self.snapshots.glob(f"{SNAPSHOT_PREFIX}*/submission"):
            remove_snapshot(leftover)
        shutil.rmtree(self.snapshots, ignore_errors=True)

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _server_pipes() -> tuple[list[int], list[int]]:
    """The grader's ends (requests to write, responses to read, stderr to read, status to read, kill to
    write) and the server's ends, in grader.sandbox.zygote_server.PIPES's order."""
    requests, responses, stderr, status, kill = (os.pipe() for _ in range(5))
    grader_ends = [requests[1], responses[0], stderr[0], status[0], kill[1]]
    server_ends = [requests[0], responses[1], stderr[1], status[1], kill[0]]
    return grader_ends, server_ends


def _close(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


class ZygoteServerProcess(ServerProcess):
    """A server forked by a zygote. Its init (pid 1 of the server's PID namespace) writes the server's
    exit status to the status pipe; a byte on the kill pipe (or its closing) makes the init kill
    everything in the namespace. The status pipe closing without a status means the init itself was
    killed (its zygote stopped), and a kill not done within KILL_SECONDS (a process stuck in the
    kernel) is given up: both are `lost`, the grader's failure."""

    def __init__(self, requests: int, responses: int, stderr: int, status: int, kill: int) -> None:
        self.requests = requests
        self.responses = responses
        self.stderr = os.fdopen(stderr, "rb", buffering=0)
        self._status = status
        self._kill = kill
        self._code: int | None = None
        self._lost = False

    @property
    def lost(self) -> bool:
        return self._lost

    def poll(self) -> int | None:
        return self._read_status(0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._read_status(timeout)
        if code is None:
            raise subprocess.TimeoutExpired("sandbox server", timeout or 0)
        return code

    def kill(self) -> None:
        if self._code is not None:
            return
        try:
            os.write(self._kill, b"k")
        except OSError:
            pass  # its init is gone already: the status pipe says how
        if self._read_status(KILL_SECONDS) is None:
            self._give_up()

    def close_pipes(self) -> None:
        _close([self.requests, self.responses, self._kill])
        self.requests = self.responses = self._kill = -1  # the numbers may be reused by the next server's

    def _read_status(self, timeout: float | None) -> int | None:
        if self._code is not None:
            return self._code
        ready, _, _ = select.select([self._status], [], [], timeout)
        if not ready:
            return None
        said = os.read(self._status, 64)  # one write of a few bytes by the init: atomic; empty when it died
        _close([self._status])
        self._status = -1
        try:
            self._code = int(said.decode("ascii").strip())
        except ValueError:
            self._give_up()
        return self._code

    def _give_up(self) -> None:
        if self._status >= 0:
            _close([self._status])
            self._status = -1
        self._lost = True
        self._code = -signal.SIGKILL
