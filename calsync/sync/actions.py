"""What a sync decides to do: frozen action records, and the plan that holds them.

Actions are data. ``plan.plan`` produces them without I/O; ``engine`` executes them. Each action
names the calsync id it concerns, so an engine can group, count, retry or skip per event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from calsync.model import ConflictPolicy, EventData, ExchangeItem, ItemRef, Link, SideCounts


class Winner(StrEnum):
    EXCHANGE = "exchange"
    LOCAL = "local"


# --- the local side ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalCreate:
    """Insert the row ``calsync_id`` with the Exchange item's content and link it."""

    calsync_id: str
    item: ExchangeItem


@dataclass(frozen=True, slots=True)
class LocalUpdate:
    """Overwrite the row with the Exchange item's content and link it."""

    calsync_id: str
    item: ExchangeItem


@dataclass(frozen=True, slots=True)
class LocalDelete:
    """Delete the row and its link (the item is gone from Exchange)."""

    calsync_id: str


# --- the Exchange side ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExchangeCreate:
    """Create an item from the row. ``replaces`` is the ItemId of a linked item that is gone:
    the engine first looks for an item already stamped with ``calsync_id`` (an earlier attempt
    that crashed before its commit) and reuses it."""

    calsync_id: str
    data: EventData
    replaces: str | None = None


@dataclass(frozen=True, slots=True)
class ExchangeUpdate:
    """Update the item ``ref`` (with the ChangeKey the decision was made from) to the row."""

    calsync_id: str
    ref: ItemRef
    data: EventData


@dataclass(frozen=True, slots=True)
class ExchangeDelete:
    """Delete the item ``ref`` (the row was deleted) and the link."""

    calsync_id: str
    ref: ItemRef


# --- bookkeeping -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Relink:
    """Write the link only: an echo of calsync's own write, an unchanged ChangeKey bump, a
    crash-recovered create found by its calsync id, or identical edits on both sides."""

    link: Link


@dataclass(frozen=True, slots=True)
class Unlink:
    """Forget the link (nothing is left to sync on either side)."""

    calsync_id: str


@dataclass(frozen=True, slots=True)
class MarkLocalOnly:
    """A row an application inserted in a ``pull`` mailbox: it stays local, flagged."""

    calsync_id: str


@dataclass(frozen=True, slots=True)
class FetchExchange:
    """The decision needs the item as Exchange holds it now (``pull`` restoring a local edit)."""

    calsync_id: str
    item_id: str


@dataclass(frozen=True, slots=True)
class Conflict:
    """Both sides changed since the last sync; ``winner`` was chosen by ``policy``."""

    calsync_id: str
    item_id: str
    policy: ConflictPolicy
    winner: Winner


@dataclass(frozen=True, slots=True)
class Skip:
    """A change that is deliberately not synced (``reason``: outside_window, not_owned …)."""

    calsync_id: str
    item_id: str | None
    reason: str


Action = (
    LocalCreate
    | LocalUpdate
    | LocalDelete
    | ExchangeCreate
    | ExchangeUpdate
    | ExchangeDelete
    | Relink
    | Unlink
    | MarkLocalOnly
    | FetchExchange
    | Conflict
    | Skip
)
EXCHANGE_WRITES = (ExchangeCreate, ExchangeUpdate, ExchangeDelete)
LOCAL_WRITES = (LocalCreate, LocalUpdate, LocalDelete)


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...] = ()

    def __iter__(self) -> Iterator[Action]:
        return iter(self.actions)

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def exchange_counts(self) -> SideCounts:
        return SideCounts(
            create=sum(isinstance(a, ExchangeCreate) for a in self.actions),
            update=sum(isinstance(a, ExchangeUpdate) for a in self.actions),
            delete=sum(isinstance(a, ExchangeDelete) for a in self.actions),
        )

    @property
    def local_counts(self) -> SideCounts:
        return SideCounts(
            create=sum(isinstance(a, LocalCreate) for a in self.actions),
            update=sum(isinstance(a, LocalUpdate) for a in self.actions),
            delete=sum(isinstance(a, LocalDelete) for a in self.actions),
        )

    @property
    def conflicts(self) -> tuple[Conflict, ...]:
        return tuple(a for a in self.actions if isinstance(a, Conflict))

    @property
    def deletes(self) -> int:
        return sum(isinstance(a, LocalDelete | ExchangeDelete) for a in self.actions)

    def for_ids(self, calsync_ids: frozenset[str]) -> Plan:
        return Plan(tuple(a for a in self.actions if action_id(a) in calsync_ids))


def action_id(action: Action) -> str:
    """The calsync id an action concerns."""
    if isinstance(action, Relink):
        return action.link.calsync_id
    return action.calsync_id
