"""What a TensorRT engine needs from its engines folder: the plugin libraries it was built
with, copied into ``plugins/`` beside it and hash-checked before it loads, and the options it
is loaded with (edge.backends.tensorrt.TensorRTEngine). No TensorRT here: these run and are
tested everywhere."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge.errors import ManifestError

PLUGIN_FOLDER = "plugins"  # inside the engines directory: the libraries its engines need


def install_plugin_libraries(libraries: tuple[Path, ...], engines_dir: Path) -> dict[str, str]:
    """Copy the plugin libraries an engine was built with into ``engines_dir/plugins/``, so
    the folder carries what its engines need to load; returns {name: sha256}."""
    from edge.util.fs import atomic_write_with, sha256_file

    installed: dict[str, str] = {}
    for library in libraries:
        digest = sha256_file(library)
        target = engines_dir / PLUGIN_FOLDER / library.name
        if not (target.is_file() and sha256_file(target) == digest):
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_with(target, functools.partial(_copy_to, library))
        installed[library.name] = digest
    return installed


def _copy_to(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)


def _plugin_libraries(entry: Mapping[str, Any], engines_dir: Path) -> dict[Path, str]:
    """Where each plugin library of ``entry`` lives in the engines folder, and its sha256."""
    return {
        engines_dir / PLUGIN_FOLDER / str(name): str(digest)
        for name, digest in (entry.get("plugins") or {}).items()
    }


def plugin_library_problem(
    entry: Mapping[str, Any], engines_dir: Path, *, verify_hashes: bool = True
) -> tuple[str, Path] | None:
    """("missing" or "changed", path) for a plugin library of ``entry`` that is not in the
    engines folder as it was built (hashes read only with ``verify_hashes``), else None."""
    from edge.util.fs import sha256_file

    libraries = _plugin_libraries(entry, engines_dir)
    for path in libraries:
        if not path.is_file():
            return "missing", path
    if verify_hashes:
        for path, digest in libraries.items():
            if sha256_file(path) != digest:
                return "changed", path
    return None


def engine_load_options(entry: Mapping[str, Any], engines_dir: Path) -> dict[str, Any]:
    """What loading a TensorRT engine needs from its manifest entry: the plugin libraries it
    was built with (checked against their recorded hashes), whether it may carry host code (a
    version-compatible engine embeds TensorRT's lean runtime, which a runtime only deserializes
    when told that engine is trusted), and the DLA core of an engine built for one."""
    problem = plugin_library_problem(entry, engines_dir)
    if problem is not None:
        kind, path = problem
        rebuild = f"rebuild it with --plugin-lib PATH/{path.name} --out {engines_dir}"
        if kind == "missing":
            raise ManifestError(
                f"engine {entry.get('id')!r} needs the plugin library {path}, which is missing; {rebuild}"
            )
        raise ManifestError(
            f"engine {entry.get('id')!r} was built with another {path.name} than {path} "
            f"(its sha256 differs); {rebuild}"
        )
    if entry.get("custom_ops") and not entry.get("plugins"):
        asked = ", ".join(
            f"{op['domain']}::{op['op_type']} v{op['plugin_version']}" for op in entry["custom_ops"]
        )
        raise ManifestError(
            f"engine {entry.get('id')!r} was built with the plugin {asked}, and its folder records no "
            f"plugin library to load it from; rebuild it with --plugin-lib PATH --out {engines_dir}"
        )
    flags = entry.get("build_flags") or {}
    options: dict[str, Any] = {
        "plugin_libraries": tuple(_plugin_libraries(entry, engines_dir)),
        "allow_host_code": bool(flags.get("version_compatible")),
    }
    if flags.get("dla_core") is not None:  # a DLA engine runs on the core it was built for
        options["dla_core"] = int(flags["dla_core"])
    return options
