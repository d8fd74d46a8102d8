from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from exchangelib import Account

from calsync.ews.mapping import item_to_event
from calsync.model import Attendee, AttendeeType, EventData, Sensitivity, ShowAs

from .conftest import parse_item, wire

BASE = EventData(
    subject="Planning",
    start=datetime(2026, 12, 1, 8, 30, tzinfo=UTC),
    end=datetime(2026, 12, 1, 9, 45, tzinfo=UTC),
    timezone="Europe/Berlin",
)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"subject": "Ünïcode & <xml> chars"},
        {"location": "Room 4.12"},
        {"body": "line one\nline two & more"},
        {"timezone": "America/New_York"},
        {"timezone": "Asia/Kolkata"},
        {"timezone": "UTC"},
        {"timezone": "Australia/Lord_Howe"},
        {"show_as": ShowAs.FREE},
        {"show_as": ShowAs.TENTATIVE},
        {"show_as": ShowAs.OOF},
        {"show_as": ShowAs.WORKING_ELSEWHERE},
        {"sensitivity": Sensitivity.PRIVATE},
        {"sensitivity": Sensitivity.CONFIDENTIAL},
        {"sensitivity": Sensitivity.PERSONAL},
        {"categories": ("Red category", "Kunden")},
        {"reminder_minutes": 15},
        {"reminder_minutes": 0},
        {"uid": "040000008200E00074C5B7101A82E0080000000001"},
        {
            "attendees": (
                Attendee("bob@contoso.example", "Bob", AttendeeType.REQUIRED),
                Attendee("carol@contoso.example", "Carol", AttendeeType.OPTIONAL),
                Attendee("room1@contoso.example", "Room 1", AttendeeType.RESOURCE),
            )
        },
    ],
    ids=lambda c: ",".join(c) or "plain",
)
def test_field_round_trip(account: Account, changes: dict[str, object]) -> None:
    data = replace(BASE, **changes)  # type: ignore[arg-type]
    # responses are Exchange's: a new attendee has not answered yet
    expected = replace(data, attendees=tuple(replace(a, response="none") for a in data.attendees))
    assert item_to_event(wire(account, data)) == expected


@pytest.mark.parametrize(
    "zone", ["Europe/Berlin", "Pacific/Auckland", "America/Los_Angeles", "UTC"]
)
def test_all_day_round_trip_keeps_dates_and_zone(account: Account, zone: str) -> None:
    data = replace(
        BASE,
        start=datetime(2026, 3, 28, tzinfo=UTC),
        end=datetime(2026, 3, 31, tzinfo=UTC),
        is_all_day=True,
        timezone=zone,
    )
    item = wire(account, data)
    assert item.start.isoformat() == "2026-03-28"
    assert item.end.isoformat() == "2026-03-30"  # exchangelib's inclusive last day
    assert item_to_event(item) == data


def test_all_day_from_server_is_midnight_in_its_zone(account: Account) -> None:
    item = parse_item(
        account,
        "<t:Subject>Holiday</t:Subject><t:Start>2026-05-0"
        "1T22:00:00Z</t:Start><t:End>2026-05-03T22:00:00Z</t:End>"
        "<t:IsAllDayEvent>true</t:IsAllDayEvent>"
        '<t:StartTimeZone Id="W. Europe Standard Time"/><t:EndTimeZone Id="W. Europe Standard Time"/>',
    )
    event = item_to_event(item)
    assert event.is_all_day
    assert event.start == datetime(2026, 5, 2, tzinfo=UTC)
    assert event.end == datetime(2026, 5, 4, tzinfo=UTC)
    assert event.timezone == "Europe/Berlin"


def test_exchange_owned_fields_are_read(account: Account) -> None:
    item = parse_item(
        account,
        "<t:Subject>Review</t:Subject>"
        "<t:Start>2026-05-01T10:00:00Z</t:Start><t:End>2026-05-01T11:00:00Z</t:End>"
        "<t:IsCancelled>true</t:IsCancelled>"
        "<t:Organizer><t:Mailbox><t:Name>Dave</t:Name>"
        "<t:EmailAddress>dave@contoso.example</t:EmailAddress></t:Mailbox></t:Organizer>"
        "<t:RequiredAttendees><t:Attendee><t:Mailbox><t:Name>Bob</t:Name>"
        "<t:EmailAddress>bob@contoso.example</t:EmailAddress></t:Mailbox>"
        "<t:ResponseType>Accept</t:ResponseType></t:Attendee>"
        "<t:Attendee><t:Mailbox><t:EmailAddress>eve@contoso.example</t:EmailAddress></t:Mailbox>"
        "<t:ResponseType>NoResponseReceived</t:ResponseType></t:Attendee></t:RequiredAttendees>"
        '<t:StartTimeZone Id="Tokyo Standard Time"/>',
    )
    event = item_to_event(item)
    assert event.is_cancelled
    assert event.organizer == "dave@contoso.example"
    assert event.attendees == (
        Attendee("bob@contoso.example", "Bob", AttendeeType.REQUIRED, "accept"),
        Attendee("eve@contoso.example", "", AttendeeType.REQUIRED, "none"),
    )
    assert event.timezone == "Asia/Tokyo"


def test_html_body_becomes_text(account: Account) -> None:
    item = parse_item(
        account,
        '<t:Subject>x</t:Subject><t:Body BodyType="HTML">&lt;html&gt;&lt;style&gt;p{}&lt;/style&gt;'
        "&lt;p&gt;Hello &amp;amp; welcome&lt;/p&gt;&lt;/html&gt;</t:Body>"
        "<t:Start>2026-05-01T10:00:00Z</t:Start><t:End>2026-05-01T11:00:00Z</t:End>",
    )
    assert item_to_event(item).body == "Hello & welcome"


def test_timezone_the_table_does_not_know_is_refused(account: Account) -> None:
    with pytest.raises(ValueError, match="unknown IANA"):
        wire(account, replace(BASE, timezone="Mars/Olympus_Mons"))
