"""The daemon's mailbox job respects Graph's request budget (10,000 requests per 10 minutes per app
and mailbox; here a budget of 40 so one initial sync spends most of it): a mailbox that spent it
is deferred to when its requests age out, logged once, and its siblings run on. A Graph 429
defers that mailbox only, not its tenant."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from calsync.config import load_config
from calsync.daemon.mailbox_run import MailboxRunner
from calsync.daemon.reload import Generation
from calsync.daemon.runtime import build_runtime
from calsync.scheduler.budget import BudgetLimit, RequestBudget
from calsync.scheduler.tenants import TenantGates
from calsync.sim import SimHandle
from integration.apis import use_api


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def daemon(sim: SimHandle) -> Iterator[tuple[MailboxRunner, Clock, TenantGates, Generation]]:
    config = use_api(Path(sim.info["ca_file"]).parent / "calsync.toml", "graph")
    loaded = load_config(config)
    runtime = build_runtime(loaded)
    clock, gates = Clock(), TenantGates()
    generation = Generation.first(loaded, runtime)
    runner = MailboxRunner(
        lambda: generation,
        gates,
        stop=threading.Event(),
        random=lambda: 0.0,
        clock=clock,
        on_resume=lambda _tenant: None,
        budget=RequestBudget(BudgetLimit(requests=40, window_s=600)),
    )
    try:
        yield runner, clock, gates, generation
    finally:
        runtime.close()


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


def test_a_mailbox_that_spent_its_budget_waits_until_it_frees(
    sim: SimHandle, daemon: tuple[MailboxRunner, Clock, TenantGates, Generation]
) -> None:
    runner, clock, _gates, generation = daemon
    first, second = sim.info["tenants"][0]["mailboxes"][:2]
    client = generation.runtime.graph_clients["contoso"]
    with capture_logs() as logs:
        runner(first)  # the initial sync: 30 events read in batches, counted one by one
        assert 30 < client.budget_count(first) < 40
        started = clock.now
        idle_runs = 0
        while True:  # idle delta rounds, one request each, until the budget is spent
            clock.now += timedelta(seconds=1)
            before = client.budget_count(first)
            due = runner(first)
            if client.budget_count(first) == before:
                break
            idle_runs += 1
            assert idle_runs < 10
        assert client.budget_count(first) == 40
        assert due is not None and due >= started + timedelta(seconds=600)  # the first run ages out
        clock.now += timedelta(seconds=1)
        assert runner(first) == due  # still deferred, not one request more
        assert client.budget_count(first) == 40
        runner(second)  # another mailbox has its own budget
        assert client.budget_count(second) > 30
        clock.now = started + timedelta(seconds=601)
        runner(first)  # budget freed: runs (an idle delta round)
    deferred = events(logs, "graph_budget_deferred")
    assert len(deferred) == 1  # once per deferral, not per attempt
    assert (deferred[0]["mailbox"], deferred[0]["used"], deferred[0]["limit"]) == (first, 40, 40)
    assert len(events(logs, "sync_finished")) == 1 + idle_runs + 2  # no run while deferred
    assert client.budget_count(first) == 41


def test_a_graph_429_defers_the_mailbox_not_its_tenant(
    sim: SimHandle, daemon: tuple[MailboxRunner, Clock, TenantGates, Generation]
) -> None:
    runner, clock, gates, _generation = daemon
    mailbox = sim.info["tenants"][0]["mailboxes"][2]
    sim.admin.set_faults(server_busy_rate=1.0, server_busy_backoff_ms=30_000)
    with capture_logs() as logs:
        due = runner(mailbox)
    sim.admin.clear_faults()
    assert due is not None and due >= clock.now + timedelta(seconds=30)  # its Retry-After
    assert gates.check("contoso", clock.now) is None
    assert not events(logs, "tenant_throttled")
    assert events(logs, "sync_failed")[0]["error_code"] == "ApplicationThrottled"
