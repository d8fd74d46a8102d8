"""calendarView and calendarView/delta: windowed instances, paging and delta tokens.

A token carries the window, the mailbox's change-log position and (while the first round is paged)
the key (start, id) of the last instance listed; it belongs to one generation of the mailbox's sync
states, so ``invalidate_sync_state`` makes it answer 410 Gone. The first round lists every instance
in the window; its next page starts after that key, not at a count, as Graph's skipToken holds the
round's position: an item deleted, added or moved while the round is paged never makes a page skip
an unchanged item (it may repeat one: replays are allowed), and the change itself comes in the next
round. Later rounds list the instances of the items changed since the token (occurrences as stubs,
as Graph does), and an ``@removed`` entry for deleted items, deleted occurrences and items now
outside the window. A deleted series is reported by its instances' ids and (a simulator
assumption) its master's id.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, replace
from typing import Any

from calsync.sim.graph.ids import graph_id, iso_z, parse_instant
from calsync.sim.graph.render import Instance, event_json, in_window, instances, stub_json
from calsync.sim.mailstore import Item, Mailbox, occurrence_id


class TokenGone(Exception):
    """The token is of an invalidated (or another) sync state generation: 410 Gone."""


@dataclass(frozen=True)
class Token:
    folder: str
    generation: str
    start: dt.datetime
    end: dt.datetime
    seq: int  # change-log position the round started from (-1: initial round)
    snapshot: int  # change-log position the round reports up to
    after: str = ""  # initial round: key of the last instance listed ("" before the first page)

    def encode(self) -> str:
        raw = json.dumps([self.folder, self.generation, iso_z(self.start), iso_z(self.end),
                          self.seq, self.snapshot, self.after])  # fmt: skip
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, mbx: Mailbox, text: str) -> Token:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            folder, gen, start, end, seq, snapshot, after = json.loads(raw)
            token = cls(folder, gen, parse_instant(start), parse_instant(end), int(seq),
                        int(snapshot), str(after))  # fmt: skip
            if token.after:
                _cursor(token.after)
        except (ValueError, TypeError) as exc:
            raise ValueError("The delta token is not valid") from exc
        if token.folder != mbx.calendar_id or token.generation != generation(mbx):
            raise TokenGone("The sync state generation is not found")
        if token.snapshot > mbx.seq:
            raise TokenGone("The sync state generation is not found")
        return token


def generation(mbx: Mailbox) -> str:
    return f"{mbx.instance}.{mbx.generation}"


def view(mbx: Mailbox, lo: dt.datetime, hi: dt.datetime) -> list[Instance]:
    """Every instance overlapping [lo, hi), ordered by start."""
    out = [
        inst
        for item in mbx.items.values()
        for inst in instances(mbx, item)
        if in_window(inst, lo, hi)
    ]
    return sorted(out, key=lambda i: (i.start, i.event_id))


def _mark(inst: Instance) -> str:
    """The paging key of ``inst`` as a token carries it."""
    return f"{inst.start.isoformat()} {inst.event_id}"


def _cursor(after: str) -> tuple[dt.datetime, str]:
    start, event_id = after.split(" ", 1)
    return dt.datetime.fromisoformat(start), event_id


def _entry(mbx: Mailbox, inst: Instance, text_body: bool) -> dict[str, Any]:
    if inst.kind == "occurrence":
        return stub_json(inst)
    return {"@odata.type": "#microsoft.graph.event", **event_json(mbx, inst, text_body=text_body)}


def removed(event_id: str) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.event", "id": event_id,
            "@removed": {"reason": "deleted"}}  # fmt: skip


def _changed_entries(mbx: Mailbox, item_id: str, item: Item | None, token: Token,
                     text_body: bool) -> list[dict[str, Any]]:  # fmt: skip
    if item is None:
        return [removed(graph_id(item_id))]
    current = [i for i in instances(mbx, item) if in_window(i, token.start, token.end)]
    if not current:
        return [removed(graph_id(item_id))]
    entries = [_entry(mbx, inst, text_body) for inst in current]
    for index, start in enumerate(item.occurrence_starts(), 1):
        if start in item.deleted and token.start <= start < token.end:
            entries.append(removed(graph_id(occurrence_id(item, index))))
    return entries


def delta_page(
    mbx: Mailbox,
    token: Token,
    page_size: int,
    text_body: bool,
) -> tuple[list[dict[str, Any]], Token | None, Token]:
    """(entries, token of the next page or None, token of the next round)."""
    if token.seq < 0:
        listing = view(mbx, token.start, token.end)
        if token.after:
            mark = _cursor(token.after)
            listing = [i for i in listing if (i.start, i.event_id) > mark]
        chunk = listing[:page_size]
        entries = [_entry(mbx, inst, text_body) for inst in chunk]
        more = len(listing) > page_size
        after = replace(token, after=_mark(chunk[-1])) if more else None
        return entries, after, replace(token, seq=token.snapshot, after="")
    changes, new_seq, last = mbx.changes_since(token.seq, page_size)
    entries = []
    for _, item_id, item in changes:
        entries.extend(_changed_entries(mbx, item_id, item, token, text_body))
    following = replace(token, seq=new_seq, snapshot=max(new_seq, token.snapshot))
    if last:
        final = replace(token, seq=mbx.seq, snapshot=mbx.seq)
        return entries, None, final
    return entries, following, following


def initial_token(mbx: Mailbox, start: dt.datetime, end: dt.datetime) -> Token:
    return Token(mbx.calendar_id, generation(mbx), start, end, -1, mbx.seq)
