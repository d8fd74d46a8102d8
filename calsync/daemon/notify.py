"""A small client of systemd's notification protocol (``sd_notify``).

Hand-written on purpose: the protocol is one ``AF_UNIX`` datagram of ``KEY=VALUE`` lines sent to
the socket named by ``$NOTIFY_SOCKET`` (a path, or an abstract socket when it starts with
``@``). The alternatives are ``python-systemd`` (needs libsystemd headers and a compiler at
install time, which the slim image and pip-only installs do not have) and small PyPI packages
that are unmaintained; these 40 lines have no dependency and are tested against a real socket.

Without ``$NOTIFY_SOCKET`` (not started by systemd with ``Type=notify``) every call does nothing.
A failed send is never fatal: systemd's own timeouts notice a daemon that stopped talking.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Mapping


class SystemdNotifier:
    def __init__(self, address: str | None) -> None:
        self._address = address or None
        self.sent: list[str] = []  # what was sent (tests, and `STATUS=` for the logs)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SystemdNotifier:
        return cls(environ.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *lines: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram; True when it was sent."""
        if self._address is None:
            return False
        target = self._address
        if target.startswith("@"):
            target = "\0" + target[1:]
        message = "\n".join(lines)
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(target)
            sock.sendall(message.encode())
            self.sent.append(message)
            return True
        return False

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={_one_line(status)}")

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={_one_line(status)}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify("STOPPING=1", f"STATUS={_one_line(status)}")


def _one_line(text: str) -> str:
    return " ".join(text.split())
