"""SIGKILL the daemon (`calsync run`) at seeded random moments, during the initial sync and during
two-way traffic, over EWS and over Graph; after the last restart both sides are equal field by
field, with no duplicate and no lost edit.

A kill moment is a number of log lines (the daemon logs at debug level, so lines mark progress
all through a run: pages, writes, commits) drawn from a seeded generator; a kill that finds the
daemon idle still counts, since a daemon is killed at any moment in real life.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from calsync.sim import SimHandle, start_in_thread
from faults.harness import Daemon, differences, sql, wait_for_nothing, write_config
from faults.traffic import Traffic

SEED = 20261122
# (kills while the initial sync runs, kills during two-way traffic) per api
KILLS = {"ews": (8, 12), "graph": (3, 5)}
MAILBOXES = 3
RUN_ENDS = {"sync_finished", "sync_failed"}


@pytest.fixture(params=["ews", "graph"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sim(tmp_path: Path, api: str) -> Iterator[SimHandle]:
    seed = 31 if api == "ews" else 32
    with start_in_thread(
        tmp_path / "sim", mailboxes=MAILBOXES, events_per_mailbox=60, seed=seed
    ) as handle:
        yield handle


def kill_at_random_line(config: Path, rng: random.Random, low: int, high: int,
                        traffic: Traffic | None = None, n: int = 0) -> int:  # fmt: skip
    """Start the daemon, optionally edit both sides once it runs, kill -9 it after a seeded
    number of log lines. Returns the number of mailbox runs the kill cut short."""
    daemon = Daemon(config, config.with_name("daemon.log"))
    try:
        target = rng.randrange(low, high)
        if traffic is not None:
            daemon.wait_event("daemon_started", 30)
            traffic.round(n)
        daemon.wait_lines(target, timeout=3)
        assert daemon.popen.poll() is None, "\n".join(daemon.text[-20:])
        assert daemon.kill9() == -9
    finally:
        daemon.close()
    started = {e.get("run_id") for e in daemon.events if e.get("event") == "sync_started"}
    ended = {e.get("run_id") for e in daemon.events if e.get("event") in RUN_ENDS}
    return len(started - ended)


def test_sigkill_the_daemon_at_random_moments_loses_nothing(
    sim: SimHandle, api: str, tmp_path: Path
) -> None:
    mailboxes = list(sim.info["tenants"][0]["mailboxes"])
    config = write_config(sim, tmp_path, api=api, level="debug")
    db = tmp_path / "calsync.db"
    rng = random.Random(f"{SEED}-{api}")
    initial, traffic_kills = KILLS[api]
    cut_short = 0
    # 1. the initial sync, killed again and again (early lines: token, first pages, commits)
    for _ in range(initial):
        cut_short += kill_at_random_line(config, rng, 30, 160)
    # 2. two-way traffic: Outlook edits through the admin API, application edits in SQL, while
    #    the daemon runs, and a kill at a random line after them
    traffic = Traffic(sim, db, rng, {m: set() for m in mailboxes}, {m: set() for m in mailboxes})
    for n in range(traffic_kills):
        cut_short += kill_at_random_line(config, rng, 10, 150, traffic, n)
    # most kills land inside mailbox runs (a kill of an idle daemon is fine too, but rarer)
    assert cut_short >= (initial + traffic_kills) // 2, cut_short
    # 3. the last restart converges: both sides equal field by field, nothing lost or doubled
    daemon = Daemon(config, config.with_name("daemon.log"))
    try:
        daemon.wait_event("daemon_started", 30)
        traffic.round(traffic_kills)  # and it still syncs new edits after all those kills
        try:
            wait_for_nothing(
                lambda: differences(sim, db, mailboxes, api) + traffic.lost(),
                60 if api == "ews" else 30,
                "both sides equal after the last restart",
            )
        except AssertionError as exc:
            failures = [
                e for e in daemon.events if e.get("level") in ("error", "warning", "critical")
            ]
            raise AssertionError(f"{exc}\ndaemon errors: {failures[-10:]}") from None
        assert daemon.stop() == 0
    finally:
        daemon.close()
    assert differences(sim, db, mailboxes, api) == []
    assert traffic.lost() == []
    assert sql(db, "PRAGMA integrity_check") == [("ok",)]
