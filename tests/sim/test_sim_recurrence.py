"""The simulator's own recurrence expansion, checked against dateutil's RRULE engine."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.sim.core import SimCore, SimOptions
from calsync.sim.recurrence import Recurrence, RecurrenceError, occurrence_starts

BERLIN = ZoneInfo("Europe/Berlin")
RULES = [
    "RRULE:FREQ=DAILY;COUNT=10",
    "RRULE:FREQ=DAILY;INTERVAL=3;COUNT=7",
    "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=12",
    "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;COUNT=9",
    "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=SU,MO;WKST=SU;COUNT=9",
    "RRULE:FREQ=MONTHLY;BYMONTHDAY=15;COUNT=6",
    "RRULE:FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=3;COUNT=5",
    "RRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=6",
    "RRULE:FREQ=MONTHLY;BYDAY=2TU;COUNT=6",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=10;COUNT=3",
    "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH;COUNT=3",
    "RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20270301T080000Z",
]


@pytest.mark.parametrize("rule", RULES)
def test_expansion_matches_dateutil(rule: str) -> None:
    first = dt.datetime(2026, 11, 23, 9, 0, tzinfo=BERLIN)  # a Monday; DST change in March
    rec = Recurrence.from_rrule(rule, first)
    mine = occurrence_starts(rec, first.astimezone(dt.UTC), "W. Europe Standard Time")
    theirs = [d.astimezone(dt.UTC) for d in rrulestr(rule, dtstart=first)]
    assert mine == theirs
    again = Recurrence.from_rrule(
        rec.to_rrule(first.timetz().replace(tzinfo=None), "W. Europe Standard Time"), first
    )
    assert again == rec


def test_unsupported_rules_are_refused() -> None:
    start = dt.datetime(2026, 11, 23, 9, tzinfo=BERLIN)
    for rule in (
        "RRULE:FREQ=HOURLY",
        "RRULE:FREQ=MONTHLY;BYDAY=1MO,2TU",
        "RRULE:FREQ=DAILY;BYSETPOS=1",
    ):
        with pytest.raises(RecurrenceError):
            Recurrence.from_rrule(rule, start)


def test_generated_calendars_are_seeded_realistic_and_inside_the_window() -> None:
    one = SimCore(SimOptions(mailboxes=4, events_per_mailbox=40, seed=11))
    two = SimCore(SimOptions(mailboxes=4, events_per_mailbox=40, seed=11))
    boxes = list(one.mailboxes.values())
    subjects = [[i.subject for i in m.items.values()] for m in boxes]
    assert subjects == [[i.subject for i in m.items.values()] for m in two.mailboxes.values()]
    items = [i for m in boxes for i in m.items.values()]
    now = dt.datetime.now(dt.UTC)
    low, high = now - dt.timedelta(days=30), now + dt.timedelta(days=365)
    for item in items:
        starts = item.occurrence_starts() or [item.start]
        assert low <= starts[0] and starts[-1] + (item.end - item.start) <= high, item.subject
    assert any(i.recurrence is not None and i.exceptions for i in items)
    assert any(i.deleted for i in items)
    assert any(i.is_all_day for i in items)
    assert len({i.start_tz for i in items}) >= 4
    assert any(i.attendees for i in items)
    assert any(i.sensitivity == "Private" for i in items)
    assert any(not i.subject.isascii() for i in items)
    assert any(len(i.body) > 10_000 for i in items)


RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@st.composite
def rules(draw: st.DrawFn) -> str:
    freq = draw(
        st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "MONTHLY_REL", "YEARLY", "YEARLY_REL"])
    )
    parts: list[str] = []
    if freq == "DAILY":
        parts += ["FREQ=DAILY", f"INTERVAL={draw(st.integers(1, 9))}"]
    elif freq == "WEEKLY":
        days = draw(st.lists(st.sampled_from(RRULE_DAYS), min_size=1, max_size=4, unique=True))
        parts += ["FREQ=WEEKLY", f"INTERVAL={draw(st.integers(1, 4))}", "BYDAY=" + ",".join(days)]
    elif freq == "MONTHLY":
        parts += ["FREQ=MONTHLY", f"INTERVAL={draw(st.integers(1, 6))}",
                  f"BYMONTHDAY={draw(st.integers(1, 28))}"]  # fmt: skip
    elif freq == "MONTHLY_REL":
        ordinal = draw(st.sampled_from(["1", "2", "3", "4", "-1"]))
        parts += ["FREQ=MONTHLY", f"BYDAY={ordinal}{draw(st.sampled_from(RRULE_DAYS))}"]
    elif freq == "YEARLY":
        parts += ["FREQ=YEARLY", f"BYMONTH={draw(st.integers(1, 12))}",
                  f"BYMONTHDAY={draw(st.integers(1, 28))}"]  # fmt: skip
    else:
        ordinal = draw(st.sampled_from(["1", "2", "3", "4", "-1"]))
        parts += ["FREQ=YEARLY", f"BYMONTH={draw(st.integers(1, 12))}",
                  f"BYDAY={ordinal}{draw(st.sampled_from(RRULE_DAYS))}"]  # fmt: skip
    parts.append(f"COUNT={draw(st.integers(1, 25))}")
    return "RRULE:" + ";".join(parts)


@settings(max_examples=150, deadline=None)
@given(rule=rules(), day=st.integers(0, 400), hour=st.integers(0, 23))
def test_random_patterns_match_dateutil(rule: str, day: int, hour: int) -> None:
    zone = ZoneInfo("America/New_York")
    first = dt.datetime.combine(dt.date(2026, 1, 1) + dt.timedelta(days=day), dt.time(hour), zone)
    rec = Recurrence.from_rrule(rule, first)
    theirs = [d.astimezone(dt.UTC) for d in rrulestr(rule, dtstart=first)]
    # EWS moves the series start to the first occurrence, as dateutil counts from dtstart
    anchor = theirs[0] if rec.kind != "WeeklyRecurrence" and "DAILY" not in rule else first
    mine = occurrence_starts(rec, anchor.astimezone(dt.UTC), "Eastern Standard Time")
    assert mine == theirs
