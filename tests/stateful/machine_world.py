"""The world the sync state machine drives: both sides, a crashing store, and what to expect.

Every event carries a tag in its subject (``e7|v3``: event 7, version 3), so that the machine
can tell which event a row or an item is, however it was edited, copied or re-created.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings

from calsync.memory_exchange import MemoryExchange
from calsync.model import (
    ConflictPolicy,
    Direction,
    EventData,
    ExchangeItem,
    LocalEvent,
    Mailbox,
    ModifiedOccurrence,
    SyncStatus,
)
from calsync.store.memory import MemoryStore, MemoryTransaction
from calsync.sync.rules import pushable

ADDRESS = "machine@contoso.example"
START = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)


class Crash(Exception):
    """The process died here."""


@dataclass
class TickClock:
    current: datetime = START

    def now(self) -> datetime:
        self.current += timedelta(seconds=1)
        return self.current


class CrashingStore(MemoryStore):
    """A MemoryStore whose next transaction can die just before its commit."""

    crash_next = False

    @contextmanager
    def transaction(self) -> Iterator[MemoryTransaction]:
        with super().transaction() as tx:
            yield tx
            if self.crash_next:
                self.crash_next = False
                raise Crash("killed before commit")


def tag_of(data: EventData) -> str:
    return data.subject.split("|")[0]


def new_event(tag: str, day: int, *, recurring: bool) -> EventData:
    start = START.replace(hour=9) + timedelta(days=day)
    return EventData(
        subject=f"{tag}|v0",
        start=start,
        end=start + timedelta(hours=1),
        uid=f"uid-{tag}",
        location="Room 1",
        recurrence="RRULE:FREQ=DAILY;COUNT=5" if recurring else None,
    )


def edited(data: EventData, version: int, side: str) -> EventData:
    shift = timedelta(minutes=15 * (version % 4))
    return replace(
        data,
        subject=f"{tag_of(data)}|v{version}",
        location=f"{side} {version}",
        end=data.start + timedelta(hours=1) + shift,
    )


def occurrence_starts(data: EventData) -> list[datetime]:
    return [data.start + timedelta(days=k) for k in range(5)] if data.is_recurring else []


def with_modified(data: EventData, k: int, version: int) -> EventData:
    original = occurrence_starts(data)[k]
    occurrence = EventData(
        subject=f"{tag_of(data)}|occ{version}",
        start=original + timedelta(hours=2),
        end=original + timedelta(hours=3),
        uid=data.uid,
    )
    others = tuple(m for m in data.modified_occurrences if m.original_start != original)
    mods = tuple(sorted((*others, ModifiedOccurrence(original, occurrence)), key=_by_start))
    return replace(data, modified_occurrences=mods)


def with_deleted(data: EventData, k: int) -> EventData:
    original = occurrence_starts(data)[k]
    mods = tuple(m for m in data.modified_occurrences if m.original_start != original)
    deleted = tuple(sorted({*data.deleted_occurrences, original}))
    return replace(data, deleted_occurrences=deleted, modified_occurrences=mods)


def _by_start(m: ModifiedOccurrence) -> datetime:
    return m.original_start


def comparable(data: EventData) -> EventData:
    """What both sides must agree on (Exchange-owned fields aside)."""
    return pushable(data)


@dataclass
class World:
    direction: Direction
    conflict: ConflictPolicy
    clock: TickClock = field(default_factory=TickClock)

    def __post_init__(self) -> None:
        self.mailbox = Mailbox(ADDRESS, "contoso", self.direction, self.conflict)
        self.exchange = MemoryExchange(page_size=3, get_batch=2, clock=self.clock.now)
        self.store = CrashingStore(clock=self.clock)

    @property
    def is_pull(self) -> bool:
        return self.direction is Direction.PULL

    def rows(self) -> dict[str, LocalEvent]:
        state = self.store._state.rows
        ids = [cid for cid, row in state.items() if row["series_id"] is None]
        return self.store.get_events(ADDRESS, ids)

    def items(self) -> dict[str, ExchangeItem]:
        return self.exchange.items(ADDRESS)

    def error_ids(self) -> set[str]:
        return {cid for cid, row in self.rows().items() if row.status is SyncStatus.ERROR}

    def snapshot(self) -> tuple[object, ...]:
        """Everything a sync could write, to prove that a sync wrote nothing."""
        state = self.store._state
        return (
            {k: dict(v) for k, v in state.rows.items()},
            dict(state.links.get(ADDRESS, {})),
            {i: (x.ref, x.data) for i, x in self.items().items()},
        )


# the fixed CI profile: deterministic, bounded (about 30 s for the three directions)
MACHINE_SETTINGS = settings(
    max_examples=300,
    stateful_step_count=40,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
)
