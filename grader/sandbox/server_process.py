"""A sandbox server's process, as the client needs it: its three pipes, its exit status, a way to kill
it with everything it started. Two kinds: one started by bwrap or as a plain subprocess
(`PopenServerProcess`), and one forked by a zygote (grader.sandbox.zygote.ZygoteServerProcess)."""

from __future__ import annotations

import os
import signal
import subprocess
from abc import ABC, abstractmethod
from typing import IO

from grader.sandbox.isolation import Launch


class ServerProcess(ABC):
    """`requests`: the descriptor to write requests to; `responses`: the one to read answers from;
    `stderr`: the server's output (stdout and stderr), drained by the client."""

    requests: int
    responses: int
    stderr: IO[bytes]

    @abstractmethod
    def poll(self) -> int | None:
        """The exit status (minus the signal when a signal ended it), or None while it runs."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> int:
        """The exit status, once it has exited; subprocess.TimeoutExpired after `timeout` seconds."""

    @property
    def lost(self) -> bool:
        """Whether the process ended without an exit status of its own (its zygote stopped): the
        grader's failure, not the submission's."""
        return False

    @abstractmethod
    def kill(self) -> None:
        """Kill the server and everything it started, and wait until they are gone."""

    @abstractmethod
    def close_pipes(self) -> None:
        """Close the requests and responses ends (the stderr end is its reader's)."""


class PopenServerProcess(ServerProcess):
    """A server started as its own session (bwrap, or a plain subprocess): killed with its group."""

    def __init__(self, launched: Launch) -> None:
        self.popen = subprocess.Popen(launched.argv, env=launched.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, start_new_session=True,
                                      umask=0o022)  # folders bwrap creates must be readable after the uid drop
        self.requests = self.popen.stdin.fileno()
        self.responses = self.popen.stdout.fileno()
        self.stderr = self.popen.stderr

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def kill(self) -> None:
        kill_session(self.popen)

    def close_pipes(self) -> None:
        for pipe in (self.popen.stdin, self.popen.stdout):
            pipe.close()


def kill_session(popen: subprocess.Popen) -> None:
    """SIGKILL the process group of `popen` (started with start_new_session=True: bwrap, whose death
    takes its PID namespace with it) and reap it."""
    if popen.poll() is None:
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    popen.wait()
