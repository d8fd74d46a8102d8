"""The supervisor over an in-memory Exchange: groups, notifications, failures, reloads."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from subscription_fakes import TENANT, Changes, Rig, mailboxes

from calsync.errors import MailboxNotFound, TransientError
from calsync.model import Direction, Mailbox

MakeRig = Callable[..., Rig]


def started(make_rig: MakeRig, boxes: list[Mailbox], **settings: object) -> Rig:
    rig = make_rig(**settings)
    rig.supervisor.update_mailboxes(boxes)
    rig.supervisor.start()
    wanted = sum(1 for b in boxes if b.direction.reads_exchange)
    rig.wait(lambda c: c.subscribed == min(wanted, c.groups * 3) and c.connections == c.groups)
    return rig


def test_groups_anchors_and_a_notification(make_rig: MakeRig) -> None:
    boxes = mailboxes(7)
    push_only = Mailbox("pushonly@contoso.example", TENANT, direction=Direction.PUSH)
    with structlog.testing.capture_logs() as logs:
        rig = started(make_rig, [*boxes, push_only])
    counts = rig.supervisor.counts()
    assert (counts.groups, counts.connections, counts.subscribed, counts.polled) == (3, 3, 7, 0)
    anchors = {b.address: b.address for b in boxes[0:1]}
    assert rig.server.subscribed_with[0] == (boxes[0].address, boxes[0].address)
    for address, anchor in rig.server.subscribed_with:
        index = int(address[4:7]) - 1
        assert anchor == boxes[index // 3 * 3].address, anchors  # anchor = first of its group
    opened = [e for e in logs if e["event"] == "subscription_group_opened"]
    assert sorted((e["anchor"], e["size"]) for e in opened) == [
        (boxes[0].address, 3), (boxes[3].address, 3), (boxes[6].address, 1),
    ]  # fmt: skip
    assert rig.changes.wait(lambda c: len(c.of("subscribed")) == 7)
    assert not rig.supervisor.healthy(push_only.address)
    assert rig.supervisor.healthy(boxes[4].address.upper())

    rig.server.change(boxes[4].address)
    rig.server.change(boxes[4].address)
    assert rig.changes.wait(lambda c: c.of("notification") == [boxes[4].address])


def test_a_lost_subscription_is_replaced_with_a_catch_up(make_rig: MakeRig) -> None:
    boxes = mailboxes(3)
    rig = started(make_rig, boxes)
    assert rig.changes.wait(lambda c: len(c.of("subscribed")) == 3)
    before = rig.server.calls["subscribe"]
    with structlog.testing.capture_logs() as logs:
        rig.server.expire(boxes[1].address)
        assert rig.changes.wait(lambda c: c.of("resubscribed") == [boxes[1].address])
    assert rig.server.calls["subscribe"] == before + 1  # only the lost one
    assert [e["event"] for e in logs if e["event"].startswith("subscription_")] == [
        "subscription_lost", "subscription_group_opened",
    ]  # fmt: skip
    rig.wait(lambda c: c.subscribed == 3)
    rig.server.change(boxes[1].address)
    assert rig.changes.wait(lambda c: c.of("notification") == [boxes[1].address])


def test_a_dropped_connection_reconnects_and_keeps_its_subscriptions(make_rig: MakeRig) -> None:
    boxes = mailboxes(3)
    rig = started(make_rig, boxes)
    subscribes, opens = rig.server.calls["subscribe"], rig.server.calls["open_stream"]
    rig.server.drop_all()
    with rig.server.cond:
        assert rig.server.cond.wait_for(
            lambda: rig.server.calls["open_stream"] == opens + 1 and len(rig.server.open) == 1, 5
        )
    rig.wait(lambda c: c.connections == 1 and c.subscribed == 3)
    assert rig.server.calls["subscribe"] == subscribes


def test_a_long_outage_makes_the_members_due(make_rig: MakeRig) -> None:
    boxes = mailboxes(2)
    rig = started(make_rig, boxes, reconnect_initial_s=30.0, down_grace_s=0.1)
    rig.server.drop_all()
    assert rig.changes.wait(
        lambda c: sorted(c.of("subscription_down")) == [b.address for b in boxes]
    )
    assert not rig.supervisor.healthy(boxes[0].address)
    assert rig.supervisor.counts().polled == 2


def test_a_mailbox_that_cannot_be_subscribed_is_polled(make_rig: MakeRig) -> None:
    boxes = mailboxes(4)
    rig = make_rig(retry_failed_s=0.2)
    rig.server.failing[boxes[0].address] = MailboxNotFound(
        "no such mailbox", mailbox=boxes[0].address, error_code="ErrorNonExistentMailbox"
    )
    with structlog.testing.capture_logs() as logs:
        rig.supervisor.update_mailboxes(boxes)
        rig.supervisor.start()
        rig.wait(lambda c: c.subscribed == 3 and c.failed == 1)
    failed = [e for e in logs if e["event"] == "subscription_failed"]
    assert failed[0]["mailbox"] == boxes[0].address
    assert failed[0]["error_code"] == "ErrorNonExistentMailbox"
    assert not rig.supervisor.healthy(boxes[0].address)
    assert rig.supervisor.counts().polled == 1
    # the failing anchor handed the group to the next member
    assert {anchor for _, anchor in rig.server.subscribed_with} == {boxes[1].address}
    del rig.server.failing[boxes[0].address]  # retried later, and it works now
    rig.wait(lambda c: c.subscribed == 4 and c.failed == 0)
    assert rig.supervisor.healthy(boxes[0].address)


def test_a_transient_subscribe_error_backs_off_the_group(make_rig: MakeRig) -> None:
    boxes = mailboxes(2)
    rig = make_rig()
    rig.server.failing[boxes[0].address] = TransientError("HTTP 503", error_code="HTTP503")
    rig.supervisor.update_mailboxes(boxes)
    rig.supervisor.start()
    with rig.server.cond:
        assert rig.server.cond.wait_for(lambda: rig.server.calls["subscribe"] >= 3, 5)
    assert rig.supervisor.counts().failed == 0  # not handed back: the group retries
    del rig.server.failing[boxes[0].address]
    rig.wait(lambda c: c.subscribed == 2)


def test_capacity_is_logged_once(make_rig: MakeRig) -> None:
    with structlog.testing.capture_logs() as logs:
        rig = started(make_rig, mailboxes(8), max_connections=2)
        rig.supervisor.update_mailboxes(mailboxes(9))
    over = [e for e in logs if e["event"] == "subscription_capacity_exceeded"]
    assert len(over) == 1 and over[0]["polled"] == 2 and over[0]["capacity"] == 6
    counts = rig.supervisor.counts()
    assert (counts.groups, counts.over_capacity, counts.polled) == (2, 3, 3)


def test_reload_touches_only_the_groups_that_change(make_rig: MakeRig) -> None:
    boxes = mailboxes(8)  # groups: 1-3, 4-6, 7-8
    rig = started(make_rig, boxes)
    first = rig.server.stream_of(boxes[0].address)
    second = rig.server.stream_of(boxes[3].address)
    newcomer = mailboxes(1, start=50)
    rig.supervisor.update_mailboxes([*boxes[:5], *boxes[6:], *newcomer])  # user006 leaves
    rig.wait(lambda c: c.subscribed == 8 and c.connections == 3)
    assert rig.changes.wait(lambda c: newcomer[0].address in c.of("subscribed"))
    assert first is not None and not first.closed  # untouched group kept its connection
    assert second is not None and second.closed
    assert rig.supervisor.healthy(newcomer[0].address)
    assert not rig.supervisor.healthy(boxes[5].address)
    assert rig.server.wait_subscribed([b.address for b in [*boxes[:5], *boxes[6:], *newcomer]])

    # 4 leave: 5 members need 2 groups, the smallest group is closed and its members move
    rig.supervisor.update_mailboxes([boxes[0], boxes[1], boxes[3], boxes[6], *newcomer])
    rig.wait(lambda c: c.groups == 2 and c.connections == 2 and c.subscribed == 5)
    kept = [boxes[0], boxes[1], boxes[3], boxes[6], *newcomer]
    assert rig.server.wait_subscribed([b.address for b in kept])  # the rest unsubscribed


def test_stop_unsubscribes_and_ends_every_thread(make_rig: MakeRig) -> None:
    rig = started(make_rig, mailboxes(5))
    rig.supervisor.stop()
    assert rig.server.subs == {}
    assert rig.server.open == []
    assert rig.backend.closed
    assert rig.supervisor.counts().connections == 0


def test_changes_record_reasons() -> None:
    changes = Changes()
    changes("a", "notification")
    assert changes.of("notification") == ["a"]


def test_new_credentials_rebuild_only_that_tenant() -> None:
    from subscription_fakes import FakeBackend, FakeServer

    from calsync.subscriptions import SubscriptionSupervisor, SupervisorSettings

    servers = {"contoso": FakeServer(), "fabrikam": FakeServer()}
    first = {t: FakeBackend(s, t) for t, s in servers.items()}
    changes = Changes()
    supervisor = SubscriptionSupervisor(
        first, changes, SupervisorSettings(notification_debounce_ms=10, stop_grace_s=1.0)
    )
    both = [*mailboxes(2, "contoso"), *mailboxes(2, "fabrikam")]
    try:
        supervisor.update_mailboxes(both)
        supervisor.start()
        assert supervisor.wait_for(lambda c: c.subscribed == 4 and c.connections == 2, 5)
        assert changes.wait(lambda c: len(c.of("subscribed")) == 4)
        kept = servers["contoso"].stream_of(both[0].address)
        renewed = FakeBackend(servers["fabrikam"], "fabrikam")
        supervisor.set_backends({"contoso": first["contoso"], "fabrikam": renewed})
        fabrikam = [b.address for b in both[2:]]
        assert changes.wait(lambda c: sorted(c.of("resubscribed")) == fabrikam)
        assert supervisor.wait_for(lambda c: c.subscribed == 4 and c.connections == 2, 5)
        assert servers["fabrikam"].wait_subscribed(fabrikam)  # the old ones unsubscribed
        assert kept is not None and not kept.closed
        supervisor.set_backends({"contoso": first["contoso"]})  # the tenant left
        assert supervisor.wait_for(lambda c: c.subscribed == 2 and c.groups == 1, 5)
        assert not supervisor.healthy(fabrikam[0])
    finally:
        supervisor.stop()
    assert first["fabrikam"].closed and renewed.closed
