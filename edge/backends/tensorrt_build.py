"""What a TensorRT build tells while it runs and keeps between builds: its phases as progress
(IProgressMonitor), and the timing cache (kernel timings that later builds reuse). Thin calls
into TensorRT, as edge.backends.tensorrt's, checked against its Python API in the tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.errors import BuildError


def progress_monitor(trt: Any, report: Callable[[str], None], every_s: float = 0.2) -> Any:
    """TensorRT's build phases (its IProgressMonitor) told to ``report`` as "TensorRT: PHASE
    DONE/STEPS", at most every ``every_s`` seconds: a build on a Jetson runs for minutes. A
    Ctrl-C that lands in it cancels the build (``interrupted``; TensorRT stops at its next
    step), which TensorRT's bindings would otherwise print as an error and build on."""
    last = [float("-inf")]  # the first line at once

    def tell(phases: dict[str, tuple[int, int]], phase: str) -> None:
        now = time.monotonic()
        if now - last[0] >= every_s and phase in phases:
            last[0] = now
            done, steps = phases[phase]
            report(f"TensorRT: {phase} {done}/{steps}")

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.phases: dict[str, tuple[int, int]] = {}  # phase: (steps done, steps)
            self.interrupted = False

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            try:
                self.phases[phase_name] = (0, num_steps)
                tell(self.phases, phase_name)
            except KeyboardInterrupt:
                self.interrupted = True

        def step_complete(self, phase_name: str, step: int) -> bool:
            try:
                self.phases[phase_name] = (step + 1, self.phases.get(phase_name, (0, 0))[1])
                tell(self.phases, phase_name)
            except KeyboardInterrupt:
                self.interrupted = True
            return not self.interrupted  # False: TensorRT cancels the build

        def phase_finish(self, phase_name: str) -> None:
            try:
                self.phases.pop(phase_name, None)
            except KeyboardInterrupt:
                self.interrupted = True

    return Monitor()


def load_timing_cache(config: Any, path: Path | None) -> list[str]:
    """The persisted timing cache (kernel choices measured by earlier builds), or a new one
    where there is none or TensorRT refuses it (measured by another TensorRT version or on
    another GPU: the build writes the new one over it). Returns the build's notes."""
    data = path.read_bytes() if path is not None and path.is_file() else b""
    if _set_timing_cache(config, data):
        return []
    if data and _set_timing_cache(config, b""):
        return [
            f"the timing cache {path} was measured by another TensorRT or GPU, or is no timing cache: "
            "a new one was started"
        ]
    raise BuildError("TensorRT refused a new timing cache")


def _set_timing_cache(config: Any, data: bytes) -> bool:
    """Whether TensorRT took ``data`` as the build's timing cache (None: bytes it cannot read)."""
    cache = config.create_timing_cache(data)
    return cache is not None and bool(config.set_timing_cache(cache, ignore_mismatch=False))


def save_timing_cache(config: Any, path: Path) -> None:
    """This build's timings (the builder added them to the config's cache) written to ``path``
    under its lock, combined into what is there now as NVIDIA's samples do: another build may
    have written its own timings since this one read the file. What TensorRT will not combine
    (measured by another TensorRT or GPU) is replaced."""
    from edge.util.fs import atomic_write_bytes, exclusive_lock

    ours = config.get_timing_cache()
    with exclusive_lock(path.with_name(path.name + ".lock")):
        merged = ours
        if path.is_file() and path.stat().st_size:
            there = config.create_timing_cache(path.read_bytes())
            if there is not None and there.combine(ours, False):
                merged = there
        atomic_write_bytes(path, bytes(merged.serialize()))
