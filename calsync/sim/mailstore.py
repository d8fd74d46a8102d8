"""Mailboxes and their calendar items, with a change log for SyncFolderItems and notifications."""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import hashlib
import itertools
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from calsync.sim.recurrence import Recurrence, occurrence_starts

CALSYNC_PROPSET = "4ca80195-c234-4a35-b00a-22be78edc0d5"
_counter = itertools.count(1)

Listener = Callable[[str, str, str, int], None]  # kind, item_id, change_key, seq


def new_change_key() -> str:
    return "DwAAABYAAAA" + base64.b64encode(os.urandom(12)).decode()


def new_item_id(address: str) -> str:
    mbx = hashlib.sha1(address.lower().encode(), usedforsecurity=False).digest()[:8]
    raw = b"\x00\x00\x00\x46" + mbx + next(_counter).to_bytes(6, "big") + uuid.uuid4().bytes
    return "AAMk" + base64.b64encode(raw).decode()


@dataclass
class Attendee:
    address: str
    name: str = ""
    kind: str = "required"  # required | optional | resource
    response: str = "Unknown"  # EWS ResponseTypeType


@dataclass
class Item:
    """A calendar item as Exchange stores it: a single item, a series master or an exception."""

    item_id: str
    start: dt.datetime
    end: dt.datetime
    change_key: str = field(default_factory=new_change_key)
    uid: str = ""
    subject: str = ""
    body: str = ""
    body_type: str = "HTML"
    location: str = ""
    start_tz: str = "UTC"
    end_tz: str = "UTC"
    is_all_day: bool = False
    show_as: str = "Busy"
    sensitivity: str = "Normal"
    importance: str = "Normal"
    categories: list[str] = field(default_factory=list)
    organizer: tuple[str, str] = ("", "")
    attendees: list[Attendee] = field(default_factory=list)
    reminder_minutes: int = 15
    reminder_set: bool = True
    is_cancelled: bool = False
    recurrence: Recurrence | None = None
    exceptions: dict[dt.datetime, Item] = field(default_factory=dict)
    deleted: list[dt.datetime] = field(default_factory=list)
    master_id: str | None = None
    original_start: dt.datetime | None = None
    extended: dict[tuple[str, str, str], str] = field(default_factory=dict)
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    modified: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    sequence: int = 0
    meeting_request_was_sent: bool = False
    _occ_cache: tuple[object, list[dt.datetime]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    # rendered XML per (shape, ChangeKey, …); never copied by dataclasses.replace
    xml_cache: dict[tuple[object, ...], str] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.uid:
            self.uid = uuid.uuid4().hex.upper() + "00000000000000000000"

    @property
    def kind(self) -> str:
        if self.master_id is not None:
            return "Exception"
        return "RecurringMaster" if self.recurrence is not None else "Single"

    @property
    def is_meeting(self) -> bool:
        return bool(self.attendees)

    def occurrence_starts(self) -> list[dt.datetime]:
        if self.recurrence is None:
            return []
        key = (self.change_key, self.start, self.start_tz, id(self.recurrence))
        if self._occ_cache is None or self._occ_cache[0] != key:
            starts = occurrence_starts(self.recurrence, self.start, self.start_tz)
            self._occ_cache = (key, starts)
        return self._occ_cache[1]

    def calsync_id(self) -> str | None:
        return self.extended.get((CALSYNC_PROPSET, "calsync-id", "String"))


OCCURRENCE_PREFIX = "AAMkOC"


def occurrence_id(master: Item, index: int, original: dt.datetime | None = None) -> str:
    """The ItemId of an occurrence: the master's id with the instance index (an exception made
    from the occurrence keeps this id, as in Exchange)."""
    raw = master.item_id.encode() + b"\x00" + index.to_bytes(4, "big")
    return OCCURRENCE_PREFIX + base64.b64encode(raw).decode()


def parse_occurrence_id(item_id: str) -> tuple[str, int] | None:
    if not item_id.startswith(OCCURRENCE_PREFIX):
        return None
    try:
        raw = base64.b64decode(item_id[len(OCCURRENCE_PREFIX) :], validate=True)
    except ValueError:
        return None
    if len(raw) < 6 or raw[-5] != 0:
        return None
    return raw[:-5].decode(errors="replace"), int.from_bytes(raw[-4:], "big")


class SyncStateError(ValueError):
    """A sync state that does not belong to this mailbox's folder or was invalidated."""


class Mailbox:
    """One mailbox's calendar folder."""

    def __init__(
        self,
        address: str,
        tenant: str,
        display_name: str,
        filler: tuple[Callable[[Mailbox], None], int] | None = None,
    ) -> None:
        self.address = address
        self.tenant = tenant
        self.display_name = display_name
        self._items: dict[str, Item] = {}  # singles and masters
        self._exceptions: dict[str, Item] = {}
        self._filler = filler  # (generate, count): the calendar is generated on first use
        self.created_seq: dict[str, int] = {}
        self.last_ck: dict[str, str] = {}
        self._log_seqs: list[int] = []
        self._log_ids: list[str] = []
        self.seq = 0
        self.generation = 1
        # sync states of another simulator (or an earlier run) are invalid: its items differ
        self.instance = os.urandom(4).hex()
        self.listeners: list[Listener] = []
        digest = hashlib.sha1(address.lower().encode(), usedforsecurity=False).digest()
        self.root_id = "AQMk" + base64.b64encode(b"root" + digest).decode()
        self.calendar_id = "AQMk" + base64.b64encode(b"cal\x00" + digest).decode()
        self.folder_ck = "AgAAABYAAAA" + base64.b64encode(digest[:9]).decode()

    # lazily generated content --------------------------------------------------------------

    def ensure(self) -> None:
        """Generate the seeded calendar now if it was not yet (deterministic per mailbox)."""
        if self._filler is not None:
            generate, _ = self._filler
            self._filler = None
            generate(self)

    @property
    def items(self) -> dict[str, Item]:
        self.ensure()
        return self._items

    @property
    def exceptions(self) -> dict[str, Item]:
        self.ensure()
        return self._exceptions

    def event_count(self) -> int:
        """What SyncFolderItems would return: single items and series masters."""
        if self._filler is not None:
            return self._filler[1]
        return len(self._items)

    # lookups -------------------------------------------------------------------------------

    def get(self, item_id: str) -> Item | None:
        return self.items.get(item_id) or self.exceptions.get(item_id)

    def master_of(self, item: Item) -> Item:
        if item.master_id is None:
            return item
        return self.items[item.master_id]

    # changes --------------------------------------------------------------------------------

    def _log(self, kind: str, item_id: str, change_key: str) -> None:
        self.seq += 1
        self._log_seqs.append(self.seq)
        self._log_ids.append(item_id)
        self.last_ck[item_id] = change_key
        for listener in list(self.listeners):
            listener(kind, item_id, change_key, self.seq)

    def add(self, item: Item) -> Item:
        item.created = item.modified = dt.datetime.now(dt.UTC)
        self.items[item.item_id] = item
        self.created_seq[item.item_id] = self.seq + 1
        self._log("created", item.item_id, item.change_key)
        return item

    def touch(self, item: Item) -> Item:
        """Record a change of `item` (a new ChangeKey; an exception also bumps its master)."""
        now = dt.datetime.now(dt.UTC)
        item.change_key = new_change_key()
        item.modified = now
        item.sequence += 1
        if item.master_id is not None:
            master = self.items[item.master_id]
            master.change_key = new_change_key()
            master.modified = now
            self._log("modified", master.item_id, master.change_key)
        else:
            self._log("modified", item.item_id, item.change_key)
        return item

    def add_exception(self, master: Item, exc: Item) -> Item:
        assert exc.original_start is not None
        exc.master_id = master.item_id
        master.exceptions[exc.original_start] = exc
        self.exceptions[exc.item_id] = exc
        return self.touch(exc)

    def delete(self, item_id: str) -> None:
        item = self.get(item_id)
        if item is None:
            raise KeyError(item_id)
        if item.master_id is not None:
            self.delete_occurrence(self.items[item.master_id], item.original_start)
            return
        del self.items[item_id]
        for exc in item.exceptions.values():
            self.exceptions.pop(exc.item_id, None)
        self._log("deleted", item_id, item.change_key)

    def delete_occurrence(self, master: Item, original_start: dt.datetime | None) -> None:
        assert original_start is not None
        exc = master.exceptions.pop(original_start, None)
        if exc is not None:
            self.exceptions.pop(exc.item_id, None)
        if original_start not in master.deleted:
            master.deleted.append(original_start)
            master.deleted.sort()
        master.change_key = new_change_key()
        master.modified = dt.datetime.now(dt.UTC)
        self._log("modified", master.item_id, master.change_key)

    # sync -----------------------------------------------------------------------------------

    def sync_token(self, seq: int) -> str:
        raw = f"SIMSYNC1|{self.calendar_id}|{self.instance}.{self.generation}|{seq}"
        return base64.b64encode(raw.encode()).decode()

    def parse_sync_token(self, token: str) -> int:
        try:
            magic, folder, gen, seq = base64.b64decode(token, validate=True).decode().split("|")
            value = int(seq)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SyncStateError("unreadable sync state") from exc
        if (
            magic != "SIMSYNC1"
            or folder != self.calendar_id
            or gen != f"{self.instance}.{self.generation}"
        ):
            raise SyncStateError("sync state of another folder or an invalidated one")
        if value > self.seq or value < 0:
            raise SyncStateError("sync state from the future")
        return value

    def changes_since(
        self, since: int, max_changes: int
    ) -> tuple[list[tuple[str, str, Item | None]], int, bool]:
        """Changes after `since`, one per item, ordered by the item's first change after it.

        Returns (changes, new_seq, includes_last). A change is (kind, item_id, item); kind is
        create (an item the client has not seen), update or delete.
        """
        out: list[tuple[str, str, Item | None]] = []
        seen: set[str] = set()
        start = bisect.bisect_right(self._log_seqs, since)
        for idx in range(start, len(self._log_ids)):
            item_id = self._log_ids[idx]
            if item_id in seen:
                continue
            seen.add(item_id)
            if len(out) >= max_changes:
                return out, self._log_seqs[idx] - 1, False
            item = self.items.get(item_id)
            created_after = self.created_seq[item_id] > since
            if item is None:
                if not created_after:
                    out.append(("delete", item_id, None))
            else:
                out.append(("create" if created_after else "update", item_id, item))
        return out, self.seq, True
