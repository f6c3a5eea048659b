"""Fuzzing user-facing inputs: every failure must be a clear edge error, never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.build import parse_size
from edge.errors import EdgeError
from edge.manifest import Manifest
from edge.stream.engines import EngineSet
from edge.stream.sinks import open_sink, refuse_earlier_outputs
from edge.stream.sources import open_source

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# no network schemes (rtsp://, http://): a fuzzed host would make FFmpeg connect to it
SCHEMES = st.sampled_from(
    [
        "",
        "synthetic://",
        "file://",
        "csi://",
        "gst://",
        "dir://",
        "null://",
        "/dev/video",
        "ftp://",
        "synthetic://?",
        "cityscapes://",
    ]
)
QUERY = st.lists(
    st.tuples(st.sampled_from(["fps", "seed", "size", "frames", "split", "x"]), st.text(max_size=8)),
    max_size=3,
)


@FUZZ
@given(text=st.text(max_size=40))
def test_parse_size_never_crashes(text: str) -> None:
    try:
        h, w = parse_size(text)
    except EdgeError:
        return
    assert h % 32 == 0 and w % 32 == 0 and h > 0 and w > 0


@FUZZ
@given(scheme=SCHEMES, rest=st.text(max_size=30), query=QUERY)
def test_source_uris_fail_clearly(
    tmp_path: Path, scheme: str, rest: str, query: list[tuple[str, str]]
) -> None:
    uri = scheme + rest
    if scheme == "synthetic://?":
        uri = "synthetic://?" + "&".join(f"{k}={v}" for k, v in query)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        src = open_source(uri)
    except EdgeError:
        return
    finally:
        os.chdir(cwd)
    try:
        frame = src.read()
        assert frame is None or frame.image.ndim == 3
    finally:
        src.close()


@FUZZ
@given(scheme=SCHEMES, rest=st.text(max_size=30))
def test_sink_uris_fail_clearly(tmp_path: Path, scheme: str, rest: str) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        sink = open_sink(scheme + rest)
    except EdgeError:
        return
    finally:
        os.chdir(cwd)
    sink.close()


@FUZZ
@given(scheme=SCHEMES, rest=st.text(max_size=30), replace=st.booleans())
def test_sink_refusals_before_a_run_fail_clearly(
    tmp_path: Path, scheme: str, rest: str, replace: bool
) -> None:
    """What edge run and edge record check of their sinks before they load the engines or
    open the source: nothing, or a one-line edge error."""
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        refuse_earlier_outputs([scheme + rest], replace=replace, source=tmp_path / "drive.mkv")
    except EdgeError:
        return
    finally:
        os.chdir(cwd)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["panoptic", "depth", "x"]) | JSON,
        "backend": st.just("onnxruntime") | JSON,
        "model": JSON,
        "inputs": JSON,
        "artifact": st.fixed_dictionaries({}, optional={"path": st.text(max_size=20) | JSON}) | JSON,
        "config": JSON,
        "built_at": JSON,
    },
)


@FUZZ
@given(
    doc=st.one_of(
        JSON,
        st.fixed_dictionaries(
            {"format": st.just(1) | JSON, "engines": st.dictionaries(st.text(max_size=6), ENTRY, max_size=3)}
        ),
    )
)
def test_manifests_fail_clearly(tmp_path: Path, doc: object) -> None:
    root = tmp_path / "engines"
    root.mkdir(exist_ok=True)
    (root / "manifest.json").write_text(json.dumps(doc))
    try:
        Manifest.load(root)
        EngineSet.from_manifest(root).close()
    except EdgeError:
        return


@pytest.mark.parametrize("raw", [b"\xff\xfe not utf8", b"", b"[]", b"null", b'{"format": 1, "engines": []}'])
def test_manifest_bytes_fail_clearly(tmp_path: Path, raw: bytes) -> None:
    (tmp_path / "manifest.json").write_bytes(raw)
    with pytest.raises(EdgeError):
        EngineSet.from_manifest(tmp_path)


@pytest.mark.parametrize("path", ["a\x00b.onnx", "../outside.onnx", "/etc/passwd", "sub/../../x.onnx"])
def test_manifest_artifact_paths_are_confined(tmp_path: Path, path: str) -> None:
    entry = {
        "id": "e",
        "kind": "depth",
        "backend": "onnxruntime",
        "artifact": {"path": path},
        "inputs": [{"name": "image", "shape": [1, 3, 64, 64], "dtype": "float32"}],
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 1, "engines": {"e": entry}}))
    with pytest.raises(EdgeError):
        EngineSet.from_manifest(tmp_path)


@pytest.mark.parametrize("uri", ["video\x00.mp4", "file://\x00", "dir://\x00"])
def test_nul_bytes_in_uris(tmp_path: Path, uri: str) -> None:
    with pytest.raises(EdgeError):
        open_sink(uri) if uri.startswith("dir://") else open_source(uri)
    # as a sink, checked before a run: left to open_sink, which says why
    refuse_earlier_outputs([uri], replace=False, source=tmp_path / "drive.mkv")


@pytest.mark.parametrize("fps", ["nan", "inf", "-5", "0", "1e400"])
def test_synthetic_fps_must_be_positive_and_finite(fps: str) -> None:
    with pytest.raises(EdgeError, match="fps"):
        open_source(f"synthetic://?fps={fps}")


@pytest.mark.parametrize("query", ["seed=-1", "frames=-1", "seed=1.5"])
def test_synthetic_integer_options(query: str) -> None:
    with pytest.raises(EdgeError, match="seed|frames"):
        open_source(f"synthetic://?{query}")


@FUZZ
@given(
    name=st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda c, s, f, tail: f"{c}_{s}_{f}{tail}",
            st.text(alphabet="abcz_-1", max_size=8),
            st.text(alphabet="0123456789a", max_size=7),
            st.text(alphabet="0123456789-", max_size=7),
            st.sampled_from(["_leftImg8bit.png", "_leftImg8bit.jpg", "", "_gtFine_labelIds.png"]),
        ),
    )
)
def test_cityscapes_file_names_parse_or_fail_clearly(name: str) -> None:
    from edge.data.cityscapes import parse_name

    try:
        city, seq, frame = parse_name(name)
    except EdgeError as exc:
        assert "Cityscapes image name" in str(exc)
    else:
        assert name == f"{city}_{seq:06d}_{frame:06d}_leftImg8bit.png"


PREFIX = {  # small defaults first, so a fuzzed list that happens to be valid finishes quickly
    "make-synthetic": ["make-synthetic", "--frames", "1", "--sequences", "1", "--size", "64x128", "--quiet"],
    "train": ["train", "--steps", "1", "--batch", "1", "--size", "64x128", "--quiet"],
    "replay": ["replay"],
    "bench": ["bench", "--compare"],
}
TOKENS = [
    "--size", "--steps", "--out", "--frames", "--compare", "0", "-1", "abc", "64x64", "nan", "--split",
    "../x", "--model", "nope", "depth_tiny", "--gt-every", "cityscapes://.", "x.json", "--sequences",
]  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(sorted(PREFIX)), rest=st.lists(st.sampled_from(TOKENS), max_size=5))
def test_cli_arguments_fail_clearly(
    tmp_path: Path, command: str, rest: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Random arguments for the commands that take files and numbers: a usage error or a
    one-line edge error (both exit 2), or success; never a traceback."""
    from edge.cli import main

    cwd = os.getcwd()
    os.chdir(tmp_path)  # anything a command writes lands here
    try:
        try:
            rc = main([*PREFIX[command], *rest])
        except SystemExit as exc:
            rc = int(exc.code or 0)
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert rc in (0, 2), (command, rest, rc, err)


@FUZZ
@given(rest=st.text(max_size=30))
def test_viewer_addresses_fail_clearly(rest: str) -> None:
    from edge.viewer import parse_viewer_uri

    try:
        host, port = parse_viewer_uri("http://" + rest)
    except EdgeError:
        return
    assert host and 0 <= port <= 65535


@FUZZ
@given(
    base=st.sampled_from(["/dev/video0", "csi://0", "rtsp://cam/live", "http://cam/s.mjpg", "gst://"]),
    sep=st.sampled_from(["?", "#", ""]),
    options=st.text(max_size=30),
)
def test_camera_options_fail_clearly(base: str, sep: str, options: str) -> None:
    from edge.stream.cameras import spec_for

    try:
        spec = spec_for(base + sep + options)  # parsing only: nothing is opened
    except EdgeError:
        return
    assert spec.target and spec.api in ("v4l2", "gstreamer", "ffmpeg")


@FUZZ
@given(
    header=st.sampled_from(["TRT-100700-EntropyCalibration2\n", "TRT-8601-MinMaxCalibration\n", ""]),
    body=st.text(max_size=120),
)
def test_calibration_cache_text_fails_clearly(header: str, body: str) -> None:
    from calib.trt_cache import read_cache

    try:
        version, algorithm, scales = read_cache(header + body)
    except EdgeError:
        return
    assert version >= 0 and algorithm and all(isinstance(v, float) for v in scales.values())


@FUZZ
@given(
    frame=st.tuples(st.integers(1, 5000), st.integers(1, 5000)),
    engines=st.tuples(st.integers(1, 64), st.integers(1, 64)).map(lambda hw: (32 * hw[0], 32 * hw[1])),
)
def test_a_crop_keeps_the_input_or_is_refused_clearly(
    frame: tuple[int, int], engines: tuple[int, int]
) -> None:
    """--fit crop for any frame and engine sizes: a resize that covers the input, a part of
    the frame inside it, or an edge error that says what the crop would keep."""
    from edge.stream.fit import fitted_hw, seen_part

    try:
        hw = fitted_hw(frame, engines, "crop")
    except EdgeError as exc:
        assert "--fit crop would keep" in str(exc)
        return
    assert hw[0] >= engines[0] and hw[1] >= engines[1]
    top, left, bottom, right = seen_part(frame, engines, "crop")
    assert 0 <= top < bottom <= frame[0] and 0 <= left < right <= frame[1]


@FUZZ
@given(text=st.text(max_size=20) | st.sampled_from(["=rear", "=60", "a=", "a=b=rear", "front=30", "=", "7"]))
def test_per_camera_settings_parse_or_fail_clearly(text: str) -> None:
    import argparse

    from edge.cli_args import rate_setting
    from edge.cli_tracking import facing_setting, field_of_view_setting, mount_offset_setting
    from edge.postprocess.facing import FACINGS

    for parse in (rate_setting, facing_setting, field_of_view_setting, mount_offset_setting):
        try:
            name, value = parse(text)
        except argparse.ArgumentTypeError as exc:  # quoting what was given, or its value part
            assert repr(text) in str(exc) or repr(text.rpartition("=")[2]) in str(exc)
            continue
        assert name is None or (name and "=" in text)
        if parse is facing_setting:
            assert value in FACINGS or -180 < value <= 180
        elif parse is mount_offset_setting:
            assert abs(value) < float("inf")
        else:
            assert 0 < value < float("inf")
