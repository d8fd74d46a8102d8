"""Pure helpers of the sync rules: the policy a plan runs under, hashes, identity, the window."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dateutil.rrule import rrulestr

from calsync.model import (
    ConflictPolicy,
    Direction,
    EventData,
    Mailbox,
    ModifiedOccurrence,
    content_hash,
    utc,
)

# Fixed for ever: derived calsync ids of items imported from Exchange depend on it.
_ID_NAMESPACE = uuid.UUID("4ca80195-c234-4a35-b00a-22be78edc0d5")


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    """Everything ``plan`` needs to know besides the changes: no clock, no config object."""

    mailbox: str
    direction: Direction
    conflict: ConflictPolicy
    window_start: datetime
    window_end: datetime
    mailbox_size: int = 0
    max_delete_share: float = 0.5
    max_delete_min: int = 10
    allow_mass_delete: bool = False
    prior_deletes: int = 0  # deletes already made by earlier pages of the same run

    @classmethod
    def for_mailbox(
        cls,
        mailbox: Mailbox,
        *,
        now: datetime,
        mailbox_size: int = 0,
        allow_mass_delete: bool = False,
        prior_deletes: int = 0,
    ) -> PlanPolicy:
        now = utc(now)
        return cls(
            mailbox=mailbox.address,
            direction=mailbox.direction,
            conflict=mailbox.conflict,
            window_start=now - timedelta(days=mailbox.window_past_days),
            window_end=now + timedelta(days=mailbox.window_future_days),
            mailbox_size=mailbox_size,
            max_delete_share=mailbox.max_delete_share,
            max_delete_min=mailbox.max_delete_min,
            allow_mass_delete=allow_mass_delete,
            prior_deletes=prior_deletes,
        )


def derived_calsync_id(mailbox: str, item_id: str) -> str:
    """The calsync id of an item imported from Exchange: stable, so a resync never duplicates."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{mailbox.lower()}\n{item_id}"))


def data_hash(data: EventData) -> str:
    return content_hash(data)


def pushable(data: EventData) -> EventData:
    """``data`` without the fields Exchange owns (organizer, responses, cancelled)."""
    return replace(
        data,
        organizer=None,
        is_cancelled=False,
        attendees=tuple(replace(a, response=None) for a in data.attendees),
        modified_occurrences=tuple(
            ModifiedOccurrence(m.original_start, pushable(m.data))
            for m in data.modified_occurrences
        ),
    )


def pushable_hash(data: EventData) -> str:
    return content_hash(pushable(data))


def _overlaps(start: datetime, end: datetime, lo: datetime, hi: datetime) -> bool:
    return utc(start) <= hi and utc(end) >= lo


def in_window(data: EventData, start: datetime, end: datetime) -> bool:
    """True when the event, or any occurrence of the series, overlaps ``[start, end]``."""
    if _overlaps(data.start, data.end, start, end):
        return True
    if any(_overlaps(m.data.start, m.data.end, start, end) for m in data.modified_occurrences):
        return True
    if data.recurrence is None:
        return False
    if utc(data.start) > end:
        return False
    duration = utc(data.end) - utc(data.start)
    try:
        rule = rrulestr(data.recurrence, dtstart=utc(data.start))
        first = rule.after(start - duration, inc=True)
    except (ValueError, TypeError):
        return True  # a rule we cannot expand here: let the adapter or the store judge it
    return first is not None and first <= end
