"""``edge compare``: how far two builds of the engines agree on the same frames, with no labels.

A deployment changes what the engines compute: INT8 or FP16, TensorRT's kernels, a smaller
input size, a smaller model. On a drive of one's own there is no ground truth to score the
change on; what can be measured is how far the outputs moved. Every frame goes through both
builds, and the reference's outputs stand as the ground truth of the official metrics
(edge.eval.Evaluator): PQ of the engines' panoptic segments against the reference's, mIoU of
their semantic labels, depth AbsRel and delta against the reference's depth, the objects'
distances against the reference objects', and which of the reference's things were found,
by distance. Each frame's agreement is kept, the frames that agree least are named (and drawn:
reference over engines over where they differ), and both builds' latency is measured on the
same frames, taking turns, so the speed gained is read beside the agreement lost.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import BackendError, ConfigError, Interrupted, ManifestError, SourceError
from edge.postprocess.panoptic import MIN_SCORE, check_min_score

if TYPE_CHECKING:
    from edge.compare_bounds import Bound
    from edge.compare_truth import TruthScores
    from edge.perception import Perceived, Perception
    from edge.stream.engines import EngineSet
    from edge.stream.frame import Frame

# frames compared of a source that does not end (a camera, synthetic:// without frames=)
ENDLESS_FRAMES = 300
WORST = 5  # the least agreeing frames named and drawn
CHECKPOINT_S = 60.0  # compare.json rewritten this often while a comparison runs, at most


@dataclass(frozen=True, kw_only=True)
class EngineChoice:
    """Which engines of a folder to run, as ``edge run``'s options choose them (None: the newest
    build that fits the rest)."""

    engines: str | Path = "engines"
    backend: str = "auto"
    device: str | None = None
    panoptic: str | None = None
    depth: str | None = None
    precision: str | None = None
    size: tuple[int, int] | None = None

    def but(self, **changes: Any) -> EngineChoice:
        """This choice with the ``changes`` that are not None (the reference's options default to
        the engines')."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def open(self, *, threads: int | None, fit: str, min_score: float) -> Perception:
        from edge.perception import Perception

        return Perception.open(
            self.engines,
            backend=self.backend,
            device=self.device,
            panoptic=self.panoptic,
            depth=self.depth,
            precision=self.precision,
            size=self.size,
            threads=threads,
            fit=fit,
            min_score=min_score,
        )


@dataclass(frozen=True)
class FrameAgreement:
    """One frame's: panoptic quality of the engines' segments against the reference's (None
    where neither had a segment of an evaluated class, or without panoptic engines), the share
    of pixels whose semantic class is the same, the depth's AbsRel against the reference's, and
    the things each found and how many of the reference's the engines' matched."""

    frame: int
    time_s: float
    pq: float | None
    pixels_agree: float | None
    depth_abs_rel: float | None
    things: tuple[int, int, int]  # the reference's, the engines', matched
    name: str | None = None  # where the source names its frames: a Cityscapes name, an image's file

    @property
    def agreement(self) -> float:
        """What frames are ranked by, 0 (none) to 1: PQ; else the pixels agreeing; else 1 - AbsRel."""
        for value in (self.pq, self.pixels_agree):
            if value is not None:
                return value
        return 1.0 - min(self.depth_abs_rel or 0.0, 1.0)

    def as_dict(self) -> dict[str, Any]:
        ref, ours, matched = self.things

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 6)

        return {
            "frame": self.frame,
            "name": self.name,
            "time_s": round(self.time_s, 6),
            "pq": rounded(self.pq),
            "pixels_agree": rounded(self.pixels_agree),
            "depth_abs_rel": rounded(self.depth_abs_rel),
            "things": {"reference": ref, "engines": ours, "matched": matched},
        }


def same_build(a: EngineSet, b: EngineSet) -> bool:
    """Whether two engine sets run the same artifacts on the same backend and device: what
    they give agrees by construction."""

    def key(s: EngineSet) -> tuple[Any, ...]:
        return tuple(
            (
                kind,
                (s.entries.get(kind) or {}).get("artifact", {}).get("sha256"),
                (s.entries.get(kind) or {}).get("backend"),
                getattr(getattr(s, kind), "device", None),
            )
            for kind in s.kinds
        )

    return key(a) == key(b)


class Agreement:
    """Accumulates the engines' outputs against the reference's, frame by frame."""

    def __init__(self, *, max_depth: float = 80.0, worst: int = WORST) -> None:
        from edge.eval import Evaluator

        self.evaluator = Evaluator(max_depth=max_depth)
        self.max_depth = max_depth
        self.frames: list[FrameAgreement] = []
        self.worst = worst
        # the least agreeing frames' pictures: (-agreement, frame, picture), the best of them on top
        self._pictures: list[tuple[float, int, np.ndarray]] = []

    def add(
        self,
        reference: Perceived,
        engines: Perceived,
        *,
        frame: int,
        time_s: float,
        name: str | None = None,
        draw: Callable[[], np.ndarray] | None = None,
    ) -> FrameAgreement:
        """One frame through both (``name``: the source's for it); ``draw`` makes its picture,
        called only for a frame that is among the ``worst`` least agreeing so far."""
        from edge.data.cityscapes import label_ids_of
        from edge.eval.evaluator import resize_nearest

        hw = _truth_shape(reference)
        label_ids = (
            label_ids_of(reference.semantic) if reference.semantic is not None else np.zeros(hw, np.uint8)
        )
        panoptic = reference.panoptic if engines.panoptic is not None else None
        depth = engines.depth if reference.depth is not None else None
        pq = pixels = abs_rel = None
        things = (0, 0, 0)
        # the frame's own figures are what the evaluator's sums gained from it
        panoptic_before, depth_before = self.evaluator.panoptic.copy(), self.evaluator.depth.copy()
        match = self.evaluator.add(
            gt_label_ids=label_ids,
            gt_instance_ids=panoptic,
            gt_depth=reference.depth if depth is not None else None,
            panoptic_ids=engines.panoptic if panoptic is not None else None,
            sem_train_ids=engines.semantic if reference.semantic is not None else None,
            depth=depth,
        )
        if match is not None:
            groups = self.evaluator.panoptic.since(panoptic_before).results()["all"]
            pq = None if groups["n"] == 0 else float(groups["pq"])
            things = (len(match.gt_things), len(match.pred_things), len(match.thing_pairs))
        if reference.semantic is not None and engines.semantic is not None:
            pixels = float(np.mean(resize_nearest(engines.semantic, hw) == reference.semantic))
        if depth is not None:
            abs_rel = self.evaluator.depth.since(depth_before).results().get("abs_rel")
        seen = FrameAgreement(
            frame=frame,
            time_s=time_s,
            pq=pq,
            pixels_agree=pixels,
            depth_abs_rel=None if abs_rel is None else float(abs_rel),
            things=things,
            name=name,
        )
        self.frames.append(seen)
        if draw is not None and self.worst:
            entry = (-seen.agreement, -frame)
            if len(self._pictures) < self.worst:
                heapq.heappush(self._pictures, (*entry, draw()))
            elif entry > self._pictures[0][:2]:  # less agreeing than the best of those kept
                heapq.heapreplace(self._pictures, (*entry, draw()))
        return seen

    def least_agreeing(self, n: int) -> list[FrameAgreement]:
        """The ``n`` frames that agree least, the least first (earlier frames first among equals)."""
        return sorted(self.frames, key=lambda f: (f.agreement, f.frame))[:n]

    def pictures(self) -> list[tuple[int, np.ndarray]]:
        """The drawn frames among the least agreeing, the least first: (frame, picture)."""
        kept = sorted(self._pictures, key=lambda p: (-p[0], -p[1]))
        return [(-frame, picture) for _, frame, picture in kept]

    def results(self) -> dict[str, Any]:
        """The Evaluator's metrics with the reference as the truth, and the share of all pixels
        whose semantic class agreed."""
        out = self.evaluator.results()
        out.pop("tracking", None)  # no tracks compared
        shares = [f.pixels_agree for f in self.frames if f.pixels_agree is not None]
        out["pixels_agree"] = float(np.mean(shares)) if shares else None
        return out


def _truth_shape(seen: Perceived) -> tuple[int, int]:
    for part in (seen.panoptic, seen.semantic, seen.depth):
        if part is not None:
            return (int(part.shape[0]), int(part.shape[1]))
    raise ConfigError("the reference gave neither a panoptic map nor depth")


def frames_of(source: str, *, max_frames: int | None) -> tuple[Any, Iterator[Frame], int | None]:
    """The source, its frames (at most ``max_frames``; ENDLESS_FRAMES of one that does not end
    when none is given), and how many that is where it is known."""
    from edge.stream.sources import open_source

    src: Any = open_source(source)  # keeps_rate and len where it has them
    if getattr(src, "keeps_rate", False):
        src.keeps_rate = False  # as fast as the engines take them: nothing here is live
    endless = bool(getattr(src, "endless", False)) or src.live
    limit = max_frames if max_frames is not None else (ENDLESS_FRAMES if endless else None)
    total: int | None = limit
    with contextlib.suppress(TypeError):
        total = len(src) if limit is None else min(limit, len(src))

    def frames() -> Iterator[Frame]:
        n = 0
        while limit is None or n < limit:
            frame = src.read()
            if frame is None:
                return
            n += 1
            yield frame

    return src, frames(), total


def compare(
    source: str,
    *,
    engines: EngineChoice,
    reference: EngineChoice,
    threads: int | None = None,
    fit: str = "stretch",
    min_score: float = MIN_SCORE,
    max_frames: int | None = None,
    worst: int = WORST,
    out_dir: str | Path | None = None,
    show_progress: bool = True,
    checkpoint_s: float | None = None,
    bounds: Sequence[Bound] = (),
) -> dict[str, Any]:
    """Run ``source``'s frames through ``engines`` and ``reference`` (taking turns at who goes
    first) and measure how far the engines' outputs agree with the reference's; with
    ``out_dir``, write compare.json, compare.md and the ``worst`` least agreeing frames'
    pictures there (compare.json rewritten every ``checkpoint_s`` while it runs, default
    CHECKPOINT_S, marked unfinished: a comparison killed outright keeps what it had compared).
    Ctrl-C keeps what was compared (Interrupted carries the report). ``bounds``: what the
    agreement must keep (edge.compare_bounds), checked in the report's ``bounds``."""
    from edge.compare_bounds import check_measurable
    from edge.compare_report import report_of, write_report
    from edge.util.fs import require_writable
    from edge.util.progress import progress_bar

    check_min_score(min_score)
    every_s = CHECKPOINT_S if checkpoint_s is None else checkpoint_s
    if worst < 0:
        raise ConfigError(f"worst={worst}: expected 0 or more frames to name")
    if out_dir is not None:
        require_writable(out_dir, folder=True, what="comparison folder")
    with contextlib.ExitStack() as stack:
        src, frames, total = frames_of(source, max_frames=max_frames)
        stack.callback(src.close)
        ours = stack.enter_context(
            _opened("the engines", engines, threads=threads, fit=fit, min_score=min_score)
        )
        ref = stack.enter_context(
            _opened("the reference", reference, threads=threads, fit=fit, min_score=min_score)
        )
        _check_comparable(ours.engines, ref.engines)
        check_measurable(bounds, set(ours.engines.kinds) & set(ref.engines.kinds))
        agreement = Agreement(max_depth=min(80.0, ref.engines.depth_range[1]), worst=worst)
        truth = _truth_of(src, fit=fit, input_hw={"engines": ours.input_size, "reference": ref.input_size})
        fps = getattr(src, "media_fps", None) or src.fps or 30.0
        saved_at = time.monotonic()

        def report(**marks: bool) -> dict[str, Any]:
            return report_of(
                source,
                ref,
                ours,
                agreement,
                min_score=min_score,
                worst=worst,
                bounds=bounds,
                truth=truth,
                **marks,
            )

        stopped: KeyboardInterrupt | None = None
        bar = stack.enter_context(
            progress_bar(enabled=show_progress, total=total, desc="frames compared", unit="frame")
        )
        try:
            for n, frame in enumerate(frames):
                t_s = frame.meta["media_ms"] / 1e3 if "media_ms" in frame.meta else n / fps
                first, second = (ref, ours) if n % 2 == 0 else (ours, ref)
                a, b = first(frame.image, stream_time_s=t_s), second(frame.image, stream_time_s=t_s)
                seen_ref, seen_ours = (a, b) if first is ref else (b, a)

                def draw(r: Perceived = seen_ref, o: Perceived = seen_ours) -> np.ndarray:
                    return _picture(ref, ours, r, o, max_depth=agreement.max_depth)

                agreement.add(seen_ref, seen_ours, frame=n, time_s=t_s, name=_name(frame, src.uri), draw=draw)
                if truth is not None:
                    truth.add(frame, engines=seen_ours, reference=seen_ref)
                bar.update(1)
                if out_dir is not None and time.monotonic() - saved_at >= every_s:
                    write_report(Path(out_dir), report(unfinished=True), pictures=None)
                    saved_at = time.monotonic()
        except KeyboardInterrupt as exc:
            if not agreement.frames:
                raise  # nothing compared: nothing to report
            stopped = exc
        if not agreement.frames:
            raise SourceError(f"source {source!r} gave no frame to compare")
        done = report(interrupted=stopped is not None)
        if out_dir is not None:
            write_report(Path(out_dir), done, pictures=agreement.pictures())
    if stopped is not None:
        raise Interrupted(done, stopped) from stopped
    return done


def _name(frame: Frame, uri: str) -> str | None:
    """What the source calls the frame: a Cityscapes frame's name, an image folder's file."""
    if "name" in frame.meta:
        return str(frame.meta["name"])
    return Path(frame.source).name if frame.source and frame.source != uri else None


def _truth_of(src: Any, *, fit: str, input_hw: dict[str, tuple[int, int]]) -> TruthScores | None:
    """Where the source has ground truth (a Cityscapes-layout folder), what scores both on it."""
    from edge.compare_truth import TruthScores
    from edge.stream.sources import CityscapesSource

    if not isinstance(src, CityscapesSource):
        return None
    return TruthScores(root=src.root, split=src.split, fit=fit, input_hw=input_hw)


def _opened(
    which: str, choice: EngineChoice, *, threads: int | None, fit: str, min_score: float
) -> Perception:
    """``choice`` opened; what refuses it names which side it is."""
    try:
        return choice.open(threads=threads, fit=fit, min_score=min_score)
    except (ConfigError, ManifestError, BackendError) as exc:
        raise type(exc)(f"{which}: {exc}") from exc


def _check_comparable(engines: EngineSet, reference: EngineSet) -> None:
    if not set(engines.kinds) & set(reference.kinds):
        raise ConfigError(
            f"nothing to compare: the engines run {' and '.join(engines.kinds)}, the reference "
            f"{' and '.join(reference.kinds)}"
        )
    if same_build(engines, reference):
        said = "; ".join(engines.described.values())
        raise ConfigError(
            f"the engines and the reference are the same build ({said}): they agree by construction; "
            "name what differs, e.g. --precision int8 --reference-precision fp32, or --reference-engines DIR"
        )


def _picture(
    ref: Perception, ours: Perception, seen_ref: Perceived, seen_ours: Perceived, *, max_depth: float
) -> np.ndarray:
    """The reference's picture over the engines', over where they differ (RGB), at the
    reference's width."""
    import cv2

    from edge.compare_report import difference_picture, labelled

    top = ref.render(seen_ref)
    width = top.shape[1]
    middle = ours.render(seen_ours)
    if middle.shape[1] != width:  # the engines' size, drawn at the reference's
        middle = cv2.resize(middle, (width, round(middle.shape[0] * width / middle.shape[1])))
    rows = [
        labelled(top, "reference: " + "; ".join(ref.engines.described.values())),
        labelled(middle, "engines: " + "; ".join(ours.engines.described.values())),
        difference_picture(seen_ref, seen_ours, width=width, max_depth=max_depth),
    ]
    return np.concatenate(rows, axis=0)


def speed_ratio(reference_ms: float | None, engines_ms: float | None) -> float | None:
    """How many times faster the engines ran than the reference (reference / engines)."""
    if not reference_ms or not engines_ms or not math.isfinite(reference_ms / engines_ms):
        return None
    return reference_ms / engines_ms
