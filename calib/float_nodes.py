"""A Q/DQ model with some of its quantized nodes back in float, without quantizing again.

The sensitivity pass (calib/sensitivity.py) measures hundreds of sets of float layers.
Running ONNX Runtime's quantizer for each costs 0.3 s on the tiny depth model and 1.3 s
on the tiny panoptic one (2-core CPU), and more on real models. This rewrite takes the
all-INT8 model the quantizer made once and undoes the quantization of the chosen nodes,
the way the quantizer leaves a node it was told to exclude:

- the node reads its float weights and bias (from the float model) and its activations
  without their Q/DQ pair;
- a weight or bias another node still in INT8 shares stays dequantized (the quantizer
  rewrites a shared initializer in place for its first INT8 reader);
- a tensor keeps its Q/DQ pair while its producer or any of its consumers is a quantized
  node still in INT8, and then every consumer (excluded ones too) reads the dequantized
  value, as the quantizer writes it;
- a pair nobody quantized needs any more goes, and its consumers read the float tensor.

The outputs equal those of the quantizer's own model with ``nodes_to_exclude``, bit for
bit: tests/calib/test_float_nodes.py checks the cases where each rule shows, and
benchmarks/sensitivity_trials.py every trial it times. (Each of the tiny models' nodes
alone, and larger sets, were checked the same way when this was written.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from calib.quantize import QUANTIZED_OPS


def with_float_nodes(qdq: Any, float_model: Any, nodes: Iterable[str]) -> Any:
    """A copy of ``qdq`` (calib.quantize.quantize_qdq's all-INT8 model of ``float_model``)
    in which ``nodes`` run in float."""
    import onnx

    from edge.errors import ConfigError

    keep_float = set(nodes)
    out = onnx.ModelProto()
    out.CopyFrom(qdq)
    graph = out.graph
    by_name = {n.name: n for n in graph.node if n.name}
    unknown = sorted(n for n in keep_float if n not in by_name or by_name[n].op_type not in QUANTIZED_OPS)
    if unknown:
        raise ConfigError(
            f"nodes to keep in float {unknown} are not quantized nodes of the model; "
            f"expected names of its {'/'.join(QUANTIZED_OPS)} nodes"
        )
    if not keep_float:
        return out
    producer = {o: n for n in graph.node for o in n.output}
    inits = {i.name for i in graph.initializer}
    float_inits = {i.name: i for i in float_model.graph.initializer}
    float_nodes = {n.name: n for n in float_model.graph.node if n.name}
    quantized = {
        n.name
        for n in graph.node
        if n.op_type in QUANTIZED_OPS and n.name not in keep_float and _reads_dequantized(n, producer)
    }

    float_readers: dict[str, list[str]] = {}  # in node order
    for n in float_model.graph.node:
        for name in n.input:
            float_readers.setdefault(name, []).append(n.name)
    added: set[str] = set()
    for node in (by_name[n] for n in keep_float):
        for i, name in enumerate(node.input):
            dq = producer.get(name)
            if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
                continue
            source = _float_input(float_nodes.get(node.name), i, float_inits)
            int8_reader = next((r for r in float_readers.get(source, []) if r in quantized), None)
            if int8_reader is not None:
                # an initializer shared with INT8 nodes (an RPN head applied to every level):
                # the quantizer replaced it in place for its first INT8 reader, and a float
                # reader reads that dequantized value
                node.input[i] = by_name[int8_reader].input[list(float_nodes[int8_reader].input).index(source)]
                continue
            # named apart: the quantizer gives a bias's dequantized value the bias's own name
            node.input[i] = f"{source}_float"
            if source not in added:
                weight = graph.initializer.add()
                weight.CopyFrom(float_inits[source])
                weight.name = node.input[i]
                added.add(source)
    _drop_unneeded_pairs(graph, producer, quantized)
    prune_unread(graph)
    return out


def _reads_dequantized(node: Any, producer: dict[str, Any]) -> bool:
    return any(producer.get(i) is not None and producer[i].op_type == "DequantizeLinear" for i in node.input)


def _float_input(float_node: Any, index: int, float_inits: dict[str, Any]) -> str:
    """The name of the float model's initializer at input ``index`` of the same node."""
    from edge.errors import ConfigError

    name = float_node.input[index] if float_node is not None and index < len(float_node.input) else None
    if name not in float_inits:
        node = float_node.name if float_node is not None else "?"
        raise ConfigError(
            f"the float model's node {node!r} has no initializer at input {index} (got {name!r}); "
            "expected the model the Q/DQ model was quantized from"
        )
    return str(name)


def _drop_unneeded_pairs(graph: Any, producer: dict[str, Any], quantized: set[str]) -> None:
    """Rewire the readers of every activation pair no INT8 node needs to the float tensor."""
    outputs = {o.name for o in graph.output}
    q_of = {n.output[0]: n for n in graph.node if n.op_type == "QuantizeLinear"}
    readers: dict[str, list[Any]] = {}
    for n in graph.node:
        for name in n.input:
            readers.setdefault(name, []).append(n)
    for dq in [n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in q_of]:
        tensor = q_of[dq.input[0]].input[0]
        made_by_int8 = tensor in producer and producer[tensor].name in quantized
        read_by_int8 = any(r.name in quantized for r in readers.get(dq.output[0], []))
        if made_by_int8 or read_by_int8:
            continue
        if dq.output[0] in outputs:
            # a graph output keeps its name: the float tensor takes it
            _rename(graph, tensor, dq.output[0])
            graph.node.remove(q_of[dq.input[0]])
            graph.node.remove(dq)
            continue
        for r in readers.get(dq.output[0], []):
            for i, name in enumerate(r.input):
                if name == dq.output[0]:
                    r.input[i] = tensor


def _rename(graph: Any, old: str, new: str) -> None:
    for n in graph.node:
        for field in (n.input, n.output):
            for i, name in enumerate(field):
                if name == old:
                    field[i] = new


def prune_unread(graph: Any) -> None:
    """Remove the Q/DQ nodes and quantized initializers nothing reads any more."""
    while True:
        read = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
        dead = [
            n
            for n in graph.node
            if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.output[0] not in read
        ]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    read = {name for n in graph.node for name in n.input}
    for init in [i for i in graph.initializer if i.name not in read]:
        graph.initializer.remove(init)
