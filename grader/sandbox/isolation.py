"""How a sandbox server is started: bubblewrap where it works, a plain subprocess where allowed.

bwrap gives the server new user-visible namespaces (no network: a fresh network namespace
has only a downed loopback; its own PID namespace; its own mounts), read-only binds of the
Python environment, the grader package and a snapshot of the submission folder, a private /tmp,
an environment reduced to an allow-list, and it dies with the grader. The data, the labels,
the other submissions and the output folder are simply not in its file system. The server then
sets the rlimits and drops root for a fresh unprivileged uid, so the process limit counts.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import grader
from grader.submission.tree import DEFAULT_BOUNDS, Manifest, TreeBounds, scan_tree
from grader.submission.tree_copy import copy_into

Isolation = Literal["bwrap", "subprocess"]

SANDBOX_SUBMISSION = "/submission"
SANDBOX_SNAPSHOTS = "/snapshots"  # a zygote's: every snapshot of its worker, hidden from each server
SANDBOX_PACKAGE_ROOT = "/opt/xai-grader"
ENV_ALLOW_LIST = ("LANG", "LC_ALL", "TZ")
CUDA_ENV_ALLOW_LIST = ("LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES")
"""The host's own variables a gpu-profile server needs: where the NVIDIA driver's libraries are
(containers often name /usr/local/nvidia/lib64 only here, not in ld.so.cache) and which GPU the TA
gave this grader. Set by whoever runs the grader, never by a submission."""
SNAPSHOT_PREFIX = "xai-grader-submission-"


@functools.cache
def bwrap_executable() -> str | None:
    """bwrap's full path, found on the grader's own PATH (None when it has none): it is started with
    the servers' PATH (/usr/bin:/bin), which need not hold it (a bwrap under /usr/local or a kit's
    folder)."""
    return shutil.which("bwrap")


@functools.cache
def bwrap_works() -> bool:
    """Whether bubblewrap is installed and can create namespaces here (containers may forbid it)."""
    executable = bwrap_executable()
    if executable is None:
        return False
    probe = subprocess.run([executable, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


@dataclass(frozen=True)
class Launch:
    """A server's command line and environment (the snapshot it sees is its caller's to remove)."""

    argv: list[str]
    env: dict[str, str]


def snapshot_submission(folder: Path, bounds: TreeBounds = DEFAULT_BOUNDS, exclude: Iterable[Path] = ()) -> Path:
    """A private, world-readable, read-only copy of the submission: the server reads what was
    handed in at this moment, and an unprivileged uid can read it (`empty_snapshot`, then
    `fill_snapshot`; see the latter for `bounds`, `exclude` and what is refused)."""
    manifest = scan_tree(folder, bounds, exclude)  # refused before anything is written
    snapshot = empty_snapshot()
    try:
        _copy_read_only(manifest, snapshot)
    except BaseException:
        remove_snapshot(snapshot)
        raise
    return snapshot


def empty_snapshot(parent: Path | None = None) -> Path:
    """A new, empty snapshot folder (readable by the grader only) for `fill_snapshot` to fill: a
    server can be started on it before its submission is known (grader.sandbox.starter). Under
    `parent` when given (a zygote's snapshots folder: grader.sandbox.zygote), else in the system's
    temporary folder."""
    root = Path(tempfile.mkdtemp(prefix=SNAPSHOT_PREFIX, dir=parent))
    copy = root / "submission"
    copy.mkdir(mode=0o700)
    return copy


def fill_snapshot(snapshot: Path, folder: Path, bounds: TreeBounds = DEFAULT_BOUNDS,
                  exclude: Iterable[Path] = ()) -> None:
    """Copy the submission in `folder` into the empty `snapshot`, then make it read-only and
    readable by everyone.

    The folder's tree is hostile input: it is scanned by `grader.submission.tree` and copied by
    `grader.submission.tree_copy`, which never follow a link out of the folder, refuse FIFOs,
    devices and sockets, and hold the copy to `bounds`. `exclude` leaves further paths out (the
    output folder of `grader check .`). A refusal raises SubmissionError("snapshot", ...); what was
    copied until then is left for `remove_snapshot`.
    """
    _copy_read_only(scan_tree(folder, bounds, exclude), snapshot)


def _copy_read_only(manifest: Manifest, snapshot: Path) -> None:
    copy_into(manifest, snapshot)
    snapshot.parent.chmod(0o555)


def launch(snapshot: Path, isolation: Isolation, limits: dict, profile: dict,
           server_args: Iterable[str] = ()) -> Launch:
    """How to start a server on `snapshot` (`empty_snapshot`: it may be filled after the start, as
    the server reads nothing of it before its `load` request); `server_args` go to
    grader.sandbox.server (`--inspect` for grader init)."""
    submission = SANDBOX_SUBMISSION if isolation == "bwrap" else str(snapshot)
    server = [sys.executable, "-m", "grader.sandbox.server", "--submission", submission,
              "--limits", json_arg(limits), "--profile", json_arg(profile), *server_args]
    if isolation == "bwrap":
        # A uid of its own, so its process count is its own. Only inside bwrap: there the Python
        # installation is bound readable; a plain subprocess may live under a private /root.
        uid = fresh_uid()
        server += ["--uid", str(uid), "--gid", str(uid)]
    env = _environment(profile)
    if isolation == "bwrap":
        return Launch(argv=_bwrap_prefix([(str(snapshot), SANDBOX_SUBMISSION)]) + _setenv_args(env) + server,
                      env={"PATH": env["PATH"]})
    env["PYTHONPATH"] = os.pathsep.join([str(Path(grader.__file__).resolve().parents[1]), *outside_package_folders()])
    return Launch(argv=server, env=env)


def fresh_uid() -> int:
    """An unprivileged uid (and gid) for one server, unused by anything else on the machine as far as
    chance goes: its process count (RLIMIT_NPROC) and its files are its own."""
    return 200_000 + secrets.randbelow(60_000)


def launch_zygote(snapshots: Path, profile: dict) -> Launch:
    """How to start a zygote (grader.sandbox.zygote_server): bwrap exactly as for a server, with
    the folder holding its snapshots at SANDBOX_SNAPSHOTS in place of one submission, and an empty
    SANDBOX_SUBMISSION for each server to bind its own snapshot on. Only as root: the zygote's
    children need its capabilities to make their namespaces and mounts."""
    # One thread for every library: numpy's OpenBLAS starts its pool at import when told more, and a
    # threaded zygote cannot fork; each server sets torch's threads from its profile.
    env = _environment({**profile, "threads": 1})
    prefix = _bwrap_prefix([(str(snapshots), SANDBOX_SNAPSHOTS)], mount_points=(SANDBOX_SUBMISSION,))
    return Launch(argv=prefix + _setenv_args(env) + [sys.executable, "-m", "grader.sandbox.zygote_server"],
                  env={"PATH": env["PATH"]})


def json_arg(value: dict) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def _setenv_args(env: dict[str, str]) -> list[str]:
    """bwrap's arguments for `env`: it clears the environment it was given (--clearenv) and sets only
    these inside."""
    return [arg for name, value in sorted(env.items()) for arg in ("--setenv", name, value)]


def _environment(profile: dict) -> dict[str, str]:
    threads = str(profile.get("threads", 1))
    allowed = ENV_ALLOW_LIST + (CUDA_ENV_ALLOW_LIST if profile.get("device") == "cuda" else ())
    env = {name: os.environ[name] for name in allowed if name in os.environ}
    env.update({
        "PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MPLCONFIGDIR": "/tmp",
        # getpass.getuser() reads these before the password database, which has no entry for a
        # server's fresh uid: without them it raises (KeyError), as libraries on a CUDA image did.
        "USER": "sandbox", "LOGNAME": "sandbox",
        "PYTHONPATH": os.pathsep.join([SANDBOX_PACKAGE_ROOT, *outside_package_folders()]),
    })
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # set on some machines for correctness
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _bwrap_prefix(submission_binds: list[tuple[str, str]], mount_points: Iterable[str] = ()) -> list[str]:
    # As root, no user namespace: the server then drops to a fresh real uid itself, which is what
    # makes RLIMIT_NPROC count (root and uids mapped onto root are exempt from it). As another
    # user, bwrap needs a user namespace to build the others.
    namespaces = (["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
                  if os.geteuid() == 0 else ["--unshare-all"])
    args = [bwrap_executable() or "bwrap", *namespaces, "--die-with-parent", "--new-session", "--clearenv",
            "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    binds: list[tuple[str, str]] = []
    for name in ("usr", "etc/ld.so.cache", "etc/alternatives", "etc/fonts"):
        path = Path("/") / name
        if path.exists():
            binds.append((str(path), str(path)))
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.exists():
            binds.append((str(path), str(path)))
    binds += [(str(path), str(path)) for path in _python_paths()]
    binds.append((str(Path(grader.__file__).resolve().parent), f"{SANDBOX_PACKAGE_ROOT}/grader"))
    binds += submission_binds
    # The gpu profile: the NVIDIA device files and the driver's /proc entries (the driver's
    # libraries live under /usr, bound above). Absent on a machine without NVIDIA's driver.
    args += [arg for device in sorted(Path("/dev").glob("nvidia*")) for arg in ("--dev-bind", str(device), str(device))]
    if Path("/proc/driver/nvidia").exists():
        args += ["--ro-bind", "/proc/driver/nvidia", "/proc/driver/nvidia"]
    # bwrap makes missing parent folders 0700; after the uid drop they must be passable. The empty
    # mount points (a zygote's /submission) are made the same way.
    parents = {str(p) for _, target in binds for p in Path(target).parents if str(p) != "/"}
    for folder in sorted(parents | set(mount_points), key=lambda p: p.count("/")):
        args += ["--perms", "0755", "--dir", folder]
    for source, target in binds:
        args += ["--ro-bind", source, target]
    return args + ["--chdir", "/tmp"]


def _prefixes() -> set[Path]:
    return {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent.parent}


def outside_package_folders() -> list[str]:
    """Folders of installed packages on sys.path that the interpreter inside would not find by
    itself: a user site (pip install --user; PYTHONNOUSERSITE is set inside), a site-packages
    named by a .pth file or PYTHONPATH. Only folders named site-packages or dist-packages, never
    the current folder or a source checkout, so nothing else of the host becomes readable."""
    prefixes = _prefixes()
    folders = []
    for entry in sys.path:
        path = Path(entry).resolve() if entry else None
        if path is None or path.name not in ("site-packages", "dist-packages") or not path.is_dir():
            continue
        if any(prefix == path or prefix in path.parents for prefix in prefixes) or str(path).startswith("/usr/"):
            continue
        folders.append(str(path))
    return list(dict.fromkeys(folders))


def _python_paths() -> list[Path]:
    """The interpreter's installation, the virtual environment and the package folders outside
    them (`outside_package_folders`), wherever they live (not under /usr)."""
    candidates = _prefixes() | {Path(folder) for folder in outside_package_folders()}
    outside_usr = [p for p in candidates if not str(p).startswith("/usr/")]
    # Bind the outermost of nested paths only once.
    return sorted(p for p in outside_usr if not any(p != q and q in p.parents for q in outside_usr))


def remove_snapshot(snapshot: Path) -> None:
    """Remove a snapshot made by `snapshot_submission` with its temporary parent, also when it is
    read-only and holds links: folders are made writable again by a walk that never follows a
    link and never chmods one (on Linux that would change the link's target, which may be
    anything the student named)."""
    root = Path(snapshot).parent
    if not root.name.startswith(SNAPSHOT_PREFIX):
        raise ValueError(f"not a submission snapshot: {snapshot}")
    _make_folders_writable(root)
    shutil.rmtree(root, ignore_errors=True)


def _make_folders_writable(root: Path) -> None:
    pending = [str(root)]
    while pending:
        folder = pending.pop()
        try:
            os.chmod(folder, stat.S_IRWXU)  # a real folder: the walk only enters those
            with os.scandir(folder) as entries:
                pending.extend(entry.path for entry in entries if entry.is_dir(follow_symlinks=False))
        except OSError:
            continue  # already gone, or not ours to change: rmtree's ignore_errors covers it
