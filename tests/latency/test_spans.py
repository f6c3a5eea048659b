from __future__ import annotations

import pytest

from edge.latency.spans import SpanLog


def test_the_log_keeps_the_last_spans_in_order_and_exact() -> None:
    log = SpanLog(3)
    big = 2**62  # perf_counter_ns values of a machine up for years stay exact
    for i in range(7):
        log.append(i, "depth" if i % 2 else "panoptic", big + i, big + 10 * i, 140_000_000 + i % 2)
    assert len(log) == 3 and log.appended == 7
    assert log.spans() == [
        (4, "panoptic", big + 4, big + 40, 140_000_000),
        (5, "depth", big + 5, big + 50, 140_000_001),
        (6, "panoptic", big + 6, big + 60, 140_000_000),
    ]
    short = SpanLog(5)
    short.append(0, "sink", 1, 2, 9)
    assert short.spans() == [(0, "sink", 1, 2, 9)] and len(short) == 1


def test_a_copy_does_not_move_with_the_log() -> None:
    log = SpanLog(2)
    log.append(0, "a", 0, 1, 1)
    copy = log.copy()
    log.append(1, "b", 1, 2, 2)
    log.append(2, "c", 2, 3, 3)
    assert copy.spans() == [(0, "a", 0, 1, 1)]
    assert log.spans() == [(1, "b", 1, 2, 2), (2, "c", 2, 3, 3)]


def test_a_span_takes_30_bytes() -> None:
    log = SpanLog(200_000)
    held = sum(a.nbytes for a in (log._seq, log._start, log._end, log._stage, log._thread))
    assert held == 30 * 200_000
    with pytest.raises(ValueError, match="at least 1 span, got 0"):
        SpanLog(0)
