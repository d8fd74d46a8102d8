"""Graph ``patternedRecurrence`` <-> the RFC 5545 ``RRULE`` subset of the ``events`` table.

The text matches what the EWS adapter reads for the same series (so a mailbox moved from EWS
to Graph hashes equal): ``INTERVAL=1`` left out, BYDAY weekdays in Monday-first order, relative
patterns on a day set written as ``BYDAY=<set>;BYSETPOS=n``, ``UNTIL`` the UTC instant of the
last day's start in the series' zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

from calsync.graph.models import PatternedRecurrence, RecurrencePattern, RecurrenceRange

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
INDEX_NAME = {v: k for k, v in INDEX.items()}
SETS = {DAYS: "all", DAYS[:5]: "weekdays", DAYS[5:]: "weekend"}
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


class RecurrenceError(ValueError):
    """A rule Graph cannot store, or a Graph pattern calsync cannot read."""


def _days(pattern: RecurrencePattern) -> tuple[str, ...]:
    names = [str(n).lower() for n in pattern.get("daysOfWeek") or []]
    if any(n not in NAMES for n in names):
        raise RecurrenceError(f"unknown daysOfWeek {names}")
    return tuple(sorted({DAYS[NAMES.index(n)] for n in names}, key=DAYS.index))


def _relative(pattern: RecurrencePattern) -> list[str]:
    ordinal = INDEX.get(str(pattern.get("index") or "first").lower())
    if ordinal is None:
        raise RecurrenceError(f"unknown index {pattern.get('index')!r}")
    days = _days(pattern)
    if len(days) == 1:
        return [f"BYDAY={ordinal}{days[0]}"]
    if days not in SETS:
        raise RecurrenceError(f"relative pattern on days {days}")
    return ["BYDAY=" + ",".join(days), f"BYSETPOS={ordinal}"]


def to_rrule(value: PatternedRecurrence, zone: tzinfo, local_start: time) -> str:
    """The ``RRULE:`` line of a Graph recurrence (series in ``zone``, starting at
    ``local_start`` each day; all-day series: UTC and midnight)."""
    pattern, rng = value["pattern"], value["range"]
    kind, interval = str(pattern.get("type")), int(pattern.get("interval") or 1)
    if kind == "daily":
        parts = ["FREQ=DAILY", f"INTERVAL={interval}"]
    elif kind == "weekly":
        parts = ["FREQ=WEEKLY", f"INTERVAL={interval}", "BYDAY=" + ",".join(_days(pattern))]
    elif kind == "absoluteMonthly":
        parts = ["FREQ=MONTHLY", f"INTERVAL={interval}", f"BYMONTHDAY={pattern.get('dayOfMonth')}"]
    elif kind == "relativeMonthly":
        parts = ["FREQ=MONTHLY", f"INTERVAL={interval}", *_relative(pattern)]
    elif kind == "absoluteYearly":
        parts = [
            "FREQ=YEARLY",
            f"BYMONTH={pattern.get('month')}",
            f"BYMONTHDAY={pattern.get('dayOfMonth')}",
        ]
    elif kind == "relativeYearly":
        parts = ["FREQ=YEARLY", f"BYMONTH={pattern.get('month')}", *_relative(pattern)]
    else:
        raise RecurrenceError(f"unsupported Graph recurrence pattern {kind!r}")
    end = str(rng.get("type") or "noEnd")
    if end == "numbered":
        parts.append(f"COUNT={int(rng.get('numberOfOccurrences') or 0)}")
    elif end == "endDate":
        last = datetime.combine(date.fromisoformat(str(rng["endDate"])), local_start, zone)
        parts.append("UNTIL=" + last.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
    elif end != "noEnd":
        raise RecurrenceError(f"unsupported Graph recurrence range {end!r}")
    return "RRULE:" + ";".join(p for p in parts if p != "INTERVAL=1")


def parse_rrule(text: str) -> dict[str, str]:
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    line = line[6:] if line.upper().startswith("RRULE:") else line
    parts: dict[str, str] = {}
    for item in filter(None, line.split(";")):
        name, sep, value = item.partition("=")
        if not sep or not value or name.upper() in parts:
            raise RecurrenceError(f"malformed RRULE part {item!r}")
        parts[name.strip().upper()] = value.strip().upper()
    if "FREQ" not in parts:
        raise RecurrenceError("RRULE without FREQ")
    unknown = set(parts) - _KNOWN
    if unknown:
        raise RecurrenceError(f"RRULE parts Graph cannot store: {', '.join(sorted(unknown))}")
    return parts


def _int(parts: dict[str, str], name: str, default: int) -> int:
    try:
        return int(parts.get(name, default))
    except ValueError:
        raise RecurrenceError(f"{name} must be a number: {parts[name]}") from None


def _relative_pattern(parts: dict[str, str]) -> RecurrencePattern:
    byday = parts["BYDAY"]
    if "BYSETPOS" in parts:
        days = tuple(byday.split(","))
        ordinal = _int(parts, "BYSETPOS", 1)
    else:
        if "," in byday:
            raise RecurrenceError(f"Graph stores one BYDAY with an ordinal here, not {byday}")
        try:
            ordinal, days = int(byday[:-2] or "1"), (byday[-2:],)
        except ValueError:
            raise RecurrenceError(f"BYDAY needs an ordinal here (like 2TU): {byday}") from None
    if ordinal not in INDEX_NAME or any(d not in DAYS for d in days):
        raise RecurrenceError(f"Graph knows the 1st..4th and the last (-1) day: {byday}")
    return {"daysOfWeek": [NAMES[DAYS.index(d)] for d in days], "index": INDEX_NAME[ordinal]}


def from_rrule(text: str, local_start: datetime, windows_zone: str) -> PatternedRecurrence:
    """A Graph recurrence for an RRULE of a series starting at ``local_start`` (aware, in the
    series' zone); ``RecurrenceError`` when Graph cannot store it."""
    parts = parse_rrule(text)
    freq, interval = parts["FREQ"], _int(parts, "INTERVAL", 1)
    if interval < 1:
        raise RecurrenceError("INTERVAL must be at least 1")
    pattern: RecurrencePattern = {"interval": interval}
    if freq == "DAILY":
        pattern["type"] = "daily"
    elif freq == "WEEKLY":
        days = parts.get("BYDAY", DAYS[local_start.weekday()]).split(",")
        if any(d not in DAYS for d in days):
            raise RecurrenceError(f"weekly BYDAY must list plain weekdays: {parts['BYDAY']}")
        pattern["type"], pattern["firstDayOfWeek"] = "weekly", "monday"
        pattern["daysOfWeek"] = [NAMES[DAYS.index(d)] for d in days]
    elif freq in ("MONTHLY", "YEARLY"):
        yearly = freq == "YEARLY"
        if yearly and interval != 1:
            raise RecurrenceError("yearly patterns repeat every year only")
        if yearly:
            pattern["month"] = _int(parts, "BYMONTH", local_start.month)
        if "BYDAY" in parts:
            pattern.update(_relative_pattern(parts))
            pattern["type"] = "relativeYearly" if yearly else "relativeMonthly"
        else:
            pattern["dayOfMonth"] = _int(parts, "BYMONTHDAY", local_start.day)
            pattern["type"] = "absoluteYearly" if yearly else "absoluteMonthly"
    else:
        raise RecurrenceError(f"FREQ={freq} cannot be stored in Graph")
    return {"pattern": pattern, "range": _range(parts, local_start, windows_zone)}


def _range(parts: dict[str, str], local_start: datetime, windows_zone: str) -> RecurrenceRange:
    start = local_start.date()
    rng: RecurrenceRange = {"startDate": start.isoformat(), "recurrenceTimeZone": windows_zone}
    if "COUNT" in parts and "UNTIL" in parts:
        raise RecurrenceError("COUNT and UNTIL together are not allowed")
    if "COUNT" in parts:
        rng["type"], rng["numberOfOccurrences"] = "numbered", _int(parts, "COUNT", 1)
        return rng
    if "UNTIL" not in parts:
        rng["type"] = "noEnd"
        return rng
    value, zone = parts["UNTIL"], local_start.tzinfo or UTC
    try:
        if "T" in value:
            naive = datetime.strptime(value.rstrip("Z"), "%Y%m%dT%H%M%S")
            until = naive.replace(tzinfo=UTC if value.endswith("Z") else zone)
        else:
            until = datetime.combine(
                datetime.strptime(value, "%Y%m%d").date(), time(23, 59, 59), zone
            )
    except ValueError:
        raise RecurrenceError(f"UNTIL is not a date or UTC date-time: {value}") from None
    local_until = until.astimezone(zone)
    last = local_until.date()
    if local_until.time() < local_start.time():
        last -= timedelta(days=1)
    if last < start:
        raise RecurrenceError("UNTIL lies before the first occurrence")
    rng["type"], rng["endDate"] = "endDate", last.isoformat()
    return rng
