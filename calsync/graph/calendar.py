"""``GraphExchangeSide``: the ``ports.ExchangeSide`` of one or more tenants over Graph v1.0.

Reading: ``calendarView/delta`` over the mailbox's window, page by page (the sync state is
``graph1 `` + the page's nextLink or the round's deltaLink, committed with the page). Delta never
returns series masters nor extended properties, so each page's changed singles and the masters
of its occurrences and exceptions are read in full by id, 20 per ``$batch`` (master + recurrence
+ ``cancelledOccurrences`` + ``exceptionOccurrences`` + the calsync id). ``@removed`` ids are
read too: 404 is a deletion, an answer means the item left the window. Echoes of this side's
own writes (same id and ChangeKey) are not read again. 410 Gone -> ``SyncStateInvalid``.

Writing: POST/PATCH/DELETE with ``If-Match`` (412 -> ``ConflictError``); ``attendees`` are never
written, and a meeting with attendees is neither updated nor deleted unless the mailbox allows it
(``allow_meeting_updates``): Graph has no SendToNone and would mail every attendee.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import structlog

from calsync.echoes import OwnWrites
from calsync.errors import ItemError
from calsync.graph.client import GraphClient, SubRequest
from calsync.graph.mapping import (
    CALSYNC_PROP,
    EXPAND,
    FIELDS,
    calsync_id_of,
    data_to_event,
    event_to_data,
)
from calsync.graph.models import GraphEvent
from calsync.graph.series import has_exceptions, write_exceptions
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

log = structlog.get_logger("calsync.graph")
STATE_PREFIX = "graph1 "


def is_graph_state(state: str | None) -> bool:
    return state is not None and state.startswith(STATE_PREFIX)


class GraphExchangeSide:
    """``ports.ExchangeSide`` over Graph for the tenants of ``clients`` (one ``GraphClient``
    each); ``meeting_updates`` lists the mailboxes whose configuration allows writes to meetings
    (``allow_meeting_updates``)."""

    def __init__(
        self,
        clients: GraphClient | Mapping[str, GraphClient],
        *,
        clock: Any = lambda: datetime.now(UTC),
        page_size: int = 200,
        meeting_updates: frozenset[str] = frozenset(),
    ) -> None:
        self.meeting_updates = frozenset(a.lower() for a in meeting_updates)
        self._clients = (
            {clients.tenant: clients} if isinstance(clients, GraphClient) else dict(clients)
        )
        self._clock = clock
        self.page_size = page_size
        self._own = OwnWrites()

    def client(self, mailbox: Mailbox) -> GraphClient:
        try:
            return self._clients[mailbox.tenant]
        except KeyError:
            raise ValueError(
                f"{mailbox.address}: no Graph client for tenant {mailbox.tenant!r}"
            ) from None

    def _url(self, mailbox: Mailbox, path: str) -> str:
        return f"/users/{quote(mailbox.address)}{path}"

    def _item_url(self, mailbox: Mailbox, item_id: str) -> str:
        return self._url(
            mailbox, f"/events/{quote(item_id, safe='')}?$select={FIELDS}&$expand={EXPAND}"
        )

    # --- reading ------------------------------------------------------------------------------

    def fetch_changes(self, mailbox: Mailbox, sync_state: str | None) -> Iterator[ExchangePage]:
        from calsync.errors import SyncStateInvalid

        client = self.client(mailbox)
        if sync_state is None:
            now = self._clock()
            lo = (now - timedelta(days=mailbox.window_past_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
            hi = (now + timedelta(days=mailbox.window_future_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
            url = self._url(mailbox, f"/calendarView/delta?startDateTime={lo}&endDateTime={hi}")
        elif is_graph_state(sync_state):
            url = sync_state[len(STATE_PREFIX) :]
        else:
            raise SyncStateInvalid(
                f"the sync state of {mailbox.address} is not a Graph delta link",
                error_code="SyncStateNotFound",
            )
        full = sync_state is None
        prefer = {"Prefer": f"odata.maxpagesize={self.page_size}"}
        masters: set[str] = set()  # series read in this round (their instances span pages)
        while True:
            _, body = client.call(mailbox.address, "GET", url, headers=prefer)
            body = body or {}
            following = body.get("@odata.nextLink")
            final = body.get("@odata.deltaLink")
            if not following and not final:
                raise SyncStateInvalid(
                    "a delta page without nextLink or deltaLink", error_code="SyncStateNotFound"
                )
            entries = body.get("value") or []
            changes, bad = self._page(client, mailbox, entries, full=full, masters=masters)
            url = str(following or final)
            yield ExchangePage(tuple(changes), STATE_PREFIX + url, following is None, tuple(bad))
            if following is None:
                return

    def _page(
        self,
        client: GraphClient,
        mailbox: Mailbox,
        entries: list[dict[str, Any]],
        *,
        full: bool,
        masters: set[str],
    ) -> tuple[list[ExchangeChange], list[BadItem]]:
        """The page's changes: each item (for an instance: its series master) read once per
        round, 20 to a ``$batch``; ``masters`` collects the series read so far this round."""
        wanted: dict[str, bool] = {}  # id -> was @removed (read in order of first mention)
        for entry in entries:
            removed = "@removed" in entry
            kind = entry.get("type")
            instance = kind in ("occurrence", "exception")
            item_id = str(entry.get("seriesMasterId") if instance else entry.get("id"))
            if instance and not removed and item_id in masters:
                continue  # its master, read on an earlier page, holds every instance
            if not removed and not full and self._is_echo(mailbox, item_id, _etag(entry)):
                continue
            if instance:
                masters.add(item_id)
            wanted[item_id] = wanted.get(item_id, True) and removed
        answers = client.batch(
            mailbox.address, [SubRequest("GET", self._item_url(mailbox, i)) for i in wanted]
        )
        changes: list[ExchangeChange] = []
        bad: list[BadItem] = []
        for item_id, answer in zip(wanted, answers, strict=True):
            if answer.status == 404:
                self._forget(mailbox, item_id)
                changes.append(ExchangeChange(item_id, None))
                continue
            if answer.status != 200:
                error = client.error_of(mailbox.address, answer, item_id)
                if not isinstance(error, ItemError):
                    raise error
                bad.append(BadItem(item_id, error.error_code, error.message))
                continue
            event: GraphEvent = answer.body
            if event.get("type") in ("occurrence", "exception"):
                continue  # an instance id (a removed occurrence): its master tells the story
            try:
                changes.append(ExchangeChange(item_id, _item(event)))
            except (ValueError, KeyError, TypeError) as exc:
                bad.append(BadItem(item_id, "bad_item", f"cannot read item: {exc}"))
        return changes, bad

    def read_items(
        self, mailbox: Mailbox, item_ids: Sequence[str]
    ) -> tuple[dict[str, ExchangeItem], set[str]]:
        """Full reads of ``item_ids``, 20 per ``$batch``: (the items that read cleanly, the ids
        Graph answered 404 for); an id in neither could not be read now."""
        client = self.client(mailbox)
        requests = [SubRequest("GET", self._item_url(mailbox, i)) for i in item_ids]
        found: dict[str, ExchangeItem] = {}
        gone: set[str] = set()
        for item_id, answer in zip(item_ids, client.batch(mailbox.address, requests), strict=True):
            if answer.status == 404:
                gone.add(item_id)
            elif answer.status == 200 and answer.body:
                try:
                    found[item_id] = _item(answer.body)
                except (ValueError, KeyError, TypeError):
                    continue
        return found, gone

    def get(self, mailbox: Mailbox, item_id: str) -> ExchangeItem | None:
        status, body = self.client(mailbox).call(
            mailbox.address, "GET", self._item_url(mailbox, item_id), item=item_id, allow=(404,)
        )
        if status == 404 or not body:
            return None
        try:
            return _item(body)
        except (ValueError, KeyError, TypeError) as exc:
            raise ItemError(f"cannot read item: {exc}", item=item_id) from None

    def find_by_calsync_id(self, mailbox: Mailbox, calsync_id: str) -> ExchangeItem | None:
        value = calsync_id.replace("'", "''")
        flt = (
            "singleValueExtendedProperties/Any(ep: ep/id eq "
            f"'{CALSYNC_PROP}' and ep/value eq '{value}')"
        )
        url = self._url(mailbox, f"/events?$filter={quote(flt)}&$select=id&$top=1")
        _, body = self.client(mailbox).call(mailbox.address, "GET", url)
        found = (body or {}).get("value") or []
        return self.get(mailbox, str(found[0]["id"])) if found else None

    def request_count(self, mailbox: Mailbox) -> int:
        return self.client(mailbox).request_count(mailbox.address)

    # --- writing ------------------------------------------------------------------------------

    def create(self, mailbox: Mailbox, calsync_id: str, data: EventData) -> ItemRef:
        client = self.client(mailbox)
        body = self._body(data, calsync_id)
        body["singleValueExtendedProperties"] = [{"id": CALSYNC_PROP, "value": calsync_id}]
        _, created = client.call(
            mailbox.address, "POST", self._url(mailbox, "/calendar/events"), body=body
        )
        ref = ItemRef(str(created["id"]), str(created["changeKey"]))
        return self._finish(client, mailbox, ref, data)

    def update(self, mailbox: Mailbox, ref: ItemRef, data: EventData) -> ItemRef:
        client = self.client(mailbox)
        current = self._meeting_check(client, mailbox, ref, "update")
        if current is None:
            raise ItemError("item not found", item=ref.item_id, error_code="ErrorItemNotFound")
        body = self._body(data, None)
        if not data.recurrence and current.get("type") != "seriesMaster":
            body.pop("recurrence")
        url = self._url(mailbox, f"/events/{quote(ref.item_id, safe='')}")
        _, updated = client.call(
            mailbox.address, "PATCH", url, body=body, headers=_if_match(ref), item=ref.item_id
        )
        new = ItemRef(ref.item_id, str(updated["changeKey"]))
        return self._finish(client, mailbox, new, data)

    def delete(self, mailbox: Mailbox, ref: ItemRef) -> None:
        client = self.client(mailbox)
        if self._meeting_check(client, mailbox, ref, "delete") is None:
            return  # already gone
        url = self._url(mailbox, f"/events/{quote(ref.item_id, safe='')}")
        client.call(
            mailbox.address, "DELETE", url, headers=_if_match(ref), item=ref.item_id, allow=(404,)
        )
        self._forget(mailbox, ref.item_id)

    def _meeting_check(
        self, client: GraphClient, mailbox: Mailbox, ref: ItemRef, action: str
    ) -> GraphEvent | None:
        """The item's kind and attendees (None when gone); refuses a meeting write that
        would mail attendees unless the mailbox allows it."""
        url = self._url(
            mailbox,
            f"/events/{quote(ref.item_id, safe='')}?$select=type,attendees,isOrganizer,changeKey",
        )
        status, current = client.call(mailbox.address, "GET", url, item=ref.item_id, allow=(404,))
        if status == 404 or not current:
            return None
        if current.get("attendees") and mailbox.address.lower() not in self.meeting_updates:
            log.warning(
                "meeting_write_skipped",
                mailbox=mailbox.address,
                item_id=ref.item_id,
                action=action,
                attendees=len(current["attendees"]),
            )
            raise ItemError(
                f"not written: Graph would mail the {len(current['attendees'])} attendees of "
                "this meeting (set allow_meeting_updates = true to allow it)",
                item=ref.item_id,
                error_code="meeting_write_skipped",
            )
        return current  # type: ignore[no-any-return]

    def _body(self, data: EventData, calsync_id: str | None) -> dict[str, Any]:
        try:
            return data_to_event(data)
        except ValueError as exc:
            raise ItemError(
                f"Graph cannot store this event: {exc}",
                item=calsync_id or "",
                error_code="bad_item",
            ) from None

    def _finish(
        self, client: GraphClient, mailbox: Mailbox, ref: ItemRef, data: EventData
    ) -> ItemRef:
        if has_exceptions(data):
            ref = write_exceptions(client, mailbox.address, self._url(mailbox, ""), ref, data)
        self._remember(mailbox, ref)
        return ref

    # --- echoes of our own writes ---------------------------------------------------------------

    def _remember(self, mailbox: Mailbox, ref: ItemRef) -> None:
        self._own.remember(mailbox.address, ref.item_id, ref.change_key)

    def forget_echoes(self, mailbox: Mailbox) -> None:
        self._own.forget_mailbox(mailbox.address)

    def _forget(self, mailbox: Mailbox, item_id: str) -> None:
        self._own.forget(mailbox.address, item_id)

    def _is_echo(self, mailbox: Mailbox, item_id: str, change_key: str | None) -> bool:
        # delta may report an item several times in one round: the echo stays remembered
        return self._own.is_echo(mailbox.address, item_id, change_key, consume=False)


def _etag(entry: dict[str, Any]) -> str | None:
    if entry.get("changeKey"):
        return str(entry["changeKey"])
    etag = str(entry.get("@odata.etag") or "")
    return etag.removeprefix("W/").strip('"') or None


def _if_match(ref: ItemRef) -> dict[str, str]:
    return {"If-Match": f'W/"{ref.change_key}"'} if ref.change_key else {}


def _item(event: GraphEvent) -> ExchangeItem:
    modified = event.get("lastModifiedDateTime")
    last = datetime.fromisoformat(modified.replace("Z", "+00:00")[:25]) if modified else None
    ref = ItemRef(str(event["id"]), str(event["changeKey"]))
    return ExchangeItem(ref, event_to_data(event), calsync_id_of(event), last)


if TYPE_CHECKING:

    def _implements_the_port(side: GraphExchangeSide) -> ExchangeSide:
        return side  # mypy checks GraphExchangeSide against ports.ExchangeSide here
