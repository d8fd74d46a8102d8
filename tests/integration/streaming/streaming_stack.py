"""calsync's streaming source against a running simulator (shared by these tests and the bench)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from calsync.auth import TenantCredentials, TokenProvider
from calsync.ews import EwsClient, EwsSettings
from calsync.ews.notifications import StreamingNotificationSource
from calsync.model import Mailbox
from calsync.subscriptions import SupervisorSettings


def client_for(sim: Any, tenant_index: int = 0) -> EwsClient:
    info = sim.info
    tenant = info["tenants"][tenant_index]
    credentials = TenantCredentials(
        name=tenant["name"],
        tenant_id=tenant["tenant_id"],
        client_id=tenant["client_id"],
        client_secret=tenant["client_secret"],
        authority=info["authority"],
        ca_file=info["ca_file"],
    )
    settings = EwsSettings(tenant=tenant["name"], ews_url=info["ews_url"], ca_file=info["ca_file"])
    return EwsClient(settings, TokenProvider(credentials))


def sim_mailboxes(sim: Any, tenant_index: int = 0) -> list[Mailbox]:
    tenant = sim.info["tenants"][tenant_index]
    return [Mailbox(address, tenant["name"]) for address in tenant["mailboxes"]]


class Changes:
    """on_change calls with their time; ``wait`` blocks on a condition, never sleeps."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str, str]] = []
        self.cond = threading.Condition()

    def __call__(self, address: str, reason: str) -> None:
        with self.cond:
            self.calls.append((time.monotonic(), address, reason))
            self.cond.notify_all()

    def of(self, reason: str, since: float = 0.0) -> list[str]:
        with self.cond:
            return [a for t, a, r in self.calls if r == reason and t >= since]

    def first(self, address: str, reason: str, since: float) -> float | None:
        with self.cond:
            return next(
                (t for t, a, r in self.calls if a == address and r == reason and t >= since), None
            )

    def wait(self, predicate: Callable[[Changes], bool], timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self), timeout)


@contextmanager
def streaming(
    sim: Any, mailboxes: list[Mailbox], changes: Changes, client: EwsClient | None = None,
    **settings: Any,
) -> Iterator[StreamingNotificationSource]:  # fmt: skip
    """A started source; on exit it is stopped (unsubscribing) and the client closed."""
    own = client is None
    client = client or client_for(sim)
    values: dict[str, Any] = {"connection_timeout": 60, "notification_debounce_ms": 100}
    values.update(settings)
    source = StreamingNotificationSource(
        {client.tenant: client}, changes, SupervisorSettings(**values)
    )
    source.update_mailboxes(mailboxes)
    source.start()
    try:
        yield source
    finally:
        source.stop()
        if own:
            client.close()


def wait_subscribed(
    source: StreamingNotificationSource, count: int, changes: Changes | None = None,
    timeout: float = 30.0,
) -> None:  # fmt: skip
    """Every mailbox subscribed on an open connection (and, with ``changes``, its catch-up
    on_change delivered, so that a later edit is not folded into that one)."""
    ok = source.wait_for(lambda c: c.subscribed == count and c.connections == c.groups, timeout)
    assert ok, source.counts()
    if changes is not None:
        assert changes.wait(lambda c: len(c.of("subscribed")) >= count, timeout)
