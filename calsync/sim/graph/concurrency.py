"""Outlook's concurrency limit on Graph: at most 4 requests of one app in flight against one
mailbox; a request beyond it is answered ``429 ApplicationThrottled`` ("Application is over its
MailboxConcurrency limit.") with ``Retry-After``.

A ``$batch`` counts as min(n, 4) requests for each mailbox it holds n requests for (Outlook runs
up to 4 of a batch's requests in parallel); its requests for a mailbox over the limit are each
answered 429 inside the batch. The simulator answers one request at a time, so requests overlap
only while they wait (the ``latency_ms`` fault): with it, the limit is observable.

The simulator serves one app per tenant, so "app" is the tenant here.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from calsync.sim.graph.handlers import match

if TYPE_CHECKING:
    from calsync.sim.stats import Stats

LIMIT = 4


class MailboxConcurrency:
    """In-flight counts per (app, mailbox); the highest per mailbox and the 429s sent go to
    ``stats`` (``graph_concurrency`` in ``/_sim/stats``)."""

    def __init__(self, stats: Stats, limit: int = LIMIT) -> None:
        self.stats = stats
        self.limit = limit
        self._in_flight: Counter[tuple[str, str]] = Counter()

    @staticmethod
    def loads(method: str, path: str, body: Any) -> Counter[str]:
        """How many concurrent requests this HTTP request is, per mailbox (lower case)."""
        out: Counter[str] = Counter()
        if path == "/$batch" and method == "POST":
            subs = body.get("requests") if isinstance(body, dict) else None
            for sub in subs if isinstance(subs, list) else []:
                url = "/" + str(sub.get("url", "")).split("?", 1)[0].lstrip("/")
                found = match(str(sub.get("method", "GET")).upper(), url)
                if found is not None:
                    out[found[1][0].lower()] += 1
            return Counter({mailbox: min(n, LIMIT) for mailbox, n in out.items()})
        found = match(method, path)
        if found is not None:
            out[found[1][0].lower()] = 1
        return out

    def admit(self, app: str, loads: Counter[str]) -> tuple[Counter[str], set[str]]:
        """(the loads now in flight, the mailboxes refused for being over the limit)."""
        admitted: Counter[str] = Counter()
        refused: set[str] = set()
        for mailbox, load in loads.items():
            key = (app, mailbox)
            if self._in_flight[key] + load > self.limit:
                refused.add(mailbox)
                self.stats.graph_concurrency_rejected += 1
                continue
            self._in_flight[key] += load
            admitted[mailbox] = load
            peak = self.stats.graph_max_in_flight
            peak[mailbox] = max(peak[mailbox], self._in_flight[key])
        return admitted, refused

    def release(self, app: str, admitted: Counter[str]) -> None:
        for mailbox, load in admitted.items():
            key = (app, mailbox)
            self._in_flight[key] -= load
            if self._in_flight[key] <= 0:
                del self._in_flight[key]
