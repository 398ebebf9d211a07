"""grader.atomic: whole files or none, 0644 files and 0755 folders whatever the umask, and a folder
swap that never shares its aside name and puts the old folder back when the swap fails."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

import pytest

from grader import atomic
from grader.atomic import atomic_write_bytes, atomic_write_text, make_directories, replace_directory


@pytest.fixture
def strict_umask():
    """umask 077, under which mkdir makes 0700 folders: the modes must not depend on it."""
    previous = os.umask(0o077)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def contents(folder: Path) -> dict[str, bytes | None]:
    """Every entry under `folder`: a file's bytes, None for a folder."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def test_a_written_file_is_0644_under_a_077_umask(tmp_path, strict_umask):
    atomic_write_text(tmp_path / "gradebook.csv", "student_id\n")
    assert mode(tmp_path / "gradebook.csv") == 0o644


def test_folders_made_for_a_file_are_0755_and_existing_ones_keep_their_mode(tmp_path, strict_umask):
    tmp_path.chmod(0o711)
    atomic_write_bytes(tmp_path / "s1" / "arrays" / "lime.npz", b"x")
    assert mode(tmp_path / "s1") == 0o755
    assert mode(tmp_path / "s1" / "arrays") == 0o755
    assert mode(tmp_path) == 0o711


def test_make_directories_sets_0755_on_every_folder_it_creates(tmp_path, strict_umask):
    make_directories(tmp_path / "a" / "b" / "c")
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o755, 0o755, 0o755]


def test_short_writes_are_continued_until_every_byte_is_written(tmp_path, monkeypatch):
    real_write = os.write
    calls = []

    def three_bytes_at_a_time(fd, data):
        calls.append(len(data))
        return real_write(fd, bytes(data[:3]))

    monkeypatch.setattr(atomic.os, "write", three_bytes_at_a_time)
    atomic_write_bytes(tmp_path / "f", b"0123456789")
    monkeypatch.undo()
    assert (tmp_path / "f").read_bytes() == b"0123456789"
    assert calls == [10, 7, 4, 1]


@pytest.mark.parametrize("failing", ["write", "fsync"])
def test_enospc_keeps_the_old_file_and_removes_the_temporary_one(tmp_path, monkeypatch, failing):
    target = tmp_path / "result.json"
    target.write_bytes(b"old result")

    def disk_full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, failing, disk_full)
    with pytest.raises(OSError) as caught:
        atomic_write_bytes(target, b"new result")
    monkeypatch.undo()
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old result"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_the_swapped_in_folder_is_0755_with_0644_files_though_made_private(tmp_path):
    staging = tmp_path / ".staging-run-s1"
    (staging / "figures").mkdir(parents=True, mode=0o700)
    staging.chmod(0o700)
    (staging / "figures" / "q1.png").write_bytes(b"png")
    (staging / "figures" / "q1.png").chmod(0o600)
    replace_directory(staging, tmp_path / "s1")
    assert mode(tmp_path / "s1") == 0o755
    assert mode(tmp_path / "s1" / "figures") == 0o755
    assert mode(tmp_path / "s1" / "figures" / "q1.png") == 0o644


def test_replace_directory_swaps_in_the_new_folder_and_leaves_nothing_aside(tmp_path):
    target = tmp_path / "s1"
    target.mkdir()
    (target / "result.json").write_bytes(b"old")
    staging = tmp_path / ".staging-run-s1"
    staging.mkdir()
    (staging / "result.json").write_bytes(b"new")
    replace_directory(staging, target)
    assert contents(tmp_path) == {"s1": None, "s1/result.json": b"new"}


def test_two_swaps_put_the_old_folder_aside_under_two_different_names(tmp_path, monkeypatch):
    target = tmp_path / "s1"
    target.mkdir()
    destinations = []
    real_replace = os.replace

    def recording_replace(source, destination):
        destinations.append(Path(destination).name)
        real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", recording_replace)
    for run in ("a", "b"):
        staging = tmp_path / f".staging-{run}-s1"
        staging.mkdir()
        replace_directory(staging, target)
    monkeypatch.undo()
    aside = [name for name in destinations if name != "s1"]
    assert len(aside) == 2 and aside[0] != aside[1]
    assert all(re.fullmatch(r"\.s1\.[0-9a-f]{8}\.old", name) for name in aside)


def test_a_swap_leaves_an_existing_old_folder_of_the_same_student_alone(tmp_path):
    legacy = tmp_path / ".s1.old"  # the fixed aside name of earlier versions, or another swap's
    legacy.mkdir()
    (legacy / "keep").write_bytes(b"k")
    (tmp_path / "s1").mkdir()
    staging = tmp_path / ".staging-run-s1"
    staging.mkdir()
    replace_directory(staging, tmp_path / "s1")
    assert (legacy / "keep").read_bytes() == b"k"


def test_a_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "s1"
    (target / "arrays").mkdir(parents=True)
    (target / "arrays" / "lime.npz").write_bytes(b"old arrays")
    before = contents(target)
    staging = tmp_path / ".staging-run-s1"
    staging.mkdir()
    (staging / "result.json").write_bytes(b"new")
    real_replace = os.replace

    def quota_at_the_swap(source, destination):
        if Path(source) == staging:
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
        real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", quota_at_the_swap)
    with pytest.raises(OSError):
        replace_directory(staging, target)
    monkeypatch.undo()
    assert contents(target) == before
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".old")]
