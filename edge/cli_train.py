"""``edge train``: train a zoo model on synthetic drives (a thin layer over edge.train)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from edge.cli_args import count, output_file, positive_int, positive_number
from edge.cli_help import add_command


def add_train_command(sub: Any) -> None:
    from edge.data.synthetic import LANES

    p = add_command(
        sub, "train", help="train a zoo model on synthetic drives (how the demo weights were made)"
    )
    p.add_argument("--model", required=True, help="zoo model name, e.g. panoptic_fpn_tiny")
    p.add_argument(
        "--out",
        type=output_file,
        required=True,
        help="checkpoint to write (edge format, rewritten as training goes)",
    )
    p.add_argument("--steps", type=positive_int, default=1000, help="default: %(default)s")
    p.add_argument("--batch", type=positive_int, default=2, help="default: %(default)s")
    p.add_argument(
        "--size",
        nargs="+",
        default=["256x512"],
        metavar="HxW",
        help="the pictures' size; several: the steps' batches go through them in turn, so that the "
        "model serves engines of each size; default: 256x512",
    )
    p.add_argument(
        "--lr", type=positive_number(), default=1e-3, help="AdamW learning rate; default: %(default)s"
    )
    p.add_argument("--seed", type=count, default=0, help="default: %(default)s")
    p.add_argument(
        "--init", help="start from this checkpoint's weights (a new run: new optimizer and schedule)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run that was stopped writing --out, from the training state kept beside it "
        "(OUT.train-state): same batches, optimizer and schedule as if it had not stopped; the other "
        "settings must be the ones it was started with",
    )
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    p.add_argument("--log", type=output_file, metavar="PATH", help="append per-step losses as JSON lines")
    p.add_argument(
        "--half", action="store_true", help="store the checkpoint's weights as float16 (half the file)"
    )
    p.add_argument(
        "--object-weight",
        type=positive_number(),
        default=1.0,
        metavar="W",
        help="depth models: count each pixel of a thing (car, person, ...) W times in the loss, so "
        "objects' distances count as much as the road's; default: %(default)s (unweighted)",
    )
    p.add_argument(
        "--lanes",
        nargs="+",
        choices=LANES,
        default=["centre"],
        metavar="LANE",
        help="where the drives' cameras drive, one drawn for each drive: centre (on the centre line) "
        "and/or right (in the right lane, with the traffic); "
        "default: centre",
    )
    p.add_argument(
        "--cut-ins",
        type=count,
        default=0,
        metavar="N",
        help="road users added to each drive that cross into the camera's path (people crossing, "
        "cars pulling out; as edge make-synthetic --cut-ins), so things on the road near the camera "
        "are learnt; default: %(default)s",
    )
    p.add_argument(
        "--zoom",
        type=positive_number(),
        default=1.0,
        metavar="MAX",
        help="panoptic models: half the images seen through a lens up to MAX times longer (a window "
        "of the drive rendered larger), so things nearer than the drives put them, larger in the "
        "picture, are learnt; 1 to 4, default: %(default)s (the camera's own view)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    import json

    from edge.build import parse_size
    from edge.errors import Interrupted
    from edge.train.trainer import train
    from edge.util.progress import progress_bar

    size, *more_sizes = (parse_size(text) for text in args.size)
    bars: list[Any] = []  # opened at the first step: a bad --init fails before any bar is drawn

    def log(step: int, record: dict[str, float]) -> None:
        if not bars:
            bars.append(
                progress_bar(
                    total=args.steps,
                    initial=step - 1,  # a resumed run's bar starts where the run stopped
                    desc=f"train {args.model}",
                    unit="step",
                    enabled=not args.quiet,
                )
            )
        bars[0].update(1)
        bars[0].set_postfix({k: f"{v:.3f}" for k, v in record.items() if k != "step"}, refresh=False)
        if args.log:
            with open(args.log, "a") as fh:
                fh.write(json.dumps(record) + "\n")

    stopped: Interrupted | None = None
    try:
        info = train(
            args.model,
            steps=args.steps,
            out=args.out,
            size=size,
            batch=args.batch,
            lr=args.lr,
            seed=args.seed,
            init=args.init,
            threads=args.threads,
            log=log,
            half=args.half,
            object_weight=args.object_weight,
            resume=args.resume,
            lanes=args.lanes,
            cut_ins=args.cut_ins,
            zoom=args.zoom,
            more_sizes=more_sizes,
            warn=lambda message: print(f"warning: {message}", file=sys.stderr),
        )
    except Interrupted as exc:
        stopped = exc
    finally:
        for bar in bars:
            bar.close()
    if stopped is not None:  # said once the bar is gone
        done = stopped.data["saved_step"] >= args.steps  # stopped in the last step: nothing to resume
        print(
            f"stopped after {stopped.data['steps']} of {args.steps} steps; wrote {args.out} at step "
            f"{stopped.data['saved_step']}"
            + (" (the run's last)" if done else "; to continue the run, give the same command with --resume"),
            file=sys.stderr,
        )
        raise stopped.original from None
    resumed = f" (resumed at step {info['resumed_from']})" if info["resumed_from"] else ""
    print(
        f"wrote {args.out} after {info['steps']} steps{resumed} in {info['seconds']:.0f} s; "
        "last losses " + ", ".join(f"{k} {v:.4g}" for k, v in info["last"].items() if k != "step")
    )
    return 0
