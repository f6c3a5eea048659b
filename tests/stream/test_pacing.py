"""A drive's recordings read in the order of their capture times (edge.stream.pacing): the
order's turns with real threads, and real runs of two synthetic cameras of other rates
through real tiny ONNX Runtime engines, their things fused by drive time."""

from __future__ import annotations

import itertools
import json
import random
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from edge.schemas import check_document
from edge.stream import StreamOptions
from edge.stream.engines import EngineSet
from edge.stream.frame import Frame
from edge.stream.multicam import run_all, run_cameras
from edge.stream.pacing import DriveOrder, StartLine, drive_order
from edge.stream.pipeline import Pipeline
from edge.stream.sinks import NullSink
from edge.stream.sources import open_source


def take_turns(order: DriveOrder, times: dict[str, list[float]], slow: str = "") -> list[tuple[float, str]]:
    """Each camera's thread handing on its frames of ``times`` through ``order`` (``slow``'s
    reading each frame takes a while): the frames in the order handed on."""
    handed: list[tuple[float, str]] = []
    lock = threading.Lock()
    stopping = threading.Event()

    def read(name: str) -> None:
        seat = order.seat(name)
        try:
            for t_s in times[name]:
                if name == slow:
                    time.sleep(0.02)  # the others wait: its next frame may be the earliest
                assert seat.turn(t_s, stopping)
                with lock:
                    handed.append((t_s, name))
        finally:
            seat.done()

    threads = [threading.Thread(target=read, args=(name,)) for name in times]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return handed


def test_frames_are_handed_on_in_the_order_they_were_captured() -> None:
    """Three cameras of other rates and starts, one slow to read and one ending early: every
    frame handed on once, in drive order (a tie goes to the camera named first)."""
    rng = random.Random(0)
    times = {
        "front": [i / 30 for i in range(45)],
        "side": [0.35 + i / 10 for i in range(12)],
        "rear": sorted(rng.uniform(0.0, 1.0) for _ in range(20)),
    }
    order = DriveOrder(list(times))
    handed = take_turns(order, times, slow="side")
    ranks = {name: i for i, name in enumerate(times)}
    assert sorted(handed, key=lambda each: (each[0], ranks[each[1]])) == handed
    assert sorted(handed) == sorted((t, name) for name, ts in times.items() for t in ts)


def test_a_camera_stopping_is_not_waited_for() -> None:
    """A camera whose next frame is later than one that has not come waits until it is asked to
    stop; one that ended is waited for no longer."""
    order = DriveOrder(["a", "b"])
    a, b = order.seat("a"), order.seat("b")
    stopping = threading.Event()
    threading.Timer(0.3, stopping.set).start()
    began = time.monotonic()
    assert not a.turn(1.0, stopping), "b has given no frame yet: a waits"
    assert time.monotonic() - began >= 0.25
    b.done()
    assert a.turn(2.0, threading.Event()), "b ended: a goes on alone"


def test_a_camera_whose_read_hangs_is_waited_for_no_longer_than_the_patience() -> None:
    """b's read has not returned: a waits for it the patience, then goes on alone (said once);
    b's next frame, captured earlier, goes first, said as b takes its place again."""
    said: list[str] = []
    hung: list[tuple[str, float]] = []
    order = DriveOrder(["a", "b"], patience_s=0.3, say=said.append, on_hung=lambda *each: hung.append(each))
    a, b = order.seat("a"), order.seat("b")
    b.reading()
    began = time.monotonic()
    assert a.turn(0.0, threading.Event()) and a.turn(0.1, threading.Event())
    assert time.monotonic() - began >= 0.25, "b was waited for, the patience"
    assert len(said) == 1 and said[0].startswith("warning: camera 'b' has read no frame for 0.3 s"), said
    handed: list[str] = []
    a.reading()  # a reads its next, b its next after the hang: b's was captured first

    def read_a() -> None:
        while len(said) < 2:  # b has its frame (said as it took its place again), then a's comes
            time.sleep(0.01)
        if a.turn(0.2, threading.Event()):
            handed.append("a")
        a.done()

    later = threading.Thread(target=read_a)
    later.start()
    assert b.turn(0.05, threading.Event())
    handed.append("b")
    b.done()
    later.join(timeout=30)
    assert handed == ["b", "a"], "b's frame of 0.05 s first"
    assert len(said) == 2 and said[1].startswith("note: camera 'b' read a frame again after "), said
    assert [name for name, _ in hung] == ["b"] and hung[0][1] >= 0.25, hung


class _HungSource:
    """A 10 fps recording whose fourth read does not return until ``release`` (a network share
    that stopped answering); ``held_ms`` of the read that hung."""

    def __init__(self, release: threading.Event) -> None:
        self._inner = open_source("synthetic://?size=128x256&fps=10&frames=8&seed=1")
        self.uri, self.fps, self.live, self.timestamps = "hung://", 10.0, False, None
        self.release, self.reads, self.held_ms = release, 0, 0.0

    def read(self) -> Frame | None:
        self.reads += 1
        if self.reads == 4:
            began = time.monotonic()
            if not self.release.wait(timeout=30):
                raise AssertionError("released only once the other camera's drive has ended: it waited")
            self.held_ms = (time.monotonic() - began) * 1e3
        return self._inner.read()

    def close(self) -> None:
        self._inner.close()


def test_a_recording_that_stops_answering_holds_up_the_others_no_longer_than_the_patience(
    tiny_engines: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two cameras read in drive order through real tiny engines, the side one's read hanging
    until the front camera's whole drive has been read: after the patience the front one goes on
    without it, and the side one, released, reads the rest of its own; every frame of both."""
    monkeypatch.setattr("edge.stream.pacing.DRIVE_PATIENCE_S", 0.5)
    release = threading.Event()
    side = _HungSource(release)
    engines = EngineSet.from_manifest(tiny_engines)
    done: dict[str, list[int]] = {"front": [], "side": []}

    def on_result(name: str) -> Any:
        def record(result: Any) -> None:
            done[name].append(result.frame.seq)
            if name == "front" and len(done["front"]) == 20:
                release.set()

        return record

    try:
        pipelines = {
            name: Pipeline(
                source=source,
                engines=engines,
                sinks=[NullSink("null://")],
                camera=name,
                on_result=on_result(name),
            )
            for name, source in (
                ("front", open_source("synthetic://?size=128x256&fps=10&frames=20")),
                ("side", side),
            )
        }
        assert drive_order(pipelines, realtime=False, loop=False) is not None
        run_all(pipelines)
    finally:
        engines.close()
    assert done == {"front": list(range(20)), "side": list(range(8))}
    assert side.held_ms > 400, "the front camera waited the patience for it first"
    err = capsys.readouterr().err
    assert err.count("warning: camera 'side' has read no frame for 0.5 s") == 1, err
    assert err.count("note: camera 'side' read a frame again after ") == 1, err
    # in the side camera's summary, which its table says
    summaries = {name: p.tracker.summary() for name, p in pipelines.items()}
    assert summaries["front"]["reads_hung_s"] == []
    (held_s,) = summaries["side"]["reads_hung_s"]
    assert held_s == pytest.approx(side.held_ms / 1e3, abs=0.1), (held_s, side.held_ms)
    assert check_document("summary", json.dumps(summaries["side"])) is None
    table = pipelines["side"].tracker.format_summary()
    assert f"the recording's read hung 1 time(s), {held_s:.1f} s at most" in table, table


def test_cameras_begin_together_however_late_each_thread_began() -> None:
    """Three captures beginning 0, 0.1 and 0.2 s apart all get the time the last began: the
    start their paced offsets are to; one that never comes is waited for no longer than the
    timeout, each then beginning as it arrives."""
    line, got = StartLine(3), {}

    def begin(delay: float) -> None:
        time.sleep(delay)
        began = time.perf_counter()
        got[delay] = (line.arrive(), began)

    threads = [threading.Thread(target=begin, args=(d,)) for d in (0.0, 0.1, 0.2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    starts = {start for start, _ in got.values()}
    assert len(starts) == 1 and starts.pop() >= max(began for _, began in got.values()), got
    alone = StartLine(2, timeout_s=0.2)
    before = time.perf_counter()
    assert alone.arrive() >= before + 0.15, "the other never came: after the timeout, its own"


def fused(path: Path) -> list[dict[str, int]]:
    """Each fused line's frames of each camera."""
    return [json.loads(line)["cameras"] for line in path.read_text().splitlines()]


def test_a_fast_and_a_slow_cameras_recordings_are_fused_as_they_were_seen(
    tiny_engines: Path, tmp_path: Path
) -> None:
    """A 30 fps and a 10 fps camera, a second each, read flat out: each line fuses frames
    captured within a quarter second of each other in the drive (taking turns by frames, the
    slow camera's drive would run three times ahead), and with a start offset of half a
    second, the side camera's first frame is fused with the front one's of then."""
    cameras = {
        "front": "synthetic://?size=128x256&fps=30&frames=30",
        "side": "synthetic://?size=128x256&fps=10&frames=10&seed=1",
    }
    rates = {"front": 30.0, "side": 10.0}
    for offset in (0.0, 0.5):
        out = tmp_path / f"around-{offset}.jsonl"
        run_cameras(
            cameras,
            engines=tiny_engines,
            sinks=[f"{out}?lines=fused"],
            options=StreamOptions(),
            start_offsets={"side": offset},
        )
        lines = fused(out)
        assert len(lines) == 40
        both = [line for line in lines if len(line) == 2]
        # once both have begun, the lines fuse the two (with the offset, till the front camera's
        # drive ends 0.45 s before the side one's)
        assert len(both) >= (36 if not offset else 20), (offset, lines)
        for line in both:
            front_s, side_s = line["front"] / rates["front"], line["side"] / rates["side"] + offset
            assert abs(front_s - side_s) <= 0.25, (offset, line)
        if offset:
            assert min(line["front"] for line in both) >= 15 - 8, "the side camera joins half a second in"


def test_a_recording_read_flat_out_is_timed_by_its_drive(tiny_engines: Path, tmp_path: Path) -> None:
    """Its objects lines' wall-clock times (and so an .mcap's) are the first frame's plus each
    frame's drive time, a tenth of a second apart at 10 fps however fast the engines read them;
    two cameras' on one clock, the side camera's half a second after the front one's where it
    began that much later. Paced (--realtime), a frame's time is when it came."""
    from edge.cli import main

    out = tmp_path / "objects.jsonl"
    drive = "synthetic://?size=128x256&fps=10&frames=6"
    assert main(["run", drive, "--engines", str(tiny_engines), "--sink", str(out)]) == 0
    times = [json.loads(line)["time_unix"] for line in out.read_text().splitlines()]
    # to the microsecond each line's time is written to
    assert all(abs(b - a - 0.1) <= 2e-6 for a, b in itertools.pairwise(times)), times
    assert abs(times[0] - time.time()) < 120, "the first frame's is when it was read"
    cameras = ["--camera", f"front={drive}", "--camera", f"side={drive}&seed=1", "--start-offset", "side=0.5"]
    both = tmp_path / "both.jsonl"
    assert main(["run", *cameras, "--engines", str(tiny_engines), "--sink", str(both)]) == 0
    lines = [json.loads(line) for line in both.read_text().splitlines()]
    first = {
        name: min(line["time_unix"] for line in lines if line["camera"] == name) for name in ("front", "side")
    }
    assert abs(first["side"] - first["front"] - 0.5) <= 2e-6, first
    paced = tmp_path / "paced.jsonl"
    assert main(["run", drive, "--realtime", "--engines", str(tiny_engines), "--sink", str(paced)]) == 0
    lines = [json.loads(line) for line in paced.read_text().splitlines()]
    # a loaded machine drops frames paced as a camera's (the newest wins): a gap a frame
    gaps = [
        (b["time_unix"] - a["time_unix"]) / (b["frame"] - a["frame"]) for a, b in itertools.pairwise(lines)
    ]
    assert 0.05 < statistics.median(gaps) < 0.2, ("when each came, about 0.1 s apart", gaps)
    assert len({round(gap, 6) for gap in gaps}) > 1, "as measured, not as recorded"


def test_a_recording_read_flat_out_beside_a_live_camera_is_warned_of(
    tiny_engines: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A live camera (a real MJPEG server) beside a recording, without --realtime: the recording's
    drive runs ahead of the camera's, said as the run begins; with --realtime it is paced, not said."""
    from tests.stream.test_capture import Camera

    camera = Camera(fps=20.0)
    try:
        cameras = {"front": camera.url, "rear": "synthetic://?size=128x256&fps=10&frames=5"}
        for realtime in (False, True):
            run_cameras(
                cameras,
                engines=tiny_engines,
                sinks=["null://"],
                options=StreamOptions(max_frames=5, realtime=realtime),
            )
            said = capsys.readouterr().err
            warning = (
                "warning: rear read recordings as fast as the engines take them beside the live camera(s) "
                "front: their drives run ahead of the cameras'"
            )
            assert (warning in said) is not realtime, said
    finally:
        camera.unplug()
