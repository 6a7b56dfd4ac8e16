"""The sd_notify protocol, spoken directly: one datagram per message to ``$NOTIFY_SOCKET``.

systemd reads ``READY=1``, ``RELOADING=1``, ``STOPPING=1``, ``STATUS=...`` and ``WATCHDOG=1``
from the socket named in the environment (a leading ``@`` means the abstract namespace).
Outside systemd there is no socket and every call does nothing.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    """Sends state changes to the service manager, if there is one."""

    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self._address: str | None = None
        if address:
            self._address = "\0" + address[1:] if address.startswith("@") else address

    @property
    def enabled(self) -> bool:
        """Whether a service manager listens."""
        return self._address is not None

    def send(self, **fields: object) -> None:
        """One message, e.g. ``send(READY=1, STATUS="idle")``; nothing outside systemd."""
        if self._address is None:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(self._address)
            sock.sendall(message)

    def ready(self, status: str) -> None:
        """Start-up (or a reload) is complete."""
        self.send(READY=1, STATUS=status)

    def reloading(self) -> None:
        """A reload begins; systemd wants the monotonic time with it."""
        self.send(RELOADING=1, MONOTONIC_USEC=time.monotonic_ns() // 1000)

    def stopping(self) -> None:
        """Shutdown begins."""
        self.send(STOPPING=1, STATUS="stopping")

    def status(self, text: str) -> None:
        """What the daemon is doing now."""
        self.send(STATUS=text)

    def watchdog(self) -> None:
        """Still alive."""
        self.send(WATCHDOG=1)


def watchdog_interval() -> float | None:
    """Half the watchdog timeout systemd asked for (seconds), or None without a watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000 / 2
