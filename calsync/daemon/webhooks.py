"""``WebhookManager``: one Graph change-notification subscription per Graph mailbox.

It runs on its own thread and owns the subscriptions: it creates one per mailbox of an
``api = "graph"`` tenant (Graph validates the receiver first, so the receiver listens before
``start``), renews each before it expires (``PATCH``; a 404 means Graph forgot it: a new one plus
a catch-up sync), answers lifecycle notifications (``reauthorizationRequired`` → renew,
``subscriptionRemoved`` → new subscription + catch-up, ``missed`` → catch-up), maps each change
notification to its mailbox by subscription id and hands it to a ``Debouncer`` whose
``on_change(address, reason)`` makes the mailbox due (the same path as EWS streaming). A mailbox
without a live subscription is simply polled (delta) at ``poll_interval``; ``healthy()`` tells
the scheduler which mailboxes may wait ``healthy_poll_interval`` instead. ``stop()`` deletes the
subscriptions (bounded), so the caller stops the receiver only afterwards.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from calsync.errors import (
    AccessDenied,
    CalsyncError,
    MailboxNotFound,
    TransientError,
    Unlicensed,
)
from calsync.graph import GraphClient
from calsync.graph.webhook import Notification
from calsync.graph.webhook_subscriptions import (
    create_subscription,
    delete_subscription,
    list_subscriptions,
    renew_subscription,
)
from calsync.model import Mailbox
from calsync.subscriptions import Debouncer
from calsync.subscriptions.debounce import OnChange

log = structlog.get_logger("calsync.webhooks")

VALIDATION_HINT = (
    "Graph must reach [webhooks] public_url (reverse proxy, firewall, a publicly trusted TLS "
    "certificate) and the listener must answer its validation request; the mailbox is polled"
)


@dataclass(frozen=True, slots=True)
class WebhookTiming:
    lifetime_s: float = 10000 * 60.0  # asked for; Graph's answer decides
    renew_before_s: float = 3600.0  # renew this long before expiry (a third of short lifetimes)
    retry_failed_s: float = 600.0  # next attempt after a subscription could not be created
    retry_renew_s: float = 60.0
    stop_grace_s: float = 5.0  # time to delete the subscriptions when stopping
    debounce_ms: int = 250


@dataclass
class _Sub:
    id: str
    tenant: str
    expires: datetime
    renew_at: datetime


class WebhookManager:
    def __init__(
        self,
        clients: Mapping[str, GraphClient],
        on_change: OnChange,
        *,
        notification_url: str,
        client_state: str,
        timing: WebhookTiming | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.timing = timing or WebhookTiming()
        self.notification_url = notification_url
        self._client_state = client_state
        self._clients = dict(clients)
        self._clock = clock
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._subs: dict[str, _Sub] = {}
        self._by_id: dict[str, str] = {}
        self._failed: dict[str, datetime] = {}  # address -> next attempt
        self._hold_until: dict[str, datetime] = {}  # tenant -> no attempts before (URL refused)
        self._wanted: dict[str, Mailbox] = {}
        self._debouncer = Debouncer(on_change, self.timing.debounce_ms / 1000)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.changed = threading.Condition()  # notified after each step (tests wait on it)

    # --- called from other threads --------------------------------------------------------------

    def start(self, mailboxes: Sequence[Mailbox]) -> None:
        self._wanted = {m.address: m for m in mailboxes if m.tenant in self._clients}
        self._debouncer.start()
        self._thread = threading.Thread(target=self._run, name="calsync-webhooks", daemon=True)
        self._thread.start()

    def deliver(self, notes: list[Notification]) -> None:
        """The receiver's sink: queue and return at once (the receiver answers 202)."""
        self._queue.put(("notes", notes))

    def update(self, clients: Mapping[str, GraphClient], mailboxes: Sequence[Mailbox]) -> None:
        """A reload: subscribe new Graph mailboxes, delete the subscriptions of removed ones."""
        self._queue.put(("update", (dict(clients), list(mailboxes))))

    def healthy(self, address: str) -> bool:
        with self._lock:
            sub = self._subs.get(address)
            return sub is not None and sub.expires > self._clock()

    def subscription_ids(self) -> dict[str, str]:
        with self._lock:
            return {address: sub.id for address, sub in self._subs.items()}

    def counts(self) -> dict[str, int]:
        with self._lock:
            now = self._clock()
            live = sum(1 for s in self._subs.values() if s.expires > now)
            return {"subscribed": live, "polled": len(self._wanted) - live}

    def wait_for(self, condition: Callable[[WebhookManager], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: condition(self), timeout)

    def stop(self) -> int:
        """Stop the thread, then delete every subscription (within ``stop_grace_s``); returns
        how many were deleted."""
        self._stopping.set()
        self._queue.put(("stop", None))
        thread = self._thread
        if thread is not None:
            thread.join(self.timing.stop_grace_s)
        deadline = self._clock() + timedelta(seconds=self.timing.stop_grace_s)
        with self._lock:
            subs = dict(self._subs)
            self._subs.clear()
            self._by_id.clear()
        deleted = 0
        for address, sub in sorted(subs.items()):
            if self._clock() >= deadline:
                break
            if self._delete(address, sub):
                deleted += 1
        self._debouncer.stop()
        log.info("webhook_stopped", deleted=deleted, left=len(subs) - deleted)
        return deleted

    # --- the manager's thread -------------------------------------------------------------------

    def _run(self) -> None:
        for tenant, client in sorted(self._clients.items()):
            self._sweep(tenant, client)
        while True:
            try:
                kind, payload = self._queue.get(timeout=self._next_wake())
            except queue.Empty:
                kind, payload = "tick", None
            if kind == "stop":
                return
            try:
                if kind == "notes":
                    for note in payload:
                        self._on_note(note)
                elif kind == "update":
                    self._apply(*payload)
                self._due()
            except Exception as exc:  # a bug here must not end notifications: polling covers
                log.exception("webhook_internal_error", error=f"{type(exc).__name__}: {exc}")
            with self.changed:
                self.changed.notify_all()

    def _sweep(self, tenant: str, client: GraphClient) -> None:
        """Delete the subscriptions an earlier process left behind for our URL (it stopped
        without deleting them): they would go on notifying, with a client state we may no
        longer know, until they expire."""
        try:
            ours = [s for s in list_subscriptions(client) if isinstance(s.get("id"), str)]
            stale = [s["id"] for s in ours if s.get("notificationUrl") == self.notification_url]
            deleted = sum(1 for sub_id in stale if delete_subscription(client, "", sub_id))
        except CalsyncError as exc:
            log.debug("webhook_unsubscribe_failed", tenant=tenant, error_code=exc.error_code)
            return
        if stale:
            log.info("webhook_stale_deleted", tenant=tenant, deleted=deleted)

    def _next_wake(self) -> float:
        now = self._clock()
        with self._lock:
            times = [s.renew_at for s in self._subs.values()]
            times += [s.expires for s in self._subs.values()]
            for address, mailbox in self._wanted.items():
                if address not in self._subs:
                    times.append(self._attempt_at(address, mailbox.tenant, now))
        if not times:
            return 60.0
        return min(60.0, max(0.0, (min(times) - now).total_seconds()))

    def _attempt_at(self, address: str, tenant: str, now: datetime) -> datetime:
        return max(self._failed.get(address, now), self._hold_until.get(tenant, now))

    def _due(self) -> None:
        now = self._clock()
        with self._lock:
            subs = list(self._subs.items())
            missing = [m for a, m in self._wanted.items() if a not in self._subs]
        for address, sub in subs:
            if self._stopping.is_set():
                return
            if sub.expires <= now:
                self._lost(address, sub, "expired")
            elif sub.renew_at <= now:
                self._renew(address, sub)
        for mailbox in missing:
            if self._stopping.is_set():
                return
            if self._attempt_at(mailbox.address, mailbox.tenant, now) <= self._clock():
                self._subscribe(mailbox, reason="subscribed")

    def _apply(self, clients: dict[str, GraphClient], mailboxes: list[Mailbox]) -> None:
        old_clients = self._clients
        self._clients = clients
        wanted = {m.address: m for m in mailboxes if m.tenant in clients}
        with self._lock:
            gone = {a: s for a, s in self._subs.items() if a not in wanted or
                    wanted[a].tenant != s.tenant}  # fmt: skip
            self._wanted = wanted
            for address in gone:
                self._forget(address)
        for address, sub in gone.items():
            client = old_clients.get(sub.tenant)
            if client is not None:
                self._delete(address, sub, client)
        self._failed = {a: t for a, t in self._failed.items() if a in wanted}

    def _forget(self, address: str) -> _Sub | None:
        """Drop a subscription from the maps (with the lock held)."""
        sub = self._subs.pop(address, None)
        if sub is not None:
            self._by_id.pop(sub.id, None)
        return sub

    def _renew_at(self, now: datetime, expires: datetime) -> datetime:
        margin = min(self.timing.renew_before_s, (expires - now).total_seconds() / 3)
        return expires - timedelta(seconds=max(0.0, margin))

    def _subscribe(self, mailbox: Mailbox, *, reason: str | None) -> bool:
        address, tenant = mailbox.address, mailbox.tenant
        client = self._clients.get(tenant)
        if client is None:
            return False
        now = self._clock()
        try:
            sub = create_subscription(
                client,
                address,
                notification_url=self.notification_url,
                client_state=self._client_state,
                expires=now + timedelta(seconds=self.timing.lifetime_s),
            )
        except CalsyncError as exc:
            retry = self.timing.retry_failed_s
            if isinstance(exc, TransientError) and exc.retry_after is not None:
                retry = min(retry, max(1.0, exc.retry_after))  # throttled: as Graph asks
            self._failed[address] = now + timedelta(seconds=retry)
            if not isinstance(exc, AccessDenied | MailboxNotFound | Unlicensed):
                self._hold_until[tenant] = now + timedelta(seconds=retry)  # not this mailbox's
            log.warning(
                "webhook_subscription_failed",
                mailbox=address,
                tenant=tenant,
                error_code=exc.error_code,
                error=str(exc),
                hint=exc.hint or VALIDATION_HINT,
                retry_in_s=retry,
            )
            return False
        with self._lock:
            renew_at = self._renew_at(now, sub.expires)
            self._subs[address] = _Sub(sub.id, tenant, sub.expires, renew_at)
            self._by_id[sub.id] = address
        self._failed.pop(address, None)
        self._hold_until.pop(tenant, None)
        log.info(
            "webhook_subscribed",
            mailbox=address,
            tenant=tenant,
            subscription_id=sub.id,
            expires=sub.expires.isoformat(),
        )
        if reason is not None:  # changes made before it existed: catch up from the delta token
            self._debouncer.notify(address, reason)
        return True

    def _renew(self, address: str, sub: _Sub) -> None:
        client = self._clients.get(sub.tenant)
        if client is None:
            return
        now = self._clock()
        try:
            renewed = renew_subscription(
                client, address, sub.id, now + timedelta(seconds=self.timing.lifetime_s)
            )
        except CalsyncError as exc:
            left = (sub.expires - now).total_seconds()
            retry = max(0.5, min(self.timing.retry_renew_s, left / 2))
            sub.renew_at = now + timedelta(seconds=retry)
            log.warning(
                "webhook_renewal_failed",
                mailbox=address,
                tenant=sub.tenant,
                error_code=exc.error_code,
                error=str(exc),
                retry_in_s=round(retry, 1),
            )
            return
        if renewed is None:
            self._lost(address, sub, "not found at renewal")
            return
        with self._lock:
            sub.expires = renewed.expires
            sub.renew_at = self._renew_at(now, renewed.expires)
        log.debug("webhook_subscription_renewed", mailbox=address, expires=sub.expires.isoformat())

    def _lost(self, address: str, sub: _Sub, reason: str) -> None:
        """Graph no longer serves this subscription: a new one, and a catch-up sync."""
        with self._lock:
            if self._subs.get(address) is not sub:
                return
            self._forget(address)
            mailbox = self._wanted.get(address)
        log.warning("webhook_subscription_lost", mailbox=address, tenant=sub.tenant, reason=reason)
        if mailbox is None or self._stopping.is_set():
            return
        if not self._subscribe(mailbox, reason="resubscribed"):
            self._debouncer.notify(address, "resubscribed")  # polled, but catch up now

    def _on_note(self, note: Notification) -> None:
        with self._lock:
            address = self._by_id.get(note.subscription_id)
            sub = self._subs.get(address) if address is not None else None
        if address is None or sub is None:
            log.debug("webhook_unknown_subscription", subscription_id=note.subscription_id)
            return
        event = note.lifecycle_event
        if event is None:
            log.debug(
                "webhook_notification", mailbox=address, tenant=sub.tenant,
                change_type=note.change_type,
            )  # fmt: skip
            self._debouncer.notify(address, "notification")
            return
        log.info("webhook_lifecycle", mailbox=address, tenant=sub.tenant, lifecycle_event=event)
        if event == "reauthorizationRequired":
            self._renew(address, sub)
        elif event == "subscriptionRemoved":
            self._lost(address, sub, event)
        else:  # "missed" (and any future event): the delta round catches up
            self._debouncer.notify(address, "missed")

    def _delete(self, address: str, sub: _Sub, client: GraphClient | None = None) -> bool:
        client = client or self._clients.get(sub.tenant)
        if client is None:
            return False
        try:
            delete_subscription(client, address, sub.id)
        except CalsyncError as exc:
            log.debug("webhook_unsubscribe_failed", mailbox=address, error_code=exc.error_code)
            return False
        return True
