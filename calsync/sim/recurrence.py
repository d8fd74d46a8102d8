"""Recurrence patterns in EWS's vocabulary, their expansion and their RRULE text."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field

from calsync.sim.tz import zoneinfo_for_windows

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
INDEXES = ("First", "Second", "Third", "Fourth", "Last")
MONTHS = tuple(calendar.month_name)[1:]
KINDS = (
    "DailyRecurrence",
    "WeeklyRecurrence",
    "AbsoluteMonthlyRecurrence",
    "RelativeMonthlyRecurrence",
    "AbsoluteYearlyRecurrence",
    "RelativeYearlyRecurrence",
)
MAX_OCCURRENCES = 2000


class RecurrenceError(ValueError):
    """A pattern the simulator (like EWS) cannot store."""


@dataclass
class Recurrence:
    """One EWS recurrence: a pattern and a range (`end` is none, date or numbered)."""

    kind: str
    start_date: dt.date
    interval: int = 1
    days_of_week: list[str] = field(default_factory=list)
    day_of_month: int = 0
    day_of_week_index: str = "First"
    month: int = 0
    first_day_of_week: str = "Monday"
    end: str = "none"
    end_date: dt.date | None = None
    count: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RecurrenceError(f"unsupported recurrence pattern {self.kind}")
        if self.interval < 1:
            raise RecurrenceError("Interval must be at least 1")
        for day in self.days_of_week:
            if day not in (*WEEKDAYS, "Day", "Weekday", "WeekendDay"):
                raise RecurrenceError(f"unknown day {day!r}")
        if self.kind == "WeeklyRecurrence" and not self.days_of_week:
            raise RecurrenceError("WeeklyRecurrence needs DaysOfWeek")

    # expansion -----------------------------------------------------------------------------

    def dates(self, limit: int = MAX_OCCURRENCES) -> list[dt.date]:
        """The occurrence dates in order (bounded by the range and by `limit`)."""
        out: list[dt.date] = []
        for day in self._candidates():
            if day < self.start_date:
                continue
            if self.end == "date" and self.end_date is not None and day > self.end_date:
                break
            out.append(day)
            if (self.end == "numbered" and len(out) >= self.count) or len(out) >= limit:
                break
        return out

    def _candidates(self) -> list[dt.date]:
        # Generate enough candidates; dates() trims them to the range.
        start = self.start_date
        horizon = self.end_date if self.end == "date" and self.end_date else None
        out: list[dt.date] = []
        steps = 0
        while steps < 5000 and len(out) < MAX_OCCURRENCES + 50:
            chunk = self._period(start, steps)
            steps += 1
            if not chunk:
                continue
            out.extend(chunk)
            if horizon is not None and chunk[0] > horizon:
                break
            if self.end == "numbered" and len(out) >= self.count + 31:
                break
        return out

    def _period(self, start: dt.date, n: int) -> list[dt.date]:
        kind = self.kind
        if kind == "DailyRecurrence":
            return [start + dt.timedelta(days=n * self.interval)]
        if kind == "WeeklyRecurrence":
            first = WEEKDAYS.index(self.first_day_of_week)
            week_start = start - dt.timedelta(days=(start.weekday() - first) % 7)
            week_start += dt.timedelta(weeks=n * self.interval)
            return sorted(
                week_start + dt.timedelta(days=(WEEKDAYS.index(d) - first) % 7)
                for d in self.days_of_week
            )
        if kind in ("AbsoluteMonthlyRecurrence", "RelativeMonthlyRecurrence"):
            months = start.year * 12 + start.month - 1 + n * self.interval
            year, month = divmod(months, 12)
            return self._in_month(year, month + 1)
        year = start.year + n
        return self._in_month(year, self.month or start.month)

    def _in_month(self, year: int, month: int) -> list[dt.date]:
        if year > 9000:
            return []
        last = calendar.monthrange(year, month)[1]
        if self.kind in ("AbsoluteMonthlyRecurrence", "AbsoluteYearlyRecurrence"):
            return [dt.date(year, month, min(self.day_of_month, last))]
        name = self.days_of_week[0] if self.days_of_week else "Day"
        if name in WEEKDAYS:  # the common case, computed directly
            weekday = WEEKDAYS.index(name)
            if self.day_of_week_index == "Last":
                back = (dt.date(year, month, last).weekday() - weekday) % 7
                return [dt.date(year, month, last - back)]
            first = 1 + (weekday - dt.date(year, month, 1).weekday()) % 7
            return [dt.date(year, month, first + 7 * INDEXES.index(self.day_of_week_index))]
        wanted = _weekday_set(name)
        days = [
            dt.date(year, month, d)
            for d in range(1, last + 1)
            if dt.date(year, month, d).weekday() in wanted
        ]
        if self.day_of_week_index == "Last":
            return [days[-1]]
        return [days[INDEXES.index(self.day_of_week_index)]]

    # RRULE ------------------------------------------------------------------------------------

    def to_rrule(self, until_time: dt.time, zone: str) -> str:
        freq = {
            "DailyRecurrence": "DAILY",
            "WeeklyRecurrence": "WEEKLY",
            "AbsoluteMonthlyRecurrence": "MONTHLY",
            "RelativeMonthlyRecurrence": "MONTHLY",
            "AbsoluteYearlyRecurrence": "YEARLY",
            "RelativeYearlyRecurrence": "YEARLY",
        }[self.kind]
        parts = [f"FREQ={freq}"]
        if self.interval != 1 and "Yearly" not in self.kind:
            parts.append(f"INTERVAL={self.interval}")
        if self.kind == "WeeklyRecurrence":
            parts.append(
                "BYDAY=" + ",".join(RRULE_DAYS[WEEKDAYS.index(d)] for d in self.days_of_week)
            )
            if self.first_day_of_week != "Monday":
                parts.append("WKST=" + RRULE_DAYS[WEEKDAYS.index(self.first_day_of_week)])
        elif self.kind.startswith("Relative"):
            ordinal = (
                -1
                if self.day_of_week_index == "Last"
                else INDEXES.index(self.day_of_week_index) + 1
            )
            parts.append(
                "BYDAY=" + ",".join(f"{ordinal}{d}" for d in _rrule_days(self.days_of_week))
            )
        elif self.kind.startswith("Absolute"):
            parts.append(f"BYMONTHDAY={self.day_of_month}")
        if "Yearly" in self.kind:
            parts.append(f"BYMONTH={self.month}")
        if self.end == "numbered":
            parts.append(f"COUNT={self.count}")
        elif self.end == "date" and self.end_date is not None:
            local = dt.datetime.combine(self.end_date, until_time, zoneinfo_for_windows(zone))
            parts.append("UNTIL=" + local.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ"))
        return "RRULE:" + ";".join(parts)

    @classmethod
    def from_rrule(cls, text: str, start_local: dt.datetime) -> Recurrence:
        """Parse the RRULE subset EWS can store; `start_local` is the first start (wall time)."""
        line = text.strip().splitlines()[0].strip()
        line = line.removeprefix("RRULE:")
        rule: dict[str, str] = {}
        for part in line.split(";"):
            if "=" not in part:
                raise RecurrenceError(f"bad RRULE part {part!r}")
            key, value = part.split("=", 1)
            rule[key.upper()] = value.upper()
        freq = rule.pop("FREQ", "")
        interval = int(rule.pop("INTERVAL", "1"))
        start = start_local.date()
        kw: dict[str, object] = {"start_date": start, "interval": interval}
        byday = [d for d in rule.pop("BYDAY", "").split(",") if d]
        bymonthday = rule.pop("BYMONTHDAY", "")
        bymonth = rule.pop("BYMONTH", "")
        if "WKST" in rule:
            kw["first_day_of_week"] = WEEKDAYS[RRULE_DAYS.index(rule.pop("WKST"))]
        if "COUNT" in rule:
            kw.update(end="numbered", count=int(rule.pop("COUNT")))
        elif "UNTIL" in rule:
            kw.update(end="date", end_date=_until_date(rule.pop("UNTIL"), start_local))
        if rule:
            raise RecurrenceError(f"unsupported RRULE parts {sorted(rule)}")
        if freq == "DAILY":
            return cls(kind="DailyRecurrence", **kw)  # type: ignore[arg-type]
        if freq == "WEEKLY":
            days = [WEEKDAYS[RRULE_DAYS.index(d)] for d in byday] or [WEEKDAYS[start.weekday()]]
            return cls(kind="WeeklyRecurrence", days_of_week=days, **kw)  # type: ignore[arg-type]
        if freq in ("MONTHLY", "YEARLY"):
            yearly = freq == "YEARLY"
            if yearly:
                kw["month"] = int(bymonth or start.month)
                kw["interval"] = 1
            if byday:
                ordinal, days = _parse_ordinal(byday)
                kind = "RelativeYearlyRecurrence" if yearly else "RelativeMonthlyRecurrence"
                return cls(kind=kind, days_of_week=days, day_of_week_index=ordinal, **kw)  # type: ignore[arg-type]
            kind = "AbsoluteYearlyRecurrence" if yearly else "AbsoluteMonthlyRecurrence"
            return cls(kind=kind, day_of_month=int(bymonthday or start.day), **kw)  # type: ignore[arg-type]
        raise RecurrenceError(f"unsupported FREQ {freq!r}")


def _weekday_set(name: str) -> set[int]:
    if name == "Day":
        return set(range(7))
    if name == "Weekday":
        return set(range(5))
    if name == "WeekendDay":
        return {5, 6}
    return {WEEKDAYS.index(name)}


def _rrule_days(days: list[str]) -> list[str]:
    out: list[str] = []
    for d in days:
        out.extend(RRULE_DAYS[i] for i in sorted(_weekday_set(d)))
    return out


def _parse_ordinal(byday: list[str]) -> tuple[str, list[str]]:
    ordinals = {d[:-2] for d in byday}
    if len(ordinals) != 1:
        raise RecurrenceError("BYDAY with more than one ordinal")
    ordinal = int(ordinals.pop() or "1")
    index = "Last" if ordinal == -1 else INDEXES[ordinal - 1] if 1 <= ordinal <= 4 else ""
    if not index:
        raise RecurrenceError(f"unsupported BYDAY ordinal {ordinal}")
    names = {WEEKDAYS[RRULE_DAYS.index(d[-2:])] for d in byday}
    if len(names) == 1:
        return index, [names.pop()]
    if names == set(WEEKDAYS):
        return index, ["Day"]
    if names == set(WEEKDAYS[:5]):
        return index, ["Weekday"]
    if names == set(WEEKDAYS[5:]):
        return index, ["WeekendDay"]
    raise RecurrenceError("BYDAY with several days needs a single ordinal day group")


def _until_date(value: str, start_local: dt.datetime) -> dt.date:
    if "T" not in value:
        return dt.datetime.strptime(value, "%Y%m%d").date()
    instant = dt.datetime.strptime(value.rstrip("Z"), "%Y%m%dT%H%M%S")
    if value.endswith("Z"):
        tz = start_local.tzinfo or dt.UTC
        return instant.replace(tzinfo=dt.UTC).astimezone(tz).date()
    return instant.date()


def occurrence_starts(
    rec: Recurrence, first_start: dt.datetime, zone: str, limit: int = MAX_OCCURRENCES
) -> list[dt.datetime]:
    """UTC starts of the occurrences: the first start's wall time on each date, in `zone`."""
    tz = zoneinfo_for_windows(zone)
    wall = first_start.astimezone(tz).time()
    return [dt.datetime.combine(day, wall, tz).astimezone(dt.UTC) for day in rec.dates(limit)]
