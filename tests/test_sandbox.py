"""Hostile and broken submissions in the sandbox: each ends as a clear failed or contained result,
and the honest submissions graded in the same batch come out exactly as they do alone.

One batch holds every hostile submission beside two honest ones; the tests read its results.
"""

from __future__ import annotations

import json
import socket
import textwrap
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from grader.pipeline.setup import GradingSetup, load_setup
from grader.pipeline.student_folder import grade_submission
from grader.pipeline.class_run import grade_class
from grader.pipeline.dask_runner import DaskRunner
from grader.data.synth import generate
from grader.profile import HardwareProfile, Limits
from grader.questions.settings import TaskSettings
from grader.result import Result
from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("require_bwrap")]

# Short limits keep the suite fast. The load's limit counts the student's import, constructor and
# weights only (a fraction of a second here), not the server's start-up: importing torch and
# Lightning, which on two loaded cores took over 20 s (grader.sandbox.client.SandboxServer.load).
LOAD_SECONDS = 8
PROFILE = HardwareProfile(limits=Limits(memory_mb=3072, processes=64, wall_seconds_per_request=8,
                                        wall_seconds_per_load=LOAD_SECONDS, wall_seconds_per_submission=60))

MODEL = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 7)

    def forward(self, x):
        {forward}
        return self.fc(self.conv(x).mean(dim=(2, 3)))
"""


class Net(nn.Module):
    """The same architecture as MODEL, to make its weights."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 7)


class WritesMarker:
    """Unpickling this would create `path`: proof that a pickle's code ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def submission(root: Path, name: str, prelude: str = "", forward: str = "pass", weights: object = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "submission.yaml").write_text(
        f"student_id: {name}\nmodel:\n  source: model.py\n  entry: Net\n  weights: model.pth\n")
    (folder / "model.py").write_text(textwrap.dedent(prelude) + "\n" + MODEL.format(forward=forward))
    torch.manual_seed(0)
    torch.save(weights if weights is not None else Net().state_dict(), folder / "model.pth")
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Secrets the sandbox must not reach, and a listener it must not connect to."""
    root = tmp_path_factory.mktemp("world")
    secret = root / "labels.csv"
    secret.write_text("label\n3\n")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    connections: list[object] = []

    def accept_forever():
        while True:
            try:
                connections.append(listener.accept())
            except TimeoutError:
                continue
            except OSError:
                return

    threading.Thread(target=accept_forever, daemon=True).start()
    yield {"root": root, "secret": secret, "port": listener.getsockname()[1], "connections": connections,
           "escape": root / "escaped.txt", "marker": root / "pickle-ran.txt"}
    listener.close()


def hostile_batch(root: Path, world: dict) -> None:
    submission(root, "honest_a")
    submission(root, "import_loop", prelude="while True:\n    pass\n")
    submission(root, "sleepy_forward", prelude="import time", forward="time.sleep(3600)")
    submission(root, "eight_gigabytes", forward="torch.empty(2 * 1024**3, dtype=torch.float32).fill_(1)")
    submission(root, "fork_loop", prelude="""
        import os, time
        for _ in range(10000):
            if os.fork() == 0:
                time.sleep(600)
                os._exit(0)
        """)
    # One folder tries every way out at import: reading (it raises on anything it can see),
    # writing, and connecting to a listener on the host; graded means none of them worked.
    submission(root, "tries_to_escape", prelude=f"""
        import os, socket
        for path in ({str(world['secret'])!r}, {str(root / 'honest_a' / 'model.py')!r},
                     {str(root.parent / 'out')!r}, "/root/.bash_history"):
            if os.path.exists(path):
                raise RuntimeError("LEAKED " + path)
        for path in ({str(world['escape'])!r}, "/submission/new.txt", "/usr/evil.txt"):
            try:
                open(path, "w").write("escaped")
            except OSError:
                pass
        try:
            socket.create_connection(("127.0.0.1", {world['port']}), timeout=2).sendall(b"labels?")
            raise RuntimeError("CONNECTED")
        except OSError:
            pass
        """)
    submission(root, "pickle_payload", weights={"conv.weight": WritesMarker(str(world["marker"]))})
    submission(root, "segfault", forward="import ctypes; ctypes.string_at(0)")
    submission(root, "patches_the_grader", prelude="""
        import numpy as np
        import torch
        import grader.evaluate, grader.scoring.score, grader.submission.checks
        import torch.nn.functional as F
        perfect = lambda logits, labels: grader.evaluate.Evaluation(
            predictions=labels, labels=labels, confusion=np.eye(7), counts=np.eye(7, dtype=int))
        grader.evaluate.evaluate = perfect
        grader.submission.checks.check_logits = lambda *a: None
        F.cross_entropy = lambda *a, **k: 0
        torch.Tensor.argmax = lambda self, *a, **k: torch.zeros(len(self), dtype=torch.long)
        """)
    # Its code replaces the server's writer: every answer with arrays becomes a frame whose .npy
    # header claims more bytes than the frame holds.
    submission(root, "forges_its_answers", prelude="""
        import grader.sandbox.serve as serve
        write = serve.write_message

        def forged(fd, message):
            if not message.arrays:
                return write(fd, message)
            header = b'{"ok": true, "arrays": [["logits", 64]]}'
            npy = b"\\x93NUMPY\\x01\\x00" + (60000).to_bytes(2, "little") + b" " * 54
            body = len(header).to_bytes(8, "big") + header + npy
            os.write(fd, len(body).to_bytes(8, "big") + body)

        import os
        serve.write_message = forged
        """)
    submission(root, "nan_outputs", forward="return torch.full((x.shape[0], 7), float('nan'))")
    submission(root, "wrong_shape", forward="return torch.zeros(x.shape[0], 5)")
    submission(root, "floods_stdout", prelude="""
        import sys
        for _ in range(200_000):
            print("spam " * 20)
        sys.stderr.write("more spam\\n" * 1000)
        """)
    submission(root, "missing_entry")
    submission(root, "syntax_error", prelude="def broken(:\n    pass\n")
    submission(root, "weights_misfit", weights={"conv.weight": torch.zeros(8, 1, 3, 3), "head.bias": torch.zeros(7)})
    (root / "missing_entry" / "model.py").write_text("import torch.nn as nn\n\nclass Other(nn.Module):\n    pass\n")


def sandboxed_setup(out_dir: Path) -> GradingSetup:
    """The same evaluation faces, rubric and short limits for every batch of these tests."""
    setup = load_setup(generate(64, seed=3), ROOT / "rubric.yaml", out_dir, write_pdf=False, isolation="bwrap",
                       tasks=TaskSettings.quick())  # what is tested is the sandbox, not the tasks' detail
    return replace(setup, profile=PROFILE)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, world) -> dict[str, Result]:
    root = tmp_path_factory.mktemp("hostile")
    hostile_batch(root / "submissions", world)
    # Two Dask workers, as a TA's batch runs: the hostile submissions wait out their limits side by side.
    runner = DaskRunner(workers=2)
    return {r.student_id: r for r in grade_class(root / "submissions", sandboxed_setup(root / "out"), runner=runner)}


def failure(result: Result) -> tuple[str, str]:
    assert result.status == "failed", result.model_dump_json(indent=1)[:2000]
    return result.errors[0].stage, result.errors[0].message


def test_an_endless_loop_at_import_times_out(graded):
    stage, message = failure(graded["import_loop"])
    assert stage == "timeout" and "while loading the submission" in message and "endless loop" in message
    assert f"time limit for loading ({LOAD_SECONDS} s)" in message


def test_a_forward_that_sleeps_times_out(graded):
    stage, message = failure(graded["sleepy_forward"])
    # The first forward runs while loading (the layout and kernel probes), so the load's limit stops it.
    assert stage == "timeout" and f"did not answer within the time limit for loading ({LOAD_SECONDS} s)" in message


def test_an_8_gb_allocation_hits_the_memory_limit(graded):
    stage, message = failure(graded["eight_gigabytes"])
    assert stage == "memory" and "ran out of memory" in message


def test_a_loop_of_forks_hits_the_process_limit(graded):
    stage, message = failure(graded["fork_loop"])
    assert stage == "load" and "BlockingIOError" in message and "Resource temporarily unavailable" in message


def test_files_outside_the_submission_cannot_be_read(graded):
    assert graded["tries_to_escape"].status == "graded", graded["tries_to_escape"].errors  # no LEAKED


def test_files_outside_the_sandbox_cannot_be_written(graded, world):
    assert graded["tries_to_escape"].status == "graded"
    assert not world["escape"].exists()


def test_no_connection_leaves_the_sandbox(graded, world):
    assert graded["tries_to_escape"].status == "graded", graded["tries_to_escape"].errors  # no CONNECTED
    assert world["connections"] == []


def test_a_weights_pickle_with_a_payload_is_refused_unrun(graded, world):
    stage, message = failure(graded["pickle_payload"])
    assert stage == "load" and "not plain tensors" in message
    assert not world["marker"].exists()


def test_a_segfault_is_reported_as_a_crash(graded):
    stage, message = failure(graded["segfault"])
    assert stage == "crash" and "segmentation fault" in message


def test_patching_torch_or_the_grader_changes_nothing_outside_the_sandbox(graded):
    cheat, honest = graded["patches_the_grader"], graded["honest_a"]
    assert cheat.status == "graded"
    assert cheat.accuracy == honest.accuracy
    assert cheat.confusion_matrix == honest.confusion_matrix


def test_a_server_whose_code_forges_its_answers_fails_with_a_malformed_message(graded):
    stage, message = failure(graded["forges_its_answers"])
    assert stage == "checks"  # the first stage whose request got a forged answer
    assert "the model's server answered with a malformed message while" in message
    assert "more than the array or numpy's bound" in message and "SIGKILL" not in message


def test_nan_outputs_fail_the_checks(graded):
    stage, message = failure(graded["nan_outputs"])
    assert stage == "checks" and "NaN or Inf logits for 8 of 8 faces" in message


def test_a_wrong_output_shape_fails_the_checks(graded):
    stage, message = failure(graded["wrong_shape"])
    assert stage == "checks" and "returned shape (8, 5) for 8 faces, expected (8, 7)" in message


def test_a_flood_of_output_is_kept_within_its_bound(graded):
    result = graded["floods_stdout"]
    assert result.status == "graded"
    assert len(result.output) < 70_000
    assert result.output.startswith("spam spam") and "bytes of output left out" in result.output
    assert result.output.rstrip().endswith("more spam")


def test_a_missing_entry_names_what_the_file_defines(graded):
    stage, message = failure(graded["missing_entry"])
    assert stage == "load" and "has no 'Net'" in message and "It defines: Other." in message


def test_a_syntax_error_names_the_file_and_line(graded):
    stage, message = failure(graded["syntax_error"])
    assert stage == "load" and "syntax error in model.py line 1" in message


def test_weights_that_do_not_fit_name_the_mismatch(graded):
    stage, message = failure(graded["weights_misfit"])
    assert stage == "load" and "do not fit the model" in message
    assert "missing conv.bias" in message and "unexpected head.bias" in message
    assert "conv.weight (8, 1, 3, 3) vs model (4, 1, 3, 3)" in message


def test_the_output_folder_is_not_visible_inside(graded):
    # tries_to_escape raises if the batch's output folder (written by then) is visible.
    assert graded["tries_to_escape"].status == "graded"


def test_honest_submissions_grade_the_same_beside_hostile_ones(graded, tmp_path):
    alone_root = tmp_path / "alone"
    folder = submission(alone_root, "honest_a")
    alone = grade_submission(folder, sandboxed_setup(tmp_path / "out"))
    beside = graded["honest_a"]
    assert alone.status == beside.status == "graded"
    assert alone.accuracy == beside.accuracy and alone.confusion_matrix == beside.confusion_matrix


def test_every_hostile_submission_has_a_result_file(graded, tmp_path_factory):
    for student_id, result in graded.items():
        assert result.student_id == student_id
        assert json.loads(result.model_dump_json())["status"] in ("graded", "failed")
