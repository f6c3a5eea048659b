"""The .mcap sink: real runs written to MCAP and read back with the mcap package's reader, as
Foxglove or a ROS 2 tool would read them (edge.stream.mcap_sink)."""

from __future__ import annotations

import base64
import contextlib
import json
import math
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.errors import SinkError
from edge.schemas import check_lines
from edge.stream.sinks import open_sink
from tests.conftest import fill_disk

pytest.importorskip("mcap", reason="mcap is a test dependency: pip install -e '.[dev]'")

DRIVE = "synthetic://?size=128x256&frames={frames}&seed={seed}"


def read_metadata(path: Path) -> dict[str, dict[str, str]]:
    from mcap.reader import make_reader

    with open(path, "rb") as f:
        return {m.name: dict(m.metadata) for m in make_reader(f).iter_metadata()}


def read_mcap(path: Path) -> tuple[dict[str, str], list[tuple[str, int, dict[str, Any]]]]:
    """Each topic's schema name, and every message (topic, log time, body) in log-time order,
    read through the file's index."""
    from mcap.reader import make_reader

    with open(path, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None, "a finished file has its summary"
        schemas = {c.topic: summary.schemas[c.schema_id].name for c in summary.channels.values()}
        assert {c.message_encoding for c in summary.channels.values()} == {"json"}
        assert {s.encoding for s in summary.schemas.values()} == {"jsonschema"}
        messages = [(ch.topic, m.log_time, json.loads(m.data)) for _, ch, m in reader.iter_messages()]
    return schemas, messages


def picture(body: dict[str, Any]) -> np.ndarray:
    assert body["format"] == "jpeg"
    image = cv2.imdecode(np.frombuffer(base64.b64decode(body["data"]), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_a_run_is_one_file_of_pictures_boxes_objects_and_warnings(demo_engines: Path, tmp_path: Path) -> None:
    """Each frame: the camera's picture with its boxes (scaled from the engines' picture to
    the frame's), the panoptic and depth pictures, its objects line (the same as objects.jsonl's
    of the run, and valid against edge schema objects), at its capture time; the warnings
    lines as the warnings log has them."""
    drive, objects_log, warnings_log = tmp_path / "drive.mcap", tmp_path / "o.jsonl", tmp_path / "w.jsonl"
    source = "synthetic://?size=192x384&frames=10&seed=1"  # frames of another size than the engines'
    args = ["run", source, "--engines", str(demo_engines), "--fit", "stretch"]
    sinks = [str(drive), str(objects_log), f"{warnings_log}?lines=warnings"]
    assert main([*args, *(a for s in sinks for a in ("--sink", s))]) == 0
    schemas, messages = read_mcap(drive)
    assert schemas == {
        "/camera/image": "foxglove.CompressedImage",
        "/camera/annotations": "foxglove.ImageAnnotations",
        "/camera/panoptic": "foxglove.CompressedImage",
        "/camera/depth": "foxglove.CompressedImage",
        "/camera/objects": "edge.objects",
        "/camera/warnings": "edge.warnings",
        "/camera/log": "foxglove.Log",  # the warnings lines for Foxglove's Log panel
        # synthetic:// knows its camera's field of view and height
        "/camera/scene": "foxglove.SceneUpdate",
        "/camera/calibration": "foxglove.CameraCalibration",
        "/camera/transform": "foxglove.FrameTransform",
    }
    by_topic: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for topic, t, body in messages:
        by_topic.setdefault(topic, []).append((t, body))
    by_line = ("/camera/warnings", "/camera/log")
    assert {t: len(v) for t, v in by_topic.items() if t not in by_line} == dict.fromkeys(
        [t for t in schemas if t not in by_line], 10
    )
    lines = [json.loads(line) for line in objects_log.read_text().splitlines()]
    records = [body for _, body in by_topic["/camera/objects"]]
    # the same objects; the wall-clock time is each sink's own reading of the capture stamp
    strip = [{k: v for k, v in r.items() if k != "time_unix"} for r in records]
    assert strip == [{k: v for k, v in r.items() if k != "time_unix"} for r in lines]
    assert sum(len(r["objects"]) for r in records) > 5, "the demo weights find things"
    assert check_lines("objects", (json.dumps(r) for r in records)) == (10, [])
    for (t, record), (_, image), (_, boxes) in zip(
        by_topic["/camera/objects"], by_topic["/camera/image"], by_topic["/camera/annotations"], strict=True
    ):
        assert t == round(record["time_unix"] * 1e9)
        assert picture(image).shape == (192, 384, 3) and image["frame_id"] == "camera"
        assert image["timestamp"] == {"sec": t // 10**9, "nsec": t % 10**9}
        assert len(boxes["points"]) == len(boxes["texts"]) == len(record["objects"])
        for obj, outline in zip(record["objects"], boxes["points"], strict=True):
            x1, y1, x2, y2 = obj["box"]  # in the engines' 128x256 picture
            corners = [c for p in outline["points"] for c in (p["x"], p["y"])]
            assert corners == pytest.approx([v * 1.5 for v in (x1, y1, x2, y1, x2, y2, x1, y2)])
    for topic in ("/camera/panoptic", "/camera/depth"):
        assert {picture(body).shape for _, body in by_topic[topic]} == {(128, 256, 3)}
    times = [t for _, t, _ in messages]
    assert times == sorted(times)
    warned = [body for _, body in by_topic.get("/camera/warnings", [])]
    assert [w["event"] for w in warned] == [
        json.loads(x)["event"] for x in warnings_log.read_text().splitlines()
    ]
    logged = [(t, body) for t, body in by_topic["/camera/log"]]
    assert [body["level"] for _, body in logged] == [3 if w["event"] == "warning" else 2 for w in warned]
    for (t, body), (t_warned, line) in zip(logged, by_topic["/camera/warnings"], strict=True):
        assert t == t_warned and body["timestamp"] == {"sec": t // 10**9, "nsec": t % 10**9}
        assert body["message"].startswith(f"{line['class']} #{line['track']} ")
        assert body["name"] == "edge camera"
    assert not list(tmp_path.glob(".*partial*")), "the partial file was renamed into place"
    from edge import __version__

    assert read_metadata(drive) == {
        "edge": {
            "version": __version__,
            "frames": "10",
            "engine.panoptic": "panoptic_fpn_tiny onnxruntime fp32 128x256",
            "engine.depth": "depth_tiny onnxruntime fp32 128x256",
            "fit": "stretch",
        }
    }


def test_views_pick_the_picture_channels(demo_engines: Path, tmp_path: Path) -> None:
    """?views=depth: the depth picture alone (no camera picture, so no boxes over it); the
    objects (and their scene and the camera, its field of view and height known) are always
    there. ?quality= is the JPEGs'."""
    small, large = tmp_path / "small.mcap", tmp_path / "large.mcap"
    run = ["run", DRIVE.format(frames=3, seed=0), "--engines", str(demo_engines)]
    assert (
        main([*run, "--sink", f"{small}?views=depth&quality=10", "--sink", f"{large}?views=depth&quality=95"])
        == 0
    )
    schemas, messages = read_mcap(small)
    placed = {"/camera/scene", "/camera/calibration", "/camera/transform"}
    assert set(schemas) - {"/camera/warnings"} == {"/camera/depth", "/camera/objects", *placed}
    assert small.stat().st_size < large.stat().st_size
    assert len([m for m in messages if m[0] == "/camera/depth"]) == 3


@pytest.mark.parametrize(
    ("uri", "said"),
    [
        (
            "d.mcap?views=input,lidar",
            "views='input,lidar'; expected a comma-separated list of input, panoptic, depth",
        ),
        ("d.mcap?views=", "views=''; expected"),
        ("d.mcap?quality=0", "quality='0'; expected a JPEG quality from 1 to 100"),
        ("d.mcap?view=depth", "unknown option 'view'; it takes views=, quality=, cloud=, and for the"),
        ("d.mcap?gate=0", "gate='0'; expected a number of metres > 0"),
        ("d.mcap?quality=50&quality=60", "quality= is given twice; give it once"),
        ("d.mcap?&", "option '&' names none; it takes views=, quality=, cloud=, and for the"),
        ("d.mcap?max_age=soon", "max_age='soon'; expected a number of seconds > 0"),
        (
            "d.mcap?cloud=17",
            "cloud='17'; expected every how many of the depth map's pixels each way make a point",
        ),
    ],
)
def test_bad_options_are_refused_before_anything_is_written(tmp_path: Path, uri: str, said: str) -> None:
    with pytest.raises(SinkError, match=re.escape(f"sink '{tmp_path / uri}': {said}")):
        open_sink(str(tmp_path / uri))
    assert list(tmp_path.iterdir()) == []


def test_an_earlier_file_is_kept_and_the_source_never_written_over(tmp_path: Path) -> None:
    earlier = tmp_path / "drive.mcap"
    earlier.write_bytes(b"an earlier recording")
    with pytest.raises(SinkError, match="already exists .* and it is kept"):
        open_sink(str(earlier), replace=False)
    with pytest.raises(SinkError, match="would write over the source it reads"):
        open_sink(str(earlier), source=earlier)
    assert earlier.read_bytes() == b"an earlier recording"


def test_two_cameras_share_one_file_each_under_its_name(demo_engines: Path, tmp_path: Path) -> None:
    """Several cameras write one file: each camera's channels under its name, its frames
    numbered apart, and each camera's pictures drawn for it."""
    drive = tmp_path / "drive.mcap"
    cameras = [
        "--camera",
        f"front={DRIVE.format(frames=4, seed=0)}",
        "--camera",
        f"rear={DRIVE.format(frames=3, seed=2)}",
    ]
    assert main(["run", *cameras, "--engines", str(demo_engines), "--sink", str(drive)]) == 0
    schemas, messages = read_mcap(drive)
    for name in ("front", "rear"):
        assert {f"/{name}/{t}" for t in ("image", "annotations", "panoptic", "depth", "objects")} <= set(
            schemas
        )
    counts = {
        name: [b["frame"] for t, _, b in messages if t == f"/{name}/objects"] for name in ("front", "rear")
    }
    assert counts == {"front": [0, 1, 2, 3], "rear": [0, 1, 2]}
    assert {b["camera"] for t, _, b in messages if t.endswith("/objects")} == {"front", "rear"}
    assert {b["frame_id"] for t, _, b in messages if t == "/rear/depth"} == {"rear"}
    # after each camera's frame, the things of every camera at once, as ?lines=fused has them
    around = [b for t, _, b in messages if t == "/around/things"]
    assert len(around) == 7 and check_lines("fused", [json.dumps(b) for b in around]) == (7, [])
    scenes = [b for t, _, b in messages if t == "/around/scene"]
    assert len(scenes) == 7 and schemas["/around/scene"] == "foxglove.SceneUpdate"
    objects = {(b["camera"], b["frame"]): b["time_unix"] for t, _, b in messages if t.endswith("/objects")}
    assert all(objects[(line["camera"], line["frame"])] == line["time_unix"] for line in around)
    placed = [(line, scene) for line, scene in zip(around, scenes, strict=True) if line["things"]]
    assert placed, "the drives' things are placed"
    for line, scene in placed:
        shown = {e["id"] for e in scene["entities"]}
        views = {e for e in shown if e.startswith("view ")}
        assert shown - views == {f"thing {t['id']}" for t in line["things"] if t["lateral_m"] is not None}
        # each camera's view so far, where it is mounted, the line's camera's among them
        assert f"view {line['camera']}" in views <= {"view front", "view rear"}
    front = next(e for e in scenes[-1]["entities"] if e["id"] == "view front")
    edges = front["lines"][0]["points"]
    assert edges[0] == edges[2] == {"x": 0.0, "y": 0.0, "z": 0.0}, "from where it is mounted"
    bearings = [math.degrees(math.atan2(p["y"], p["x"])) for p in (edges[1], edges[3])]
    hfov = float(next(m["value"] for m in front["metadata"] if m["key"] == "hfov_deg"))
    assert 48.8 < hfov < 49.0, "the synthetic camera's"
    assert bearings == pytest.approx([hfov / 2, -hfov / 2]), "its field of view's edges, ahead"


def _result(seq: int, image: np.ndarray) -> object:
    """A frame with one car 7.5 m away (its instance and depth), as a sink gets it."""
    from edge.postprocess.panoptic import Instance
    from edge.stream.frame import Frame, Result

    car = Instance(26000, 13, 0.9, (0.0, 0.0, 2.0, 2.0), np.ones((2, 2), bool), (0, 0))
    frame = Frame(seq=seq, t_capture_ns=seq, image=image)
    depth = {"depth": np.full((1, 1, 4, 4), 7.5, np.float32)}
    return Result(frame, None, depth, extras={"resized": image[:4, :4], "instances": [car]})


def test_the_file_stops_whole_when_its_disk_fills(small_disk: Path) -> None:
    """A full disk stops the sink at the frame that would not fit; closed, the file is a
    finished MCAP (its index written) of the frames before, under its own name."""
    noise = np.random.default_rng(0).integers(0, 256, (96, 128, 3), np.uint8)  # ~25 KiB a JPEG
    filler = fill_disk(small_disk, leave=600 << 10)
    drive = small_disk / "drive.mcap"
    sink = open_sink(f"{drive}?views=input&quality=95", keep_free=64 << 10)
    with pytest.raises(SinkError, match="the sink stops, keeping the") as error:
        for seq in range(100):
            sink.write_result(_result(seq, noise))  # type: ignore[attr-defined]
    kept = sink.frames  # type: ignore[attr-defined]
    assert kept > 3 and f"keeping the {kept} frame(s) written before" in str(error.value)
    filler.unlink()
    sink.close()
    assert sorted(p.name for p in small_disk.iterdir()) == [drive.name], "no partial file is left"
    _, messages = read_mcap(drive)
    # in any order: these frames' capture stamps are a nanosecond apart, their wall-clock times not
    assert sorted(b["frame"] for t, _, b in messages if t == "/camera/objects") == list(range(kept))


def test_a_dead_runs_file_is_kept_and_the_sink_needs_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The partial file a killed run left is kept beside, said with how to read it; pictures
    alone (edge record) are refused: the sink records what the engines found."""
    drive = tmp_path / "drive.mcap"
    (tmp_path / ".drive.partial.mcap").write_bytes(b"\x89MCAP0\r\n" + b"\0" * 64)
    sink = open_sink(str(drive))
    assert "mcap recover reads what it holds" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("drive.interrupted")]
    with pytest.raises(SinkError, match="needs results, not pictures"):
        sink.write(np.zeros((4, 4, 3), np.uint8), 0)
    sink.close()
    assert not drive.exists(), "nothing was written: no file"
    assert main(["record", DRIVE.format(frames=2, seed=0), "--sink", str(drive)]) == 2
    assert "needs what the engines found (use edge run)" in capsys.readouterr().err


def test_views_follow_the_engines_that_run(tiny_engines: Path, tmp_path: Path) -> None:
    """Without views=, the pictures of the engines that run; a view asked of an engine that
    does not run is refused before the run."""
    from edge.stream.sinks import open_sinks

    (sink,) = open_sinks([str(tmp_path / "a.mcap")], fps=10, kinds=("panoptic",))
    assert sink.choice.views == ("input", "panoptic") and sink.shows == {"panoptic"}  # type: ignore[attr-defined]
    sink.close()
    with pytest.raises(SinkError, match=r"asks for the depth picture\(s\), and no such engine runs"):
        open_sinks([str(tmp_path / "b.mcap?views=input,depth")], fps=10, kinds=("panoptic",))
    assert list(tmp_path.iterdir()) == []


def test_a_live_run_is_cut_into_mcap_segments(demo_engines: Path, tmp_path: Path) -> None:
    """--segment: a file every half second of capture time, numbered, each finished (its
    index written); every frame out once, in order, across them."""
    from edge.stream import run_stream
    from edge.util.fs import natural_key

    tracker = run_stream(
        "synthetic://?size=128x256&fps=20&frames=30",
        engines=demo_engines,
        sinks=[str(tmp_path / "drive.mcap")],
        realtime=True,
        segment_s=0.5,
    )
    files = sorted(tmp_path.iterdir(), key=natural_key)
    assert len(files) >= 3 and all(re.fullmatch(r"drive-\d{5}-\d{8}-\d{6}\.mcap", p.name) for p in files)
    frames = []
    for path in files:
        _, messages = read_mcap(path)
        records = [b for t, _, b in messages if t == "/camera/objects"]
        assert records[-1]["t_capture_ns"] - records[0]["t_capture_ns"] < 0.5e9
        frames += [r["frame"] for r in records]
    assert frames == sorted(set(frames)) and len(frames) == tracker.summary()["frames_out"]
    assert tracker.summary()["segments"][str(tmp_path / "drive.mcap")]["files"] == [str(p) for p in files]
    assert {read_metadata(p)["edge"]["engine.depth"] for p in files} == {
        "depth_tiny onnxruntime fp32 128x256"
    }


def test_segments_of_two_cameras_go_on_with_one_fusion(tiny_engines: Path, tmp_path: Path) -> None:
    """Two cameras' drives, read in drive order into one .mcap cut every half second: each file's
    first /around/things line fuses both cameras, the other's newest frame written into the file
    before (a fusion begun again with each file would hold its own camera's alone); the sink's
    ?max_age= is the fusion's."""
    from edge.stream import StreamOptions
    from edge.stream.multicam import run_cameras
    from edge.util.fs import natural_key

    cameras = {name: f"synthetic://?size=128x256&fps=20&frames=40&seed={i}" for i, name in enumerate("ab")}
    for max_age in ("", "?max_age=0.01"):
        folder = tmp_path / (max_age[1:] or "default")
        run_cameras(
            cameras,
            engines=tiny_engines,
            sinks=[f"{folder / 'drive.mcap'}{max_age}"],
            options=StreamOptions(segment_s=0.5),
        )
        files = sorted(folder.iterdir(), key=natural_key)
        assert len(files) >= 2, files
        each = [[b["cameras"] for t, _, b in read_mcap(path)[1] if t == "/around/things"] for path in files]
        fused = [cameras for lines in each for cameras in lines if len(cameras) == 2]
        if not max_age:  # the drives' frames 0.05 s apart, within the default 0.25 s
            assert all(len(lines[0]) == 2 for lines in each[1:]), each
            assert any(cameras["a"] != cameras["b"] for cameras in fused), "a frame and the other's before"
        else:  # only the two cameras' frames of one instant
            assert fused and all(cameras["a"] == cameras["b"] for cameras in fused), fused


def test_without_mcap_the_sink_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from edge.errors import DependencyError

    monkeypatch.setitem(sys.modules, "mcap.writer", None)  # as where it is not installed
    with pytest.raises(DependencyError, match=re.escape("pip install 'edge-perception[mcap]'")):
        open_sink(str(tmp_path / "drive.mcap"))
    assert list(tmp_path.iterdir()) == []


def test_a_killed_runs_file_holds_every_frame_it_wrote(demo_engines: Path, tmp_path: Path) -> None:
    """SIGKILL mid-run: the partial file, a chunk a frame, reads up to its last whole frame
    with the mcap package's stream reader (no index needed); the next run keeps it aside."""
    import signal
    import subprocess
    import sys
    import time

    from mcap.exceptions import EndOfFile
    from mcap.records import Channel, Message
    from mcap.stream_reader import StreamReader

    from tests.conftest import ROOT

    drive = tmp_path / "k.mcap"
    source = "synthetic://?size=128x256&fps=10&seed=1"
    argv = [sys.executable, "-m", "edge", "run", source, "--engines", str(demo_engines), "--realtime"]
    child = subprocess.Popen(
        [*argv, "--sink", str(drive)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    partial = tmp_path / ".k.partial.mcap"
    try:
        deadline = time.monotonic() + 120
        while not (partial.exists() and partial.stat().st_size > 100_000):
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.1)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    topics: dict[int, str] = {}
    frames = []
    with open(partial, "rb") as f, contextlib.suppress(EndOfFile):  # the file ends where the run died
        for record in StreamReader(f, emit_chunks=False).records:
            if isinstance(record, Channel):
                topics[record.id] = record.topic
            elif isinstance(record, Message) and topics[record.channel_id] == "/camera/objects":
                frames.append(json.loads(record.data)["frame"])
    assert len(frames) >= 3 and frames == list(range(len(frames)))
    sink = open_sink(str(drive))  # the next run
    sink.close()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("k.interrupted")], list(
        tmp_path.iterdir()
    )
