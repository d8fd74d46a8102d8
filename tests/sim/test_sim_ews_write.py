"""exchangelib writes against the simulator: ChangeKeys, extended properties, recurrence."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from exchangelib import CalendarItem, EWSDateTime, EWSTimeZone, ExtendedProperty
from exchangelib.errors import ErrorIrresolvableConflict, ErrorItemNotFound
from exchangelib.items import SEND_TO_ALL_AND_SAVE_COPY, SEND_TO_NONE
from exchangelib.properties import Attendee, Mailbox
from exchangelib.recurrence import (
    DailyPattern,
    EndDatePattern,
    NumberedPattern,
    Recurrence,
    RelativeMonthlyPattern,
    WeeklyPattern,
)
from simclients import account

from calsync.sim import SimHandle

TZ = EWSTimeZone("Europe/Berlin")


class CalsyncId(ExtendedProperty):  # type: ignore[misc]
    property_set_id = "4ca80195-c234-4a35-b00a-22be78edc0d5"
    property_name = "calsync-id"
    property_type = "String"


@pytest.fixture(autouse=True)
def _registered() -> Iterator[None]:
    CalendarItem.register("calsync_id", CalsyncId)
    yield
    CalendarItem.deregister("calsync_id")


def _address(sim: SimHandle) -> str:
    return str(sim.tenant("fabrikam")["mailboxes"][0])


def test_create_update_delete_with_changekey_conflicts(sim: SimHandle) -> None:
    address = _address(sim)
    acc = account(sim, address, tenant="fabrikam")
    item = CalendarItem(account=acc, folder=acc.calendar, subject="Push me",
                        start=EWSDateTime(2026, 12, 10, 9, tzinfo=TZ),
                        end=EWSDateTime(2026, 12, 10, 10, tzinfo=TZ))  # fmt: skip
    item.save(send_meeting_invitations=SEND_TO_NONE)
    first_key = item.changekey
    on_server = sim.admin.event(address, item.id)
    assert on_server["subject"] == "Push me"
    assert on_server["start"] == "2026-12-10T09:00:00+01:00"
    assert on_server["timezone"] == "Europe/Berlin"

    item.subject = "Pushed again"
    item.save(update_fields=["subject"], conflict_resolution="NeverOverwrite")
    assert item.changekey != first_key
    # a person edits the item in Outlook: our ChangeKey is stale now
    sim.admin.patch_event(address, item.id, location="Outlook moved it")
    item.subject = "Lost update"
    with pytest.raises(ErrorIrresolvableConflict):
        item.save(update_fields=["subject"], conflict_resolution="NeverOverwrite")
    assert sim.admin.event(address, item.id)["subject"] == "Pushed again"
    item.changekey = sim.admin.event(address, item.id)["change_key"]
    item.start = EWSDateTime(2026, 12, 10, 14, tzinfo=TZ)
    item.end = EWSDateTime(2026, 12, 10, 15, tzinfo=TZ)
    item.save(update_fields=["start", "end"], conflict_resolution="NeverOverwrite")
    assert sim.admin.event(address, item.id)["start"] == "2026-12-10T14:00:00+01:00"

    item_id = item.id
    item.delete(send_meeting_cancellations=SEND_TO_NONE)
    assert all(e["item_id"] != item_id for e in sim.admin.events(address))
    with pytest.raises(ErrorItemNotFound):
        acc.calendar.get(id=item_id)


def test_invitations_are_counted(sim: SimHandle) -> None:
    acc = account(sim, _address(sim), tenant="fabrikam")
    before = sim.admin.stats()["invitations_sent"]
    item = CalendarItem(
        account=acc, folder=acc.calendar, subject="Invite",
        start=EWSDateTime(2026, 12, 11, 9, tzinfo=TZ), end=EWSDateTime(2026, 12, 11, 10, tzinfo=TZ),
        required_attendees=[Attendee(mailbox=Mailbox(email_address="x@fabrikam.example"))],
        optional_attendees=[Attendee(mailbox=Mailbox(email_address="y@fabrikam.example"))],
    )  # fmt: skip
    item.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    assert sim.admin.stats()["invitations_sent"] == before + 2
    item.save(send_meeting_invitations=SEND_TO_NONE, update_fields=["subject"])
    assert sim.admin.stats()["invitations_sent"] == before + 2


def test_extended_property_round_trip_and_search(sim: SimHandle) -> None:
    address = _address(sim)
    acc = account(sim, address, tenant="fabrikam")
    item = CalendarItem(account=acc, folder=acc.calendar, subject="Tagged", calsync_id="L-4711",
                        start=EWSDateTime(2026, 12, 12, 9, tzinfo=TZ),
                        end=EWSDateTime(2026, 12, 12, 10, tzinfo=TZ))  # fmt: skip
    item.save(send_meeting_invitations=SEND_TO_NONE)
    assert sim.admin.event(address, item.id)["extended_properties"] == {"calsync-id": "L-4711"}
    found = list(acc.calendar.filter(calsync_id="L-4711").only("id", "changekey", "calsync_id"))
    assert [(f.id, f.calsync_id) for f in found] == [(item.id, "L-4711")]
    assert list(acc.calendar.filter(calsync_id="L-nothing")) == []
    synced = {
        obj.id: obj.calsync_id
        for kind, obj in acc.calendar.sync_items(only_fields=["id", "changekey", "calsync_id"])
        if kind == "create"
    }
    assert synced[item.id] == "L-4711"


def test_recurring_series_with_modified_and_deleted_occurrence(sim: SimHandle) -> None:
    address = str(sim.tenant("fabrikam")["mailboxes"][1])
    acc = account(sim, address, tenant="fabrikam")
    master_ids = sim.admin.create_event(
        address, subject="Standup", start="2026-12-07T09:00:00+01:00",
        end="2026-12-07T09:15:00+01:00", timezone="Europe/Berlin",
        recurrence="RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6",
    )  # fmt: skip
    master_id = master_ids["item_id"]
    moved = sim.admin.create_event(
        address, series_item_id=master_id, original_start="2026-12-09T08:00:00Z",
        start="2026-12-09T11:00:00+01:00", end="2026-12-09T11:30:00+01:00", subject="Standup (moved)",
    )  # fmt: skip
    sim.admin.patch_event(address, master_id, deleted_occurrences=["2026-12-14T08:00:00Z"])
    master = acc.calendar.get(id=master_id)
    assert master.type == "RecurringMaster"
    assert isinstance(master.recurrence.pattern, WeeklyPattern)
    assert master.recurrence.boundary.number == 6
    assert [o.id for o in master.modified_occurrences] == [moved["item_id"]]
    assert master.modified_occurrences[0].original_start == EWSDateTime(
        2026, 12, 9, 8, tzinfo=EWSTimeZone("UTC")
    )
    assert [d.start for d in master.deleted_occurrences] == [
        EWSDateTime(2026, 12, 14, 8, tzinfo=EWSTimeZone("UTC"))
    ]
    exception = acc.calendar.get(id=moved["item_id"])
    assert exception.type == "Exception"
    assert exception.subject == "Standup (moved)"
    assert exception.start == EWSDateTime(2026, 12, 9, 11, tzinfo=TZ)
    view = list(acc.calendar.view(start=EWSDateTime(2026, 12, 7, tzinfo=TZ),
                                  end=EWSDateTime(2026, 12, 31, tzinfo=TZ)))  # fmt: skip
    mine = [v for v in view if v.subject.startswith("Standup")]
    assert [(v.type, v.start.astimezone(TZ).day) for v in mine] == [
        ("Occurrence", 7), ("Exception", 9), ("Occurrence", 16), ("Occurrence", 21),
        ("Occurrence", 23),
    ]  # fmt: skip
    # an occurrence edited through EWS becomes an exception and updates the master
    old_key = acc.calendar.get(id=master_id).changekey
    third = master.occurrence(index=4)
    third.refresh()
    third.subject = "Standup (edited via EWS)"
    third.save(update_fields=["subject"])
    after = acc.calendar.get(id=master_id)
    assert after.changekey != old_key
    assert len(after.modified_occurrences) == 2
    third_row = next(
        e for e in sim.admin.events(address) if e["subject"] == "Standup (edited via EWS)"
    )
    assert third_row["series_item_id"] == master_id
    assert third_row["original_start"] == "2026-12-16T08:00:00Z"
    assert (
        sim.admin.event(address, master_id)["recurrence"] == "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6"
    )
    # a change to an exception shows as an Update of its master in SyncFolderItems
    cal = acc.calendar
    list(cal.sync_items(only_fields=["id", "changekey"]))
    sim.admin.patch_event(address, moved["item_id"], location="Room 2")
    changes = [(k, o.id) for k, o in cal.sync_items(only_fields=["id", "changekey"])]
    assert changes == [("update", master_id)]


@pytest.mark.parametrize(
    "pattern",
    [DailyPattern(interval=2), RelativeMonthlyPattern(interval=1, weekday=5, week_number=5)],
)
def test_series_created_through_ews(sim: SimHandle, pattern: object) -> None:
    address = str(sim.tenant("fabrikam")["mailboxes"][2])
    acc = account(sim, address, tenant="fabrikam")
    boundary = (EndDatePattern(start=dt.date(2026, 12, 1), end=dt.date(2027, 3, 31))
                if isinstance(pattern, RelativeMonthlyPattern)
                else NumberedPattern(start=dt.date(2026, 12, 1), number=5))  # fmt: skip
    item = CalendarItem(account=acc, folder=acc.calendar, subject=f"Series {pattern}",
                        start=EWSDateTime(2026, 12, 1, 16, tzinfo=TZ),
                        end=EWSDateTime(2026, 12, 1, 17, tzinfo=TZ),
                        recurrence=Recurrence(pattern=pattern, boundary=boundary))  # fmt: skip
    item.save(send_meeting_invitations=SEND_TO_NONE)
    row = sim.admin.event(address, item.id)
    if isinstance(pattern, RelativeMonthlyPattern):
        assert row["recurrence"] == "RRULE:FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20270331T140000Z"
        assert row["start"] == "2026-12-25T16:00:00+01:00"  # moved to the first occurrence
    else:
        assert row["recurrence"] == "RRULE:FREQ=DAILY;INTERVAL=2;COUNT=5"
    back = acc.calendar.get(id=item.id)
    assert back.recurrence == item.recurrence


def test_bulk_operations_and_cleared_fields(sim: SimHandle) -> None:
    address = str(sim.tenant("fabrikam")["mailboxes"][3])
    acc = account(sim, address, tenant="fabrikam")
    items = [
        CalendarItem(account=acc, folder=acc.calendar, subject=f"Bulk {n}", location="Here",
                     start=EWSDateTime(2026, 12, 14, 8 + n, tzinfo=TZ),
                     end=EWSDateTime(2026, 12, 14, 9 + n, tzinfo=TZ))
        for n in range(3)
    ]  # fmt: skip
    results = acc.bulk_create(folder=acc.calendar, items=items,
                              send_meeting_invitations=SEND_TO_NONE)  # fmt: skip
    ids = [(r.id, r.changekey) for r in results]
    assert {sim.admin.event(address, i)["subject"] for i, _ in ids} == {
        "Bulk 0",
        "Bulk 1",
        "Bulk 2",
    }
    fetched = list(acc.fetch(ids=ids))
    for item in fetched:
        item.location = None  # sent as DeleteItemField
    acc.bulk_update(items=[(i, ["location"]) for i in fetched])
    assert {sim.admin.event(address, i)["location"] for i, _ in ids} == {""}
    # AutoResolve with a stale ChangeKey is refused as well (the simulator never merges)
    stale = fetched[0]
    sim.admin.patch_event(address, stale.id, subject="changed meanwhile")
    stale.subject = "mine"
    with pytest.raises(ErrorIrresolvableConflict):
        stale.save(update_fields=["subject"])
    acc.bulk_delete(ids=ids)
    remaining = {e["item_id"] for e in sim.admin.events(address)}
    assert not remaining & {i for i, _ in ids}
