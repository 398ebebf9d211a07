"""Specifications of the face-set readers: what each layout yields, how bad files are reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from grader.data.course_csv import read_course_csv
from grader.data.faceset import DataFormatError
from grader.data.fer2013_csv import read_fer2013_csv
from grader.data.image_folder import read_image_folder
from grader.data.readers import read_faces

# --- helpers --------------------------------------------------------------------------------


def gradient(offset: int = 0) -> np.ndarray:
    """A 48x48 face whose pixel at flat index i is (i + offset) % 256: every position is known."""
    return ((np.arange(48 * 48) + offset) % 256).astype(np.uint8).reshape(48, 48)


def feature(image: np.ndarray) -> str:
    return " ".join(str(value) for value in image.reshape(-1))


def feature_of(values: list[int] | range) -> str:
    return " ".join(str(value) for value in values)


VALID = feature(gradient())


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_course(
    path: Path, rows: list[tuple[object, str]], header: str = "label,feature"
) -> Path:
    return write_lines(path, [header] + [f"{key},{pixels}" for key, pixels in rows])


def write_fer(path: Path, rows: list[tuple[object, str, str]]) -> Path:
    body = [f"{emotion},{pixels},{usage}" for emotion, pixels, usage in rows]
    return write_lines(path, ["emotion,pixels,Usage"] + body)


def write_image(path: Path, image: np.ndarray, mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).convert(mode).save(path)
    return path


def error_of(read, *args, **kwargs) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        read(*args, **kwargs)
    return info.value


# --- course CSV -----------------------------------------------------------------------------


def test_course_csv_round_trips_labels_and_pixels(tmp_path):
    rows = [(3, feature(gradient(0))), (6, feature(gradient(100)))]
    path = write_course(tmp_path / "train.csv", rows)

    faces = read_course_csv(path)

    assert faces.images.dtype == np.uint8
    np.testing.assert_array_equal(faces.images, np.stack([gradient(0), gradient(100)]))
    np.testing.assert_array_equal(faces.labels, [3, 6])
    assert faces.labels.dtype == np.int64


def test_course_csv_pixels_are_row_major(tmp_path):
    values = list(range(256)) * 9  # 2304 values; value == flat index for the first 256

    faces = read_course_csv(write_course(tmp_path / "train.csv", [(0, feature_of(values))]))

    assert faces.images[0, 0, 1] == 1  # pixel index 1 is row 0, column 1
    assert faces.images[0, 1, 0] == 48  # pixel index 48 starts row 1
    assert faces.images[0, 0, 47] == 47


def test_labeled_course_csv_ids_are_row_positions(tmp_path):
    path = write_course(tmp_path / "train.csv", [(0, VALID), (1, VALID), (2, VALID)])

    np.testing.assert_array_equal(read_course_csv(path).ids, [0, 1, 2])


def test_unlabeled_course_csv_has_ids_from_column_and_no_labels(tmp_path):
    rows = [(17, feature(gradient(5))), (4, VALID)]
    path = write_course(tmp_path / "test.csv", rows, header="id,feature")

    faces = read_course_csv(path)

    assert faces.labels is None
    np.testing.assert_array_equal(faces.ids, [17, 4])
    np.testing.assert_array_equal(faces.images[0], gradient(5))


def test_course_csv_source_names_file_layout_and_rows(tmp_path):
    path = write_course(tmp_path / "train.csv", [(0, VALID)] * 3)

    assert read_course_csv(path).source == "train.csv (course CSV, 3 rows)"


def test_the_set_records_its_files_absolute_path_and_sha256(tmp_path):
    import hashlib

    path = write_course(tmp_path / "eval.csv", [(0, VALID)] * 3)
    faces = read_faces(path)
    assert faces.path == str(path.resolve()) and not faces.synthetic
    assert faces.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_bundled_data_says_it_is_synthetic():
    from grader.data.bundled import bundled_eval_path, bundled_evaluation

    faces = bundled_evaluation()
    assert faces.synthetic and faces.path == str(bundled_eval_path().resolve()) and len(faces.sha256) == 64


def test_course_csv_header_ignores_case_and_spaces(tmp_path):
    path = write_course(tmp_path / "train.csv", [(2, VALID)], header=" Label , FEATURE ")

    np.testing.assert_array_equal(read_course_csv(path).labels, [2])


def test_course_csv_ignores_utf8_byte_order_mark(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"\xef\xbb\xbflabel,feature\n1," + VALID.encode() + b"\n")

    np.testing.assert_array_equal(read_course_csv(path).labels, [1])


def test_course_csv_skips_blank_lines_but_keeps_line_numbers(tmp_path):
    lines = ["label,feature", f"0,{VALID}", "", f"9,{VALID}", ""]
    path = write_lines(tmp_path / "train.csv", lines)

    err = error_of(read_course_csv, path)

    assert err.line == 4
    assert "label 9 is not a class" in str(err)


def test_course_csv_reads_crlf_line_endings(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"label,feature\r\n5," + VALID.encode() + b"\r\n")

    faces = read_course_csv(path)

    np.testing.assert_array_equal(faces.labels, [5])
    np.testing.assert_array_equal(faces.images[0], gradient())


# --- part masks -----------------------------------------------------------------------------


def test_masks_npz_beside_csv_is_attached(tmp_path):
    path = write_course(tmp_path / "eval.csv", [(0, VALID), (1, VALID)])
    masks = np.zeros((2, 48, 48), dtype=np.uint8)
    masks[1, 20:30, 10:38] = 5  # mouth
    np.savez(tmp_path / "eval_masks.npz", masks=masks)

    faces = read_course_csv(path)

    np.testing.assert_array_equal(faces.masks, masks)
    assert faces.masks.dtype == np.uint8
    assert "part masks" in faces.source


def test_no_masks_npz_means_no_masks(tmp_path):
    path = write_course(tmp_path / "eval.csv", [(0, VALID)])
    np.savez(tmp_path / "other_masks.npz", masks=np.zeros((1, 48, 48), dtype=np.uint8))

    assert read_course_csv(path).masks is None


def test_masks_npz_with_wrong_row_count_names_the_npz(tmp_path):
    path = write_course(tmp_path / "eval.csv", [(0, VALID), (1, VALID)])
    np.savez(tmp_path / "eval_masks.npz", masks=np.zeros((3, 48, 48), dtype=np.uint8))

    err = error_of(read_course_csv, path)

    assert err.path.endswith("eval_masks.npz")
    assert "(3, 48, 48), expected (2, 48, 48)" in str(err)


def test_masks_npz_without_masks_array_is_rejected(tmp_path):
    path = write_course(tmp_path / "eval.csv", [(0, VALID)])
    np.savez(tmp_path / "eval_masks.npz", parts=np.zeros((1, 48, 48), dtype=np.uint8))

    err = error_of(read_course_csv, path)

    assert err.path.endswith("eval_masks.npz")
    assert "no array 'masks' (found: parts)" in str(err)


def test_masks_npz_with_value_outside_parts_is_rejected(tmp_path):
    path = write_course(tmp_path / "eval.csv", [(0, VALID)])
    masks = np.zeros((1, 48, 48), dtype=np.uint8)
    masks[0, 0, 0] = 9
    np.savez(tmp_path / "eval_masks.npz", masks=masks)

    assert "mask value 9 is not a part (expected 0..5" in str(error_of(read_course_csv, path))


def test_corrupt_masks_npz_is_rejected(tmp_path):
    path = write_course(tmp_path / "eval.csv", [(0, VALID)])
    (tmp_path / "eval_masks.npz").write_bytes(b"not a zip file")

    err = error_of(read_course_csv, path)

    assert err.path.endswith("eval_masks.npz")
    assert "cannot read masks" in str(err)


# --- course CSV errors ----------------------------------------------------------------------


def test_short_feature_reports_count_and_line(tmp_path):
    path = write_course(tmp_path / "train.csv", [(0, VALID), (1, feature_of([0] * 2303))])

    err = error_of(read_course_csv, path)

    assert err.line == 3
    assert "feature has 2303 values, expected 2304 (48x48)" in str(err)


def test_long_feature_reports_count_and_line(tmp_path):
    path = write_course(tmp_path / "train.csv", [(0, feature_of([0] * 2305))])

    err = error_of(read_course_csv, path)

    assert err.line == 2
    assert "2305 values" in str(err)


def test_empty_feature_reports_zero_values(tmp_path):
    path = write_course(tmp_path / "train.csv", [(0, VALID), (0, VALID), (1, "")])

    err = error_of(read_course_csv, path)

    assert err.line == 4
    assert "feature has 0 values" in str(err)


def test_pixel_above_255_is_rejected(tmp_path):
    values = [0] * 2304
    values[10] = 300
    path = write_course(tmp_path / "train.csv", [(0, VALID), (0, VALID), (1, feature_of(values))])

    err = error_of(read_course_csv, path)

    assert err.line == 4
    assert "pixel value 300 is outside 0..255" in str(err)
    assert "pixel 11 of 2304" in str(err)


def test_negative_pixel_is_rejected(tmp_path):
    values = [0] * 2304
    values[0] = -1
    path = write_course(tmp_path / "train.csv", [(0, feature_of(values))])

    err = error_of(read_course_csv, path)

    assert err.line == 2
    assert "pixel value -1 is outside 0..255" in str(err)


def test_non_integer_pixel_is_rejected(tmp_path):
    values: list[object] = [0] * 2304
    values[5] = "12.5"
    path = write_course(tmp_path / "train.csv", [(0, VALID), (0, feature_of(values))])

    err = error_of(read_course_csv, path)

    assert err.line == 3
    assert "pixel value '12.5' is not an integer" in str(err)


def test_first_bad_row_is_reported_when_several_are_bad(tmp_path):
    rows = [(0, VALID)] * 5 + [(0, feature_of([0] * 10)), (0, feature_of([999] * 2304))]
    path = write_course(tmp_path / "train.csv", rows)

    assert error_of(read_course_csv, path).line == 7


def test_label_outside_classes_is_rejected(tmp_path):
    path = write_course(tmp_path / "train.csv", [(0, VALID), (9, VALID)])

    err = error_of(read_course_csv, path)

    assert err.line == 3
    assert "label 9 is not a class (expected 0..6)" in str(err)


def test_non_integer_label_is_rejected(tmp_path):
    path = write_course(tmp_path / "train.csv", [("x", VALID)])

    err = error_of(read_course_csv, path)

    assert err.line == 2
    assert "label 'x' is not an integer" in str(err)


def test_non_integer_id_is_rejected(tmp_path):
    path = write_course(tmp_path / "test.csv", [(0, VALID), ("a7", VALID)], header="id,feature")

    err = error_of(read_course_csv, path)

    assert err.line == 3
    assert "id 'a7' is not an integer" in str(err)


def test_repeated_id_is_rejected(tmp_path):
    rows = [(4, VALID), (5, VALID), (4, VALID)]
    path = write_course(tmp_path / "test.csv", rows, header="id,feature")

    err = error_of(read_course_csv, path)

    assert err.line == 4
    assert "id 4 repeats line 2" in str(err)


def test_row_with_missing_field_is_rejected(tmp_path):
    path = write_lines(tmp_path / "train.csv", ["label,feature", f"0,{VALID}", "3"])

    err = error_of(read_course_csv, path)

    assert err.line == 3
    assert "row has 1 field, expected 2" in str(err)


def test_missing_feature_column_is_rejected(tmp_path):
    path = write_course(tmp_path / "train.csv", [(0, VALID)], header="label,pixels")

    err = error_of(read_course_csv, path)

    assert err.line == 1
    assert "missing column 'feature'" in str(err)


def test_missing_label_or_id_column_is_rejected(tmp_path):
    path = write_course(tmp_path / "train.csv", [(0, VALID)], header="emotion,feature")

    err = error_of(read_course_csv, path)

    assert err.line == 1
    assert "missing column 'label' or 'id'" in str(err)


def test_empty_file_is_rejected(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"")

    err = error_of(read_course_csv, path)

    assert err.line is None
    assert "empty file" in str(err)


def test_blank_only_file_counts_as_empty(tmp_path):
    path = write_lines(tmp_path / "train.csv", ["", "   ", ""])

    assert "empty file" in str(error_of(read_course_csv, path))


def test_header_only_file_has_no_data_rows(tmp_path):
    path = write_lines(tmp_path / "train.csv", ["label,feature"])

    err = error_of(read_course_csv, path)

    assert err.line is None
    assert "no data rows" in str(err)


def test_missing_file_is_reported(tmp_path):
    err = error_of(read_course_csv, tmp_path / "nowhere.csv")

    assert err.path.endswith("nowhere.csv")
    assert "file does not exist" in str(err)


def test_non_utf8_byte_reports_its_line(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"label,feature\n0," + VALID.encode() + b"\n\xff1," + VALID.encode() + b"\n")

    err = error_of(read_course_csv, path)

    assert err.line == 3
    assert "byte 0xff is not UTF-8" in str(err)


def test_error_message_starts_with_file_and_line(tmp_path):
    path = write_course(tmp_path / "train.csv", [(0, VALID), (7, VALID)])

    err = error_of(read_course_csv, path)

    assert str(err).startswith(f"{path}:3: ")


def test_course_csv_of_3589_rows_reads_every_row_in_order(tmp_path):
    # Several 4096-row parse chunks' worth would be slow here; 3589 rows still span the bulk path.
    rows = [(index % 7, feature(gradient(index % 256))) for index in range(256)]
    path = write_course(tmp_path / "test.csv", (rows * 15)[:3589])

    faces = read_course_csv(path)

    assert len(faces) == 3589
    np.testing.assert_array_equal(faces.images[300], gradient(300 % 256))
    assert faces.labels[3588] == 3588 % 256 % 7


# --- fer2013.csv ----------------------------------------------------------------------------


def fer_rows() -> list[tuple[object, str, str]]:
    return [
        (0, feature(gradient(0)), "Training"),
        (1, feature(gradient(1)), "PrivateTest"),
        (2, feature(gradient(2)), "PublicTest"),
        (3, feature(gradient(3)), "PrivateTest"),
        (4, feature(gradient(4)), "Training"),
    ]


def test_fer2013_keeps_private_test_rows_by_default(tmp_path):
    faces = read_fer2013_csv(write_fer(tmp_path / "fer2013.csv", fer_rows()))

    np.testing.assert_array_equal(faces.labels, [1, 3])
    np.testing.assert_array_equal(faces.ids, [1, 3])
    np.testing.assert_array_equal(faces.images, np.stack([gradient(1), gradient(3)]))


def test_fer2013_keeps_requested_usage(tmp_path):
    faces = read_fer2013_csv(write_fer(tmp_path / "fer2013.csv", fer_rows()), usage="Training")

    np.testing.assert_array_equal(faces.labels, [0, 4])
    np.testing.assert_array_equal(faces.ids, [0, 4])


def test_fer2013_usage_none_keeps_every_row(tmp_path):
    faces = read_fer2013_csv(write_fer(tmp_path / "fer2013.csv", fer_rows()), usage=None)

    np.testing.assert_array_equal(faces.ids, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(faces.images[2], gradient(2))


def test_fer2013_pixels_are_row_major(tmp_path):
    values = list(range(256)) * 9
    path = write_fer(tmp_path / "fer2013.csv", [(0, feature_of(values), "PrivateTest")])

    faces = read_fer2013_csv(path)

    assert faces.images[0, 0, 1] == 1
    assert faces.images[0, 1, 0] == 48


def test_fer2013_source_names_usage_and_rows(tmp_path):
    path = write_fer(tmp_path / "fer2013.csv", fer_rows())

    assert read_fer2013_csv(path).source == "fer2013.csv (FER2013 PrivateTest, 2 rows)"
    assert read_fer2013_csv(path, usage=None).source == "fer2013.csv (FER2013 all usages, 5 rows)"


def test_fer2013_without_matching_usage_lists_usages_found(tmp_path):
    path = write_fer(tmp_path / "fer2013.csv", [(0, VALID, "Training"), (1, VALID, "PublicTest")])

    err = error_of(read_fer2013_csv, path)

    assert err.line is None
    assert "no row has Usage 'PrivateTest' (found: PublicTest, Training)" in str(err)


def test_fer2013_bad_emotion_reports_its_line(tmp_path):
    rows = [(0, VALID, "PrivateTest"), (7, VALID, "PrivateTest")]
    path = write_fer(tmp_path / "fer2013.csv", rows)

    err = error_of(read_fer2013_csv, path)

    assert err.line == 3
    assert "emotion 7 is not a class (expected 0..6)" in str(err)


def test_fer2013_short_pixels_reports_its_line(tmp_path):
    rows = [(0, VALID, "Training"), (0, feature_of([1] * 100), "PrivateTest")]
    err = error_of(read_fer2013_csv, write_fer(tmp_path / "fer2013.csv", rows))

    assert err.line == 3
    assert "pixels has 100 values, expected 2304" in str(err)


def test_fer2013_rejects_other_header(tmp_path):
    path = write_course(tmp_path / "train.csv", [(0, VALID)])

    err = error_of(read_fer2013_csv, path)

    assert err.line == 1
    assert "expected 'emotion,pixels,Usage'" in str(err)


# --- image folders --------------------------------------------------------------------------


def test_image_folder_round_trips_pixels_with_class_names_and_indices(tmp_path):
    write_image(tmp_path / "Happy" / "b.png", gradient(20))
    write_image(tmp_path / "happy" / "a.png", gradient(10))
    write_image(tmp_path / "0" / "z.png", gradient(30))
    write_image(tmp_path / "6" / "a.png", gradient(40))

    faces = read_image_folder(tmp_path)

    np.testing.assert_array_equal(faces.labels, [0, 3, 3, 6])
    expected = np.stack([gradient(30), gradient(20), gradient(10), gradient(40)])
    np.testing.assert_array_equal(faces.images, expected)
    np.testing.assert_array_equal(faces.ids, [0, 1, 2, 3])


def test_image_folder_orders_by_class_then_file_name(tmp_path):
    for name, offset in [("c.png", 3), ("a.png", 1), ("b.png", 2)]:
        write_image(tmp_path / "Sad" / name, gradient(offset))
    write_image(tmp_path / "Angry" / "z.png", gradient(9))

    faces = read_image_folder(tmp_path)

    np.testing.assert_array_equal(faces.labels, [0, 4, 4, 4])
    assert [int(image[0, 0]) for image in faces.images] == [9, 1, 2, 3]


def test_image_folder_pixels_are_row_major(tmp_path):
    image = np.zeros((48, 48), dtype=np.uint8)
    image[0, 1] = 200  # x=1, y=0 in image coordinates
    write_image(tmp_path / "3" / "face.png", image)

    faces = read_image_folder(tmp_path)

    assert faces.images[0, 0, 1] == 200
    assert faces.images[0, 1, 0] == 0


def test_image_folder_converts_colour_to_grayscale(tmp_path):
    write_image(tmp_path / "Fear" / "face.png", gradient(), mode="RGB")

    np.testing.assert_array_equal(read_image_folder(tmp_path).images[0], gradient())


def test_image_folder_reads_bmp_and_upper_case_suffixes(tmp_path):
    write_image(tmp_path / "1" / "a.BMP", gradient(1))
    write_image(tmp_path / "1" / "b.PNG", gradient(2))

    faces = read_image_folder(tmp_path)

    np.testing.assert_array_equal(faces.images, np.stack([gradient(1), gradient(2)]))


def test_image_folder_reads_jpeg(tmp_path):
    flat = np.full((48, 48), 128, dtype=np.uint8)
    write_image(tmp_path / "Surprise" / "face.jpg", flat)

    faces = read_image_folder(tmp_path)

    np.testing.assert_array_equal(faces.labels, [5])
    assert np.abs(faces.images[0].astype(int) - 128).max() <= 2  # JPEG is lossy


def test_image_folder_skips_hidden_and_non_image_files(tmp_path):
    write_image(tmp_path / "2" / "face.png", gradient())
    (tmp_path / "2" / "notes.txt").write_text("scanned 2024")
    (tmp_path / "2" / "._face.png").write_bytes(b"macOS metadata")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / "README.md").write_text("faces")

    faces = read_image_folder(tmp_path)

    assert len(faces) == 1


def test_image_folder_source_names_folder_and_count(tmp_path):
    root = tmp_path / "faces"
    write_image(root / "2" / "face.png", gradient())

    assert read_image_folder(root).source == "faces/ (image folder, 1 image)"


def test_image_of_wrong_size_is_rejected_not_resized(tmp_path):
    write_image(tmp_path / "2" / "big.png", np.zeros((48, 64), dtype=np.uint8))

    err = error_of(read_image_folder, tmp_path)

    assert err.path.endswith("big.png")
    assert "image is 64x48, expected 48x48" in str(err)


def test_folder_that_is_not_a_class_is_rejected(tmp_path):
    write_image(tmp_path / "smiling" / "face.png", gradient())

    err = error_of(read_image_folder, tmp_path)

    assert err.path.endswith("smiling")
    assert "'smiling' is not a class" in str(err)


def test_image_outside_class_folders_is_rejected(tmp_path):
    write_image(tmp_path / "face.png", gradient())

    err = error_of(read_image_folder, tmp_path)

    assert err.path.endswith("face.png")
    assert "not inside a class folder" in str(err)


def test_unreadable_image_names_the_file(tmp_path):
    (tmp_path / "4").mkdir()
    (tmp_path / "4" / "broken.png").write_bytes(b"not a png")

    err = error_of(read_image_folder, tmp_path)

    assert err.path.endswith("broken.png")
    assert "cannot read image" in str(err)


def test_folder_without_images_is_rejected(tmp_path):
    (tmp_path / "Happy").mkdir()

    assert "no images found" in str(error_of(read_image_folder, tmp_path))


def test_missing_folder_is_reported(tmp_path):
    assert "folder does not exist" in str(error_of(read_image_folder, tmp_path / "nowhere"))


# --- layout detection -----------------------------------------------------------------------


def test_read_faces_detects_labeled_course_csv(tmp_path):
    faces = read_faces(write_course(tmp_path / "train.csv", [(4, VALID)]))

    assert faces.meta["layout"] == "course_csv"
    np.testing.assert_array_equal(faces.labels, [4])


def test_read_faces_detects_unlabeled_course_csv(tmp_path):
    faces = read_faces(write_course(tmp_path / "test.csv", [(8, VALID)], header="ID,Feature"))

    assert faces.labels is None
    np.testing.assert_array_equal(faces.ids, [8])


def test_read_faces_detects_fer2013_and_passes_usage(tmp_path):
    path = write_fer(tmp_path / "fer2013.csv", fer_rows())

    assert read_faces(path).meta["layout"] == "fer2013"
    np.testing.assert_array_equal(read_faces(path, usage="PublicTest").ids, [2])


def test_read_faces_detects_image_folder(tmp_path):
    write_image(tmp_path / "Neutral" / "face.png", gradient(7))

    faces = read_faces(tmp_path)

    assert faces.meta["layout"] == "image_folder"
    np.testing.assert_array_equal(faces.images[0], gradient(7))


def test_read_faces_rejects_unknown_header_listing_accepted_ones(tmp_path):
    path = write_lines(tmp_path / "faces.csv", ["name,pixels", f"a,{VALID}"])

    err = error_of(read_faces, path)

    assert err.line == 1
    assert "header 'name,pixels' is not a known layout" in str(err)
    for accepted in ("label,feature", "id,feature", "emotion,pixels,Usage"):
        assert accepted in str(err)


def test_read_faces_rejects_reordered_known_columns(tmp_path):
    path = write_lines(tmp_path / "faces.csv", ["feature,label", f"{VALID},0"])

    assert "is not a known layout" in str(error_of(read_faces, path))


def test_read_faces_reports_empty_file(tmp_path):
    path = tmp_path / "faces.csv"
    path.write_text("")

    assert "empty file" in str(error_of(read_faces, path))


def test_read_faces_reports_missing_path(tmp_path):
    assert "file does not exist" in str(error_of(read_faces, tmp_path / "missing.csv"))
