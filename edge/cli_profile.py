"""``edge profile``: where each engine's time goes, node by node (a thin layer over
edge.layer_profile)."""

from __future__ import annotations

import argparse
from typing import Any

from edge.cli_args import add_build_choice_arguments, count, positive_int
from edge.cli_help import add_command


def add_profile_command(sub: Any) -> None:
    from edge.cli_frames import add_fit_argument
    from edge.layer_profile import FRAMES, TOP, WARMUP

    p = add_command(
        sub,
        "profile",
        help="where each engine's time goes: the backend's own time of every node (ONNX Runtime) or "
        "layer (TensorRT), summed by operator and by node, on a source's frames",
        epilog="Each engine runs alone, as many threads as in edge run (half the cores, the two engines "
        "side by side there), on the first frames of the source, preprocessed as edge run does; the "
        "warm-up runs are left out. The nodes are those of the optimized graph ONNX Runtime runs; "
        "TensorRT's layers are its fused layers, by name, and say no operator.",
    )
    p.add_argument("--engines", default="engines", help="engines directory; default: %(default)s")
    p.add_argument(
        "--backend",
        choices=["onnxruntime", "tensorrt"],
        default="onnxruntime",
        help="whose engines: ONNX Runtime's profiler times their nodes, TensorRT's (IProfiler) their "
        "layers, with CUDA events for the runs; default: %(default)s",
    )
    p.add_argument("--device", help="tensorrt: the CUDA device; default: cuda:0")
    add_build_choice_arguments(p)
    p.add_argument(
        "--kind", choices=["panoptic", "depth"], action="append", help="profile this engine only (repeatable)"
    )
    p.add_argument("--source", default="synthetic://", help="the frames; default: %(default)s")
    p.add_argument(
        "--frames", type=positive_int, default=FRAMES, help="frames timed, each engine; default: %(default)s"
    )
    p.add_argument(
        "--warmup", type=count, default=WARMUP, help="runs before them, left out; default: %(default)s"
    )
    p.add_argument(
        "--threads", type=positive_int, metavar="N", help="CPU threads per engine; default: half the cores"
    )
    add_fit_argument(p)
    p.add_argument("--top", type=positive_int, default=TOP, help="slowest nodes listed; default: %(default)s")
    p.add_argument("--json", action="store_true", help="print it as JSON (edge schema profile)")
    p.set_defaults(func=cmd_profile)


def cmd_profile(args: argparse.Namespace) -> int:
    from edge.build import parse_size
    from edge.layer_profile import format_profile, profile_engines

    report = profile_engines(
        args.source,
        engines=args.engines,
        backend=args.backend,
        device=args.device,
        panoptic=args.panoptic,
        depth=args.depth,
        precision=args.precision,
        size=parse_size(args.size) if args.size else None,
        kinds=tuple(args.kind or ("panoptic", "depth")),
        frames=args.frames,
        warmup=args.warmup,
        threads=args.threads,
        fit=args.fit,
        top=args.top,
    )
    if args.json:
        from edge.util.numbers import strict_dumps

        print(strict_dumps(report, indent=2))
    else:
        print(format_profile(report))
    return 0
