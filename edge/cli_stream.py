"""``edge run``, ``edge replay`` and ``edge demo``: thin layers over edge.stream and edge.replay."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.cli_args import (
    add_camera_arguments,
    add_engine_arguments,
    add_heartbeat_argument,
    add_keep_free_argument,
    add_post_workers_argument,
    add_segment_argument,
    add_status_every_argument,
    engine_selection,
    output_file,
    output_folder,
    positive_int,
    positive_number,
    positive_seconds,
)
from edge.cli_frames import add_flip_argument, add_undistort_argument, flips_of, undistorts_of
from edge.cli_help import add_command
from edge.cli_rig import add_rig_argument

if TYPE_CHECKING:
    from edge.stream import StreamOptions


def cmd_run(args: argparse.Namespace) -> int:
    import dataclasses

    from edge.cli_args import camera_priorities, camera_shares, camera_start_offsets, run_cameras_of
    from edge.cli_rig import with_rig
    from edge.latency import LatencyTracker
    from edge.stream import run_stream

    rig = args.rig
    cameras = run_cameras_of(with_rig(args))
    priorities = camera_priorities(args, cameras)  # before the engines load
    shares = camera_shares(args, cameras)
    offsets = camera_start_offsets(args, cameras)
    if rig is not None:  # what the rig and the command line came to, each camera's
        from edge.cli_rig import rig_lines

        print("\n".join(rig_lines(args, rig)), file=sys.stderr, flush=True)
    if cameras is not None:
        return _run_cameras(args, cameras, priorities, shares, offsets)
    tracker = LatencyTracker(deadline_ms=args.deadline_ms)
    try:
        run_stream(
            args.source, tracker=tracker, **_run_arguments(args), **dataclasses.asdict(_stream_options(args))
        )
    finally:
        # Ctrl-C is how a camera run ends: its summary is the result, so print it then too
        if tracker.frames_out:
            print(tracker.format_summary(), flush=True, file=_report_stream(args.sink))
    return 0


def _run_cameras(
    args: argparse.Namespace,
    cameras: dict[str, str],
    priorities: dict[str, int],
    shares: dict[str, float],
    offsets: dict[str, float],
) -> int:
    """edge run --camera NAME=URI ...: each camera's summary at the end, under its name."""
    from edge.latency import LatencyTracker
    from edge.stream.multicam import format_cameras_summary, run_cameras

    trackers = {name: LatencyTracker(deadline_ms=args.deadline_ms) for name in cameras}
    try:
        run_cameras(
            cameras,
            trackers=trackers,
            options=_stream_options(args),
            priorities=priorities,
            shares=shares,
            start_offsets=offsets,
            **_run_arguments(args),
        )
    finally:  # after Ctrl-C too, as a single camera's
        table = format_cameras_summary(trackers, cameras)
        if table:
            print(table, flush=True, file=_report_stream(args.sink))
    return 0


def _stream_options(args: argparse.Namespace) -> StreamOptions:
    """How edge run reads and writes each camera's stream (edge.stream.StreamOptions, whose
    fields are also run_stream's keyword arguments)."""
    from edge.stream import StreamOptions

    return StreamOptions(
        max_frames=args.max_frames,
        duration_s=args.duration,
        realtime=args.realtime,
        fps=args.fps,
        loop=args.loop,
        reconnect_timeout_s=args.reconnect_timeout,
        post_workers=args.post_workers,
        keep_free=args.keep_free,
        segment_s=args.segment,
        delete_oldest=args.delete_oldest,
    )


def _run_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments run_stream and run_cameras both take from edge run's."""
    return {
        "sinks": args.sink or ["null://"],
        "deadline_ms": args.deadline_ms,
        "trace": args.trace,
        "latency_log": args.latency_log,
        "summary_json": args.summary,
        "show_status": True,
        "status_every_s": args.status_every,
        "heartbeat": args.heartbeat,
        "skip_stuck_sinks": args.stuck_sink == "skip",
        "overwrite": args.overwrite,
        "flip": flips_of(args),
        "undistort": undistorts_of(args),
        **engine_selection(args),
    }


def _report_stream(sinks: list[str] | None) -> Any:
    """Where the command's own report goes: standard error when a sink (``-``) writes the
    objects to standard output, so a program reading them gets nothing else."""
    from edge.stream.sinks import is_stdout

    return sys.stderr if any(is_stdout(uri) for uri in sinks or ()) else sys.stdout


def cmd_replay(args: argparse.Namespace) -> int:
    from edge.errors import Interrupted, ReplayNotSaved
    from edge.replay import replay

    try:
        report = replay(
            args.source,
            evaluate=args.eval,
            out_dir=args.out,
            max_frames=args.max_frames,
            sinks=tuple(args.sink or ()),
            show_status=True,
            post_workers=args.post_workers,
            keep_free=args.keep_free,
            status_every_s=args.status_every,
            **engine_selection(args),
        )
    except Interrupted as exc:
        _print_replay(exc.data, args.out, _report_stream(args.sink))
        print(
            f"stopped after {exc.data['frames']} frames: the metrics cover the {exc.data['gt_frames']} "
            "ground-truth frame(s) replayed before it (metrics.json says interrupted)",
            file=sys.stderr,
        )
        raise exc.original from None
    except ReplayNotSaved as exc:  # what was measured, then why it is not in metrics.json
        _print_replay(exc.data, None, _report_stream(args.sink))
        raise
    _print_replay(report, args.out, _report_stream(args.sink))
    kept = report.get("predictions") or {}
    if kept.get("stopped"):  # a batch job whose files are not all there does not end in success
        print(
            f"error: the predictions stopped after {kept['frames']} of {report['gt_frames']} ground-truth "
            f"frame(s) (see the warning above); the metrics of all of them are in {args.out}/metrics.json",
            file=sys.stderr,
        )
        return 2
    return 0


def _print_replay(report: dict[str, Any], out: str | None, stream: Any) -> None:
    from edge.eval.report import format_metrics
    from edge.latency import LatencyTracker

    print(LatencyTracker.format_summary_of(report["latency"]), file=stream)
    if report["metrics"] is not None and not report["gt_frames"]:
        print(
            f"nothing to evaluate: none of the {report['frames']} frames replayed has ground truth "
            "(Cityscapes annotates one frame of each sequence, the 20th; edge make-synthetic writes it "
            "on every --gt-every'th frame)",
            file=sys.stderr,
        )
    elif report["gt_frames"] and report["metrics"] is None:
        print(
            f"note: {report['gt_frames']} of the {report['frames']} frames replayed have ground truth; "
            "--eval scores the engines on them (PQ, mIoU, depth, objects, tracks)",
            file=sys.stderr,
        )
    elif report["metrics"] is not None:
        print(format_metrics(report["metrics"]), file=stream)
        for size, part in (report.get("scored_part") or {}).items():  # --fit crop
            top, left, bottom, right = part["box"]
            print(
                f"scored on the part of each {size} frame the engines saw: rows {top}..{bottom}, "
                f"columns {left}..{right} ({part['share']:.0%} of it)",
                file=stream,
            )
    if out:
        kept = report.get("predictions") or {}
        if kept.get("stopped"):
            print(
                f"metrics: {out}; predictions of the first {kept['frames']} ground-truth frame(s) only",
                file=stream,
            )
        else:
            print(f"predictions and metrics: {out}", file=stream)


def cmd_demo(args: argparse.Namespace) -> int:
    from edge.stream import demo

    result = demo(
        out_dir=args.out,
        engines=args.engines,
        frames=args.frames,
        realtime=args.realtime,
        show_progress=not args.quiet,
    )
    print(result["table"])
    print(f"video: {result['video']}  (panoptic overlay | depth)")
    lines = len(Path(result["warnings"]).read_text().splitlines())
    print(f"warnings: {result['warnings']}  ({lines} lines: a thing came to be warned of, or cleared)")
    print(f"trace: {result['trace']}  (open in https://ui.perfetto.dev)")
    return 0


# what a service unit (RestartPreventExitStatus=3) or a script needs to tell apart
_EXIT_STATUSES = (
    "exit status: 0 done; 1 the system refused something (one line says what); 2 an error "
    "(bad input, a source that cannot be opened); 3 the outputs all stopped for good (a full "
    "disk with nothing left to delete, a failed card), what they wrote before kept; 130 "
    "Ctrl-C, 143 SIGTERM, the outputs finished either way"
)


def add_stream_commands(sub: Any) -> None:
    """The run, replay and demo sub-commands on ``sub`` (argparse's sub-parsers)."""
    p = add_command(sub, "run", help="run a source through the engines", epilog=_EXIT_STATUSES)
    p.add_argument(
        "source",
        nargs="?",
        help="synthetic://?fps=17&seed=0, video.mp4, images/, videos/ or 'drive-*.mkv' (played one after "
        "another: a segmented recording; 'frames-*' for folders of frames), cityscapes://DIR, "
        "/dev/video0?width=1280&height=720&fps=30&fourcc=MJPG (or udev's /dev/v4l/by-id/... name), "
        "csi://0?width=1280&height=720, "
        "rtsp://HOST/PATH#transport=tcp, http://HOST/stream.mjpg, gst://PIPELINE; or --camera or --rig "
        "instead",
    )
    add_camera_arguments(p)
    add_rig_argument(p)
    add_engine_arguments(p)
    add_flip_argument(p, per_camera=True)
    add_undistort_argument(p)
    p.add_argument(
        "--sink",
        action="append",
        metavar="URI",
        help="out.mp4, objects.jsonl, - (those JSON lines on standard output; the summary then goes to "
        "standard error), dir://frames/, http://127.0.0.1:8080 (live web viewer; ?gate=M&max_age=S: "
        "how its /cameras page fuses several cameras' things, as lines=fused), "
        "http://127.0.0.1:9464/metrics (the run's statistics for Prometheus, no pictures), "
        "display:// (OpenCV window), null:// (repeatable); video, dir:// and display:// show "
        "overlay | depth, or ?view=panoptic, depth or input (the source's frames: a recording); "
        "objects.jsonl?lines=warnings and --sink=-?lines=warnings: a line when a thing comes to be "
        "warned of and one when it clears; around.jsonl?lines=fused: a line a frame, the things around "
        "the vehicle of every camera's newest frame, one that two cameras see once (&gate=M: the least "
        "metres apart two cameras' things may be and be one, default 1.5; &max_age=S: the oldest a "
        "camera's newest frame is fused at, default 0.25); drive.mcap: the "
        "camera's frames with boxes, the panoptic and depth pictures, the objects and warnings lines "
        "and, the camera known, the things in 3D around the vehicle, in one MCAP file for Foxglove "
        "(?views=, ?quality=, ?cloud=N: the depth map as a point cloud, every Nth pixel; ?gate=, "
        "?max_age=: /around's fusion, as lines=fused; needs pip "
        "install 'edge-perception[mcap]'); "
        "foxglove://127.0.0.1:8765: the same, live, to Foxglove (Open connection, Foxglove WebSocket; "
        "the point cloud offered, every 4th pixel); "
        "default: null://",
    )
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames")
    p.add_argument(
        "--duration", type=positive_seconds, metavar="S", help="stop after S seconds of the stream"
    )
    p.add_argument(
        "--deadline-ms",
        type=positive_number("milliseconds"),
        metavar="MS",
        help="count frames slower than this end to end",
    )
    p.add_argument(
        "--realtime",
        action="store_true",
        help="pace files at their fps (a recording with capture times beside it, as edge record "
        "writes: at those) and drop like a camera",
    )
    p.add_argument(
        "--fps",
        type=positive_number("frames per second"),
        help="files and folders: the rate --realtime paces them at and a video sink is written at; "
        "default: the file's own (an image folder has none: 17 for the video, and --realtime needs it)",
    )
    p.add_argument("--loop", action="store_true", help="play a file or folder again each time it ends")
    p.add_argument(
        "--reconnect-timeout",
        type=positive_seconds,
        metavar="S",
        help="cameras and streams: fail when a lost one stays away this long; default: retry for ever",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="cameras and streams: replace a video or .jsonl sink's file that exists (by default it is "
        "refused before the run: a camera's frames cannot be had again); a file's run replaces them anyway",
    )
    add_post_workers_argument(p)
    add_segment_argument(p)
    add_keep_free_argument(p)
    add_status_every_argument(p)
    add_heartbeat_argument(p)
    p.add_argument(
        "--stuck-sink",
        choices=("restart", "skip"),
        default="restart",
        help="a sink stuck inside one write (a recording disk that stopped answering): restart (default) "
        "stops feeding systemd's watchdog and the heartbeat, so the run is restarted; skip says so and "
        "goes on with the other sinks, its frames skipped (a live run: a planner reading the objects "
        "from - keeps them while the recording's disk is stuck)",
    )
    p.add_argument(
        "--trace", type=output_file, metavar="PATH", help="write a Chrome trace (Perfetto) of every stage"
    )
    p.add_argument(
        "--latency-log", type=output_file, metavar="PATH", help="write per-stage spans as JSON lines"
    )
    p.add_argument("--summary", type=output_file, metavar="PATH", help="write the latency summary as JSON")
    p.set_defaults(func=cmd_run)

    p = add_command(sub, "replay", help="replay a Cityscapes-layout folder, evaluate, save predictions")
    p.add_argument("source", help="cityscapes://DIR?split=val&fps=17 (fps=0: as fast as possible)")
    add_engine_arguments(p)
    p.add_argument("--eval", action="store_true", help="evaluate frames that have ground truth")
    p.add_argument(
        "--out",
        type=output_folder,
        metavar="DIR",
        help="write predictions (Cityscapes formats) and metrics.json here",
    )
    p.add_argument(
        "--sink",
        action="append",
        metavar="URI",
        help="also write the overlay video/frames (as edge run's --sink, ?view= too)",
    )
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames")
    add_post_workers_argument(p)
    add_keep_free_argument(p)
    add_status_every_argument(p)
    p.set_defaults(func=cmd_replay)

    from edge.cli_record import add_record_command

    add_record_command(sub, epilog=_EXIT_STATUSES)
    from edge.cli_service import add_alive_command

    add_alive_command(sub)  # after record: the --heartbeat it reads

    p = add_command(sub, "demo", help="build default engines if missing, run the synthetic drive")
    p.add_argument("--out", type=output_folder, default="out", help="output folder; default: %(default)s")
    p.add_argument("--engines", default="engines", help="engines directory; default: %(default)s")
    p.add_argument("--frames", type=positive_int, default=68, help="frames to run; default: %(default)s")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="give the drive's frames at its 17 fps, as a camera would, dropping what the engines "
        "cannot take (by default they are given as fast as the engines take them)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)
