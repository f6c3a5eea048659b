"""A .webm sink (VP8), the video a browser plays: OpenCV's writer makes it, nothing of its
container note reaches stderr, `edge record` turns a drive into one, a folder of them plays as
a drive, and a real Chromium plays it where it refuses edge's .mp4 (MPEG-4 part 2)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.stream.sinks import VIDEO_SUFFIXES, VideoSink
from edge.stream.sources import open_source
from tests.viewer.helpers import CHROMIUM, CHROMIUM_ARGS, NO_CHROMIUM, write_video


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (read := cap.read())[0]:
        frames.append(read[1])
    cap.release()
    return frames


def test_a_webm_sink_writes_vp8_frame_for_frame_and_says_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert VIDEO_SUFFIXES[".webm"] == "VP80"
    video = tmp_path / "clip.webm"
    sink = VideoSink(str(video), video, 10.0)
    levels = np.random.default_rng(0).permutation(np.arange(30, 240, 30))  # 7 levels 30 apart
    pictures = [np.full((64, 96, 3), v, np.uint8) for v in levels]
    for seq, picture in enumerate(pictures):
        sink.write(picture, seq)
    sink.close()
    cap = cv2.VideoCapture(str(video))
    codec = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    assert (codec, cap.get(cv2.CAP_PROP_FRAME_COUNT)) == ("VP80", 7)
    cap.release()
    back = _frames(video)
    assert len(back) == 7
    for got, sent in zip(back, pictures, strict=True):  # each in its place, through YUV and VP8's loss
        assert np.abs(got.astype(int) - sent).max() <= 6
    assert "OpenCV" not in capfd.readouterr().err  # its note on WebM's four-character codes is held back


def test_edge_record_turns_a_drive_into_a_webm_that_plays_back(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from edge.cli import main

    write_video(tmp_path / "drive.mp4", 12)
    assert main(["record", str(tmp_path / "drive.mp4"), str(tmp_path / "drive.webm")]) == 0
    err = capfd.readouterr().err
    assert "OpenCV" not in err and "warning" not in err
    assert len(_frames(tmp_path / "drive.webm")) == 12
    # a folder of .webm drives plays as one source, as a folder of .mkv ones does
    (tmp_path / "drives").mkdir()
    for name in ("a.webm", "b.webm"):
        (tmp_path / "drives" / name).write_bytes((tmp_path / "drive.webm").read_bytes())
    source = open_source(str(tmp_path / "drives"))
    try:
        assert source.declared_frames == 24
        assert sum(1 for _ in iter(source.read, None)) == 24
    finally:
        source.close()


@contextlib.contextmanager
def _served(folder: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 for ``folder``'s files: its address."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=NO_CHROMIUM)
def test_chromium_plays_the_webm_and_not_the_mp4(tmp_path: Path) -> None:
    """Why .webm is there: Chromium cannot decode what edge writes to .mp4 (MediaError 4,
    source not supported); the .webm it loads whole, at its size and length."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")
    pictures = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(6)]
    for name in ("clip.mp4", "clip.webm"):
        sink = VideoSink(name, tmp_path / name, 12.0)
        for seq, picture in enumerate(pictures):
            sink.write(picture, seq)
        sink.close()
    state = (
        "async (src) => { const v = document.createElement('video'); v.muted = true; v.src = src;"
        " document.body.append(v); await new Promise(done => { v.onloadeddata = v.onerror = done;"
        " setTimeout(done, 20000); });"
        " return {ready: v.readyState, width: v.videoWidth, duration: v.duration,"
        " error: v.error && v.error.code}; }"
    )
    with _served(tmp_path) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{url}/")
            webm = page.evaluate(state, f"{url}/clip.webm")
            mp4 = page.evaluate(state, f"{url}/clip.mp4")
        finally:
            browser.close()
    assert webm["error"] is None and webm["ready"] >= 2 and webm["width"] == 64
    assert webm["duration"] == pytest.approx(6 / 12.0, abs=0.05)
    assert mp4["error"] == 4 and mp4["ready"] == 0  # MEDIA_ERR_SRC_NOT_SUPPORTED


def test_a_camera_s_webm_is_warned_of_segmented_or_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pace warning is for every .webm video (a recording in segments too); the mp4 one only
    for a whole .mp4; no other sink is warned of (tests/stream/test_partial.py: a live recording)."""
    from edge.stream.segments import SegmentedVideoSink
    from edge.stream.sinks import open_sinks
    from edge.stream.video import warn_of_live_videos

    segmented = SegmentedVideoSink("drive.webm", tmp_path / "drive.webm", 10.0, segment_s=60)
    others = open_sinks(
        [str(tmp_path / "a.mp4"), str(tmp_path / "objects.jsonl"), f"dir://{tmp_path}/f.webm"], fps=10
    )
    try:
        warn_of_live_videos([segmented, *others])
    finally:
        for sink in [segmented, *others]:
            sink.close()
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[1] for line in err] == [
        repr(str(tmp_path / "drive.webm")),
        repr(str(tmp_path / "a.mp4")),
    ]
    assert "edge record drive.mkv drive.webm" in err[0]
