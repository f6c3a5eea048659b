"""``edge bench``: latency benchmark reports (a thin layer over edge.bench and edge.report)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edge.bench_samples import SAMPLES, SAMPLES_BUDGET_BYTES
from edge.bench_streams import ARRIVALS, DEFAULT_RATE
from edge.cli_args import (
    byte_size,
    count,
    non_negative_seconds,
    output_folder,
    positive_int,
    priority_setting,
    rate_setting,
    share_setting,
)
from edge.cli_frames import add_fit_argument


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engines",
        default="engines",
        help="engines directory (missing ones are built); default: %(default)s",
    )
    p.add_argument("--source", default="synthetic://", help="frames to replay; default: %(default)s")
    p.add_argument(
        "--backend",
        nargs="+",
        default=["onnxruntime"],
        choices=["onnxruntime", "tensorrt", "torch"],
        help="one or more backends (a sweep); default: %(default)s",
    )
    p.add_argument(
        "--streams",
        nargs="+",
        type=positive_int,
        metavar="N",
        help="multi-stream: N cameras at --rate each, all at once, taking turns at one set of engines "
        "as edge run --camera does (frames the engines cannot take are dropped, as a camera's are); one "
        "or more counts (a sweep); default: single-stream, one frame at a time",
    )
    p.add_argument(
        "--rig",
        metavar="FILE",
        help="multi-stream with a rig file's cameras (edge run --rig's) instead of --streams: a stream "
        "each, named as its camera, at the rate its source names (?fps=30; else --rate), ranked and "
        "sharing the turns as its priority and share say; every stream's frames are --source's, resized "
        "to the size its source asks (?width=1280&height=720), then undistorted, flipped and fitted as "
        "its undistort, flip and fit say (--fit: the cameras' it gives none)",
    )
    p.add_argument(
        "--rate",
        action="append",
        type=rate_setting,
        metavar="[NAME=]FPS",
        help="with --streams: each camera's frames per second; NAME=FPS, one stream's where it differs "
        "(stream0, stream1, ...: a rig's front camera at 30, its side ones at 10; repeatable); default: "
        f"the source's own rate (synthetic://: 17), else {DEFAULT_RATE:g}",
    )
    p.add_argument(
        "--arrival",
        choices=ARRIVALS,
        default="together",
        help="with --streams: when the cameras' frames arrive: together, all at the same moments (cameras "
        "triggered as one: the longest wait for a turn), or spread evenly over a frame's period "
        "(free-running cameras at their best); default: %(default)s",
    )
    p.add_argument(
        "--priority",
        action="append",
        type=priority_setting,
        metavar="NAME[=N]",
        help="with --streams: stream NAME (stream0, stream1, ...) goes to the engines before the others "
        "whenever both wait, as edge run --priority ranks a camera (repeatable; N ranks them, default 1, "
        "every other stream 0)",
    )
    p.add_argument(
        "--share",
        action="append",
        type=share_setting,
        metavar="NAME=W",
        help="with --streams: stream NAME's share of the engines' turns among streams of its --priority, "
        "as edge run --share gives a camera's (repeatable; default 1 each)",
    )
    p.add_argument(
        "--precision", nargs="+", default=["fp32"], help="one or more precisions; default: %(default)s"
    )
    p.add_argument(
        "--size",
        nargs="+",
        help="one or more HxW input sizes; default: the newest size the engines folder holds for "
        "the first backend and precision (256x512, built, when it holds none), and the same size "
        "for the rest of the sweep",
    )
    p.add_argument("--device", help="torch backend: cpu (default) or cuda[:N]")
    p.add_argument(
        "--models",
        nargs="+",
        metavar="NAME",
        help="the models to measure, one panoptic and/or one depth, built when missing; "
        "default: the newest engines of each kind in the folder (the tiny defaults when it has none)",
    )
    p.add_argument(
        "--warmup", type=count, default=20, help="frames run before measuring; default: %(default)s"
    )
    p.add_argument(
        "--min-frames", type=count, default=1024, help="measure at least N frames; default: %(default)s"
    )
    p.add_argument(
        "--min-duration",
        type=non_negative_seconds,
        default=60.0,
        help="and at least S seconds; default: %(default)s",
    )
    p.add_argument(
        "--samples",
        type=positive_int,
        default=SAMPLES,
        metavar="N",
        help="the source's first N frames are read into memory before measuring and issued in turn, "
        "so reading, decoding or rendering them is not measured (fewer where the source ends "
        "first or they would hold over --samples-memory); default: %(default)s",
    )
    p.add_argument(
        "--samples-memory",
        type=byte_size,
        default=SAMPLES_BUDGET_BYTES,
        metavar="SIZE",
        help=f"the most the held frames may take (2G holds 86 frames of a 4K video); default: "
        f"{SAMPLES_BUDGET_BYTES // 2**20}M",
    )
    p.add_argument(
        "--calib-data", metavar="URI", help="calibration frames for int8 engines that must be built"
    )
    p.add_argument("--threads", type=positive_int, help="CPU threads per engine; default: half the cores")
    p.add_argument(
        "--no-draw",
        action="store_true",
        help="postprocess as in a run whose sinks show no pictures (objects.jsonl, -): the panoptic "
        "fusion without the overlay and depth colours a video or the viewer needs",
    )
    add_fit_argument(p)
    p.add_argument(
        "--report", type=output_folder, default="out/bench", help="report folder; default: %(default)s"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--compare",
        nargs=2,
        metavar=("A.json", "B.json"),
        help="instead of measuring, show B/A ratios of two bench.json files",
    )


def _per_stream(given: list[tuple[str, Any]] | None, flag: str, does: str, streams: Any) -> dict[str, Any]:
    """A repeatable ``flag``'s (stream, value) pairs by stream; a ConfigError for a stream
    named twice, or any without --streams."""
    from edge.errors import ConfigError

    values = dict(given or ())
    if len(values) < len(given or ()):
        raise ConfigError(f"{flag} names a stream twice; give each stream's once")
    if values and not streams:
        raise ConfigError(
            f"{flag} {next(iter(values))}: it {does} the streams of --streams; give --streams too"
        )
    return values


def _rig_streams(args: argparse.Namespace) -> tuple[list[str], dict[str, tuple[int, int]], dict[str, Any]]:
    """``--rig FILE`` as the streams of edge bench: its cameras' names, the (height, width)
    each asks for (a source's ``width=`` and ``height=``) and each one's Look (its lens file
    read, its flip, its fit: --fit's for the cameras the rig gives none), returned; their
    rates (``fps=``) where --rate NAME=FPS gives none, and their priorities and shares under
    the command line's; ``args.streams`` set to their number."""
    from edge.cli_rig import apply_rig, read_rig
    from edge.errors import ConfigError, SourceError
    from edge.stream.cameras import asked

    rig = read_rig(args.rig)
    if args.streams:
        raise ConfigError(
            f"--rig {args.rig} gives the streams, one a camera ({', '.join(rig.cameras)}); leave "
            f"--streams {' '.join(map(str, args.streams))} out"
        )
    apply_rig(args, rig, only=("priority", "share"))
    args.streams = [len(rig.cameras)]
    named = {name for name, _ in args.rate or () if name is not None}
    sizes = {}
    for name, uri in rig.settings["camera"]:
        try:
            wanted = asked(uri)
        except SourceError as exc:
            raise ConfigError(f"rig file {args.rig!r}, cameras.{name}.source: {exc}") from None
        if wanted.fps is not None and name not in named:
            args.rate = [*(args.rate or []), (name, wanted.fps)]
        if wanted.size is not None:
            sizes[name] = (wanted.size[1], wanted.size[0])
    return rig.cameras, sizes, _rig_looks(rig)


def _rig_looks(rig: Any) -> dict[str, Any]:
    """Each rig camera's bench_streams.Look: its lens file read (a ConfigError names one that
    is not a calibration), flip, and fit (None where it gives none: --fit's, the engines')."""
    from edge.bench_streams import Look
    from edge.stream.undistort import read_calibration

    fits, flips = dict(rig.settings["fit"]), dict(rig.settings["flip"])
    lenses = {name: read_calibration(path) for name, path in rig.settings["undistort"]}
    return {
        name: Look(fit=fits.get(name), flip=flips.get(name, "none"), lens=lenses.get(name))
        for name in rig.cameras
    }


def run_bench_command(args: argparse.Namespace) -> int:
    from edge.bench import run_bench, sweep
    from edge.bench_compare import compare, compare_notes, load_result
    from edge.build import parse_size
    from edge.errors import ConfigError, Interrupted
    from edge.report import compare_markdown, write_report

    if args.compare:
        a, b = (load_result(p) for p in args.compare)
        for path, d in zip(args.compare, (a, b), strict=True):
            if d.get("interrupted"):
                print(f"note: {path} is from an interrupted run; its numbers are incomplete", file=sys.stderr)
            elif u := d.get("unfinished"):
                print(
                    f"note: {path} is from a run that did not finish: {u['complete_configurations']} of "
                    f"{u['configurations']} configuration(s)",
                    file=sys.stderr,
                )
        print(compare_markdown(compare(a, b), args.compare[0], args.compare[1]), end="")
        for note in compare_notes(a, b):
            print(f"note: {note}", file=sys.stderr)
        return 0
    names, frame_sizes, looks = _rig_streams(args) if args.rig else (None, None, None)
    every = [fps for name, fps in args.rate or () if name is None]
    if len(every) > 1:
        raise ConfigError(
            f"--rate is given {len(every)} times without a stream's name; give the streams' rate once "
            "(and NAME=FPS for a stream whose rate differs)"
        )
    rate = every[0] if every else None
    if rate is not None and not args.streams:
        raise ConfigError(f"--rate {rate:g}: it paces the cameras of --streams; give --streams too")
    rates = _per_stream(
        [(n, f) for n, f in args.rate or () if n is not None], "--rate", "paces", args.streams
    )
    if args.arrival != "together" and not args.streams:
        raise ConfigError(f"--arrival {args.arrival}: it times the cameras of --streams; give --streams too")
    priorities = _per_stream(args.priority, "--priority", "ranks", args.streams)
    shares = _per_stream(args.share, "--share", "shares the turns of", args.streams)
    sizes: list[tuple[int, int] | None] = [parse_size(s) for s in args.size] if args.size else [None]
    configs = sweep(args.backend, args.precision, sizes, args.device, args.streams or [None])
    report = Path(args.report)
    try:
        data = run_bench(
            configs,
            engines=args.engines,
            source=args.source,
            models=args.models,
            warmup=args.warmup,
            min_frames=max(1, args.min_frames),
            min_duration_s=args.min_duration,
            samples=args.samples,
            samples_memory=args.samples_memory,
            threads=args.threads or None,
            show_progress=not args.quiet,
            calib_data=args.calib_data,
            draw=not args.no_draw,
            fit=args.fit,
            rate=rate,
            rates=rates,
            priorities=priorities,
            shares=shares,
            arrival=args.arrival,
            stream_names=names,
            stream_sizes=frame_sizes,
            stream_looks=looks,
            # each configuration's report as it is done: a sweep killed later keeps them
            on_configuration=lambda so_far: write_report(so_far, report),
        )
    except Interrupted as exc:
        # a long run stopped by Ctrl-C keeps what it measured, marked incomplete
        _write_and_print(exc.data, report)
        i = exc.data["interrupted"]
        print(
            f"stopped during {i['during']}: the report holds what was measured, "
            f"{i['complete_configurations']} of {i['configurations']} configuration(s) complete",
            file=sys.stderr,
        )
        raise exc.original from None
    _write_and_print(data, report)
    return 0


def _write_and_print(data: dict[str, Any], out: Path) -> None:
    from edge.report import write_report
    from edge.report.bench_report import dropped_text, result_label

    files = write_report(data, out)
    for r in data["results"]:
        e = r["end_to_end_ms"]
        energy = (r.get("power") or {}).get("energy_per_frame_mj")
        print(
            f"{result_label(r):<32} {r['frames']:>6} frames  {r['throughput_fps']:6.1f} fps  "
            f"end-to-end p50 {e['p50']:.1f} ms  p99 {e['p99']:.1f} ms  max {e['max']:.1f} ms"
            + (f"  {energy:.0f} mJ/frame" if energy is not None else "")
            + (f"  dropped {dropped_text(r)}" if "streams" in r else "")
        )
    print(f"report: {files['markdown']}  {files['html']}  {files['json']}")
