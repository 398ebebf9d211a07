"""Reading a student's weights file without running any Python code it carries, and finding the
state_dict in what it holds.

torch.load(weights_only=True) reads what torch.save writes by default (pickle protocol 2), but its
unpickler implements only the opcodes of protocols 2 and 3. Students also hand in:

* torch.save(..., pickle_protocol=4 or 5), zip or legacy (`_use_new_zipfile_serialization=False`):
  the pickle opens with FRAME (0x95 = 149), which torch rejects as "Unsupported operand 149".
* pickle.dump(model.state_dict(), f) with Python's own pickle, no torch archive at all. In it the
  state_dict is `collections.OrderedDict()` filled by SETITEMS, then BUILD `{'_metadata': ...}`;
  each tensor is `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
  OrderedDict())` (a Parameter wraps that in `torch._utils._rebuild_parameter`), and each storage
  is `torch.storage._load_from_bytes(<a legacy torch.save of that storage>)`, which would call
  torch.load(weights_only=False) on the inner bytes. Protocols 0-2 have no bytes opcode, so those
  bytes are `_codecs.encode(<latin-1 text>, 'latin1')`. torch refuses `_load_from_bytes` (protocols
  0-3) or stops at FRAME (4, 5).

TensorUnpickler reads all of these: its find_class hands out only OrderedDict and safe stand-ins
for those functions (`_load_from_bytes` reads its inner bytes with torch.load(weights_only=True)),
and BUILD may only set a state_dict's `_metadata`. Anything else a pickle names is refused, never
imported. The storage classes (torch.FloatStorage, ...) need no entry: a plain pickle names them
only inside `_load_from_bytes`'s bytes, and torch.load's own Unpickler subclass answers them in
its archives before find_class is asked.
"""

from __future__ import annotations

import io
import pickle
import re
import tarfile
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

import torch
from torch import nn

from grader.submission.errors import SubmissionError

# Where students keep the weights in a checkpoint dict, the most specific name first:
# Lightning's 'state_dict', then torch.save({'epoch': .., 'model_state_dict': .., 'optimizer_state_dict': ..}).
WEIGHT_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "weights")


def _numpy_scalar_globals() -> list[Any]:
    """What a checkpoint needs to hold numpy scalars beside its weights (`'best_acc': np.float64(...)`,
    `'epoch': np.int64(...)`, as training loops store them): numpy's scalar constructor, which builds a
    number from its dtype and raw bytes, and the dtype classes. Nothing in them runs other code."""
    import numpy as np

    scalar = getattr(getattr(np, "_core", np.core), "multiarray").scalar
    dtype_classes = [value for value in vars(np.dtypes).values() if isinstance(value, type)]
    return [scalar, np.dtype, *dtype_classes]


def clip(text: str, limit: int = 300) -> str:
    """`text` cut to `limit` characters: key names, module names and exception texts come from the
    student's files and go into a one-line report, where a 10 MB key must not."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the restricted unpickler ----------------------------------------------------------------


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a Python object (a class or function) that is not needed for tensors."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"refused global {name}")


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise pickle.UnpicklingError(f"malformed {what}")


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any,
                    backward_hooks: Any, metadata: Any = None) -> torch.Tensor:
    """torch._utils._rebuild_tensor_v2 on a storage only, with no backward hooks: the pickle could
    otherwise attach any object it built as a hook (torch notes hooks are never serialized)."""
    _require(isinstance(storage, torch.storage.TypedStorage) and not backward_hooks
             and (metadata is None or isinstance(metadata, dict)), "tensor")
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
                                           OrderedDict(), metadata)


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any) -> nn.Parameter:
    """torch._utils._rebuild_parameter, on a tensor and without hooks (see _rebuild_tensor)."""
    _require(isinstance(data, torch.Tensor) and isinstance(requires_grad, bool) and not backward_hooks,
             "parameter")
    return nn.Parameter(data, requires_grad)


def _storage_from_bytes(data: Any) -> torch.storage.TypedStorage | torch.UntypedStorage:
    """torch.storage._load_from_bytes, which torch implements as torch.load(weights_only=False):
    the inner bytes are a legacy torch.save of one storage, always at protocol 2, which the
    weights-only loader reads (the storage classes are on its allowlist)."""
    _require(isinstance(data, bytes), "storage")
    storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    _require(isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)), "storage")
    return storage


def _latin1_bytes(text: Any, encoding: Any) -> bytes:
    """_codecs.encode as pickle protocols 0-2 use it for bytes, and only so."""
    _require(isinstance(text, str) and encoding in ("latin1", "latin-1"), "bytes")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("_codecs", "encode"): _latin1_bytes,
}


class _Opcodes(dict[int, Callable[[Any], None]]):
    """The pure-Python unpickler looks each opcode up in its dispatch dict, so an unknown byte
    surfaces as a bare `KeyError: 0`; say it as the C unpickler does."""

    def __missing__(self, opcode: int) -> Callable[[Any], None]:
        raise pickle.UnpicklingError(f"invalid load key, {bytes([opcode])!r}")


class TensorUnpickler(pickle._Unpickler):
    """Unpickles tensors and plain containers (dict, list, tuple, str, numbers) of any protocol.

    Built on the pure-Python unpickler because BUILD must be restricted too: it calls
    `__setstate__` on whatever object is on the stack (Tensor.__setstate__ can `set_` storage and
    backward hooks), and the C unpickler offers no way to intercept an opcode. Its persistent_load
    refuses persistent ids unless torch.load installs its own (which only reads storages).
    """

    dispatch = _Opcodes(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise RefusedGlobal(f"{module}.{name}")
        return found

    def _load_build(self) -> None:
        """BUILD only as a state_dict's pickle uses it: OrderedDict gets `_metadata` (the module
        versions load_state_dict passes to _load_from_state_dict)."""
        state = self.stack.pop()
        target = self.stack[-1]
        if not (type(target) is OrderedDict and type(state) is dict and set(state) <= {"_metadata"}
                and all(isinstance(value, Mapping) for value in state.values())):
            raise RefusedGlobal(f"{type(target).__module__}.{type(target).__qualname__}.__setstate__")
        target.__dict__.update(state)

    dispatch[pickle.BUILD[0]] = _load_build


def _unpickle(file: BinaryIO, **kwargs: Any) -> Any:
    return TensorUnpickler(file, **kwargs).load()


# torch.load(pickle_module=...) reads its archive formats with this module's Unpickler and load.
TENSOR_PICKLE = ModuleType("grader_tensor_pickle")
TENSOR_PICKLE.Unpickler = TensorUnpickler  # type: ignore[attr-defined]
TENSOR_PICKLE.load = _unpickle  # type: ignore[attr-defined]


# --- reading a weights file ------------------------------------------------------------------


def read_weights(path: Path) -> object:
    """What the weights file holds, read without running code from it; a SubmissionError says why not."""
    try:
        return _read(path)
    except RefusedGlobal as refused:
        raise SubmissionError("load", f"'{path.name}' is not plain tensors, so it is not loaded (it holds the "
                                      f"Python object {clip(refused.name, 200)}). Save only the weights: "
                                      f"torch.save(model.state_dict(), '{path.name}')") from None
    except Exception as error:  # torch and pickle raise RuntimeError, UnpicklingError, EOFError, ...
        raise SubmissionError("load", f"'{path.name}' could not be read as PyTorch weights: "
                                      f"{_explain(path, error)}. Save the weights with "
                                      f"torch.save(model.state_dict(), '{path.name}')") from None


def _read(path: Path) -> object:
    """A zip is torch.save's format; otherwise the first pickle says which: torch's legacy format
    opens with the pickled MAGIC_NUMBER, a plain pickle.dump is the whole object."""
    if zipfile.is_zipfile(path):
        return _torch_load(path, _archive_protocol(path))
    with path.open("rb") as file:
        unpickler = TensorUnpickler(file)
        try:
            first = unpickler.load()
        except RefusedGlobal:
            raise
        except Exception as error:
            if file.tell() >= path.stat().st_size:  # read to the end without finding STOP
                error = EOFError("the pickle stops before its end")
            return _torch_or(path, error)
    if type(first) is int and first == torch.serialization.MAGIC_NUMBER:
        return _torch_load(path, unpickler.proto)
    return first


def _torch_or(path: Path, error: BaseException) -> object:
    """What torch.load(weights_only=True) reads from torch's pre-1.0 tar format, which is no pickle
    at its start; for any other file TensorUnpickler could not read, `error`."""
    if not tarfile.is_tarfile(path):
        raise error
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise error from None


def _archive_protocol(path: Path) -> int:
    """The pickle protocol of a torch.save zip's `<name>/data.pkl` (0 or 1: no PROTO opcode)."""
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(names) != 1:
            return 2  # no torch archive: torch.load reports what it misses
        with archive.open(names[0]) as data:
            head = data.read(2)
    return head[1] if len(head) == 2 and head[0] == pickle.PROTO[0] else 0


def _torch_load(path: Path, protocol: int) -> object:
    """torch.load(weights_only=True) for protocol 2, torch.save's default and the only one its
    unpickler reads without a warning (it lacks protocol 4's FRAME, STACK_GLOBAL, MEMOIZE and
    protocol 0's PUT: "Unsupported operand 149" or "112"). For the others, torch.load with
    TensorUnpickler as its pickle module: torch's own code still reads the archive and its
    storages, and every global the pickle names passes TensorUnpickler's allowlist.
    weights_only=False is only how torch accepts a pickle module; TorchScript archives, which
    torch.load would then hand to torch.jit.load, are refused first."""
    if protocol == 2:
        try:
            with torch.serialization.safe_globals(_numpy_scalar_globals()):
                return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            refused = re.search(r"GLOBAL ([\w.]+)", str(error))  # how torch names a refused object
            if refused is not None:
                raise RefusedGlobal(refused.group(1)) from None
            raise
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any(name.endswith("/constants.pkl") for name in archive.namelist()):
                raise pickle.UnpicklingError("a TorchScript archive")
    return torch.load(path, map_location="cpu", weights_only=False, pickle_module=TENSOR_PICKLE)


def _explain(path: Path, error: BaseException) -> str:
    """What a read error means, in words, from the file's first bytes and the error."""
    with path.open("rb") as file:
        head = file.read(512)
    text = clip(_first_line(error), 200)
    if not head:
        return "the file is empty"
    if head.startswith(b"version https://git-lfs"):
        return "it is a Git LFS pointer (a small text file standing in for the real one), not the weights"
    if head.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
        return "it is a web page (HTML), not the weights; a download link gave a page instead of the file"
    if "TorchScript" in text:
        return "it is a TorchScript archive; declare model.format: torchscript in submission.yaml"
    if head.startswith(b"PK\x03\x04"):
        return ("it is a zip archive, but not a whole one written by torch.save (cut off in copying or "
                "uploading, or a zip of other files?)")
    if isinstance(error, EOFError) or "truncated" in text or "Ran out of input" in text:
        return "the file ends too early (an incomplete copy or upload?)"
    if "Unsupported operand" in text:
        return f"it uses pickle instructions the safe loader does not read ({text})"
    return f"it is neither a torch.save file nor a pickle of tensors ({text})"


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# --- the state_dict in what the file holds -----------------------------------------------------


def state_dict_from(loaded: object, file_name: str, lightning: bool) -> Mapping[str, torch.Tensor]:
    """The parameter-name -> tensor mapping in `loaded`: the object itself, a Lightning checkpoint's
    'state_dict', or the one entry of a checkpoint dict that is such a mapping (an optimizer's
    state_dict holds ints, floats and lists beside its tensors, so it never is)."""
    if lightning:
        if not (isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping)):
            raise SubmissionError("load", f"'{file_name}' has no 'state_dict' entry, so it is not a Lightning "
                                          "checkpoint; save it with trainer.save_checkpoint(...)")
        loaded = loaded["state_dict"]
    elif isinstance(loaded, Mapping) and not _holds_tensors(loaded):
        key = _weights_key(loaded, file_name)
        if key is not None:
            loaded = loaded[key]
    if isinstance(loaded, Mapping) and _holds_tensors(loaded):
        return loaded
    if not isinstance(loaded, Mapping):
        raise SubmissionError("load", f"'{file_name}' holds {type(loaded).__name__}, expected a state_dict "
                                      "(a mapping of parameter names to tensors)")
    raise SubmissionError("load", f"'{file_name}' holds a {type(loaded).__name__} with the keys "
                                  f"{_describe_keys(loaded)}; expected a state_dict (a mapping of parameter "
                                  "names to tensors), by itself or under one of the keys "
                                  f"{', '.join(repr(k) for k in WEIGHT_KEYS)}. Save the weights with "
                                  f"torch.save(model.state_dict(), '{file_name}')")


def _holds_tensors(value: object) -> bool:
    return isinstance(value, Mapping) and all(isinstance(v, torch.Tensor) for v in value.values())


def _weights_key(checkpoint: Mapping[Any, Any], file_name: str) -> object | None:
    """The key of the checkpoint's one non-empty tensor mapping: among WEIGHT_KEYS if any holds
    one, else among all keys; None if there is none, an error if there are several."""
    known = [k for k in WEIGHT_KEYS if k in checkpoint and _is_weights(checkpoint[k])]
    found = known or [k for k, v in checkpoint.items() if _is_weights(v)]
    if len(found) > 1:
        names = ", ".join(repr(clip(str(k), 60)) for k in found[:10])
        raise SubmissionError("load", f"'{file_name}' holds several sets of weights (under {names}), so it is "
                                      "not clear which is the model's. Save only the model's: "
                                      f"torch.save(model.state_dict(), '{file_name}')")
    return found[0] if found else None


def _is_weights(value: object) -> bool:
    return isinstance(value, Mapping) and len(value) > 0 and _holds_tensors(value)


def _describe_keys(mapping: Mapping[Any, Any], limit: int = 10) -> str:
    """`'epoch' (int), 'optim' (dict) and 3 more`: the first keys, each shortened, with their values'
    types; those that are no tensor first, since they are what keeps the mapping from being a state_dict."""
    items = sorted(mapping.items(), key=lambda item: isinstance(item[1], torch.Tensor))[:limit]
    shown = [f"{clip(str(k), 60)!r} ({type(v).__name__})" for k, v in items]
    more = f" and {len(mapping) - limit} more" if len(mapping) > limit else ""
    return (", ".join(shown) + more) if shown else "(none)"
