"""edge engines --remove: builds taken out of a real engines folder, their entries and files;
what another engine needs is kept, and a wrong id or a tampered path changes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge.cli import main
from edge.engines_remove import entry_files, remove_engines, removed_lines
from edge.errors import ManifestError
from edge.inventory import inventory
from edge.manifest import Manifest
from edge.schemas import check_document


@pytest.fixture
def engines(tiny_engines: Path, tmp_path: Path) -> Path:
    root = tmp_path / "engines"
    shutil.copytree(tiny_engines, root)
    return root


def _folder(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _ids(root: Path) -> dict[str, str]:
    return {e["model"]: key for key, e in json.loads((root / "manifest.json").read_text())["engines"].items()}


def test_a_build_taken_out_loses_its_entry_and_its_files_and_the_rest_runs(
    engines: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _ids(engines)
    manifest = Manifest.load(engines)
    depth_files = entry_files(manifest, manifest.engines[ids["depth_tiny"]])
    assert sorted(p.name for p in depth_files) == sorted(
        f"{ids['depth_tiny']}{suffix}" for suffix in (".onnx", ".ort.onnx")
    )
    (engines / "notes.txt").write_text("mine")  # what no entry names is not the folder's to delete
    before = _folder(engines)
    # a dry run says what would go and changes nothing
    assert main(["engines", str(engines), "--remove", "depth_*", "--dry-run"]) == 0
    said = capsys.readouterr().out.splitlines()
    size = sum(p.stat().st_size for p in depth_files) / 1e6
    assert said == [
        f"would remove {ids['depth_tiny']}: {', '.join(p.name for p in depth_files)} ({size:.1f} MB)"
    ]
    assert _folder(engines) == before
    # then it goes: the entry, then the files; the listing of what stays follows
    assert main(["engines", str(engines), "--remove", "depth_*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == said[0].replace("would remove", "removed", 1)
    assert (
        out[1].split()[:2] == ["model", "kind"] and out[2].startswith("panoptic_fpn_tiny ") and len(out) == 3
    )
    after = _folder(engines)
    assert sorted(set(before) - set(after)) == sorted(p.name for p in depth_files)
    assert all(after[name] == before[name] for name in after if name != "manifest.json")
    text = (engines / "manifest.json").read_text()
    assert check_document("manifest", text) is None and list(json.loads(text)["engines"]) == [
        ids["panoptic_fpn_tiny"]
    ]
    assert [(r["model"], r["files"]) for r in inventory(engines, verify_hashes=True)] == [
        ("panoptic_fpn_tiny", "ok")
    ]


def test_a_file_an_engine_that_stays_names_is_kept(engines: Path) -> None:
    """Two entries naming the same files (as TensorRT engines name the plugin library they
    share): taking one out keeps them, and the other stays whole."""
    ids = _ids(engines)
    doc = json.loads((engines / "manifest.json").read_text())
    twin = json.loads(json.dumps(doc["engines"][ids["depth_tiny"]]))
    twin["id"] = "depth_twin"
    doc["engines"]["depth_twin"] = twin
    (engines / "manifest.json").write_text(json.dumps(doc))
    (removed,) = remove_engines(engines, [ids["depth_tiny"]])
    assert removed.files == [] and removed.bytes == 0
    assert removed_lines([removed], dry_run=False) == [
        f"removed {ids['depth_tiny']}: no file (0.0 MB); kept, another engine needs them: "
        + ", ".join(p.name for p in removed.kept)
    ]
    assert sorted(p.name for p in removed.kept) == sorted(
        f"{ids['depth_tiny']}{s}" for s in (".onnx", ".ort.onnx")
    )
    rows = {r["id"]: r for r in inventory(engines, verify_hashes=True)}
    assert set(rows) == {ids["panoptic_fpn_tiny"], "depth_twin"} and rows["depth_twin"]["files"] == "ok"


def test_a_wrong_id_or_a_path_outside_the_folder_changes_nothing(
    engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _ids(engines)
    before = _folder(engines)
    # one pattern that names nothing refuses the whole command, the others' engines included
    assert main(["engines", str(engines), "--remove", "depth_*", "--remove", "*_tensorrt_*"]) == 2
    err = capsys.readouterr().err
    assert f"error: --remove '*_tensorrt_*' names no engine of {str(engines)!r}; its engines: " in err
    assert ids["depth_tiny"] in err and ids["panoptic_fpn_tiny"] in err
    assert _folder(engines) == before
    assert main(["engines", str(engines), "--dry-run"]) == 2
    assert "--dry-run goes with --remove ID" in capsys.readouterr().err
    # an entry whose file lies outside the folder: refused as loading it would be, nothing deleted
    outside = tmp_path / "elsewhere.onnx"
    outside.write_bytes(b"not the folder's")
    doc = json.loads((engines / "manifest.json").read_text())
    doc["engines"][ids["depth_tiny"]]["onnx"]["path"] = "../elsewhere.onnx"
    (engines / "manifest.json").write_text(json.dumps(doc))
    before = _folder(engines)
    with pytest.raises(ManifestError, match="lies outside"):
        remove_engines(engines, ["*"])
    assert _folder(engines) == before and outside.read_bytes() == b"not the folder's"
    assert main(["engines", str(tmp_path / "nowhere"), "--remove", "x"]) == 2
    assert "no manifest.json in" in capsys.readouterr().err
