"""The frame steps: what stretching a frame into engines of another shape is said to do."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.perception import Perception
from edge.stream.steps import stretch_note
from tests.conftest import TEST_SIZE, demo_requests, source_images


def tiny_entry(model: str, source: str) -> dict[str, Any]:
    """A manifest entry as edge build writes it, with what the build command reads."""
    return {
        "model": model,
        "backend": "onnxruntime",
        "precision": "fp32",
        "inputs": [{"name": "image", "shape": [1, 3, 256, 512]}],
        "weights": {"source": source, "sha256": "ab"},
        "onnx": {"opset": 18},
        "calibration": None,
    }


def test_a_16_9_camera_into_2_1_engines_is_said_with_the_build_of_its_shape() -> None:
    """The engines' own build at the frames' shape: both models in one command, the bundled
    weights needing no --checkpoint, a trained one named; following it makes what it says."""
    from edge.models.zoo import bundled_weights

    entries = [
        tiny_entry("panoptic_fpn_tiny", str(bundled_weights("panoptic_fpn_tiny"))),
        tiny_entry("depth_tiny", "runs/depth 7/best.pt"),
    ]
    note = stretch_note((720, 1280), (256, 512), entries, "my engines")
    assert note == (
        "frames 1280 wide and 720 high (1.78:1) go into engines of 256x512 (2.00:1): each is squashed "
        "to 89% of its height, which costs detections and distances; engines of their shape: edge build "
        "--models panoptic_fpn_tiny depth_tiny --backend onnxruntime --precision fp32 --size 288x512 "
        "--checkpoint 'depth_tiny=runs/depth 7/best.pt' --out 'my engines', chosen with --size 288x512 "
        "where the folder holds other sizes too; or --fit pad or --fit crop, which keep their shape in "
        "these engines (padded whole, or their middle cropped to fill them)"
    )
    command = note.split("engines of their shape: ")[1].split(", chosen")[0]
    requests = requests_of(command)
    assert [(r.model, r.height, r.width) for r in requests] == [
        ("panoptic_fpn_tiny", 288, 512),
        ("depth_tiny", 288, 512),
    ]
    assert [r.checkpoint for r in requests] == [
        bundled_weights("panoptic_fpn_tiny"),
        Path("runs/depth 7/best.pt"),
    ]


def test_engines_built_differently_are_said_with_a_command_each() -> None:
    """Random weights for one model and bundled for the other cannot share one --random-weights."""
    from edge.models.zoo import bundled_weights

    entries = [
        tiny_entry("panoptic_fpn_tiny", "random-init(seed=0)"),
        tiny_entry("depth_tiny", str(bundled_weights("depth_tiny"))),
    ]
    note = stretch_note((480, 640), (256, 512), entries, "e")
    assert note is not None
    command = note.split("engines of their shape: ")[1].split(", chosen")[0]
    first, second = command.split(" && ")
    assert [(r.model, r.checkpoint) for r in requests_of(first)] == [("panoptic_fpn_tiny", None)]
    assert [(r.model, r.checkpoint) for r in requests_of(second)] == [
        ("depth_tiny", bundled_weights("depth_tiny"))
    ]


def requests_of(command: str) -> list[Any]:
    from edge.cli_build import build_parser, requests_from_args

    words = shlex.split(command)
    assert words[:2] == ["edge", "build"]
    return requests_from_args(build_parser().parse_args(words[2:]))


@pytest.mark.parametrize(
    ("frame_hw", "said"),
    [
        ((1024, 2048), None),  # Cityscapes' shape: only scaled
        ((256, 512), None),
        ((1000, 2048), None),  # 2.05:1, within 5% of 2:1
        ((480, 640), "squashed to 67% of its height"),
        ((300, 1200), "squashed to 50% of its width"),  # wider than the engines
    ],
)
def test_what_is_said_of_each_shape(frame_hw: tuple[int, int], said: str | None) -> None:
    note = stretch_note(frame_hw, (256, 512))
    if said is None:
        assert note is None
    else:
        assert note is not None and said in note
        # no engines described: the size, and what to keep
        assert "engines of their shape: edge build --size " in note
        assert "(with the models and weights these were built from)" in note


def test_each_stretched_size_is_said_once(demo_engines: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Through the real steps (Perception runs run_engines, as the pipeline and edge bench
    do): a 4:3 frame is said once however often it comes, a frame of the engines' shape not
    at all, and another stretched size again."""
    h, w = TEST_SIZE
    with Perception.open(demo_engines) as perception:
        for _ in range(2):
            perception(np.zeros((96, 128, 3), np.uint8))
        perception(np.zeros((2 * h, 2 * w, 3), np.uint8))
        perception(np.zeros((64, 64, 3), np.uint8))
    said = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning: frames")]
    assert [line.split(" go into")[0] for line in said] == [
        "warning: frames 128 wide and 96 high (1.33:1)",
        "warning: frames 64 wide and 64 high (1.00:1)",
    ]
    assert f"--size {(w * 96 // 128) // 32 * 32}x{w}" in said[0]


def test_the_build_said_makes_engines_that_take_the_frames_unstretched(
    demo_engines: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Followed as printed, the warning's edge build adds engines of the frames' shape to the
    folder, from the same weights; chosen with its --size, they run the frames unsaid."""
    import shutil

    from edge.cli import main

    engines = tmp_path / "engines"
    shutil.copytree(demo_engines, engines)
    frame = np.zeros((96, 128, 3), np.uint8)
    with Perception.open(engines) as perception:
        perception(frame)
    (said,) = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning: frames")]
    command = said.split("engines of their shape: ")[1].split(", chosen")[0]
    assert command.startswith("edge build --models panoptic_fpn_tiny depth_tiny ")
    assert f"--size 192x{TEST_SIZE[1]}" in command and "--checkpoint" not in command  # bundled weights
    assert main([*shlex.split(command)[1:], "--quiet"]) == 0  # edge's own entry point, in this process
    manifest = json.loads((engines / "manifest.json").read_text())["engines"].values()
    new = [e for e in manifest if e["inputs"][0]["shape"][2] == 192]
    assert sorted(e["model"] for e in new) == ["depth_tiny", "panoptic_fpn_tiny"]
    old = {e["model"]: e["weights"]["sha256"] for e in manifest if e["inputs"][0]["shape"][2] == TEST_SIZE[0]}
    assert {e["model"]: e["weights"]["sha256"] for e in new} == old
    with Perception.open(engines, size=(192, TEST_SIZE[1])) as perception:
        assert perception(frame).panoptic.shape == (192, TEST_SIZE[1])
    assert "warning: frames" not in capfd.readouterr().err


def test_stream_time_is_the_recordings_own() -> None:
    from edge.stream.frame import Frame
    from edge.stream.steps import stream_time_s

    image = np.zeros((2, 2, 3), np.uint8)
    recorded = Frame(7, 5_000_000_000, image, meta={"media_ms": 412.5})
    assert stream_time_s(recorded, live=False, rate=30.0) == 0.4125  # its capture time
    assert stream_time_s(Frame(34, 5_000_000_000, image), live=False, rate=17.0) == 2.0  # frame 34 at 17 fps
    assert stream_time_s(Frame(34, 5_000_000_000, image), live=True, rate=17.0) == 5.0  # a camera: when read
    assert stream_time_s(Frame(34, 5_000_000_000, image), live=False, rate=None) == 5.0  # no rate to go by


def test_tracks_follow_a_drive_and_start_afresh_when_it_loops(demo_engines: Path) -> None:
    """The real engines on a synthetic drive, the frames' steps by hand: the same objects keep
    their tracks from frame to frame, and the drive played again gets new ones."""
    from concurrent.futures import ThreadPoolExecutor

    from edge.latency import LatencyTracker
    from edge.postprocess.tracks import ObjectTracker
    from edge.stream.engines import EngineSet
    from edge.stream.sources import open_source
    from edge.stream.steps import render_result, run_engines, track_result

    source = open_source("synthetic://?size=128x256&frames=4&seed=2")
    frames = [f for f in iter(source.read, None)]
    engines = EngineSet.from_manifest(demo_engines)
    objects, numbers = ObjectTracker(), []
    try:
        with ThreadPoolExecutor(2) as pool:
            for loop in (0, 1):
                for frame in frames:
                    frame.meta["loop"] = loop
                    result = run_engines(engines, frame, LatencyTracker(), pool)
                    render_result(result, engines.depth_range, ())
                    track_result(result, objects, frame.seq / 17)
                    assert len(result.extras["distances"]) == len(result.extras["instances"])
                    numbers.append({info.track for info in result.extras["tracks"]})
    finally:
        engines.close()
    first, again = numbers[:4], numbers[4:]
    assert first[0] and first[0] & first[1] & first[2] & first[3], "followed through the drive"
    assert max(max(n) for n in first) < min(min(n) for n in again if n), "a loop's objects are new ones"
    assert [len(n) for n in again] == [len(n) for n in first]  # the same frames, the same instances


def test_a_playlists_next_clip_starts_the_tracks_afresh_a_recordings_next_segment_does_not() -> None:
    from edge.postprocess.panoptic import Instance
    from edge.postprocess.tracks import ObjectTracker
    from edge.stream.frame import Frame, Result
    from edge.stream.steps import track_result

    car = Instance(26001, 13, 0.9, (10.0, 10.0, 50.0, 40.0), np.ones((30, 40), bool), (10, 10))

    def tracks(metas: list[dict[str, Any]]) -> list[int]:
        objects, out = ObjectTracker(), []
        for k, meta in enumerate(metas):
            frame = Frame(k, 0, np.zeros((64, 128, 3), np.uint8), meta=meta)
            result = Result(frame, extras={"instances": [car], "resized": frame.image})
            track_result(result, objects, k / 10)
            out.append(result.extras["tracks"][0].track)
            assert result.extras["t_stream_s"] == k / 10
        return out

    clips = [{"file": "a.mp4"}, {"file": "a.mp4"}, {"file": "b.mp4"}, {"file": "b.mp4"}]
    assert tracks(clips) == [1, 1, 2, 2]
    segments = [{"file": f"drive-0000{k // 2}.mkv", "media_ms": 100.0 * k} for k in range(4)]
    assert tracks(segments) == [1, 1, 1, 1]


def test_a_tracker_without_a_field_of_view_takes_its_sources(capsys: pytest.CaptureFixture[str]) -> None:
    """A source that knows its camera places the objects where no field of view is given,
    and reads their distances from the road where no ground plane is given, each said once;
    those given are kept, --no-ground (use_ground False) takes none, and a source that does
    not know keeps the tracker as is."""
    from edge.postprocess.ground import GroundPlane
    from edge.postprocess.tracks import ObjectTracker
    from edge.stream.sources import open_source
    from edge.stream.steps import tracker_seeing

    source = open_source("synthetic://?size=64x128&frames=1")
    road = "note: objects' distances are read from the road where they stand, 1.2 m below the camera of "
    given = ObjectTracker(hfov_deg=60.0, ground=GroundPlane(height_m=1.5))
    assert tracker_seeing(given, source) is given
    assert capsys.readouterr().err == ""
    blind = ObjectTracker(hfov_deg=60.0, use_ground=False)
    assert tracker_seeing(blind, source) is blind and capsys.readouterr().err == ""
    viewed = tracker_seeing(ObjectTracker(hfov_deg=60.0), source)
    assert viewed.hfov_deg == 60.0 and viewed.ground == source.ground  # type: ignore[attr-defined]
    assert capsys.readouterr().err.startswith(road + "'synthetic://?size=64x128&frames=1' (where their feet")
    plain = ObjectTracker(speed_window_s=0.5, facing="front", min_lateral_mps=0.7)
    seeing = tracker_seeing(plain, source)
    assert seeing is not plain and plain.hfov_deg is None and plain.ground is None
    assert (seeing.hfov_deg, seeing.speed_window_s, seeing.min_lateral_mps, seeing.ground) == (
        source.hfov_deg,  # type: ignore[attr-defined]
        0.5,
        0.7,
        GroundPlane(height_m=1.2, horizon=0.45, focal=2.2),
    )
    err = capsys.readouterr().err
    assert err == (
        "note: objects are placed with the field of view of the camera of "
        "'synthetic://?size=64x128&frames=1', 48.9 degrees (--hfov gives another)\n"
        + road
        + "'synthetic://?size=64x128&frames=1' (where their feet are hidden, the depth map's "
        "scaled to their recent road readings; --no-ground: the depth map's alone)\n"
    )
    assert tracker_seeing(plain, object()) is plain and capsys.readouterr().err == ""


def _demo_engines(tmp_path_factory: pytest.TempPathFactory, height: int, width: int) -> Path:
    """The demo's engines (the bundled tiny weights) at ``height`` x ``width``."""
    from edge.build import build_all

    out = tmp_path_factory.mktemp(f"demo_engines_{height}")
    build_all(demo_requests(height, width), out, show_progress=False)
    return out


@pytest.fixture(scope="module")
def demo_engines_96(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's engines at 96x192, a size their weights were not trained at (256x512 and
    128x256)."""
    return _demo_engines(tmp_path_factory, 96, 192)


def road_sources(video: Path, engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    """What each object's distance was read from (range_from) in a run of ``video``: fitting
    the road's plane (the default), told not to, and --no-ground's; each with what the run
    said on standard error."""
    from edge.postprocess.tracks import ObjectTracker
    from edge.stream import run_stream

    sources = {}
    for name, tracker in (
        ("fitted", None),
        ("unfitted", ObjectTracker(fit_ground=False)),
        ("no_ground", ObjectTracker(use_ground=False)),
    ):
        out = tmp_path / f"{name}.jsonl"
        summary = tmp_path / f"{name}_summary.json"
        run_stream(
            str(video), engines=engines, sinks=[str(out)], object_tracker=tracker, summary_json=summary
        )
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        said = capsys.readouterr().err
        sources[name] = ({o["range_from"] for x in lines for o in x["objects"] if "range_from" in o}, said)
        sources[name + "_plane"] = json.loads(summary.read_text())["road_plane"]
    return sources


def fitted_plane(video: Path, engines: Path) -> Any:
    from edge.postprocess.ground import FittedGround
    from edge.postprocess.road_fit import fit_road

    fitted, bends, plane = FittedGround(), [], None
    with Perception.open(engines) as perception:
        for i, image in enumerate(source_images(str(video))):
            seen = perception(image)
            assert seen.semantic is not None and seen.depth is not None
            fit = fit_road(seen.semantic, seen.depth)
            bends.append(fit.bend if fit is not None else None)
            plane = fitted.update(fit, i / 17)
    return plane, bends


def test_a_camera_nobody_measured_has_its_road_fitted_to_the_depth_map(
    demo_full_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder of a drive's frames carries no camera height: its things' distances are
    read from the road the depth map shows (said once), its camera as high as the synthetic
    one, 1.2 m, and its horizon where it is; --no-ground's tracker and one told not to fit
    read the depth map. (Exact pixels: through a lossy video the tiny engine's road bent
    0.03-0.06, and no plane was fitted for most frames.)"""
    from edge.stream.record import record

    video = tmp_path / "drive"
    record("synthetic://?size=256x512&frames=12&seed=2&lane=right", [f"dir://{video}"])
    capsys.readouterr()
    sources = road_sources(video, demo_full_engines, tmp_path, capsys)
    from edge.postprocess.ground import MAX_BEND

    found, said = sources["fitted"]
    assert "road" in found and "its plane fitted to the depth map's road" in said
    assert sources["unfitted"] == sources["no_ground"] == ({"depth"}, "")
    plane, bends = fitted_plane(video, demo_full_engines)
    assert sorted(b for b in bends if b is not None)[len(bends) // 2] <= MAX_BEND
    focal = 1.1 * 512 / 256  # the synthetic camera's focal length over the picture's height
    assert plane is not None and plane.height_m / focal == pytest.approx(1.2, rel=0.05)
    assert plane.horizon == pytest.approx(0.45, abs=0.015)
    # and the run's end says the plane it fitted (the folder gives no field of view: no height),
    # and its summary keeps it
    assert f"fitted to the depth map puts the horizon {plane.horizon:.3f} of the picture's height" in said
    assert sources["fitted_plane"] == pytest.approx(plane.to_json())
    assert sources["unfitted_plane"] is None and sources["no_ground_plane"] is None


def test_a_road_the_depth_map_bends_gives_no_plane(
    demo_engines_96: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same weights run at 96x192, a size they were not trained at: the depth engine's
    road bends (its far and near rows' horizons far apart, where it gives a line at all),
    so no plane is fitted and the distances stay the depth map's; said only where both
    engines are there. (At 128x256, before depth_tiny was trained at that size too, its
    road bent 0.05-0.1 there.)"""
    from edge.postprocess.ground import MAX_BEND
    from edge.postprocess.tracks import ObjectTracker
    from edge.stream.record import record
    from edge.stream.steps import tracker_seeing

    video = tmp_path / "drive"
    record("synthetic://?size=96x192&frames=12&seed=2&lane=right", [f"dir://{video}"])
    capsys.readouterr()
    sources = road_sources(video, demo_engines_96, tmp_path, capsys)
    found, said = sources["fitted"]  # tried, and said, but refused
    assert found == {"depth"} and "its plane fitted to the depth map's road" in said
    assert "note: no road's plane was fitted to the depth map: its road bent" in said
    assert sources["fitted_plane"] is None
    plane, bends = fitted_plane(video, demo_engines_96)
    seen = [b for b in bends if b is not None]  # the rest: no fit, or halves with no line
    assert plane is None and seen and min(seen) > MAX_BEND
    assert tracker_seeing(ObjectTracker(), object(), ("depth",)) is not None
    assert capsys.readouterr().err == ""


def test_a_run_ended_with_ctrl_c_says_its_road_plane_too(
    demo_full_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C is how a camera's run ends: a folder of a drive's frames played in a loop, its
    road fitted, interrupted once its video is being written, says the plane and keeps it
    in its summary as a run that ends by itself does."""
    import signal
    import threading
    import time

    from edge.stream import run_stream
    from edge.stream.record import record

    video = tmp_path / "drive"
    record("synthetic://?size=256x512&frames=12&seed=2&lane=right", [f"dir://{video}"])
    main = threading.main_thread().ident
    assert main == threading.get_ident()

    def interrupt() -> None:
        deadline = time.monotonic() + 60
        while not (tmp_path / ".o.partial.mp4").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        signal.pthread_kill(main, signal.SIGINT)

    killer = threading.Thread(target=interrupt)
    killer.start()
    capsys.readouterr()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_stream(
                str(video),
                engines=demo_full_engines,
                sinks=[str(tmp_path / "o.mp4")],
                loop=True,
                summary_json=tmp_path / "summary.json",
            )
    finally:
        killer.join()
    said = capsys.readouterr().err
    plane = json.loads((tmp_path / "summary.json").read_text())["road_plane"]
    assert plane is not None and f"puts the horizon {plane['horizon']:.3f} of the picture's height" in said


def test_the_road_plane_fitted_is_said_with_the_options_that_give_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """At a run's end: the synthetic camera's road fitted (reach 2.64, horizon 0.45) with its
    48.9 degree field of view at 256x512 is a camera 1.2 m up, and --camera-height and
    --horizon give it from the first frame (a named camera's options with its name).
    Without a field of view, the horizon alone; none fitted, or a scene that forgot it, is
    said so; a tracker given its plane, or told not to fit one, or a run without a depth
    engine, says nothing."""
    from edge.latency import LatencyTracker
    from edge.postprocess.ground import GroundPlane
    from edge.postprocess.road_fit import RoadFit
    from edge.postprocess.tracks import ObjectTracker
    from edge.stream.steps import end_road_plane

    both = ("panoptic", "depth")
    hfov = float(np.degrees(2 * np.arctan(1 / 2.2)))
    road = RoadFit(horizon=0.45, reach=2.64, rows=60, bend=0.0)
    tracker, latency = ObjectTracker(hfov_deg=hfov), LatencyTracker()
    tracker.update([], None, 0.0, size=(256, 512), road_fit=road)
    end_road_plane(latency, tracker, both, "front")
    said = capsys.readouterr().err
    assert said.startswith("note: (front) the road's plane fitted to the depth map: the camera 1.20 m over")
    assert said.endswith("--camera-height front=1.20 --horizon front=0.450 give it from the first frame\n")
    assert latency.summary()["road_plane"] == pytest.approx({"height_m": 1.2, "horizon": 0.45, "focal": 2.2})
    blind = ObjectTracker()
    blind.update([], None, 0.0, size=(256, 512), road_fit=road)
    end_road_plane(LatencyTracker(), blind, both)
    assert "puts the horizon 0.450 of the picture's height down (with --hfov" in capsys.readouterr().err
    tracker.update([], None, 0.1, scene="next", size=(256, 512), road_fit=None)
    forgot = LatencyTracker()
    end_road_plane(forgot, tracker, both)
    assert capsys.readouterr().err.startswith("note: no road's plane was fitted to the depth map")
    assert forgot.summary()["road_plane"] is None
    for given in (
        ObjectTracker(hfov_deg=hfov, ground=GroundPlane(height_m=1.2)),
        ObjectTracker(fit_ground=False),
    ):
        given.update([], None, 0.0, size=(256, 512), road_fit=road)
        end_road_plane(LatencyTracker(), given, both)
    end_road_plane(LatencyTracker(), ObjectTracker(hfov_deg=hfov), ("panoptic",))  # no depth map
    assert capsys.readouterr().err == ""
