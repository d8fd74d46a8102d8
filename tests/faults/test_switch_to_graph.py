"""Issue 10's migration through the real daemon and a real SIGHUP: 20 mailboxes synced two-way
over EWS with edits on both sides, the tenant switched to ``api = "graph"`` in the file, SIGHUP:
the next runs link every item (0 created, 0 deleted on either side, nothing rewritten), and the
edits made afterwards flow over Graph alone.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from calsync.sim import SimHandle, start_in_thread
from faults.harness import Daemon, Event, differences, wait_for_nothing, write_config
from faults.traffic import Traffic

MAILBOXES = 20


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimHandle]:
    with start_in_thread(
        tmp_path / "sim", mailboxes=MAILBOXES, events_per_mailbox=6, seed=53
    ) as handle:
        yield handle


def first_after(events: list[Event], name: str, mailbox: str, index: int) -> Event | None:
    for event in events[index:]:
        if event.get("event") == name and event.get("mailbox") == mailbox:
            return event
    return None


def test_sighup_moves_a_two_way_tenant_from_ews_to_graph_without_a_copy_or_a_loss(
    sim: SimHandle, tmp_path: Path
) -> None:
    mailboxes = list(sim.info["tenants"][0]["mailboxes"])
    assert len(mailboxes) == MAILBOXES
    db = tmp_path / "calsync.db"
    config = write_config(sim, tmp_path, api="ews")
    rng = random.Random("switch-to-graph")
    traffic = Traffic(sim, db, rng, {m: set() for m in mailboxes}, {m: set() for m in mailboxes})
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        daemon.wait(
            lambda: {e["mailbox"] for e in daemon.since(0, "sync_finished")} >= set(mailboxes),
            90,
            "the initial EWS sync of every mailbox",
        )
        traffic.round(0)  # Outlook and application edits while on EWS
        wait_for_nothing(
            lambda: differences(sim, db, mailboxes, "ews") + traffic.lost(),
            60,
            "convergence over EWS",
        )

        write_config(sim, tmp_path, api="graph")  # the one key an operator changes
        mark = daemon.mark()
        daemon.popen.send_signal(signal.SIGHUP)
        reloaded = daemon.wait_event("config_reloaded", 30, mark)
        assert reloaded["level"] == "info"

        # every mailbox's first Graph round re-links all it knows and finds nothing to write
        relinked = daemon.wait(
            lambda: (
                found
                if len(found := {e["mailbox"]: e for e in daemon.since(mark, "graph_relinked")})
                == MAILBOXES
                else None
            ),
            90,
            "the first Graph round of every mailbox",
        )
        assert {m: e["unmatched"] for m, e in relinked.items() if e["unmatched"]} == {}
        assert all(e["relinked"] > 0 for e in relinked.values())

        def graph_runs() -> dict[str, Event] | None:
            events = daemon.since(0)
            runs = {}
            for mailbox, relink in relinked.items():
                found = first_after(events, "sync_finished", mailbox, events.index(relink))
                if found is not None:
                    runs[mailbox] = found
            return runs if len(runs) == MAILBOXES else None

        runs = daemon.wait(graph_runs, 60, "the sync_finished of every first Graph round")
        nothing = {"create": 0, "update": 0, "delete": 0}
        written = {
            m: (r["exchange"], r["local"])
            for m, r in runs.items()
            if (r["exchange"], r["local"]) != (nothing, nothing)
        }
        assert written == {}, f"the first Graph round wrote: {written}"
        assert not differences(sim, db, mailboxes, "graph")
        requests = set(sim.admin.stats()["requests"])
        assert any(op.startswith("GRAPH") for op in requests), requests
        # (an EWS run already under way at the SIGHUP finishes on EWS, and the streaming
        # subscriptions are dropped with Unsubscribe; from here on, Graph alone)

        # later edits on both sides flow over Graph
        sim.admin.reset_stats()
        traffic.round(1)
        wait_for_nothing(
            lambda: differences(sim, db, mailboxes, "graph") + traffic.lost(),
            60,
            "convergence over Graph after the switch",
        )
        requests = set(sim.admin.stats()["requests"])
        assert requests and all(op.startswith("GRAPH") for op in requests), requests
        assert daemon.stop() == 0
    finally:
        daemon.close()
    assert not [e for e in daemon.events if e.get("event") in ("internal_error", "sync_failed")]
