"""edge bench: single-stream measurement on real tiny engines, percentiles, compare, CLI."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.bench import (
    BenchConfig,
    latency_stats,
    measure,
    run_bench,
    sweep,
)
from edge.bench_compare import compare, compare_notes, load_result
from edge.bench_progress import Bar, frames_needed
from edge.bench_samples import load_samples
from edge.cli import main
from edge.errors import ConfigError, Interrupted, ManifestError, SourceError
from edge.platform_info import cpu_vector_extensions
from edge.report.bench_report import write_report
from edge.schemas import check_document
from edge.stream.engines import EngineSet
from edge.stream.sources import open_source
from tests.conftest import TEST_SIZE, OnTerminal
from tests.stream.test_sources_sinks import write_video

REPORT_FILES = {"bench.json", "report.md", "report.html", "cdf.png", "stages.png", "timeline.png"}


def test_percentiles_match_numpy_on_known_samples() -> None:
    s = latency_stats(list(range(1, 101)))  # 1..100: linear interpolation by hand
    assert s == pytest.approx(
        {
            "count": 100,
            "mean": 50.5,
            "min": 1.0,
            "p50": 50.5,
            "p90": 90.1,
            "p95": 95.05,
            "p99": 99.01,
            "max": 100.0,
        },
        rel=1e-12,
    )
    rng = np.random.default_rng(0)
    v = rng.lognormal(3, 0.5, 997)
    s = latency_stats(v.tolist())
    for p in (50, 90, 95, 99):
        assert s[f"p{p}"] == pytest.approx(float(np.percentile(v, p)), rel=1e-12)
    assert latency_stats([]) == {"count": 0}
    assert latency_stats([7.0])["p99"] == 7.0


def test_sweep_is_the_full_matrix() -> None:
    configs = sweep(["onnxruntime", "torch"], ["fp32"], [(128, 256), (256, 512)], "cuda")
    assert [c.label for c in configs] == [
        "onnxruntime/fp32/128x256",
        "onnxruntime/fp32/256x512",
        "torch/fp32/128x256/cuda",
        "torch/fp32/256x512/cuda",
    ]
    assert configs[0].device is None  # --device only applies to torch


@pytest.fixture
def clip(tmp_path: Path) -> str:
    """A real 5-frame video file."""
    video = tmp_path / "clip.mp4"
    write_video(video, frames=5, size=TEST_SIZE)
    return str(video)


def short_bench(engines: Path, **kw: Any) -> dict[str, Any]:
    """run_bench on engines already built, at the test size (or ``configs``), briefly, quietly;
    ``kw`` overrides."""
    size = f"{TEST_SIZE[0]}x{TEST_SIZE[1]}"
    args: dict[str, Any] = {
        "engines": engines,
        "source": f"synthetic://?size={size}",
        "warmup": 1,
        "min_frames": 3,
        "min_duration_s": 0.0,
        "threads": 1,
        "build_missing": False,
        "show_progress": False,
        "samples": 4,
    }
    configs = kw.pop("configs", [BenchConfig(size=TEST_SIZE)])
    return run_bench(configs, **{**args, **kw})


def measure_clip(engines: EngineSet, clip: str, **kw: Any) -> dict[str, Any]:
    source = open_source(clip)
    try:
        samples = load_samples(source)
    finally:
        source.close()
    return measure(engines, samples, **kw)


def test_samples_are_the_first_frames_held_unchanged(clip: str) -> None:
    """A 5-frame video gives its 5 frames when 32 are asked for, as it decoded them; a
    budget stops the reading early, and a source with nothing left is refused."""
    source = open_source(clip)
    try:
        decoded = [f.image.copy() for f in iter(source.read, None)]
    finally:
        source.close()
    source = open_source(clip)
    try:
        samples = load_samples(source)
        with pytest.raises(SourceError, match="the source delivered no frames"):
            load_samples(source)  # read to its end
    finally:
        source.close()
    assert len(samples.frames) == len(samples.read_ms) == len(decoded) == 5
    assert all(np.array_equal(f.image, d) for f, d in zip(samples.frames, decoded, strict=True))
    assert samples.nbytes == sum(d.nbytes for d in decoded)
    # issued again and again: drawing on one would draw on every later issue of it
    with pytest.raises(ValueError, match="read-only"):
        samples.frames[0].image[0, 0] = 0
    source = open_source(clip)
    try:
        two = load_samples(source, budget_bytes=decoded[0].nbytes + 1)
    finally:
        source.close()
    assert len(two.frames) == 2  # the budget reached with the second
    assert two.full and not samples.full  # the budget stopped it; the video's end the other


def test_the_memory_the_samples_may_take_is_set_and_said(
    tiny_engines: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """--samples-memory: one byte holds one frame (the first is always held), said with
    the frames asked for; none at all is refused before anything is read."""
    data = short_bench(tiny_engines, samples=4, samples_memory=1)
    assert data["samples"]["frames"] == 1 and data["results"][0]["frames"] >= 3
    assert (
        "note: 1 of the 4 frames asked for are held: they fill the 1 byte they may take"
        in capfd.readouterr().err
    )
    with pytest.raises(ConfigError, match=r"^samples memory 0 bytes: expected >= 1 byte$"):
        short_bench(tiny_engines, samples_memory=0)
    with pytest.raises(ConfigError, match=r"^warm-up -1: expected >= 0; samples 0: expected >= 1$"):
        short_bench(tiny_engines, warmup=-1, samples=0)
    short_bench(tiny_engines)  # 4 frames of 96 KiB: the default holds them all, nothing said
    assert "frames asked for are held" not in capfd.readouterr().err


def test_samples_of_a_paced_dataset_are_read_without_its_pace(tmp_path: Path) -> None:
    """cityscapes://DIR?fps=1 keeps one frame a second for a run; held, its frames are read
    as fast as they decode (the report's read time is the reading's, not the pace's)."""
    from edge.data.make_synthetic import write_dataset

    write_dataset(tmp_path, sequences=1, frames=4, size=(64, 128), split="val", gt_every=4)
    source = open_source(f"cityscapes://{tmp_path}?fps=1")
    try:
        samples = load_samples(source)
    finally:
        source.close()
    assert len(samples.frames) == 4
    assert sum(samples.read_ms) < 1500  # paced, the last three would have waited a second each


def test_measure_issues_a_short_video_files_frames_in_turn(tiny_engines: Path, clip: str) -> None:
    engines = EngineSet.from_manifest(tiny_engines, engine_options={"intra_op_threads": 1})
    try:
        m = measure_clip(engines, clip, warmup=2, min_frames=9, min_duration_s=0.0)
        assert m["frames"] == 9  # 5-frame file, 11 frames issued
        # reading the source is outside the measurement: no capture stage
        assert set(m["stages_ms"]) == {"preprocess", "panoptic", "depth", "engines", "postprocess"}
        e = m["end_to_end_ms"]
        assert e["count"] == 9 and 0 < e["min"] <= e["p50"] <= e["p99"] <= e["max"]
        # a frame's latency is its stages, which run one after another (engines side by side)
        parts = sum(m["stages_ms"][k]["mean"] for k in ("preprocess", "engines", "postprocess"))
        assert parts == pytest.approx(e["mean"], rel=0.05)
        assert (
            m["stages_ms"]["engines"]["mean"]
            >= max(m["stages_ms"]["panoptic"]["mean"], m["stages_ms"]["depth"]["mean"]) * 0.99
        )
        # the measured frames are issued back to back: the run lasts their latencies and no more
        # than a few ms a frame besides (the loop's own bookkeeping)
        assert sum(m["samples_ms"]["end_to_end"]) / 1e3 <= m["seconds"]
    finally:
        engines.close()


def test_ctrl_c_while_a_frame_is_recorded_keeps_it_whole(tiny_engines: Path, clip: str) -> None:
    """A real SIGINT just as the third measured frame's second stage is being kept: the
    frame is kept whole (every stage has as many samples as frames were measured)."""
    import linecache

    hits = itertools.count()

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code is not measure.__code__:
            return None  # only measure's own lines are watched
        line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
        # six stages a frame on the CPU: the third frame's second
        if event == "line" and "times_ms.setdefault(stage" in line and next(hits) == 2 * 6 + 1:
            signal.raise_signal(signal.SIGINT)
        return tracer

    engines = EngineSet.from_manifest(tiny_engines, engine_options={"intra_op_threads": 1})
    sys.settrace(tracer)
    try:
        with pytest.raises(Interrupted) as caught:
            measure_clip(engines, clip, warmup=0, min_frames=50, min_duration_s=0.0, power_root=None)
    finally:
        sys.settrace(None)
        engines.close()
    m = caught.value.data
    assert m["complete"] is False and m["frames"] == 3
    assert {len(v) for v in m["samples_ms"].values()} == {3}
    assert len(m["samples_ms"]) == 6  # the stages counted above


def test_progress_total_follows_whichever_minimum_binds() -> None:
    assert frames_needed(0, 0.0, 100, 60.0) == 100  # nothing measured yet
    assert frames_needed(20, 0.2, 10, 1.0) == 100  # 100 fps for 1 s: time binds
    assert frames_needed(20, 10.0, 100, 1.0) == 100  # 2 fps: frames bind
    assert frames_needed(150, 1.2, 100, 1.0) == 150  # never below what was measured
    out = io.StringIO()
    bar = Bar("x", 10, 1.0, file=out, mininterval=0)
    bar.update_to(20, 0.2)
    bar.close()
    assert "20/100" in out.getvalue()  # not "10/10" for the 0.8 s still to run


def test_measure_reports_progress_against_its_duration(tiny_engines: Path, clip: str) -> None:
    """The last report is the one that met both bounds, even when the clock passes the
    duration just after a report (here the report itself waits past it, as a loaded
    machine can between two reads of the clock)."""
    engines = EngineSet.from_manifest(tiny_engines, engine_options={"intra_op_threads": 1})
    calls: list[tuple[int, float]] = []

    def report(n: int, elapsed: float) -> None:
        calls.append((n, elapsed))
        if n == 2 and elapsed < 0.5:  # min_frames met, the duration not yet
            time.sleep(0.5 - elapsed + 0.05)

    try:
        m = measure_clip(engines, clip, warmup=1, min_frames=2, min_duration_s=0.5, progress=report)
    finally:
        engines.close()
    assert [n for n, _ in calls] == list(range(1, m["frames"] + 1))
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(calls))
    assert m["seconds"] >= 0.5 and calls[-1][1] >= 0.5
    # the duration bound the run: the bar's total grew past min_frames to what was run
    assert m["frames"] > 2 and frames_needed(*calls[-1], 2, 0.5) == m["frames"]


@pytest.fixture(scope="module")
def two_results(tiny_engines: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("bench")
    paths = []
    for name in ("a", "b"):
        data = short_bench(tiny_engines, min_frames=6)
        path = out / f"{name}.json"
        path.write_text(json.dumps(data))
        paths.append(path)
    return paths[0], paths[1]


def test_result_has_system_info_and_valid_numbers(two_results: tuple[Path, Path]) -> None:
    data = load_result(two_results[0])
    assert data["scenario"] == "single-stream"
    assert data["system"]["cpu_cores"] >= 1 and data["system"]["versions"]["onnxruntime"]
    assert data["system"]["cpu_extensions"] == cpu_vector_extensions()
    (r,) = data["results"]
    assert r["config"]["label"] == "onnxruntime/fp32/128x256"
    assert r["frames"] == 6 and r["drops"] == 0 and r["throughput_fps"] > 0
    for stats in [r["end_to_end_ms"], *r["stages_ms"].values()]:
        assert all(math.isfinite(v) and v >= 0 for v in stats.values())
        assert stats["p50"] <= stats["p90"] <= stats["p95"] <= stats["p99"] <= stats["max"]
    assert len(r["samples_ms"]["end_to_end"]) == 6
    held = data["samples"]
    assert held["frames"] == data["settings"]["samples"] == 4
    assert held["megabytes"] == round(4 * 128 * 256 * 3 / 2**20, 1)
    assert held["read_ms"]["count"] == 4 and held["read_ms"]["mean"] > 0


def test_a_report_is_what_its_schema_says(
    two_results: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """edge schema bench: a real report taken whole (the CLI too); one unlike it refused, the
    field named: a result without its frames, one stream's fields in a sweep of none, another
    format, a field no report has."""
    text = two_results[0].read_text()
    assert check_document("bench", text) is None
    assert main(["schema", "bench", "--check", str(two_results[0])]) == 0
    assert capsys.readouterr().out == f"{two_results[0]}: bench valid\n"
    data = json.loads(text)
    (r,) = data["results"]
    cases = [
        (
            {**data, "results": [{k: v for k, v in r.items() if k != "frames"}]},
            "results/0: 'frames' is a required",
        ),
        (
            {**data, "results": [{**r, "keeps_up": True}]},
            "results/0: 'streams' is a dependency of 'keeps_up'",
        ),
        ({**data, "format": "edge.bench/0"}, "format: 'edge.bench/1' was expected"),
        (
            {**data, "notes": []},
            "the document: Additional properties are not allowed ('notes' was unexpected)",
        ),
    ]
    for doc, why in cases:
        assert why in (check_document("bench", json.dumps(doc)) or ""), why
    bad = two_results[0].parent / "bad.json"
    bad.write_text(json.dumps(cases[0][0]))
    assert main(["schema", "bench", "--check", str(bad)]) == 1
    assert "bench refused: results/0" in capsys.readouterr().out


def test_compare_two_real_results(two_results: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = (load_result(p) for p in two_results)
    (row,) = compare(a, b)
    want = b["results"][0]["end_to_end_ms"]["p50"] / a["results"][0]["end_to_end_ms"]["p50"]
    assert row["end_to_end_p50_ratio"] == pytest.approx(want)
    assert row["throughput_ratio"] > 0 and row["panoptic_p50_ratio"] > 0
    assert main(["bench", "--compare", str(two_results[0]), str(two_results[1])]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime/fp32/128x256" in out and "end_to_end_p50_ratio" in out
    assert compare_notes(a, b) == []  # one machine, one folder of engines
    # B measured another model under the same label, one more configuration, on another CPU
    extra = json.loads(json.dumps(b["results"][0]))
    extra["config"]["label"] = "torch/fp32/128x256"
    b["results"].append(extra)
    b["results"][0]["engines"]["depth"] = "depth_small onnxruntime fp32 128x256"
    b["system"]["cpu_extensions"] = ["neon"]
    b["system"]["versions"]["onnxruntime"] = "9.9.9"
    notes = compare_notes(a, b)
    assert notes[0] == "only in B (not compared): torch/fp32/128x256"
    assert notes[1].startswith("onnxruntime/fp32/128x256: other engines (A: depth depth_tiny onnxruntime")
    assert "B: depth depth_small onnxruntime fp32 128x256, panoptic" in notes[1]
    ext_a = " ".join(a["system"]["cpu_extensions"]) or "none"
    assert notes[2] == f"other CPU extensions: A {ext_a}, B neon"
    assert notes[-1] == f"other versions: onnxruntime {a['system']['versions']['onnxruntime']} -> 9.9.9"
    changed = two_results[1].parent / "b_changed.json"
    changed.write_text(json.dumps(b))
    assert main(["bench", "--compare", str(two_results[0]), str(changed)]) == 0
    err = capsys.readouterr().err
    assert "note: only in B (not compared): torch/fp32/128x256" in err and "note: other versions" in err
    b["results"][0]["config"]["label"] = "other"
    b["results"].pop()
    with pytest.raises(ConfigError, match="share no configuration"):
        compare(a, b)


def test_bad_inputs_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.json").write_text("{not json")
    (tmp_path / "y.json").write_text('{"format": "something else"}')
    assert main(["bench", "--compare", str(tmp_path / "x.json"), str(tmp_path / "y.json")]) == 2
    assert "not readable JSON" in capsys.readouterr().err
    assert main(["bench", "--compare", str(tmp_path / "y.json"), str(tmp_path / "y.json")]) == 2
    assert "not an edge bench result" in capsys.readouterr().err
    assert main(["bench", "--compare", str(tmp_path / "nope.json"), str(tmp_path / "y.json")]) == 2
    assert main(["bench", "--size", "100x100", "--engines", str(tmp_path)]) == 2
    assert "multiples of 32" in capsys.readouterr().err
    assert main(["bench", "--source", "synthetic://?fps=-1", "--engines", str(tmp_path)]) == 2
    assert not (tmp_path / "manifest.json").exists()  # nothing built for a bad source
    with pytest.raises(SystemExit):
        main(["bench", "--min-duration", "-3"])
    with pytest.raises(SystemExit):
        main(["bench", "--samples", "0"])
    assert "argument --samples: expected a positive integer, got '0'" in capsys.readouterr().err


def test_cli_bench_writes_the_report(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --size the folder's engines are measured at the size they were built
    (128x256 here), and nothing is built."""
    manifest_before = (tiny_engines / "manifest.json").read_text()
    rc = main(
        [
            "bench",
            "--engines",
            str(tiny_engines),
            "--source",
            "synthetic://?size=128x256",
            "--warmup",
            "1",
            "--min-frames",
            "3",
            "--min-duration",
            "0",
            "--threads",
            "1",
            "--quiet",
            "--no-draw",
            "--samples",
            "2",
            "--report",
            str(tmp_path / "rep"),
        ]
    )
    assert rc == 0
    assert "onnxruntime/fp32/128x256" in capsys.readouterr().out
    assert {p.name for p in (tmp_path / "rep").iterdir()} == REPORT_FILES
    assert (tiny_engines / "manifest.json").read_text() == manifest_before
    data = load_result(tmp_path / "rep" / "bench.json")
    (r,) = data["results"]
    assert r["config"]["size"] == [128, 256] and r["config"]["label"] == "onnxruntime/fp32/128x256"
    # --no-draw: the post stage of a run into objects.jsonl, and the report says so
    assert data["settings"]["draw"] is False
    # the source's first two frames, issued in turn
    assert data["samples"]["frames"] == 2 and r["frames"] == 3
    read = f"{data['samples']['read_ms']['mean']:.1f} ms each, mean; not measured"
    for name in ("report.md", "report.html"):
        text = (tmp_path / "rep" / name).read_text()
        assert "Postprocess: panoptic fusion only (--no-draw" in text
        assert (
            f"Its first 2 frames (128x256, 0.2 MB) were read into memory first ({read}) and issued in turn."
            in text
        )


def test_compare_notes_other_settings(two_results: tuple[Path, Path]) -> None:
    a, b = (load_result(p) for p in two_results)
    assert a["settings"]["draw"] is True
    b["settings"].update(draw=False, warmup=5)
    assert compare_notes(a, b) == ["other settings: draw True -> False, warmup 1 -> 5"]
    # a file from before --no-draw existed drew every view
    del a["settings"]["draw"]
    b["settings"].update(draw=True, warmup=1)
    assert compare_notes(a, b) == []
    # one from before the frames were held read its source between frames, in its fps
    del a["settings"]["samples"]
    assert compare_notes(a, b) == [
        "other settings: samples none (the source read between frames, counted in fps) -> 4"
    ]


def test_a_bench_of_padded_frames_records_its_fit(
    tiny_engines: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """4:3 frames into the 1:2 test engines: padded, nothing is said and the result records
    the fit; stretched, the squash is said; compare notes the difference, and a file from
    before --fit existed stretched."""
    source = "synthetic://?size=96x128"
    padded = short_bench(tiny_engines, source=source, fit="pad")
    assert padded["settings"]["fit"] == "pad" and padded["results"][0]["frames"] >= 3
    assert padded["samples"]["sizes"] == ["96x128"]
    assert "squashed" not in capfd.readouterr().err
    stretched = short_bench(tiny_engines, source=source)
    assert "squashed to 67% of its height" in capfd.readouterr().err
    assert compare_notes(stretched, padded) == ["other settings: fit stretch -> pad"]
    del stretched["settings"]["fit"]
    assert compare_notes(stretched, padded) == ["other settings: fit stretch -> pad"]


def test_models_choose_what_is_measured(tiny_engines: Path, tmp_path: Path) -> None:
    import shutil

    engines = tmp_path / "engines"
    shutil.copytree(tiny_engines, engines)
    # a second depth engine at the same size, built later: a copy of depth_tiny's entry
    manifest = json.loads((engines / "manifest.json").read_text())
    tiny = next(e for e in manifest["engines"].values() if e["model"] == "depth_tiny")
    later = {**json.loads(json.dumps(tiny)), "id": "later", "model": "depth_small", "built_at": "9999-01-01"}
    manifest["engines"]["later"] = later
    (engines / "manifest.json").write_text(json.dumps(manifest))
    size = f"{TEST_SIZE[0]}x{TEST_SIZE[1]}"

    def bench(models: list[str] | None) -> dict[str, Any]:
        return short_bench(engines, models=models, warmup=0, min_frames=1)

    assert (
        bench(None)["results"][0]["engines"]["depth"] == f"depth_small onnxruntime fp32 {size}"
    )  # the newest
    data = bench(["panoptic_fpn_tiny", "depth_tiny"])
    assert data["results"][0]["engines"] == {
        "panoptic": f"panoptic_fpn_tiny onnxruntime fp32 {size}",
        "depth": f"depth_tiny onnxruntime fp32 {size}",
    }
    with pytest.raises(ConfigError, match="names two depth models, 'depth_tiny' and 'depth_small'"):
        bench(["depth_tiny", "depth_small"])
    report = write_report(data, tmp_path / "rep")
    assert f"- depth: `depth_tiny onnxruntime fp32 {size}`" in report["markdown"].read_text()
    assert f"<li>depth: <code>depth_tiny onnxruntime fp32 {size}</code></li>" in report["html"].read_text()


def test_an_int8_row_to_build_without_calibration_frames_stops_the_sweep_before_it_begins(
    tiny_engines: Path,
) -> None:
    """An INT8 engine to build needs --calib-data: said before the fp32 row is measured, not
    once the sweep reaches the INT8 row minutes later. A sweep that builds nothing is not
    asked for it: its INT8 row fails as a missing engine does."""
    configs = sweep(["onnxruntime"], ["fp32", "int8"], [TEST_SIZE], None)
    with pytest.raises(ConfigError) as refused:
        short_bench(tiny_engines, configs=configs, build_missing=True, power_root=None)
    assert str(refused.value) == (
        f"onnxruntime/int8/{TEST_SIZE[0]}x{TEST_SIZE[1]}: {str(tiny_engines)!r} holds no such engines, and "
        "building INT8 ones needs calibration frames: give --calib-data URI (e.g. "
        "'cityscapes://DIR?split=train', a video, an image folder or synthetic://)"
    )
    with pytest.raises(ManifestError, match="no onnxruntime int8"):  # nothing to build: the row itself fails
        short_bench(tiny_engines, configs=configs, build_missing=False)


def test_a_sweep_without_size_measures_every_row_at_one_size(tiny_engines: Path, tmp_path: Path) -> None:
    """The folder's onnxruntime engines are at the test size and its torch one at another: in
    one sweep the torch row is asked for the first row's size (which this folder lacks, and
    with building off that is the error), not measured at its own."""
    import shutil

    from edge.build import BuildRequest, build_all
    from edge.errors import ManifestError

    engines = tmp_path / "engines"
    shutil.copytree(tiny_engines, engines)
    other = (TEST_SIZE[0] // 2, TEST_SIZE[1] // 2)
    build_all([BuildRequest(model="depth_tiny", height=other[0], width=other[1], backend="torch")], engines)
    torch_only = sweep(["torch"], ["fp32"], [None], None)
    alone = short_bench(engines, configs=torch_only, models=["depth_tiny"], warmup=0, min_frames=1)
    assert alone["results"][0]["config"]["size"] == other  # its newest, measured alone
    both = sweep(["onnxruntime", "torch"], ["fp32"], [None], None)
    with pytest.raises(ManifestError, match=f"has no torch fp32 {TEST_SIZE[0]}x{TEST_SIZE[1]} depth engine"):
        short_bench(engines, configs=both, models=["depth_tiny"], warmup=0, min_frames=1)


def test_a_sweep_killed_later_keeps_the_configurations_it_measured(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL, after which nothing of edge runs (out of memory in a TensorRT build, a
    board's power cut), while the sweep builds its second size's engine: the first size's
    report is there, whole, and says it is unfinished."""
    import shutil
    import subprocess

    engines = tmp_path / "engines"
    shutil.copytree(tiny_engines, engines)
    cmd = [sys.executable, "-m", "edge.cli", "bench", "--engines", str(engines), "--models", "depth_tiny"]
    cmd += ["--size", "128x256", "64x128", "--source", "synthetic://?size=128x256", "--samples", "2"]
    cmd += ["--warmup", "1", "--min-frames", "3", "--min-duration", "0", "--threads", "1", "--quiet"]
    rep = tmp_path / "rep"
    proc = subprocess.Popen(
        [*cmd, "--report", str(rep)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    try:
        while not (rep / "report.html").exists():  # the last of a report's files to be written
            assert proc.poll() is None, "the run ended before the first configuration's report was written"
            assert time.monotonic() < deadline, "no report within 120 s"
            time.sleep(0.01)
        assert not (engines / "manifest.json").read_text().count("64x128"), "killed before the build"
    finally:
        proc.kill()
        proc.wait()
    data = load_result(rep / "bench.json")
    assert data["unfinished"] == {"complete_configurations": 1, "configurations": 2}
    assert check_document("bench", (rep / "bench.json").read_text()) is None
    (r,) = data["results"]
    assert r["config"]["label"] == "onnxruntime/fp32/128x256" and r["frames"] == 3
    assert {p.name for p in rep.iterdir()} == REPORT_FILES  # and nothing half-written beside them
    line = "Unfinished: written after 1 of 2 configuration(s) were measured, by a run that had not finished"
    assert line in (rep / "report.md").read_text() and line in (rep / "report.html").read_text()
    assert main(["bench", "--compare", str(rep / "bench.json"), str(rep / "bench.json")]) == 0
    assert "is from a run that did not finish: 1 of 2 configuration(s)" in capsys.readouterr().err


def test_ctrl_c_keeps_what_was_measured(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A long run stopped by Ctrl-C writes its report, marked incomplete, and exits 130."""
    cmd = [sys.executable, "-m", "edge.cli", "bench", "--engines", str(tiny_engines), "--size", "128x256"]
    cmd += ["--source", "synthetic://?size=128x256", "--warmup", "1", "--min-frames", "100000"]
    cmd += ["--threads", "1", "--report", "rep"]
    # on a terminal, as a user is, who presses Ctrl-C once the bar shows 3 frames measured
    with OnTerminal(cmd, cwd=tmp_path) as run:
        run.wait_for(lambda seen: re.search(r"\| *([3-9]|\d\d+)/100000", seen) is not None)
        run.proc.send_signal(signal.SIGINT)
        code, out, err = run.finish()
    assert code == 130, err
    assert "Traceback" not in err and "stopped during onnxruntime/fp32/128x256" in err
    # said at once, on a line of its own, not after the bar's text (the pty shows \n as \r\n)
    assert re.search(r"/100000 \[[^\r\n]*\]\r\ninterrupted: finishing the outputs first\r\n", err), err
    assert "onnxruntime/fp32/128x256 (incomplete)" in out
    rep = tmp_path / "rep"
    assert {p.name for p in rep.iterdir()} == REPORT_FILES
    data = load_result(rep / "bench.json")
    assert data["interrupted"] == {
        "during": "onnxruntime/fp32/128x256",
        "complete_configurations": 0,
        "configurations": 1,
    }
    (r,) = data["results"]
    assert r["complete"] is False and r["frames"] >= 3
    assert check_document("bench", (rep / "bench.json").read_text()) is None
    assert {len(v) for v in r["samples_ms"].values()} == {r["frames"]}, "every frame counted whole"
    assert "Interrupted (Ctrl-C) during onnxruntime/fp32/128x256" in (rep / "report.md").read_text()
    assert "(incomplete)" in (rep / "report.html").read_text()
    assert main(["bench", "--compare", str(rep / "bench.json"), str(rep / "bench.json")]) == 0
    assert "is from an interrupted run" in capsys.readouterr().err


def test_a_source_that_knows_its_camera_has_its_objects_placed_as_edge_run_places_them(
    tiny_engines: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The samples keep the source's field of view and ground plane, and the measured tracker
    places the objects with them (the postprocess stage does what edge run's does), said as
    edge run says it."""
    with contextlib.closing(open_source("synthetic://?size=64x128&frames=2")) as source:
        samples = load_samples(source)
    assert samples.uri == "synthetic://?size=64x128&frames=2"
    assert samples.hfov_deg == pytest.approx(48.8879, abs=1e-4)
    assert samples.ground == source.ground  # type: ignore[attr-defined]
    engines = EngineSet.from_manifest(tiny_engines, engine_options={"intra_op_threads": 1})
    try:
        measure(engines, samples, warmup=0, min_frames=2, min_duration_s=0.0, power_root=None)
    finally:
        engines.close()
    err = capsys.readouterr().err
    assert "note: objects are placed with the field of view of the camera of 'synthetic://" in err
    assert "note: objects' distances are read from the road where they stand, 1.2 m below the camera" in err
