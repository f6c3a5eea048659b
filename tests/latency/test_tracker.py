from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from edge.latency import LatencyTracker


def test_percentiles_match_numpy() -> None:
    values = [float(v) for v in np.random.default_rng(0).exponential(10, 500)]
    st = LatencyTracker.stats(values)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    assert st["p50"] == pytest.approx(p50) and st["p90"] == pytest.approx(p90)
    assert st["p99"] == pytest.approx(p99) and st["max"] == max(values)
    assert LatencyTracker.stats([]) == {"count": 0}


def test_frames_deadline_and_exports(tmp_path: Path) -> None:
    tr = LatencyTracker(deadline_ms=5.0)
    for seq in range(3):
        t0 = time.perf_counter_ns()
        tr.frame_captured()
        with tr.stage(seq, "work"):
            time.sleep(0.008 if seq == 1 else 0)
        tr.frame_done(seq, t0)
    tr.frame_captured()
    tr.frame_dropped()
    s = tr.summary()
    assert (s["frames_in"], s["frames_out"], s["drops"]) == (4, 3, 1)
    assert s["deadline_misses"] >= 1
    assert s["stages_ms"]["work"]["count"] == 3
    assert "deadline 5 ms missed" in tr.format_summary()
    tr.write_trace(tmp_path / "t.json")
    events = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    assert {e["name"] for e in events} == {"work", "end_to_end"}
    assert all(e["ph"] == "X" and e["dur"] >= 0 for e in events)
    tr.write_jsonl(tmp_path / "t.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and all(x["end_ns"] >= x["start_ns"] for x in lines)


def test_fps_counts_from_the_first_frames_capture_not_from_the_trackers_start() -> None:
    tr = LatencyTracker()
    time.sleep(0.2)  # the engines loading: not part of the stream's rate
    first = time.perf_counter_ns()
    last_ms = 0.0
    for seq in range(5):
        last_capture = first + seq * 1_000_000
        last_ms = tr.frame_done(seq, last_capture)
    done_ns = last_capture + last_ms * 1e6
    s = tr.summary()
    assert s["fps"] == pytest.approx(5 / ((done_ns - first) / 1e9), rel=1e-6)
    assert LatencyTracker().summary()["fps"] == 0.0  # no frame out yet


def test_rolling_window_forgets_old_frames() -> None:
    tr = LatencyTracker(window=4)
    for seq in range(10):
        tr.record(seq, "work", 0, (100 if seq < 6 else 1) * 1_000_000)
    rolling = tr.rolling()["stages_ms"]["work"]
    assert rolling["count"] == 4 and rolling["max"] == 1.0  # only the last four (1 ms) remain
    assert tr.summary()["stages_ms"]["work"]["max"] == 100.0  # the summary keeps everything
    line = tr.status_line()
    assert line.startswith("frame 0  0.0 fps") and "work 1/1" in line and "drops 0" in line


def test_frame_ms_gives_each_recent_frame_its_stages() -> None:
    tr = LatencyTracker(window=3)
    for seq in range(5):
        tr.record(seq, "a", 0, (seq + 1) * 1_000_000)
        tr.record(seq, "b", 0, 500_000)
    now = time.perf_counter_ns()
    tr.frame_done(4, now - 7_000_000)
    assert tr.frame_ms(3) == {"a": 4.0, "b": 0.5}
    last = tr.frame_ms(4)
    assert (last["a"], last["b"]) == (5.0, 0.5) and 7.0 <= last["end_to_end"] < 1000.0
    assert tr.frame_ms(1) == {}  # older than the window: forgotten
    assert tr.frame_ms(99) == {}
    tr.frame_ms(2)["a"] = -1.0  # a copy: the tracker's numbers stay
    assert tr.frame_ms(2)["a"] == 3.0


def test_status_line_is_silent_off_terminal() -> None:
    from edge.latency.status import StatusLine

    # pytest captures stderr, so rich sees no terminal and the line stays off
    with StatusLine(LatencyTracker(), enabled=True) as status:
        assert not status.active


def test_off_a_terminal_the_status_line_is_logged_every_so_often(capsys: pytest.CaptureFixture[str]) -> None:
    """A service's journal gets the line every log_every_s seconds, stamped, and none after."""
    import re
    import time

    from edge.latency.status import StatusLine

    tr = LatencyTracker()
    tr.record(0, "panoptic", 0, 2_000_000)
    tr.sink_failed()
    tr.sink_stopped("drive.mkv", 0, "full")
    with StatusLine(tr, enabled=True, log_every_s=0.05) as status:
        assert status.logging and not status.active
        time.sleep(0.5)
    lines = capsys.readouterr().err.splitlines()
    time.sleep(0.2)
    assert capsys.readouterr().err == "", "nothing after the run"
    assert 3 <= len(lines) <= 11
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert all(
        re.fullmatch(
            rf"{stamp} frame 0  .*panoptic 2/2.*sink errors 1  sinks stopped 1  \(p50/p99 ms\)", line
        )
        for line in lines
    ), lines
    with StatusLine(tr, enabled=True, log_every_s=0) as status:  # 0: the summary at the end only
        assert not status.logging
    with StatusLine(tr, enabled=False, log_every_s=0.05) as status:
        assert not status.logging


def test_the_table_lists_the_stages_in_a_frames_order() -> None:
    """Recorded as threads finish them (depth before panoptic, the tracks inside postprocess,
    a stage of the caller's own), listed in the order a frame goes through them."""
    tr = LatencyTracker()
    for stage in ("my_stage", "depth", "preprocess", "tracks", "panoptic", "sink", "postprocess"):
        tr.record(0, stage, 0, 1_000_000)
    tr.frame_done(0, 0)
    rows = [line.split()[0] for line in tr.format_summary().splitlines()]
    listed = [r for r in rows if r in tr.summary()["stages_ms"] or r == "end_to_end"]
    assert listed == [
        "preprocess",
        "panoptic",
        "depth",
        "postprocess",
        "tracks",
        "sink",
        "my_stage",
        "end_to_end",
    ]
