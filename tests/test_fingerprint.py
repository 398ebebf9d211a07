"""The weights fingerprint (grader.fingerprint): computed where the model is loaded, carried as flat
arrays, refused whole by the trusted side when anything in it is malformed, and kept in the
student's output folder as an .npz. Hostile weights files are only ever opened in the sandbox,
where they end in a clear error within the profile's limits."""

from __future__ import annotations

import io
import resource
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import grader.fingerprint
from grader.fingerprint import (
    FINGERPRINT_FILE,
    MAX_TENSORS,
    MAX_WEIGHT_ELEMENTS,
    SAMPLE_SIZE,
    FingerprintError,
    WeightsFingerprint,
    fingerprint_arrays,
    fingerprint_from_arrays,
    read_fingerprint,
    write_fingerprint,
)
from grader.profile import HardwareProfile, Limits
from grader.protocol import ModelProtocol
from grader.sandbox.client import SandboxedModel
from grader.sandbox.wire import Message
from grader.submission.build import build_model
from grader.submission.errors import SubmissionError
from grader.submission.fingerprint import weights_fingerprint
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule
from grader.submission.spec import load_spec
from tests.conftest import EXAMPLES


def mixed_state() -> dict[str, torch.Tensor]:
    """Every kind of row: sampled (larger than SAMPLE_SIZE), whole, constant, empty, and two
    tensors of one shape; plus an integer counter that is left out."""
    generator = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(64, 32, 3, 3, generator=generator),
        "conv.bias": torch.randn(64, generator=generator),
        "bn.weight": torch.ones(64),
        "bn.running_mean": torch.zeros(64),
        "empty": torch.zeros(0, 5),
        "fc.weight": torch.randn(7, 64, generator=generator).double(),
        "bn.num_batches_tracked": torch.tensor(12),
    }


def fingerprint() -> WeightsFingerprint:
    return weights_fingerprint(mixed_state())


# --- the flat form and the .npz ------------------------------------------------------------


def test_the_flat_arrays_rebuild_an_equal_fingerprint():
    original = fingerprint()
    rebuilt = fingerprint_from_arrays(fingerprint_arrays(original))
    assert rebuilt.same_as(original)
    assert rebuilt.total == 64 * 32 * 9 + 3 * 64 + 7 * 64
    assert [group.shape for group in rebuilt.groups] == [(0, 5), (7, 64), (64,), (64, 32, 3, 3)]
    assert rebuilt.by_shape[(64, 32, 3, 3)].units.shape == (1, SAMPLE_SIZE)


def test_a_fingerprint_survives_the_npz_round_trip(tmp_path):
    original = fingerprint()
    path = tmp_path / "b09902011" / "arrays" / FINGERPRINT_FILE
    write_fingerprint(path, original)
    assert read_fingerprint(path).same_as(original)
    assert sorted(np.load(path, allow_pickle=False).files) == sorted(fingerprint_arrays(original))


def test_an_npz_that_is_missing_corrupt_or_malformed_is_refused_with_its_reason(tmp_path):
    with pytest.raises(FingerprintError, match=f"no {FINGERPRINT_FILE}"):
        read_fingerprint(tmp_path / FINGERPRINT_FILE)
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(FingerprintError, match="cannot be read"):
        read_fingerprint(tmp_path / "corrupt.npz")
    arrays = fingerprint_arrays(fingerprint())
    np.savez(tmp_path / "wide.npz", **{**arrays, "units": arrays["units"].astype(np.float64)})
    with pytest.raises(FingerprintError, match="'units' is float64, expected float32"):
        read_fingerprint(tmp_path / "wide.npz")
    np.savez(tmp_path / "objects.npz", **{**arrays, "digests": np.array([object()] * arrays["digests"].size)})
    with pytest.raises(FingerprintError, match="cannot be read"):
        read_fingerprint(tmp_path / "objects.npz")  # allow_pickle=False


def test_an_npz_larger_unpacked_than_a_fingerprint_can_be_is_refused_before_inflating(tmp_path, monkeypatch):
    path = tmp_path / FINGERPRINT_FILE
    write_fingerprint(path, fingerprint())
    monkeypatch.setattr(grader.fingerprint, "MAX_NPZ_BYTES", 1000)
    with pytest.raises(FingerprintError, match="more than a fingerprint holds"):
        read_fingerprint(path)


# --- the trusted side refuses what a hostile server sends --------------------------------------


class FakeServer:
    """Answers every request with the same arrays, as a hostile sandbox server could."""

    _closed = False

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.requests: list[Message] = []

    def request(self, message: Message, what: str) -> Message:
        self.requests.append(message)
        return Message({"ok": True}, self.arrays)


def test_the_sandboxed_model_asks_for_the_fingerprint_and_rebuilds_it():
    server = FakeServer(fingerprint_arrays(fingerprint()))
    received = SandboxedModel(server).weights_fingerprint()  # type: ignore[arg-type]
    assert received.same_as(fingerprint())
    assert [m.header for m in server.requests] == [{"op": "fingerprint", "handle": 0}]


def _set(name: str, value: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict], dict]:
    return lambda arrays: {**arrays, name: value(arrays[name])}


def _nan_unit(units: np.ndarray) -> np.ndarray:
    units = units.copy()
    units[3] = np.nan
    return units


def _many_empty_tensors(arrays: dict) -> dict:
    rows = MAX_TENSORS + 1
    return {"total": np.array(0), "shape_ranks": np.array([1]), "shape_dims": np.array([0]),
            "counts": np.array([rows]), "units": np.zeros(0, np.float32),
            "constants": np.zeros(rows), "digests": np.zeros(rows, np.int64)}


def _absurd_shape(arrays: dict) -> dict:
    """One tensor of 1.6 billion values, self-consistent but for its size."""
    return {"total": np.array(40_000**2), "shape_ranks": np.array([2]), "shape_dims": np.array([40_000, 40_000]),
            "counts": np.array([1]), "units": np.zeros(SAMPLE_SIZE, np.float32),
            "constants": np.array([np.nan]), "digests": np.zeros(1, np.int64)}


MALFORMED = {
    "units_float64": (_set("units", lambda a: a.astype(np.float64)), "'units' is float64, expected float32"),
    "units_big_endian": (_set("units", lambda a: a.astype(">f4")), "'units' is >f4, expected float32"),
    "digests_int32": (_set("digests", lambda a: a.astype(np.int32)), "'digests' is int32, expected int64"),
    "constants_float32": (_set("constants", lambda a: a.astype(np.float32)), "'constants' is float32"),
    "units_two_dimensional": (_set("units", lambda a: a.reshape(1, -1)), "'units' has shape"),
    "missing_digests": (lambda arrays: {k: v for k, v in arrays.items() if k != "digests"}, "no digests array"),
    "more_rows_than_counted": (_set("counts", lambda a: a + np.eye(1, a.size, 0, dtype=np.int64)[0]),
                               "'constants' has 6 values, the shapes and counts need 7"),
    "units_too_short": (_set("units", lambda a: a[:-1]), "'units' has"),
    "empty_group": (_set("counts", lambda a: a * 0), "a shape group holds no tensor"),
    "rank_disagrees": (_set("shape_ranks", lambda a: a + 1), "ranks add up to"),
    "negative_dimension": (_set("shape_dims", lambda a: -a), "a shape dimension outside"),
    "repeated_shape": (lambda arrays: {**arrays, "shape_dims": np.array([0, 5, 0, 5, 64, 64, 32, 3, 3])},
                       "a shape appears in two groups"),
    "nan_unit": (_set("units", _nan_unit), "NaN or infinite"),
    "unit_norm_above_one": (_set("units", lambda a: a * np.float32(2)), "norm above 1"),
    "infinite_constant": (_set("constants", lambda a: np.where(np.isnan(a), a, np.inf)), "a constant is infinite"),
    "total_not_the_sum": (_set("total", lambda a: np.asarray(a + 1)), "but the shapes and counts add up to"),
    "total_not_an_array": (_set("total", lambda a: a[()]), "'total' is not an array but int64"),
    "absurd_total": (_set("total", lambda a: np.array(10**15)), "but the shapes and counts add up to"),
    "absurd_shape": (_absurd_shape, f"more than the {MAX_WEIGHT_ELEMENTS:,} compared"),
    "too_many_tensors": (_many_empty_tensors, f"more than the {MAX_TENSORS:,} accepted"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_fingerprint_from_the_server_is_refused_with_a_submission_error(name):
    corrupt, reason = MALFORMED[name]
    server = FakeServer(corrupt(fingerprint_arrays(fingerprint())))
    with pytest.raises(SubmissionError) as raised:
        SandboxedModel(server).weights_fingerprint()  # type: ignore[arg-type]
    assert raised.value.stage == "request"
    assert raised.value.message.startswith("the model's server answered a malformed weights fingerprint: ")
    assert reason in raised.value.message


# --- computed where the model is loaded ----------------------------------------------------------


@pytest.mark.parametrize("folder", ["vgg", "lightning_ckpt"])
def test_the_loaded_models_fingerprint_equals_the_weights_files(folder):
    """Why the sandbox may fingerprint the loaded model instead of the file: names are ignored, so
    a Lightning checkpoint's 'model.' prefix changes nothing (trusted example files, read here)."""
    spec = load_spec(EXAMPLES / folder)
    model = InProcessModel(SubmissionModule(build_model(EXAMPLES / folder, spec), spec.input))
    saved = torch.load(EXAMPLES / folder / spec.model.weights, weights_only=True)
    saved = saved.get("state_dict", saved)
    assert model.weights_fingerprint().same_as(weights_fingerprint(saved))


def test_a_model_with_more_values_than_compared_has_no_fingerprint(monkeypatch):
    monkeypatch.setattr("grader.submission.fingerprint.MAX_WEIGHT_ELEMENTS", 100)
    model = InProcessModel(SubmissionModule(nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 7))))
    with pytest.raises(SubmissionError, match="no weights fingerprint: 16,135 weight values, more than the 100"):
        model.weights_fingerprint()


def test_a_protocol_implementation_without_a_fingerprint_says_so():
    class Minimal(ModelProtocol):
        describe = logits = input_gradient = activations = layer_gradient = randomized = None  # type: ignore

    with pytest.raises(NotImplementedError, match="Minimal does not compute a weights fingerprint"):
        Minimal().weights_fingerprint()


# --- hostile weights files stay in the sandbox ---------------------------------------------------

SHORT = HardwareProfile(limits=Limits(memory_mb=3072, processes=64, wall_seconds_per_request=10,
                                      wall_seconds_per_load=8, wall_seconds_per_submission=60))
"""Short limits, as tests/test_sandbox.py's: they count from the sandbox's start, so torch's import
(10 s of a busy two-core machine) is not in them."""

class Loops(nn.Module):
    """Scripted into a TorchScript file whose __setstate__ never returns: loading it hangs whoever
    loads it (torch.jit.load runs it)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 7)
        self.spins = 0

    @torch.jit.export
    def __getstate__(self) -> tuple[int, bool]:
        return (self.spins, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[int, bool]) -> None:
        self.training = state[1]
        spins = state[0]
        while spins >= 0:
            spins = spins + 1 - 1
        self.spins = spins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(2, 3)).repeat(1, 4))


def looping_torchscript(folder: Path) -> Path:
    folder.mkdir(parents=True)
    torch.jit.script(Loops()).save(str(folder / "model.pt"))
    (folder / "submission.yaml").write_text("student_id: loops\nmodel:\n  format: torchscript\n  weights: model.pt\n",
                                            encoding="utf-8")
    return folder


BOMB_BLOCKS = 220
"""16 MiB blocks of zeros in the bomb's tensor: 3.7 GB inflated, more than SHORT's memory."""


def deflate_bomb(folder: Path) -> Path:
    """A 3.6 MB state_dict whose one tensor, DEFLATE-compressed in the zip, inflates to 3.7 GB.
    Built from a torch.save of a small tensor: the pickle's element count is patched, and the
    storage entry is a deflate stream of one compressed zero block repeated (about a second)."""
    template, repeats = 1_234_567, BOMB_BLOCKS
    numel = repeats << 22  # float32: 4 bytes a value
    buffer = io.BytesIO()
    torch.save({"bomb": torch.zeros(template)}, buffer)
    block = bytes(1 << 24)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH) == piece  # a flush resets the state
    stream = piece * repeats + compressor.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(repeats):
        crc = zlib.crc32(block, crc)
    entries = []
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as saved:
        for name in saved.namelist():
            data = saved.read(name)
            if name.endswith("data.pkl"):
                data = data.replace(struct.pack("<i", template), struct.pack("<i", numel))
            if name.endswith("/data/0"):
                entries.append((name, stream, 8, numel * 4, crc))
            else:
                entries.append((name, data, 0, len(data), zlib.crc32(data)))
    folder.mkdir(parents=True)
    (folder / "model.pth").write_bytes(_zip(entries))
    (folder / "model.py").write_text("from torch import nn\n\n\nclass Net(nn.Linear):\n"
                                     "    def __init__(self):\n        super().__init__(48 * 48, 7)\n", encoding="utf-8")
    (folder / "submission.yaml").write_text(
        "student_id: bomb\nmodel:\n  format: state_dict\n  source: model.py\n  entry: Net\n  weights: model.pth\n",
        encoding="utf-8")
    return folder


def _zip(entries: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip archive of (name, stored or deflated bytes, method, size, crc) entries, sizes < 4 GiB."""
    out, central = bytearray(), bytearray()
    for name, data, method, size, crc in entries:
        encoded = name.encode()
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(data), size,
                               len(encoded), 0, 0, 0, 0, 0, len(out)) + encoded
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size,
                           len(encoded), 0) + encoded + data
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return bytes(out + central + end)


def test_the_deflate_bomb_is_what_it_claims(tmp_path):
    """The fixture itself: a few MB on disk whose tensor entry inflates to 3.7 GB."""
    folder = deflate_bomb(tmp_path / "bomb")
    with zipfile.ZipFile(folder / "model.pth") as archive:
        (entry,) = [info for info in archive.infolist() if info.filename.endswith("/data/0")]
        assert entry.compress_type == zipfile.ZIP_DEFLATED and entry.file_size == BOMB_BLOCKS << 24
        with archive.open(entry) as stream:
            assert stream.read(1 << 20) == bytes(1 << 20)
    assert (folder / "model.pth").stat().st_size < 8 * 2**20


sandboxed = pytest.mark.usefixtures("require_bwrap")


@pytest.mark.slow
@sandboxed
def test_a_torchscript_file_whose_setstate_loops_times_out_in_the_sandbox(tmp_path):
    folder = looping_torchscript(tmp_path / "loops")
    started = time.monotonic()
    with pytest.raises(SubmissionError) as raised:
        SandboxedModel.open(folder, SHORT, "bwrap").weights_fingerprint()
    assert raised.value.stage == "timeout" and "loading the submission" in raised.value.message
    assert time.monotonic() - started < SHORT.limits.wall_seconds_per_request + 15


@pytest.mark.slow
@sandboxed
def test_a_deflate_bomb_tensor_is_refused_in_the_sandbox_and_never_inflates_in_the_grader(tmp_path):
    """Whichever way the sandbox's reader refuses it (the memory limit, a check of the archive, or
    the time limit), it ends in a SubmissionError within the limits, and this process's peak
    memory does not grow by the 3.7 GB the tensor inflates to."""
    folder = deflate_bomb(tmp_path / "bomb")
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    started = time.monotonic()
    with pytest.raises(SubmissionError) as raised:
        SandboxedModel.open(folder, SHORT, "bwrap").weights_fingerprint()
    assert raised.value.stage in ("load", "memory", "timeout"), raised.value
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 2**20  # under 1 GiB
    assert time.monotonic() - started < SHORT.limits.wall_seconds_per_request + 15
