"""edge bench --streams: several cameras at a rate each through one set of real tiny engines."""

from __future__ import annotations

import json
import math
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from edge.bench import BenchConfig, run_bench, sweep
from edge.bench_compare import compare, compare_notes, load_result
from edge.bench_samples import Samples, load_samples
from edge.bench_streams import HeldSource, fair_parts, measure_streams, phases
from edge.cli import main
from edge.errors import ConfigError, Interrupted
from edge.report.bench_report import write_report
from edge.schemas import check_document
from edge.stream.engines import EngineSet
from edge.stream.sources import open_source
from tests.conftest import TEST_SIZE, OnTerminal

SIZE = f"{TEST_SIZE[0]}x{TEST_SIZE[1]}"
REPORT_FILES = {"bench.json", "report.md", "report.html", "cdf.png", "stages.png", "timeline.png"}
# a frame's stages one after another, which with its waits in the queues make its latency
IN_TURN = ("turn", "preprocess", "engines", "postprocess", "sink", "queues")


def held(uri: str = f"synthetic://?size={SIZE}", count: int = 3) -> Samples:
    source = open_source(uri)
    try:
        return load_samples(source, count)
    finally:
        source.close()


@pytest.fixture
def engines(tiny_engines: Path) -> Any:
    engine_set = EngineSet.from_manifest(tiny_engines, engine_options={"intra_op_threads": 1})
    yield engine_set
    engine_set.close()


def test_held_frames_come_round_in_turn_as_new_scenes_each_at_its_time() -> None:
    samples = held(count=2)
    t0 = time.perf_counter_ns()
    source = HeldSource(samples, uri="held://a", fps=50.0, t0_ns=t0, phase_s=0.01)
    frames = [source.read() for _ in range(5)]
    assert all(f is not None for f in frames)
    assert [f.seq for f in frames] == [0, 1, 2, 3, 4]  # type: ignore[union-attr]
    assert [f.meta["loop"] for f in frames] == [0, 0, 1, 1, 2]  # type: ignore[union-attr]
    assert all(f.image is samples.frames[i % 2].image for i, f in enumerate(frames))  # type: ignore[union-attr]
    assert {f.source for f in frames} == {"held://a"}  # type: ignore[union-attr]
    # a camera's frame arrives no sooner than its time: the phase, then one each 20 ms
    for k, f in enumerate(frames):
        assert f.t_capture_ns >= t0 + 10_000_000 + k * 20_000_000  # type: ignore[union-attr]
    # the rate streams get by default is the source's own (synthetic://: 17 unless told)
    assert held(count=1).fps == 17.0 and held(f"synthetic://?size={SIZE}&fps=12", 1).fps == 12.0


def test_a_read_waiting_for_its_frames_time_ends_when_the_run_stops() -> None:
    source = HeldSource(held(count=1), uri="held://a", fps=0.01)  # a frame each 100 s
    assert source.read() is not None  # the first, at once
    threading.Timer(0.1, source.interrupt).start()
    t = time.monotonic()
    assert source.read() is None and time.monotonic() - t < 30


def test_arrivals_together_or_spread_over_a_period() -> None:
    assert phases(3, 10.0, "together") == [0.0, 0.0, 0.0]
    assert phases(4, 10.0, "spread") == pytest.approx([0.0, 0.025, 0.05, 0.075])
    with pytest.raises(ConfigError, match="arrival 'staggered': expected one of together, spread"):
        phases(2, 10.0, "staggered")


def test_two_streams_that_keep_up(engines: Any) -> None:
    """Two cameras at 4 fps each, far below what the engines take: each stream's frames are
    measured apart, none arrive faster than their rate, each frame's stages and waits add
    up to its latency, and the streams are served alike."""
    m = measure_streams(
        engines, held(), streams=2, rate=4.0, warmup=2, min_frames=8, min_duration_s=0.0, power_root=None
    )
    assert m["rate_fps"] == 4.0 and set(m["streams"]) == {"stream0", "stream1"}
    assert m["frames"] >= 8 and m["frames"] == sum(s["frames"] for s in m["streams"].values())
    assert m["end_to_end_ms"]["count"] == m["frames"]
    assert {len(v) for v in m["samples_ms"].values()} == {m["frames"]}, "every frame counted whole"
    assert set(IN_TURN) | {"panoptic", "depth", "tracks"} <= set(m["stages_ms"])
    for s in m["streams"].values():
        # a camera gives no more than its rate: one frame at the start, then one a period
        assert s["arrived"] <= 1 + math.ceil(4.0 * m["seconds"])
        assert s["frames"] + s["drops"] <= s["arrived"]
        assert s["end_to_end_ms"]["count"] == s["frames"]
    samples = m["samples_ms"]
    for i in range(m["frames"]):
        parts = sum(samples[k][i] for k in IN_TURN)
        assert parts == pytest.approx(samples["end_to_end"][i], abs=1e-3)
        assert samples["engines"][i] == max(samples["panoptic"][i], samples["depth"][i])
    assert m["drops"] == sum(s["drops"] for s in m["streams"].values())
    assert m["dropped_fraction"] == (m["drops"] / m["arrived"] if m["arrived"] else 0.0)
    assert 0 < m["evenness"] <= 1
    assert m["keeps_up"] == all(s["dropped_fraction"] <= 0.01 for s in m["streams"].values())


def test_streams_faster_than_the_engines_drop_frames(engines: Any) -> None:
    """Three cameras at 200 fps each, more than the engines take: frames are dropped, as a
    camera's are, each stream's within the frames that arrived, and the run did not keep up."""
    m = measure_streams(
        engines, held(), streams=3, rate=200.0, warmup=1, min_frames=9, min_duration_s=0.0, power_root=None
    )
    assert m["drops"] > 0 and not m["keeps_up"]
    assert m["dropped_fraction"] == pytest.approx(m["drops"] / m["arrived"])
    for s in m["streams"].values():
        assert s["frames"] + s["drops"] <= s["arrived"]
        assert s["dropped_fraction"] == pytest.approx(s["drops"] / s["arrived"])
    assert min(s["frames"] for s in m["streams"].values()) >= 1, "each stream is served"


def test_a_stream_ranked_first_keeps_the_engines_the_others_overload(engines: Any) -> None:
    """Three cameras at 200 fps each, stream0 ranked first: its next frame is always ready as
    its turn ends, so it keeps the engines and the others get what it leaves."""
    m = measure_streams(
        engines,
        held(),
        streams=3,
        rate=200.0,
        warmup=1,
        min_frames=12,
        min_duration_s=0.0,
        power_root=None,
        priorities={"stream0": 1, "stream7": 2},  # a stream this run lacks is left out
    )
    frames = {name: s["frames"] for name, s in m["streams"].items()}
    assert frames["stream0"] >= 2 * max(1, frames["stream1"] + frames["stream2"]), frames


def test_streams_overloading_the_engines_get_turns_by_their_shares(engines: Any) -> None:
    """Two cameras at 200 fps each, stream0 of share 3: it gets about three turns to
    stream1's one (3:1 where both always wait), and stream1 is not starved."""
    m = measure_streams(
        engines,
        held(),
        streams=2,
        rate=200.0,
        warmup=1,
        min_frames=24,
        min_duration_s=0.0,
        power_root=None,
        shares={"stream0": 3.0},
    )
    frames = {name: s["frames"] for name, s in m["streams"].items()}
    assert frames["stream0"] >= 1.5 * frames["stream1"] and frames["stream1"] >= 2, frames
    # evenness is of frames a share: 3:1 served by shares of 3 and 1 is even
    per_share = sorted([frames["stream0"] / 3, float(frames["stream1"])])
    assert m["evenness"] == pytest.approx(per_share[0] / per_share[1])


@pytest.mark.parametrize(
    "served,asked,shares,fair",
    [
        (20, {"a": 10, "b": 10}, {}, {"a": 10, "b": 10}),  # room for all: what each asked
        (30, {"a": 100, "b": 100}, {"a": 2}, {"a": 20, "b": 10}),  # overloaded: by share
        (20, {"a": 30, "b": 10}, {}, {"a": 10, "b": 10}),  # 30 and 10 fps: b sated, a the rest
        (20, {"a": 30, "b": 10}, {"a": 3}, {"a": 15, "b": 5}),
        (24, {"a": 4, "b": 100, "c": 100}, {}, {"a": 4, "b": 10, "c": 10}),  # a's leftover shared
        (24, {"a": 4, "b": 100, "c": 100}, {"c": 3}, {"a": 4, "b": 5, "c": 15}),
        (0, {"a": 5, "b": 0}, {}, {"a": 0, "b": 0}),
        (0, {}, {}, {}),
    ],
)
def test_fair_parts_by_hand(served: int, asked: dict, shares: dict, fair: dict) -> None:
    got = fair_parts(served, asked, {n: shares.get(n, 1.0) for n in asked})
    assert got == pytest.approx(fair)


def test_streams_at_their_own_rates(engines: Any) -> None:
    """stream1 at 8 fps beside stream0 at 2, both well below what the engines take: each
    camera gives its own rate, and both are served all they asked (even by rate)."""
    m = measure_streams(
        engines,
        held(),
        streams=2,
        rate=2.0,
        rates={"stream1": 8.0, "stream5": 1.0},  # a stream this run lacks is left out
        warmup=1,
        min_frames=10,
        min_duration_s=1.0,
        power_root=None,
    )
    s0, s1 = m["streams"]["stream0"], m["streams"]["stream1"]
    assert (s0["rate_fps"], s1["rate_fps"], m["rate_fps"]) == (2.0, 8.0, 2.0)
    for s in (s0, s1):
        assert s["arrived"] <= 1 + math.ceil(s["rate_fps"] * m["seconds"])
    assert s1["arrived"] >= 2 * s0["arrived"] > 0
    fair = fair_parts(
        m["frames"], {"stream0": s0["arrived"], "stream1": s1["arrived"]}, {"stream0": 1, "stream1": 1}
    )
    got = sorted([s0["frames"] / fair["stream0"], s1["frames"] / fair["stream1"]])
    assert m["evenness"] == pytest.approx(got[0] / got[1])
    # by frames alone the slower camera would look starved: 2 fps against 8
    assert m["evenness"] > s0["frames"] / s1["frames"]


def test_ctrl_c_keeps_the_frames_measured_whole(engines: Any) -> None:
    calls: list[int] = []

    def stop_at_the_fourth(n: int, elapsed: float) -> None:
        calls.append(n)
        if n == 4:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as caught:
        measure_streams(
            engines,
            held(),
            streams=2,
            rate=20.0,
            warmup=0,
            min_frames=1000,
            min_duration_s=0.0,
            progress=stop_at_the_fourth,
            power_root=None,
        )
    m = caught.value.data
    assert m["complete"] is False and m["frames"] == 4 and calls == [1, 2, 3, 4]
    assert {len(v) for v in m["samples_ms"].values()} == {4}


def test_bad_streams_and_rates_are_clear_errors(engines: Any, tiny_engines: Path) -> None:
    kw: dict[str, Any] = {"warmup": 0, "min_frames": 1, "min_duration_s": 0.0}
    for streams, rate, said in (
        (0, 5.0, "streams 0: expected a whole number >= 1"),
        (True, 5.0, "streams True"),
        (2, 0.0, "stream rate 0.0: expected frames per second, a number > 0"),
        (2, math.nan, "stream rate nan"),
        (2, math.inf, "stream rate inf"),
    ):
        with pytest.raises(ConfigError, match=re.escape(said)):
            measure_streams(engines, held(count=1), streams=streams, rate=rate, **kw)
    # run_bench refuses them before it reads a frame or builds an engine
    with pytest.raises(ConfigError, match="streams 0"):
        run_bench([BenchConfig(streams=0)], engines=tiny_engines, source="nope://", build_missing=False)
    with pytest.raises(ConfigError, match="stream rate -1"):
        run_bench([BenchConfig(streams=1)], engines=tiny_engines, source="nope://", rate=-1.0)
    with pytest.raises(ConfigError, match=re.escape("--priority stream2: no stream is named 'stream2'")):
        run_bench(
            [BenchConfig(streams=1), BenchConfig(streams=2)],
            engines=tiny_engines,
            source="nope://",
            priorities={"stream2": 1},
        )
    with pytest.raises(ConfigError, match="priorities rank the streams of a multi-stream run"):
        run_bench([BenchConfig()], engines=tiny_engines, source="nope://", priorities={"stream0": 1})
    with pytest.raises(ConfigError, match=re.escape("--share stream1=0.0: expected a number > 0")):
        run_bench([BenchConfig(streams=2)], engines=tiny_engines, source="nope://", shares={"stream1": 0.0})
    with pytest.raises(ConfigError, match="shares divide the turns of a multi-stream run's streams"):
        run_bench([BenchConfig()], engines=tiny_engines, source="nope://", shares={"stream0": 2.0})
    for rates, said in (
        ({"stream2": 5.0}, "--rate stream2: no stream is named 'stream2' (the streams: stream0, stream1)"),
        ({"stream1": 0.0}, "--rate stream1=0.0: expected frames per second, a number > 0"),
        ({"stream1": math.inf}, "--rate stream1=inf: expected frames per second"),
    ):
        with pytest.raises(ConfigError, match=re.escape(said)):
            run_bench([BenchConfig(streams=2)], engines=tiny_engines, source="nope://", rates=rates)
    with pytest.raises(ConfigError, match="rates by stream pace the streams of a multi-stream run"):
        run_bench([BenchConfig()], engines=tiny_engines, source="nope://", rates={"stream0": 2.0})


def test_the_sweep_takes_stream_counts_as_an_axis() -> None:
    configs = sweep(["onnxruntime"], ["fp32"], [TEST_SIZE], None, [1, 2])
    assert [c.label for c in configs] == [
        f"onnxruntime/fp32/{SIZE}/1 stream",
        f"onnxruntime/fp32/{SIZE}/2 streams",
    ]
    assert sweep(["onnxruntime"], ["fp32"], [TEST_SIZE], None)[0].label == f"onnxruntime/fp32/{SIZE}"


def short_streams(engines: Path, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "engines": engines,
        "source": f"synthetic://?size={SIZE}",
        "warmup": 1,
        "min_frames": 4,
        "min_duration_s": 0.0,
        "threads": 1,
        "build_missing": False,
        "show_progress": False,
        "samples": 2,
        "power_root": None,
    }
    configs = kw.pop("configs", [BenchConfig(size=TEST_SIZE, streams=n) for n in (1, 2)])
    return run_bench(configs, **{**args, **kw})


@pytest.fixture(scope="module")
def two_multi_stream_results(
    tiny_engines: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """Two real runs of the sweep 1 and 2 streams: at the source's rate (17 fps), and at 8."""
    out = tmp_path_factory.mktemp("bench_streams")
    paths = []
    for name, rate in (("a", None), ("b", 8.0)):
        data = short_streams(tiny_engines, rate=rate)
        write_report(data, out / name)
        paths.append(out / name / "bench.json")
    return paths[0], paths[1]


def test_a_rigs_settings_are_what_the_schema_says(tiny_engines: Path) -> None:
    """A sweep's rates, ranks and shares by stream, in bench.json's settings: edge schema bench
    takes them (a stream named as edge run names a camera: stream0, or a rig's front); a share
    by a name no stream can have, not."""
    data = short_streams(
        tiny_engines,
        configs=[BenchConfig(size=TEST_SIZE, streams=2)],
        rates={"stream1": 5.0},
        priorities={"stream0": 1},
        shares={"stream1": 2.0},
        min_frames=2,
    )
    assert data["settings"]["rates_fps"] == {"stream1": 5.0} and data["settings"]["shares"] == {
        "stream1": 2.0
    }
    assert check_document("bench", json.dumps(data)) is None
    data["settings"]["shares"] = {"front camera": 2.0}
    said = check_document("bench", json.dumps(data)) or ""
    assert "settings/shares: 'front camera' does not match" in said


def test_a_look_for_a_stream_the_bench_lacks_is_refused(tiny_engines: Path) -> None:
    from edge.bench_streams import Look

    with pytest.raises(
        ConfigError, match=r"the look of stream 'rear': no stream is named so \(the streams: front\)"
    ):
        short_streams(
            tiny_engines,
            configs=[BenchConfig(size=TEST_SIZE, streams=1)],
            stream_names=["front"],
            stream_looks={"rear": Look(flip="clockwise")},
        )


def test_a_multi_stream_report_has_every_section(two_multi_stream_results: tuple[Path, Path]) -> None:
    data = load_result(two_multi_stream_results[0])
    assert data["scenario"] == "multi-stream" and data["settings"]["rate_fps"] == 17.0
    labels = [r["config"]["label"] for r in data["results"]]
    assert labels == [f"onnxruntime/fp32/{SIZE}/1 stream", f"onnxruntime/fp32/{SIZE}/2 streams"]
    for path in two_multi_stream_results:  # edge schema bench takes them; without a stream's fields, not
        assert check_document("bench", path.read_text()) is None
    short = {**data, "results": [{k: v for k, v in r.items() if k != "streams"} for r in data["results"]]}
    assert "'streams' is a required property" in (check_document("bench", json.dumps(short)) or "")
    assert [len(r["streams"]) for r in data["results"]] == [1, 2]
    for r in data["results"]:
        assert r["config"]["streams"] == len(r["streams"]) and r["frames"] >= 4
        for stats in [r["end_to_end_ms"], *r["stages_ms"].values()]:
            assert all(math.isfinite(v) and v >= 0 for v in stats.values())
            assert stats["p50"] <= stats["p90"] <= stats["p95"] <= stats["p99"] <= stats["max"]
    folder = two_multi_stream_results[0].parent
    assert {p.name for p in folder.iterdir()} == REPORT_FILES
    md = (folder / "report.md").read_text()
    page = (folder / "report.html").read_text()
    for text in (md, page):
        assert "Scenario: multi-stream: each configuration&#x27;s streams" in text or (
            "Scenario: multi-stream: each configuration's streams" in text
        )
        assert "get a frame 17 times a second" in text and "Kept up:" in text
        two = data["results"][1]
        assert f"{two['throughput_fps']:.1f} fps together at 17 fps a stream" in text
        assert "stream1" in text and "Evenness" in text
    assert "## Streams (end-to-end ms)" in md and "<h2>Streams (end-to-end ms)</h2>" in page


def test_compare_two_real_multi_stream_results(two_multi_stream_results: tuple[Path, Path]) -> None:
    a, b = (load_result(p) for p in two_multi_stream_results)
    rows = compare(a, b)
    assert [r["config"] for r in rows] == [r["config"]["label"] for r in a["results"]]
    for row, ra, rb in zip(rows, a["results"], b["results"], strict=True):
        assert row["throughput_ratio"] == pytest.approx(rb["throughput_fps"] / ra["throughput_fps"])
        assert row["turn_p50_ratio"] > 0
    notes = compare_notes(a, b)
    assert "other settings: rate_fps 17.0 -> 8.0" in notes
    # what a ratio of drops would hide (none in A): each configuration's, and whether it kept up
    for ra, rb in zip(a["results"], b["results"], strict=True):
        said = [n for n in notes if n.startswith(f"{ra['config']['label']}: dropped ")]
        kept = {True: "kept up", False: "did not keep up"}
        assert said == [
            f"{ra['config']['label']}: dropped {ra['dropped_fraction']:.1%} ({kept[ra['keeps_up']]}) -> "
            f"{rb['dropped_fraction']:.1%} ({kept[rb['keeps_up']]})"
        ]


def test_cli_bench_streams(tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["bench", "--engines", str(tiny_engines), "--source", f"synthetic://?size={SIZE}"]
    common += ["--warmup", "1", "--min-frames", "4", "--min-duration", "0", "--threads", "1", "--quiet"]
    ranked = [
        "--streams",
        "2",
        "--rate",
        "6",
        "--rate",
        "stream1=3",
        "--priority",
        "stream1=2",
        "--arrival",
        "spread",
        "--share",
        "stream0=2.5",
    ]
    rc = main([*common, "--samples", "2", *ranked, "--report", str(tmp_path / "rep")])
    assert rc == 0
    out = capsys.readouterr().out
    assert re.search(
        rf"onnxruntime/fp32/{SIZE}/2 streams +\d+ frames .* dropped \d+\.\d% \((kept up|did not keep up)\)",
        out,
    )
    data = load_result(tmp_path / "rep" / "bench.json")
    assert data["settings"]["rate_fps"] == 6.0 and data["results"][0]["rate_fps"] == 6.0
    assert data["settings"]["rates_fps"] == {"stream1": 3.0}
    assert [s["rate_fps"] for s in data["results"][0]["streams"].values()] == [6.0, 3.0]
    assert data["settings"]["priorities"] == {"stream1": 2}
    assert data["settings"]["shares"] == {"stream0": 2.5}
    assert data["settings"]["arrival"] == "spread"
    assert (
        "get a frame 6 times a second (stream1 3: --rate NAME=FPS), spread evenly over a frame's period"
        in (tmp_path / "rep" / "report.md").read_text()
    )
    assert main([*common, "--arrival", "spread", "--report", str(tmp_path / "other")]) == 2
    assert "--arrival spread: it times the cameras of --streams; give --streams" in capsys.readouterr().err
    ranks = "Ranks at the engines (--priority; a higher one goes first, every other stream 0): stream1 2."
    assert ranks in (tmp_path / "rep" / "report.md").read_text()
    shares = "Shares of the turns among a rank (--share; every other stream 1): stream0 2.5."
    assert shares in (tmp_path / "rep" / "report.md").read_text()
    assert (
        "else a part of those served by its share; the least over the most)"
        in (tmp_path / "rep" / "report.md").read_text()
    )
    assert main([*common, "--priority", "stream0", "--report", str(tmp_path / "other")]) == 2
    assert "--priority stream0: it ranks the streams of --streams; give --streams" in capsys.readouterr().err
    assert main([*common, "--streams", "2", "--priority", "stream0", "--priority", "stream0=2"]) == 2
    assert "--priority names a stream twice" in capsys.readouterr().err
    assert main([*common, "--share", "stream0=2", "--report", str(tmp_path / "other")]) == 2
    assert "--share stream0: it shares the turns of the streams of --streams" in capsys.readouterr().err
    assert main([*common, "--streams", "2", "--share", "stream0=2", "--share", "stream0=3"]) == 2
    assert "--share names a stream twice" in capsys.readouterr().err
    # --rate paces --streams' cameras: alone it is refused, and nothing is measured
    assert main([*common, "--rate", "6", "--report", str(tmp_path / "other")]) == 2
    assert "--rate 6: it paces the cameras of --streams; give --streams too" in capsys.readouterr().err
    assert main([*common, "--rate", "stream1=6", "--report", str(tmp_path / "other")]) == 2
    assert "--rate stream1: it paces the streams of --streams; give --streams too" in capsys.readouterr().err
    assert (
        main([*common, "--streams", "2", "--rate", "6", "--rate", "7", "--report", str(tmp_path / "other")])
        == 2
    )
    assert (
        "--rate is given 2 times without a stream's name; give the streams' rate once"
        in capsys.readouterr().err
    )
    assert main([*common, "--streams", "2", "--rate", "stream1=6", "--rate", "stream1=7"]) == 2
    assert "--rate names a stream twice" in capsys.readouterr().err
    assert main([*common, "--streams", "2", "--rate", "stream9=6", "--report", str(tmp_path / "other")]) == 2
    assert (
        "--rate stream9: no stream is named 'stream9' (the streams: stream0, stream1)"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "other").exists()
    for bad, said in (
        (["--streams", "0"], "argument --streams: expected a positive integer, got '0'"),
        (["--streams", "2", "--rate", "0"], "argument --rate: expected a positive number"),
        (["--streams", "2", "--rate", "stream1=0"], "(FPS, or NAME=FPS for one stream), got 'stream1=0'"),
        (
            ["--streams", "2", "--rate", "=5"],
            "argument --rate: expected a positive number of frames per second",
        ),
    ):
        with pytest.raises(SystemExit):
            main([*common, *bad])
        assert said in capsys.readouterr().err


def test_cli_bench_a_rigs_cameras(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """edge bench --rig: a stream each of the rig's cameras, named as them, at the rates
    their sources name (else --rate), of the sizes they ask, with their shares, each camera's
    frames undistorted, flipped and fitted as its own are in edge run; a --rate NAME=FPS goes
    over the rig's; the report is what edge schema bench takes."""
    from tests.stream.test_undistort import write_opencv

    lens = write_opencv(tmp_path / "right.yml")
    rig = tmp_path / "car.toml"
    rig.write_text(
        '[cameras.front]\nsource = "/dev/video0?fps=8"\nshare = 2\n'
        '[cameras.left]\nsource = "/dev/video2?width=192&height=144&fps=4"\nflip = "clockwise"\n'
        '[cameras.right]\nsource = "/dev/video4"\nundistort = "right.yml"\nfit = "pad"\n'
    )
    common = ["bench", "--engines", str(tiny_engines), "--source", f"synthetic://?size={SIZE}"]
    common += ["--warmup", "1", "--min-frames", "4", "--min-duration", "0", "--threads", "1", "--quiet"]
    common += ["--samples", "2", "--rig", str(rig)]
    assert main([*common, "--rate", "6", "--rate", "left=3", "--report", str(tmp_path / "rep")]) == 0
    said = capsys.readouterr()
    assert re.search(rf"onnxruntime/fp32/{SIZE}/3 streams +\d+ frames", said.out)
    # said as edge run says them: the right camera's objects placed with its lens's field of
    # view, the left camera's frames, turned, stretched into the engines
    assert "the field of view of the camera of 'held://right', 90.3 degrees" in said.err
    assert "frames 144 wide and 192 high" in said.err
    data = load_result(tmp_path / "rep" / "bench.json")
    streams = data["results"][0]["streams"]
    assert list(streams) == ["front", "left", "right"]
    assert {name: s["rate_fps"] for name, s in streams.items()} == {"front": 8.0, "left": 3.0, "right": 6.0}
    assert data["settings"]["shares"] == {"front": 2.0}
    # the left camera asks for 192x144 frames: the held ones resized to it, said; the others'
    # are the source's own
    assert streams["left"]["size"] == "144x192" and "size" not in streams["front"]
    assert (streams["left"]["flip"], streams["right"]["fit"], streams["right"]["lens"]) == (
        "clockwise",
        "pad",
        str(lens),
    )
    assert not {"fit", "flip", "lens"} & set(streams["front"]) and "fit" not in streams["left"]
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "| left (144x192, flip clockwise) | 3.0 |" in report
    assert "| right (lens right.yml, fit pad) | 6.0 |" in report
    from edge.schemas import check_document

    assert check_document("bench", (tmp_path / "rep" / "bench.json").read_text()) is None
    assert main([*common, "--streams", "2", "--report", str(tmp_path / "other")]) == 2
    assert (
        "gives the streams, one a camera (front, left, right); leave --streams 2 out"
        in capsys.readouterr().err
    )
    assert main([*common, "--priority", "rear", "--report", str(tmp_path / "other")]) == 2
    assert (
        "--priority rear: no stream is named 'rear' (the streams: front, left, right)"
        in capsys.readouterr().err
    )
    rig.write_text('[cameras.front]\nsource = "/dev/video0?fps=fast"\n')
    assert main([*common, "--report", str(tmp_path / "other")]) == 2
    assert (
        f"rig file '{rig}', cameras.front.source: source '/dev/video0?fps=fast': fps='fast' is not a number"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "other").exists()


def test_ctrl_c_on_a_multi_stream_bench_keeps_what_was_measured(tiny_engines: Path, tmp_path: Path) -> None:
    """A real Ctrl-C while the streams run: the report is written, marked incomplete, every
    frame measured whole, and the run exits 130."""
    cmd = [sys.executable, "-m", "edge.cli", "bench", "--engines", str(tiny_engines), "--size", SIZE]
    cmd += ["--source", f"synthetic://?size={SIZE}", "--warmup", "1", "--min-frames", "100000"]
    cmd += ["--threads", "1", "--streams", "2", "--rate", "10", "--samples", "2", "--report", "rep"]
    with OnTerminal(cmd, cwd=tmp_path) as run:
        run.wait_for(lambda seen: re.search(r"\| *([3-9]|\d\d+)/100000", seen) is not None)
        run.proc.send_signal(signal.SIGINT)
        code, _out, err = run.finish()
    assert code == 130, err
    assert "Traceback" not in err and f"stopped during onnxruntime/fp32/{SIZE}/2 streams" in err
    data = load_result(tmp_path / "rep" / "bench.json")
    (r,) = data["results"]
    assert r["complete"] is False and r["frames"] >= 3
    assert {len(v) for v in r["samples_ms"].values()} == {r["frames"]}
    assert sum(s["frames"] for s in r["streams"].values()) == r["frames"]
    assert json.loads((tmp_path / "rep" / "bench.json").read_text())["interrupted"]["configurations"] == 1


def test_held_frames_resized_for_a_camera_of_another_size() -> None:
    """bench_samples.resized: each held frame's picture at the size asked, the rest kept (its
    field of view across; not its ground plane, whose rows the new height moves)."""
    from edge.bench_samples import load_samples, resized
    from edge.stream.sources import open_source

    source = open_source("synthetic://?size=64x128&frames=3")
    try:
        held = load_samples(source, 3)
    finally:
        source.close()
    small = resized(held, (48, 64))
    assert [f.image.shape for f in small.frames] == [(48, 64, 3)] * 3
    assert [f.seq for f in small.frames] == [f.seq for f in held.frames]
    assert small.nbytes == 3 * 48 * 64 * 3 and small.read_ms == held.read_ms
    assert small.hfov_deg == held.hfov_deg and held.ground is not None and small.ground is None
