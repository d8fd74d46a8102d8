"""Recurring series as EWS XML: Recurrence, First/LastOccurrence, Modified/DeletedOccurrences."""

from __future__ import annotations

import datetime as dt

from calsync.sim.ews.xml import esc, ews_dt
from calsync.sim.mailstore import Item, occurrence_id
from calsync.sim.recurrence import MONTHS, Recurrence
from calsync.sim.tz import zoneinfo_for_windows


def _date_with_offset(day: dt.date, zone: str) -> str:
    """xs:date with the zone's offset at that date, as Exchange writes recurrence ranges."""
    offset = dt.datetime.combine(day, dt.time(12), zoneinfo_for_windows(zone)).utcoffset()
    if not offset:
        return f"{day.isoformat()}Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{day.isoformat()}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def recurrence_xml(rec: Recurrence, zone: str = "UTC") -> str:
    kind = rec.kind
    parts: list[str] = []
    if kind in ("DailyRecurrence", "WeeklyRecurrence") or kind.endswith("MonthlyRecurrence"):
        parts.append(f"<t:Interval>{rec.interval}</t:Interval>")
    if kind == "WeeklyRecurrence":
        parts.append(f"<t:DaysOfWeek>{' '.join(rec.days_of_week)}</t:DaysOfWeek>")
        parts.append(f"<t:FirstDayOfWeek>{rec.first_day_of_week}</t:FirstDayOfWeek>")
    elif kind.startswith("Relative"):
        parts.append(f"<t:DaysOfWeek>{rec.days_of_week[0]}</t:DaysOfWeek>")
        parts.append(f"<t:DayOfWeekIndex>{rec.day_of_week_index}</t:DayOfWeekIndex>")
    elif kind.startswith("Absolute"):
        parts.append(f"<t:DayOfMonth>{rec.day_of_month}</t:DayOfMonth>")
    if "Yearly" in kind:
        parts.append(f"<t:Month>{MONTHS[rec.month - 1]}</t:Month>")
    start = f"<t:StartDate>{_date_with_offset(rec.start_date, zone)}</t:StartDate>"
    if rec.end == "numbered":
        rng = (
            f"<t:NumberedRecurrence>{start}<t:NumberOfOccurrences>{rec.count}"
            "</t:NumberOfOccurrences></t:NumberedRecurrence>"
        )
    elif rec.end == "date" and rec.end_date is not None:
        rng = (
            f"<t:EndDateRecurrence>{start}"
            f"<t:EndDate>{_date_with_offset(rec.end_date, zone)}</t:EndDate>"
            "</t:EndDateRecurrence>"
        )
    else:
        rng = f"<t:NoEndRecurrence>{start}</t:NoEndRecurrence>"
    return f"<t:Recurrence><t:{kind}>{''.join(parts)}</t:{kind}>{rng}</t:Recurrence>"


def _occurrence(
    tag: str, ids: tuple[str, str], start: dt.datetime, end: dt.datetime, original: dt.datetime
) -> str:
    item_id, ck = ids
    return (
        f'<t:{tag}><t:ItemId Id="{esc(item_id)}" ChangeKey="{esc(ck)}"/>'
        f"<t:Start>{ews_dt(start)}</t:Start><t:End>{ews_dt(end)}</t:End>"
        f"<t:OriginalStart>{ews_dt(original)}</t:OriginalStart></t:{tag}>"
    )


def master_parts(item: Item, f: frozenset[str]) -> str:
    if item.recurrence is None:
        return ""
    out: list[str] = []
    if "calendar:Recurrence" in f:
        out.append(recurrence_xml(item.recurrence, item.start_tz))
    every = item.occurrence_starts()
    starts = [s for s in every if s not in item.deleted]
    length = item.end - item.start
    ends = (("FirstOccurrence", 0), ("LastOccurrence", -1))
    for tag, pos in ends:
        if not starts or f"calendar:{tag}" not in f:
            continue
        if tag == "LastOccurrence" and item.recurrence.end == "none":
            continue
        original = starts[pos]
        exc = item.exceptions.get(original)
        start = exc.start if exc else original
        end = exc.end if exc else original + length
        oid = exc.item_id if exc else occurrence_id(item, every.index(original) + 1)
        out.append(_occurrence(tag, (oid, item.change_key), start, end, original))
    if "calendar:ModifiedOccurrences" in f and item.exceptions:
        occ = "".join(
            _occurrence("Occurrence", (x.item_id, x.change_key), x.start, x.end, orig)
            for orig, x in sorted(item.exceptions.items())
        )
        out.append(f"<t:ModifiedOccurrences>{occ}</t:ModifiedOccurrences>")
    if "calendar:DeletedOccurrences" in f and item.deleted:
        occ = "".join(
            f"<t:DeletedOccurrence><t:Start>{ews_dt(d)}</t:Start></t:DeletedOccurrence>"
            for d in item.deleted
        )
        out.append(f"<t:DeletedOccurrences>{occ}</t:DeletedOccurrences>")
    return "".join(out)
