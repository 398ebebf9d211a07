"""grader.outfolder (issue 13): an output folder that would overwrite or be read as the submissions
is refused; one run at a time per output folder; staging names unique per run and leftovers
removed; a full disk ends with a message and leaves every earlier result as it was."""

from __future__ import annotations

import errno
import json
import os
import pickle
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader import atomic
from grader.atomic import atomic_write_bytes, atomic_write_text
from grader.outfolder import (LOCK_NAME, OutputFolderError, OutputLock, OutputLocked, OutputWriteError,
                              check_out_folder, clean_stale, make_staging_folder, new_run_id, staged_folder,
                              staging_folder, translate_disk_full)
from tests.conftest import ROOT

# --- where the output folder may be -------------------------------------------------------------


@pytest.fixture
def submissions(tmp_path) -> Path:
    folder = tmp_path / "submissions"
    (folder / "vgg").mkdir(parents=True)
    (folder / "vgg" / "model.py").write_text("class Net: pass\n")
    return folder


def refusal(out: Path, inputs: list[Path], **options) -> str:
    with pytest.raises(OutputFolderError) as caught:
        check_out_folder(out, inputs, **options)
    return str(caught.value)


def test_out_equal_to_the_submissions_folder_is_refused(submissions):
    message = refusal(submissions, [submissions], label="submissions folder")
    assert f"the output folder {submissions} is the submissions folder itself" in message
    assert f"--out {submissions.parent / 'submissions-out'}" in message


def test_out_inside_the_submissions_folder_is_refused(submissions):
    message = refusal(submissions / "out", [submissions], label="submissions folder")
    assert f"the output folder {submissions / 'out'} lies inside the submissions folder {submissions}" in message
    assert "take it for a submission" in message


def test_out_containing_the_submissions_folder_is_refused(submissions):
    message = refusal(submissions.parent, [submissions], label="submissions folder")
    assert f"the output folder {submissions.parent} contains the submissions folder {submissions}" in message


def test_out_containing_the_one_submission_of_check_is_refused(submissions):
    message = refusal(submissions, [submissions / "vgg"], allow_inside=True, label="submission folder")
    assert f"contains the submission folder {submissions / 'vgg'}" in message


def test_a_symlinked_out_that_resolves_to_the_submissions_folder_is_refused(submissions, tmp_path):
    link = tmp_path / "out"
    link.symlink_to(submissions)
    message = refusal(link, [submissions])
    assert f"the output folder {link} (which is {submissions.resolve()}) is the input folder {submissions} itself" \
        in message


def test_out_reached_through_a_symlinked_parent_inside_the_submissions_is_refused(submissions, tmp_path):
    (tmp_path / "link").symlink_to(submissions / "vgg")
    message = refusal(tmp_path / "link" / "out", [submissions])
    assert "lies inside the input folder" in message


def test_a_bind_mount_of_the_submissions_folder_is_refused(submissions, tmp_path):
    mount_point = tmp_path / "bound"
    mount_point.mkdir()
    if not mount(["--bind", str(submissions), str(mount_point)]):
        pytest.skip("cannot bind-mount here (needs root or CAP_SYS_ADMIN)")
    try:
        assert mount_point.resolve() != submissions.resolve()  # only samefile sees they are one folder
        assert "is the input folder" in refusal(mount_point, [submissions])
    finally:
        unmount(mount_point)


def test_out_inside_the_submission_is_allowed_for_check_run_from_that_folder(submissions):
    check_out_folder(submissions / "vgg" / "check-out", [submissions / "vgg"], allow_inside=True)


def test_allow_inside_still_refuses_the_submission_folder_itself(submissions):
    assert "itself" in refusal(submissions / "vgg", [submissions / "vgg"], allow_inside=True)


def test_a_relative_out_is_shown_with_where_it_really_is_and_the_suggestion_given(submissions, monkeypatch):
    monkeypatch.chdir(submissions / "vgg")
    message = refusal(Path("."), [Path(".")], allow_inside=True, label="submission folder",
                      suggestion=Path("check-out"))
    assert message == (f"the output folder . (which is {submissions / 'vgg'}) is the submission folder itself: each "
                       "student's results replace a whole folder there, which would delete the submitted files "
                       f"(model.py, submission.yaml, the weights). Pass an --out other than {submissions / 'vgg'}, "
                       "for example --out check-out")


def test_a_sibling_whose_name_starts_like_the_submissions_folder_is_accepted(submissions):
    check_out_folder(submissions.parent / "submissions-out", [submissions])
    check_out_folder(submissions.parent / "submissions2" / "out", [submissions])


def test_out_that_is_a_file_is_refused(submissions, tmp_path):
    (tmp_path / "out").write_text("")
    assert "is a file, not a folder" in refusal(tmp_path / "out", [submissions])


# --- one run at a time ---------------------------------------------------------------------------

HOLDER = """
import sys, time
from pathlib import Path
from grader.outfolder import OutputLock
with OutputLock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path) -> Iterator[tuple[subprocess.Popen, Path]]:
    """Another process holding the lock on tmp_path/out."""
    out = tmp_path / "out"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True,
                               cwd=ROOT, env=env)
    try:
        assert process.stdout.readline() == "locked\n"
        yield process, out
    finally:
        process.kill()
        process.wait()


def test_the_lock_refuses_a_second_process_and_names_its_pid_and_host(holder):
    process, out = holder
    with pytest.raises(OutputLocked) as caught:
        OutputLock(out).acquire()
    message = str(caught.value)
    assert f"another grader run is writing into {out} (pid {process.pid} on host {socket.gethostname()}" in message
    assert "Wait for it to finish, or pass another --out" in message
    assert caught.value.holder["pid"] == process.pid


def test_the_lock_is_free_again_after_its_holder_is_sigkilled(holder):
    process, out = holder
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == process.pid  # the killed run's file is still there
    with OutputLock(out):
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_the_lock_refuses_a_second_open_in_the_same_process(tmp_path):
    with OutputLock(tmp_path / "out"):
        with pytest.raises(OutputLocked, match=f"pid {os.getpid()} "):
            OutputLock(tmp_path / "out").acquire()


def test_the_lock_file_holds_the_pid_host_and_start_time(tmp_path):
    with OutputLock(tmp_path / "out"):
        holder = json.loads((tmp_path / "out" / LOCK_NAME).read_text())
    assert holder["pid"] == os.getpid()
    assert holder["host"] == socket.gethostname()
    assert holder["started"][:2] == "20" and "T" in holder["started"]


def test_the_lock_is_released_and_its_file_removed_when_the_run_ends(tmp_path):
    with OutputLock(tmp_path / "out"):
        pass
    assert list((tmp_path / "out").iterdir()) == []
    with OutputLock(tmp_path / "out"):
        pass


def test_the_lock_is_released_when_the_run_raises(tmp_path):
    with pytest.raises(KeyError):
        with OutputLock(tmp_path / "out"):
            raise KeyError("boom")
    with OutputLock(tmp_path / "out") as lock:
        assert lock.held


def test_a_stale_lock_file_naming_a_dead_run_does_not_block(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / LOCK_NAME).write_text(json.dumps({"pid": 999999999, "host": "elsewhere"}))
    with OutputLock(tmp_path / "out"):
        assert json.loads((tmp_path / "out" / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_the_lock_creates_a_missing_out_folder_0755(tmp_path):
    previous = os.umask(0o077)
    try:
        with OutputLock(tmp_path / "new" / "out"):
            pass
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new" / "out").stat().st_mode) == 0o755


# --- staging names and leftovers -----------------------------------------------------------------

def test_staging_folders_are_unique_per_run(tmp_path):
    first, second = new_run_id(), new_run_id()
    assert first != second
    assert staging_folder(tmp_path, "s1", first) == tmp_path / f".staging-{first}-s1"
    assert staging_folder(tmp_path, "s1", first) != staging_folder(tmp_path, "s1", second)


def test_two_runs_staging_the_same_student_do_not_touch_each_other(tmp_path):
    first = make_staging_folder(tmp_path, "s1", "run1")
    (first / "result.json").write_text("run 1")
    second = make_staging_folder(tmp_path, "s1", "run2")
    assert (first / "result.json").read_text() == "run 1"
    assert list(second.iterdir()) == []


def test_clean_stale_removes_staging_aside_and_temporary_leftovers_and_nothing_else(tmp_path):
    out = tmp_path / "out"
    for folder in (".staging-1a2b3c4d-s1/arrays", ".s1.0f0f0f0f.old", ".s2.old", "s1/figures"):
        (out / folder).mkdir(parents=True)
    for file in (".staging-1a2b3c4d-s1/arrays/lime.npz", ".gradebook.csv.k2_x9abc.tmp", "gradebook.csv",
                 ".notes.old", ".my.tmp", "s1/result.json"):
        (out / file).write_text("x")
    with OutputLock(out):
        removed = clean_stale(out)
        left = sorted(p.name for p in out.iterdir())
    assert sorted(p.name for p in removed) == [".gradebook.csv.k2_x9abc.tmp", ".s1.0f0f0f0f.old", ".s2.old",
                                               ".staging-1a2b3c4d-s1"]
    assert left == [".grader.lock", ".my.tmp", ".notes.old", "gradebook.csv", "s1"]


def test_clean_stale_removes_a_staging_link_but_not_what_it_points_to(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("k")
    (out / ".staging-run-s1").symlink_to(elsewhere)
    with OutputLock(out):
        clean_stale(out)
    assert not (out / ".staging-run-s1").is_symlink()
    assert (elsewhere / "keep").read_text() == "k"


def test_clean_stale_refuses_to_run_without_the_lock(tmp_path):
    (tmp_path / ".staging-run-s1").mkdir()
    with pytest.raises(RuntimeError, match="needs OutputLock"):
        clean_stale(tmp_path)
    assert (tmp_path / ".staging-run-s1").is_dir()


# --- a full disk ---------------------------------------------------------------------------------

def write_student(out: Path, student_id: str, files: dict[str, bytes], run_id: str = "run") -> None:
    """What grader.pipeline.student_folder._write_outputs does once wired: stage, write, swap, under the guard."""
    with staged_folder(out, student_id, run_id) as staging:
        for name, data in files.items():
            atomic_write_bytes(staging / name, data)


def snapshot(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every entry under `folder`, as (bytes or None for a folder, mode)."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None, p.stat().st_mode)
            for p in sorted(folder.rglob("*"))}


def test_a_staged_folder_is_swapped_in_whole_when_its_block_ends(tmp_path):
    with staged_folder(tmp_path / "out", "s1", "run") as staging:
        atomic_write_bytes(staging / "figures" / "q1.png", b"png")
        assert not (tmp_path / "out" / "s1").exists()
    assert snapshot(tmp_path / "out").keys() == {"s1", "s1/figures", "s1/figures/q1.png"}


def test_an_error_in_a_staged_block_removes_the_staging_and_keeps_the_old_folder(tmp_path):
    write_student(tmp_path / "out", "s1", OLD_FILES, run_id="first")
    before = snapshot(tmp_path / "out")
    with pytest.raises(ValueError, match="a figure failed"):
        with staged_folder(tmp_path / "out", "s1", "second") as staging:
            atomic_write_bytes(staging / "result.json", b"half")
            raise ValueError("a figure failed")
    assert snapshot(tmp_path / "out") == before


OLD_FILES = {"result.json": b'{"score": 7}', "arrays/lime.npz": b"old arrays", "figures/q1.png": b"old png",
             "report.pdf": b"%PDF old"}
NEW_FILES = {"result.json": b'{"score": 9}', "arrays/lime.npz": b"new arrays", "figures/q1.png": b"new png",
             "report.pdf": b"%PDF new"}


def disk_error(code: int):
    def fail(*args):
        raise OSError(code, os.strerror(code))
    return fail


@pytest.mark.parametrize("failing", ["write", "fsync"])
def test_enospc_leaves_the_old_folder_byte_identical_and_no_staging_with_the_message(tmp_path, monkeypatch,
                                                                                     failing):
    out = tmp_path / "out"
    write_student(out, "s1", OLD_FILES, run_id="first")
    before = snapshot(out)
    monkeypatch.setattr(atomic.os, failing, disk_error(errno.ENOSPC))
    with pytest.raises(OutputWriteError) as caught:
        write_student(out, "s1", NEW_FILES, run_id="second")
    monkeypatch.undo()
    assert snapshot(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["s1"]
    message = str(caught.value)
    assert message.startswith(f"cannot write the results into {out}: the disk is full (No space left on device)")
    assert f"Nothing was half-written: every result in {out} is intact" in message
    assert f"`df -h {out}`" in message and "run the same command again" in message
    assert (caught.value.folder, caught.value.code) == (out, errno.ENOSPC)


@pytest.mark.parametrize(("code", "words"), [(errno.EDQUOT, "your disk quota there is used up"),
                                             (errno.EROFS, "the file system is read-only")])
def test_a_used_up_quota_or_a_read_only_disk_says_so(tmp_path, monkeypatch, code, words):
    monkeypatch.setattr(atomic.os, "write", disk_error(code))
    with pytest.raises(OutputWriteError, match=f"into {tmp_path / 'out'}: {words}"):
        write_student(tmp_path / "out", "s1", NEW_FILES)
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []


def test_enospc_at_the_swap_leaves_the_old_folder_and_no_staging(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_student(out, "s1", OLD_FILES, run_id="first")
    before = snapshot(out)
    real_replace = os.replace

    def full_at_the_swap(source, destination):
        if Path(source).name.startswith(".staging-"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", full_at_the_swap)
    with pytest.raises(OutputWriteError):
        write_student(out, "s1", NEW_FILES, run_id="second")
    monkeypatch.undo()
    assert snapshot(out) == before


def test_other_errors_pass_through_unchanged_and_still_remove_the_staging_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic.os, "write", disk_error(errno.EACCES))
    with pytest.raises(PermissionError):
        write_student(tmp_path / "out", "s1", NEW_FILES)
    monkeypatch.undo()
    assert list((tmp_path / "out").iterdir()) == []


def test_the_write_error_survives_pickling_from_a_dask_worker(tmp_path):
    error = OutputWriteError("disk full", tmp_path, errno.ENOSPC)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.folder, copy.code) == ("disk full", tmp_path, errno.ENOSPC)
    locked = pickle.loads(pickle.dumps(OutputLocked("held", {"pid": 1})))
    assert (str(locked), locked.holder) == ("held", {"pid": 1})


def mount(arguments: list[str]) -> bool:
    try:
        return subprocess.run(["mount", *arguments], capture_output=True).returncode == 0
    except OSError:
        return False


def unmount(mount_point: Path) -> None:
    subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


@pytest.fixture
def tiny_disk(tmp_path) -> Iterator[Path]:
    """A real 512 KiB tmpfs."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if not mount(["-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount_point)]):
        pytest.skip("cannot mount a tmpfs here (mount needs root or CAP_SYS_ADMIN); the monkeypatched "
                    "ENOSPC tests cover the same path")
    yield mount_point
    unmount(mount_point)


def test_a_really_full_disk_keeps_the_old_folder_and_frees_what_the_failed_write_took(tiny_disk):
    out = tiny_disk / "out"
    write_student(out, "s1", OLD_FILES, run_id="first")
    atomic_write_text(out / "gradebook.csv", "student_id,total\ns1,7\n")
    before, free_before = snapshot(out), os.statvfs(tiny_disk).f_bfree
    too_big = dict(NEW_FILES, **{"arrays/lime.npz": os.urandom(1024 * 1024)})
    with pytest.raises(OutputWriteError, match="the disk is full"):
        write_student(out, "s1", too_big, run_id="second")
    assert snapshot(out) == before
    assert os.statvfs(tiny_disk).f_bfree == free_before


# --- modes ---------------------------------------------------------------------------------------

def test_a_student_folder_is_0755_with_0644_files_whatever_the_umask(tmp_path):
    previous = os.umask(0o077)
    try:
        write_student(tmp_path / "out", "s1", NEW_FILES)
    finally:
        os.umask(previous)
    modes = {name: stat.S_IMODE(entry[1]) for name, entry in snapshot(tmp_path / "out").items()}
    assert modes == {"s1": 0o755, "s1/arrays": 0o755, "s1/arrays/lime.npz": 0o644, "s1/figures": 0o755,
                     "s1/figures/q1.png": 0o644, "s1/report.pdf": 0o644, "s1/result.json": 0o644}
