"""The sinks of what the engines found: ``objects.jsonl`` (one JSON line a frame) and ``-``
(those lines on standard output, for a program that reads them as they come); with
``?lines=warnings`` either is a warnings log instead (WarningLines: a line when a thing
comes to be warned of, and one when it no longer is)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from edge.errors import SinkError, StreamEnded
from edge.stream.disk import DEFAULT_KEEP_FREE, DiskRoom, checked_output
from edge.stream.durable import put_in_place
from edge.stream.partial import PartialLock, partial_path, rescue_leftover
from edge.util.numbers import strict_dumps

LINES = ("objects", "warnings", "fused")
WARNING_HOLD_S = 0.5  # a warning ends this long after its thing's last warned frame
# a camera's newest frame older than this, by capture time, is not fused with another's: what
# it saw has moved on (a 10 fps side camera's newest is at most 0.1 s old, and its latency more)
FUSED_MAX_AGE_S = 0.25


class ObjectsSink:
    """One JSON line per frame: its number, capture time and the objects in it, each with
    class, score, box and distance (``describe_objects``). Each line goes to the partial
    file whole, unbuffered, so it keeps every finished frame even if the process dies; a
    line the disk had no room for is taken back, and the sink stops (edge.stream.disk)."""

    shows: frozenset[str] = frozenset()  # no pictures: the panoptic fusion is all it needs

    def __init__(
        self,
        uri: str,
        path: Path,
        *,
        keep_free: int = DEFAULT_KEEP_FREE,
        make_room: Callable[[int], int] | None = None,
        lines: Callable[[Any], str] | None = None,
        last: bool = True,
    ) -> None:
        """``keep_free``, ``make_room``: as DiskRoom's. ``lines``: what a result writes
        (default objects_line; a WarningLines, which writes nothing for most frames, and
        whose ``finish()`` lines this sink writes as it closes unless it is not the
        ``last`` to write them: a segment of several)."""
        checked_output(uri, path, folder=False)
        rescue_leftover(uri, path)  # a dead run's lines are kept, not truncated
        self.uri, self.path = uri, path
        self.partial = partial_path(path)
        # a disk gone read-only at the first frame stops the sink, saying so
        self._lock = PartialLock(
            uri=uri, partial=self.partial, refused=lambda exc, what: self._room.refused(exc, what, kept=0)
        )
        self.frames = 0  # results written (a warnings log: those that wrote a line)
        self._seen = 0  # results given: a warnings log of a run without one is an empty file
        self._lines = lines or objects_line
        self._last = last
        self._file: Any = None
        self._size = 0  # bytes of whole lines in the partial file
        self._room = DiskRoom(uri=uri, path=path, keep_free=keep_free, make_room=make_room)

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        raise _needs_results(self.uri)

    def write_result(self, result: Any) -> None:
        self._seen += 1
        self.write_lines(self._lines(result))

    def write_lines(self, text: str) -> None:
        """Whole lines, ``text``, appended (nothing for none)."""
        data = text.encode()
        if not data:
            return
        self._room.check(len(data), kept=self.frames, size=self._size)
        self._open()
        try:
            view = memoryview(data)
            while view:  # a raw write may take part of the line
                view = view[self._file.write(view) :]
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._file.truncate(self._size)
            # a line a frame: the lines before are whole
            raise self._room.refused(
                exc, f"writing {str(self.partial)!r}", kept=self.frames, stop=True
            ) from exc
        self._size += len(data)
        self.frames += 1

    def _open(self) -> None:
        if self._file is None:
            self._lock.take()
            self._file = open(self.partial, "wb", buffering=0)  # noqa: SIM115 (closed in close())
            self._room.flush_as_written(lambda: [self.partial])  # to the disk as it goes, for a power cut

    def close(self) -> None:
        try:
            if self._last and (finish := getattr(self._lines, "finish", None)) is not None:
                # a stopped sink (its disk full) keeps what it has: these lines are lost with it
                with contextlib.suppress(SinkError):
                    self.write_lines(finish())
                    if self._seen:  # nothing warned of: said by an empty log
                        self._open()
            if self._file is not None:
                self._file.close()
                self._file = None
                failed = self._room.flush_last()  # on the disk before the name says it is finished
                put_in_place(self.uri, self.partial, self.path, failed=failed, what="the lines")
        finally:
            self._room.stop_flushing()
            self._lock.release()


def _needs_results(uri: str) -> SinkError:
    return SinkError(f"sink {uri!r} records what the engines found, so it needs results, not pictures")


def frame_objects(result: Any) -> list[dict[str, Any]]:
    """A result's objects as the objects sinks and the viewer give them (describe_objects),
    described once for every sink of the run."""
    from edge.postprocess.objects import describe_objects

    objects = result.extras.get("objects")
    if objects is None:
        depth = result.depth["depth"][0, 0] if result.depth is not None else None
        instances = result.extras.get("instances", ())
        objects = describe_objects(
            instances, depth, result.extras.get("distances"), result.extras.get("tracks")
        )
        result.extras["objects"] = objects
    return objects


def frame_header(result: Any) -> dict[str, Any]:
    """What each line of a frame begins with: its camera (several cameras at once: their
    frames count apart), number, capture time and wall-clock time (a recording's read flat
    out: on its drive's pace from the first frame's)."""
    frame = result.frame
    # the capture stamp is on the monotonic clock; the wall-clock time is derived from it, but a
    # recording read flat out is timed by its drive (edge.stream.pacing.DriveClock)
    unix_ns = frame.meta.get("time_unix_ns")
    if unix_ns is None:
        unix_ns = time.time_ns() - (time.perf_counter_ns() - frame.t_capture_ns)
    unix = unix_ns / 1e9
    camera = {"camera": frame.meta["camera"]} if "camera" in frame.meta else {}
    return {**camera, "frame": frame.seq, "t_capture_ns": frame.t_capture_ns, "time_unix": round(unix, 6)}


def objects_line(result: Any) -> str:
    """A result as the objects sinks write it: one JSON object and a newline."""
    return strict_dumps(objects_record(result)) + "\n"


def objects_record(result: Any, header: dict[str, Any] | None = None) -> dict[str, Any]:
    """The object of a result's objects line; ``header``: its frame_header, if made already."""
    frame = result.frame
    return {
        **(header or frame_header(result)),
        # the boxes are in the engines' picture of the frame, "size"; a box is in the camera's
        # pixels once scaled by frame_size / size on each axis (stretched, padded or cropped alike)
        "size": list(result.extras["resized"].shape[:2]),
        "frame_size": list(frame.image.shape[:2]),
        "objects": frame_objects(result),
    }


class WarningLines:
    """The lines of a warnings log, for a result at a time: one (``"event": "warning"``,
    with the object as objects.jsonl has it and ``why``) when a tracked thing comes to be
    warned of (render.warned: outlined red; ``why``: ``in_path``, ``cut_in``, or ``no_path``
    where the run has none for it: no field of view, or a side camera), and one
    (``"clear"``, with how long it was warned of) once ``hold_s`` of the stream has passed
    since its last warned frame, so a frame's flicker is no new warning. Things are told
    apart by camera, where several write to one sink. ``finish()`` clears the warnings
    still on when the run ends (``"ended": true``)."""

    def __init__(self, *, hold_s: float = WARNING_HOLD_S) -> None:
        self.hold_s = hold_s
        # (camera, track) -> [first warned, last warned] (stream seconds), and its class
        self._on: dict[tuple[Hashable, int], tuple[list[float], str]] = {}
        self._header: dict[Hashable, dict[str, Any]] = {}  # each camera's last frame's

    def __call__(self, result: Any) -> str:
        return "".join(strict_dumps(line) + "\n" for line in self.events(result))

    def events(self, result: Any) -> list[dict[str, Any]]:
        """The lines ``result`` makes, as dicts (none for most frames). Its objects are
        described only where a warning begins."""
        tracks = result.extras.get("tracks") or ()
        camera = result.frame.meta.get("camera")
        t_s = float(result.extras.get("t_stream_s", result.frame.t_capture_ns / 1e9))
        header = self._header[camera] = frame_header(result)
        lines, now = [], set()
        for k, track in enumerate(tracks):
            if not track.warned:
                continue
            key = (camera, track.track)
            now.add(key)
            if key in self._on:
                self._on[key][0][1] = t_s
                continue
            obj = frame_objects(result)[k]  # described once for the frame, and for every sink
            self._on[key] = ([t_s, t_s], obj["class"])
            why = {True: "in_path", False: "cut_in"}.get(track.in_path, "no_path")
            lines.append({**header, "event": "warning", "why": why, **obj})
        for key in [k for k in self._on if k[0] == camera and k not in now]:
            if t_s - self._on[key][0][1] >= self.hold_s:
                lines.append(self._clear(key, header))
        return lines

    def finish(self) -> str:
        """The clear lines of the warnings still on, as the run ends: each with its camera's
        last frame, and ``"ended": true``."""
        lines = [self._clear(key, self._header[key[0]], ended=True) for key in list(self._on)]
        return "".join(strict_dumps(line) + "\n" for line in lines)

    def _clear(
        self, key: tuple[Hashable, int], header: dict[str, Any], *, ended: bool = False
    ) -> dict[str, Any]:
        (since, last), cls = self._on.pop(key)
        line = {**header, "event": "clear", "track": key[1], "class": cls, "warned_s": round(last - since, 3)}
        return line | ({"ended": True} if ended else {})


# an objects sink's options: what its lines are, and for lines=fused how the cameras' things are
# fused (FusedLines: gate, the least metres apart two cameras' things may be and be one; max_age,
# the oldest a camera's newest frame may be and be fused)
LINES_OPTIONS = "lines=objects|warnings|fused (with fused: gate=M, max_age=S)"


def lines_of(uri: str, query: str) -> Any:
    """What an objects sink ``uri`` writes for each result, as its options (``query``) say:
    None (objects lines), a WarningLines or a FusedLines; a SinkError for anything else."""
    from edge.stream.sink_refusals import sink_options

    given = sink_options(uri, query, ("lines", "gate", "max_age"), LINES_OPTIONS)
    chosen = given.get("lines", "objects")
    if chosen not in LINES:
        raise SinkError(f"sink {uri!r}: lines={chosen!r}; expected one of {', '.join(LINES)}")
    fusion = {key: given[key] for key in ("gate", "max_age") if key in given}
    if fusion and chosen != "fused":
        raise SinkError(
            f"sink {uri!r}: {' and '.join(f'{k}=' for k in fusion)} fuse several cameras' things, and "
            f"this sink writes lines={chosen}: give lines=fused, or leave them out"
        )
    if chosen == "warnings":
        return WarningLines()
    if chosen == "objects":
        return None
    return fusion_options(uri, fusion.get("gate"), fusion.get("max_age")).lines()


class FusionOptions(NamedTuple):
    """How a sink fuses the cameras' things (``gate=``, ``max_age=``: FusedLines'); None: the
    default gate."""

    gate_min_m: float | None = None
    max_age_s: float = FUSED_MAX_AGE_S

    def lines(self) -> FusedLines:
        """A FusedLines of these options, for one sink."""
        return FusedLines(gate_min_m=self.gate_min_m, max_age_s=self.max_age_s)


def fusion_options(uri: str, gate: str | None, max_age: str | None) -> FusionOptions:
    """Sink ``uri``'s ``gate=`` and ``max_age=`` (None: not given), each a number > 0; a
    SinkError naming the one that is not."""
    return FusionOptions(
        None if gate is None else _positive(uri, "gate", gate, 0.0, "metres"),
        _positive(uri, "max_age", max_age, FUSED_MAX_AGE_S, "seconds"),
    )


def _positive(uri: str, key: str, text: str | None, default: float, unit: str) -> float:
    """Option ``key``'s ``text`` as a finite number > 0 (of ``unit``), ``default`` if not given."""
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < float("inf"):
        raise SinkError(f"sink {uri!r}: {key}={text!r}; expected a number of {unit} > 0")
    return value


class FusedLines:
    """The lines of ``?lines=fused``: a line a frame of any camera, the things around the
    vehicle of every camera's newest frame at once (edge.postprocess.fusion.Fusion), those of a
    camera whose newest frame is more than ``max_age_s`` older than this one's left out (by the
    frames' drive times where they have them: recordings read in drive order);
    ``cameras`` says which frame of each was fused. A run of one source is one camera, named
    ``camera``."""

    def __init__(self, *, max_age_s: float = FUSED_MAX_AGE_S, gate_min_m: float | None = None) -> None:
        """``gate_min_m``: Fusion's (its default where None)."""
        from edge.postprocess.fusion import GATE_MIN_M, Fusion

        self.max_age_s = max_age_s
        self._fusion = Fusion(gate_min_m=GATE_MIN_M if gate_min_m is None else gate_min_m)
        # each camera's view, where it places its things (steps.track_result's "placed"): its
        # facing, field of view and place on the vehicle, for a scene of the things (Foxglove's)
        self.views: dict[str, dict[str, Any]] = {}
        self._newest: dict[str, tuple[int, int, list[dict[str, Any]]]] = {}  # (t_capture_ns, frame, things)

    def __call__(self, result: Any) -> str:
        return strict_dumps(self.record(result)) + "\n"

    def record(self, result: Any, header: dict[str, Any] | None = None) -> dict[str, Any]:
        """The line of ``result`` as a dict; ``header``: its frame_header, if made already."""
        header = header or frame_header(result)
        camera = str(header.get("camera", "camera"))
        # recordings read in drive order (edge.stream.pacing): when each frame was captured in the
        # drive, not when it was read, says what was seen at once
        drive_s = result.frame.meta.get("drive_s")
        t_ns = header["t_capture_ns"] if drive_s is None else round(drive_s * 1e9)
        placed = result.extras.get("placed")
        if placed is not None:
            self.views[camera] = placed
        self._newest[camera] = (t_ns, header["frame"], frame_objects(result))
        fresh = {
            name: seen
            for name, seen in sorted(self._newest.items())
            if abs(t_ns - seen[0]) <= self.max_age_s * 1e9
        }
        return {
            **header,
            "cameras": {name: frame for name, (_, frame, _) in fresh.items()},
            "things": self._fusion.update({name: things for name, (_, _, things) in fresh.items()}),
        }


class StdoutObjectsSink:
    """``-``: the objects sink's lines on standard output, flushed as written, for a program
    that reads them as they come (``edge run /dev/video0 --sink - | planner``). When that
    program closes the pipe the stream ends (StreamEnded), as if its source had."""

    shows: frozenset[str] = frozenset()

    def __init__(self, uri: str = "-", *, lines: Callable[[Any], str] | None = None) -> None:
        """``lines``: as ObjectsSink's."""
        self.uri = uri
        self.frames = 0
        self._lines = lines or objects_line
        self._out = sys.stdout
        self._gone = False

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        raise _needs_results(self.uri)

    def write_result(self, result: Any) -> None:
        self._print(self._lines(result))

    def _print(self, data: str) -> None:
        if self._gone or not data:
            return
        try:
            self._out.write(data)
            self._out.flush()
        except BrokenPipeError as exc:
            self._gone = True
            _quiet_stdout(self._out)
            raise StreamEnded(
                f"the program reading standard output closed it after {self.frames} frame(s)"
            ) from exc
        self.frames += 1

    def close(self) -> None:
        if (finish := getattr(self._lines, "finish", None)) is not None:
            with contextlib.suppress(StreamEnded):  # the reader has gone: nobody to tell
                self._print(finish())
        if not self._gone:
            with contextlib.suppress(OSError, ValueError):
                self._out.flush()


def _quiet_stdout(out: Any) -> None:
    """Point a broken stdout at /dev/null: Python flushes it at exit, and a flush into the
    closed pipe would print a BrokenPipeError after the run has ended cleanly."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
