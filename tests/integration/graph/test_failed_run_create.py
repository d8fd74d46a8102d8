"""A run that created an item over Graph and then failed before committing its link: the next
run links that item instead of pushing the row a second time (the fault storm's duplicate)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from graph_stack import GraphStack

from calsync.errors import TransientError
from calsync.graph.migrate import RelinkingSide
from calsync.model import EventData
from calsync.store.memory import MemoryStore
from calsync.sync.engine import run_sync


class Clock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


def test_a_create_whose_run_failed_is_linked_by_the_next_run_not_pushed_twice(
    stack: GraphStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox, store = stack.mailbox(2), MemoryStore()
    side = RelinkingSide(stack.side, store)  # the daemon's Graph side wraps it so
    run_sync(mailbox, side, store, clock=Clock())
    rows = store.get_events(mailbox.address, list(store.all_links(mailbox.address)))
    cid, row = next((c, r) for c, r in rows.items() if not (r.data.attendees or r.data.recurrence))
    start = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0, minute=0)
    start += dt.timedelta(days=3)
    new_id = store.app_upsert(mailbox.address, EventData(
        subject="app new", start=start, end=start + dt.timedelta(minutes=30), timezone="UTC"))  # fmt: skip
    store.app_upsert(mailbox.address, replace(row.data, subject="app renamed"), cid)

    # the new row is pushed (POST answered 201), then the edit's PATCH fails: the run ends and
    # commits nothing, so the item just created has no link yet
    call, posted, failed = stack.client.call, [], []

    def failing_call(address: str, method: str, url: str, **kwargs: Any) -> Any:
        if posted and method == "PATCH" and not failed:
            failed.append(url)
            raise TransientError("connection reset", error_code="network")
        answer = call(address, method, url, **kwargs)
        if method == "POST" and url.endswith("/calendar/events"):
            posted.append(answer[1]["id"])
        return answer

    monkeypatch.setattr(stack.client, "call", failing_call)
    with pytest.raises(TransientError):
        run_sync(mailbox, side, store, clock=Clock())
    assert len(posted) == 1 and failed
    assert new_id not in store.all_links(mailbox.address)

    report = run_sync(mailbox, side, store, clock=Clock())  # no fault now
    assert report.exchange.create == 0, "the row was pushed a second time"
    stamped = [e for e in stack.sim.admin.events(mailbox.address)
               if (e["extended_properties"] or {}).get("calsync-id") == new_id]  # fmt: skip
    assert [e["subject"] for e in stamped] == ["app new"]
    assert store.all_links(mailbox.address)[new_id].item_id == posted[0]
    events = {e["subject"] for e in stack.sim.admin.events(mailbox.address)}
    assert "app renamed" in events
