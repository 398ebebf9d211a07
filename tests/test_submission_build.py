"""Specifications of build_model: every weights format a student may hand in loads into the same
model, and every way a submission can fail to load is reported (stage 'load') in words that say
what to fix. Weights are never unpickled as Python objects."""

from __future__ import annotations

import inspect
import pickle
import random
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path
from unittest import mock

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from grader.submission.build import build_model, sniff_format
from grader.submission.errors import SubmissionError
from grader.submission.spec import load_spec

# --- helpers --------------------------------------------------------------------------------


class Net(nn.Module):
    """The tiny CNN every submission here uses; model.py holds this very source."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 7)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.bn(self.conv1(x)))).flatten(1))


HEADER = "import torch\nfrom torch import nn\n\n\n"
MODEL_PY = HEADER + textwrap.dedent(inspect.getsource(Net)) + "\n\ndef build():\n    return Net()\n"


def trained_net(seed: int = 0) -> Net:
    """A Net whose every parameter and BatchNorm statistic differs from a fresh Net()'s."""
    torch.manual_seed(seed)
    net = Net()
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor).abs() + 0.1)
    net.bn.num_batches_tracked.fill_(17)
    return net


def spec_yaml(weights: str = "model.pth", fmt: str | None = None, source: str | None = "model.py",
              entry: str | None = "Net") -> str:
    lines = ["student_id: s1", "model:"]
    lines += [f"  format: {fmt}"] if fmt else []
    lines += [f"  source: {source}"] if source else []
    lines += [f"  entry: {entry}"] if entry else []
    lines += [f"  weights: {weights}"]
    return "\n".join(lines) + "\n"


def make_submission(folder: Path, *, weights: str = "model.pth", fmt: str | None = None,
                    source: str | None = "model.py", entry: str | None = "Net",
                    files: dict[str, str] | None = None) -> Path:
    """A submission folder with submission.yaml and the given text files (model.py by default)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "submission.yaml").write_text(spec_yaml(weights, fmt, source, entry), encoding="utf-8")
    for name, text in ({"model.py": MODEL_PY} if files is None else files).items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def build(folder: Path) -> nn.Module:
    return build_model(folder, load_spec(folder))


def load_error(folder: Path) -> str:
    """The message of the SubmissionError build_model raises; its stage must be 'load'."""
    with pytest.raises(SubmissionError) as caught:
        build(folder)
    assert caught.value.stage == "load"
    return caught.value.message


def assert_same_state(model: nn.Module, expected: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


def assert_eval_mode(model: nn.Module) -> None:
    assert not any(module.training for module in model.modules())


class LitFaces(pl.LightningModule):
    """A student's LightningModule: the network lives in `self.model`."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.model = net

    def forward(self, x):
        return self.model(x)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def save_lightning_checkpoint(module: pl.LightningModule, path: Path) -> None:
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, max_epochs=0, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)


class WritesMarker:
    """Unpickling this would create `path`: proof that a pickle's code ran."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


FACES = torch.rand(3, 1, 48, 48)

# torch now deprecates TorchScript; students still hand it in, so the grader still reads it.
torchscript = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning")


# --- state_dict -----------------------------------------------------------------------------


def test_a_state_dict_loads_into_the_entry_class(tmp_path):
    net = trained_net()
    folder = make_submission(tmp_path)
    torch.save(net.state_dict(), folder / "model.pth")

    model = build(folder)

    assert type(model).__name__ == "Net"
    assert_same_state(model, net.state_dict())
    assert_eval_mode(model)


def test_a_state_dict_loads_into_what_a_zero_argument_function_builds(tmp_path):
    net = trained_net()
    folder = make_submission(tmp_path, entry="build")
    torch.save(net.state_dict(), folder / "model.pth")

    model = build(folder)

    assert_same_state(model, net.state_dict())
    assert_eval_mode(model)


def test_the_loaded_model_computes_what_the_trained_one_did(tmp_path):
    net = trained_net().eval()
    folder = make_submission(tmp_path)
    torch.save(net.state_dict(), folder / "model.pth")

    with torch.no_grad():
        assert torch.equal(build(folder)(FACES), net(FACES))


def test_a_state_dict_saved_from_a_wrapped_model_loads_without_its_prefix(tmp_path):
    # torch.compile saves '_orig_mod.conv1.weight', DataParallel 'module.conv1.weight'.
    net = trained_net()
    folder = make_submission(tmp_path)
    torch.save({f"module._orig_mod.{k}": v for k, v in net.state_dict().items()}, folder / "model.pth")

    assert_same_state(build(folder), net.state_dict())


# --- Lightning checkpoints ------------------------------------------------------------------


def test_a_real_lightning_checkpoint_loads_with_the_model_prefix_stripped(tmp_path):
    net = trained_net()
    folder = make_submission(tmp_path, weights="last.ckpt")
    save_lightning_checkpoint(LitFaces(net), folder / "last.ckpt")
    assert all(key.startswith("model.") for key in torch.load(folder / "last.ckpt", weights_only=True)["state_dict"])

    model = build(folder)

    assert load_spec(folder).model.format is None  # a .ckpt needs no format
    assert_same_state(model, net.state_dict())
    assert_eval_mode(model)


def test_a_hand_made_checkpoint_dict_in_a_pth_file_loads(tmp_path):
    net = trained_net()
    folder = make_submission(tmp_path)
    torch.save({"epoch": 3, "state_dict": net.state_dict(), "best_acc": 0.61}, folder / "model.pth")

    assert_same_state(build(folder), net.state_dict())


def test_a_ckpt_without_a_state_dict_entry_is_not_a_lightning_checkpoint(tmp_path):
    folder = make_submission(tmp_path, weights="last.ckpt")
    torch.save(trained_net().state_dict(), folder / "last.ckpt")

    message = load_error(folder)

    assert "'last.ckpt' has no 'state_dict' entry, so it is not a Lightning checkpoint" in message
    assert "trainer.save_checkpoint" in message


# --- TorchScript ----------------------------------------------------------------------------


@torchscript
def test_a_declared_torchscript_file_loads_without_python_source(tmp_path):
    net = trained_net().eval()
    folder = make_submission(tmp_path, weights="model.pt", fmt="torchscript", source=None, entry=None, files={})
    torch.jit.script(net).save(str(folder / "model.pt"))

    model = build(folder)

    assert isinstance(model, torch.jit.ScriptModule)
    assert_eval_mode(model)
    with torch.no_grad():
        assert torch.equal(model(FACES), net(FACES))


@torchscript
def test_an_undeclared_torchscript_pt_file_is_recognized_by_its_contents(tmp_path):
    net = trained_net().eval()
    folder = make_submission(tmp_path, weights="model.pt", source=None, entry=None, files={})
    torch.jit.script(net).save(str(folder / "model.pt"))

    assert sniff_format(folder / "model.pt", None) == "torchscript"
    with torch.no_grad():
        assert torch.equal(build(folder)(FACES), net(FACES))


def test_an_undeclared_state_dict_pt_file_is_sniffed_as_a_state_dict(tmp_path):
    torch.save(trained_net().state_dict(), tmp_path / "model.pt")

    assert sniff_format(tmp_path / "model.pt", None) == "state_dict"


def test_a_state_dict_pt_file_without_source_says_what_to_add(tmp_path):
    # The spec cannot tell a .pt state_dict from TorchScript; the file shows it is not TorchScript.
    folder = make_submission(tmp_path, weights="model.pt", source=None, entry=None, files={})
    torch.save(trained_net().state_dict(), folder / "model.pt")

    message = load_error(folder)

    assert "model.source and model.entry required" in message
    assert "'model.pt'" in message


@torchscript
def test_a_corrupt_torchscript_file_is_reported(tmp_path):
    folder = make_submission(tmp_path, weights="model.pt", fmt="torchscript", source=None, entry=None, files={})
    torch.jit.script(trained_net()).save(str(folder / "model.pt"))
    data = (folder / "model.pt").read_bytes()
    (folder / "model.pt").write_bytes(data[: len(data) // 2])

    message = load_error(folder)

    assert message.startswith("'model.pt' is not a loadable TorchScript file: ")
    assert "torch.jit.script(model).save(...)" in message


# --- model.py and its helpers ---------------------------------------------------------------

HELPER_MODEL_PY = """\
from torch import nn

from helpers import WIDTH, Block


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.fc = nn.Linear(WIDTH, 7)

    def forward(self, x):
        return self.fc(self.block(x))
"""

HELPERS_PY = """\
from torch import nn

WIDTH = {width}


class Block(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Conv2d(1, WIDTH, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
"""


def helper_submission(folder: Path, width: int) -> Path:
    make_submission(folder, files={"model.py": HELPER_MODEL_PY, "helpers.py": HELPERS_PY.format(width=width)})
    reference = nn.Module()
    reference.block = nn.Sequential(nn.Conv2d(1, width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    reference.fc = nn.Linear(width, 7)
    torch.save(reference.state_dict(), folder / "model.pth")
    return folder


def test_model_py_may_import_a_helper_module_from_its_folder(tmp_path):
    model = build(helper_submission(tmp_path / "lin", width=5))

    assert model.fc.in_features == 5
    assert model(FACES).shape == (3, 7)
    assert "helpers" not in sys.modules  # nothing of the student's is left behind for the next one


def test_each_submission_gets_its_own_helper_module_of_the_same_name(tmp_path):
    # Grading runs submissions one after another in one process.
    first = build(helper_submission(tmp_path / "lin", width=5))
    second = build(helper_submission(tmp_path / "chen", width=6))

    assert (first.fc.in_features, second.fc.in_features) == (5, 6)


# --- model.py that cannot be used -----------------------------------------------------------


def test_missing_weights_file_is_named(tmp_path):
    folder = make_submission(tmp_path)

    assert load_error(folder) == ("weights file 'model.pth' not found in the submission folder "
                                  "(model.weights in submission.yaml)")


def test_missing_source_file_is_named(tmp_path):
    folder = make_submission(tmp_path, files={})
    torch.save(trained_net().state_dict(), folder / "model.pth")

    assert load_error(folder) == "model.source 'model.py' not found in the submission folder"


def test_a_syntax_error_names_the_file_and_line(tmp_path):
    source = MODEL_PY.replace("    def forward(self, x):", "    def forward(self, x:")
    folder = make_submission(tmp_path, files={"model.py": source})
    torch.save(trained_net().state_dict(), folder / "model.pth")
    line = source.splitlines().index("    def forward(self, x:") + 1

    message = load_error(folder)

    assert message.startswith(f"syntax error in model.py line {line}: ")


def test_a_syntax_error_in_a_helper_module_names_the_helper(tmp_path):
    helpers = HELPERS_PY.format(width=5).replace("WIDTH = 5", "WIDTH = = 5")
    folder = make_submission(tmp_path, files={"model.py": HELPER_MODEL_PY, "helpers.py": helpers})
    torch.save({}, folder / "model.pth")

    assert load_error(folder).startswith("syntax error in helpers.py line 3: ")


def test_an_exception_at_import_names_the_exception_and_the_line(tmp_path):
    source = MODEL_PY.replace("from torch import nn\n", "from torch import nn\nSCALE = 1 / 0\n")
    folder = make_submission(tmp_path, files={"model.py": source})
    torch.save(trained_net().state_dict(), folder / "model.pth")

    assert load_error(folder) == ("importing model.py failed: ZeroDivisionError: division by zero "
                                  "(at model.py line 3: SCALE = 1 / 0)")


def test_a_missing_package_is_named(tmp_path):
    folder = make_submission(tmp_path, files={"model.py": "import tensorflow_not_here\n" + MODEL_PY})
    torch.save(trained_net().state_dict(), folder / "model.pth")

    message = load_error(folder)

    assert message.startswith("importing model.py failed: ModuleNotFoundError: ")
    assert "'tensorflow_not_here'" in message
    assert "(at model.py line 1: import tensorflow_not_here)" in message


def test_a_missing_entry_lists_the_modules_the_file_defines(tmp_path):
    source = MODEL_PY + "\n\nclass Block(nn.Module):\n    pass\n"
    folder = make_submission(tmp_path, entry="Model", files={"model.py": source})
    torch.save(trained_net().state_dict(), folder / "model.pth")

    assert load_error(folder) == ("model.py has no 'Model' (model.entry in submission.yaml). "
                                  "It defines: Block, Net.")


def test_an_entry_that_raises_names_the_error_and_its_line(tmp_path):
    source = MODEL_PY.replace("        super().__init__()\n",
                              "        super().__init__()\n        raise ValueError('num_classes missing')\n")
    folder = make_submission(tmp_path, files={"model.py": source})
    torch.save(trained_net().state_dict(), folder / "model.pth")
    line = source.splitlines().index("        raise ValueError('num_classes missing')") + 1

    assert load_error(folder) == ("calling Net() failed: ValueError: num_classes missing "
                                  f"(at model.py line {line}: raise ValueError('num_classes missing'))")


def test_an_entry_that_returns_no_module_is_refused(tmp_path):
    source = MODEL_PY + "\n\ndef config():\n    return {'layers': 3}\n"
    folder = make_submission(tmp_path, entry="config", files={"model.py": source})
    torch.save(trained_net().state_dict(), folder / "model.pth")

    message = load_error(folder)

    assert message.startswith("config() returned dict, expected a torch.nn.Module")


# --- weights that do not fit ----------------------------------------------------------------

FIT = "the weights in 'model.pth' do not fit the model: "


def test_weights_missing_a_layer_name_the_missing_keys(tmp_path):
    state = {k: v for k, v in trained_net().state_dict().items() if not k.startswith("fc.")}
    folder = make_submission(tmp_path)
    torch.save(state, folder / "model.pth")

    message = load_error(folder)

    assert message.startswith(FIT + "missing fc.weight, fc.bias. ")
    assert "Check that model.py builds the same architecture you trained" in message


def test_weights_with_an_extra_layer_name_the_unexpected_keys(tmp_path):
    state = dict(trained_net().state_dict(), **{"head.weight": torch.zeros(7, 7)})
    folder = make_submission(tmp_path)
    torch.save(state, folder / "model.pth")

    assert load_error(folder).startswith(FIT + "unexpected head.weight. ")


def test_weights_of_another_shape_name_both_shapes(tmp_path):
    state = dict(trained_net().state_dict())
    state["fc.weight"], state["fc.bias"] = torch.zeros(6, 64), torch.zeros(6)
    folder = make_submission(tmp_path)
    torch.save(state, folder / "model.pth")

    assert load_error(folder).startswith(
        FIT + "wrong shape fc.weight (6, 64) vs model (7, 64), fc.bias (6,) vs model (7,). ")


def test_many_missing_keys_are_summarized(tmp_path):
    folder = make_submission(tmp_path)
    torch.save({"conv1.weight": trained_net().conv1.weight.detach()}, folder / "model.pth")

    assert load_error(folder).startswith(FIT + "missing conv1.bias, bn.weight, bn.bias, bn.running_mean and 4 more. ")


# --- weights files that are not weights -----------------------------------------------------


def test_a_pickled_python_object_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "code-ran"
    folder = make_submission(tmp_path / "sub")
    torch.save({"conv1.weight": torch.zeros(4, 1, 3, 3), "note": WritesMarker(marker)}, folder / "model.pth")

    message = load_error(folder)

    assert message.startswith("'model.pth' is not plain tensors, so it is not loaded (")
    assert "torch.save(model.state_dict(), 'model.pth')" in message
    assert not marker.exists()


def test_a_whole_pickled_module_is_refused_and_told_to_save_the_state_dict(tmp_path):
    folder = make_submission(tmp_path)
    torch.save(trained_net(), folder / "model.pth")

    message = load_error(folder)

    assert message.startswith("'model.pth' is not plain tensors, so it is not loaded (")
    assert "Net" in message
    assert "torch.save(model.state_dict(), 'model.pth')" in message


def test_the_refusal_is_in_plain_words_without_torch_boilerplate(tmp_path):
    folder = make_submission(tmp_path)
    torch.save(trained_net(), folder / "model.pth")

    message = load_error(folder)

    assert "\x1b[" not in message  # no terminal colour codes in a student's report
    assert "weights_only" not in message  # the grader, not the student, chooses how to load


def test_a_file_of_random_bytes_cannot_be_read_as_weights(tmp_path):
    folder = make_submission(tmp_path)
    (folder / "model.pth").write_bytes(random.Random(1).randbytes(1024))

    message = load_error(folder)

    assert message.startswith("'model.pth' could not be read as PyTorch weights: it is neither a torch.save "
                              "file nor a pickle of tensors (invalid load key, ")
    assert message.endswith("Save the weights with torch.save(model.state_dict(), 'model.pth')")
    assert "not plain tensors" not in message


def test_a_pickle_of_something_other_than_a_mapping_is_refused(tmp_path):
    folder = make_submission(tmp_path)
    torch.save([torch.zeros(3)], folder / "model.pth")

    assert load_error(folder) == ("'model.pth' holds list, expected a state_dict "
                                  "(a mapping of parameter names to tensors)")


class LitWithWeightedLoss(LitFaces):
    """A LightningModule whose state also holds a loss's class weights beside the model."""

    def __init__(self, net: nn.Module):
        super().__init__(net)
        self.criterion = nn.CrossEntropyLoss(weight=torch.ones(7))


def test_a_checkpoint_with_entries_beside_the_model_loads_the_model_part(tmp_path):
    net = trained_net()
    folder = make_submission(tmp_path, weights="last.ckpt")
    save_lightning_checkpoint(LitWithWeightedLoss(net), folder / "last.ckpt")
    assert "criterion.weight" in torch.load(folder / "last.ckpt", weights_only=True)["state_dict"]

    assert_same_state(build(folder), net.state_dict())


def test_the_missing_entry_hint_leaves_out_imported_classes(tmp_path):
    source = "from torch.nn import Conv2d\n" + MODEL_PY
    folder = make_submission(tmp_path, entry="Model", files={"model.py": source})
    torch.save(trained_net().state_dict(), folder / "model.pth")

    assert load_error(folder).endswith("It defines: Net.")


# --- other ways students save weights -------------------------------------------------------
# torch.load(weights_only=True) reads pickle protocol 2 only: Python's own pickle.dump, and
# torch.save(pickle_protocol=4/5), stopped it with "Unsupported operand 149" (FRAME).


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_state_dict_written_with_plain_pickle_loads(tmp_path, protocol):
    net = trained_net()
    folder = make_submission(tmp_path)
    with open(folder / "model.pth", "wb") as file:
        pickle.dump(net.state_dict(), file, protocol=protocol)

    model = build(folder)

    assert_same_state(model, net.state_dict())
    assert_eval_mode(model)


def test_a_plain_pickle_of_a_state_dict_with_parameters_loads(tmp_path):
    # state_dict(keep_vars=True) keeps the nn.Parameter objects: pickled via torch._utils._rebuild_parameter.
    net = trained_net()
    folder = make_submission(tmp_path)
    (folder / "model.pth").write_bytes(pickle.dumps(net.state_dict(keep_vars=True), protocol=4))

    assert_same_state(build(folder), net.state_dict())


def test_a_plain_pickle_of_weights_saved_on_a_gpu_loads_on_the_cpu(tmp_path):
    # Plain pickle.load of such a file fails without CUDA; the grader maps every storage to the CPU.
    net = trained_net()
    folder = make_submission(tmp_path)
    with mock.patch("torch.serialization.location_tag", lambda storage: "cuda:0"):
        (folder / "model.pth").write_bytes(pickle.dumps(net.state_dict(), protocol=4))

    assert_same_state(build(folder), net.state_dict())


@pytest.mark.parametrize("protocol", [4, 5])
def test_a_state_dict_torch_saved_with_a_newer_pickle_protocol_loads(tmp_path, protocol):
    net = trained_net()
    folder = make_submission(tmp_path)
    torch.save(net.state_dict(), folder / "model.pth", pickle_protocol=protocol)

    assert_same_state(build(folder), net.state_dict())


@pytest.mark.parametrize("protocol", [2, 5])
def test_a_state_dict_in_torch_s_legacy_non_zip_format_loads(tmp_path, protocol):
    net = trained_net()
    folder = make_submission(tmp_path)
    torch.save(net.state_dict(), folder / "model.pth", pickle_protocol=protocol, _use_new_zipfile_serialization=False)

    assert_same_state(build(folder), net.state_dict())


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_plain_pickle_carrying_a_python_object_is_refused_and_never_run(tmp_path, protocol):
    marker = tmp_path / "code-ran"
    folder = make_submission(tmp_path / "sub")
    state = dict(trained_net().state_dict(), note=WritesMarker(marker))
    (folder / "model.pth").write_bytes(pickle.dumps(state, protocol=protocol))

    message = load_error(folder)

    assert message.startswith("'model.pth' is not plain tensors, so it is not loaded (it holds the Python object ")
    assert "open)" in message  # io.open: pickle names builtins.open by its __module__
    assert not marker.exists()


@pytest.mark.parametrize("legacy", [False, True])
def test_a_newer_protocol_torch_save_carrying_a_python_object_is_refused_and_never_run(tmp_path, legacy):
    marker = tmp_path / "code-ran"
    folder = make_submission(tmp_path / "sub")
    torch.save({"conv1.weight": torch.zeros(4, 1, 3, 3), "note": WritesMarker(marker)}, folder / "model.pth",
               pickle_protocol=5, _use_new_zipfile_serialization=not legacy)

    message = load_error(folder)

    assert message.startswith("'model.pth' is not plain tensors, so it is not loaded (it holds the Python "
                              "object io.open)")
    assert not marker.exists()


class SetsTensorState:
    """Pickles as a tensor followed by BUILD: unpickling would call Tensor.__setstate__ on it."""

    def __reduce__(self):
        storage = torch.zeros(4)._typed_storage()
        return (torch._utils._rebuild_tensor_v2, (storage, 0, (4,), (1,), False, OrderedDict()),
                (storage, 0, (2,), (1,)))


def test_a_plain_pickle_that_sets_state_on_a_tensor_is_refused(tmp_path):
    folder = make_submission(tmp_path)
    (folder / "model.pth").write_bytes(pickle.dumps({"conv1.weight": SetsTensorState()}, protocol=4))

    assert load_error(folder).startswith("'model.pth' is not plain tensors, so it is not loaded (it holds the "
                                         "Python object torch.Tensor.__setstate__)")


def test_a_cut_off_plain_pickle_is_reported_as_incomplete(tmp_path):
    folder = make_submission(tmp_path)
    data = pickle.dumps(trained_net().state_dict(), protocol=4)
    (folder / "model.pth").write_bytes(data[: len(data) // 2])

    assert load_error(folder) == ("'model.pth' could not be read as PyTorch weights: the file ends too early "
                                  "(an incomplete copy or upload?). Save the weights with "
                                  "torch.save(model.state_dict(), 'model.pth')")


def test_a_cut_off_torch_save_zip_is_reported_as_incomplete(tmp_path):
    folder = make_submission(tmp_path)
    torch.save(trained_net().state_dict(), folder / "model.pth")
    data = (folder / "model.pth").read_bytes()
    (folder / "model.pth").write_bytes(data[: len(data) // 2])

    assert load_error(folder).startswith("'model.pth' could not be read as PyTorch weights: it is a zip archive, "
                                         "but not a whole one written by torch.save (cut off in copying")


def test_a_git_lfs_pointer_is_recognized(tmp_path):
    folder = make_submission(tmp_path)
    (folder / "model.pth").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 1432\n")

    assert load_error(folder).startswith("'model.pth' could not be read as PyTorch weights: it is a Git LFS "
                                         "pointer (a small text file standing in for the real one)")


# --- checkpoint dicts -----------------------------------------------------------------------


def optimizer_state(net: nn.Module) -> dict:
    """An Adam state_dict after one step: ints, floats, tuples and lists beside its tensors."""
    optimizer = torch.optim.Adam(net.parameters())
    net(FACES).sum().backward()
    optimizer.step()
    return optimizer.state_dict()


@pytest.mark.parametrize("key", ["model_state_dict", "model", "net", "network", "weights"])
def test_a_checkpoint_dict_with_the_weights_under_a_usual_key_loads(tmp_path, key):
    net = trained_net()
    expected = {k: v.clone() for k, v in net.state_dict().items()}
    folder = make_submission(tmp_path)
    torch.save({"epoch": 5, key: net.state_dict(), "optimizer_state_dict": optimizer_state(trained_net(1)),
                "best_acc": 0.61}, folder / "model.pth")

    assert_same_state(build(folder), expected)


def test_a_checkpoint_that_keeps_numpy_scalars_beside_the_weights_loads(tmp_path):
    import numpy as np

    net = trained_net()
    folder = make_submission(tmp_path)
    torch.save({"epoch": np.int64(5), "model_state_dict": net.state_dict(), "best_acc": np.float64(0.61),
                "lr": np.float32(1e-3)}, folder / "model.pth")

    assert_same_state(build(folder), net.state_dict())


def test_a_plain_pickled_checkpoint_dict_with_optimizer_state_loads(tmp_path):
    net = trained_net()
    folder = make_submission(tmp_path)
    checkpoint = {"epoch": 5, "net": net.state_dict(), "optimizer": optimizer_state(trained_net(1))}
    (folder / "model.pth").write_bytes(pickle.dumps(checkpoint, protocol=4))

    assert_same_state(build(folder), net.state_dict())


def test_a_checkpoint_dict_with_one_set_of_weights_under_another_key_loads_it(tmp_path):
    net = trained_net()
    folder = make_submission(tmp_path)
    torch.save({"epoch": 9, "best_model": net.state_dict()}, folder / "model.pth")

    assert_same_state(build(folder), net.state_dict())


def test_a_usual_key_is_preferred_over_another_set_of_weights(tmp_path):
    net = trained_net()
    folder = make_submission(tmp_path)
    torch.save({"ema": trained_net(1).state_dict(), "model": net.state_dict()}, folder / "model.pth")

    assert_same_state(build(folder), net.state_dict())


def test_a_checkpoint_dict_with_two_sets_of_weights_under_usual_keys_names_both(tmp_path):
    folder = make_submission(tmp_path)
    torch.save({"model": trained_net(0).state_dict(), "net": trained_net(1).state_dict()}, folder / "model.pth")

    assert load_error(folder) == ("'model.pth' holds several sets of weights (under 'model', 'net'), so it is "
                                  "not clear which is the model's. Save only the model's: "
                                  "torch.save(model.state_dict(), 'model.pth')")


def test_a_dict_without_weights_names_its_keys_and_what_was_expected(tmp_path):
    folder = make_submission(tmp_path)
    torch.save({"epoch": 5, "acc": 0.61, "history": [0.3, 0.5]}, folder / "model.pth")

    assert load_error(folder) == (
        "'model.pth' holds a dict with the keys 'epoch' (int), 'acc' (float), 'history' (list); expected a "
        "state_dict (a mapping of parameter names to tensors), by itself or under one of the keys 'state_dict', "
        "'model_state_dict', 'model', 'net', 'network', 'weights'. Save the weights with "
        "torch.save(model.state_dict(), 'model.pth')")


def test_a_state_dict_with_a_number_added_names_the_number_first(tmp_path):
    folder = make_submission(tmp_path)
    torch.save(dict(trained_net().state_dict(), epoch=5), folder / "model.pth")

    assert load_error(folder).startswith("'model.pth' holds a dict with the keys 'epoch' (int), 'conv1.weight' "
                                         "(Tensor), ")


def test_the_keys_named_are_few_and_short(tmp_path):
    folder = make_submission(tmp_path)
    torch.save({f"{i:02d}" + "k" * 5000: i for i in range(50)}, folder / "model.pth")

    message = load_error(folder)

    assert len(message) < 1500
    assert "'00kkk" in message and "'09kkk" in message and "'10kkk" not in message
    assert " and 40 more;" in message


# --- packages the grader does not have ------------------------------------------------------

TORCHVISION_MODEL_PY = MODEL_PY.replace("from torch import nn\n", "from torch import nn\nimport torchvision\n")


def torchvision_message(line: str) -> str:
    return (f"{line} imports torchvision, which the grader's environment does not provide. Build the model "
            "with torch.nn only: if you used a torchvision model such as resnet18, copy its definition into "
            "your own file (its source is short), or hand in TorchScript "
            "(torch.jit.script(model).save('model.pt'), model.format: torchscript)")


def test_a_torchvision_import_says_the_grader_has_no_torchvision(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # not installed, whatever this machine has
    folder = make_submission(tmp_path, files={"model.py": TORCHVISION_MODEL_PY})
    torch.save(trained_net().state_dict(), folder / "model.pth")

    assert load_error(folder) == torchvision_message("model.py line 3")


def test_a_torchvision_built_for_another_torch_gets_the_same_message(tmp_path, monkeypatch):
    # Installed beside the grader's torch, torchvision's import fails in its own registrations.
    site = tmp_path / "site"
    (site / "torchvision").mkdir(parents=True)
    (site / "torchvision" / "__init__.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "torchvision", raising=False)
    folder = make_submission(tmp_path / "sub", files={"model.py": TORCHVISION_MODEL_PY})
    torch.save(trained_net().state_dict(), folder / "model.pth")

    assert load_error(folder) == torchvision_message("model.py line 3")


def test_torchvision_imported_by_the_entry_function_gets_the_same_message(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    source = MODEL_PY + "\n\ndef resnet():\n    from torchvision.models import resnet18\n    return resnet18()\n"
    folder = make_submission(tmp_path, entry="resnet", files={"model.py": source})
    torch.save(trained_net().state_dict(), folder / "model.pth")
    line = source.splitlines().index("    from torchvision.models import resnet18") + 1

    assert load_error(folder) == torchvision_message(f"model.py line {line}")


def test_a_missing_package_is_said_to_be_missing_from_the_grader_s_environment(tmp_path):
    folder = make_submission(tmp_path, files={"model.py": "from torchsummary import summary\n" + MODEL_PY})
    torch.save(trained_net().state_dict(), folder / "model.pth")

    assert load_error(folder).endswith(
        "(at model.py line 1: from torchsummary import summary). 'torchsummary' is not installed in the grader's "
        "environment, nor a .py file in the submission folder: the model may use torch, numpy, the Python "
        "standard library and the .py files handed in beside it")


def test_a_long_exception_text_from_model_py_is_shortened(tmp_path):
    source = MODEL_PY.replace("from torch import nn\n", "from torch import nn\nraise ValueError('x' * 100000)\n")
    folder = make_submission(tmp_path, files={"model.py": source})
    torch.save(trained_net().state_dict(), folder / "model.pth")

    message = load_error(folder)

    assert message.startswith("importing model.py failed: ValueError: xxx")
    assert len(message) < 600
