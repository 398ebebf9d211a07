"""Specifications of submission.yaml: what a valid file yields, and how every mistake is reported
with the field's name and its line, so a student can fix it without reading the grader's code."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from grader.submission.spec import SubmissionSpec, load_spec
from grader.yamlfile import ConfigError

# --- helpers --------------------------------------------------------------------------------

# A complete, valid submission.yaml; each line's number is fixed, so the tests can name it.
FULL = """\
student_id: b04901069
name: 林志皓
model:
  format: state_dict
  source: model.py
  entry: Net
  weights: model.pth
input:
  size: 44
  channels: 3
  scale: 1
  mean: 0.5
  std: 0.25
visualize:
  filter_layer: conv1
  freeform: gradcam
"""

# The smallest valid file: every optional field left to its default.
MINIMAL = """\
student_id: b04901069
model:
  source: model.py
  entry: Net
  weights: model.pth
"""


def write_spec(folder: Path, text: str) -> Path:
    """Write `text` (dedented) as the folder's submission.yaml and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "submission.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def problems(folder: Path) -> list[str]:
    """The problems load_spec reports, each 'line: field: what is wrong' (the file's path dropped)."""
    with pytest.raises(ConfigError) as caught:
        load_spec(folder)
    prefix = f"{folder / 'submission.yaml'}:"
    assert all(problem.startswith(prefix) for problem in caught.value.problems), caught.value.problems
    return [problem.removeprefix(prefix) for problem in caught.value.problems]


def only_problem(folder: Path) -> str:
    found = problems(folder)
    assert len(found) == 1, found
    return found[0]


# --- a valid file ---------------------------------------------------------------------------


def test_a_full_spec_loads_every_field(tmp_path):
    spec = load_spec(write_spec(tmp_path, FULL))

    assert isinstance(spec, SubmissionSpec)
    assert spec.student_id == "b04901069"
    assert spec.name == "林志皓"
    assert (spec.model.format, spec.model.source, spec.model.entry, spec.model.weights) == (
        "state_dict", "model.py", "Net", "model.pth")
    assert (spec.input.size, spec.input.channels, spec.input.scale, spec.input.mean, spec.input.std) == (
        44, 3, 1.0, 0.5, 0.25)
    assert (spec.visualize.filter_layer, spec.visualize.freeform) == ("conv1", "gradcam")
    assert spec.weights_format == "state_dict"


def test_omitted_fields_take_their_documented_defaults(tmp_path):
    spec = load_spec(write_spec(tmp_path, MINIMAL))

    assert spec.name == ""
    assert spec.model.format is None
    assert (spec.input.size, spec.input.channels, spec.input.scale, spec.input.mean, spec.input.std) == (
        48, 1, 255.0, 0.0, 1.0)
    assert spec.visualize.filter_layer is None
    assert spec.visualize.freeform == "class_model"


def test_a_chinese_name_is_kept_as_written(tmp_path):
    assert load_spec(write_spec(tmp_path, FULL)).name == "林志皓"


def test_a_numeric_student_id_becomes_its_digits_as_text(tmp_path):
    spec = load_spec(write_spec(tmp_path, MINIMAL.replace("b04901069", "410512345")))

    assert spec.student_id == "410512345"


def test_a_torchscript_spec_needs_no_source_or_entry(tmp_path):
    spec = load_spec(write_spec(tmp_path, """\
        student_id: s1
        model:
          format: torchscript
          weights: model.pt
        """))

    assert (spec.model.source, spec.model.entry) == (None, None)
    assert spec.weights_format == "torchscript"


def test_a_torchscript_file_may_have_any_name_even_ckpt(tmp_path):
    spec = load_spec(write_spec(tmp_path, """\
        student_id: s1
        model:
          format: torchscript
          weights: best.ckpt
        """))

    assert spec.weights_format == "torchscript"


def test_a_pt_file_without_format_passes_and_is_sniffed_later(tmp_path):
    # The file may be TorchScript; build.sniff_format decides when it opens it.
    spec = load_spec(write_spec(tmp_path, """\
        student_id: s1
        model:
          weights: model.pt
        """))

    assert spec.model.format is None
    assert spec.weights_format == "state_dict"


def test_a_ckpt_file_without_format_is_taken_for_a_lightning_checkpoint(tmp_path):
    spec = load_spec(write_spec(tmp_path, MINIMAL.replace("model.pth", "last.ckpt")))

    assert spec.weights_format == "lightning_ckpt"


# --- student_id -----------------------------------------------------------------------------


def test_a_missing_student_id_is_reported_at_the_top_of_the_file(tmp_path):
    folder = write_spec(tmp_path, MINIMAL.replace("student_id: b04901069\n", "name: Lin\n"))

    assert only_problem(folder) == "1: student_id: missing: this field is required"


@pytest.mark.parametrize("bad_id", ["b0490 1069", "b0490/1069", "-b04901069", "_b04901069", "b" * 65])
def test_a_student_id_that_is_not_a_safe_file_name_is_refused(tmp_path, bad_id):
    folder = write_spec(tmp_path, MINIMAL.replace("b04901069", f"'{bad_id}'"))

    assert only_problem(folder) == (f"1: student_id: '{bad_id[:79]}{'…' if len(bad_id) > 80 else ''}' is not a "
                                    "student id: use 1 to 64 letters, digits, _ and -, starting with a letter or "
                                    "digit (it names your output folder)")


def test_a_64_character_student_id_is_accepted(tmp_path):
    assert load_spec(write_spec(tmp_path, MINIMAL.replace("b04901069", "b" * 64))).student_id == "b" * 64


def test_a_name_with_control_characters_and_a_lone_surrogate_is_cleaned_and_bounded(tmp_path):
    folder = write_spec(tmp_path, MINIMAL + 'name: "Eve\\x1b[31m \\ud800 ' + "x" * 300 + '"\n')
    name = load_spec(folder).name
    assert name.startswith("Eve\ufffd[31m \ufffd x") and len(name) == 200
    name.encode("utf-8")


# --- model ----------------------------------------------------------------------------------


def test_a_missing_model_section_is_reported(tmp_path):
    folder = write_spec(tmp_path, "student_id: s1\nname: Lin\n")

    assert only_problem(folder) == "1: model: missing: this field is required"


def test_a_missing_weights_field_is_reported_at_the_model_line(tmp_path):
    folder = write_spec(tmp_path, """\
        student_id: s1
        name: Lin
        model:
          source: model.py
          entry: Net
        """)

    assert only_problem(folder) == "3: model.weights: missing: this field is required"


@pytest.mark.parametrize("weights", ["../x.pt", "/home/lin/x.pt", "sub/../../x.pt"])
def test_weights_outside_the_submission_folder_are_refused(tmp_path, weights):
    folder = write_spec(tmp_path, MINIMAL.replace("model.pth", weights))

    assert only_problem(folder) == (f"5: model.weights: '{weights}' must be a file name inside the "
                                    "submission folder")


def test_a_source_outside_the_submission_folder_is_refused(tmp_path):
    folder = write_spec(tmp_path, MINIMAL.replace("source: model.py", "source: ../model.py"))

    assert only_problem(folder) == "3: model.source: '../model.py' must be a file name inside the submission folder"


def test_weights_in_a_subfolder_are_allowed(tmp_path):
    spec = load_spec(write_spec(tmp_path, MINIMAL.replace("model.pth", "weights/model.pth")))

    assert spec.model.weights == "weights/model.pth"


def test_an_entry_that_is_not_a_python_name_is_refused(tmp_path):
    folder = write_spec(tmp_path, MINIMAL.replace("entry: Net", "entry: 3x"))

    problem = only_problem(folder)
    assert problem.startswith("4: model.entry: '3x' is not a Python name")
    assert "class or function name such as Net" in problem


def test_an_unknown_weights_format_lists_the_known_ones(tmp_path):
    folder = write_spec(tmp_path, MINIMAL.replace("model:\n", "model:\n  format: keras\n"))

    problem = only_problem(folder)
    assert problem.startswith("3: model.format: ")
    assert all(f"'{name}'" in problem for name in ("state_dict", "lightning_ckpt", "torchscript", "export",
                                                   "safetensors", "onnx"))


@pytest.mark.parametrize("weights, fmt", [("model.pt2", "export"), ("model.safetensors", "safetensors"),
                                          ("Model.ONNX", "onnx"), ("last.ckpt", "lightning_ckpt"),
                                          ("model.pth", "state_dict")])
def test_the_weights_files_suffix_names_its_format(weights, fmt):
    from grader.submission.spec import infer_format

    assert infer_format(weights) == fmt


def test_tta_needs_crops_smaller_than_the_face(tmp_path):
    folder = write_spec(tmp_path, MINIMAL + "input:\n  tta: ten_crop\n")
    assert "tta: ten_crop needs crops smaller than the 48-pixel face" in only_problem(folder)


@pytest.mark.parametrize("fmt", ["state_dict", "lightning_ckpt"])
def test_source_and_entry_are_required_for_formats_that_need_python(tmp_path, fmt):
    folder = write_spec(tmp_path, f"""\
        student_id: s1
        model:
          format: {fmt}
          weights: model.pth
        """)

    problem = only_problem(folder)
    assert problem.startswith(f"2: model: model.source and model.entry required for format {fmt}")
    assert "source: model.py, entry: Net" in problem


def test_only_the_missing_one_of_source_and_entry_is_named(tmp_path):
    folder = write_spec(tmp_path, """\
        student_id: s1
        model:
          format: state_dict
          source: model.py
          weights: model.pth
        """)

    assert only_problem(folder).startswith("2: model: model.entry required for format state_dict")


def test_ckpt_weights_without_a_format_still_need_source_and_entry(tmp_path):
    folder = write_spec(tmp_path, """\
        student_id: s1
        model:
          weights: last.ckpt
        """)

    assert only_problem(folder).startswith(
        "2: model: model.source and model.entry required for format lightning_ckpt")


# --- input and visualize --------------------------------------------------------------------


def test_a_misspelled_field_is_reported_as_unknown_at_its_own_line(tmp_path):
    folder = write_spec(tmp_path, MINIMAL + "input:\n  sizee: 44\n")

    assert only_problem(folder) == "7: input.sizee: unknown field (check its spelling)"


def test_two_channels_are_refused(tmp_path):
    folder = write_spec(tmp_path, MINIMAL + "input:\n  channels: 2\n")

    problem = only_problem(folder)
    assert problem.startswith("7: input.channels: ")
    assert "1 or 3" in problem


@pytest.mark.parametrize(("size", "phrase"), [(64, "less than or equal to 48"), (4, "greater than or equal to 8")])
def test_an_input_size_outside_8_to_48_is_refused(tmp_path, size, phrase):
    folder = write_spec(tmp_path, MINIMAL + f"input:\n  size: {size}\n")

    problem = only_problem(folder)
    assert problem.startswith("7: input.size: ")
    assert phrase in problem


@pytest.mark.parametrize(("field", "value"), [("std", 0), ("scale", -1)])
def test_std_and_scale_must_be_positive(tmp_path, field, value):
    folder = write_spec(tmp_path, MINIMAL + f"input:\n  mean: 0.5\n  {field}: {value}\n")

    problem = only_problem(folder)
    assert problem.startswith(f"8: input.{field}: ")
    assert "greater than 0" in problem


def test_an_unknown_freeform_method_lists_the_known_ones(tmp_path):
    folder = write_spec(tmp_path, MINIMAL + "visualize:\n  freeform: deepdream\n")

    problem = only_problem(folder)
    assert problem.startswith("7: visualize.freeform: ")
    assert all(name in problem for name in ("'class_model'", "'gradcam'", "'integrated_gradients'", "'smoothgrad'"))


def test_every_problem_in_the_file_is_reported_at_once(tmp_path):
    folder = write_spec(tmp_path, """\
        student_id: b0490 1069
        model:
          entry: 3x
          weights: ../model.pth
        input:
          channels: 2
          std: 0
        """)

    found = problems(folder)
    assert len(found) == 5
    assert [problem.split(": ")[0:2] for problem in found] == [
        ["1", "student_id"], ["3", "model.entry"], ["4", "model.weights"], ["6", "input.channels"],
        ["7", "input.std"]]


# --- files that are not a spec at all -------------------------------------------------------


def test_invalid_yaml_reports_the_line_it_breaks_at(tmp_path):
    folder = write_spec(tmp_path, """\
        student_id: s1
        model:
          source: model.py
          weights: [model.pth
        input:
          size: 44
        """)

    problem = only_problem(folder)
    assert problem.startswith("5: not valid YAML: ")


def test_a_top_level_list_is_not_a_spec(tmp_path):
    folder = write_spec(tmp_path, "- student_id: s1\n- model: x\n")

    assert only_problem(folder) == "1: expected a mapping of fields (key: value), got list"


def test_a_missing_file_is_reported_by_its_path(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_spec(tmp_path)

    assert caught.value.problems == [f"{tmp_path / 'submission.yaml'}: file not found"]
    assert caught.value.path == str(tmp_path / "submission.yaml")


def test_a_file_that_is_not_utf8_names_the_bad_byte(tmp_path):
    (tmp_path / "submission.yaml").write_bytes("student_id: s1\nname: 林志皓\n".encode("big5"))

    with pytest.raises(ConfigError) as caught:
        load_spec(tmp_path)

    [problem] = caught.value.problems
    assert problem.startswith(f"{tmp_path / 'submission.yaml'}: not UTF-8 text (")
    assert "at byte 21)" in problem



def test_a_student_id_with_a_leading_zero_is_kept_as_written(tmp_path):
    # YAML 1.1 would read 0412345 as an octal number and silently change the id.
    folder = write_spec(tmp_path, "student_id: 0412345\nmodel:\n  source: model.py\n  entry: Net\n"
                                  "  weights: model.pth\n")
    assert load_spec(folder).student_id == "0412345"


def test_an_empty_file_says_it_is_empty(tmp_path):
    assert only_problem(write_spec(tmp_path, "")) == "1: the file is empty; it needs the fields described in the README"
