"""Sandbox servers started ahead of need (issue 20).

Starting a server (bubblewrap, Python, importing torch and Lightning) takes about 3 s of one core,
before any student code runs. A worker grading a batch takes its next server from here: one that
was started while the previous submission was graded, and is waiting with everything imported for
its snapshot to be filled (grader.sandbox.client.SandboxServer.load). Nothing of a submission is
in a server before it is taken, and a server serves one submission only, as before.

Where it can (root, bwrap: grader.sandbox.zygote.zygote_available) the starter forks its servers
from a zygote that imported torch and Lightning once, so each server costs tens of milliseconds
instead of seconds; a zygote that fails is retired (kept until `close`, so that the server it forked
that is grading runs on) and the starter goes on with servers started by bwrap, which isolate the
same way.
"""

from __future__ import annotations

import logging
import time

from grader.profile import HardwareProfile
from grader.sandbox import client
from grader.sandbox.client import SandboxServer
from grader.sandbox.isolation import Isolation
from grader.sandbox.zygote import Zygote, ZygoteError, zygote_available

log = logging.getLogger(__name__)


class ServerStarter:
    """Hands out sandbox servers (`take`), and starts the next one ahead when told (`start_next`)
    while fewer than `expected` have been taken (None: always, for a worker that does not know how
    many it will grade).

    A server that fails to start fails the submission that takes it, with the words any server
    failure gets (grader.sandbox.client). `close` stops the one still waiting."""

    def __init__(self, profile: HardwareProfile, isolation: Isolation, expected: int | None = None) -> None:
        self.profile = profile
        self.isolation = isolation
        self.expected = expected
        self.fork = zygote_available(isolation)  # False once a zygote has failed
        self._taken = 0
        self._waiting: SandboxServer | None = None
        self._zygote: Zygote | None = None
        self._retired: Zygote | None = None

    @property
    def waiting(self) -> SandboxServer | None:
        """The server started ahead and waiting for the next `take`, if any."""
        return self._waiting

    def take(self) -> SandboxServer:
        """A started server for the next submission: the one waiting, or a new one."""
        server, self._waiting = self._waiting, None
        if server is not None and server.process.poll() is not None:
            server.close()  # it died waiting: start afresh rather than fail a student for it
            server = None
        self._taken += 1
        if server is None:
            started = time.monotonic()
            server = self._start()
            server.start_wait += time.monotonic() - started  # a zygote's first start is its imports
        return server

    def start_next(self) -> None:
        """Start the next server, unless one waits or all expected have been taken. Called once the
        taken server has loaded, so that the two imports do not slow each other's load."""
        if self._waiting is not None or (self.expected is not None and self._taken >= self.expected):
            return
        try:
            self._waiting = self._start()
        except Exception:  # noqa: BLE001  (the next take starts one itself and meets the error there)
            self._waiting = None

    def _start(self) -> SandboxServer:
        """A server forked by the zygote (started on first need), or started by bwrap when forking
        is off or the zygote has failed."""
        if self.fork:
            try:
                if self._zygote is None:
                    self._zygote = Zygote(self.profile, client.STARTUP_SECONDS)
                return SandboxServer(self.profile, self.isolation, zygote=self._zygote)
            except (ZygoteError, OSError) as error:
                log.warning("xai-grader: the sandbox zygote failed (%s); starting each server by bwrap instead",
                            error)
                self.fork = False
                # Kept until `close`: closing it now would kill the server it forked that is grading.
                self._retired, self._zygote = self._zygote, None
        return SandboxServer(self.profile, self.isolation)

    @property
    def zygote(self) -> Zygote | None:
        """The zygote forking this starter's servers, once the first is started (None: bwrap starts each)."""
        return self._zygote

    def close(self) -> None:
        if self._waiting is not None:
            self._waiting.close()
            self._waiting = None
        for zygote in (self._zygote, self._retired):
            if zygote is not None:
                zygote.close()
        self._zygote = self._retired = None

    def __enter__(self) -> ServerStarter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
