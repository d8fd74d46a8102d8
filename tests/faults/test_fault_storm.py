"""Every simulator fault at once against the running daemon, over EWS and over Graph; when the
faults stop, the daemon (still the same process) converges: both sides equal field by field.

At once: 10 % HTTP errors (EWS: 503 / ErrorInternalServerError; Graph: 503 with Retry-After),
5 % connection resets, ErrorServerBusy bursts (Graph: 429 with Retry-After), 50 ms latency on
every request, dropped streaming connections (EWS) and an Entra ID token outage (tokens live 6 s,
so renewals fall into it). Edits are made on both sides while the faults hold.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from calsync.sim import SimHandle, start_in_thread
from faults.harness import Daemon, differences, wait_for_nothing, write_config
from faults.traffic import Traffic

FAILURES = {"sync_failed", "ews_throttled", "tenant_throttled", "auth_failed", "subscription_lost",
            "subscription_failed", "sync_deferred"}  # fmt: skip


@pytest.fixture(params=["ews", "graph"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimHandle]:
    with start_in_thread(
        tmp_path / "sim", mailboxes=4, events_per_mailbox=25, seed=41, token_lifetime=6
    ) as handle:
        yield handle


def storm(api: str, rng: random.Random) -> dict[str, object]:
    faults: dict[str, object] = {
        "error_rate": 0.10,
        "reset_rate": 0.05,
        "latency_ms": 50,
        "server_busy_backoff_ms": 1000,
        "seed": rng.randrange(1 << 30),
    }
    if api == "ews":
        faults["drop_streams"] = True
    return faults


def test_the_daemon_rides_out_every_fault_at_once_and_converges(
    sim: SimHandle, api: str, tmp_path: Path
) -> None:
    mailboxes = list(sim.info["tenants"][0]["mailboxes"])
    config = write_config(sim, tmp_path, api=api)
    db = tmp_path / "calsync.db"
    rng = random.Random(f"storm-{api}")
    traffic = Traffic(sim, db, rng, {m: set() for m in mailboxes}, {m: set() for m in mailboxes})
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        daemon.wait(
            lambda: {e["mailbox"] for e in daemon.since(0, "sync_finished")} >= set(mailboxes),
            60,
            "the initial sync of every mailbox",
        )
        mark = daemon.mark()
        sim.admin.set_faults(**storm(api, rng))
        # round 0: 5xx, resets, latency (and dropped streams); round 1: an ErrorServerBusy (Graph:
        # 429) burst on every request and the token outage; round 2: back to the rates alone
        phases = [{}, {"server_busy_rate": 1.0, "token_outage": True},
                  {"server_busy_rate": 0.05, "token_outage": False}]  # fmt: skip
        for n, phase in enumerate(phases):
            if phase:
                sim.admin.set_faults(**phase)
            traffic.round(n)
            start = daemon.mark()
            wanted = {"auth_failed"} if phase.get("token_outage") else FAILURES
            daemon.wait(
                lambda start=start, wanted=wanted: [
                    e for e in daemon.since(start) if e.get("event") in wanted
                ],
                60,
                f"the daemon to meet the faults of round {n} ({wanted})",
            )
        assert daemon.popen.poll() is None, "the daemon died under the faults"
        seen = {e["event"] for e in daemon.since(mark) if e.get("event") in FAILURES}
        codes = {e.get("error_code") for e in daemon.since(mark) if e.get("event") in FAILURES}
        sim.admin.clear_faults()
        traffic.round(3)  # edits after the storm flow too
        wait_for_nothing(
            lambda: differences(sim, db, mailboxes, api) + traffic.lost(),
            30 if api == "graph" else 45,
            f"convergence after the faults stopped (the daemon saw {seen}, codes {codes})",
        )
        assert daemon.popen.poll() is None
        assert daemon.stop() == 0
    finally:
        daemon.close()
    assert not [e for e in daemon.events if e.get("event") == "internal_error"]
    assert "sync_failed" in seen and "auth_failed" in seen, seen
    assert len(codes - {None}) >= 3, codes  # several kinds of faults were met, not one
