"""The sync engine over the Graph adapter against the simulator: pull, two-way, resync, faults."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from graph_stack import GraphStack, ews_side

from calsync.errors import AccessDenied, ConflictError, ItemError, MailboxNotFound, ThrottledError
from calsync.model import EventData, ItemRef, Mailbox
from calsync.store.memory import MemoryStore
from calsync.sync.engine import run_sync


class Clock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


def sync(stack: GraphStack, mailbox: Mailbox, store: MemoryStore) -> Any:
    return run_sync(mailbox, stack.side, store, clock=Clock())


def test_initial_pull_equals_what_ews_reads_field_by_field(stack: GraphStack) -> None:
    mailbox = stack.mailbox(0)
    store = MemoryStore()
    report = sync(stack, mailbox, store)
    client, ews = ews_side(stack.sim)
    try:
        expected = {c.item.data.uid: c.item.data for p in ews.fetch_changes(mailbox, None)
                    for c in p.changes if c.item}  # fmt: skip
    finally:
        client.close()
    assert report.local.create == len(expected) == len(stack.sim.admin.events(mailbox.address)) - \
        sum(1 for e in stack.sim.admin.events(mailbox.address) if e["series_item_id"])  # fmt: skip
    rows = store.get_events(mailbox.address, list(store.all_links(mailbox.address)))
    assert {r.data.uid: r.data for r in rows.values()} == expected
    assert any(d.modified_occurrences for d in expected.values())
    assert any(d.deleted_occurrences for d in expected.values())
    # 1 delta page per 50 instances + one $batch per 20 items: far below one request per item
    assert report.requests <= len(expected) // 20 + 1 + 12
    idle = sync(stack, mailbox, store)
    assert (idle.local.as_dict(), idle.exchange.as_dict(), idle.requests) == (
        {"create": 0, "update": 0, "delete": 0},
        {"create": 0, "update": 0, "delete": 0},
        1,
    )


def test_edits_on_both_sides_converge(stack: GraphStack) -> None:
    sim, mailbox, store = stack.sim, stack.mailbox(1), MemoryStore()
    sync(stack, mailbox, store)
    rows = store.get_events(mailbox.address, list(store.all_links(mailbox.address)))
    plain = [(cid, r) for cid, r in rows.items() if not r.data.attendees and not r.data.recurrence]
    (cid, row), (_, other) = plain[0], plain[1]
    store.app_upsert(mailbox.address, replace(row.data, subject="edited locally"), cid)
    new_id = store.app_upsert(mailbox.address, EventData(
        subject="local new", start=dt.datetime(2027, 1, 4, 8, tzinfo=dt.UTC),
        end=dt.datetime(2027, 1, 4, 9, tzinfo=dt.UTC), timezone="America/New_York",
        recurrence="RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6"))  # fmt: skip
    outlook = next(e for e in sim.admin.events(mailbox.address) if e["uid"] == other.data.uid)
    sim.admin.patch_event(mailbox.address, outlook["item_id"], subject="edited in Outlook")
    report = sync(stack, mailbox, store)
    assert report.exchange.as_dict() == {"create": 1, "update": 1, "delete": 0}
    assert report.local.update == 1
    events = {e["subject"]: e for e in sim.admin.events(mailbox.address)}
    assert events["local new"]["recurrence"] == "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6"
    assert events["local new"]["extended_properties"] == {"calsync-id": new_id}
    assert "edited locally" in events
    assert store.get_events(mailbox.address, [new_id])[new_id].data.subject == "local new"
    found = stack.side.find_by_calsync_id(mailbox, new_id)
    assert found is not None
    assert found.calsync_id == new_id
    again = sync(stack, mailbox, store)  # our own writes come back as echoes
    assert again.exchange.as_dict() == {"create": 0, "update": 0, "delete": 0}
    assert again.local.create == again.local.delete == 0


def test_invalidated_delta_token_resyncs_without_duplicates(stack: GraphStack) -> None:
    sim, mailbox, store = stack.sim, stack.mailbox(2), MemoryStore()
    sync(stack, mailbox, store)
    count = store.count_events(mailbox.address)
    sim.admin.set_faults(invalidate_sync_state=[mailbox.address])
    report = sync(stack, mailbox, store)
    assert report.full_resync
    assert report.local.as_dict() == {"create": 0, "update": 0, "delete": 0}
    assert store.count_events(mailbox.address) == count


def test_stale_change_key_is_a_conflict_and_meetings_are_not_written(stack: GraphStack) -> None:
    sim, mailbox = stack.sim, stack.mailbox(3)
    data = EventData(subject="x", start=dt.datetime(2027, 1, 8, 8, tzinfo=dt.UTC),
                     end=dt.datetime(2027, 1, 8, 9, tzinfo=dt.UTC))  # fmt: skip
    ref = stack.side.create(mailbox, "cid-conflict", data)
    stack.side.update(mailbox, ref, replace(data, subject="y"))
    with pytest.raises(ConflictError):
        stack.side.update(mailbox, ref, replace(data, subject="z"))
    meeting = next(e for e in sim.admin.events(mailbox.address) if e["attendees"]
                   and not e["series_item_id"])  # fmt: skip
    item = next(c.item for p in stack.side.fetch_changes(mailbox, None) for c in p.changes
                if c.item and c.item.data.uid == meeting["uid"])  # fmt: skip
    sent = sim.admin.stats()["invitations_sent"]
    with pytest.raises(ItemError) as info:
        stack.side.update(mailbox, item.ref, replace(item.data, subject="no mail please"))
    assert info.value.error_code == "meeting_write_skipped"
    with pytest.raises(ItemError):
        stack.side.delete(mailbox, item.ref)
    assert sim.admin.stats()["invitations_sent"] == sent
    allowed = type(stack.side)(stack.client, meeting_updates=frozenset({mailbox.address}))
    allowed.update(mailbox, item.ref, replace(item.data, subject="mail them"))
    assert sim.admin.stats()["invitations_sent"] == sent + len(meeting["attendees"])


def test_graph_errors_map_to_calsync_errors(stack: GraphStack) -> None:
    sim, mailbox = stack.sim, stack.mailbox(4)
    sim.admin.set_faults(deny_mailboxes=[mailbox.address])
    with pytest.raises(AccessDenied):
        list(stack.side.fetch_changes(mailbox, None))
    sim.admin.set_faults(deny_mailboxes=[], server_busy_rate=1.0, server_busy_backoff_ms=4000)
    with pytest.raises(ThrottledError) as info:
        list(stack.side.fetch_changes(mailbox, None))
    assert info.value.retry_after == 4
    sim.admin.clear_faults()
    with pytest.raises(MailboxNotFound):
        list(stack.side.fetch_changes(Mailbox("ghost@contoso.example", "contoso"), None))
    assert stack.side.get(mailbox, "AAkALgbm9uZQ") is None
    stack.side.delete(mailbox, ItemRef("AAkALgbm9uZQ", "ck"))  # already gone: fine
