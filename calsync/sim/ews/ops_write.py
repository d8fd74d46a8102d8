"""CreateItem, UpdateItem and DeleteItem (ChangeKeys checked, invitations counted)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from lxml import etree

from calsync.sim.ews import expand
from calsync.sim.ews.context import Ctx
from calsync.sim.ews.ops_read import lookup
from calsync.sim.ews.parse import FIELD_ATTRS, ext_key, parse_item
from calsync.sim.ews.xml import EwsError, M, T, elements, error, esc, ok, response
from calsync.sim.mailstore import Item, Mailbox, new_item_id, parse_occurrence_id
from calsync.sim.tz import zoneinfo_for_windows

SHOW_AS = {"Free", "Tentative", "Busy", "OOF", "WorkingElsewhere", "NoData"}
SENSITIVITY = {"Normal", "Personal", "Private", "Confidential"}
SENDS = {"SendToAllAndSaveCopy", "SendOnlyToAll", "SendOnlyToChanged", "SendToChangedAndSaveCopy"}
SIMPLE = (
    "subject", "body", "body_type", "sensitivity", "importance", "categories", "reminder_set",
    "reminder_minutes", "uid", "start", "end", "is_all_day", "show_as", "location",
    "is_cancelled", "start_tz", "end_tz",
)  # fmt: skip


def apply_patch(item: Item, patch: dict[str, Any], *, check: bool = True) -> None:
    for key in SIMPLE:
        if key in patch:
            setattr(item, key, patch[key])
    for kind, people in patch.get("attendees_by_kind", {}).items():
        item.attendees = [a for a in item.attendees if a.kind != kind] + people
    item.extended.update(patch.get("extended", {}))
    if "recurrence" in patch:
        if item.master_id is not None:
            raise EwsError(
                "ErrorCalendarCannotUseIdForRecurringMasterId",
                "An occurrence cannot get its own recurrence.",
            )
        item.recurrence = patch["recurrence"]
        align_to_pattern(item)
    if check:
        validate(item)


def align_to_pattern(item: Item) -> None:
    """Move a master's start to its first occurrence (keeping wall time and duration)."""
    if item.recurrence is None:
        return
    dates = item.recurrence.dates(limit=1)
    if not dates:
        raise EwsError("ErrorInvalidRecurrence", "The recurrence has no occurrences.")
    tz = zoneinfo_for_windows(item.start_tz)
    local = item.start.astimezone(tz)
    if local.date() != dates[0]:
        length = item.end - item.start
        item.start = dt.datetime.combine(dates[0], local.time(), tz).astimezone(dt.UTC)
        item.end = item.start + length


def validate(item: Item) -> None:
    if item.end < item.start:
        raise EwsError(
            "ErrorCalendarEndDateIsEarlierThanStartDate", "EndDate is earlier than StartDate"
        )
    if item.show_as not in SHOW_AS:
        raise EwsError("ErrorInvalidValueForProperty", f"Bad LegacyFreeBusyStatus {item.show_as}")
    if item.sensitivity not in SENSITIVITY:
        raise EwsError("ErrorInvalidValueForProperty", f"Bad Sensitivity {item.sensitivity}")


def _count_invitations(ctx: Ctx, item: Item, mode: str) -> None:
    if mode in SENDS and item.attendees:
        ctx.core.stats.invitations_sent += len(item.attendees)
        item.meeting_request_was_sent = True


def _ids(item: Item) -> str:
    return (
        f'<t:CalendarItem><t:ItemId Id="{esc(item.item_id)}" '
        f'ChangeKey="{esc(item.change_key)}"/></t:CalendarItem>'
    )


def create_item(ctx: Ctx, req: etree._Element) -> bytes:
    mode = req.get("SendMeetingInvitations", "SendToAllAndSaveCopy")
    items = req.find(M + "Items")
    messages: list[str] = []
    mbx = ctx.mailbox
    for elem in elements(items):
        try:
            if elem.tag != T + "CalendarItem":
                raise EwsError(
                    "ErrorObjectTypeChanged", "Only calendar items can be saved in a calendar."
                )
            patch = parse_item(elem)
            if "start" not in patch or "end" not in patch:
                raise EwsError("ErrorMissingArgument", "Start and End are required.")
            item = Item(item_id=new_item_id(mbx.address), start=patch["start"], end=patch["end"])
            item.organizer = (mbx.address, mbx.display_name)
            apply_patch(item, patch)
            _count_invitations(ctx, item, mode)
            mbx.add(item)
        except EwsError as err:
            messages.append(error("CreateItem", err, "<m:Items/>"))
            continue
        messages.append(ok("CreateItem", f"<m:Items>{_ids(item)}</m:Items>"))
    return response("CreateItem", messages)


def _target(ctx: Ctx, ref: etree._Element) -> tuple[Item, Item | None, dt.datetime | None]:
    """(item, master, original start) for an update target; an unmodified occurrence becomes a
    new exception (not yet stored)."""
    mbx = ctx.mailbox
    item, kind = lookup(ctx, ref)
    if kind == "Occurrence":
        parsed = parse_occurrence_id(item.item_id)
        assert parsed is not None
        master = mbx.items[parsed[0]]
        exc = dataclasses.replace(
            item, attendees=list(item.attendees),
            categories=list(item.categories), extended=dict(item.extended),
        )  # fmt: skip
        return exc, master, item.original_start
    return item, None, None


def _changekey_ok(ref: etree._Element, current: Item, mode: str) -> None:
    given = ref.get("ChangeKey")
    if etree.QName(ref).localname != "ItemId":
        return
    if not given:
        raise EwsError(
            "ErrorChangeKeyRequiredForWriteOperations",
            "When making a write operation, the change key must be passed in.",
        )
    if given != current.change_key and mode != "AlwaysOverwrite":
        raise EwsError(
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed "
            "in the request does not match the current change key for the item.",
        )


def _clear(item: Item, node: etree._Element) -> None:
    uri = node.find(T + "FieldURI")
    ext = node.find(T + "ExtendedFieldURI")
    if ext is not None:
        item.extended.pop(ext_key(ext), None)
        return
    name = uri.get("FieldURI", "") if uri is not None else ""
    attr = FIELD_ATTRS.get(name)
    if attr in ("required", "optional", "resource"):
        item.attendees = [a for a in item.attendees if a.kind != attr]
    elif attr == "recurrence":
        item.recurrence, item.exceptions, item.deleted = None, {}, []
    elif attr in ("subject", "body", "location"):
        setattr(item, attr, "")
    elif attr == "categories":
        item.categories = []
    elif attr == "reminder_set":
        item.reminder_set = False


def update_item(ctx: Ctx, req: etree._Element) -> bytes:
    mode = req.get("ConflictResolution", "AutoResolve")
    send = req.get("SendMeetingInvitationsOrCancellations", "SendToAllAndSaveCopy")
    changes = req.find(M + "ItemChanges")
    messages: list[str] = []
    mbx = ctx.mailbox
    for change in elements(changes):
        try:
            ref = elements(change)[0]
            item, master, original = _target(ctx, ref)
            _changekey_ok(ref, master or item, mode)
            updates = change.find(T + "Updates")
            for node in elements(updates):
                local = etree.QName(node).localname
                if local == "DeleteItemField":
                    _clear(item, node)
                    continue
                holder = node.find(T + "CalendarItem")
                if holder is None:
                    raise EwsError("ErrorObjectTypeChanged", "Only CalendarItem can be updated.")
                patch = parse_item(holder)
                if local == "AppendToItemField":
                    for kind, people in patch.pop("attendees_by_kind", {}).items():
                        item.attendees += [dataclasses.replace(p, kind=kind) for p in people]
                apply_patch(item, patch, check=False)
            validate(item)  # after all field updates of the change, as Exchange does
            _count_invitations(ctx, item, send)
            _commit(mbx, item, master, original)
        except EwsError as err:
            messages.append(error("UpdateItem", err, "<m:Items/>"))
            continue
        inner = (
            f"<m:Items>{_ids(item)}</m:Items>"
            "<m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>"
        )
        messages.append(ok("UpdateItem", inner))
    return response("UpdateItem", messages)


def _commit(mbx: Mailbox, item: Item, master: Item | None, original: dt.datetime | None) -> None:
    if master is not None:
        item.original_start = original
        item.recurrence = None
        mbx.add_exception(master, item)
    else:
        mbx.touch(item)


def delete_item(ctx: Ctx, req: etree._Element) -> bytes:
    ids = req.find(M + "ItemIds")
    messages: list[str] = []
    mbx = ctx.mailbox
    for ref in elements(ids):
        try:
            item, kind = lookup(ctx, ref)
            if kind == "Occurrence":
                parsed = parse_occurrence_id(item.item_id)
                assert parsed is not None
                mbx.delete_occurrence(mbx.items[parsed[0]], item.original_start)
            else:
                mbx.delete(item.item_id)
        except EwsError as err:
            messages.append(error("DeleteItem", err))
            continue
        messages.append(ok("DeleteItem"))
    return response("DeleteItem", messages)


__all__ = ["create_item", "delete_item", "expand", "update_item"]
