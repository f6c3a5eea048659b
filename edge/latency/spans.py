"""The last spans of a run, for its Chrome trace and JSON lines, in numpy columns.

As Python tuples a span took about 200 bytes (five objects, three of them large ints), so
the 200,000 a tracker keeps held 40 MB from the eighteenth minute of a 30 fps run on; as
columns they take 30 bytes each, 6 MB, which a Jetson's shared memory notices less.
"""

from __future__ import annotations

import numpy as np


class SpanLog:
    """A ring of the last ``size`` spans: frame, stage, start and end (ns), thread."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a span log holds at least 1 span, got {size}")
        self.size = size
        self._seq = np.zeros(size, np.int64)
        self._start = np.zeros(size, np.int64)
        self._end = np.zeros(size, np.int64)
        self._stage = np.zeros(size, np.int16)
        self._thread = np.zeros(size, np.int32)
        self._stages: dict[str, int] = {}
        self._threads: dict[int, int] = {}
        self.appended = 0  # every span ever appended; the log holds the last ``size``

    def append(self, seq: int, stage: str, start_ns: int, end_ns: int, thread: int) -> None:
        i = self.appended % self.size
        self._seq[i], self._start[i], self._end[i] = seq, start_ns, end_ns
        self._stage[i] = self._stages.setdefault(stage, len(self._stages))
        self._thread[i] = self._threads.setdefault(thread, len(self._threads))
        self.appended += 1

    def copy(self) -> SpanLog:
        """A copy to read while this one goes on (a millisecond for a full log)."""
        other = SpanLog.__new__(SpanLog)
        other.size, other.appended = self.size, self.appended
        other._seq, other._start, other._end = self._seq.copy(), self._start.copy(), self._end.copy()
        other._stage, other._thread = self._stage.copy(), self._thread.copy()
        other._stages, other._threads = dict(self._stages), dict(self._threads)
        return other

    def __len__(self) -> int:
        return min(self.appended, self.size)

    def spans(self) -> list[tuple[int, str, int, int, int]]:
        """The spans held, oldest first: (frame, stage, start ns, end ns, thread ident)."""
        n = len(self)
        order = (np.arange(n) + (self.appended - n)) % self.size
        stages = list(self._stages)
        threads = list(self._threads)
        return [
            (seq, stages[stage], start, end, threads[thread])
            for seq, stage, start, end, thread in zip(
                self._seq[order].tolist(),
                self._stage[order].tolist(),
                self._start[order].tolist(),
                self._end[order].tolist(),
                self._thread[order].tolist(),
                strict=True,
            )
        ]
