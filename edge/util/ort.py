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
import warnings
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
