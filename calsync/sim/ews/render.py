"""Calendar items as EWS XML, limited to the properties a request asked for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from calsync.sim.ews.xml import esc, ews_dt
from calsync.sim.mailstore import Attendee, Item, Mailbox
from calsync.sim.recurrence import MONTHS, Recurrence
from calsync.sim.tz import display_name, zoneinfo_for_windows

ExtKey = tuple[str, str, str]  # (property set id or distinguished set / "tag", name or tag, type)

ALL_FIELDS = frozenset(
    {
        "item:ParentFolderId", "item:ItemClass", "item:Subject", "item:Sensitivity", "item:Body",
        "item:DateTimeReceived", "item:Size", "item:Categories", "item:Importance",
        "item:IsDraft", "item:DateTimeSent", "item:DateTimeCreated", "item:ReminderIsSet",
        "item:ReminderMinutesBeforeStart", "item:HasAttachments", "item:LastModifiedName",
        "item:LastModifiedTime", "calendar:UID", "calendar:RecurrenceId", "calendar:Start",
        "calendar:End", "calendar:OriginalStart", "calendar:IsAllDayEvent",
        "calendar:LegacyFreeBusyStatus", "calendar:Location", "calendar:IsMeeting",
        "calendar:IsCancelled", "calendar:IsRecurring", "calendar:MeetingRequestWasSent",
        "calendar:CalendarItemType", "calendar:MyResponseType", "calendar:Organizer",
        "calendar:RequiredAttendees", "calendar:OptionalAttendees", "calendar:Resources",
        "calendar:Duration", "calendar:AppointmentSequenceNumber", "calendar:AppointmentState",
        "calendar:Recurrence", "calendar:FirstOccurrence", "calendar:LastOccurrence",
        "calendar:ModifiedOccurrences", "calendar:DeletedOccurrences",
        "calendar:StartTimeZone", "calendar:EndTimeZone",
    }
)  # fmt: skip
DEFAULT_FIELDS = frozenset(
    {
        "item:Subject", "item:Sensitivity", "item:HasAttachments", "calendar:Start",
        "calendar:End", "calendar:LegacyFreeBusyStatus", "calendar:Location",
        "calendar:CalendarItemType", "calendar:Organizer",
    }
)  # fmt: skip


@dataclass
class Shape:
    fields: frozenset[str] = frozenset()
    extended: list[ExtKey] = field(default_factory=list)
    body_type: str = "Best"


def _mailbox(address: str, name: str) -> str:
    return (
        f"<t:Mailbox><t:Name>{esc(name or address)}</t:Name><t:EmailAddress>{esc(address)}"
        "</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox"
        "</t:MailboxType></t:Mailbox>"
    )


def _attendees(tag: str, people: list[Attendee]) -> str:
    if not people:
        return ""
    inner = "".join(
        f"<t:Attendee>{_mailbox(a.address, a.name)}<t:ResponseType>{a.response}"
        "</t:ResponseType></t:Attendee>"
        for a in people
    )
    return f"<t:{tag}>{inner}</t:{tag}>"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    time += f"{secs}S" if secs else ""
    return out + ("T" + time if time else ("" if days else "T0S"))


def recurrence_xml(rec: Recurrence) -> str:
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
    start = f"<t:StartDate>{rec.start_date.isoformat()}</t:StartDate>"
    if rec.end == "numbered":
        rng = (
            f"<t:NumberedRecurrence>{start}<t:NumberOfOccurrences>{rec.count}"
            "</t:NumberOfOccurrences></t:NumberedRecurrence>"
        )
    elif rec.end == "date" and rec.end_date is not None:
        rng = (
            f"<t:EndDateRecurrence>{start}<t:EndDate>{rec.end_date.isoformat()}</t:EndDate>"
            "</t:EndDateRecurrence>"
        )
    else:
        rng = f"<t:NoEndRecurrence>{start}</t:NoEndRecurrence>"
    return f"<t:Recurrence><t:{kind}>{''.join(parts)}</t:{kind}>{rng}</t:Recurrence>"


def _occurrence(tag: str, item_id: str, ck: str, start: dt.datetime, end: dt.datetime,
                original: dt.datetime) -> str:  # fmt: skip
    return (
        f'<t:{tag}><t:ItemId Id="{esc(item_id)}" ChangeKey="{esc(ck)}"/>'
        f"<t:Start>{ews_dt(start)}</t:Start><t:End>{ews_dt(end)}</t:End>"
        f"<t:OriginalStart>{ews_dt(original)}</t:OriginalStart></t:{tag}>"
    )


def _tz(tag: str, zone: str) -> str:
    return f'<t:{tag} Id="{esc(zone)}" Name="{esc(display_name(zone))}"/>'


def extended_xml(key: ExtKey, value: str) -> str:
    set_id, name, ptype = key
    if set_id == "tag":
        uri = f'<t:ExtendedFieldURI PropertyTag="{esc(name)}" PropertyType="{ptype}"/>'
    elif set_id.startswith("dist:"):
        uri = (
            f'<t:ExtendedFieldURI DistinguishedPropertySetId="{set_id[5:]}" '
            f'PropertyName="{esc(name)}" PropertyType="{ptype}"/>'
        )
    else:
        uri = (
            f'<t:ExtendedFieldURI PropertySetId="{set_id}" PropertyName="{esc(name)}" '
            f'PropertyType="{ptype}"/>'
        )
    return f"<t:ExtendedProperty>{uri}<t:Value>{esc(value)}</t:Value></t:ExtendedProperty>"


def render_item(
    item: Item,
    shape: Shape,
    mailbox: Mailbox,
    *,
    kind: str | None = None,
    allow_body: bool = True,
    tag: str = "CalendarItem",
) -> str:
    """One `<t:CalendarItem>`; `kind` overrides CalendarItemType (for expanded occurrences)."""
    f = shape.fields
    kind = kind or item.kind
    out = [f'<t:{tag}><t:ItemId Id="{esc(item.item_id)}" ChangeKey="{esc(item.change_key)}"/>']
    a = out.append
    if "item:ParentFolderId" in f:
        a(f'<t:ParentFolderId Id="{mailbox.calendar_id}" ChangeKey="{mailbox.folder_ck}"/>')
    if "item:ItemClass" in f:
        a("<t:ItemClass>IPM.Appointment</t:ItemClass>")
    if "item:Subject" in f:
        a(f"<t:Subject>{esc(item.subject)}</t:Subject>")
    if "item:Sensitivity" in f:
        a(f"<t:Sensitivity>{item.sensitivity}</t:Sensitivity>")
    if "item:Body" in f and allow_body:
        body, btype = item.body, item.body_type
        if shape.body_type == "Text" and btype == "HTML":
            body, btype = _strip_html(body), "Text"
        a(f'<t:Body BodyType="{btype}">{esc(body)}</t:Body>')
    if "item:DateTimeReceived" in f:
        a(f"<t:DateTimeReceived>{ews_dt(item.created)}</t:DateTimeReceived>")
    if "item:Size" in f:
        a(f"<t:Size>{1024 + len(item.body) + len(item.subject)}</t:Size>")
    if "item:Categories" in f and item.categories:
        a("<t:Categories>" + "".join(f"<t:String>{esc(c)}</t:String>" for c in item.categories))
        a("</t:Categories>")
    if "item:Importance" in f:
        a(f"<t:Importance>{item.importance}</t:Importance>")
    if "item:IsDraft" in f:
        a("<t:IsDraft>false</t:IsDraft>")
    if "item:DateTimeSent" in f:
        a(f"<t:DateTimeSent>{ews_dt(item.created)}</t:DateTimeSent>")
    if "item:DateTimeCreated" in f:
        a(f"<t:DateTimeCreated>{ews_dt(item.created)}</t:DateTimeCreated>")
    if "item:ReminderIsSet" in f:
        a(f"<t:ReminderIsSet>{_bool(item.reminder_set)}</t:ReminderIsSet>")
    if "item:ReminderMinutesBeforeStart" in f:
        a(f"<t:ReminderMinutesBeforeStart>{item.reminder_minutes}</t:ReminderMinutesBeforeStart>")
    if "item:HasAttachments" in f:
        a("<t:HasAttachments>false</t:HasAttachments>")
    for key in shape.extended:
        if key in item.extended:
            a(extended_xml(key, item.extended[key]))
    if "item:LastModifiedName" in f:
        a(f"<t:LastModifiedName>{esc(mailbox.display_name)}</t:LastModifiedName>")
    if "item:LastModifiedTime" in f:
        a(f"<t:LastModifiedTime>{ews_dt(item.modified)}</t:LastModifiedTime>")
    if "calendar:UID" in f:
        a(f"<t:UID>{esc(item.uid)}</t:UID>")
    original = item.original_start if kind in ("Exception", "Occurrence") else None
    if "calendar:RecurrenceId" in f and original is not None:
        a(f"<t:RecurrenceId>{ews_dt(original)}</t:RecurrenceId>")
    if "calendar:Start" in f:
        a(f"<t:Start>{ews_dt(item.start)}</t:Start>")
    if "calendar:End" in f:
        a(f"<t:End>{ews_dt(item.end)}</t:End>")
    if "calendar:OriginalStart" in f and original is not None:
        a(f"<t:OriginalStart>{ews_dt(original)}</t:OriginalStart>")
    if "calendar:IsAllDayEvent" in f:
        a(f"<t:IsAllDayEvent>{_bool(item.is_all_day)}</t:IsAllDayEvent>")
    if "calendar:LegacyFreeBusyStatus" in f:
        a(f"<t:LegacyFreeBusyStatus>{item.show_as}</t:LegacyFreeBusyStatus>")
    if "calendar:Location" in f and item.location:
        a(f"<t:Location>{esc(item.location)}</t:Location>")
    if "calendar:IsMeeting" in f:
        a(f"<t:IsMeeting>{_bool(item.is_meeting)}</t:IsMeeting>")
    if "calendar:IsCancelled" in f:
        a(f"<t:IsCancelled>{_bool(item.is_cancelled)}</t:IsCancelled>")
    if "calendar:IsRecurring" in f:
        a(f"<t:IsRecurring>{_bool(kind in ('Exception', 'Occurrence'))}</t:IsRecurring>")
    if "calendar:MeetingRequestWasSent" in f:
        a(f"<t:MeetingRequestWasSent>{_bool(item.meeting_request_was_sent)}")
        a("</t:MeetingRequestWasSent>")
    if "calendar:CalendarItemType" in f:
        a(f"<t:CalendarItemType>{kind}</t:CalendarItemType>")
    if "calendar:MyResponseType" in f:
        a("<t:MyResponseType>Organizer</t:MyResponseType>")
    if "calendar:Organizer" in f and item.organizer[0]:
        a(f"<t:Organizer>{_mailbox(*item.organizer)}</t:Organizer>")
    if "calendar:RequiredAttendees" in f:
        a(_attendees("RequiredAttendees", [x for x in item.attendees if x.kind == "required"]))
    if "calendar:OptionalAttendees" in f:
        a(_attendees("OptionalAttendees", [x for x in item.attendees if x.kind == "optional"]))
    if "calendar:Resources" in f:
        a(_attendees("Resources", [x for x in item.attendees if x.kind == "resource"]))
    if "calendar:Duration" in f:
        a(f"<t:Duration>{_duration(item.end - item.start)}</t:Duration>")
    if "calendar:AppointmentSequenceNumber" in f:
        a(f"<t:AppointmentSequenceNumber>{item.sequence}</t:AppointmentSequenceNumber>")
    if "calendar:AppointmentState" in f:
        state = (1 if item.is_meeting else 0) | (4 if item.is_cancelled else 0)
        a(f"<t:AppointmentState>{state}</t:AppointmentState>")
    if kind == "RecurringMaster" and item.recurrence is not None:
        _master_parts(item, f, a)
    if "calendar:StartTimeZone" in f:
        a(_tz("StartTimeZone", item.start_tz))
    if "calendar:EndTimeZone" in f:
        a(_tz("EndTimeZone", item.end_tz))
    a(f"</t:{tag}>")
    return "".join(out)


def _master_parts(item: Item, f: frozenset[str], add: Callable[[str], None]) -> None:
    assert item.recurrence is not None
    if "calendar:Recurrence" in f:
        add(recurrence_xml(item.recurrence))
    starts = [s for s in item.occurrence_starts() if s not in item.deleted]
    length = item.end - item.start
    if starts and "calendar:FirstOccurrence" in f:
        first = item.exceptions.get(starts[0])
        s0 = first.start if first else starts[0]
        e0 = first.end if first else starts[0] + length
        add(_occurrence("FirstOccurrence", occurrence_id(item, 1, starts[0]), item.change_key,
                        s0, e0, starts[0]))  # fmt: skip
    if starts and "calendar:LastOccurrence" in f and item.recurrence.end != "none":
        last = item.exceptions.get(starts[-1])
        s1 = last.start if last else starts[-1]
        e1 = last.end if last else starts[-1] + length
        add(_occurrence("LastOccurrence", occurrence_id(item, len(starts), starts[-1]),
                        item.change_key, s1, e1, starts[-1]))  # fmt: skip
    if "calendar:ModifiedOccurrences" in f and item.exceptions:
        occ = "".join(
            _occurrence("Occurrence", x.item_id, x.change_key, x.start, x.end, orig)
            for orig, x in sorted(item.exceptions.items())
        )
        add(f"<t:ModifiedOccurrences>{occ}</t:ModifiedOccurrences>")
    if "calendar:DeletedOccurrences" in f and item.deleted:
        occ = "".join(
            f"<t:DeletedOccurrence><t:Start>{ews_dt(d)}</t:Start></t:DeletedOccurrence>"
            for d in item.deleted
        )
        add(f"<t:DeletedOccurrences>{occ}</t:DeletedOccurrences>")


def occurrence_id(master: Item, index: int, original: dt.datetime) -> str:
    """An id for an unmodified occurrence: the master's id with the instance index."""
    return f"{master.item_id}.OCC{index}"


def _strip_html(html: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", html)


def local_midnight(day: dt.date, zone: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), zoneinfo_for_windows(zone)).astimezone(dt.UTC)
