"""Reading request XML: item shapes, extended field URIs and CalendarItem properties."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lxml import etree

from calsync.sim.ews.render import ALL_FIELDS, DEFAULT_FIELDS, ExtKey, Shape
from calsync.sim.ews.xml import T, EwsError, parse_dt
from calsync.sim.mailstore import Attendee
from calsync.sim.recurrence import INDEXES, MONTHS, WEEKDAYS, Recurrence, RecurrenceError
from calsync.sim.tz import is_known_windows, windows_for_iana

Element = etree._Element

DISTINGUISHED_SETS = {
    "Meeting", "Appointment", "Common", "PublicStrings", "Address", "InternetHeaders",
    "CalendarAssistant", "UnifiedMessaging", "Task", "Sharing",
}  # fmt: skip


def text(elem: Element | None, default: str = "") -> str:
    if elem is None or elem.text is None:
        return default
    return elem.text


def ext_key(uri: Element) -> ExtKey:
    ptype = uri.get("PropertyType", "String")
    tag = uri.get("PropertyTag")
    if tag is not None:
        return ("tag", tag.lower(), ptype)
    set_id = uri.get("PropertySetId")
    dist = uri.get("DistinguishedPropertySetId")
    name = uri.get("PropertyName") or uri.get("PropertyId") or ""
    if set_id:
        return (set_id.lower(), name, ptype)
    if dist in DISTINGUISHED_SETS:
        return (f"dist:{dist}", name, ptype)
    raise EwsError("ErrorInvalidExtendedProperty", "The extended property is not valid.")


def parse_shape(shape_elem: Element | None, *, base_default: str = "IdOnly") -> Shape:
    if shape_elem is None:
        return Shape(fields=ALL_FIELDS)
    base = text(shape_elem.find(T + "BaseShape"), base_default)
    fields: set[str] = set()
    if base == "AllProperties":
        fields |= ALL_FIELDS
    elif base == "Default":
        fields |= DEFAULT_FIELDS
    extended: list[ExtKey] = []
    props = shape_elem.find(T + "AdditionalProperties")
    if props is not None:
        for child in props:
            if child.tag == T + "FieldURI":
                fields.add(child.get("FieldURI", ""))
            elif child.tag == T + "ExtendedFieldURI":
                extended.append(ext_key(child))
            elif child.tag == T + "IndexedFieldURI":
                continue
    body_type = text(shape_elem.find(T + "BodyType"), "Best")
    return Shape(fields=frozenset(fields), extended=extended, body_type=body_type)


def _bool(value: str) -> bool:
    return value.strip().lower() in ("true", "1")


def _attendees(elem: Element, kind: str) -> list[Attendee]:
    out: list[Attendee] = []
    for att in elem.iter(T + "Attendee"):
        box = att.find(T + "Mailbox")
        address = text(box.find(T + "EmailAddress")) if box is not None else ""
        name = text(box.find(T + "Name")) if box is not None else ""
        if not address:
            raise EwsError("ErrorInvalidRecipients", "An attendee has no e-mail address.")
        response = text(att.find(T + "ResponseType"), "Unknown")
        out.append(Attendee(address=address, name=name, kind=kind, response=response))
    return out


def _zone(elem: Element) -> str:
    zone = elem.get("Id") or elem.get("TimeZoneName") or elem.get("Name") or "UTC"
    if is_known_windows(zone):
        return zone
    mapped = windows_for_iana(zone)
    if mapped:
        return mapped
    raise EwsError("ErrorTimeZone", f"The time zone '{zone}' is not supported.")


def parse_recurrence(elem: Element) -> Recurrence:
    pattern = range_ = None
    for child in elem:
        local = etree.QName(child).localname
        if local.endswith("Recurrence") and local.startswith(("No", "EndDate", "Numbered")):
            range_ = child
        elif local.endswith(("Recurrence", "Regeneration")):
            pattern = child
    if pattern is None or range_ is None:
        raise EwsError("ErrorInvalidRecurrence", "The recurrence pattern is not valid.")
    kind = etree.QName(pattern).localname
    start = dt.date.fromisoformat(text(range_.find(T + "StartDate"))[:10])
    kw: dict[str, Any] = {"kind": kind, "start_date": start}
    interval = pattern.find(T + "Interval")
    if interval is not None:
        kw["interval"] = int(text(interval, "1"))
    days = pattern.find(T + "DaysOfWeek")
    if days is not None:
        kw["days_of_week"] = text(days).split()
    for tag, key in (("DayOfMonth", "day_of_month"),):
        node = pattern.find(T + tag)
        if node is not None:
            kw[key] = int(text(node))
    index = pattern.find(T + "DayOfWeekIndex")
    if index is not None:
        if text(index) not in INDEXES:
            raise EwsError("ErrorInvalidRecurrence", "DayOfWeekIndex is not valid.")
        kw["day_of_week_index"] = text(index)
    month = pattern.find(T + "Month")
    if month is not None:
        kw["month"] = MONTHS.index(text(month)) + 1
    first = pattern.find(T + "FirstDayOfWeek")
    if first is not None and text(first) in WEEKDAYS:
        kw["first_day_of_week"] = text(first)
    rname = etree.QName(range_).localname
    if rname == "EndDateRecurrence":
        kw.update(end="date", end_date=dt.date.fromisoformat(text(range_.find(T + "EndDate"))[:10]))
    elif rname == "NumberedRecurrence":
        kw.update(end="numbered", count=int(text(range_.find(T + "NumberOfOccurrences"), "1")))
    try:
        return Recurrence(**kw)
    except (RecurrenceError, TypeError, ValueError) as exc:
        raise EwsError("ErrorInvalidRecurrence", str(exc)) from exc


def parse_item(elem: Element) -> dict[str, Any]:
    """Properties present in a `<t:CalendarItem>` as a patch for mailstore.Item."""
    patch: dict[str, Any] = {}
    extended: dict[ExtKey, str] = {}
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        local = etree.QName(child).localname
        value = text(child)
        if local == "Subject":
            patch["subject"] = value
        elif local == "Body":
            patch["body"] = value
            patch["body_type"] = child.get("BodyType", "HTML")
        elif local == "Sensitivity":
            patch["sensitivity"] = value
        elif local == "Importance":
            patch["importance"] = value
        elif local == "Categories":
            patch["categories"] = [text(s) for s in child.iter(T + "String")]
        elif local == "ReminderIsSet":
            patch["reminder_set"] = _bool(value)
        elif local == "ReminderMinutesBeforeStart":
            patch["reminder_minutes"] = int(value)
        elif local == "ExtendedProperty":
            uri = child.find(T + "ExtendedFieldURI")
            if uri is not None:
                values = child.find(T + "Values")
                raw = text(child.find(T + "Value")) if values is None else " ".join(
                    text(v) for v in values
                )
                extended[ext_key(uri)] = raw
        elif local == "UID":
            patch["uid"] = value
        elif local in ("Start", "End"):
            try:
                patch[local.lower()] = parse_dt(value)
            except ValueError as exc:
                raise EwsError("ErrorInvalidValueForProperty", f"Bad {local}: {value}") from exc
        elif local == "IsAllDayEvent":
            patch["is_all_day"] = _bool(value)
        elif local == "LegacyFreeBusyStatus":
            patch["show_as"] = value
        elif local == "Location":
            patch["location"] = value
        elif local == "IsCancelled":
            patch["is_cancelled"] = _bool(value)
        elif local in ("RequiredAttendees", "OptionalAttendees", "Resources"):
            kind = {"RequiredAttendees": "required", "OptionalAttendees": "optional"}.get(
                local, "resource"
            )
            patch.setdefault("attendees_by_kind", {})[kind] = _attendees(child, kind)
        elif local == "Recurrence":
            patch["recurrence"] = parse_recurrence(child)
        elif local in ("StartTimeZone", "MeetingTimeZone"):
            patch["start_tz"] = _zone(child)
            if local == "MeetingTimeZone":
                patch["end_tz"] = patch["start_tz"]
        elif local == "EndTimeZone":
            patch["end_tz"] = _zone(child)
    if extended:
        patch["extended"] = extended
    return patch


FIELD_ATTRS: dict[str, str] = {
    "item:Subject": "subject", "item:Body": "body", "item:Sensitivity": "sensitivity",
    "item:Importance": "importance", "item:Categories": "categories",
    "item:ReminderIsSet": "reminder_set",
    "item:ReminderMinutesBeforeStart": "reminder_minutes", "calendar:UID": "uid",
    "calendar:Start": "start", "calendar:End": "end", "calendar:IsAllDayEvent": "is_all_day",
    "calendar:LegacyFreeBusyStatus": "show_as", "calendar:Location": "location",
    "calendar:Recurrence": "recurrence", "calendar:StartTimeZone": "start_tz",
    "calendar:EndTimeZone": "end_tz", "calendar:MeetingTimeZone": "start_tz",
    "calendar:RequiredAttendees": "required", "calendar:OptionalAttendees": "optional",
    "calendar:Resources": "resource", "calendar:IsCancelled": "is_cancelled",
}  # fmt: skip
