"""What ``edge build`` would do, said before it does it (``edge build --dry-run``): for each
engine asked for, whether the folder's build of it is up to date, and if not, why it would be
built. A TensorRT build on a Jetson takes many minutes; an upgrade of edge, ONNX Runtime or
the weights says here which engines it makes stale. Reads the folder; writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge.build import BuildRequest
from edge.build_key import fingerprint, tool_versions, weights_info
from edge.manifest import Manifest

UP_TO_DATE = "up to date"


def plan(req: BuildRequest, out_dir: Path, *, force: bool = False, intact: bool | None = None) -> str:
    """``up to date``, or ``would build: WHY``, as build_one would decide for ``req``.
    ``intact``: whether the engine's files still hash as recorded, where the caller has
    read them already (edge engines --verify); None reads them here."""
    from edge.models.zoo import get_entry

    req.validate()
    manifest = Manifest.load(out_dir)  # a file given for the folder is refused there
    old = manifest.engines.get(req.engine_id)
    if old is None:
        return "would build: not built yet"
    if force:
        return "would build: --force"
    versions = tool_versions()
    if req.backend == "tensorrt":
        from edge.backends.tensorrt import import_tensorrt

        versions["tensorrt"] = import_tensorrt().__version__
    weights = weights_info(req)
    config = get_entry(req.model).config_dict()
    if old.get("fingerprint") == fingerprint(req, config, weights, versions):
        if manifest.artifact_intact(old) if intact is None else intact:
            return UP_TO_DATE
        return "would build: its files are missing or changed since its build"
    why = changes(old, req, config=config, weights=weights, versions=versions) or [
        "edge's code that builds it changed since, or a setting the manifest does not record"
    ]
    return f"would build: {'; '.join(why)}"


def changes(
    old: dict[str, Any],
    req: BuildRequest,
    *,
    config: dict[str, Any],
    weights: dict[str, Any],
    versions: dict[str, str],
) -> list[str]:
    """What the manifest's entry ``old`` records that differs from building ``req`` now."""
    why = []
    was = old.get("versions") or {}
    moved = [
        f"{name} {was.get(name, 'none')} -> {versions.get(name, 'none')}"
        for name in sorted(set(was) | set(versions))
        if name != "python" and was.get(name) != versions.get(name)  # python is not in the key
    ]
    if moved:
        why.append(f"built with {', '.join(moved)}")
    before = old.get("weights") or {}
    # as the fingerprint has them: by content where hashed (bundled weights move with edge)
    if (before.get("sha256") or before.get("source")) != (weights["sha256"] or weights["source"]):
        why.append(f"its weights changed ({before.get('source')} -> {weights['source']})")
    if old.get("config") != json.loads(json.dumps(config)):  # as the manifest holds it: lists, not tuples
        why.append(f"edge's configuration of {req.model} changed")
    opset = (old.get("onnx") or {}).get("opset")
    if opset != req.opset:
        why.append(f"opset {opset} -> {req.opset}")
    return why


def entry_plan(entry: dict[str, Any], root: Path, *, intact: bool | None = None) -> str:
    """plan() for the request that would make the folder's ``entry`` again (the edge build
    command compat.build_command writes for it), or ``cannot tell here: WHY``. ``intact``:
    as plan's."""
    import shlex

    from edge.cli_build import build_parser, requests_from_args
    from edge.compat import build_command
    from edge.errors import EdgeError

    if entry.get("backend") == "tensorrt":  # its plugin libraries decide it too, which are not checked here
        return "cannot tell here: edge engines checks ONNX Runtime and torch builds"
    words = shlex.split(build_command([entry], root))[2:]  # after "edge build"
    try:
        args = build_parser().parse_args(words)
        wanted = [r for r in requests_from_args(args) if r.engine_id == entry.get("id")]
        if not wanted:
            return f"cannot tell here: {' '.join(words)} builds another engine"
        return plan(wanted[0], root, intact=intact)
    except SystemExit:  # argparse has said on stderr what it refused
        return "cannot tell here: the manifest's record of its build does not make an edge build command"
    except EdgeError as exc:
        return f"cannot tell here: {exc}"
