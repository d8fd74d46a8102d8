"""``PreviewStore``: a store that ``sync --once --dry-run`` can hand to a re-linking Graph side.

The first Graph run of a mailbox synced over EWS re-links its links to Graph ids before the
engine plans (``migrate.RelinkingSide``). A dry run must write nothing, yet plan against the
re-linked links, or it would show every item as new. This view reads through to the real store
and keeps the links written in its transactions in memory, where later reads see them; any other
write is refused (the engine writes nothing in a dry run, so such a write would be a bug).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from calsync.errors import StoreError
from calsync.model import EventData, Link, LocalChanges, LocalEvent, SyncStatus

if TYPE_CHECKING:
    from calsync.ports import Store, StoreTransaction


class PreviewStore:
    """``ports.Store`` over ``store`` whose link writes stay in memory (per mailbox)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._links: dict[str, dict[str, Link]] = {}
        self._lock = threading.Lock()

    def _overlay(self, mailbox: str) -> dict[str, Link]:
        with self._lock:
            return dict(self._links.get(mailbox, {}))

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        tx = _PreviewTransaction()
        yield tx
        with self._lock:
            for mailbox, links in tx.links.items():
                self._links.setdefault(mailbox, {}).update(links)

    def get_sync_state(self, mailbox: str, folder: str = "calendar") -> str | None:
        return self.store.get_sync_state(mailbox, folder)

    def local_changes(self, mailbox: str, limit: int | None = None) -> LocalChanges:
        return self.store.local_changes(mailbox, limit)

    def get_events(self, mailbox: str, calsync_ids: Sequence[str]) -> dict[str, LocalEvent]:
        return self.store.get_events(mailbox, calsync_ids)

    def count_events(self, mailbox: str) -> int:
        return self.store.count_events(mailbox)

    def links_by_calsync_id(self, mailbox: str, calsync_ids: Sequence[str]) -> dict[str, Link]:
        found = self.store.links_by_calsync_id(mailbox, calsync_ids)
        overlay = self._overlay(mailbox)
        found.update({cid: overlay[cid] for cid in calsync_ids if cid in overlay})
        return found

    def links_by_item_id(self, mailbox: str, item_ids: Sequence[str]) -> dict[str, Link]:
        overlay = self._overlay(mailbox)
        found = {
            item_id: link
            for item_id, link in self.store.links_by_item_id(mailbox, item_ids).items()
            if link.calsync_id not in overlay  # moved: the overlay says where it points now
        }
        wanted = set(item_ids)
        for link in overlay.values():
            if link.item_id is not None and link.item_id in wanted:
                found[link.item_id] = link
        return found

    def all_links(self, mailbox: str) -> dict[str, Link]:
        return self.store.all_links(mailbox) | self._overlay(mailbox)


class _PreviewTransaction:
    """Collects ``put_link``; every other write raises ``StoreError``."""

    def __init__(self) -> None:
        self.links: dict[str, dict[str, Link]] = {}

    def put_link(self, mailbox: str, link: Link) -> None:
        self.links.setdefault(mailbox, {})[link.calsync_id] = link

    def _refuse(self, what: str) -> StoreError:
        return StoreError(f"dry run: {what} would write to the store")

    def upsert_event(
        self,
        mailbox: str,
        calsync_id: str,
        data: EventData,
        *,
        status: SyncStatus = SyncStatus.SYNCED,
    ) -> None:
        raise self._refuse("upsert_event")

    def delete_event(self, mailbox: str, calsync_id: str) -> None:
        raise self._refuse("delete_event")

    def set_event_status(
        self, mailbox: str, calsync_id: str, status: SyncStatus, error: str | None = None
    ) -> None:
        raise self._refuse("set_event_status")

    def delete_link(self, mailbox: str, calsync_id: str) -> None:
        raise self._refuse("delete_link")

    def set_sync_state(self, mailbox: str, state: str | None, folder: str = "calendar") -> None:
        raise self._refuse("set_sync_state")

    def ack_local(self, mailbox: str, cursor: int) -> None:
        raise self._refuse("ack_local")


if TYPE_CHECKING:

    def _implements_the_port(view: PreviewStore) -> Store:
        return view  # mypy checks PreviewStore against ports.Store here
