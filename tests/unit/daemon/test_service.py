"""The daemon's lifecycle in-process (no tenants): READY, watchdog, heartbeat, stop, exit 70."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from calsync.config.load import validate
from calsync.daemon.notify import SystemdNotifier
from calsync.daemon.service import Daemon
from calsync.store.sql import SqlStore


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    yield sock, path
    sock.close()


def start(tmp_path: Path, notify_path: str) -> tuple[Daemon, threading.Thread, list[int]]:
    config = validate({"store": {"url": f"sqlite:///{tmp_path / 'calsync.db'}"}})
    daemon = Daemon(config, notifier=SystemdNotifier(notify_path), heartbeat_s=0.05, tick_s=0.02)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run(install_signals=False)))
    thread.start()
    return daemon, thread, codes


def receive_until(sock: socket.socket, prefix: str) -> str:
    while True:
        message = sock.recv(4096).decode()
        if message.startswith(prefix):
            return message


def test_ready_watchdog_heartbeat_and_a_clean_stop(
    tmp_path: Path, notify: tuple[socket.socket, str]
) -> None:
    sock, path = notify
    with capture_logs() as logs:
        daemon, thread, codes = start(tmp_path, path)
        assert receive_until(sock, "READY=1").startswith("READY=1\nSTATUS=started")
        receive_until(sock, "WATCHDOG=1")
        receive_until(sock, "STATUS=0 healthy")
        daemon.request_stop("test")
        assert receive_until(sock, "STOPPING=1")
        thread.join(10)
    assert codes == [0]
    events = [e["event"] for e in logs]
    assert events[0] == "daemon_started" and events[-1] == "daemon_stopped"
    store = SqlStore(f"sqlite:///{tmp_path / 'calsync.db'}")
    try:
        beat = store.read_heartbeat()
        assert beat is not None and datetime.now(UTC) - beat < timedelta(seconds=30)
        store.store_lock().release()  # the daemon released the store lock
    finally:
        store.close()


def test_a_dead_internal_thread_stops_the_daemon_with_exit_70(
    tmp_path: Path, notify: tuple[socket.socket, str]
) -> None:
    sock, path = notify
    with capture_logs() as logs:
        daemon, thread, codes = start(tmp_path, path)
        receive_until(sock, "READY=1")
        assert daemon.jobs is not None
        daemon.jobs.fatal = RuntimeError("the scheduler thread died")
        thread.join(10)
    assert codes == [70]
    assert any(e["event"] == "internal_error" for e in logs)
    assert logs[-1]["event"] == "daemon_stopped" and logs[-1]["exit_code"] == 70
