"""Whether an INT8 calibration's held-out score tells a poor calibration from a good one: each
INT8 build's score against the float model on its calibration's held-out frames (what the
build says, and warns of under a bound) beside how far it is from the FP32 build on frames of
other drives (edge compare) and how much its scores against the ground truth moved.

    python benchmarks/calib_warning_trial.py --out benchmarks/results/calib_warning_trial_cpu.json

ONNX Runtime engines of the bundled weights at 256x512, INT8 built with ``edge build
--precision int8``'s defaults (64 frames, entropy, equalized, no sensitivity pass) from
calibration sources a deployer might give: six drives' frames, and one drive's (four drives
tried, each its first 150 frames: 8.8 s at 17 fps); both model pairs (tiny, small). The
frames compared: a val split of drives from the right lane with ground truth on every
frame (seed 1), as in ``compare_trial.py``.

``--calibrations drive_videos first_drive_video`` calibrates from videos instead: a folder of
six drives' videos (150 frames each, 900 in all; a playlist source), and the first of them
alone; run on a checkout before 2026-12-07's forty-third session, the folder's calibration
took the first 4 x 64 + 4 frames of it (a drive and a half), since a playlist did not say
how many frames it holds.

``--pairs tiny --calibrations six_drives_b six_drives_c six_drives_d --calib-frames 64 256``:
three other samples of six drives (60 frames each), each calibrated on 64 and on 256 of its
frames, so the spread between samples can be set beside the sample's size.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import bundled_provenance, compared_drives, write_result
from edge.build import BuildRequest, build_all
from edge.compare import EngineChoice, compare
from edge.data.make_synthetic import write_dataset
from edge.manifest import Manifest
from edge.models.zoo import bundled_weights

PAIRS = {"tiny": ("panoptic_fpn_tiny", "depth_tiny"), "small": ("panoptic_fpn_small", "depth_small")}
SIZE = (256, 512)
# name: (drives, frames each, seed) of the train split the calibration frames come from
CALIBRATIONS = {
    "six_drives": (6, 30, 11),
    **{f"one_drive_{k}": (1, 150, seed) for k, seed in zip("abcd", range(11, 15), strict=True)},
    # other samples of six drives, 60 frames each, for --calib-frames 64 256: how much of the
    # spread between calibrations is the sample's size
    **{f"six_drives_{k}": (6, 60, seed) for k, seed in zip("bcd", (31, 41, 51), strict=True)},
}
# name: the seeds of synthetic:// drives (150 frames each, right lane) recorded as .mp4 files,
# calibrated on as a folder of them (more than one) or the one file
VIDEO_CALIBRATIONS = {"drive_videos": tuple(range(21, 27)), "first_drive_video": (21,)}
VIDEO_FRAMES = 150


def write_calibration(data: Path, name: str) -> str:
    """The drives of CALIBRATIONS[``name``] as a split of the dataset ``data``; its URI."""
    drives, frames, seed = CALIBRATIONS[name]
    write_dataset(
        data, sequences=drives, frames=frames, size=SIZE, split=name, gt_every=frames, seed=seed, lane="right"
    )
    return f"cityscapes://{data}?split={name}&fps=0"


def drive_videos(folder: Path, seeds: tuple[int, ...]) -> str:
    """``seeds``' drives recorded as videos in ``folder``; the URI that calibrates on them."""
    from edge.stream.record import record

    folder.mkdir(parents=True)
    for seed in seeds:
        uri = f"synthetic://?size={SIZE[0]}x{SIZE[1]}&frames={VIDEO_FRAMES}&seed={seed}&lane=right"
        record(uri, [str(folder / f"drive_{seed}.mp4")])
    return str(folder if len(seeds) > 1 else folder / f"drive_{seeds[0]}.mp4")


def requests(
    models: tuple[str, ...], precision: str, calib_uri: str | None, calib_frames: int = 64
) -> list[BuildRequest]:
    return [
        BuildRequest(
            model=m,
            height=SIZE[0],
            width=SIZE[1],
            precision=precision,
            checkpoint=bundled_weights(m),
            calib_data=calib_uri,
            calib_frames=calib_frames,
        )
        for m in models
    ]


def described(calibration: str) -> str:
    """Where ``calibration``'s frames come from, in a few words."""
    if calibration in VIDEO_CALIBRATIONS:
        seeds = VIDEO_CALIBRATIONS[calibration]
        return f"{calibration}: {len(seeds)} video(s) of {VIDEO_FRAMES} frames, seeds {list(seeds)}"
    drives, frames, seed = CALIBRATIONS[calibration]
    return f"{calibration}: {drives} x {frames} frames of a train split, seed {seed}"


def int8_entries(folder: Path) -> list[dict[str, Any]]:
    return [e for e in Manifest.load(folder).engines.values() if e.get("precision") == "int8"]


def held_out(folder: Path) -> dict[str, Any]:
    """Each INT8 engine's held-out scores (dB), as its build recorded them."""
    return {e["model"]: e["calibration"]["held_out_scores_db"] for e in int8_entries(folder)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sequences", type=int, default=4)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--pairs", nargs="+", choices=sorted(PAIRS), default=sorted(PAIRS, reverse=True))
    ap.add_argument(
        "--calibrations", nargs="+", choices=[*CALIBRATIONS, *VIDEO_CALIBRATIONS], default=list(CALIBRATIONS)
    )
    ap.add_argument(
        "--calib-frames", type=int, nargs="+", default=[64], help="edge build's --calib-frames, each"
    )
    args = ap.parse_args()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp, "synth")
        uris = {}
        for name in args.calibrations:
            if name in VIDEO_CALIBRATIONS:
                uris[name] = drive_videos(Path(tmp, name), VIDEO_CALIBRATIONS[name])
                continue
            uris[name] = write_calibration(data, name)
        source = compared_drives(data, sequences=args.sequences, frames=args.frames, size=SIZE)
        for pair in args.pairs:
            models = PAIRS[pair]
            fp32 = Path(tmp, f"{pair}_fp32")
            build_all(requests(models, "fp32", None), fp32, show_progress=False)
            reference = EngineChoice(
                engines=fp32, backend="onnxruntime", panoptic=models[0], depth=models[1], size=SIZE
            )
            for (calib, uri), calib_frames in itertools.product(uris.items(), args.calib_frames):
                folder = Path(tmp, f"{pair}_{calib}_{calib_frames}")
                build_all(requests(models, "int8", uri, calib_frames), folder, show_progress=False)
                report = compare(
                    source,
                    engines=reference.but(engines=folder, precision="int8"),
                    reference=reference,
                    threads=1,
                    worst=0,
                    show_progress=False,
                )
                a, truth = report["agreement"], report["truth"]
                sampling = {e["model"]: e["calibration"]["sampling"] for e in int8_entries(folder)}
                run = {
                    "pair": pair,
                    "calibration": calib,
                    "calib_frames": calib_frames,
                    "sampling": sampling,
                    "held_out_scores_db": held_out(folder),
                    "agreement": {
                        "pq": a["panoptic"]["all"]["pq"],
                        "miou": a["semantic"]["miou"],
                        "pixels_agree": a["pixels_agree"],
                        "depth_abs_rel": a["depth"]["abs_rel"],
                        "object_distance_abs_rel": a["object_distance"].get("abs_rel"),
                    },
                    "truth_change": {
                        "pq": truth["change"]["pq"],
                        "miou": truth["change"]["miou"],
                        "depth_abs_rel": truth["change"]["depth_abs_rel"],
                    },
                    "truth_fp32": {k: truth["reference"][k] for k in ("pq", "miou", "depth_abs_rel")},
                }
                runs.append(run)
                print(run, flush=True)
    write_result(
        args.out,
        {
            "what": "INT8 calibrations' held-out scores beside their agreement with FP32 and their change "
            "against the ground truth",
            "command": " ".join(sys.argv),
            **bundled_provenance(),
            "source": f"synthetic val split, {args.sequences} drives x {args.frames} frames from the right "
            "lane (seed 1), ground truth on every frame; calibrations: "
            + ", ".join(map(described, args.calibrations)),
            "runs": runs,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
