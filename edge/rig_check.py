"""``edge rig FILE``: a rig's cameras checked before a drive: each source opened and read for a
while, all at once (a USB bus that carries one camera's frames may not carry four), with its
frames' size and rate and what it lost; a lens calibration read, and its shape against the
frames'. Nothing is written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge.errors import EdgeError

CHECK_FRAMES = 30  # frames read of each camera
CHECK_TIMEOUT_S = 15.0  # a camera that has not given them by then is said to be slow


def _unread(error: str | None = None) -> dict[str, Any]:
    """check_camera's answer before anything is read."""
    out: dict[str, Any] = {"ok": False, "size": None, "fps": None, "first_s": None, "frames": 0}
    return out | {"dropped": 0, "reconnects": 0, "error": error, "lens": None}


def check_camera(
    uri: str, *, frames: int = CHECK_FRAMES, timeout_s: float = CHECK_TIMEOUT_S, lens: str | None = None
) -> dict[str, Any]:
    """What ``uri`` gives over ``frames`` frames (``timeout_s`` at most): ``ok``; ``size``
    (width, height); ``fps`` (a camera's, from its frames' capture times; a file's own
    rate); ``first_s``, how long its first frame took; ``frames``, ``dropped``,
    ``reconnects``; ``error``, what went wrong; ``lens``, a calibration's reading."""
    from edge.stream.sources import nominal_rate, open_source

    out = _unread()
    t0 = time.monotonic()
    try:
        source = open_source(uri, reconnect_timeout_s=min(timeout_s, 5.0))
    except EdgeError as exc:
        out["error"] = str(exc)
        return out
    times: list[int] = []
    try:
        while len(times) < frames and time.monotonic() - t0 < timeout_s:
            frame = source.read()
            if frame is None:
                break
            if not times:
                out["first_s"] = round(time.monotonic() - t0, 3)
                height, width = frame.image.shape[:2]
                out["size"] = [int(width), int(height)]
            times.append(frame.t_capture_ns)
            dropped, _, gap_ms = frame.losses()
            out["dropped"] += dropped
            out["reconnects"] += gap_ms is not None
    except EdgeError as exc:
        out["error"] = str(exc)
    finally:
        source.close()
    out["frames"] = len(times)
    if source.live and len(times) > 1 and times[-1] > times[0]:
        out["fps"] = round((len(times) - 1) / ((times[-1] - times[0]) / 1e9), 1)
    elif not source.live:
        out["fps"] = nominal_rate(source)
    if out["error"] is None and not times:
        out["error"] = "no frame came" + (
            f" within {timeout_s:g} s" if source.live else ": the source is empty"
        )
    elif out["error"] is None and len(times) < frames and source.live:
        out["error"] = f"only {len(times)} of {frames} frames came within {timeout_s:g} s"
    if out["error"] is None and (
        differs := mismatch(asked_of(uri), out["size"], out["fps"], live=source.live)
    ):
        out["error"] = differs
    if lens is not None:
        out["lens"] = _lens(lens, out["size"])
    out["ok"] = out["error"] is None and (out["lens"] is None or out["lens"]["ok"])
    return out


def asked_of(uri: str) -> dict[str, Any]:
    """What a camera's URI asks of it (edge.stream.cameras.asked) as ``edge rig --json`` says
    it: ``size`` [width, height] and ``fps``, None where it asks none (or where its options
    are wrong: opening it says so)."""
    from edge.errors import SourceError
    from edge.stream.cameras import asked

    try:
        wanted = asked(uri)
    except SourceError:
        return {"size": None, "fps": None}
    return {"size": None if wanted.size is None else list(wanted.size), "fps": wanted.fps}


# a camera whose frames come this much slower than asked is said to (a rate it did not grant,
# or a bus that cannot carry every camera's)
SLOW = 0.8


def mismatch(asked: dict[str, Any], size: list[int] | None, fps: float | None, *, live: bool) -> str | None:
    """How what a camera gave differs from what its URI asked (asked_of), or None."""
    said = []
    if asked["size"] is not None and size is not None and asked["size"] != size:
        said.append(f"asked for {asked['size'][0]}x{asked['size'][1]}, it gives {size[0]}x{size[1]}")
    if live and asked["fps"] is not None and fps is not None and fps < SLOW * asked["fps"]:
        said.append(f"asked for {asked['fps']:g} fps, it gives {fps:g}")
    return "; ".join(said) or None


def _lens(path: str, size: list[int] | None) -> dict[str, Any]:
    """A calibration file read, and whether its pictures' shape is the frames' (it scales
    with the width: another aspect is another crop of the sensor)."""
    from edge.stream.undistort import read_calibration

    try:
        lens = read_calibration(path)
    except EdgeError as exc:
        return {"ok": False, "path": path, "error": str(exc)}
    height, width = lens.size
    said: dict[str, Any] = {"ok": True, "path": path, "size": [width, height]}
    if size is not None and abs(size[0] / size[1] - width / height) > 0.01:
        said["ok"] = False
        said["error"] = (
            f"the calibration is of {width}x{height} pictures, and the camera gives {size[0]}x{size[1]}: "
            "another aspect ratio is another part of the sensor; calibrate it at this one (edge lens)"
        )
    return said


def check_cameras(
    cameras: Mapping[str, str],
    *,
    frames: int = CHECK_FRAMES,
    timeout_s: float = CHECK_TIMEOUT_S,
    lenses: Mapping[str, str | None] | None = None,
) -> dict[str, dict[str, Any]]:
    """check_camera of each of ``cameras`` (name -> URI), all at once, by name."""
    results: dict[str, dict[str, Any]] = {}

    def run(name: str) -> None:
        lens = (lenses or {}).get(name)
        results[name] = check_camera(cameras[name], frames=frames, timeout_s=timeout_s, lens=lens)

    threads = [threading.Thread(target=run, args=(name,), daemon=True) for name in cameras]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s + 15.0)  # a source's close waits for its capture thread
    for name in cameras:
        results.setdefault(name, _unread("the check did not end (a driver that hangs?)"))
    return {name: results[name] for name in cameras}


def result_line(result: dict[str, Any]) -> str:
    """One camera's check, for people."""
    if result.get("error") and not result.get("frames"):
        return f"FAILED: {result['error']}"
    size = "x".join(map(str, result["size"])) if result.get("size") else "?"
    rate = f"{result['fps']:g} fps" if result.get("fps") else "no rate"
    line = f"{size}, {rate} over {result['frames']} frame(s), the first after {result['first_s']:g} s"
    lost = [
        f"{result[k]} {what}"
        for k, what in (("dropped", "dropped"), ("reconnects", "reconnect(s)"))
        if result[k]
    ]
    line += f", {', '.join(lost)}" if lost else ""
    lens = result.get("lens")
    if lens is not None:
        line += f"; lens {Path(lens['path']).name}: " + (lens.get("error") or "read")
    if result.get("error"):
        return f"FAILED: {line}; {result['error']}"
    return ("ok: " if result["ok"] else "FAILED: ") + line
