"""Rows of the ``events`` table <-> ``model.EventData``, shared by the memory and SQL stores.

Public API:

- ``to_columns(data, native=False) -> dict``: the data columns of one row (a single event, a
  series master or a modified occurrence). ``native=False`` gives SQLite's forms (UTC text,
  JSON text, 0/1); ``native=True`` gives PostgreSQL's (aware datetimes, lists, bools).
- ``from_columns(row) -> EventData``: the reverse, lenient about what applications write (any
  ISO 8601 time with ``Z`` or an offset, NULL for empty text) and raising ``RowError`` with an
  operator-readable message for what cannot be read (bad JSON, an RRULE EWS cannot store …).
- ``fold(master, occurrences) -> EventData``: a series with its modified occurrences.
- ``utc_text(dt)`` / ``parse_time(value)``: the contract's ``YYYY-MM-DDTHH:MM:SSZ`` form.

Times are stored to the second; microseconds are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from calsync.model import (
    Attendee,
    AttendeeType,
    EventData,
    ModifiedOccurrence,
    Sensitivity,
    ShowAs,
)
from calsync.store.recurrence import RecurrenceError, format_recurrence, parse_recurrence

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

DATA_COLUMNS = (
    "uid",
    "subject",
    "location",
    "body",
    "starts_at",
    "ends_at",
    "timezone",
    "is_all_day",
    "reminder_minutes",
    "show_as",
    "sensitivity",
    "categories",
    "organizer",
    "attendees",
    "is_cancelled",
    "recurrence",
)


class RowError(ValueError):
    """A row an application wrote cannot be read as an event; the message says why."""


def utc_text(value: datetime) -> str:
    """``value`` as the contract's UTC text, ``YYYY-MM-DDTHH:MM:SSZ``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, column: str = "time") -> datetime:
    """A stored time (text in any ISO 8601 form, or a datetime) as an aware UTC datetime."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("z", "Z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise RowError(f"{column} {value!r} is not an ISO 8601 time") from exc
    else:
        raise RowError(f"{column} is missing")
    if parsed.tzinfo is None:  # the column is UTC by contract
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(microsecond=0)


def _time_out(value: datetime, native: bool) -> Any:
    return value.astimezone(UTC).replace(microsecond=0) if native else utc_text(value)


def _json_out(value: list[Any], native: bool) -> Any:
    return value if native else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def to_columns(
    data: EventData, *, native: bool = False, occurrence: bool = False
) -> dict[str, Any]:
    """The data columns of ``data`` (modified occurrences are rows of their own)."""
    attendees = [
        {"address": a.address, "name": a.name, "type": str(a.type), "response": a.response}
        for a in data.attendees
    ]
    recurrence = None
    if not occurrence:
        recurrence = format_recurrence(data.recurrence, data.deleted_occurrences, data.is_all_day)
    return {
        "uid": data.uid,
        "subject": data.subject,
        "location": data.location,
        "body": data.body,
        "starts_at": _time_out(data.start, native),
        "ends_at": _time_out(data.end, native),
        "timezone": data.timezone,
        "is_all_day": data.is_all_day if native else int(data.is_all_day),
        "reminder_minutes": data.reminder_minutes,
        "show_as": str(data.show_as),
        "sensitivity": str(data.sensitivity),
        "categories": _json_out(list(data.categories), native),
        "organizer": data.organizer,
        "attendees": _json_out(attendees, native),
        "is_cancelled": data.is_cancelled if native else int(data.is_cancelled),
        "recurrence": recurrence,
    }


def _json_in(value: Any, column: str) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else []
        except json.JSONDecodeError as exc:
            raise RowError(f"{column} is not valid JSON: {exc.msg}") from exc
    return value


def _categories(value: Any) -> tuple[str, ...]:
    items = _json_in(value, "categories")
    if not isinstance(items, list) or not all(isinstance(c, str) for c in items):
        raise RowError("categories must be a JSON array of strings")
    return tuple(items)


def _attendees(value: Any) -> tuple[Attendee, ...]:
    items = _json_in(value, "attendees")
    if not isinstance(items, list):
        raise RowError("attendees must be a JSON array of objects")
    out: list[Attendee] = []
    for raw in items:
        item = {"address": raw} if isinstance(raw, str) else raw
        if not isinstance(item, dict) or not isinstance(item.get("address"), str):
            raise RowError("each attendee needs an 'address' string")
        try:
            kind = AttendeeType(item.get("type") or "required")
        except ValueError as exc:
            raise RowError(
                f"attendee type {item.get('type')!r} is not one of required, optional, resource"
            ) from exc
        response = item.get("response")
        out.append(
            Attendee(
                address=item["address"],
                name=str(item.get("name") or ""),
                type=kind,
                response=str(response) if response is not None else None,
            )
        )
    return tuple(out)


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "t", "yes"}
    return bool(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def from_columns(row: Mapping[str, Any], *, occurrence: bool = False) -> EventData:
    """The ``EventData`` of one row (without modified occurrences); ``RowError`` if unreadable."""
    try:
        show_as = ShowAs(row.get("show_as") or "busy")
    except ValueError as exc:
        raise RowError(
            f"show_as {row.get('show_as')!r} is not one of "
            "free, tentative, busy, oof, working_elsewhere"
        ) from exc
    try:
        sensitivity = Sensitivity(row.get("sensitivity") or "normal")
    except ValueError as exc:
        raise RowError(
            f"sensitivity {row.get('sensitivity')!r} is not one of "
            "normal, personal, private, confidential"
        ) from exc
    reminder = row.get("reminder_minutes")
    if reminder is not None and not isinstance(reminder, int):
        try:
            reminder = int(reminder)
        except (TypeError, ValueError) as exc:
            raise RowError(f"reminder_minutes {reminder!r} is not an integer") from exc
    is_all_day = _flag(row.get("is_all_day"))
    rule: str | None = None
    deleted: tuple[datetime, ...] = ()
    if not occurrence:
        try:
            rule, deleted = parse_recurrence(row.get("recurrence"))
        except RecurrenceError as exc:
            raise RowError(f"recurrence: {exc}") from exc
    start = parse_time(row.get("starts_at"), "starts_at")
    end = parse_time(row.get("ends_at"), "ends_at")
    if end < start:
        raise RowError("ends_at is before starts_at")
    return EventData(
        subject=_text(row.get("subject")),
        start=start,
        end=end,
        timezone=row.get("timezone") or "UTC",
        is_all_day=is_all_day,
        location=_text(row.get("location")),
        body=_text(row.get("body")),
        uid=row.get("uid"),
        reminder_minutes=reminder,
        show_as=show_as,
        sensitivity=sensitivity,
        categories=_categories(row.get("categories")),
        organizer=row.get("organizer"),
        attendees=_attendees(row.get("attendees")),
        is_cancelled=_flag(row.get("is_cancelled")),
        recurrence=rule,
        deleted_occurrences=deleted,
    )


def fold(master: EventData, occurrences: Iterable[tuple[datetime, EventData]]) -> EventData:
    """``master`` with its modified occurrences (sorted by original start)."""
    items = sorted(occurrences, key=lambda pair: pair[0])
    return replace(
        master,
        modified_occurrences=tuple(ModifiedOccurrence(original_start=o, data=d) for o, d in items),
    )


def normalise(data: EventData) -> EventData:
    """``data`` as it reads back from a store (seconds, sorted exceptions, no nested series)."""
    start = data.start.astimezone(UTC).replace(microsecond=0)
    end = data.end.astimezone(UTC).replace(microsecond=0)
    deleted = tuple(
        sorted({d.astimezone(UTC).replace(microsecond=0) for d in data.deleted_occurrences})
    )
    if data.recurrence is None:
        deleted = ()
    occurrences = {
        o.original_start.astimezone(UTC).replace(microsecond=0): normalise(
            replace(o.data, recurrence=None, deleted_occurrences=(), modified_occurrences=())
        )
        for o in data.modified_occurrences
    }
    return replace(
        data,
        start=start,
        end=end,
        deleted_occurrences=deleted,
        modified_occurrences=tuple(
            ModifiedOccurrence(original_start=k, data=v) for k, v in sorted(occurrences.items())
        )
        if data.recurrence is not None
        else (),
    )
