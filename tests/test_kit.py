"""The course kit (grader.pipeline.kit, `grader kit`, `--kit`): what it holds, how a changed or
forged kit is refused, and that a student's check with it gives the TA's numbers."""

from __future__ import annotations

import json
import shutil
import stat
import zipfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import grader
from grader.cli import _setup, app
from grader.pipeline.kit import KitError, read_kit, write_kit
from grader.questions.settings import TaskSettings
from grader.scoring.rubric import default_rubric_path, load_rubric
from tests.conftest import EXAMPLES

runner = CliRunner()


@pytest.fixture(scope="module")
def public_csv(tmp_path_factory) -> Path:
    """60 labeled synthetic faces with part masks, in the course's layout."""
    from grader.data.synth import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("public"), seed=5, train_size=0, eval_size=60)["eval.csv"]


def make_kit(out: Path, data: Path, tasks: TaskSettings = TaskSettings.quick()) -> Path:
    return write_kit(out, data=data, rubric=default_rubric_path(), usage="PublicTest", rows=60, tasks=tasks,
                     language="zh-TW", profile="cpu")


def test_a_kit_holds_the_rubric_the_data_with_its_masks_and_the_settings(tmp_path, public_csv):
    folder = make_kit(tmp_path / "KIT", public_csv)

    kit = read_kit(folder, tmp_path / "scratch")

    assert kit.rubric.read_bytes() == default_rubric_path().read_bytes()
    assert kit.data.read_bytes() == public_csv.read_bytes()
    assert (kit.data.parent / "eval_masks.npz").read_bytes() == (public_csv.parent / "eval_masks.npz").read_bytes()
    assert kit.tasks == TaskSettings.quick()
    assert (kit.manifest.language, kit.manifest.profile, kit.usage) == ("zh-TW", "cpu", "PublicTest")
    assert kit.manifest.xai_grader == grader.__version__ and kit.version_note is None


def test_a_zipped_kit_reads_back_the_same(tmp_path, public_csv):
    archive = make_kit(tmp_path / "kit.zip", public_csv)

    kit = read_kit(archive, tmp_path / "scratch")

    assert zipfile.is_zipfile(archive)
    assert kit.folder.is_relative_to(tmp_path / "scratch")
    assert kit.data.read_bytes() == public_csv.read_bytes() and kit.tasks == TaskSettings.quick()


def test_an_existing_kit_is_never_overwritten(tmp_path, public_csv):
    make_kit(tmp_path / "KIT", public_csv)
    before = (tmp_path / "KIT" / "kit.yaml").read_bytes()

    with pytest.raises(KitError, match="already exists"):
        make_kit(tmp_path / "KIT", public_csv, TaskSettings())

    assert (tmp_path / "KIT" / "kit.yaml").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["KIT"]  # no scratch left beside it


def test_a_rubric_edited_after_the_kit_was_made_is_refused(tmp_path, public_csv):
    folder = make_kit(tmp_path / "KIT", public_csv)
    rubric = folder / "rubric.yaml"
    rubric.write_text(rubric.read_text().replace("points: 1", "points: 5", 1))

    with pytest.raises(KitError, match=r"rubric.yaml was changed after the kit was made"):
        read_kit(folder, tmp_path / "scratch")


def test_a_missing_data_file_is_named(tmp_path, public_csv):
    folder = make_kit(tmp_path / "KIT", public_csv)
    (folder / "data" / "eval.csv").unlink()

    with pytest.raises(KitError, match=r"data/eval.csv is missing"):
        read_kit(folder, tmp_path / "scratch")


def test_a_manifest_pointing_outside_the_kit_is_refused(tmp_path, public_csv):
    folder = make_kit(tmp_path / "KIT", public_csv)
    manifest = yaml.safe_load((folder / "kit.yaml").read_text())
    manifest["rubric"]["file"] = "../../etc/passwd"
    (folder / "kit.yaml").write_text(yaml.safe_dump(manifest))

    with pytest.raises(KitError, match="outside the kit"):
        read_kit(folder, tmp_path / "scratch")


def test_a_zip_entry_outside_the_kit_is_not_unpacked(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("kit.yaml", "kit: 1\n")
        handle.writestr("../escaped.txt", "x")

    with pytest.raises(KitError, match="points outside the kit"):
        read_kit(archive, tmp_path / "scratch")

    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "scratch").exists()


def test_a_link_in_a_zipped_kit_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        entry = zipfile.ZipInfo("rubric.yaml")
        entry.external_attr = (stat.S_IFLNK | 0o777) << 16
        handle.writestr(entry, "/etc/passwd")

    with pytest.raises(KitError, match="is a link"):
        read_kit(archive, tmp_path / "scratch")


def test_a_kit_from_another_version_is_used_with_a_note(tmp_path, public_csv):
    folder = make_kit(tmp_path / "KIT", public_csv)
    manifest = yaml.safe_load((folder / "kit.yaml").read_text())
    manifest["xai_grader"] = "0.0.9"
    (folder / "kit.yaml").write_text(yaml.safe_dump(manifest))

    kit = read_kit(folder, tmp_path / "scratch")

    assert "made with xai-grader 0.0.9" in kit.version_note and "xai-grader==0.0.9" in kit.version_note


def test_a_task_setting_this_version_does_not_know_is_refused(tmp_path, public_csv):
    folder = make_kit(tmp_path / "KIT", public_csv)
    manifest = yaml.safe_load((folder / "kit.yaml").read_text())
    manifest["tasks"]["road_orders"] = 2
    (folder / "kit.yaml").write_text(yaml.safe_dump(manifest))

    with pytest.raises(KitError, match="tasks:.*road_orders"):
        read_kit(folder, tmp_path / "scratch")


def test_grader_kit_writes_the_kit_and_says_how_students_and_tas_use_it(tmp_path, public_csv):
    outcome = runner.invoke(app, ["kit", "--data", str(public_csv), "--out", str(tmp_path / "course.zip"),
                                  "--quick", "--lang", "zh-TW"])

    assert outcome.exit_code == 0, outcome.output
    assert "grader check SUBMISSION --kit course.zip" in outcome.output
    kit = read_kit(tmp_path / "course.zip", tmp_path / "scratch")
    assert kit.manifest.language == "zh-TW" and kit.tasks == TaskSettings.quick() and kit.manifest.data.rows == 60


def test_options_the_kit_fixes_are_refused_beside_it(tmp_path, public_csv):
    make_kit(tmp_path / "KIT", public_csv)

    outcome = runner.invoke(app, ["check", str(EXAMPLES / "small_cnn"), "--kit", str(tmp_path / "KIT"),
                                  "--lang", "en", "--quick", "--out", str(tmp_path / "out")])

    assert outcome.exit_code == 2
    assert "leave out --quick" in outcome.output
    assert not (tmp_path / "out").exists()


def test_a_changed_kit_stops_check_before_anything_runs(tmp_path, public_csv):
    folder = make_kit(tmp_path / "KIT", public_csv)
    (folder / "data" / "eval.csv").write_text("label,feature\n")

    outcome = runner.invoke(app, ["check", str(EXAMPLES / "small_cnn"), "--kit", str(folder),
                                  "--out", str(tmp_path / "out")])

    assert outcome.exit_code == 2
    assert "data/eval.csv was changed after the kit was made" in outcome.output


# --- the student's check and the TA's grade on the kit's public split ---------------------------


def criteria(result: dict) -> dict[str, tuple]:
    return {c["id"]: (c["score"], c.get("value")) for q in result["questions"] for c in q["criteria"]}


def test_a_students_check_with_the_kit_gives_the_tas_numbers_on_its_public_split(tmp_path, public_csv, require_bwrap):
    kit = runner.invoke(app, ["kit", "--data", str(public_csv), "--out", str(tmp_path / "KIT.zip"), "--quick"])
    assert kit.exit_code == 0, kit.output
    with zipfile.ZipFile(tmp_path / "KIT.zip") as archive:
        archive.extractall(tmp_path / "KIT")  # the TA keeps the folder, students get the zip
    submissions = tmp_path / "submissions"
    shutil.copytree(EXAMPLES / "small_cnn", submissions / "small_cnn")

    check = runner.invoke(app, ["check", str(submissions / "small_cnn"), "--kit", str(tmp_path / "KIT.zip"),
                                "--out", str(tmp_path / "student")])
    grade = runner.invoke(app, ["grade", str(submissions), "--kit", str(tmp_path / "KIT"), "--workers", "1",
                                "--out", str(tmp_path / "ta")])

    assert check.exit_code == 0 and grade.exit_code == 0, check.output + grade.output
    assert "synthetic faces" not in check.output  # the kit's data is real data to the grader
    student = json.loads((tmp_path / "student" / "b09902022" / "result.json").read_text())
    ta = json.loads((tmp_path / "ta" / "b09902022" / "result.json").read_text())
    assert student["data_sha256"] == ta["data_sha256"]
    assert criteria(student) == criteria(ta)
    assert (student["score"], student["accuracy"], student["per_class_recall"]) == \
        (ta["score"], ta["accuracy"], ta["per_class_recall"])
    assert student["data_path"].endswith("KIT.zip!/data/eval.csv")


def test_the_ta_grades_private_data_with_the_kits_settings(tmp_path, public_csv, small_eval_csv):
    make_kit(tmp_path / "KIT", public_csv)

    setup = _setup(small_eval_csv, "PrivateTest", None, tmp_path / "out", "en", "cpu", "inprocess",
                   kit=tmp_path / "KIT")

    assert setup.evaluation.path == str(small_eval_csv.resolve()) and len(setup.evaluation.labels) == 400
    assert setup.tasks == TaskSettings.quick() and setup.language == "zh-TW"
    assert setup.rubric == load_rubric(default_rubric_path())


def test_without_data_the_kits_public_split_is_graded(tmp_path, public_csv):
    make_kit(tmp_path / "kit.zip", public_csv)

    setup = _setup(None, "PrivateTest", None, tmp_path / "out", "en", "cpu", "inprocess", kit=tmp_path / "kit.zip")

    assert len(setup.evaluation.labels) == 60 and not setup.evaluation.synthetic
    assert setup.evaluation.path == f"{(tmp_path / 'kit.zip').resolve()}!/data/eval.csv"
