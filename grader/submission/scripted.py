"""Observing the layers of a TorchScript model, which runs no forward hooks.

A TorchScript module carries its forward as a graph. Once inlined, every node of that graph still
names the module it came from (`Node.getModuleHierarchy()`, such as
"features(Sequential).0(Conv2d).SELF(Conv2d)"), so the output of layer L is the first tensor made
inside L that a node outside L uses: exactly what a forward hook on L would have seen on L's first
call. `LayerTaps` compiles a copy of the graph that returns those tensors, and nothing that only
the rest of the network needs (dead-code elimination cuts it, as the eager model's hook cuts its
forward), and runs it on the module's own weights, so the numbers are the model's own.

This uses torch._C's graph API (private, but the same calls TorchScript's own passes make).
A layer that runs only inside control flow (an `if` or a loop in the student's forward) cannot be
tapped this way; the error says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from grader.submission.errors import SubmissionError

_TYPE_SUFFIX = re.compile(r"\(.*\)$")


def _scope(node: torch._C.Node) -> tuple[str, ...]:
    """The module path a node comes from: "features(Sequential).0(Conv2d).SELF(Conv2d)" -> ("features", "0")."""
    hierarchy = node.getModuleHierarchy()
    names = [_TYPE_SUFFIX.sub("", part) for part in hierarchy.split(".")] if hierarchy else []
    return tuple(name for name in names if name != "SELF")


def _inlined_forward(module: torch.jit.ScriptModule) -> torch._C.Graph:
    graph = module.forward.graph.copy()
    torch._C._jit_pass_inline(graph)
    return graph


def _layer_value(graph: torch._C.Graph, layer: str) -> torch._C.Value | None:
    """The first tensor made inside `layer` (at the graph's top level) that is used outside it."""
    path = tuple(layer.split("."))

    def inside(node: torch._C.Node) -> bool:
        return _scope(node)[:len(path)] == path

    for node in graph.nodes():
        if not inside(node):
            continue
        for value in node.outputs():
            if value.type().kind() == "TensorType" and any(not inside(use.user) for use in value.uses()):
                return value
    return None


def observable_layers(module: torch.jit.ScriptModule, layers: Sequence[str]) -> list[str]:
    """Those of `layers` whose output `LayerTaps` can return."""
    graph = _inlined_forward(module)
    return [layer for layer in layers if _layer_value(graph, layer) is not None]


class LayerTaps:
    """A compiled cut of a TorchScript model's forward that returns the outputs of `layers`, in
    order, followed by the model's own output when `with_output` is true."""

    def __init__(self, module: torch.jit.ScriptModule, layers: Sequence[str], with_output: bool = False) -> None:
        self.module = module
        graph = _inlined_forward(module)
        values = []
        for layer in layers:
            value = _layer_value(graph, layer)
            if value is None:
                raise SubmissionError("request", f"layer '{layer}' of this TorchScript model cannot be observed: its "
                                                 "output is not a tensor the forward passes on outside an `if` or a "
                                                 "loop; name another layer, or hand in model.py and a state_dict")
            values.append(value)
        outputs = list(graph.outputs())
        if with_output:
            values.extend(outputs)
        for index in reversed(range(len(outputs))):
            graph.eraseOutput(index)
        # A compiled function returns one value: a tuple of the tapped tensors.
        packed = graph.insertNode(graph.create("prim::TupleConstruct", values))
        packed.output().setType(torch._C.TupleType([value.type() for value in values]))
        graph.registerOutput(packed.output())
        torch._C._jit_pass_dce(graph)
        self._function = torch._C._create_function_from_graph("grader_layer_taps", graph)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The tapped tensors for the (already preprocessed) model input `x`."""
        return tuple(self._function(self.module._c, x))
