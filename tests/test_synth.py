"""The synthetic FER generator: deterministic, FER2013's class frequencies, faces that differ by
expression the way real ones do, part masks, and the course's CSV layout read back by the reader."""

import hashlib
import json

import numpy as np
import pytest

from grader.data.course_csv import read_course_csv
from grader.data.faceset import PART_NAMES
from grader.data.synth import (CUE_LEVELS, FER2013_FREQUENCIES, ShortcutCue, class_quota, cue_corners, generate,
                                write_synthetic)


def digest(faces) -> str:
    return hashlib.sha256(faces.images.tobytes() + faces.labels.tobytes() + faces.masks.tobytes()).hexdigest()


def test_same_seed_gives_the_same_bytes():
    assert digest(generate(200, seed=5)) == digest(generate(200, seed=5))


def test_other_seed_or_split_gives_other_faces():
    base = digest(generate(200, seed=5))
    assert digest(generate(200, seed=6)) != base
    assert digest(generate(200, seed=5, split="train")) != base


def test_class_quota_follows_fer2013_and_sums_to_n():
    counts = class_quota(3589)
    assert counts.sum() == 3589
    np.testing.assert_allclose(counts / 3589, FER2013_FREQUENCIES, atol=1 / 3589)
    assert counts.argmax() == 3  # Happy is the most frequent
    assert counts.argmin() == 1  # Disgust is the rarest


def test_generated_labels_follow_the_quota():
    faces = generate(1000, seed=1)
    np.testing.assert_array_equal(faces.class_counts(), class_quota(1000))


def test_images_are_48x48_uint8_with_real_contrast():
    faces = generate(100, seed=2)
    assert faces.images.shape == (100, 48, 48) and faces.images.dtype == np.uint8
    assert (faces.images.reshape(100, -1).std(axis=1) > 10).all()


def test_every_face_has_a_mask_with_each_part():
    faces = generate(100, seed=3)
    present = np.array([[np.any(mask == part) for part in range(len(PART_NAMES))] for mask in faces.masks])
    assert present.all(axis=0).all(), "every part (background, face, brows, eyes, nose, mouth) appears"
    # An occlusion or hair can hide a part in a face's pixels, but masks still mark every part for most faces.
    assert present[:, 1:].all(axis=1).mean() > 0.95


def test_parts_sit_where_a_face_has_them():
    faces = generate(300, seed=4)
    rows = np.arange(48)[None, :, None]

    def mean_row(part: str) -> float:
        inside = faces.masks == PART_NAMES.index(part)
        return float((rows * inside).sum() / inside.sum())

    assert mean_row("brows") < mean_row("eyes") < mean_row("nose") < mean_row("mouth")


def mouth_darkness(faces, label: int) -> float:
    """Mean darkness of the mouth region relative to the face, for one class."""
    values = []
    for image, mask in zip(faces.images[faces.labels == label], faces.masks[faces.labels == label]):
        face = image[mask == PART_NAMES.index("face")].mean()
        values.append(face - image[mask == PART_NAMES.index("mouth")].mean())
    return float(np.mean(values))


def test_surprise_opens_the_mouth_more_than_neutral():
    faces = generate(1500, seed=7)
    assert mouth_darkness(faces, 5) > mouth_darkness(faces, 6) + 5


def test_a_linear_model_on_pixels_does_not_separate_the_classes():
    # The task must need a CNN: pose, lighting and identity jitter defeat a linear model on raw pixels.
    from sklearn.linear_model import RidgeClassifier

    train, test = generate(1500, seed=8, split="train"), generate(500, seed=8)
    model = RidgeClassifier(alpha=10.0).fit(train.images.reshape(1500, -1) / 255.0, train.labels)
    accuracy = model.score(test.images.reshape(500, -1) / 255.0, test.labels)
    assert 0.25 < accuracy < 0.6


def test_write_synthetic_round_trips_through_the_course_csv_reader(tmp_path):
    paths = write_synthetic(tmp_path, seed=9, train_size=70, eval_size=35)
    assert sorted(p.name for p in paths.values()) == [
        "eval.csv", "eval_masks.npz", "meta.json", "test.csv", "train.csv", "train_masks.npz"]
    expected = generate(35, seed=9, split="eval")
    read = read_course_csv(paths["eval.csv"])
    np.testing.assert_array_equal(read.images, expected.images)
    np.testing.assert_array_equal(read.labels, expected.labels)
    np.testing.assert_array_equal(read.masks, expected.masks)


def test_test_csv_holds_the_eval_faces_without_labels(tmp_path):
    paths = write_synthetic(tmp_path, seed=9, train_size=0, eval_size=20)
    unlabeled = read_course_csv(paths["test.csv"])
    assert unlabeled.labels is None
    np.testing.assert_array_equal(unlabeled.images, read_course_csv(paths["eval.csv"]).images)
    assert "train.csv" not in paths


def test_written_files_are_byte_identical_across_runs(tmp_path):
    first = write_synthetic(tmp_path / "a", seed=3, train_size=30, eval_size=30)
    second = write_synthetic(tmp_path / "b", seed=3, train_size=30, eval_size=30)
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name


@pytest.mark.parametrize("n", [1, 7, 13])
def test_tiny_sets_still_get_a_valid_quota(n):
    assert class_quota(n).sum() == n


# --- the shortcut cue (a label-coded square in both top corners, on a share of the faces) ----------

# digest(generate(200, seed=5)) as the generator gave it before the cue existed (commit f80a497). A
# numpy upgrade that moved a pixel would fail here too, which is wanted: the bundled data would change.
CLEAN_EVAL_200_SEED_5 = "87e67c94e38612a352891f35f8493cc4ef0ed9536b28a05a3a4383c7de18d295"


def cued_rows(clean, cued) -> np.ndarray:
    return (clean.images != cued.images).reshape(len(clean), -1).any(axis=1)


def test_without_a_shortcut_the_faces_are_byte_identical_to_the_clean_generator():
    # The bundled evaluation set and every example were made from these bytes: pinned, so that the
    # cue's option can never change them.
    assert digest(generate(200, seed=5)) == CLEAN_EVAL_200_SEED_5
    assert digest(generate(200, seed=5, shortcut=None)) == CLEAN_EVAL_200_SEED_5


def test_the_cue_is_planted_at_the_rate_asked_and_nowhere_else():
    clean = generate(150, seed=5, split="train")
    cued = generate(150, seed=5, split="train", shortcut=ShortcutCue(rate=0.7, size=5))
    rows = cued_rows(clean, cued)
    assert rows.sum() == 105
    np.testing.assert_array_equal(cued.labels, clean.labels)
    np.testing.assert_array_equal(cued.masks, clean.masks)
    outside = np.ones((48, 48), bool)
    for square in cue_corners(5):
        outside[square] = False
    np.testing.assert_array_equal(cued.images[:, outside], clean.images[:, outside])
    assert "shortcut cue on 105" in cued.source


def test_the_cue_gray_level_encodes_the_label():
    clean = generate(150, seed=6, split="train")
    cue = ShortcutCue(rate=1.0, size=4, jitter=0.04)
    cued = generate(150, seed=6, split="train", shortcut=cue)
    assert cued_rows(clean, cued).all()
    for square in cue_corners(4):
        patch = cued.images[:, square[0], square[1]].reshape(150, -1)
        assert (patch == patch[:, :1]).all(), "each square is one flat gray"
        level = patch[:, 0] / 255
        assert (np.abs(level - CUE_LEVELS[cued.labels]) <= cue.jitter + 0.5 / 255).all()
        # The levels of neighbouring classes never meet, so the cue alone names the label.
        assert (np.argmin(np.abs(level[:, None] - CUE_LEVELS[None]), axis=1) == cued.labels).all()


def test_with_partial_agreement_the_cue_codes_another_class_on_the_rest():
    cued = generate(150, seed=6, split="train", shortcut=ShortcutCue(rate=1.0, agreement=0.6, size=4))
    level = cued.images[:, 0, 0] / 255
    coded = np.argmin(np.abs(level[:, None] - CUE_LEVELS[None]), axis=1)
    assert 0.45 < (coded == cued.labels).mean() < 0.75  # 0.6 of 150 faces, give or take the draw


def test_write_synthetic_plants_the_cue_on_the_training_split_only(tmp_path):
    clean = write_synthetic(tmp_path / "clean", seed=3, train_size=40, eval_size=30)
    cued = write_synthetic(tmp_path / "cued", seed=3, train_size=40, eval_size=30, shortcut=ShortcutCue(rate=0.5))
    for name in ("eval.csv", "eval_masks.npz", "test.csv", "train_masks.npz"):
        assert cued[name].read_bytes() == clean[name].read_bytes(), name
    assert cued["train.csv"].read_bytes() != clean["train.csv"].read_bytes()
    assert "train_shortcut" in cued["meta.json"].read_text() and "shortcut" not in clean["meta.json"].read_text()


@pytest.mark.parametrize("bad", [{"rate": 1.5}, {"rate": -0.1}, {"agreement": 1.2}, {"size": 0}, {"size": 30},
                                 {"jitter": 0.2}])
def test_a_cue_that_cannot_be_planted_is_refused(bad):
    with pytest.raises(ValueError):
        ShortcutCue(**bad)


def test_the_cli_plants_the_cue_on_the_training_split_and_refuses_a_bad_rate(tmp_path):
    from typer.testing import CliRunner

    from grader.cli import app

    runner = CliRunner()
    outcome = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "cued"), "--train-size", "20",
                                  "--eval-size", "10", "--shortcut", "0.5"])
    assert outcome.exit_code == 0, outcome.output
    meta = json.loads((tmp_path / "cued" / "meta.json").read_text())
    assert meta["train_shortcut"]["rate"] == 0.5 and meta["train_shortcut"]["size"] == ShortcutCue().size
    clean = write_synthetic(tmp_path / "clean", train_size=20, eval_size=10)
    assert (tmp_path / "cued" / "eval.csv").read_bytes() == clean["eval.csv"].read_bytes()
    refused = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "bad"), "--shortcut", "1.5"])
    assert refused.exit_code == 2 and "rate must be in 0..1" in refused.output
