"""``edge run --rig FILE``: a vehicle's cameras and each one's settings in one TOML file, read
at the command line's boundary into the same settings its flags give (``--camera NAME=URI``,
``--hfov NAME=DEG`` ...), so that a car's four cameras are not forty flags in a service unit.

A flag given on the command line for one camera (``--hfov front=70``) replaces the rig's for
it; a plain one (``--hfov 70``) is, as always, for the cameras given none, the rig's included;
``--camera NAME=URI`` replaces a rig camera's source, or adds a camera.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import ConfigError

EXAMPLE = """\
path-width = 2.6            # the vehicle's, for every camera (optional)

[cameras.front]
source = "/dev/video0?width=1280&height=720&fps=30"
hfov = 62
camera-height = 1.35
horizon = 0.47
mount-ahead = 2.1           # metres ahead of the vehicle's reference point

[cameras.rear]
source = "/dev/video2"     # a recording's path would be beside this file
facing = "rear"
hfov = 120
mount-ahead = -2.4
undistort = "rear.yaml"     # beside this file
"""


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: object) -> str | None:
    # TOML's true is a Python int: a number of degrees is not a yes
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _name_or_number(value: object) -> str | None:
    return _text(value) or _number(value)


def _whole(value: object) -> str | None:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class _Key:
    """A rig key: the flag it stands for, the args attribute that flag fills, how a TOML value
    becomes the flag's text (None: the wrong type, ``expected`` says which) and the flag's
    parser of ``NAME=VALUE`` (each camera's values are checked as the flag checks them)."""

    flag: str
    dest: str
    text: Callable[[object], str | None]
    expected: str
    parse: Callable[[str], tuple[Any, Any]]


def _keys() -> dict[str, _Key]:
    from edge.cli_args import camera, priority_setting, share_setting, start_offset_setting
    from edge.cli_frames import fit_setting, flip_setting
    from edge.cli_tracking import (
        facing_setting,
        field_of_view_setting,
        height_setting,
        horizon_setting,
        mount_offset_setting,
    )

    def undistort(text: str) -> tuple[str, str]:  # a path may hold '=': no rpartition
        name, _, path = text.partition("=")
        return name, path

    keys = [
        _Key("--camera", "camera", _text, "a source URI in quotes", camera),
        _Key("--hfov", "hfov", _number, "a number of degrees", field_of_view_setting),
        _Key(
            "--facing",
            "facing",
            _name_or_number,
            "front, rear, left or right in quotes, or a yaw in degrees",
            facing_setting,
        ),
        _Key("--mount-offset", "mount_offset", _number, "a number of metres", mount_offset_setting),
        _Key("--mount-ahead", "mount_ahead", _number, "a number of metres", mount_offset_setting),
        _Key("--camera-height", "camera_height", _number, "a number of metres", height_setting),
        _Key("--horizon", "horizon", _number, "a fraction of the picture's height", horizon_setting),
        _Key("--fit", "fit", _text, "stretch, pad or crop in quotes", fit_setting),
        _Key("--flip", "flip", _text, "a flip's name in quotes", flip_setting),
        _Key("--undistort", "undistort", _text, "a calibration file's path in quotes", undistort),
        _Key("--priority", "priority", _whole, "a whole number", priority_setting),
        _Key("--share", "share", _number, "a number > 0", share_setting),
        _Key("--start-offset", "start_offset", _number, "a number of seconds >= 0", start_offset_setting),
    ]
    return {("source" if k.flag == "--camera" else k.flag.removeprefix("--")): k for k in keys}


@dataclass(frozen=True)
class Rig:
    """A rig file as read: ``settings`` holds, by args attribute, each camera's (name, value)
    as its flag's parser gives them (``camera``: the sources), in the file's order;
    ``path_width``: the vehicle's --path-width, or None; ``data``: the TOML as written (a
    replay rig copies its values as they are)."""

    path: Path
    settings: dict[str, list[tuple[str, Any]]]
    path_width: float | None
    data: dict[str, Any]

    @property
    def cameras(self) -> list[str]:
        return [name for name, _ in self.settings["camera"]]


def _load(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10's is the tomli package (a dependency there)
        import tomli as tomllib
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"rig file {str(path)!r} does not exist; a rig is a TOML file of cameras, e.g.\n{EXAMPLE}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"rig file {str(path)!r} cannot be read: {exc.strerror or exc}") from exc
    try:
        return tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"rig file {str(path)!r} is not UTF-8 text (TOML): {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"rig file {str(path)!r} is not valid TOML: {exc}") from exc


def _unknown(where: str, key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key.replace("_", "-"), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"{where}: unknown key {key!r}{hint} (known: {', '.join(known)})")


def beside(rig: Path, text: str) -> str:
    """A rig source's relative path (a video, a folder, a glob of segments: a recorded drive)
    as the rig's own folder holds it, wherever edge runs; a URI of any other scheme, or an
    absolute path, as it is."""
    import glob

    from edge.stream.sources import source_file

    found = source_file(text)
    if found is None or found.is_absolute() or "://" in text or text.startswith("file:"):
        return text
    folder = str(rig.parent)
    if any(c in text for c in "*?["):  # a glob: the folder's own name taken as it is
        folder = glob.escape(folder)
    return str(Path(folder) / text)


def _camera_settings(path: Path, name: str, table: object, keys: dict[str, _Key]) -> list[tuple[str, Any]]:
    """One ``[cameras.NAME]`` table as (args attribute, (name, value)) pairs."""
    from edge.stream.multicam import parse_camera

    where = f"rig file {str(path)!r}, cameras.{name}"
    try:  # a camera's name, as --camera NAME=URI takes it, before its settings are read by it
        named = "=" not in name and parse_camera(f"{name}=?")[0] == name
    except ConfigError:
        named = False
    if not named:
        raise ConfigError(
            f"{where}: {name!r} is not a camera's name: up to 32 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if not isinstance(table, dict):
        raise ConfigError(
            f"{where}: expected a table of the camera's settings ([cameras.{name}]), got {table!r}"
        )
    if "source" not in table:
        raise ConfigError(f'{where}: no source; give the camera\'s URI, e.g. source = "/dev/video0"')
    out: list[tuple[str, Any]] = []
    for key, value in table.items():
        spec = keys.get(key)
        if spec is None:
            raise _unknown(where, key, list(keys))
        text = spec.text(value)
        if text is None:
            raise ConfigError(f"{where}.{key}: expected {spec.expected}, got {value!r}")
        if key == "undistort":  # beside the rig file, as its author sees it
            text = str(path.parent / text)
        elif key == "source":
            text = beside(path, text)
        try:
            parsed = spec.parse(f"{name}={text}")
        except (argparse.ArgumentTypeError, ConfigError) as exc:
            raise ConfigError(f"{where}.{key} = {value!r}: {exc}") from None
        out.append((spec.dest, parsed))
    return out


def read_rig(path: str | Path) -> Rig:
    """The rig file at ``path``; a ConfigError naming the file and the key for anything it
    holds that its flag would refuse, an unknown key, or no camera."""
    path = Path(path)
    data = _load(path)
    keys = _keys()
    known = ["cameras", "path-width"]
    for key in data:
        if key not in known:
            raise _unknown(f"rig file {str(path)!r}", key, known)
    cameras = data.get("cameras")
    if not isinstance(cameras, dict) or not cameras:
        raise ConfigError(f"rig file {str(path)!r} names no camera; give each one a table, e.g.\n{EXAMPLE}")
    settings: dict[str, list[tuple[str, Any]]] = {spec.dest: [] for spec in keys.values()}
    for name, table in cameras.items():
        for dest, setting in _camera_settings(path, name, table, keys):
            settings[dest].append(setting)
    path_width = data.get("path-width")
    if path_width is not None:
        from edge.cli_args import positive_number

        metres = _number(path_width)
        try:
            path_width = positive_number("metres")(metres if metres is not None else "")
        except argparse.ArgumentTypeError as exc:
            raise ConfigError(f"rig file {str(path)!r}, path-width = {path_width!r}: {exc}") from None
    return Rig(path=path, settings=settings, path_width=path_width, data=data)


def apply_rig(args: argparse.Namespace, rig: Rig, *, only: Collection[str] | None = None) -> None:
    """The rig's settings into ``args`` (edge run's), under the command line's: a camera the
    command line names for a flag keeps the command line's value. ``only``: the args
    attributes taken (None: all)."""
    for dest, from_rig in rig.settings.items():
        if only is not None and dest not in only:
            continue
        given: list[tuple[Any, Any]] = list(getattr(args, dest, None) or [])
        if dest == "camera":  # the rig's order (the cameras take turns in it), then the added ones
            sources = dict(given)
            merged = [(name, sources.pop(name, uri)) for name, uri in from_rig]
            setattr(args, dest, merged + list(sources.items()))
            continue
        named = {name for name, _ in given if name is not None}
        setattr(args, dest, given + [(name, value) for name, value in from_rig if name not in named])
    if (only is None or "path_width" in only) and getattr(args, "path_width", None) is None:
        args.path_width = rig.path_width


def with_rig(args: argparse.Namespace, *, only: Collection[str] | None = None) -> argparse.Namespace:
    """``args`` with its ``--rig`` file's settings taken in (unchanged without one; ``only``:
    those args attributes, as apply_rig's); a ConfigError for a source given beside the rig's
    cameras."""
    path = getattr(args, "rig", None)
    if path is None:
        return args
    if getattr(args, "source", None) is not None:
        raise ConfigError(
            f"give the source {args.source!r} or --rig {path} (its cameras), not both; "
            "--camera NAME=URI replaces one rig camera's source"
        )
    apply_rig(args, read_rig(path), only=only)
    args.rig = None  # taken in once: a second call would give each camera its source twice
    return args


def run_of(path: str | Path) -> argparse.Namespace:
    """``edge run --rig PATH``'s arguments, the rig taken in (with_rig)."""
    from edge.cli import build_parser

    return with_rig(build_parser().parse_args(["run", "--rig", str(path)]))


def rig_trackers(path: str | Path) -> dict[str, Any]:
    """Each camera's ObjectTracker of the rig file at ``path`` by name, as ``edge run --rig``
    makes them (its field of view, that of its lens file where it gives none, facing, place,
    height over the road; checked as the run checks them): for
    edge.perception.Perception(object_trackers=) in a program of one's own (which undistorts
    a lens's frames itself: edge.stream.undistort.Undistorter)."""
    from edge.cli_tracking import object_tracker

    trackers = object_tracker(run_of(path))
    return dict(trackers)  # a rig's cameras are named: one tracker each


def rig_lines(args: argparse.Namespace, path: str) -> list[str]:
    """What a run of the rig at ``path`` takes for each camera, the command line's over the
    rig's (``args`` as with_rig left them): a line a camera, said as the run begins."""
    from edge.cli_frames import fits_of, flips_of, undistorts_of
    from edge.cli_tracking import check_tracking_arguments, per_camera

    placed = check_tracking_arguments(args)
    heights = per_camera(args, getattr(args, "camera_height", None) or [], "--camera-height", "M")
    horizons = per_camera(args, getattr(args, "horizon", None) or [], "--horizon", "F")
    fits, flips, lenses = fits_of(args), flips_of(args), undistorts_of(args)
    offsets = dict(getattr(args, "start_offset", None) or [])
    lines = [f"rig {path}: {len(args.camera)} camera(s)"]
    for name, uri in args.camera:
        said = [f"facing {placed['facing'][name]}"]
        if placed["hfov"][name] is not None:
            said.append(f"hfov {placed['hfov'][name]:g}")
        if heights.get(name) is not None:
            said.append(f"{heights[name]:g} m over the road")
        if horizons.get(name) is not None:
            said.append(f"horizon {horizons[name]:g}")
        if offset := placed["mount_offset"][name]:
            said.append(f"{abs(offset):g} m {'right' if offset > 0 else 'left'} of the middle")
        if ahead := placed["mount_ahead"][name]:
            said.append(f"{abs(ahead):g} m {'ahead' if ahead > 0 else 'behind'}")
        for what, chosen, plain in (("fit", fits, "stretch"), ("flip", flips, "none")):
            value = chosen.get(name, plain) if isinstance(chosen, dict) else chosen
            if value != plain:
                said.append(f"{what} {value}")
        lens = lenses.get(name) if isinstance(lenses, dict) else lenses
        if lens:
            said.append(f"lens {lens}")
        if offsets.get(name):
            said.append(f"replayed from {offsets[name]:g} s after the start")
        lines.append(f"  {name}: {uri} ({', '.join(said)})")
    return lines


def add_rig_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rig",
        metavar="FILE",
        help="a vehicle's cameras in one TOML file, instead of the source: a [cameras.NAME] table for "
        "each, its source and its --camera settings by the flags' names (hfov, facing, camera-height, "
        "horizon, mount-offset, mount-ahead, fit, flip, undistort, priority, share; a relative path "
        "is beside the file), and path-width; a flag given NAME=VALUE replaces the rig's for that "
        "camera, a plain one is for the cameras the rig gives none",
    )


def add_rig_command(sub: Any) -> None:
    from edge.cli_args import non_negative_number, positive_int, positive_seconds
    from edge.cli_help import add_command
    from edge.rig_check import CHECK_FRAMES, CHECK_TIMEOUT_S
    from edge.rig_coverage import NEAR_M

    p = add_command(
        sub,
        "rig",
        help="check a rig file before a drive: each camera's settings, and its source opened and read "
        "(all at once), its frames' size and rate",
        description="Check an edge run --rig file: what each camera is set to (as edge run takes it), "
        "each source opened and read for a while, every camera at once (a USB bus that carries one "
        "camera may not carry four): the frames' size and rate, how long the first took, what was "
        "dropped; a lens calibration read and its shape against the frames'; and, from their facings "
        "and fields of view, the bearings round the vehicle no camera sees and those two share. "
        "Nothing is written.",
        epilog="exit status: 0 every camera gave its frames; 1 one did not (each said); 2 the file is wrong",
    )
    p.add_argument("rig", metavar="FILE", help="the rig file (TOML, [cameras.NAME] tables)")
    p.add_argument(
        "--frames",
        type=positive_int,
        default=CHECK_FRAMES,
        metavar="N",
        help="frames read of each camera; default: %(default)s",
    )
    p.add_argument(
        "--timeout",
        type=positive_seconds,
        default=CHECK_TIMEOUT_S,
        metavar="S",
        help="how long a camera has to give them; default: %(default)g",
    )
    p.add_argument(
        "--engines",
        metavar="DIR",
        help="the engines the rig will run (as edge run chooses them): each camera whose frames' shape "
        "is not theirs and which it stretches is said, with the engines of its shape to build, or "
        "the fit that keeps its shape",
    )
    p.add_argument(
        "--near",
        type=non_negative_number("metres"),
        default=NEAR_M,
        metavar="M",
        help="also what the cameras see of the ring M metres round the vehicle's reference point, each "
        "from where it is mounted (--mount-ahead, --mount-offset), where their spacing widens a gap "
        "or narrows an overlap; 0 leaves it out; default: %(default)g",
    )
    p.add_argument("--json", action="store_true", help="print each camera's source and check as JSON")
    p.add_argument(
        "--new",
        action="store_true",
        help="instead of checking FILE, write it: a rig of the cameras plugged in, each USB one by udev's "
        "stable name for it (/dev/v4l/by-id/...), each Jetson CSI sensor as csi://N, its other settings "
        "commented, to fill in (a file that exists is not replaced)",
    )
    p.set_defaults(func=cmd_rig)


def _engines_input(engines_dir: str) -> tuple[tuple[int, int], list[Any], Any]:
    """The input size, manifest entries and folder of the engines edge run would choose in
    ``engines_dir`` (opened and closed: a folder it cannot run is said before the cameras)."""
    from edge.stream.engines import EngineSet

    engines = EngineSet.open(engines_dir)
    try:
        return engines.input_hw, list(engines.entries.values()), engines.root
    finally:
        engines.close()


def _stretched(
    run: argparse.Namespace, results: dict[str, Any], engines: tuple[tuple[int, int], list[Any], Any]
) -> dict[str, str]:
    """Each camera whose frames the ``engines``' input stretches out of shape: what edge run
    will say of it (steps.stretch_note), by name."""
    from edge.cli_frames import fits_of
    from edge.stream.steps import stretch_note

    fits = fits_of(run)
    notes = {}
    for name, result in results.items():
        fit = fits.get(name, "stretch") if isinstance(fits, dict) else fits
        if fit == "stretch" and result.get("size"):
            width, height = result["size"]
            note = stretch_note((height, width), *engines)
            if note is not None:
                notes[name] = note
    return notes


def cmd_rig(args: argparse.Namespace) -> int:
    import json

    from edge.cli_args import camera_start_offsets
    from edge.cli_frames import undistorts_of
    from edge.rig_check import check_cameras, result_line
    from edge.rig_coverage import coverage, coverage_lines, near, rig_places, rig_views

    if args.new:
        from edge.rig_new import write_new_rig

        if given := [flag for flag, on in (("--engines", args.engines), ("--json", args.json)) if on]:
            raise ConfigError(
                f"--new writes {args.rig} and checks nothing: give {' and '.join(given)} to edge rig "
                f"{args.rig} once it is filled in"
            )
        named = write_new_rig(args.rig)
        print(f"wrote {args.rig}: {len(named)} camera(s)")
        for name, source, camera in named:
            print(f"  {name}: {source} ({camera['name'] or 'a camera'}, now {camera['node']})")
        print(f"next: name each camera and fill in its settings, then edge rig {args.rig}")
        return 0

    run = run_of(args.rig)
    said = rig_lines(run, args.rig)  # every setting checked as edge run checks it
    cameras = dict(run.camera)
    camera_start_offsets(run, cameras)
    lenses = undistorts_of(run)
    engines = None if args.engines is None else _engines_input(args.engines)
    results = check_cameras(
        cameras,
        frames=args.frames,
        timeout_s=args.timeout,
        lenses=lenses if isinstance(lenses, dict) else None,
    )
    notes = {} if engines is None else _stretched(run, results, engines)
    views = rig_views(run)
    around = coverage(views)
    if args.near > 0:
        around["near"] = near(views, rig_places(run), args.near)
    if args.json:
        shown = {n: {"source": cameras[n], **r, "stretched": notes.get(n)} for n, r in results.items()}
        print(json.dumps({"rig": args.rig, "cameras": shown, "coverage": around}))
    else:
        print(said[0])
        for line, (name, result) in zip(said[1:], results.items(), strict=True):
            print(line)
            print(f"    {result_line(result)}")
            if name in notes:
                print(f"    note: {notes[name]}")
        print("\n".join(coverage_lines(around)))
        failed = [name for name, result in results.items() if not result["ok"]]
        print(
            f"{len(results) - len(failed)} of {len(results)} camera(s) ok"
            + (f"; not: {', '.join(failed)}" if failed else "")
        )
    return 0 if all(result["ok"] for result in results.values()) else 1
