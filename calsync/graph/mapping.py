"""Graph ``event`` JSON <-> ``model.EventData``, with the conventions of the EWS adapter.

Times are read in UTC (no ``Prefer: outlook.timezone``); an all-day event comes back midnight to
midnight as floating dates and becomes midnight UTC of its first day and of the day after its
last; ``timezone`` is the IANA id of ``originalStartTimeZone``. A series master carries its RRULE,
its cancelled occurrences (``cancelledOccurrences``) and its exceptions
(``exceptionOccurrences``). ``attendees`` are read, never written (Graph would mail them).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from calsync import timezones
from calsync.graph.models import DateTimeTimeZone, GraphAttendee, GraphEvent
from calsync.graph.recurrence import from_rrule, to_rrule
from calsync.model import Attendee, AttendeeType, EventData, ModifiedOccurrence, Sensitivity, ShowAs

CALSYNC_PROP = "String {4ca80195-c234-4a35-b00a-22be78edc0d5} Name calsync-id"
SHOW_AS = {
    "free": ShowAs.FREE,
    "tentative": ShowAs.TENTATIVE,
    "busy": ShowAs.BUSY,
    "oof": ShowAs.OOF,
    "workingElsewhere": ShowAs.WORKING_ELSEWHERE,
}
SHOW_AS_OUT = {v: k for k, v in SHOW_AS.items()}
RESPONSES = {
    "none": "none",
    "notResponded": "none",
    "accepted": "accept",
    "declined": "decline",
    "tentativelyAccepted": "tentative",
    "organizer": "organizer",
}
KINDS = (AttendeeType.REQUIRED, AttendeeType.OPTIONAL, AttendeeType.RESOURCE)
# what a full read asks for (everything the model holds, nothing more)
FIELDS = (
    "subject,body,start,end,originalStartTimeZone,originalEndTimeZone,isAllDay,showAs,"
    "sensitivity,categories,location,organizer,attendees,isReminderOn,"
    "reminderMinutesBeforeStart,isCancelled,iCalUId,type,seriesMasterId,originalStart,"
    "recurrence,cancelledOccurrences,changeKey,lastModifiedDateTime"
)
EXPAND = f"exceptionOccurrences,singleValueExtendedProperties($filter=id eq '{CALSYNC_PROP}')"


def iana_of(windows: str | None) -> str:
    try:
        return timezones.windows_to_iana(windows or "UTC")
    except ValueError:
        return "UTC"  # tzone://Microsoft/Custom and other legacy zones: times stay right in UTC


def zone_info(iana: str) -> tzinfo:
    return UTC if iana == "UTC" else ZoneInfo(iana)


def _instant(value: DateTimeTimeZone) -> datetime:
    naive = datetime.fromisoformat(value["dateTime"][:19])
    name = value.get("timeZone") or "UTC"
    return naive.replace(tzinfo=zone_info(iana_of(name))).astimezone(UTC)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00")[:25])
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def plain_text(body: dict[str, Any] | None) -> str:
    """The body as text (HTML is reduced as the EWS adapter does, so both read the same)."""
    if not body:
        return ""
    content = str(body.get("content") or "")
    if str(body.get("contentType", "")).lower() != "html":
        return content
    stripped = re.sub(r"<(script|style)\b.*?</\1>", "", content, flags=re.S | re.I)
    stripped = re.sub(r"<br\s*/?>|</p>|</div>", "\n", stripped, flags=re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", stripped)).strip()


def _attendees(people: list[GraphAttendee]) -> tuple[Attendee, ...]:
    out: list[Attendee] = []
    for kind in KINDS:
        for person in people:
            email = person.get("emailAddress") or {}
            if str(person.get("type", "required")) != kind.value or not email.get("address"):
                continue
            response = (person.get("status") or {}).get("response")
            out.append(
                Attendee(
                    address=str(email["address"]),
                    name=str(email.get("name") or ""),
                    type=kind,
                    response=RESPONSES.get(str(response)),
                )
            )
    return tuple(out)


def calsync_id_of(event: GraphEvent) -> str | None:
    for prop in event.get("singleValueExtendedProperties") or []:
        if prop.get("id", "").lower() == CALSYNC_PROP.lower():
            return str(prop.get("value"))
    return None


def event_to_data(event: GraphEvent) -> EventData:
    """The model of a Graph event (a master with its exceptions and cancelled occurrences)."""
    iana = iana_of(event.get("originalStartTimeZone"))
    zone, all_day = zone_info(iana), bool(event.get("isAllDay"))
    if all_day:
        first = datetime.fromisoformat(event["start"]["dateTime"][:19]).date()
        after = datetime.fromisoformat(event["end"]["dateTime"][:19]).date()
        start, end = _midnight(first), _midnight(max(after, first + timedelta(days=1)))
    else:
        start, end = _instant(event["start"]), _instant(event["end"])
    recurrence: str | None = None
    deleted: tuple[datetime, ...] = ()
    modified: tuple[ModifiedOccurrence, ...] = ()
    series = event.get("recurrence")
    if series and event.get("type") == "seriesMaster":
        local = time(0) if all_day else start.astimezone(zone).time().replace(tzinfo=None)
        recurrence = to_rrule(series, UTC if all_day else zone, local)
        deleted = tuple(
            sorted(
                _midnight(day) if all_day else datetime.combine(day, local, zone).astimezone(UTC)
                for day in (
                    date.fromisoformat(o.rsplit(".", 1)[-1])
                    for o in event.get("cancelledOccurrences") or []
                )
            )
        )
        modified = tuple(
            sorted(
                (
                    ModifiedOccurrence(_original(x, zone, all_day), event_to_data(x))
                    for x in event.get("exceptionOccurrences") or []
                    if x.get("originalStart")
                ),
                key=lambda m: m.original_start,
            )
        )
    organizer = ((event.get("organizer") or {}).get("emailAddress") or {}).get("address")
    return EventData(
        subject=event.get("subject") or "",
        start=start,
        end=end,
        timezone=iana,
        is_all_day=all_day,
        location=(event.get("location") or {}).get("displayName") or "",
        body=plain_text(dict(event["body"]) if event.get("body") else None),
        uid=event.get("iCalUId"),
        reminder_minutes=event.get("reminderMinutesBeforeStart")
        if event.get("isReminderOn")
        else None,
        show_as=SHOW_AS.get(event.get("showAs") or "busy", ShowAs.BUSY),
        sensitivity=Sensitivity(event.get("sensitivity") or "normal"),
        categories=tuple(event.get("categories") or ()),
        organizer=organizer or None,
        attendees=_attendees(event.get("attendees") or []),
        is_cancelled=bool(event.get("isCancelled")),
        recurrence=recurrence,
        deleted_occurrences=deleted,
        modified_occurrences=modified,
    )


def _original(event: GraphEvent, zone: tzinfo, all_day: bool) -> datetime:
    value = _utc(str(event.get("originalStart")))
    return _midnight(value.astimezone(zone).date()) if all_day else value


def _when(value: datetime, windows: str, zone: tzinfo) -> dict[str, str]:
    local = value.astimezone(zone).replace(tzinfo=None)
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": windows}


def data_to_event(data: EventData, *, with_recurrence: bool = True) -> dict[str, Any]:
    """The body of a POST/PATCH for ``data`` (never ``attendees``: Graph would mail them).
    Raises ``ValueError`` (``RecurrenceError`` too) when Graph cannot hold it."""
    windows = timezones.iana_to_windows(data.timezone)
    zone = zone_info(data.timezone)
    if data.is_all_day:
        first = data.start.astimezone(UTC).date()
        after = max(data.end.astimezone(UTC).date(), first + timedelta(days=1))
        start = {"dateTime": f"{first.isoformat()}T00:00:00", "timeZone": windows}
        end = {"dateTime": f"{after.isoformat()}T00:00:00", "timeZone": windows}
    else:
        start, end = _when(data.start, windows, zone), _when(data.end, windows, zone)
    body: dict[str, Any] = {
        "subject": data.subject,
        "body": {"contentType": "text", "content": data.body},
        "start": start,
        "end": end,
        "isAllDay": data.is_all_day,
        "showAs": SHOW_AS_OUT[data.show_as],
        "sensitivity": data.sensitivity.value,
        "categories": list(data.categories),
        "location": {"displayName": data.location},
        "isReminderOn": data.reminder_minutes is not None,
        "reminderMinutesBeforeStart": data.reminder_minutes or 0,
    }
    if with_recurrence:
        body["recurrence"] = None
        if data.recurrence:
            local = (
                datetime.combine(data.start.astimezone(UTC).date(), time(0), UTC)
                if data.is_all_day
                else data.start.astimezone(zone)
            )
            body["recurrence"] = from_rrule(data.recurrence, local, windows)
    return body
