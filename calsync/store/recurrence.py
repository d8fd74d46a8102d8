"""The ``events.recurrence`` column: one ``RRULE:`` line in the EWS subset plus ``EXDATE:`` lines.

Public API:

- ``format_recurrence(rule, deleted, all_day) -> str | None``: the column text for a series.
- ``parse_recurrence(text, all_day) -> (rule, deleted)``: the reverse; raises ``RecurrenceError``
  for a rule outside the subset EWS can store or for malformed lines.
- ``validate_rule(rule)``: checks one ``RRULE:`` line against the subset (DESIGN.md).
- ``expand(rule, start, end, tz, deleted, window_start, window_end)``: the occurrences
  ``(original_start, start, end)`` of a series that overlap a window, expanded in the event's
  own time zone (so a weekly 09:00 meeting stays at 09:00 across DST changes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr

_FREQS = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
_DAYS = frozenset({"MO", "TU", "WE", "TH", "FR", "SA", "SU"})
_BYDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_ALLOWED_PARTS = frozenset(
    {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYMONTH", "COUNT", "UNTIL", "WKST"}
)
_UNTIL = re.compile(r"^\d{8}(T\d{6}Z)?$")
_MAX_INSTANCES = 5000


class RecurrenceError(ValueError):
    """The recurrence text is malformed or outside the subset EWS can store."""


def _exdate_value(value: datetime, all_day: bool) -> str:
    value = value.astimezone(UTC)
    if all_day and (value.hour, value.minute, value.second) == (0, 0, 0):
        return "EXDATE;VALUE=DATE:" + value.strftime("%Y%m%d")
    return "EXDATE:" + value.strftime("%Y%m%dT%H%M%SZ")


def format_recurrence(
    rule: str | None, deleted: Iterable[datetime], all_day: bool = False
) -> str | None:
    """The column text: the rule line, then one sorted ``EXDATE`` line per deleted occurrence."""
    if rule is None:
        return None
    stamps = sorted({d.astimezone(UTC).replace(microsecond=0) for d in deleted})
    return "\n".join([rule.strip(), *(_exdate_value(d, all_day) for d in stamps)])


def _parse_stamp(value: str, tzid: str | None) -> datetime:
    value = value.strip()
    try:
        if re.fullmatch(r"\d{8}", value):
            return datetime.strptime(value, "%Y%m%d").replace(tzinfo=UTC)
        if re.fullmatch(r"\d{8}T\d{6}Z", value):
            return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if re.fullmatch(r"\d{8}T\d{6}", value):
            naive = datetime.strptime(value, "%Y%m%dT%H%M%S")
            zone = ZoneInfo(tzid) if tzid else UTC
            return naive.replace(tzinfo=zone).astimezone(UTC)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise RecurrenceError(f"bad EXDATE value {value!r}: {exc}") from exc
    raise RecurrenceError(f"bad EXDATE value {value!r} (expected YYYYMMDDTHHMMSSZ or YYYYMMDD)")


def _parse_exdate(line: str) -> list[datetime]:
    head, sep, values = line.partition(":")
    if not sep:
        raise RecurrenceError(f"bad EXDATE line {line!r}")
    tzid: str | None = None
    for param in head.split(";")[1:]:
        key, _, val = param.partition("=")
        if key.upper() == "TZID":
            tzid = val
        elif key.upper() != "VALUE" or val.upper() not in {"DATE", "DATE-TIME"}:
            raise RecurrenceError(f"unsupported EXDATE parameter {param!r}")
    return [_parse_stamp(v, tzid) for v in values.split(",") if v.strip()]


def validate_rule(rule: str) -> None:
    """Raise ``RecurrenceError`` unless ``rule`` is one ``RRULE:`` line EWS can store."""
    if not rule.upper().startswith("RRULE:"):
        raise RecurrenceError(f"recurrence must start with 'RRULE:', got {rule[:40]!r}")
    parts: dict[str, str] = {}
    for item in rule[6:].split(";"):
        key, sep, value = item.partition("=")
        key = key.upper()
        if not sep or not value:
            raise RecurrenceError(f"bad RRULE part {item!r}")
        if key not in _ALLOWED_PARTS:
            raise RecurrenceError(f"RRULE part {key} is outside what Exchange can store")
        if key in parts:
            raise RecurrenceError(f"RRULE part {key} given twice")
        parts[key] = value.upper()
    freq = parts.get("FREQ", "")
    if freq not in _FREQS:
        raise RecurrenceError(f"RRULE FREQ must be one of DAILY, WEEKLY, MONTHLY, YEARLY: {freq}")
    if "COUNT" in parts and "UNTIL" in parts:
        raise RecurrenceError("RRULE has both COUNT and UNTIL")
    for key in ("INTERVAL", "COUNT"):
        if key in parts and (not parts[key].isdigit() or int(parts[key]) < 1):
            raise RecurrenceError(f"RRULE {key} must be a positive integer")
    if "UNTIL" in parts and not _UNTIL.match(parts["UNTIL"]):
        raise RecurrenceError("RRULE UNTIL must be in UTC (YYYYMMDDTHHMMSSZ) or a date")
    _validate_parts(freq, parts)


def _validate_parts(freq: str, parts: dict[str, str]) -> None:
    if "BYMONTHDAY" in parts:
        day = parts["BYMONTHDAY"]
        if not re.fullmatch(r"-?\d{1,2}", day) or not (1 <= abs(int(day)) <= 31):
            raise RecurrenceError("RRULE BYMONTHDAY must be one day of the month")
    if "BYMONTH" in parts and (
        not parts["BYMONTH"].isdigit() or not 1 <= int(parts["BYMONTH"]) <= 12
    ):
        raise RecurrenceError("RRULE BYMONTH must be one month (1-12)")
    if "WKST" in parts and parts["WKST"] not in _DAYS:
        raise RecurrenceError("RRULE WKST must be a weekday")
    if "BYDAY" in parts:
        _validate_byday(freq, parts["BYDAY"])


def _validate_byday(freq: str, byday: str) -> None:
    ordinals: set[int] = set()
    for item in byday.split(","):
        match = _BYDAY.match(item)
        if not match:
            raise RecurrenceError(f"bad RRULE BYDAY value {item!r}")
        if match.group(1):
            ordinal = int(match.group(1))
            if ordinal not in {1, 2, 3, 4, -1}:
                raise RecurrenceError("RRULE BYDAY ordinal must be 1, 2, 3, 4 or -1")
            ordinals.add(ordinal)
        elif freq in {"MONTHLY", "YEARLY"}:
            # an ordinal-less day in a monthly/yearly rule means "every such day": not EWS
            raise RecurrenceError("RRULE BYDAY in a MONTHLY/YEARLY rule needs an ordinal")
    if ordinals and freq in {"DAILY", "WEEKLY"}:
        raise RecurrenceError("RRULE BYDAY ordinals are only allowed for MONTHLY/YEARLY")
    if len(ordinals) > 1:
        raise RecurrenceError("RRULE BYDAY may carry at most one ordinal")


def parse_recurrence(text: str | None) -> tuple[str | None, tuple[datetime, ...]]:
    """Split the column text into the rule and the sorted deleted occurrences (UTC)."""
    if text is None or not text.strip():
        return None, ()
    rule: str | None = None
    deleted: set[datetime] = set()
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        upper = line.upper()
        if upper.startswith("RRULE:"):
            if rule is not None:
                raise RecurrenceError("more than one RRULE line")
            validate_rule(line)
            rule = "RRULE:" + line[6:]
        elif upper.startswith("EXDATE"):
            deleted.update(_parse_exdate(line))
        else:
            raise RecurrenceError(f"unsupported recurrence line {line[:40]!r}")
    if rule is None:
        raise RecurrenceError("EXDATE lines without an RRULE line")
    return rule, tuple(sorted(deleted))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def expand(
    rule: str,
    *,
    start: datetime,
    end: datetime,
    timezone: str,
    deleted: Iterable[datetime],
    window_start: datetime,
    window_end: datetime,
) -> list[tuple[datetime, datetime, datetime]]:
    """Occurrences ``(original_start, start, end)`` in UTC overlapping the window.

    Deleted occurrences are left out; modified ones are the caller's business.
    """
    zone = _zone(timezone)
    local_start = start.astimezone(zone)
    duration = end - start
    gone = {d.astimezone(UTC) for d in deleted}
    rrule_text = rule[6:] if rule.upper().startswith("RRULE:") else rule
    until = re.search(r"UNTIL=(\d{8})(;|$)", rrule_text, re.IGNORECASE)
    if until:  # a date-only UNTIL with an aware DTSTART: dateutil wants a UTC time
        rrule_text = rrule_text.replace(
            until.group(0), f"UNTIL={until.group(1)}T235959Z{until.group(2)}"
        )
    try:
        recurrence = rrulestr(rrule_text, dtstart=local_start, forceset=False, cache=False)
    except (ValueError, TypeError) as exc:
        raise RecurrenceError(f"cannot expand {rule!r}: {exc}") from exc
    out: list[tuple[datetime, datetime, datetime]] = []
    lower = (window_start - duration).astimezone(zone)
    for occurrence in recurrence.xafter(lower, inc=True):
        if occurrence >= window_end:
            break
        begin = occurrence.astimezone(UTC)
        if begin + duration > window_start and begin not in gone:
            out.append((begin, begin, begin + duration))
        if len(out) >= _MAX_INSTANCES:
            break
    return out
