"""Train a zoo model on synthetic drives and save an edge checkpoint (``edge train``)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from edge.errors import ConfigError, Interrupted
from edge.util.fs import atomic_torch_save
from edge.util.interrupts import StepBoundary


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
) -> dict[str, Any]:
    """AdamW with a cosine schedule; the checkpoint is rewritten atomically every ``save_every``
    (with ``half``, its floating-point tensors stored as float16: half the file, for shipping).
    ``object_weight`` weighs things' pixels in the depth loss (``depth_loss``)."""
    from edge.models.checkpoints import load_checkpoint
    from edge.models.zoo import create_model, get_entry
    from edge.train.data import batches
    from edge.train.losses import depth_loss, panoptic_loss

    if steps < 1 or batch < 1 or not lr > 0:
        raise ConfigError(f"steps {steps}, batch {batch}, lr {lr}: expected positive values")
    if not object_weight >= 1.0:
        raise ConfigError(f"object weight {object_weight}: expected 1 (unweighted) or more")
    kind = get_entry(model_name).kind
    if object_weight != 1.0 and kind != "depth":
        raise ConfigError(f"--object-weight applies to depth models; {model_name!r} is a {kind} model")
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
    data = batches(size=size, batch=batch, seed=seed)
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    saved = 0

    def summary(done: int) -> dict[str, Any]:
        return {
            "model": model_name,
            "steps": done,
            "seconds": time.perf_counter() - t0,
            "size": list(size),
            "batch": batch,
            "lr": lr,
            "half": half,
            "object_weight": object_weight,
            "first": history[0],
            "last": history[-1],
        }

    # Ctrl-C ends the step in hand, saves the weights and stops (a second one stops at once)
    with StepBoundary() as boundary:
        for step in range(1, steps + 1):
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
                save_state(model.state_dict(), out, half=half)
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
