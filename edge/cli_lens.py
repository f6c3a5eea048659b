"""``edge lens``: a camera's lens calibrated from pictures of a chessboard (a thin layer over
edge.lens), for ``edge run --undistort``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from edge.cli_args import output_file, positive_int
from edge.cli_help import add_command

if TYPE_CHECKING:
    import numpy as np


def board_size(text: str) -> tuple[int, int]:
    """``COLSxROWS``, a chessboard's inner corners, each at least 2."""
    cols, sep, rows = text.partition("x")
    if not (sep and cols.isdigit() and rows.isdigit() and int(cols) >= 2 and int(rows) >= 2):
        raise argparse.ArgumentTypeError(
            f"expected the board's inner corners as COLSxROWS, e.g. 9x6 for 10x7 squares, got {text!r}"
        )
    return int(cols), int(rows)


def add_lens_command(sub: Any) -> None:
    p = add_command(
        sub,
        "lens",
        help="calibrate a camera's lens from pictures of a chessboard, for edge run --undistort",
    )
    p.add_argument(
        "source",
        help="the pictures: a folder of them, a recording, or a camera (/dev/video0), each frame one look "
        "at the board (from several angles, near the picture's edges too, where a lens bends most)",
    )
    p.add_argument(
        "--board", type=board_size, required=True, metavar="COLSxROWS", help="the board's inner corners (9x6)"
    )
    p.add_argument("--out", type=output_file, required=True, help="the calibration to write (OpenCV's YAML)")
    p.add_argument(
        "--every", type=positive_int, default=1, metavar="N", help="look at every Nth frame; default: each"
    )
    p.add_argument(
        "--max-frames",
        type=positive_int,
        default=200,
        metavar="N",
        help="frames looked at; default: %(default)s",
    )
    p.set_defaults(func=cmd_lens)


def cmd_lens(args: argparse.Namespace) -> int:
    from edge.lens import calibrate_lens, describe, frames_of, write_calibration
    from edge.util.progress import progress_bar

    # a camera looked at every 15th frame takes minutes: the bar says how far it is
    with progress_bar(total=args.max_frames, desc="frames looked at", unit="frame") as bar:

        def counted() -> Iterator[np.ndarray]:
            for picture in frames_of(args.source, every=args.every, max_frames=args.max_frames):
                yield picture
                bar.update(1)

        fit = calibrate_lens(counted(), args.board)
    write_calibration(args.out, fit.calibration)
    print(describe(fit, args.out))
    return 0
