"""What ``edge COMMAND --help`` says above and below the options: what the command does,
and examples to copy (the README's), each checked by the tests to parse as written."""

from __future__ import annotations

import argparse
import shutil
import textwrap
from typing import Any

# (command line, what it does); a line ending in `| …` pipes into another program
EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "build": [
        (
            "edge build --models panoptic_fpn_tiny depth_tiny --size 256x512 --out engines/",
            "ONNX Runtime engines, for any machine",
        ),
        (
            "edge build --models panoptic_fpn_r18 depth_r18 --backend tensorrt --precision fp16 "
            "--size 512x1024",
            "TensorRT engines, built on the Jetson or GPU that runs them",
        ),
        (
            "edge build --models depth_tiny --precision int8 --calib-data 'cityscapes://data/synth?split=train'",
            "INT8, calibrated on those frames and recorded in the manifest",
        ),
        (
            "edge build --models depth_tiny --precision int8 --calib-data drives/",
            "INT8 calibrated on a folder of drives' videos: frames from every drive, not the first one's",
        ),
        (
            "edge build --models panoptic_fpn_tiny depth_tiny --size 256x512 --out engines/ --dry-run",
            "after an upgrade: which engines are still up to date, and why the others would be built",
        ),
    ],
    "run": [
        (
            "edge run 'synthetic://?fps=17' --engines engines/ --sink out.mp4 --max-frames 100",
            "the synthetic drive into a video, with the latency summary at the end",
        ),
        (
            "edge run drive.mp4 --engines engines/ --realtime --sink objects.jsonl",
            "a file paced like a camera; what was found, how far, its track and time to collision, per frame",
        ),
        (
            "edge run /dev/video0 --engines engines/ --hfov 62 --sink 'warnings.jsonl?lines=warnings'",
            "a warnings log: a line when a thing comes to be outlined red, and one when it clears",
        ),
        (
            "edge run /dev/video0 --engines engines/ --hfov 62 --camera-height 1.3 --horizon 0.47 --sink -",
            "a camera 1.3 m over the road, the horizon 47% down: distances read from where things stand",
        ),
        (
            "edge run '/dev/video0?width=1280&height=720&fps=30' --engines engines/ --sink http://127.0.0.1:8080",
            "a USB camera, watched live in a browser (Ctrl-C ends it)",
        ),
        (
            "edge run /dev/video0 --engines engines/ --sink out.mp4 --sink http://0.0.0.0:9464/metrics",
            "a camera recorded, its fps, drops and latencies for Prometheus to scrape (no pictures served)",
        ),
        (
            "edge run /dev/video0 --engines engines/ --duration 60 --summary live.json",
            "a minute of a camera's latency, the summary also as JSON",
        ),
        (
            "edge run /dev/video0 --engines engines/ --sink - | my_planner",
            "objects as JSON lines on standard output, as they come",
        ),
        (
            "edge run '/dev/video0?width=640&height=480' --engines engines/ --fit pad --sink out.mp4",
            "a 4:3 camera into 2:1 engines that cannot be rebuilt: its shape kept, not stretched",
        ),
        (
            "edge run /dev/video0 --flip rotate-180 --engines engines/ --sink http://127.0.0.1:8080",
            "a camera mounted upside down under the mirror: every frame turned the right way up",
        ),
        (
            "edge run /dev/video0 --undistort dashcam.yaml --engines engines/ --sink objects.jsonl",
            "a wide-angle camera calibrated with OpenCV or ROS: frames undistorted, its field of view used",
        ),
        (
            "edge run --camera front=/dev/video0 --camera rear=/dev/video2 --engines engines/ "
            "--sink '{camera}.mkv' --sink objects.jsonl",
            "two cameras through one set of engines: a video each, their objects in one file",
        ),
        (
            "edge run --camera front=/dev/video0 --camera left=/dev/video2 --camera right=/dev/video4 "
            "--priority front --engines engines/ --sink '{camera}.mkv'",
            "three cameras, the front one's frames first: it keeps its rate when the engines cannot",
        ),
        (
            "edge run --camera front=/dev/video0 --camera rear=/dev/video2 --share front=2 "
            "--engines engines/ --sink '{camera}.mkv'",
            "two cameras, two front frames to each rear one when the engines cannot keep up with both",
        ),
        (
            "edge run --rig car.toml --engines engines/ --sink '{camera}.mkv'",
            "a vehicle's cameras and each one's settings from a TOML file ([cameras.NAME] tables)",
        ),
        (
            "edge run --rig drive/replay.toml --realtime --engines engines/ "
            "--sink 'around.jsonl?lines=fused'",
            "a recorded drive's cameras replayed at their capture times, each from its start-offset",
        ),
    ],
    "replay": [
        (
            "edge replay 'cityscapes://data/synth?split=val&fps=0' --engines engines/ --eval --out preds/",
            "PQ, mIoU and depth errors, with the predictions saved",
        ),
    ],
    "compare": [
        (
            "edge compare drive.mp4 --engines engines/ --precision int8 --reference-precision fp32",
            "how far the INT8 engines' outputs moved from the FP32 ones' on a drive of your own, and how "
            "much faster they ran",
        ),
        (
            "edge compare 'cityscapes://data/synth?split=val' --backend tensorrt "
            "--reference-backend onnxruntime --max-frames 200 --out out/trt_vs_ort/",
            "TensorRT's engines against ONNX Runtime's, the least agreeing frames drawn",
        ),
        (
            "edge compare synthetic:// --size 128x256 --reference-size 256x512 --worst 3",
            "what halving the input size costs, frame by frame",
        ),
        (
            "edge compare recordings/ --precision int8 --reference-precision fp32 --min pq=90 "
            "--max depth_abs_rel=0.05",
            "a build pipeline's gate: exit 1, saying which bound was not kept",
        ),
    ],
    "profile": [
        (
            "edge profile --engines engines/ --source drive.mp4 --frames 50",
            "each engine's operators and slowest nodes, time a frame and share",
        ),
        (
            "edge profile --engines engines/ --precision int8 --kind depth --json",
            "the INT8 depth engine's node times as JSON (edge schema profile)",
        ),
    ],
    "lens": [
        (
            "edge lens board_pictures/ --board 9x6 --out dashcam.yaml",
            "a lens from pictures of a chessboard of 10x7 squares; then edge run --undistort dashcam.yaml",
        ),
        (
            "edge lens /dev/video0 --board 9x6 --every 15 --max-frames 40 --out dashcam.yaml",
            "from the camera itself, a look every 15 frames while the board is moved about in front of it",
        ),
    ],
    "rig": [
        (
            "edge rig car.toml",
            "every camera of a rig opened and read at once: its frames' size and rate, before a drive",
        ),
        ("edge rig car.toml --frames 300 --json", "ten seconds of each 30 fps camera, as JSON"),
        (
            "edge rig car.toml --new",
            "begin a rig from the cameras plugged in: USB ones by udev's stable name, CSI ones as csi://N",
        ),
        (
            "edge rig car.toml --engines engines/",
            "and which cameras those engines would stretch out of shape, with what keeps it",
        ),
    ],
    "record": [
        (
            "edge record '/dev/video0?width=1280&height=720&fps=30' drive.mkv --duration 60 --keep-free 1G",
            "a minute of camera frames, no engines; replay with edge run drive.mkv --realtime",
        ),
        (
            "edge record /dev/video0 drive.mkv --segment 5m --keep-free 2G --delete-oldest",
            "a dash camera: 5-minute files, the oldest deleted to keep 2 GiB free",
        ),
        (
            "edge record out/demo.mp4 out/demo.webm",
            "a video as a browser plays it (VP8: .mp4 and .mkv hold MPEG-4 part 2, which Chromium refuses)",
        ),
        (
            "edge record csi://0 drive.mkv http://0.0.0.0:8080",
            "aim a headless board's camera from a laptop while it records",
        ),
        (
            "edge record /dev/video0 drive.mkv --flip rotate-180",
            "a camera mounted upside down, recorded the right way up",
        ),
        (
            "edge record --camera front=/dev/video0 --camera rear=/dev/video2 'drives/{camera}.mkv'",
            "two cameras at once, a video each (--rig car.toml: a rig file's cameras)",
        ),
        (
            "edge record --rig car.toml 'drive/{camera}.mkv' --replay-rig drive/replay.toml",
            "a drive that carries its rig (each camera's start-offset too): edge run --rig drive/replay.toml "
            "--realtime, wherever it goes",
        ),
    ],
    "alive": [
        (
            "edge alive /run/edge/alive.json --within 30",
            "a container's health check on an edge run started with --heartbeat /run/edge/alive.json",
        ),
    ],
    "demo": [
        ("edge demo", "build the tiny engines if missing, run 68 synthetic frames into out/demo.mp4"),
        ("edge demo --frames 300 --out demo-long/", "a longer drive, elsewhere"),
        (
            "edge demo --realtime",
            "the drive at 17 fps, as a camera gives it: end_to_end is a camera's latency",
        ),
    ],
    "service": [
        (
            "edge service --name edge-dashcam run /dev/video0 --engines engines/ --sink drives/drive.mkv "
            "--segment 5m --delete-oldest | sudo tee /etc/systemd/system/edge-dashcam.service",
            "a dash camera as a service that starts at boot",
        ),
    ],
    "train": [
        (
            "edge train --model panoptic_fpn_tiny --steps 2000 --batch 2 --size 256x512 --out my_weights.pt",
            "weights for edge build --checkpoint panoptic_fpn_tiny=my_weights.pt",
        ),
        (
            "edge train --model panoptic_fpn_tiny --steps 2000 --batch 2 --size 256x512 --out my_weights.pt "
            "--resume",
            "go on with a run that was stopped",
        ),
        (
            "edge train --model panoptic_fpn_tiny --init edge/weights/panoptic_fpn_tiny.pt --steps 600 "
            "--lr 3e-4 --lanes centre right --cut-ins 3 --out cut_ins.pt",
            "fine-tune on drives from both lanes with people crossing and cars pulling out in front",
        ),
        (
            "edge train --model depth_tiny --steps 1500 --batch 4 --size 256x512 128x256 --out depth.pt",
            "batches of each size in turn: weights for engines of either size",
        ),
    ],
    "calibrate": [
        (
            "edge calibrate engines/depth_tiny_256x512_b1_onnxruntime_fp32.onnx "
            "--calib-data 'cityscapes://data/synth?split=train' --calib-frames 64 --min-snr 30",
            "Q/DQ ONNX, ranges and a TensorRT cache; layers kept in float until outputs keep 30 dB",
        ),
    ],
    "make-synthetic": [
        (
            "edge make-synthetic --out data/synth --sequences 4 --frames 30 --size 512x1024 --split val",
            "drives in Cityscapes' layout, ground truth on frame 19 of each",
        ),
        (
            "edge make-synthetic --out data/cutins --sequences 6 --frames 60 --size 256x512 "
            "--all-gt --cut-ins 4",
            "drives where 4 road users each cross into the path: cut-in warnings scored (replay --hfov)",
        ),
    ],
    "bench": [
        (
            "edge bench --engines engines/ --source synthetic:// --min-frames 1024 --min-duration 60 "
            "--report out/bench/",
            "the latency report: Markdown, HTML, plots and JSON",
        ),
        (
            "edge bench --backend onnxruntime torch --size 256x512 512x1024 --min-frames 200 "
            "--min-duration 10",
            "a sweep: one row per backend and size (missing engines are built)",
        ),
        (
            "edge bench --streams 1 2 4 --rate 30",
            "1, 2, then 4 cameras at 30 fps each through one set of engines: which kept up",
        ),
        (
            "edge bench --streams 3 --rate 10 --rate stream0=30",
            "a rig: the front camera at 30 fps, two side ones at 10",
        ),
        (
            "edge bench --rig car.toml --engines engines/",
            "the cameras of an edge run --rig file, a stream each at its source's fps: kept up?",
        ),
        ("edge bench --compare out/a/bench.json out/b/bench.json", "B/A ratios of two reports"),
    ],
    "lint": [
        (
            "edge lint engines/panoptic_fpn_tiny_256x512_b1_onnxruntime_fp32.onnx --target trt10",
            "what TensorRT 10's parser would refuse (exit 1 on errors)",
        ),
        (
            "edge lint engines/*_fp32.onnx --target trt11 --json",
            "TensorRT 11's findings as JSON, for a CI job to read (edge schema lint)",
        ),
        ("edge lint engines/*_fp32.onnx --target 10.13", "one TensorRT release: the one your board has"),
    ],
    "info": [
        ("edge info", "CPU, backends, versions, GPU, OpenCV, Jetson power mode"),
        ("edge info --json", "the same as JSON: a fleet's inventory, or a bug report's"),
    ],
    "models": [("edge models", "the model zoo")],
    "engines": [
        (
            "edge engines engines/ --verify",
            "what a folder holds, hashed, whether each runs here, and which edge build would make again",
        ),
        (
            "edge engines engines/ --remove '*_int8' --dry-run",
            "which files taking the INT8 builds out would delete",
        ),
        (
            "edge engines engines/ --remove depth_tiny_256x512_b1_onnxruntime_fp32",
            "take one build out: its manifest entry, then its files",
        ),
    ],
    "schema": [
        ("edge schema objects", "the JSON Schema of an objects log's lines (a planner's contract)"),
        ("edge schema warnings", "that of a warnings log's (?lines=warnings)"),
        ("edge schema fused", "that of the things of every camera at once (?lines=fused)"),
        (
            "edge schema objects --check drive/objects.jsonl",
            "which of a log's lines it refuses, and why (exit 1)",
        ),
        ("edge schema summary --check live.json", "whether a --summary file is what it should be"),
        ("edge schema bench --check report/bench.json", "whether edge bench's report is"),
        ("edge schema metrics --check preds/metrics.json", "and edge replay's metrics"),
        ("edge schema manifest --check engines/manifest.json", "and an engines folder's manifest"),
        ("edge schema ranges", "the JSON Schema of edge calibrate's ranges JSON (<model>.calib.json)"),
        ("edge schema lint --check lint.json", "whether edge lint --json's report is"),
        (
            "edge schema stats --check stats.json",
            "a saved answer of the live viewer's /stats (history: /history)",
        ),
        (
            "edge schema objects --check -",
            "lines from standard input: edge run ... --sink - | edge schema ...",
        ),
    ],
}


def _width() -> int:
    # as argparse's own formatter: the terminal's width, less a margin
    return max(shutil.get_terminal_size().columns - 2, 40)


def examples_text(command: str) -> str:
    """The ``examples:`` block of ``command``'s help ('' for one without examples)."""
    rows = EXAMPLES.get(command, [])
    if not rows:
        return ""
    lines = ["examples:"]
    for line, what in rows:
        lines.append(f"  {line}")  # never wrapped: it is copied as it is
        lines.extend(textwrap.wrap(what, _width() - 6, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


def add_command(
    sub: Any, name: str, *, help: str, description: str | None = None, epilog: str | None = None
) -> argparse.ArgumentParser:
    """``sub.add_parser(name)`` whose --help starts with ``description`` (default: ``help``
    as a sentence) and ends with ``epilog`` and the command's examples."""
    about = description or f"{help[0].upper()}{help[1:]}."
    parts = [textwrap.fill(epilog, _width())] if epilog else []
    if examples := examples_text(name):
        parts.append(examples)
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=textwrap.fill(about, _width()),
        epilog="\n\n".join(parts) or None,
        # the text above is wrapped here; the examples must not be
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser
