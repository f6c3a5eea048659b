"""Argument types shared by edge's commands (each names what it expected and what it got), and
the arguments more than one command takes."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edge.cli_frames import add_fit_argument, fits_of
from edge.errors import ConfigError
from edge.util.fs import output_path_problem


def _whole(text: str, at_least: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = at_least - 1
    if value < at_least:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _whole(text, 1, "a positive integer")


def count(text: str) -> int:
    return _whole(text, 0, "a whole number >= 0")


def finite_number(text: str, what: str = "a number") -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {what} (finite), got {text!r}")
    return value


def positive_number(unit: str | None = None) -> Callable[[str], float]:
    """A type for a finite number > 0 (of ``unit``)."""
    of = f" of {unit}" if unit else ""

    def parse(text: str) -> float:
        if not finite_number(text, what=f"a number{of}") > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number{of}, got {text!r}")
        return float(text)

    return parse


positive_seconds = positive_number("seconds")


_DURATION_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: str) -> float:
    """Seconds from ``300``, ``90s``, ``5m``, ``1.5h``: a finite number > 0."""
    body = text.strip().lower()
    unit = body[-1:] if body[-1:] in ("s", "m", "h") else ""
    number = body[: len(body) - len(unit)]
    try:
        value = float(number) * _DURATION_UNITS[unit]
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a duration such as 300, 90s, 5m or 1.5h, got {text!r}")
    return value


def non_negative_number(unit: str) -> Callable[[str], float]:
    """A type for a finite number >= 0 of ``unit``."""

    def parse(text: str) -> float:
        value = finite_number(text, what=f"a number of {unit}")
        if value < 0:
            raise argparse.ArgumentTypeError(f"expected a number of {unit} >= 0, got {text!r}")
        return value

    return parse


non_negative_seconds = non_negative_number("seconds")


def confidence(text: str) -> float:
    value = finite_number(text, what="a confidence")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a confidence in [0, 1), e.g. 0.95, got {text!r}")
    return value


def score(text: str) -> float:
    value = finite_number(text, what="a detection score")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a detection score from 0 to 1, e.g. 0.3, got {text!r}")
    return value


def percentile(text: str) -> float:
    value = finite_number(text, what="a percentile")
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"expected a percentile in (0, 100], got {text!r}")
    return value


def _output(text: str, *, folder: bool) -> Path:
    problem = output_path_problem(text, folder=folder) if text else "an empty path"
    if problem:
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: {problem}")
    return Path(text)


def output_file(text: str) -> Path:
    """A file edge will write: checked before any work starts, created later."""
    return _output(text, folder=False)


def output_folder(text: str) -> Path:
    """A folder edge will write into: checked before any work starts, created later."""
    return _output(text, folder=True)


def byte_size(text: str) -> int:
    """A size in bytes: 64M, 1.5G, 512K, 0 (binary units)."""
    from edge.stream.disk import parse_bytes

    try:
        return parse_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def camera(text: str) -> tuple[str, str]:
    """``--camera NAME=URI`` as (name, uri)."""
    from edge.stream.multicam import parse_camera

    try:
        return parse_camera(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_camera_arguments(p: argparse.ArgumentParser) -> None:
    """edge run's --camera NAME=URI (several cameras instead of the source) and --priority."""
    p.add_argument(
        "--camera",
        action="append",
        type=camera,
        metavar="NAME=URI",
        help="several cameras at once, instead of the source (repeatable: --camera front=/dev/video0 "
        "--camera rear=/dev/video2): the engines are loaded once and the cameras take turns at them; "
        "each has its own tracks and summary, and --max-frames and --duration are each camera's; a sink "
        "named with {camera} is one a camera (front.mp4, rear.mp4 for 'out/{camera}.mp4'), "
        "objects.jsonl or - without it is shared, each line naming its camera, and the web viewer is "
        "one a camera, on the port given and the ones after it",
    )
    p.add_argument(
        "--priority",
        action="append",
        type=priority_setting,
        metavar="NAME[=N]",
        help="with --camera: camera NAME's frames go to the engines before the other cameras' whenever "
        "both wait (repeatable; N ranks them, default 1, every other camera 0, a higher N first): "
        "when the engines cannot keep up with every camera, it keeps its rate and the others drop "
        "more (none at all if it alone fills the engines); default: the cameras take turns",
    )
    p.add_argument(
        "--share",
        action="append",
        type=share_setting,
        metavar="NAME=W",
        help="with --camera: camera NAME's share of the engines' turns among cameras of its --priority "
        "(repeatable; default 1 each): when the engines cannot keep up with every camera, --share "
        "front=2 gives the front camera two turns to each other camera's one, and none is starved",
    )
    p.add_argument(
        "--start-offset",
        action="append",
        type=start_offset_setting,
        metavar="NAME=S",
        help="with --camera: camera NAME's recording began S seconds after the drive's first camera's "
        "(repeatable; default 0; edge record --replay-rig writes each camera's into the rig): with "
        "--realtime it is replayed that much later; without, the recordings are read in the order of "
        "their capture times, each one's S added",
    )


def priority_setting(text: str) -> tuple[str, int]:
    """``--priority NAME`` (rank 1) or ``--priority NAME=N``."""
    name, sep, rank = text.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"expected NAME or NAME=N (a camera of --camera), got {text!r}")
    if not sep:
        return name, 1
    try:
        return name, int(rank)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected NAME=N, N a whole number (a higher one first), got {text!r}"
        ) from None


def rate_setting(text: str) -> tuple[str | None, float]:
    """``--rate FPS`` (every stream: name None) or ``--rate NAME=FPS`` (one stream)."""
    name, sep, fps = text.rpartition("=")
    try:
        if name or not sep:
            return (name or None), positive_number("frames per second")(fps)
    except argparse.ArgumentTypeError:
        pass
    raise argparse.ArgumentTypeError(
        f"expected a positive number of frames per second (FPS, or NAME=FPS for one stream), got {text!r}"
    )


def named_number(number: Callable[[str], float], expected: str) -> Callable[[str], tuple[str, float]]:
    """A type for ``NAME=X`` (a camera's setting), X as ``number`` reads it; refused as
    ``expected`` says it should be."""

    def parse(text: str) -> tuple[str, float]:
        name, sep, value = text.partition("=")
        try:
            if name and sep:
                return name, number(value)
        except argparse.ArgumentTypeError:
            pass
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")

    return parse


# --share NAME=W and --start-offset NAME=S
share_setting = named_number(
    positive_number(), "NAME=W, W a number > 0 (the camera's turns against the others')"
)
start_offset_setting = named_number(
    non_negative_seconds,
    "NAME=S, S a number of seconds >= 0 (how much later the camera's recording began)",
)


def _per_camera(
    args: argparse.Namespace, flag: str, cameras: Mapping[str, str] | None, does: str
) -> dict[str, Any]:
    """The (name, value) pairs of a repeatable --flag by name; a ConfigError for one
    without --camera or a camera given twice."""
    given: list[tuple[str, Any]] = getattr(args, flag.removeprefix("--").replace("-", "_"), None) or []
    if given and cameras is None:
        raise ConfigError(
            f"{flag} {given[0][0]} {does} a camera of --camera, and this run has one source: "
            f"give several with --camera NAME=URI, or leave {flag} out"
        )
    values: dict[str, Any] = {}
    for name, value in given:
        if name in values:
            raise ConfigError(f"{flag} {name} is given twice; give each camera's once")
        values[name] = value
    return values


def camera_priorities(args: argparse.Namespace, cameras: Mapping[str, str] | None) -> dict[str, int]:
    """Each camera's ``--priority`` by name (those not named: none); a ConfigError for one
    without --camera, a name that is no camera's, or a camera given twice."""
    ranks = _per_camera(args, "--priority", cameras, "ranks")
    if cameras is not None:
        from edge.stream.multicam import check_priorities

        check_priorities(ranks, list(cameras))
    return ranks


def camera_shares(args: argparse.Namespace, cameras: Mapping[str, str] | None) -> dict[str, float]:
    """Each camera's ``--share`` by name (those not named: none); ConfigErrors as
    camera_priorities'."""
    shares = _per_camera(args, "--share", cameras, "gives a share of the engines' turns to")
    if cameras is not None:
        from edge.stream.multicam import check_shares

        check_shares(shares, list(cameras))
    return shares


def camera_start_offsets(args: argparse.Namespace, cameras: Mapping[str, str] | None) -> dict[str, float]:
    """Each camera's ``--start-offset`` by name (those not named: 0); ConfigErrors as
    camera_priorities', and multicam.check_start_offsets' (a live camera's)."""
    offsets = _per_camera(args, "--start-offset", cameras, "delays the replay of")
    if cameras is None:
        return offsets
    from edge.stream.multicam import check_start_offsets

    return check_start_offsets(offsets, cameras)


def check_cameras_given(args: argparse.Namespace) -> dict[str, str] | None:
    """``args.camera`` by name (multicam.check_cameras), None where none is given."""
    from edge.stream.multicam import check_cameras

    cameras = getattr(args, "camera", None)
    return check_cameras(cameras) if cameras else None


def run_cameras_of(args: argparse.Namespace) -> dict[str, str] | None:
    """The cameras of ``edge run --camera NAME=URI ...`` by name; None for a run of the one
    positional source. A ConfigError for both, or neither."""
    from edge.stream.multicam import check_cameras

    cameras = getattr(args, "camera", None)
    if cameras and args.source is not None:
        raise ConfigError(
            f"give the source {args.source!r} or --camera NAME=URI (several cameras at once), not both"
        )
    if cameras:
        return check_cameras(cameras)
    if args.source is None:
        raise ConfigError(
            "no source: give one (edge run /dev/video0 ...) or --camera NAME=URI for each of several cameras"
        )
    return None


BACKENDS = ["auto", "onnxruntime", "tensorrt", "torch"]


def add_build_choice_arguments(p: argparse.ArgumentParser) -> None:
    """--panoptic, --depth, --precision and --size: which of a folder's builds run (the newest
    that fits the rest)."""
    p.add_argument("--panoptic", metavar="MODEL", help="panoptic model to use when several are built")
    p.add_argument("--depth", metavar="MODEL", help="depth model to use when several are built")
    p.add_argument(
        "--precision",
        choices=["fp32", "fp16", "int8"],
        help="engines of this precision when several are built; default: the newest build",
    )
    p.add_argument(
        "--size",
        metavar="HxW",
        help="engines of this input size when several are built; default: the newest build",
    )


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """Which engines of a directory to run; the manifest may hold several of each kind."""
    p.add_argument("--engines", default="engines", help="engines directory; default: %(default)s")
    p.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="engine backend; default: auto, the fastest here that the folder has engines for "
        "(with a CUDA GPU TensorRT, then torch on CUDA, then ONNX Runtime; else ONNX Runtime, then torch)",
    )
    p.add_argument(
        "--device", help="torch backend only: cpu or cuda[:N] (default: cuda where auto chose it, else cpu)"
    )
    add_build_choice_arguments(p)
    p.add_argument(
        "--threads", type=positive_int, metavar="N", help="CPU threads per engine; default: half the cores"
    )
    from edge.postprocess.panoptic import MIN_SCORE

    p.add_argument(
        "--min-score",
        type=score,
        default=MIN_SCORE,
        metavar="P",
        help="the lowest detection score a thing is kept at, in the panoptic picture, the objects and "
        "their tracks (detectron2's instances_confidence_threshold): lower finds more, with more false "
        "ones; edge replay --eval scores a choice; default: %(default)s",
    )
    add_fit_argument(p, per_camera=True)
    from edge.cli_tracking import add_tracking_arguments

    add_tracking_arguments(p)


def engine_selection(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments run_stream and replay take for ``add_engine_arguments`` (the
    engines, how frames go in, and the object tracker)."""
    from edge.build import parse_size
    from edge.cli_tracking import object_tracker

    return {
        "engines": args.engines,
        "backend": args.backend,
        "device": args.device,
        "panoptic": args.panoptic,
        "depth": args.depth,
        "precision": args.precision,
        "size": parse_size(args.size) if args.size else None,
        "threads": args.threads,
        "fit": fits_of(args),
        "object_tracker": object_tracker(args),
        "min_score": args.min_score,
    }


def add_keep_free_argument(p: argparse.ArgumentParser) -> None:
    from edge.stream.disk import DEFAULT_KEEP_FREE, format_bytes

    p.add_argument(
        "--keep-free",
        type=byte_size,
        default=DEFAULT_KEEP_FREE,
        metavar="SIZE",
        help="space the video, dir:// and .jsonl sinks (and replay's --out) leave free on their disk: "
        "they stop, with what they wrote whole, at the last frame that leaves it (64M, 1G; 0: no check); "
        "default: "
        f"{format_bytes(DEFAULT_KEEP_FREE)}",
    )


def add_segment_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--segment",
        type=duration,
        metavar="DURATION",
        help="video, .jsonl and .mcap sinks start a new file every DURATION (300, 5m, 1h), as a dash camera "
        "does: drive.mkv becomes drive-NNNNN-YYYYmmdd-HHMMSS.mkv (numbered on), one a segment, each "
        "finished and playable as the next begins; the segment a run that died was writing is kept by "
        "the next run as one of them, with what reached the disk; dir://frames becomes a folder a "
        "segment, frames-NNNNN-YYYYmmdd-HHMMSS/",
    )
    p.add_argument(
        "--delete-oldest",
        action="store_true",
        help="with --segment, a dash camera's loop recording: when the disk would keep less than "
        "--keep-free, delete the oldest segments of the same name (earlier runs' too) instead of stopping",
    )


def add_status_every_argument(p: argparse.ArgumentParser) -> None:
    from edge.latency.status import DEFAULT_LOG_EVERY_S

    p.add_argument(
        "--status-every",
        type=non_negative_seconds,
        default=DEFAULT_LOG_EVERY_S,
        metavar="S",
        help="where standard error is not a terminal (a service's journal, a log file): the status "
        "line every S seconds, so a long run says how it is doing (0: the summary at the end only); "
        "default: %(default)g",
    )


def add_heartbeat_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--heartbeat",
        type=output_file,
        metavar="FILE",
        help="rewrite FILE every 5 s with when the run last made progress and what is stuck, for a "
        "container's health check or a liveness probe (edge alive FILE); put it on a tmpfs such as /run",
    )


def add_post_workers_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--post-workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="frames fused and drawn at once, for engines on a GPU with CPU cores to spare "
        "(the sinks get them in order); default: %(default)s",
    )
