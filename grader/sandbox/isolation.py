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
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import grader

Isolation = Literal["bwrap", "subprocess"]

SANDBOX_SUBMISSION = "/submission"
SANDBOX_PACKAGE_ROOT = "/opt/xai-grader"
ENV_ALLOW_LIST = ("LANG", "LC_ALL", "TZ")


@functools.cache
def bwrap_works() -> bool:
    """Whether bubblewrap is installed and can create namespaces here (containers may forbid it)."""
    if shutil.which("bwrap") is None:
        return False
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


@dataclass(frozen=True)
class Launch:
    """A server's command line and environment, and the snapshot folder to remove afterwards."""

    argv: list[str]
    env: dict[str, str]
    snapshot: Path


def snapshot_submission(folder: Path) -> Path:
    """A private, world-readable, read-only copy of the submission: the server reads what was
    handed in at this moment, and an unprivileged uid can read it."""
    root = Path(tempfile.mkdtemp(prefix="xai-grader-submission-"))
    copy = root / "submission"
    shutil.copytree(folder, copy, symlinks=False, ignore=shutil.ignore_patterns("__pycache__"))
    for path in [root, *copy.rglob("*"), copy]:
        mode = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
        if path.is_dir():
            mode |= stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
        path.chmod(mode)
    return copy


def launch(folder: Path, isolation: Isolation, limits: dict, profile: dict) -> Launch:
    snapshot = snapshot_submission(folder)
    submission = SANDBOX_SUBMISSION if isolation == "bwrap" else str(snapshot)
    server = [sys.executable, "-m", "grader.sandbox.server", "--submission", submission,
              "--limits", json_arg(limits), "--profile", json_arg(profile)]
    if isolation == "bwrap":
        # A uid of its own, so its process count is its own. Only inside bwrap: there the Python
        # installation is bound readable; a plain subprocess may live under a private /root.
        uid = 200_000 + secrets.randbelow(60_000)
        server += ["--uid", str(uid), "--gid", str(uid)]
    env = _environment(profile)
    if isolation == "bwrap":
        # bwrap clears the environment it was given (--clearenv) and sets only these inside.
        settings = [arg for name, value in sorted(env.items()) for arg in ("--setenv", name, value)]
        return Launch(argv=_bwrap_prefix(snapshot) + settings + server, env={"PATH": env["PATH"]}, snapshot=snapshot)
    env["PYTHONPATH"] = str(Path(grader.__file__).resolve().parents[1])
    return Launch(argv=server, env=env, snapshot=snapshot)


def json_arg(value: dict) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def _environment(profile: dict) -> dict[str, str]:
    threads = str(profile.get("threads", 1))
    env = {name: os.environ[name] for name in ENV_ALLOW_LIST if name in os.environ}
    env.update({
        "PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MPLCONFIGDIR": "/tmp",
        "PYTHONPATH": SANDBOX_PACKAGE_ROOT,
    })
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # set on some machines for correctness
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _bwrap_prefix(snapshot: Path) -> list[str]:
    # As root, no user namespace: the server then drops to a fresh real uid itself, which is what
    # makes RLIMIT_NPROC count (root and uids mapped onto root are exempt from it). As another
    # user, bwrap needs a user namespace to build the others.
    namespaces = (["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
                  if os.geteuid() == 0 else ["--unshare-all"])
    args = ["bwrap", *namespaces, "--die-with-parent", "--new-session", "--clearenv",
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
    binds.append((str(snapshot), SANDBOX_SUBMISSION))
    # The gpu profile: the NVIDIA device files and the driver's /proc entries (the driver's
    # libraries live under /usr, bound above). Absent on a machine without NVIDIA's driver.
    args += [arg for device in sorted(Path("/dev").glob("nvidia*")) for arg in ("--dev-bind", str(device), str(device))]
    if Path("/proc/driver/nvidia").exists():
        args += ["--ro-bind", "/proc/driver/nvidia", "/proc/driver/nvidia"]
    # bwrap makes missing parent folders 0700; after the uid drop they must be passable.
    parents = sorted({str(p) for _, target in binds for p in Path(target).parents if str(p) != "/"},
                     key=lambda p: p.count("/"))
    for parent in parents:
        args += ["--perms", "0755", "--dir", parent]
    for source, target in binds:
        args += ["--ro-bind", source, target]
    return args + ["--chdir", "/tmp"]


def _python_paths() -> list[Path]:
    """The interpreter's installation and the virtual environment, wherever they live (not under /usr)."""
    candidates = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
                  Path(sys.executable).resolve().parent.parent}
    outside_usr = [p for p in candidates if not str(p).startswith("/usr/")]
    # Bind the outermost of nested paths only once.
    return sorted(p for p in outside_usr if not any(p != q and q in p.parents for q in outside_usr))


def remove_snapshot(snapshot: Path) -> None:
    root = snapshot.parent
    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            path.chmod(stat.S_IRWXU)
    shutil.rmtree(root, ignore_errors=True)
