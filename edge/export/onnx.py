"""Export edge models to ONNX that ONNX Runtime and TensorRT both consume.

Static input size per build (H and W multiples of 32, fixed batch), standard ops only,
opset >= 17, weights embedded (no external-data file below ONNX's 2 GB limit).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from edge.errors import ConfigError, ExportError
from edge.export.optimize import optimize_program
from edge.export.translations import translation_table
from edge.models.configs import check_input_size
from edge.util.fs import atomic_write_with
from plugins.roi_align.passes import expand

# the oldest torch whose exporter takes edge's models: 2.6.0, 2.7.1, 2.9.1 and 2.13.0 export
# them; 2.5.1 (NVIDIA's JetPack 6 wheel is a 2.5) fails on the custom ops' translations
MIN_EXPORT_TORCH = (2, 6)
MIN_OPSET = 17
DEFAULT_OPSET = 18
INPUT_NAME = "image"
ROI_ALIGN_FORMS = ("standard", "plugin")


def output_names(model: nn.Module, example: torch.Tensor) -> list[str]:
    with torch.no_grad():
        return list(model(example).keys())


def exporter_problem(torch_version: str) -> str | None:
    """Why torch ``torch_version`` cannot export edge's models to ONNX, or None."""
    from packaging.version import InvalidVersion, Version

    try:
        release = Version(torch_version).release
    except InvalidVersion:
        return None  # a build that names itself oddly: let the exporter try
    if release[:2] >= MIN_EXPORT_TORCH:
        return None
    oldest = ".".join(map(str, MIN_EXPORT_TORCH))
    return (
        f"exporting to ONNX needs torch {oldest} or newer, and this is torch {torch_version}: its "
        "exporter cannot translate edge's custom ops (NMS, RoIAlign). Built engines still run with it; "
        f"build them where torch >= {oldest} is installed (on a Jetson, PyPI's CPU torch in a second "
        "venv can export; TensorRT does the rest)"
    )


def traced_program(
    model: nn.Module, example: torch.Tensor, *, names: list[str], opset: int = DEFAULT_OPSET
) -> Any:
    """torch.onnx.export's ONNXProgram of ``model`` on ``example`` (its outputs called
    ``names``: output_names), as export_onnx makes it, not yet optimised (export_onnx
    optimises it with optimize_program)."""
    problem = exporter_problem(torch.__version__)
    if problem:
        raise ExportError(problem)
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        opset_version=opset,
        input_names=[INPUT_NAME],
        output_names=names,
        custom_translation_table=translation_table(),
        external_data=False,
        optimize=False,
        verbose=False,
    )
    if program is None:
        raise ExportError("torch.onnx.export returned no program")
    return program


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    height: int,
    width: int,
    batch: int = 1,
    opset: int = DEFAULT_OPSET,
    metadata: dict[str, str] | None = None,
    roi_align: str = "standard",
) -> Path:
    """Write ``model`` as ONNX to ``path`` (atomically) and return the path.

    ``roi_align="plugin"`` emits the fused edge.plugins::MultiLevelRoIAlign node instead
    of standard RoiAlign ops (see plugins/roi_align).
    """
    check_input_size(height, width)
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    if opset < MIN_OPSET:
        raise ConfigError(f"opset {opset} is too old: edge needs opset >= {MIN_OPSET}")
    model = model.eval()
    example = torch.rand(batch, 3, height, width) * 255.0
    if roi_align not in ROI_ALIGN_FORMS:
        raise ConfigError(f"roi_align form {roi_align!r} is not one of {ROI_ALIGN_FORMS}")
    names = output_names(model, example)

    def write(tmp: Path) -> None:
        try:
            with _quiet_exporter():
                program = traced_program(model, example, names=names, opset=opset)
                optimize_program(program)  # without a rule that costs more than it does
                # serialising prints notes about the plugin node's output type; quiet too
                proto = program.model_proto
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"torch.onnx.export failed for {type(model).__name__}: {exc}") from exc
        if roi_align == "standard":
            proto = expand(proto)
        _drop_stack_traces(proto)
        for key, value in (metadata or {}).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        try:
            onnx.checker.check_model(proto, check_custom_domain=False)
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"exported ONNX graph is invalid: {exc}") from exc
        onnx.save_model(proto, str(tmp))

    path = Path(path)
    atomic_write_with(path, write)
    return path


STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"


def custom_ops(path: str | Path) -> list[dict[str, Any]]:
    """The custom-domain ops an exported model holds, as the manifest records them: domain, op,
    the TensorRT plugin version and namespace its nodes carry (null where they carry none),
    and how many nodes. Empty for the standard form every backend runs."""
    from onnx import helper

    from edge.export.lint_graph import STANDARD_DOMAINS

    model = onnx.load(str(path), load_external_data=False)
    found: dict[tuple[str, str, str | None, str | None], int] = {}
    for node in model.graph.node:
        if node.domain in STANDARD_DOMAINS:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        version, namespace = (attrs.get(k) for k in ("plugin_version", "plugin_namespace"))
        key = (
            node.domain,
            node.op_type,
            version.decode() if isinstance(version, bytes) else version,
            namespace.decode() if isinstance(namespace, bytes) else namespace,
        )
        found[key] = found.get(key, 0) + 1
    return [
        {"domain": d, "op_type": op, "plugin_version": v, "plugin_namespace": ns, "nodes": n}
        for (d, op, v, ns), n in sorted(found.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2])))
    ]


def _drop_stack_traces(proto: onnx.ModelProto) -> None:
    """Remove the exporter's per-node Python stack traces: they hold the absolute paths of
    the source files, so the same model built from two checkouts would differ in bytes
    (and every engine would carry the build machine's paths). The node's other notes (the
    module and aten op it came from) stay."""
    nodes = [*proto.graph.node, *(n for f in proto.functions for n in f.node)]
    while nodes:
        node = nodes.pop()
        kept = [p for p in node.metadata_props if p.key != STACK_TRACE_KEY]
        if len(kept) != len(node.metadata_props):
            del node.metadata_props[:]
            node.metadata_props.extend(kept)
        for attr in node.attribute:  # If and Loop bodies
            for graph in (attr.g, *attr.graphs) if attr.HasField("g") else attr.graphs:
                nodes.extend(graph.node)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The dynamo exporter prints progress and warns about internals users cannot act on."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnx_ir", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
