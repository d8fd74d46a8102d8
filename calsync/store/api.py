"""Value types of the store's operational API (beyond ``ports.Store``), shared by both stores.

- ``Instance``: one row of ``instances`` (an occurrence inside the mailbox's window).
- ``MailboxStatus``: one row of ``mailboxes`` as ``calsync status`` shows it.
- ``Window``: the span a mailbox's instances are expanded over.
- ``instances_of(master_id, mailbox, data, window)``: expansion shared by the stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from calsync.model import EventData, ShowAs
from calsync.store.recurrence import expand

DEFAULT_PAST_DAYS = 30
DEFAULT_FUTURE_DAYS = 365


@dataclass(frozen=True, slots=True)
class Instance:
    """One occurrence: ``event_id`` is the row it comes from (a modified occurrence's own row
    for that occurrence), ``master_id`` the single event or series master."""

    event_id: str
    master_id: str
    mailbox: str
    starts_at: datetime
    ends_at: datetime
    show_as: ShowAs
    is_all_day: bool


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    address: str
    tenant: str
    direction: str
    state: str  # healthy | failing | paused | disabled | new
    last_success: datetime | None
    last_error_code: str | None
    last_error: str | None
    consecutive_failures: int
    next_due: datetime | None
    lag_s: float | None
    items_in: int
    items_out: int
    updated_at: datetime | None

    def as_json(self) -> dict[str, object]:
        """The object of ``calsync status --json``."""

        def iso(value: datetime | None) -> str | None:
            return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None

        return {
            "address": self.address,
            "tenant": self.tenant,
            "direction": self.direction,
            "state": self.state,
            "last_success": iso(self.last_success),
            "last_error_code": self.last_error_code,
            "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures,
            "next_due": iso(self.next_due),
            "lag_s": self.lag_s,
        }


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    @classmethod
    def around(
        cls,
        now: datetime,
        past_days: int = DEFAULT_PAST_DAYS,
        future_days: int = DEFAULT_FUTURE_DAYS,
    ) -> Window:
        return cls(now - timedelta(days=past_days), now + timedelta(days=future_days))


def instances_of(
    master_id: str,
    mailbox: str,
    data: EventData,
    window: Window,
    occurrence_ids: dict[datetime, str] | None = None,
) -> list[Instance]:
    """The instances of one event or series (cancelled events and occurrences are not busy)."""
    if data.recurrence is None:
        if data.is_cancelled:
            return []
        return [
            Instance(
                master_id, master_id, mailbox, data.start, data.end, data.show_as, data.is_all_day
            )
        ]
    ids = occurrence_ids or {}
    modified = {o.original_start: o.data for o in data.modified_occurrences}
    out: list[Instance] = []
    tz = "UTC" if data.is_all_day else data.timezone
    occurrences = expand(
        data.recurrence,
        start=data.start,
        end=data.end,
        timezone=tz,
        deleted=data.deleted_occurrences,
        window_start=window.start,
        window_end=window.end,
    )
    for original, start, end in occurrences:
        if original in modified:
            continue
        if not data.is_cancelled:
            out.append(
                Instance(master_id, master_id, mailbox, start, end, data.show_as, data.is_all_day)
            )
    for original, occ in modified.items():
        if occ.is_cancelled or original in data.deleted_occurrences:
            continue
        if occ.end > window.start and occ.start < window.end:
            out.append(
                Instance(
                    ids.get(original, master_id),
                    master_id,
                    mailbox,
                    occ.start,
                    occ.end,
                    occ.show_as,
                    occ.is_all_day,
                )
            )
    out.sort(key=lambda i: (i.starts_at, i.event_id))
    return out
