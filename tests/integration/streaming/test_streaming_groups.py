"""Grouping against the simulator: 450 mailboxes at 200 (3 connections) and at 50 (9)."""

from __future__ import annotations

from pathlib import Path

from streaming_stack import Changes, client_for, sim_mailboxes, streaming, wait_subscribed

from calsync.sim import start_in_thread


def test_450_mailboxes_in_connections_of_200_then_50(tmp_path: Path) -> None:
    with start_in_thread(tmp_path, mailboxes=450, events_per_mailbox=1) as sim:
        boxes = sim_mailboxes(sim)
        client = client_for(sim)
        try:
            for limit, expected in ((200, 3), (50, 9)):
                sim.admin.reset_stats()
                changes = Changes()
                with streaming(
                    sim, boxes, changes, client, max_subscriptions_per_connection=limit
                ) as source:
                    wait_subscribed(source, 450)
                    streaming_stats = sim.admin.stats()["streaming"]
                    counts = source.counts()
                assert streaming_stats == {
                    "open_connections": expected,
                    "max_subscriptions_on_one_connection": limit,
                    "subscriptions": 450,
                }
                assert (counts.groups, counts.connections, counts.subscribed) == (
                    expected, expected, 450,
                )  # fmt: skip
                assert counts.polled == 0
                # stopping closed the connections and unsubscribed everything
                after = sim.admin.stats()
                assert after["streaming"]["subscriptions"] == 0
                assert after["requests"]["Unsubscribe"] == 450
                assert after["requests"]["Subscribe"] == 450
        finally:
            client.close()
