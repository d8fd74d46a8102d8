"""Streaming notifications over EWS: the ``StreamingBackend`` of a tenant, and the source.

``StreamingNotificationSource(clients, on_change, settings)`` is the ``ports.NotificationSource``
the daemon runs: ``calsync.subscriptions.SubscriptionSupervisor`` (grouping, threads, retries,
debouncing) over one ``EwsStreamingBackend`` per tenant's ``EwsClient``.

The backend speaks for a group (``calsync.ews.affinity``): Subscribe impersonates the member and
carries the anchor's affinity; GetStreamingEvents and Unsubscribe impersonate the anchor. Every
request goes through ``EwsClient.call`` (per-mailbox back-off, error classification, a refused
token renewed once). Streams use a private session pool of ``max_connections + 1`` sessions.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from exchangelib.properties import StatusEvent

from calsync.errors import CalsyncError
from calsync.ews.affinity import (
    GroupGetStreamingEvents,
    GroupSubscribe,
    GroupUnsubscribe,
    streaming_protocol,
)
from calsync.ews.calendar import calendar_folder
from calsync.ews.client import EwsClient
from calsync.subscriptions import (
    LOST_CODES,
    SubscriptionLost,
    SubscriptionSupervisor,
    SupervisorSettings,
)

# what a calendar sync must hear about (not NewMail or FreeBusyChanged)
EVENT_TYPES = ("CreatedEvent", "DeletedEvent", "ModifiedEvent", "MovedEvent", "CopiedEvent")
_BAD_IDS = re.compile(r"subscription IDs: \[([^\]]*)\]")


def lost_subscription_ids(message: str) -> list[str]:
    """The ids exchangelib appends to a GetStreamingEvents error (empty: not said)."""
    found = _BAD_IDS.search(message)
    return re.findall(r"'([^']+)'", found.group(1)) if found else []


class EwsEventStream:
    """One GetStreamingEvents request of a group (``subscriptions.EventStream``)."""

    def __init__(
        self, backend: EwsStreamingBackend, anchor: str, ids: Sequence[str], minutes: int
    ) -> None:
        self._backend = backend
        self._anchor = anchor
        self._ids = list(ids)
        self._minutes = minutes
        self._lock = threading.Lock()
        self._service: GroupGetStreamingEvents | None = None
        self._closed = False

    def run(self, on_status: Callable[[], None], on_events: Callable[[str], None]) -> None:
        backend = self._backend
        cookie = backend.cookie(self._anchor)

        def consume(account: Any) -> None:
            service = GroupGetStreamingEvents(account=account)
            service.with_group(self._anchor, cookie)
            service.protocol = backend.protocol
            service.connect_timeout_s = backend.connect_timeout_s
            service.on_document = on_status
            with self._lock:
                self._service = service
                if self._closed:
                    service.abort()
            for notification in service.call(
                subscription_ids=self._ids, connection_timeout=self._minutes
            ):
                if isinstance(notification, Exception):
                    raise notification
                if any(not isinstance(e, StatusEvent) for e in notification.events or ()):
                    on_events(str(notification.subscription_id))

        try:
            backend.client.call(self._anchor, consume, retry_throttled=False)
        except CalsyncError as error:
            if error.error_code in LOST_CODES:
                with self._lock:
                    named = list(self._service.error_subscription_ids) if self._service else []
                raise SubscriptionLost(
                    str(error),
                    subscription_ids=named or lost_subscription_ids(str(error)),
                    error_code=error.error_code,
                ) from None
            raise

    def close(self) -> None:
        with self._lock:
            self._closed = True
            service = self._service
        if service is not None:
            service.abort()


class EwsStreamingBackend:
    """``subscriptions.StreamingBackend`` for one tenant."""

    def __init__(
        self, client: EwsClient, *, max_connections: int = 50, connect_timeout_s: float = 10.0
    ) -> None:
        self.client = client
        self.protocol = streaming_protocol(client, max_connections + 1)
        self.connect_timeout_s = connect_timeout_s
        self._cookies: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def tenant(self) -> str:
        return self.client.tenant

    def cookie(self, anchor: str) -> str | None:
        """The X-BackEndOverrideCookie of the group anchored on ``anchor``."""
        with self._lock:
            return self._cookies.get(anchor.lower())

    def subscribe(self, address: str, anchor: str) -> str:
        address, anchor = address.lower(), anchor.lower()
        is_anchor = address == anchor
        cookie = None if is_anchor else self.cookie(anchor)

        def subscribe(account: Any) -> tuple[str, str | None]:
            service = GroupSubscribe(account=account)
            service.with_group(anchor, cookie)
            sub_id = service.get(folders=[calendar_folder(account)], event_types=EVENT_TYPES)
            return str(sub_id), service.returned_cookie

        sub_id, returned = self.client.call(address, subscribe)
        if is_anchor:
            with self._lock:
                if returned:
                    self._cookies[anchor] = returned
                else:
                    self._cookies.pop(anchor, None)
        return sub_id

    def open_stream(self, anchor: str, subscription_ids: Sequence[str], minutes: int) -> Any:
        return EwsEventStream(self, anchor.lower(), subscription_ids, minutes)

    def unsubscribe(self, anchor: str, subscription_id: str) -> None:
        anchor = anchor.lower()
        cookie = self.cookie(anchor)

        def unsubscribe(account: Any) -> None:
            service = GroupUnsubscribe(account=account)
            service.with_group(anchor, cookie)
            service.get(subscription_id=subscription_id)

        self.client.call(anchor, unsubscribe, retry_throttled=False)

    def forget(self, anchor: str) -> None:
        with self._lock:
            self._cookies.pop(anchor.lower(), None)

    def close(self) -> None:
        """Close the streaming sessions (the ``EwsClient`` belongs to the caller)."""
        self.protocol.close()


class StreamingNotificationSource(SubscriptionSupervisor):
    """Streaming notifications for the mailboxes of these tenants (see ``SubscriptionSupervisor``
    for the thread model, ``on_change`` reasons, ``healthy`` and ``counts``)."""

    def __init__(
        self,
        clients: Mapping[str, EwsClient] | Iterable[EwsClient],
        on_change: Callable[[str, str], None],
        settings: SupervisorSettings | None = None,
        **kwargs: Any,
    ) -> None:
        settings = settings or SupervisorSettings()
        super().__init__(self._backends_for(clients, {}, settings), on_change, settings, **kwargs)

    def set_clients(self, clients: Mapping[str, EwsClient] | Iterable[EwsClient]) -> None:
        """After a reload: tenants whose ``EwsClient`` object changed (new credentials), was
        added or was removed get their groups rebuilt; the other tenants keep theirs."""
        with self.lock:
            current = {t: b for t, b in self.backends.items() if isinstance(b, EwsStreamingBackend)}
        self.set_backends(self._backends_for(clients, current, self.settings))

    @staticmethod
    def _backends_for(
        clients: Mapping[str, EwsClient] | Iterable[EwsClient],
        current: Mapping[str, EwsStreamingBackend],
        settings: SupervisorSettings,
    ) -> dict[str, EwsStreamingBackend]:
        values = clients.values() if isinstance(clients, Mapping) else clients
        backends: dict[str, EwsStreamingBackend] = {}
        for client in values:
            known = current.get(client.tenant)
            if known is not None and known.client is client:
                backends[client.tenant] = known
            else:
                backends[client.tenant] = EwsStreamingBackend(
                    client, max_connections=settings.max_connections
                )
        return backends
