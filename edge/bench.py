"""Latency benchmark: MLPerf-style single-stream measurement of the whole frame.

Single stream: one frame is issued, and the next only when it is done, so a frame's
latency is its own work (preprocess, both engines side by side as the runtime runs them,
postprocess) and never time spent queued behind another frame. Warm-up frames are run
first and discarded; then at least ``min_frames`` frames and ``min_duration_s`` seconds
are measured. The frames are the source's first few, read into memory before (as MLPerf's
loadgen loads its samples) and issued in turn: reading them is not measured.

Multi-stream (a configuration's ``streams``): several cameras at a rate each through one set
of engines, as edge run --camera runs them: edge.bench_streams.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.bench_engines import check_int8_buildable, models_by_kind, open_engines
from edge.bench_progress import progress_bar_of
from edge.bench_samples import SAMPLES, SAMPLES_BUDGET_BYTES, Samples, read_samples
from edge.errors import ConfigError, Interrupted
from edge.platform_info import system_info
from edge.util.interrupts import StepBoundary

PERCENTILES = (50, 90, 95, 99)
E2E = "end_to_end"
FORMAT = "edge.bench/1"


def latency_stats(values: Sequence[float]) -> dict[str, float]:
    """count, mean, min, p50/p90/p95/p99 (numpy's linear interpolation), max; in the input's unit."""
    if len(values) == 0:
        return {"count": 0}
    a = np.asarray(values, dtype=np.float64)
    out: dict[str, float] = {"count": int(a.size), "mean": float(a.mean()), "min": float(a.min())}
    for p, v in zip(PERCENTILES, np.percentile(a, PERCENTILES), strict=True):
        out[f"p{p}"] = float(v)
    out["max"] = float(a.max())
    return out


@dataclass(frozen=True)
class BenchConfig:
    backend: str = "onnxruntime"
    precision: str = "fp32"
    # None: the newest size the engines folder holds for this backend and precision (both
    # kinds at one size, as edge run chooses), or edge.build.DEFAULT_SIZE, built, when it holds none;
    # in a sweep, the size the first such configuration settled on (run_bench)
    size: tuple[int, int] | None = None
    device: str | None = None
    # None: single stream; N: N cameras at the run's rate taking turns (edge.bench_streams)
    streams: int | None = None

    @property
    def label(self) -> str:
        size = f"{self.size[0]}x{self.size[1]}" if self.size else "newest-size"
        parts = [self.backend, self.precision, size]
        if self.device and self.device != "cpu":
            parts.append(self.device)
        if self.streams is not None:
            parts.append(f"{self.streams} stream" + ("" if self.streams == 1 else "s"))
        return "/".join(parts)


def sweep(
    backends: Sequence[str],
    precisions: Sequence[str],
    sizes: Sequence[tuple[int, int] | None],
    device: str | None,
    streams: Sequence[int | None] = (None,),
) -> list[BenchConfig]:
    """Every combination, in a stable order (the comparison matrix); a size None is
    settled when the first such configuration's engines are opened (BenchConfig.size), and
    the others take that size. ``streams``: None for the single-stream scenario, or how
    many cameras share the engines (multi-stream)."""
    return [
        BenchConfig(backend=b, precision=p, size=s, device=device if b == "torch" else None, streams=n)
        for b in backends
        for p in precisions
        for s in sizes
        for n in streams
    ]


def measure(
    engines: Any,
    samples: Samples,
    *,
    warmup: int,
    min_frames: int,
    min_duration_s: float,
    progress: Callable[[int, float], None] | None = None,
    power_root: str | Path | None = "/",
    draw: bool = True,
) -> dict[str, Any]:
    """Run ``samples`` one at a time, in turn, through ``engines`` (an EngineSet); per-frame
    stage times in ms, and the board's power over the measured frames where ``power_root``
    has monitors. The postprocess stage fuses the panoptic outputs, with ``draw`` draws every view
    (a run with a video or the viewer; without, it is that of a run into objects.jsonl) and
    gives the instances their tracks, as a run does (the held frames as a 17 fps stream that
    starts afresh each time they come round)."""
    from edge.latency import LatencyTracker
    from edge.postprocess.tracks import ObjectTracker
    from edge.power import PowerSampler, find_rails
    from edge.stream.sinks import RENDERED_VIEWS
    from edge.stream.steps import render_result, run_engines, track_result, tracker_seeing

    views = RENDERED_VIEWS if draw else ()

    rails = find_rails(power_root) if power_root is not None else []
    sampler = PowerSampler(rails) if rails else None

    kinds = engines.kinds
    tracker = LatencyTracker()  # the stages of each frame, read back with frame_ms
    objects = tracker_seeing(ObjectTracker(), samples, kinds)  # the objects placed, as edge run places them
    times_ms: dict[str, list[float]] = {}
    held = samples.frames

    measured = 0
    t_start: float | None = None
    stopped: KeyboardInterrupt | None = None
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="edge-bench") as pool:
        done = 0
        try:
            while True:
                if done >= warmup and t_start is None:
                    t_start = time.perf_counter()
                    if sampler is not None:
                        sampler.start()
                t1 = time.perf_counter_ns()
                # a frame of its own for the tracker, which keys its stages by sequence number
                turn, at = divmod(done, len(held))
                frame = dataclasses.replace(
                    held[at], seq=done, t_capture_ns=t1, meta={**held[at].meta, "loop": turn}
                )
                result = run_engines(engines, frame, tracker, pool)
                t3 = time.perf_counter_ns()
                render_result(
                    result,
                    engines.depth_range,
                    views,
                    track=lambda r: track_result(r, objects, r.frame.seq / 17.0),
                )
                t4 = time.perf_counter_ns()
                done += 1
                if t_start is None:
                    continue  # warm-up
                times = tracker.frame_ms(frame.seq)
                frame_ms = {"preprocess": times["preprocess"]}
                for k in kinds:
                    frame_ms[k] = times[k]
                    if f"{k}_gpu" in times:
                        frame_ms[f"{k}_gpu"] = times[f"{k}_gpu"]
                frame_ms["engines"] = (t3 - t1) / 1e6 - times["preprocess"]  # both engines, side by side
                frame_ms["postprocess"] = (t4 - t3) / 1e6
                frame_ms[E2E] = (t4 - t1) / 1e6
                with StepBoundary():  # a frame counts whole or not at all, Ctrl-C or not
                    for stage, ms in frame_ms.items():
                        times_ms.setdefault(stage, []).append(ms)
                    measured += 1
                # one clock read for the report and the end, and the end decided only here: the
                # last report is the bound met (a second read at the loop's top once ended the
                # run past a report that had not met it)
                elapsed = time.perf_counter() - t_start
                if progress is not None:
                    progress(measured, elapsed)
                if measured >= min_frames and elapsed >= min_duration_s:
                    break
        except KeyboardInterrupt as exc:
            if not measured:
                raise  # nothing measured yet: nothing to keep
            stopped = exc
        finally:
            if sampler is not None:
                sampler.stop()
    seconds = time.perf_counter() - (t_start or time.perf_counter())
    # single stream waits for every frame: nothing is dropped by design
    return measurement_of(times_ms, warmup=warmup, seconds=seconds, drops=0, sampler=sampler, stopped=stopped)


def measurement_of(
    times_ms: dict[str, list[float]],
    *,
    warmup: int,
    seconds: float,
    drops: int,
    sampler: Any,
    stopped: KeyboardInterrupt | None,
    **more: Any,
) -> dict[str, Any]:
    """A measurement's result from each frame's stage times (end to end among them), with
    ``more`` fields and the power ``sampler`` read (None: no monitors); an Interrupted
    holding it where Ctrl-C ``stopped`` it short."""
    frames = len(times_ms.get(E2E, []))
    measurement = {
        "frames": frames,
        "warmup_frames": warmup,
        "seconds": seconds,
        "throughput_fps": frames / seconds if seconds > 0 else 0.0,
        "drops": drops,
        **more,
        "stages_ms": {k: latency_stats(v) for k, v in times_ms.items() if k != E2E},
        E2E + "_ms": latency_stats(times_ms.get(E2E, [])),
        "samples_ms": {k: [round(x, 4) for x in v] for k, v in times_ms.items()},
    }
    if sampler is not None:
        measurement["power"] = sampler.summary(frames=frames, seconds=seconds)
    if stopped is not None:
        measurement["complete"] = False
        raise Interrupted(measurement, stopped) from stopped
    return measurement


def run_bench(
    configs: Sequence[BenchConfig],
    *,
    engines: str | Path,
    source: str = "synthetic://",
    models: Sequence[str] | None = None,
    warmup: int = 20,
    min_frames: int = 1024,
    min_duration_s: float = 60.0,
    samples: int = SAMPLES,
    samples_memory: int = SAMPLES_BUDGET_BYTES,
    threads: int | None = None,
    build_missing: bool = True,
    show_progress: bool = True,
    calib_data: str | None = None,
    power_root: str | Path | None = "/",
    draw: bool = True,
    on_configuration: Callable[[dict[str, Any]], object] | None = None,
    fit: str = "stretch",
    rate: float | None = None,
    priorities: Mapping[str, int] | None = None,
    arrival: str = "together",
    shares: Mapping[str, float] | None = None,
    rates: Mapping[str, float] | None = None,
    stream_names: Sequence[str] | None = None,
    stream_sizes: Mapping[str, tuple[int, int]] | None = None,
    stream_looks: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Measure every configuration; engines missing from ``engines`` are built first (with
    edge's bundled weights where it has them; int8 ones calibrated on ``calib_data``). Where
    ``power_root`` has power monitors (Jetson), their readings go with each result.
    The first ``samples`` frames of ``source`` are read first (load_samples) and every
    configuration is measured on them. ``draw``: as measure's. ``on_configuration`` gets the
    result so far, marked ``unfinished``, after each configuration but the last: written
    out, it is what a sweep killed later (out of memory in a build, a board's power cut)
    keeps. ``fit``: how frames of another shape than the engines' go in (edge.stream.fit).
    ``rate``: each camera's frames per second in the configurations of several streams
    (BenchConfig.streams; default: the source's own rate, else 30) and ``rates`` by stream
    name where a stream's differs (stream0, ...); ``priorities``: their
    streams' ranks at the engines by name (stream0, ...); ``shares``: their shares of the turns
    among their rank; ``arrival``: their frames' arrival, ``together`` or ``spread``
    (edge.bench_streams.phases). ``stream_names``: the streams' names in place of stream0, ...
    (a rig's cameras; every configuration then has that many streams); ``stream_sizes``: a
    stream's frames' (height, width) by name, the held frames resized to it; ``stream_looks``: a
    named stream's edge.bench_streams.Look (its camera's lens, flip and fit)."""
    from edge.bench_streams import (
        DEFAULT_RATE,
        check_rate,
        check_rates,
        check_streams,
        check_turns,
        measure_streams,
        phases,
    )
    from edge.stream.fit import check_fit

    check_fit(fit)
    if not configs:
        raise ConfigError("no benchmark configuration: give at least one --backend, --precision and --size")
    multi = any(cfg.streams is not None for cfg in configs)
    for cfg in configs:
        if cfg.streams is not None:
            check_streams(cfg.streams)
    if rate is not None:
        check_rate(rate)
    phases(1, 1.0, arrival)  # a ConfigError for an unknown one
    most = max((cfg.streams or 0 for cfg in configs), default=0)
    if stream_names is not None and any(cfg.streams != len(stream_names) for cfg in configs):
        counts = sorted({str(cfg.streams) for cfg in configs})
        raise ConfigError(
            f"{len(stream_names)} named streams ({', '.join(stream_names)}) and configurations of "
            f"{', '.join(counts)} stream(s): name one a stream of every configuration"
        )
    check_turns(most, priorities, shares, stream_names)
    if unknown := sorted(set(stream_looks or {}) - set(stream_names or ())):
        raise ConfigError(
            f"the look of stream {unknown[0]!r}: no stream is named so (the streams: "
            f"{', '.join(stream_names or ()) or 'none named'})"
        )
    check_rates(most, rates, stream_names)
    bad = [
        f"{name} {given}: expected {expected}"
        for name, given, ok, expected in (
            ("warm-up", warmup, warmup >= 0, ">= 0"),
            ("min frames", min_frames, min_frames >= 1, ">= 1"),
            ("min duration", f"{min_duration_s} s", min_duration_s >= 0, ">= 0 s"),
            ("samples", samples, samples >= 1, ">= 1"),
            ("samples memory", f"{samples_memory} bytes", samples_memory >= 1, ">= 1 byte"),
        )
        if not ok
    ]
    if bad:  # each named alone, not beside the values that were fine
        raise ConfigError("; ".join(bad))
    models_by_kind(models or ())  # unknown or doubled kinds fail before anything is built
    if build_missing and calib_data is None:  # and an INT8 row to build, before any is measured
        check_int8_buildable(configs, engines, models)
    held = read_samples(source, samples, budget_bytes=samples_memory, show_progress=show_progress)
    results: list[dict[str, Any]] = []
    current = configs[0]
    settings: dict[str, Any] = {
        "warmup": warmup,
        "min_frames": min_frames,
        "min_duration_s": min_duration_s,
        "draw": draw,
        "samples": samples,
        "fit": fit,
    }
    if multi:
        settings["rate_fps"] = rate or held.fps or DEFAULT_RATE
        settings["arrival"] = arrival
    if rates:
        settings["rates_fps"] = dict(rates)
    if priorities:
        settings["priorities"] = dict(priorities)
    if shares:
        settings["shares"] = dict(shares)
    settled: tuple[int, int] | None = None
    try:
        for asked in configs:
            open_size = asked.size is None
            if open_size and settled is not None:
                # one open size for the whole matrix, so its rows compare like with like: the
                # first open configuration's newest (built for the others where they lack it)
                asked = dataclasses.replace(asked, size=settled)
            current = asked
            engine_set = open_engines(
                asked,
                engines,
                models=models,
                threads=threads,
                build_missing=build_missing,
                show_progress=show_progress,
                calib_data=calib_data,
                fit=fit,
            )
            current = cfg = dataclasses.replace(asked, size=engine_set.input_hw)
            if open_size and settled is None:
                settled = cfg.size
            bar = progress_bar_of(cfg.label, min_frames, min_duration_s, show_progress)
            labelled = {
                "config": {**dataclasses.asdict(cfg), "label": cfg.label},
                "engines": dict(engine_set.described),
            }
            how: dict[str, Any] = {
                "warmup": warmup,
                "min_frames": min_frames,
                "min_duration_s": min_duration_s,
                "progress": bar.update_to if bar else None,
                "power_root": power_root,
                "draw": draw,
            }
            try:
                if cfg.streams is None:
                    m = measure(engine_set, held, **how)
                else:
                    m = measure_streams(
                        engine_set,
                        held,
                        streams=cfg.streams,
                        rate=settings["rate_fps"],
                        priorities=priorities,
                        shares=shares,
                        rates=rates,
                        arrival=arrival,
                        names=stream_names,
                        frame_sizes=stream_sizes,
                        looks=stream_looks,
                        **how,
                    )
            except Interrupted as exc:
                results.append({**labelled, **exc.data})
                raise
            finally:
                engine_set.close()
                if bar:
                    bar.close()
            results.append({**labelled, **m})
            if on_configuration is not None and len(results) < len(configs):
                so_far = _document(source, settings, held, results)
                so_far["unfinished"] = {
                    "complete_configurations": len(results),
                    "configurations": len(configs),
                }
                on_configuration(so_far)
    except KeyboardInterrupt as exc:
        if not results:
            raise  # nothing measured: nothing to report
        original = exc.original if isinstance(exc, Interrupted) else exc
        data = _document(source, settings, held, results)
        data["interrupted"] = {
            "during": current.label,
            "complete_configurations": sum(r.get("complete", True) for r in results),
            "configurations": len(configs),
        }
        raise Interrupted(data, original) from original
    return _document(source, settings, held, results)


def _document(
    source: str, settings: dict[str, Any], samples: Samples, results: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "scenario": "multi-stream" if "rate_fps" in settings else "single-stream",
        "source": source,
        "samples": {
            "frames": len(samples.frames),
            "megabytes": round(samples.nbytes / 2**20, 1),
            "sizes": samples.sizes,
            "read_ms": latency_stats(samples.read_ms),
        },
        "settings": settings,
        "system": system_info(),
        "results": results,
    }
