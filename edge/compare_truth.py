"""``edge compare`` on frames with ground truth (``cityscapes://DIR``): both builds scored
against it too, as ``edge replay --eval`` scores one, so the agreement is read beside what
each build's own scores did."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.errors import DatasetError

if TYPE_CHECKING:
    from edge.perception import Perceived
    from edge.stream.frame import Frame

HEADLINE = ("pq", "pq_things", "pq_stuff", "miou", "depth_abs_rel", "object_distance_abs_rel")


class TruthScores:
    """Each build's outputs against the ground truth of the frames that have it, at the frames'
    size, on the part of each frame its engines saw (``fit``, each build's ``input_hw``)."""

    def __init__(
        self,
        *,
        root: Path,
        split: str,
        fit: str,
        input_hw: dict[str, tuple[int, int]],
        max_depth: float = 80.0,
    ) -> None:
        from edge.eval import Evaluator

        self.root, self.split, self.fit, self.input_hw = root, split, fit, input_hw
        self.evaluators = {side: Evaluator(max_depth=max_depth) for side in ("engines", "reference")}
        self.frames = 0
        self.errors: list[str] = []

    def add(self, frame: Frame, *, engines: Perceived, reference: Perceived) -> None:
        """One frame through both builds; nothing where it has no ground truth."""
        from edge.data.cityscapes import FrameRef, read_depth, read_ids
        from edge.eval.evaluator import resize_bilinear, resize_nearest
        from edge.replay import seen_truth
        from edge.stream.fit import seen_part

        meta = frame.meta
        if not meta.get("has_gt"):
            return
        ref = FrameRef(self.root, self.split, meta["city"], meta["sequence"], meta["frame"])
        hw = frame.image.shape[:2]
        try:
            labels, instances, depth = (
                read_ids(ref.path("labelIds")),
                read_ids(ref.path("instanceIds")),
                read_depth(ref),
            )
        except DatasetError as exc:  # said at the end; the comparison goes on
            self.errors.append(str(exc))
            return
        for side, seen in (("engines", engines), ("reference", reference)):
            part = seen_part((hw[0], hw[1]), self.input_hw[side], self.fit)
            self.evaluators[side].add(
                **seen_truth(labels, instances, depth, part),
                panoptic_ids=resize_nearest(seen.panoptic, hw) if seen.panoptic is not None else None,
                sem_train_ids=resize_nearest(seen.semantic, hw) if seen.semantic is not None else None,
                depth=resize_bilinear(seen.depth, hw) if seen.depth is not None else None,
            )
        self.frames += 1

    def results(self) -> dict[str, Any]:
        """The frames scored, each build's headline figures (HEADLINE; None where not measured),
        the change from the reference's to the engines' (points of PQ and mIoU; AbsRel as is),
        and the frames whose ground truth could not be read."""
        from edge.compare_bounds import METRICS

        report = {side: {"agreement": e.results(), "speedup": None} for side, e in self.evaluators.items()}
        scores: dict[str, dict[str, float | None]] = {}
        for side, as_report in report.items():
            scores[side] = {}
            for name in HEADLINE:
                _, read, scale, _ = METRICS[name]
                value = read(as_report)
                scores[side][name] = None if value is None or value != value else value * scale
        change = {
            name: None if a is None or b is None else a - b
            for name in HEADLINE
            for a, b in [(scores["engines"][name], scores["reference"][name])]
        }
        return {"frames": self.frames, **scores, "change": change, "errors": self.errors}


def truth_lines(truth: dict[str, Any]) -> list[str]:
    """What edge compare prints of the ground truth: each figure, the reference's -> the engines'."""
    if not truth["frames"]:
        return []
    said = []
    for name, label, digits in (("pq", "PQ", 1), ("miou", "mIoU", 1), ("depth_abs_rel", "depth AbsRel", 3)):
        ref, ours, change = truth["reference"][name], truth["engines"][name], truth["change"][name]
        if ref is not None and ours is not None and change is not None:
            said.append(f"{label} {ref:.{digits}f} -> {ours:.{digits}f} ({change:+.{digits}f})")
    lines = [
        f"against the ground truth ({truth['frames']} frames), the reference's -> the engines': "
        + ", ".join(said)
    ]
    if truth["errors"]:
        lines.append(
            f"  {len(truth['errors'])} frame(s) whose ground truth could not be read; first: "
            f"{truth['errors'][0]}"
        )
    return lines
