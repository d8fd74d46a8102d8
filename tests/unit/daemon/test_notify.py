"""The sd_notify client against a real AF_UNIX datagram socket, as systemd listens."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from calsync.daemon.notify import SystemdNotifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_ready_status_watchdog_and_stopping_arrive_as_datagrams(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": path})
    assert notifier.ready("started:\n 3 mailboxes")
    assert sock.recv(4096).decode() == "READY=1\nSTATUS=started: 3 mailboxes"
    assert notifier.status("2 healthy, 1 failing")
    assert sock.recv(4096).decode() == "STATUS=2 healthy, 1 failing"
    assert notifier.watchdog()
    assert sock.recv(4096).decode() == "WATCHDOG=1"
    assert notifier.stopping("stopping: 0 running")
    assert sock.recv(4096).decode() == "STOPPING=1\nSTATUS=stopping: 0 running"


def test_abstract_socket_names_start_with_at() -> None:
    name = f"calsync-test-{id(object())}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        assert SystemdNotifier("@" + name).watchdog()
        assert sock.recv(64) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_without_notify_socket_or_with_a_dead_one_nothing_breaks(tmp_path: Path) -> None:
    assert not SystemdNotifier.from_environ({}).ready("x")
    assert not SystemdNotifier(str(tmp_path / "gone.sock")).watchdog()
