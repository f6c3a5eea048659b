"""``edge rig car.toml --new``: a rig file begun from the cameras plugged in: each USB camera
by the name udev keeps for it (by-id: the camera's make and serial; else by-path: its port),
so that a car's cameras are found again whatever /dev/videoN the bus gives them, and each
Jetson CSI sensor as csi://N; every other setting written as a comment to fill in, as the
measured car gives it.

A node udev links to nothing and no CSI sensor's (a codec's) is listed commented out: it
may be no camera. The file is written whole, and one that exists is not replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge.errors import ConfigError
from edge.util.toml_text import toml_key, toml_string

# each camera's settings to fill in, as edge.cli_rig reads them
_TO_FILL = (
    'facing = "front"          # front, rear, left, right, or a yaw in degrees (left of ahead positive)',
    "hfov = 60                 # its horizontal field of view, degrees (or undistort = its lens file)",
    "camera-height = 1.3       # metres over the road",
    "mount-ahead = 0.0         # metres ahead of the vehicle's reference point (behind: negative)",
    "mount-offset = 0.0        # metres right of the vehicle's middle (left: negative)",
)


def is_csi(camera: dict[str, Any]) -> bool:
    """Whether a V4L2 node is a Jetson CSI sensor's capture node (tegra's VI names it
    ``vi-output, imx219 9-0010``): its raw frames are read through the ISP, csi://N."""
    return str(camera.get("name") or "").startswith("vi-output")


def proposed(cameras: Sequence[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """The rig's cameras of ``cameras`` (edge.stream.cameras.v4l2_cameras' list): (name,
    source, the node) of each USB camera udev names (its first link: by-id before by-path)
    and each CSI sensor (csi://K, K its place among the CSI nodes, which is its sensor-id
    where the device tree lists them in order), named cam0, cam1, ... in the nodes' order."""
    csi = [c for c in cameras if is_csi(c)]
    taken = [c for c in cameras if is_csi(c) or c["links"]]
    return [
        (f"cam{n}", f"csi://{csi.index(c)}" if is_csi(c) else c["links"][0], c) for n, c in enumerate(taken)
    ]


def new_rig_text(cameras: Sequence[dict[str, Any]]) -> str:
    """A rig of ``cameras`` (edge.stream.cameras.v4l2_cameras' list) as ``proposed`` takes
    them; the other nodes (no udev link: a codec?) commented out."""
    from edge.cli_rig import EXAMPLE

    chosen = proposed(cameras)
    if not chosen:
        found = ", ".join(f"{c['node']} ({c['name']})" for c in cameras)
        seen = f"V4L2 nodes udev names no camera: {found}" if found else "no V4L2 node at all"
        raise ConfigError(
            f"no USB or CSI camera is plugged in to begin a rig with ({seen}); plug them in, or write "
            f"the rig by hand, e.g.\n{EXAMPLE}"
        )
    lines = [
        "# the cameras plugged in when edge rig --new wrote this; rename each for where it is",
        "# mounted (front, rear, left, ...), fill in its settings, then check it: edge rig THIS_FILE",
        "# path-width = 2.0         # the vehicle's width, metres: objects within it are in its path",
    ]
    for name, source, camera in chosen:
        said = f"{camera['name'] or 'a camera'}, now {camera['node']}"
        if is_csi(camera):
            said += "; a CSI sensor read through the ISP: check its sensor-id with edge rig"
        lines += ["", f"[cameras.{toml_key(name)}]"]
        lines += [f"source = {toml_string(source)}   # {said}", *(f"# {t}" for t in _TO_FILL)]
    for camera in cameras:
        if not camera["links"] and not is_csi(camera):
            node = camera["node"]
            lines += ["", f"# {node} ({camera['name'] or 'no name'}): no udev link; a camera?"]
            lines += [f"# [cameras.{node.rsplit('/', 1)[-1]}]", f"# source = {toml_string(node)}"]
    return "\n".join(lines) + "\n"


def write_new_rig(path: str | Path, *, root: str | Path = "/") -> list[tuple[str, str, dict[str, Any]]]:
    """Write the rig of the cameras plugged in (under ``root``: another for a copy of a
    system's /sys and /dev) to ``path``, which must not exist; the cameras it named
    (``proposed``)."""
    from edge.stream.cameras import v4l2_cameras
    from edge.util.fs import atomic_write_bytes

    path = Path(path)
    if path.exists():
        raise ConfigError(f"rig file {str(path)!r} exists; --new writes a new one: name another file")
    cameras = v4l2_cameras(root)
    text = new_rig_text(cameras)
    try:
        atomic_write_bytes(path, text.encode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"rig file {str(path)!r} cannot be written: {exc.strerror or exc}") from exc
    return proposed(cameras)
