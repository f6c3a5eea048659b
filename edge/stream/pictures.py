"""A source whose frames' pictures are changed as they are read (--undistort, --flip): the
source's own in everything else (its rate, its capture thread's counts, its recording's
timestamps), but for the camera it knows, which the change may no longer match."""

from __future__ import annotations

from typing import Any

import numpy as np


class PictureSource:
    """``source`` with each frame's picture through ``change`` (subclasses), and its camera
    as ``hfov_deg`` and ``ground`` say (None: not known after the change)."""

    def __init__(self, source: Any, *, hfov_deg: float | None, ground: Any) -> None:
        self._source = source
        self.hfov_deg = hfov_deg
        self.ground = ground

    def change(self, image: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def read(self) -> Any:
        frame = self._source.read()
        if frame is not None:
            frame.image = self.change(frame.image)
        return frame

    def close(self) -> None:
        self._source.close()

    def __getattr__(self, name: str) -> Any:  # the source's own: uri, fps, live, timestamps…
        return getattr(self._source, name)
