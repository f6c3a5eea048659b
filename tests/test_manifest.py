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
    "argv",
    [
        ["run", "synthetic://", "--max-frames", "2", "--engines"],
        ["profile", "--frames", "2", "--engines"],
        ["bench", "--min-frames", "2", "--quiet", "--engines"],  # which would build the engines there
        ["compare", "synthetic://", "--reference-engines", ".", "--engines"],
        ["engines"],
        ["engines", "--remove", "depth_tiny"],
    ],
)
def test_an_engines_folder_given_as_a_file_is_said_to_be_one(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The manifest itself given where its folder goes is named with the folder meant; any
    other file is said to be one (before: \"does not exist\", or a FileExistsError)."""
    from edge.cli import main

    manifest = tmp_path / "engines" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text('{"format": 1, "engines": {}}')
    assert main([*argv, str(manifest)]) == 2
    meant = repr(str(manifest.parent))
    assert (
        f"engines folder {str(manifest)!r} is a file, not a folder; give the folder that holds it, {meant}"
        in (capsys.readouterr().err)
    )
    other = tmp_path / "drive.mp4"
    other.write_bytes(b"")
    assert main([*argv, str(other)]) == 2
    assert capsys.readouterr().err.endswith(f"engines folder {str(other)!r} is a file, not a folder\n")
    with pytest.raises(ManifestError, match="is a file, not a folder"):
        Manifest.load(other)


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
