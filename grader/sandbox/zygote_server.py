"""The zygote: a sandbox that has imported torch and Lightning once, and forks a server per submission.

    python -m grader.sandbox.zygote_server        (fd 0: its control socket, AF_UNIX SOCK_SEQPACKET)

Starting a server costs 3-5 s of a core, nearly all of it importing torch and Lightning (issue 20).
A grading worker starts one zygote, under bubblewrap exactly as a server is started
(grader.sandbox.isolation.launch_zygote), but with the whole snapshots folder at /snapshots instead
of one submission at /submission. It runs as root inside (bwrap as root keeps its capabilities),
imports the serving code, never runs a tensor op, never initialises CUDA and never reads anything
of a student's. For each `spawn` request from the grader (a JSON header, and five pipe ends passed
with SCM_RIGHTS: the server's requests, responses and stderr, a status pipe and a kill pipe) it
forks, and the child makes the isolation a fresh bwrap gives:

- `_detach`: new mount, PID, network, IPC, UTS (and cgroup) namespaces, then one more fork, so that
  the server's init (`_init`) is pid 1 of a PID namespace of its own and dies with everything
  started under it;
- `_init` (pid 1, still root): a fresh /proc for that namespace, its own /dev/pts, the loopback
  interface up, a fresh tmpfs on /tmp (nothing passes between two students of one worker), the
  submission's snapshot bound read-only at /submission, /proc/sys and the like read-only as
  bwrap's --proc leaves them, and the snapshots folder unmounted, so no other snapshot is in its
  mount tree; then it forks the server (`grader.sandbox.server.run`: the rlimits, a fresh uid, the
  student's code) and watches it: when
  the server exits, or the grader writes to (or closes) the kill pipe, it kills everything left in
  the namespace, reaps it, and writes the server's exit status (Popen's convention: minus the
  signal) to the status pipe, reaping what the server orphans meanwhile. The server offers itself
  to the OOM killer first (oom_score_adj 1000).

The zygote answers each spawn once the init has its namespaces and mounts and has forked the
server ({"ok": true}), or with what failed; nothing of the zygote (its control socket, other
students' pipes) stays open in the children. Before every fork it checks that it runs a single
thread and has not initialised CUDA (neither survives a fork); when it refuses, the grader falls
back to servers started by bwrap (grader.sandbox.starter).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import socket
import stat
import struct
import sys
import traceback
from typing import NoReturn

from grader.sandbox import linux
from grader.sandbox.isolation import SANDBOX_SNAPSHOTS as SNAPSHOTS
from grader.sandbox.isolation import SANDBOX_SUBMISSION as SUBMISSION
from grader.sandbox.server import run, run_and_exit
SNAPSHOT_NAME = re.compile(r"xai-grader-submission-[A-Za-z0-9_]+")
PIPES = ("requests", "responses", "stderr", "status", "kill")
SETUP_FD, STATUS_FD, KILL_FD = 3, 4, 5  # the init's descriptors above the server's 0-2 (`_bring_down`)
NAMESPACES = linux.CLONE_NEWNS | linux.CLONE_NEWPID | linux.CLONE_NEWNET | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS
PROC_READ_ONLY = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/driver/nvidia")
REAP_SECONDS = 1.0
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
MESSAGE_BYTES = 1 << 16
ERROR_BYTES = 2000


def main() -> None:
    control = socket.socket(fileno=0)
    # Everything a server needs before its student's code, imported once here: torch, Lightning,
    # the loaders. None of it starts a thread (checked before each fork).
    import grader.sandbox.serve  # noqa: F401

    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, MESSAGE_BYTES, len(PIPES))
        except OSError:
            return
        if not message:
            return  # the grader closed the socket: its run is over
        reply = spawn(json.loads(message), fds)
        try:
            control.send(json.dumps(reply).encode())
        except OSError:
            return


def spawn(request: dict, fds: list[int]) -> dict:
    """Fork a server for `request` on the pipe ends `fds` (closed here whatever happens); the
    reply to send the grader."""
    setup_read = setup_write = -1
    try:
        if len(fds) != len(PIPES):
            return _refused(f"{len(fds)} pipe ends passed, not {len(PIPES)}")
        if not SNAPSHOT_NAME.fullmatch(str(request.get("snapshot"))):
            return _refused(f"not a snapshot's name: {request.get('snapshot')!r}")
        unsafe = _unsafe_to_fork()
        if unsafe:
            return _refused(unsafe)
        setup_read, setup_write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child == 0:
            os.close(setup_read)
            _detach(request, dict(zip(PIPES, fds)), setup_write)
        try:
            os.close(setup_write)
            setup_write = -1
            said = _read_all(setup_read)
        finally:
            os.waitpid(child, 0)  # it exits as soon as the init is forked
        return {"ok": True} if said == b"ok" else _refused(said.decode("utf-8", "replace") or "the child died")
    except OSError as error:
        return _refused(str(error))
    finally:
        for fd in (*fds, setup_read, setup_write):
            if fd >= 0:
                os.close(fd)


def _unsafe_to_fork() -> str | None:
    """Why forking this process now would be unsafe, or None: a second thread (its locks would be
    copied held), or CUDA initialised (a CUDA context does not survive a fork)."""
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        return f"the zygote runs {threads} threads, and a threaded process is not safe to fork"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "CUDA was initialised in the zygote, and a CUDA context does not survive a fork"
    return None


def _refused(why: str) -> dict:
    return {"ok": False, "message": why[:ERROR_BYTES]}


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, ERROR_BYTES):
        chunks.append(chunk)
    return b"".join(chunks)[:ERROR_BYTES]


def _detach(request: dict, pipes: dict[str, int], setup: int) -> NoReturn:
    """The zygote's child: new namespaces, then the init forked into them; it leaves at once (the
    init is reparented to bwrap's, which reaps it)."""
    try:
        os.close(0)  # the zygote's control socket: nothing below the zygote may speak to it
        linux.unshare(NAMESPACES)
        try:
            linux.unshare(linux.CLONE_NEWCGROUP)
        except OSError:
            pass  # an older kernel: bwrap's --unshare-cgroup-try does without it too
        if os.fork() == 0:
            _init(request, pipes, setup)
    except BaseException as error:  # noqa: BLE001
        _say(setup, f"{type(error).__name__}: {error}")
    os._exit(0)


def _init(request: dict, pipes: dict[str, int], setup: int) -> NoReturn:
    """Pid 1 of the server's namespace: mounts, the server forked, then `_watch`."""
    try:
        _bring_down(pipes, setup)
        _mount_view(str(request["snapshot"]))
        server = os.fork()
        if server == 0:
            _serve(request)
        watched = os.pidfd_open(server)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # the server's pipes are the server's alone: their ends close when it dies
            os.dup2(null, fd)
        os.close(null)
        _say(SETUP_FD, "ok")
    except BaseException as error:  # noqa: BLE001
        _say(SETUP_FD, f"{type(error).__name__}: {error}")
        os._exit(1)
    code = _watch(server, watched, kill=KILL_FD)
    try:
        os.write(STATUS_FD, f"{code}\n".encode())
    except OSError:
        pass
    os._exit(0)


def _bring_down(pipes: dict[str, int], setup: int) -> None:
    """The init's descriptors, and only those: 0-2 the server's requests, responses and stderr, then
    SETUP_FD, STATUS_FD and KILL_FD."""
    order = [pipes["requests"], pipes["responses"], pipes["stderr"], setup, pipes["status"], pipes["kill"]]
    fresh = [fcntl.fcntl(fd, fcntl.F_DUPFD, len(order)) for fd in order]  # above every target: no dup2 below
    for target, fd in enumerate(fresh):
        os.dup2(fd, target)
    os.closerange(len(order), os.sysconf("SC_OPEN_MAX"))


def _mount_view(snapshot: str) -> None:
    """What a server sees, as bwrap builds it for one, in the namespaces `_detach` made."""
    os.setsid()
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)  # nothing below propagates back
    linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    for entry in PROC_READ_ONLY:  # as bwrap's --proc covers them
        if os.path.exists(entry):
            _bind_read_only(entry, entry, linux.MS_NOEXEC)
    linux.mount("devpts", "/dev/pts", "devpts", linux.MS_NOSUID | linux.MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=620")  # its own ptys, as bwrap's --dev gives each sandbox
    _fresh_tmp()
    _loopback_up()
    _bind_read_only(f"{SNAPSHOTS}/{snapshot}/submission", SUBMISSION)
    linux.umount2(SNAPSHOTS, linux.MNT_DETACH)  # the other snapshots leave this server's mount tree
    os.chdir("/tmp")


def _loopback_up() -> None:
    """Bring up `lo` in the new network namespace, as bwrap's --unshare-net does: code that talks to
    itself over 127.0.0.1 works, and nothing leaves the namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(probe, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _fresh_tmp() -> None:
    """A fresh tmpfs on /tmp, with what bwrap bound below /tmp bound there again: the Python
    environment lives under /tmp on some machines (a CI's clean clone), and modules torch imports
    lazily must stay importable. Each is held by an O_PATH descriptor while /tmp is replaced, then
    bound from it read-only, as bwrap bound it."""
    held = [(path, os.open(path, os.O_PATH | os.O_CLOEXEC)) for path in _mount_points_below("/tmp")]
    linux.mount("tmpfs", "/tmp", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=1777")
    for path, fd in held:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.makedirs(path, mode=0o755, exist_ok=True)
        else:  # a file bound on its own: its mount point is a file
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        _bind_read_only(f"/proc/self/fd/{fd}", path)
        os.close(fd)


def _mount_points_below(folder: str) -> list[str]:
    """The mount points strictly below `folder`, outermost first (from /proc/self/mountinfo, whose
    fifth field is the mount point with space, tab, newline and backslash written in octal)."""
    points = []
    with open("/proc/self/mountinfo", "rb") as mountinfo:
        for line in mountinfo:
            point = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), line.split()[4])
            if point.startswith(folder.encode() + b"/"):
                points.append(os.fsdecode(point))
    return sorted(dict.fromkeys(points), key=lambda point: point.count("/"))


def _bind_read_only(source: str, target: str, flags: int = 0) -> None:
    """Bind `source` at `target`, read-only, no set-uid and no devices (as bwrap's --ro-bind), and
    `flags`."""
    linux.mount(source, target, None, linux.MS_BIND)
    linux.mount(None, target, None,
                linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV | flags)


def _serve(request: dict) -> NoReturn:
    """The server: the three pipes only, then as `python -m grader.sandbox.server` would."""
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    _volunteer_for_the_oom_killer()
    run_and_exit(lambda: run(SUBMISSION, request["limits"], request["profile"], int(request["uid"]),
                             int(request["gid"]), inspect=False))


def _watch(server: int, watched: int, kill: int) -> int:
    """Wait for the server to exit (`watched`: its pidfd) or the kill pipe to speak (or close),
    reaping meanwhile what the server's code orphaned (as bwrap's pid 1 does: zombies would count
    against its process limit); then kill all that is left in this namespace (kill(-1) from its
    pid 1 reaches every other process in it, again before each reap, for anything forked
    meanwhile), reap it all, and return the server's exit status as Popen gives it."""
    code = None
    while code is None:
        ready, _, _ = select.select([watched, kill], [], [], REAP_SECONDS)
        if kill in ready:
            break
        code = _reap_orphans(server)
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == server:
            code = os.waitstatus_to_exitcode(status)
    return code if code is not None else -signal.SIGKILL


def _reap_orphans(server: int) -> int | None:
    """Reap every exited child without waiting; the server's exit status if it was one of them."""
    code = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return code
        if pid == 0:
            return code
        if pid == server:
            code = os.waitstatus_to_exitcode(status)


def _volunteer_for_the_oom_killer() -> None:
    """If memory runs out, the kernel's OOM killer should take the server (and what it forks), not
    its init (whose death would make the server's failure the grader's) nor the zygote (and with it
    every server of the worker)."""
    try:
        with open("/proc/self/oom_score_adj", "w") as score:
            score.write("1000")
    except OSError:
        pass


def _say(fd: int, text: str) -> None:
    try:
        os.write(fd, text.encode("utf-8", "replace")[:ERROR_BYTES])
        os.close(fd)
    except OSError:
        pass


if __name__ == "__main__":
    try:
        main()
    except BaseException:  # noqa: BLE001  (the grader reads the trace from the zygote's stderr)
        traceback.print_exc()
        sys.exit(1)
