"""The heartbeat file a run writes for a health check, and `edge alive` reading it."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import edge.stream.watchdog as watchdog_module
from edge.cli import main
from edge.errors import ConfigError
from edge.stream.heartbeat import Heartbeat, alive, boot_id, check_unshared, clock
from tests.stream.test_pipeline import CLI_ENV, ROOT
from tests.stream.test_watchdog import held_run, until


def test_a_heartbeat_says_when_the_run_last_made_progress(tmp_path: Path) -> None:
    path = tmp_path / "run" / "alive.json"  # its folder made on the first beat
    beats = Heartbeat(path)
    beats.beat(fed=True, status="frame 12  17.0 fps")
    fine, line = alive(path, within_s=5)
    assert fine and line.startswith(f"pid {os.getpid()}, progress 0 s ago: frame 12  17.0 fps")
    content = json.loads(path.read_text())
    assert content["boot_id"] == boot_id() and content["stuck"] is None
    time.sleep(0.3)
    beats.beat(fed=False, status="frame 13", stuck="sink 'a.mkv' has been writing frame 13 for 31 s")
    fine, line = alive(path, within_s=0.2)  # written now, but fed 0.3 s ago
    assert not fine and "has made no progress for 0 s (over 0.2 s); stuck: sink 'a.mkv'" in line
    assert alive(path, within_s=5)[0]
    beats.beat(fed=True, status="frame 14")
    assert alive(path, within_s=0.2)[0]
    assert [p.name for p in path.parent.iterdir()] == ["alive.json"]  # no temporary file left
    beats.close()
    fine, line = alive(path)
    assert not fine and line == f"{path} does not exist: no run writes it (not started yet, or ended)"


def test_a_heartbeat_not_of_this_boot_or_not_one_is_not_alive(tmp_path: Path) -> None:
    path = tmp_path / "alive.json"
    path.write_text(json.dumps({"pid": 7, "boot_id": "another", "fed_at": clock(), "status": ""}))
    assert alive(path) == (False, f"{path} was written before this machine last started (pid 7)")
    path.write_text("{not json")
    fine, line = alive(path)
    assert not fine and line.startswith(f"{path} cannot be read as an edge heartbeat: ")
    path.write_text('{"pid": 7}')
    assert alive(path) == (False, f"{path} is not an edge heartbeat (no fed_at): {{'pid': 7}}")


def test_a_heartbeat_another_live_run_writes_is_refused_and_left_alone(tmp_path: Path) -> None:
    """Another process of this boot that wrote the file lately is refused; one that ended
    (a run the watchdog killed), one from another boot, a stale beat, this process's own, or
    one written before the process of its pid began is taken over. A run ending does not
    remove a file another run wrote since."""
    path = tmp_path / "alive.json"

    def beat_of(pid: int, *, ago_s: float = 0.0, boot: str | None = None) -> None:
        at = clock() - ago_s
        beat = {"pid": pid, "boot_id": boot or boot_id(), "fed_at": at, "written_at": at}
        path.write_text(json.dumps(beat))

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        beat_of(other.pid)
        with pytest.raises(ConfigError) as refused:
            check_unshared(path)
        assert str(refused.value) == (
            f"the heartbeat {str(path)!r} is being written by another run (pid {other.pid}, 0 s ago): the "
            "two would overwrite each other's and the first to end would remove it; give each run a file "
            "of its own"
        )
        beats = Heartbeat(path)
        beats.close()
        assert json.loads(path.read_text())["pid"] == other.pid, "another run's file is left"
        for pid, ago_s, boot in [
            (other.pid, 45.0, None),
            (other.pid, 0.0, "another"),
            (os.getpid(), 0.0, None),
            (other.pid, 10.0, None),  # written before it began: its pid was another run's (a restart)
        ]:
            beat_of(pid, ago_s=ago_s, boot=boot)
            check_unshared(path)
    finally:
        other.kill()
        other.wait()
    beat_of(other.pid)
    check_unshared(path)  # it ended


def test_a_heartbeat_that_cannot_be_written_is_said_once_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    beats = Heartbeat(tmp_path / "file" / "alive.json")  # a folder that is a file
    for _ in range(3):
        beats.beat(fed=True, status="")
    said = capsys.readouterr().err
    assert said.count("warning: the heartbeat ") == 1 and "cannot be written" in said
    beats.close()


def test_a_heartbeat_whose_disk_does_not_answer_holds_up_no_beat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The temporary file is a FIFO nobody reads, so its write waits as for a disk that does
    not answer: each beat returns within a second (the watch that beats feeds systemd's
    watchdog too), the wait is said once, and once the write ends the file is written again."""
    path = tmp_path / "alive.json"
    beats = Heartbeat(path)
    temporary = tmp_path / f".alive.json.{os.getpid()}.tmp"
    os.mkfifo(temporary)
    beating = threading.Thread(
        target=lambda: [beats.beat(fed=True, status=f"frame {n}") for n in range(3)], daemon=True
    )
    beating.start()
    # a hang guard, not a speed target: the old beat waited for the write, here for ever
    beating.join(timeout=60)
    assert not beating.is_alive(), "a beat waited for the write that does not end"
    said = capsys.readouterr().err
    assert said.count(f"warning: the heartbeat {path} has waited over 1 s for its disk") == 1, said
    with open(temporary) as fifo:  # the disk answers
        assert json.loads(fifo.read())["status"] == "frame 0"
    assert until(lambda: not temporary.exists(), timeout_s=5)  # renamed into place
    # the FIFO is now the file, which a check refuses without opening it for good; a beat
    # replaces it once the write that waited has ended (not yet, maybe, at the first beat)
    fine, line = alive(path)
    assert not fine and line.endswith("it is a FIFO, not a regular file"), line
    assert until(lambda: beats.beat(fed=True, status="frame 4") or alive(path)[0], timeout_s=10)
    fine, line = alive(path)
    assert fine and line.endswith(": frame 4"), line
    beats.close()
    assert not path.exists()


def test_a_held_sink_stops_the_heartbeat_until_it_writes_again(
    tiny_engines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sink held 2.5 s at its first write (looks every 0.25 s, stuck after 0.5 s): the
    heartbeat read during the hold says stuck, after it alive; the file is gone at the end.
    Every file read is one the heartbeat schema (edge schema heartbeat) takes, stuck or not."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.setattr(watchdog_module, "STUCK_AFTER_S", 0.5)
    monkeypatch.setattr(watchdog_module, "LOOK_EVERY_S", 0.25)
    path = tmp_path / "alive.json"
    seen: list[tuple[bool, str]] = []
    files: list[str] = []
    done = threading.Event()

    def check() -> None:
        while not done.is_set():
            if path.exists():
                seen.append(alive(path, within_s=0.6))
                with contextlib.suppress(FileNotFoundError):  # the run ended meanwhile
                    files.append(path.read_text())
            time.sleep(0.1)

    checker = threading.Thread(target=check)
    checker.start()
    try:
        held_run(tiny_engines, frames=60, held_s=2.5, every_s=0.25, heartbeat=path)
    finally:
        done.set()
        checker.join()
    stuck = [i for i, (fine, line) in enumerate(seen) if not fine and "stuck: sink 'null://held'" in line]
    fine_after = [i for i, (fine, _) in enumerate(seen) if fine and stuck and i > stuck[-1]]
    assert stuck and fine_after, seen
    assert not path.exists()
    if importlib.util.find_spec("jsonschema") is not None:
        from edge.schemas import check_document

        assert [check_document("heartbeat", text) for text in files] == [None] * len(files)
        assert {json.loads(text)["stuck"] is None for text in files} == {True, False}


def test_edge_alive_answers_a_health_check_of_a_running_edge_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real processes: edge record from the 127.0.0.1 camera with --heartbeat, and edge alive
    asked while it records (exit 0) and after Ctrl-C ended it (exit 1, no file); another
    edge record given the same file meanwhile is refused."""
    from tests.stream.test_capture import Camera

    path = tmp_path / "alive.json"
    camera = Camera(fps=30)
    edge = [sys.executable, "-m", "edge.cli"]
    argv = [
        *edge,
        "record",
        camera.url,
        str(tmp_path / "drive.mkv"),
        "--duration",
        "8",
        "--heartbeat",
        str(path),
    ]
    run = subprocess.Popen(
        argv, cwd=ROOT, env=CLI_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:

        def asked() -> subprocess.CompletedProcess[str]:
            check = [*edge, "alive", str(path), "--within", "10"]
            return subprocess.run(check, cwd=ROOT, env=CLI_ENV, capture_output=True, text=True, timeout=60)

        answers: list[subprocess.CompletedProcess[str]] = []
        assert until(lambda: answers.append(asked()) or answers[-1].returncode == 0, timeout_s=30), answers
        assert (
            answers[-1].stdout.startswith(f"alive: pid {run.pid}, progress ")
            and "recording: " in answers[-1].stdout
        )
        # a second run given the same file is refused before it starts, and leaves it be
        second = ["record", "synthetic://?frames=2", str(tmp_path / "b.mkv"), "--heartbeat", str(path)]
        assert main(second) == 2
        assert f"is being written by another run (pid {run.pid}, " in capsys.readouterr().err
        assert path.exists() and not (tmp_path / "b.mkv").exists()
        run.send_signal(signal.SIGINT)
        _, said = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
        camera.unplug()
    assert run.returncode == 130, said
    after = asked()
    assert (
        after.returncode == 1
        and after.stdout
        == f"not alive: {path} does not exist: no run writes it (not started yet, or ended)\n"
    )
