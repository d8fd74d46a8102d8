"""Request counters of the simulator (GET /_sim/stats)."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any


class Stats:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.by_mailbox: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.tokens_issued = 0
        self.invitations_sent = 0
        self.max_subscriptions_on_one_connection = 0
        self.headers: Counter[str] = Counter()
        # Graph's per-mailbox concurrency (graph/concurrency.py): highest seen, 429s sent
        self.graph_max_in_flight: Counter[str] = Counter()
        self.graph_concurrency_rejected = 0
        self._cpu_base = 0.0  # thread CPU time counts from the loop thread's start

    def count(self, op: str, mailbox: str | None) -> None:
        self.requests[op] += 1
        if mailbox:
            self.by_mailbox[mailbox.lower()][op] += 1

    def reset(self) -> None:
        self.requests.clear()
        self.by_mailbox.clear()
        self.tokens_issued = 0
        self.invitations_sent = 0
        self.max_subscriptions_on_one_connection = 0
        self.headers.clear()
        self.graph_max_in_flight.clear()
        self.graph_concurrency_rejected = 0
        self._cpu_base = time.thread_time()

    def to_json(self, open_connections: int, subscriptions: int) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "by_mailbox": {m: dict(c) for m, c in self.by_mailbox.items()},
            "streaming": {
                "open_connections": open_connections,
                "max_subscriptions_on_one_connection": self.max_subscriptions_on_one_connection,
                "subscriptions": subscriptions,
            },
            "tokens_issued": self.tokens_issued,
            "invitations_sent": self.invitations_sent,
            # header hygiene of requests that read or write one mailbox (DESIGN "Headers on the
            # wire"): missing_anchor, anchor_mismatch, affinity_cookie (a Cookie header with
            # X-BackEndOverrideCookie on an item operation)
            "headers": {
                k: self.headers[k] for k in ("missing_anchor", "anchor_mismatch", "affinity_cookie")
            },
            "graph_concurrency": {
                "max_in_flight": dict(self.graph_max_in_flight),
                "rejected": self.graph_concurrency_rejected,
            },
            # CPU seconds of the simulator's event-loop thread since start or reset (read on the
            # loop thread): how busy the simulator was, to compare with a client's cost
            "cpu_s": round(time.thread_time() - self._cpu_base, 3),
        }
