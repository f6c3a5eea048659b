"""``edge record``: a thin layer over edge.stream.record (one source) and
edge.stream.record_cameras (a rig's cameras at once)."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from edge.cli_args import (
    add_heartbeat_argument,
    add_keep_free_argument,
    add_segment_argument,
    add_status_every_argument,
    camera,
    output_file,
    positive_int,
    positive_number,
    positive_seconds,
)
from edge.cli_frames import add_flip_argument, flips_of
from edge.cli_help import add_command

if TYPE_CHECKING:
    from edge.replay_rig import ReplayRig


class ExtendSinks(argparse.Action):
    """edge record's sinks, named after the source or with --sink as edge run takes them:
    each adds to the one list, in either order (a plain positional would replace what
    --sink had given)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), *values])


# what only a source is: named where --camera or --rig makes every positional a sink
_SOURCES_ONLY = (
    "synthetic://",
    "cityscapes://",
    "csi://",
    "rtsp://",
    "rtsps://",
    "gst://",
    "/dev/video",
    "/dev/v4l/",
)


def record_cameras_of(args: argparse.Namespace) -> dict[str, str] | None:
    """The cameras of ``edge record --camera NAME=URI ...`` or ``--rig FILE`` by name (every
    positional then a sink); None for a recording of the one source. A ConfigError for no
    source, and for a source named beside the cameras."""
    from edge.cli_args import check_cameras_given
    from edge.cli_rig import with_rig
    from edge.errors import ConfigError

    if args.camera or args.rig:
        named = [args.source] if args.source is not None else []
        if sources := [uri for uri in named + list(args.sink or ()) if uri.startswith(_SOURCES_ONLY)]:
            instead = "--rig's" if args.rig else "--camera's"
            raise ConfigError(
                f"{sources[0]!r} is a source, and this recording's are {instead} cameras: every name "
                "after the options is then a sink (give --camera NAME=URI for another camera)"
            )
        args.sink, args.source = named + list(args.sink or ()), None
    elif args.source is None:
        raise ConfigError(
            "no source: give one (edge record /dev/video0 drive.mkv), or --camera NAME=URI for each "
            "of several cameras, or --rig FILE"
        )
    # the cameras' frames as they give them: run through the rig later, they are flipped and
    # undistorted as the live cameras are (a --flip on the command line is still taken)
    return check_cameras_given(with_rig(args, only=("camera",)))


def record_sinks(args: argparse.Namespace) -> list[str]:
    """The sinks of an edge record command line; none is an error."""
    from edge.errors import ConfigError

    if not args.sink and args.source is None:  # cameras: the sinks are theirs
        raise ConfigError(
            "edge record needs a sink to write each camera's frames to; got none. Name one with "
            "{camera} in it, e.g. edge record --camera front=/dev/video0 --camera rear=/dev/video2 "
            "'drives/{camera}.mkv'"
        )
    if not args.sink:
        raise ConfigError(
            "edge record needs a sink to write the frames to; got none. Name one or more after the "
            "source or with --sink, e.g. edge record /dev/video0 drive.mkv"
        )
    return list(args.sink)


def replay_rig_of(
    args: argparse.Namespace, cameras: dict[str, str] | None, sinks: list[str], rig: str | None
) -> ReplayRig:
    """--replay-rig's file of the recording of ``cameras`` into ``sinks`` from the ``rig``
    file (None: --camera alone), checked: a ConfigError before anything opens."""
    from edge.errors import ConfigError
    from edge.replay_rig import check_replay_rig, recorded_source, replay_rig
    from edge.stream.record_cameras import camera_sinks
    from edge.stream.sink_refusals import same_path
    from edge.stream.sinks import sink_file
    from edge.stream.sources import is_live

    if cameras is None:
        raise ConfigError(
            "--replay-rig is for a recording of cameras (--rig FILE, or --camera NAME=URI ...); "
            f"the one source {args.source!r} replays as it is: edge run RECORDING"
        )
    folder = Path(args.replay_rig).parent
    own = camera_sinks(sinks, list(cameras))
    for name, uris in own.items():
        if any((file := sink_file(uri)) is not None and same_path(file, args.replay_rig) for uri in uris):
            raise ConfigError(
                f"--replay-rig {str(args.replay_rig)!r} is where camera {name} records: name the rig "
                "another file, e.g. drive/replay.toml"
            )
    recorded = {name: recorded_source(name, own[name], folder=folder) for name in cameras}
    flips = flips_of(args)
    flipped = [n for n in cameras if (flips if isinstance(flips, str) else flips.get(n, "none")) != "none"]
    # recordings recorded again keep the offsets their rig gives: no camera's clock measures new ones
    replayed = not any(is_live(uri) for uri in cameras.values())
    replay = replay_rig(args.replay_rig, recorded, rig=rig, flipped=flipped, keep_offsets=replayed)
    check_replay_rig(replay, overwrite=args.overwrite)
    return replay


def _write_replay_rig(replay: ReplayRig) -> None:
    """--replay-rig's file written as the recording starts, and said; one the system refuses
    ends the recording before its first frame (a ConfigError naming it)."""
    from edge.errors import ConfigError
    from edge.replay_rig import write_replay_rig

    try:
        write_replay_rig(replay)
    except OSError as exc:
        raise ConfigError(
            f"--replay-rig: cannot write {str(replay.path)!r} ({exc.strerror or exc}); nothing was "
            "recorded: name a file edge can write"
        ) from exc
    print(
        f"replay rig: {replay.path} (the drive run again as these cameras: edge run --rig {replay.path} "
        "--realtime --engines DIR)",
        file=sys.stderr,
        flush=True,
    )


def _write_start_offsets(replay: ReplayRig, firsts: dict[str, int | None]) -> None:
    """--replay-rig's file written again once every camera has given its first frame, with
    each one's start offset; one the system refuses now is a warning: the drive goes on."""
    from tqdm import tqdm  # said above the recording's progress bar, which is drawn meanwhile

    from edge.replay_rig import start_offsets, write_replay_rig

    offsets = start_offsets(firsts)
    if not offsets:  # recordings replayed: their frames' times are each one's own
        return
    try:
        write_replay_rig(replay.with_start_offsets(offsets), lenses=False)
    except OSError as exc:
        tqdm.write(
            f"warning: --replay-rig: cannot write the cameras' start offsets into {str(replay.path)!r} "
            f"({exc.strerror or exc}); a replay starts every camera at once",
            file=sys.stderr,
        )
        return
    said = ", ".join(f"{name} {seconds:g} s" for name, seconds in offsets.items())
    tqdm.write(f"replay rig: {replay.path}: the cameras' start offsets: {said}", file=sys.stderr)


def cmd_record(args: argparse.Namespace) -> int:
    from edge.errors import Interrupted, RecordingStopped
    from edge.stream.record import format_summary, record
    from edge.stream.record_cameras import format_cameras_summary, record_cameras

    rig = args.rig
    cameras = record_cameras_of(args)
    sinks = record_sinks(args)
    replay = None if args.replay_rig is None else replay_rig_of(args, cameras, sinks, rig)
    show = format_summary if cameras is None else format_cameras_summary
    common: dict[str, Any] = {
        "max_frames": args.max_frames,
        "duration_s": args.duration,
        "fps": args.fps,
        "reconnect_timeout_s": args.reconnect_timeout,
        "segment_s": args.segment,
        "delete_oldest": args.delete_oldest,
        "show_progress": True,
        "keep_free": args.keep_free,
        "status_every_s": args.status_every,
        "heartbeat": args.heartbeat,
        "skip_stuck_sinks": args.stuck_sink == "skip",
        "overwrite": args.overwrite,
    }
    try:
        if cameras is not None:
            started = firsts = None
            if replay is not None:
                started = functools.partial(_write_replay_rig, replay)
                firsts = functools.partial(_write_start_offsets, replay)
            summary = record_cameras(
                cameras, sinks, flip=flips_of(args), on_started=started, on_first_frames=firsts, **common
            )
        else:  # one source: one flip
            summary = record(args.source, sinks, flip=cast(str, flips_of(args)), **common)
    except Interrupted as exc:  # Ctrl-C is how a camera recording ends: say what was kept
        print(show(exc.data), flush=True)
        _write_record_summary(args.summary, exc.data, warn=True)
        raise exc.original from None
    except RecordingStopped as exc:  # a full disk: what was kept, then the error
        print(show(exc.data), flush=True)
        _write_record_summary(args.summary, exc.data, warn=True)
        raise
    print(show(summary))
    _write_record_summary(args.summary, summary, warn=False)
    return 0


def _write_record_summary(path: Path | None, summary: dict[str, Any], *, warn: bool) -> None:
    """--summary: the JSON beside the line printed. After Ctrl-C or a stop, a file the system
    refuses is a warning and the recording's own end is what the exit status says."""
    from edge.util.fs import atomic_write_json

    if path is None:
        return
    try:
        atomic_write_json(path, summary)
    except OSError as exc:
        if not warn:
            raise
        print(f"warning: {exc}", file=sys.stderr)


def add_record_command(sub: Any, *, epilog: str) -> None:
    """The record sub-command on ``sub`` (argparse's sub-parsers)."""
    p = add_command(
        sub,
        "record",
        help="write a source's frames to a video or folder, without engines (a drive to replay later)",
        epilog=epilog,
    )
    p.add_argument(
        "source",
        nargs="?",
        help="as edge run's: /dev/video0?fps=30, csi://0, rtsp://HOST/PATH, video.mp4, ...; or --camera "
        "or --rig instead (every name after the options is then a sink)",
    )
    p.add_argument(
        "sink",
        nargs="*",
        action=ExtendSinks,
        metavar="SINK",
        help="drive.mp4 (also .avi, .mkv; a camera's capture times go beside it in "
        "drive.mp4.timestamps.txt, which edge run --realtime replays at), dir://frames/ (exact "
        "pixels, one PNG a frame; the capture times in timestamps.txt), display://, "
        "http://127.0.0.1:8080 (the web viewer: watch what is recorded), http://127.0.0.1:9464/metrics "
        "(the recording's statistics for Prometheus), null://; one or more",
    )
    p.add_argument(
        "--sink",
        dest="sink",
        nargs=1,
        action=ExtendSinks,
        metavar="URI",
        help="a SINK as edge run takes it (repeatable): the same as naming it after the source",
    )
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames")
    p.add_argument("--duration", type=positive_seconds, metavar="S", help="stop after S seconds")
    p.add_argument(
        "--fps",
        type=positive_number("frames per second"),
        help="the rate a video is written at; default: the source's own (17 when it has none)",
    )
    p.add_argument(
        "--camera",
        action="append",
        type=camera,
        metavar="NAME=URI",
        help="several cameras at once, instead of the source (repeatable: --camera front=/dev/video0 "
        "--camera rear=/dev/video2), each on a thread of its own into its own sinks: a sink with "
        "{camera} in its name is one a camera ('drives/{camera}.mkv'), a viewer one a camera on the port "
        "given and the ones after it; --max-frames and --duration are each camera's",
    )
    p.add_argument(
        "--rig",
        metavar="FILE",
        help="the cameras of an edge run --rig file, instead of the source: each one's frames as it gives "
        "them (not flipped: edge run --rig FILE --camera NAME=RECORDING runs them as the live cameras)",
    )
    p.add_argument(
        "--replay-rig",
        type=output_file,
        metavar="FILE",
        help="with --rig or --camera: write a rig file that replays this drive, as the recording starts: "
        "each camera's source its first video or dir:// sink (recorded with --segment, the name plays its "
        "segments), "
        "its other settings the --rig file's (a lens file copied beside FILE; a flip this recording "
        "made left out), and once every camera has given its first frame, each one's start-offset (how "
        "long after the first camera's it came); paths relative to FILE, so the folder can be copied "
        "elsewhere and run with edge run --rig FILE --realtime",
    )
    add_flip_argument(p, per_camera=True)
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a video that exists (by default an earlier recording is refused, before "
        "anything is written)",
    )
    p.add_argument(
        "--reconnect-timeout",
        type=positive_seconds,
        metavar="S",
        help="cameras and streams: fail when a lost one stays away this long; default: retry for ever",
    )
    add_segment_argument(p)
    add_keep_free_argument(p)
    add_status_every_argument(p)
    add_heartbeat_argument(p)
    p.add_argument(
        "--stuck-sink",
        choices=("restart", "skip"),
        default="restart",
        help="a camera's sink stuck inside one write (a card that stopped answering): restart "
        "(default) stops feeding systemd's watchdog and the heartbeat, so the recording is restarted; "
        "skip says so and records on in the other sinks, the stuck one skipping the frames meanwhile",
    )
    p.add_argument(
        "--summary",
        type=output_file,
        metavar="PATH",
        help="write the recording's summary as JSON (frames, drops, files, each sink's count), "
        "however it ended",
    )
    p.set_defaults(func=cmd_record)
