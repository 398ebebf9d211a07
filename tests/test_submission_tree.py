"""A submission's file tree is hostile input: what the snapshot, the scan and the hash do with links,
loops, special files, huge and deep trees, and what they leave out.

Each test builds its tree in tmp_path: a class folder with the student `b01`, a sibling student
`b02`, and the TA's `eval.csv` beside the class folder, each holding a marker text that must never
reach b01's snapshot.
"""

from __future__ import annotations

import os
import socket
import stat
import tempfile
from pathlib import Path

import pytest

from grader.sandbox.isolation import remove_snapshot, snapshot_submission
from grader.submission.errors import SubmissionError
from grader.submission.tree import TreeBounds, scan_tree
from grader.submission.tree_copy import copy_into
from grader.submission.tree_files import read_file
from grader.submission.tree_hash import tree_sha256

FIX = "replace the link with the file itself, or remove it"
LABELS = "TA-SECRET-LABELS"
OTHER = "OTHER-STUDENT-WEIGHTS"
WEIGHTS = b"b01 weights \x00\x01\x02" * 100


@pytest.fixture()
def temp(tmp_path, monkeypatch) -> Path:
    """The grader's temporary folder for this test only, so a test can see what a snapshot left."""
    folder = tmp_path / "grader-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture()
def student(tmp_path) -> Path:
    """b01's honest submission, with b02 beside it and the TA's labels above the class folder."""
    (tmp_path / "eval.csv").write_text(LABELS)
    other = tmp_path / "class" / "b02"
    other.mkdir(parents=True)
    (other / "model.pth").write_text(OTHER)
    folder = tmp_path / "class" / "b01"
    folder.mkdir()
    (folder / "submission.yaml").write_text("student_id: b01\nmodel:\n  source: model.py\n  weights: model.pth\n")
    (folder / "model.py").write_text("import torch\n")
    (folder / "model.pth").write_bytes(WEIGHTS)
    return folder


def refusal(folder: Path, **options) -> str:
    """The message of the snapshot's refusal of `folder` (stage `snapshot`)."""
    with pytest.raises(SubmissionError) as caught:
        snapshot_submission(folder, **options)
    assert caught.value.stage == "snapshot"
    return caught.value.message


def every_text(snapshot: Path) -> str:
    """All the bytes the sandbox could read under its /submission, links followed (they are all
    relative and inside), as one text."""
    texts = []
    for folder, _, files in os.walk(snapshot, followlinks=True):
        assert Path(os.path.realpath(folder)).is_relative_to(os.path.realpath(snapshot))
        for name in files:
            path = Path(folder) / name
            assert Path(os.path.realpath(path)).is_relative_to(os.path.realpath(snapshot))
            texts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(texts)


# --- what an honest folder becomes --------------------------------------------------------------


def test_an_honest_folder_is_copied_byte_for_byte(student, temp):
    (student / "notes").mkdir()
    (student / "notes" / "report.md").write_text("## 1\nsaliency\n")
    snapshot = snapshot_submission(student)
    assert sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*")) == [
        "model.pth", "model.py", "notes", "notes/report.md", "submission.yaml"]
    assert (snapshot / "model.pth").read_bytes() == WEIGHTS
    assert (snapshot / "notes" / "report.md").read_text() == "## 1\nsaliency\n"
    remove_snapshot(snapshot)


def test_snapshot_files_are_read_only_and_world_readable(student, temp):
    (student / "notes").mkdir()
    (student / "notes" / "report.md").write_text("## 1\n")
    snapshot = snapshot_submission(student)
    assert stat.S_IMODE((snapshot / "model.pth").stat().st_mode) == 0o444
    assert stat.S_IMODE((snapshot / "notes" / "report.md").stat().st_mode) == 0o444
    assert stat.S_IMODE((snapshot / "notes").stat().st_mode) == 0o555
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o555
    assert stat.S_IMODE(snapshot.parent.stat().st_mode) == 0o555
    remove_snapshot(snapshot)


def test_remove_snapshot_removes_it_and_its_temporary_parent(student, temp):
    os.symlink("model.pth", student / "weights")
    snapshot = snapshot_submission(student)
    remove_snapshot(snapshot)
    assert list(temp.iterdir()) == []


def test_a_folder_where_a_file_would_be_is_copied_as_a_folder(student, temp):
    (student / "model.pth").unlink()
    (student / "model.pth").mkdir()
    (student / "model.pth" / "part0").write_bytes(b"half")
    snapshot = snapshot_submission(student)
    assert (snapshot / "model.pth").is_dir()
    assert (snapshot / "model.pth" / "part0").read_bytes() == b"half"
    remove_snapshot(snapshot)


def test_pycache_and_git_folders_are_left_out(student, temp):
    for skipped in ("__pycache__", ".git", "notes/__pycache__"):
        (student / skipped).mkdir(parents=True)
        (student / skipped / "blob").write_text("skip me")
    snapshot = snapshot_submission(student)
    assert sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*")) == [
        "model.pth", "model.py", "notes", "submission.yaml"]
    remove_snapshot(snapshot)


def test_an_excluded_output_folder_is_neither_copied_nor_hashed(student, temp):
    before = tree_sha256(student)
    out = student / "grader-out"
    (out / "b01").mkdir(parents=True)
    (out / "b01" / "result.json").write_text("{}")
    snapshot = snapshot_submission(student, exclude=[out])
    assert not (snapshot / "grader-out").exists()
    assert tree_sha256(student, exclude=[out]) == before
    assert tree_sha256(student) != before
    remove_snapshot(snapshot)


def test_names_that_are_not_utf8_are_copied_and_hashed_as_the_bytes_they_are(student, temp):
    os.mkdir(bytes(student) + b"/\xffdir")
    with open(bytes(student) + b"/\xffdir/\xfe.pth", "wb") as weights:
        weights.write(b"raw")
    os.symlink(b"\xffdir/\xfe.pth", bytes(student) + b"/weights.pth")
    before = tree_sha256(student)
    snapshot = snapshot_submission(student)
    assert sorted(os.listdir(bytes(snapshot))) == [b"model.pth", b"model.py", b"submission.yaml",
                                                   b"weights.pth", b"\xffdir"]
    assert (snapshot / "weights.pth").read_bytes() == b"raw"
    os.rename(bytes(student) + b"/\xffdir", bytes(student) + b"/\xfedir")
    os.remove(bytes(student) + b"/weights.pth")
    os.symlink(b"\xfedir/\xfe.pth", bytes(student) + b"/weights.pth")
    assert tree_sha256(student) != before
    remove_snapshot(snapshot)


# --- links ----------------------------------------------------------------------------------------


def test_an_absolute_link_to_a_secret_outside_is_refused(student, temp, tmp_path):
    os.symlink(tmp_path / "eval.csv", student / "labels.csv")
    message = refusal(student)
    assert message == ("'labels.csv' is a symbolic link that points outside the submission folder "
                       f"(the grader copies only what is inside it); {FIX}")
    assert list(temp.iterdir()) == []


def test_a_relative_link_climbing_out_of_the_folder_is_refused(student, temp):
    os.symlink("../../eval.csv", student / "data.csv")
    message = refusal(student)
    assert message.startswith("'data.csv' is a symbolic link that points outside the submission folder")
    assert str(student.parent) not in message


def test_links_to_a_sibling_students_folder_or_file_are_refused(student, temp):
    os.symlink("../b02", student / "theirs")
    os.symlink("../b02/model.pth", student / "model_b02.pth")
    message = refusal(student)
    assert message.startswith("the submission folder has 2 entries the grader cannot copy: "
                              "(1) 'model_b02.pth' is a symbolic link that points outside")
    assert "(2) 'theirs' is a symbolic link that points outside" in message


def test_a_link_that_leaves_the_folder_and_comes_back_in_is_kept(student, temp):
    os.symlink("../b01/model.pth", student / "weights.pth")
    snapshot = snapshot_submission(student)
    assert os.readlink(snapshot / "weights.pth") == "model.pth"
    assert (snapshot / "weights.pth").read_bytes() == WEIGHTS
    remove_snapshot(snapshot)


def test_a_missing_target_outside_reads_as_outside_not_as_dangling(student, temp):
    # Otherwise the message would tell a student which paths exist on the TA's machine.
    os.symlink("/nonexistent-grader-path/x", student / "probe")
    assert "points outside the submission folder" in refusal(student)


def test_a_dangling_link_inside_is_refused(student, temp):
    os.symlink("checkpoints/best.pth", student / "weights.pth")
    assert refusal(student) == f"'weights.pth' is a symbolic link that points at something that does not exist; {FIX}"


def test_two_links_to_the_folder_itself_are_refused_as_loops_without_following_them(student, temp):
    os.symlink(".", student / "again")
    os.symlink(".", student / "more")
    # 5 entries in all: a walk that followed either link would pass this bound long before it ended.
    message = refusal(student, bounds=TreeBounds(max_entries=5))
    loop = "is a symbolic link to the submission folder itself, which makes a loop"
    assert f"(1) 'again' {loop}" in message
    assert f"(2) 'more' {loop}" in message


def test_a_link_to_its_own_ancestor_folder_is_refused_as_a_loop(student, temp):
    (student / "a" / "b").mkdir(parents=True)
    os.symlink("../../a", student / "a" / "b" / "up")
    assert refusal(student) == (f"'a/b/up' is a symbolic link to the folder 'a', which makes a loop "
                                f"(following it leads back to where it is); {FIX}")


def test_folder_links_that_lead_into_each_other_are_refused_as_loops(student, temp):
    (student / "a").mkdir()
    (student / "b").mkdir()
    os.symlink("../b", student / "a" / "to_b")
    os.symlink("../a", student / "b" / "to_a")
    message = refusal(student)
    assert "(1) 'a/to_b' is a symbolic link to the folder 'b', which makes a loop" in message
    assert "(2) 'b/to_a' is a symbolic link to the folder 'a', which makes a loop" in message


def test_links_that_point_at_each_other_are_refused_as_a_loop(student, temp):
    os.symlink("b", student / "a")
    os.symlink("a", student / "b")
    message = refusal(student)
    assert "(1) 'a' is a symbolic link that loops" in message
    assert "(2) 'b' is a symbolic link that loops" in message


def test_a_link_chain_inside_is_kept_and_resolves_inside_the_copy(student, temp):
    os.symlink("b", student / "a")
    os.symlink("model.pth", student / "b")
    snapshot = snapshot_submission(student)
    for name in ("a", "b"):
        assert (snapshot / name).is_symlink()
        assert not os.readlink(snapshot / name).startswith("/")
        assert os.path.realpath(snapshot / name) == os.path.realpath(snapshot / "model.pth")
        assert (snapshot / name).read_bytes() == WEIGHTS
    remove_snapshot(snapshot)


def test_an_absolute_link_inside_becomes_a_relative_link_in_the_copy(student, temp):
    (student / "nested").mkdir()
    os.symlink(student / "model.pth", student / "nested" / "weights.pth")
    snapshot = snapshot_submission(student)
    assert os.readlink(snapshot / "nested" / "weights.pth") == "../model.pth"
    assert (snapshot / "nested" / "weights.pth").read_bytes() == WEIGHTS
    remove_snapshot(snapshot)


def test_a_link_to_a_folder_inside_is_kept(student, temp):
    (student / "checkpoints").mkdir()
    (student / "checkpoints" / "best.pth").write_bytes(b"best")
    os.symlink("checkpoints", student / "weights")
    snapshot = snapshot_submission(student)
    assert os.readlink(snapshot / "weights") == "checkpoints"
    assert (snapshot / "weights" / "best.pth").read_bytes() == b"best"
    remove_snapshot(snapshot)


def test_a_link_into_a_left_out_folder_is_refused(student, temp):
    (student / ".git").mkdir()
    (student / ".git" / "config").write_text("[core]\n")
    os.symlink(".git/config", student / "config")
    assert refusal(student).startswith("'config' is a symbolic link to '.git/config', which the grader leaves out")


def test_nothing_from_outside_the_folder_is_in_the_snapshot(student, temp):
    (student / "checkpoints").mkdir()
    (student / "checkpoints" / "best.pth").write_bytes(b"best")
    os.symlink("checkpoints", student / "weights")
    os.symlink("../model.pth", student / "checkpoints" / "last.pth")
    os.symlink(student / "model.pth", student / "absolute.pth")
    snapshot = snapshot_submission(student)
    text = every_text(snapshot)
    assert LABELS not in text and OTHER not in text
    assert text.count(WEIGHTS.decode("latin-1")) == 4  # model.pth, absolute.pth, and last.pth twice
    remove_snapshot(snapshot)


def test_remove_snapshot_never_changes_what_a_link_in_it_points_at(tmp_path, temp):
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o500)
    root = Path(tempfile.mkdtemp(prefix="xai-grader-submission-"))
    (root / "submission").mkdir()
    os.symlink(outside, root / "submission" / "link")
    remove_snapshot(root / "submission")
    assert not root.exists()
    assert stat.S_IMODE(outside.stat().st_mode) == 0o500


def test_remove_snapshot_refuses_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine" / "submission").mkdir(parents=True)
    with pytest.raises(ValueError):
        remove_snapshot(tmp_path / "mine" / "submission")
    assert (tmp_path / "mine" / "submission").is_dir()


# --- special files ----------------------------------------------------------------------------


def test_a_fifo_where_the_weights_would_be_is_refused_without_opening_it(student, temp):
    (student / "model.pth").unlink()
    os.mkfifo(student / "model.pth")
    assert refusal(student) == ("'model.pth' is a FIFO (named pipe), not a file or folder; the grader copies only "
                                "files, folders and links inside the folder. Replace it with the file itself, "
                                "or remove it")
    assert list(temp.iterdir()) == []


def test_a_socket_is_refused(student, temp):
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(student / "s.sock"))
        assert refusal(student).startswith("'s.sock' is a socket, not a file or folder")
    finally:
        server.close()


def test_names_with_control_characters_overrides_or_undecodable_bytes_are_shown_escaped(student, temp):
    os.mkfifo(student / "evil\x1b[31mname\n")
    os.mkfifo(bytes(student) + b"/bad\xff\xe2\x80\xaeutf8")
    message = refusal(student)
    assert message.startswith(r"the submission folder has 2 entries the grader cannot copy: "
                              r"(1) 'bad\udcff\u202eutf8' is a FIFO")
    assert r"(2) 'evil\x1b[31mname\n' is a FIFO" in message
    assert "\x1b" not in message and "\n" not in message
    message.encode("utf-8")  # no lone surrogates: every sink can write it


# --- bounds -------------------------------------------------------------------------------------


def make_deep_tree(top: Path, depth: int) -> None:
    """`top/d/d/.../d`, made one level at a time through descriptors (no recursion, short paths)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)


def remove_deep_tree(top: Path, depth: int) -> None:
    """Undo `make_deep_tree` from the bottom up through descriptors (shutil.rmtree recurses)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth - 1):
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    for _ in range(depth):
        os.rmdir("d", dir_fd=fd)
        parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = parent
    os.close(fd)


def test_a_1200_deep_tree_is_refused_by_the_depth_bound(student, temp):
    make_deep_tree(student, 1200)
    try:
        message = refusal(student)
        assert message.startswith("the submission folder is nested more than 32 folders deep "
                                  "(the grader's max_depth limit; at 'd/d/d/")
        assert message.endswith("hand in only what the model needs: remove data sets, virtual environments, "
                                "checkpoints and outputs")
        with pytest.raises(SubmissionError, match="max_depth"):
            tree_sha256(student)
    finally:
        remove_deep_tree(student, 1200)


def test_a_64_gib_sparse_file_is_refused_by_its_size_without_reading_it(student, temp, monkeypatch):
    with open(student / "model.pth", "wb") as weights:
        weights.truncate(64 << 30)

    def no_read(*args):
        raise AssertionError("a file was read")

    with monkeypatch.context() as patch:
        patch.setattr(os, "read", no_read)
        message = refusal(student)
        with pytest.raises(SubmissionError, match="max_bytes"):
            tree_sha256(student)
    assert message.startswith("the submission folder holds more than 1.0 GiB of files (the grader's max_bytes "
                              "limit; 64.0 GiB counted so far, the last 'model.pth' of 64.0 GiB)")
    assert list(temp.iterdir()) == []


class CountingScandir:
    """os.scandir that counts the names it hands out."""

    def __init__(self, real):
        self.real = real
        self.count = 0

    def __call__(self, *args):
        listing = self.real(*args)
        counter = self

        class Listing:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                listing.close()

            def __iter__(self):
                for entry in listing:
                    counter.count += 1
                    yield entry

        return Listing()


def test_too_many_files_are_refused_after_looking_at_no_more_than_the_bound(student, temp, monkeypatch):
    (student / "dataset").mkdir()
    for index in range(500):
        (student / "dataset" / f"{index:04}.png").write_bytes(b"")
    counting = CountingScandir(os.scandir)
    with monkeypatch.context() as patch:
        patch.setattr(os, "scandir", counting)
        message = refusal(student, bounds=TreeBounds(max_entries=50))
    assert message.startswith("the submission folder holds more than 50 files, folders and links "
                              "(the grader's max_entries limit; 51 counted so far)")
    assert counting.count <= 51


def test_a_path_longer_than_the_bound_is_refused(student, temp):
    (student / ("n" * 200)).mkdir()
    (student / ("n" * 200) / ("m" * 200)).write_text("x")
    message = refusal(student, bounds=TreeBounds(max_path_bytes=300))
    assert message.startswith("the submission folder has a path longer than 300 bytes (the grader's max_path_bytes")


# --- the folder changing while it is copied ----------------------------------------------------------


def test_a_file_that_grew_after_the_scan_is_refused_not_copied(student, tmp_path):
    manifest = scan_tree(student)
    with open(student / "model.pth", "ab") as weights:
        weights.write(b"x" * 5000)
    with pytest.raises(SubmissionError) as caught:
        copy_into(manifest, tmp_path / "copy")
    assert caught.value.message.startswith(f"'model.pth' changed while the grader was copying the submission "
                                           f"(its size went from {len(WEIGHTS):,} to {len(WEIGHTS) + 5000:,} bytes)")


def test_a_fifo_swapped_in_after_the_scan_is_refused_without_blocking(student, tmp_path):
    manifest = scan_tree(student)
    (student / "model.pth").unlink()
    os.mkfifo(student / "model.pth")
    with pytest.raises(SubmissionError, match=r"'model.pth' changed .* \(it is now a FIFO \(named pipe\)\)"):
        copy_into(manifest, tmp_path / "copy")


def test_a_folder_swapped_for_a_link_out_after_the_scan_is_not_followed(student, tmp_path):
    (student / "notes").mkdir()
    (student / "notes" / "model.pth").write_text("x" * len(OTHER))
    manifest = scan_tree(student)
    (student / "notes" / "model.pth").unlink()
    (student / "notes").rmdir()
    os.symlink("../b02", student / "notes")
    with pytest.raises(SubmissionError, match=r"'notes/model.pth' changed .*it can no longer be opened"):
        copy_into(manifest, tmp_path / "copy")
    assert OTHER not in every_text(tmp_path / "copy")


# --- the hash -------------------------------------------------------------------------------------


def test_the_hash_changes_when_one_byte_changes(student):
    before = tree_sha256(student)
    changed = bytearray(WEIGHTS)
    changed[700] ^= 1
    (student / "model.pth").write_bytes(bytes(changed))
    assert tree_sha256(student) != before


def test_the_hash_changes_when_a_link_target_changes(student):
    (student / "best.pth").write_bytes(WEIGHTS)
    os.symlink("model.pth", student / "weights.pth")
    before = tree_sha256(student)
    (student / "weights.pth").unlink()
    os.symlink("best.pth", student / "weights.pth")
    assert tree_sha256(student) != before


def test_the_hash_changes_when_a_file_is_renamed_or_a_folder_added(student):
    before = tree_sha256(student)
    (student / "model.pth").rename(student / "weights.pth")
    renamed = tree_sha256(student)
    (student / "empty").mkdir()
    assert len({before, renamed, tree_sha256(student)}) == 3


def test_the_hash_is_the_same_for_a_manifest_and_for_its_folder(student):
    assert tree_sha256(scan_tree(student)) == tree_sha256(student)


def test_the_hash_does_not_depend_on_the_listing_order_or_the_folders_place(student, tmp_path, monkeypatch):
    (student / "notes").mkdir()
    for name in ("c.md", "a.md", "b.md"):
        (student / "notes" / name).write_text(name)
    os.symlink("notes/a.md", student / "answers.md")
    before = tree_sha256(student)
    real_scandir = os.scandir

    class Reversed:
        def __init__(self, *args):
            with real_scandir(*args) as listing:
                self.entries = list(listing)[::-1]

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def __iter__(self):
            return iter(self.entries)

    with monkeypatch.context() as patch:
        patch.setattr(os, "scandir", Reversed)
        assert tree_sha256(student) == before
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    student.rename(moved)
    assert tree_sha256(moved) == before


# --- reading one file on the trusted side -------------------------------------------------------


def test_read_file_reads_through_links_kept_inside(student):
    (student / "docs").mkdir()
    (student / "docs" / "answers.md").write_text("## 1\nlooks at the eyes\n")
    os.symlink("docs/answers.md", student / "report.md")
    os.symlink("docs", student / "notes")
    manifest = scan_tree(student)
    assert read_file(manifest, "report.md", 1000) == b"## 1\nlooks at the eyes\n"
    assert read_file(manifest, "notes/answers.md", 1000) == b"## 1\nlooks at the eyes\n"


def test_read_file_finds_nothing_for_folders_missing_files_and_climbing_paths(student):
    (student / "docs").mkdir()
    manifest = scan_tree(student)
    assert read_file(manifest, "docs", 1000) is None
    assert read_file(manifest, "report.md", 1000) is None
    assert read_file(manifest, "docs/../model.py", 1000) is None


def test_read_file_refuses_a_file_over_its_limit(student):
    with pytest.raises(SubmissionError) as caught:
        read_file(scan_tree(student), "model.pth", 100)
    assert caught.value.message == ("'model.pth' is 1.5 KiB, more than the 100 bytes the grader reads of it; "
                                    "make it smaller")
