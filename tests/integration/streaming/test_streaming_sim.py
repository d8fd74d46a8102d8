"""Streaming against the simulator: edits reach on_change, bursts, drops, lost and failed
subscriptions, reloads. Synchronisation waits on conditions (with deadlines), never on sleeps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import structlog
from streaming_stack import Changes, sim_mailboxes, streaming, wait_subscribed

from calsync.model import Mailbox
from calsync.sim import start_in_thread

EDIT_DEADLINE_S = 2.0


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    state: Path = tmp_path_factory.mktemp("streaming-sim")
    with start_in_thread(state, mailboxes=30, events_per_mailbox=3, heartbeat_s=0.5) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _clean_faults(sim: Any) -> Iterator[None]:
    sim.admin.clear_faults()
    yield
    sim.admin.clear_faults()


def boxes(sim: Any, first: int, count: int) -> list[Mailbox]:
    return sim_mailboxes(sim)[first : first + count]


def edit(sim: Any, address: str, n: int = 0) -> None:
    item = sim.admin.events(address)[0]
    sim.admin.patch_event(address, item["item_id"], subject=f"edit {n}")


def test_edits_reach_on_change_within_the_deadline(sim: Any) -> None:
    mine = boxes(sim, 0, 6)
    changes = Changes()
    with streaming(sim, mine, changes, max_subscriptions_per_connection=3) as source:
        wait_subscribed(source, 6, changes)
        assert all(source.healthy(b.address) for b in mine)
        target = mine[4].address
        since = time.monotonic()
        created = sim.admin.create_event(
            target, subject="New", start="2026-12-01T10:00:00Z", end="2026-12-01T11:00:00Z",
            timezone="UTC",
        )  # fmt: skip
        assert changes.wait(lambda c: target in c.of("notification", since), EDIT_DEADLINE_S)
        since = time.monotonic()
        sim.admin.delete_event(target, created["item_id"])
        assert changes.wait(lambda c: target in c.of("notification", since), EDIT_DEADLINE_S)
    assert set(changes.of("notification")) == {target}  # nobody else was told


def test_a_burst_of_fifty_edits_is_one_on_change(sim: Any) -> None:
    a, b, c = boxes(sim, 6, 3)
    changes = Changes()
    with streaming(sim, [a, b, c], changes, notification_debounce_ms=2000) as source:
        wait_subscribed(source, 3, changes)
        item = sim.admin.events(a.address)[0]["item_id"]
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda n: sim.admin.patch_event(a.address, item, subject=f"{n}"), range(50)
                )
            )
        edit(sim, b.address)  # after the burst, on the same connection
        assert changes.wait(lambda ch: b.address in ch.of("notification"), 10)
    assert changes.of("notification").count(a.address) == 1


def test_dropped_streams_lose_no_change(sim: Any) -> None:
    mine = boxes(sim, 10, 6)
    changes = Changes()
    with streaming(
        sim, mine, changes, max_subscriptions_per_connection=3, reconnect_initial_s=1.5
    ) as source:
        wait_subscribed(source, 6, changes)
        subscribes = sim.admin.stats()["requests"]["Subscribe"]
        with structlog.testing.capture_logs() as logs:
            sim.admin.set_faults(drop_streams=True)
            assert source.wait_for(lambda c: c.connections == 0, 5), source.counts()
            since = time.monotonic()
            with ThreadPoolExecutor(6) as pool:
                list(pool.map(lambda m: edit(sim, m.address), mine))
            assert sim.admin.stats()["streaming"]["open_connections"] == 0  # made while down
            wanted = {m.address for m in mine}
            assert changes.wait(lambda c: set(c.of("notification", since)) == wanted, 15)
        wait_subscribed(source, 6)
        assert sim.admin.stats()["requests"]["Subscribe"] == subscribes  # they survived
    lost = [e for e in logs if e["event"] == "subscription_lost"]
    assert len(lost) == 2 and {e["lost"] for e in lost} == {0}


def test_subscriptions_that_cannot_be_created_fall_back_to_polling(sim: Any) -> None:
    mine = boxes(sim, 16, 3)
    ghost = Mailbox("ghost@contoso.example", mine[0].tenant)  # sorts first: the anchor
    denied = mine[1].address
    sim.admin.set_faults(deny_mailboxes=[denied])
    changes = Changes()
    with structlog.testing.capture_logs() as logs:
        with streaming(sim, [ghost, *mine], changes, retry_failed_s=600) as source:
            assert source.wait_for(lambda c: c.subscribed == 2 and c.failed == 2, 15)
            assert not source.healthy(ghost.address) and not source.healthy(denied)
            assert source.healthy(mine[0].address) and source.healthy(mine[2].address)
            assert source.counts().polled == 2
            wait_subscribed(source, 2, changes)
            edit(sim, mine[2].address)
            assert changes.wait(lambda c: mine[2].address in c.of("notification"), 5)
    failed = {e["mailbox"]: e["error_code"] for e in logs if e["event"] == "subscription_failed"}
    assert failed == {ghost.address: "ErrorNonExistentMailbox", denied: "ErrorAccessDenied"}
    opened = [e for e in logs if e["event"] == "subscription_group_opened"]
    assert {e["anchor"] for e in opened} == {mine[0].address}


def test_reload_adds_and_removes_without_touching_other_groups(sim: Any) -> None:
    mine = boxes(sim, 20, 7)  # groups of 3: [20-22] [23-25] [26]
    changes = Changes()
    with streaming(sim, mine[:6], changes, max_subscriptions_per_connection=3) as source:
        wait_subscribed(source, 6, changes)
        sim.admin.reset_stats()
        source.update_mailboxes([*mine[:5], mine[6]])  # one leaves group 2, one joins it
        assert changes.wait(lambda c: mine[6].address in c.of("subscribed"), 10)
        wait_subscribed(source, 6)
        stats = sim.admin.stats()
        assert not source.healthy(mine[5].address)
        edit(sim, mine[6].address)
        assert changes.wait(lambda c: mine[6].address in c.of("notification"), 5)
    assert stats["requests"] == {"Subscribe": 1, "Unsubscribe": 1, "GetStreamingEvents": 1}
    assert stats["by_mailbox"][mine[3].address]["GetStreamingEvents"] == 1  # group 2 only
    assert mine[0].address not in stats["by_mailbox"]  # group 1 untouched


def test_lost_subscriptions_are_replaced_with_a_catch_up(tmp_path: Path) -> None:
    # an EWS minute of 0.3 s: connections are renewed every 0.3 s
    with start_in_thread(tmp_path, mailboxes=3, events_per_mailbox=2, minute_s=0.3,
                         heartbeat_s=0.1) as quick:  # fmt: skip
        mine = sim_mailboxes(quick)
        target = mine[1].address
        changes = Changes()
        with structlog.testing.capture_logs() as logs:
            with streaming(quick, mine, changes) as source:
                wait_subscribed(source, 3, changes)
                hub = quick.core.hub
                sub = quick.call(
                    lambda: next(s for s in hub.subs.values() if s.mailbox.address == target)
                )
                quick.call(hub._remove, sub)  # the server forgets it (expiry, restart)
                assert changes.wait(lambda c: target in c.of("resubscribed"), 10)
                wait_subscribed(source, 3)
                edit(quick, target)
                assert changes.wait(lambda c: target in c.of("notification"), 5)
                renewals = quick.admin.stats()["requests"]["GetStreamingEvents"]
    assert renewals >= 3  # renewed at each ConnectionTimeout
    lost = [e for e in logs if e["event"] == "subscription_lost"]
    assert lost[0]["error_code"] == "ErrorInvalidSubscription" and lost[0]["lost"] == 1
    assert changes.of("resubscribed") == [target]
