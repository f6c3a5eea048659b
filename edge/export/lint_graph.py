"""What the lint's rules know of an ONNX graph: its findings' shape (Finding), its nodes (those
of If, Loop and Scan bodies too) and the lookups the rules make (constants, producers,
consumers, inferred types, ranks and static shapes)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import onnx

from edge.util.onnx_io import tensor_types

STANDARD_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class Finding:
    level: str  # "error" (the parser or build will fail), "warning", "info"
    op: str
    node: str
    message: str

    def __str__(self) -> str:
        where = f"{self.op} '{self.node}'" if self.node else self.op
        return f"{self.level}: {where}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"level": self.level, "op": self.op, "node": self.node, "message": self.message}


def attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            value = onnx.helper.get_attribute_value(a)
            if isinstance(value, list):
                return [v.decode() if isinstance(v, bytes) else v for v in value]
            return value.decode() if isinstance(value, bytes) else value
    return default


def nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """All nodes: the graph's, then those inside its If/Loop/Scan bodies."""
    for body in graphs(graph):
        yield from body.node


def graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """``graph``, then every If, Loop and Scan body in it, nested ones too."""
    yield graph
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from graphs(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from graphs(g)


def _size(dim: onnx.TensorShapeProto.Dimension) -> int | None:
    return dim.dim_value if dim.HasField("dim_value") else None


class LintGraph:
    """Lookups the rules need: constants, producers, consumers and inferred types."""

    def __init__(self, model: onnx.ModelProto) -> None:
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
        except Exception:  # inference is best effort; the rules cope without types
            inferred = model
        g = inferred.graph
        self.constants: dict[str, onnx.TensorProto] = {t.name: t for t in g.initializer}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in nodes(g):
            for out in node.output:
                self.producer[out] = node
            for inp in node.input:
                self.consumers.setdefault(inp, []).append(node)
            if node.op_type == "Constant" and node.output:
                value = attr(node, "value")
                if isinstance(value, onnx.TensorProto):
                    self.constants[node.output[0]] = value
        self.types = tensor_types(g)
        # each dimension's size, None where it is symbolic or unknown; the main graph's names
        # over those of If, Loop and Scan bodies (whose own names are the bodies' alone)
        self.shapes: dict[str, tuple[int | None, ...]] = {}
        for body in reversed(list(graphs(g))):
            self.shapes.update(
                (vi.name, tuple(_size(d) for d in vi.type.tensor_type.shape.dim))
                for vi in [*body.input, *body.output, *body.value_info]
                if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape")
            )
        self.shapes.update((name, tuple(t.dims)) for name, t in self.constants.items())
        self.ranks = {name: len(shape) for name, shape in self.shapes.items()}
        self.opset = next((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), None)
        for name, t in self.constants.items():  # and the Constant nodes' outputs
            self.types.setdefault(name, t.data_type)

    def is_constant(self, name: str) -> bool:
        return name in self.constants

    def constant_value(self, name: str) -> Any:
        t = self.constants.get(name)
        return None if t is None else onnx.numpy_helper.to_array(t)
