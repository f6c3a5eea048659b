"""edge run / edge replay picking engines from a directory that holds several builds."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from edge.build import BuildRequest, build_all
from edge.cli import main
from edge.data.make_synthetic import write_dataset
from edge.errors import ConfigError
from edge.stream import run_stream
from tests.conftest import TEST_SIZE

SMALL = (64, 128)


@pytest.fixture(scope="module")
def two_sizes(tiny_engines: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's tiny engines plus a depth_tiny built later at another size."""
    root = tmp_path_factory.mktemp("two_sizes") / "engines"
    shutil.copytree(tiny_engines, root)
    build_all([BuildRequest(model="depth_tiny", height=SMALL[0], width=SMALL[1])], root, show_progress=False)
    return root


def _summary(args: list[str], path: Path) -> dict:
    assert main([*args, "--summary", str(path)]) == 0
    return json.loads(path.read_text())


def test_run_picks_engines_by_size_and_says_which(
    two_sizes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h, w = TEST_SIZE
    base = ["run", "synthetic://?frames=2", "--engines", str(two_sizes), "--threads", "1"]
    both = {
        "panoptic": f"panoptic_fpn_tiny onnxruntime fp32 {h}x{w}",
        "depth": f"depth_tiny onnxruntime fp32 {h}x{w}",
    }
    # no flag: the newest depth engine is 64x128, but only 128x256 has both kinds
    assert _summary(base, tmp_path / "a.json")["engines"] == both
    chosen = _summary([*base, "--size", f"{h}x{w}", "--precision", "fp32"], tmp_path / "b.json")
    assert chosen["engines"] == both and chosen["stages_ms"]["panoptic"]["count"] == 2
    small = _summary([*base, "--size", f"{SMALL[0]}x{SMALL[1]}"], tmp_path / "s.json")
    assert small["engines"] == {"depth": f"depth_tiny onnxruntime fp32 {SMALL[0]}x{SMALL[1]}"}
    assert "panoptic" not in small["stages_ms"] or small["stages_ms"]["panoptic"]["count"] == 0
    out = capsys.readouterr().out
    assert f"panoptic        panoptic_fpn_tiny onnxruntime fp32 {h}x{w}" in out
    # a precision nobody built: the error lists what is there, nothing is written
    assert main([*base, "--precision", "int8", "--summary", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err
    assert "lists no onnxruntime int8 panoptic or depth engine; it lists: depth depth_tiny" in err
    assert not (tmp_path / "c.json").exists()
    assert main([*base, "--size", "64"]) == 2
    assert "--size '64' is not HEIGHTxWIDTH" in capsys.readouterr().err


def test_replay_takes_the_same_engine_flags(two_sizes: Path, tmp_path: Path) -> None:
    h, w = TEST_SIZE
    data = tmp_path / "ds"
    write_dataset(data, sequences=1, frames=2, size=TEST_SIZE, split="val", gt_every=2)
    out = tmp_path / "preds"
    args = ["replay", f"cityscapes://{data}?fps=0", "--engines", str(two_sizes), "--eval", "--out", str(out)]
    assert main([*args, "--size", f"{h}x{w}", "--panoptic", "panoptic_fpn_tiny", "--threads", "1"]) == 0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["latency"]["engines"]["depth"] == f"depth_tiny onnxruntime fp32 {h}x{w}"
    assert saved["metrics"]["panoptic"]["all"]["n"] >= 0 and saved["gt_frames"] == 1


def test_run_with_post_workers(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = tmp_path / "out.mp4"
    args = ["run", "synthetic://?frames=4", "--engines", str(tiny_engines), "--sink", str(video)]
    summary = _summary([*args, "--post-workers", "2"], tmp_path / "s.json")
    assert summary["frames_out"] == 4 and summary["stages_ms"]["sink"]["count"] == 4
    assert video.stat().st_size > 0
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--post-workers", "0"])
    assert exit_.value.code == 2 and "--post-workers" in capsys.readouterr().err
    # refused before anything opens: the viewer's port is not left held
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(ConfigError, match="post_workers must be a whole number >= 1, got 0"):
        run_stream(
            "synthetic://?frames=4", engines=tiny_engines, sinks=[f"http://127.0.0.1:{port}"], post_workers=0
        )
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


def test_a_run_off_a_terminal_logs_its_status_every_so_often(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Standard error is a pipe here, as in a service's journal: edge run and edge record
    print their status line every --status-every seconds; 0 prints none."""
    import re

    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    run = ["run", "synthetic://?size=128x256&fps=20&frames=30", "--engines", str(tiny_engines), "--realtime"]
    assert main([*run, "--status-every", "0.3"]) == 0
    logged = [line for line in capsys.readouterr().err.splitlines() if re.match(stamp, line)]
    assert len(logged) >= 2 and all(re.fullmatch(rf"{stamp} frame \d+  .* \(p50/p99 ms\)", x) for x in logged)
    assert main([*run, "--status-every", "0"]) == 0
    assert not re.search(stamp, capsys.readouterr().err)
    record = ["record", "synthetic://?size=96x128&frames=400", str(tmp_path / "r.mkv")]
    assert main([*record, "--status-every", "0.05"]) == 0
    logged = [line for line in capsys.readouterr().err.splitlines() if re.match(stamp, line)]
    assert logged and all(
        re.fullmatch(rf"{stamp} recording: \d+ frames in \d+ s \(\d+\.\d fps\)  dropped 0  reconnects 0", x)
        for x in logged
    ), logged
    with pytest.raises(SystemExit):
        main([*record, "--status-every", "-1"])
    assert "--status-every: expected a number of seconds >= 0, got '-1'" in capsys.readouterr().err


def test_record_takes_its_sinks_after_the_source_or_with_sink_as_run_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import cv2

    source = "synthetic://?size=64x128&frames=5"
    a, b, c = (tmp_path / f"{name}.mkv" for name in "abc")
    assert main(["record", source, "--sink", str(a)]) == 0
    assert main(["record", "--sink", str(b), source, str(c)]) == 0  # either order, both kept
    assert f"to {b}, {c}" in capsys.readouterr().out
    for path in (a, b, c):
        cap = cv2.VideoCapture(str(path))
        assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 5
        cap.release()
    assert main(["record", source]) == 2
    err = capsys.readouterr().err
    assert "edge record needs a sink to write the frames to; got none" in err
    assert "after the source or with --sink" in err
