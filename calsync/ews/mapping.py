"""exchangelib ``CalendarItem`` <-> ``model.EventData``, both ways.

Conventions (DESIGN.md, ``events`` table):

* timed events: ``start``/``end`` are UTC instants; ``timezone`` is the IANA id of the item's
  start time zone (Exchange keeps a Windows id, translated with ``calsync.timezones``);
* all-day events: Exchange stores midnight in the item's zone, end exclusive; the model holds
  midnight UTC of the first day and of the day after the last (end exclusive), plus the zone;
* a series master carries its pattern as an RRULE line, its deleted occurrences by original start
  and its modified occurrences as their own ``EventData`` (fetched with GetItem);
* ``organizer``, attendee ``response`` and ``is_cancelled`` are Exchange's: read, never written.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from exchangelib import CalendarItem, EWSDate, EWSTimeZone
from exchangelib.extended_properties import ExtendedProperty
from exchangelib.properties import Attendee as EwsAttendee
from exchangelib.properties import Body, HTMLBody
from exchangelib.properties import Mailbox as EwsMailbox

from calsync import timezones
from calsync.ews.recurrence import recurrence_to_rrule, rrule_to_recurrence
from calsync.model import Attendee, AttendeeType, EventData, ModifiedOccurrence, Sensitivity, ShowAs

CALSYNC_ID_FIELD = "calsync_extended_id"  # exchangelib attribute name (not on the wire)


class CalsyncIdProperty(ExtendedProperty):  # type: ignore[misc]
    """The extended property every item calsync creates carries (fixed for ever, DESIGN.md)."""

    property_set_id = "4ca80195-c234-4a35-b00a-22be78edc0d5"
    property_name = "calsync-id"
    property_type = "String"


def register_calsync_id() -> None:
    """Register the property on ``CalendarItem`` (class-global in exchangelib; idempotent)."""
    if CALSYNC_ID_FIELD not in {f.name for f in CalendarItem.FIELDS}:
        CalendarItem.register(CALSYNC_ID_FIELD, CalsyncIdProperty)


register_calsync_id()

_SHOW_AS = {
    "Free": ShowAs.FREE,
    "Tentative": ShowAs.TENTATIVE,
    "Busy": ShowAs.BUSY,
    "OOF": ShowAs.OOF,
    "WorkingElsewhere": ShowAs.WORKING_ELSEWHERE,
}
_FREE_BUSY = {v: k for k, v in _SHOW_AS.items()}
_SENSITIVITY = {s.value.capitalize(): s for s in Sensitivity}
_RESPONSES = {
    "Accept": "accept",
    "Decline": "decline",
    "Tentative": "tentative",
    "NoResponseReceived": "none",
    "Organizer": "organizer",
    "Unknown": "none",
}

# Fields GetItem asks for: everything the model holds, nothing more (no MIME, no attachments).
ITEM_FIELDS = (
    "subject",
    "location",
    "body",
    "text_body",
    "start",
    "end",
    "_start_timezone",
    "_end_timezone",
    "is_all_day",
    "legacy_free_busy_status",
    "sensitivity",
    "categories",
    "organizer",
    "required_attendees",
    "optional_attendees",
    "resources",
    "reminder_is_set",
    "reminder_minutes_before_start",
    "is_cancelled",
    "uid",
    "type",
    "recurrence",
    "modified_occurrences",
    "deleted_occurrences",
    "original_start",
    CALSYNC_ID_FIELD,
)


def ews_zone(iana: str) -> Any:
    """The exchangelib zone for an IANA id, via calsync's Windows table (``ValueError`` if none)."""
    return EWSTimeZone.from_ms_id(timezones.iana_to_windows(iana))


def _iana_of(zone: Any) -> str:
    ms_id = getattr(zone, "ms_id", None)
    if ms_id:
        return timezones.windows_to_iana(ms_id)
    key = getattr(zone, "key", None)
    return key if isinstance(key, str) else "UTC"


def _zone_info(iana: str) -> tzinfo:
    from zoneinfo import ZoneInfo

    return UTC if iana == "UTC" else ZoneInfo(iana)


def to_utc(value: datetime) -> datetime:
    """A plain UTC ``datetime`` of any aware datetime (exchangelib's ``EWSDateTime`` too)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime from Exchange: {value!r}")
    seconds = value.utcoffset() or timedelta(0)
    plain = datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )
    return (plain - seconds).replace(tzinfo=UTC)


def _local_date(value: datetime, zone: tzinfo) -> date:
    return to_utc(value).astimezone(zone).date()


def _midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _plain_text(item: Any) -> str:
    text = getattr(item, "text_body", None)
    if text is not None:
        return str(text)
    body = item.body
    if body is None:
        return ""
    if isinstance(body, HTMLBody):
        stripped = re.sub(r"<(script|style)\b.*?</\1>", "", str(body), flags=re.S | re.I)
        stripped = re.sub(r"<br\s*/?>|</p>|</div>", "\n", stripped, flags=re.I)
        return html.unescape(re.sub(r"<[^>]+>", "", stripped)).strip()
    return str(body)


def _attendees(item: Any) -> tuple[Attendee, ...]:
    result: list[Attendee] = []
    for kind, field in (
        (AttendeeType.REQUIRED, "required_attendees"),
        (AttendeeType.OPTIONAL, "optional_attendees"),
        (AttendeeType.RESOURCE, "resources"),
    ):
        for attendee in getattr(item, field) or ():
            mailbox = attendee.mailbox
            if mailbox is None or not mailbox.email_address:
                continue
            result.append(
                Attendee(
                    address=mailbox.email_address,
                    name=mailbox.name or "",
                    type=kind,
                    response=_RESPONSES.get(attendee.response_type or ""),
                )
            )
    return tuple(result)


def _times(item: Any, zone: tzinfo) -> tuple[datetime, datetime]:
    start, end = item.start, item.end
    if start is None or end is None:  # a damaged or foreign item: skipped, not a failed run
        raise ValueError("the item has no start or no end")
    if item.is_all_day:
        first = start if not isinstance(start, datetime) else _local_date(start, zone)
        # exchangelib turns the end into the last day (inclusive) unless it left a datetime
        after = _local_date(end, zone) if isinstance(end, datetime) else end + timedelta(days=1)
        return _midnight_utc(first), _midnight_utc(max(after, first + timedelta(days=1)))
    return to_utc(start), to_utc(end)


def _as_utc(value: Any, zone: tzinfo, all_day: bool) -> datetime:
    if isinstance(value, datetime):
        if all_day:
            return _midnight_utc(_local_date(value, zone))
        return to_utc(value)
    return _midnight_utc(value)


def item_to_event(item: Any, occurrences: Sequence[Any] = ()) -> EventData:
    """The model of an exchangelib ``CalendarItem``; ``occurrences`` are the full items of its
    modified occurrences (GetItem), matched by their original start."""
    iana = _iana_of(item._start_timezone) if item._start_timezone is not None else "UTC"
    zone = _zone_info(iana)
    start, end = _times(item, zone)
    recurrence = None
    deleted: tuple[datetime, ...] = ()
    modified: tuple[ModifiedOccurrence, ...] = ()
    if item.recurrence is not None:
        local_start = (
            time(0) if item.is_all_day else start.astimezone(zone).time().replace(tzinfo=None)
        )
        recurrence = recurrence_to_rrule(
            item.recurrence, UTC if item.is_all_day else zone, local_start
        )
        deleted = tuple(
            sorted(_as_utc(d.start, zone, item.is_all_day) for d in item.deleted_occurrences or ())
        )
        modified = tuple(
            sorted(
                (
                    ModifiedOccurrence(
                        original_start=_as_utc(o.original_start, zone, bool(item.is_all_day)),
                        data=item_to_event(o),
                    )
                    for o in occurrences
                    if o.original_start is not None
                ),
                key=lambda m: m.original_start,
            )
        )
    reminder = item.reminder_minutes_before_start if item.reminder_is_set else None
    return EventData(
        subject=item.subject or "",
        start=start,
        end=end,
        timezone=iana,
        is_all_day=bool(item.is_all_day),
        location=item.location or "",
        body=_plain_text(item),
        uid=item.uid,
        reminder_minutes=reminder,
        show_as=_SHOW_AS.get(item.legacy_free_busy_status or "Busy", ShowAs.BUSY),
        sensitivity=_SENSITIVITY.get(item.sensitivity or "Normal", Sensitivity.NORMAL),
        categories=tuple(item.categories or ()),
        organizer=item.organizer.email_address if item.organizer is not None else None,
        attendees=_attendees(item),
        is_cancelled=bool(item.is_cancelled),
        recurrence=recurrence,
        deleted_occurrences=deleted,
        modified_occurrences=modified,
    )


def exception_starts(item: Any) -> tuple[frozenset[datetime], frozenset[datetime]]:
    """(deleted, modified) original starts of a master's exceptions, in the model's frame."""
    iana = _iana_of(item._start_timezone) if item._start_timezone is not None else "UTC"
    zone, all_day = _zone_info(iana), bool(item.is_all_day)
    deleted = frozenset(_as_utc(d.start, zone, all_day) for d in item.deleted_occurrences or ())
    modified = frozenset(
        _as_utc(o.original_start, zone, all_day)
        for o in item.modified_occurrences or ()
        if o.original_start is not None
    )
    return deleted, modified


def event_fields(data: EventData, *, with_recurrence: bool = True) -> dict[str, Any]:
    """``CalendarItem`` keyword arguments for ``data`` (the fields calsync writes).

    Raises ``ValueError`` (or ``RecurrenceError``, a ``ValueError``) when EWS cannot hold it.
    """
    zone = ews_zone(data.timezone)
    if data.is_all_day:
        first = data.start.astimezone(UTC).date()
        after = max(data.end.astimezone(UTC).date(), first + timedelta(days=1))
        start: Any = EWSDate.from_date(first)
        end: Any = EWSDate.from_date(after - timedelta(days=1))  # exchangelib adds the day back
    else:
        start = data.start.astimezone(zone)  # an EWSDateTime, since zone is an EWSTimeZone
        end = data.end.astimezone(zone)
    by_type: dict[AttendeeType, list[Any]] = {t: [] for t in AttendeeType}
    for attendee in data.attendees:
        by_type[attendee.type].append(
            EwsAttendee(
                mailbox=EwsMailbox(email_address=attendee.address, name=attendee.name or None)
            )
        )
    fields: dict[str, Any] = {
        "subject": data.subject,
        "location": data.location or None,
        "body": Body(data.body) if data.body else None,
        "start": start,
        "end": end,
        "_start_timezone": zone,
        "_end_timezone": zone,
        "is_all_day": data.is_all_day,
        "legacy_free_busy_status": _FREE_BUSY[data.show_as],
        "sensitivity": data.sensitivity.value.capitalize(),
        "categories": list(data.categories) or None,
        "required_attendees": by_type[AttendeeType.REQUIRED] or None,
        "optional_attendees": by_type[AttendeeType.OPTIONAL] or None,
        "resources": by_type[AttendeeType.RESOURCE] or None,
        "reminder_is_set": data.reminder_minutes is not None,
        "reminder_minutes_before_start": data.reminder_minutes or 0,
    }
    if data.uid:
        fields["uid"] = data.uid
    if with_recurrence:
        fields["recurrence"] = None
        if data.recurrence:
            local = (
                _midnight_utc(data.start.astimezone(UTC).date())
                if data.is_all_day
                else data.start.astimezone(zone)
            )
            fields["recurrence"] = rrule_to_recurrence(data.recurrence, local)
    return fields


# Field names UpdateItem sets (the writable ones of ``event_fields``).
UPDATE_FIELDS = (
    "subject",
    "location",
    "body",
    "start",
    "end",
    "is_all_day",
    "legacy_free_busy_status",
    "sensitivity",
    "categories",
    "required_attendees",
    "optional_attendees",
    "resources",
    "reminder_is_set",
    "reminder_minutes_before_start",
)
