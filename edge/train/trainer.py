"""Train a zoo model on synthetic drives and save an edge checkpoint (``edge train``)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge.data.synthetic import LANES
from edge.errors import ConfigError, Interrupted
from edge.util.fs import atomic_torch_save
from edge.util.interrupts import StepBoundary

STATE_FORMAT = 1
MAX_ZOOM = 4.0  # the drives rendered 16 times the pixels: slower than the step itself
# settings a run's saved state did not record before they existed, as those runs had them
_UNRECORDED = {"lanes": ["centre"], "cut_ins": 0, "zoom": 1.0, "more_sizes": []}


def train(
    model_name: str,
    *,
    steps: int,
    out: str | Path,
    size: tuple[int, int] = (128, 256),
    batch: int = 4,
    lr: float = 1e-3,
    seed: int = 0,
    init: str | Path | None = None,
    threads: int | None = None,
    log: Callable[[int, dict[str, float]], None] | None = None,
    save_every: int = 200,
    half: bool = False,
    object_weight: float = 1.0,
    resume: bool = False,
    warn: Callable[[str], None] | None = None,
    lanes: Sequence[str] = ("centre",),
    cut_ins: int = 0,
    zoom: float = 1.0,
    more_sizes: Sequence[tuple[int, int]] = (),
) -> dict[str, Any]:
    """AdamW with a cosine schedule; the checkpoint is rewritten atomically every ``save_every``
    (with ``half``, its floating-point tensors stored as float16: half the file, for shipping).
    ``object_weight`` weighs things' pixels in the depth loss (``depth_loss``). ``lanes``:
    where the drives' cameras drive (SyntheticDrive's ``lane``), one drawn for each drive.
    ``cut_ins``: road users added to each drive that cross into the camera's path
    (SyntheticDrive's ``cut_ins``), so that things on the road near the camera are seen.
    ``zoom`` (panoptic models): half the images through a lens up to ``zoom`` times longer
    (edge.train.data.zoomed_view), so that things nearer than the drives put them, larger
    in the picture, are learnt. ``more_sizes``: the steps' batches go through ``size`` and
    these in turn, so that one model serves engines of each size (a network fed a picture of
    half the rows it learnt on reads its distances wrong).

    Beside the checkpoint, at each save, is the run's training state (:func:`state_path`):
    full-precision weights, optimizer and schedule, the random streams and the step. With
    ``resume`` the run continues from it as if it had not stopped (same batches, same
    updates); the file is removed when the run reaches its last step. ``warn`` hears of a
    stopped run's state that a new run (no ``resume``) is about to replace."""
    from edge.models.checkpoints import load_checkpoint
    from edge.models.zoo import create_model, get_entry
    from edge.train.data import batches
    from edge.train.losses import depth_loss, panoptic_loss

    if steps < 1 or batch < 1 or not lr > 0:
        raise ConfigError(f"steps {steps}, batch {batch}, lr {lr}: expected positive values")
    if not object_weight >= 1.0:
        raise ConfigError(f"object weight {object_weight}: expected 1 (unweighted) or more")
    if not lanes or len(set(lanes)) < len(lanes) or not set(lanes) <= set(LANES):
        raise ConfigError(f"lanes {list(lanes)}: expected one or more of {', '.join(LANES)}, each once")
    if cut_ins < 0:
        raise ConfigError(f"cut-ins {cut_ins}: expected 0 (none) or more road users a drive")
    if not 1.0 <= zoom <= MAX_ZOOM:
        raise ConfigError(f"zoom {zoom}: expected 1 (the camera's own view) to {MAX_ZOOM:g}")
    kind = get_entry(model_name).kind
    if object_weight != 1.0 and kind != "depth":
        raise ConfigError(f"--object-weight applies to depth models; {model_name!r} is a {kind} model")
    if zoom != 1.0 and kind != "panoptic":
        # a depth network reads distance from size in the picture: a longer lens would teach
        # it that things are nearer than they are
        raise ConfigError(f"--zoom applies to panoptic models; {model_name!r} is a {kind} model")
    if len({tuple(s) for s in (size, *more_sizes)}) < 1 + len(more_sizes):
        sizes = ", ".join(f"{h}x{w}" for h, w in (size, *more_sizes))
        raise ConfigError(f"sizes {sizes}: expected each once")
    if resume and init is not None:
        raise ConfigError(
            f"resume and init {str(init)!r}: resume continues the run saved beside {str(out)!r}, init "
            "starts a new one from weights; give one of them"
        )
    run = {
        "model": model_name,
        "steps": steps,
        "size": list(size),
        "batch": batch,
        "lr": lr,
        "seed": seed,
        "object_weight": object_weight,
        "lanes": list(lanes),
        "cut_ins": cut_ins,
        "zoom": zoom,
        "more_sizes": [list(s) for s in more_sizes],
    }
    saved_state = load_training_state(out, run) if resume else None
    if saved_state is None and warn is not None:
        _warn_if_replacing(out, warn)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = create_model(model_name, seed=seed)
    if init is not None:
        load_checkpoint(model, init)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    warmup = min(100, steps // 10 + 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = batches(
        size=size,
        batch=batch,
        rng=rng,
        lanes=tuple(lanes),
        cut_ins=cut_ins,
        zoom=zoom,
        more_sizes=tuple(more_sizes),
        first=saved_state["step"] if saved_state is not None else 0,
    )
    history: list[dict[str, float]] = []
    start, earlier_s = 0, 0.0
    if saved_state is not None:
        # loaded once the schedule exists: LambdaLR's constructor sets the optimizer's learning
        # rate to step 0's, and the saved param groups hold the one for the next step
        model.load_state_dict(saved_state["model"])
        opt.load_state_dict(saved_state["optimizer"])
        sched.load_state_dict(saved_state["scheduler"])
        gen.set_state(saved_state["torch_generator"])
        torch.set_rng_state(saved_state["torch_rng"])
        rng.bit_generator.state = saved_state["data_rng"]
        start, earlier_s = saved_state["step"], saved_state["seconds"]
        history.append(saved_state["first"])
    t0 = time.perf_counter()
    saved = start

    def summary(done: int) -> dict[str, Any]:
        return {
            "model": model_name,
            "steps": done,
            "seconds": earlier_s + time.perf_counter() - t0,
            "size": list(size),
            "more_sizes": [list(s) for s in more_sizes],
            "batch": batch,
            "lr": lr,
            "half": half,
            "object_weight": object_weight,
            "lanes": list(lanes),
            "cut_ins": cut_ins,
            "zoom": zoom,
            "resumed_from": start,
            "first": history[0],
            "last": history[-1],
        }

    def save(step: int) -> None:
        save_state(model.state_dict(), out, half=half)
        if step < steps:
            training_state = {
                "format": STATE_FORMAT,
                "run": run,
                "step": step,
                "seconds": earlier_s + time.perf_counter() - t0,
                "first": history[0],
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "torch_generator": gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "data_rng": rng.bit_generator.state,
            }
            atomic_torch_save(state_path(out), training_state)
        else:
            state_path(out).unlink(missing_ok=True)

    # Ctrl-C ends the step in hand, saves the weights and stops (a second one stops at once)
    with StepBoundary(holding="interrupted: ending the training step in hand, then saving") as boundary:
        for step in range(start + 1, steps + 1):
            b = next(data)
            losses = (
                panoptic_loss(model, b, gen)
                if kind == "panoptic"
                else {"depth": depth_loss(model, b, object_weight=object_weight)}
            )
            total = torch.stack(list(losses.values())).sum()
            opt.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            record = {k: float(v.detach()) for k, v in losses.items()} | {
                "total": float(total.detach()),
                "step": step,
            }
            history.append(record)
            if log is not None:
                log(step, record)
            if step % save_every == 0 or step == steps or boundary.pending:
                save(step)
                saved = step
            try:
                boundary.check()
            except KeyboardInterrupt as exc:
                raise Interrupted({**summary(step), "interrupted": True, "saved_step": saved}, exc) from exc
    return summary(steps)


def save_state(state: Mapping[str, torch.Tensor], out: str | Path, *, half: bool = False) -> None:
    """Write a state dict atomically; ``half`` stores floating-point tensors as float16
    (loading casts them back to the model's float32)."""

    def cast(v: torch.Tensor) -> torch.Tensor:
        v = v.detach().cpu()
        return v.to(torch.float16) if half and v.is_floating_point() else v.clone()

    compact = {k: cast(v) for k, v in state.items()}
    atomic_torch_save(out, compact)


def state_path(out: str | Path) -> Path:
    """Where a run writing checkpoint ``out`` keeps its training state."""
    out = Path(out)
    return out.with_name(out.name + ".train-state")


def load_training_state(out: str | Path, run: Mapping[str, Any]) -> dict[str, Any]:
    """The training state saved beside ``out``, checked against the run about to continue it."""
    path = state_path(out)
    if not path.is_file():
        raise ConfigError(
            f"resume: no training state at {str(path)!r}; it is written beside the checkpoint while "
            "a run has steps left and removed when the run ends (start a new run without --resume, "
            "or from the weights with --init)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(
            f"resume: cannot read training state {str(path)!r}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ConfigError(
            f"resume: {str(path)!r} is not an edge training state of format {STATE_FORMAT} (found {found!r})"
        )
    differ = [
        f"{key} {_show(run[key])} (the run has {_show(was)})"
        for key in run
        if (was := state["run"].get(key, _UNRECORDED.get(key))) != run[key]
    ]
    if differ:
        raise ConfigError(
            f"resume: the stopped run in {str(path)!r} was started with other settings; given "
            + ", ".join(differ)
            + ". Resume with its settings, or start a new run"
        )
    return state


def _show(value: Any) -> str:
    if value == []:
        return "none"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ".join(value)  # lanes, as --lanes takes them
    if isinstance(value, list) and all(isinstance(v, list) for v in value):
        return " ".join(_show(v) for v in value)  # more_sizes, as --size takes them
    if isinstance(value, list) and len(value) == 2:
        return f"{value[0]}x{value[1]}"
    return repr(value)


def _warn_if_replacing(out: str | Path, warn: Callable[[str], None]) -> None:
    path = state_path(out)
    if not path.is_file():
        return
    try:
        # mapped, not read: only the step is wanted, not the weights and optimizer moments
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        where = f" at step {state['step']} of {state['run']['steps']}"
    except Exception:  # only a warning: an unreadable state is replaced all the same
        where = ""
    warn(
        f"{str(path)!r} holds a stopped run{where}; this new run replaces it (to continue that "
        "one instead, stop and give --resume)"
    )
