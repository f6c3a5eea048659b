"""The `edge` command: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import faulthandler
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from edge.cli_args import (
    count,
    finite_number,
    output_folder,
    percentile,
    positive_int,
)
from edge.errors import ConfigError, EdgeError
from edge.schemas import SCHEMA_NAMES
from edge.util.interrupts import OrderlyExit, end_at_once_on_signal, stop_by_signal
from edge.util.journal import levels_on_stderr, stacks_to_journal
from edge.util.ort import keep_offline


def _cmd_models(_args: argparse.Namespace) -> int:
    from edge.models.zoo import get_entry, list_models

    for name in list_models():
        e = get_entry(name)
        print(f"{name:20s} {e.kind:9s} {e.description}")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    import json

    from edge.schemas import LINE_SCHEMAS, check_document, check_lines, schema

    if not args.check:
        print(json.dumps(schema(args.name), indent=2))
        return 0
    bad = 0
    for path in args.check:
        try:
            # a run's lines as they come: edge run ... --sink - | edge schema objects --check -
            with open(
                sys.stdin.fileno() if path == "-" else path, encoding="utf-8", closefd=path != "-"
            ) as f:
                if args.name not in LINE_SCHEMAS:
                    why = check_document(args.name, f.read())
                    print(f"{path}: {args.name} " + (f"refused: {why}" if why else "valid"))
                    bad += why is not None
                    continue
                count, refused = check_lines(args.name, f)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--check: cannot read {path!r} as JSON: {exc}") from exc
        for number, why in refused[: args.show]:
            print(f"{path}:{number}: {why}")
        if len(refused) > args.show:
            print(f"{path}: ... and {len(refused) - args.show} more")
        verdict = f"{len(refused)} refused" if refused else "all valid"
        print(f"{path}: {count} {args.name} lines, {verdict}")
        bad += bool(refused)
    return 1 if bad else 0


def _cmd_info(args: argparse.Namespace) -> int:
    import json

    from edge.info import format_info, machine_info

    info = machine_info()
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from edge.cli_build import run_build

    return run_build(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from edge.cli_bench import run_bench_command

    return run_bench_command(args)


def _cmd_make_synthetic(args: argparse.Namespace) -> int:
    from edge.build import parse_frame_size
    from edge.data.make_synthetic import is_gt_frame, write_dataset
    from edge.util.numbers import counted
    from edge.util.progress import progress_bar

    size = parse_frame_size(args.size, "--size")
    total = args.sequences * args.frames
    gt_every = 1 if args.all_gt else args.gt_every
    if not any(is_gt_frame(f, gt_every) for f in range(args.frames)):
        print(
            f"warning: no frame will have ground truth: with --gt-every {gt_every} the first annotated "
            f"frame is frame {gt_every} of a sequence, and sequences have {args.frames}; give --frames "
            f"{gt_every} or more, a smaller --gt-every, or --all-gt to evaluate on them",
            file=sys.stderr,
        )
    with progress_bar(
        total=total, desc=f"synthetic {args.split}", unit="frame", enabled=not args.quiet
    ) as bar:
        info = write_dataset(
            args.out,
            sequences=args.sequences,
            frames=args.frames,
            size=size,
            split=args.split,
            gt_every=gt_every,
            seed=args.seed,
            cut_ins=args.cut_ins,
            lane=args.lane,
            lead_brakes=args.lead_brakes,
            progress=lambda n: bar.update(n - bar.n),
        )
    print(
        f"wrote {counted(info['frames'], 'frame')} ({info['gt_frames']} with ground truth) in "
        f"{counted(info['sequences'], 'sequence')} to {info['root']} (split {info['split']}); replay: "
        f"edge run 'cityscapes://{info['root']}"
        f"?split={info['split']}'"
    )
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from calib import calibrate, calibrate_from_cache
    from calib.api import bias_line, held_out_line

    out_dir = args.out or os.path.dirname(os.path.abspath(args.model))
    if args.from_cache:
        done = calibrate_from_cache(args.model, cache=args.from_cache, out_dir=out_dir)
        print(f"Q/DQ model: {done.qdq_model}")
        print(f"ranges:     {done.ranges_json}")
        print(f"{done.record['tensors']} tensors from {done.record['method']}")
        return 0
    result = calibrate(
        args.model,
        source=args.calib_data,
        out_dir=out_dir,
        frames=args.calib_frames,
        method=args.method,
        percentile=args.percentile,
        seed=args.seed,
        exclude_nodes=tuple(args.exclude or ()),
        min_snr_db=args.min_snr,
        equalize=not args.no_equalize,
        fit=args.fit,
        bias_correction=not args.no_bias_correction,
        show_progress=not args.quiet,
    )
    print(f"Q/DQ model: {result.qdq_model}")
    print(f"ranges:     {result.ranges_json}")
    if result.record.get("equalized"):
        print(f"equalized {len(result.record['equalized'])} convolution inputs")
    if line := bias_line(result.record):
        print(line)
    if result.float_model is not None and os.path.abspath(result.float_model) != os.path.abspath(args.model):
        print(f"float model the ranges describe: {result.float_model}")
    print(f"TensorRT 10 calibration cache: {result.trt_cache}")
    mixed = result.record.get("mixed_precision")
    if mixed:
        for step in mixed["steps"]:
            print(f"  {step['node']}: {step['reason']}")
        verdict = "met" if mixed["budget_met"] else "NOT met"
        print(f"  budget {mixed['min_snr_db']} dB {verdict}: {mixed['final_snr_db']}")
    spread = (result.record.get("sampling") or {}).get("spread_over")
    print(
        f"{result.record['frames']} frames"
        + (f" spread over the source's {spread}" if spread else "")
        + f", {result.record['method']}, data sha256 {result.record['data_sha256'][:12]}"
    )
    if line := held_out_line(result.record):
        print(line)
    return 0


def _cmd_lint(args: argparse.Namespace) -> int:
    import json

    from edge.export.lint import lint_model, target_versions
    from edge.export.trt_versions import resolve_target

    target = resolve_target(args.target)  # before any model: a typo is said once, not per file
    errors, report = 0, []
    for path in args.models:
        findings = lint_model(path, target=target, plugins=args.plugin)
        n_err = sum(f.level == "error" for f in findings)
        n_warn = sum(f.level == "warning" for f in findings)
        errors += n_err
        if args.json:  # every finding, infos too: a program filters them itself
            report.append(
                {
                    "path": str(path),
                    "target": target,
                    "tensorrt": target_versions(target),
                    "errors": n_err,
                    "warnings": n_warn,
                    "findings": [f.as_dict() for f in findings],
                }
            )
            continue
        for f in findings:
            if args.verbose or f.level != "info":
                print(f"{path}: {f}")
        print(f"{path}: {target}: {n_err} errors, {n_warn} warnings")
    if args.json:
        print(json.dumps({"models": report}, indent=2))
    return 1 if errors else 0


def build_parser() -> argparse.ArgumentParser:
    from edge import __version__
    from edge.cli_bench import add_bench_arguments
    from edge.cli_build import DESCRIPTION as BUILD_DESCRIPTION
    from edge.cli_build import add_build_arguments
    from edge.cli_compare import add_compare_command
    from edge.cli_engines import add_engines_command
    from edge.cli_help import add_command
    from edge.cli_lens import add_lens_command
    from edge.cli_profile import add_profile_command
    from edge.cli_rig import add_rig_command
    from edge.cli_service import add_service_command
    from edge.cli_stream import add_stream_commands
    from edge.cli_train import add_train_command
    from edge.stream.fit import FITS

    parser = argparse.ArgumentParser(prog="edge", description="Edge perception runtime.")
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = add_command(
        sub, "build", help="build engines (same as build_engines.py)", description=BUILD_DESCRIPTION
    )
    add_build_arguments(p)
    p.set_defaults(func=_cmd_build)
    add_stream_commands(sub)
    add_service_command(sub)
    add_rig_command(sub)
    add_train_command(sub)
    add_lens_command(sub)
    p = add_command(sub, "calibrate", help="INT8: Q/DQ ONNX, ranges JSON and a TensorRT 10 calibration cache")
    p.add_argument(
        "model", help="an exported model, e.g. engines/panoptic_fpn_tiny_256x512_b1_onnxruntime_fp32.onnx"
    )
    p.add_argument(
        "--calib-data",
        default="synthetic://",
        help="source URI of calibration frames, sampled across all of it (a video, a folder or glob of "
        "drives' videos, cityscapes://DIR, a folder of images): frames of several drives calibrate best; "
        "default: %(default)s",
    )
    p.add_argument(
        "--calib-frames", type=positive_int, default=64, help="frames (seeded sample); default: %(default)s"
    )
    p.add_argument(
        "--method",
        default="entropy",
        choices=["minmax", "percentile", "entropy"],
        help="default: %(default)s",
    )
    p.add_argument(
        "--percentile", type=percentile, default=99.999, help="for --method percentile; default: %(default)s"
    )
    p.add_argument(
        "--fit",
        choices=FITS,
        default="stretch",
        help="frames of another shape than the model's input go in as edge run --fit will put them: "
        "stretched, padded or cropped; default: %(default)s",
    )
    p.add_argument("--exclude", action="append", metavar="NODE", help="keep this node in float (repeatable)")
    p.add_argument(
        "--min-snr",
        type=finite_number,
        metavar="DB",
        help="sensitivity pass: keep layers in float until outputs keep this score "
        "(dB: SNR of semantic logits, -20 log10 of depth's mean relative error)",
    )
    p.add_argument(
        "--no-equalize",
        action="store_true",
        help="do not equalize convolution inputs whose channels differ wildly in range",
    )
    p.add_argument(
        "--no-bias-correction",
        action="store_true",
        help="do not shift convolutions' biases to keep the float model's mean outputs in INT8 "
        "(by default they are, where that scores no worse on the held-out frames)",
    )
    p.add_argument("--seed", type=count, default=0, help="sampling seed; default: %(default)s")
    p.add_argument(
        "--from-cache",
        metavar="CACHE",
        help="no frames: take the ranges from a TensorRT 10 calibration cache (must be this model's)",
    )
    p.add_argument("--out", type=output_folder, help="output folder; default: next to the model")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_calibrate)
    from edge.data.synthetic import LANES

    p = add_command(sub, "make-synthetic", help="write synthetic driving sequences in Cityscapes' layout")
    p.add_argument("--out", type=output_folder, required=True, help="dataset root (Cityscapes layout)")
    p.add_argument("--sequences", type=positive_int, default=2, help="sequences; default: %(default)s")
    p.add_argument(
        "--frames", type=positive_int, default=30, help="frames per sequence; default: %(default)s"
    )
    p.add_argument(
        "--size",
        default="512x1024",
        help="the frames' HxW, any size (a camera's 720x1280 too); default: %(default)s",
    )
    p.add_argument("--split", default="val", help="split name; default: %(default)s")
    p.add_argument(
        "--gt-every",
        type=positive_int,
        default=20,
        help="ground truth on every Nth frame; default: %(default)s",
    )
    p.add_argument("--all-gt", action="store_true", help="ground truth on every frame")
    p.add_argument("--seed", type=count, default=0, help="world seed; default: %(default)s")
    p.add_argument(
        "--cut-ins",
        type=count,
        default=0,
        metavar="N",
        help="road users in each drive that enter the camera's path in its first seconds (people "
        "crossing, cars pulling out), to score cut-in warnings (edge replay --hfov); default: %(default)s",
    )
    p.add_argument(
        "--lane",
        choices=LANES,
        default="centre",
        help="where the camera drives: on the centre line, or in the right lane with the traffic, so "
        "oncoming cars pass outside its path; default: %(default)s",
    )
    p.add_argument(
        "--lead-brakes",
        action="store_true",
        help="in each drive the car ahead in the camera's lane (added where there is none) brakes hard "
        "to a stop in the first seconds while the camera keeps going, to score forward-collision "
        "warnings (edge replay)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_make_synthetic)
    p = add_command(
        sub, "bench", help="single-stream latency benchmark with a report (Markdown, HTML, plots)"
    )
    add_bench_arguments(p)
    p.set_defaults(func=_cmd_bench)
    add_compare_command(sub)
    add_profile_command(sub)
    p = add_command(sub, "lint", help="check ONNX models against TensorRT's ONNX parser")
    p.add_argument("models", nargs="+", metavar="MODEL.onnx")
    p.add_argument(
        "--target",
        default="trt10",
        metavar="TARGET",
        help="trt10: TensorRT 10.3, JetPack 6's; trt11: desktop TensorRT 11.0 to 11.5 (what only a "
        "later 11.x parses is a warning); or one TensorRT version, 10.0 to 10.16 or 11.0 to 11.5 "
        "(e.g. 10.13; a full version such as 10.13.3.9 is its release); default: %(default)s",
    )
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="DOMAIN::OP",
        help="a custom op that will have a registered TensorRT plugin (repeatable)",
    )
    p.add_argument("--verbose", action="store_true", help="also show informational notes")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the findings as JSON, informational notes too (edge schema lint)",
    )
    p.set_defaults(func=_cmd_lint)
    p = add_command(sub, "info", help="backends, versions and devices")
    p.add_argument("--json", action="store_true", help="print it as JSON (a fleet's inventory, a bug report)")
    p.set_defaults(func=_cmd_info)
    add_command(sub, "models", help="list the model zoo").set_defaults(func=_cmd_models)
    add_engines_command(sub)
    p = add_command(
        sub,
        "schema",
        help="print the JSON Schema of what edge writes for other programs",
        epilog="objects: a line a frame (--sink objects.jsonl, --sink -); warnings: a line when a thing "
        "comes to be warned of and one when it clears (?lines=warnings); fused: the things around the "
        "vehicle of every camera at once (?lines=fused); summary: edge run --summary's "
        "file; heartbeat: the file edge run or edge record --heartbeat rewrites while it runs; "
        "record: edge record --summary's file; bench: edge bench's report, bench.json; stats and "
        "history: the live viewer's GET /stats and /history; metrics: edge replay --out DIR's "
        "metrics.json; compare: edge compare's compare.json; profile: edge profile --json's; "
        "manifest: an engines folder's manifest.json (edge build); ranges: edge calibrate's ranges "
        "JSON; lint: edge lint --json's report; rig: edge rig --json's. Each field says its unit and "
        "when it is there; no other field is written.",
    )
    p.add_argument("name", choices=SCHEMA_NAMES, help="which output")
    p.add_argument(
        "--check",
        nargs="+",
        metavar="FILE",
        help="instead, check these files against it, each line of a log, any other file whole (- for "
        "standard input); exit 1 if any is refused (needs jsonschema)",
    )
    p.add_argument(
        "--show",
        type=count,
        default=20,
        metavar="N",
        help="with --check: the refused lines said, at most; default: 20",
    )
    p.set_defaults(func=_cmd_schema)
    for command in sub.choices.values():
        command.set_defaults(command_parser=command)  # for parse_command_line's errors
    return parser


def parse_command_line(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """An edge command line parsed. An argument the command has no place for is refused by the
    command's own parser, so the error shows that command's usage (``edge bench: error: …``);
    argparse alone would say it with edge's list of commands."""
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Exit status of a command: edge errors (2; 3 when a run's outputs all stopped for good,
    edge.errors.OUTPUTS_STOPPED) and what the system refused (1) become one line on stderr,
    not a traceback.

    SIGINT and SIGTERM unwind through the command's ``finally`` blocks, which finalise
    videos, flush latency logs and remove temporary files; exit status 130 / 143. A second
    signal does not cut that short; a third quits at once (OrderlyExit).
    """
    with OrderlyExit() as orderly:
        return _run(func, args, orderly)


def _run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace, orderly: OrderlyExit) -> int:
    try:
        code = int(func(args))
        sys.stdout.flush()  # a reader that went away shows here, not at the interpreter's exit
        return code
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status
    except BrokenPipeError:
        # whoever read stdout stopped (`edge info | head`): end quietly, as Unix tools do;
        # stdout goes to /dev/null so the interpreter's last flush does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by it
    except OSError as exc:
        # what the system refused (a folder that cannot be made, a full disk) names the path
        # in one line; edge's own checks have already refused what they could foresee
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        orderly.settled = True
        name, status = stop_by_signal(exc)
        print(f"{name}: outputs are finalised, nothing half-written was left behind", file=sys.stderr)
        return status


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_command_line(argv)
    return run_command(args.func, args)


def exit_with(code: int) -> NoReturn:
    """The process's exit (the ``edge`` script, ``python -m edge``, build_engines.py)."""
    if code in (130, 143):  # interrupted: the outputs are final, the process only ends
        end_at_once_on_signal(code)
    sys.exit(code)


def entry() -> NoReturn:
    # before anything imports ONNX Runtime, which reads it then: no telemetry from a car
    keep_offline()
    # a run that is killed for hanging (systemd's watchdog sends SIGABRT) leaves, in the
    # journal, where each of its threads was: the read or write that never returned
    faulthandler.enable()
    # as a service, its warnings and errors get the journal's levels (journalctl -p warning),
    # and those stacks the level crit
    if levels_on_stderr():
        stacks_to_journal()
    exit_with(main())


if __name__ == "__main__":
    entry()
