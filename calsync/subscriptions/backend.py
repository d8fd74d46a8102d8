"""What the subscription supervisor needs of Exchange (implemented by ``calsync.ews``).

The supervisor never sees exchangelib: it asks a ``StreamingBackend`` (one per tenant) to
subscribe a mailbox within a group, to hold a group's streaming connection open, and to
unsubscribe. Errors are calsync errors; a subscription the server no longer knows comes out as
``SubscriptionLost`` so that the supervisor replaces it (a new subscription plus a catch-up sync,
never the old watermark).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from calsync.errors import CalsyncError

# response codes that mean "this subscription is gone": create a new one
LOST_CODES = frozenset(
    {
        "ErrorSubscriptionNotFound",
        "ErrorInvalidSubscription",
        "ErrorExpiredSubscription",
        "ErrorMissedNotificationEvents",
        "ErrorSubscriptionUnsubsribed",  # sic: the EWS schema's spelling
        "ErrorSubscriptionUnsubscribed",
        "ErrorProxiedSubscriptionCallFailure",
    }
)


class SubscriptionLost(CalsyncError):
    """The server refused some subscriptions of a stream (all of them when ``subscription_ids``
    is empty); the connection is closed."""

    default_code = "ErrorSubscriptionNotFound"

    def __init__(
        self, message: str, *, subscription_ids: Sequence[str] = (), error_code: str | None = None
    ):
        super().__init__(message, error_code=error_code)
        self.subscription_ids = tuple(subscription_ids)


class EventStream(Protocol):
    """One open GetStreamingEvents request of a group."""

    def run(self, on_status: Callable[[], None], on_events: Callable[[str], None]) -> None:
        """Read the connection until the server closes it (returns) or it fails (raises).

        ``on_status`` is called for every document the server sends without an error (the first
        one means "connected"; heartbeats follow), ``on_events(subscription_id)`` for each
        subscription that reported changes. Raises ``SubscriptionLost`` or another
        ``CalsyncError``; after ``close()`` it returns or raises promptly.
        """
        ...

    def close(self) -> None:
        """Abort the connection now (thread-safe; may be called before ``run``)."""
        ...


class StreamingBackend(Protocol):
    """One tenant's streaming notifications."""

    @property
    def tenant(self) -> str: ...

    def subscribe(self, address: str, anchor: str) -> str:
        """A new streaming subscription on ``address``'s calendar, with the affinity of the group
        anchored on ``anchor`` (subscribe the anchor first); returns the subscription id."""
        ...

    def open_stream(
        self, anchor: str, subscription_ids: Sequence[str], minutes: int
    ) -> EventStream:
        """A streaming connection for these subscriptions, open for at most ``minutes``."""
        ...

    def unsubscribe(self, anchor: str, subscription_id: str) -> None: ...

    def forget(self, anchor: str) -> None:
        """Drop what is kept for the group anchored on ``anchor`` (its affinity)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SubscriptionCounts:
    """For ``daemon_heartbeat``: groups planned, connections open, mailboxes with a healthy
    subscription, mailboxes polled without one (failed, over capacity or disconnected)."""

    groups: int = 0
    connections: int = 0
    subscribed: int = 0
    polled: int = 0
    failed: int = 0
    over_capacity: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "groups": self.groups,
            "connections": self.connections,
            "subscribed": self.subscribed,
            "polled": self.polled,
            "failed": self.failed,
            "over_capacity": self.over_capacity,
        }
