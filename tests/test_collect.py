"""grader collect (issue 18): Canvas's and Moodle's bulk downloads, built here as their source code
names the files (see grader/pipeline/lms_names.py), collected into one folder per student id; and
the download treated as untrusted: traversal, links, and sizes that lie refused. All fast: nothing
is graded."""

from __future__ import annotations

import csv
import io
import stat
import struct
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grader.cli import app
from grader.pipeline.collect import REPORT_NAME, CollectError, collect
from grader.pipeline.lms_names import parse_entry, read_collect_roster, resubmitted_name
from grader.pipeline.ziparchive import ZipLimits

SPEC = "student_id: {sid}\nname: {name}\nmodel:\n  source: model.py\n  entry: Net\n  weights: model.pth\n"
MODEL_OLD = "class Net: pass  # first attempt\n"
MODEL_NEW = "class Net: pass  # resubmitted\n"

GRADEBOOK = (
    "Student,ID,SIS User ID,SIS Login ID,Section,HW3 Explain your CNN (555),Current Score\n"
    "    Points Possible,,,,,10.00,(read only)\n"
    '"Smith, John",1001,b04901069,jsmith@uni.edu,Section A,,\n'
    '"Lin, Mei",1002,,mlin@uni.edu,Section A,,\n'
    '"Wang, Ada",1003,b04901071,awang,Section B,,\n'
    '"Student, Test",1999,,,Section A,,\n'
)


def zip_bytes(entries: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def write_zip(path: Path, entries: dict[str, bytes | str]) -> Path:
    path.write_bytes(zip_bytes(entries))
    return path


@pytest.fixture
def canvas(tmp_path):
    """A Canvas download: John resubmitted model.py (model-1.py, a later attachment), Mei handed in a
    zip of a folder, late; a file of a user id no roster row has; Ada handed in nothing."""
    student_zip = zip_bytes({"hw3/submission.yaml": SPEC.format(sid="b05", name="Mei"),
                             "hw3/model.py": MODEL_NEW, "hw3/model.pth": b"weights",
                             "__MACOSX/hw3/._model.py": b"\0"})
    download = write_zip(tmp_path / "HW3 submissions.zip", {
        "smithjohn_1001_9001_submission.yaml": SPEC.format(sid="b04901069", name="John"),
        "smithjohn_1001_9002_model.py": MODEL_OLD,
        "smithjohn_1001_9010_model-1.py": MODEL_NEW,
        "smithjohn_1001_9003_model.pth": b"john weights",
        "smithjohn_1001_9004_report.md": "## 1\nthe eyes\n",
        "linmei_LATE_1002_9005_hw3.zip": student_zip,
        "strangerx_4242_9100_model.py": MODEL_OLD,
    })
    roster = tmp_path / "gradebook.csv"
    roster.write_text(GRADEBOOK, encoding="utf-8")
    return download, roster


def report_rows(out: Path) -> list[dict[str, str]]:
    with open(out / REPORT_NAME, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_canvas_names_are_read_as_canvas_writes_them():
    entry = parse_entry(("smithjohn_LATE_1001_9010_model-1.py",))
    assert (entry.lms, entry.user, entry.name, entry.path, entry.late, entry.attachment) == \
        ("canvas", "1001", "smithjohn", ("model-1.py",), True, 9010)
    assert parse_entry(("smithjohn_1001_text.html",)).path == ("text.html",)
    assert parse_entry(("anon_x7Yq2_9010_model.py",)).user == "anon_x7Yq2"
    assert parse_entry(("smithjohn_1001_9002_my_model_2_1.py",)).path == ("my_model_2_1.py",)
    assert parse_entry(("notes.txt",)) is None
    assert resubmitted_name("model-12.tar.gz") == ("model.tar.gz", 12)
    assert resubmitted_name("resnet18.py") == ("resnet18.py", 0)


def test_moodle_names_are_read_as_moodle_writes_them():
    folder = parse_entry(("John Smith_501_assignsubmission_file_", "weights", "model.pth"))
    assert (folder.lms, folder.user, folder.name, folder.path) == ("moodle", "501", "John Smith",
                                                                   ("weights", "model.pth"))
    flat = parse_entry(("John Smith_501_assignsubmission_file_model_v2.py",))
    assert flat.path == ("model_v2.py",)
    assert parse_entry(("Participant_77_assignsubmission_onlinetext_", "onlinetext.html")).user == "77"


def test_a_canvas_gradebook_export_is_a_roster(canvas):
    _, gradebook = canvas
    roster, kind = read_collect_roster(gradebook)
    assert kind == "Canvas gradebook"
    assert [(e.student_id, e.name, e.folder) for e in roster.entries] == [
        ("b04901069", "Smith, John", "1001"), ("mlin", "Lin, Mei", "1002"), ("b04901071", "Wang, Ada", "1003")]


def test_a_canvas_download_is_collected_into_one_folder_per_student(canvas, tmp_path):
    download, gradebook = canvas
    roster, kind = read_collect_roster(gradebook)
    out = tmp_path / "submissions"
    report = collect(download, roster, out, roster_kind=kind)

    john = out / "b04901069"
    assert sorted(p.name for p in john.iterdir()) == ["model.pth", "model.py", "report.md", "submission.yaml"]
    assert (john / "model.py").read_text() == MODEL_NEW  # the resubmission, under the name it replaces
    mei = out / "mlin"
    assert sorted(p.name for p in mei.iterdir()) == ["model.pth", "model.py", "submission.yaml"]  # hw3/ dropped
    assert not (mei / "hw3.zip").exists() and not (mei / "__MACOSX").exists()

    assert [item.student.student_id for item in report.late] == ["mlin"]
    assert [entry.student_id for entry in report.missing] == ["b04901071"]
    unplaced = {item.entry: item.reason for item in report.unplaced}
    assert "4242" in unplaced["strangerx_4242_9100_model.py"]
    assert "older copy" in unplaced["smithjohn_1001_9002_model.py"]
    assert sorted(p.name for p in out.iterdir()) == sorted([REPORT_NAME, "b04901069", "mlin"])
    assert not list(tmp_path.glob(".*collect*"))  # the staging folder was renamed, nothing left

    kinds = {(row["kind"], row["student_id"]) for row in report_rows(out)}
    assert {("collected", "b04901069"), ("collected", "mlin"), ("late", "mlin"),
            ("missing", "b04901071")} <= kinds
    assert any(row["kind"] == "unplaced" and row["entry"] == "strangerx_4242_9100_model.py"
               for row in report_rows(out))


def test_a_moodle_download_is_collected_by_participant_id_and_by_a_unique_name(tmp_path):
    own_zip = zip_bytes({"submission.yaml": SPEC.format(sid="b2", name="Mei"), "model.py": MODEL_NEW})
    download = write_zip(tmp_path / "moodle.zip", {
        "John Smith_501_assignsubmission_file_/submission.yaml": SPEC.format(sid="b1", name="John"),
        "John Smith_501_assignsubmission_file_/model.py": MODEL_NEW,
        "John Smith_501_assignsubmission_file_/weights/model.pth": b"w",
        "Mei Lin_502_assignsubmission_file_/work.zip": own_zip,
        "Mei Lin_502_assignsubmission_onlinetext_/onlinetext.html": "<p>hi</p>",
        "Ada Wang_777_assignsubmission_file_model.py": MODEL_NEW,
        "Someone Else_999_assignsubmission_file_/x.py": "x = 1\n",
    })
    roster_csv = tmp_path / "roster.csv"
    roster_csv.write_text("student_id,name,lms_id\nb1,John Smith,501\nb2,Mei Lin,502\nb3,\"Wang, Ada\",\n"
                          "b4,Bo Chen,504\n", encoding="utf-8")
    roster, kind = read_collect_roster(roster_csv)
    assert kind == "roster.csv"
    out = tmp_path / "out"
    report = collect(download, roster, out, roster_kind=kind)

    assert (out / "b1" / "weights" / "model.pth").read_bytes() == b"w"
    assert sorted(p.name for p in (out / "b2").iterdir()) == ["model.py", "onlinetext.html", "submission.yaml"]
    assert (out / "b3" / "model.py").read_text() == MODEL_NEW
    assert [item.student.student_id for item in report.collected if item.by_name] == ["b3"]
    assert [entry.student_id for entry in report.missing] == ["b4"]
    assert report.late == []
    assert [item.entry for item in report.unplaced] == ["Someone Else_999_assignsubmission_file_/x.py"]
    assert report.formats == {"moodle": 7}


@pytest.mark.parametrize("evil", ["../escaped.py", "/tmp/escaped.py", "smithjohn_1001_1_..\\..\\escaped.py",
                                  "John Smith_501_assignsubmission_file_/../../escaped.py"])
def test_a_download_with_a_traversal_entry_is_refused_whole(tmp_path, canvas, evil):
    _, gradebook = canvas
    download = write_zip(tmp_path / "evil.zip", {"smithjohn_1001_9001_model.py": MODEL_NEW, evil: "x"})
    out = tmp_path / "deep" / "out"
    with pytest.raises(CollectError, match="points outside the download"):
        collect(download, read_collect_roster(gradebook)[0], out)
    assert not (tmp_path / "deep").exists() and not list(tmp_path.rglob("escaped.py"))


def test_a_link_entry_is_refused(tmp_path, canvas):
    _, gradebook = canvas
    download = tmp_path / "link.zip"
    with zipfile.ZipFile(download, "w") as archive:
        archive.writestr("smithjohn_1001_9001_model.py", MODEL_NEW)
        link = zipfile.ZipInfo("smithjohn_1001_9002_model.pth")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(CollectError, match="is a link"):
        collect(download, read_collect_roster(gradebook)[0], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _lying_zip(path: Path, name: str, actual: int, declared: int, other: dict[str, str]) -> Path:
    """A zip whose entry `name` declares `declared` bytes and inflates to `actual`."""
    data = bytearray(zip_bytes({name: b"\0" * actual, **other}))
    real, fake = struct.pack("<I", actual), struct.pack("<I", declared)
    assert data.count(real) == 2  # the local header and the central directory
    path.write_bytes(bytes(data).replace(real, fake))
    return path


def test_an_entry_that_inflates_past_its_declared_size_is_not_placed(tmp_path, canvas):
    _, gradebook = canvas
    download = _lying_zip(tmp_path / "bomb.zip", "smithjohn_1001_9003_model.pth", actual=3_000_001, declared=100,
                          other={"smithjohn_1001_9001_model.py": MODEL_NEW})
    out = tmp_path / "out"
    report = collect(download, read_collect_roster(gradebook)[0], out)
    assert (out / "b04901069" / "model.py").read_text() == MODEL_NEW
    assert not (out / "b04901069" / "model.pth").exists()
    assert [item.entry for item in report.unplaced] == ["smithjohn_1001_9003_model.pth"]


def test_declared_sizes_and_counts_are_bounded_before_anything_is_written(tmp_path, canvas):
    download, gradebook = canvas
    roster = read_collect_roster(gradebook)[0]
    with pytest.raises(CollectError, match="more than a class's download may hold"):
        collect(download, roster, tmp_path / "a", download_limits=ZipLimits(max_entries=100, max_bytes=100))
    with pytest.raises(CollectError, match="entries, more than"):
        collect(download, roster, tmp_path / "b", download_limits=ZipLimits(max_entries=3, max_bytes=1 << 30))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_students_zip_that_breaks_a_rule_is_not_unpacked(tmp_path, canvas):
    _, gradebook = canvas
    evil_zip = zip_bytes({"model.py": MODEL_NEW, "../../escaped.py": "x"})
    download = write_zip(tmp_path / "d.zip", {"smithjohn_1001_9001_submission.yaml": SPEC.format(sid="x", name="J"),
                                              "smithjohn_1001_9005_hw3.zip": evil_zip})
    out = tmp_path / "out"
    report = collect(download, read_collect_roster(gradebook)[0], out)
    assert sorted(p.name for p in (out / "b04901069").iterdir()) == ["submission.yaml"]
    assert not list(tmp_path.rglob("escaped.py"))
    assert "zip is not unpacked" in report.unplaced[0].reason and "points outside" in report.unplaced[0].reason


def test_a_non_empty_out_is_refused(tmp_path, canvas):
    download, gradebook = canvas
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(CollectError, match="not empty"):
        collect(download, read_collect_roster(gradebook)[0], out)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    collect(download, read_collect_roster(gradebook)[0], empty)
    assert (empty / "b04901069" / "model.py").exists()


def test_the_collect_command_prints_what_a_ta_needs(canvas, tmp_path):
    download, gradebook = canvas
    out = tmp_path / "submissions"
    result = CliRunner().invoke(app, ["collect", str(download), "--roster", str(gradebook), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "collected 2 of 3 students" in text
    assert "late (1): mlin (Lin, Mei)" in text
    assert "missing (1): b04901071 (Wang, Ada)" in text
    assert "strangerx_4242_9100_model.py" in text
    again = CliRunner().invoke(app, ["collect", str(download), "--roster", str(gradebook), "--out", str(out)])
    assert again.exit_code == 2 and "not empty" in again.output


def test_a_download_unpacked_and_zipped_again_is_looked_through(tmp_path, canvas):
    _, gradebook = canvas
    download = write_zip(tmp_path / "rezipped.zip", {
        "HW3 submissions/smithjohn_1001_9001_model.py": MODEL_NEW,
        "__MACOSX/HW3 submissions/._smithjohn_1001_9001_model.py": b"\0",
    })
    out = tmp_path / "out"
    report = collect(download, read_collect_roster(gradebook)[0], out)
    assert (out / "b04901069" / "model.py").read_text() == MODEL_NEW
    assert [item.reason.startswith("macOS") for item in report.unplaced] == [True]


def test_a_control_character_in_an_entry_name_refuses_the_download(tmp_path, canvas):
    _, gradebook = canvas
    download = write_zip(tmp_path / "ansi.zip", {"smithjohn_1001_9001_model\x1b[2J.py": MODEL_NEW})
    with pytest.raises(CollectError, match="control character"):
        collect(download, read_collect_roster(gradebook)[0], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_macos_screenshot_name_with_a_narrow_no_break_space_is_collected(tmp_path, canvas):
    _, gradebook = canvas
    shot = "smithjohn_1001_9001_Screenshot 2026-11-30 at 10.15.02\u202fAM.png"
    download = write_zip(tmp_path / "mac.zip", {shot: b"png", "smithjohn_1001_9002_model.py": MODEL_NEW})
    out = tmp_path / "out"

    collect(download, read_collect_roster(gradebook)[0], out)

    assert (out / "b04901069" / "Screenshot 2026-11-30 at 10.15.02\u202fAM.png").read_bytes() == b"png"


def test_a_students_damaged_zip_is_listed_and_the_rest_collected(tmp_path, canvas):
    _, gradebook = canvas
    damaged = bytearray(zip_bytes({"model.py": MODEL_NEW * 50}))
    damaged[38] = 0x07  # the deflate stream's first block: BTYPE 11, reserved (zlib.error, not an OSError)
    download = write_zip(tmp_path / "d.zip", {"smithjohn_1001_9001_submission.yaml": SPEC.format(sid="x", name="J"),
                                              "smithjohn_1001_9005_hw3.zip": bytes(damaged)})
    out = tmp_path / "out"

    report = collect(download, read_collect_roster(gradebook)[0], out)

    assert (out / "b04901069" / "submission.yaml").is_file()
    assert any("hw3.zip" in item.entry for item in report.unplaced), report.unplaced


def test_a_top_level_ds_store_beside_one_folder_is_left_out(tmp_path, canvas):
    _, gradebook = canvas
    download = write_zip(tmp_path / "rezipped.zip", {
        "HW3 submissions/smithjohn_1001_9001_model.py": MODEL_NEW, ".DS_Store": b"\0"})
    out = tmp_path / "out"

    report = collect(download, read_collect_roster(gradebook)[0], out)

    assert (out / "b04901069" / "model.py").read_text() == MODEL_NEW
    assert [item.reason.startswith("macOS") for item in report.unplaced] == [True]
