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

import os
import sys
from typing import Any

from edge.errors import BackendUnavailableError

# the name ONNX Runtime 1.29-1.32 read, and the one its later sources read
SWITCHES = ("ORT_DISABLE_TELEMETRY", "ORT_TELEMETRY_DISABLED")


def keep_offline() -> None:
    """Turn ONNX Runtime's telemetry off for this process (and the processes it starts),
    unless its user chose: call it before the first ``import onnxruntime``."""
    if "onnxruntime" in sys.modules or any(name in os.environ for name in SWITCHES):
        return
    for name in SWITCHES:
        os.environ[name] = "1"


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
