"""The store contract: every test runs against MemoryStore, SQLite and PostgreSQL."""

# F811: pytest fixtures are imported from test_store_support and used as parameters.
# ruff: noqa: F811
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_store_support import (  # noqa: F401  (fixtures)
    MB,
    NOW,
    OTHER,
    FakeClock,
    clock,
    pg_schema_url,
    sqlite_template,
    store,
)

from calsync.errors import LockHeld
from calsync.model import (
    Attendee,
    AttendeeType,
    EventData,
    Link,
    Mailbox,
    ModifiedOccurrence,
    Sensitivity,
    ShowAs,
    SyncStatus,
)
from calsync.store.rows import normalise

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def single(subject: str = "review", start: datetime = T0, **kw: Any) -> EventData:
    return EventData(subject=subject, start=start, end=start + timedelta(hours=1), **kw)


def full_event() -> EventData:
    return EventData(
        subject="Quarterly review ü",
        start=T0,
        end=T0 + timedelta(minutes=90),
        timezone="Europe/Berlin",
        location="Room 4",
        body="line 1\nline 2",
        uid="uid-1@example",
        reminder_minutes=15,
        show_as=ShowAs.TENTATIVE,
        sensitivity=Sensitivity.PRIVATE,
        categories=("Red", "Blue category"),
        organizer="boss@contoso.example",
        attendees=(
            Attendee("a@contoso.example", "A", AttendeeType.REQUIRED, "accept"),
            Attendee("room@contoso.example", "", AttendeeType.RESOURCE, None),
        ),
        is_cancelled=False,
    )


def series() -> EventData:
    return EventData(
        subject="standup",
        start=T0,
        end=T0 + timedelta(minutes=15),
        timezone="Europe/Berlin",
        recurrence="RRULE:FREQ=DAILY;COUNT=10",
        deleted_occurrences=(T0 + timedelta(days=1),),
        modified_occurrences=(
            ModifiedOccurrence(
                T0 + timedelta(days=3),
                single("standup (moved)", T0 + timedelta(days=3, hours=2)),
            ),
        ),
    )


def calsync_upsert(store: Any, cid: str, data: EventData, mailbox: str = MB) -> None:
    with store.transaction() as tx:
        tx.upsert_event(mailbox, cid, data)


def ack(store: Any, mailbox: str = MB) -> None:
    changes = store.local_changes(mailbox)
    with store.transaction() as tx:
        tx.ack_local(mailbox, changes.cursor)


# --- rows <-> model ----------------------------------------------------------------------------


def test_single_event_round_trip(store: Any) -> None:
    calsync_upsert(store, "E1", full_event())
    got = store.get_events(MB, ["E1", "missing"])
    assert set(got) == {"E1"}
    assert got["E1"].data == full_event()
    assert got["E1"].status is SyncStatus.SYNCED
    assert store.get_events(OTHER, ["E1"]) == {}


def test_series_round_trip_and_replacement(store: Any) -> None:
    calsync_upsert(store, "S1", series())
    assert store.get_events(MB, ["S1"])["S1"].data == series()
    assert store.count_events(MB) == 1  # occurrence rows are not events of their own
    changed = replace(series(), modified_occurrences=(), deleted_occurrences=())
    calsync_upsert(store, "S1", changed)
    assert store.get_events(MB, ["S1"])["S1"].data == changed


def test_all_day_series_exdate_round_trip(store: Any) -> None:
    day = datetime(2026, 12, 1, tzinfo=UTC)
    data = EventData(
        "holiday", day, day + timedelta(days=1), is_all_day=True,
        recurrence="RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20270301",
        deleted_occurrences=(day + timedelta(days=7),),
    )  # fmt: skip
    calsync_upsert(store, "A1", data)
    assert store.get_events(MB, ["A1"])["A1"].data == data
    assert "EXDATE;VALUE=DATE:20261208" in store.raw_row("A1")["recurrence"]


def test_microseconds_are_dropped(store: Any) -> None:
    data = single(start=T0.replace(microsecond=123456))
    calsync_upsert(store, "E1", data)
    assert store.get_events(MB, ["E1"])["E1"].data == normalise(data)


# --- change tracking ---------------------------------------------------------------------------


def test_calsync_writes_are_never_local_changes(store: Any) -> None:
    calsync_upsert(store, "E1", full_event())
    calsync_upsert(store, "S1", series())
    with store.transaction() as tx:
        tx.set_event_status(MB, "E1", SyncStatus.ERROR, "boom")
        tx.delete_event(MB, "S1")
    assert store.local_changes(MB).changes == ()


def test_app_insert_is_reported_once(store: Any, clock: FakeClock) -> None:
    clock.advance(60)
    cid = store.app_upsert(MB, single("from app"))
    changes = store.local_changes(MB)
    assert [c.calsync_id for c in changes.changes] == [cid]
    event = changes.changes[0].event
    assert event is not None
    assert event.data.subject == "from app"
    assert event.data.uid == cid  # generated when NULL
    assert event.status is SyncStatus.PENDING
    assert store.local_changes(OTHER).changes == ()
    with store.transaction() as tx:
        tx.ack_local(MB, changes.cursor)
    again = store.local_changes(MB)
    assert again.changes == ()
    assert again.cursor == changes.cursor


def test_app_update_of_synced_row(store: Any) -> None:
    calsync_upsert(store, "E1", full_event())
    store.app_upsert(MB, replace(full_event(), subject="renamed"), "E1")
    (change,) = store.local_changes(MB).changes
    assert change.calsync_id == "E1"
    assert change.event is not None
    assert change.event.data.subject == "renamed"
    assert change.event.status is SyncStatus.PENDING
    assert change.event.modified_at.year >= 2026


def test_app_delete_is_reported_and_tombstone_acknowledged(store: Any) -> None:
    calsync_upsert(store, "E1", full_event())
    store.app_delete(MB, "E1")
    changes = store.local_changes(MB)
    assert [(c.calsync_id, c.is_delete) for c in changes.changes] == [("E1", True)]
    with store.transaction() as tx:
        tx.ack_local(MB, changes.cursor)
    assert store.local_changes(MB).changes == ()


def test_app_delete_of_series_removes_occurrence_rows(store: Any) -> None:
    calsync_upsert(store, "S1", series())
    store.app_delete(MB, "S1")
    changes = store.local_changes(MB).changes
    assert [(c.calsync_id, c.is_delete) for c in changes] == [("S1", True)]
    assert store.occurrence_row_id("S1", T0 + timedelta(days=3)) is None


def test_app_delete_of_modified_occurrence_deletes_that_occurrence(store: Any) -> None:
    calsync_upsert(store, "S1", series())
    moved = T0 + timedelta(days=3)
    row_id = store.occurrence_row_id("S1", moved)
    assert row_id is not None
    store.app_delete(MB, row_id)
    (change,) = store.local_changes(MB).changes
    assert change.calsync_id == "S1"
    assert change.event is not None
    assert change.event.data.modified_occurrences == ()
    assert change.event.data.deleted_occurrences == (T0 + timedelta(days=1), moved)


def test_app_update_of_occurrence_row_is_a_change_of_its_series(store: Any) -> None:
    calsync_upsert(store, "S1", series())
    moved = T0 + timedelta(days=3)
    store.app_upsert_occurrence(MB, "S1", moved, single("moved again", moved))
    (change,) = store.local_changes(MB).changes
    assert change.calsync_id == "S1"
    assert change.event is not None
    (occ,) = change.event.data.modified_occurrences
    assert occ.data.subject == "moved again"


def test_bad_rrule_marks_row_error(store: Any) -> None:
    cid = store.app_upsert(MB, replace(single(), recurrence="RRULE:FREQ=HOURLY;COUNT=3"))
    good = store.app_upsert(MB, single("fine"))
    changes = store.local_changes(MB)
    assert [c.calsync_id for c in changes.changes] == [good]
    row = store.raw_row(cid)
    assert row["sync_status"] == "error"
    assert "FREQ" in row["sync_error"]
    assert cid not in store.get_events(MB, [cid])


def test_bad_json_marks_row_error(store: Any) -> None:
    cid = store.app_upsert(MB, single())
    ack(store)
    store.app_write_raw(MB, {"attendees": '[{"name": "no address"}]'}, cid)
    assert store.local_changes(MB).changes == ()
    assert "address" in store.raw_row(cid)["sync_error"]


def test_limit_pages_changes(store: Any) -> None:
    ids = [store.app_upsert(MB, single(f"e{i}")) for i in range(3)]
    first = store.local_changes(MB, limit=2)
    assert [c.calsync_id for c in first.changes] == ids[:2]
    with store.transaction() as tx:
        tx.ack_local(MB, first.cursor)
    rest = store.local_changes(MB, limit=2)
    assert [c.calsync_id for c in rest.changes] == ids[2:]


def test_ack_never_moves_backwards(store: Any) -> None:
    store.app_upsert(MB, single())
    changes = store.local_changes(MB)
    with store.transaction() as tx:
        tx.ack_local(MB, changes.cursor)
        tx.ack_local(MB, 0)
    assert store.local_changes(MB).changes == ()


def test_probe_sees_app_writes_not_calsync_writes(store: Any) -> None:
    store.register_mailboxes([Mailbox(MB, "contoso"), Mailbox(OTHER, "contoso")])
    store.has_local_writes()  # first call primes the probe
    assert store.has_local_writes() is False
    calsync_upsert(store, "E1", single())
    assert store.has_local_writes() is False
    store.app_upsert(MB, single("x"))
    assert store.has_local_writes() is True
    assert store.has_local_writes() is False
    assert store.mailboxes_with_local_changes() == [MB]
    ack(store)
    assert store.mailboxes_with_local_changes() == []


# --- transactions, links, sync state -----------------------------------------------------------


def test_transaction_rolls_back_on_exception(store: Any) -> None:
    def crash() -> None:
        with store.transaction() as tx:
            tx.upsert_event(MB, "E1", single())
            tx.put_link(MB, Link("E1", "I1", "C1", "h1", "h2"))
            tx.set_sync_state(MB, "state-1")
            raise RuntimeError("crash between apply and commit")

    with pytest.raises(RuntimeError):
        crash()
    assert store.get_events(MB, ["E1"]) == {}
    assert store.all_links(MB) == {}
    assert store.get_sync_state(MB) is None


def test_links_and_sync_state(store: Any) -> None:
    a, b = Link("E1", "I1", "C1", "x", "y"), Link("E2", None, None, None, "z")
    with store.transaction() as tx:
        tx.put_link(MB, a)
        tx.put_link(MB, b)
        tx.put_link(OTHER, Link("E9", "I9", "C9", None, None))
        tx.set_sync_state(MB, "s1")
        tx.set_sync_state(MB, "f1", folder="other")
    assert store.links_by_calsync_id(MB, ["E1", "E2", "E9"]) == {"E1": a, "E2": b}
    assert store.links_by_item_id(MB, ["I1", "I9"]) == {"I1": a}
    assert store.all_links(MB) == {"E1": a, "E2": b}
    assert (store.get_sync_state(MB), store.get_sync_state(MB, "other")) == ("s1", "f1")
    newer = replace(a, change_key="C2")
    with store.transaction() as tx:
        tx.put_link(MB, newer)
        tx.delete_link(MB, "E2")
        tx.set_sync_state(MB, None)
    assert store.all_links(MB) == {"E1": newer}
    assert store.get_sync_state(MB) is None


# --- instances ---------------------------------------------------------------------------------


def test_instances_of_a_series(store: Any) -> None:
    calsync_upsert(store, "S1", series())
    calsync_upsert(store, "C1", single("cancelled", is_cancelled=True))
    found = store.instances(MB, T0 - timedelta(days=1), T0 + timedelta(days=30))
    assert len(found) == 9  # 10 minus one deleted; the moved one replaced by its own row
    moved = [i for i in found if i.event_id != "S1"]
    assert [(i.master_id, i.starts_at) for i in moved] == [("S1", T0 + timedelta(days=3, hours=2))]
    assert moved[0].event_id == store.occurrence_row_id("S1", T0 + timedelta(days=3))
    assert all(i.show_as is ShowAs.BUSY for i in found)
    with store.transaction() as tx:
        tx.delete_event(MB, "S1")
    assert store.instances(MB, T0 - timedelta(days=1), T0 + timedelta(days=30)) == []


def test_instances_follow_dst_and_window(store: Any) -> None:
    store.register_mailboxes([Mailbox(MB, "contoso", window_past_days=1, window_future_days=200)])
    start = datetime(2027, 3, 22, 8, 0, tzinfo=UTC)  # 09:00 Berlin (CET)
    weekly = EventData("weekly", start, start + timedelta(hours=1), timezone="Europe/Berlin",
                       recurrence="RRULE:FREQ=WEEKLY;BYDAY=MO")  # fmt: skip
    calsync_upsert(store, "W1", weekly)
    found = store.instances(MB, start, start + timedelta(days=10))
    assert [i.starts_at.hour for i in found] == [8, 7]  # still 09:00 local after the DST change
    everything = store.instances(MB, NOW - timedelta(days=400), NOW + timedelta(days=400))
    assert everything[-1].starts_at < NOW + timedelta(days=201)
    assert store.rebuild_instances(MB) == len(everything)


# --- operations --------------------------------------------------------------------------------


def test_mailbox_status_lifecycle(store: Any, clock: FakeClock) -> None:
    store.register_mailboxes([Mailbox(MB, "contoso"), Mailbox(OTHER, "contoso")])
    store.record_run_failure(MB, NOW, "ErrorAccessDenied", "denied")
    store.record_run_failure(MB, NOW, "ErrorAccessDenied", "denied", paused=True)
    store.record_run_success(OTHER, NOW, items_in=3, items_out=1, lag_s=1.5)
    store.set_next_due(OTHER, NOW + timedelta(minutes=5))
    a, b = store.mailbox_statuses()
    assert (a.address, a.state, a.consecutive_failures, a.last_error_code) == (
        MB, "paused", 2, "ErrorAccessDenied")  # fmt: skip
    assert (b.state, b.last_success, b.items_in, b.lag_s) == ("healthy", NOW, 3, 1.5)
    assert b.next_due == NOW + timedelta(minutes=5)
    assert b.as_json()["next_due"] == "2026-11-22T12:05:00Z"
    store.register_mailboxes([Mailbox(MB, "contoso")])
    assert store.mailbox_status(OTHER).state == "disabled"
    assert store.mailbox_status(MB).state == "paused"


def test_locks(store: Any) -> None:
    lock = store.mailbox_lock(MB)
    with pytest.raises(LockHeld) as held:
        store.mailbox_lock(MB)
    assert held.value.resource == f"mailbox:{MB}"
    with store.mailbox_lock(OTHER), store.store_lock():
        pass
    lock.release()
    store.mailbox_lock(MB).release()


def test_heartbeat_and_settings(store: Any) -> None:
    assert store.read_heartbeat() is None
    store.write_heartbeat(NOW)
    assert store.read_heartbeat() == NOW
    assert store.get_setting("ews_url:a") is None
    store.set_setting("ews_url:a", "https://x/EWS/Exchange.asmx")
    assert store.get_setting("ews_url:a") == "https://x/EWS/Exchange.asmx"
    store.set_setting("ews_url:a", None)
    assert store.get_setting("ews_url:a") is None


def test_purge_mailbox(store: Any) -> None:
    store.register_mailboxes([Mailbox(MB, "contoso")])
    calsync_upsert(store, "S1", series())
    calsync_upsert(store, "O1", single(), mailbox=OTHER)
    store.app_upsert(MB, single("pending"))
    with store.transaction() as tx:
        tx.put_link(MB, Link("S1", "I1", "C1", None, None))
        tx.set_sync_state(MB, "s")
    store.purge_mailbox(MB)
    assert store.count_events(MB) == 0
    assert store.local_changes(MB).changes == ()
    assert (store.all_links(MB), store.get_sync_state(MB), store.mailbox_status(MB)) == (
        {}, None, None)  # fmt: skip
    assert store.instances(MB, NOW, NOW + timedelta(days=30)) == []
    assert store.count_events(OTHER) == 1


def test_wait_for_local_writes(store: Any) -> None:
    store.has_local_writes()
    assert store.wait_for_local_writes(0.05) is False
    store.app_upsert(MB, single())
    assert store.wait_for_local_writes(5) is True


def test_app_upsert_reads_back_exactly(store: Any) -> None:
    calsync_upsert(store, "S1", series())
    fewer = replace(series(), modified_occurrences=(), subject="app edit")
    store.app_upsert(MB, fewer, "S1")
    (change,) = store.local_changes(MB).changes
    assert change.event is not None
    assert change.event.data == fewer
    single_now = single("no longer a series")
    store.app_upsert(MB, single_now, "S1")
    assert store.get_events(MB, ["S1"])["S1"].data == single_now
    assert store.occurrence_row_id("S1", T0 + timedelta(days=3)) is None
