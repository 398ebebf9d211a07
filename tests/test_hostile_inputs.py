"""Untrusted bytes, not only code (issue 13): a class of submissions built as an attacker (or an
unlucky student) would, graded by `grader grade` in the sandbox, through the command a TA types.

Whatever they hold, the batch completes: every hostile folder ends as its own failed (or warned)
result that says what is wrong, nothing outside a folder is read, no student text reaches a sink
unescaped, models that fake their gradients lose the criteria built on them, and the honest
submissions beside them are graded exactly as they are alone.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.faked_gradients import PRELUDE, write_fake
from tests.test_submission_tree import make_deep_tree, remove_deep_tree

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("require_bwrap")]

SECRET = "SECRET-LABELS-7f3a9c"
DEEP = 1200
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x9b]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def honest(root: Path, name: str, student_id: str | None = None) -> Path:
    folder = root / name
    shutil.copytree(EXAMPLES / "small_cnn", folder, ignore=shutil.ignore_patterns("__pycache__"))
    set_field(folder, "student_id", student_id or name)
    return folder


def set_field(folder: Path, field: str, value: str) -> None:
    spec = folder / "submission.yaml"
    lines = [line for line in spec.read_text().splitlines() if not line.startswith(f"{field}:")]
    spec.write_text("\n".join([f"{field}: {value}", *lines]) + "\n")


def with_forward(root: Path, name: str, body: str) -> Path:
    """The small CNN with `body` as the end of its forward (`logits` is the honest output)."""
    folder = write_fake(root / name, "template_bump", student_id=name)
    forward = "\n".join("        " + line for line in body.strip().splitlines())
    (folder / "model.py").write_text(PRELUDE + f'''
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _net()

    def forward(self, x):
        logits = self.net(x)
{forward}
''')
    return folder


def mathtext_layer(root: Path) -> Path:
    """The small CNN with its first convolution named `$\\undefinedcmd$` and chosen for Q2."""
    import torch

    folder = honest(root, "mathtext_layer")
    state = torch.load(folder / "weights.pt", weights_only=True)
    torch.save({name.replace("0.", "$\\undefinedcmd$.", 1) if name.startswith("0.") else name: tensor
                for name, tensor in state.items()}, folder / "weights.pt")
    (folder / "model.py").write_text('''\
from collections import OrderedDict

import torch.nn as nn


def small_cnn():
    layers = [nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(4), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
              nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 6 * 6, 16), nn.ReLU(), nn.Linear(16, 7)]
    names = ["$\\\\undefinedcmd$"] + [str(i) for i in range(1, len(layers))]
    return nn.Sequential(OrderedDict(zip(names, layers)))
''')
    (folder / "submission.yaml").write_text((folder / "submission.yaml").read_text()
                                            + "visualize:\n  filter_layer: $\\undefinedcmd$\n")
    return folder


def hostile_class(root: Path, world: Path) -> None:
    """Two honest students, and one folder for every kind of hostile input of issue 13."""
    root.mkdir(parents=True)
    secret = world / "labels.csv"
    honest(root, "honest_a")

    # 1. The file tree: links out of the folder, loops, special files, bounds.
    (honest(root, "link_absolute") / "notes.txt").symlink_to(secret)
    (honest(root, "link_up") / "data.csv").symlink_to(Path("..") / ".." / world.name / "labels.csv")
    (honest(root, "link_to_a_student") / "peer").symlink_to(Path("..") / "honest_a")
    loops = honest(root, "link_loops")
    (loops / "a").symlink_to(".")
    (loops / "b").symlink_to(".")
    linked_report = honest(root, "report_linked_out")
    (linked_report / "report.md").symlink_to(secret)
    fifo = honest(root, "fifo_weights")
    (fifo / "weights.pt").unlink()
    os.mkfifo(fifo / "weights.pt")
    folder_weights = honest(root, "folder_weights")
    (folder_weights / "weights.pt").unlink()
    (folder_weights / "weights.pt").mkdir()
    make_deep_tree(honest(root, "deep_tree"), DEEP)
    with open(honest(root, "sparse_file") / "huge.bin", "wb") as sparse:
        sparse.truncate(64 << 30)

    # 2. Text: a 20 MB comment, deep YAML, a 300-character id, hostile names and messages.
    with (honest(root, "yaml_comment") / "submission.yaml").open("a") as spec:
        spec.write("#" + "x" * (20 << 20) + "\n")
    (honest(root, "yaml_nested") / "submission.yaml").write_text("student_id: " + "[" * 50_000 + "\n")
    set_field(honest(root, "long_id"), "student_id", "b" * 300)
    set_field(honest(root, "hostile_name"), "name",
              '"=HYPERLINK(\\"http://evil.example\\",\\"x\\") \\ud800 \\x1b[31mred\\x1b[0m [/x] \\u202eevil"')
    with_forward(root, "hostile_error", r'''
raise RuntimeError("[/x] \x1b]0;pwned\x07 \x1b[2K\r\x1b[32mgraded\x1b[0m  victim: 10/10 \ud800 =cmd|' /C calc'!A0")
''')
    mathtext_layer(root)

    # 3. What the model returns.
    with_forward(root, "integer_logits", "return logits.long()")
    # Logits that saturate the softmax and put every face in one class: both warnings, one folder.
    with_forward(root, "huge_one_class", "return (logits + torch.tensor([0., 0., 0., 100., 0., 0., 0.])) * 1e36")
    for kind in ("template_bump", "grad_mode_switch", "randomization_detector", "nan_gradients"):
        write_fake(root / kind, kind)


def grade(submissions: Path, out: Path, data: Path, workers: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader.cli", "grade", str(submissions), "--out", str(out),
                           "--data", str(data), "--quick", "--workers", str(workers)], cwd=ROOT, capture_output=True,
                          timeout=1500)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, small_eval_csv):
    world = tmp_path_factory.mktemp("world")
    (world / "labels.csv").write_text(f"label,feature\n3,{SECRET}\n")
    root = tmp_path_factory.mktemp("hostile")
    hostile_class(root / "submissions", world)
    try:
        run = grade(root / "submissions", root / "out", small_eval_csv)
        results = {path.parent.name: json.loads(path.read_text()) for path in (root / "out").glob("*/result.json")}
        by_folder = {result["folder"]: result for result in results.values()}
        yield {"run": run, "out": root / "out", "root": root, "results": by_folder, "data": small_eval_csv}
    finally:
        remove_deep_tree(root / "submissions" / "deep_tree", DEEP)  # shutil.rmtree would recurse 1200 deep


def result(graded: dict, folder: str) -> dict:
    return graded["results"][folder]


def first_error(graded: dict, folder: str) -> tuple[str, str]:
    outcome = result(graded, folder)
    assert outcome["status"] == "failed", json.dumps(outcome)[:2000]
    return outcome["errors"][0]["stage"], outcome["errors"][0]["message"]


def test_the_batch_completes_with_every_class_output(graded):
    assert graded["run"].returncode == 0, graded["run"].stdout.decode(errors="replace")[-3000:]
    for name in ("gradebook.csv", "similarity.csv", "index.html"):
        assert (graded["out"] / name).is_file()
    assert len(graded["results"]) == len(list((graded["root"] / "submissions").iterdir()))


@pytest.mark.parametrize("folder, words", [
    ("link_absolute", "points outside"), ("link_up", "points outside"), ("link_to_a_student", "points outside"),
    ("report_linked_out", "points outside"), ("link_loops", "loop"), ("fifo_weights", "FIFO"),
    ("deep_tree", "deep"), ("sparse_file", "64.0 GiB")])
def test_a_hostile_file_tree_fails_at_the_snapshot_saying_why(graded, folder, words):
    stage, message = first_error(graded, folder)
    assert stage == "snapshot" and words in message, message
    assert "/tmp" not in message and "xai-grader-submission" not in message


def test_nothing_outside_a_folder_reaches_any_output(graded):
    assert SECRET.encode() not in graded["run"].stdout
    for path in graded["out"].rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_a_folder_where_the_weights_file_should_be_is_a_load_error_in_words(graded):
    stage, message = first_error(graded, "folder_weights")
    assert stage == "load" and "'weights.pt' is a folder, not a weights file" in message


def test_a_20_mb_yaml_comment_is_refused_by_size_not_parsed(graded):
    stage, message = first_error(graded, "yaml_comment")
    assert stage == "spec" and "more than the 64.0 KiB" in message


def test_yaml_nested_fifty_thousand_deep_is_a_spec_error(graded):
    stage, message = first_error(graded, "yaml_nested")
    assert stage == "spec" and "nested too deeply" in message


def test_a_300_character_id_fails_that_student_under_a_short_safe_folder_name(graded):
    stage, message = first_error(graded, "long_id")
    assert stage == "spec" and "1 to 64 letters" in message
    folder = next(p for p in graded["out"].iterdir() if p.is_dir() and (p / "result.json").is_file()
                  and json.loads((p / "result.json").read_text())["folder"] == "long_id")
    assert folder.name == "long_id"


def test_hostile_text_is_graded_and_cleaned_in_result_json_and_the_pdf(graded):
    outcome = result(graded, "hostile_name")
    assert outcome["status"] == "graded"
    assert "\ufffd" in outcome["name"] and not CONTROL.search(outcome["name"])
    text = subprocess.run(["pdftotext", str(graded["out"] / "hostile_name" / "report.pdf"), "-"],
                          capture_output=True, check=True).stdout.decode()
    assert "=HYPERLINK" in text and not CONTROL.search(text.replace("\f", ""))  # pdftotext ends pages with \f


def test_an_exception_message_full_of_escape_sequences_fails_only_its_submission(graded):
    stage, message = first_error(graded, "hostile_error")
    assert stage == "checks" and "[/x]" in message and not CONTROL.search(message)


def test_no_escape_sequence_reaches_the_tas_terminal(graded):
    stdout = graded["run"].stdout.decode("utf-8")
    assert not CONTROL.search(stdout.replace("\n", "").replace("\r", ""))
    assert "\x1b" not in stdout and "[/x]" in stdout
    assert not any(line.lstrip().startswith("graded  victim") for line in stdout.splitlines())


def test_no_csv_cell_starts_a_formula(graded):
    for name in ("gradebook.csv", "similarity.csv"):
        rows = list(csv.reader(io.StringIO((graded["out"] / name).read_text(encoding="utf-8"))))
        for row in rows:
            for cell in row:
                assert not cell.startswith(FORMULA_START) or _is_number(cell), (name, cell)
                assert not CONTROL.search(cell), (name, cell)
    gradebook = (graded["out"] / "gradebook.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK" in gradebook


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def test_the_dashboard_holds_no_raw_student_markup_or_control_character(graded):
    page = (graded["out"] / "index.html").read_text(encoding="utf-8")
    assert not CONTROL.search(page)
    assert "\u202e" not in page and "<script>alert" not in page


def test_a_layer_named_in_mathtext_is_drawn_as_written(graded):
    outcome = result(graded, "mathtext_layer")
    assert outcome["status"] == "graded" and not outcome["errors"], outcome["errors"]
    assert (graded["out"] / "mathtext_layer" / "figures" / "filters.png").is_file()


def test_integer_outputs_are_named_as_such(graded):
    stage, message = first_error(graded, "integer_logits")
    assert stage == "checks" and "int64 outputs, not floating-point logits" in message


def test_saturating_logits_and_a_one_class_model_get_a_warning(graded):
    warnings = result(graded, "huge_one_class")["warnings"]
    assert any("softmax saturates" in w["message"] for w in warnings), warnings
    assert any("predicts Happy for 100% of the" in w["message"] for w in warnings), warnings


def test_nan_gradients_are_a_q1_error_that_says_so(graded):
    errors = {e["stage"]: e["message"] for e in result(graded, "nan_gradients")["errors"]}
    assert "NaN or Inf" in errors["q1_saliency"]


def gradient_criteria(outcome: dict) -> dict[str, dict]:
    return {c["id"]: c for q in outcome["questions"] if q["id"] in ("q1", "q2", "q4") for c in q["criteria"]
            if not c["manual"]}


@pytest.mark.parametrize("fake, contexts", [("template_bump", {"q1", "q4", "probes"}),
                                            ("grad_mode_switch", {"q1", "q4", "probes"}),
                                            ("randomization_detector", {"probes"})])
def test_a_model_that_fakes_its_gradients_loses_the_criteria_built_on_them(graded, fake, contexts):
    outcome = result(graded, fake)
    failed = {check["context"] for check in outcome["gradient_checks"] if not check["passed"]}
    assert failed == contexts
    q1 = {c["id"]: c for q in outcome["questions"] if q["id"] == "q1" for c in q["criteria"]}
    zeroed = [c for c in q1.values() if not c["manual"] and "gradients do not match" in c["message"]]
    assert zeroed and all(c["score"] == 0 for c in zeroed)
    assert any("gradients do not match" in w["message"] for w in outcome["warnings"])
    honest_result = result(graded, "honest_a")
    assert outcome["accuracy"] == honest_result["accuracy"]  # its outputs are honest: only the gradients lie


def test_honest_submissions_pass_every_gradient_check_and_keep_their_points(graded):
    for folder in ("honest_a", "hostile_name", "mathtext_layer"):
        outcome = result(graded, folder)
        assert outcome["gradient_checks"] and all(check["passed"] for check in outcome["gradient_checks"])
        assert not any("gradients do not match" in c["message"] for c in gradient_criteria(outcome).values())
    assert result(graded, "honest_a")["score"] > 0


def test_an_honest_submission_is_graded_beside_them_exactly_as_alone(graded, tmp_path):
    alone = tmp_path / "alone"
    honest(alone, "honest_a")
    run = grade(alone, tmp_path / "out", graded["data"], workers=1)  # in this process: no cluster for one
    assert run.returncode == 0, run.stdout.decode(errors="replace")[-2000:]
    by_itself = json.loads((tmp_path / "out" / "honest_a" / "result.json").read_text())
    beside = result(graded, "honest_a")
    for outcome in (by_itself, beside):
        outcome.pop("timings")
    assert by_itself == beside
