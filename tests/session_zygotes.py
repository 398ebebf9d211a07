"""One sandbox zygote per profile for a whole pytest worker, shared by the tests that grade.

`grader grade` forks a worker's sandbox servers from one zygote that imported torch and Lightning
once (grader.sandbox.starter), and `grader check` starts one server by bwrap; either way each CLI
run in a test imports them anew, 5-6 s of a core, and the suite runs about fifty such. The suite is
CPU-bound on two cores, so here every server a test starts by bwrap (isolation "bwrap", as root,
where grader.sandbox.zygote.zygote_available holds) is forked instead from a zygote kept for the
session, one per profile (limits aside: each server gets its own) and start-up time.

What a server runs and answers is the same either way (tests/test_zygote.py compares the two byte
for byte); how servers start is the subject of the files in STARTS_ITS_OWN_SERVERS, which keep the
production path: their tests start their own servers and zygotes, fresh. A session zygote that has
died is replaced by the next test that needs one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

STARTS_ITS_OWN_SERVERS = frozenset({
    "test_zygote.py",           # fresh bwrap against forked servers; a zygote that dies
    "test_server_starter.py",   # servers started ahead, and what a starter does when one fails
    "test_fingerprint.py",      # start-up and request timeouts of the SHORT profile
    "test_sandbox.py",          # the sandbox's limits, in a batch of their own
    "test_hostile_inputs.py",   # hostile submissions, in a batch of their own
})


class SessionZygotes:
    """The zygotes kept for the session, by profile (limits aside) and start-up seconds."""

    def __init__(self) -> None:
        self._zygotes: dict[tuple[str, float], object] = {}
        self.sharing = False  # set before each test's fixtures by tests/conftest.py's pytest_runtest_setup

    def get(self, profile, startup_seconds: float) -> KeptZygote:
        from grader.sandbox.zygote import Zygote

        key = (profile.model_dump_json(exclude={"limits"}), startup_seconds)
        zygote = self._zygotes.get(key)
        if zygote is None or not zygote.alive:
            if zygote is not None:
                zygote.close()
            zygote = self._zygotes[key] = Zygote(profile, startup_seconds)
        return KeptZygote(zygote)

    def close(self) -> None:
        for zygote in self._zygotes.values():
            zygote.close()
        self._zygotes.clear()


class KeptZygote:
    """A session zygote as a ServerStarter holds it: its `close` leaves the zygote for the next test."""

    def __init__(self, zygote) -> None:
        self._zygote = zygote

    def __getattr__(self, name: str):
        return getattr(self._zygote, name)

    def close(self) -> None:
        pass


ZYGOTES = SessionZygotes()


@pytest.fixture(scope="session", autouse=True)
def _servers_forked_from_session_zygotes() -> Iterator[None]:
    from grader.sandbox import client, starter
    from grader.sandbox.zygote import zygote_available

    if not zygote_available("bwrap"):
        yield  # no zygotes here (not root, or no bwrap): every server starts by bwrap, as in production
        return
    make_zygote = starter.Zygote
    start_server = client.SandboxServer.__init__

    def zygote_for_a_starter(profile, startup_seconds):
        return ZYGOTES.get(profile, startup_seconds) if ZYGOTES.sharing else make_zygote(profile, startup_seconds)

    def server(self, profile, isolation, server_args=(), zygote=None) -> None:
        if ZYGOTES.sharing and zygote is None and isolation == "bwrap" and not server_args:
            zygote = ZYGOTES.get(profile, client.STARTUP_SECONDS)
        start_server(self, profile, isolation, server_args, zygote)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(starter, "Zygote", zygote_for_a_starter)
        patch.setattr(client.SandboxServer, "__init__", server)
        try:
            yield
        finally:
            ZYGOTES.close()
