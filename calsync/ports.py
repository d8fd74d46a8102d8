"""The Protocols the core needs. Adapters (EWS, Graph, SQL store, memory fakes) implement them.

The sync engine talks only to these; it never imports exchangelib, SQLAlchemy or the config.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from calsync.model import (
    EventData,
    ExchangeItem,
    ExchangePage,
    ItemRef,
    Link,
    LocalChanges,
    LocalEvent,
    Mailbox,
    SyncStatus,
)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class ExchangeSide(Protocol):
    """One tenant's calendars as Exchange holds them (EWS or Graph adapter, or a memory fake).

    Errors are calsync errors: ``SyncStateInvalid`` for a sync state the server no longer takes,
    ``ConflictError`` for a stale ChangeKey, ``ItemError`` for one item the server rejects,
    ``TransientError``/``ThrottledError``, ``MailboxError`` subclasses, ``AuthError``.
    """

    def fetch_changes(self, mailbox: Mailbox, sync_state: str | None) -> Iterator[ExchangePage]:
        """Pages of changes since ``sync_state`` (None = everything), oldest state first.

        Each page carries the state to store once that page is applied. Items whose content
        could not be read are reported in ``ExchangePage.bad_items``, not raised.
        """
        ...

    def create(self, mailbox: Mailbox, calsync_id: str, data: EventData) -> ItemRef:
        """Create an item stamped with ``calsync_id``; never sends invitations."""
        ...

    def update(self, mailbox: Mailbox, ref: ItemRef, data: EventData) -> ItemRef:
        """Update the item if ``ref.change_key`` is still current, else ``ConflictError``."""
        ...

    def delete(self, mailbox: Mailbox, ref: ItemRef) -> None:
        """Delete the item (never sends cancellations); an item already gone is not an error."""
        ...

    def get(self, mailbox: Mailbox, item_id: str) -> ExchangeItem | None:
        """The item as it is now, or None when it no longer exists."""
        ...

    def find_by_calsync_id(self, mailbox: Mailbox, calsync_id: str) -> ExchangeItem | None:
        """The item stamped with ``calsync_id`` (finds a push interrupted before its commit)."""
        ...

    def request_count(self, mailbox: Mailbox) -> int:
        """Requests sent for this mailbox so far (for the canonical log line and benchmarks)."""
        ...

    def forget_echoes(self, mailbox: Mailbox) -> None:
        """Forget the writes this side remembers as its own for ``mailbox`` (the echoes it
        skips): called after a failed run, whose writes may have no committed link, so that
        the next run reads them back and links them instead of writing them again."""
        ...


class StoreTransaction(Protocol):
    """Writes of one sync step, committed together (rows, links, sync state, local cursor).

    Writes made here are calsync's own: they are never reported back as local changes.
    """

    def upsert_event(
        self,
        mailbox: str,
        calsync_id: str,
        data: EventData,
        *,
        status: SyncStatus = SyncStatus.SYNCED,
    ) -> None:
        """Insert or replace the row (and its modified-occurrence rows) with ``data``."""
        ...

    def delete_event(self, mailbox: str, calsync_id: str) -> None: ...

    def set_event_status(
        self, mailbox: str, calsync_id: str, status: SyncStatus, error: str | None = None
    ) -> None: ...

    def put_link(self, mailbox: str, link: Link) -> None: ...

    def delete_link(self, mailbox: str, calsync_id: str) -> None: ...

    def set_sync_state(self, mailbox: str, state: str | None, folder: str = "calendar") -> None: ...

    def ack_local(self, mailbox: str, cursor: int) -> None:
        """Mark local changes up to ``cursor`` (from ``Store.local_changes``) as handled."""
        ...


class Store(Protocol):
    """calsync's local store: the ``events`` table applications use, plus sync bookkeeping."""

    def transaction(self) -> AbstractContextManager[StoreTransaction]:
        """All writes inside commit together or not at all."""
        ...

    def get_sync_state(self, mailbox: str, folder: str = "calendar") -> str | None: ...

    def local_changes(self, mailbox: str, limit: int | None = None) -> LocalChanges:
        """Application writes not yet acknowledged; costs O(changes), not O(rows)."""
        ...

    def get_events(self, mailbox: str, calsync_ids: Sequence[str]) -> dict[str, LocalEvent]: ...

    def links_by_calsync_id(self, mailbox: str, calsync_ids: Sequence[str]) -> dict[str, Link]: ...

    def links_by_item_id(self, mailbox: str, item_ids: Sequence[str]) -> dict[str, Link]: ...

    def all_links(self, mailbox: str) -> dict[str, Link]:
        """Every link of a mailbox (full resync only)."""
        ...

    def count_events(self, mailbox: str) -> int: ...


class NotificationSource(Protocol):
    """Tells the scheduler that a mailbox changed on the Exchange side."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def update_mailboxes(self, mailboxes: Sequence[Mailbox]) -> None: ...
