"""edge record writes each sink on a thread of its own (edge.stream.writers), with its own
rules: every recording sink gets every recorded frame, a window that falls behind a camera
skips frames, and a failed write ends the recording. Real cameras (an HTTP MJPEG server),
real videos and folders; the window, which needs a screen, is a stand-in sink."""

from __future__ import annotations

import itertools
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import Interrupted, RecordingStopped
from edge.stream.record import DEPTH, format_summary, record
from edge.stream.sinks import NullSink
from edge.stream.timestamps import folder_timestamps_path
from tests.stream.test_capture import Camera, EveryFrameCamera, read_barcode
from tests.stream.test_sources_sinks import write_video
from tests.util.test_systemd import Listener, systemd_socket  # noqa: F401  (a fixture)

HOLD_S = 30.0  # how long a sink waits for what it waits for before the test fails


class Window(NullSink):
    """A window on a slow screen (``for_watching``, as display:// is): each write takes
    ``delay_s``; ``until``: its first write waits for it, as a window being dragged."""

    def __init__(
        self, uri: str = "display://", *, delay_s: float = 0.0, until: Callable[[], bool] | None = None
    ) -> None:
        super().__init__(uri)
        self.seqs: list[int] = []
        self.spans: list[tuple[float, float]] = []  # each write's (start, end), time.monotonic()
        self._delay_s, self._until = delay_s, until

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        start = time.monotonic()
        if not self.seqs and self._until is not None:
            while not self._until():
                if time.monotonic() - start > HOLD_S:
                    raise AssertionError(f"{self.uri}: what it waited for never came: it holds the recording")
                time.sleep(0.01)
        time.sleep(self._delay_s)
        self.seqs.append(seq)
        self.frames += 1
        self.spans.append((start, time.monotonic()))


class Recorder(Window):
    """A sink that keeps what it is given (as a video or a folder does): never skipped."""

    for_watching = False


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("frame_*.png"))


def test_a_window_behind_the_camera_skips_frames_and_holds_up_no_recording(tmp_path: Path) -> None:
    """The window's first write lasts until the folder holds 6 frames: written one after the
    other, the folder would never get there. The folder has every frame the camera gave
    (holes only where the summary counts drops); the window, those it kept up with."""
    folder = tmp_path / "frames"
    window = Window(until=lambda: len(pngs(folder)) >= 6, delay_s=0.02)
    camera = EveryFrameCamera(fps=30.0)
    try:
        summary = record(camera.url, [f"dir://{folder}", window], max_frames=16, fps=30.0)
    finally:
        camera.unplug()
    seqs = [read_barcode(cv2.imread(str(p))) for p in pngs(folder)]
    assert len(seqs) == summary["frames"] == 16
    gaps = sum(b - a - 1 for a, b in itertools.pairwise(seqs))
    assert all(b > a for a, b in itertools.pairwise(seqs)) and gaps <= summary["dropped"]
    skipped = summary["sinks_skipped"]["display://"]
    assert skipped > 0 and len(window.seqs) + skipped == 16
    assert window.seqs == sorted(window.seqs) and set(window.seqs) <= set(range(16))
    assert summary["sinks_frames"] == {f"dir://{folder}": 16, "display://": len(window.seqs)}
    line = format_summary(summary)
    assert f"display:// skipped {skipped} frame(s), slower than the camera (the recording has them)" in line
    assert "the sinks hold" not in line


def test_a_slow_recording_sink_is_never_skipped_the_camera_drops_instead(tmp_path: Path) -> None:
    """A sink that keeps frames sets the recording's pace: it and the folder both get every
    recorded frame, and the frames the camera gave meanwhile are counted as dropped."""
    folder = tmp_path / "frames"
    slow = Recorder("slow://", delay_s=0.1)
    camera = EveryFrameCamera(fps=30.0)
    try:
        summary = record(camera.url, [f"dir://{folder}", slow], max_frames=8, fps=30.0)
    finally:
        camera.unplug()
    assert slow.seqs == list(range(8)) and len(pngs(folder)) == summary["frames"] == 8
    assert summary["sinks_skipped"] == {}
    seqs = [read_barcode(cv2.imread(str(p))) for p in pngs(folder)]
    gaps = sum(b - a - 1 for a, b in itertools.pairwise(seqs))
    # 100 ms a frame against the camera's 33; the count may also hold frames dropped before
    # the first one was recorded, and never more than the camera gave up to the last one
    assert 0 < gaps <= summary["dropped"] <= seqs[-1] + 1 - len(seqs), (summary["dropped"], seqs)


def test_a_files_sinks_write_at_the_same_time(tmp_path: Path) -> None:
    """Two slow sinks recording a file are inside writes at once (before, one after the
    other), and each gets every frame, in order."""
    write_video(tmp_path / "in.mp4", 6)
    a, b = Recorder("a://", delay_s=0.05), Recorder("b://", delay_s=0.05)
    summary = record(str(tmp_path / "in.mp4"), [a, b])
    assert a.seqs == b.seqs == list(range(6)) and summary["frames"] == 6
    assert any(s < f and t < e for (s, e), (t, f) in itertools.product(a.spans, b.spans))


class QuitWindow(Window):
    """A window in which q is pressed after it showed frame ``at`` (as DisplaySink raises)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self._at = at

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        super().write(image, seq, t_capture_ns)
        if seq == self._at:
            raise KeyboardInterrupt


def test_q_in_a_window_ends_the_recording_as_ctrl_c_does(tmp_path: Path) -> None:
    """Every frame handed to the sinks before the stop is in the video and the window, and
    counted; the video is finished and playable. The video's thread may have written the
    next frame while the window's raised (as where a sink fails): the summary's sinks_frames
    says what the video holds (a CI run on a fast machine saw 5 beside the window's 4)."""
    window = QuitWindow(at=3)
    video = tmp_path / "rec.avi"
    with pytest.raises(Interrupted) as caught:
        record("synthetic://?size=64x128&frames=200", [str(video), window], fps=10.0)
    summary = caught.value.data
    frames = summary["frames"]
    assert summary["interrupted"] and 4 <= frames < 200
    assert window.seqs == list(range(frames))
    held = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)
    assert held == summary["sinks_frames"][str(video)] and frames <= held <= frames + DEPTH, summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.avi"]


class BrokenRecorder(Recorder):
    """A sink whose disk fails at frame ``at``."""

    def __init__(self, at: int) -> None:
        super().__init__("broken://")
        self._at = at

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        if seq == self._at:
            raise OSError(5, "Input/output error")
        super().write(image, seq, t_capture_ns)


def test_a_failed_write_ends_the_recording_and_says_what_each_sink_holds(tmp_path: Path) -> None:
    """The frames written by every sink are counted; the folder, written at the same time,
    may hold a few more, and the summary says so instead of hiding them."""
    folder = tmp_path / "frames"
    failed = "sink 'broken://' failed at frame 5: .*Input/output error"
    with pytest.raises(RecordingStopped, match=failed) as caught:
        record("synthetic://?size=64x128&frames=40", [f"dir://{folder}", BrokenRecorder(at=5)])
    summary = caught.value.data
    assert summary["frames"] == 5 and not summary["interrupted"]
    held = len(pngs(folder))
    assert summary["sinks_frames"] == {f"dir://{folder}": held, "broken://": 5}
    assert 5 <= held < 40
    said = format_summary(summary)
    assert said.startswith("recorded 5 frames")
    assert (f"the sinks hold dir://{folder} {held}, broken:// 5" in said) == (held > 5)


class BuggySink(Recorder):
    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        raise TypeError("a bug")


def test_a_bug_in_a_sink_is_raised_and_every_sink_is_closed(tmp_path: Path) -> None:
    video = tmp_path / "rec.avi"
    closed = threading.Event()
    buggy = BuggySink("buggy://")
    buggy.close = closed.set  # type: ignore[method-assign]
    with pytest.raises(TypeError, match="a bug"):
        record("synthetic://?size=64x128&frames=40", [str(video), buggy], fps=10.0)
    assert closed.is_set()
    assert video.exists(), "the video was finished on the way out"


class HeldSink(Window):
    """A sink whose first write is held for ``held_s`` (a window that hangs, or, marked as
    keeping frames, a disk that stops answering), or until ``release`` is set."""

    def __init__(self, uri: str, *, for_watching: bool, held_s: float = HOLD_S) -> None:
        self.release = threading.Event()
        super().__init__(uri, until=self.release.is_set)
        self.for_watching = for_watching
        self.released_at = float("inf")  # time.time() when released

        def released() -> None:
            self.released_at = time.time()
            self.release.set()

        timer = threading.Timer(held_s, released)
        timer.daemon = True  # a test that released it itself does not wait for it at exit
        timer.start()


@pytest.mark.parametrize("for_watching", [True, False], ids=["window", "recording"])
def test_a_hung_window_holds_neither_the_recording_nor_the_watchdog(
    tmp_path: Path,
    systemd_socket: Listener,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    for_watching: bool,
) -> None:
    """Under systemd with a 1 s watchdog: a window that hangs for 2.5 s beside a camera's
    recording does not hold the run, so the watchdog is fed and the folder goes on, and its
    hang is said (the recording goes on without it) as its writing again is; a sink that
    keeps frames held as long holds the recording, which is said to be stuck."""
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a look every 0.5 s, stuck after 0.5 s
    folder = tmp_path / "frames"
    held = HeldSink("held://", for_watching=for_watching, held_s=2.5)
    camera = Camera(fps=30.0)
    try:
        # 1.5 s past the release: the watch's next look (0.5 s) says the window writes again
        summary = record(camera.url, [f"dir://{folder}", held], duration_s=4.0, fps=30.0)
    finally:
        camera.unplug()
    got = systemd_socket.messages()
    # the camera's first frame, which the held sink is held in: frame 0 unless the camera's
    # capture thread replaced it before it was read (a loaded machine)
    stuck = [m for m in got if re.match(r"STATUS=stuck: sink 'held://' has been writing frame \d+ for", m)]
    fed = sum(m.startswith("WATCHDOG=1\n") for m in got)
    err = capsys.readouterr().err
    if for_watching:
        assert not stuck and fed >= 5, got
        assert summary["sinks_skipped"]["held://"] > 0 and summary["frames"] == len(pngs(folder)) > 30
        assert re.search(r"warning: sink 'held://' has been writing frame \d+ for", err), err
        assert "its frames skipped (a sink for watching, behind the camera)" in err
        assert "sink 'held://' is writing again" in err and "the run is stuck" not in err
    else:
        assert stuck, got
        stuck_said = r"warning: the run is stuck: sink 'held://' has been writing frame \d+ for"
        assert re.search(stuck_said, err), err
        assert "held://" not in summary["sinks_skipped"] and summary["frames"] == len(held.seqs)


def test_stuck_sink_skip_records_on_in_the_other_sinks(
    tmp_path: Path,
    systemd_socket: Listener,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--stuck-sink skip: a sink that keeps frames, stuck in a write for 2.5 s, is said and
    skipped once the watch calls it stuck; the folder records on meanwhile, the watchdog is
    fed, and the stuck sink writes on afterwards, its holes counted."""
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a look every 0.5 s, stuck after 0.5 s
    folder = tmp_path / "frames"
    held = HeldSink("held://", for_watching=False, held_s=2.5)
    camera = Camera(fps=30.0)
    try:
        summary = record(
            camera.url, [f"dir://{folder}", held], duration_s=4.0, fps=30.0, skip_stuck_sinks=True
        )
    finally:
        camera.unplug()
    got = systemd_socket.messages()
    assert not any(m.startswith("STATUS=stuck: ") for m in got), got
    assert sum(m.startswith("WATCHDOG=1\n") for m in got) >= 4, got  # 8 looks, 1-2 before the skip
    written_while_held = [p for p in pngs(folder) if p.stat().st_mtime < held.released_at]
    assert len(written_while_held) > 20, "the folder recorded on while the other sink was stuck"
    skipped = summary["sinks_skipped"]["held://"]
    assert skipped > 0 and len(held.seqs) + skipped == summary["frames"] == len(pngs(folder))
    assert len(held.seqs) > 1, "it writes on once its disk answers"
    err = capsys.readouterr().err
    assert re.search(r"warning: sink 'held://' has been writing frame \d+ for", err), err
    assert "the run goes on without it, its frames skipped (--stuck-sink skip)" in err
    assert "sink 'held://' is writing again" in err
    line = format_summary(summary)
    assert f"held:// skipped {skipped} frame(s), while stuck inside a write (--stuck-sink skip)" in line


def test_a_recording_that_ends_by_itself_leaves_a_skipped_stuck_sink_open(
    tmp_path: Path,
    systemd_socket: Listener,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--stuck-sink skip and --duration: the recording's end finishes the folder and waits
    STOP_TIMEOUT_S at most for the sink it was skipping, still stuck, which it leaves open,
    rather than wait for a dead disk for ever with the folder unfinished."""
    import edge.stream.record as record_module

    monkeypatch.setattr(record_module, "STOP_TIMEOUT_S", 0.5)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a look every 0.5 s, stuck after 0.5 s
    folder = tmp_path / "frames"
    held = HeldSink("held://", for_watching=False, held_s=60.0)
    closed = threading.Event()
    held.close = closed.set  # type: ignore[method-assign]
    camera = Camera(fps=30.0)
    try:
        summary = record(
            camera.url, [f"dir://{folder}", held], duration_s=2.0, fps=30.0, skip_stuck_sinks=True
        )
        ended_stuck = not held.release.is_set()
    finally:
        held.release.set()
        camera.unplug()
    assert ended_stuck, "the recording ended while the sink was still inside its write"
    assert not closed.is_set(), "and did not close it under that write"
    # counted: the frames every sink wrote or skipped; the frames the stuck sink still holds
    # (the one inside its write, one queued) are in the folder only, as the summary says
    assert summary["sinks_frames"][f"dir://{folder}"] == len(pngs(folder)) > 20
    assert folder_timestamps_path(folder).exists(), "the folder was finished: its capture times are in place"
    assert summary["sinks_frames"]["held://"] == 0 and summary["sinks_skipped"]["held://"] > 0
    assert f"the sinks hold dir://{folder} {len(pngs(folder))}" in format_summary(summary)
    err = capsys.readouterr().err
    assert "warning: sink 'held://' has been inside the write of frame 0 for" in err
    assert "it is left open (a disk that stopped answering?)" in err


def test_ctrl_c_finishes_the_other_sinks_and_leaves_one_stuck_in_a_write_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sink on a disk that stopped answering, then Ctrl-C: the frame waiting for it goes
    no further after STOP_TIMEOUT_S, nor does the end wait longer for it; the video is
    finished and the recording ends with its summary; the stuck sink is not closed under
    its write (a video would crash inside OpenCV), and says so."""
    import edge.stream.record as record_module

    monkeypatch.setattr(record_module, "STOP_TIMEOUT_S", 0.5)
    stuck = HeldSink("stuck://", for_watching=False)
    closed = threading.Event()
    stuck.close = closed.set  # type: ignore[method-assign]
    video = tmp_path / "rec.avi"
    threading.Timer(1.0, signal.raise_signal, (signal.SIGINT,)).start()
    try:
        with pytest.raises(Interrupted) as caught:
            record("synthetic://?size=64x128", [str(video), stuck], fps=10.0)
    finally:
        stuck.release.set()
    summary = caught.value.data
    assert summary["interrupted"] and summary["frames"] == 0  # the stuck sink wrote none
    assert not closed.is_set()
    in_video = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)
    assert in_video == summary["sinks_frames"][str(video)] > 0
    err = capsys.readouterr().err
    assert "warning: sink 'stuck://' has been inside the write of frame 0 for" in err
    assert "it is left open (a disk that stopped answering?)" in err


def test_the_viewer_serves_the_frames_being_recorded(tmp_path: Path) -> None:
    """The web viewer beside a camera's recording: a real HTTP client gets the newest
    frame (one of those recorded) and statistics that say it holds the picture alone."""
    from edge.viewer.sink import ViewerSink
    from tests.viewer.helpers import get, get_json

    viewer = ViewerSink("http://127.0.0.1:0", port=0)
    seen: dict[str, object] = {}

    def watch() -> None:  # while the recording goes on
        status, _, jpeg = get(viewer.url + "frame/composite.jpg?after=-1")
        seen["frame"] = (status, jpeg)
        seen["stats"] = get_json(viewer.url + "stats")

    folder = tmp_path / "frames"
    camera = Camera(fps=30.0)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        summary = record(camera.url, [f"dir://{folder}", viewer], max_frames=40, fps=30.0)
    finally:
        camera.unplug()
        watcher.join(timeout=HOLD_S)
    status, jpeg = seen["frame"]  # type: ignore[misc]
    assert status == 200
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    recorded = [read_barcode(cv2.imread(str(p))) for p in pngs(folder)]
    assert picture.shape == (64, 192, 3) and read_barcode(picture) in recorded
    stats = seen["stats"]
    assert stats["pictures_only"] is True and stats["engines"] == {}  # type: ignore[index]
    assert (
        summary["frames"] == 40
        and summary["sinks_frames"][viewer.uri] + summary["sinks_skipped"].get(viewer.uri, 0) == 40
    )


def test_edge_record_takes_stuck_sink_skip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main

    video = tmp_path / "rec.avi"
    assert main(["record", "synthetic://?size=64x128&frames=3", str(video), "--stuck-sink", "skip"]) == 0
    assert cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT) == 3
    assert capsys.readouterr().out.startswith("recorded 3 frames")
