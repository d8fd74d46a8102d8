"""EWS recurrence patterns <-> RFC 5545 ``RRULE`` text, for every pattern EWS can store.

The RRULE subset (DESIGN.md, ``events.recurrence``): FREQ DAILY/WEEKLY/MONTHLY/YEARLY, INTERVAL,
BYDAY (at most one ordinal for MONTHLY/YEARLY), one BYMONTHDAY, BYMONTH, COUNT or UNTIL (UTC).
EWS's relative patterns on "day", "weekday" or "weekend day" are written as a BYDAY list with
BYSETPOS (``BYDAY=MO,TU,WE,TH,FR;BYSETPOS=2`` = the second weekday of the month).

Dates of the boundary (the pattern's StartDate and EndDate) are local dates in the series' zone;
UNTIL is the UTC instant of the last occurrence's start, as RFC 5545 asks. ``INTERVAL=1`` (the
default) is left out of the text calsync writes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from exchangelib.recurrence import (
    AbsoluteMonthlyPattern,
    AbsoluteYearlyPattern,
    DailyPattern,
    EndDatePattern,
    NoEndPattern,
    NumberedPattern,
    Recurrence,
    RelativeMonthlyPattern,
    RelativeYearlyPattern,
    WeeklyPattern,
)

_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# exchangelib's weekday enum: 1..7 = Monday..Sunday, 8 = Day, 9 = Weekday, 10 = WeekendDay.
_SETS = {8: _DAYS, 9: _DAYS[:5], 10: _DAYS[5:]}
_SET_OF = {",".join(days): number for number, days in _SETS.items()}
_ORDINALS = {1: 1, 2: 2, 3: 3, 4: 4, 5: -1}  # exchangelib week numbers (5 = Last) -> RFC 5545
_WEEK_NUMBER = {v: k for k, v in _ORDINALS.items()}


class RecurrenceError(ValueError):
    """The RRULE is outside what EWS can store, or the EWS pattern is one calsync cannot read."""


def _enum(value: Any, names: tuple[str, ...]) -> int:
    """exchangelib keeps enums as 1-based ints but accepts (and sometimes returns) the names."""
    if isinstance(value, int):
        return value
    return names.index(value) + 1


def recurrence_to_rrule(recurrence: Any, zone: tzinfo, local_start: time) -> str:
    """The ``RRULE:`` line of an exchangelib ``Recurrence`` (series in ``zone``, starting at
    ``local_start`` each day)."""
    from exchangelib.fields import MONTHS, WEEK_NUMBERS, WEEKDAY_NAMES, WEEKDAYS

    pattern, boundary = recurrence.pattern, recurrence.boundary
    parts: list[str]
    if isinstance(pattern, DailyPattern):
        parts = ["FREQ=DAILY", f"INTERVAL={pattern.interval}"]
    elif isinstance(pattern, WeeklyPattern):
        days = sorted(_enum(d, WEEKDAY_NAMES) for d in _as_list(pattern.weekdays))
        parts = ["FREQ=WEEKLY", f"INTERVAL={pattern.interval}"]
        parts.append("BYDAY=" + ",".join(_DAYS[d - 1] for d in days))
    elif isinstance(pattern, AbsoluteMonthlyPattern):
        parts = ["FREQ=MONTHLY", f"INTERVAL={pattern.interval}"]
        parts.append(f"BYMONTHDAY={pattern.day_of_month}")
    elif isinstance(pattern, RelativeMonthlyPattern):
        parts = ["FREQ=MONTHLY", f"INTERVAL={pattern.interval}"]
        parts += _relative(
            _enum(pattern.weekday, WEEKDAYS), _enum(pattern.week_number, WEEK_NUMBERS)
        )
    elif isinstance(pattern, AbsoluteYearlyPattern):
        parts = ["FREQ=YEARLY", f"BYMONTH={_enum(pattern.month, MONTHS)}"]
        parts.append(f"BYMONTHDAY={pattern.day_of_month}")
    elif isinstance(pattern, RelativeYearlyPattern):
        parts = ["FREQ=YEARLY", f"BYMONTH={_enum(pattern.month, MONTHS)}"]
        parts += _relative(
            _enum(pattern.weekday, WEEKDAYS), _enum(pattern.week_number, WEEK_NUMBERS)
        )
    else:
        raise RecurrenceError(f"unsupported EWS recurrence pattern {type(pattern).__name__}")
    if isinstance(boundary, NumberedPattern):
        parts.append(f"COUNT={boundary.number}")
    elif isinstance(boundary, EndDatePattern):
        last = datetime.combine(_as_date(boundary.end), local_start, tzinfo=zone)
        parts.append("UNTIL=" + last.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
    elif not isinstance(boundary, NoEndPattern):
        raise RecurrenceError(f"unsupported EWS recurrence boundary {type(boundary).__name__}")
    return "RRULE:" + ";".join(p for p in parts if p != "INTERVAL=1")


def _relative(weekday: int, week_number: int) -> list[str]:
    ordinal = _ORDINALS[week_number]
    if weekday in _SETS:
        return ["BYDAY=" + ",".join(_SETS[weekday]), f"BYSETPOS={ordinal}"]
    return [f"BYDAY={ordinal}{_DAYS[weekday - 1]}"]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise RecurrenceError(f"not a date: {value!r}")


def parse_rrule(text: str) -> dict[str, str]:
    """Split an ``RRULE:`` line into its parts (upper-cased names, values as written)."""
    line = text.strip()
    if line.upper().startswith("RRULE:"):
        line = line[6:]
    parts: dict[str, str] = {}
    for item in filter(None, line.split(";")):
        name, sep, value = item.partition("=")
        if not sep or not value:
            raise RecurrenceError(f"malformed RRULE part {item!r}")
        name = name.strip().upper()
        if name in parts:
            raise RecurrenceError(f"RRULE part {name} given twice")
        parts[name] = value.strip().upper()
    if "FREQ" not in parts:
        raise RecurrenceError("RRULE without FREQ")
    return parts


_KNOWN = {
    "FREQ",
    "INTERVAL",
    "BYDAY",
    "BYMONTHDAY",
    "BYMONTH",
    "BYSETPOS",
    "COUNT",
    "UNTIL",
    "WKST",
}


def rrule_to_recurrence(text: str, local_start: datetime) -> Any:
    """An exchangelib ``Recurrence`` for an ``RRULE:`` line of a series whose first occurrence
    starts at ``local_start`` (aware, in the series' zone). ``RecurrenceError`` if EWS cannot
    store the rule."""
    parts = parse_rrule(text)
    unknown = set(parts) - _KNOWN
    if unknown:
        raise RecurrenceError(f"RRULE parts EWS cannot store: {', '.join(sorted(unknown))}")
    pattern = _PATTERNS.get(parts["FREQ"], _unsupported)(parts, local_start)
    return Recurrence(pattern=pattern, boundary=_boundary(parts, local_start))


def _unsupported(parts: dict[str, str], local_start: datetime) -> Any:
    raise RecurrenceError(f"FREQ={parts['FREQ']} cannot be stored in EWS")


def _daily(parts: dict[str, str], local_start: datetime) -> Any:
    _only(parts, set())
    return DailyPattern(interval=_int(parts, "INTERVAL", 1))


def _weekly(parts: dict[str, str], local_start: datetime) -> Any:
    _only(parts, {"BYDAY"})
    days = parts.get("BYDAY", _DAYS[local_start.weekday()]).split(",")
    if any(day not in _DAYS for day in days):
        raise RecurrenceError(f"weekly BYDAY must list plain weekdays: {parts['BYDAY']}")
    weekdays = sorted({_DAYS.index(d) + 1 for d in days})
    return WeeklyPattern(
        interval=_int(parts, "INTERVAL", 1), weekdays=weekdays, first_day_of_week=1
    )


def _monthly(parts: dict[str, str], local_start: datetime) -> Any:
    _only(parts, {"BYDAY", "BYMONTHDAY", "BYSETPOS"})
    interval = _int(parts, "INTERVAL", 1)
    if "BYDAY" in parts:
        weekday, week_number = _relative_parts(parts)
        return RelativeMonthlyPattern(interval=interval, weekday=weekday, week_number=week_number)
    day = _int(parts, "BYMONTHDAY", local_start.day)
    return AbsoluteMonthlyPattern(interval=interval, day_of_month=_day(day))


def _yearly(parts: dict[str, str], local_start: datetime) -> Any:
    _only(parts, {"BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS"})
    if _int(parts, "INTERVAL", 1) != 1:
        raise RecurrenceError("EWS yearly patterns have no INTERVAL (every year only)")
    month = _int(parts, "BYMONTH", local_start.month)
    if not 1 <= month <= 12:
        raise RecurrenceError(f"BYMONTH out of range: {month}")
    if "BYDAY" in parts:
        weekday, week_number = _relative_parts(parts)
        return RelativeYearlyPattern(weekday=weekday, week_number=week_number, month=month)
    day = _int(parts, "BYMONTHDAY", local_start.day)
    return AbsoluteYearlyPattern(day_of_month=_day(day), month=month)


_PATTERNS = {"DAILY": _daily, "WEEKLY": _weekly, "MONTHLY": _monthly, "YEARLY": _yearly}


def _only(parts: dict[str, str], allowed: set[str]) -> None:
    extra = set(parts) - allowed - {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST"}
    if extra:
        raise RecurrenceError(f"{', '.join(sorted(extra))} not allowed with FREQ={parts['FREQ']}")


def _int(parts: dict[str, str], name: str, default: int) -> int:
    if name not in parts:
        return default
    try:
        value = int(parts[name])
    except ValueError:
        raise RecurrenceError(f"{name} must be a number: {parts[name]}") from None
    if name in {"INTERVAL", "COUNT"} and value < 1:
        raise RecurrenceError(f"{name} must be at least 1")
    return value


def _day(day: int) -> int:
    if not 1 <= day <= 31:
        raise RecurrenceError(f"BYMONTHDAY must be 1..31 for EWS: {day}")
    return day


def _relative_parts(parts: dict[str, str]) -> tuple[int, int]:
    """(exchangelib weekday, exchangelib week number) of a relative BYDAY[/BYSETPOS]."""
    if "BYMONTHDAY" in parts:
        raise RecurrenceError("BYDAY and BYMONTHDAY together cannot be stored in EWS")
    byday = parts["BYDAY"]
    if "BYSETPOS" in parts:
        number = _int(parts, "BYSETPOS", 1)
        weekday = _SET_OF.get(byday)
        if weekday is None:
            if byday not in _DAYS:
                raise RecurrenceError(f"BYSETPOS needs a day, weekday or weekend set: {byday}")
            weekday = _DAYS.index(byday) + 1
    else:
        if "," in byday:
            raise RecurrenceError(f"EWS stores one BYDAY with an ordinal here, not {byday}")
        try:
            number, day = int(byday[:-2]), byday[-2:]
        except ValueError:
            raise RecurrenceError(f"BYDAY needs an ordinal here (like 2TU): {byday}") from None
        if day not in _DAYS:
            raise RecurrenceError(f"unknown weekday in BYDAY: {byday}")
        weekday = _DAYS.index(day) + 1
    if number not in _WEEK_NUMBER:
        raise RecurrenceError(f"EWS knows the 1st..4th and the last (-1), not {number}")
    return weekday, _WEEK_NUMBER[number]


def _boundary(parts: dict[str, str], local_start: datetime) -> Any:
    start = local_start.date()
    if "COUNT" in parts and "UNTIL" in parts:
        raise RecurrenceError("COUNT and UNTIL together are not allowed")
    if "COUNT" in parts:
        count = _int(parts, "COUNT", 1)
        if count > 999:
            raise RecurrenceError("EWS stores at most 999 occurrences (COUNT)")
        return NumberedPattern(start=start, number=count)
    if "UNTIL" in parts:
        until = _until(parts["UNTIL"], local_start.tzinfo or UTC)
        local_until = until.astimezone(local_start.tzinfo or UTC)
        last = local_until.date()
        if local_until.timetz().replace(tzinfo=None) < local_start.time():
            last -= timedelta(days=1)
        if last < start:
            raise RecurrenceError("UNTIL lies before the first occurrence")
        return EndDatePattern(start=start, end=last)
    return NoEndPattern(start=start)


def _until(value: str, zone: tzinfo) -> datetime:
    try:
        if "T" in value:
            parsed = datetime.strptime(value.rstrip("Z"), "%Y%m%dT%H%M%S")
            return parsed.replace(tzinfo=UTC if value.endswith("Z") else zone)
        day = datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise RecurrenceError(f"UNTIL is not a date or UTC date-time: {value}") from None
    return datetime.combine(day, time(23, 59, 59), tzinfo=zone)
