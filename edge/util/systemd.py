"""systemd's notification protocol (sd_notify), for a run started as a service.

A unit of ``Type=notify`` is told when the run is ready and how it is doing (``STATUS=``,
what ``systemctl status`` shows), and with ``WatchdogSec=`` it expects ``WATCHDOG=1`` at
least that often, else it kills and restarts the service: the way out of a run that hangs
(a camera driver or a disk that never returns) rather than exits. The protocol is a
datagram of ``KEY=value`` lines to the AF_UNIX socket named by ``$NOTIFY_SOCKET``; outside
systemd that is unset and nothing is sent.
"""

from __future__ import annotations

import contextlib
import os
import socket

# how long a datagram may wait for room in systemd's queue: a listener that has stopped
# reading (its queue holds net.unix.max_dgram_qlen, 10 by default) would otherwise block
# the sender for good, the run's last STOPPING=1 and all
NOTIFY_TIMEOUT_S = 0.25


def notify_socket() -> str | None:
    """The socket systemd listens on for this service, None when not run by systemd (or
    the address is of a kind this does not speak, such as vsock)."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):  # the abstract namespace
        return "\0" + address[1:]
    return address if address.startswith("/") else None


def notify(*assignments: str) -> bool:
    """Send ``assignments`` (``READY=1``, ``STATUS=…``) in one datagram; whether it was
    sent. A socket that is gone, refuses or has had no room for NOTIFY_TIMEOUT_S is not
    an error: the service goes on as it would have without systemd."""
    address = notify_socket()
    if address is None or not assignments:
        return False
    message = "\n".join(a.replace("\n", " ") for a in assignments).encode()
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.settimeout(NOTIFY_TIMEOUT_S)
        sock.sendto(message, address)
        return True
    return False


def watchdog_s() -> float | None:
    """The watchdog period systemd set for this process (``WatchdogSec=``), seconds; None
    when it set none, or set it for another process (``$WATCHDOG_PID``)."""
    pid = os.environ.get("WATCHDOG_PID")
    if pid is not None and pid != str(os.getpid()):
        return None
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 else None
