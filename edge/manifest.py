"""engines/manifest.json: what was built, from what, with which tools, and how it checked out.

Paths inside the manifest are relative to the engines directory and must stay inside
it: a manifest cannot point the runtime at arbitrary files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import ManifestError
from edge.util.fs import atomic_write_json, sha256_file

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1


def refuse_a_file(root: Path) -> None:
    """ManifestError where an engines folder given is a file: said as that, with the folder
    meant when it is the manifest itself (``--engines engines/manifest.json``)."""
    if root.exists() and not root.is_dir():
        meant = f"; give the folder that holds it, {str(root.parent)!r}" if root.name == MANIFEST_NAME else ""
        raise ManifestError(f"engines folder {str(root)!r} is a file, not a folder{meant}")


@dataclass
class Manifest:
    root: Path
    engines: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.root / MANIFEST_NAME

    @classmethod
    def load(cls, root: str | Path, *, must_exist: bool = False) -> Manifest:
        root = Path(root)
        refuse_a_file(root)
        path = root / MANIFEST_NAME
        if not path.exists():
            if must_exist:
                raise ManifestError(
                    f"no {MANIFEST_NAME} in {str(root)!r}: build engines first, e.g. edge build --out {root}"
                )
            return cls(root=root)
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{str(path)!r} is not readable JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("engines"), dict):
            raise ManifestError(f"{str(path)!r} has no 'engines' object; is it an edge manifest?")
        if data.get("format") != FORMAT_VERSION:
            raise ManifestError(
                f"{str(path)!r} has format {data.get('format')!r}, this edge reads format "
                f"{FORMAT_VERSION}; rebuild with edge build --force"
            )
        for key, entry in data["engines"].items():
            if not isinstance(entry, dict):
                raise ManifestError(f"{str(path)!r}: entry {key!r} is not an object")
        return cls(root=root, engines=data["engines"])

    def save(self) -> None:
        atomic_write_json(self.path, {"format": FORMAT_VERSION, "engines": self.engines})

    def resolve(self, relative: str) -> Path:
        """An artifact path from the manifest, refused if it leaves the engines directory."""
        root = self.root.resolve()
        if "\x00" in relative:
            raise ManifestError(f"{str(self.path)!r} names a path with a NUL character: {relative!r}")
        p = (root / relative).resolve()
        if not p.is_relative_to(root):
            raise ManifestError(
                f"{str(self.path)!r} names {relative!r}, which lies outside {str(root)!r}; refused"
            )
        return p

    def artifact_intact(self, entry: dict[str, Any]) -> bool:
        """The files an entry names exist and still hash to what was recorded."""
        return all(self.intact_file(entry, key) is not None for key in ("onnx", "artifact"))

    def intact_file(self, entry: dict[str, Any], key: str) -> Path | None:
        """The file ``entry[key]`` names ("onnx", "artifact"), if it exists inside the
        engines directory and still hashes to what was recorded; else None."""
        info = entry.get(key)
        if not isinstance(info, dict):
            return None
        try:
            p = self.resolve(str(info.get("path", "")))
        except ManifestError:
            return None
        if not p.is_file() or sha256_file(p) != info.get("sha256"):
            return None
        return p

    def check_engine_entry(self, entry: dict[str, Any]) -> None:
        """Refuse an entry the runtime cannot use, naming the entry and the field."""
        name = entry.get("id", "?")

        def bad(field: str, expected: str) -> ManifestError:
            return ManifestError(
                f"{str(self.path)!r}: engine {name!r} has a bad {field!r} (expected {expected}); "
                f"rebuild with edge build --out {self.root} --force"
            )

        artifact = entry.get("artifact")
        if (
            not isinstance(artifact, dict)
            or not isinstance(artifact.get("path"), str)
            or not artifact["path"]
        ):
            raise bad("artifact", "an object with a non-empty 'path'")
        inputs = entry.get("inputs")
        if not (isinstance(inputs, list) and inputs and isinstance(inputs[0], dict)):
            raise bad("inputs", "a non-empty list of {name, shape, dtype}")
        shape = inputs[0].get("shape")
        if not (
            isinstance(shape, list)
            and len(shape) == 4
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            raise bad("inputs[0].shape", "four positive integers [N, 3, H, W]")
        if "config" in entry and not isinstance(entry["config"], dict):
            raise bad("config", "an object")

    def find(self, *, model: str, backend: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.engines.values()
            if e.get("model") == model and (backend is None or e.get("backend") == backend)
        ]
