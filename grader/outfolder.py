"""The output folder of a run: where it may be, who may write into it, and what a failed write leaves.

Issue 13. Grading swaps whole folders into the output folder (grader.pipeline.student_folder stages a student's
folder, then grader.atomic.replace_directory renames it in), so:

- the output folder must not be, contain or lie inside a folder the run reads (check_out_folder):
  `--out submissions` would replace the students' own folders, and an output folder inside the
  submissions folder is taken for a submission by the next run;
- only one run may write into an output folder at a time (OutputLock), since two runs would swap
  each other's half-finished folders in;
- each run stages under its own names (staging_folder), and removes what a killed run left
  (clean_stale) only while it holds the lock, so it never removes a live run's staging folder;
- a full disk, a used-up quota or a read-only file system ends the run with one clear message and
  leaves every earlier result as it was (translate_disk_full, OutputWriteError).

Every error here is an OutputFolderError whose str() is the whole message for the user.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from grader.atomic import FILE_MODE, make_directories, replace_directory

LOCK_NAME = ".grader.lock"
STAGING_PREFIX = ".staging-"
_OLD_FOLDER = re.compile(r"^\..+\.old$")  # grader.atomic.old_name, and the fixed `.<id>.old` of older versions
_TEMPORARY_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")  # grader.atomic.atomic_write_bytes's mkstemp names
_LOCK_ATTEMPTS = 20  # tries to read a holder that has locked but not yet written its name (~1 s in all)
_LOCK_RETRY_SECONDS = 0.05

Relation = Literal["is", "inside", "contains"]


class OutputFolderError(Exception):
    """The output folder cannot be used as asked; str() says why and what to pass instead."""


class OutputLocked(OutputFolderError):
    """Another live run holds the output folder's lock. `holder`: its pid, host, start and command,
    as it wrote them into the lock file (empty when it had not written them yet)."""

    def __init__(self, message: str, holder: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.holder = holder or {}


class OutputWriteError(OutputFolderError):
    """Writing into the output folder failed for want of room or of write access (ENOSPC, EDQUOT,
    EROFS). Nothing was half-written: earlier results are intact. `folder`: the output folder;
    `code`: the errno."""

    def __init__(self, message: str, folder: Path | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.folder = folder
        self.code = code


# --- where the output folder may be -------------------------------------------------------------

def check_out_folder(out: Path, inputs: Sequence[Path], *, allow_inside: bool = False,
                     label: str = "input folder", suggestion: Path | None = None) -> None:
    """Refuse an output folder that is, contains or lies inside any of `inputs` (the folders the run
    reads: the submissions folder for `grade`, the submission folder for `check`).

    Paths are compared resolved (links followed) and, where both exist, with os.path.samefile, so a
    link or a bind mount to the submissions folder is caught too. allow_inside=True accepts an
    output folder inside an input: `grader check .` from a student's folder writes ./check-out, and
    the caller keeps that folder out of what it reads. `label` names the inputs in the message
    ("submissions folder", "submission folder"); `suggestion` is the --out it proposes instead
    (default: `<input>-out` beside the input).
    """
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"the output folder {out} is a file, not a folder: pass --out a folder "
                                "(it is created when missing)")
    for folder in inputs:
        relation = folder_relation(out, folder)
        if relation is None or (relation == "inside" and allow_inside):
            continue
        raise OutputFolderError(_relation_message(out, folder, relation, label, suggestion, allow_inside))


def folder_relation(out: Path, folder: Path) -> Relation | None:
    """How `out` stands to `folder`: the same folder, inside it, containing it, or apart (None)."""
    out_real, folder_real = out.resolve(), folder.resolve()
    if out_real == folder_real or _same_file(out_real, folder_real):
        return "is"
    if folder_real in out_real.parents or any(_same_file(parent, folder_real) for parent in out_real.parents):
        return "inside"
    if out_real in folder_real.parents or any(_same_file(parent, out_real) for parent in folder_real.parents):
        return "contains"
    return None


def _same_file(first: Path, second: Path) -> bool:
    """os.path.samefile where both exist (a bind mount has another path but the same inode)."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def _relation_message(out: Path, folder: Path, relation: Relation, label: str, suggestion: Path | None,
                      allow_inside: bool) -> str:
    folder_real = folder.resolve()
    suggestion = suggestion or folder_real.parent / f"{folder_real.name}-out"
    same_spelling = str(out) == str(folder)
    what = {
        "is": (f"is the {label}{'' if same_spelling else ' ' + _shown(folder)} itself: each student's results "
               "replace a whole folder there, which would delete the submitted files (model.py, "
               "submission.yaml, the weights)"),
        "inside": (f"lies inside the {label} {_shown(folder)}: the next run would take it for a submission, and "
                   "grading would read its own output"),
        "contains": (f"contains the {label} {_shown(folder)}: each student's results replace a whole folder in "
                     "it, so the submissions must not live there"),
    }[relation]
    advice = {"contains": f"that does not hold {folder_real}",
              "is": f"other than {folder_real}" if allow_inside else f"outside {folder_real}",
              "inside": f"outside {folder_real}"}[relation]
    return f"the output folder {_shown(out)} {what}. Pass an --out {advice}, for example --out {suggestion}"


def _shown(path: Path) -> str:
    """The path as the user wrote it, and where it really is when that reads differently (., a link)."""
    real = path.resolve()
    return str(path) if str(path) == str(real) else f"{path} (which is {real})"


# --- one run at a time ---------------------------------------------------------------------------

_held: set[Path] = set()  # output folders whose lock this process holds (clean_stale's precondition)


class OutputLock:
    """An exclusive lock on an output folder for one run: a non-blocking fcntl.flock on
    OUT/.grader.lock, which holds the run's pid, host, start time and command for the message a
    second run gets (OutputLocked).

    flock is released by the kernel when the holder's file is closed, so also when the process
    dies, even by SIGKILL: a lock file left by a killed run is taken over, never waited on. The lock
    file is removed on release (while still locked, and an acquirer checks that the file it locked
    is still the one at the path), so a finished run leaves no file behind. The lock is per open
    file: a second OutputLock on the same folder conflicts even in the same process. Creates the
    output folder (0755) when missing.
    """

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.path = self.out / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise OutputLocked naming the run that holds it."""
        if self._fd is not None:
            return
        with translate_disk_full(self.out):
            make_directories(self.out)
            for attempt in range(_LOCK_ATTEMPTS):
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _read_holder(fd)
                    os.close(fd)
                    if holder or attempt == _LOCK_ATTEMPTS - 1:
                        raise OutputLocked(self._locked_message(holder), holder) from None
                    time.sleep(_LOCK_RETRY_SECONDS)  # locked a moment ago, its name not written yet
                    continue
                except BaseException:
                    os.close(fd)
                    raise
                if not _still_at(fd, self.path):
                    os.close(fd)  # its holder removed it as we opened it: lock the file there now
                    continue
                try:
                    _write_holder(fd)
                except BaseException:
                    self._fd = fd
                    self.release()
                    raise
                self._fd = fd
                _held.add(self.out.resolve())
                return
        raise OutputLocked(self._locked_message({}))

    def release(self) -> None:
        """Remove the lock file and unlock. Removing it first, while still locked, is what lets an
        acquirer trust a file it locked that is still at the path."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _held.discard(self.out.resolve())
        try:
            if _still_at(fd, self.path):
                self.path.unlink()
        except OSError:
            pass  # a lock file left behind is taken over by the next run
        finally:
            os.close(fd)

    def _locked_message(self, holder: dict[str, Any]) -> str:
        if holder:
            who = (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started "
                   f"{holder.get('started', '?')}")
            if holder.get("command"):
                who += f": {holder['command']}"
        else:
            who = "a process that has not written its pid yet"
        return (f"another grader run is writing into {self.out} ({who}). Wait for it to finish, or pass "
                f"another --out; the lock ({self.path}) is freed as soon as that process ends")


def _holder_info() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else ""}


def _write_holder(fd: int) -> None:
    data = (json.dumps(_holder_info(), ensure_ascii=False) + "\n").encode("utf-8")
    os.fchmod(fd, FILE_MODE)
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _read_holder(fd: int) -> dict[str, Any]:
    """What the holder wrote; {} when it has written nothing yet (or something unreadable)."""
    try:
        holder = json.loads(os.pread(fd, 65536, 0).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _still_at(fd: int, path: Path) -> bool:
    """Whether the open file `fd` is still the file at `path` (not removed or replaced)."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (on_disk.st_dev, on_disk.st_ino)


# --- staging names and leftovers -----------------------------------------------------------------

def new_run_id() -> str:
    """A short id, new for every run, that names the run's staging folders."""
    return secrets.token_hex(4)


def staging_folder(out: Path, student_id: str, run_id: str) -> Path:
    """Where a run stages one student's folder: OUT/.staging-<run_id>-<student_id>. The run id keeps
    two runs (or a run and a killed one's leftover) from ever sharing a staging folder; the leading
    dot marks it as no result (and clean_stale's to remove)."""
    if not run_id or "/" in run_id or "/" in student_id:
        raise ValueError(f"a run id and a student id must be non-empty names, not {run_id!r}, {student_id!r}")
    return out / f"{STAGING_PREFIX}{run_id}-{student_id}"


def make_staging_folder(out: Path, student_id: str, run_id: str) -> Path:
    """staging_folder(), created empty (0755; a retried task's earlier attempt removed)."""
    staging = staging_folder(out, student_id, run_id)
    shutil.rmtree(staging, ignore_errors=True)
    make_directories(staging)
    return staging


@contextmanager
def staged_folder(out: Path, student_id: str, run_id: str) -> Iterator[Path]:
    """Yield an empty staging folder for one student; when the block ends without an error, swap it
    in as OUT/<student_id> (grader.atomic.replace_directory). On any error the staging folder is
    removed and the student's previous folder stays as it was; a full disk, a used-up quota or a
    read-only file system becomes OutputWriteError (translate_disk_full)."""
    staging = staging_folder(out, student_id, run_id)
    with translate_disk_full(out, staging):
        make_staging_folder(out, student_id, run_id)
        yield staging
        replace_directory(staging, out / student_id)


def clean_stale(out: Path) -> list[Path]:
    """Remove what killed runs left directly in `out`: staging folders (`.staging-*`), folders
    renamed aside during a swap (`.<name>.<random>.old`, `.<name>.old`) and atomic writes'
    temporary files (`.<name>.<8 chars>.tmp`). Returns what it removed.

    Only while holding OutputLock(out): another live run's staging folder would go too.
    Everything else in `out` (results, the lock file, files of the user's) is left alone."""
    if out.resolve() not in _held:
        raise RuntimeError(f"clean_stale({out}) needs OutputLock({out}) held by this process")
    removed = []
    for entry in sorted(out.iterdir()) if out.is_dir() else []:
        if not _is_leftover(entry):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry)
    return removed


def _is_leftover(entry: Path) -> bool:
    name = entry.name
    if name.startswith(STAGING_PREFIX):
        return True
    if entry.is_symlink():
        return False  # never ours: the atomic writes make folders and files only
    if entry.is_dir():
        return bool(_OLD_FOLDER.match(name))
    return entry.is_file() and bool(_TEMPORARY_FILE.match(name))


# --- a full disk ---------------------------------------------------------------------------------

_DISK_ERRORS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("the disk is full",
                   "Free some space on that disk (`df -h {out}` shows what is left) or pass an --out on another disk"),
    errno.EROFS: ("the file system is read-only",
                  "Pass an --out on a writable disk (or remount this one read-write)"),
}
if hasattr(errno, "EDQUOT"):
    _DISK_ERRORS[errno.EDQUOT] = ("your disk quota there is used up",
                                  "Free some of your files there (`quota -s` shows the quota) or pass an --out "
                                  "on another disk")


def is_disk_error(error: BaseException) -> bool:
    """A full disk, a used-up quota or a read-only file system."""
    return isinstance(error, OSError) and error.errno in _DISK_ERRORS


def disk_error_message(error: OSError, out: Path) -> str:
    """The words for a disk error while writing into `out`: what happened, that nothing already
    there was damaged, and what to do."""
    reason, advice = _DISK_ERRORS.get(error.errno or 0, _DISK_ERRORS[errno.ENOSPC])
    return (f"cannot write the results into {out}: {reason} ({os.strerror(error.errno or errno.ENOSPC)}). "
            f"Nothing was half-written: every result in {out} is intact, and the student being written "
            f"keeps their previous folder. {advice.format(out=out)}, then run the same command again.")


@contextmanager
def translate_disk_full(out: Path, staging: Path | None = None) -> Iterator[None]:
    """Run writes into `out`; on any failure remove `staging` (a half-written folder nobody should
    see), and turn ENOSPC, EDQUOT or EROFS into OutputWriteError with the message for the user.

    Earlier results stay intact because every file is written to a temporary name first and a
    student's folder is only swapped in whole (grader.atomic); this only adds the clean-up and
    the words. Other exceptions pass through unchanged."""
    try:
        yield
    except BaseException as error:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError) and is_disk_error(error):
            raise OutputWriteError(disk_error_message(error, out), out, error.errno) from error
        raise
