"""Request counters of the simulator (GET /_sim/stats)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any


class Stats:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.by_mailbox: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.tokens_issued = 0
        self.invitations_sent = 0
        self.max_subscriptions_on_one_connection = 0

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
        }
