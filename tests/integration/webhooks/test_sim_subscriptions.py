"""The simulator's /subscriptions against calsync's Graph client and receiver: validation before
creation, deliveries on Outlook edits, renew, delete, lifecycle notifications, expiry."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from webhook_stack import CLIENT_STATE, PATH, free_port, sim_settings, subscriptions, wait_until

from calsync.errors import CalsyncError
from calsync.graph.webhook import Notification, WebhookReceiver
from calsync.graph.webhook_subscriptions import (
    create_subscription,
    delete_subscription,
    renew_subscription,
)
from calsync.sim import SimHandle, start_in_thread

sys.path.insert(0, str(Path(__file__).parents[1] / "graph"))
from graph_stack import GraphStack, graph_stack


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    with start_in_thread(tmp_path_factory.mktemp("sim"), mailboxes=3, events_per_mailbox=3,
                         seed=41) as handle:  # fmt: skip
        yield handle


class Inbox:
    def __init__(self) -> None:
        self.notes: list[Notification] = []
        self.cond = threading.Condition()

    def sink(self, notes: list[Notification]) -> None:
        with self.cond:
            self.notes.extend(notes)
            self.cond.notify_all()

    def wait(self, count: int, timeout: float = 10.0) -> list[Notification]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.notes) >= count, timeout), self.notes
            return list(self.notes)


@pytest.fixture
def rig(sim: SimHandle) -> Iterator[tuple[GraphStack, WebhookReceiver, Inbox]]:
    inbox = Inbox()
    rx = WebhookReceiver(host="127.0.0.1", port=free_port(), path=PATH,
                         client_state=CLIENT_STATE, sink=inbox.sink)  # fmt: skip
    rx.start()
    stack = graph_stack(sim)
    yield stack, rx, inbox
    stack.close()
    rx.stop()
    sim_settings(sim, max_expiry_s=10080 * 60)


def subscribe(stack: GraphStack, address: str, url: str, minutes: float = 60) -> Any:
    return create_subscription(
        stack.client, address, notification_url=url, client_state=CLIENT_STATE,
        expires=datetime.now(UTC) + timedelta(minutes=minutes),
    )  # fmt: skip


def test_creation_fails_when_the_receiver_does_not_echo(
    sim: SimHandle, rig: tuple[GraphStack, WebhookReceiver, Inbox]
) -> None:
    stack, rx, _ = rig
    address = stack.mailbox(0).address
    before = len(subscriptions(sim))
    for wrong in (f"http://127.0.0.1:{rx.port}/not-served", f"http://127.0.0.1:{free_port()}/"):
        with pytest.raises(CalsyncError, match="validation request failed") as info:
            subscribe(stack, address, wrong)
        assert info.value.error_code == "InvalidRequest"
    assert len(subscriptions(sim)) == before
    with pytest.raises(CalsyncError, match="Resource could not be discovered"):
        subscribe(stack, "not-a-mailbox@contoso.example", f"http://127.0.0.1:{rx.port}{PATH}")


def test_outlook_edits_are_delivered_renewed_and_deleted(
    sim: SimHandle, rig: tuple[GraphStack, WebhookReceiver, Inbox]
) -> None:
    stack, rx, inbox = rig
    address = stack.mailbox(1).address
    sub = subscribe(stack, address, f"http://127.0.0.1:{rx.port}{PATH}")
    assert sub.resource == f"users/{address.replace('@', '%40')}/events"
    assert timedelta(minutes=59) < sub.expires - datetime.now(UTC) <= timedelta(minutes=60)
    item = sim.admin.events(address)[0]["item_id"]
    sim.admin.patch_event(address, item, subject="edited in Outlook")
    created = sim.admin.create_event(address, subject="new", start="2026-12-01T10:00:00Z",
                                     end="2026-12-01T11:00:00Z", timezone="UTC")  # fmt: skip
    sim.admin.delete_event(address, created["item_id"])
    notes = inbox.wait(3)
    assert {n.subscription_id for n in notes} == {sub.id}
    assert sorted(n.change_type or "" for n in notes) == ["created", "deleted", "updated"]
    assert all(n.resource and n.resource.startswith(f"Users/{address}/Events/") for n in notes)

    def listed() -> dict[str, Any]:
        return next(s for s in subscriptions(sim) if s["id"] == sub.id)

    wait_until(lambda: listed()["delivered"] == 3)
    assert listed()["mailbox"] == address and listed()["failed"] == 0

    later = datetime.now(UTC) + timedelta(days=2)
    renewed = renew_subscription(stack.client, address, sub.id, later)
    assert renewed is not None and abs((renewed.expires - later).total_seconds()) < 1
    assert delete_subscription(stack.client, address, sub.id) is True
    assert delete_subscription(stack.client, address, sub.id) is False  # already gone
    assert renew_subscription(stack.client, address, sub.id, later) is None
    sim.admin.patch_event(address, item, subject="after delete")
    requests = sim.admin.stats()["by_mailbox"][address]
    assert requests["GRAPH POST /subscriptions"] >= 1
    assert requests["GRAPH DELETE /subscriptions/{id}"] == 1  # the second one named no mailbox
    assert rx.received == 3  # nothing after the delete: no listener is left to deliver it


def test_lifecycle_notifications_and_expiry(
    sim: SimHandle, rig: tuple[GraphStack, WebhookReceiver, Inbox]
) -> None:
    stack, rx, inbox = rig
    address = stack.mailbox(2).address
    url = f"http://127.0.0.1:{rx.port}{PATH}"
    sub = subscribe(stack, address, url)
    for event in ("reauthorizationRequired", "missed", "subscriptionRemoved"):
        status = sim.admin._call("POST", f"/graph/subscriptions/{sub.id}/lifecycle",
                                 {"event": event})["status"]  # fmt: skip
        assert status == 202
    notes = inbox.wait(3)
    assert [n.lifecycle_event for n in notes] == [
        "reauthorizationRequired", "missed", "subscriptionRemoved",
    ]  # fmt: skip
    assert sub.id not in {s["id"] for s in subscriptions(sim)}  # removed

    sim_settings(sim, max_expiry_s=0.3)
    short = subscribe(stack, address, url)  # asks for an hour, gets 0.3 s (clamped)
    assert short.expires - datetime.now(UTC) < timedelta(seconds=1)
    wait_until(lambda: short.id not in {s["id"] for s in subscriptions(sim)}, 5)
    assert renew_subscription(stack.client, address, short.id, datetime.now(UTC)
                              + timedelta(minutes=5)) is None  # fmt: skip
