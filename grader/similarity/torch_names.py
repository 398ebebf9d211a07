"""The torch names source normalization keeps (grader.similarity.source): what torch, torch.nn,
torch.nn.functional, nn.Module and torch.Tensor define, and the parameters of torch.nn's layers.
They ship with the grader in torch_names.json, made from the pinned torch, so that the grading
process, which never runs a model, does not import torch (2 s of a core) to compare sources, and
every run normalizes with the same names. tests/test_similarity.py checks the file against the
installed torch; after a torch upgrade, write it again:

    .venv/bin/python -m grader.similarity.torch_names
"""

from __future__ import annotations

import functools
import inspect
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

NAMES_FILE = "torch_names.json"


@dataclass(frozen=True)
class TorchNames:
    """`namespaces`: every identifier torch, nn, F, nn.Module and torch.Tensor define, and nn layers'
    parameters; `module`: nn.Module's own attributes (forward, parameters, ...)."""

    torch_version: str
    namespaces: frozenset[str]
    module: frozenset[str]


@functools.lru_cache(maxsize=1)
def shipped_torch_names() -> TorchNames:
    """The names in the grader's torch_names.json."""
    data = json.loads((resources.files("grader.similarity") / NAMES_FILE).read_text(encoding="utf-8"))
    return TorchNames(data["torch"], frozenset(data["namespaces"]), frozenset(data["module"]))


def installed_torch_names() -> TorchNames:
    """The same names read from the installed torch (imports it). Run in a fresh interpreter:
    dir(torch) grows as torch's submodules are imported (Lightning imports torch._dynamo, for one),
    so before the names shipped they differed between a process that had imported Lightning and
    one that had not."""
    import torch
    from torch import nn
    from torch.nn import functional

    names: set[str] = set()
    for namespace in (torch, nn, functional, nn.Module, torch.Tensor):
        names.update(dir(namespace))
    for value in vars(nn).values():
        if isinstance(value, type) and issubclass(value, nn.Module):
            try:
                names.update(inspect.signature(value.__init__).parameters)
            except (TypeError, ValueError):
                continue
    return TorchNames(torch.__version__, frozenset(n for n in names if n.isidentifier()),
                      frozenset(dir(nn.Module)))


def write_torch_names(path: Path) -> None:
    """torch_names.json from the installed torch, sorted, one name a line."""
    names = installed_torch_names()
    data = {"torch": names.torch_version, "namespaces": sorted(names.namespaces), "module": sorted(names.module)}
    path.write_text(json.dumps(data, indent=0) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_torch_names(Path(__file__).with_name(NAMES_FILE))
