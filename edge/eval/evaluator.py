"""Accumulate panoptic, semantic and depth metrics over frames with ground truth."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

from edge.data.cityscapes import label_ids_of
from edge.eval.depth import DepthStats
from edge.eval.objects import (
    ObjectDistanceStats,
    RecallByDistance,
    true_cut_by_sides,
    true_distances,
    true_lateral,
    true_pixels,
)
from edge.eval.panoptic import FrameMatch, PanopticStats
from edge.eval.semantic import ConfusionMatrix
from edge.eval.tracking import TrackingStats
from edge.postprocess.tracks import TrackInfo


class Evaluator:
    """Predictions may be at the engine's size; they are resized to the ground truth's
    (nearest for ids, bilinear for depth), as a submission at full resolution would be."""

    def __init__(
        self,
        *,
        min_depth: float = 1e-3,
        max_depth: float = 80.0,
        speed_window_s: float = 1.0,
        min_speed_samples: int = 5,
        hfov_deg: float | None = None,
        path_half_width_m: float = 1.5,
        mount_offset_m: float = 0.0,
        min_lateral_mps: float = 1.0,
        warn_within_s: float = 3.0,
    ) -> None:
        """``speed_window_s`` and ``min_speed_samples``: the tracker's, which the true closing
        and lateral speeds are fitted as (edge.eval.tracking); ``hfov_deg`` and
        ``path_half_width_m``: the tracker's too, where it was given the camera's field of
        view: the objects' lateral_m, in_path, lateral_mps and path_in_s are then scored
        against their true pixels' (eval.objects.true_lateral), from the vehicle's middle
        where the tracker's ``mount_offset_m`` puts the camera beside it, cutting in where
        truly moving towards the path at the tracker's ``min_lateral_mps``; a warning due
        under the tracker's ``warn_within_s``."""
        self.hfov_deg, self.path_half_width_m = hfov_deg, path_half_width_m
        self.mount_offset_m = mount_offset_m
        self.panoptic = PanopticStats()
        self.semantic = ConfusionMatrix()
        self.depth = DepthStats(min_depth=min_depth, max_depth=max_depth)
        self.objects = ObjectDistanceStats(min_depth=min_depth, max_depth=max_depth)
        self.recall = RecallByDistance()
        self.min_depth, self.max_depth = min_depth, max_depth
        self.tracking = TrackingStats(
            speed_window_s=speed_window_s,
            min_speed_samples=min_speed_samples,
            min_lateral_mps=min_lateral_mps,
            warn_within_s=warn_within_s,
        )
        self.frames = 0

    def add(
        self,
        *,
        gt_label_ids: np.ndarray,
        gt_instance_ids: np.ndarray | None = None,
        gt_depth: np.ndarray | None = None,
        panoptic_ids: np.ndarray | None = None,
        sem_train_ids: np.ndarray | None = None,
        depth: np.ndarray | None = None,
        tracks: Mapping[int, TrackInfo] | None = None,
        t_s: float | None = None,
        scene: Hashable | None = None,
    ) -> FrameMatch | None:
        """One frame with ground truth; with ``tracks`` (by predicted panoptic id), its
        stream time ``t_s`` and ``scene``, in stream order, the tracking is scored too.
        Returns its panoptic segments as matched (None without panoptic ids and instances)."""
        hw = gt_label_ids.shape
        pred_ids = resize_nearest(panoptic_ids, hw) if panoptic_ids is not None else None
        pred_depth = resize_bilinear(depth, hw) if depth is not None else None
        matched = None
        if pred_ids is not None and gt_instance_ids is not None:
            matched = self.panoptic.add(pred_ids, gt_instance_ids)
            truth = lateral = None
            cut_off: set[int] = set()
            if gt_depth is not None:
                pixels = true_pixels(
                    gt_instance_ids, gt_depth, matched.gt_things, self.min_depth, self.max_depth
                )
                truth = true_distances(pixels, gt_depth)
                self.recall.add(matched, truth)
                if pred_depth is not None:
                    self.objects.add(matched, pred_ids, pred_depth, gt_instance_ids, gt_depth, truth=truth)
                if self.hfov_deg is not None and tracks is not None and t_s is not None:
                    lateral = true_lateral(
                        pixels,
                        gt_depth,
                        hfov_deg=self.hfov_deg,
                        path_half_width_m=self.path_half_width_m,
                        mount_offset_m=self.mount_offset_m,
                    )
                    cut_off = true_cut_by_sides(pixels)
            if tracks is not None and t_s is not None:
                self.tracking.add(
                    matched,
                    tracks,
                    t_s=t_s,
                    scene=scene,
                    true_distance=truth,
                    true_lateral=lateral,
                    true_cut_off=cut_off,
                )
        if sem_train_ids is not None:
            self.semantic.add(label_ids_of(resize_nearest(sem_train_ids, hw)), gt_label_ids)
        if pred_depth is not None and gt_depth is not None:
            self.depth.add(pred_depth, gt_depth)
        self.frames += 1
        return matched

    def results(self) -> dict[str, Any]:
        tracking = self.tracking.results()
        if tracking.get("lateral", {}).get("pairs"):
            tracking["lateral"]["in_path"]["path_width_m"] = 2 * self.path_half_width_m  # what in_path meant
        return {
            "frames": self.frames,
            "panoptic": self.panoptic.results(),
            "semantic": self.semantic.results(),
            "depth": self.depth.results(),
            "object_distance": self.objects.results(),
            "found_by_distance": self.recall.results(),
            "tracking": tracking,
        }


def resize_nearest(ids: np.ndarray, hw: tuple[int, ...]) -> np.ndarray:
    import cv2

    if ids.shape == tuple(hw):
        return ids
    return cv2.resize(ids.astype(np.int32), (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST_EXACT)


def resize_bilinear(x: np.ndarray, hw: tuple[int, ...]) -> np.ndarray:
    import cv2

    if x.shape == tuple(hw):
        return x
    return cv2.resize(x.astype(np.float32), (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)
