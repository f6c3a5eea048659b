"""An equalization trial's Q/DQ model, spliced from models quantized once.

The equalization choice (calib/eqchoice.py) scores tens of sets ``{conv: alpha}``. Each
set used to be equalized and run through ONNX Runtime's quantizer (about 1 s for
depth_small on 2 cores, and most of a trial). What equalizing one convolution changes in
the Q/DQ model is local to it: a ``Mul`` in front of it, the Q/DQ pair of the ``Mul``'s
output, its own quantized weight and bias. Nothing else moves, since every other range
is the plain model's, an equalized tensor's range depends only on its own alpha
(eqchoice calibrates once per alpha), and ``s`` depends only on the convolution's own
input maxima and weights. So the quantizer runs once on the plain model and once per
alpha with every candidate equalized, and a trial takes, for each of its convolutions,
that convolution's part of the model quantized at its alpha.

One thing is not local: the Q/DQ pair of the tensor ``x`` the convolution read. The
quantizer gives ``x`` a pair while a quantized node makes or reads it, and then every
reader (the ``Mul``, a ``Concat``) reads the dequantized value; otherwise there is no
pair and every reader reads ``x``. That is redone here for every ``x`` a spliced
convolution touched.

The result is the quantizer's own model of that set, node for node and initializer for
initializer: :func:`same_model` compares them, eqchoice checks its first trial that way
(and quantizes every trial when they differ), and tests/calib/test_eq_splice.py checks
many sets on the demo models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from calib.equalize import EQ_SUFFIX
from calib.float_nodes import prune_unread
from calib.quantize import QUANTIZED_OPS

_QDQ = ("QuantizeLinear", "DequantizeLinear")


class SpliceError(ValueError):
    """The quantized models do not have the structure a splice needs."""


def with_equalized(plain: Any, variants: Mapping[float, Any], choice: Mapping[str, float]) -> Any:
    """quantize_qdq's all-INT8 model of ``equalize(model, maxima, alphas=choice)``, from its
    all-INT8 model of the plain ``model`` and, per alpha, of every candidate convolution
    equalized at that alpha (each with the plain ranges and that alpha's equalized ones)."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(plain)
    graph = out.graph
    inits = {i.name: i for i in graph.initializer}
    touched: set[str] = set()
    indexed: dict[float, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {}
    for conv, alpha in sorted(choice.items()):
        if alpha not in variants:
            raise SpliceError(f"no model quantized at alpha {alpha} (have {sorted(variants)})")
        if alpha not in indexed:  # each model spliced from is indexed once
            src = variants[alpha].graph
            indexed[alpha] = (
                {n.name: n for n in src.node},
                {o: n for n in src.node for o in n.output},
                {i.name: i for i in src.initializer},
            )
        src_nodes, src_producer, src_inits = indexed[alpha]
        if conv not in src_nodes:
            raise SpliceError(f"convolution {conv!r} is not in the model quantized at alpha {alpha}")
        chain = _input_chain(src_nodes[conv], src_producer, mul_name=f"{conv}{EQ_SUFFIX}")
        old = next((n for n in graph.node if n.name == conv), None)
        if old is None:
            raise SpliceError(f"convolution {conv!r} is not in the plain model")
        x_plain = _float_source(old.input[0], {o: n for n in graph.node for o in n.output})
        new_nodes = [*chain, src_nodes[conv]]
        # the plain weight's and bias's DQ nodes have the same outputs as their equalized twins
        made = {o for n in new_nodes for o in n.output}
        for stale in [n for n in graph.node if n is not old and made.intersection(n.output)]:
            graph.node.remove(stale)
        at = list(graph.node).index(old)
        for k, node in enumerate(new_nodes):
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            if copy.op_type == "Mul" and copy.name == f"{conv}{EQ_SUFFIX}":
                copy.input[0] = _float_source(copy.input[0], src_producer)  # its pair is redone below
                touched.add(copy.input[0])
            graph.node.insert(at + k, copy)
            for name in copy.input:
                if name in src_inits:
                    if name in inits:
                        inits[name].CopyFrom(src_inits[name])
                    else:
                        inits[name] = graph.initializer.add()
                        inits[name].CopyFrom(src_inits[name])
        graph.node.remove(old)
        touched.add(x_plain)
    for x in sorted(touched):
        _redo_pair(graph, x)
    prune_unread(graph)
    return out


def _input_chain(conv: Any, producer: dict[str, Any], *, mul_name: str) -> list[Any]:
    """The nodes that make the convolution's inputs (its weight's and bias's DQ, its
    input's Q/DQ and equalizing Mul), in graph order; not what makes the Mul's input."""
    found: list[Any] = []

    def walk(name: str) -> None:
        node = producer.get(name)
        if node is None:
            return
        if node.name == mul_name:
            found.append(node)
            return
        if node.op_type in _QDQ:
            walk(node.input[0])
            found.append(node)

    for name in conv.input:
        walk(name)
    return found


def _float_source(name: str, producer: Mapping[str, Any]) -> str:
    """``x`` for ``DQ(Q(x))``'s output (``producer``: tensor -> node), else ``name`` itself."""
    dq = producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return name
    q = producer.get(dq.input[0])
    if q is None or q.op_type != "QuantizeLinear":
        return name
    return str(q.input[0])


def _redo_pair(graph: Any, x: str) -> None:
    """Give ``x`` its Q/DQ pair, read by all its readers, where a quantized node makes or
    reads it; else take the pair away."""
    if x in {o.name for o in graph.output}:
        raise SpliceError(f"tensor {x!r} is a graph output: its Q/DQ pair is named differently")
    q = next((n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == x), None)
    dq = None
    if q is not None:
        dq = next(
            (n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] == q.output[0]), None
        )
    read_as = {x} | ({dq.output[0]} if dq is not None else set())
    readers = [n for n in graph.node if n is not q and any(i in read_as for i in n.input)]
    made_by = next((n for n in graph.node if x in n.output), None)
    needed = any(r.op_type in QUANTIZED_OPS for r in readers) or (
        made_by is not None and made_by.op_type in QUANTIZED_OPS
    )
    if needed and dq is None:
        raise SpliceError(f"tensor {x!r} needs a Q/DQ pair and the plain model has none")
    target = dq.output[0] if needed and dq is not None else x
    for r in readers:
        for i, name in enumerate(r.input):
            if name in read_as:
                r.input[i] = target


def same_model(a: Any, b: Any) -> bool:
    """The same nodes (in any order) and the same initializers, byte for byte."""

    def nodes(m: Any) -> list[bytes]:
        return sorted(n.SerializeToString(deterministic=True) for n in m.graph.node)

    def initializers(m: Any) -> dict[str, bytes]:
        return {i.name: i.SerializeToString(deterministic=True) for i in m.graph.initializer}

    return nodes(a) == nodes(b) and initializers(a) == initializers(b)
