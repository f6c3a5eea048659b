"""How each camera's frames go in: --fit, frames of another shape than the engines' (edge
run, replay, bench), --flip, a camera on its side or upside down (edge run, record), and
--undistort, a wide-angle lens's calibration (edge run); each ``[NAME=]VALUE`` where
--camera names several."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TypeVar

D = TypeVar("D", str, None)  # what a camera given no value gets

FIT_HELP = (
    "frames of another shape than the engines': stretch them to the engines' input; pad them "
    "(scaled whole, centred, the outputs cropped back to the frame); or crop them (scaled to cover "
    "the input, their middle taken, the outputs laid back over the frame with its cut edges "
    "unknown), for engines that cannot be rebuilt at the frames' shape"
)


def add_fit_argument(p: argparse.ArgumentParser, *, per_camera: bool = False) -> None:
    """``--fit FIT``; ``per_camera``: ``--fit [NAME=]FIT``, one camera's of --camera's too
    (read with fits_of)."""
    from edge.stream.fit import FITS

    if not per_camera:
        p.add_argument("--fit", choices=FITS, default="stretch", help=f"{FIT_HELP}; default: %(default)s")
        return
    p.add_argument(
        "--fit",
        type=fit_setting,
        action="append",
        metavar="[NAME=]FIT",
        help=f"{FIT_HELP}: {', '.join(FITS)}; with --camera, NAME=FIT is one camera's and FIT every "
        "other's (a 16:9 camera cropped, a 4:3 one padded); default: stretch",
    )


def _choice_setting(text: str, choices: Sequence[str], what: str) -> tuple[str | None, str]:
    """``--OPTION CHOICE`` (every camera's) or ``--OPTION NAME=CHOICE``, CHOICE one of ``choices``."""
    from edge.cli_tracking import camera_and_value

    name, chosen = camera_and_value(text, what)
    if chosen not in choices:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}, got {chosen!r}")
    return name, chosen


def _chosen_of(args: argparse.Namespace, option: str, what: str, default: D) -> str | D | dict[str, str | D]:
    """``--OPTION [NAME=]VALUE`` as read: the one source's value, or with --camera each
    camera's by name (``default`` where none is given)."""
    from edge.cli_tracking import per_camera

    given = per_camera(args, getattr(args, option.removeprefix("--")) or [], option, what)
    chosen = {name: value or default for name, value in given.items()}
    return chosen[None] if None in chosen else {str(name): value for name, value in chosen.items()}


def fit_setting(text: str) -> tuple[str | None, str]:
    """``--fit FIT`` (every camera's) or ``--fit NAME=FIT``."""
    from edge.stream.fit import FITS

    return _choice_setting(text, FITS, "FIT")


def fits_of(args: argparse.Namespace) -> str | dict[str, str]:
    """``--fit [NAME=]FIT`` as read (stretch where none is given)."""
    return _chosen_of(args, "--fit", "FIT", "stretch")


FLIP_HELP = (
    "a camera mounted on its side or upside down, or one that mirrors its picture: each frame "
    "turned (clockwise, counterclockwise, rotate-180) or mirrored (horizontal: left and right; "
    "vertical: top and bottom) as it is read, before the engines and the sinks see it"
)


def add_flip_argument(p: argparse.ArgumentParser, *, per_camera: bool = False) -> None:
    """``--flip FLIP``; ``per_camera``: ``--flip [NAME=]FLIP`` (read with flips_of)."""
    from edge.stream.flip import FLIPS

    if not per_camera:
        p.add_argument(
            "--flip",
            choices=FLIPS,
            default="none",
            metavar="FLIP",
            help=f"{FLIP_HELP}: {', '.join(FLIPS)}; default: %(default)s",
        )
        return
    p.add_argument(
        "--flip",
        type=flip_setting,
        action="append",
        metavar="[NAME=]FLIP",
        help=f"{FLIP_HELP}: {', '.join(FLIPS)}; with --camera, NAME=FLIP is one camera's and FLIP every "
        "other's; default: none",
    )


def flip_setting(text: str) -> tuple[str | None, str]:
    """``--flip FLIP`` (every camera's) or ``--flip NAME=FLIP``."""
    from edge.stream.flip import FLIPS

    return _choice_setting(text, FLIPS, "FLIP")


def flips_of(args: argparse.Namespace) -> str | dict[str, str]:
    """``--flip [NAME=]FLIP`` as read (none where none is given)."""
    return _chosen_of(args, "--flip", "FLIP", "none")


def undistort_setting(text: str) -> tuple[str | None, str]:
    """``--undistort FILE`` (every camera's) or ``--undistort NAME=FILE``."""
    from edge.cli_tracking import camera_and_value

    return camera_and_value(text, "FILE")


def add_undistort_argument(p: argparse.ArgumentParser) -> None:
    """``--undistort [NAME=]FILE`` (read with undistorts_of)."""
    p.add_argument(
        "--undistort",
        type=undistort_setting,
        action="append",
        metavar="[NAME=]FILE",
        help="a wide-angle camera's lens calibration (OpenCV's camera_matrix and distortion_coefficients, "
        "as cv2.FileStorage or a ROS camera_info YAML writes them): each frame undistorted as it is read, "
        "so that the road's rows and the objects' bearings are a pinhole camera's, and the field of view "
        "taken from it; with --camera, NAME=FILE is one camera's and FILE every other's",
    )


def undistorts_of(args: argparse.Namespace) -> str | dict[str, str | None] | None:
    """``--undistort [NAME=]FILE`` as read (None where none is given)."""
    return _chosen_of(args, "--undistort", "FILE", None)
