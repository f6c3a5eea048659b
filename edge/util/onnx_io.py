"""Reading ONNX files given by users, and what a graph says of its tensors.

``onnx.load`` picks the encoding from the file's suffix (``.json`` is read as JSON,
``.txt`` as text proto) and reads an empty file as an empty model without complaint, so a
mistyped path surfaced as a protobuf traceback or an IndexError far from the cause. Every
ONNX file edge writes is binary protobuf; this reads it as such and says plainly when a
file is not one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edge.errors import ConfigError

if TYPE_CHECKING:
    import onnx


def read_onnx(
    path: str | Path, *, what: str = "ONNX model", load_external_data: bool = False
) -> onnx.ModelProto:
    """The model in ``path``; a ConfigError naming ``what`` and the path if it cannot be one."""
    import onnx

    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            kind = "is a directory, not a file"
        elif path.exists():  # a device, a pipe or a socket: onnx would read it to no end or fail
            kind = "is not a regular file; expected a binary .onnx file"
        else:
            kind = "does not exist"
        raise ConfigError(f"{what} {str(path)!r} {kind}")
    try:
        model = onnx.load(str(path), format="protobuf", load_external_data=load_external_data)
    except Exception as exc:  # DecodeError, OSError or onnx's own errors, depending on the damage
        raise ConfigError(
            f"{what} {str(path)!r} is not a readable ONNX model ({type(exc).__name__}: {exc}); "
            "expected a binary .onnx file such as edge build writes"
        ) from exc
    if not model.graph.node and not model.graph.input and not model.graph.output:
        size = path.stat().st_size
        raise ConfigError(
            f"{what} {str(path)!r} holds no graph ({size} bytes); expected a binary .onnx file "
            "such as edge build writes"
        )
    return model


def tensor_types(graph: onnx.GraphProto) -> dict[str, int]:
    """The element type (TensorProto's enum) of each tensor ``graph`` declares: its inputs,
    outputs and value_info (tensors only), then its initializers where those said none."""
    types = {
        vi.name: vi.type.tensor_type.elem_type
        for vi in [*graph.input, *graph.output, *graph.value_info]
        if vi.type.HasField("tensor_type")
    }
    for init in graph.initializer:
        types.setdefault(init.name, init.data_type)
    return types


def with_outputs(model: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose outputs are its tensors ``names``: a session of it computes
    those (ONNX Runtime runs no more of the graph than they need)."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.output[:]
    out.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names)
    return out
