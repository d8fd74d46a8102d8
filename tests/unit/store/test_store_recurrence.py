"""The RRULE subset EWS can store, EXDATE parsing, and expansion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calsync.store.recurrence import (
    RecurrenceError,
    expand,
    format_recurrence,
    parse_recurrence,
    validate_rule,
)


@pytest.mark.parametrize(
    "rule",
    [
        "RRULE:FREQ=DAILY;INTERVAL=2;COUNT=10",
        "RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR",
        "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20270101T000000Z",
        "RRULE:FREQ=WEEKLY;WKST=SU;BYDAY=SU",
        "RRULE:FREQ=MONTHLY;BYMONTHDAY=31",
        "RRULE:FREQ=MONTHLY;BYDAY=-1FR",
        "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
        "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH;UNTIL=20300101",
        "rrule:freq=daily",
    ],
)
def test_subset_accepted(rule: str) -> None:
    validate_rule(rule)


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        ("FREQ=DAILY", "RRULE:"),
        ("RRULE:FREQ=HOURLY", "FREQ"),
        ("RRULE:FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z", "both"),
        ("RRULE:FREQ=MONTHLY;BYDAY=MO", "ordinal"),
        ("RRULE:FREQ=MONTHLY;BYDAY=1MO,2TU", "at most one"),
        ("RRULE:FREQ=WEEKLY;BYDAY=1MO", "only allowed"),
        ("RRULE:FREQ=MONTHLY;BYDAY=5MO", "ordinal"),
        ("RRULE:FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO,TU", "outside"),
        ("RRULE:FREQ=MONTHLY;BYMONTHDAY=1,15", "one day"),
        ("RRULE:FREQ=DAILY;UNTIL=20270101T000000", "UTC"),
        ("RRULE:FREQ=DAILY;INTERVAL=0", "positive"),
    ],
)
def test_outside_subset_refused(rule: str, why: str) -> None:
    with pytest.raises(RecurrenceError, match=why):
        validate_rule(rule)


def test_column_text_round_trip() -> None:
    deleted = (datetime(2026, 12, 8, 9, tzinfo=UTC), datetime(2026, 12, 1, 9, tzinfo=UTC))
    text = format_recurrence("RRULE:FREQ=WEEKLY;BYDAY=TU", deleted)
    assert text == "RRULE:FREQ=WEEKLY;BYDAY=TU\nEXDATE:20261201T090000Z\nEXDATE:20261208T090000Z"
    assert parse_recurrence(text) == ("RRULE:FREQ=WEEKLY;BYDAY=TU", tuple(sorted(deleted)))


def test_lenient_exdate_forms() -> None:
    rule, deleted = parse_recurrence(
        "RRULE:FREQ=DAILY\r\nEXDATE;TZID=Europe/Berlin:20261201T100000,20261202T100000\n"
        "EXDATE;VALUE=DATE:20261203\n"
    )
    assert rule == "RRULE:FREQ=DAILY"
    assert deleted == (
        datetime(2026, 12, 1, 9, tzinfo=UTC),
        datetime(2026, 12, 2, 9, tzinfo=UTC),
        datetime(2026, 12, 3, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "text", ["EXDATE:20261201T100000Z", "RRULE:FREQ=DAILY\nRRULE:FREQ=WEEKLY", "DTSTART:2026"]
)
def test_malformed_column_refused(text: str) -> None:
    with pytest.raises(RecurrenceError):
        parse_recurrence(text)


def test_expand_keeps_local_time_across_dst_and_skips_deleted() -> None:
    start = datetime(2027, 3, 26, 8, tzinfo=UTC)  # Friday 09:00 CET
    got = expand(
        "RRULE:FREQ=DAILY;COUNT=4",
        start=start,
        end=start + timedelta(hours=1),
        timezone="Europe/Berlin",
        deleted=[start + timedelta(days=1)],
        window_start=start - timedelta(days=1),
        window_end=start + timedelta(days=10),
    )
    assert [s.strftime("%d %H") for _, s, _ in got] == ["26 08", "28 07", "29 07"]


def test_expand_respects_window_and_date_until() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    got = expand(
        "RRULE:FREQ=DAILY;UNTIL=20260110",
        start=start,
        end=start + timedelta(days=1),
        timezone="UTC",
        deleted=[],
        window_start=datetime(2026, 1, 5, 12, tzinfo=UTC),
        window_end=datetime(2026, 2, 1, tzinfo=UTC),
    )
    assert [s.day for _, s, _ in got] == [5, 6, 7, 8, 9, 10]
