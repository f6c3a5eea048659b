"""The dir:// sink: a folder of PNG frames, with their capture times beside them when the
run keeps them (edge.stream.timestamps). Opened through edge.stream.sinks.open_sink."""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge.errors import SinkError, SinkStopped
from edge.stream.disk import DEFAULT_KEEP_FREE, DiskRoom, checked_output
from edge.stream.durable import sync_folder
from edge.stream.timestamps import TimesFile, folder_partial_timestamps_path, folder_timestamps_path


class DirSink:
    """One PNG a frame (exact pixels), ``frame_000000.png`` on. With ``stamped`` (edge record,
    live runs) each frame's capture time goes into timestamps.txt in the folder, for
    --realtime to replay the folder at (edge.stream.timestamps): written a line a frame into
    a hidden file that the sink's close moves into place, so a run that dies leaves them.

    A folder that holds frames of an earlier run is refused: this run's frames would replace
    some of them and leave the others among its own."""

    def __init__(
        self,
        uri: str,
        folder: Path,
        *,
        view: str = "composite",
        stamped: bool = False,
        keep_free: int = DEFAULT_KEEP_FREE,
        make_room: Callable[[int], int] | None = None,
        times_origin_ns: int | None = None,
    ) -> None:
        """``keep_free``, ``make_room``: as DiskRoom's. ``times_origin_ns``: a segment's
        recording's first capture time (TimesFile's origin)."""
        checked_output(uri, folder, folder=True)
        refuse_earlier_frames(uri, folder)
        self.uri, self.folder, self.view, self.stamped = uri, folder, view, stamped
        self.frames = 0
        self._made = False
        self._room = DiskRoom(uri=uri, path=folder, keep_free=keep_free, make_room=make_room)
        self._times = (
            TimesFile(
                folder_partial_timestamps_path(folder), refused=self._times_refused, origin_ns=times_origin_ns
            )
            if stamped
            else None
        )
        self._unsynced: deque[Path] = deque()  # frames written since the last flush to the disk

    @property
    def timestamps_path(self) -> Path | None:
        return folder_timestamps_path(self.folder) if self.stamped else None

    @property
    def path(self) -> Path:
        """The folder (as a segment of edge.stream.segments is named)."""
        return self.folder

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        import cv2

        if self.stamped and t_capture_ns is None:
            raise SinkError(f"sink {self.uri!r} keeps capture times and frame {seq} has none")
        # a PNG is at most a little over the raw pixels; the capture times take a line a frame
        self._room.check(image.nbytes + (4 << 10) + 32 * (self.frames + 1), kept=self.frames)
        if not self._made:  # at the first frame, as the video sink does: a refused run makes nothing
            self.folder.mkdir(parents=True, exist_ok=True)
            self._made = True
            self._room.flush_as_written(self._written)  # to the disk as it goes, for a power cut
        target = self.folder / f"frame_{seq:06d}.png"
        tmp = self.folder / f".frame_{seq:06d}.partial.png"
        encoded, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not encoded:
            raise SinkError(f"sink {self.uri!r}: OpenCV cannot encode frame {seq} as a PNG")
        try:  # written here, not by cv2.imwrite, which says nothing of why it failed
            with tmp.open("wb") as file:
                file.write(png.data)
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):  # what was written of it
                tmp.unlink()
            raise self._room.refused(exc, f"cannot write {str(target)!r}", kept=self.frames) from exc
        self._unsynced.append(target)
        self.frames += 1
        if self._times is not None and t_capture_ns is not None:
            self._times.add(t_capture_ns)

    def _times_refused(self, exc: OSError, what: str) -> SinkError:
        # the times are added after the frame they are of: that frame is not kept whole
        return self._room.refused(exc, what, kept=self.frames - 1)

    def _written(self) -> list[Path]:
        """The frames written since the last call, the capture times, and the folder."""
        frames = [self._unsynced.popleft() for _ in range(len(self._unsynced))]
        return [*frames, *([self._times.path] if self._times is not None else []), self.folder]

    def close(self) -> None:
        if not self._made:
            return
        failed = self._room.flush_last()
        if failed:
            if self._times is not None:  # left where a folder read back finds them, with a warning
                with contextlib.suppress(SinkError):
                    self._times.close()
            raise SinkStopped(
                f"sink {self.uri!r}: {failed}; the {self.frames} frame(s) in {str(self.folder)!r} may not "
                "all be on it"
            )
        if self._times is not None:
            self._times.finish(folder_timestamps_path(self.folder))
            sync_folder(folder_timestamps_path(self.folder), uri=self.uri)


def refuse_earlier_frames(uri: str, folder: Path) -> None:
    """SinkError when ``folder`` holds frames a DirSink wrote before (frame_000000.png …),
    or the capture times of such frames without them (timestamps.txt)."""
    from edge.util.fs import natural_key

    try:
        earlier = [p.name for p in sorted(folder.glob("frame_*.png"), key=natural_key)]
    except OSError:  # not a folder, or not one to read: checked_output has said what is wrong
        return
    if earlier:
        shown = earlier[0] if len(earlier) == 1 else f"{earlier[0]} … {earlier[-1]}"
        raise SinkError(
            f"sink {uri!r}: {str(folder)!r} already holds {len(earlier)} frame(s) of an earlier run "
            f"({shown}); this run's frames would replace some of them and leave the rest among its own: "
            "give another folder, or move those away first"
        )
    times = folder_timestamps_path(folder)
    if os.path.lexists(times):
        # a run that keeps no times would leave them, and --realtime replay its frames at them
        raise SinkError(
            f"sink {uri!r}: {str(folder)!r} already holds {times.name}, the capture times of an earlier "
            "run's frames, without those frames; they would be read as the times of this run's: give "
            "another folder, or move it away first"
        )
