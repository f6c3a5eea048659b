from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import SinkError, SourceError
from edge.stream.images import ImageDirSource
from edge.stream.sinks import DirSink, NullSink, VideoSink, open_sink
from edge.stream.sources import OpenCVSource, SyntheticSource, open_source


def write_video(path: Path, frames: int, size: tuple[int, int] = (64, 128), fps: float = 10.0) -> None:
    h, w = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(frames):
        img = np.zeros((h, w, 3), np.uint8)
        cv2.rectangle(img, (i * 4 % w, 10), (i * 4 % w + 20, 40), (0, 255, 0), -1)
        writer.write(img)
    writer.release()


def test_synthetic_source_is_deterministic_and_timestamped() -> None:
    a = open_source("synthetic://?fps=17&seed=3&size=64x128&frames=3")
    b = open_source("synthetic://?seed=3&size=64x128")
    assert isinstance(a, SyntheticSource) and a.fps == 17.0 and not a.live
    frames = [a.read() for _ in range(4)]
    assert frames[3] is None
    assert [f.seq for f in frames[:3]] == [0, 1, 2]
    assert frames[0].image.shape == (64, 128, 3) and frames[0].image.dtype == np.uint8
    assert frames[0].t_capture_ns < frames[1].t_capture_ns < frames[2].t_capture_ns
    np.testing.assert_array_equal(frames[0].image, b.read().image)
    assert not np.array_equal(frames[0].image, frames[2].image), "the scene moves"
    # skip() passes over a frame without rendering it: the next read is the frame after it
    assert b.endless and not a.endless
    assert b.skip() and b.read().seq == 2
    np.testing.assert_array_equal(
        open_source("synthetic://?seed=3&size=64x128&frames=4").read().image, frames[0].image
    )
    c = open_source("synthetic://?seed=3&size=64x128&frames=2")
    assert c.skip() and c.skip() and not c.skip() and c.read() is None


def test_video_file_source(tmp_path: Path) -> None:
    write_video(tmp_path / "v.mp4", 7)
    for uri in (str(tmp_path / "v.mp4"), f"file://{tmp_path / 'v.mp4'}"):
        src = open_source(uri)
        assert isinstance(src, OpenCVSource) and src.fps == pytest.approx(10.0)
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
        src.close()
        assert len(frames) == 7 and frames[0].image.shape == (64, 128, 3)
        assert frames[0].image[20, 5, 1] > 200 and frames[0].image[20, 5, 0] < 50  # green, RGB order


def test_image_dir_source_skips_undecodable_files_and_counts_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full((8, 8, 3), i * 50, np.uint8))
    (tmp_path / "001b.png").write_bytes(b"broken")
    (tmp_path / "001c.png").write_bytes(b"")
    (tmp_path / "009.jpg").write_bytes(b"broken too")  # after the last image
    src = open_source(str(tmp_path))
    assert isinstance(src, ImageDirSource)
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 50, 100]
    assert [f.seq for f in frames] == [0, 1, 2]  # frames delivered, as from a video
    assert [f.meta.get("undecodable_before", 0) for f in frames] == [0, 0, 2]
    assert src.undecodable == 3 and src.undecodable_at_end == 1
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "'001b.png' is not an image OpenCV can decode" in err


def test_a_folder_without_images_says_what_it_may_be(tmp_path: Path) -> None:
    (tmp_path / "cs" / "leftImg8bit_sequence" / "val").mkdir(parents=True)
    with pytest.raises(SourceError, match=f"laid out like Cityscapes: cityscapes://{tmp_path / 'cs'}"):
        open_source(str(tmp_path / "cs"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"has no \['.bmp', '.jpeg', '.jpg', '.png'\] files$"):
        open_source(str(tmp_path / "empty"))


def test_image_dir_source_numbers_in_natural_order(tmp_path: Path) -> None:
    names = ["frame_10.png", "frame_2.png", "Frame_1.png", "frame_100.jpg", "frame_9.bmp"]
    for value, name in enumerate(names):
        cv2.imwrite(str(tmp_path / name), np.full((8, 8, 3), value * 40, np.uint8))
    src = open_source(str(tmp_path))
    order = []
    while (f := src.read()) is not None:
        order.append(Path(f.source).name)
    assert order == ["Frame_1.png", "frame_2.png", "frame_9.bmp", "frame_10.png", "frame_100.jpg"]
    # names whose "digits" int() cannot read sort as text instead of failing
    from edge.util.fs import natural_key

    odd = [Path("²1.png"), Path("frame_2.png"), Path("frame_١٠.png"), Path("frame_10.png")]
    assert [p.name for p in sorted(odd, key=natural_key)] == [
        "frame_2.png",
        "frame_10.png",
        "frame_١٠.png",
        "²1.png",
    ]


def test_a_looping_folder_counts_what_it_skips_on_every_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.stream.sources import LoopingSource

    cv2.imwrite(str(tmp_path / "0.png"), np.full((8, 8, 3), 7, np.uint8))
    cv2.imwrite(str(tmp_path / "1.png"), np.full((8, 8, 3), 9, np.uint8))
    (tmp_path / "2.png").write_bytes(b"broken")
    src = LoopingSource(open_source(str(tmp_path)))
    frames = [src.read() for _ in range(6)]
    assert all(f is not None for f in frames)
    assert [f.seq for f in frames if f] == list(range(6))
    assert [f.meta["loop"] for f in frames if f] == [0, 0, 1, 1, 2, 2]
    # the broken last file of a pass is counted with the first frame of the next
    assert [f.meta.get("undecodable_before", 0) for f in frames if f] == [0, 0, 1, 0, 1, 0]
    assert capsys.readouterr().err.count("warning") == 1  # said once, not once per pass


@pytest.mark.parametrize(
    "uri,match",
    [
        ("", "empty source URI"),
        ("ftp://x/y.mp4", "unknown source scheme 'ftp'"),
        ("missing.mp4", "no such file or directory"),
        ("synthetic://?fps=fast", "synthetic://\\?fps=fast': fps='fast' is not a number"),
        ("synthetic://?size=1x100", "size 1x100: a frame's height and width must be 2 to 16384 pixels"),
        ("synthetic://?size=720", "size '720' is not HEIGHTxWIDTH"),
        (
            "synthetic://?colour=red",
            "unknown options \\['colour'\\]; known: fps, seed, size, frames, cut_ins, lane, lead_brakes",
        ),
        ("synthetic://?lane=left", "lane='left' is not one of centre, right"),
        ("synthetic://?lead_brakes=2", "lead_brakes=2 must be 0 or 1"),
        ("synthetic://?cut_ins=-1", "cut_ins=-1 must not be negative"),
        ("synthetic://?cut_ins=two", "cut_ins='two' is not an integer"),
        ("csi://abc", "csi://N"),
        ("/dev/video99", "cannot open source '/dev/video99'"),
        ("rtsp://", "'rtsp://' names no host; expected e.g. rtsp://192.168.1.10:554/stream"),
        ("http:///cam.mjpg", "names no host"),
    ],
)
def test_bad_source_uris(uri: str, match: str) -> None:
    with pytest.raises(SourceError, match=match):
        open_source(uri)


def test_a_synthetic_camera_of_any_size() -> None:
    """Its frames need not fit an engine (multiples of 32): a 720p camera's do not."""
    source = open_source("synthetic://?size=720x1280")
    frame = source.read()
    assert frame is not None and frame.image.shape == (720, 1280, 3) and frame.image.std() > 5


def test_a_synthetic_drive_with_cut_ins() -> None:
    """Its world is the plain drive's with road users added that cross into the path."""
    from edge.data.synthetic import SyntheticDrive

    source = open_source("synthetic://?size=64x128&seed=3&cut_ins=2&frames=1")
    frame = source.read()
    assert frame is not None and source.read() is None
    with_them = SyntheticDrive(height=64, width=128, seed=3, cut_ins=2).render(0).image
    without = SyntheticDrive(height=64, width=128, seed=3).render(0).image
    assert np.array_equal(frame.image, with_them) and not np.array_equal(frame.image, without)


def test_a_synthetic_drive_in_the_right_lane() -> None:
    from edge.data.synthetic import SyntheticDrive

    frame = open_source("synthetic://?size=64x128&seed=3&lane=right&lead_brakes=1&frames=1").read()
    assert frame is not None
    in_lane = SyntheticDrive(height=64, width=128, seed=3, lane="right", lead_brakes=True).render(0).image
    on_the_line = SyntheticDrive(height=64, width=128, seed=3).render(0).image
    assert np.array_equal(frame.image, in_lane) and not np.array_equal(frame.image, on_the_line)


def test_a_camera_that_cannot_open_says_so_once(capfd: pytest.CaptureFixture[str]) -> None:
    """OpenCV's own warning would precede ours; it is held back, and the log level restored."""
    from edge.stream.cameras import opencv_log

    log = opencv_log(cv2)  # on the module in OpenCV 4.x, in cv2.utils.logging in 5.x
    assert log is not None
    before = log.getLogLevel()
    with pytest.raises(SourceError, match="no such camera"):
        open_source("/dev/video99")
    assert "WARN" not in capfd.readouterr().err
    assert log.getLogLevel() == before


def test_not_a_video_file(tmp_path: Path) -> None:
    (tmp_path / "x.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(SourceError, match="cannot open source"):
        open_source(str(tmp_path / "x.mp4"))


def test_video_sink_finalises_atomically(tmp_path: Path) -> None:
    sink = open_sink(str(tmp_path / "o.mp4"), fps=5)
    assert isinstance(sink, VideoSink)
    for i in range(4):
        sink.write(np.full((32, 64, 3), i * 60, np.uint8), i)
    assert not (tmp_path / "o.mp4").exists(), "only the partial file exists while writing"
    sink.close()
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]


def test_pictures_of_another_size_are_scaled_into_the_video(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A video has one size, its first picture's: later ones of another size (a playlist's
    next video, padded frames) are scaled whole into it, centred on black, and said once a
    size. An edge record video (exact_size) keeps its frames exact and refuses them."""
    sink = open_sink(str(tmp_path / "o.avi"), fps=5)
    sink.write(np.full((64, 128, 3), 200, np.uint8), 0)
    for i in (1, 2):
        sink.write(np.full((16, 128, 3), 100, np.uint8), i)  # 4:1 into 2:1: rows 24..40
    sink.write(np.full((64, 64, 3), 100, np.uint8), 3)  # 1:1: columns 32..96
    sink.close()
    said = [line for line in capfd.readouterr().err.splitlines() if "are scaled into the video's" in line]
    assert [line.split(": pictures of ")[1].split(" are")[0] for line in said] == ["128x16", "64x64"]
    assert "the video's 128x64 (the first picture's), centred on black" in said[0]
    cap = cv2.VideoCapture(str(tmp_path / "o.avi"))
    pictures = [cap.read()[1] for _ in range(4)]
    assert [p.shape for p in pictures] == [(64, 128, 3)] * 4
    wide, square = pictures[1].mean(axis=2), pictures[3].mean(axis=2)
    assert abs(wide[28:36].mean() - 100) < 8 and wide[:20].mean() < 8 and wide[44:].mean() < 8
    assert abs(square[:, 36:92].mean() - 100) < 8 and square[:, :28].mean() < 8 and square[:, 100:].mean() < 8
    exact = open_sink(str(tmp_path / "r.avi"), fps=5, exact_size=True)
    exact.write(np.zeros((64, 128, 3), np.uint8), 0)
    with pytest.raises(SinkError, match="frame size 128x16 differs from the first frame's 128x64"):
        exact.write(np.zeros((16, 128, 3), np.uint8), 1)
    exact.close()


def _grey_levels(path: Path) -> list[int]:
    """The mean grey level of each picture of a video, rounded to the nearest 10."""
    cap = cv2.VideoCapture(str(path))
    levels = []
    while True:
        ok, picture = cap.read()
        if not ok:
            return levels
        levels.append(int(round(float(picture.mean()) / 10) * 10))


def test_a_timed_video_places_frames_at_their_capture_times(tmp_path: Path) -> None:
    """At 10 fps, frames captured at 0, 0.1, 0.35, 0.36 and 3.0 s: each is shown until the
    next (0.1 s for three periods), the 0.36 s frame replaces the 0.35 s one in period 4,
    the 2.6 s gap after it is shortened to one second, and the last frame gets one period."""
    sink = open_sink(str(tmp_path / "t.avi"), fps=10, timing="capture")
    assert isinstance(sink, VideoSink) and sink.timing == "capture"
    t0 = 5_000_000_000  # capture times are on the monotonic clock: any origin
    for seq, (seconds, level) in enumerate([(0.0, 20), (0.1, 60), (0.35, 100), (0.36, 140), (3.0, 180)]):
        sink.write(np.full((32, 64, 3), level, np.uint8), seq, t0 + int(seconds * 1e9))
    sink.close()
    assert _grey_levels(tmp_path / "t.avi") == [20] + [60] * 3 + [140] * 10 + [180]
    assert (sink.frames, sink.repeated, sink.replaced) == (15, 11, 1)
    untimed = open_sink(str(tmp_path / "u.avi"), fps=10)
    assert isinstance(untimed, VideoSink) and untimed.timing == "frames"
    for seq, level in enumerate([20, 60, 100]):
        untimed.write(np.full((32, 64, 3), level, np.uint8), seq, t0 + seq * 10**9)
    untimed.close()
    assert _grey_levels(tmp_path / "u.avi") == [20, 60, 100], "every frame once, whatever its time"
    timed = open_sink(str(tmp_path / "n.avi"), fps=10, timing="capture")
    with pytest.raises(SinkError, match="places frames at their capture time and frame 0 has none"):
        timed.write(np.zeros((32, 64, 3), np.uint8), 0)
    timed.close()
    assert not list(tmp_path.glob("*n.*avi")), "a refused frame opens no file"


@pytest.mark.parametrize("uri", ["{f}/o.mp4", "{f}/o.jsonl", "dir://{f}/frames", "{d}", "dir://{f}"])
def test_sinks_that_cannot_write_fail_when_opened(tmp_path: Path, uri: str) -> None:
    """Before the run starts, not at its first frame (then only counted as sink errors)."""
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir.mp4").mkdir()
    uri = uri.format(f=tmp_path / "a_file", d=tmp_path / "a_dir.mp4")
    with pytest.raises(
        SinkError, match=r"cannot write .*(is a file, not a folder|is a folder; expected a file)"
    ):
        open_sink(uri)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_dir.mp4", "a_file"]


def test_a_folder_holding_an_earlier_runs_frames_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second recording into it would replace the first's first frames and leave the
    rest among its own: refused before the run, and the folder is left as it was."""
    from edge.cli import main

    frames = tmp_path / "frames"
    assert main(["record", "synthetic://?size=32x64&frames=5", f"dir://{frames}"]) == 0
    before = {p.name: p.read_bytes() for p in frames.iterdir()}
    assert main(["record", "synthetic://?size=32x64&frames=3&seed=1", f"dir://{frames}"]) == 2
    assert (
        f"error: sink 'dir://{frames}': {str(frames)!r} already holds 5 frame(s) of an earlier run "
        "(frame_000000.png … frame_000004.png); this run's frames would replace some of them and leave "
        "the rest among its own: give another folder, or move those away first"
    ) in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in frames.iterdir()} == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")  # a folder of other things is written into
    open_sink(f"dir://{tmp_path / 'other'}").close()


def test_edge_run_refuses_an_earlier_runs_frames_before_it_loads_engines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Said before the engines load (seconds on a board): the engines folder named here does
    not exist, and the error is the sink's."""
    from edge.cli import main

    frames = tmp_path / "frames"
    assert main(["record", "synthetic://?size=32x64&frames=2", f"dir://{frames}"]) == 0
    capsys.readouterr()
    run = ["run", "synthetic://?size=32x64&frames=2", "--engines", str(tmp_path / "no-engines")]
    assert main([*run, "--sink", f"dir://{frames}"]) == 2
    err = capsys.readouterr().err
    assert f"error: sink 'dir://{frames}': {str(frames)!r} already holds 2 frame(s) of an earlier run" in err
    assert len(err.strip().splitlines()) == 1, err  # that error alone
    assert sorted(p.name for p in frames.iterdir()) == ["frame_000000.png", "frame_000001.png"]


def test_a_folder_holding_only_an_earlier_runs_capture_times_is_refused(tmp_path: Path) -> None:
    """Frames moved away and timestamps.txt left: a run that keeps no times would leave
    them with its frames, for --realtime to replay those at; refused, the file left as it was."""
    frames = tmp_path / "frames"
    earlier = open_sink(f"dir://{frames}", timing="stamped")  # as a camera's recording keeps them
    for seq in range(3):
        earlier.write(np.zeros((8, 8, 3), np.uint8), seq, t_capture_ns=seq * 33_000_000)
    earlier.close()
    for png in frames.glob("frame_*.png"):
        png.unlink()
    times = (frames / "timestamps.txt").read_bytes()
    with pytest.raises(SinkError) as refused:
        open_sink(f"dir://{frames}")
    assert str(refused.value) == (
        f"sink 'dir://{frames}': {str(frames)!r} already holds timestamps.txt, the capture times of an "
        "earlier run's frames, without those frames; they would be read as the times of this run's: "
        "give another folder, or move it away first"
    )
    assert [p.name for p in frames.iterdir()] == ["timestamps.txt"]
    assert (frames / "timestamps.txt").read_bytes() == times


def test_dir_and_null_sinks(tmp_path: Path) -> None:
    d = open_sink(f"dir://{tmp_path / 'frames'}")
    assert isinstance(d, DirSink)
    d.write(np.zeros((8, 8, 3), np.uint8), 7)
    d.close()  # its flushes to the disk end, or they would warn in a later test of a slow disk
    assert [p.name for p in (tmp_path / "frames").iterdir()] == ["frame_000007.png"]
    n = open_sink("null://")
    assert isinstance(n, NullSink)
    n.write(np.zeros((2, 2, 3), np.uint8), 0)
    assert n.frames == 1
    with pytest.raises(SinkError, match="unknown sink 'out.txt'; supported"):
        open_sink("out.txt")
    # a folder, or an image file name, was meant as a folder of frames
    for meant, folder in (("frames/", "frames"), (str(tmp_path), str(tmp_path)), ("shot.png", "shot")):
        with pytest.raises(SinkError, match=f"into (that|a) folder.*dir://{re.escape(folder)}; supported"):
            open_sink(meant)


@pytest.mark.parametrize("uri", ["dir://", "dir://?view=depth", "dir:"])
def test_a_dir_sink_naming_no_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str
) -> None:
    """A bare dir:// would have put its frames in the current folder, among whatever is
    there; it is refused, also in the check a run makes before loading its engines."""
    from edge.stream.sinks import refuse_earlier_outputs

    monkeypatch.chdir(tmp_path)
    said = f"sink {uri!r} names no folder: give one, e.g. dir://frames/ (dir://. is this folder)"
    with pytest.raises(SinkError) as refused:
        open_sink(uri)
    assert str(refused.value) == said
    with pytest.raises(SinkError, match=re.escape(said)):
        refuse_earlier_outputs([uri], replace=False, source=None)
    assert list(tmp_path.iterdir()) == []
    sink = open_sink("dir://.")  # the current folder, asked for
    sink.write(np.zeros((4, 4, 3), np.uint8), 0)
    sink.close()
    assert [p.name for p in tmp_path.iterdir()] == ["frame_000000.png"]


def test_objects_sink_keeps_finished_lines_and_finalises(tmp_path: Path) -> None:
    from edge.postprocess.panoptic import Instance
    from edge.stream.frame import Frame, Result
    from edge.stream.sinks import ObjectsSink

    sink = open_sink(str(tmp_path / "objects.jsonl"))
    assert isinstance(sink, ObjectsSink)
    with pytest.raises(SinkError, match="needs results, not pictures"):
        sink.write(np.zeros((4, 4, 3), np.uint8), 0)
    car = Instance(26000, 13, 0.9, (0.0, 0.0, 2.0, 2.0), np.ones((2, 2), bool), (0, 0))
    for seq in range(2):
        frame = Frame(seq=seq, t_capture_ns=seq, image=np.zeros((4, 4, 3), np.uint8))
        depth = {"depth": np.full((1, 1, 4, 4), 7.5, np.float32)}
        sink.write_result(Result(frame, None, depth, extras={"resized": frame.image, "instances": [car]}))
    # while the run goes on, finished lines are on disk under the partial name only
    assert not (tmp_path / "objects.jsonl").exists()
    partial = (tmp_path / ".objects.partial.jsonl").read_text().splitlines()
    assert len(partial) == 2 and '"distance_m": 7.5' in partial[1]
    sink.close()
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["objects.jsonl"]
    assert (tmp_path / "objects.jsonl").read_text().splitlines() == partial


def test_picture_sinks_take_a_view_and_refuse_other_options(tmp_path: Path) -> None:
    for uri, kind, view in (
        (f"{tmp_path / 'o.mp4'}?view=input", VideoSink, "input"),
        (f"file://{tmp_path / 'o.mkv'}?view=depth", VideoSink, "depth"),
        (f"dir://{tmp_path / 'f'}?view=panoptic", DirSink, "panoptic"),
        (f"dir://{tmp_path / 'g'}", DirSink, "composite"),
        (str(tmp_path / "a#b.mp4"), VideoSink, "composite"),  # "#" belongs to a plain path's name
    ):
        sink = open_sink(uri)
        assert isinstance(sink, kind) and sink.view == view, uri
        sink.close()
    assert not any(tmp_path.iterdir()), "a sink that wrote no frame leaves nothing behind"
    for option, error in (
        ("view=overlay", r"view='overlay'; expected one of composite, panoptic, depth, input"),
        ("view=", r"view=''; expected one of"),
        ("fps=5", r"unknown option 'fps'; it takes view=composite\|panoptic\|depth\|input"),
        ("view=depth&view=input", r"view= is given twice"),
        ("&", r"option '&' names none; it takes view="),
    ):
        for uri in (f"{tmp_path / 'x.mp4'}?{option}", f"dir://{tmp_path / 'x'}?{option}"):
            with pytest.raises(SinkError, match=re.escape(uri) + ".*" + error):
                open_sink(uri)
    with pytest.raises(SinkError, match=r"records what was found in each frame, not a picture"):
        open_sink(f"{tmp_path / 'objects.jsonl'}?view=depth")
    with pytest.raises(SinkError, match=re.escape("into that folder are dir://frames?view=input;")):
        open_sink("frames/?view=input")
    assert not any(tmp_path.iterdir()), "a refused sink creates nothing"


def test_two_sinks_cannot_write_one_file_or_folder(tmp_path: Path) -> None:
    from edge.stream.sinks import open_sinks

    video, folder = tmp_path / "o.mp4", tmp_path / "frames"
    for pair in (
        [str(video), f"{video}?view=depth"],
        [str(video), f"file://{video}"],
        [f"dir://{folder}", f"dir://{folder}/?view=input"],
        ["-", "-"],
    ):
        with pytest.raises(
            SinkError, match=rf"sinks '{re.escape(pair[0])}' and '{re.escape(pair[1])}' both write"
        ):
            open_sinks(pair, fps=10)
    assert not video.exists()
    for sink in open_sinks([str(video), str(tmp_path / "other.mp4"), f"dir://{folder}/a"], fps=10):
        sink.close()


@pytest.mark.parametrize(
    ("source", "sink"),
    [
        ("drive.mp4", "drive.mp4"),
        ("file://{t}/drive.mp4", "./drive.mp4"),
        ("link.mp4", "drive.mp4"),  # a link to the file it is
        ("frames", "dir://{t}/frames/"),
        ("frames/", "dir://frames"),
    ],
)
def test_no_sink_writes_over_the_source_it_reads(
    tiny_engines: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    source: str,
    sink: str,
) -> None:
    """A video sink is renamed over its file when the run ends, and a dir:// sink's PNGs
    would land among the images it reads: both are refused before the run, by edge run and
    by edge record, and the source is left as it was."""
    from edge.cli import main

    monkeypatch.chdir(tmp_path)
    write_video(tmp_path / "drive.mp4", 3)
    (tmp_path / "link.mp4").symlink_to("drive.mp4")
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "frame_000000.png"), np.zeros((8, 8, 3), np.uint8))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    source, sink = source.format(t=tmp_path), sink.format(t=tmp_path)
    said = f"error: sink {sink!r} would write over the source it reads, "
    assert main(["run", source, "--engines", str(tiny_engines), "--sink", sink]) == 2
    assert said in capsys.readouterr().err
    assert main(["record", source, sink]) == 2
    assert said in capsys.readouterr().err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_no_log_or_heartbeat_writes_over_the_video_it_reads(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--summary, --trace, --latency-log and --heartbeat name files too: one that is the
    source (by any spelling) is refused before the run, which leaves the video as it was."""
    from edge.cli import main

    video = tmp_path / "drive.mp4"
    write_video(video, 3)
    (tmp_path / "link.mp4").symlink_to("drive.mp4")
    before = video.read_bytes()
    for flag, what in (("--summary", "summary"), ("--trace", "trace"), ("--heartbeat", "heartbeat")):
        target = str(tmp_path / "link.mp4")
        assert main(["run", str(video), "--engines", str(tiny_engines), flag, target]) == 2
        said = capsys.readouterr().err
        assert f"error: the {what} {target!r} would write over the source it reads, {str(video)!r}" in said
    assert main(["record", str(video), str(tmp_path / "copy.mkv"), "--heartbeat", str(video)]) == 2
    assert (
        f"error: the heartbeat {str(video)!r} would write over the source it reads" in capsys.readouterr().err
    )
    assert video.read_bytes() == before and not (tmp_path / "copy.mkv").exists()


def test_a_synthetic_source_knows_its_cameras_field_of_view() -> None:
    from edge.stream.sources import LoopingSource

    source = open_source("synthetic://?size=64x128&frames=1")
    assert source.hfov_deg == pytest.approx(48.8879, abs=1e-4)  # type: ignore[attr-defined]
    assert LoopingSource(source).hfov_deg == source.hfov_deg  # type: ignore[attr-defined]
    # and its height over the road, its horizon and focal length as the renderer has them
    assert source.ground.to_json() == {"height_m": 1.2, "horizon": 0.45, "focal": 2.2}  # type: ignore[attr-defined]
    assert LoopingSource(source).ground == source.ground  # type: ignore[attr-defined]
