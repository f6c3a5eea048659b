"""Live capture over a real network stream: an MJPEG server on 127.0.0.1 (the viewer's own
server, fed by a thread) that the tests stop and start again, read by OpenCV's FFmpeg."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge.errors import SourceError
from edge.stream.capture import LiveCapture
from edge.stream.engines import EngineSet
from edge.stream.pipeline import Pipeline
from edge.stream.sinks import NullSink
from edge.stream.sources import open_source
from edge.viewer.server import ViewerServer

BITS = 12


def barcode(seq: int, size: tuple[int, int] = (64, 192)) -> np.ndarray:
    """``seq`` as 12 black/white bars: survives JPEG, read back by ``read_barcode``."""
    h, w = size
    img = np.zeros((h, w, 3), np.uint8)
    bar = w // BITS
    for bit in range(BITS):
        if seq >> bit & 1:
            img[:, bit * bar : (bit + 1) * bar] = 255
    return img


def read_barcode(img: np.ndarray) -> int:
    bar = img.shape[1] // BITS
    return sum(1 << b for b in range(BITS) if img[:, b * bar + bar // 2].mean() > 127)


class Camera:
    """A network camera: a real HTTP MJPEG server publishing numbered frames at ``fps``."""

    def __init__(self, port: int = 0, fps: float = 30.0, start_seq: int = 0, noise: bool = False) -> None:
        """``noise``: pictures of noise under the bars, which compress as little as a real
        scene's (a video of bars alone stays in FFmpeg's write buffer for seconds)."""
        self.server = ViewerServer(port=port)
        self._noise = np.random.default_rng(0).integers(0, 256, (64, 192, 3), np.uint8) if noise else None
        self.server.start()
        self.port = self.server.port
        self.seq = start_seq
        self._stop = threading.Event()
        self.stalled = threading.Event()  # connected, but no frames: a hung camera
        self.published: dict[int, int] = {}  # each frame's number: when it was sent (perf_counter_ns)
        self._fps = fps
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.stalled.is_set():
                picture = barcode(self.seq)
                if self._noise is not None:
                    picture[16:] = np.roll(self._noise, self.seq, axis=1)[16:]
                self.published[self.seq] = time.perf_counter_ns()
                self.server.publish(self.seq, {"composite": picture})
                self.seq += 1
            time.sleep(1.0 / self._fps)

    def unplug(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.close()


class EveryFrameCamera:
    """A network camera that sends its one client every frame it makes, in order, on its own
    clock (a frame it is late with goes at once), as an IP camera streams. Camera's server is
    the viewer's, which sends the newest frame: on a loaded machine it skips some, holes in
    the barcodes that no reader could count; here a hole is a frame the reader dropped."""

    def __init__(self, fps: float = 30.0) -> None:
        import http.server

        import cv2

        stop = self._stop = threading.Event()

        class Stream(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                start = time.monotonic()
                with contextlib.suppress(ConnectionError):
                    for seq in itertools.count():
                        if stop.is_set():
                            break
                        jpeg = cv2.imencode(".jpg", barcode(seq))[1].tobytes()
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                        self.wfile.write(head.encode() + jpeg + b"\r\n")  # blocks while the reader is behind
                        time.sleep(max(0.0, start + (seq + 1) / fps - time.monotonic()))

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stream)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def unplug(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


def test_stream_frames_are_newest_first_and_timestamped() -> None:
    cam = Camera(fps=100)
    src = open_source(cam.url)
    try:
        assert isinstance(src, LiveCapture) and src.live
        first = src.read()
        assert first is not None and first.image.shape == (64, 192, 3)
        time.sleep(0.5)  # a slow consumer: the capture thread keeps only the newest frame
        late = src.read()
        assert late is not None and late.t_capture_ns > first.t_capture_ns
        assert late.meta["dropped_before"] > 10, "frames replaced while we slept are counted"
        behind = cam.seq - read_barcode(late.image)
        assert behind < 15, f"the frame handed over is recent, not queued ({behind} behind)"
        seqs = []
        for _ in range(5):
            frame = src.read()
            assert frame is not None
            seqs.append(read_barcode(frame.image))
        assert seqs == sorted(set(seqs)) and seqs[0] > read_barcode(late.image)
        assert src.drops >= late.meta["dropped_before"]
    finally:
        src.close()
        cam.unplug()


def test_reconnects_after_the_stream_disappears(capfd: pytest.CaptureFixture[str]) -> None:
    cam = Camera(fps=30)
    port = cam.port
    src = open_source(cam.url)
    try:
        assert src.read() is not None
        cam.unplug()
        outage = time.monotonic()
        time.sleep(1.0)
        cam = Camera(port=port, fps=30, start_seq=1000)  # the camera comes back on the same address
        deadline = time.monotonic() + 30
        while True:
            frame = src.read()
            assert frame is not None and time.monotonic() < deadline
            if "gap_ms" in frame.meta:
                break
        assert read_barcode(frame.image) >= 1000, "frames come from the camera that came back"
        assert frame.meta["gap_ms"] >= 900, frame.meta
        assert frame.meta["gap_ms"] <= (time.monotonic() - outage) * 1e3 + 50
        assert isinstance(src, LiveCapture) and src.reconnects == 1
        err = capfd.readouterr().err
        assert "stopped delivering frames; reconnecting" in err and "is back after" in err
    finally:
        src.close()
        cam.unplug()


def test_gives_up_after_the_reconnect_timeout() -> None:
    cam = Camera(fps=30)
    src = open_source(cam.url, reconnect_timeout_s=1.0)
    try:
        assert src.read() is not None
        cam.unplug()
        start = time.monotonic()
        with pytest.raises(SourceError, match="did not come back within 1 s"):
            while src.read() is not None:
                pass
        assert time.monotonic() - start < 15
    finally:
        src.close()


def test_close_stops_a_capture_that_is_reconnecting() -> None:
    cam = Camera(fps=30)
    src = open_source(cam.url)
    assert src.read() is not None
    cam.unplug()
    time.sleep(0.5)
    start = time.monotonic()
    src.close()
    assert time.monotonic() - start < 5
    assert src.read() is None


class SlowSink(NullSink):
    """A consumer slower than the camera by construction, whatever this machine's speed."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self._seconds = seconds

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        time.sleep(self._seconds)
        super().write(image, seq)


def test_pipeline_counts_the_gap_and_drops(tiny_engines: Path) -> None:
    """A camera that disappears mid-run: the run goes on, the summary says what was lost."""
    cam = Camera(fps=60)
    port = cam.port
    src = open_source(cam.url)
    cams = [cam]

    def flap() -> None:
        time.sleep(1.0)
        cams[0].unplug()
        time.sleep(1.0)
        cams.append(Camera(port=port, fps=60, start_seq=5000))

    engines = EngineSet.from_manifest(tiny_engines, engine_options={"intra_op_threads": 1})
    flapper = threading.Thread(target=flap, daemon=True)
    # the first camera serves about 60 frames before it is unplugged at 1 s; 150 frames
    # guarantees the run outlives the unplug and reads from the second camera
    pipeline = Pipeline(source=src, engines=engines, sinks=[SlowSink(0.05)], max_frames=150)
    flapper.start()
    try:
        summary = pipeline.run()
    finally:
        engines.close()
        flapper.join()
        cams[-1].unplug()
    assert summary["reconnects"] == 1 and summary["source_gap_ms"] >= 900
    assert summary["drops"] > 0, "a 60 fps camera outruns a consumer of 20 frames a second"
    assert summary["frames_in"] == summary["frames_out"] + summary["drops"]


def test_a_cameras_video_plays_in_real_time(tiny_engines: Path, tmp_path: Path) -> None:
    """``edge run CAMERA --sink cam.avi?view=input``: the engines process fewer frames than
    the camera sends, and the video shows each processed one from its capture time to the
    next. Read back by barcode, the video's runs of one frame are the gaps between capture
    times (from the latency log) in periods of the video's rate."""
    import json

    import cv2

    from edge.stream import run_stream

    cam = Camera(fps=30)
    try:
        summary = run_stream(
            cam.url,
            engines=tiny_engines,
            sinks=[f"{tmp_path / 'cam.avi'}?view=input"],
            max_frames=12,  # frames read from the camera, dropped ones included
            threads=1,
            latency_log=tmp_path / "latency.jsonl",
        ).summary()
    finally:
        cam.unplug()
    spans = [json.loads(line) for line in (tmp_path / "latency.jsonl").read_text().splitlines()]
    captured = sorted(s["start_ns"] for s in spans if s["stage"] == "end_to_end")
    assert len(captured) == summary["frames_out"] >= 3
    cap = cv2.VideoCapture(str(tmp_path / "cam.avi"))
    fps = cap.get(cv2.CAP_PROP_FPS)
    shown = []
    while True:
        ok, picture = cap.read()
        if not ok:
            break
        shown.append(read_barcode(picture))
    runs = [1]  # how many pictures in a row show one camera frame
    for before, now in itertools.pairwise(shown):
        assert now >= before, "the video goes forward in the camera's time"
        if now == before:
            runs[-1] += 1
        else:
            runs.append(1)
    periods = [round((t - captured[0]) * fps / 1e9) for t in captured]
    kept = [p for p, after in zip(periods, [*periods[1:], None], strict=True) if p != after]  # newer wins
    assert runs == [b - a for a, b in itertools.pairwise(kept)] + [1]
    assert len(shown) == kept[-1] + 1, "the video lasts as long as the run, at its own rate"


def test_stop_ends_a_run_whose_camera_has_stalled(
    tiny_engines: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The camera stays connected but sends nothing (the capture stage waits in read) when
    the run is stopped: stop() wakes that read. Before, run() waited until the camera
    delivered again, and after Ctrl-C the capture stage was left 'not stopped', open."""
    cam = Camera(fps=30)
    src = open_source(cam.url)
    engines = EngineSet.from_manifest(tiny_engines, engine_options={"intra_op_threads": 1})
    first = threading.Event()
    pipeline = Pipeline(source=src, engines=engines, sinks=[NullSink()], on_result=lambda r: first.set())

    def stall_then_stop() -> None:
        first.wait(timeout=60)
        cam.stalled.set()
        time.sleep(1.0)  # the newest frame is long consumed: the capture stage waits for one
        pipeline.stop()
        # the camera comes back by itself later: long enough for the capture thread to end
        # its read of the stalled stream (OpenCV's 5 s read timeout) and close, and the end
        # of a run that, before the fix, waited for the camera
        time.sleep(8.0)
        cam.stalled.clear()

    stopper = threading.Thread(target=stall_then_stop, daemon=True)
    stopper.start()
    try:
        summary = pipeline.run()
        ended_while_stalled = cam.stalled.is_set()
    finally:
        engines.close()
        cam.unplug()
    assert summary["frames_out"] >= 1
    assert ended_while_stalled, "the run waited for the camera to deliver again"
    assert "did not stop" not in capfd.readouterr().err
    assert src.read() is None


def test_closing_a_camera_stuck_in_a_read_says_so(capfd: pytest.CaptureFixture[str]) -> None:
    """A read that outlasts close()'s wait (here 0.3 s against OpenCV's 5 s read timeout on
    a stalled stream) is reported instead of returning as if the camera were released."""
    cam = Camera(fps=30)
    src = open_source(cam.url)
    assert isinstance(src, LiveCapture)
    src.CLOSE_WAIT_S = 0.3
    try:
        assert src.read() is not None
        cam.stalled.set()
        time.sleep(1.0)  # the capture thread is now waiting inside OpenCV's read
        src.close()
        err = capfd.readouterr().err
    finally:
        cam.unplug()  # ends that read: the thread releases the camera and ends
    assert f"camera {cam.url!r} is still inside a read 0.3 s after it was closed" in err
    src._thread.join(timeout=10)
    assert not src._thread.is_alive()


def test_a_cameras_run_keeps_the_files_of_an_earlier_one_unless_asked(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``edge run CAMERA --sink drive.avi --sink objects.jsonl`` twice: the first run's
    files cannot be made again from the camera, so the second is refused before it writes
    anything; --overwrite replaces them. A file's run replaces them without asking."""
    from edge.cli import main

    video, objects = tmp_path / "drive.avi", tmp_path / "objects.jsonl"
    video.write_bytes(b"an earlier drive")
    objects.write_text('{"seq": 0}\n')
    cam = Camera(fps=30)
    try:
        run = ["run", cam.url, "--engines", str(tiny_engines), "--threads", "1", "--max-frames", "3"]
        assert main([*run, "--sink", str(objects), "--sink", str(video)]) == 2
        err = capsys.readouterr().err
        assert f"error: sink {str(objects)!r}: {str(objects)!r} already exists (11 bytes, written " in err
        assert "and it is kept: give another name, move it away, or add --overwrite to replace it" in err
        assert video.read_bytes() == b"an earlier drive" and objects.read_text() == '{"seq": 0}\n'
        assert sorted(p.name for p in tmp_path.iterdir()) == ["drive.avi", "objects.jsonl"]
        assert main([*run, "--sink", str(objects), "--sink", str(video), "--overwrite"]) == 0
    finally:
        cam.unplug()
    import cv2

    assert len(objects.read_text().splitlines()) >= 1
    assert int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)) >= 1
    from_a_file = ["run", "synthetic://?size=64x128&frames=2", "--engines", str(tiny_engines)]
    assert main([*from_a_file, "--threads", "1", "--sink", str(objects)]) == 0
    assert len(objects.read_text().splitlines()) == 2


def test_a_cameras_run_writes_over_empty_files_without_asking(tiny_engines: Path, tmp_path: Path) -> None:
    """Empty files hold nothing an earlier run could lose (made by touch, or a shell's >):
    a camera's run writes its video and objects over them without --overwrite."""
    import cv2

    from edge.cli import main

    video, objects = tmp_path / "drive.avi", tmp_path / "objects.jsonl"
    video.touch()
    objects.touch()
    cam = Camera(fps=30)
    try:
        run = ["run", cam.url, "--engines", str(tiny_engines), "--threads", "1", "--max-frames", "3"]
        assert main([*run, "--sink", str(objects), "--sink", str(video)]) == 0
    finally:
        cam.unplug()
    assert len(objects.read_text().splitlines()) >= 1
    assert int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)) >= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drive.avi", "objects.jsonl"]
