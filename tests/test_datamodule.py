"""FaceDataModule serves any reader's FaceSet; its predict loader never carries labels."""

import numpy as np
import pytest
from PIL import Image

from grader.data.datamodule import FaceDataModule
from grader.data.synth import generate


def write_fer2013(path, faces, usage_of):
    lines = ["emotion,pixels,Usage"]
    for index, (label, image) in enumerate(zip(faces.labels, faces.images)):
        lines.append(f"{label},{' '.join(map(str, image.ravel()))},{usage_of(index)}")
    path.write_text("\n".join(lines) + "\n")


def test_predict_batches_hold_pixels_only_in_order():
    faces = generate(70, seed=1)
    batches = list(FaceDataModule(faces, batch_size=32).predict_dataloader())
    assert [len(b) for b in batches] == [1, 1, 1]  # one tensor per batch: no labels
    pixels = np.concatenate([b[0].numpy() for b in batches])
    np.testing.assert_array_equal(pixels, faces.images.astype(np.float32))


def test_training_batches_are_shuffled_the_same_way_for_the_same_seed():
    faces = generate(64, seed=2)
    first = next(iter(FaceDataModule(faces, train=faces, batch_size=16, seed=3).train_dataloader()))[1]
    again = next(iter(FaceDataModule(faces, train=faces, batch_size=16, seed=3).train_dataloader()))[1]
    other = next(iter(FaceDataModule(faces, train=faces, batch_size=16, seed=4).train_dataloader()))[1]
    assert first.tolist() == again.tolist() and first.tolist() != other.tolist()


def test_it_serves_fer2013_rows_of_the_chosen_usage(tmp_path):
    faces = generate(20, seed=5)
    path = tmp_path / "fer2013.csv"
    write_fer2013(path, faces, lambda i: "Training" if i < 12 else "PrivateTest")
    data = FaceDataModule.from_paths(path, train=path)
    np.testing.assert_array_equal(data.evaluation.images, faces.images[12:])
    np.testing.assert_array_equal(data.train.labels, faces.labels[:12])


def test_it_serves_an_image_folder(tmp_path):
    faces = generate(14, seed=6)
    for index, (label, image) in enumerate(zip(faces.labels, faces.images)):
        (tmp_path / str(label)).mkdir(exist_ok=True)
        Image.fromarray(image).save(tmp_path / str(label) / f"{index:03d}.png")
    data = FaceDataModule.from_paths(tmp_path)
    assert sorted(data.evaluation.labels.tolist()) == sorted(faces.labels.tolist())
    assert len(list(data.val_dataloader())[0]) == 2  # validation batches carry labels


def test_validation_needs_labels(tmp_path):
    faces = generate(10, seed=7)
    unlabeled = type(faces)(images=faces.images, labels=None, ids=faces.ids)
    with pytest.raises(ValueError, match="no labels"):
        FaceDataModule(unlabeled).val_dataloader()
