"""edge replay on a written synthetic dataset with real tiny engines: metrics, prediction files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.data.cityscapes import TRAIN_CLASSES, list_frames, read_ids
from edge.data.make_synthetic import write_dataset
from edge.errors import ConfigError, SourceError
from edge.eval import ConfusionMatrix
from edge.postprocess.tracks import ObjectTracker
from edge.replay import replay
from edge.schemas import check_document, schema
from edge.util.numbers import counted, json_ready
from tests.conftest import TEST_SIZE, fill_disk, signal_when, strict_json


def written_fields(document: dict, prefix: str = "") -> set[str]:
    """The paths of a JSON document's fields, object within object."""
    out = set()
    for key, value in document.items():
        out.add(prefix + key)
        if isinstance(value, dict):
            out |= written_fields(value, f"{prefix}{key}/")
    return out


def listed_fields(described: dict, prefix: str = "") -> set[str]:
    """The paths of the fields a schema lists (``properties``), object within object."""
    out = set()
    for key, sub in described.get("properties", {}).items():
        out.add(prefix + key)
        out |= listed_fields(sub, f"{prefix}{key}/")
    return out


def assert_metrics_valid(path: Path) -> None:
    """A metrics.json is what ``edge schema metrics`` says it is."""
    why = check_document("metrics", path.read_text())
    assert why is None, why


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("replay_ds")
    write_dataset(root, sequences=2, frames=4, size=TEST_SIZE, split="val", gt_every=2)
    return root


def test_replay_evaluates_and_writes_cityscapes_formats(
    tiny_engines: Path, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "preds"
    report = replay(f"cityscapes://{dataset}?fps=0", engines=tiny_engines, out_dir=out, threads=1)
    assert report["frames"] == 8 and report["gt_frames"] == 4  # frames 1 and 3 of each sequence
    m = report["metrics"]
    assert m["frames"] == 4 and m["depth"]["pixels"] > 0 and 0 <= m["semantic"]["miou"] <= 1
    assert m["panoptic"]["all"]["n"] >= 1
    names = [r.name for s in list_frames(dataset, "val") for r in s if r.has_gt]
    assert sorted(p.name for p in (out / "semantic").iterdir()) == sorted(
        f"{n}_pred_labelIds.png" for n in names
    )
    # the written semantic predictions give the same mIoU as the run computed
    cm = ConfusionMatrix()
    for ref in (r for s in list_frames(dataset, "val") for r in s if r.has_gt):
        pred = cv2.imread(str(out / "semantic" / f"{ref.name}_pred_labelIds.png"), cv2.IMREAD_UNCHANGED)
        cm.add(pred, read_ids(ref.path("labelIds")))
    assert cm.results()["miou"] == pytest.approx(m["semantic"]["miou"])
    # COCO panoptic: every segment in the json is in its PNG and the other way round
    pan = json.loads((out / "panoptic.json").read_text())
    assert len(pan["annotations"]) == 4
    for ann in pan["annotations"]:
        rgb = cv2.cvtColor(cv2.imread(str(out / "panoptic" / ann["file_name"])), cv2.COLOR_BGR2RGB).astype(
            np.int64
        )
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
        assert {s["id"] for s in ann["segments_info"]} == set(np.unique(ids).tolist()) - {0}
    depth = cv2.imread(str(out / "depth" / f"{names[0]}_depth.png"), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and depth.shape == TEST_SIZE

    saved = strict_json((out / "metrics.json").read_text())
    assert_metrics_valid(out / "metrics.json")
    # the schema holds every field: one it does not list, or of another type, is refused by name
    extra = {
        **saved,
        "metrics": {**saved["metrics"], "tracking": {**saved["metrics"]["tracking"], "mota2": 1}},
    }
    assert "tracking: Additional properties are not allowed ('mota2'" in str(
        check_document("metrics", json.dumps(extra))
    )
    typo = {**saved, "metrics": {**saved["metrics"], "depth": {**saved["metrics"]["depth"], "rmse": "1.0"}}}
    assert check_document("metrics", json.dumps(typo)) == "metrics/depth/rmse: '1.0' is not of type 'number'"
    assert saved["metrics"]["semantic"]["miou"] == pytest.approx(m["semantic"]["miou"])
    # a class no frame showed: NaN to the evaluation, null in the file
    unseen = [name for name, iou in m["semantic"]["per_class_iou"].items() if np.isnan(iou)]
    assert unseen and all(saved["metrics"]["semantic"]["per_class_iou"][name] is None for name in unseen)
    assert saved["latency"]["frames_out"] == 8


def test_replay_cli_and_errors(
    tiny_engines: Path, dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "replay",
            f"cityscapes://{dataset}?fps=0",
            "--engines",
            str(tiny_engines),
            "--eval",
            "--threads",
            "1",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "PQ all" in out and "mIoU" in out and "end_to_end" in out
    with pytest.raises(SourceError, match="Cityscapes-layout folder"):
        replay("synthetic://?frames=2", engines=tiny_engines)
    with pytest.raises(ConfigError, match="post_workers must be a whole number >= 1, got 0"):
        replay(f"cityscapes://{dataset}?fps=0", engines=tiny_engines, post_workers=0, out_dir=tmp_path / "p0")
    assert not (tmp_path / "p0").exists()
    assert main(["replay", f"cityscapes://{tmp_path}/none", "--engines", str(tiny_engines)]) == 2
    capsys.readouterr()
    # without --eval the frames are only replayed: the ones it would score are said
    assert (
        main(["replay", f"cityscapes://{dataset}?fps=0", "--engines", str(tiny_engines), "--max-frames", "4"])
        == 0
    )
    out, err = capsys.readouterr()
    assert "PQ all" not in out
    assert "note: 2 of the 4 frames replayed have ground truth; --eval scores the engines on them" in err


QUEUES = "end_to_end counts each frame's wait in the queues between the stages: "


@pytest.mark.parametrize(
    ("fps", "pacing", "said"),
    [
        # as fast as the engines take them: what would pace them is in the URI, not --realtime
        ("0", "file", "the source was read as fast as the engines took its frames (fps=17 in its URI"),
        ("5", "source", None),  # kept its rate, which the tiny engines keep up with: no wait
        ("1000", "source", "the engines took the source's frames slower than the 1000 fps it keeps"),
    ],
)
def test_the_summary_says_when_end_to_end_counts_the_queues(
    tiny_engines: Path, dataset: Path, fps: str, pacing: str, said: str | None
) -> None:
    """A dataset replayed at its rate (cityscapes://…?fps=5) waits in no queue while the
    engines keep up, and is said to only where they fall behind."""
    from edge.latency import LatencyTracker

    s = replay(f"cityscapes://{dataset}?fps={fps}", engines=tiny_engines, threads=1)["latency"]
    assert s["pacing"] == pacing and s["frames_out"] == 8
    if fps == "5":
        assert 0.95 * 5 <= s["read_fps"] <= 5 * 1.01  # the frames out were read at its rate
    text = LatencyTracker.format_summary_of(s)
    if said is None:
        assert QUEUES not in text
    else:
        assert QUEUES + said in text


def test_post_workers_replay_the_same(tiny_engines: Path, dataset: Path, tmp_path: Path) -> None:
    """Frames fused on two workers are evaluated and written in order, as with one."""
    one = replay(f"cityscapes://{dataset}?fps=0", engines=tiny_engines, threads=1)
    out = tmp_path / "preds"
    argv = ["replay", f"cityscapes://{dataset}?fps=0", "--engines", str(tiny_engines), "--eval"]
    assert main([*argv, "--threads", "1", "--post-workers", "2", "--out", str(out)]) == 0
    two = json.loads((out / "metrics.json").read_text())
    assert_metrics_valid(out / "metrics.json")
    assert two["frames"] == one["frames"] == 8 and two["gt_frames"] == 4
    # to the last digit; a class never seen is NaN in memory and null in the file
    assert json.dumps(two["metrics"]) == json.dumps(json_ready(one["metrics"]))
    names = [r.name for s in list_frames(dataset, "val") for r in s if r.has_gt]
    assert [a["image_id"] for a in json.loads((out / "panoptic.json").read_text())["annotations"]] == names


def test_a_split_without_ground_truth_is_said_so(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two frames a sequence and ground truth on every 20th: make-synthetic warns before
    writing, and replay --eval says there was nothing to evaluate instead of a table of NaN."""
    size = f"{TEST_SIZE[0]}x{TEST_SIZE[1]}"
    root = str(tmp_path / "no_gt")
    assert (
        main(
            ["make-synthetic", "--out", root, "--sequences", "1", "--frames", "2", "--size", size, "--quiet"]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert (
        "warning: no frame will have ground truth: with --gt-every 20 the first annotated frame is frame 20"
        in (captured.err)
    )
    assert "(0 with ground truth)" in captured.out
    assert (
        main(
            [
                "replay",
                f"cityscapes://{root}?fps=0",
                "--engines",
                str(tiny_engines),
                "--eval",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "nothing to evaluate: none of the 2 frames replayed has ground truth" in captured.err
    assert "PQ all" not in captured.out and "nan" not in captured.out


def test_replay_checks_its_output_folder_before_running(
    tiny_engines: Path, dataset: Path, tmp_path: Path
) -> None:
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(
        ConfigError, match="predictions folder '.*' cannot be written: .* is a file, not a folder"
    ):
        replay(f"cityscapes://{dataset}?fps=0", engines=tiny_engines, out_dir=tmp_path / "a_file" / "preds")


def test_replay_reports_object_distance(
    demo_engines: Path, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trained engines find cars there; each matched one's distance is compared with the truth."""
    report = replay(f"cityscapes://{dataset}?fps=0", engines=demo_engines, threads=1)
    m = report["metrics"]
    things = {c.name for c in TRAIN_CLASSES if c.thing}
    things_tp = sum(c["tp"] for name, c in m["panoptic"]["per_class"].items() if name in things)
    o = m["object_distance"]
    assert 0 < o["objects"] <= things_tp  # matched things with valid true depth
    assert 0 <= o["abs_rel"] < 1 and o["abs_err_m_p50"] <= o["abs_err_m_p90"] and 0 <= o["within_10pct"] <= 1
    # the things found, by true distance: the matched things with a true distance, as above
    found = m["found_by_distance"]
    assert sum(r["found"] for r in found["all"]) == o["objects"] > 0
    assert all(r["found"] <= r["things"] for rows in found["per_class"].values() for r in rows)
    assert main(["replay", f"cityscapes://{dataset}?fps=0", "--engines", str(demo_engines), "--eval"]) == 0
    out = capsys.readouterr().out
    assert f"({counted(o['objects'], 'matched object')})" in out and "things found, by true distance:" in out


def test_ctrl_c_keeps_what_was_evaluated(tiny_engines: Path, dataset: Path, tmp_path: Path) -> None:
    """A replay stopped by Ctrl-C writes metrics.json (marked interrupted) and panoptic.json
    for the frames it did, prints the metrics, and exits 130."""
    out = tmp_path / "preds"
    cmd = [sys.executable, "-m", "edge.cli", "replay", f"cityscapes://{dataset}?fps=1"]  # 1 fps: 8 s
    cmd += ["--engines", str(tiny_engines), "--eval", "--threads", "1", "--out", str(out)]
    # once the first ground-truth frame is written
    code, stdout, err = signal_when(cmd, lambda: bool(list(out.glob("semantic/*.png"))))
    assert code == 130, err
    assert "Traceback" not in err and "the metrics cover the" in err
    report = json.loads((out / "metrics.json").read_text())
    assert_metrics_valid(out / "metrics.json")
    assert report["interrupted"] is True and 1 <= report["gt_frames"] < 4 and report["frames"] < 8
    assert report["metrics"]["frames"] == report["gt_frames"]
    written = sorted(p.name for p in (out / "panoptic").glob("*.png"))
    index = json.loads((out / "panoptic.json").read_text())["annotations"]
    assert sorted(a["file_name"] for a in index) == written and len(written) == report["gt_frames"]
    assert f"evaluated frames: {report['gt_frames']}" in stdout and "end_to_end" in stdout
    assert not list(out.rglob(".*.tmp")), "no temporary file left"


def test_a_replay_killed_outright_keeps_the_metrics_saved_until_then(
    tiny_engines: Path, dataset: Path, tmp_path: Path
) -> None:
    """SIGKILL, after which nothing of edge runs (out of memory, the power): metrics.json and
    panoptic.json as last rewritten (here after every ground-truth frame), marked unfinished,
    each frame in them whole."""
    import signal

    out = tmp_path / "preds"
    code = (
        "from edge.replay import replay; "
        f"replay('cityscapes://{dataset}?fps=2', engines={str(tiny_engines)!r}, out_dir={str(out)!r}, "
        "threads=1, checkpoint_s=0)"
    )
    rc, _, err = signal_when(
        [sys.executable, "-c", code], lambda: (out / "metrics.json").exists(), sig=signal.SIGKILL
    )
    assert rc == -signal.SIGKILL, err
    report = json.loads((out / "metrics.json").read_text())
    assert_metrics_valid(out / "metrics.json")
    assert report["unfinished"] is True and 1 <= report["gt_frames"] < 4 and report["frames"] < 8
    assert report["metrics"]["frames"] == report["gt_frames"] == report["predictions"]["frames"]
    index = json.loads((out / "panoptic.json").read_text())["annotations"]
    written = {p.name for p in (out / "panoptic").glob("*.png")}
    assert len(index) == report["gt_frames"] and {a["file_name"] for a in index} <= written


def _replay_argv(dataset: Path, engines: Path) -> list[str]:
    """edge replay of ``dataset`` as fast as it goes, evaluated, on one thread."""
    return ["replay", f"cityscapes://{dataset}?fps=0", "--engines", str(engines), "--eval", "--threads", "1"]


def _predicted_files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def test_a_full_disk_stops_the_predictions_whole_not_the_evaluation(
    tiny_engines: Path, dataset: Path, small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The predictions stop at the last whole frame that leaves --keep-free; the evaluation
    goes on over every frame, metrics.json still gets written, and the exit status says the
    files are not all there."""
    whole = replay(f"cityscapes://{dataset}?fps=0", engines=tiny_engines, out_dir=tmp_path / "all", threads=1)
    names = [r.name for s in list_frames(dataset, "val") for r in s if r.has_gt]
    frame_bytes = sum(p.stat().st_size for p in (tmp_path / "all").rglob(f"{names[0]}_*.png"))
    # metrics.json's reserve (64 KiB) and --keep-free, then room for one or two frames
    fill_disk(small_disk, leave=(64 << 10) * 2 + frame_bytes * 2 + (16 << 10))
    out = small_disk / "preds"
    argv = _replay_argv(dataset, tiny_engines)
    assert main([*argv, "--out", str(out), "--keep-free", "64K"]) == 2
    report = json.loads((out / "metrics.json").read_text())
    assert_metrics_valid(out / "metrics.json")
    kept = report["predictions"]["frames"]
    assert 0 < kept < 4 and report["gt_frames"] == 4
    assert json.dumps(report["metrics"]) == json.dumps(json_ready(whole["metrics"])), (
        "every frame was still evaluated"
    )
    assert report["predictions"]["stopped"].endswith(
        f"(--keep-free): the predictions stop, keeping the {kept} frame(s) written before"
    )
    index = json.loads((out / "panoptic.json").read_text())["annotations"]
    assert [a["image_id"] for a in index] == names[:kept]
    expected = [
        f"{kind}/{n}_{suffix}"
        for kind, suffix in (
            ("depth", "depth.png"),
            ("panoptic", "panoptic.png"),
            ("semantic", "pred_labelIds.png"),
        )
        for n in names[:kept]
    ]
    assert _predicted_files(out) == sorted([*expected, "metrics.json", "panoptic.json"])
    stdout, err = capsys.readouterr()
    assert err.count("warning: the predictions") == 1 and "the replay goes on evaluating" in err
    assert f"error: the predictions stopped after {kept} of 4 ground-truth frame(s)" in err
    assert "PQ all" in stdout and f"predictions of the first {kept} ground-truth frame(s) only" in stdout


def test_metrics_the_disk_refuses_are_still_printed(
    tiny_engines: Path, dataset: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the check off (--keep-free 0) the disk refuses the first prediction and then
    metrics.json: the metrics are printed, the error names the file, and nothing half
    written is left."""
    fill_disk(small_disk)
    out = small_disk / "preds"
    argv = _replay_argv(dataset, tiny_engines)
    assert main([*argv, "--out", str(out), "--keep-free", "0"]) == 2
    stdout, err = capsys.readouterr()
    assert "PQ all" in stdout and "end_to_end" in stdout
    assert "writing the predictions failed ([Errno 28] No space left on device" in err
    assert (
        f"error: [Errno 28] No space left on device: {str(out / 'metrics.json')!r}; "
        "the metrics were not saved" in err
    )
    assert _predicted_files(out) == [], "no half-written prediction or report"


def test_a_frame_whose_prediction_is_refused_leaves_none_of_its_files(tmp_path: Path) -> None:
    """A write the system refuses part-way through a frame takes back that frame's other files."""
    from tests.stream.test_disk import _with_file_size_limit

    out = tmp_path / "preds"
    lines = _with_file_size_limit(
        f"""
        import numpy as np
        from pathlib import Path
        from edge.errors import SinkStopped
        from edge.replay import PredictionWriter

        writer = PredictionWriter(Path({str(out)!r}), keep_free=0)
        flat = np.zeros((128, 256), np.int64)  # small PNGs; the noisy depth is past the limit
        noise = np.random.default_rng(0).uniform(0, 80, (128, 256)).astype(np.float32)
        writer.add("a", flat, flat, flat.astype(np.float32))
        try:
            writer.add("b", flat, flat, noise)
        except SinkStopped as exc:
            print(exc)
        writer.add("c", flat, flat, flat.astype(np.float32))  # stopped: nothing more is written
        print(writer.frames)
        """,
        limit=16 << 10,
    )
    assert lines[0].startswith("writing the predictions failed ([Errno 27] File too large: ")
    assert lines[0].endswith("the 1 frame(s) written before are kept") and lines[1] == "1"
    assert _predicted_files(out) == [
        "depth/a_depth.png",
        "panoptic/a_panoptic.png",
        "semantic/a_pred_labelIds.png",
    ]


def test_replay_scores_the_tracks_on_ground_truth_every_frame(
    demo_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Drives with ground truth on every frame: the objects' identity switches and closing
    speeds are scored against the drive's own objects and distances, a sequence at a time."""
    root = tmp_path / "dense"
    write_dataset(root, sequences=2, frames=10, size=(256, 512), split="val", gt_every=1)
    report = replay(f"cityscapes://{root}?fps=0", engines=demo_engines, threads=1, out_dir=tmp_path / "preds")
    t = report["metrics"]["tracking"]
    assert_metrics_valid(tmp_path / "preds" / "metrics.json")
    things = {c.name for c in TRAIN_CLASSES if c.thing}
    per_class = report["metrics"]["panoptic"]["per_class"]
    assert t["matched"] == sum(c["tp"] for name, c in per_class.items() if name in things) > 0
    assert t["gt_objects"] == t["matched"] + t["misses"]
    assert t["mota"] == pytest.approx(
        1 - (t["misses"] + t["false_positives"] + t["id_switches"]) / t["gt_objects"]
    )
    c = t["closing_speed"]
    # 10 frames at 17 Hz: a speed once a track has 5 distances over a quarter second
    assert c["pairs"] > 0 and 0 <= c["abs_err_mps_p50"] <= c["abs_err_mps_p90"]
    # distances read from the road where the things' feet show (the camera files' height, pitch
    # and focal length), scored against the truth: nearer it than the depth engine's here
    g, o = t["ground_distance"], report["metrics"]["object_distance"]
    assert g["objects"] > 0 and g["abs_rel"] < o["abs_rel"]
    assert main(["replay", f"cityscapes://{root}?fps=0", "--engines", str(demo_engines), "--eval"]) == 0
    out = capsys.readouterr().out
    assert f"identity switches {t['id_switches']}" in out
    assert f"({counted(c['pairs'], 'object')} over frames)" in out
    assert f"  read from the road: AbsRel {g['abs_rel']:.3f}" in out
    # where feet hid, the depth engine's distances scaled to the track's road readings
    s = t["scaled_distance"]
    assert s["objects"] > 0 and f"  scaled to the road: AbsRel {s['abs_rel']:.3f}" in out
    assert (
        main(
            ["replay", f"cityscapes://{root}?fps=0", "--engines", str(demo_engines), "--eval", "--no-ground"]
        )
        == 0
    )
    assert "read from the road" not in capsys.readouterr().out
    # a shorter window gives speeds sooner, and the truth is fitted over it too
    short = ObjectTracker(speed_window_s=0.3, min_speed_samples=2)
    quick = replay(f"cityscapes://{root}?fps=0", engines=demo_engines, threads=1, object_tracker=short)
    assert quick["metrics"]["tracking"]["closing_speed"]["pairs"] > c["pairs"]
    assert quick["metrics"]["tracking"]["id_switches"] == t["id_switches"]  # the same pairing
    argv = ["replay", f"cityscapes://{root}?fps=0", "--engines", str(demo_engines), "--eval"]
    assert main([*argv, "--speed-window", "0.3", "--track-gap", "0", "--max-frames", "3"]) == 0
    # lateral positions are scored with the camera's field of view: its camera files' (the
    # synthetic camera's focal length is 1.1 widths: 48.9 degrees), said, or the one given
    assert t["lateral"]["pairs"] > 0 and "field of view of the camera of" in capsys.readouterr().err
    assert main([*argv, "--hfov", "48.9", "--max-frames", "4"]) == 0
    out, err = capsys.readouterr()
    line = next(x for x in out.splitlines() if x.startswith("lateral position"))
    assert "in the path (3 m wide): " in line and "truly" in line and "said)" in line
    assert "field of view of the camera of" not in err
    # a wider path holds more of the drive's things, truly and as said; the report names its width
    paths = {
        width: replay(
            f"cityscapes://{root}?fps=0",
            engines=demo_engines,
            threads=1,
            object_tracker=ObjectTracker(hfov_deg=48.9, path_half_width_m=width / 2),
        )["metrics"]["tracking"]["lateral"]["in_path"]
        for width in (3.0, 12.0)
    }
    assert paths[3.0]["path_width_m"] == 3.0 and paths[12.0]["path_width_m"] == 12.0
    assert paths[12.0]["truly"] > paths[3.0]["truly"] and paths[12.0]["said"] > paths[3.0]["said"]
    # a camera 4 m left of the vehicle's middle: the objects and the truth alike are placed
    # 4 m further left, so the errors are the same, and the path (the vehicle's) holds others
    placed = {
        offset: replay(
            f"cityscapes://{root}?fps=0",
            engines=demo_engines,
            threads=1,
            max_frames=4,
            object_tracker=ObjectTracker(hfov_deg=48.9, mount_offset_m=offset),
        )["metrics"]["tracking"]["lateral"]
        for offset in (0.0, -4.0)
    }
    assert placed[0.0]["pairs"] == placed[-4.0]["pairs"] > 0
    for key in ("abs_err_m_p50", "abs_err_m_p90"):
        assert placed[-4.0][key] == pytest.approx(placed[0.0][key], abs=1e-5)
    assert placed[-4.0]["in_path"]["truly"] != placed[0.0]["in_path"]["truly"]
    for bad, said in (
        ("--speed-window", "expected a positive number of seconds, got '0'"),
        ("--track-gap", "expected a number of seconds >= 0, got '-1'"),
    ):
        with pytest.raises(SystemExit):
            main([*argv, bad, "0" if bad == "--speed-window" else "-1"])
        assert said in capsys.readouterr().err


def test_the_tracking_lines_say_what_the_metrics_hold() -> None:
    from edge.eval.report import tracking_lines

    assert tracking_lines({}) == []
    t = {
        "gt_objects": 20,
        "matched": 15,
        "misses": 5,
        "false_positives": 2,
        "id_switches": 1,
        "mota": 0.6,
        "idf1": 0.72,
        "closing_speed": {
            "pairs": 9,
            "abs_err_mps_mean": 1.5,
            "abs_err_mps_p50": 1.25,
            "abs_err_mps_p90": 3.0,
            "sign_agrees": None,
        },
        "closing_speed_near": {"within_m": 30.0, "pairs": 0},
        "time_to_collision": {"within_s": 10.0, "pairs": 0, "missed": 0},
        "lateral": {"pairs": 0},
    }
    assert tracking_lines(t) == [
        "tracking IDF1 72.0  MOTA 60.0  identity switches 1  (15 of 20 objects matched, 2 false)",
        "closing speed |error| mean 1.50 m/s  p50 1.25  p90 3.00  (9 objects over frames)",
    ]
    one = {**t, "gt_objects": 1, "matched": 1, "closing_speed": {**t["closing_speed"], "pairs": 1}}
    assert [line.rsplit("(", 1)[1] for line in tracking_lines(one)] == [
        "1 of 1 object matched, 2 false)",
        "1 object over frames)",
    ]
    t["warnings"] = {"within_s": 3.0, "due": 4, "warned": 3, "recall": 0.75, "said": 5, "false": 2}
    assert (
        tracking_lines(t)[-1]
        == "warnings (under 3 s to arrive): 3 of 4 things due warned of; 2 of 5 warned of never due"
    )
    t["warnings"] |= {"delay_s_p50": -0.123, "delay_s_p90": 0.4}
    assert tracking_lines(t)[-1] == (
        "warnings (under 3 s to arrive): 3 of 4 things due warned of, p50 -0.12 s from when due (p90 +0.40); "
        "2 of 5 warned of never due"
    )
    t["warnings"]["never_found"] = 1
    assert tracking_lines(t)[-1] == (
        "warnings (under 3 s to arrive): 3 of 4 things due warned of, p50 -0.12 s from when due (p90 +0.40); "
        "of the 1 missed, 1 never found (no segment paired); 2 of 5 warned of never due"
    )
    del t["warnings"]
    path = {"truly": 4, "said": 5, "recall": 1.0, "precision": 0.8}
    t["lateral"] = {"pairs": 12, "abs_err_m_p50": 0.31, "abs_err_m_p90": 1.2, "in_path": path}
    assert tracking_lines(t)[-1] == (
        "lateral position |error| p50 0.31 m  p90 1.20 m  (12); in the path: recall 100%  precision 80%"
        "  (4 truly, 5 said)"
    )
    t["lateral"]["in_path"] = {"truly": 0, "said": 0, "recall": None, "precision": None}
    assert tracking_lines(t)[-1].endswith("in the path: none truly or said  (0 truly, 0 said)")
    t["lateral"]["lateral_speed"] = {"pairs": 10, "abs_err_mps_p50": 0.114, "abs_err_mps_p90": 0.78}
    t["lateral"]["cut_in"] = {"beside": 8, "truly": 1, "said": 2, "false": 1, "missed": 0}
    assert tracking_lines(t)[-1] == (
        "lateral speed |error| p50 0.11 m/s  p90 0.78  (10); cutting in, of 8 beside the path: 2 said, "
        "1 truly, 1 false, 0 missed"
    )
    events = {"truly": 3, "warned": 2, "recall": 2 / 3, "entered": 2, "false_things": 1, "lead_s_p50": 1.24}
    t["lateral"]["cut_in_events"] = events
    assert tracking_lines(t)[-1] == (
        "cut-ins: 2 of 3 warned before they were in the path, the first 1.2 s before it (p50); "
        "1 false (things warned of that did not cut in)"
    )
    t["lateral"]["cut_in_events"] = {**events, "in_path_before": 1, "flagged_recall": 1.0}
    assert tracking_lines(t)[-1] == (
        "cut-ins: 2 of 3 warned before they were in the path, the first 1.2 s before it (p50), "
        "1 more said to be in it before they were; 1 false (things warned of that did not cut in)"
    )
    # nothing paired with a field of view, but things truly cut in: said, all missed
    t["lateral"] = {"pairs": 0, "cut_in_events": {**events, "warned": 0, "false_things": 0}}
    del t["lateral"]["cut_in_events"]["lead_s_p50"]
    assert tracking_lines(t)[-1] == (
        "cut-ins: 0 of 3 warned before they were in the path; 0 false (things warned of that did not cut in)"
    )


def test_replay_counts_the_cut_ins_of_drives_where_things_cross_into_the_path(
    demo_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same drive with and without road users that cross into the path: truly, the
    plain one has no cut-in at 1 m/s and the other has; the summary says how many were
    warned of."""
    events = {}
    written: set[str] = set()
    for cut_ins in (0, 4):
        root = tmp_path / f"cut_ins_{cut_ins}"
        write_dataset(root, sequences=1, frames=40, size=(256, 512), split="val", gt_every=1, cut_ins=cut_ins)
        tracker = ObjectTracker(hfov_deg=48.9)
        out = tmp_path / f"preds_{cut_ins}"
        report = replay(
            f"cityscapes://{root}?fps=0", engines=demo_engines, threads=1, object_tracker=tracker, out_dir=out
        )
        events[cut_ins] = report["metrics"]["tracking"]["lateral"]["cut_in_events"]
        assert_metrics_valid(out / "metrics.json")  # where they truly cut in, and where none did
        written |= written_fields(json.loads((out / "metrics.json").read_text()))
    # no field the schema lists is one no replay writes (a schema fallen behind the evaluator):
    # these two drives write every metric; other tests give a crop's scored part, Ctrl-C's
    # interrupted and a checkpoint's unfinished (the latency summary: tests/test_schemas.py)
    listed = {f for f in listed_fields(schema("metrics")) if not f.startswith("latency/")}
    assert listed - written == {"scored_part", "interrupted", "unfinished"}
    assert events[0]["truly"] == 0 and events[4]["truly"] >= 1
    assert 0 <= events[4]["warned"] <= events[4]["truly"]
    argv = [
        "replay",
        f"cityscapes://{root}?fps=0",
        "--engines",
        str(demo_engines),
        "--eval",
        "--hfov",
        "48.9",
    ]
    assert main([*argv, "--warn-within", "4"]) == 0
    out = capsys.readouterr().out
    said = f"cut-ins: {events[4]['warned']} of {events[4]['truly']} warned before they were in the path"
    assert said in out and "warnings (under 4 s to arrive): " in out


def test_min_score_decides_which_things_are_scored_and_is_recorded(
    demo_engines: Path, dataset: Path, tmp_path: Path
) -> None:
    """--min-score is what a replay tunes: a higher one leaves out the things scored below
    it, and the report (metrics.json too) says which threshold its metrics are at."""
    source = f"cityscapes://{dataset}?fps=0"
    default = replay(source, engines=demo_engines, threads=1)
    assert default["min_score"] == 0.5
    out = tmp_path / "strict"
    argv = ["replay", source, "--engines", str(demo_engines), "--eval", "--threads", "1", "--out", str(out)]
    assert main([*argv, "--min-score", "0.95"]) == 0
    strict = json.loads((out / "metrics.json").read_text())
    assert_metrics_valid(out / "metrics.json")
    assert strict["min_score"] == 0.95
    things = {c.name for c in TRAIN_CLASSES if c.thing}

    def found(report: dict) -> int:  # predicted things, matched or not
        per_class = report["metrics"]["panoptic"]["per_class"]
        return sum(c["tp"] + c["fp"] for name, c in per_class.items() if name in things)

    assert 0 < found(strict) < found(default)
    with pytest.raises(ConfigError, match=r"minimum instance score 1\.5: expected a detection score from 0"):
        replay(source, engines=tmp_path / "no_engines", min_score=1.5)  # before the engines load


def test_a_replay_of_frames_without_camera_files_keeps_the_road_plane_it_fitted(
    demo_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Cityscapes-layout folder without its camera files: the road's plane is fitted to the
    depth map (said once), and the replay's end says it and keeps it in metrics.json's latency
    summary, as edge run's does for the same frames; a folder with camera files fits none."""
    import shutil

    from edge.stream import run_stream

    root = tmp_path / "drive"
    write_dataset(root, sequences=1, frames=12, size=(256, 512), split="val", gt_every=4)
    capsys.readouterr()
    given = replay(f"cityscapes://{root}?fps=0", engines=demo_engines, threads=1)
    assert given["latency"]["road_plane"] is None
    assert "fitted to the depth map" not in capsys.readouterr().err
    shutil.rmtree(root / "camera")
    report = replay(f"cityscapes://{root}?fps=0", engines=demo_engines, threads=1, out_dir=tmp_path / "preds")
    err = capsys.readouterr().err
    plane = report["latency"]["road_plane"]
    assert plane is not None and plane["focal"] == 1.0 and 0.3 < plane["horizon"] < 0.6
    assert err.count("its plane fitted to the depth map's road") == 1
    assert f"fitted to the depth map puts the horizon {plane['horizon']:.3f} of the picture's height" in err
    assert strict_json((tmp_path / "preds" / "metrics.json").read_text())["latency"]["road_plane"] == plane
    assert_metrics_valid(tmp_path / "preds" / "metrics.json")
    run_stream(f"cityscapes://{root}?fps=0", engines=demo_engines, summary_json=tmp_path / "run.json")
    assert strict_json((tmp_path / "run.json").read_text())["road_plane"] == plane
