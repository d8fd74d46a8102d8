"""Writing a series' exceptions: deleted and modified occurrences, addressed by instance index.

EWS stores a series as its master plus exceptions. After CreateItem/UpdateItem of the master,
each deleted occurrence the model lists is deleted (DeleteItem on an ``OccurrenceItemId``), each
modified occurrence is written (UpdateItem on its ``OccurrenceItemId``) and an occurrence modified
in Exchange but not in the model is reset to the pattern. Instance indexes come from expanding the
RRULE from the series' start (1-based, deleted occurrences included, as Exchange counts them).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog
from dateutil.rrule import rrulestr
from exchangelib import CalendarItem
from exchangelib.errors import ErrorCalendarOccurrenceIsDeletedFromRecurrence
from exchangelib.items import AUTO_RESOLVE, SEND_TO_NONE
from exchangelib.properties import OccurrenceItemId

from calsync.errors import ItemError
from calsync.ews.mapping import UPDATE_FIELDS, event_fields, exception_starts
from calsync.model import EventData, ItemRef

log = structlog.get_logger("calsync.ews")

_MASTER_FIELDS = ("recurrence", "start", "end", "is_all_day", "_start_timezone",
                  "deleted_occurrences", "modified_occurrences")  # fmt: skip


def occurrence_starts(data: EventData, until: datetime) -> list[datetime]:
    """The pattern's occurrence starts up to ``until``, in the model's frame (UTC instants; for
    all-day series midnight UTC of each day)."""
    if data.recurrence is None:
        return []
    if data.is_all_day:
        first = data.start.astimezone(UTC)
    else:
        from zoneinfo import ZoneInfo

        first = data.start.astimezone(ZoneInfo(data.timezone) if data.timezone != "UTC" else UTC)
    rule = rrulestr(data.recurrence.removeprefix("RRULE:"), dtstart=first)
    starts: list[datetime] = []
    for start in rule:
        if start > until:
            break
        starts.append(start.astimezone(UTC))
        if len(starts) > 5000:
            break
    return starts


def has_exceptions(data: EventData) -> bool:
    return bool(data.recurrence and (data.deleted_occurrences or data.modified_occurrences))


def write_exceptions(account: Any, folder: Any, ref: ItemRef, data: EventData) -> ItemRef:
    """Make the master ``ref``'s exceptions those of ``data``; returns the master's new ref."""
    master = _master(account, folder, ref.item_id)
    server_deleted, server_modified = exception_starts(master)
    wanted_modified = {m.original_start: m.data for m in data.modified_occurrences}
    originals = [*data.deleted_occurrences, *wanted_modified, *server_modified]
    starts = occurrence_starts(data, max(originals, default=data.start))
    index = {start: number for number, start in enumerate(starts, 1)}
    change_key = master.changekey

    def occurrence(original: datetime, **fields: Any) -> Any:
        number = index.get(original)
        if number is None:
            raise ItemError(
                f"occurrence {original:%Y-%m-%dT%H:%M:%SZ} is not in the series' pattern",
                item=ref.item_id,
                error_code="bad_item",
            )
        _id = OccurrenceItemId(id=ref.item_id, changekey=change_key, instance_index=number)
        return CalendarItem(account=account, folder=folder, _id=_id, **fields)

    for original in sorted(set(data.deleted_occurrences) - server_deleted):
        try:
            occurrence(original).delete(send_meeting_cancellations=SEND_TO_NONE)
        except ErrorCalendarOccurrenceIsDeletedFromRecurrence:
            continue
    restore = server_deleted - set(data.deleted_occurrences)
    if restore:
        log.warning("occurrence_restore_unsupported", item_id=ref.item_id, occurrences=len(restore))
    length = data.end - data.start
    plain = replace(data, recurrence=None, deleted_occurrences=(), modified_occurrences=())
    for original in sorted(server_modified - set(wanted_modified) - set(data.deleted_occurrences)):
        wanted_modified[original] = replace(plain, start=original, end=original + length)
    for original, occurrence_data in sorted(wanted_modified.items()):
        fields = event_fields(occurrence_data, with_recurrence=False)
        fields.pop("uid", None)
        occurrence(original, **fields).save(
            update_fields=list(UPDATE_FIELDS),
            conflict_resolution=AUTO_RESOLVE,
            send_meeting_invitations=SEND_TO_NONE,
        )
    final = _master(account, folder, ref.item_id, fields=("changekey",))
    return ItemRef(ref.item_id, final.changekey)


def _master(
    account: Any, folder: Any, item_id: str, fields: tuple[str, ...] = _MASTER_FIELDS
) -> Any:
    (item,) = account.fetch(ids=[(item_id, None)], folder=folder, only_fields=list(fields))
    if isinstance(item, Exception):
        raise item
    return item
