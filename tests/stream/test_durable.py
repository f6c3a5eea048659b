"""Recordings reach the disk as they go and when finished, not 30 s later when the kernel
writes them back: a power cut loses a few seconds at most (edge.stream.durable).

A power cut cannot be made here, so os.fsync is watched (and still called): the test
checks which files the sinks flush, and when."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from edge.stream import durable
from edge.stream.partial import partial_path
from edge.stream.sinks import open_sink
from edge.stream.timestamps import folder_partial_timestamps_path, timestamps_path
from tests.stream.test_disk import NOISE, _frames_in, _result


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths os.fsync is called on, in order; flushed every 50 ms."""
    paths: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(durable, "SYNC_EVERY_S", 0.05)
    return paths


def test_a_recording_is_flushed_to_the_disk_as_it_goes_and_when_finished(
    tmp_path: Path, synced: list[str]
) -> None:
    video, frames, objects = tmp_path / "drive.mkv", tmp_path / "frames", tmp_path / "objects.jsonl"
    sinks = [
        open_sink(str(video), fps=10, timing="stamped"),
        open_sink(f"dir://{frames}", timing="stamped"),
        open_sink(str(objects)),
    ]
    writing = [
        str(partial_path(video)),
        str(timestamps_path(partial_path(video))),
        str(frames / "frame_000000.png"),
        str(folder_partial_timestamps_path(frames)),
        str(partial_path(objects)),
    ]
    for seq in range(4):
        sinks[0].write(NOISE[seq], seq, seq * 100_000_000)
        sinks[1].write(NOISE[seq], seq, seq * 100_000_000)
        sinks[2].write_result(_result(seq))  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while not set(writing) <= set(synced):  # every 50 ms, on the sinks' own threads
        assert time.monotonic() < deadline, f"not flushed while written: {set(writing) - set(synced)}"
        time.sleep(0.01)
    for sink in sinks:
        synced.clear()
        sink.close()
        # the content, then the folder once the finished names are in it
        assert synced[-1] == str(tmp_path if sink is not sinks[1] else frames), synced
    assert _frames_in(video) == 4 and len(objects.read_text().splitlines()) == 4
    names = [*(f"frame_{i:06d}.png" for i in range(4)), "timestamps.txt"]
    assert sorted(p.name for p in frames.iterdir()) == names


def test_a_video_flushes_its_content_before_its_name(tmp_path: Path, synced: list[str]) -> None:
    video = tmp_path / "drive.mkv"
    sink = open_sink(str(video), fps=10, timing="stamped")
    sink.write(NOISE[0], 0, 0)
    synced.clear()
    sink.close()
    partial = partial_path(video)
    tail = [p for p in synced if p in (str(partial), str(timestamps_path(partial)), str(tmp_path))]
    assert tail[-3:] == [str(partial), str(timestamps_path(partial)), str(tmp_path)]
