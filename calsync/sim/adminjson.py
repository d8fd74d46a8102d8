"""Calendar items <-> the admin API's JSON (calsync's vocabulary: IANA zones, RRULE text)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from calsync.sim.mailstore import CALSYNC_PROPSET, Attendee, Item, Mailbox
from calsync.sim.recurrence import Recurrence, RecurrenceError
from calsync.sim.tz import iana_for_windows, windows_for_iana, zoneinfo_for_windows

SHOW_AS = {"Free": "free", "Tentative": "tentative", "Busy": "busy", "OOF": "oof",
           "WorkingElsewhere": "working_elsewhere", "NoData": "busy"}  # fmt: skip
SHOW_AS_IN = {v: k for k, v in SHOW_AS.items() if k != "NoData"}
RESPONSES = {"Unknown": "none", "NoResponseReceived": "none", "Accept": "accepted",
             "Decline": "declined", "Tentative": "tentative", "Organizer": "organizer"}  # fmt: skip
RESPONSES_IN = {"none": "Unknown", "accepted": "Accept", "declined": "Decline",
                "tentative": "Tentative", "organizer": "Organizer"}  # fmt: skip


TEXT_KEYS = ("subject", "body", "location", "uid")


class AdminInputError(ValueError):
    """A bad admin request (HTTP 400)."""


def _iso(instant: dt.datetime, zone: str) -> str:
    return instant.astimezone(zoneinfo_for_windows(zone)).isoformat()


def _utc(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def item_json(item: Item, mbx: Mailbox) -> dict[str, Any]:
    rrule = None
    if item.recurrence is not None:
        wall = item.start.astimezone(zoneinfo_for_windows(item.start_tz)).time()
        rrule = item.recurrence.to_rrule(wall, item.start_tz)
    out: dict[str, Any] = {
        "item_id": item.item_id,
        "change_key": item.change_key,
        "uid": item.uid,
        "subject": item.subject,
        "body": item.body,
        "location": item.location,
        "start": _iso(item.start, item.start_tz),
        "end": _iso(item.end, item.end_tz),
        "timezone": iana_for_windows(item.start_tz),
        "windows_timezone": item.start_tz,
        "is_all_day": item.is_all_day,
        "show_as": SHOW_AS.get(item.show_as, "busy"),
        "sensitivity": item.sensitivity.lower(),
        "categories": list(item.categories),
        "organizer": item.organizer[0],
        "attendees": [
            {
                "address": a.address,
                "name": a.name,
                "type": a.kind,
                "response": RESPONSES.get(a.response, "none"),
            }
            for a in item.attendees
        ],
        "reminder_minutes": item.reminder_minutes if item.reminder_set else None,
        "is_cancelled": item.is_cancelled,
        "recurrence": rrule,
        "deleted_occurrences": [_utc(d) for d in item.deleted],
        "series_item_id": item.master_id,
        "original_start": _utc(item.original_start) if item.original_start else None,
        "extended_properties": {name: value for (_, name, _), value in item.extended.items()},
    }
    return out


def _parse_instant(value: Any, field: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise AdminInputError(f"{field}: not an ISO 8601 date-time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise AdminInputError(f"{field}: needs an offset or Z")
    return parsed.astimezone(dt.UTC)


def _enum_fields(data: dict[str, Any], patch: dict[str, Any]) -> None:
    if "show_as" in data:
        if data["show_as"] not in SHOW_AS_IN:
            raise AdminInputError(f"show_as: one of {sorted(SHOW_AS_IN)}")
        patch["show_as"] = SHOW_AS_IN[data["show_as"]]
    if "sensitivity" in data:
        value = str(data["sensitivity"]).capitalize()
        if value not in ("Normal", "Personal", "Private", "Confidential"):
            raise AdminInputError("sensitivity: normal, personal, private or confidential")
        patch["sensitivity"] = value
    if "timezone" in data:
        zone = windows_for_iana(str(data["timezone"]))
        if zone is None:
            raise AdminInputError(f"timezone: unknown or unsupported zone {data['timezone']!r}")
        patch["start_tz"] = patch["end_tz"] = zone


def _attendee_fields(data: dict[str, Any], patch: dict[str, Any]) -> None:
    if "attendees" not in data:
        return
    people: dict[str, list[Attendee]] = {"required": [], "optional": [], "resource": []}
    for a in data["attendees"] or []:
        kind = a.get("type", "required")
        if kind not in people:
            raise AdminInputError("attendees[].type: required, optional or resource")
        response = RESPONSES_IN.get(a.get("response") or "none", "Unknown")
        people[kind].append(Attendee(a["address"], a.get("name", ""), kind, response))
    patch["attendees_by_kind"] = people


def _recurrence_field(data: dict[str, Any], patch: dict[str, Any], item: Item | None) -> None:
    if not data.get("recurrence"):
        return
    start = patch.get("start") or (item.start if item else None)
    zone = patch.get("start_tz") or (item.start_tz if item else "UTC")
    if start is None:
        raise AdminInputError("recurrence needs start")
    try:
        patch["recurrence"] = Recurrence.from_rrule(
            str(data["recurrence"]), start.astimezone(zoneinfo_for_windows(zone))
        )
    except (RecurrenceError, ValueError, IndexError) as exc:
        raise AdminInputError(f"recurrence: {exc}") from exc


def patch_from_json(data: dict[str, Any], item: Item | None) -> dict[str, Any]:
    """A patch for ews.ops_write.apply_patch (raises AdminInputError)."""
    patch: dict[str, Any] = {k: str(data[k] or "") for k in TEXT_KEYS if k in data}
    for key in ("start", "end"):
        if key in data:
            patch[key] = _parse_instant(data[key], key)
    for key in ("is_all_day", "is_cancelled"):
        if key in data:
            patch[key] = bool(data[key])
    if "categories" in data:
        patch["categories"] = [str(c) for c in data["categories"] or []]
    if "reminder_minutes" in data:
        minutes = data["reminder_minutes"]
        patch["reminder_set"] = minutes is not None
        patch["reminder_minutes"] = int(minutes) if minutes is not None else 15
    if "extended_properties" in data:
        props = data["extended_properties"] or {}
        patch["extended"] = {(CALSYNC_PROPSET, str(k), "String"): str(v) for k, v in props.items()}
    _enum_fields(data, patch)
    _attendee_fields(data, patch)
    _recurrence_field(data, patch, item)
    return patch


def deleted_starts(data: dict[str, Any]) -> list[dt.datetime]:
    return [_parse_instant(v, "deleted_occurrences") for v in data.get("deleted_occurrences") or []]
