"""Graph event JSON of a POST or PATCH -> a mailstore patch (``ews.ops_write.apply_patch``)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calsync.sim.graph.ids import prop_key
from calsync.sim.graph.render import PATTERNS, SHOW_AS, index_name
from calsync.sim.mailstore import Attendee
from calsync.sim.recurrence import WEEKDAYS, Recurrence, RecurrenceError
from calsync.sim.tz import is_known_windows, windows_for_iana, zoneinfo_for_windows

SHOW_AS_IN = {v: k for k, v in SHOW_AS.items() if k != "NoData"}
KINDS_IN = {v: k for k, v in PATTERNS.items()}
_READ_ONLY = {"id", "changeKey", "iCalUId", "type", "seriesMasterId", "organizer", "isOrganizer",
              "createdDateTime", "lastModifiedDateTime", "@odata.etag", "@odata.type",
              "bodyPreview", "originalStart", "cancelledOccurrences", "exceptionOccurrences",
              "isCancelled", "transactionId", "responseRequested", "hasAttachments",
              "importance", "originalStartTimeZone", "originalEndTimeZone"}  # fmt: skip


class GraphInputError(ValueError):
    """A request body Graph would refuse (400 ErrorInvalidRequest / ErrorInvalidParameter)."""


def windows_zone(name: str) -> str:
    """A Windows zone id for a Graph timeZone value (Windows ids and IANA names accepted)."""
    if is_known_windows(name):
        return name
    zone = windows_for_iana(name)
    if zone is None:
        raise GraphInputError(f"TimeZone '{name}' is not supported")
    return zone


def _instant(value: Any, field: str, all_day: bool) -> tuple[dt.datetime, str]:
    if not isinstance(value, dict) or "dateTime" not in value:
        raise GraphInputError(f"{field}: a dateTimeTimeZone is required")
    zone = windows_zone(str(value.get("timeZone") or "UTC"))
    try:
        naive = dt.datetime.fromisoformat(str(value["dateTime"])[:19])
    except ValueError as exc:
        raise GraphInputError(f"{field}.dateTime: {exc}") from exc
    if all_day and naive.time() != dt.time(0):
        raise GraphInputError("All-day events must start and end at midnight")
    try:
        tz = zoneinfo_for_windows(zone) if zone != "UTC" else ZoneInfo("UTC")
    except ZoneInfoNotFoundError as exc:  # pragma: no cover - the table only names real zones
        raise GraphInputError(str(exc)) from exc
    return naive.replace(tzinfo=tz).astimezone(dt.UTC), zone


def recurrence_from_json(value: dict[str, Any], first: dt.datetime) -> Recurrence:
    pattern, rng = value.get("pattern") or {}, value.get("range") or {}
    kind = KINDS_IN.get(str(pattern.get("type")))
    if kind is None:
        raise GraphInputError(f"recurrence.pattern.type: {pattern.get('type')!r}")
    days = [str(d).capitalize() for d in pattern.get("daysOfWeek") or []]
    if any(d not in WEEKDAYS for d in days):
        raise GraphInputError(f"recurrence.pattern.daysOfWeek: {days}")
    if kind.startswith("Relative") and len(days) > 1:
        sets = {tuple(WEEKDAYS): "Day", tuple(WEEKDAYS[:5]): "Weekday",
                tuple(WEEKDAYS[5:]): "WeekendDay"}  # fmt: skip
        key = tuple(sorted(days, key=WEEKDAYS.index))
        if key not in sets:
            raise GraphInputError("recurrence.pattern.daysOfWeek: one day or a day set")
        days = [sets[key]]
    try:
        start_date = dt.date.fromisoformat(str(rng.get("startDate") or first.date().isoformat()))
        end_type = str(rng.get("type") or "noEnd")
        kw: dict[str, Any] = {}
        if end_type == "endDate":
            kw = {"end": "date", "end_date": dt.date.fromisoformat(str(rng["endDate"]))}
        elif end_type == "numbered":
            kw = {"end": "numbered", "count": int(rng["numberOfOccurrences"])}
        elif end_type != "noEnd":
            raise GraphInputError(f"recurrence.range.type: {end_type!r}")
        return Recurrence(
            kind=kind,
            start_date=start_date,
            interval=int(pattern.get("interval") or 1),
            days_of_week=days,
            day_of_month=int(pattern.get("dayOfMonth") or 0),
            day_of_week_index=index_name(str(pattern.get("index") or "first")),
            month=int(pattern.get("month") or 0),
            first_day_of_week=str(pattern.get("firstDayOfWeek") or "sunday").capitalize(),
            **kw,
        )
    except (RecurrenceError, KeyError, ValueError) as exc:
        raise GraphInputError(f"recurrence: {exc}") from exc


def patch_from_graph(data: dict[str, Any], current_all_day: bool) -> dict[str, Any]:
    """The mailstore patch of a Graph event body (raises GraphInputError)."""
    if not isinstance(data, dict):
        raise GraphInputError("a JSON object is expected")
    patch: dict[str, Any] = {}
    unknown = set(data) - _READ_ONLY - {
        "subject", "body", "start", "end", "isAllDay", "showAs", "sensitivity", "categories",
        "location", "isReminderOn", "reminderMinutesBeforeStart", "recurrence", "attendees",
        "singleValueExtendedProperties", "isOnlineMeeting", "allowNewTimeProposals",
    }  # fmt: skip
    if unknown:
        raise GraphInputError(f"Could not find a property named '{sorted(unknown)[0]}'")
    if "subject" in data:
        patch["subject"] = str(data["subject"] or "")
    if "body" in data:
        body = data["body"] or {}
        patch["body"] = str(body.get("content") or "")
        patch["body_type"] = "HTML" if str(body.get("contentType")).lower() == "html" else "Text"
    all_day = bool(data.get("isAllDay", current_all_day))
    if "isAllDay" in data:
        patch["is_all_day"] = all_day
    for key in ("start", "end"):
        if key in data:
            patch[key], zone = _instant(data[key], key, all_day)
            patch[f"{key}_tz"] = zone
    _enums(data, patch)
    _people_and_props(data, patch)
    return patch


def _enums(data: dict[str, Any], patch: dict[str, Any]) -> None:
    if "showAs" in data:
        if data["showAs"] not in SHOW_AS_IN:
            raise GraphInputError(f"showAs: {data['showAs']!r}")
        patch["show_as"] = SHOW_AS_IN[data["showAs"]]
    if "sensitivity" in data:
        value = str(data["sensitivity"]).capitalize()
        if value not in ("Normal", "Personal", "Private", "Confidential"):
            raise GraphInputError(f"sensitivity: {data['sensitivity']!r}")
        patch["sensitivity"] = value
    if "categories" in data:
        patch["categories"] = [str(c) for c in data["categories"] or []]
    if "location" in data:
        patch["location"] = str((data["location"] or {}).get("displayName") or "")
    if "isReminderOn" in data:
        patch["reminder_set"] = bool(data["isReminderOn"])
    if "reminderMinutesBeforeStart" in data:
        patch["reminder_minutes"] = int(data["reminderMinutesBeforeStart"] or 0)


def _people_and_props(data: dict[str, Any], patch: dict[str, Any]) -> None:
    if "attendees" in data:
        people: dict[str, list[Attendee]] = {"required": [], "optional": [], "resource": []}
        for a in data["attendees"] or []:
            email = a.get("emailAddress") or {}
            kind = str(a.get("type") or "required")
            if kind not in people:
                raise GraphInputError(f"attendees.type: {kind!r}")
            people[kind].append(Attendee(str(email.get("address")), str(email.get("name") or ""),
                                         kind))  # fmt: skip
        patch["attendees_by_kind"] = people
    if data.get("singleValueExtendedProperties"):
        extended: dict[tuple[str, str, str], str] = {}
        for prop in data["singleValueExtendedProperties"]:
            pkey = prop_key(str(prop.get("id") or ""))
            if pkey is None:
                raise GraphInputError(f"singleValueExtendedProperties: bad id {prop.get('id')!r}")
            extended[pkey] = str(prop.get("value") or "")
        patch["extended"] = extended
