from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from exchangelib import Account
from exchangelib.recurrence import (
    AbsoluteMonthlyPattern,
    AbsoluteYearlyPattern,
    DailyPattern,
    EndDatePattern,
    NoEndPattern,
    NumberedPattern,
    RelativeMonthlyPattern,
    RelativeYearlyPattern,
    WeeklyPattern,
)

from calsync.ews.mapping import item_to_event
from calsync.ews.recurrence import RecurrenceError, rrule_to_recurrence
from calsync.model import EventData

from .conftest import parse_item, wire

# Tuesday 2026-12-01 09:30 in Berlin (08:30 UTC).
SERIES = EventData(
    subject="Standup",
    start=datetime(2026, 12, 1, 8, 30, tzinfo=UTC),
    end=datetime(2026, 12, 1, 8, 45, tzinfo=UTC),
    timezone="Europe/Berlin",
)

PATTERNS = {
    "RRULE:FREQ=DAILY": DailyPattern,
    "RRULE:FREQ=DAILY;INTERVAL=3": DailyPattern,
    "RRULE:FREQ=WEEKLY;BYDAY=TU": WeeklyPattern,
    "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TU,FR": WeeklyPattern,
    "RRULE:FREQ=MONTHLY;BYMONTHDAY=1": AbsoluteMonthlyPattern,
    "RRULE:FREQ=MONTHLY;INTERVAL=6;BYMONTHDAY=31": AbsoluteMonthlyPattern,
    "RRULE:FREQ=MONTHLY;BYDAY=1TU": RelativeMonthlyPattern,
    "RRULE:FREQ=MONTHLY;INTERVAL=2;BYDAY=-1FR": RelativeMonthlyPattern,
    "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=2": RelativeMonthlyPattern,
    "RRULE:FREQ=MONTHLY;BYDAY=SA,SU;BYSETPOS=-1": RelativeMonthlyPattern,
    "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYSETPOS=4": RelativeMonthlyPattern,
    "RRULE:FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=1": AbsoluteYearlyPattern,
    "RRULE:FREQ=YEARLY;BYMONTH=12;BYDAY=1TU": RelativeYearlyPattern,
    "RRULE:FREQ=YEARLY;BYMONTH=5;BYDAY=-1MO": RelativeYearlyPattern,
}
BOUNDARIES = {
    "": NoEndPattern,
    ";COUNT=10": NumberedPattern,
    ";UNTIL=20271130T083000Z": EndDatePattern,
}


@pytest.mark.parametrize("boundary", BOUNDARIES, ids=["no-end", "numbered", "end-date"])
@pytest.mark.parametrize("rule", PATTERNS)
def test_every_pattern_round_trips(account: Account, rule: str, boundary: str) -> None:
    data = replace(SERIES, recurrence=rule + boundary)
    item = wire(account, data)
    assert type(item.recurrence.pattern) is PATTERNS[rule]
    assert type(item.recurrence.boundary) is BOUNDARIES[boundary]
    assert item.recurrence.boundary.start.isoformat().startswith("2026-12-01")
    assert item_to_event(item) == data


def test_all_day_series_round_trips(account: Account) -> None:
    data = replace(
        SERIES,
        start=datetime(2026, 12, 24, tzinfo=UTC),
        end=datetime(2026, 12, 25, tzinfo=UTC),
        is_all_day=True,
        timezone="America/Chicago",
        recurrence="RRULE:FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24;UNTIL=20301224T000000Z",
    )
    assert item_to_event(wire(account, data)) == data


def test_until_between_occurrences_ends_on_the_last_occurrence_day(account: Account) -> None:
    # UNTIL at 00:00 UTC on 2027-01-05 is before that day's 09:30 occurrence: the 4th is the last.
    data = replace(SERIES, recurrence="RRULE:FREQ=DAILY;UNTIL=20270105T000000Z")
    item = wire(account, data)
    assert item.recurrence.boundary.end.isoformat().startswith("2027-01-04")
    assert item_to_event(item).recurrence == "RRULE:FREQ=DAILY;UNTIL=20270104T083000Z"


def test_defaults_come_from_the_start(account: Account) -> None:
    data = replace(SERIES, recurrence="RRULE:FREQ=WEEKLY")
    assert item_to_event(wire(account, data)).recurrence == "RRULE:FREQ=WEEKLY;BYDAY=TU"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("RRULE:FREQ=HOURLY", "FREQ=HOURLY"),
        ("RRULE:FREQ=YEARLY;INTERVAL=2;BYMONTH=1;BYMONTHDAY=1", "no INTERVAL"),
        ("RRULE:FREQ=MONTHLY;BYDAY=1MO,3MO", "one BYDAY"),
        ("RRULE:FREQ=MONTHLY;BYDAY=5MO", "1st..4th"),
        ("RRULE:FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z", "COUNT and UNTIL"),
        ("RRULE:FREQ=DAILY;COUNT=1000", "999"),
        ("RRULE:FREQ=DAILY;BYHOUR=9", "BYHOUR"),
        ("RRULE:FREQ=WEEKLY;BYDAY=1MO", "plain weekdays"),
        ("RRULE:INTERVAL=2", "without FREQ"),
        ("RRULE:FREQ=DAILY;UNTIL=20200101T000000Z", "before the first"),
    ],
)
def test_rules_ews_cannot_store_are_refused(rule: str, message: str) -> None:
    local = SERIES.start.astimezone(UTC)
    with pytest.raises(RecurrenceError, match=message):
        rrule_to_recurrence(rule, local)


MASTER = """
<t:ItemId Id="M1" ChangeKey="CK1"/><t:Subject>Weekly</t:Subject>
<t:Start>2026-12-01T08:30:00Z</t:Start><t:End>2026-12-01T09:00:00Z</t:End>
<t:IsAllDayEvent>false</t:IsAllDayEvent><t:CalendarItemType>RecurringMaster</t:CalendarItemType>
<t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Tuesday</t:DaysOfWeek>
<t:FirstDayOfWeek>Monday</t:FirstDayOfWeek></t:WeeklyRecurrence>
<t:NumberedRecurrence><t:StartDate>2026-12-01+01:00</t:StartDate>
<t:NumberOfOccurrences>8</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence>
<t:ModifiedOccurrences><t:Occurrence><t:ItemId Id="O2" ChangeKey="CK2"/>
<t:Start>2026-12-08T10:00:00Z</t:Start><t:End>2026-12-08T10:30:00Z</t:End>
<t:OriginalStart>2026-12-08T08:30:00Z</t:OriginalStart></t:Occurrence></t:ModifiedOccurrences>
<t:DeletedOccurrences><t:DeletedOccurrence><t:Start>2026-12-15T08:30:00Z</t:Start>
</t:DeletedOccurrence></t:DeletedOccurrences>
<t:StartTimeZone Id="W. Europe Standard Time"/><t:EndTimeZone Id="W. Europe Standard Time"/>
"""

OCCURRENCE = """
<t:ItemId Id="O2" ChangeKey="CK2"/><t:Subject>Weekly (moved)</t:Subject>
<t:Start>2026-12-08T10:00:00Z</t:Start><t:End>2026-12-08T10:30:00Z</t:End>
<t:OriginalStart>2026-12-08T08:30:00Z</t:OriginalStart>
<t:IsAllDayEvent>false</t:IsAllDayEvent><t:CalendarItemType>Exception</t:CalendarItemType>
<t:Location>Room 2</t:Location>
<t:StartTimeZone Id="W. Europe Standard Time"/><t:EndTimeZone Id="W. Europe Standard Time"/>
"""


def test_series_with_modified_and_deleted_occurrences(account: Account) -> None:
    master = parse_item(account, MASTER)
    occurrence = parse_item(account, OCCURRENCE)
    event = item_to_event(master, [occurrence])
    assert event.recurrence == "RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=8"
    assert event.deleted_occurrences == (datetime(2026, 12, 15, 8, 30, tzinfo=UTC),)
    (modified,) = event.modified_occurrences
    assert modified.original_start == datetime(2026, 12, 8, 8, 30, tzinfo=UTC)
    assert modified.data.subject == "Weekly (moved)"
    assert modified.data.location == "Room 2"
    assert modified.data.start == datetime(2026, 12, 8, 10, tzinfo=UTC)
    assert modified.data.recurrence is None
