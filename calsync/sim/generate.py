"""Seeded, realistic calendars that stay inside the window 30 days past .. 365 days future."""

from __future__ import annotations

import datetime as dt
import random
from functools import lru_cache

from calsync.sim.mailstore import (
    CALSYNC_PROPSET,
    Attendee,
    Item,
    Mailbox,
    new_item_id,
    occurrence_id,
)
from calsync.sim.recurrence import WEEKDAYS, Recurrence
from calsync.sim.tz import zoneinfo_for_windows

ZONES = (
    "W. Europe Standard Time", "W. Europe Standard Time", "W. Europe Standard Time",
    "GMT Standard Time", "Eastern Standard Time", "Pacific Standard Time", "Tokyo Standard Time",
    "India Standard Time", "AUS Eastern Standard Time", "UTC",
)  # fmt: skip
SUBJECTS = (
    "Weekly sync", "1:1", "Budget review", "Sprint planning", "Customer call", "Lunch",
    "Dentist", "Board meeting", "Architecture review", "Team offsite", "Interview",
    "Quarterly business review", "Coffee chat", "Release retrospective", "Training",
    "Réunion d'équipe", "Besprechung Überblick", "会議 — 計画", "Café ☕ with Zoë",
    "Planificación año fiscal", "Обзор проекта", "Kick-off <Project & Co>",
)  # fmt: skip
LOCATIONS = (
    "", "", "Room 101", "Teams", "Conference room Zürich", "Café Müller", "Building 4 / 2.17",
    "Online", "HQ — Atrium",
)  # fmt: skip
CATEGORIES = ("Red category", "Blue category", "Green category", "Customer", "Travel", "Personal")
FIRST = ("Anna", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Ingrid", "José")
LAST = ("Meier", "Smith", "Dubois", "Ivanov", "Nakamura", "García", "Kowalski", "Ólafsson")
SHOW_AS = ("Busy",) * 6 + ("Free", "Tentative", "OOF", "WorkingElsewhere")
SENSITIVITY = ("Normal",) * 8 + ("Private", "Personal", "Confidential")
PAST_DAYS, FUTURE_DAYS = 30, 365


def _person(rng: random.Random, domain: str) -> tuple[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = f"{first}.{last}".lower().encode("ascii", "ignore").decode() or "someone"
    return f"{local}@{domain}", f"{first} {last}"


@lru_cache(maxsize=1024)
def _body_text(paragraphs: int) -> str:
    para = (
        "<p>Agenda: status, risks &amp; next steps. Notes will be shared afterwards. "
        "Bitte pünktlich sein — merci!</p>"
    )
    return "<html><body>" + para * paragraphs + "</body></html>"


def _body(rng: random.Random, long: bool) -> str:
    # bodies of equal length are one shared string: thousands of mailboxes stay small
    return _body_text(rng.randint(200, 600) if long else rng.randint(0, 2))


def generate_mailbox(mbx: Mailbox, count: int, seed: int, domain: str) -> None:
    rng = random.Random(f"{seed}:{mbx.address}")
    today = dt.datetime.now(dt.UTC).date()
    for _ in range(count):
        zone = rng.choice(ZONES)
        tz = zoneinfo_for_windows(zone)
        roll = rng.random()
        recurring = roll < 0.2
        all_day = not recurring and roll < 0.3
        day = today + dt.timedelta(days=rng.randint(-PAST_DAYS + 1, FUTURE_DAYS - 60))
        if all_day:
            length_days = rng.choice((1, 1, 1, 2, 3, 5))
            start = dt.datetime.combine(day, dt.time(0), tz)
            end = dt.datetime.combine(day + dt.timedelta(days=length_days), dt.time(0), tz)
        else:
            start = dt.datetime.combine(day, dt.time(rng.randint(7, 17), rng.choice((0, 30))), tz)
            end = start + dt.timedelta(minutes=rng.choice((15, 30, 30, 60, 60, 90, 120)))
        item = Item(
            item_id=new_item_id(mbx.address),
            start=start.astimezone(dt.UTC),
            end=end.astimezone(dt.UTC),
            subject=rng.choice(SUBJECTS),
            body=_body(rng, rng.random() < 0.05),
            location=rng.choice(LOCATIONS),
            start_tz=zone,
            end_tz=zone,
            is_all_day=all_day,
            show_as="Free" if all_day and rng.random() < 0.5 else rng.choice(SHOW_AS),
            sensitivity=rng.choice(SENSITIVITY),
            categories=rng.sample(CATEGORIES, rng.choice((0, 0, 0, 1, 2))),
            organizer=(mbx.address, mbx.display_name),
            reminder_minutes=rng.choice((0, 5, 15, 15, 30, 1080)),
            reminder_set=rng.random() < 0.8,
        )
        if rng.random() < 0.5 and not all_day:
            for kind in ("required",) * rng.randint(1, 5) + ("optional",) * rng.randint(0, 2):
                address, name = _person(rng, rng.choice((domain, "partner.example")))
                item.attendees.append(
                    Attendee(address, name, kind, rng.choice(("Unknown", "Accept", "Tentative")))
                )
            if rng.random() < 0.2:
                item.attendees.append(
                    Attendee(f"room-{rng.randint(1, 9)}@{domain}", "Meeting room", "resource")
                )
            if rng.random() < 0.1:
                organizer = _person(rng, domain)
                item.organizer = organizer
        if rng.random() < 0.03:
            item.is_cancelled = True
            item.subject = "Canceled: " + item.subject
        if rng.random() < 0.05:
            item.extended[(CALSYNC_PROPSET, "calsync-id", "String")] = (
                f"gen-{rng.getrandbits(48):x}"
            )
        if recurring:
            _make_series(rng, item, day, today)
        mbx.add(item)
        if item.recurrence is not None:
            _add_exceptions(rng, mbx, item)


def _make_series(rng: random.Random, item: Item, day: dt.date, today: dt.date) -> None:
    last_day = today + dt.timedelta(days=FUTURE_DAYS - 1)
    kind = rng.choice(("daily", "weekly", "weekly", "weekly", "amonthly", "rmonthly", "yearly"))
    weekday = WEEKDAYS[day.weekday()]
    if kind == "daily":
        rec = Recurrence("DailyRecurrence", day, interval=rng.choice((1, 1, 2)))
    elif kind == "weekly":
        days = sorted({weekday, *rng.sample(WEEKDAYS[:5], rng.randint(0, 2))}, key=WEEKDAYS.index)
        rec = Recurrence("WeeklyRecurrence", day, interval=rng.choice((1, 1, 2)), days_of_week=days)
    elif kind == "amonthly":
        rec = Recurrence("AbsoluteMonthlyRecurrence", day, day_of_month=min(day.day, 28))
    elif kind == "rmonthly":
        index = ("First", "Second", "Third", "Fourth")[min((day.day - 1) // 7, 3)]
        rec = Recurrence(
            "RelativeMonthlyRecurrence", day, days_of_week=[weekday], day_of_week_index=index
        )
    else:
        rec = Recurrence(
            "AbsoluteYearlyRecurrence", day, day_of_month=min(day.day, 28), month=day.month
        )
    if kind == "yearly" or rng.random() < 0.5:
        rec.end, rec.end_date = "date", min(day + dt.timedelta(days=rng.randint(30, 300)), last_day)
    else:
        rec.end, rec.count = "numbered", rng.randint(3, 20)
    item.recurrence = rec
    dates = rec.dates()
    if dates and dates[-1] > last_day:
        rec.end, rec.end_date, rec.count = "date", last_day, 0
    if dates and dates[0] != day:
        tz = zoneinfo_for_windows(item.start_tz)
        length = item.end - item.start
        wall = item.start.astimezone(tz).time()
        item.start = dt.datetime.combine(dates[0], wall, tz).astimezone(dt.UTC)
        item.end = item.start + length


def _add_exceptions(rng: random.Random, mbx: Mailbox, master: Item) -> None:
    starts = master.occurrence_starts()
    if len(starts) < 3 or rng.random() < 0.4:
        return
    picks = rng.sample(starts[1:], min(len(starts) - 1, rng.randint(1, 3)))
    for n, original in enumerate(picks):
        if n % 2 == 1:
            mbx.delete_occurrence(master, original)
            continue
        shift = dt.timedelta(minutes=rng.choice((-60, 30, 60, 120)))
        exc = Item(
            item_id=occurrence_id(master, starts.index(original) + 1),
            start=original + shift,
            end=original + shift + (master.end - master.start),
            uid=master.uid,
            subject=master.subject + rng.choice(("", " (moved)", " — geändert")),
            body=master.body,
            location=rng.choice(LOCATIONS) or master.location,
            start_tz=master.start_tz,
            end_tz=master.end_tz,
            show_as=master.show_as,
            sensitivity=master.sensitivity,
            categories=list(master.categories),
            organizer=master.organizer,
            attendees=list(master.attendees),
            reminder_minutes=master.reminder_minutes,
            reminder_set=master.reminder_set,
            original_start=original,
        )
        mbx.add_exception(master, exc)
