"""Builders shared by the sync unit tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from calsync.model import (
    ConflictPolicy,
    Direction,
    EventData,
    ExchangeItem,
    ItemRef,
    Link,
    LocalEvent,
    Mailbox,
    SyncStatus,
)
from calsync.sync.rules import PlanPolicy, data_hash

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
ADDRESS = "alice@contoso.example"


def event(subject: str = "Meeting", *, day: int = 1, hours: int = 1) -> EventData:
    start = NOW + timedelta(days=day)
    return EventData(subject=subject, start=start, end=start + timedelta(hours=hours))


def item(item_id: str, ck: str, data: EventData, **kwargs: object) -> ExchangeItem:
    return ExchangeItem(ItemRef(item_id, ck), data, **kwargs)  # type: ignore[arg-type]


def row(cid: str, data: EventData, *, minutes: int = 0, status: SyncStatus = SyncStatus.SYNCED):
    return LocalEvent(cid, data, NOW + timedelta(minutes=minutes), status)


def link(cid: str, item_id: str | None, ck: str | None, data: EventData | None) -> Link:
    digest = data_hash(data) if data is not None else None
    return Link(cid, item_id, ck, digest if item_id else None, digest)


def policy(
    direction: Direction = Direction.TWO_WAY,
    conflict: ConflictPolicy = ConflictPolicy.EXCHANGE_WINS,
    **kwargs: object,
) -> PlanPolicy:
    mailbox = Mailbox(ADDRESS, "contoso", direction=direction, conflict=conflict)
    base = PlanPolicy.for_mailbox(mailbox, now=NOW, mailbox_size=1000)
    return replace(base, **kwargs)  # type: ignore[arg-type]
