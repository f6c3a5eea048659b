"""systemd's notification protocol, spoken to a real AF_UNIX datagram socket as systemd's."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.util.systemd import notify, notify_socket, watchdog_s


class Listener:
    """A datagram socket that listens as systemd's does; ``messages()`` what came."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setblocking(False)

    def messages(self) -> list[str]:
        got = []
        while True:
            try:
                got.append(self.sock.recv(65536).decode())
            except BlockingIOError:
                return got

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    """A listening socket at a path, named by $NOTIFY_SOCKET (a short one: AF_UNIX paths
    hold 107 bytes, and pytest's tmp_path may be longer)."""
    with tempfile.TemporaryDirectory(prefix="edge-sd-") as folder:
        path = str(Path(folder) / "notify")
        listener = Listener(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        yield listener
        listener.close()


def test_notify_sends_one_datagram_of_assignments(systemd_socket: Listener) -> None:
    assert notify("READY=1", "STATUS=frame 12  17.0 fps\nsecond line")
    assert systemd_socket.messages() == ["READY=1\nSTATUS=frame 12  17.0 fps second line"]


def test_notify_reaches_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"edge-test-{os.getpid()}"
    listener = Listener("\0" + name)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify_socket() == "\0" + name
        assert notify("WATCHDOG=1")
        assert listener.messages() == ["WATCHDOG=1"]
    finally:
        listener.close()


def test_without_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify_socket() is None and not notify("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")  # a kind of address this does not speak
    assert notify_socket() is None and not notify("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))  # systemd went away: no error
    assert not notify("READY=1")


def test_a_listener_that_stopped_reading_does_not_hold_the_sender(systemd_socket: Listener) -> None:
    """Its queue full, a datagram waits NOTIFY_TIMEOUT_S and is dropped: the watchdog's
    looks and the run's last STOPPING=1 once hung there (a test's listener read only after
    the run's output ended)."""
    import threading

    queue = int(Path("/proc/sys/net/unix/max_dgram_qlen").read_text())
    sent: list[bool] = []
    sender = threading.Thread(
        target=lambda: sent.extend(notify(f"STATUS={i}") for i in range(queue + 3)), daemon=True
    )
    sender.start()
    sender.join(timeout=60)
    assert not sender.is_alive(), "notify blocked on a full queue"
    got = systemd_socket.messages()
    assert sent.count(True) == len(got) >= 1 and not sent[-1]
    assert got == [f"STATUS={i}" for i in range(len(got))]
    assert notify("STOPPING=1")  # read again, the queue has room


def test_the_watchdog_period_is_this_process_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert watchdog_s() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert watchdog_s() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_s() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # set for another process
    assert watchdog_s() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    for bad in ("0", "-5", "thirty", ""):
        monkeypatch.setenv("WATCHDOG_USEC", bad)
        assert watchdog_s() is None
