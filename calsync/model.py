"""Side-neutral value types: what an event is, what changed, and how the two sides are linked.

Everything here is frozen and free of I/O. All datetimes are timezone-aware and in UTC.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Direction(StrEnum):
    PULL = "pull"  # Exchange -> local
    PUSH = "push"  # local -> Exchange
    TWO_WAY = "two-way"

    @property
    def reads_exchange(self) -> bool:
        return self is not Direction.PUSH

    @property
    def writes_exchange(self) -> bool:
        return self is not Direction.PULL


class ConflictPolicy(StrEnum):
    EXCHANGE_WINS = "exchange-wins"
    LOCAL_WINS = "local-wins"
    NEWEST_WINS = "newest-wins"


class ShowAs(StrEnum):
    FREE = "free"
    TENTATIVE = "tentative"
    BUSY = "busy"
    OOF = "oof"
    WORKING_ELSEWHERE = "working_elsewhere"


class Sensitivity(StrEnum):
    NORMAL = "normal"
    PERSONAL = "personal"
    PRIVATE = "private"
    CONFIDENTIAL = "confidential"


class AttendeeType(StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    RESOURCE = "resource"


class SyncStatus(StrEnum):
    """Value of ``events.sync_status``."""

    PENDING = "pending"
    SYNCED = "synced"
    LOCAL_ONLY = "local_only"
    ERROR = "error"


def utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; naive datetimes are refused (all calsync times are aware)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} (calsync requires timezone-aware)")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Attendee:
    address: str
    name: str = ""
    type: AttendeeType = AttendeeType.REQUIRED
    response: str | None = None  # Exchange-owned: accept, decline, tentative, none, organizer …


@dataclass(frozen=True, slots=True)
class EventData:
    """The content of one event, a series master or a modified occurrence.

    ``recurrence`` is one RFC 5545 ``RRULE:`` line in the subset EWS can store; deleted
    occurrences are listed separately by their original start, modified occurrences carry their
    own ``EventData`` (without recurrence). ``organizer``, attendee ``response`` and
    ``is_cancelled`` belong to Exchange: they are ignored on push.
    """

    subject: str
    start: datetime
    end: datetime
    timezone: str = "UTC"  # IANA id
    is_all_day: bool = False
    location: str = ""
    body: str = ""
    uid: str | None = None
    reminder_minutes: int | None = None
    show_as: ShowAs = ShowAs.BUSY
    sensitivity: Sensitivity = Sensitivity.NORMAL
    categories: tuple[str, ...] = ()
    organizer: str | None = None
    attendees: tuple[Attendee, ...] = ()
    is_cancelled: bool = False
    recurrence: str | None = None
    deleted_occurrences: tuple[datetime, ...] = ()
    modified_occurrences: tuple[ModifiedOccurrence, ...] = ()

    def __post_init__(self) -> None:
        utc(self.start)
        utc(self.end)

    @property
    def is_recurring(self) -> bool:
        return self.recurrence is not None


@dataclass(frozen=True, slots=True)
class ModifiedOccurrence:
    """One occurrence of a series that differs from the pattern."""

    original_start: datetime
    data: EventData


EXCHANGE_OWNED_FIELDS = frozenset({"organizer", "is_cancelled"})


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, EventData):
        return {
            name: _canonical(getattr(value, name)) for name in EventData.__dataclass_fields__
        }
    if isinstance(value, ModifiedOccurrence):
        return [_canonical(value.original_start), _canonical(value.data)]
    if isinstance(value, Attendee):
        return [value.address.lower(), value.name, str(value.type), value.response]
    if isinstance(value, tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, StrEnum):
        return str(value)
    return value


def content_hash(data: EventData) -> str:
    """A stable fingerprint of everything an event holds (both sides hash the same model)."""
    payload = json.dumps(
        _canonical(data), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ItemRef:
    """An Exchange item as addressed by a write: ItemId plus the ChangeKey it was read with."""

    item_id: str
    change_key: str


@dataclass(frozen=True, slots=True)
class ExchangeItem:
    ref: ItemRef
    data: EventData
    calsync_id: str | None = None  # the extended property calsync stamps on items it creates
    last_modified: datetime | None = None  # LastModifiedTime (UTC), for ``newest-wins``


@dataclass(frozen=True, slots=True)
class ExchangeChange:
    """One change reported by the Exchange side. ``item`` is None for a deletion."""

    item_id: str
    item: ExchangeItem | None

    @property
    def is_delete(self) -> bool:
        return self.item is None


@dataclass(frozen=True, slots=True)
class BadItem:
    """An item that could not be read or written; recorded, skipped, reported."""

    item: str  # ItemId or calsync id
    error_code: str
    message: str


@dataclass(frozen=True, slots=True)
class ExchangePage:
    """One page of SyncFolderItems (or a Graph delta page) with the state to store after it."""

    changes: tuple[ExchangeChange, ...]
    sync_state: str
    last_page: bool
    bad_items: tuple[BadItem, ...] = ()


@dataclass(frozen=True, slots=True)
class LocalEvent:
    """A row (series master with its modified occurrences folded in) of the local store."""

    calsync_id: str
    data: EventData
    modified_at: datetime
    status: SyncStatus = SyncStatus.PENDING


@dataclass(frozen=True, slots=True)
class LocalChange:
    """A write made by an application; ``event`` is None when the row was deleted."""

    calsync_id: str
    event: LocalEvent | None
    revision: int

    @property
    def is_delete(self) -> bool:
        return self.event is None


@dataclass(frozen=True, slots=True)
class LocalChanges:
    changes: tuple[LocalChange, ...]
    cursor: int  # acknowledge with StoreTransaction.ack_local(cursor) once applied


@dataclass(frozen=True, slots=True)
class Link:
    """The status of one event as last synced: the row of a two-sided sync's status table."""

    calsync_id: str
    item_id: str | None  # None while the item exists only locally (pull mode, local_only)
    change_key: str | None
    exchange_hash: str | None
    local_hash: str | None


@dataclass(frozen=True, slots=True)
class Mailbox:
    """What a sync run needs to know about one mailbox."""

    address: str
    tenant: str
    direction: Direction = Direction.TWO_WAY
    conflict: ConflictPolicy = ConflictPolicy.EXCHANGE_WINS
    window_past_days: int = 30
    window_future_days: int = 365
    max_delete_share: float = 0.5
    max_delete_min: int = 10


@dataclass(frozen=True, slots=True)
class SideCounts:
    create: int = 0
    update: int = 0
    delete: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"create": self.create, "update": self.update, "delete": self.delete}


@dataclass(frozen=True, slots=True)
class SyncReport:
    """The outcome of one mailbox run; the fields of the canonical ``sync_finished`` line."""

    mailbox: str
    tenant: str
    direction: Direction
    exchange: SideCounts = field(default_factory=SideCounts)
    local: SideCounts = field(default_factory=SideCounts)
    conflicts: int = 0
    skipped: int = 0
    requests: int = 0
    bad_items: tuple[BadItem, ...] = ()
    full_resync: bool = False

    @property
    def outcome(self) -> str:
        return "partial" if self.bad_items else "ok"
