"""Grouping against the simulator: 450 mailboxes at 200 per connection (3) and at 50 (9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streaming_stack import Changes, client_for, sim_mailboxes, streaming, wait_subscribed

from calsync.sim import start_in_thread


@pytest.mark.parametrize(("limit", "connections"), [(200, 3), (50, 9)])
def test_450_mailboxes(tmp_path: Path, limit: int, connections: int) -> None:
    with start_in_thread(tmp_path, mailboxes=450, events_per_mailbox=1) as sim:
        client = client_for(sim)
        try:
            with streaming(
                sim, sim_mailboxes(sim), Changes(), client, max_subscriptions_per_connection=limit
            ) as source:
                wait_subscribed(source, 450)
                stats = sim.admin.stats()
                counts = source.counts()
            after = sim.admin.stats()
        finally:
            client.close()
    assert stats["streaming"] == {
        "open_connections": connections,
        "max_subscriptions_on_one_connection": limit,
        "subscriptions": 450,
    }
    assert stats["requests"] == {"Subscribe": 450, "GetStreamingEvents": connections}
    assert len([m for m, ops in stats["by_mailbox"].items() if "GetStreamingEvents" in ops]) == (
        connections
    )  # one connection per anchor
    assert counts.as_dict() == {
        "groups": connections, "connections": connections, "subscribed": 450, "polled": 0,
        "failed": 0, "over_capacity": 0,
    }  # fmt: skip
    # stopping unsubscribed everything
    assert after["streaming"]["subscriptions"] == 0
    assert after["requests"]["Unsubscribe"] == 450
