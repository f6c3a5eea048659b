"""The object tracker's flags of edge run, replay and service: a camera's field of view,
where it is on the vehicle and which way it looks, per camera of --camera
(edge.postprocess.tracks)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from edge.cli_args import confidence, finite_number, non_negative_seconds, positive_number, positive_seconds
from edge.errors import ConfigError


def field_of_view(text: str) -> float:
    """Degrees, more than 0 and less than 180."""
    value = finite_number(text, what="a number of degrees")
    if not 0 < value < 180:
        raise argparse.ArgumentTypeError(
            f"expected a field of view in degrees, above 0 and below 180, got {text!r}"
        )
    return value


def camera_and_value(text: str, value: str) -> tuple[str | None, str]:
    """``[NAME=]VALUE`` as (NAME or None, VALUE's text); ``value`` names what VALUE is, for
    the error of an ``=`` with no name before it."""
    name, sep, rest = text.rpartition("=")
    if sep and not name:
        raise argparse.ArgumentTypeError(f"expected [NAME=]{value}, a camera's name before '=', got {text!r}")
    return (name or None), rest


def field_of_view_setting(text: str) -> tuple[str | None, float]:
    """``--hfov DEG`` (every camera's) or ``--hfov NAME=DEG`` (one camera's of --camera's)."""
    name, degrees = camera_and_value(text, "DEG")
    return name, field_of_view(degrees)


def mount_offset_setting(text: str) -> tuple[str | None, float]:
    """``--mount-offset M`` (every camera's) or ``--mount-offset NAME=M``."""
    name, metres = camera_and_value(text, "M")
    return name, finite_number(metres, what="a number of metres")


def height_setting(text: str) -> tuple[str | None, float]:
    """``--camera-height M`` (every camera's) or ``--camera-height NAME=M``, M above 0."""
    name, metres = camera_and_value(text, "M")
    value = finite_number(metres, what="a number of metres")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected [NAME=]M, a height over the road above 0 m, got {text!r}")
    return name, value


def horizon_setting(text: str) -> tuple[str | None, float]:
    """``--horizon F`` (every camera's) or ``--horizon NAME=F``: the horizon's row over the
    picture's height, from its top."""
    name, fraction = camera_and_value(text, "F")
    value = finite_number(fraction, what="a fraction of the picture's height")
    # beyond these the road would not be in the picture at all: most likely a row in pixels
    if not -1.0 < value < 2.0:
        raise argparse.ArgumentTypeError(
            f"expected [NAME=]F, the horizon's row over the picture's height (e.g. 0.47, not a row in "
            f"pixels), got {text!r}"
        )
    return name, value


def facing_setting(text: str) -> tuple[str | None, str | float]:
    """``--facing DIR`` (every camera's) or ``--facing NAME=DIR``: DIR one of FACINGS, or a
    yaw in degrees (a corner camera's: left of straight ahead positive)."""
    from edge.errors import ConfigError
    from edge.postprocess.facing import FACINGS, check_facing

    name, facing = camera_and_value(text, "DIR")
    try:
        return name, check_facing(facing if facing in FACINGS else float(facing))
    except (ValueError, ConfigError):
        raise argparse.ArgumentTypeError(
            f"expected [NAME=]DIR, DIR one of {', '.join(FACINGS)} or a yaw in degrees above -180 and up "
            f"to 180 (left of straight ahead positive, e.g. 45 for a front-left corner), got {text!r}"
        ) from None


def add_tracking_arguments(p: argparse.ArgumentParser) -> None:
    """The object tracker's settings a run or replay takes (edge.postprocess.tracks)."""
    p.add_argument(
        "--speed-window",
        type=positive_seconds,
        default=1.0,
        metavar="S",
        help="the objects' closing speeds and times to collision are read over their last S seconds "
        "(5 frames at least must fall in it): longer reads a steady speed better, shorter follows a "
        "change of speed sooner; default: %(default)g",
    )
    p.add_argument(
        "--hfov",
        type=field_of_view_setting,
        action="append",
        metavar="[NAME=]DEG",
        help="the camera's horizontal field of view: each object then says how far it is beside the "
        "camera's axis (lateral_m) and whether it is in the path (in_path: some of it within half "
        "--path-width of the axis), and only those in the path are outlined red; with --camera, "
        "NAME=DEG is that camera's (repeatable) and DEG every other's; default: unknown",
    )
    p.add_argument(
        "--path-width",
        type=positive_number("metres"),
        metavar="M",
        help="with --hfov: how wide the path ahead is, centred on the camera's axis (the vehicle's "
        "width and a margin each side); default: 3, a lane",
    )
    p.add_argument(
        "--mount-offset",
        type=mount_offset_setting,
        action="append",
        metavar="[NAME=]M",
        help="with --hfov: how far right of the vehicle's middle the camera is, in metres (left: "
        "negative): lateral_m and the path are then the vehicle's; with "
        "--camera, NAME=M is that camera's (repeatable) and M every other's; default: 0, in the middle",
    )
    p.add_argument(
        "--mount-ahead",
        type=mount_offset_setting,
        action="append",
        metavar="[NAME=]M",
        help="with --hfov: how far ahead of the vehicle's reference point (its middle, say, or its "
        "rear axle) the camera is, in metres (behind: negative): ahead_m is then measured from that "
        "point, so a front and a rear camera's objects share one frame (edge run's Foxglove scene); "
        "distances and times to collision stay the camera's; with --camera, NAME=M is that camera's "
        "(repeatable) and M every other's; default: 0, at the camera",
    )
    p.add_argument(
        "--facing",
        type=facing_setting,
        action="append",
        metavar="[NAME=]DIR",
        help="with --hfov: which way the camera looks along the vehicle, front, rear, left or right, "
        "or its yaw in degrees (left of straight ahead positive: 45 a front-left corner, -135 a "
        "rear-right one). "
        "A rear camera's objects are placed mirrored (its right is the vehicle's left) and its path "
        "is behind; a side camera's are placed across the vehicle (lateral_m its distance, ahead_m "
        "along the vehicle) and have no path, so a close time to collision is outlined wherever they "
        "are; a corner camera's are turned by its yaw, with a path within 45 degrees of ahead or "
        "behind; with --camera, NAME=DIR is that camera's (repeatable) and DIR every other's; default: front",
    )
    p.add_argument(
        "--camera-height",
        type=height_setting,
        action="append",
        metavar="[NAME=]M",
        help="with --hfov: how high over the road the camera is, in metres. Each object's distance is "
        "then read from the row where it stands on the road (ground_m in objects.jsonl), and where "
        "its feet are hidden, the depth map's scaled to its recent road readings (range_m): a "
        "monocular depth engine's far distances run short, and "
        "the objects' places with them. Right on a flat road with the camera's pitch as set by "
        "--horizon; synthetic:// and cityscapes://DIR with camera files know theirs; with --camera, "
        "NAME=M is that camera's (repeatable) and M every other's; default: unknown, and the road's "
        "plane is fitted to the depth map's road (said when the run ends, with the options that "
        "give it)",
    )
    p.add_argument(
        "--horizon",
        type=horizon_setting,
        action="append",
        metavar="[NAME=]F",
        help="with --camera-height: the row of the horizon (where the flat road ends) as a fraction of "
        "the picture's height from its top, e.g. 0.47; with --camera, NAME=F is that camera's; "
        "default: 0.5, a level camera",
    )
    p.add_argument(
        "--no-ground",
        action="store_true",
        help="the objects' distances from the depth map alone, even where the source knows its "
        "camera's height over the road (synthetic://, cityscapes://DIR), and with no road's plane "
        "fitted to the depth map where nobody gave one",
    )
    p.add_argument(
        "--cut-in-speed",
        type=positive_number("metres a second"),
        default=1.0,
        metavar="M/S",
        help="with --hfov: how fast an object beside the path must move towards it, over the speed "
        "window, to be said to cut in (path_in_s: when it reaches the path) and, reaching it before "
        "the camera, outlined red; lower finds slower lane changes and says more that are none; "
        "default: %(default)g",
    )
    p.add_argument(
        "--cut-in-confidence",
        type=confidence,
        default=0.95,
        metavar="P",
        help="with --hfov: an object is said to cut in only where its speed towards the path, within "
        "this confidence (its box's and distance's slopes over the speed window), is not zero: a "
        "new track's few frames, or a far thing's distances that jump metres a row, say none; 0: "
        "the speed alone; default: %(default)g",
    )
    p.add_argument(
        "--warn-within",
        type=positive_number("seconds"),
        default=3.0,
        metavar="S",
        help="an object that would reach the camera within S seconds is warned of: outlined red, "
        'marked in the viewer, a line in a warnings log (objects.jsonl?lines=warnings), "warned" in '
        "objects.jsonl; unless known to pass beside the path (--hfov); default: %(default)g",
    )
    p.add_argument(
        "--track-gap",
        type=non_negative_seconds,
        default=0.5,
        metavar="S",
        help="how long an object's track waits for it when it is lost (hidden, missed) before it ends; "
        "default: %(default)g",
    )


def fields_of_view(args: argparse.Namespace) -> dict[str | None, float | None]:
    """Each camera's ``--hfov`` by name (None: the run's one source; None for no field of
    view), as per_camera reads it."""
    return per_camera(args, getattr(args, "hfov", None) or [], "--hfov", "DEG")


def mount_offsets(args: argparse.Namespace) -> dict[str | None, float]:
    """Each camera's ``--mount-offset`` by name (None: the run's one source), 0 where none
    is given, as per_camera reads it."""
    given = per_camera(args, getattr(args, "mount_offset", None) or [], "--mount-offset", "M")
    return {name: offset or 0.0 for name, offset in given.items()}


def mount_aheads(args: argparse.Namespace) -> dict[str | None, float]:
    """Each camera's ``--mount-ahead`` by name (None: the run's one source), 0 where none is
    given, as per_camera reads it."""
    given = per_camera(args, getattr(args, "mount_ahead", None) or [], "--mount-ahead", "M")
    return {name: ahead or 0.0 for name, ahead in given.items()}


def _shown(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def per_camera(
    args: argparse.Namespace, given: Sequence[tuple[str | None, Any]], flag: str, unit: str
) -> dict[str | None, Any]:
    """The values of ``flag`` given as ``[NAME=]VALUE`` by camera name (None: the run's one
    source; None where it has none): NAME=VALUE one camera's of --camera, VALUE every other's.
    A ConfigError for a plain one given twice, a name that is no camera's or is given twice,
    and a name where the run has one source."""
    cameras = [name for name, _ in getattr(args, "camera", None) or ()]
    plain = [value for name, value in given if name is None]
    if len(plain) > 1:
        said = ", ".join(_shown(value) for value in plain)
        raise ConfigError(
            f"{flag} is given {len(plain)} times ({said}); give it once, or NAME={unit} for each camera"
        )
    every = plain[0] if plain else None
    if not cameras:
        for name, value in given:
            if name is not None:
                raise ConfigError(
                    f"{flag} {name}={_shown(value)} names a camera, and this run has one source: "
                    f"give {flag} {_shown(value)}"
                )
        return {None: every}
    out: dict[str | None, Any] = dict.fromkeys(cameras, every)
    named: set[str] = set()
    for name, value in given:
        if name is None:
            continue
        if name not in out:
            raise ConfigError(
                f"{flag} {name}={_shown(value)}: no camera is named {name!r} "
                f"(the cameras: {', '.join(cameras)})"
            )
        if name in named:
            raise ConfigError(f"{flag} {name}={unit} is given twice; give each camera's once")
        named.add(name)
        out[name] = value
    return out


def facings(args: argparse.Namespace) -> dict[str | None, str]:
    """Each camera's ``--facing`` by name (None: the run's one source), front where none
    is given, as per_camera reads it."""
    given = per_camera(args, getattr(args, "facing", None) or [], "--facing", "DIR")
    return {name: facing or "front" for name, facing in given.items()}


def _whose(names: list[str | None]) -> str:
    """How an error names the cameras ``names`` (None: the one camera of a run without --camera)."""
    return "the camera's" if names == [None] else f"camera {', '.join(map(str, names))}'s"


# a lens file's pinhole camera has a field of view: the run takes it where --hfov gives none
_LENS_TOO = " (or a lens file, --undistort, whose pinhole camera's is taken)"


def lens_files(args: argparse.Namespace) -> dict[str | None, str]:
    """Each camera's --undistort lens file by name (None: the run's one source), of those
    given one."""
    if getattr(args, "undistort", None) is None:
        return {}
    from edge.cli_frames import undistorts_of

    lenses = undistorts_of(args)
    chosen: dict[str | None, str | None] = {None: lenses} if not isinstance(lenses, dict) else {}
    chosen.update(lenses if isinstance(lenses, dict) else {})
    return {name: path for name, path in chosen.items() if path}


def seeing(args: argparse.Namespace, views: dict[str | None, float | None]) -> set[str | None]:
    """The cameras whose field of view the run knows from the start: ``views``' (--hfov), and
    those with a lens file (--undistort: its pinhole's, which the run takes where --hfov
    gives none)."""
    return {name for name, deg in views.items() if deg is not None} | set(lens_files(args))


def ground_planes(args: argparse.Namespace, views: dict[str | None, float | None]) -> dict[str | None, Any]:
    """Each camera's ground plane of ``--camera-height`` and ``--horizon`` (None where its
    height is not given), checked against each other, ``--no-ground`` and ``views``."""
    from edge.postprocess.ground import GroundPlane

    heights = per_camera(args, getattr(args, "camera_height", None) or [], "--camera-height", "M")
    horizons = per_camera(args, getattr(args, "horizon", None) or [], "--horizon", "F")
    if getattr(args, "no_ground", False) and any(h is not None for h in heights.values()):
        raise ConfigError("--no-ground and --camera-height contradict each other: give one of them")
    if lacking := [name for name, h in horizons.items() if h is not None and heights.get(name) is None]:
        what = _whose(lacking)
        raise ConfigError(f"--horizon needs --camera-height for {what} height over the road")
    seen = seeing(args, views)
    if blind := [name for name, h in heights.items() if h is not None and name not in seen]:
        what = _whose(blind)
        raise ConfigError(
            f"--camera-height needs --hfov for {what} field of view: it sets how far apart the rows "
            f"of the road are, and places the objects{_LENS_TOO}"
        )
    planes: dict[str | None, Any] = {}
    for name, height in heights.items():
        horizon = horizons.get(name)
        level = 0.5 if horizon is None else horizon  # a level camera's horizon: the middle row
        planes[name] = None if height is None else GroundPlane(height_m=height, horizon=level)
    return planes


def check_tracking_arguments(args: argparse.Namespace) -> dict[str, dict[str | None, Any]]:
    """What argparse cannot check of ``add_tracking_arguments``' settings alone; each
    camera's field of view (``hfov``), mount offset and place along the vehicle
    (``mount_offset``, ``mount_ahead``) and ``facing`` as read (fields_of_view, ...)."""
    from edge.postprocess.facing import yaw_deg

    views = fields_of_view(args)
    seen = seeing(args, views)
    unknown = [name for name in views if name not in seen]
    offsets = mount_offsets(args)
    aheads = mount_aheads(args)
    turned = facings(args)
    # without the field of view no object is placed: the facing would be ignored
    if aside := [name for name, facing in turned.items() if yaw_deg(facing) and name not in seen]:
        what = _whose(aside)
        raise ConfigError(
            f"--facing needs --hfov for {what} field of view: only then are objects placed around the "
            f"vehicle{_LENS_TOO}"
        )
    # without the field of view no object is placed: the camera's place would be ignored
    for flag, given in (("--mount-offset", offsets), ("--mount-ahead", aheads)):
        if placed := [name for name, metres in given.items() if metres and name not in seen]:
            what = _whose(placed)
            raise ConfigError(
                f"{flag} needs --hfov for {what} field of view: only then are objects placed "
                f"around the vehicle{_LENS_TOO}"
            )
    if getattr(args, "path_width", None) is not None and unknown:
        # without the field of view no object is placed beside the axis: the width would be ignored
        if unknown == [None]:
            raise ConfigError(
                f"--path-width {args.path_width:g} needs --hfov: the camera's horizontal field of view "
                f"places the objects beside its axis, and only then is a path measured{_LENS_TOO}"
            )
        without = ", ".join(map(str, unknown))
        raise ConfigError(
            f"--path-width {args.path_width:g} needs --hfov for each camera, and {without} has none: "
            "give --hfov NAME=DEG for it (or its lens file, --undistort NAME=FILE), or --hfov DEG for every "
            "camera without its own"
        )
    return {"hfov": views, "mount_offset": offsets, "mount_ahead": aheads, "facing": turned}


def lens_views(
    args: argparse.Namespace, views: dict[str | None, float | None]
) -> dict[str | None, float | None]:
    """``views`` (each camera's --hfov), its lens file's pinhole field of view where it has
    none and --undistort gives one (read here: a file that is not one is said before the run)."""
    from edge.stream.undistort import read_calibration

    lenses = lens_files(args)
    return {
        name: read_calibration(lenses[name]).hfov_deg if deg is None and name in lenses else deg
        for name, deg in views.items()
    }


def object_tracker(args: argparse.Namespace) -> Any:
    """The ObjectTracker of ``add_tracking_arguments``' settings; with --camera, each
    camera's by name (its own field of view: --hfov's, else its lens file's)."""
    from edge.postprocess.tracks import ObjectTracker

    placed = check_tracking_arguments(args)
    views = lens_views(args, placed["hfov"])
    grounds = ground_planes(args, views)
    path = {} if args.path_width is None else {"path_half_width_m": args.path_width / 2}
    trackers = {
        name: ObjectTracker(
            speed_window_s=args.speed_window,
            max_gap_s=args.track_gap,
            hfov_deg=deg,
            mount_offset_m=placed["mount_offset"][name],
            mount_ahead_m=placed["mount_ahead"][name],
            facing=placed["facing"][name],
            min_lateral_mps=args.cut_in_speed,
            cut_in_confidence=args.cut_in_confidence,
            warn_within_s=args.warn_within,
            ground=grounds[name],
            use_ground=not getattr(args, "no_ground", False),
            **path,
        )
        for name, deg in views.items()
    }
    return trackers.get(None, trackers)
