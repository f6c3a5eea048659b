"""Several videos as one source: a folder of them, or a glob (edge.stream.playlist); real
video files, and a segmented recording replayed whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main
from edge.errors import SourceError
from edge.stream.playlist import PlaylistSource
from edge.stream.sources import open_source
from edge.stream.timestamps import timestamps_path
from tests.stream.test_sources_sinks import write_video
from tests.stream.test_timestamps import write_times


def _read_all(uri: str) -> list:
    src = open_source(uri)
    frames = []
    while (frame := src.read()) is not None:
        frames.append(frame)
    src.close()
    return frames


def test_a_folder_of_videos_plays_them_in_order_as_one_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    write_video(clips / "clip_10.mp4", frames=2, fps=12.0)
    write_video(clips / "clip_2.avi", frames=3, fps=12.0)
    (clips / "clip_3.mkv").write_bytes(b"not a video")  # said, skipped and counted
    (clips / ".clip_4.partial.mkv").write_bytes(b"")  # a recording still being written: not played
    (clips / "notes.txt").write_text("x")
    src = open_source(str(clips))
    assert isinstance(src, PlaylistSource) and src.fps == pytest.approx(12.0) and not src.live
    assert [p.name for p in src.files] == ["clip_2.avi", "clip_3.mkv", "clip_10.mp4"]
    frames = _read_all(str(clips))
    assert [f.seq for f in frames] == [0, 1, 2, 3, 4]
    assert [f.meta["file"] for f in frames] == ["clip_2.avi"] * 3 + ["clip_10.mp4"] * 2
    assert frames[3].meta["undecodable_before"] == 1, "the skipped file is counted with the next frame"
    assert all(f.source == str(clips) and f.image.shape == (64, 128, 3) for f in frames)
    assert "skipping 'clip_3.mkv': cannot open source" in capsys.readouterr().err


def _skipping(uri: str, keep: set[int]) -> list:
    """The frames numbered ``keep`` of ``uri``, the others passed over with skip()."""
    src = open_source(uri)
    assert isinstance(src, PlaylistSource)
    kept = []
    for i in range(src.declared_frames or 0):
        if i in keep:
            kept.append(src.read())
        else:
            assert src.skip()
    assert not src.skip() and src.read() is None
    src.close()
    return kept


def test_a_playlist_says_how_many_frames_its_files_hold_and_skips_across_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What samples a whole source (calibration) asks its length: the sum of what each
    file holds (a folder of frames: its images), a file that does not open none; skipped
    frames are passed over file after file, and those read after them are the frames a
    plain read gives there."""
    import cv2
    import numpy as np

    clips = tmp_path / "clips"
    clips.mkdir()
    write_video(clips / "clip_1.mp4", frames=3)
    (clips / "clip_2.mkv").write_bytes(b"not a video")
    write_video(clips / "clip_3.avi", frames=4)
    for n, folder in ((2, "frames-1"), (3, "frames-2")):
        (tmp_path / folder).mkdir()
        for i in range(n):
            cv2.imwrite(str(tmp_path / folder / f"frame_{i:06d}.png"), np.full((8, 16, 3), 50 * i, np.uint8))
    for uri, length, keep, files in (
        (str(clips), 7, {1, 3, 6}, ["clip_1.mp4", "clip_3.avi", "clip_3.avi"]),
        (str(tmp_path / "frames-*"), 5, {1, 2}, ["frames-1", "frames-2"]),
    ):
        capsys.readouterr()
        src = open_source(uri)
        assert isinstance(src, PlaylistSource) and not hasattr(src, "__len__")
        assert src.declared_frames == length
        assert capsys.readouterr().err == "", "counting says nothing: playing says what it skips"
        src.close()
        whole = _read_all(uri)
        assert len(whole) == length
        kept = _skipping(uri, keep)
        assert [f.seq for f in kept] == sorted(keep) and [f.meta["file"] for f in kept] == files
        for frame in kept:
            assert np.array_equal(frame.image, whole[frame.seq].image)
    assert _skipping(str(clips), {3})[0].meta["undecodable_before"] == 1, "the file that did not open"
    capsys.readouterr()


def test_a_glob_names_the_videos_to_play(tmp_path: Path) -> None:
    for name in ("drive-1.mp4", "drive-2.mp4", "other-1.mp4"):
        write_video(tmp_path / name, frames=2)
    frames = _read_all(str(tmp_path / "drive-*.mp4"))
    assert [f.meta["file"] for f in frames] == ["drive-1.mp4"] * 2 + ["drive-2.mp4"] * 2
    with pytest.raises(
        SourceError, match=r"source '.*nothing-\*\.mp4' holds no videos \(.mp4, .avi, .mkv, .mov, .webm\)"
    ):
        open_source(str(tmp_path / "nothing-*.mp4"))
    with pytest.raises(SourceError, match="none of its 1 video\\(s\\) opens"):
        (tmp_path / "broken").mkdir()
        (tmp_path / "broken" / "x.mp4").write_bytes(b"")
        open_source(str(tmp_path / "broken"))


def test_capture_times_are_laid_end_to_end(tmp_path: Path) -> None:
    """Each segment's times start at 0; joined, the next starts one frame after the last."""
    for name, times_ms in (("a.mp4", [0, 100, 200]), ("b.mp4", [0, 50])):
        write_video(tmp_path / name, frames=len(times_ms))
        write_times(timestamps_path(tmp_path / name), [int(t * 1e6) for t in times_ms])
    # 100 ms: the mean interval so far
    assert [f.meta["media_ms"] for f in _read_all(str(tmp_path))] == [0, 100, 200, 300, 350]
    # one without (a recording by an earlier version): it plays at its own rate in its turn
    write_video(tmp_path / "c.mp4", frames=2, fps=20)
    assert [f.meta["media_ms"] for f in _read_all(str(tmp_path))] == [0, 100, 200, 300, 350, 400, 450]
    timestamps_path(tmp_path / "a.mp4").unlink()
    write_video(tmp_path / "a.mp4", frames=3, fps=5)  # 200 ms a frame, then b's times one apart
    assert [f.meta["media_ms"] for f in _read_all(str(tmp_path))] == [0, 200, 400, 600, 650, 700, 750]
    for name in ("b.mp4", "c.mp4"):
        timestamps_path(tmp_path / name).unlink(missing_ok=True)
    assert open_source(str(tmp_path)).timestamps is None, "none has times: paced at the files' rate"


def test_frames_skipped_in_a_timed_playlist_are_not_read_and_keep_the_times_joined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calibration samples a source with skip(): where its files have capture times, the
    frames read after skipped ones get the times a plain read gives them, and a folder's
    skipped images are not decoded (videos' are decoded, not converted)."""
    import cv2

    from edge.stream.sinks import open_sink
    from tests.stream.test_disk import NOISE

    videos = tmp_path / "videos"
    videos.mkdir()
    for name, times_ms in (("a.mp4", [0, 100, 200]), ("b.mp4", [0, 50])):
        write_video(videos / name, frames=len(times_ms))
        write_times(timestamps_path(videos / name), [int(t * 1e6) for t in times_ms])
    write_video(videos / "c.mp4", frames=2, fps=20)  # none of its own: its rate after b's
    drive = tmp_path / "drive"
    sink = open_sink(f"dir://{drive / 'frames'}", fps=10, timing="stamped", segment_s=0.5)
    for seq in range(12):
        sink.write(NOISE[seq % len(NOISE)], seq, 1_000_000_000 + seq * 100_000_000)
    sink.close()
    decoded = []
    imread = cv2.imread
    monkeypatch.setattr(cv2, "imread", lambda *a: decoded.append(a[0]) or imread(*a))
    for uri, keep in ((str(videos), {1, 4, 6}), (str(drive), {0, 6, 11})):
        whole = _read_all(uri)
        decoded.clear()
        kept = _skipping(uri, keep)
        assert [f.meta["media_ms"] for f in kept] == [whole[i].meta["media_ms"] for i in sorted(keep)]
        assert len(decoded) == (len(keep) if uri == str(drive) else 0)
    assert [whole[i].meta["media_ms"] for i in (0, 6, 11)] == pytest.approx([0.0, 600.0, 1100.0])


def test_a_segmented_recording_replays_whole(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drives = tmp_path / "drives"
    assert (
        main(
            [
                "record",
                "synthetic://?size=96x128&fps=10&frames=25",
                str(drives / "drive.mkv"),
                "--segment",
                "1",
            ]
        )
        == 0
    )
    assert len(list(drives.iterdir())) == 3
    summary = tmp_path / "summary.json"
    argv = ["run", str(drives / "drive-*.mkv"), "--engines", str(tiny_engines), "--summary", str(summary)]
    assert main(argv) == 0
    assert json.loads(summary.read_text())["frames_out"] == 25
    # by the name it was recorded to: its segments, not those of a name that begins alike
    assert main(["record", "synthetic://?size=96x128&frames=4", str(drives / "drive-2.mkv")]) == 0
    assert main([*argv[:1], str(drives / "drive.mkv"), *argv[2:]]) == 0
    assert json.loads(summary.read_text())["frames_out"] == 25
    (drives / "drive-2.mkv").unlink()
    with pytest.raises(SourceError, match="source '.*nothing.mkv': no such file or directory"):
        open_source(str(drives / "nothing.mkv"))
    # with capture times beside the segments (as a camera's have), --realtime replays at them
    for segment in sorted(drives.glob("*.mkv")):  # 10, 10 and 5 frames
        frames = 5 if segment.name.startswith("drive-00002") else 10
        # 10 fps: a live run drops what the engines fall behind on, and these must keep up
        write_times(timestamps_path(segment), [i * 100_000_000 for i in range(frames)])
    assert main([*argv, "--realtime"]) == 0
    assert (
        f"--realtime: replaying {drives / 'drive-*.mkv'} at the capture times in the files beside its videos"
        in capsys.readouterr().err
    )
    assert json.loads(summary.read_text())["frames_out"] == 25


def test_a_drive_recorded_in_folders_of_frames_plays_whole_at_its_capture_times(tmp_path: Path) -> None:
    """dir:// segments (--segment): a glob of the folders, or the folder that holds them,
    plays every frame once, exact, in order, at capture times laid end to end; its rate is
    that of the times, so --realtime needs no --fps."""
    import numpy as np

    from edge.stream.sinks import open_sink
    from edge.stream.sources import nominal_rate
    from tests.stream.test_disk import NOISE

    drive = tmp_path / "drives"
    sink = open_sink(f"dir://{drive / 'frames'}", fps=10, timing="stamped", segment_s=0.5)
    for seq in range(12):
        sink.write(NOISE[seq % len(NOISE)], seq, seq * 100_000_000)
    sink.close()
    (drive / "notes").mkdir()  # a folder without frames is not one of them
    for uri in (str(drive / "frames-*"), str(drive)):
        src = open_source(uri)
        assert isinstance(src, PlaylistSource) and len(src.files) == 3
        assert nominal_rate(src) == pytest.approx(10.0)
        frames = _read_all(uri)
        assert [f.seq for f in frames] == list(range(12))
        assert all(np.array_equal(f.image, NOISE[i % len(NOISE)]) for i, f in enumerate(frames))
        assert [f.meta["file"] for f in frames] == [p.name for p in src.files for _ in range(5)][:12]
        assert [f.meta["media_ms"] for f in frames] == pytest.approx([100.0 * i for i in range(12)])


def test_a_folder_segment_a_dead_run_left_plays_in_its_turn_at_the_times_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The power cut mid-segment: its folder has its frames, its times still in the hidden
    file (the last line cut), and the PNG being written hidden. It plays in its turn, at the
    whole times it wrote, said once; the next run's folder follows it."""
    import numpy as np

    from edge.stream.sinks import open_sink
    from tests.stream.test_disk import NOISE

    drive = tmp_path / "drives"
    for run in range(2):
        sink = open_sink(f"dir://{drive / 'frames'}", fps=10, timing="stamped", segment_s=60)
        for seq in range(3):
            sink.write(NOISE[seq], seq, (run * 100 + seq) * 100_000_000)
        sink.close()
    # the first run as the power cut leaves it: its times not moved into place, the last cut
    dead = sorted(drive.glob("frames-00000-*"))[0]
    (dead / "timestamps.txt").rename(dead / ".timestamps.partial.txt")
    (dead / ".frame_000003.partial.png").write_bytes(b"\x89PNG half")
    with (dead / ".timestamps.partial.txt").open("a") as times:
        times.write("30")  # "300.000" cut
    frames = _read_all(str(drive / "frames-*"))
    assert all(np.array_equal(f.image, NOISE[i % 3]) for i, f in enumerate(frames)) and len(frames) == 6
    assert [f.meta["media_ms"] for f in frames] == pytest.approx([0, 100, 200, 300, 400, 500])
    err = capsys.readouterr().err
    assert err.count("did not finish (killed, or the power lost); replaying it at the 3 capture time(s)") == 1


def test_a_drive_recorded_as_videos_and_as_frames_at_once_plays_once_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A video sink and a dir:// sink recording the same drive into one folder: the folder,
    or a glob of both, plays the videos (not the drive twice), and says how to play the
    folders of frames instead."""
    from edge.stream.sinks import open_sink
    from tests.stream.test_disk import NOISE

    drive = tmp_path / "drives"
    sinks = [
        open_sink(str(drive / "drive.mkv"), fps=10, timing="stamped", segment_s=60),
        open_sink(f"dir://{drive / 'frames'}", fps=10, timing="stamped", segment_s=60),
    ]
    for seq in range(4):
        for sink in sinks:
            sink.write(NOISE[seq], seq, seq * 100_000_000)
    for sink in sinks:
        sink.close()
    (folder,) = drive.glob("frames-*")
    for uri in (str(drive), str(drive / "*")):
        frames = _read_all(uri)
        assert len(frames) == 4 and all(f.meta["file"].startswith("drive-") for f in frames)
        assert capsys.readouterr().err.strip() == (
            f"warning: source {uri!r}: playing its 1 video(s), not its 1 folder(s) of frames "
            f"({folder.name!r} …): play those with a glob that names only them "
            f"(e.g. {str(drive / 'frames-*')!r})"
        )
    frames = _read_all(str(drive / "frames-*"))
    assert len(frames) == 4 and frames[0].meta["file"] == folder.name
    assert capsys.readouterr().err == ""


def test_a_segment_is_placed_where_it_began_in_its_recording(tmp_path: Path) -> None:
    """A drive cut every half second with a camera's 1.6 s outage in it: replayed by its name,
    each segment's frames fall where they were captured, the gap kept (laid end to end, the
    second would follow the first a frame's time after); with the oldest segment deleted for
    room, the others keep their places in the drive (which two cameras' replays line up by)."""
    from edge.stream.sinks import open_sink
    from tests.stream.test_disk import NOISE

    video = tmp_path / "drive.mkv"
    sink = open_sink(str(video), fps=10, timing="stamped", segment_s=0.5)
    captured_ms = [0, 100, 200, 300, 400, 2000, 2100, 2200, 2300, 2400, 2500, 2600]
    for seq, t_ms in enumerate(captured_ms):
        sink.write(NOISE[seq % 8], seq, 7_000_000_000 + t_ms * 1_000_000)
    sink.close()
    segments = sorted(tmp_path.glob("drive-*.mkv"), key=lambda p: p.name)
    assert len(segments) == 3
    assert [f.meta["media_ms"] for f in _read_all(str(video))] == captured_ms
    segments[0].unlink()
    timestamps_path(segments[0]).unlink()
    assert [f.meta["media_ms"] for f in _read_all(str(video))] == captured_ms[5:]
