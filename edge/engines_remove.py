"""``edge engines --remove``: take builds out of an engines folder, their files and their
manifest entries, as a folder gathers builds of sizes, precisions and backends tried once.

The manifest is rewritten first (atomically, under the folder's build lock, so no build
writes it meanwhile), then the files are deleted: a crash between leaves files nothing
names, never an entry whose files are gone. A file an engine that stays also names (a
TensorRT plugin library several engines load) is kept.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import ConfigError, EdgeError
from edge.manifest import Manifest


@dataclass(frozen=True)
class Removed:
    """One build taken out: the files deleted (or, on a dry run, that would be), those kept
    because an engine that stays names them too, and the bytes freed."""

    id: str
    files: list[Path]
    kept: list[Path]
    bytes: int


def entry_files(manifest: Manifest, entry: dict[str, Any]) -> list[Path]:
    """Every file of the folder ``entry`` names: its ONNX export, its engine, its calibration's
    files and its TensorRT plugin libraries; a path outside the folder is refused
    (ManifestError), as loading it would be."""
    from edge.backends.tensorrt_folder import PLUGIN_FOLDER

    named = [(entry.get(key) or {}).get("path") for key in ("onnx", "artifact")]
    calibration = entry.get("calibration") or {}
    named += [*(calibration.get("files") or {}).values(), calibration.get("float_model")]
    named += [f"{PLUGIN_FOLDER}/{name}" for name in entry.get("plugins") or {}]
    paths = {manifest.resolve(str(name)) for name in named if name}
    return sorted(paths)


def matching_ids(manifest: Manifest, patterns: list[str]) -> list[str]:
    """The ids of the folder's engines any of ``patterns`` (shell-style: ``*_int8``) names; a
    pattern that names none is refused before anything is removed."""
    ids = sorted(str(key) for key in manifest.engines)
    chosen: set[str] = set()
    for pattern in patterns:
        found = fnmatch.filter(ids, pattern)
        if not found:
            listed = ", ".join(ids) if ids else "none"
            raise ConfigError(
                f"--remove {pattern!r} names no engine of {str(manifest.root)!r}; its engines: {listed}"
            )
        chosen.update(found)
    return sorted(chosen)


def remove_engines(root: str | Path, patterns: list[str], *, dry_run: bool = False) -> list[Removed]:
    """Take the engines ``patterns`` name out of the folder ``root``: their manifest entries,
    then their files (see the module's note); with ``dry_run``, only say what would go."""
    from edge.util.fs import exclusive_lock

    root = Path(root)
    Manifest.load(root, must_exist=True)  # a clear error for a folder without one, before the lock
    with exclusive_lock(root / ".build.lock"):
        manifest = Manifest.load(root, must_exist=True)
        ids = matching_ids(manifest, patterns)
        staying = {
            path
            for key, entry in manifest.engines.items()
            if key not in ids
            for path in entry_files(manifest, entry)
        }
        removed = []
        for key in ids:
            files = entry_files(manifest, manifest.engines[key])
            gone = [p for p in files if p not in staying and p.is_file()]
            kept = [p for p in files if p in staying]
            removed.append(Removed(key, gone, kept, sum(p.stat().st_size for p in gone)))
        if dry_run:
            return removed
        for key in ids:
            del manifest.engines[key]
        manifest.save()
        failed = []
        for r in removed:
            for path in r.files:
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:
                    failed.append(f"{path.name} ({exc.strerror or exc})")
    if failed:
        raise EdgeError(
            f"{', '.join(ids)}: out of the manifest, but {len(failed)} of their files could not be deleted: "
            f"{', '.join(failed)}; nothing names them now, so deleting them by hand loses nothing"
        )
    return removed


def removed_lines(removed: list[Removed], *, dry_run: bool) -> list[str]:
    """What ``edge engines --remove`` says of each build it took out (or would)."""
    verb = "would remove" if dry_run else "removed"
    lines = []
    for r in removed:
        names = ", ".join(p.name for p in r.files) or ("no file" if r.kept else "no files (they were gone)")
        line = f"{verb} {r.id}: {names} ({r.bytes / 1e6:.1f} MB)"
        if r.kept:
            line += f"; kept, another engine needs them: {', '.join(p.name for p in r.kept)}"
        lines.append(line)
    return lines
