"""EwsExchangeSide against the simulator: pull field by field, paging, writes, conflicts."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sim_stack import Stack

from calsync import timezones
from calsync.errors import ConflictError, SyncStateInvalid
from calsync.ews import EwsExchangeSide
from calsync.ews.recurrence import parse_rrule
from calsync.model import (
    Attendee,
    AttendeeType,
    EventData,
    ExchangeItem,
    ModifiedOccurrence,
    ShowAs,
)

RESPONSES = {"accepted": "accept", "declined": "decline"}


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _day(text: str) -> datetime:
    local = datetime.fromisoformat(text).date()
    return datetime(local.year, local.month, local.day, tzinfo=UTC)


def assert_same(event: dict[str, Any], data: EventData) -> None:
    """One simulator event (admin JSON) equals the model read through EWS, field by field."""
    assert data.subject == event["subject"]
    assert data.location == (event["location"] or "")
    assert data.uid == event["uid"]
    assert data.is_all_day == event["is_all_day"]
    if data.is_all_day:
        assert data.start == _day(event["start"])
        assert data.end == _day(event["end"])
    else:
        assert data.start == _instant(event["start"])
        assert data.end == _instant(event["end"])
    assert timezones.iana_to_windows(data.timezone) == event["windows_timezone"]
    assert data.show_as == event["show_as"]
    assert data.sensitivity == event["sensitivity"]
    assert list(data.categories) == event["categories"]
    assert data.organizer == event["organizer"]
    assert data.reminder_minutes == event["reminder_minutes"]
    assert data.is_cancelled == event["is_cancelled"]
    assert [(a.address, a.name, a.type.value) for a in data.attendees] == [
        (a["address"], a["name"], a["type"]) for a in event["attendees"]
    ]
    assert [a.response for a in data.attendees] == [
        RESPONSES.get(a["response"], a["response"]) for a in event["attendees"]
    ]
    assert _rule(data.recurrence) == _rule(event["recurrence"])
    expected_deleted = [
        _day(d) if data.is_all_day else _instant(d) for d in event["deleted_occurrences"]
    ]
    if data.is_all_day:  # the simulator gives the UTC instant of local midnight
        expected_deleted = [
            d.astimezone(timezones_zone(data.timezone)).replace(tzinfo=None) for d in
            (_instant(x) for x in event["deleted_occurrences"])
        ]  # fmt: skip
        expected_deleted = [datetime.combine(d.date(), datetime.min.time(), UTC) for d in
                            expected_deleted]  # fmt: skip
    assert list(data.deleted_occurrences) == expected_deleted
    if "<" not in event["body"]:
        assert data.body == event["body"]


def _rule(text: str | None) -> dict[str, str] | None:
    if text is None:
        return None
    parts = parse_rrule(text)
    parts.setdefault("INTERVAL", "1")
    return parts


def timezones_zone(iana: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(iana)


def pull(stack: Stack, index: int, state: str | None = None) -> tuple[dict[str, ExchangeItem], str]:
    items: dict[str, ExchangeItem] = {}
    pages = list(stack.side.fetch_changes(stack.mailbox(index), state))
    for page in pages:
        assert page.bad_items == ()
        for change in page.changes:
            assert change.item is not None
            items[change.item_id] = change.item
    assert pages[-1].last_page
    return items, pages[-1].sync_state


def test_initial_pull_equals_the_simulator_field_by_field(stack: Stack) -> None:
    for index in range(3):
        address = stack.mailbox(index).address
        before = stack.client.request_count(address)
        items, _ = pull(stack, index)
        events = stack.sim.admin.events(address)
        masters = [e for e in events if not e["series_item_id"]]
        occurrences = [e for e in events if e["series_item_id"]]
        assert set(items) == {e["item_id"] for e in masters}
        for event in masters:
            item = items[event["item_id"]]
            assert item.ref.change_key == event["change_key"]
            assert_same(event, item.data)
        for event in occurrences:
            master = items[event["series_item_id"]]
            modified = {m.original_start: m.data for m in master.data.modified_occurrences}
            assert_same(event | {"recurrence": None}, modified[_instant(event["original_start"])])
        # ceil(n/512) SyncFolderItems + ceil(g/100) GetItem + ceil(x/100) GetItem
        minimum = 1 + math.ceil(len(masters) / 100) + math.ceil(len(occurrences) / 100)
        assert stack.client.request_count(address) - before == minimum


def test_pages_carry_their_state_and_resume(stack: Stack) -> None:
    side = EwsExchangeSide(stack.client, page_size=5)
    mailbox = stack.mailbox(3)
    pages = list(side.fetch_changes(mailbox, None))
    total = len([e for e in stack.sim.admin.events(mailbox.address) if not e["series_item_id"]])
    assert len(pages) == math.ceil(total / 5) or len(pages) == math.ceil(total / 5) + 1
    assert [p.last_page for p in pages][-1] is True
    assert sum(len(p.changes) for p in pages) == total
    # resuming from the second page's state returns only what came after it
    rest = list(side.fetch_changes(mailbox, pages[1].sync_state))
    assert sum(len(p.changes) for p in rest) == total - sum(len(p.changes) for p in pages[:2])
    # nothing changed since the last page: one request, no changes
    before = stack.client.request_count(mailbox.address)
    (idle,) = side.fetch_changes(mailbox, pages[-1].sync_state)
    assert idle.changes == ()
    assert stack.client.request_count(mailbox.address) - before == 1


def test_incremental_sees_outlook_edits_and_deletes(stack: Stack) -> None:
    mailbox = stack.mailbox(4)
    items, state = pull(stack, 4)
    edited, removed = list(items)[:2]
    stack.sim.admin.patch_event(mailbox.address, edited, subject="Moved by Outlook")
    stack.sim.admin.delete_event(mailbox.address, removed)
    changes = [c for p in stack.side.fetch_changes(mailbox, state) for c in p.changes]
    by_id = {c.item_id: c for c in changes}
    assert set(by_id) == {edited, removed}
    assert by_id[removed].is_delete
    item = by_id[edited].item
    assert item is not None
    assert item.data.subject == "Moved by Outlook"


SERIES = EventData(
    subject="calsync series",
    start=datetime(2027, 1, 5, 8, 0, tzinfo=UTC),
    end=datetime(2027, 1, 5, 9, 0, tzinfo=UTC),
    timezone="America/New_York",
    location="Room 7",
    body="pushed by calsync",
    reminder_minutes=10,
    show_as=ShowAs.TENTATIVE,
    categories=("calsync",),
    attendees=(Attendee("bob@partner.example", "Bob", AttendeeType.OPTIONAL),),
    recurrence="RRULE:FREQ=WEEKLY;BYDAY=TU,TH;COUNT=6",
)


def test_create_update_delete_round_trip(stack: Stack) -> None:
    mailbox = stack.mailbox(5)
    _, state = pull(stack, 5)
    ref = stack.side.create(mailbox, "cid-1", SERIES)
    event = stack.sim.admin.event(mailbox.address, ref.item_id)
    assert event["extended_properties"] == {"calsync-id": "cid-1"}
    assert event["recurrence"] == SERIES.recurrence
    assert event["windows_timezone"] == "Eastern Standard Time"
    found = stack.side.find_by_calsync_id(mailbox, "cid-1")
    assert found is not None
    assert found.ref == ref
    assert found.calsync_id == "cid-1"
    assert replace(found.data, organizer=None, uid=None, attendees=()) == replace(
        SERIES, attendees=()
    )
    # our own write is an echo: no change reported, no GetItem spent on it
    before = stack.client.transport.operations_for(mailbox.address).get("GetItem", 0)
    changes = [c for p in stack.side.fetch_changes(mailbox, state) for c in p.changes]
    assert changes == []
    assert stack.client.transport.operations_for(mailbox.address).get("GetItem", 0) == before
    # ... but a full resync reports it like every other item
    everything, _ = pull(stack, 5)
    assert everything[ref.item_id].calsync_id == "cid-1"

    moved = replace(
        SERIES, subject="calsync series (moved)", start=SERIES.start + timedelta(hours=1)
    )
    new_ref = stack.side.update(mailbox, ref, moved)
    assert new_ref.change_key != ref.change_key
    assert stack.sim.admin.event(mailbox.address, ref.item_id)["subject"] == moved.subject
    with pytest.raises(ConflictError):
        stack.side.update(mailbox, ref, SERIES)  # planned from the old ChangeKey
    stack.side.delete(mailbox, new_ref)
    assert stack.side.get(mailbox, ref.item_id) is None
    stack.side.delete(mailbox, new_ref)  # already gone: fine
    assert stack.side.find_by_calsync_id(mailbox, "cid-1") is None
    assert stack.sim.admin.stats()["invitations_sent"] == 0


def test_all_day_push_keeps_its_dates(stack: Stack) -> None:
    mailbox = stack.mailbox(6)
    data = EventData(
        subject="Offsite",
        start=datetime(2027, 2, 1, tzinfo=UTC),
        end=datetime(2027, 2, 3, tzinfo=UTC),
        is_all_day=True,
        timezone="Pacific/Auckland",
    )
    ref = stack.side.create(mailbox, "cid-allday", data)
    event = stack.sim.admin.event(mailbox.address, ref.item_id)
    assert event["start"].startswith("2027-02-01T00:00:00+13:00")
    assert event["end"].startswith("2027-02-03T00:00:00+13:00")
    got = stack.side.get(mailbox, ref.item_id)
    assert got is not None
    assert (got.data.start, got.data.end, got.data.is_all_day) == (data.start, data.end, True)
    assert date(2027, 2, 1) == got.data.start.date()


def test_invalid_sync_state_is_reported(stack: Stack) -> None:
    mailbox = stack.mailbox(7)
    _, state = pull(stack, 7)
    stack.sim.admin.set_faults(invalidate_sync_state=[mailbox.address])
    with pytest.raises(SyncStateInvalid) as caught:
        list(stack.side.fetch_changes(mailbox, state))
    assert caught.value.error_code == "ErrorInvalidSyncStateData"
    # a full resync works
    items, _ = pull(stack, 7)
    assert items


def test_series_exceptions_are_pushed_and_updated(stack: Stack) -> None:
    mailbox = stack.mailbox(8)
    tuesday = datetime(2027, 1, 5, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    base = EventData(
        subject="Weekly sync",
        start=tuesday,
        end=tuesday + timedelta(minutes=30),
        timezone="Europe/Berlin",
        recurrence="RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=8",
    )
    moved = replace(
        base,
        subject="Weekly sync (moved)",
        start=tuesday + timedelta(weeks=2, hours=2),
        end=tuesday + timedelta(weeks=2, hours=2, minutes=30),
        recurrence=None,
    )
    data = replace(
        base,
        deleted_occurrences=(tuesday + timedelta(weeks=1),),
        modified_occurrences=(ModifiedOccurrence(tuesday + timedelta(weeks=2), moved),),
    )
    ref = stack.side.create(mailbox, "cid-series", data)
    events = stack.sim.admin.events(mailbox.address)
    master = next(e for e in events if e["item_id"] == ref.item_id)
    assert master["change_key"] == ref.change_key
    assert master["deleted_occurrences"] == ["2027-01-12T08:00:00Z"]
    (exception,) = [e for e in events if e["series_item_id"] == ref.item_id]
    assert exception["subject"] == "Weekly sync (moved)"
    assert exception["original_start"] == "2027-01-19T08:00:00Z"
    assert _instant(exception["start"]) == moved.start
    got = stack.side.get(mailbox, ref.item_id)
    assert got is not None
    assert got.data.deleted_occurrences == data.deleted_occurrences
    assert [
        (m.original_start, m.data.subject, m.data.start) for m in got.data.modified_occurrences
    ] == [(tuesday + timedelta(weeks=2), moved.subject, moved.start)]
    # another occurrence deleted, the modification changed again
    again = replace(moved, subject="Weekly sync (moved twice)")
    changed = replace(
        data,
        deleted_occurrences=(tuesday + timedelta(weeks=1), tuesday + timedelta(weeks=4)),
        modified_occurrences=(ModifiedOccurrence(tuesday + timedelta(weeks=2), again),),
    )
    new_ref = stack.side.update(mailbox, ref, changed)
    got = stack.side.get(mailbox, ref.item_id)
    assert got is not None
    assert got.ref == new_ref
    assert got.data.deleted_occurrences == changed.deleted_occurrences
    assert [m.data.subject for m in got.data.modified_occurrences] == ["Weekly sync (moved twice)"]
    # the series becomes a single event
    single = replace(base, recurrence=None)
    stack.side.update(mailbox, new_ref, single)
    event = stack.sim.admin.event(mailbox.address, ref.item_id)
    assert event["recurrence"] is None
    now_single = stack.side.get(mailbox, ref.item_id)
    assert now_single is not None
    assert now_single.data.recurrence is None
    assert now_single.data.modified_occurrences == ()
    assert stack.sim.admin.stats()["invitations_sent"] == 0
