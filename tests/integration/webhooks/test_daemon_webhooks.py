"""The daemon with ``[webhooks]`` on for a Graph tenant, against the simulator: Outlook edits
reach the store through notifications (polls are an hour apart), lifecycle notifications,
renewal before expiry, a forged notification, fallback to polling, subscriptions deleted at stop.
Synchronisation waits on conditions with deadlines, never on sleeps."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs
from webhook_stack import (
    PATH,
    Running,
    free_port,
    graph_requests,
    lifecycle,
    receiver_certificate,
    running_daemon,
    sim_settings,
    subjects,
    subscriptions,
    wait_until,
)

from calsync.graph.webhook_subscriptions import delete_subscription
from calsync.sim import SimHandle, start_in_thread

sys.path.insert(0, str(Path(__file__).parents[1] / "graph"))
from graph_stack import graph_stack

DELTA = "calendarView/delta"


@pytest.fixture
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    with start_in_thread(tmp_path_factory.mktemp("sim"), mailboxes=2, events_per_mailbox=3,
                         seed=43) as handle:  # fmt: skip
        yield handle


def settled(run: Running) -> None:
    """Every mailbox subscribed, its first run and the catch-up done."""
    webhooks = run.daemon.webhooks
    assert webhooks is not None
    wait_until(lambda: set(webhooks.manager.subscription_ids()) == set(run.addresses))
    wait_until(lambda: all(graph_requests(run.sim, a, DELTA) >= 2 for a in run.addresses))
    run.idle()


def test_an_outlook_edit_reaches_the_store_through_a_notification(sim: SimHandle) -> None:
    with capture_logs() as logs, running_daemon(sim) as run:
        settled(run)
        target, other = run.addresses
        assert all(run.daemon.subscription_healthy(a) for a in run.addresses)
        deltas = {a: graph_requests(sim, a, DELTA) for a in run.addresses}
        sim.admin.create_event(target, subject="booked in Outlook", start="2026-12-02T09:00:00Z",
                               end="2026-12-02T10:00:00Z", timezone="UTC")  # fmt: skip
        item = sim.admin.events(other)[0]["item_id"]
        sim.admin.patch_event(other, item, subject="moved in Outlook")
        # polls are an hour apart: only the notifications can explain these syncs
        wait_until(lambda: {"booked in Outlook", "moved in Outlook"} <= set(subjects(run.db)))
        assert all(graph_requests(sim, a, DELTA) == deltas[a] + 1 for a in run.addresses)
        statuses = {s.address: s for s in run.daemon.generation.runtime.store.mailbox_statuses()}
        due = statuses[target].next_due
        assert due is not None and due > datetime.now(UTC) + timedelta(hours=12)  # healthy
    subscribed = [e for e in logs if e["event"] == "webhook_subscribed"]
    assert {e["mailbox"] for e in subscribed} == set(run.addresses)
    listening = [e for e in logs if e["event"] == "webhook_listening"]
    assert listening and listening[0]["port"] == run.port and listening[0]["path"] == PATH
    stopped = [e for e in logs if e["event"] == "webhook_stopped"]
    assert stopped == [{"event": "webhook_stopped", "log_level": "info", "deleted": 2, "left": 0}]
    assert subscriptions(sim) == []  # deleted at stop, before the receiver went away
    assert not any(e["event"] == "webhook_rejected" for e in logs)


def test_lifecycle_notifications(sim: SimHandle) -> None:
    with capture_logs() as logs, running_daemon(sim) as run:
        settled(run)
        a, b = run.addresses
        webhooks = run.daemon.webhooks
        assert webhooks is not None
        old = run.sub_of(a)
        deltas = graph_requests(sim, a, DELTA)
        assert lifecycle(sim, old, "subscriptionRemoved") == 202
        wait_until(lambda: webhooks.manager.subscription_ids().get(a, old) != old)
        new = run.sub_of(a)
        assert {s["id"] for s in subscriptions(sim)} == {new, run.sub_of(b)}
        wait_until(lambda: graph_requests(sim, a, DELTA) == deltas + 1)  # the catch-up
        sim.admin.patch_event(a, sim.admin.events(a)[0]["item_id"], subject="after recreate")
        wait_until(lambda: "after recreate" in subjects(run.db))

        patches = graph_requests(sim, b, "PATCH /subscriptions")
        assert lifecycle(sim, run.sub_of(b), "reauthorizationRequired") == 202
        wait_until(lambda: graph_requests(sim, b, "PATCH /subscriptions") == patches + 1)
        assert run.sub_of(b) == webhooks.manager.subscription_ids()[b]

        run.idle()
        deltas = graph_requests(sim, b, DELTA)
        assert lifecycle(sim, run.sub_of(b), "missed") == 202
        wait_until(lambda: graph_requests(sim, b, DELTA) == deltas + 1)
    events = [
        (e["mailbox"], e["lifecycle_event"]) for e in logs if e["event"] == "webhook_lifecycle"
    ]
    assert events == [(a, "subscriptionRemoved"), (b, "reauthorizationRequired"), (b, "missed")]
    lost = [e for e in logs if e["event"] == "webhook_subscription_lost"]
    assert [(e["mailbox"], e["reason"]) for e in lost] == [(a, "subscriptionRemoved")]


def test_subscriptions_are_renewed_before_they_expire(sim: SimHandle) -> None:
    sim_settings(sim, max_expiry_s=1.5)  # Graph's is 10,080 minutes; renewed a third before
    with capture_logs() as logs, running_daemon(sim) as run:
        settled(run)
        first = dict(run.daemon.webhooks.manager.subscription_ids())  # type: ignore[union-attr]
        target = run.addresses[0]
        wait_until(lambda: graph_requests(sim, target, "PATCH /subscriptions") >= 3)
        # two lifetimes later: the same subscriptions, alive, still delivering
        manager = run.daemon.webhooks.manager  # type: ignore[union-attr]
        assert manager.subscription_ids() == first
        assert {s["id"] for s in subscriptions(sim)} == set(first.values())
        sim.admin.patch_event(target, sim.admin.events(target)[0]["item_id"], subject="late")
        wait_until(lambda: "late" in subjects(run.db))
        assert run.daemon.subscription_healthy(target)
        assert not [e for e in logs if e["event"] in ("webhook_subscription_lost",
                                                      "webhook_renewal_failed")]  # fmt: skip

        # Graph forgets one: its renewal answers 404, a new subscription and a catch-up follow
        stack = graph_stack(sim)
        try:
            assert delete_subscription(stack.client, target, first[target])
        finally:
            stack.close()
        deltas = graph_requests(sim, target, DELTA)
        wait_until(lambda: manager.subscription_ids().get(target, first[target]) != first[target])
        wait_until(lambda: graph_requests(sim, target, DELTA) == deltas + 1)
    lost = [(e["mailbox"], e["reason"]) for e in logs if e["event"] == "webhook_subscription_lost"]
    assert lost == [(target, "not found at renewal")]


def test_a_forged_notification_syncs_nothing(sim: SimHandle) -> None:
    with capture_logs() as logs, running_daemon(sim) as run:
        settled(run)
        a, b = run.addresses
        deltas = {m: graph_requests(sim, m, DELTA) for m in run.addresses}
        url = f"http://127.0.0.1:{run.port}{PATH}"
        forged = {"subscriptionId": run.sub_of(a), "clientState": "guessed",
                  "changeType": "updated", "resource": "Users/x/Events/y"}  # fmt: skip
        with httpx.Client(trust_env=False) as http:
            assert http.post(url, json={"value": [forged]}).status_code == 202
        sim.admin.patch_event(b, sim.admin.events(b)[0]["item_id"], subject="real edit")
        wait_until(lambda: "real edit" in subjects(run.db))  # processed after the forged one
        run.idle()
        assert graph_requests(sim, a, DELTA) == deltas[a]
        assert graph_requests(sim, b, DELTA) == deltas[b] + 1
    rejected = [e for e in logs if e["event"] == "webhook_rejected"]
    assert [(e["reason"], e["count"]) for e in rejected] == [("clientState mismatch", 1)]


def test_a_receiver_graph_cannot_validate_falls_back_to_polling(sim: SimHandle) -> None:
    nobody = f"http://127.0.0.1:{free_port()}{PATH}"  # no proxy forwards it to the listener
    with capture_logs() as logs, running_daemon(sim, public_url=nobody) as run:
        wait_until(lambda: any(e["event"] == "webhook_subscription_failed" for e in logs))
        wait_until(lambda: all(graph_requests(sim, a, DELTA) >= 1 for a in run.addresses))
        run.idle()
        assert not any(run.daemon.subscription_healthy(a) for a in run.addresses)
        assert subscriptions(sim) == []
        statuses = run.daemon.generation.runtime.store.mailbox_statuses()
        for status in statuses:  # polled at poll_interval (3600 s), not healthy_poll_interval
            assert status.next_due is not None
            assert status.next_due < datetime.now(UTC) + timedelta(seconds=3700)
    failed = [e for e in logs if e["event"] == "webhook_subscription_failed"]
    assert len(failed) == 1  # the URL is refused for the tenant: no attempt per mailbox
    assert failed[0]["error_code"] == "InvalidRequest" and failed[0]["retry_in_s"] == 600
    assert "public_url" in failed[0]["hint"]


def test_the_receiver_serves_https_itself(sim: SimHandle) -> None:
    state = Path(sim.info["ca_file"]).parent
    ca = receiver_certificate(state)
    port = free_port()
    public = f"https://127.0.0.1:{port}{PATH}"
    sim_settings(sim, ca_file=None)  # the receiver's CA is not trusted: validation fails
    with capture_logs() as logs, running_daemon(sim, public_url=public, tls=True, port=port):
        wait_until(lambda: any(e["event"] == "webhook_subscription_failed" for e in logs))
    assert [e["tls"] for e in logs if e["event"] == "webhook_listening"] == [True]
    sim_settings(sim, ca_file=str(ca))  # as a public CA is to Graph
    with running_daemon(sim, public_url=public, tls=True, port=port) as run:
        settled(run)
        target = run.addresses[1]
        sim.admin.patch_event(target, sim.admin.events(target)[0]["item_id"], subject="over tls")
        wait_until(lambda: "over tls" in subjects(run.db))
        assert {s["notificationUrl"] for s in subscriptions(sim)} == {public}
    sim_settings(sim, ca_file=None)


def test_a_reload_follows_the_graph_mailboxes(sim: SimHandle) -> None:
    with running_daemon(sim) as run:
        settled(run)
        a, b = run.addresses
        webhooks = run.daemon.webhooks
        assert webhooks is not None and run.daemon.config.path is not None
        config_file = run.daemon.config.path
        text = config_file.read_text(encoding="utf-8")
        block = f'[[mailboxes]]\naddress = "{b}"\n'
        assert block in text
        config_file.write_text(text.replace(block, "[[mailboxes]]\nenabled = false\n"
                                            f'address = "{b}"\n'))  # fmt: skip
        run.daemon.request_reload()
        wait_until(lambda: set(webhooks.manager.subscription_ids()) == {a})
        assert {s["mailbox"] for s in subscriptions(sim)} == {a}  # b's was deleted
        config_file.write_text(text.replace('api = "graph"', 'api = "ews"'))
        run.daemon.request_reload()  # the tenant goes back to EWS: no Graph subscription left
        wait_until(lambda: webhooks.manager.subscription_ids() == {})
        assert subscriptions(sim) == []
        assert not run.daemon.subscription_healthy(a)


def test_subscriptions_left_by_a_crashed_process_are_deleted_at_start(sim: SimHandle) -> None:
    port = free_port()
    with running_daemon(sim, port=port) as first:
        settled(first)
        webhooks = first.daemon.webhooks
        assert webhooks is not None
        left = set(webhooks.manager.subscription_ids().values())
        with webhooks.manager._lock:  # as if killed: nothing deleted at stop
            webhooks.manager._subs.clear()
    assert {s["id"] for s in subscriptions(sim)} == left
    with capture_logs() as logs, running_daemon(sim, port=port) as second:
        settled(second)
        assert second.daemon.webhooks is not None
        now = set(second.daemon.webhooks.manager.subscription_ids().values())
        assert {s["id"] for s in subscriptions(sim)} == now and not now & left
    swept = [e for e in logs if e["event"] == "webhook_stale_deleted"]
    assert [(e["tenant"], e["deleted"]) for e in swept] == [(sim.tenant()["name"], 2)]
