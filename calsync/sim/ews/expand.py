"""Occurrences of recurring masters (calendar view, OccurrenceItemId) and FindItem restrictions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from lxml import etree

from calsync.sim.ews.parse import ext_key, text
from calsync.sim.ews.xml import EwsError, T, elements, parse_dt
from calsync.sim.mailstore import Item, Mailbox, occurrence_id, parse_occurrence_id


def occurrence_at(master: Item, index: int) -> tuple[dt.datetime, Item]:
    """The occurrence with 1-based InstanceIndex: (original start, item as shown)."""
    starts = master.occurrence_starts()
    if index < 1 or index > len(starts):
        raise EwsError(
            "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
            "The occurrence index is out of the recurrence range.",
        )
    original = starts[index - 1]
    if original in master.deleted:
        raise EwsError(
            "ErrorCalendarOccurrenceIsDeletedFromRecurrence",
            "The occurrence was deleted from the recurrence.",
        )
    exc = master.exceptions.get(original)
    return original, exc if exc is not None else synthetic(master, index, original)


def synthetic(master: Item, index: int, original: dt.datetime) -> Item:
    length = master.end - master.start
    return dataclasses.replace(
        master,
        item_id=occurrence_id(master, index, original),
        start=original,
        end=original + length,
        original_start=original,
        recurrence=None,
        exceptions={},
        deleted=[],
    )


def resolve_occurrence_id(mailbox: Mailbox, item_id: str) -> tuple[Item, int] | None:
    """(master, index) for an occurrence id."""
    parsed = parse_occurrence_id(item_id)
    if parsed is None:
        return None
    master = mailbox.items.get(parsed[0])
    if master is None or master.recurrence is None:
        return None
    return master, parsed[1]


def calendar_view(mailbox: Mailbox, start: dt.datetime, end: dt.datetime) -> list[tuple[str, Item]]:
    """(CalendarItemType, item) overlapping [start, end), sorted by start; masters expanded."""
    out: list[tuple[str, Item]] = []
    for item in mailbox.items.values():
        if item.recurrence is None:
            if item.start < end and item.end > start:
                out.append(("Single", item))
            continue
        length = item.end - item.start
        for index, original in enumerate(item.occurrence_starts(), start=1):
            if original in item.deleted:
                continue
            exc = item.exceptions.get(original)
            if exc is not None:
                if exc.start < end and exc.end > start:
                    out.append(("Exception", exc))
            elif original < end and original + length > start:
                out.append(("Occurrence", synthetic(item, index, original)))
            if original >= end and (exc is None or exc.start >= end):
                break
    out.sort(key=lambda pair: pair[1].start)
    return out


# restrictions -------------------------------------------------------------------------------

_FIELD_VALUES: dict[str, str] = {
    "item:Subject": "subject", "calendar:Start": "start", "calendar:End": "end",
    "calendar:UID": "uid", "calendar:Location": "location", "calendar:IsAllDayEvent": "is_all_day",
    "calendar:LegacyFreeBusyStatus": "show_as", "item:Sensitivity": "sensitivity",
    "calendar:IsCancelled": "is_cancelled", "item:LastModifiedTime": "modified",
    "item:DateTimeCreated": "created", "item:Importance": "importance",
}  # fmt: skip

_COMPARE = {
    "IsEqualTo": lambda a, b: a == b,
    "IsNotEqualTo": lambda a, b: a != b,
    "IsGreaterThan": lambda a, b: a > b,
    "IsGreaterThanOrEqualTo": lambda a, b: a >= b,
    "IsLessThan": lambda a, b: a < b,
    "IsLessThanOrEqualTo": lambda a, b: a <= b,
}


def _value(item: Item, uri: etree._Element) -> Any:
    if uri.tag == T + "ExtendedFieldURI":
        return item.extended.get(ext_key(uri))
    name = uri.get("FieldURI", "")
    if name == "item:Categories":
        return item.categories
    attr = _FIELD_VALUES.get(name)
    if attr is None:
        raise EwsError("ErrorUnsupportedPathForQuery", f"The property {name} is not supported.")
    return getattr(item, attr)


def _constant(sample: Any, raw: str) -> Any:
    if isinstance(sample, bool):
        return raw.lower() == "true"
    if isinstance(sample, dt.datetime):
        return parse_dt(raw)
    return raw


def matches(item: Item, node: etree._Element) -> bool:
    local = etree.QName(node).localname
    children = elements(node)
    if local == "And":
        return all(matches(item, c) for c in children)
    if local == "Or":
        return any(matches(item, c) for c in children)
    if local == "Not":
        return not matches(item, children[0])
    if local == "Exists":
        return _value(item, children[0]) not in (None, "", [])
    if local == "Contains":
        value = _value(item, children[0])
        needle = children[1].get("Value", "")
        if isinstance(value, list):
            return any(needle.lower() in v.lower() for v in value)
        return needle.lower() in str(value or "").lower()
    if local in _COMPARE:
        value = _value(item, children[0])
        const = children[1].find(T + "Constant")
        if const is None:
            raise EwsError("ErrorUnsupportedQueryFilter", "Only constants can be compared.")
        if value is None:
            return local == "IsNotEqualTo"
        if isinstance(value, list):
            return any(_COMPARE[local](v, const.get("Value", "")) for v in value)
        return bool(_COMPARE[local](value, _constant(value, const.get("Value", ""))))
    raise EwsError("ErrorUnsupportedQueryFilter", f"The restriction {local} is not supported.")


def restriction_root(find: etree._Element) -> etree._Element | None:
    node = find.find("{http://schemas.microsoft.com/exchange/services/2006/messages}Restriction")
    if node is None:
        return None
    children = elements(node)
    return children[0] if children else None


def view_bounds(view: etree._Element) -> tuple[dt.datetime, dt.datetime, int]:
    start = parse_dt(view.get("StartDate", ""))
    end = parse_dt(view.get("EndDate", ""))
    limit = int(view.get("MaxEntriesReturned") or 1000)
    return start, end, limit


__all__ = ["calendar_view", "matches", "occurrence_at", "restriction_root", "text"]
