"""Outlook's limit of 4 concurrent requests per app and mailbox, over the wire.

The simulator answers a fifth request in flight with ``429 ApplicationThrottled``
(MailboxConcurrency), a ``$batch`` counting as up to 4; its ``latency_ms`` fault keeps requests
in flight long enough to overlap. calsync's clients of one app share a per-mailbox gate, so a
burst from several clients and threads (plain requests and batches, as a sync run, ``check`` and
webhook renewals would send them) reaches the limit and never goes over it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from graph_stack import GraphStack

from calsync.errors import CalsyncError, ThrottledError
from calsync.graph import GraphClient
from calsync.graph.client import SubRequest
from calsync.graph.gate import MailboxGates


def burst(clients: list[GraphClient], address: str) -> list[CalsyncError]:
    """6 plain GETs and 2 batches of 10 GETs for one mailbox, all started at once from 8
    threads over ``clients``; the errors they met."""
    listing = clients[0].user_url(address, "/calendar/events?$top=1&$select=id")
    calls: list[Callable[[GraphClient], Any]] = [
        lambda c: c.call(address, "GET", listing) for _ in range(6)
    ]
    calls += [lambda c: c.batch(address, [SubRequest("GET", listing)] * 10) for _ in range(2)]
    start = threading.Barrier(len(calls))
    errors: list[CalsyncError] = []

    def one(n: int) -> None:
        start.wait(timeout=10)
        try:
            calls[n](clients[n % len(clients)])
        except CalsyncError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return errors


def concurrency(stack: GraphStack, address: str) -> tuple[int, int]:
    stats = stack.sim.admin.stats()["graph_concurrency"]
    return stats["max_in_flight"].get(address.lower(), 0), stats["rejected"]


def test_calsync_clients_of_one_app_stay_at_four_requests_per_mailbox(stack: GraphStack) -> None:
    address = stack.mailbox(1).address
    other = GraphClient(stack.client.settings, stack.provider)  # e.g. `check`'s own client
    try:
        assert other.gates is stack.client.gates
        stack.sim.admin.set_faults(latency_ms=150)
        stack.sim.admin.reset_stats()
        assert burst([stack.client, other], address) == []
        peak, rejected = concurrency(stack, address)
        assert (peak, rejected) == (4, 0)
        assert stack.client.gates.in_use(address) == 0
        # a batch of 10 counts 10 against the request budget, as Outlook counts it
        assert stack.client.budget_count(address) + other.budget_count(address) == 6 + 2 * 10
    finally:
        other.close()


def test_the_simulator_refuses_a_fifth_request_in_flight(stack: GraphStack) -> None:
    address = stack.mailbox(2).address
    stack.client.gates = MailboxGates(limit=50)  # this client alone, without the shared gate
    stack.sim.admin.set_faults(latency_ms=150)
    stack.sim.admin.reset_stats()
    errors = burst([stack.client], address)
    assert errors and all(isinstance(e, ThrottledError) for e in errors)
    assert {e.error_code for e in errors} == {"ApplicationThrottled"}
    assert {e.retry_after for e in errors} == {1.0}  # type: ignore[attr-defined]
    peak, rejected = concurrency(stack, address)
    assert peak == 4 and rejected == len(errors)
