"""``edge profile``: where an engine's time goes, node by node and by operator.

``edge bench`` says how long each stage takes; what to do about a slow one depends on which
of its layers take the time (the backbone's convolutions, the RoI heads, NMS, the upsampling
of the semantic head). ONNX Runtime times every node of every run when its session is made
to (``SessionOptions.enable_profiling``); here each engine of a folder runs alone on frames
of a source, preprocessed as ``edge run`` does, the warm-up runs are left out, and the node
times are summed by node and by operator, per frame, beside the whole run's time (the rest is
ONNX Runtime's own work between the nodes). TensorRT's engines are timed layer by layer by
TensorRT's profiler (IProfiler), their runs by CUDA events; that path has not run here (no
TensorRT where edge is developed).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import BackendError, ConfigError, SourceError

FRAMES = 20
WARMUP = 3
TOP = 15


@dataclass
class NodeTimes:
    """One node's times over the measured runs (microseconds)."""

    name: str
    op: str
    provider: str
    total_us: float = 0.0
    calls: int = 0


@dataclass
class LayerProfile:
    """An engine's runs (their wall times, microseconds) and its nodes' times in them."""

    runs_us: list[float] = field(default_factory=list)
    nodes: dict[str, NodeTimes] = field(default_factory=dict)
    # ONNX Runtime's INT8 weights put on 7 bits (a CPU without VNNI: edge.stream.engines.say_seven_bit)
    seven_bit_weights: bool = False

    @property
    def frames(self) -> int:
        return len(self.runs_us)

    def by_op(self) -> list[tuple[str, float, int]]:
        """(operator, microseconds over all runs, nodes of it), the slowest first."""
        ops: dict[str, tuple[float, set[str]]] = {}
        for n in self.nodes.values():
            if not n.op:  # TensorRT's layers say no operator
                continue
            us, names = ops.get(n.op, (0.0, set()))
            ops[n.op] = (us + n.total_us, names | {n.name})
        return sorted(((op, us, len(names)) for op, (us, names) in ops.items()), key=lambda r: -r[1])

    def as_dict(self, *, top: int) -> dict[str, Any]:
        """Per frame, in milliseconds: the run, the nodes' sum, each operator's, the ``top``
        slowest nodes'; and each one's share of the nodes' sum."""
        n = max(self.frames, 1)
        nodes_us = sum(t.total_us for t in self.nodes.values())

        def share(us: float) -> float:
            return us / nodes_us if nodes_us else 0.0

        runs = np.asarray(self.runs_us, np.float64) / 1e3
        slowest = sorted(self.nodes.values(), key=lambda t: -t.total_us)[:top]
        return {
            "frames": self.frames,
            "run_ms": {
                "mean": float(runs.mean()) if runs.size else None,
                "p50": float(np.median(runs)) if runs.size else None,
            },
            "nodes_ms": nodes_us / n / 1e3,
            "node_count": len(self.nodes),
            "by_op": [
                {"op": op, "ms": us / n / 1e3, "share": share(us), "nodes": count}
                for op, us, count in self.by_op()
            ],
            "slowest_nodes": [
                {
                    "name": t.name,
                    "op": t.op,
                    "ms": t.total_us / n / 1e3,
                    "share": share(t.total_us),
                    "provider": t.provider,
                }
                for t in slowest
            ],
        }


def read_ort_profile(events: Sequence[dict[str, Any]], *, warmup: int) -> LayerProfile:
    """ONNX Runtime's profile events (the JSON list its ``end_profiling`` writes): the runs
    after the first ``warmup``, and the node events inside them."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"), key=_ts)
    measured = runs[warmup:]
    profile = LayerProfile(runs_us=[float(r["dur"]) for r in measured])
    if not measured:
        return profile
    start = _ts(measured[0])
    for e in events:
        if e.get("cat") != "Node" or _ts(e) < start:
            continue
        args = e.get("args") or {}
        name = str(e.get("name", "")).removesuffix("_kernel_time")
        times = profile.nodes.get(name)
        if times is None:
            times = profile.nodes[name] = NodeTimes(
                name=name, op=str(args.get("op_name", "?")), provider=str(args.get("provider", "?"))
            )
        times.total_us += float(e.get("dur", 0))
        times.calls += 1
    return profile


def _ts(event: dict[str, Any]) -> float:
    return float(event.get("ts", 0))


def profile_engine(
    path: Path, inputs: Sequence[np.ndarray], *, warmup: int = WARMUP, threads: int | None = None
) -> LayerProfile:
    """The ONNX Runtime engine at ``path`` run on each of ``inputs`` (its input tensors) after
    ``warmup`` runs of the first, timed node by node. ONNX Runtime's own profile file is
    written to a temporary folder and removed."""
    from edge.backends.onnxruntime import OnnxRuntimeEngine

    if not inputs:
        raise SourceError("no frame to profile the engine on")
    with tempfile.TemporaryDirectory(prefix="edge-profile-") as tmp:
        engine = OnnxRuntimeEngine(path, intra_op_threads=threads or 0, profile_prefix=Path(tmp, "ort"))
        try:
            name = engine.inputs[0].name
            for x in [inputs[0]] * warmup + list(inputs):
                engine.infer({name: x})
            written = engine.end_profiling()
        finally:
            engine.close()
        try:
            events = json.loads(written.read_text())
        except (OSError, ValueError) as exc:
            raise BackendError(f"ONNX Runtime's profile of {path.name} could not be read: {exc}") from exc
    profile = read_ort_profile(events, warmup=warmup)
    profile.seven_bit_weights = engine.seven_bit_weights
    return profile


def profile_tensorrt_engine(
    path: Path, inputs: Sequence[np.ndarray], *, warmup: int = WARMUP, options: dict[str, Any]
) -> LayerProfile:
    """The TensorRT engine at ``path`` (opened with ``options``) run as profile_engine runs
    one, its layers timed by TensorRT's profiler and its runs by CUDA events. Untested here:
    no TensorRT."""
    from edge.backends import open_engine

    if not inputs:
        raise SourceError("no frame to profile the engine on")
    engine: Any = open_engine(path, backend="tensorrt", **options)
    try:
        name = engine.inputs[0].name
        for x in [inputs[0]] * warmup:
            engine.infer({name: x})
        times = engine.time_layers()
        runs = []
        for x in inputs:
            engine.infer({name: x})
            runs.append(1e3 * (engine.last_device_ms or 0.0))
    finally:
        engine.close()
    nodes = {
        layer: NodeTimes(name=layer, op="", provider="TensorRT", total_us=1e3 * sum(ms), calls=len(ms))
        for layer, ms in times.items()
    }
    return LayerProfile(runs_us=runs, nodes=nodes)


def profile_engines(
    source: str,
    *,
    engines: str | Path = "engines",
    backend: str = "onnxruntime",
    device: str | None = None,
    panoptic: str | None = None,
    depth: str | None = None,
    precision: str | None = None,
    size: tuple[int, int] | None = None,
    kinds: Sequence[str] = ("panoptic", "depth"),
    frames: int = FRAMES,
    warmup: int = WARMUP,
    threads: int | None = None,
    fit: str = "stretch",
    top: int = TOP,
) -> dict[str, Any]:
    """Each engine of the folder that ``edge run`` would choose (of ``kinds``) for ``backend``
    ("onnxruntime", or "tensorrt" on ``device``), profiled alone on the first ``frames`` frames
    of ``source``: {"source", "warmup", "engines": {kind: {"engine", "threads",
    ...LayerProfile.as_dict}}}. ``threads``: each ONNX Runtime engine's, as in a run (default:
    half the cores, the engines running side by side there)."""
    from edge.compare import frames_of
    from edge.stream import default_engine_options
    from edge.stream.engines import chosen_builds, describe_entry, say_seven_bit
    from edge.stream.fit import check_fit
    from edge.stream.steps import preprocess

    check_fit(fit)
    if frames < 1 or warmup < 0:
        raise ConfigError(f"frames must be >= 1 and warmup >= 0, got {frames} and {warmup}")
    unknown = set(kinds) - {"panoptic", "depth"}
    if unknown or not kinds:
        raise ConfigError(f"kinds {sorted(kinds)}: expected panoptic and/or depth")
    if backend not in ("onnxruntime", "tensorrt"):
        raise ConfigError(f"edge profile reads ONNX Runtime's and TensorRT's profilers, not {backend!r}'s")
    options = default_engine_options(backend, threads, device)
    root, builds = chosen_builds(
        engines, backend=backend, panoptic=panoptic, depth=depth, precision=precision, size=size
    )
    wanted = [k for k in kinds if k in builds]
    if not wanted:
        raise ConfigError(f"{str(engines)!r} holds no {' or '.join(kinds)} engine for {backend} to profile")
    shape = builds[wanted[0]][0]["inputs"][0]["shape"]  # one input size: chosen_builds checks it
    src, read, _ = frames_of(source, max_frames=frames)
    try:
        inputs = [preprocess(frame.image, (int(shape[2]), int(shape[3])), fit)[1] for frame in read]
    finally:
        src.close()
    out: dict[str, Any] = {"source": source, "warmup": warmup, "engines": {}}
    ran: dict[str, tuple[dict[str, Any], LayerProfile]] = {}
    for kind in wanted:
        entry, path = builds[kind]
        if backend == "tensorrt":
            from edge.backends.tensorrt_folder import engine_load_options

            loading = {**options, **engine_load_options(entry, root)}
            profile = profile_tensorrt_engine(path, inputs, warmup=warmup, options=loading)
        else:
            profile = profile_engine(path, inputs, warmup=warmup, threads=options["intra_op_threads"])
        ran[kind] = (entry, profile)
        out["engines"][kind] = {
            "engine": describe_entry(entry),
            "threads": options.get("intra_op_threads"),
            **profile.as_dict(top=top),
        }
    say_seven_bit(ran)  # as a run that loads them says it
    return out


def format_profile(report: dict[str, Any], *, ops: int = 8) -> str:
    """What edge profile prints: each engine's time a frame, its operators and slowest nodes."""
    lines = []
    for kind, p in report["engines"].items():
        threads = f", {p['threads']} thread(s)" if p["threads"] is not None else ""
        lines.append(
            f"{kind}: {p['engine']}{threads}: {p['run_ms']['mean']:.1f} ms a frame (mean of "
            f"{p['frames']}; p50 {p['run_ms']['p50']:.1f}), {p['nodes_ms']:.1f} ms of it in its "
            f"{p['node_count']} nodes"
        )
        if p["by_op"]:
            lines.append(
                "  by operator:   "
                + "  ".join(f"{o['op']} {100 * o['share']:.0f}%" for o in p["by_op"][:ops])
            )
        lines.append(f"  {'slowest nodes':<44} {'op':<18} {'ms':>7} {'share':>6}")
        for t in p["slowest_nodes"]:
            lines.append(f"  {t['name'][:44]:<44} {t['op'][:18]:<18} {t['ms']:7.2f} {100 * t['share']:5.1f}%")
    return "\n".join(lines)
