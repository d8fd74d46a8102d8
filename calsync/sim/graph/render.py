"""Mailstore items as Graph ``event`` JSON: singles, masters, occurrences and exceptions."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from calsync.sim.graph.ids import graph_dt, graph_id, prop_id, prop_key, wall
from calsync.sim.mailstore import Attendee, Item, Mailbox, occurrence_id
from calsync.sim.recurrence import INDEXES, WEEKDAYS, Recurrence
from calsync.sim.tz import zoneinfo_for_windows

SHOW_AS = {"Free": "free", "Tentative": "tentative", "Busy": "busy", "OOF": "oof",
           "WorkingElsewhere": "workingElsewhere", "NoData": "unknown"}  # fmt: skip
RESPONSES = {"Unknown": "none", "NoResponseReceived": "notResponded", "Accept": "accepted",
             "Decline": "declined", "Tentative": "tentativelyAccepted",
             "Organizer": "organizer"}  # fmt: skip
PATTERNS = {"DailyRecurrence": "daily", "WeeklyRecurrence": "weekly",
            "AbsoluteMonthlyRecurrence": "absoluteMonthly",
            "RelativeMonthlyRecurrence": "relativeMonthly",
            "AbsoluteYearlyRecurrence": "absoluteYearly",
            "RelativeYearlyRecurrence": "relativeYearly"}  # fmt: skip
DAY_SETS = {"Day": WEEKDAYS, "Weekday": WEEKDAYS[:5], "WeekendDay": WEEKDAYS[5:]}
# properties only returned when asked for ($select) or only on a GET of a series master by id
ON_REQUEST = frozenset({"cancelledOccurrences", "exceptionOccurrences"})


@dataclass(frozen=True)
class Instance:
    """One entry of a calendar view: a single item, an occurrence or an exception."""

    item: Item  # for an occurrence: its master
    kind: str  # singleInstance | occurrence | exception | seriesMaster
    start: dt.datetime
    end: dt.datetime
    event_id: str
    original_start: dt.datetime | None = None


def instances(mbx: Mailbox, item: Item) -> list[Instance]:
    """Every instance of a single item or series (deleted occurrences left out)."""
    if item.recurrence is None:
        return [Instance(item, "singleInstance", item.start, item.end, graph_id(item.item_id))]
    out: list[Instance] = []
    length = item.end - item.start
    deleted = set(item.deleted)
    for index, start in enumerate(item.occurrence_starts(), 1):
        if start in deleted:
            continue
        exc = item.exceptions.get(start)
        if exc is not None:
            out.append(Instance(exc, "exception", exc.start, exc.end, graph_id(exc.item_id), start))
        else:
            oid = graph_id(occurrence_id(item, index))
            out.append(Instance(item, "occurrence", start, start + length, oid, start))
    return out


def in_window(inst: Instance, lo: dt.datetime, hi: dt.datetime) -> bool:
    if inst.item.is_all_day:
        zone = zoneinfo_for_windows(inst.item.start_tz)
        start, end = (
            dt.datetime.combine(v.astimezone(zone).date(), dt.time(0), dt.UTC)
            for v in (inst.start, inst.end)
        )
        return start < hi and end > lo
    return inst.start < hi and inst.end > lo


def _times(item: Item, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    if item.is_all_day:  # all-day events come back midnight to midnight, as floating dates
        zone = zoneinfo_for_windows(item.start_tz)
        return {
            "start": {"dateTime": wall(start.astimezone(zone)), "timeZone": "UTC"},
            "end": {"dateTime": wall(end.astimezone(zone)), "timeZone": "UTC"},
        }
    return {
        "start": {"dateTime": graph_dt(start), "timeZone": "UTC"},
        "end": {"dateTime": graph_dt(end), "timeZone": "UTC"},
    }


def _attendee(a: Attendee) -> dict[str, Any]:
    return {
        "type": a.kind,
        "status": {"response": RESPONSES.get(a.response, "none"), "time": "0001-01-01T00:00:00Z"},
        "emailAddress": {"name": a.name, "address": a.address},
    }


def recurrence_json(item: Item) -> dict[str, Any] | None:
    rec: Recurrence | None = item.recurrence
    if rec is None:
        return None
    days: list[str] = []
    for day in rec.days_of_week:
        days.extend(d.lower() for d in DAY_SETS.get(day, (day,)))
    pattern: dict[str, Any] = {"type": PATTERNS[rec.kind], "interval": rec.interval,
                               "month": 0, "dayOfMonth": 0, "firstDayOfWeek": "sunday",
                               "index": "first"}  # fmt: skip
    if rec.kind == "WeeklyRecurrence":
        pattern["daysOfWeek"] = days
        pattern["firstDayOfWeek"] = rec.first_day_of_week.lower()
    if rec.kind.startswith("Relative"):
        pattern["daysOfWeek"] = days
        pattern["index"] = rec.day_of_week_index.lower()
    if rec.kind.startswith("Absolute"):
        pattern["dayOfMonth"] = rec.day_of_month
    if "Yearly" in rec.kind:
        pattern["month"] = rec.month
    kind = {"none": "noEnd", "date": "endDate", "numbered": "numbered"}[rec.end]
    rng = {
        "type": kind,
        "startDate": rec.start_date.isoformat(),
        "endDate": rec.end_date.isoformat() if rec.end == "date" and rec.end_date else "0001-01-01",
        "recurrenceTimeZone": item.start_tz,
        "numberOfOccurrences": rec.count if rec.end == "numbered" else 0,
    }
    return {"pattern": pattern, "range": rng}


def _body(item: Item, text: bool) -> dict[str, str]:
    if text and item.body_type.upper() == "HTML":
        return {"contentType": "text", "content": re.sub(r"<[^>]+>", "", item.body)}
    return {"contentType": "html" if item.body_type.upper() == "HTML" else "text",
            "content": item.body}  # fmt: skip


def event_json(
    mbx: Mailbox,
    inst: Instance,
    *,
    select: frozenset[str] | None = None,
    expand: dict[str, str | None] | None = None,
    text_body: bool = False,
    by_id: bool = False,
) -> dict[str, Any]:
    """The event JSON of ``inst`` (``by_id``: a GET of this very event, where a master may
    return its cancelled and exception occurrences)."""
    item, expand = inst.item, expand or {}
    occurrence = inst.kind == "occurrence"
    master = item if inst.kind in ("occurrence", "seriesMaster") else None
    if inst.kind == "exception":
        master = mbx.items.get(item.master_id or "")
    out: dict[str, Any] = {
        "@odata.etag": f'W/"{item.change_key}"',
        "id": inst.event_id,
        "createdDateTime": item.created.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "lastModifiedDateTime": item.modified.astimezone(dt.UTC)
        .isoformat()
        .replace("+00:00", "Z"),
        "changeKey": item.change_key,
        "categories": list(item.categories),
        "transactionId": None,
        "originalStartTimeZone": item.start_tz,
        "originalEndTimeZone": item.end_tz,
        "iCalUId": item.uid,
        "reminderMinutesBeforeStart": item.reminder_minutes,
        "isReminderOn": item.reminder_set,
        "hasAttachments": False,
        "subject": item.subject,
        "bodyPreview": re.sub(r"<[^>]+>", "", item.body)[:255],
        "importance": item.importance.lower(),
        "sensitivity": item.sensitivity.lower(),
        "isAllDay": item.is_all_day,
        "isCancelled": item.is_cancelled,
        "isOrganizer": item.organizer[0].lower() == mbx.address.lower(),
        "responseRequested": True,
        "seriesMasterId": graph_id(master.item_id) if master and inst.kind != "seriesMaster"
        else None,
        "showAs": SHOW_AS.get(item.show_as, "busy"),
        "type": inst.kind,
        "body": _body(item, text_body),
        **_times(item, inst.start, inst.end),
        "location": {"displayName": item.location, "locationType": "default"},
        "recurrence": recurrence_json(item) if inst.kind == "seriesMaster" else None,
        "attendees": [_attendee(a) for a in item.attendees],
        "organizer": {"emailAddress": {"address": item.organizer[0], "name": item.organizer[1]}},
    }  # fmt: skip
    if inst.original_start is not None:
        out["originalStart"] = (
            inst.original_start.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        )
    if occurrence:
        out["changeKey"] = item.change_key
    if inst.kind == "seriesMaster" and by_id and select and "cancelledOccurrences" in select:
        zone = zoneinfo_for_windows(item.start_tz)
        out["cancelledOccurrences"] = [
            f"OID.{inst.event_id}.{d.astimezone(zone).date().isoformat()}" for d in item.deleted
        ]
    if "exceptionOccurrences" in expand and inst.kind == "seriesMaster" and by_id:
        out["exceptionOccurrences"] = [
            event_json(mbx, _exception(x), text_body=text_body)
            for x in sorted(item.exceptions.values(), key=lambda x: x.original_start or x.start)
        ]
    if "singleValueExtendedProperties" in expand:
        wanted = expand["singleValueExtendedProperties"]
        wanted_key = prop_key(wanted) if wanted else None
        props = []
        for key, value in item.extended.items():
            pid = prop_id(key)
            if pid is None or (wanted_key is not None and (key[0].lower(), *key[1:]) != wanted_key):
                continue
            props.append({"id": pid, "value": value})
        out["singleValueExtendedProperties"] = props
    if select:
        keep = select | {"id", "@odata.etag", "singleValueExtendedProperties",
                         "exceptionOccurrences", "cancelledOccurrences"}  # fmt: skip
        out = {k: v for k, v in out.items() if k in keep}
    return out


def _exception(x: Item) -> Instance:
    return Instance(x, "exception", x.start, x.end, graph_id(x.item_id), x.original_start)


def stub_json(inst: Instance) -> dict[str, Any]:
    """What calendarView delta returns for an occurrence: ids, type and times only."""
    return {
        "@odata.type": "#microsoft.graph.event",
        "@odata.etag": f'W/"{inst.item.change_key}"',
        "id": inst.event_id,
        "seriesMasterId": graph_id(inst.item.item_id),
        "type": "occurrence",
        **_times(inst.item, inst.start, inst.end),
    }


def master_instance(item: Item) -> Instance:
    kind = "seriesMaster" if item.recurrence is not None else "singleInstance"
    return Instance(item, kind, item.start, item.end, graph_id(item.item_id))


def index_name(index: str) -> str:
    return INDEXES[["first", "second", "third", "fourth", "last"].index(index.lower())]
