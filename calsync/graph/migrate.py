"""Moving a mailbox from EWS to Graph without recreating anything: re-link by identity.

The links of a mailbox synced over EWS hold EWS ItemIds, which Graph does not know (and which
app-only Graph cannot translate). On the first Graph run, when the stored sync state is not a
Graph delta link, ``RelinkingSide`` lists the calendar's items once (``/events``: singles and
series masters, with the calsync-id extended property and ``iCalUId``), points every link whose
item it recognises at the item's Graph id (by the calsync id stamped on items calsync created,
else by the iCalendar UID of the linked row), and then reports the old state invalid: the engine's
full round runs against links that already carry Graph ids, so every item is an echo or a real
change, never a create, and only items that are really gone count as deleted.

The link keeps its local hash, and its ChangeKey when the Graph changeKey names the same version:
an item untouched since the last EWS sync is an echo, one edited in Outlook meanwhile a change.
For such an untouched item the Exchange hash is taken from what Graph reads now (one full read,
20 per ``$batch``): the EWS link's hash is that of the content calsync last wrote or read, which
lacks what Exchange adds on its own (the organizer of an item calsync created, attendee responses
reset by an update) and which the EWS side never read back for its own writes. Without this the
first Graph round would rewrite those rows although nobody changed them.

With ``--dry-run`` the side re-links into a ``PreviewStore`` (nothing is written; the plan is the
one the real run would make).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import quote

import structlog

from calsync.errors import SyncStateInvalid
from calsync.graph.calendar import GraphExchangeSide, is_graph_state
from calsync.graph.mapping import CALSYNC_PROP, calsync_id_of
from calsync.model import (
    BadItem,
    EventData,
    ExchangeChange,
    ExchangeItem,
    ExchangePage,
    ItemRef,
    Link,
    Mailbox,
    content_hash,
)
from calsync.ports import Store

log = structlog.get_logger("calsync.graph")


class RelinkingSide:
    """``ports.ExchangeSide``: a ``GraphExchangeSide`` that re-links a mailbox's EWS links."""

    def __init__(self, side: GraphExchangeSide, store: Store) -> None:
        self.side = side
        self.store = store

    def fetch_changes(self, mailbox: Mailbox, sync_state: str | None) -> Iterator[ExchangePage]:
        if sync_state is not None and not is_graph_state(sync_state):
            self.relink(mailbox)
            raise SyncStateInvalid(
                f"{mailbox.address}: EWS sync state; links moved to Graph ids, full Graph round",
                error_code="migrated_to_graph",
            )
        pages = self.side.fetch_changes(mailbox, sync_state)
        return pages if sync_state is not None else self._complete(mailbox, pages)

    def _complete(self, mailbox: Mailbox, pages: Iterator[ExchangePage]) -> Iterator[ExchangePage]:
        """A full round: the engine counts every linked item it does not list as deleted. Delta
        lists only what has an instance in the window, so a linked series without one (its
        occurrences all cancelled, or all outside the window) would count as deleted although
        it is still there. Such items are read on the last page: only a 404 leaves one out
        (deleted), an item that cannot be read now is reported as a bad item (kept)."""
        seen: set[str] = set()
        for page in pages:
            seen.update(c.item_id for c in page.changes)
            seen.update(b.item for b in page.bad_items)
            yield self._with_unseen(mailbox, page, seen) if page.last_page else page

    def _with_unseen(self, mailbox: Mailbox, page: ExchangePage, seen: set[str]) -> ExchangePage:
        links = self.store.all_links(mailbox.address).values()
        unseen = sorted({i for i in (link.item_id for link in links) if i} - seen)
        if not unseen:
            return page
        found, gone = self.side.read_items(mailbox, unseen)
        extra = tuple(ExchangeChange(i, found[i]) for i in unseen if i in found)
        bad = tuple(
            BadItem(i, "unreadable", "a linked item Graph could not read")
            for i in unseen
            if i not in found and i not in gone
        )
        return replace(page, changes=page.changes + extra, bad_items=page.bad_items + bad)

    def relink(self, mailbox: Mailbox) -> tuple[int, int]:
        """Point the mailbox's links at Graph ids; (re-linked, links left unmatched)."""
        address = mailbox.address
        links = self.store.all_links(address)
        rows = self.store.get_events(address, sorted(links))
        by_uid = {row.data.uid: cid for cid, row in rows.items() if row.data.uid}
        moved: dict[str, Link] = {}
        for event_id, change_key, uid, stamp in self._listing(mailbox):
            cid = stamp if stamp in links else by_uid.get(uid or "")
            link = links.get(cid or "")
            if cid is None or link is None or cid in moved or link.item_id == event_id:
                continue
            same = _same_version(link.change_key, change_key)
            key = change_key if same else None
            moved[cid] = Link(cid, event_id, key, link.exchange_hash, link.local_hash)
        self._refresh_hashes(mailbox, moved)
        with self.store.transaction() as tx:
            for link in moved.values():
                tx.put_link(address, link)
        unmatched = sum(1 for cid, link in links.items() if link.item_id and cid not in moved)
        log.info("graph_relinked", mailbox=address, relinked=len(moved), unmatched=unmatched)
        return len(moved), unmatched

    def _refresh_hashes(self, mailbox: Mailbox, moved: dict[str, Link]) -> None:
        """Give the links of items untouched since the EWS sync the hash of Graph's reading."""
        same = {link.item_id: cid for cid, link in moved.items() if link.change_key}
        if not same:
            return
        found, _gone = self.side.read_items(mailbox, [i for i in same if i])
        for item_id, item in found.items():
            link = moved[same[item_id]]
            if item.ref.change_key == link.change_key:
                moved[link.calsync_id] = replace(link, exchange_hash=content_hash(item.data))

    def over(self, store: Store) -> RelinkingSide:
        """The same side re-linking into ``store`` (a ``PreviewStore`` for ``--dry-run``)."""
        return RelinkingSide(self.side, store)

    def _listing(self, mailbox: Mailbox) -> Iterator[tuple[str, str, str | None, str | None]]:
        client = self.side.client(mailbox)
        expand = f"singleValueExtendedProperties($filter=id eq '{CALSYNC_PROP}')"
        url: str | None = (
            f"/users/{quote(mailbox.address)}/events?$select=id,changeKey,iCalUId,type"
            f"&$expand={quote(expand)}&$top=500"
        )
        while url:
            _, body = client.call(mailbox.address, "GET", url)
            for event in (body or {}).get("value") or []:
                ids = str(event["id"]), str(event.get("changeKey") or "")
                yield *ids, event.get("iCalUId"), calsync_id_of(event)
            url = (body or {}).get("@odata.nextLink")

    # --- the rest of the port, unchanged ---------------------------------------------------------

    def create(self, mailbox: Mailbox, calsync_id: str, data: EventData) -> ItemRef:
        return self.side.create(mailbox, calsync_id, data)

    def update(self, mailbox: Mailbox, ref: ItemRef, data: EventData) -> ItemRef:
        return self.side.update(mailbox, ref, data)

    def delete(self, mailbox: Mailbox, ref: ItemRef) -> None:
        self.side.delete(mailbox, ref)

    def get(self, mailbox: Mailbox, item_id: str) -> ExchangeItem | None:
        return self.side.get(mailbox, item_id)

    def find_by_calsync_id(self, mailbox: Mailbox, calsync_id: str) -> ExchangeItem | None:
        return self.side.find_by_calsync_id(mailbox, calsync_id)

    def request_count(self, mailbox: Mailbox) -> int:
        return self.side.request_count(mailbox)

    def forget_echoes(self, mailbox: Mailbox) -> None:
        """Passed on (see ``calsync.sync.engine.run_sync``): without it a failed run's creates
        would still count as echoes, be skipped by the next delta round, and be pushed twice."""
        self.side.forget_echoes(mailbox)


def _same_version(ews_key: str | None, graph_key: str) -> bool:
    """True when the EWS ChangeKey of the link and the Graph changeKey name the same version
    (equal, or the EWS form is the Graph value behind EWS's type-and-length prefix) [nv on a
    real tenant: without a match the content hash decides, which is only slower]."""
    if not ews_key or not graph_key:
        return False
    return ews_key == graph_key or ews_key.endswith(graph_key)
