"""Perception: one image per call, on real engines built with the bundled demo weights."""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import BackendError, ConfigError, ManifestError, SourceError
from edge.perception import Perceived, Perception
from edge.stream import default_engine_options
from edge.stream.engines import EngineSet
from edge.stream.frame import Result
from edge.stream.pipeline import Pipeline
from edge.stream.sinks import RENDERED_VIEWS, NullSink
from edge.stream.sources import open_source
from tests.conftest import TEST_SIZE, engines_of_kind, source_images

SOURCE = "synthetic://?size=256x512&frames=3&seed=3"  # twice the engines' size: resized on the way in


def frames() -> list[np.ndarray]:
    return source_images(SOURCE)


def test_a_call_gives_what_the_pipeline_gives(demo_engines: Path) -> None:
    from edge.data.synthetic import Camera
    from edge.postprocess.tracks import ObjectTracker

    piped: list[Result] = []
    # the options edge run and Perception.open use: thread counts change summation order
    engines = EngineSet.from_manifest(
        demo_engines, engine_options=default_engine_options("onnxruntime", None)
    )
    try:
        Pipeline(
            source=open_source(SOURCE),
            engines=engines,
            sinks=[NullSink()],
            on_result=piped.append,
            views=RENDERED_VIEWS,
        ).run()
    finally:
        engines.close()
    assert len(piped) == 3

    with Perception.open(demo_engines) as perception:
        # the pipeline's tracker has its source's camera: its labels say the road's distances
        camera = Camera(*TEST_SIZE)
        perception.object_tracker = ObjectTracker(hfov_deg=camera.hfov_deg, ground=camera.ground)
        seen = [perception(image) for image in frames()]
        rendered = [perception.render(s) for s in seen]
        halves = [(perception.render(s, view="panoptic"), perception.render(s, view="depth")) for s in seen]
        with pytest.raises(ConfigError, match=r"render\(view='input'\): expected 'composite', 'panoptic'"):
            perception.render(seen[0], view="input")

    instances = 0
    for s, r, picture in zip(seen, piped, rendered, strict=True):
        assert s.image.shape == (*TEST_SIZE, 3)
        assert s.panoptic is not None and s.semantic is not None and s.depth is not None
        assert s.panoptic.shape == s.semantic.shape == s.depth.shape == TEST_SIZE
        np.testing.assert_array_equal(s.panoptic, r.extras["panoptic_ids"])
        np.testing.assert_array_equal(s.semantic, r.panoptic["sem_labels"][0])
        np.testing.assert_array_equal(s.depth, r.depth["depth"][0, 0])
        np.testing.assert_array_equal(picture, r.rendered)
        np.testing.assert_array_equal(np.concatenate(halves.pop(0), axis=1), picture)
        assert picture.shape == (TEST_SIZE[0], 2 * TEST_SIZE[1], 3)
        assert set(s.outputs) == {"panoptic", "depth"}
        for inst in s.instances:  # every kept instance owns pixels of the panoptic map
            assert inst.panoptic_id // 1000 in (24, 25, 26, 27, 28, 31, 32, 33)
            assert (s.panoptic == inst.panoptic_id).any()
        instances += len(s.instances)
    assert instances > 0


def test_latency_per_frame_and_in_total(demo_engines: Path) -> None:
    images = frames()
    with Perception.open(demo_engines, deadline_ms=1e6) as perception:
        t_capture = time.perf_counter_ns()
        time.sleep(0.05)  # the frame waited 50 ms before the call
        first = perception(images[0], t_capture_ns=t_capture)
        second = perception(images[1])
        summary = perception.tracker.summary()
    stages = {"preprocess", "panoptic", "depth", "postprocess", "tracks", "end_to_end"}
    assert set(first.latency_ms) == stages
    assert all(v > 0 for v in first.latency_ms.values())
    assert first.latency_ms["end_to_end"] >= 50 + first.latency_ms["panoptic"]
    assert first.t_capture_ns == t_capture
    assert second.seq == first.seq + 1
    assert second.latency_ms["end_to_end"] < first.latency_ms["end_to_end"] + 1e3
    assert summary["frames_in"] == summary["frames_out"] == 2
    assert summary["stages_ms"]["panoptic"]["count"] == 2
    assert summary["deadline_misses"] == 0
    assert summary["engines"]["panoptic"].startswith("panoptic_fpn_tiny onnxruntime fp32")


def test_any_size_grey_and_rgba_are_converted(demo_engines: Path) -> None:
    image = frames()[0]
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    with Perception.open(demo_engines) as perception:
        assert perception.input_size == TEST_SIZE
        from_grey = perception(grey)
        from_rgb_of_grey = perception(cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB))
        from_rgba = perception(cv2.cvtColor(image, cv2.COLOR_RGB2RGBA))
        from_rgb = perception(image)
        odd = perception(cv2.resize(image, (333, 101)))
    np.testing.assert_array_equal(from_grey.panoptic, from_rgb_of_grey.panoptic)
    np.testing.assert_array_equal(from_rgba.panoptic, from_rgb.panoptic)
    assert odd.panoptic is not None and odd.panoptic.shape == TEST_SIZE


def test_bad_images_are_refused_and_the_next_call_works(demo_engines: Path) -> None:
    image = frames()[0]
    with Perception.open(demo_engines) as perception:
        with pytest.raises(SourceError, match=r"float32 array; expected a uint8 RGB image"):
            perception(image.astype(np.float32))
        with pytest.raises(SourceError, match=r"shape \(128, 256, 2\); expected HxWx3"):
            perception(np.zeros((128, 256, 2), np.uint8))
        with pytest.raises(SourceError, match=r"list; expected a uint8"):
            perception([[0]])  # type: ignore[arg-type]
        assert perception(image).panoptic is not None


def test_closed_means_closed(demo_engines: Path) -> None:
    perception = Perception.open(demo_engines)
    assert "panoptic_fpn_tiny" in repr(perception)
    perception.close()
    perception.close()  # twice is harmless
    assert perception.engines.panoptic is not None
    with pytest.raises(BackendError, match="closed"):
        perception(frames()[0])


def test_open_refuses_what_the_folder_lacks(demo_engines: Path, tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        Perception.open(tmp_path / "nothing")
    with pytest.raises(ManifestError, match="no onnxruntime depth engine for 'depth_r18'"):
        Perception.open(demo_engines, depth="depth_r18")


def test_a_folder_of_depth_alone_renders_depth_alone(demo_engines: Path, tmp_path: Path) -> None:
    folder = engines_of_kind(demo_engines, "depth", tmp_path / "engines")
    with Perception.open(folder) as perception:
        seen = perception(frames()[0])
        assert seen.panoptic is None and seen.depth is not None
        np.testing.assert_array_equal(perception.render(seen), perception.render(seen, view="depth"))
        with pytest.raises(
            ConfigError, match=r"view='panoptic'\): no panoptic engine runs here \(engines: depth\)"
        ):
            perception.render(seen, view="panoptic")


def test_threads_take_turns(demo_engines: Path) -> None:
    images = frames()
    with Perception.open(demo_engines) as perception:
        alone = [perception(im).panoptic for im in images]
        got: dict[int, list[int]] = {}
        same: dict[int, bool] = {}

        def work(i: int) -> None:
            got[i] = [perception(images[i]).seq for _ in range(2)]
            same[i] = np.array_equal(perception(images[i]).panoptic, alone[i])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seqs = [s for v in got.values() for s in v]
        assert len(seqs) == 6 and len(set(seqs)) == 6
        assert same == {0: True, 1: True, 2: True}
        assert perception.tracker.summary()["frames_out"] == 3 + 9


def test_cameras_calling_at_once_are_served_in_turn(demo_engines: Path) -> None:
    """Two cameras' threads calling one Perception as fast as they can: once both wait,
    they alternate (a thread that calls again at once queues behind the other)."""
    images = frames()
    calls = 8
    with Perception.open(demo_engines) as perception:
        perception(images[0])  # warm
        whose: dict[int, str] = {}
        started = threading.Barrier(2)

        def work(name: str, image: np.ndarray) -> None:
            started.wait()
            for _ in range(calls):
                whose[perception(image, stream=name).seq] = name

        threads = [
            threading.Thread(target=work, args=(n, images[i])) for i, n in enumerate(("front", "rear"))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    order = [whose[seq] for seq in sorted(whose)]
    first = max(order.index("front"), order.index("rear"))  # from when both have asked
    last = min(len(order) - 1 - order[::-1].index(n) for n in ("front", "rear"))  # until one is done
    both = order[first : last + 1]
    # strictly alternating, but for a thread the machine held up before it asked again
    runs = [len(list(group)) for _, group in itertools.groupby(both)]
    assert max(runs) <= 2 and runs.count(2) <= 1, order


def test_the_readme_example_runs(
    demo_engines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("### Python API", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "engines").symlink_to(demo_engines)
    cv2.imwrite(str(tmp_path / "frame.png"), cv2.cvtColor(frames()[0], cv2.COLOR_RGB2BGR))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    seen = cv2.imread(str(tmp_path / "seen.png"))
    assert seen is not None and seen.shape == (TEST_SIZE[0], 2 * TEST_SIZE[1], 3)
    out = capsys.readouterr().out
    assert f"{TEST_SIZE} " in out and "'end_to_end'" in out and "'distance_m'" in out
    assert "panoptic_fpn_tiny onnxruntime fp32" in out and "frames in 1  out 1" in out


def test_objects_sink_writes_what_perception_sees(demo_engines: Path, tmp_path: Path) -> None:
    """``--sink objects.jsonl`` through the real pipeline: a line per frame whose objects
    are those Perception finds in the same frame, with distances from the depth engine,
    and the same tracks when Perception is given the frames' times (17 fps) and the
    synthetic camera's field of view and ground plane (which the pipeline has from its
    source): distances read from the road where the things' feet show."""
    from edge.data.synthetic import Camera
    from edge.postprocess.tracks import ObjectTracker
    from edge.stream import run_stream

    before = time.time()
    run_stream(SOURCE, engines=demo_engines, sinks=[str(tmp_path / "o" / "objects.jsonl")])
    lines = [json.loads(x) for x in (tmp_path / "o" / "objects.jsonl").read_text().splitlines()]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["objects.jsonl"]  # no partial left
    with Perception.open(demo_engines) as perception:
        camera = Camera(*TEST_SIZE)
        perception.object_tracker = ObjectTracker(hfov_deg=camera.hfov_deg, ground=camera.ground)
        expected = [perception(image, stream_time_s=i / 17).objects for i, image in enumerate(frames())]
    assert [x["frame"] for x in lines] == [0, 1, 2]
    assert [x["objects"] for x in lines] == expected
    assert sum(len(x) for x in expected) > 0
    assert any("ground_m" in o for x in lines for o in x["objects"])
    tracks = [{o["track"] for o in x["objects"]} for x in lines]
    assert tracks[0] & tracks[1] & tracks[2], "the same objects, followed from frame to frame"
    # seen in every frame since the first: as old as the frames between, at 17 fps
    followed = [o for i, x in enumerate(lines) for o in x["objects"] if o["track_frames"] == i + 1]
    assert followed and all(o["track_age_s"] == round((o["track_frames"] - 1) / 17, 3) for o in followed)
    assert all(x["size"] == list(TEST_SIZE) and x["frame_size"] == [256, 512] for x in lines)
    assert lines[0]["t_capture_ns"] < lines[1]["t_capture_ns"] < lines[2]["t_capture_ns"]
    assert before - 1 < lines[0]["time_unix"] < lines[2]["time_unix"] < time.time()
    for obj in (o for x in lines for o in x["objects"]):
        assert 0.1 <= obj["nearest_m"] <= obj["distance_m"] <= 100.0
        x1, y1, x2, y2 = obj["box"]
        assert 0 <= x1 < x2 <= TEST_SIZE[1] and 0 <= y1 < y2 <= TEST_SIZE[0]


def test_cameras_taking_turns_are_followed_apart(demo_engines: Path) -> None:
    """Two drives' frames in turns through one Perception, each named: each drive's tracks
    are those it gets alone."""
    drives = {}
    for name, seed in (("front", 2), ("rear", 5)):
        src = open_source(f"synthetic://?size=128x256&frames=5&seed={seed}")
        drives[name] = [f.image for f in iter(src.read, None)]
        src.close()

    def numbers(seen: Perceived) -> list[int]:
        return [t.track for t in seen.tracks]

    alone = {}
    for name, images in drives.items():
        with Perception.open(demo_engines) as perception:
            alone[name] = [numbers(perception(im, stream_time_s=k / 17)) for k, im in enumerate(images)]
    assert all(any(frame) for frame in alone["front"])
    with Perception.open(demo_engines) as perception:
        turns: dict[str, list[list[int]]] = {"front": [], "rear": []}
        for k in range(5):
            for name, images in drives.items():
                turns[name].append(numbers(perception(images[k], stream_time_s=k / 17, stream=name)))
        assert perception.object_tracker_for(None) is perception.object_tracker
        assert perception.object_tracker_for("rear") is perception.object_tracker_for("rear")
    assert turns == alone


def test_min_score_keeps_lower_scored_things_in_the_pipeline_and_perception_alike(
    demo_engines: Path, tmp_path: Path
) -> None:
    from edge.stream import run_stream

    objects = {}
    for min_score in (0.5, 0.1):
        path = tmp_path / f"objects_{min_score}.jsonl"
        run_stream(SOURCE, engines=demo_engines, sinks=[str(path)], min_score=min_score)
        lines = path.read_text().splitlines()
        objects[min_score] = [o for line in lines for o in json.loads(line)["objects"]]
    assert objects[0.5] and all(o["score"] >= 0.5 for o in objects[0.5])
    assert any(o["score"] < 0.5 for o in objects[0.1]) and all(o["score"] >= 0.1 for o in objects[0.1])
    assert {o["score"] for o in objects[0.5]} < {o["score"] for o in objects[0.1]}
    with Perception.open(demo_engines, min_score=0.1) as perception:
        seen = [o["score"] for image in frames() for o in perception(image).objects]
    assert sorted(seen) == sorted(o["score"] for o in objects[0.1])
    # refused before the engines load (this folder has none)
    with pytest.raises(ConfigError, match=r"minimum instance score -0\.1: expected a detection score from 0"):
        Perception.open(tmp_path / "no_engines", min_score=-0.1)
    with pytest.raises(ConfigError, match=r"minimum instance score 2: expected"):
        run_stream(SOURCE, engines=tmp_path / "no_engines", min_score=2)


def test_a_rigs_cameras_each_followed_by_its_own_tracker(demo_engines: Path, tmp_path: Path) -> None:
    """object_trackers from a rig file (edge.cli_rig.rig_trackers, as edge run --rig makes
    them): the rear camera's things are placed behind the vehicle, the front one's ahead,
    through one Perception."""
    from edge.cli_rig import rig_trackers

    rig = tmp_path / "car.toml"
    rig.write_text(
        '[cameras.front]\nsource = "/dev/video0"\nhfov = 48.9\nmount-ahead = 2.0\n'
        '[cameras.rear]\nsource = "/dev/video2"\nhfov = 48.9\nfacing = "rear"\nmount-ahead = -2.0\n'
    )
    trackers = rig_trackers(rig)
    assert {name: t.facing for name, t in trackers.items()} == {"front": "front", "rear": "rear"}
    src = open_source("synthetic://?size=128x256&frames=2&seed=2")
    images = [f.image for f in iter(src.read, None)]
    src.close()
    with Perception.open(demo_engines, object_trackers=trackers) as perception:
        assert perception.object_tracker_for("rear") is trackers["rear"]
        seen = {name: [perception(im, stream=name).objects for im in images] for name in ("front", "rear")}
    ahead = {name: [o["ahead_m"] for objects in each for o in objects] for name, each in seen.items()}
    assert ahead["front"] and min(ahead["front"]) > 2.0
    assert ahead["rear"] and max(ahead["rear"]) < -2.0
    # their newest frames' things at once: none of the front camera's is one of the rear one's
    from edge.postprocess.fusion import Fusion

    around = Fusion().update({name: each[-1] for name, each in seen.items()})
    assert len(around) == len(seen["front"][-1]) + len(seen["rear"][-1])
    assert all(len(thing["seen_by"]) == 1 for thing in around)
    assert sorted(thing["id"] for thing in around) == list(range(1, len(around) + 1))


def test_a_rig_cameras_lens_gives_its_tracker_the_field_of_view(tmp_path: Path) -> None:
    """A camera of a rig with a lens file and no hfov is placed with the lens's pinhole field
    of view, as edge run places it; one with its own hfov keeps it."""
    from edge.cli_rig import rig_trackers
    from edge.stream.undistort import read_calibration
    from tests.stream.test_undistort import write_opencv

    lens = write_opencv(tmp_path / "lens.yaml")
    rig = tmp_path / "car.toml"
    rig.write_text(
        '[cameras.wide]\nsource = "/dev/video0"\nundistort = "lens.yaml"\n'
        '[cameras.told]\nsource = "/dev/video2"\nundistort = "lens.yaml"\nhfov = 70\n'
    )
    trackers = rig_trackers(rig)
    assert trackers["wide"].hfov_deg == pytest.approx(read_calibration(lens).hfov_deg)
    assert trackers["told"].hfov_deg == 70.0
