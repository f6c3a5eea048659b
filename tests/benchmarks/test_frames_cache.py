from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmarks.frames_cache import ROOT, cached_frames, frames_key
from benchmarks.ground_trial import AFTER_FRAMES

PARTS = {"drives": {"lane": "right", "frames": 60}, "seed": 11, "engine_size": (256, 512)}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the project's sources the key is read from."""
    skip = shutil.ignore_patterns("__pycache__", "results", "*.pt")
    for top in ("edge", "plugins", "benchmarks"):
        shutil.copytree(ROOT / top, tmp_path / top, ignore=skip)
    return tmp_path


def test_the_key_follows_what_the_frames_are_made_by_and_not_the_tracker(tree: Path) -> None:
    key = frames_key(PARTS, after=AFTER_FRAMES, root=tree)
    assert len(key) == 16 and key == frames_key(dict(PARTS), after=AFTER_FRAMES, root=tree)
    # the tracker and its scoring only read the frames: the same key
    with (tree / "edge/postprocess/tracks.py").open("a") as f:
        f.write("\n# a tracker change\n")
    assert frames_key(PARTS, after=AFTER_FRAMES, root=tree) == key
    # the drives, the engines' size, or the panoptic fusion: frames of another pass
    assert frames_key(PARTS | {"seed": 12}, after=AFTER_FRAMES, root=tree) != key
    assert frames_key(PARTS | {"engine_size": (128, 256)}, after=AFTER_FRAMES, root=tree) != key
    with (tree / "edge/postprocess/panoptic.py").open("a") as f:
        f.write("\n# a fusion change\n")
    assert frames_key(PARTS, after=AFTER_FRAMES, root=tree) != key
    # every module left out exists: a renamed one would be left in, and only cost a rerun
    assert all((ROOT / rel).is_file() for rel in AFTER_FRAMES)


def test_frames_are_seen_once_and_then_taken_from_the_cache(tmp_path: Path) -> None:
    seen: list[int] = []

    def see() -> list[dict[str, Any]]:
        seen.append(1)
        return [{"t_s": 0.0, "instances": [], "scene": ("a", 1)}]

    first, source = cached_frames(tmp_path / "cache", "lane", "k1", see)
    assert source == "engines" and len(seen) == 1
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["lane_k1.pkl"]  # no .part left
    again, source = cached_frames(tmp_path / "cache", "lane", "k1", see)
    assert again == first and source == "lane_k1.pkl" and len(seen) == 1
    # another key (the code changed): seen again, beside the old file
    _, source = cached_frames(tmp_path / "cache", "lane", "k2", see)
    assert source == "engines" and len(seen) == 2
    # no cache folder: always seen, nothing written
    _, source = cached_frames(None, "lane", "k1", see)
    assert source == "engines" and len(seen) == 3


def test_a_cache_file_that_does_not_load_is_said_so_and_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "lane_k1.pkl").write_bytes(pickle.dumps([{"t_s": 0.0}])[:9])  # cut short

    def see() -> list[dict[str, Any]]:
        return [{"t_s": 1.0}]

    frames, source = cached_frames(tmp_path, "lane", "k1", see)
    assert frames == [{"t_s": 1.0}] and source == "engines"
    assert "lane_k1.pkl' does not load" in capsys.readouterr().err
    assert cached_frames(tmp_path, "lane", "k1", see) == ([{"t_s": 1.0}], "lane_k1.pkl")
