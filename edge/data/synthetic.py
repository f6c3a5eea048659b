"""Procedural driving scenes: a forward camera on a road with buildings, trees and cars.

Deterministic for a given seed and frame index, cheap enough to render in real time,
so the runtime has a source that needs no files.
"""

from __future__ import annotations

import numpy as np


class SyntheticScene:
    def __init__(self, *, height: int = 256, width: int = 512, seed: int = 0) -> None:
        self.height, self.width, self.seed = height, width, seed
        rng = np.random.default_rng(seed)
        self._buildings = [
            (rng.uniform(0, 400), rng.uniform(0.15, 0.45), rng.integers(60, 200, 3)) for _ in range(24)
        ]
        self._cars = [
            (rng.uniform(-0.8, 0.8), rng.uniform(0, 60), rng.uniform(-4, 6), rng.integers(0, 255, 3))
            for _ in range(5)
        ]

    def render(self, index: int, fps: float = 17.0) -> np.ndarray:
        """Frame ``index`` as HxWx3 uint8 RGB."""
        import cv2

        h, w = self.height, self.width
        t = index / fps
        horizon = int(h * 0.45)
        img = np.empty((h, w, 3), np.uint8)
        sky = np.linspace(0, 1, horizon)[:, None]
        img[:horizon] = (np.array([70, 130, 180]) * (1 - 0.4 * sky) + 60 * sky).astype(np.uint8)[:, None, :]
        img[horizon:] = (90, 110, 70)  # terrain
        cx = w // 2
        road = np.array([[cx - 8, horizon], [cx + 8, horizon], [w + w // 3, h], [-w // 3, h]], np.int32)
        walk = np.array([[cx - 14, horizon], [cx + 14, horizon], [w + w // 2, h], [-w // 2, h]], np.int32)
        cv2.fillPoly(img, [walk], (180, 160, 170))
        cv2.fillPoly(img, [road], (110, 100, 110))
        speed = 12.0  # m/s: everything scrolls toward the camera
        for x0, height_frac, color in self._buildings:
            depth = (x0 - speed * t) % 400 + 8
            scale = 40.0 / depth
            bw, bh = int(w * 0.12 * scale) + 2, int(h * height_frac * scale * 2) + 2
            for side in (-1, 1):
                x = int(cx + side * (w * 0.9 * scale + 14)) - (bw if side < 0 else 0)
                cv2.rectangle(
                    img,
                    (x, horizon - bh),
                    (x + bw, horizon + int(8 * scale)),
                    tuple(int(c) for c in color),
                    -1,
                )
        for k in range(12):  # lane dashes
            z = (k * 6 - speed * t) % 72 + 2
            y0, y1 = horizon + int(h * 0.55 * 2 / z), horizon + int(h * 0.55 * 2 / (z + 2.5))
            cv2.line(img, (cx, min(y0, h - 1)), (cx, min(y1, h - 1)), (240, 240, 240), max(1, int(6 / z)))
        for lane, z0, v, color in sorted(self._cars, key=lambda c: -((c[1] + c[2] * t) % 60)):
            z = (z0 + v * t) % 60 + 4
            scale = 12.0 / z
            cw, ch = int(w * 0.11 * scale) + 2, int(h * 0.1 * scale) + 2
            x = int(cx + lane * w * 0.5 * scale * 1.6) - cw // 2
            y = horizon + int(h * 0.55 * 2 / z)
            cv2.rectangle(img, (x, y - ch), (x + cw, y), tuple(int(c) for c in color), -1)
            cv2.rectangle(img, (x + cw // 6, y - ch), (x + cw - cw // 6, y - ch // 2), (40, 50, 60), -1)
        noise = np.random.default_rng(self.seed * 100003 + index).integers(0, 6, img.shape, dtype=np.uint8)
        return cv2.add(img, noise)
