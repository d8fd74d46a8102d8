"""An in-memory ``ports.ExchangeSide`` that behaves like Exchange, for tests and property tests.

What it shares with a real mailbox calendar:

- ItemIds never reused; a ChangeKey that changes on every write; a write planned from a stale
  ChangeKey raises ``ConflictError``; updating a missing item raises ``ItemError``
  (``ErrorItemNotFound``); deleting a missing item is fine.
- Sync states are opaque tokens over a change log: each page reports the latest state of at most
  ``page_size`` items (Create, Update or Delete), oldest change first; a state that was
  invalidated (``invalidate_sync_states``) or is not one of ours raises ``SyncStateInvalid``.
- A change of one occurrence bumps the series master (new ChangeKey, reported as an Update).
- The calsync id is an extended property set on create and found by ``find_by_calsync_id``.
- Exchange-owned fields (organizer, attendee responses, cancelled) are ignored on writes.
- Requests are counted per mailbox: SyncFolderItems per page plus GetItem per
  ``get_batch`` items of it, and one per create, update, delete, get and find.

Tests play a person in Outlook with the ``outlook_*`` methods (which are not counted), and
inject failures with ``fail_next``.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal, TypeVar

from calsync.errors import ConflictError, ItemError, SyncStateInvalid
from calsync.model import (
    BadItem,
    EventData,
    ExchangeChange,
    ExchangeItem,
    ExchangePage,
    ItemRef,
    Mailbox,
    ModifiedOccurrence,
    utc,
)

_T = TypeVar("_T")
Operation = Literal["create", "update", "delete", "get", "find", "fetch"]


@dataclass
class _Item:
    item_id: str
    change_key: str
    data: EventData
    calsync_id: str | None
    last_modified: datetime
    created_seq: int

    def view(self) -> ExchangeItem:
        ref = ItemRef(self.item_id, self.change_key)
        return ExchangeItem(ref, self.data, self.calsync_id, self.last_modified)


@dataclass
class _Calendar:
    items: dict[str, _Item] = field(default_factory=dict)
    last_seq: dict[str, int] = field(default_factory=dict)  # item id -> seq of its last change
    created_seq: dict[str, int] = field(default_factory=dict)  # kept after deletion
    seq: int = 0
    epoch: int = 0
    requests: int = 0
    writes: int = 0  # create, update and delete requests (whether they succeeded or not)
    unreadable: set[str] = field(default_factory=set)


@dataclass
class _Fault:
    operation: Operation
    error: Exception
    after: bool  # perform the operation, then raise (the reply was lost)
    item_id: str | None


class MemoryExchange:
    def __init__(
        self,
        *,
        page_size: int = 512,
        get_batch: int = 100,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.page_size = page_size
        self.get_batch = get_batch
        self._clock = clock or (lambda: datetime.now(UTC))
        self._calendars: dict[str, _Calendar] = {}
        self._ids = itertools.count(1)
        self._keys = itertools.count(1)
        self._faults: list[_Fault] = []

    # --- ports.ExchangeSide ------------------------------------------------------------------

    def fetch_changes(self, mailbox: Mailbox, sync_state: str | None) -> Iterator[ExchangePage]:
        cal = self._cal(mailbox.address)
        position = self._decode(mailbox.address, cal, sync_state)
        self._fault("fetch", None)
        while True:
            cal.requests += 1
            changed = sorted(
                (seq, item_id) for item_id, seq in cal.last_seq.items() if seq > position
            )
            page = changed[: self.page_size]
            changes: list[ExchangeChange] = []
            bad: list[BadItem] = []
            for _, item_id in page:
                stored = cal.items.get(item_id)
                if stored is None:
                    if position >= 0 and cal.created_seq[item_id] <= position:
                        changes.append(ExchangeChange(item_id, None))
                elif item_id in cal.unreadable:
                    bad.append(BadItem(item_id, "ErrorCorruptData", "item could not be read"))
                else:
                    changes.append(ExchangeChange(item_id, stored.view()))
            reads = sum(1 for c in changes if c.item is not None)
            cal.requests += -(-reads // self.get_batch)
            position = page[-1][0] if page else cal.seq
            last = len(changed) <= self.page_size
            state = self._encode(mailbox.address, cal.epoch, position)
            yield ExchangePage(tuple(changes), state, last, tuple(bad))
            if last:
                return

    def create(self, mailbox: Mailbox, calsync_id: str, data: EventData) -> ItemRef:
        cal = self._cal(mailbox.address)
        cal.requests += 1
        cal.writes += 1
        fault = self._fault("create", None)
        item_id = f"AAMkA{next(self._ids):06d}="
        cal.seq += 1
        stored = _Item(item_id, "", _owned_from(None, data), calsync_id, self._now(), cal.seq)
        self._write(cal, stored)
        cal.created_seq[item_id] = cal.seq
        return self._after(fault, ItemRef(item_id, stored.change_key))

    def update(self, mailbox: Mailbox, ref: ItemRef, data: EventData) -> ItemRef:
        cal = self._cal(mailbox.address)
        cal.requests += 1
        cal.writes += 1
        fault = self._fault("update", ref.item_id)
        stored = self._current(cal, ref)
        if stored is None:
            raise ItemError("item not found", item=ref.item_id, error_code="ErrorItemNotFound")
        stored.data = _owned_from(stored.data, data)
        self._write(cal, stored)
        return self._after(fault, ItemRef(stored.item_id, stored.change_key))

    def delete(self, mailbox: Mailbox, ref: ItemRef) -> None:
        cal = self._cal(mailbox.address)
        cal.requests += 1
        cal.writes += 1
        fault = self._fault("delete", ref.item_id)
        if self._current(cal, ref) is not None:
            self._remove(cal, ref.item_id)
        self._after(fault, None)

    def get(self, mailbox: Mailbox, item_id: str) -> ExchangeItem | None:
        cal = self._cal(mailbox.address)
        cal.requests += 1
        self._fault("get", item_id)
        stored = cal.items.get(item_id)
        return stored.view() if stored is not None else None

    def find_by_calsync_id(self, mailbox: Mailbox, calsync_id: str) -> ExchangeItem | None:
        cal = self._cal(mailbox.address)
        cal.requests += 1
        self._fault("find", None)
        found = [i for i in cal.items.values() if i.calsync_id == calsync_id]
        return min(found, key=lambda i: i.created_seq).view() if found else None

    def forget_echoes(self, mailbox: Mailbox) -> None:
        """Nothing to forget: this fake reports every change, its own writes included."""

    def request_count(self, mailbox: Mailbox) -> int:
        return self._cal(mailbox.address).requests

    def write_count(self, address: str) -> int:
        """Create, update and delete requests sent so far for this calendar."""
        return self._cal(address).writes

    # --- a person in Outlook, and the test's levers ------------------------------------------

    def outlook_create(
        self, address: str, data: EventData, *, calsync_id: str | None = None
    ) -> str:
        cal = self._cal(address)
        item_id = f"AAMkA{next(self._ids):06d}="
        cal.seq += 1
        self._write(cal, _Item(item_id, "", data, calsync_id, self._now(), cal.seq))
        cal.created_seq[item_id] = cal.seq
        return item_id

    def outlook_update(self, address: str, item_id: str, data: EventData) -> None:
        cal = self._cal(address)
        stored = cal.items[item_id]
        stored.data = data
        self._write(cal, stored)

    def outlook_delete(self, address: str, item_id: str) -> None:
        self._remove(self._cal(address), item_id)

    def outlook_modify_occurrence(
        self, address: str, item_id: str, original_start: datetime, data: EventData
    ) -> None:
        """Edit one occurrence: the master gets a new ChangeKey and is reported as changed."""
        stored = self._cal(address).items[item_id]
        others = tuple(
            m for m in stored.data.modified_occurrences if m.original_start != original_start
        )
        modified = (*others, ModifiedOccurrence(utc(original_start), data))
        self.outlook_update(address, item_id, replace(stored.data, modified_occurrences=modified))

    def outlook_delete_occurrence(
        self, address: str, item_id: str, original_start: datetime
    ) -> None:
        stored = self._cal(address).items[item_id]
        start = utc(original_start)
        deleted = tuple(sorted({*stored.data.deleted_occurrences, start}))
        modified = tuple(m for m in stored.data.modified_occurrences if m.original_start != start)
        data = replace(stored.data, deleted_occurrences=deleted, modified_occurrences=modified)
        self.outlook_update(address, item_id, data)

    def items(self, address: str) -> dict[str, ExchangeItem]:
        """Every item of the calendar as it is now (not counted as a request)."""
        return {i: s.view() for i, s in self._cal(address).items.items()}

    def invalidate_sync_states(self, address: str) -> None:
        """Every sync state handed out for this calendar is refused from now on (expiry)."""
        self._cal(address).epoch += 1

    def make_unreadable(self, address: str, item_id: str, unreadable: bool = True) -> None:
        """Report the item in ``bad_items`` instead of as a change (corrupt content)."""
        cal = self._cal(address)
        (cal.unreadable.add if unreadable else cal.unreadable.discard)(item_id)

    def fail_next(
        self,
        operation: Operation,
        error: Exception,
        *,
        after: bool = False,
        item_id: str | None = None,
    ) -> None:
        """The next ``operation`` (on ``item_id``, if given) raises ``error``; with
        ``after=True`` it is carried out first and only its reply is lost."""
        self._faults.append(_Fault(operation, error, after, item_id))

    def clear_faults(self) -> None:
        self._faults.clear()

    # --- internals ---------------------------------------------------------------------------

    def _cal(self, address: str) -> _Calendar:
        return self._calendars.setdefault(address.lower(), _Calendar())

    def _now(self) -> datetime:
        return utc(self._clock())

    def _write(self, cal: _Calendar, stored: _Item) -> None:
        stored.change_key = f"CK{next(self._keys):08d}"
        stored.last_modified = self._now()
        cal.seq += 1
        cal.items[stored.item_id] = stored
        cal.last_seq[stored.item_id] = cal.seq

    def _remove(self, cal: _Calendar, item_id: str) -> None:
        if cal.items.pop(item_id, None) is not None:
            cal.seq += 1
            cal.last_seq[item_id] = cal.seq

    def _current(self, cal: _Calendar, ref: ItemRef) -> _Item | None:
        stored = cal.items.get(ref.item_id)
        if stored is not None and stored.change_key != ref.change_key:
            raise ConflictError(f"stale ChangeKey for {ref.item_id}")
        return stored

    def _fault(self, operation: Operation, item_id: str | None) -> _Fault | None:
        for fault in self._faults:
            if fault.operation == operation and fault.item_id in (None, item_id):
                self._faults.remove(fault)
                if not fault.after:
                    raise fault.error
                return fault
        return None

    @staticmethod
    def _after(fault: _Fault | None, result: _T) -> _T:
        if fault is not None:
            raise fault.error
        return result

    @staticmethod
    def _encode(address: str, epoch: int, position: int) -> str:
        raw = f"calsync-memory|{address.lower()}|{epoch}|{position}".encode()
        return base64.urlsafe_b64encode(raw).decode()

    @staticmethod
    def _decode(address: str, cal: _Calendar, state: str | None) -> int:
        if state is None:
            return -1
        try:
            tag, owner, epoch, position = base64.urlsafe_b64decode(state).decode().split("|")
            valid = tag == "calsync-memory" and owner == address.lower()
            if valid and int(epoch) == cal.epoch and 0 <= int(position) <= cal.seq:
                return int(position)
        except ValueError:
            pass
        raise SyncStateInvalid(f"sync state of {address} is not valid")


def _owned_from(current: EventData | None, sent: EventData) -> EventData:
    """What Exchange stores for a write of ``sent``: its own fields are kept, not taken."""
    responses = {a.address.lower(): a.response for a in current.attendees} if current else {}
    attendees = tuple(replace(a, response=responses.get(a.address.lower())) for a in sent.attendees)
    return replace(
        sent,
        organizer=current.organizer if current else None,
        is_cancelled=current.is_cancelled if current else False,
        attendees=attendees,
    )
