"""Small onnx-graphsurgeon helpers the RoIAlign graph passes share: adding ops to a graph
under one name prefix, walking a tensor's producers, and telling whether a subgraph of a
model is the one a builder makes (how ``contract`` recognises what ``expand`` wrote)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class GraphBuilder:
    """Adds nodes and constants to ``graph``, each named ``prefix`` and a counter."""

    def __init__(self, *, gs: Any, graph: Any, prefix: str) -> None:
        self.gs, self.graph, self.prefix = gs, graph, prefix
        self._count = 0

    def _name(self, what: str) -> str:
        self._count += 1
        return f"{self.prefix}_{what}{self._count}"

    def const(self, values: Any, dtype: Any = np.float32) -> Any:
        return self.gs.Constant(self._name("c"), np.asarray(values, dtype=dtype))

    def layer(self, op: str, inputs: list[Any], **attrs: Any) -> Any:
        name = self._name(op)
        return self.graph.layer(op=op, name=name, inputs=inputs, outputs=[f"{name}_out"], attrs=attrs)[0]


def producer(tensor: Any, op: str) -> Any | None:
    node = tensor.inputs[0] if tensor.inputs else None
    return node if node is not None and node.op == op else None


def up(tensor: Any | None, *steps: tuple[str, int]) -> Any | None:
    """The tensor reached from ``tensor`` by steps (op, i): its producer must be ``op``, then
    go to that node's input ``i``; None where a producer is another op or missing, or
    ``tensor`` is None."""
    for op, i in steps:
        node = None if tensor is None else producer(tensor, op)
        if node is None or len(node.inputs) <= i:
            return None
        tensor = node.inputs[i]
    return tensor


def constant(tensor: Any) -> np.ndarray | None:
    values = getattr(tensor, "values", None)
    return None if values is None else np.asarray(values)


def made_by(
    gs: Any, found: Any, leaves: dict[str, Any], build: Callable[[GraphBuilder, dict[str, Any]], Any]
) -> bool:
    """Whether ``found`` is computed from ``leaves`` (name -> tensor of the model) by the ops
    ``build`` adds, node for node, attributes and constants (by value) equal. ``build`` gets a
    builder of a scratch graph and that graph's inputs by the same names, and returns its output.
    The scratch graph goes through ONNX and back, so its attributes read as the model's do."""
    scratch = gs.Graph(opset=18)
    inputs = {name: gs.Variable(f"leaf_{name}") for name in leaves}
    scratch.inputs = list(inputs.values())
    scratch.outputs = [build(GraphBuilder(gs=gs, graph=scratch, prefix="template"), inputs)]
    template = gs.import_onnx(gs.export_onnx(scratch, do_type_check=False))
    names = {f"leaf_{name}": tensor for name, tensor in leaves.items()}
    return _same(found, template.outputs[0], names, {})


def _same(found: Any, made: Any, leaves: dict[str, Any], seen: dict[int, Any]) -> bool:
    if made.name in leaves and not made.inputs:
        return found is leaves[made.name]
    values = constant(made)
    if values is not None:
        other = constant(found)
        return other is not None and other.dtype == values.dtype and np.array_equal(other, values)
    a = found.inputs[0] if found.inputs else None
    b = made.inputs[0] if made.inputs else None
    if a is None or b is None:
        return False
    if id(b) in seen:
        return seen[id(b)] is a and a.outputs.index(found) == b.outputs.index(made)
    if (
        a.op != b.op
        or a.domain != b.domain
        or dict(a.attrs) != dict(b.attrs)
        or len(a.inputs) != len(b.inputs)
        or len(a.outputs) != len(b.outputs)
        or a.outputs.index(found) != b.outputs.index(made)
    ):
        return False
    seen[id(b)] = a
    return all(_same(x, y, leaves, seen) for x, y in zip(a.inputs, b.inputs, strict=True))
