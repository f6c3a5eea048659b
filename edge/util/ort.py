"""ONNX Runtime kept off the network.

The PyPI builds of ONNX Runtime on Linux (1.29 on) send usage events to Microsoft
(mobile.events.data.microsoft.com) and keep a device id and an event cache in
~/.cache/Microsoft/DeveloperTools/.onnxruntime, unless an environment variable says not to
when ONNX Runtime starts: in its import, so setting it later does nothing. A perception
runtime in a car makes no connection it was not asked for and writes nothing its user did
not choose, so edge sets that variable before it imports ONNX Runtime, unless its user set
it (``ORT_DISABLE_TELEMETRY=0`` keeps the telemetry on).
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from edge.errors import BackendUnavailableError

# the name the ONNX Runtime 1.32 here reads (1.29's too, as its users report), and the one
# in ONNX Runtime's current sources
SWITCHES = ("ORT_DISABLE_TELEMETRY", "ORT_TELEMETRY_DISABLED")
# the first ONNX Runtime release whose PyPI builds for Linux have telemetry
TELEMETRY_SINCE = (1, 29)
_warned = False  # that onnxruntime was imported too early (said once)


def keep_offline() -> None:
    """Turn ONNX Runtime's telemetry off for this process (and the processes it starts),
    unless its user chose: call it before the first ``import onnxruntime``. Where a program
    imported it first, too late for that, a warning says so once."""
    global _warned
    if any(name in os.environ for name in SWITCHES):
        return
    if "onnxruntime" not in sys.modules:
        for name in SWITCHES:
            os.environ[name] = "1"
    elif not _warned and _has_telemetry(getattr(sys.modules["onnxruntime"], "__version__", "")):
        _warned = True
        warnings.warn(
            "onnxruntime was imported before edge could turn its telemetry off (it sends usage events "
            "to Microsoft and keeps a device id in ~/.cache/Microsoft): set ORT_DISABLE_TELEMETRY=1 "
            "in the environment, or before importing onnxruntime",
            stacklevel=3,
        )


def _has_telemetry(version: str) -> bool:
    numbers = version.split(".")[:2]
    try:
        return (int(numbers[0]), int(numbers[1])) >= TELEMETRY_SINCE
    except (IndexError, ValueError):
        return True  # an unknown version: better said than not


def onnxruntime_module() -> Any:
    """``import onnxruntime``, its telemetry off (keep_offline); BackendUnavailableError when
    it is not installed."""
    keep_offline()
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError("onnxruntime is not installed: pip install onnxruntime") from exc
    return onnxruntime


def telemetry_state() -> str:
    """Whether ONNX Runtime's telemetry is off in this process, and why: for edge info."""
    chosen = {name: os.environ[name] for name in SWITCHES if name in os.environ}
    said = ", ".join(f"{name}={value}" for name, value in chosen.items())
    if any(value.strip().lower() in ("1", "true", "yes", "on", "y") for value in chosen.values()):
        return f"off ({said})"
    if chosen:
        return f"on where this onnxruntime has it ({said})"
    if "onnxruntime" in sys.modules:
        return "on where this onnxruntime has it (it was imported before edge could turn it off)"
    return "off once edge imports it"


@functools.cache
def max_ir_version() -> int:
    """The newest ONNX IR version this ONNX Runtime loads. It does not say, so a one-node model
    is offered at IR versions between 7 and 64 (a bisection: about six sessions, once)."""
    from onnx import TensorProto, helper

    ort = onnxruntime_module()
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "ir_probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )

    def loads(ir: int) -> bool:
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=ir)
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception:
            return False
        return True

    low, high = 7, 64  # loads(low); not loads(high): every ONNX Runtime since 1.6 reads IR 7
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if loads(mid) else (low, mid)
    return low


def ir_version_problem(model: Any, *, what: str, path: str | Path) -> str | None:
    """Why ONNX Runtime would refuse ``model`` (an onnx ModelProto read from ``path``) for its
    IR version, or None. The onnx package writes its own newest IR version (1.23: 14) into a
    model it makes, which the ONNX Runtime builds that JetPack 6 boards run (1.19, 1.20: IR 10)
    and 1.23 (IR 11) refuse with words that read like a corrupt file."""
    readable = max_ir_version()
    if model.ir_version <= readable:
        return None
    version = getattr(onnxruntime_module(), "__version__", "?")
    return (
        f"{what} {str(path)!r} is ONNX IR version {model.ir_version}, newer than ONNX Runtime {version} "
        f"reads (up to {readable}): a newer onnx package wrote it. pip install -U onnxruntime, or, where "
        f"the model uses nothing newer, give it IR version {readable}: "
        f"python -c \"import onnx; m = onnx.load('{path}'); m.ir_version = {readable}; "
        f"onnx.save(m, '{path}')\""
    )
