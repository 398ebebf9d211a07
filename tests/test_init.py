"""`grader init`: a submission.yaml written from what the sandbox finds in the folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from grader.cli import app
from grader.submission.build import build_model
from grader.submission.init_spec import (PLACEHOLDER_ID, Candidates, EntryFinding, Probe, WeightsFinding,
                                         inspection_from, spec_text)
from grader.submission.spec import load_spec
from tests.conftest import EXAMPLES

runner = CliRunner()


def run_init(folder: Path, *args: str):
    return runner.invoke(app, ["init", str(folder), *args], catch_exceptions=False)


def copy_example(name: str, tmp_path: Path, keep_spec: bool = False) -> Path:
    folder = tmp_path / name
    shutil.copytree(EXAMPLES / name, folder, ignore=shutil.ignore_patterns("__pycache__"))
    if not keep_spec:
        (folder / "submission.yaml").unlink()
    return folder


@pytest.mark.parametrize("example", ["small_cnn", "vgg", "residual_zh"])
def test_init_writes_the_examples_submission_yaml(example, tmp_path, require_bwrap):
    folder = copy_example(example, tmp_path)
    result = run_init(folder)
    assert result.exit_code == 0, result.output
    written, original = load_spec(folder), load_spec(EXAMPLES / example)
    assert written.student_id == PLACEHOLDER_ID and "student_id and name are placeholders" in result.output
    for field in ("source", "entry", "weights"):
        assert getattr(written.model, field) == getattr(original.model, field)
    assert written.weights_format == original.weights_format == "state_dict"
    assert (written.input.size, written.input.channels) == (original.input.size, original.input.channels)
    assert "cannot be inferred from the weights" in result.output
    model = build_model(folder, written)
    with torch.no_grad():
        assert model(torch.zeros(2, written.input.channels, written.input.size, written.input.size)).shape == (2, 7)


def test_a_whole_model_file_needs_no_entry(tmp_path, require_bwrap):
    folder = copy_example("torchscript", tmp_path)
    result = run_init(folder)
    assert result.exit_code == 0, result.output
    written, original = load_spec(folder), load_spec(EXAMPLES / "torchscript")
    assert written.model.source is None and written.model.entry is None
    assert (written.model.weights, written.weights_format) == ("model.pt", "torchscript")
    assert (written.input.size, written.input.channels) == (original.input.size, original.input.channels) == (48, 3)
    assert "no model.source or model.entry needed" in result.output


def test_two_fitting_classes_are_both_reported_and_an_existing_spec_is_kept(tmp_path, require_bwrap):
    folder = copy_example("vgg", tmp_path, keep_spec=True)
    with (folder / "model.py").open("a") as source:
        source.write("\n\nclass VGGCopy(VGGNet):\n    pass\n")
    before = (folder / "submission.yaml").read_bytes()
    result = run_init(folder)
    assert result.exit_code == 1, result.output
    line = next(line for line in result.output.splitlines() if "entries load model.pth" in line)
    assert "VGGNet" in line and "VGGCopy" in line
    assert "entry: VGGNet" in result.output  # the yaml it would write: the first, said so
    assert "left as it is (--force replaces it)" in result.output
    assert (folder / "submission.yaml").read_bytes() == before


def test_a_model_py_that_raises_on_import_is_a_clear_message(tmp_path, require_bwrap):
    folder = copy_example("vgg", tmp_path)
    (folder / "model.py").write_text("import torch\n\nraise RuntimeError('boom at import')\n")
    result = run_init(folder)
    assert result.exit_code == 1
    assert "model.py could not be imported" in result.output and "boom at import" in result.output
    assert "model.py line 3" in result.output and "Traceback" not in result.output
    assert not (folder / "submission.yaml").exists()


# ---------------------------------------------------------------- the trusted side alone (fast)

CANDIDATES = Candidates(weights=("model.pth",), sources=("model.py",))
ENTRY = {"name": "Net", "kind": "class", "lightning": False, "error": None,
         "probe": {"accepted": [[1, 48, 7]], "errors": []}}


def answer(**changes) -> dict:
    weights = {"format": "state_dict", "error": None, "fits": [[0, 0]], "misfits": [], "probe": None}
    return {"weights": [dict(weights, **changes)], "sources": [{"error": None, "entries": [ENTRY]}],
            "sources_inspected": True}


def test_the_sandbox_answer_is_read_as_untrusted():
    inspection = inspection_from(answer(), CANDIDATES)
    assert inspection.weights[0].path == "model.pth" and inspection.weights[0].fits[0].name == "Net"
    bad = [answer(format="pickle"), answer(fits=[[0, 5]]), answer(fits=[[3, 0]]),
           dict(answer(), weights=[]), dict(answer(), sources=[{"error": None, "entries": [dict(ENTRY, name="a b")]}]),
           dict(answer(), sources=[{"error": None, "entries": [dict(ENTRY, probe={"accepted": [[2, 48, 7]],
                                                                                  "errors": []})]}])]
    for malformed in bad:
        with pytest.raises(ValueError):
            inspection_from(malformed, CANDIDATES)
    shouting = inspection_from(answer(error="\x1b[2Jx" * 1000), CANDIDATES).weights[0].error
    assert "\x1b" not in shouting and len(shouting) <= 600


def test_odd_file_names_are_quoted_so_the_yaml_reads_back():
    entry = EntryFinding("my model: v2.py", "Net", "class", False, None, Probe(((1, 44, 7),), ()))
    weights = WeightsFinding("weights #1/yes.pth", "state_dict", None, (entry,), (), None)
    text = spec_text(weights, entry, 44, 1)
    assert '"weights #1/yes.pth"' in text and '"my model: v2.py"' in text
