"""A run as a systemd service: READY, STATUS, and a watchdog fed only while it makes
progress, told to a real datagram socket as systemd's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.latency import LatencyTracker
from edge.stream.engines import EngineSet
from edge.stream.pipeline import Pipeline
from edge.stream.sinks import NullSink
from edge.stream.sources import open_source
from edge.stream.watchdog import Hold, Progress, ServiceWatch, waiting_in_kernel
from tests.conftest import SlowDisk
from tests.stream.test_pipeline import CLI_ENV, ROOT
from tests.util.test_systemd import Listener, systemd_socket  # noqa: F401  (a fixture)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Camera:
    """What Progress reads of a camera source: how long its thread is inside a read."""

    uri = "/dev/video0"

    def __init__(self) -> None:
        self.in_read_s = 0.0

    def in_call_s(self) -> float:
        return self.in_read_s


def test_progress_names_what_is_held_up_and_for_how_long() -> None:
    tracker, clock, camera = LatencyTracker(), Clock(), Camera()
    busy: list[tuple[str, int, float]] = []
    progress = Progress(tracker=tracker, sinks_busy=lambda: busy, source=camera, clock=clock)
    assert progress() == []
    clock.now += 60  # nothing taken in (a camera away, reconnecting): nothing held
    assert progress() == []
    tracker.frame_captured(3)
    clock.now += 16
    assert progress() == [Hold(16.0, "no frame has come out for 16 s, 3 taken in")]
    tracker.frame_done(0, 0)
    assert progress() == []  # one came out: the 2 others are being worked on
    busy.append(("drive.mkv", 7, 15.5))
    camera.in_read_s = 20.0
    clock.now += 21
    assert progress() == [
        Hold(15.5, "sink 'drive.mkv' has been writing frame 7 for 16 s", sink="drive.mkv"),
        Hold(20.0, "source '/dev/video0' has been inside one read for 20 s"),
        Hold(21.0, "no frame has come out for 21 s, 2 taken in"),
    ]


def test_progress_measures_the_runs_own_pace_between_frames() -> None:
    """A slow model on a CPU: a frame out every 6 s, seen by looks 5 s apart."""
    tracker, clock = LatencyTracker(), Clock()
    progress = Progress(tracker=tracker, sinks_busy=list, source=None, clock=clock)
    tracker.frame_captured(100)
    for look in range(1, 13):
        clock.now += 5
        while tracker.frames_out < look * 5 // 6:
            tracker.frame_done(tracker.frames_out, 0)
        progress()
    assert progress.pace_s() == pytest.approx(6.0, rel=0.1)  # as seen at the looks
    clock.now += 5  # none out since the last look: a hold, measured against that pace
    assert progress() == [Hold(5.0, "no frame has come out for 5 s, 90 taken in", progress.pace_s())]


def test_the_watchdog_is_fed_only_when_nothing_was_held_since_the_last_look(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """WatchdogSec=60: a look every 5 s; a hold of a look or more is not fed, so systemd's
    timer kills a run held for the whole period; one of half the period is said."""
    sent: list[tuple[str, ...]] = []
    # a look's holds; at the fourth the first cause past 30 s is named, not the longest
    a, b, c, x, d = (Hold(4.9, "a"), Hold(7.0, "b"), Hold(31.0, "c"), Hold(40.0, "x"), Hold(0.2, "d"))
    slow = Hold(14.0, "frames of a slow model", usual_s=6.0)  # within 3 times its pace: fed
    holds = [[], [a], [b], [c, x], [Hold(36.0, "c")], [d], [slow], [Hold(19.0, "e", usual_s=6.0)]]
    watch = ServiceWatch(
        status=lambda: "frame 1",
        progress=lambda: holds.pop(0),
        watchdog_s=60.0,
        send=lambda *m: bool(sent.append(m)),
    )
    assert (watch.every_s, watch.stuck_after_s) == (5.0, 30.0)
    for _ in range(8):
        watch.tick()
    assert sent == [
        ("WATCHDOG=1", "STATUS=frame 1"),
        ("WATCHDOG=1", "STATUS=frame 1"),
        ("STATUS=frame 1",),
        ("STATUS=stuck: c",),
        ("STATUS=stuck: c",),
        ("WATCHDOG=1", "STATUS=frame 1"),
        ("WATCHDOG=1", "STATUS=frame 1"),
        ("STATUS=frame 1",),
    ]
    said = capsys.readouterr().err
    assert (
        said.count(
            "warning: the run is stuck: c; the watchdog has not been fed since it began: systemd kills"
        )
        == 1
    )
    assert "if it lasts 60 s (WatchdogSec=)" in said
    assert "the run is making progress again (it was stuck: c)" in said
    # no watchdog: never fed, stuck after STUCK_AFTER_S
    quiet = ServiceWatch(status=lambda: "", progress=lambda: [], watchdog_s=None, send=lambda *m: True)
    assert (quiet.every_s, quiet.stuck_after_s) == (5.0, 30.0)


def until(holds: Callable[[], bool], *, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not holds():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_camera_thread_inside_a_read_is_seen_while_it_waits() -> None:
    """A real MJPEG camera on 127.0.0.1 that stops sending, its connection open: the capture
    thread waits inside OpenCV's read, and says how long (0 between reads)."""
    from tests.stream.test_capture import Camera as MJPEGCamera

    camera = MJPEGCamera(fps=30)
    source = open_source(camera.url)
    try:
        assert source.read() is not None
        camera.stalled.set()
        assert until(lambda: source.in_call_s() > 1.0, timeout_s=4.0)
        camera.stalled.clear()
        assert until(lambda: source.in_call_s() < 0.5, timeout_s=10.0)
    finally:
        camera.stalled.clear()
        source.close()
        camera.unplug()


class HeldSink(NullSink):
    """Its first write waits until ``release``: a disk that stopped answering for a while,
    from ``held[0]`` to ``held[1]`` (time.monotonic)."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__("null://held")
        self._release = release
        self.held: list[float] = []

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        if self.frames == 0:
            self.held.append(time.monotonic())
            if not self._release.wait(timeout=30):
                raise AssertionError("never released")
            self.held.append(time.monotonic())
        super().write(image, seq)


class TimedSink(NullSink):
    """When each frame was written (time.monotonic)."""

    def __init__(self) -> None:
        super().__init__("null://timed")
        self.times: list[float] = []

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        super().write(image, seq)
        self.times.append(time.monotonic())


def held_run(
    engines_dir: Path,
    *,
    frames: int,
    held_s: float,
    every_s: float,
    heartbeat: Path | None = None,
    others: Sequence[Any] = (),
    skip_stuck_sinks: bool = False,
    held: list[HeldSink] | None = None,
) -> dict[str, Any]:
    """``frames`` synthetic frames at 15 fps, live, into a sink held ``held_s`` at its first
    write and ``others``, under ServiceWatch.for_pipeline (which looks every ``every_s``,
    writes ``heartbeat`` and may skip stuck sinks); the summary. The held sink is added to
    ``held``."""
    release = threading.Event()
    engines = EngineSet.from_manifest(engines_dir)
    timer = threading.Timer(held_s, release.set)
    try:
        pipeline = Pipeline(
            source=open_source(f"synthetic://?size=128x256&frames={frames}"),
            engines=engines,
            sinks=[sink := HeldSink(release), *others],
            realtime=True,
            fps=15.0,
        )
        if held is not None:
            held.append(sink)
        timer.start()
        watch = ServiceWatch.for_pipeline(pipeline, heartbeat=heartbeat, skip_stuck_sinks=skip_stuck_sinks)
        with watch:
            assert watch.every_s == every_s
            return pipeline.run()
    finally:
        timer.cancel()
        engines.close()


def test_a_held_sink_starves_the_watchdog_until_it_writes_again(
    tiny_engines: Path,
    systemd_socket: Listener,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # 1 s: a look every 0.5 s, stuck after 0.5 s
    s = held_run(tiny_engines, frames=50, held_s=2.5, every_s=0.5)
    got = systemd_socket.messages()
    assert got[0].startswith("READY=1\nSTATUS=frame 0") and got[-1].startswith("STOPPING=1\n")
    stuck = [i for i, m in enumerate(got) if m.startswith("STATUS=stuck: ")]
    held = "STATUS=stuck: sink 'null://held' has been writing frame 0 for"
    assert any(got[i].startswith(held) for i in stuck)
    fed = [i for i, m in enumerate(got) if m.startswith("WATCHDOG=1\nSTATUS=frame ")]
    assert stuck and fed, got
    # not fed while stuck; fed again once the sink wrote on (the run lasts 3.3 s, 0.8 after)
    assert not any(stuck[0] < i < stuck[-1] for i in fed) and fed[-1] > stuck[-1]
    said = capsys.readouterr().err
    # said once (by what was seen first: the frames that did not come out, or the sink)
    assert said.count("warning: the run is stuck: ") == 1
    assert "systemd kills and restarts the service if it lasts 1 s (WatchdogSec=)" in said
    assert "the run is making progress again" in said
    assert s["frames_out"] > 1


def test_a_stuck_sink_skipped_leaves_the_watchdog_fed_while_another_writes(
    tiny_engines: Path,
    systemd_socket: Listener,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--stuck-sink skip: the held sink (a recording whose disk stopped answering) is said
    once and skipped; the other sink (the objects a planner reads) gets the frames
    meanwhile, and the watchdog is fed throughout. With no other sink, no frame comes out,
    and the run is stuck as before."""
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a look every 0.5 s, stuck after 0.5 s
    objects, held = TimedSink(), []
    s = held_run(
        tiny_engines, frames=50, held_s=2.5, every_s=0.5, others=[objects], skip_stuck_sinks=True, held=held
    )
    got = systemd_socket.messages()
    assert not any(m.startswith("STATUS=stuck: ") for m in got), got
    skipped = [
        m for m in got if "  (skipped while stuck: sink 'null://held' has been writing frame 0 for" in m
    ]
    assert len(skipped) >= 2 and all(m.startswith("WATCHDOG=1\nSTATUS=frame ") for m in skipped), got
    start, end = held[0].held
    during = sum(start < t < end for t in objects.times)
    assert end - start > 1.5 and during >= 10, "the objects came during the hold"
    said = capsys.readouterr().err
    assert said.count("warning: sink 'null://held' has been writing frame 0 for ") == 1
    assert "; the run goes on without it, its frames skipped (--stuck-sink skip)" in said
    assert "sink 'null://held' is writing again (its frames were skipped while it was stuck)" in said
    assert "the run is stuck" not in said and s["sinks_skipped"]["null://held"] > 10
    # the held sink alone: nothing takes the frames, so none comes out
    held_run(tiny_engines, frames=40, held_s=2.0, every_s=0.5, skip_stuck_sinks=True)
    got = systemd_socket.messages()
    assert any(m.startswith("STATUS=stuck: no frame has come out for ") for m in got), got
    assert "warning: the run is stuck: no frame has come out" in capsys.readouterr().err


def test_the_end_of_a_run_leaves_a_stuck_sink_it_skips_open(
    tiny_engines: Path,
    systemd_socket: Listener,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--stuck-sink skip, and the source ends while the sink it skips is still inside its
    write: the run ends, the other sink finished, after _STOP_TIMEOUT_S at most, and the
    stuck one is left open, said; it waited for the dead disk for ever before."""
    import edge.stream.pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "_STOP_TIMEOUT_S", 0.5)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a look every 0.5 s, stuck after 0.5 s
    objects, held = TimedSink(), []
    try:
        s = held_run(
            tiny_engines,
            frames=30,
            held_s=25.0,
            every_s=0.5,
            others=[objects],
            skip_stuck_sinks=True,
            held=held,
        )
        ended_held = len(held[0].held) == 1
    finally:
        for sink in held:
            sink._release.set()
    assert ended_held, "the run ended while the sink was still inside its write"
    assert s["sinks_skipped"]["null://held"] > 5 and len(objects.times) > 10
    said = capsys.readouterr().err
    assert "warning: sink 'null://held' has been inside the write of frame 0 for " in said, said
    assert "it is left open (a disk that stopped answering?)" in said


def test_edge_run_under_systemd_says_ready_feeds_the_watchdog_and_says_stopping(
    tiny_engines: Path,
    systemd_socket: Listener,  # noqa: F811
    tmp_path: Path,
) -> None:
    _, got = edge_under_systemd(
        systemd_socket,
        *("run", "synthetic://?size=128x256&frames=40", "--realtime", "--fps", "20"),
        *("--engines", str(tiny_engines), "--sink", str(tmp_path / "objects.jsonl")),
    )
    assert got[0].startswith("READY=1\nSTATUS=frame 0")
    assert sum(m.startswith("WATCHDOG=1\nSTATUS=frame ") for m in got) >= 2, got
    assert not any("stuck" in m for m in got)
    assert got[-1] == "STOPPING=1\nSTATUS=finishing the outputs"


def edge_under_systemd(listener: Listener, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``edge ARGS`` as a service of WatchdogSec=1 would run it, telling ``listener``; the
    finished process (exit status 0) and the messages it sent."""
    env = {**CLI_ENV, "NOTIFY_SOCKET": listener.sock.getsockname(), "WATCHDOG_USEC": "1000000"}
    argv = [sys.executable, "-m", "edge.cli", *args]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    return done, listener.messages()


def test_edge_run_stuck_sink_skip_goes_on_past_a_reader_that_stopped_reading(
    tiny_engines: Path,
    systemd_socket: Listener,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A real stuck sink: ``-`` into a 4 KiB pipe that nobody reads until the run has said
    so. With --stuck-sink skip, objects.jsonl gets the frames meanwhile and the watchdog is
    fed; once read again, ``-`` writes again and the run ends whole."""
    import fcntl

    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    objects = tmp_path / "objects.jsonl"
    argv = [
        # 10 s of frames: the pipe fills (~1 s), the sink is said stuck (2 s on), looked at
        # twice and read, with time to spare on a loaded machine, before the stream ends
        *(sys.executable, "-m", "edge.cli", "run", "synthetic://?size=128x256&frames=200", "--realtime"),
        *("--fps", "20", "--engines", str(tiny_engines), "--sink", "-", "--sink", str(objects)),
        *("--stuck-sink", "skip"),
    ]
    env = {**CLI_ENV, "NOTIFY_SOCKET": systemd_socket.sock.getsockname(), "WATCHDOG_USEC": "1000000"}
    run = subprocess.Popen(argv, cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE, text=True, env=env)
    os.close(write_end)
    got: list[str] = []
    try:
        skipping = "(skipped while stuck: sink '-' has been writing frame "

        def skipped() -> bool:
            got.extend(systemd_socket.messages())
            return any(skipping in m for m in got)

        assert until(skipped, timeout_s=60)
        time.sleep(1.5)  # two looks or more while it is skipped
        lines: list[str] = []

        def read_to_the_end() -> None:
            with os.fdopen(read_end) as reader:
                lines.extend(reader.read().splitlines())

        # the pipe read to its end while the notify socket is drained: its queue holds 10
        # datagrams, and a run whose notifications find it full drops them
        reading = threading.Thread(target=read_to_the_end, daemon=True)
        reading.start()
        deadline = time.monotonic() + 90  # a run that hangs fails in communicate, and is killed
        while reading.is_alive() and time.monotonic() < deadline:
            got.extend(systemd_socket.messages())
            reading.join(0.1)
        _, said = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    got.extend(systemd_socket.messages())
    assert run.returncode == 0, said
    assert not any(m.startswith("STATUS=stuck: ") for m in got), got
    assert sum(m.startswith("WATCHDOG=1\nSTATUS=frame ") and skipping in m for m in got) >= 2, got
    assert said.count("warning: sink '-' has been writing frame ") == 1
    assert "the run goes on without it, its frames skipped (--stuck-sink skip)" in said
    assert "sink '-' is writing again (its frames were skipped while it was stuck)" in said
    written = objects.read_text().splitlines()
    assert len(written) > len(lines) + 10 and re.search(r"sink '-' skipped \d+ frame\(s\)", said), said


def test_edge_record_under_systemd_says_ready_and_feeds_the_watchdog(
    systemd_socket: Listener,  # noqa: F811
    tmp_path: Path,
) -> None:
    from tests.stream.test_capture import Camera as MJPEGCamera

    camera = MJPEGCamera(fps=30)
    try:
        done, got = edge_under_systemd(
            systemd_socket, "record", camera.url, str(tmp_path / "drive.mkv"), "--duration", "3"
        )
    finally:
        camera.unplug()
    assert "warning: the watchdog period is 1 s (WatchdogSec=)" in done.stderr
    assert got[0].startswith("READY=1\nSTATUS=recording: 0 frames")
    assert sum(m.startswith("WATCHDOG=1\nSTATUS=recording: ") for m in got) >= 3, got
    assert not any("stuck" in m for m in got)
    assert got[-1] == "STOPPING=1\nSTATUS=finishing the outputs"


def test_a_run_killed_by_the_watchdog_leaves_where_its_threads_were(
    tiny_engines: Path,
    systemd_socket: Listener,  # noqa: F811
) -> None:
    """systemd kills a run that starved its watchdog with SIGABRT: the journal then holds
    each thread's stack (faulthandler), the call that hung among them."""
    import signal

    env = {**CLI_ENV, "NOTIFY_SOCKET": systemd_socket.sock.getsockname()}
    run = subprocess.Popen(
        [
            *(sys.executable, "-m", "edge.cli", "run", "synthetic://?size=128x256", "--realtime"),
            *("--fps", "10", "--engines", str(tiny_engines), "--sink", "null://"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert until(lambda: any(m.startswith("READY=1") for m in systemd_socket.messages()), timeout_s=120)
        time.sleep(1.0)  # frames flowing through every stage
        run.send_signal(signal.SIGABRT)
        _, said = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == -signal.SIGABRT
    assert "Fatal Python error: Aborted" in said
    assert said.count("Thread 0x") >= 4, said  # the stages' threads, each with its stack
    assert "edge/stream/pipeline.py" in said


def test_outside_systemd_a_stuck_run_still_says_so(
    tiny_engines: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No $NOTIFY_SOCKET (a terminal, a container): nothing is sent, and a sink held past
    STUCK_AFTER_S (here 0.5 s, looked at every 0.25 s) is said, once, as is its recovery."""
    import edge.stream.watchdog as watchdog_module

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.setattr(watchdog_module, "STUCK_AFTER_S", 0.5)
    monkeypatch.setattr(watchdog_module, "LOOK_EVERY_S", 0.25)
    held_run(tiny_engines, frames=40, held_s=2.0, every_s=0.25)
    said = capsys.readouterr().err
    assert said.count("warning: the run is stuck: ") == 1
    assert "nothing restarts it here (a systemd service with WatchdogSec= would be)" in said
    assert "the run is making progress again" in said


def test_a_write_the_disk_does_not_answer_waits_in_the_kernel_past_a_kill(slow_disk: SlowDisk) -> None:
    """A process flushing 512 KiB to a disk that stores 128 KiB/s: its thread waits inside the
    kernel (state D), which waiting_in_kernel counts, and a SIGKILL does not end it until
    the disk has stored the lot: why a stuck run's restart waits for its disk."""
    import signal

    # It says when its data is in the cache and the flush begins: a thread of a starting
    # Python, or one whose write the kernel slows, is also in state D for a moment, but a
    # kill ends those waits (CI once killed it there).
    flush = (
        "import os, sys; f = open(sys.argv[1], 'wb'); f.write(os.urandom(1 << 19)); f.flush(); "
        "print('flushing', flush=True); os.fsync(f.fileno())"
    )
    argv = slow_disk.command([sys.executable, "-c", flush, str(slow_disk.path / "f")])
    writer = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "flushing\n"
        assert until(lambda: waiting_in_kernel(writer.pid) >= 1, timeout_s=5.0)
        writer.send_signal(signal.SIGKILL)
        time.sleep(1.0)
        # a second after the kill it is still there, waiting in the kernel for the disk
        assert writer.poll() is None and waiting_in_kernel(writer.pid) >= 1
        assert writer.wait(timeout=30) == -signal.SIGKILL
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert waiting_in_kernel(os.getpid()) == 0 and waiting_in_kernel(2**22 + 7) == 0
