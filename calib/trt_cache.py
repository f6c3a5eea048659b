"""TensorRT's classic INT8 calibration cache (TensorRT 10 IInt8EntropyCalibrator2).

Text: a header ``TRT-<version>-EntropyCalibration2`` and one ``tensor_name: <hex>`` line
per tensor, where hex is the big-endian IEEE float32 bit pattern of the tensor's scale
(dynamic range / 127).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping

from edge.errors import ConfigError

HEADER_RE = re.compile(r"^TRT-(\d+)-(\w+)$")


def scale_from_range(lo: float, hi: float) -> float:
    """Symmetric INT8: the larger magnitude maps to 127."""
    return max(abs(float(lo)), abs(float(hi))) / 127.0


def write_cache(
    scales: Mapping[str, float], *, trt_version: int = 10_07_00, algorithm: str = "EntropyCalibration2"
) -> str:
    """``trt_version`` as TensorRT writes it: major*10000 + minor*100 + patch (10.7.0 -> 100700)."""
    lines = [f"TRT-{trt_version}-{algorithm}"]
    for name, scale in scales.items():
        if ":" in name or "\n" in name:
            raise ConfigError(f"tensor name {name!r} cannot be written to a TensorRT calibration cache")
        lines.append(f"{name}: {struct.pack('>f', float(scale)).hex()}")
    return "\n".join(lines) + "\n"


def read_cache(text: str) -> tuple[int, str, dict[str, float]]:
    """(version, algorithm, {tensor: scale}); a ConfigError names the first bad line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ConfigError("calibration cache is empty; expected a TRT-<version>-<algorithm> header")
    m = HEADER_RE.match(lines[0])
    if m is None:
        raise ConfigError(f"calibration cache header {lines[0][:60]!r} is not TRT-<version>-<algorithm>")
    scales: dict[str, float] = {}
    for n, line in enumerate(lines[1:], start=2):
        name, sep, value = line.rpartition(":")
        value = value.strip()
        if not sep or not name or not re.fullmatch(r"[0-9a-fA-F]{1,8}", value):
            raise ConfigError(f"calibration cache line {n} {line[:60]!r} is not 'tensor: <8 hex digits>'")
        scales[name.strip()] = struct.unpack(">f", bytes.fromhex(value.zfill(8)))[0]
    return int(m[1]), m[2], scales


def check_cache_covers(
    scales: Mapping[str, float], needed: set[str], *, cache_name: str, model_name: str
) -> None:
    """A ConfigError unless the cache has a scale for every tensor the model calibrates.

    A cache written for another model, or for another export of this one (tensor names
    follow the export), would otherwise quantize with ranges that belong to nothing here.
    """
    missing = sorted(needed - set(scales))
    if not missing:
        return
    found = len(needed) - len(missing)
    what = (
        "it was made for another model"
        if found < len(needed) / 2
        else "it was made for another export or version of this model"
    )
    raise ConfigError(
        f"calibration cache {cache_name!r} has scales for {found} of the {len(needed)} tensors "
        f"{model_name!r} calibrates ({what}; missing e.g. {', '.join(missing[:3])}); "
        f"calibrate this model instead: edge calibrate {model_name}"
    )
