"""The bench report: every section, valid plots, a self-contained page."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import cv2
import numpy as np

from edge.bench import latency_stats
from edge.report import compare_markdown, write_report
from edge.report.bench_report import markdown, system_lines
from edge.report.bench_report import page as html_page


def synthetic_result() -> dict:
    """A result in edge.bench's shape built from seeded random samples (two configurations),
    so the report code is checked on known numbers; tests/test_bench.py covers real runs."""
    rng = np.random.default_rng(0)
    results = []
    for label, scale in (("onnxruntime/fp32/128x256", 1.0), ("torch/fp32/128x256/cuda", 0.5)):
        stages = {k: (rng.gamma(4, 1.0, 40) * scale).tolist() for k in ("preprocess", "panoptic", "depth")}
        stages["panoptic_gpu"] = [v * 0.8 for v in stages["panoptic"]]
        stages["engines"] = np.maximum(stages["panoptic"], stages["depth"]).tolist()
        stages["postprocess"] = (rng.gamma(2, 1.0, 40) * scale).tolist()
        e2e = (np.array(stages["preprocess"]) + stages["engines"] + np.array(stages["postprocess"])).tolist()
        backend, precision = label.split("/")[:2]
        results.append(
            {
                "config": {
                    "backend": backend,
                    "precision": precision,
                    "size": [128, 256],
                    "device": None,
                    "label": label,
                },
                "frames": 40,
                "warmup_frames": 2,
                "seconds": sum(e2e) / 1e3,
                "throughput_fps": 40 / (sum(e2e) / 1e3),
                "drops": 0,
                "stages_ms": {k: latency_stats(v) for k, v in stages.items()},
                "end_to_end_ms": latency_stats(e2e),
                "samples_ms": {**stages, "end_to_end": e2e},
            }
        )
    return {
        "format": "edge.bench/1",
        "created": "2026-11-24T00:00:00Z",
        "scenario": "single-stream",
        "source": "synthetic://",
        "samples": {"frames": 32, "megabytes": 3.0, "read_ms": latency_stats([7.0, 8.0])},
        "settings": {"warmup": 2, "min_frames": 40, "min_duration_s": 0.0, "samples": 32},
        "system": {
            "platform": "Linux",
            "python": "3.11",
            "cpu": "test CPU <b>",
            "cpu_cores": 2,
            "cpu_extensions": ["avx2", "fma", "avx512f"],
            "versions": {"onnxruntime": "1.0"},
            "gpu": {"name": "NVIDIA H100", "compute_capability": "9.0", "cuda": "13.0"},
            "jetson": {"model": "NVIDIA Jetson Orin Nano", "l4t": "36.4.0", "power_mode": "15W"},
        },
        "results": results,
    }


def test_report_has_every_section_and_valid_plots(tmp_path: Path) -> None:
    data = synthetic_result()
    files = write_report(data, tmp_path)
    assert json.loads(files["json"].read_text()) == data
    md = files["markdown"].read_text()
    for heading in ("## System", "## End-to-end latency (ms)", "## Per stage (ms)", "## Plots"):
        assert heading in md
    assert "| onnxruntime/fp32/128x256 | 40 |" in md and "torch/fp32/128x256/cuda" in md
    assert "NVIDIA H100" in md and "power mode 15W" in md
    assert "(2 cores; avx2 fma avx512f)" in md
    assert "GPU compute (CUDA events" in md  # the config with *_gpu stages
    for name in ("cdf.png", "stages.png", "timeline.png"):
        img = cv2.imread(str(tmp_path / name))
        assert img is not None and img.shape[0] > 100 and img.std() > 5  # decodes, not blank
    page = files["html"].read_text()
    embedded = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(embedded) == 3
    assert cv2.imdecode(np.frombuffer(base64.b64decode(embedded[0]), np.uint8), cv2.IMREAD_COLOR) is not None
    assert "test CPU &lt;b&gt;" in page  # escaped
    assert "src='http" not in page and 'src="http' not in page  # self-contained


def test_the_report_says_which_frames_were_issued() -> None:
    data = synthetic_result()
    held = "Its first 32 frames (3.0 MB) were read into memory first (7.5 ms each, mean; not measured)"
    assert held in markdown(data)  # from before the sizes were recorded
    data["samples"]["sizes"] = ["256x512", "720x1280"]
    assert "Its first 32 frames (256x512, 720x1280, 3.0 MB) were read" in markdown(data)
    del data["samples"]["sizes"]
    # a result from before the frames were held read its source between frames
    del data["samples"]
    md = markdown(data)
    assert "Source `synthetic://`. Its frames were read as they were issued (fps includes reading them" in md


def test_the_report_counts_frames_in_words_and_says_a_padded_fit() -> None:
    data = synthetic_result()
    assert "2 frames of warm-up, then at least 40 frames and 0.0 s." in markdown(data)
    assert "padded" not in markdown(data)  # stretched, or from before --fit
    data["settings"].update(warmup=1, min_frames=1, fit="pad")
    md = markdown(data)
    assert "1 frame of warm-up, then at least 1 frame and 0.0 s." in md
    assert "Frames of another shape than the engines' were padded into them (--fit pad)." in md
    data["settings"]["fit"] = "crop"
    assert "were cropped to their middle (--fit crop)." in markdown(data)


def test_results_written_before_cpu_extensions_were_recorded_still_render() -> None:
    data = synthetic_result()
    del data["system"]["cpu_extensions"]
    assert system_lines(data)[0].startswith("CPU: test CPU <b> (2 cores), Linux")


def test_rewriting_a_report_leaves_no_temporary_files(tmp_path: Path) -> None:
    write_report(synthetic_result(), tmp_path)
    write_report(synthetic_result(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bench.json",
        "cdf.png",
        "report.html",
        "report.md",
        "stages.png",
        "timeline.png",
    ]


def test_compare_markdown_lists_ratios() -> None:
    text = compare_markdown([{"config": "x", "end_to_end_p50_ratio": 0.5, "throughput_ratio": 2.0}], "a", "b")
    assert "| x | 0.500 | 2.000 |" in text


def test_a_multi_stream_report_says_which_configurations_kept_up() -> None:
    """Known numbers: one configuration whose two streams dropped nothing, one whose second
    stream dropped 3 of 20 frames."""
    data = synthetic_result()
    assert "Scenario: single-stream (one frame at a time" in markdown(data)
    assert "Streams" not in markdown(data) and "Kept up" not in markdown(data)
    data["scenario"] = "multi-stream"
    data["settings"]["rate_fps"] = 15.0
    e2e = latency_stats([10.0, 20.0, 30.0])
    for r, (drops, keeps_up) in zip(data["results"], ((0, True), (3, False)), strict=True):
        streams = {
            "stream0": {"frames": 20, "fps": 10.0, "arrived": 20, "drops": 0, "dropped_fraction": 0.0},
            "stream1": {"frames": 17, "fps": 8.5, "arrived": 20, "drops": drops},
        }
        streams["stream1"]["dropped_fraction"] = drops / 20
        if not drops:
            streams["stream1"].update(frames=20, fps=10.0)
        r.update(
            streams={k: {**v, "end_to_end_ms": e2e} for k, v in streams.items()},
            rate_fps=15.0,
            drops=drops,
            arrived=40,
            dropped_fraction=drops / 40,
            keeps_up=keeps_up,
            evenness=17 / 20 if drops else 1.0,
        )
    md = markdown(data)
    assert "Scenario: multi-stream: each configuration's streams (cameras) get a frame 15 times" in md
    assert "A stream kept up where it dropped at most 1% of its frames." in md
    assert "Kept up: onnxruntime/fp32/128x256. Did not: torch/fp32/128x256/cuda (7.5% dropped)." in md
    # a report of a run before --rate NAME=FPS has no stream's own rate: the run's is shown
    assert "| stream1 | 15.0 | 17 | 8.5 | 20 | 3 | 15.0% | 20.00 | 29.80 | 30.00 |" in md
    assert "Evenness 0.85 (each stream's frames over its fair part: all it asked for where the engines" in md
    assert "else a part of those served alike; the least over the most);" in md
    assert "fps together at 15 fps a stream." in md
    page = html_page(data, {name: b"" for name in ("cdf.png", "stages.png", "timeline.png")})
    assert "<td>stream1</td><td>15.0</td><td>17</td><td>8.5</td><td>20</td><td>3</td><td>15.0%</td>" in page
    # stream1 at 5 fps, by --rate stream1=5
    data["settings"]["rates_fps"] = {"stream1": 5.0}
    for r in data["results"]:
        r["streams"]["stream0"]["rate_fps"] = 15.0
        r["streams"]["stream1"]["rate_fps"] = 5.0
    md = markdown(data)
    assert "get a frame 15 times a second (stream1 5: --rate NAME=FPS), all at the same moments" in md
    assert "| stream1 | 5.0 | 17 |" in md and "| stream0 | 15.0 | 20 |" in md
    assert "fps together at the streams' rates." in md
    assert "Did not: torch/fp32/128x256/cuda (7.5% dropped)." in page
