"""Procedural driving scenes with ground truth: semantics, instances and metric depth.

A pinhole camera ~1.2 m above a flat road drives forward. The world is a road with lane
markings between sidewalks and terrain, building facades along both sides, trees, poles
with signs, and cars, trucks, persons and bicycles as instances; everything is a plane
(the ground, facades, camera-facing billboards for objects), so every pixel's depth is
exact and a z-buffer gives correct occlusion. Sky has no depth (0, like Cityscapes'
invalid disparity). Deterministic for a seed and frame index.

Labels are Cityscapes labelIds (edge.data.cityscapes); instance ids follow Cityscapes'
instanceIds images: labelId * 1000 + n for things, labelId for stuff.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edge.data.billboards import Billboard, Braking, Crossing, shape_of
from edge.errors import ConfigError

if TYPE_CHECKING:
    from edge.postprocess.ground import GroundPlane

ROAD, SIDEWALK, BUILDING, POLE, SIGN, VEGETATION, TERRAIN, SKY = 7, 8, 11, 17, 20, 21, 22, 23
PERSON, CAR, TRUCK, BICYCLE = 24, 26, 27, 33
COLORS = {  # RGB base colours; each object varies its own
    ROAD: (100, 96, 104),
    SIDEWALK: (170, 150, 160),
    BUILDING: (120, 110, 100),
    POLE: (90, 90, 90),
    SIGN: (210, 190, 20),
    VEGETATION: (60, 110, 40),
    TERRAIN: (130, 160, 90),
    PERSON: (150, 60, 70),
    CAR: (40, 60, 150),
    TRUCK: (200, 200, 205),
    BICYCLE: (120, 20, 40),
}
CAMERA_HEIGHT = 1.2  # metres
BASELINE = 0.209313  # Cityscapes' stereo baseline, metres
FAR = 250.0  # metres: the ground beyond is drawn, but the world ends here
HORIZON = 0.45  # the camera's principal row (its horizon: no pitch), as a fraction of the height
LANES = ("centre", "right")  # where the camera drives: on the centre line, or in the right lane
SHAPES = {PERSON: "person", CAR: "car", TRUCK: "box", BICYCLE: "bicycle", SIGN: "disc", VEGETATION: "crown"}


@dataclass(frozen=True)
class Camera:
    height: int
    width: int

    @property
    def f(self) -> float:
        return 1.1 * self.width  # ~49 degrees horizontal field of view, like Cityscapes

    @property
    def cx(self) -> float:
        return self.width / 2.0

    @property
    def cy(self) -> float:
        return HORIZON * self.height

    @property
    def hfov_deg(self) -> float:
        """The horizontal field of view, 48.9 degrees whatever the size."""
        return math.degrees(2 * math.atan(self.cx / self.f))

    @property
    def ground(self) -> GroundPlane:
        """The camera over the drives' flat road (no pitch: the horizon is the principal row)."""
        from edge.postprocess.ground import GroundPlane

        return GroundPlane(height_m=CAMERA_HEIGHT, horizon=self.cy / self.height, focal=self.f / self.height)

    def to_json(self) -> dict:
        """Cityscapes camera/*.json content."""
        return {
            "extrinsic": {
                "baseline": BASELINE,
                "pitch": 0.0,
                "roll": 0.0,
                "yaw": 0.0,
                "x": 1.7,
                "y": 0.0,
                "z": CAMERA_HEIGHT,
            },
            "intrinsic": {"fx": self.f, "fy": self.f, "u0": self.cx, "v0": self.cy},
        }


@dataclass
class FrameGT:
    image: np.ndarray  # HxWx3 uint8 RGB
    label_ids: np.ndarray  # HxW uint8, Cityscapes labelIds
    instance_ids: np.ndarray  # HxW int32, Cityscapes instanceIds
    depth: np.ndarray  # HxW float32 metres, 0 = no depth (sky)


@dataclass(frozen=True)
class _Ground:
    u: np.ndarray  # pixel column, float32
    v: np.ndarray  # pixel row
    ray_x: np.ndarray
    ray_y: np.ndarray
    rgb: np.ndarray  # sky and ground, before anything stands on it
    zbuf: np.ndarray
    label: np.ndarray
    inst: np.ndarray
    zg: np.ndarray  # ground distance per pixel (inf above the horizon)
    centre: np.ndarray  # the centre line's strip, where its dashes go
    edges: np.ndarray  # the road's edge lines


class SyntheticDrive:
    """One drive (a sequence): a world laid out by ``seed``, seen from a moving camera."""

    def __init__(
        self,
        *,
        height: int = 256,
        width: int = 512,
        seed: int = 0,
        ego_speed: float = 10.0,
        length: float = 400.0,
        cut_ins: int = 0,
        lane: str = "centre",
        lead_brakes: bool = False,
    ) -> None:
        """``cut_ins``: road users added that enter the camera's path from beside it in the
        drive's first seconds (drawn from a seed of their own, so the rest of the world is
        the same with or without them). ``lead_brakes``: the car ahead in the camera's lane
        (the nearest within 60 m, else one added 15-40 m ahead) goes at the camera's speed
        and brakes hard to a stop in the drive's first seconds (drawn from a seed of its
        own too); the camera does not brake, so it closes in on it.

        ``lane``: ``centre`` drives on the centre line (the drives the bundled weights were
        first trained on), so oncoming cars pass within the camera's path; ``right`` drives in
        the middle of the right lane, with the traffic, as a car does. The world is the
        same, but that traffic in the camera's lane goes no slower than the camera (it
        would otherwise be driven through), and cut-in cars pull into the camera's lane."""
        if cut_ins < 0:
            raise ConfigError(f"cut_ins must be >= 0, got {cut_ins}")
        if lane not in LANES:
            raise ConfigError(f"lane must be one of {', '.join(LANES)}, got {lane!r}")
        self.camera = Camera(height, width)
        self.seed = seed
        self._ground_cache: _Ground | None = None
        self.ego_speed = ego_speed
        rng = np.random.default_rng(seed)
        self.road_half = float(rng.uniform(3.2, 4.2))
        self.ego_x = self.road_half / 2 if lane == "right" else 0.0  # the camera's world x
        self.walk = float(rng.uniform(2.0, 3.5))
        self.facades: list[
            tuple[float, float, float, float, tuple[int, int, int]]
        ] = []  # side x, z0, z1, h, rgb
        for side in (-1.0, 1.0):
            z = float(rng.uniform(-5, 10))
            while z < length:
                depth = float(rng.uniform(8, 30))
                if rng.uniform() < 0.8:
                    x = side * (self.road_half + self.walk + float(rng.uniform(0.5, 4.0)))
                    self.facades.append(
                        (x, z, z + depth, float(rng.uniform(6, 25)), _vary(rng, BUILDING, 40))
                    )
                z += depth + float(rng.uniform(0, 6))
        self.objects: list[Billboard] = []
        n_inst = {PERSON: 0, CAR: 0, TRUCK: 0, BICYCLE: 0}

        def thing(label: int, x: float, z: float, w: float, h: float, speed: float = 0.0) -> None:
            n_inst[label] += 1
            self.objects.append(
                Billboard(label, n_inst[label], x, z, w, h, _vary(rng, label, 50), speed=speed)
            )

        edge = self.road_half + 0.3
        for z in np.arange(float(rng.uniform(5, 15)), length, float(rng.uniform(18, 30))):
            side = float(rng.choice([-1.0, 1.0]))
            self.objects.append(Billboard(POLE, 0, side * edge, float(z), 0.15, 4.0, COLORS[POLE]))
            if rng.uniform() < 0.6:
                self.objects.append(
                    Billboard(SIGN, 0, side * edge, float(z) - 0.05, 0.7, 0.7, _vary(rng, SIGN, 30), y0=2.4)
                )
        for z in np.arange(float(rng.uniform(3, 12)), length, float(rng.uniform(9, 16))):
            side = float(rng.choice([-1.0, 1.0]))
            x = side * (self.road_half + self.walk + float(rng.uniform(0.2, 1.5)))
            self.objects.append(Billboard(VEGETATION, 0, x, float(z), 0.3, 2.2, (80, 60, 40)))  # trunk
            size = float(rng.uniform(2.5, 5.0))
            self.objects.append(
                Billboard(VEGETATION, 0, x, float(z) - 0.1, size, size, _vary(rng, VEGETATION, 30), y0=1.8)
            )
        lanes = (-self.road_half / 2, self.road_half / 2)
        for _ in range(int(rng.integers(4, 9))):
            lane_x = float(rng.choice(lanes))
            truck = rng.uniform() < 0.25
            speed = float(rng.uniform(5, 14)) if lane_x > 0 else -float(rng.uniform(5, 14))
            if lane == "right" and lane_x > 0:  # the camera's own lane
                speed = max(speed, ego_speed)
            z = float(rng.uniform(8, 120))
            if truck:
                thing(TRUCK, lane_x + float(rng.uniform(-0.3, 0.3)), z, 2.5, 3.3, speed)
            else:
                thing(CAR, lane_x + float(rng.uniform(-0.3, 0.3)), z, 1.8, 1.5, speed)
        for _ in range(int(rng.integers(3, 9))):
            side = float(rng.choice([-1.0, 1.0]))
            x = side * (self.road_half + float(rng.uniform(0.5, self.walk - 0.3)))
            z = float(rng.uniform(6, 80))
            if rng.uniform() < 0.3:
                thing(BICYCLE, x, z, 1.7, 1.1, float(rng.uniform(2, 5)))
            else:
                thing(PERSON, x, z, 0.6, float(rng.uniform(1.55, 1.9)), float(rng.uniform(-1.5, 1.5)))
        self._add_cut_ins(np.random.default_rng((seed, 1)), cut_ins, n_inst)
        if lead_brakes:
            self._lead_brakes(np.random.default_rng((seed, 2)), n_inst)

    def _lead_brakes(self, rng: np.random.Generator, n_inst: dict[int, int]) -> None:
        """The car ahead in the camera's lane brakes at 4-8 m/s^2 (firm to an emergency stop
        on a dry road) from 0.5-1.5 s into the drive, at the camera's speed until then. It
        is the nearest car or truck within 60 m going the camera's way less than 1 m from
        its line, so that nothing between hides it; where there is none, a car is added
        15-40 m ahead."""
        start, ahead = float(rng.uniform(0.5, 1.5)), float(rng.uniform(15.0, 40.0))
        braking = Braking(start, float(rng.uniform(4.0, 8.0)))
        x, color = self.ego_x + float(rng.uniform(-0.3, 0.3)), _vary(rng, CAR, 50)
        in_lane = [
            i
            for i, ob in enumerate(self.objects)
            if ob.label in (CAR, TRUCK) and ob.speed > 0 and abs(ob.x - self.ego_x) < 1.0 and ob.z < 60.0
        ]
        if in_lane:
            i = min(in_lane, key=lambda i: self.objects[i].z)
            self.objects[i] = dataclasses.replace(self.objects[i], speed=self.ego_speed, braking=braking)
            return
        n_inst[CAR] += 1
        self.objects.append(
            Billboard(CAR, n_inst[CAR], x, ahead, 1.8, 1.5, color, speed=self.ego_speed, braking=braking)
        )

    def _add_cut_ins(self, rng: np.random.Generator, count: int, n_inst: dict[int, int]) -> None:
        """``count`` things that start beside the path, 15-35 m ahead when they set off
        0.4-1.2 s into the drive, and move into it: a person walking across the road at
        1.2-2 m/s, or a car half on the kerb pulling out into the camera's lane over 2-3 s
        (to up to 0.8 m right of the camera's line)."""
        for _ in range(count):
            start = float(rng.uniform(0.4, 1.2))
            ahead = float(rng.uniform(15.0, 35.0))
            if rng.uniform() < 0.5:
                label, side = PERSON, float(rng.choice([-1.0, 1.0]))
                x = side * (self.road_half + float(rng.uniform(0.3, 1.2)))
                to_x, pace = -x, float(rng.uniform(1.2, 2.0))
                width, height, speed = 0.6, float(rng.uniform(1.55, 1.9)), 0.0
                crossing = Crossing(start, abs(to_x - x) / pace, to_x)
            else:
                label, x = CAR, self.road_half + 0.3
                width, height, speed = 1.8, 1.5, float(rng.uniform(3.0, 7.0))
                crossing = Crossing(
                    start, float(rng.uniform(2.0, 3.0)), self.ego_x + float(rng.uniform(0.0, 0.8)), eased=True
                )
            n_inst[label] += 1
            z = self.ego_speed * start + ahead - speed * start  # ``ahead`` m in front at ``start``
            self.objects.append(
                Billboard(
                    label,
                    n_inst[label],
                    x,
                    z,
                    width,
                    height,
                    _vary(rng, label, 50),
                    speed=speed,
                    crossing=crossing,
                )
            )

    def render(self, index: int, fps: float = 17.0) -> FrameGT:
        cam = self.camera
        h, w = cam.height, cam.width
        t = index / fps
        cz = self.ego_speed * t  # camera position along the road
        g = self._ground()
        u, v, ray_x, ray_y = g.u, g.v, g.ray_x, g.ray_y
        rgb, zbuf, label, inst = g.rgb.copy(), g.zbuf.copy(), g.label.copy(), g.inst.copy()
        # the centre line's dashes move with the camera; the road edges do not
        dashes = g.centre.copy()
        dashes[g.centre] = ((g.zg[g.centre] + cz) % 9.0) < 4.5
        rgb[dashes] = (235, 235, 235)
        rgb[g.edges] = (225, 225, 225)

        # facades: planes x = const; only the image columns and rows they can cover are touched
        for wx, z0, z1, height, color in self.facades:
            x = wx - self.ego_x  # from the camera
            za, zb = max(z0 - cz, 0.3), min(z1 - cz, FAR)
            if za >= zb:
                continue
            ua, ub = sorted((cam.cx + cam.f * x / za, cam.cx + cam.f * x / zb))
            va = cam.cy - cam.f * (height - CAMERA_HEIGHT) / zb if height > CAMERA_HEIGHT else cam.cy
            va = min(va, cam.cy - cam.f * (height - CAMERA_HEIGHT) / za)
            vb = cam.cy + cam.f * CAMERA_HEIGHT / za
            region = _clip_region(va, vb, ua, ub, h, w)
            if region is None:
                continue
            rx, ry = ray_x[region], ray_y[region]
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(rx * np.sign(x) > 1e-6, x / rx, np.inf).astype(np.float32)
                y = CAMERA_HEIGHT + ry * z
                m = (z >= za) & (z <= zb) & (y >= 0) & (y <= height)
            if m.any():
                zr, yy = np.where(m, z + cz, 0), np.where(m, y, 0)
                win = ((np.floor(zr * 0.7) % 2 == 0) & (np.floor(yy * 0.8) % 2 == 1)).astype(np.float32)
                self._paint(rgb, zbuf, label, inst, region, m, z, BUILDING, 0, color, shade=1 - 0.35 * win)

        # billboards, any order: the z-buffer resolves occlusion
        for ob in self.objects:
            zo = ob.z_at(t) - cz
            if not 0.5 < zo < FAR:
                continue
            x = ob.x_at(t) - self.ego_x
            u0 = cam.cx + cam.f * (x - ob.width / 2) / zo
            u1 = cam.cx + cam.f * (x + ob.width / 2) / zo
            v0 = cam.cy + cam.f * (CAMERA_HEIGHT - ob.y0 - ob.height) / zo
            v1 = cam.cy + cam.f * (CAMERA_HEIGHT - ob.y0) / zo
            region = _clip_region(v0, v1, u0, u1, h, w)
            if region is None:
                continue
            su = (u[region] + 0.5 - u0) / max(u1 - u0, 1e-6)
            sv = (v[region] + 0.5 - v0) / max(v1 - v0, 1e-6)
            kind = SHAPES.get(ob.label, "box") if ob.label != VEGETATION or ob.y0 > 0 else "box"
            shape, shade = shape_of(kind, su, sv)
            iid = ob.label * 1000 + ob.instance if ob.instance else 0
            self._paint(
                rgb, zbuf, label, inst, region, shape, np.float32(zo), ob.label, iid, ob.color, shade=shade
            )

        depth = np.where(np.isfinite(zbuf) & (label != SKY), zbuf, 0.0).astype(np.float32)
        inst = np.where(inst > 0, inst, label.astype(np.int32))
        fog = np.clip(depth / FAR, 0, 1)[..., None] * 0.5
        # in place, in the same dtypes and order as rgb * (1 - fog) + haze * fog and then
        # clip(rgb + noise): the same pixels, which the bundled weights were trained on
        rgb *= 1 - fog
        rgb += np.array([170, 180, 190], np.float32) * fog
        noise = np.random.default_rng(self.seed * 100003 + index).normal(0, 3, rgb.shape)
        noise += rgb
        image = np.clip(noise, 0, 255, out=noise).astype(np.uint8)
        return FrameGT(image, label, inst, depth)

    def _ground(self) -> _Ground:
        """Sky and ground as the camera sees them: the same in every frame, so drawn once."""
        if self._ground_cache is not None:
            return self._ground_cache
        cam = self.camera
        h, w = cam.height, cam.width
        v, u = np.mgrid[0:h, 0:w].astype(np.float32)
        ray_x = (u - cam.cx) / cam.f  # X / Z along each pixel's ray
        ray_y = (cam.cy - v) / cam.f  # (Y - camera height) / Z
        zbuf = np.full((h, w), np.inf, np.float32)
        label = np.full((h, w), SKY, np.uint8)
        inst = np.zeros((h, w), np.int32)
        rgb = np.empty((h, w, 3), np.float32)
        sky = np.clip((v / max(cam.cy, 1.0))[..., None], 0, 1)
        rgb[:] = np.array([90, 140, 200], np.float32) * (1 - 0.35 * sky) + 70 * sky

        # ground: Z where the ray meets y = 0
        full = (slice(0, h), slice(0, w))
        with np.errstate(divide="ignore", invalid="ignore"):
            zg = np.where(ray_y < 0, CAMERA_HEIGHT / np.maximum(-ray_y, 1e-6), np.inf).astype(np.float32)
            xg = np.where(np.isfinite(zg), ray_x * zg + self.ego_x, np.inf)  # world x
        ground = np.isfinite(zg) & (zg < 4 * FAR)
        ax = np.abs(xg)
        glabel = np.where(
            ax < self.road_half, ROAD, np.where(ax < self.road_half + self.walk, SIDEWALK, TERRAIN)
        )
        self._paint(rgb, zbuf, label, inst, full, ground, zg, glabel.astype(np.uint8), 0, None)
        centre = ground & (np.abs(xg) < 0.08)
        edges = ground & (np.abs(ax - self.road_half) < 0.1)
        for a in (u, v, ray_x, ray_y, rgb, zbuf, label, inst, zg, centre, edges):
            a.flags.writeable = False  # shared by every frame: copied before drawing on
        self._ground_cache = _Ground(u, v, ray_x, ray_y, rgb, zbuf, label, inst, zg, centre, edges)
        return self._ground_cache

    @staticmethod
    def _paint(
        rgb: np.ndarray,
        zbuf: np.ndarray,
        label: np.ndarray,
        inst: np.ndarray,
        region: tuple[slice, slice],
        mask: np.ndarray,
        z: np.ndarray | np.float32,
        lab: int | np.ndarray,
        iid: int,
        color: tuple[int, int, int] | None,
        shade: np.ndarray | None = None,
    ) -> None:
        """Draw ``mask`` (the region's shape) where it is nearer than what is there."""
        zb = zbuf[region]
        m = mask & (z < zb)
        if not m.any():
            return
        # a billboard's depth and label are one number: assigned as such, not broadcast
        zb[m] = z[m] if isinstance(z, np.ndarray) and z.ndim else z
        label[region][m] = lab[m] if isinstance(lab, np.ndarray) else lab
        inst[region][m] = iid
        if color is None:  # ground: colour by class
            labs = np.broadcast_to(np.asarray(lab, np.uint8), mask.shape)
            base = np.zeros((*mask.shape, 3), np.float32)
            for k in (ROAD, SIDEWALK, TERRAIN):
                base[labs == k] = COLORS[k]
            rgb[region][m] = base[m]
        else:
            c = np.asarray(color, np.float32)
            rgb[region][m] = c * (shade[m][:, None] if shade is not None else 1.0)


def _clip_region(v0: float, v1: float, u0: float, u1: float, h: int, w: int) -> tuple[slice, slice] | None:
    iv0, iv1 = max(int(np.floor(v0)), 0), min(int(np.ceil(v1)), h)
    iu0, iu1 = max(int(np.floor(u0)), 0), min(int(np.ceil(u1)), w)
    if iv0 >= iv1 or iu0 >= iu1:
        return None
    return slice(iv0, iv1), slice(iu0, iu1)


def _vary(rng: np.random.Generator, label: int, spread: int) -> tuple[int, int, int]:
    base = np.asarray(COLORS[label]) + rng.integers(-spread, spread + 1, 3)
    return tuple(int(c) for c in np.clip(base, 0, 255))  # type: ignore[return-value]


class SyntheticScene:
    """The live ``synthetic://`` source's renderer: images of a SyntheticDrive (no GT)."""

    def __init__(
        self,
        *,
        height: int = 256,
        width: int = 512,
        seed: int = 0,
        cut_ins: int = 0,
        lane: str = "centre",
        lead_brakes: bool = False,
    ) -> None:
        self.height, self.width, self.seed = height, width, seed
        # the drive loops after ~35 s at 10 m/s, so an endless source never runs off the world
        self._drive = SyntheticDrive(
            height=height,
            width=width,
            seed=seed,
            length=400.0,
            cut_ins=cut_ins,
            lane=lane,
            lead_brakes=lead_brakes,
        )
        self._loop_frames = int(350.0 / self._drive.ego_speed * 17.0)

    @property
    def camera(self) -> Camera:
        return self._drive.camera

    def render(self, index: int, fps: float = 17.0) -> np.ndarray:
        """Frame ``index`` as HxWx3 uint8 RGB."""
        return self._drive.render(index % max(self._loop_frames, 1), fps).image
