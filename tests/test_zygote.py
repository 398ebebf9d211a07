"""Servers forked by a zygote (grader.sandbox.zygote) isolate as servers started by bwrap do: each sees
its own snapshot only, a fresh /tmp, its own PID namespace, a fresh uid without capabilities; killing
one kills all it started; they answer byte for byte as a bwrap'd server; and a zygote that fails
leaves its worker grading with servers started by bwrap."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from grader.protocol import ClassLogit
from grader.sandbox import isolation
from grader.sandbox.client import SandboxedModel
from grader.sandbox.starter import ServerStarter
from grader.sandbox.zygote import Zygote, ZygoteError, ZygoteServerProcess, zygote_available
from grader.submission.errors import SubmissionError
from tests.test_sandbox import PROFILE, submission

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("require_bwrap", "require_root")]

FACES = np.random.default_rng(0).random((3, 48, 48), dtype=np.float32)

# Prints, at import, what the server can see, as one JSON line.
PROBE = """
import json, os
def _seen():
    seen = {"uid": os.getuid(), "pid": os.getpid(), "snapshots": os.listdir("/snapshots"),
            "tmp": sorted(os.listdir("/tmp")), "submission": sorted(os.listdir("/submission")),
            "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
            "capabilities": [l.split()[1] for l in open("/proc/self/status") if l.startswith(("CapEff", "CapPrm"))],
            "mounts": {l.split()[1]: l.split()[3].split(",")[0] for l in open("/proc/self/mounts")}}
    try:
        os.kill(1, 9)
        seen["killed_init"] = True
    except PermissionError:
        seen["killed_init"] = False
    import socket
    with socket.create_server(("127.0.0.1", 0)) as listener, \
            socket.create_connection(listener.getsockname(), timeout=5):
        seen["loopback"] = True
    open("/tmp/left-by-" + os.path.basename(os.path.dirname(os.path.abspath(__file__))), "w").close()
    print("SEEN " + json.dumps(seen), flush=True)
_seen()
"""


@pytest.fixture(scope="session")
def require_root() -> None:
    if not zygote_available("bwrap"):
        pytest.skip("the zygote forks servers only as root (bwrap then keeps the capabilities its children need)")


@pytest.fixture(scope="module")
def servers():
    with ServerStarter(PROFILE, "bwrap") as started:
        yield started


def opened(folder: Path, servers: ServerStarter) -> SandboxedModel:
    model = SandboxedModel.open(folder, PROFILE, "bwrap", server=servers.take())
    assert isinstance(model.server.process, ZygoteServerProcess)
    return model


def seen_by(folder: Path, servers: ServerStarter) -> dict:
    model = opened(folder, servers)
    model.close()
    [line] = [line for line in model.output.splitlines() if line.startswith("SEEN ")]
    return json.loads(line[len("SEEN "):])


def test_a_forked_server_sees_its_own_snapshot_only_and_a_tmp_no_other_server_wrote(tmp_path, servers):
    first = seen_by(submission(tmp_path, "first", prelude=PROBE), servers)
    second = seen_by(submission(tmp_path, "second", prelude=PROBE), servers)
    assert first["snapshots"] == second["snapshots"] == []
    assert second["submission"] == ["model.pth", "model.py", "submission.yaml"]
    # The first left a file in its /tmp; the second does not see it. (Where the Python environment is
    # under /tmp, as in CI's clean clone, both see the folders it is bound in.)
    assert first["tmp"] == second["tmp"] and not any(name.startswith("left-by-") for name in second["tmp"])
    assert "/snapshots" not in second["mounts"]  # unmounted, not merely covered


def test_a_forked_server_sees_proc_sys_and_its_submission_read_only_as_under_bwrap(tmp_path, servers):
    mounts = seen_by(submission(tmp_path, "first", prelude=PROBE), servers)["mounts"]
    assert mounts["/proc/sys"] == mounts["/submission"] == "ro" and mounts["/tmp"] == "rw"


def test_a_forked_server_talks_to_itself_over_loopback_as_under_bwrap(tmp_path, servers):
    assert seen_by(submission(tmp_path, "first", prelude=PROBE), servers)["loopback"] is True


ORPHANS = """
import subprocess, time
def _orphans():  # each shell leaves its backgrounded `true` to the init (posix_spawn: no fork of this process)
    for _ in range(40):
        subprocess.run(["sh", "-c", "true &"], check=True)
_orphans()
time.sleep(2.5)
_orphans()
print("ORPHANS REAPED", flush=True)
"""


def test_a_forked_servers_orphans_are_reaped_and_do_not_use_up_its_process_limit(tmp_path, servers):
    # 80 orphans in two bursts, against a limit of 64 processes: the init reaps them between bursts.
    model = opened(submission(tmp_path, "orphans", prelude=ORPHANS), servers)
    model.close()
    assert "ORPHANS REAPED" in model.output


def test_what_bwrap_binds_below_tmp_stays_readable_and_read_only_in_a_forked_server(tmp_path, monkeypatch):
    # A Python environment under /tmp (CI's clean clone) and one inside it, with a space in its name.
    outer = tmp_path / "env with space"
    inner = outer / "inner"
    inner.mkdir(parents=True)
    (outer / "a.txt").write_text("outer")
    (inner / "b.txt").write_text("inner")
    original = isolation._python_paths
    monkeypatch.setattr(isolation, "_python_paths", lambda: [*original(), outer, inner])
    prelude = f"""
print("READ", open({str(outer / 'a.txt')!r}).read(), open({str(inner / 'b.txt')!r}).read(), flush=True)
try:
    open({str(inner / 'c.txt')!r}, "w")
except OSError as error:
    print("WRITE REFUSED", error.errno, flush=True)
"""
    with ServerStarter(PROFILE, "bwrap") as started:
        model = opened(submission(tmp_path / "submissions", "reads", prelude=prelude), started)
        model.close()
    assert "READ outer inner" in model.output and "WRITE REFUSED 30" in model.output  # EROFS


def test_a_zygote_refuses_a_snapshot_that_is_not_one_and_says_why(tmp_path):
    with Zygote(PROFILE, startup_seconds=300) as zygote:
        folder = zygote.snapshots / "not a snapshot" / "submission"
        folder.mkdir(parents=True)
        with pytest.raises(ZygoteError, match="not a snapshot's name"):
            zygote.spawn(folder, PROFILE)
        assert zygote.alive


def test_a_forked_server_imports_what_the_zygote_had_not_imported(tmp_path, servers):
    # torch.load imports torch.utils.serialization on first use. With the Python environment under
    # /tmp (CI's clean clone), the server's fresh /tmp once hid it: every weights file failed to load.
    prelude = "import importlib\nimportlib.import_module('torch.utils.serialization')\n"
    opened(submission(tmp_path, "lazy", prelude=prelude), servers).close()


def test_a_forked_server_runs_as_a_fresh_uid_without_capabilities_in_a_pid_namespace_of_its_own(tmp_path, servers):
    first = seen_by(submission(tmp_path, "first", prelude=PROBE), servers)
    second = seen_by(submission(tmp_path, "second", prelude=PROBE), servers)
    assert first["uid"] >= 200_000 and second["uid"] >= 200_000 and first["uid"] != second["uid"]
    assert first["capabilities"] == ["0000000000000000", "0000000000000000"]
    assert first["pid"] == 2 and first["pids"] == [1, 2]  # its init and itself: no zygote, no other student
    assert first["killed_init"] is False


def test_closing_a_forked_server_kills_what_its_code_started(tmp_path, servers):
    marker = f"{os.getpid()}{np.random.default_rng().integers(10**9)}"
    prelude = f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
    model = opened(submission(tmp_path, "spawns", prelude=prelude), servers)
    assert _processes_running(f"sleep\0{marker}")
    model.close()
    assert not _processes_running(f"sleep\0{marker}")


def test_a_forked_server_answers_byte_for_byte_as_a_server_started_by_bwrap(tmp_path, servers):
    folder = submission(tmp_path, "honest")
    answers = []
    for model in (opened(folder, servers), SandboxedModel.open(folder, PROFILE, "bwrap")):
        try:
            values, gradient = model.input_gradient(FACES, ClassLogit(np.arange(3)))
            answers.append((model.logits(FACES).tobytes(), values.tobytes(), gradient.tobytes()))
        finally:
            model.close()
    assert answers[0] == answers[1]


def test_a_segfault_in_a_forked_server_is_reported_with_its_signal(tmp_path, servers):
    folder = submission(tmp_path, "segfaults", prelude="import ctypes\nctypes.string_at(0)\n")
    with pytest.raises(SubmissionError) as raised:
        opened(folder, servers)
    assert raised.value.stage == "crash" and "segmentation fault (SIGSEGV" in raised.value.message


def test_a_forked_server_that_spins_past_its_cpu_time_is_stopped_by_sigxcpu(tmp_path):
    limits = PROFILE.limits.model_copy(update={"cpu_seconds": 2})
    profile = PROFILE.model_copy(update={"limits": limits})
    with ServerStarter(profile, "bwrap") as started:
        with pytest.raises(SubmissionError) as raised:
            SandboxedModel.open(submission(tmp_path, "spins", prelude="while True:\n    pass\n"), profile, "bwrap",
                                server=started.take())
    assert raised.value.stage == "crash" and "used up its 2 s of CPU time (SIGXCPU)" in raised.value.message


def test_a_zygote_that_dies_leaves_its_worker_grading_with_servers_started_by_bwrap(tmp_path):
    folder = submission(tmp_path, "honest")
    with ServerStarter(PROFILE, "bwrap") as started:
        opened(folder, started).close()
        started.zygote.process.kill()
        started.zygote.process.wait()
        model = SandboxedModel.open(folder, PROFILE, "bwrap", server=started.take())
        try:
            assert model.logits(FACES).shape == (3, 7)
            assert not isinstance(model.server.process, ZygoteServerProcess) and started.zygote is None
        finally:
            model.close()


def test_a_zygote_that_refuses_the_next_server_leaves_the_one_grading_alive(tmp_path, monkeypatch):
    with ServerStarter(PROFILE, "bwrap") as started:
        model = opened(submission(tmp_path, "honest"), started)
        monkeypatch.setattr(Zygote, "spawn", _refuse)
        started.start_next()  # falls back to bwrap for the next server
        try:
            assert model.logits(FACES).shape == (3, 7)
            assert not started.fork and not isinstance(started.waiting.process, ZygoteServerProcess)
        finally:
            model.close()


def _refuse(*_: object, **__: object) -> None:
    raise ZygoteError("the zygote could not fork a server: refused for the test")


def test_a_zygote_that_stops_under_a_submission_fails_it_as_the_graders_fault(tmp_path):
    with ServerStarter(PROFILE, "bwrap") as started:
        model = opened(submission(tmp_path, "honest"), started)
        started.zygote.process.kill()  # bwrap's init goes, and every namespace under it
        try:
            with pytest.raises(SubmissionError) as raised:
                model.logits(FACES)
        finally:
            model.close()
    assert raised.value.stage == "grader" and "not the submission's fault" in raised.value.message


def test_closing_the_starter_stops_its_zygote_and_removes_the_snapshots_folder(tmp_path):
    started = ServerStarter(PROFILE, "bwrap")
    opened(submission(tmp_path, "honest"), started).close()
    started.start_next()
    zygote = started.zygote
    started.close()
    assert zygote.process.poll() is not None and not zygote.snapshots.exists()


def _processes_running(command_line: str) -> bool:
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().rstrip(b"\0") == command_line.encode():
                return True
        except OSError:
            continue
    return False
