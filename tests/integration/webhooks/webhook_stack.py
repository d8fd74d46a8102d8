"""Helpers of the webhook tests: a free port, the simulator's subscription admin API, a daemon
with ``[webhooks]`` on for a Graph tenant, waiting on conditions (never on sleeps)."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calsync.config import load_config
from calsync.daemon.service import Daemon
from calsync.sim import SimHandle
from calsync.sim.tls import make_ca, make_server_cert

CLIENT_STATE = "webhook-test-client-state-7d1f"
PATH = "/graph/notifications"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        tick.wait(0.02)


def subscriptions(sim: SimHandle) -> list[dict[str, Any]]:
    """The simulator's live Graph subscriptions (with delivery counts)."""
    result: list[dict[str, Any]] = sim.admin._call("GET", "/graph/subscriptions")
    return result


def sim_settings(sim: SimHandle, **values: Any) -> None:
    sim.admin._call("POST", "/graph/subscription-settings", values)


def lifecycle(sim: SimHandle, subscription_id: str, event: str) -> int:
    """Send a lifecycle notification; the receiver's HTTP status."""
    path = f"/graph/subscriptions/{subscription_id}/lifecycle"
    return int(sim.admin._call("POST", path, {"event": event})["status"])


def graph_requests(sim: SimHandle, address: str, needle: str) -> int:
    ops = sim.admin.stats()["by_mailbox"].get(address, {})
    return sum(n for op, n in ops.items() if needle in op)


def receiver_certificate(folder: Path) -> Path:
    """receiver.pem / receiver.key for 127.0.0.1 in ``folder``, signed by a new CA; its file."""
    ca, ca_key = make_ca()
    server = make_server_cert(ca, ca_key, ["127.0.0.1"])
    (folder / "receiver.pem").write_bytes(server.cert_pem + ca.cert_pem)
    (folder / "receiver.key").write_bytes(server.key_pem)
    (folder / "receiver-ca.pem").write_bytes(ca.cert_pem)
    return folder / "receiver-ca.pem"


def subjects(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT subject FROM events")]


@dataclass
class Running:
    daemon: Daemon
    sim: SimHandle
    db: Path
    port: int
    addresses: list[str]
    codes: list[int] = field(default_factory=list)

    def sub_of(self, address: str) -> str:
        webhooks = self.daemon.webhooks
        assert webhooks is not None
        return webhooks.manager.subscription_ids()[address]

    def idle(self) -> None:
        assert self.daemon.jobs is not None
        assert self.daemon.jobs.wait_idle(30)


def webhook_config(
    sim: SimHandle, port: int, *, public_url: str | None = None, tls: bool = False
) -> Path:
    """The simulator's calsync.toml, switched to Graph, polls an hour apart, webhooks on."""
    state = Path(sim.info["ca_file"]).parent
    config_file = state / "calsync.toml"
    text = config_file.read_text(encoding="utf-8")
    text = text.replace('api = "ews"', 'api = "graph"').replace(
        '[subscriptions]\nmode = "streaming"', '[subscriptions]\nmode = "off"'
    )
    text += (
        "\n[daemon]\npoll_interval = 3600\npoll_jitter = 0\nnotification_debounce_ms = 50\n"
        '\n[webhooks]\nenabled = true\nlisten_host = "127.0.0.1"\n'
        f"listen_port = {port}\n"
        f'public_url = "{public_url or f"http://127.0.0.1:{port}{PATH}"}"\n'
        f'client_state = "{CLIENT_STATE}"\n'
    )
    if tls:  # relative to the file's folder
        text += 'tls_cert_file = "receiver.pem"\ntls_key_file = "receiver.key"\n'
    out = state / "webhooks.toml"
    out.write_text(text, encoding="utf-8")
    out.chmod(0o600)
    return out


@contextmanager
def running_daemon(
    sim: SimHandle, *, public_url: str | None = None, tls: bool = False, port: int | None = None
) -> Iterator[Running]:
    port = port or free_port()
    config = load_config(webhook_config(sim, port, public_url=public_url, tls=tls))
    daemon = Daemon(config, heartbeat_s=0.05, tick_s=0.02)
    db = Path(sim.info["ca_file"]).parent / "calsync.db"
    running = Running(daemon, sim, db, port, sorted(sim.tenant()["mailboxes"]))
    thread = threading.Thread(
        target=lambda: running.codes.append(daemon.run(install_signals=False))
    )
    thread.start()
    try:
        assert daemon.started.wait(30)
        yield running
    finally:
        daemon.request_stop("test")
        thread.join(30)
    assert running.codes == [0]
