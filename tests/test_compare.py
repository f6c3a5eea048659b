from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.build import BuildRequest, build_all
from edge.compare import Agreement, EngineChoice, compare
from edge.compare_bounds import Bound, bound_setting
from edge.compare_report import format_comparison
from edge.errors import ConfigError, ManifestError
from edge.perception import Perceived
from edge.schemas import check_document
from edge.util.numbers import strict_dumps
from tests.conftest import ROOT, TEST_SIZE, engines_of_kind, signal_when, strict_json

HW = (20, 40)
SKY, ROAD, CAR = 10, 0, 13  # train ids; their Cityscapes label ids 23, 7, 26


def seen(car2_cols: tuple[int, int], *, depth_scale: float = 1.0, seq: int = 0) -> Perceived:
    """A hand-made frame: sky over road, two cars (rows 10..15), the second at ``car2_cols``."""
    semantic = np.full(HW, ROAD, np.int32)
    semantic[:5] = SKY
    panoptic = np.full(HW, 7, np.int32)
    panoptic[:5] = 23
    for k, (c0, c1) in enumerate(((5, 15), car2_cols)):
        semantic[10:16, c0:c1] = CAR
        panoptic[10:16, c0:c1] = 26000 + k
    depth = np.full(HW, 10.0, np.float32)
    depth[:5] = 100.0  # the sky, past the 80 m compared
    return Perceived(
        seq=seq,
        t_capture_ns=0,
        image=np.zeros((*HW, 3), np.uint8),
        panoptic=panoptic,
        instances=(),
        semantic=semantic,
        depth=depth * np.float32(depth_scale),
        outputs={},
        latency_ms={},
    )


def test_agreement_of_hand_made_frames_is_worked_out_by_hand() -> None:
    """The second car moved 5 columns (IoU 1/3: unmatched), depth 10% farther: car PQ 1/(1 +
    1/2 + 1/2), road IoU 450/510, sky 1; 60 of 800 pixels of another class."""
    agreement = Agreement()
    frame = agreement.add(seen((25, 35)), seen((30, 40), depth_scale=1.1), frame=0, time_s=0.0)
    road = 450 / 510
    assert frame.pq == pytest.approx((1.0 + road + 0.5) / 3)
    assert frame.pixels_agree == pytest.approx(1 - 60 / 800)
    assert frame.depth_abs_rel == pytest.approx(0.1, rel=1e-5)
    assert frame.things == (2, 2, 1)
    results = agreement.results()
    panoptic = results["panoptic"]
    assert panoptic["things"]["pq"] == pytest.approx(0.5) and panoptic["things"]["n"] == 1
    assert panoptic["per_class"]["car"] == pytest.approx(
        {"pq": 0.5, "sq": 1.0, "rq": 0.5, "tp": 1, "fp": 1, "fn": 1}
    )
    assert panoptic["per_class"]["road"]["pq"] == pytest.approx(road)
    assert results["pixels_agree"] == pytest.approx(1 - 60 / 800)
    assert results["depth"]["abs_rel"] == pytest.approx(0.1, rel=1e-5)
    assert results["depth"]["pixels"] == 15 * 40  # the sky's 100 m left out
    # the car's IoU over its union: 60 + 60 - 30 pixels; road: both 480, 450 in common
    assert results["semantic"]["per_class_iou"]["car"] == pytest.approx(90 / 150)
    assert "tracking" not in results


def test_bounds_are_checked_in_the_scale_they_are_given_in() -> None:
    agreement = Agreement()
    agreement.add(seen((25, 35)), seen((30, 40), depth_scale=1.1), frame=0, time_s=0.0)
    report = {"agreement": agreement.results(), "speedup": None}
    pq = 100 * (1.0 + 450 / 510 + 0.5) / 3  # 79.4, in percent as printed

    def held(metric: str, limit: float, *, at_least: bool = True) -> bool:
        return bool(Bound(metric=metric, limit=limit, at_least=at_least).check(report)["held"])

    assert held("pq", 79) and not held("pq", 80)
    assert Bound(metric="pq", limit=79, at_least=True).check(report)["value"] == pytest.approx(pq)
    assert held("pq_things", 50) and not held("pq_things", 50.1)
    assert held("depth_abs_rel", 0.11, at_least=False) and not held("depth_abs_rel", 0.09, at_least=False)
    assert held("pixels_agree", 92.5) and not held("pixels_agree", 92.6)
    unmeasured = Bound(metric="speedup", limit=1, at_least=True).check(report)
    assert unmeasured["value"] is None and unmeasured["held"] is False
    assert not held("speedup", 0, at_least=False)  # not measured is not kept either way


@pytest.mark.parametrize(
    ("flag", "text", "said"),
    [
        (True, "pq=101", "pq is in percent, 0 to 100"),
        (True, "foo=1", "NAME one of pq, "),
        (False, "depth_abs_rel=x", "expected a number, got 'x'"),
        (False, "depth_abs_rel=nan", "expected a number"),
        (True, "pq", "expected NAME=X"),
    ],
)
def test_a_bound_given_wrong_is_refused_by_name(flag: bool, text: str, said: str) -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match=said):
        bound_setting(flag)(text)


def test_engines_at_another_size_are_scored_at_the_references() -> None:
    """Outputs at half the size are resized (nearest, bilinear) onto the reference's map: the
    same layout at half the size agrees wholly."""
    half = seen((26, 36))

    def doubled(x: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(x, 2, axis=0), 2, axis=1)

    flat = np.full(HW, 10.0, np.float32)  # bilinear scaling keeps it: no sky to blend
    engines = Perceived(**{**half.__dict__, "depth": flat})
    reference = Perceived(
        **{
            **half.__dict__,
            "image": doubled(half.image),
            "panoptic": doubled(half.panoptic),  # type: ignore[arg-type]
            "semantic": doubled(half.semantic),  # type: ignore[arg-type]
            "depth": doubled(flat),
        }
    )
    frame = Agreement().add(reference, engines, frame=0, time_s=0.0)
    assert frame.pq == pytest.approx(1.0) and frame.pixels_agree == 1.0 and frame.depth_abs_rel == 0.0
    assert frame.things == (2, 2, 2)


def test_the_least_agreeing_frames_are_kept_and_drawn_only_when_among_them() -> None:
    agreement = Agreement(worst=2)
    drawn: list[int] = []

    def draw(n: int) -> np.ndarray:
        drawn.append(n)
        return np.full((2, 2, 3), n, np.uint8)

    for n, cols in enumerate(((25, 35), (30, 40), (25, 35), (30, 40), (25, 35))):
        agreement.add(seen((25, 35)), seen(cols), frame=n, time_s=n / 10, draw=lambda n=n: draw(n))
    # each frame's own figures, whatever the frames before it added to the sums
    moved = (1.0 + 450 / 510 + 0.5) / 3
    assert [f.pq for f in agreement.frames] == pytest.approx([1.0, moved, 1.0, moved, 1.0])
    assert [f.depth_abs_rel for f in agreement.frames] == [0.0] * 5
    assert [f.things for f in agreement.frames] == [(2, 2, 2), (2, 2, 1)] * 2 + [(2, 2, 2)]
    assert [f.frame for f in agreement.least_agreeing(2)] == [1, 3]  # the earlier first among equals
    assert [frame for frame, _ in agreement.pictures()] == [1, 3]
    assert [int(p[0, 0, 0]) for _, p in agreement.pictures()] == [1, 3]
    assert drawn == [0, 1, 3]  # frames 2 and 4 agree as the best kept: not drawn


@pytest.fixture(scope="module")
def two_backends(demo_engines: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo engines (ONNX Runtime) beside the same models built for the torch backend."""
    from edge.models.zoo import bundled_weights

    folder = tmp_path_factory.mktemp("compare") / "engines"
    shutil.copytree(demo_engines, folder)
    requests = [
        BuildRequest(
            model=m, height=TEST_SIZE[0], width=TEST_SIZE[1], backend="torch", checkpoint=bundled_weights(m)
        )
        for m in ("panoptic_fpn_tiny", "depth_tiny")
    ]
    build_all(requests, folder, show_progress=False)
    return folder


def test_the_same_models_through_two_backends_agree_almost_wholly(two_backends: Path, tmp_path: Path) -> None:
    """ONNX Runtime against torch, the same weights: what a deployment check should find."""
    report = compare(
        "synthetic://?lane=right&frames=6",
        engines=EngineChoice(engines=two_backends, backend="onnxruntime"),
        reference=EngineChoice(engines=two_backends, backend="torch"),
        threads=1,
        worst=2,
        out_dir=tmp_path / "out",
        show_progress=False,
    )
    a = report["agreement"]
    assert report["frames"] == a["frames"] == 6 == len(report["per_frame"])
    assert a["panoptic"]["all"]["pq"] > 0.95 and a["pixels_agree"] > 0.99
    assert a["depth"]["abs_rel"] < 1e-3 and a["object_distance"]["objects"] > 0
    matched = sum(f["things"]["matched"] for f in report["per_frame"])
    assert matched >= 0.9 * sum(f["things"]["reference"] for f in report["per_frame"]) > 0
    assert "torch" in report["reference"]["engines"]["panoptic"]
    assert "onnxruntime" in report["engines"]["engines"]["depth"]
    assert report["engines"]["end_to_end_ms"]["count"] == 6 and report["speedup"] > 0
    written = strict_json((tmp_path / "out" / "compare.json").read_text())
    assert written["pictures"] == [
        f"least_agreeing_{i}_frame_{f['frame']:06d}.png" for i, f in enumerate(report["least_agreeing"], 1)
    ]
    assert check_document("compare", json.dumps(written)) is None


def test_frames_with_ground_truth_score_both_builds_as_edge_replay_does(
    two_backends: Path, tmp_path: Path
) -> None:
    """cityscapes:// with ground truth on every other frame: each build's figures against it
    are edge replay --eval's for that build, and the change is theirs."""
    from edge.data.make_synthetic import write_dataset
    from edge.replay import replay

    write_dataset(tmp_path / "ds", sequences=1, frames=4, size=TEST_SIZE, split="val", gt_every=2, seed=3)
    source = f"cityscapes://{tmp_path / 'ds'}?split=val&fps=0"
    ours, theirs = (EngineChoice(engines=two_backends, backend=b) for b in ("onnxruntime", "torch"))
    report = compare(source, engines=ours, reference=theirs, threads=1, worst=0, show_progress=False)
    truth = report["truth"]
    assert truth["frames"] == 2 and truth["errors"] == []
    assert [f["name"] for f in report["per_frame"]][:2] == [
        "synthetic_000000_000000",
        "synthetic_000000_000001",
    ]
    for side, choice in (("engines", ours), ("reference", theirs)):
        metrics = replay(source, engines=two_backends, backend=choice.backend, threads=1)["metrics"]
        assert truth[side]["pq"] == pytest.approx(100 * metrics["panoptic"]["all"]["pq"], abs=1e-6)
        assert truth[side]["miou"] == pytest.approx(100 * metrics["semantic"]["miou"], abs=1e-6)
        assert truth[side]["depth_abs_rel"] == pytest.approx(metrics["depth"]["abs_rel"], rel=1e-6)
    assert truth["change"]["pq"] == pytest.approx(truth["engines"]["pq"] - truth["reference"]["pq"])
    printed = format_comparison(report)
    assert "against the ground truth (2 frames), the reference's -> the engines': PQ " in printed
    assert check_document("compare", strict_dumps(report)) is None  # as compare.json is written


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--reference-size", "100x100"], "argument --reference-size: input size 100x100 is not supported"),
        (["--reference-size", "abc"], "argument --reference-size: 'abc' is not HEIGHTxWIDTH"),
        (["--size", "1x2"], "argument --size: input size 1x2 is not supported"),
        (["--min", "pq=200"], "argument --min: --min pq: pq is in percent, 0 to 100"),
    ],
)
def test_edge_compare_names_the_option_given_wrong(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["compare", "synthetic://", *argv])
    assert stopped.value.code == 2 and said in capsys.readouterr().err


def test_a_build_compared_with_itself_is_refused(two_backends: Path) -> None:
    same = EngineChoice(engines=two_backends, backend="onnxruntime")
    with pytest.raises(ConfigError, match="same build .*agree by construction.*--reference-precision"):
        compare("synthetic://?frames=2", engines=same, reference=same, show_progress=False)


def test_engines_of_no_kind_in_common_are_refused(demo_engines: Path, tmp_path: Path) -> None:
    depth = engines_of_kind(demo_engines, "depth", tmp_path / "depth")
    panoptic = engines_of_kind(demo_engines, "panoptic", tmp_path / "panoptic")
    with pytest.raises(
        ConfigError, match="nothing to compare: the engines run depth, the reference panoptic"
    ):
        compare(
            "synthetic://?frames=2",
            engines=EngineChoice(engines=depth),
            reference=EngineChoice(engines=panoptic),
            show_progress=False,
        )


def test_a_missing_reference_is_named_as_the_reference(demo_engines: Path, tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="^the reference: engines directory .*nope"):
        compare(
            "synthetic://?frames=2",
            engines=EngineChoice(engines=demo_engines),
            reference=EngineChoice(engines=tmp_path / "nope"),
            show_progress=False,
        )
    assert not (tmp_path / "nope").exists()


def test_depth_alone_compared_at_two_sizes(demo_engines: Path, tmp_path: Path) -> None:
    """Depth engines only, the reference at twice the engines' size: depth agreement alone,
    no panoptic figures, frames ranked by their depth."""
    from edge.models.zoo import bundled_weights

    folder = engines_of_kind(demo_engines, "depth", tmp_path / "engines")
    build_all(
        [BuildRequest(model="depth_tiny", height=256, width=512, checkpoint=bundled_weights("depth_tiny"))],
        folder,
        show_progress=False,
    )
    small, large = EngineChoice(engines=folder, size=TEST_SIZE), EngineChoice(engines=folder, size=(256, 512))
    with pytest.raises(
        ConfigError, match=r"--min pq=90: pq needs panoptic engines in both builds; both run depth"
    ):
        compare(
            "synthetic://?frames=3",
            engines=small,
            reference=large,
            bounds=[Bound(metric="pq", limit=90, at_least=True)],
        )
    report = compare(
        "synthetic://?frames=3",
        engines=EngineChoice(engines=folder, size=TEST_SIZE),
        reference=EngineChoice(engines=folder, size=(256, 512)),
        threads=1,
        worst=1,
        show_progress=False,
    )
    a = report["agreement"]
    assert 0 < a["depth"]["abs_rel"] < 0.5 and a["pixels_agree"] is None
    assert a["panoptic"]["all"]["n"] == 0
    printed = format_comparison(report)
    assert "depth AbsRel" in printed and "PQ" not in printed and "mIoU" not in printed
    worst = report["least_agreeing"][0]
    assert worst["depth_abs_rel"] == max(f["depth_abs_rel"] for f in report["per_frame"])
    assert worst["pq"] is None and worst["things"] == {"reference": 0, "engines": 0, "matched": 0}


def test_edge_compare_writes_its_report_and_replaces_old_pictures(two_backends: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "least_agreeing_9_frame_000099.png").write_bytes(b"an earlier comparison's")
    cmd = [sys.executable, "-m", "edge.cli", "compare", "synthetic://?frames=4"]
    cmd += [
        "--engines",
        str(two_backends),
        "--backend",
        "onnxruntime",
        "--reference-backend",
        "torch",
        "--threads",
        "1",
        "--worst",
        "3",
    ]
    cmd += ["--out", str(out), "--quiet", "--min", "pq=50", "--min", "speedup=1000"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=300)
    assert done.returncode == 1, done.stderr  # a bound not kept: the gate's exit, the report written
    assert "not kept: speed-up (end to end, p50)" in done.stderr and "under --min speedup=1000" in done.stderr
    assert "kept: PQ" in done.stdout and "(--min pq=50)" in done.stdout
    report = strict_json((out / "compare.json").read_text())
    assert check_document("compare", (out / "compare.json").read_text()) is None
    pictures = sorted(p.name for p in out.glob("least_agreeing_*.png"))
    assert pictures == sorted(report["pictures"]) and len(pictures) == 3
    import cv2

    picture = cv2.imread(str(out / report["pictures"][0]))
    assert picture.shape[1] == 2 * TEST_SIZE[1] and picture.shape[0] > 2 * TEST_SIZE[0]
    markdown = (out / "compare.md").read_text()
    assert all(f"]({name})" in markdown for name in pictures) and "| PQ all |" in markdown
    assert "compared 4 frames" in done.stdout and "against the reference's outputs" in done.stdout
    assert "PQ all" in done.stdout and f"report: {out}/compare.md" in done.stdout
    assert "things found, by the reference's distance" in done.stdout
    assert [(b["metric"], b["bound"], b["held"]) for b in report["bounds"]] == [
        ("pq", "min", True),
        ("speedup", "min", False),
    ]
    assert "## Bounds" in markdown and "not kept: speed-up" in markdown
    assert not list(out.glob(".*.tmp"))


def test_ctrl_c_keeps_what_was_compared(two_backends: Path, tmp_path: Path) -> None:
    """Stopped once the first checkpoint is written: compare.json says interrupted, no longer
    unfinished, with the frames done; the pictures are there; exit 130."""
    out = tmp_path / "out"
    argv = ["compare", "synthetic://", "--engines", str(two_backends), "--backend", "onnxruntime"]
    argv += ["--reference-backend", "torch", "--threads", "1", "--max-frames", "10000", "--out", str(out)]
    code = "import sys, edge.compare as c; c.CHECKPOINT_S = 0; from edge.cli import main; "
    code += f"sys.exit(main({argv!r}))"
    rc, stdout, err = signal_when([sys.executable, "-c", code], lambda: (out / "compare.json").exists())
    assert rc == 130, err
    report = strict_json((out / "compare.json").read_text())
    assert report.get("interrupted") is True and "unfinished" not in report
    assert 1 <= report["frames"] < 10000 and len(report["per_frame"]) == report["frames"]
    assert len(report["pictures"]) == min(5, report["frames"])
    assert "stopped after" in err and "Traceback" not in err and "compared" in stdout


def test_a_comparison_killed_outright_keeps_its_last_checkpoint(two_backends: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = (
        "from edge.compare import EngineChoice, compare; "
        f"e = EngineChoice(engines={str(two_backends)!r}); "
        "compare('synthetic://', engines=e.but(backend='onnxruntime'), reference=e.but(backend='torch'), "
        f"threads=1, max_frames=10000, out_dir={str(out)!r}, checkpoint_s=0, show_progress=False)"
    )
    rc, _, err = signal_when(
        [sys.executable, "-c", code], lambda: (out / "compare.json").exists(), sig=signal.SIGKILL
    )
    assert rc == -signal.SIGKILL, err
    report = strict_json((out / "compare.json").read_text())
    assert report["unfinished"] is True and report["frames"] >= 1
    assert check_document("compare", json.dumps(report)) is None


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}
