"""Capture times beside a recorded video: the file, and a video source that reads them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from edge.errors import SinkError, SourceError
from edge.stream.sources import LoopingSource, OpenCVSource, open_source
from edge.stream.timestamps import (
    HEADER,
    TimesFile,
    folder_timestamps_path,
    mean_rate,
    read_timestamps,
    recorded_since,
    timestamps_path,
)
from tests.stream.test_sources_sinks import write_video


def write_times(path: Path, times_ns: Sequence[int], *, origin_ns: int | None = None) -> None:
    """Capture times (time.perf_counter_ns) into ``path``, as a recording writes them (a
    segment's of a recording whose first frame was captured at ``origin_ns``)."""
    times = TimesFile(
        path.with_name(f".{path.name}.writing"),
        refused=lambda exc, what: SinkError(what),
        origin_ns=origin_ns,
    )
    for t_ns in times_ns:
        times.add(t_ns)
    times.finish(path)


def test_times_are_written_in_milliseconds_from_the_first_and_read_back(tmp_path: Path) -> None:
    path = timestamps_path(tmp_path / "drive.mp4")
    assert path.name == "drive.mp4.timestamps.txt"
    t0 = 7_000_000_000  # perf_counter_ns: any origin
    write_times(path, [t0, t0 + 33_366_667, t0 + 1_500_000_000, t0 + 1_500_000_000])
    assert path.read_text() == f"{HEADER}\n0.000\n33.367\n1500.000\n1500.000\n"
    assert read_timestamps(path, frames=4) == [0.0, 33.367, 1500.0, 1500.0]
    assert read_timestamps(path, frames=None) == [0.0, 33.367, 1500.0, 1500.0]
    assert not list(tmp_path.glob(".*")), "moved into place: no partial file is left"


@pytest.mark.parametrize(
    "text,frames,match",
    [
        ("0\n40\n", 2, "does not start with '# timestamp format v2' \\(it starts with '0'\\)"),
        ("", None, "does not start with"),
        (f"{HEADER}\n0\nforty\n", None, "line 3: 'forty' is not a time in milliseconds"),
        (f"{HEADER}\n0\n40\n30\n", None, "line 4: '30' goes back in time"),
        (f"{HEADER}\n-5\n", None, "line 2: '-5' goes back in time or is negative"),
        (f"{HEADER}\nnan\n", None, "line 2: 'nan' goes back in time"),
        (f"{HEADER}\n0\n40\n", 3, "holds 2 capture times and its recording 3 frames: it belongs to another"),
    ],
)
def test_bad_timestamps_files_say_what_is_wrong(
    tmp_path: Path, text: str, frames: int | None, match: str
) -> None:
    path = tmp_path / "v.mp4.timestamps.txt"
    path.write_text(text)
    with pytest.raises(SourceError, match=match):
        read_timestamps(path, frames=frames)


def test_comments_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4.timestamps.txt"
    path.write_text(f"{HEADER}\n# made by hand\n0\n\n12.5\n")
    assert read_timestamps(path, frames=2) == [0.0, 12.5]


def test_a_video_source_gives_each_frame_its_recorded_time(tmp_path: Path) -> None:
    video = tmp_path / "drive.mp4"
    write_video(video, 4)
    plain = open_source(str(video))
    frame = plain.read()
    assert frame is not None and "media_ms" not in frame.meta and getattr(plain, "timestamps", None) is None
    plain.close()
    timestamps_path(video).write_text(f"{HEADER}\n0\n40\n400\n440.5\n")
    src = open_source(str(video))
    assert isinstance(src, OpenCVSource) and src.timestamps_file == timestamps_path(video)
    assert src.skip()  # a skipped frame keeps the frames after it at their places
    times = []
    while (frame := src.read()) is not None:
        times.append(frame.meta["media_ms"])
    assert times == [40.0, 400.0, 440.5]
    looped = LoopingSource(open_source(str(video)))
    assert looped.timestamps == [0.0, 40.0, 400.0, 440.5]
    looped.close()


def test_a_timestamps_file_of_another_recording_is_refused(tmp_path: Path) -> None:
    video = tmp_path / "drive.mp4"
    write_video(video, 4)
    timestamps_path(video).write_text(f"{HEADER}\n0\n40\n")
    with pytest.raises(SourceError, match="2 capture times and its recording 4 frames.*remove or rename it"):
        open_source(str(video))


def test_a_folder_source_gives_each_image_its_recorded_time(tmp_path: Path) -> None:
    """timestamps.txt has one line per image file, undecodable ones included, in the order
    the folder is read; --realtime can pace such a folder without --fps."""
    import cv2
    import numpy as np

    from edge.stream.sources import pace_period

    for i in (0, 1, 3):
        cv2.imwrite(str(tmp_path / f"frame_{i:06d}.png"), np.full((16, 32, 3), 40 * i, np.uint8))
    (tmp_path / "frame_000002.png").write_bytes(b"not a png")
    folder_timestamps_path(tmp_path).write_text(f"{HEADER}\n0\n100\n")
    with pytest.raises(SourceError, match="holds 2 capture times and its recording 4 frames"):
        open_source(str(tmp_path)).read()
    folder_timestamps_path(tmp_path).write_text(f"{HEADER}\n0\n100\n200\n300\n")
    src = open_source(str(tmp_path))
    times = [f.meta["media_ms"] for f in iter(src.read, None)]
    assert times == [0.0, 100.0, 300.0]  # the undecodable third image's time is passed over
    assert mean_rate([0.0, 100.0, 200.0, 300.0]) == pytest.approx(10.0) and mean_rate([5.0]) is None
    assert pace_period(open_source(str(tmp_path)), realtime=True, fps=None) == pytest.approx(0.1)


def test_a_segment_says_where_it_began_in_its_recording(tmp_path: Path) -> None:
    """Its second line, a comment (mkvmerge skips lines that begin with '#', as edge does):
    its first frame's time after the recording's first, to the microsecond; a file without
    one, or with one that is no time, says nothing."""
    path = timestamps_path(tmp_path / "drive-00002.mkv")
    write_times(path, [61_500_000_000, 61_600_123_456], origin_ns=1_000_000_000)
    assert path.read_text() == (
        "# timestamp format v2\n# ms after the recording's first frame: 60500.000\n0.000\n100.123\n"
    )
    assert read_timestamps(path, frames=2) == [0.0, 100.123]
    assert recorded_since(path) == 60500.0
    plain = timestamps_path(tmp_path / "drive.mkv")
    write_times(plain, [5, 10])
    assert recorded_since(plain) is None and recorded_since(tmp_path / "none.txt") is None
    for bad in ("nan", "-3", "inf", "soon", ""):
        plain.write_text(f"# timestamp format v2\n# ms after the recording's first frame: {bad}\n0\n")
        assert recorded_since(plain) is None, bad


def test_a_power_cut_mid_line_leaves_the_whole_lines_and_says_whether_a_time_is_among_them(
    tmp_path: Path,
) -> None:
    """A segment's times cut in its first time: the header and where it began are kept, and no
    whole time is said to be left; cut in its second, the first is."""
    from edge.stream.timestamps import drop_cut_line

    path = tmp_path / "t.txt"
    since = "# ms after the recording's first frame: 500.000\n"
    for text, kept, timed in (
        (f"{HEADER}\n{since}12", f"{HEADER}\n{since}", False),
        (f"{HEADER}\n{since}0.000\n10", f"{HEADER}\n{since}0.000\n", True),
        (f"{HEADER}\n0.000\n100.000\n", f"{HEADER}\n0.000\n100.000\n", True),
        (f"{HEADER}\n3", f"{HEADER}\n", False),
    ):
        path.write_text(text)
        assert drop_cut_line(path) is timed, text
        assert path.read_text() == kept
