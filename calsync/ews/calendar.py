"""``EwsExchangeSide``: the ``ports.ExchangeSide`` of one or more tenants over EWS.

Reading: SyncFolderItems page by page (at most 512 changes, IdOnly plus the ids, ChangeKey,
calsync-id and start/end), then GetItem in batches of 100 for the full data of the page's creates
and updates, then one more batch round for their modified occurrences. Each page carries the sync
state to store with it, so a crash resumes from the last committed page.

Writing: CreateItem/UpdateItem/DeleteItem on the mailbox's calendar with SendToNone, updates with
ConflictResolution NeverOverwrite and the ChangeKey they were planned from (stale -> ConflictError).
Created items carry the calsync id as an extended property; ``find_by_calsync_id`` finds them.
Changes that are echoes of this side's own writes (same ItemId and ChangeKey) are dropped without
a GetItem. The calendar folder is addressed by its distinguished id: no GetFolder round trips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from exchangelib import CalendarItem
from exchangelib.errors import ErrorItemNotFound
from exchangelib.fields import FieldPath
from exchangelib.folders import Calendar, Root
from exchangelib.items import ALL_OCCURRENCES, NEVER_OVERWRITE, SEND_TO_NONE
from exchangelib.properties import DistinguishedFolderId
from exchangelib.properties import Mailbox as EwsMailbox
from exchangelib.services import SyncFolderItems

from calsync.echoes import OwnWrites
from calsync.errors import ItemError
from calsync.ews.client import EwsClient
from calsync.ews.errors import classify
from calsync.ews.mapping import (
    CALSYNC_ID_FIELD,
    ITEM_FIELDS,
    UPDATE_FIELDS,
    event_fields,
    item_to_event,
    to_utc,
)
from calsync.ews.series import has_exceptions, write_exceptions
from calsync.model import (
    BadItem,
    EventData,
    ExchangeChange,
    ExchangeItem,
    ExchangePage,
    ItemRef,
    Mailbox,
)

if TYPE_CHECKING:
    from calsync.ports import ExchangeSide

PAGE_SIZE = 512
BATCH_SIZE = 100


def calendar_folder(account: Any) -> Any:
    """The mailbox's calendar, addressed by distinguished id (no GetFolder needed)."""
    mailbox = EwsMailbox(email_address=account.primary_smtp_address)
    root = Root(
        account=account, _distinguished_id=DistinguishedFolderId(id="root", mailbox=mailbox)
    )
    return Calendar(
        root=root, _distinguished_id=DistinguishedFolderId(id="calendar", mailbox=mailbox)
    )


def _sync_fields() -> set[Any]:
    return {
        FieldPath(field=CalendarItem.get_field_by_fieldname(name))
        for name in (CALSYNC_ID_FIELD, "start", "end", "is_recurring")
    }


class EwsExchangeSide:
    """``ports.ExchangeSide`` over EWS for the tenants of ``clients`` (one ``EwsClient`` each)."""

    def __init__(
        self,
        clients: EwsClient | Mapping[str, EwsClient],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        page_size: int = PAGE_SIZE,
        batch_size: int = BATCH_SIZE,
        filter_window: bool = True,
    ):
        self._clients = (
            {clients.tenant: clients} if isinstance(clients, EwsClient) else dict(clients)
        )
        self._clock = clock
        self.page_size = page_size
        self.batch_size = batch_size
        self.filter_window = filter_window
        self._own_writes = OwnWrites()

    def client(self, mailbox: Mailbox) -> EwsClient:
        try:
            return self._clients[mailbox.tenant]
        except KeyError:
            raise ValueError(
                f"{mailbox.address}: no EWS client for tenant {mailbox.tenant!r}"
            ) from None

    # --- reading ------------------------------------------------------------------------------

    def fetch_changes(self, mailbox: Mailbox, sync_state: str | None) -> Iterator[ExchangePage]:
        client = self.client(mailbox)
        state = sync_state
        full = sync_state is None  # a full (re)sync reports every item, echoes included
        while True:

            def page(account: Any, state: str | None = state) -> tuple[list[Any], str, bool]:
                service = SyncFolderItems(account=account)
                changes = list(
                    service.call(
                        folder=calendar_folder(account),
                        shape="IdOnly",
                        additional_fields=_sync_fields(),
                        sync_state=state,
                        ignore=None,
                        max_changes_returned=self.page_size,
                        sync_scope=None,
                    )
                )
                return changes, service.sync_state, bool(service.includes_last_item_in_range)

            changes, state, last = client.call(mailbox.address, page)
            yield self._page(client, mailbox, changes, state or "", last=last, full=full)
            if last:
                return

    def _page(
        self,
        client: EwsClient,
        mailbox: Mailbox,
        changes: list[Any],
        state: str,
        *,
        last: bool,
        full: bool,
    ) -> ExchangePage:
        result: list[ExchangeChange] = []
        wanted: dict[str, str | None] = {}  # item id -> calsync id, in server order
        deletes: list[str] = []
        for kind, obj in changes:
            if kind == SyncFolderItems.DELETE:
                deletes.append(obj.id)
                self._forget(mailbox, obj.id)
            elif kind in (SyncFolderItems.CREATE, SyncFolderItems.UPDATE):
                if not isinstance(obj, CalendarItem):
                    continue  # not an appointment (calendars hold nothing else in practice)
                if self._is_echo(mailbox, obj.id, obj.changekey) and not full:
                    continue
                if kind == SyncFolderItems.CREATE and not self._in_window(mailbox, obj):
                    continue
                wanted[obj.id] = getattr(obj, CALSYNC_ID_FIELD, None)
        items, bad = self._fetch(client, mailbox, list(wanted))
        for item_id in wanted:
            item = items.get(item_id)
            if item is not None:
                result.append(ExchangeChange(item_id, item))
        result.extend(ExchangeChange(item_id, None) for item_id in deletes)
        return ExchangePage(tuple(result), state, last, tuple(bad))

    def _in_window(self, mailbox: Mailbox, obj: Any) -> bool:
        if not self.filter_window or obj.start is None or obj.end is None:
            return True
        now = self._clock()
        window_start = now - timedelta(days=mailbox.window_past_days)
        window_end = now + timedelta(days=mailbox.window_future_days)
        start, end = to_utc(obj.start), to_utc(obj.end)
        if start >= window_end:
            return False  # a series starting after the window never overlaps it
        return bool(obj.is_recurring) or end > window_start

    def _fetch(
        self, client: EwsClient, mailbox: Mailbox, item_ids: Sequence[str]
    ) -> tuple[dict[str, ExchangeItem], list[BadItem]]:
        """Full items by id (GetItem in batches), with their modified occurrences."""
        if not item_ids:
            return {}, []
        raw = self._get_items(client, mailbox, item_ids)
        bad: list[BadItem] = []
        masters: dict[str, Any] = {}
        for item_id, item in zip(item_ids, raw, strict=True):
            if isinstance(item, ErrorItemNotFound):
                continue  # deleted since SyncFolderItems: the next page or run reports it
            if isinstance(item, Exception):
                error = classify(item, mailbox=mailbox.address, tenant=mailbox.tenant)
                bad.append(BadItem(item_id, error.error_code, error.message))
                continue
            masters[item_id] = item
        occurrence_ids = [
            o.id for m in masters.values() for o in (m.modified_occurrences or ()) if o.id
        ]
        occurrences: dict[str, Any] = {}
        unreadable: dict[str, Exception] = {}
        if occurrence_ids:
            fetched = self._get_items(client, mailbox, occurrence_ids)
            for occurrence_id, occurrence in zip(occurrence_ids, fetched, strict=True):
                if isinstance(occurrence, Exception):
                    unreadable[occurrence_id] = occurrence
                else:
                    occurrences[occurrence_id] = occurrence
        items: dict[str, ExchangeItem] = {}
        for item_id, master in masters.items():
            failed = [
                unreadable[o.id] for o in master.modified_occurrences or () if o.id in unreadable
            ]
            if failed:  # a series without one of its exceptions would be wrong: skip it whole
                error = classify(failed[0], mailbox=mailbox.address, tenant=mailbox.tenant)
                bad.append(BadItem(item_id, error.error_code, f"modified occurrence: {error}"))
                continue
            own = [
                occurrences[o.id] for o in master.modified_occurrences or () if o.id in occurrences
            ]
            try:
                data = item_to_event(master, own)
            except ValueError as exc:
                bad.append(BadItem(item_id, "bad_item", f"cannot read item: {exc}"))
                continue
            ref = ItemRef(master.id, master.changekey)
            items[item_id] = ExchangeItem(ref, data, getattr(master, CALSYNC_ID_FIELD, None))
        return items, bad

    def _get_items(self, client: EwsClient, mailbox: Mailbox, ids: Sequence[str]) -> list[Any]:
        result: list[Any] = []
        for start in range(0, len(ids), self.batch_size):
            batch = [(item_id, None) for item_id in ids[start : start + self.batch_size]]

            def get(account: Any, batch: list[tuple[str, None]] = batch) -> list[Any]:
                return list(
                    account.fetch(
                        ids=batch,
                        folder=calendar_folder(account),
                        only_fields=list(ITEM_FIELDS),
                        chunk_size=self.batch_size,
                    )
                )

            result.extend(client.call(mailbox.address, get))
        return result

    def get(self, mailbox: Mailbox, item_id: str) -> ExchangeItem | None:
        items, bad = self._fetch(self.client(mailbox), mailbox, [item_id])
        if bad:
            raise ItemError(bad[0].message, item=item_id, error_code=bad[0].error_code)
        return items.get(item_id)

    def find_by_calsync_id(self, mailbox: Mailbox, calsync_id: str) -> ExchangeItem | None:
        client = self.client(mailbox)

        def find(account: Any) -> list[str]:
            query = calendar_folder(account).filter(**{CALSYNC_ID_FIELD: calsync_id})
            return [item.id for item in query.only("id", "changekey")]

        found = client.call(mailbox.address, find)
        return self.get(mailbox, found[0]) if found else None

    # --- writing ------------------------------------------------------------------------------

    def create(self, mailbox: Mailbox, calsync_id: str, data: EventData) -> ItemRef:
        client = self.client(mailbox)
        fields = self._fields(data, calsync_id)

        def create(account: Any) -> ItemRef:
            item = CalendarItem(
                account=account, folder=calendar_folder(account), **fields,
                **{CALSYNC_ID_FIELD: calsync_id},
            )  # fmt: skip
            item.save(send_meeting_invitations=SEND_TO_NONE)
            return ItemRef(item.id, item.changekey)

        ref = client.call(mailbox.address, create)  # retried only when nothing was created
        self._remember(mailbox, ref)
        return self._exceptions(client, mailbox, ref, data)

    def _exceptions(
        self, client: EwsClient, mailbox: Mailbox, ref: ItemRef, data: EventData
    ) -> ItemRef:
        """Write the series' exceptions in calls of their own (each retried on its own)."""
        if not has_exceptions(data):
            return ref
        new = client.call(
            mailbox.address, lambda a: write_exceptions(a, calendar_folder(a), ref, data)
        )
        self._remember(mailbox, new)
        return new

    def update(self, mailbox: Mailbox, ref: ItemRef, data: EventData) -> ItemRef:
        client = self.client(mailbox)
        fields = self._fields(data, None)
        names = [*UPDATE_FIELDS, "recurrence"]  # None clears it: a series became a single event

        def update(account: Any) -> ItemRef:
            item = CalendarItem(
                account=account,
                folder=calendar_folder(account),
                id=ref.item_id,
                changekey=ref.change_key,
                **fields,
            )
            item.save(
                update_fields=names,
                conflict_resolution=NEVER_OVERWRITE,
                send_meeting_invitations=SEND_TO_NONE,
            )
            return ItemRef(item.id, item.changekey)

        new = client.call(mailbox.address, update)
        self._remember(mailbox, new)
        return self._exceptions(client, mailbox, new, data)

    def delete(self, mailbox: Mailbox, ref: ItemRef) -> None:
        client = self.client(mailbox)

        def delete(account: Any) -> None:
            item = CalendarItem(
                account=account, folder=calendar_folder(account), id=ref.item_id,
                changekey=ref.change_key,
            )  # fmt: skip
            try:
                item.delete(
                    send_meeting_cancellations=SEND_TO_NONE,
                    affected_task_occurrences=ALL_OCCURRENCES,
                )
            except ErrorItemNotFound:
                return  # already gone: not an error

        client.call(mailbox.address, delete)
        self._forget(mailbox, ref.item_id)

    def request_count(self, mailbox: Mailbox) -> int:
        return self.client(mailbox).request_count(mailbox.address)

    def _fields(self, data: EventData, calsync_id: str | None) -> dict[str, Any]:
        try:
            return event_fields(data)
        except ValueError as exc:
            raise ItemError(
                f"EWS cannot store this event: {exc}", item=calsync_id or "", error_code="bad_item"
            ) from None

    # --- echoes of our own writes ---------------------------------------------------------------

    def _remember(self, mailbox: Mailbox, ref: ItemRef) -> None:
        self._own_writes.remember(mailbox.address, ref.item_id, ref.change_key)

    def forget_echoes(self, mailbox: Mailbox) -> None:
        self._own_writes.forget_mailbox(mailbox.address)

    def _forget(self, mailbox: Mailbox, item_id: str) -> None:
        self._own_writes.forget(mailbox.address, item_id)

    def _is_echo(self, mailbox: Mailbox, item_id: str, change_key: str) -> bool:
        # SyncFolderItems reports each change once: the echo is consumed
        return self._own_writes.is_echo(mailbox.address, item_id, change_key, consume=True)


if TYPE_CHECKING:

    def _implements_the_port(side: EwsExchangeSide) -> ExchangeSide:
        return side  # mypy checks EwsExchangeSide against ports.ExchangeSide here
