from __future__ import annotations

from pathlib import Path

import pytest

from edge.errors import ManifestError
from edge.manifest import Manifest


def test_missing_manifest(tmp_path: Path) -> None:
    assert Manifest.load(tmp_path).engines == {}
    with pytest.raises(ManifestError, match="no manifest.json .* edge build --out"):
        Manifest.load(tmp_path, must_exist=True)


@pytest.mark.parametrize(
    "text,match",
    [
        ("{not json", "not readable JSON"),
        ('{"format": 1}', "no 'engines' object"),
        ('{"format": 99, "engines": {}}', "format 99"),
        ('{"format": 1, "engines": {"a": 3}}', "entry 'a' is not an object"),
    ],
)
def test_corrupt_manifest(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(ManifestError, match=match):
        Manifest.load(tmp_path)


def test_paths_confined_to_engines_dir(tmp_path: Path) -> None:
    m = Manifest(root=tmp_path / "engines")
    assert m.resolve("a.onnx") == (tmp_path / "engines" / "a.onnx").resolve()
    with pytest.raises(ManifestError, match="outside"):
        m.resolve("../secret.onnx")
    with pytest.raises(ManifestError, match="outside"):
        m.resolve("/etc/passwd")


def test_entry_naming_missing_file_is_not_intact(tmp_path: Path) -> None:
    m = Manifest(root=tmp_path)
    entry = {"onnx": {"path": "x.onnx", "sha256": "0"}, "artifact": {"path": "../y", "sha256": "0"}}
    assert not m.artifact_intact(entry)


def test_save_load_round_trip(tmp_path: Path) -> None:
    m = Manifest(root=tmp_path, engines={"a": {"model": "depth_tiny", "backend": "onnxruntime"}})
    m.save()
    again = Manifest.load(tmp_path)
    assert again.engines == m.engines
    assert again.find(model="depth_tiny", backend="onnxruntime") == [m.engines["a"]]
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".manifest*"))
