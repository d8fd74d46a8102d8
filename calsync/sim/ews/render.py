"""Calendar items as EWS XML, limited to the properties a request asked for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from calsync.sim.ews.series import master_parts
from calsync.sim.ews.xml import esc, ews_dt
from calsync.sim.mailstore import Attendee, Item, Mailbox
from calsync.sim.tz import display_name

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
    _renderers: list[Callable[[Item, _View], str]] | None = None
    _key: tuple[object, ...] | None = None

    def key(self) -> tuple[object, ...]:
        if self._key is None:
            self._key = (self.fields, tuple(self.extended), self.body_type)
        return self._key

    def renderers(self) -> list[Callable[[Item, _View], str]]:
        """The part renderers this shape asks for, in schema order (computed once)."""
        if self._renderers is None:
            self._renderers = [
                render
                for uri, render in _PARTS
                if uri in self.fields or (uri == "*extended" and self.extended) or uri == "*master"
            ]
        return self._renderers


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


@dataclass
class _View:
    """What one rendering needs besides the item."""

    shape: Shape
    mailbox: Mailbox
    kind: str
    allow_body: bool

    @property
    def original(self) -> bool:
        return self.kind in ("Exception", "Occurrence")


def _body_part(item: Item, v: _View) -> str:
    if not v.allow_body:
        return ""
    body, btype = item.body, item.body_type
    if v.shape.body_type == "Text" and btype == "HTML":
        body, btype = _strip_html(body), "Text"
    return f'<t:Body BodyType="{btype}">{esc(body)}</t:Body>'


def _categories(item: Item, v: _View) -> str:
    if not item.categories:
        return ""
    inner = "".join(f"<t:String>{esc(c)}</t:String>" for c in item.categories)
    return f"<t:Categories>{inner}</t:Categories>"


def _extended(item: Item, v: _View) -> str:
    return "".join(
        extended_xml(k, item.extended[k]) for k in v.shape.extended if k in item.extended
    )


def _original(tag: str) -> Callable[[Item, _View], str]:
    def render(item: Item, v: _View) -> str:
        if not v.original or item.original_start is None:
            return ""
        return f"<t:{tag}>{ews_dt(item.original_start)}</t:{tag}>"

    return render


def _state(item: Item, v: _View) -> str:
    state = (1 if item.is_meeting else 0) | (4 if item.is_cancelled else 0)
    return f"<t:AppointmentState>{state}</t:AppointmentState>"


def _people(tag: str, kind: str) -> Callable[[Item, _View], str]:
    return lambda item, v: _attendees(tag, [a for a in item.attendees if a.kind == kind])


def _simple(tag: str, value: Callable[[Item], object]) -> Callable[[Item, _View], str]:
    def render(item: Item, v: _View) -> str:
        raw = value(item)
        text = _bool(raw) if isinstance(raw, bool) else str(raw)
        return f"<t:{tag}>{text}</t:{tag}>"

    return render


def _text(
    tag: str, value: Callable[[Item], str], *, skip_empty: bool = False
) -> Callable[[Item, _View], str]:
    def render(item: Item, v: _View) -> str:
        raw = value(item)
        return "" if skip_empty and not raw else f"<t:{tag}>{esc(raw)}</t:{tag}>"

    return render


# (FieldURI, renderer) in the order of the schema's ItemType / CalendarItemType sequences
_PARTS: list[tuple[str, Callable[[Item, _View], str]]] = [
    ("item:ParentFolderId", lambda i, v: f'<t:ParentFolderId Id="{v.mailbox.calendar_id}" '
     f'ChangeKey="{v.mailbox.folder_ck}"/>'),
    ("item:ItemClass", lambda i, v: "<t:ItemClass>IPM.Appointment</t:ItemClass>"),
    ("item:Subject", _text("Subject", lambda i: i.subject)),
    ("item:Sensitivity", _simple("Sensitivity", lambda i: i.sensitivity)),
    ("item:Body", _body_part),
    ("item:DateTimeReceived", _simple("DateTimeReceived", lambda i: ews_dt(i.created))),
    ("item:Size", _simple("Size", lambda i: 1024 + len(i.body) + len(i.subject))),
    ("item:Categories", _categories),
    ("item:Importance", _simple("Importance", lambda i: i.importance)),
    ("item:IsDraft", lambda i, v: "<t:IsDraft>false</t:IsDraft>"),
    ("item:DateTimeSent", _simple("DateTimeSent", lambda i: ews_dt(i.created))),
    ("item:DateTimeCreated", _simple("DateTimeCreated", lambda i: ews_dt(i.created))),
    ("item:ReminderIsSet", _simple("ReminderIsSet", lambda i: i.reminder_set)),
    ("item:ReminderMinutesBeforeStart",
     _simple("ReminderMinutesBeforeStart", lambda i: i.reminder_minutes)),
    ("item:HasAttachments", lambda i, v: "<t:HasAttachments>false</t:HasAttachments>"),
    ("*extended", _extended),
    ("item:LastModifiedName", lambda i, v: f"<t:LastModifiedName>{esc(v.mailbox.display_name)}"
     "</t:LastModifiedName>"),
    ("item:LastModifiedTime", _simple("LastModifiedTime", lambda i: ews_dt(i.modified))),
    ("calendar:UID", _text("UID", lambda i: i.uid)),
    ("calendar:RecurrenceId", _original("RecurrenceId")),
    ("calendar:Start", _simple("Start", lambda i: ews_dt(i.start))),
    ("calendar:End", _simple("End", lambda i: ews_dt(i.end))),
    ("calendar:OriginalStart", _original("OriginalStart")),
    ("calendar:IsAllDayEvent", _simple("IsAllDayEvent", lambda i: i.is_all_day)),
    ("calendar:LegacyFreeBusyStatus", _simple("LegacyFreeBusyStatus", lambda i: i.show_as)),
    ("calendar:Location", _text("Location", lambda i: i.location, skip_empty=True)),
    ("calendar:IsMeeting", _simple("IsMeeting", lambda i: i.is_meeting)),
    ("calendar:IsCancelled", _simple("IsCancelled", lambda i: i.is_cancelled)),
    ("calendar:IsRecurring", lambda i, v: f"<t:IsRecurring>{_bool(v.original)}</t:IsRecurring>"),
    ("calendar:MeetingRequestWasSent",
     _simple("MeetingRequestWasSent", lambda i: i.meeting_request_was_sent)),
    ("calendar:CalendarItemType", lambda i, v: f"<t:CalendarItemType>{v.kind}"
     "</t:CalendarItemType>"),
    ("calendar:MyResponseType", lambda i, v: "<t:MyResponseType>Organizer</t:MyResponseType>"),
    ("calendar:Organizer", lambda i, v: f"<t:Organizer>{_mailbox(*i.organizer)}</t:Organizer>"
     if i.organizer[0] else ""),
    ("calendar:RequiredAttendees", _people("RequiredAttendees", "required")),
    ("calendar:OptionalAttendees", _people("OptionalAttendees", "optional")),
    ("calendar:Resources", _people("Resources", "resource")),
    ("calendar:Duration", _simple("Duration", lambda i: _duration(i.end - i.start))),
    ("calendar:AppointmentSequenceNumber",
     _simple("AppointmentSequenceNumber", lambda i: i.sequence)),
    ("calendar:AppointmentState", _state),
    ("*master", lambda i, v: master_parts(i, v.shape.fields)
     if v.kind == "RecurringMaster" else ""),
    ("calendar:StartTimeZone", lambda i, v: _tz("StartTimeZone", i.start_tz)),
    ("calendar:EndTimeZone", lambda i, v: _tz("EndTimeZone", i.end_tz)),
]  # fmt: skip


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
    kind = kind or item.kind
    key = (shape.key(), item.item_id, item.change_key, kind, allow_body, tag)
    cache = item.xml_cache
    if cache is not None and key in cache:
        return cache[key]
    view = _View(shape, mailbox, kind, allow_body)
    parts = [f'<t:{tag}><t:ItemId Id="{esc(item.item_id)}" ChangeKey="{esc(item.change_key)}"/>']
    parts += [render(item, view) for render in shape.renderers()]
    parts.append(f"</t:{tag}>")
    xml = "".join(parts)
    if cache is None or len(cache) >= 4:  # a few shapes per item; older ChangeKeys drop out
        cache = item.xml_cache = {}
    cache[key] = xml
    return xml


def _strip_html(html: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", html)
