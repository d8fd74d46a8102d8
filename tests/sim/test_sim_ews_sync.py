"""exchangelib against the simulator's EWS: folders, SyncFolderItems, GetItem, FindItem."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from exchangelib import CalendarItem, EWSDateTime, EWSTimeZone
from exchangelib.items import SEND_TO_NONE
from exchangelib.services import SyncFolderItems
from simclients import account

from calsync.sim import SimHandle


def _mbx(sim: SimHandle, n: int, tenant: str = "contoso") -> str:
    return str(sim.tenant(tenant)["mailboxes"][n])


def _drain(cal: Any) -> list[tuple[str, Any]]:
    return list(cal.sync_items(max_changes_returned=7))


def test_impersonated_get_folder(sim: SimHandle) -> None:
    address = _mbx(sim, 0)
    sim.admin.reset_stats()
    cal = account(sim, address).calendar
    assert cal.name == "Calendar"
    assert cal.folder_class == "IPF.Appointment"
    stats = sim.admin.stats()
    assert stats["requests"]["GetFolder"] == 2
    assert stats["by_mailbox"][address]["GetFolder"] == 2


def test_full_and_incremental_sync_see_exactly_the_admin_changes(sim: SimHandle) -> None:
    address = _mbx(sim, 1)
    acc = account(sim, address)
    cal = acc.calendar
    expected = {e["item_id"] for e in sim.admin.events(address) if not e["series_item_id"]}
    changes = _drain(cal)  # pages of 7: several round trips
    assert {kind for kind, _ in changes} == {"create"}
    assert {item.id for _, item in changes} == expected
    assert all(item.body is None for _, item in changes)  # SyncFolderItems never returns Body
    assert _drain(cal) == []

    created = sim.admin.create_event(
        address, subject="Neu ✓", start="2026-12-01T10:00:00+01:00",
        end="2026-12-01T11:00:00+01:00", timezone="Europe/Berlin",
    )  # fmt: skip
    victim, edited = sorted(expected)[:2]
    sim.admin.patch_event(address, edited, subject="Edited in Outlook")
    sim.admin.delete_event(address, victim)
    changes = _drain(cal)
    kinds = {(kind, getattr(obj, "id", None)) for kind, obj in changes}
    assert kinds == {("create", created["item_id"]), ("update", edited), ("delete", victim)}
    update = next(obj for kind, obj in changes if kind == "update")
    assert update.subject == "Edited in Outlook"
    assert _drain(cal) == []


def test_sync_paging_and_invalidated_state(sim: SimHandle) -> None:
    from exchangelib.errors import ErrorInvalidSyncStateData

    address = _mbx(sim, 2)
    acc = account(sim, address)
    svc = SyncFolderItems(account=acc)
    pages = []
    state = None
    while True:
        page = list(svc.call(folder=acc.calendar, shape="IdOnly", additional_fields=set(),
                             sync_state=state, ignore=None, max_changes_returned=4,
                             sync_scope=None))  # fmt: skip
        pages.append(page)
        state = svc.sync_state
        if svc.includes_last_item_in_range:
            break
    assert len(pages) == -(-len(sim.admin.events(address)) // 4) or len(pages) >= 2
    sim.admin.set_faults(invalidate_sync_state=[address])
    try:
        list(
            svc.call(
                folder=acc.calendar,
                shape="IdOnly",
                additional_fields=set(),
                sync_state=state,
                ignore=None,
                max_changes_returned=4,
                sync_scope=None,
            )
        )
        raise AssertionError("expected ErrorInvalidSyncStateData")
    except ErrorInvalidSyncStateData:
        pass
    # once only: a fresh full sync works again
    assert list(svc.call(folder=acc.calendar, shape="IdOnly", additional_fields=set(),
                         sync_state=None, ignore=None, max_changes_returned=512,
                         sync_scope=None))  # fmt: skip


def test_get_item_batch_returns_what_outlook_holds(sim: SimHandle) -> None:
    address = _mbx(sim, 3)
    acc = account(sim, address)
    tz = EWSTimeZone("America/New_York")
    created = sim.admin.create_event(
        address, subject="Board <meeting> & co", body="<p>Long body ünïcode</p>",
        location="Room 7", start="2026-12-03T09:30:00-05:00", end="2026-12-03T10:15:00-05:00",
        timezone="America/New_York", show_as="tentative", sensitivity="private",
        categories=["Customer", "Red category"], reminder_minutes=10,
        attendees=[{"address": "a@contoso.example", "name": "A", "type": "required"},
                   {"address": "b@partner.example", "name": "B", "type": "optional"},
                   {"address": "room@contoso.example", "name": "Room", "type": "resource"}],
    )  # fmt: skip
    ids = [(e["item_id"], e["change_key"]) for e in sim.admin.events(address)[:3]]
    ids.append((created["item_id"], created["change_key"]))
    items = list(acc.fetch(ids=ids))
    assert len(items) == 4
    item = items[-1]
    assert isinstance(item, CalendarItem)
    assert item.subject == "Board <meeting> & co"
    assert item.body == "<p>Long body ünïcode</p>"
    assert item.location == "Room 7"
    assert item.start == EWSDateTime(2026, 12, 3, 9, 30, tzinfo=tz)
    assert item.end.astimezone(tz).hour == 10
    assert item._start_timezone == tz
    assert item.legacy_free_busy_status == "Tentative"
    assert item.sensitivity == "Private"
    assert item.categories == ["Customer", "Red category"]
    assert item.reminder_minutes_before_start == 10
    assert [a.mailbox.email_address for a in item.required_attendees] == ["a@contoso.example"]
    assert [a.mailbox.email_address for a in item.optional_attendees] == ["b@partner.example"]
    assert [a.mailbox.email_address for a in item.resources] == ["room@contoso.example"]
    assert item.organizer.email_address == address
    assert item.type == "Single"


def test_all_day_and_calendar_view(sim: SimHandle) -> None:
    address = _mbx(sim, 4)
    acc = account(sim, address)
    tz = EWSTimeZone("Europe/Berlin")
    item = CalendarItem(account=acc, folder=acc.calendar, subject="Holiday", is_all_day=True,
                        start=dt.date(2026, 12, 24), end=dt.date(2026, 12, 26))  # fmt: skip
    item._start_timezone = item._end_timezone = tz
    item.save(send_meeting_invitations=SEND_TO_NONE)
    mine = next(e for e in sim.admin.events(address) if e["item_id"] == item.id)
    assert mine["is_all_day"] is True
    assert mine["start"] == "2026-12-24T00:00:00+01:00"
    assert mine["end"] == "2026-12-27T00:00:00+01:00"
    back = acc.calendar.get(id=item.id)
    assert back.start == dt.date(2026, 12, 24)
    assert back.end == dt.date(2026, 12, 26)
    view = list(acc.calendar.view(start=EWSDateTime(2026, 12, 24, 12, tzinfo=tz),
                                  end=EWSDateTime(2026, 12, 25, tzinfo=tz)))  # fmt: skip
    assert item.id in {v.id for v in view}


def test_every_generated_item_parses_with_all_fields(sim: SimHandle) -> None:
    address = _mbx(sim, 5)
    acc = account(sim, address)
    rows = {e["item_id"]: e for e in sim.admin.events(address)}
    synced = [obj for kind, obj in acc.calendar.sync_items() if kind == "create"]
    exceptions = [(o.id, o.changekey) for s in synced for o in (s.modified_occurrences or [])]
    # fetch() needs (id, changekey) pairs or ItemId objects: a bare string is iterated
    fetched = list(acc.fetch(ids=[(s.id, s.changekey) for s in synced] + exceptions))
    assert len(fetched) == len(rows)
    for item in fetched:
        row = rows[item.id]
        assert item.subject == row["subject"]
        assert item.body == row["body"]
        assert item.is_all_day is row["is_all_day"]
        assert item.type == ("Exception" if row["series_item_id"] else
                             "RecurringMaster" if row["recurrence"] else "Single")  # fmt: skip
        row_start = dt.datetime.fromisoformat(row["start"])
        if item.is_all_day:
            assert item.start == row_start.date()
        else:
            assert item.start == row_start
        # the same zone on both sides (exchangelib maps the Windows id with its own table)
        instant = row_start.replace(tzinfo=None)
        assert item._start_timezone.utcoffset(instant) == ZoneInfo(row["timezone"]).utcoffset(
            instant
        )
        assert item.uid == row["uid"]
        assert {a.mailbox.email_address for a in item.required_attendees or []} == {
            a["address"] for a in row["attendees"] if a["type"] == "required"
        }


def test_distinguished_calendar_needs_no_get_folder(sim: SimHandle) -> None:
    from exchangelib import FolderCollection
    from exchangelib.folders import Calendar, Root
    from exchangelib.properties import DistinguishedFolderId, Mailbox

    address = _mbx(sim, 0, "fabrikam")
    acc = account(sim, address, tenant="fabrikam")
    box = Mailbox(email_address=address)
    root = Root(account=acc, _distinguished_id=DistinguishedFolderId(id="root", mailbox=box))
    cal = Calendar(root=root, _distinguished_id=DistinguishedFolderId(id="calendar", mailbox=box))
    sim.admin.reset_stats()
    changes = list(cal.sync_items(only_fields=["id", "changekey"], max_changes_returned=512))
    assert len(changes) == len(sim.admin.events(address)) - sum(
        1 for e in sim.admin.events(address) if e["series_item_id"]
    )
    sub_id = FolderCollection(account=acc, folders=[cal]).subscribe_to_streaming()
    assert sim.admin.stats()["requests"] == {"SyncFolderItems": 1, "Subscribe": 1}
    acc.root.unsubscribe(sub_id)
