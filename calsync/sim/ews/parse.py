"""Reading request XML: item shapes, extended field URIs and CalendarItem properties."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lxml import etree

from calsync.sim.ews.render import ALL_FIELDS, DEFAULT_FIELDS, ExtKey, Shape
from calsync.sim.ews.xml import EwsError, T, elements, parse_dt
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


def _pattern_fields(pattern: Element) -> dict[str, Any]:
    kw: dict[str, Any] = {"kind": etree.QName(pattern).localname}
    for tag, key, convert in (
        ("Interval", "interval", int),
        ("DaysOfWeek", "days_of_week", str.split),
        ("DayOfMonth", "day_of_month", int),
        ("DayOfWeekIndex", "day_of_week_index", str),
        ("Month", "month", lambda m: MONTHS.index(m) + 1),
        ("FirstDayOfWeek", "first_day_of_week", str),
    ):
        node = pattern.find(T + tag)
        if node is not None:
            kw[key] = convert(text(node))
    if kw.get("day_of_week_index", "First") not in INDEXES:
        raise ValueError("DayOfWeekIndex is not valid")
    if kw.get("first_day_of_week", "Monday") not in WEEKDAYS:
        raise ValueError("FirstDayOfWeek is not valid")
    return kw


def parse_recurrence(elem: Element) -> Recurrence:
    pattern = range_ = None
    for child in elements(elem):
        local = etree.QName(child).localname
        if local in ("NoEndRecurrence", "EndDateRecurrence", "NumberedRecurrence"):
            range_ = child
        else:
            pattern = child
    if pattern is None or range_ is None:
        raise EwsError("ErrorInvalidRecurrence", "The recurrence pattern is not valid.")
    try:
        kw = _pattern_fields(pattern)
        kw["start_date"] = dt.date.fromisoformat(text(range_.find(T + "StartDate"))[:10])
        rname = etree.QName(range_).localname
        if rname == "EndDateRecurrence":
            end = dt.date.fromisoformat(text(range_.find(T + "EndDate"))[:10])
            kw.update(end="date", end_date=end)
        elif rname == "NumberedRecurrence":
            kw.update(end="numbered", count=int(text(range_.find(T + "NumberOfOccurrences"))))
        return Recurrence(**kw)
    except (RecurrenceError, TypeError, ValueError) as exc:
        raise EwsError("ErrorInvalidRecurrence", str(exc)) from exc


def _dt_value(local: str, value: str) -> dt.datetime:
    try:
        return parse_dt(value)
    except ValueError as exc:
        raise EwsError("ErrorInvalidValueForProperty", f"Bad {local}: {value}") from exc


def _ext_value(child: Element) -> str:
    values = child.find(T + "Values")
    if values is None:
        return text(child.find(T + "Value"))
    return " ".join(text(v) for v in values)


_ATTENDEE_KINDS = {
    "RequiredAttendees": "required", "OptionalAttendees": "optional", "Resources": "resource",
}  # fmt: skip
_SCALARS: dict[str, tuple[str, Any]] = {
    "Subject": ("subject", str), "Sensitivity": ("sensitivity", str),
    "Importance": ("importance", str), "ReminderIsSet": ("reminder_set", _bool),
    "ReminderMinutesBeforeStart": ("reminder_minutes", int), "UID": ("uid", str),
    "IsAllDayEvent": ("is_all_day", _bool), "LegacyFreeBusyStatus": ("show_as", str),
    "Location": ("location", str), "IsCancelled": ("is_cancelled", _bool),
}  # fmt: skip


def _parse_child(local: str, child: Element, patch: dict[str, Any]) -> None:
    value = text(child)
    if local in _SCALARS:
        key, convert = _SCALARS[local]
        try:
            patch[key] = convert(value)
        except ValueError as exc:
            raise EwsError("ErrorInvalidValueForProperty", f"Bad {local}: {value}") from exc
    elif local == "Body":
        patch["body"], patch["body_type"] = value, child.get("BodyType", "HTML")
    elif local == "Categories":
        patch["categories"] = [text(s) for s in child.iter(T + "String")]
    elif local == "ExtendedProperty":
        uri = child.find(T + "ExtendedFieldURI")
        if uri is not None:
            patch.setdefault("extended", {})[ext_key(uri)] = _ext_value(child)
    elif local in ("Start", "End"):
        patch[local.lower()] = _dt_value(local, value)
    elif local in _ATTENDEE_KINDS:
        kind = _ATTENDEE_KINDS[local]
        patch.setdefault("attendees_by_kind", {})[kind] = _attendees(child, kind)
    elif local == "Recurrence":
        patch["recurrence"] = parse_recurrence(child)
    elif local in ("StartTimeZone", "MeetingTimeZone"):
        patch["start_tz"] = _zone(child)
        if local == "MeetingTimeZone":
            patch["end_tz"] = patch["start_tz"]
    elif local == "EndTimeZone":
        patch["end_tz"] = _zone(child)


def parse_item(elem: Element) -> dict[str, Any]:
    """Properties present in a `<t:CalendarItem>` as a patch for mailstore.Item."""
    patch: dict[str, Any] = {}
    for child in elements(elem):
        _parse_child(etree.QName(child).localname, child, patch)
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
