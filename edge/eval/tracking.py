"""How well the objects are followed, and how well their closing speeds are measured.

Scored on the frames with ground truth, in order, with the pairs panoptic matching makes
(same class, IoU > 0.5). A ground-truth thing paired with a prediction whose track is not
the one it was last paired with (in this scene) is an identity switch; MOTA counts the
things missed, the predicted things paired with none, and the switches against the
ground-truth things seen. A thing's true closing speed is the slope of its true distances
(the median ground-truth depth over its pixels) at the same stream times, over a window as
long as the tracker's, and its true time-to-collision its true distance over that; so the
errors are the tracker's together with the detector's and the depth engine's. Sequences
with ground truth every frame (edge make-synthetic --all-gt) give all of it; Cityscapes'
one annotated frame a sequence gives no switch and no speed (IDF1 is then the detection
F1), so the tracks are scored on drives with dense ground truth.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping
from typing import Any

import numpy as np

from edge.eval.objects import distance_errors
from edge.eval.panoptic import FrameMatch
from edge.postprocess.tracks import TTC_WARN_S, TrackInfo, closing_speed


class TrackingStats:
    def __init__(
        self,
        *,
        speed_window_s: float = 1.0,
        min_speed_samples: int = 5,
        near_m: float = 30.0,
        ttc_within_s: float = 10.0,
        min_closing_mps: float = 0.5,
        min_lateral_mps: float = 1.0,
        warn_within_s: float = TTC_WARN_S,
    ) -> None:
        """``speed_window_s`` and ``min_speed_samples``: the true closing speeds' fit, as the
        tracker's (ObjectTracker's arguments of those names); ``near_m``: the closing speeds
        of objects truly nearer than this are scored on their own too (a monocular depth
        engine's far distances are its worst, and a planner's near ones its most urgent);
        ``ttc_within_s`` and ``min_closing_mps``: the times-to-collision scored, those of
        objects truly closing at that speed or more that would reach the camera within it;
        ``min_lateral_mps``: things truly beside the path moving towards it this fast or more
        are cutting in (ObjectTracker's argument of that name); ``warn_within_s``: a warning
        is due for a thing truly under this long from arriving (ObjectTracker's, likewise)."""
        self.near_m = near_m
        self.ttc_within_s, self.min_closing_mps = ttc_within_s, min_closing_mps
        self._ttc_err: list[float] = []
        self._ttc_rel: list[float] = []
        self.ttc_missed = 0  # a speed given, but no time-to-collision where one was due
        self.speed_window_s = speed_window_s
        self.min_speed_samples = min_speed_samples
        self.gt_objects = self.misses = self.false_positives = self.switches = self.matched = 0
        self.pred_objects = 0
        # per scene: (ground-truth id, track) -> the frames they were paired in, for IDF1
        self._together: list[dict[tuple[int, int], int]] = []
        self._scene: Hashable | None = None
        self._last_track: dict[int, int] = {}  # ground-truth id -> the track it was last paired with
        self._true_ranges: dict[int, list[tuple[float, float]]] = {}
        self._speed_pred: list[float] = []
        self._speed_true: list[float] = []
        self._speed_distance: list[float] = []  # the true distance at each pair's frame
        # the distances read from the road (TrackInfo.ground_m) and the true ones, pairwise
        self._ground: tuple[list[float], list[float]] = ([], [])
        # and where the feet were hidden, the depth map's scaled to them (range_from "scaled")
        self._scaled: tuple[list[float], list[float]] = ([], [])
        self._lateral_err: list[float] = []
        self._lateral_near: list[bool] = []  # truly nearer than near_m
        self._in_path: list[tuple[bool, bool]] = []  # (said, true)
        self.min_lateral_mps = min_lateral_mps
        self.warn_within_s = warn_within_s
        self._true_laterals: dict[int, list[tuple[float, float]]] = {}
        self._lateral_speed_err: list[float] = []
        self._cut_in: list[tuple[bool, bool]] = []  # of things truly beside the path: (said, true)
        # per (scene, ground-truth id): when it was first truly cutting in, first said to be
        # while truly beside the path, and first truly in the path after cutting in
        self._cutting_s: dict[tuple[int, int], float] = {}
        self._warned_s: dict[tuple[int, int], float] = {}
        self._entered_s: dict[tuple[int, int], float] = {}
        # and when first said to be in the path while truly beside it
        self._said_in_s: dict[tuple[int, int], float] = {}
        # per (scene, ground-truth id): when a warning was first truly due, and first given
        self._due_s: dict[tuple[int, int], float] = {}
        self._warned_of_s: dict[tuple[int, int], float] = {}
        # and those paired with a prediction at or after it was due (found by the panoptic engine)
        self._found_when_due: set[tuple[int, int]] = set()

    def add(
        self,
        matched: FrameMatch,
        tracks: Mapping[int, TrackInfo],
        *,
        t_s: float,
        scene: Hashable | None = None,
        true_distance: Mapping[int, float] | None = None,
        true_lateral: Mapping[int, tuple[float, bool, float]] | None = None,
        true_cut_off: Collection[int] = (),
    ) -> None:
        """One frame with ground truth, in stream order: ``matched`` as PanopticStats.add
        returns it, ``tracks`` by predicted panoptic id, ``t_s`` the frame's stream time
        (the tracker's); a new ``scene`` starts afresh. ``true_distance``: the true things'
        distances (eval.objects.true_distances), where the frame has depth, for the
        closing speeds; ``true_lateral``: their offsets from the axis and whether they are
        in the path (eval.objects.true_lateral), where the camera's field of view is known;
        ``true_cut_off``: the things the picture's sides cut (eval.objects.true_cut_by_sides),
        whose offsets then say nothing of their lateral speeds (ObjectTracker's rule too)."""
        if scene != self._scene or not self._together:
            self._scene = scene
            self._last_track, self._true_ranges, self._true_laterals = {}, {}, {}
            self._together.append({})
        # things of the classes evaluated (a caravan or trailer is void, as panoptic quality has it)
        gt_things, pred_things = matched.gt_things, matched.pred_things
        pairs = matched.thing_pairs
        self.gt_objects += len(gt_things)
        self.matched += len(pairs)
        self.misses += len(gt_things - {g for g, _ in pairs})
        self.false_positives += len(pred_things - {p for _, p in pairs})
        self.pred_objects += len(pred_things)
        together = self._together[-1]
        true_distance = self._keep_true_distances(true_distance or {}, t_s)
        true_speed = self._true_lateral_speeds(true_lateral or {}, t_s, true_cut_off)
        # each thing's true closing speed over the window, once for the pairs and the warnings
        true_closing = {
            g: closing_speed(
                self._true_ranges[g], window_s=self.speed_window_s, min_samples=self.min_speed_samples
            )
            for g in true_distance
        }
        self._cut_in_events(true_lateral or {}, true_speed, t_s)
        self._warnings(true_distance, true_closing, true_lateral or {}, true_speed, t_s)
        scene_no = len(self._together)
        self._found_when_due.update((scene_no, g) for g, _ in pairs if (scene_no, g) in self._due_s)
        for g, p in pairs:
            track = tracks.get(p)
            if track is None:
                continue
            together[g, track.track] = together.get((g, track.track), 0) + 1
            if self._last_track.get(g, track.track) != track.track:
                self.switches += 1
            self._last_track[g] = track.track
            if track.warned:
                self._warned_of_s.setdefault((len(self._together), g), t_s)
            if track.ground_m is not None and g in true_distance:
                self._ground[0].append(track.ground_m)
                self._ground[1].append(true_distance[g])
            if track.range_from == "scaled" and track.range_m is not None and g in true_distance:
                self._scaled[0].append(track.range_m)
                self._scaled[1].append(true_distance[g])
            if true_lateral and g in true_lateral and track.lateral_m is not None:
                offset, in_path, _ = true_lateral[g]
                self._lateral_err.append(abs(track.lateral_m - offset))
                self._lateral_near.append(true_distance.get(g, math.inf) < self.near_m)
                self._in_path.append((bool(track.in_path), in_path))
                truth = true_speed.get(g)
                if track.lateral_mps is not None and truth is not None:
                    self._lateral_speed_err.append(abs(track.lateral_mps - truth))
                if truth is not None and not in_path:
                    self._cut_in.append((track.path_in_s is not None, self._cutting_in(truth, offset)))
                if track.path_in_s is not None and not in_path:
                    self._warned_s.setdefault((len(self._together), g), t_s)
                if track.in_path and not in_path:
                    self._said_in_s.setdefault((len(self._together), g), t_s)
            if track.closing_mps is None or (truth := true_closing.get(g)) is None:
                continue
            self._speed_pred.append(track.closing_mps)
            self._speed_true.append(truth)
            self._speed_distance.append(true_distance[g])
            if truth >= self.min_closing_mps and (ttc := true_distance[g] / truth) <= self.ttc_within_s:
                if track.ttc_s is None:
                    self.ttc_missed += 1
                else:
                    self._ttc_err.append(abs(track.ttc_s - ttc))
                    self._ttc_rel.append(abs(track.ttc_s - ttc) / ttc)

    def _keep_true_distances(self, out: Mapping[int, float], t_s: float) -> Mapping[int, float]:
        """Each true distance kept with ``t_s`` for its thing's true closing speed."""
        for g, distance in out.items():
            ranges = self._true_ranges.setdefault(g, [])
            ranges.append((t_s, distance))
            while t_s - ranges[0][0] > self.speed_window_s:
                ranges.pop(0)
        return out

    def _true_lateral_speeds(
        self, out: Mapping[int, tuple[float, bool, float]], t_s: float, cut_off: Collection[int]
    ) -> dict[int, float]:
        """Each true offset kept with ``t_s``, but those of things ``cut_off``; each thing's
        true lateral speed (m/s, right positive) over the window, where its samples allow one."""
        speeds = {}
        for g, (offset, *_) in out.items():
            samples = self._true_laterals.setdefault(g, [])
            if g not in cut_off:
                samples.append((t_s, offset))
            while samples and t_s - samples[0][0] > self.speed_window_s:
                samples.pop(0)
            away = closing_speed(samples, window_s=self.speed_window_s, min_samples=self.min_speed_samples)
            if away is not None:
                speeds[g] = -away
        return speeds

    def _cut_in_events(
        self, out: Mapping[int, tuple[float, bool, float]], true_speed: Mapping[int, float], t_s: float
    ) -> None:
        """Each thing's cut-in as one event: when it is first truly beside the path moving
        towards it at min_lateral_mps or more, and when it is then first truly in it."""
        for g, (offset, in_path, _) in out.items():
            key = (len(self._together), g)
            if in_path:
                if key in self._cutting_s:
                    self._entered_s.setdefault(key, t_s)
                continue
            if self._cutting_in(true_speed.get(g), offset):
                self._cutting_s.setdefault(key, t_s)

    def _cutting_in(self, speed: float | None, offset: float) -> bool:
        """Whether a thing ``offset`` m from the axis, beside the path, is truly cutting in:
        its true lateral ``speed`` is towards the axis at min_lateral_mps or more."""
        return speed is not None and speed * offset < 0 and abs(speed) >= self.min_lateral_mps

    def _warnings(
        self,
        distance: Mapping[int, float],
        closing: Mapping[int, float | None],
        lateral: Mapping[int, tuple[float, bool, float]],
        lateral_speed: Mapping[int, float],
        t_s: float,
    ) -> None:
        """When a warning is first truly due for each thing: its true time to collision is
        under ``warn_within_s``, and it is in the path, or nothing places it (no field of view), or
        beside the path it is truly cutting in and would reach the path first: its gap over its
        lateral speed within its time to collision (TrackInfo.warned's rule, on the truth)."""
        for g, d in distance.items():
            v = closing[g]
            if v is None or v < self.min_closing_mps or d / v >= self.warn_within_s:
                continue
            if g in lateral and not lateral[g][1]:
                offset, _, gap = lateral[g]
                speed = lateral_speed.get(g)
                # as TrackInfo.warned has it: beside the path, only a thing that reaches it
                # before it comes level with the camera (a slower one passes beside it)
                if speed is None or not self._cutting_in(speed, offset) or gap / abs(speed) > d / v:
                    continue
            self._due_s.setdefault((len(self._together), g), t_s)

    def _warning_results(self) -> dict[str, Any]:
        """Of the things a warning was truly due for (_warnings), how many were warned of
        (TrackInfo.warned, while paired with them), and how long after it was due the first
        warning came (``delay_s``: negative, before); of those not warned of, how many no
        prediction was paired with from when it was due (``never_found``: the panoptic
        engine's misses, which no tracker setting can warn of); how many things were warned
        of, and of those how many never truly due."""
        warned_of = [k for k in self._due_s if k in self._warned_of_s]
        delay = np.asarray([self._warned_of_s[k] - self._due_s[k] for k in warned_of])
        out: dict[str, Any] = {
            "within_s": self.warn_within_s,
            "due": len(self._due_s),
            "warned": len(warned_of),
            "recall": len(warned_of) / len(self._due_s) if self._due_s else None,
            "never_found": len(set(self._due_s) - set(warned_of) - self._found_when_due),
            "said": len(self._warned_of_s),
            "false": len(set(self._warned_of_s) - set(self._due_s)),
        }
        if delay.size:
            out |= {"delay_s_p50": float(np.median(delay)), "delay_s_p90": float(np.percentile(delay, 90))}
        return out

    def _cut_in_event_results(self) -> dict[str, Any]:
        """Of the things that truly cut in: how many the tracks said were (path_in_s, while
        beside the path and before it was in it), and how long before it was in the path
        the first warning came (``lead_s``, of those seen entering it); of the others, how
        many were said to be in the path already while truly beside it (``in_path_before``:
        the tracks treat them as in the path, a planner would too), and the share of them
        all one way or the other (``flagged_recall``); and how many other things were said
        to cut in."""
        warned = [
            k
            for k in self._cutting_s
            if k in self._warned_s and self._warned_s[k] <= self._entered_s.get(k, math.inf)
        ]
        leads = np.asarray([self._entered_s[k] - self._warned_s[k] for k in warned if k in self._entered_s])
        early = [
            k
            for k in set(self._cutting_s) - set(warned)
            if k in self._said_in_s and self._said_in_s[k] <= self._entered_s.get(k, math.inf)
        ]
        out: dict[str, Any] = {
            "truly": len(self._cutting_s),
            "warned": len(warned),
            "recall": len(warned) / len(self._cutting_s) if self._cutting_s else None,
            "entered": len(self._entered_s),
            "false_things": len(set(self._warned_s) - set(self._cutting_s)),
            "in_path_before": len(early),
            "flagged_recall": (len(warned) + len(early)) / len(self._cutting_s) if self._cutting_s else None,
        }
        if leads.size:
            out |= {"lead_s_p50": float(np.median(leads)), "lead_s_min": float(leads.min())}
        return out

    def results(self) -> dict[str, Any]:
        """``idf1`` (identity F1: how much of the time each true thing is the one track it
        is most often, 2 IDTP / (true + predicted things)), ``mota``, ``id_switches`` and the
        counts behind them; ``closing_speed``: for the
        pairs where both speeds are known, the mean, median and 90th percentile of
        |predicted - true| (m/s), and the share whose sign agrees where the truth is 1 m/s
        or more either way; ``closing_speed_near``: the same for objects nearer than
        ``near_m``; ``time_to_collision``: |predicted - true| (s, p50 and p90; relative, p50)
        where the truth is within ``ttc_within_s``, and how often none was given there;
        ``lateral``: where the tracks say lateral_m (a field of view given), its error,
        in_path's agreement, the lateral speed's error and the cut-ins said and true
        (_lateral_results); ``ground_distance``: where they say ground_m (a ground plane
        given), its error against the true distance (eval.objects.distance_errors);
        ``scaled_distance``: the same where the feet were hidden and the tracker scaled the
        depth map's distance to the track's road readings (range_from "scaled")."""
        # IDF1: each true thing given the one track that was it most often, and each track one
        # thing (in its scene); a pairing counts in the frames where the two were paired
        id_tp = sum(_best_pairing(together) for together in self._together)
        dets = self.gt_objects + self.pred_objects
        out: dict[str, Any] = {
            "idf1": 2 * id_tp / dets if dets else None,
            "gt_objects": self.gt_objects,
            "pred_objects": self.pred_objects,
            "matched": self.matched,
            "misses": self.misses,
            "false_positives": self.false_positives,
            "id_switches": self.switches,
            "mota": (
                1.0 - (self.misses + self.false_positives + self.switches) / self.gt_objects
                if self.gt_objects
                else None
            ),
        }
        out["lateral"] = self._lateral_results()
        out["warnings"] = self._warning_results()
        out["ground_distance"] = distance_errors(*self._ground)
        out["scaled_distance"] = distance_errors(*self._scaled)
        if not self._speed_true:
            out["closing_speed"] = {"pairs": 0}
            out["closing_speed_near"] = {"within_m": self.near_m, "pairs": 0}
            out["time_to_collision"] = {"within_s": self.ttc_within_s, "pairs": 0, "missed": 0}
            return out
        pred, true = np.asarray(self._speed_pred), np.asarray(self._speed_true)
        near = np.asarray(self._speed_distance) < self.near_m
        out["closing_speed"] = _speed_errors(pred, true)
        out["closing_speed_near"] = {"within_m": self.near_m, **_speed_errors(pred[near], true[near])}
        ttc: dict[str, Any] = {
            "within_s": self.ttc_within_s,
            "pairs": len(self._ttc_err),
            "missed": self.ttc_missed,
        }
        if self._ttc_err:
            err = np.asarray(self._ttc_err)
            ttc |= {
                "abs_err_s_p50": float(np.median(err)),
                "abs_err_s_p90": float(np.percentile(err, 90)),
                "rel_err_p50": float(np.median(self._ttc_rel)),
            }
        out["time_to_collision"] = ttc
        return out

    def _lateral_results(self) -> dict[str, Any]:
        """|lateral_m - true| (m, p50 and p90; and for objects nearer than near_m), and how
        in_path agrees with the truth: the share of the objects truly in the path it says
        are (recall), and of those it says are, the share truly in it (precision);
        |lateral_mps - true| (m/s, where both are known); and of the pairs truly beside the
        path with a true lateral speed, how many were said to be cutting in (path_in_s),
        truly were, and the false and missed ones; and the cut-ins counted as events
        (_cut_in_event_results)."""
        if not self._lateral_err:  # nothing paired; the things that truly cut in still count
            return {
                "pairs": 0,
                **({"cut_in_events": self._cut_in_event_results()} if self._cutting_s else {}),
            }
        err, near = np.asarray(self._lateral_err), np.asarray(self._lateral_near)
        said = np.asarray([s for s, _ in self._in_path])
        true = np.asarray([t for _, t in self._in_path])
        out: dict[str, Any] = {"pairs": int(err.size), **_abs_errors(err)}
        out["near"] = {"within_m": self.near_m, "pairs": int(near.sum()), **_abs_errors(err[near])}
        out["in_path"] = {
            "truly": int(true.sum()),
            "said": int(said.sum()),
            "recall": float((said & true).sum() / true.sum()) if true.any() else None,
            "precision": float((said & true).sum() / said.sum()) if said.any() else None,
        }
        speed_err = np.asarray(self._lateral_speed_err)
        out["lateral_speed"] = {
            "pairs": int(speed_err.size),
            **(
                {
                    "abs_err_mps_p50": float(np.median(speed_err)),
                    "abs_err_mps_p90": float(np.percentile(speed_err, 90)),
                }
                if speed_err.size
                else {}
            ),
        }
        said_in = np.asarray([s for s, _ in self._cut_in], bool)
        true_in = np.asarray([t for _, t in self._cut_in], bool)
        out["cut_in"] = {
            "beside": int(said_in.size),
            "truly": int(true_in.sum()),
            "said": int(said_in.sum()),
            "false": int((said_in & ~true_in).sum()),
            "missed": int((true_in & ~said_in).sum()),
        }
        out["cut_in_events"] = self._cut_in_event_results()
        return out


def _abs_errors(err: np.ndarray) -> dict[str, float]:
    if not err.size:
        return {}
    return {"abs_err_m_p50": float(np.median(err)), "abs_err_m_p90": float(np.percentile(err, 90))}


def _speed_errors(pred: np.ndarray, true: np.ndarray) -> dict[str, Any]:
    if not true.size:
        return {"pairs": 0}
    err = np.abs(pred - true)
    clear = np.abs(true) >= 1.0
    agrees = np.sign(pred[clear]) == np.sign(true[clear])
    return {
        "pairs": int(true.size),
        "abs_err_mps_mean": float(err.mean()),
        "abs_err_mps_p50": float(np.median(err)),
        "abs_err_mps_p90": float(np.percentile(err, 90)),
        "sign_agrees": float(agrees.mean()) if agrees.size else None,
    }


def _best_pairing(together: Mapping[tuple[int, int], int]) -> int:
    """The most paired frames one-to-one pairs of ground-truth ids and tracks can hold."""
    if not together:
        return 0
    gts = sorted({g for g, _ in together})
    tracks = sorted({t for _, t in together})
    weights = np.zeros((len(gts), len(tracks)))
    for (g, t), n in together.items():
        weights[gts.index(g), tracks.index(t)] = n
    return round(max_weight_matching(weights))


def max_weight_matching(weights: np.ndarray) -> float:
    """The largest sum of ``weights`` (N x M, >= 0) a one-to-one pairing of rows and columns
    reaches: the Hungarian method (Kuhn-Munkres with potentials, O(N^2 M)) on the costs
    max - weight, over the wider side."""
    w = np.asarray(weights, float)
    if w.size == 0:
        return 0.0
    if w.shape[0] > w.shape[1]:
        w = w.T
    n, m = w.shape
    cost = w.max() - w
    inf = float("inf")
    u, v = [0.0] * (n + 1), [0.0] * (m + 1)
    owner = [0] * (m + 1)  # column -> its row (1-based; 0: none)
    way = [0] * (m + 1)
    for row in range(1, n + 1):
        owner[0], col = row, 0
        slack, used = [inf] * (m + 1), [False] * (m + 1)
        while True:  # grow an alternating tree from the row until it reaches a free column
            used[col] = True
            r, delta, nxt = owner[col], inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    reduced = cost[r - 1, j - 1] - u[r] - v[j]
                    if reduced < slack[j]:
                        slack[j], way[j] = reduced, col
                    if slack[j] < delta:
                        delta, nxt = slack[j], j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    slack[j] -= delta
            col = nxt
            if owner[col] == 0:
                break
        while col:  # flip the path's pairings
            prev = way[col]
            owner[col] = owner[prev]
            col = prev
    return float(sum(w[owner[j] - 1, j - 1] for j in range(1, m + 1) if owner[j]))
