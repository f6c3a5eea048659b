"""``edge compare``: two builds of the engines on the same frames, how far they agree (a thin
layer over edge.compare)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from edge.cli_args import BACKENDS, count, output_folder, positive_int, score
from edge.cli_help import add_command

KINDS = (  # (option, what it chooses, metavar)
    ("engines", "engines directory; default: engines", "DIR"),
    ("backend", "engine backend (auto: the fastest here that the folder has engines for)", None),
    ("device", "torch backend only: cpu or cuda[:N]", "DEVICE"),
    ("panoptic", "panoptic model to use when several are built", "MODEL"),
    ("depth", "depth model to use when several are built", "MODEL"),
    ("precision", "engines of this precision when several are built (default: the newest build)", None),
    ("size", "engines of this input size when several are built (default: the newest build)", "HxW"),
)


def _choices(option: str) -> list[str] | None:
    return {"backend": BACKENDS, "precision": ["fp32", "fp16", "int8"]}.get(option)


def add_compare_command(sub: Any) -> None:
    from edge.cli_frames import add_fit_argument
    from edge.compare import ENDLESS_FRAMES, WORST
    from edge.postprocess.panoptic import MIN_SCORE

    p = add_command(
        sub,
        "compare",
        help="how far two builds of the engines agree on the same frames, with no labels (INT8 or FP16 "
        "against FP32, TensorRT against ONNX Runtime, a smaller size or model)",
        epilog="Every frame goes through both; the reference's outputs stand as the ground truth of the "
        "metrics edge replay --eval reports: PQ, mIoU, depth AbsRel, the objects' distances and the "
        "reference's things found by distance, with the share of pixels of the same class, both builds' "
        "latency on the same frames, and the least agreeing frames, drawn. Each --reference-X option "
        "is the same as --X where it is not given.",
    )
    p.add_argument(
        "source", help="the frames: a recording, an image folder, cityscapes://DIR, synthetic://, a camera"
    )
    for option, about, metavar in KINDS:
        default = "engines" if option == "engines" else ("auto" if option == "backend" else None)
        p.add_argument(
            f"--{option}",
            default=default,
            choices=_choices(option),
            type=input_size if option == "size" else str,
            metavar=metavar,
            help=f"the engines compared: {about}",
        )
    for option, _, metavar in KINDS:
        p.add_argument(
            f"--reference-{option}",
            choices=_choices(option),
            type=input_size if option == "size" else str,
            metavar=metavar,
            help=f"the reference's {option}; default: --{option}'s",
        )
    p.add_argument(
        "--threads", type=positive_int, metavar="N", help="CPU threads per engine; default: half the cores"
    )
    add_fit_argument(p)
    p.add_argument(
        "--min-score",
        type=score,
        default=MIN_SCORE,
        metavar="P",
        help="the lowest detection score a thing is kept at, by both; default: %(default)s",
    )
    p.add_argument(
        "--max-frames",
        type=positive_int,
        metavar="N",
        help=f"compare at most N frames; default: the whole source ({ENDLESS_FRAMES} of a camera or of "
        "synthetic:// without frames=)",
    )
    p.add_argument(
        "--worst",
        type=count,
        default=WORST,
        metavar="N",
        help="the least agreeing frames named and drawn (reference, engines, where they differ); "
        "default: %(default)s",
    )
    p.add_argument(
        "--out",
        type=output_folder,
        default="out/compare",
        help="where compare.json, compare.md and the pictures go; default: %(default)s",
    )
    from edge.compare_bounds import IN_PERCENT, METRICS, bound_setting

    names = ", ".join(METRICS)
    for flag, at_least, example in (("--min", True, "pq=95"), ("--max", False, "depth_abs_rel=0.03")):
        p.add_argument(
            flag,
            dest="bounds",  # one list, in the order given
            type=bound_setting(at_least),
            action="append",
            default=[],
            metavar="NAME=X",
            help=f"exit 1 unless the agreement's NAME is at {'least' if at_least else 'most'} X ({flag} "
            f"{example}; repeatable): a build pipeline's gate; NAME one of {names} ({', '.join(IN_PERCENT)} "
            "in percent, as printed)",
        )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_compare)


def input_size(text: str) -> tuple[int, int]:
    """The type of --size and --reference-size: HxW, as edge build takes it, refused in the
    option's name."""
    from edge.build import parse_size
    from edge.errors import ConfigError

    try:
        return parse_size(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("--size ", "", 1)) from None


def choices_of(args: argparse.Namespace) -> tuple[Any, Any]:
    """The engines' and the reference's EngineChoice from the options."""
    from edge.compare import EngineChoice

    engines = EngineChoice(
        engines=args.engines,
        backend=args.backend,
        device=args.device,
        panoptic=args.panoptic,
        depth=args.depth,
        precision=args.precision,
        size=args.size,
    )
    reference = engines.but(
        engines=args.reference_engines,
        backend=args.reference_backend,
        device=args.reference_device,
        panoptic=args.reference_panoptic,
        depth=args.reference_depth,
        precision=args.reference_precision,
        size=args.reference_size,
    )
    return engines, reference


def cmd_compare(args: argparse.Namespace) -> int:
    from edge.compare import compare
    from edge.compare_report import format_comparison
    from edge.errors import Interrupted

    engines, reference = choices_of(args)
    try:
        report = compare(
            args.source,
            engines=engines,
            reference=reference,
            threads=args.threads,
            fit=args.fit,
            min_score=args.min_score,
            max_frames=args.max_frames,
            worst=args.worst,
            out_dir=args.out,
            show_progress=not args.quiet,
            bounds=tuple(args.bounds),
        )
    except Interrupted as exc:
        print(format_comparison(exc.data))
        _say_bounds(exc.data)
        print(
            f"stopped after {exc.data['frames']} frames: {args.out}/compare.json holds them (it says "
            "interrupted)",
            file=sys.stderr,
        )
        raise exc.original from None
    print(format_comparison(report))
    pictures = len(report.get("pictures", ()))
    print(f"report: {args.out}/compare.md  {args.out}/compare.json  ({pictures} pictures)")
    return 0 if _say_bounds(report) else 1


def _say_bounds(report: dict[str, Any]) -> bool:
    """Each --min and --max said (those not kept on standard error); whether all were kept."""
    from edge.compare_bounds import bound_lines

    checked = report.get("bounds", [])
    for line, c in zip(bound_lines(checked), checked, strict=True):
        print(line, file=sys.stdout if c["held"] else sys.stderr)
    return all(c["held"] for c in checked)
