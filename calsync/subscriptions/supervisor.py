"""``SubscriptionSupervisor``: the ``ports.NotificationSource`` behind streaming notifications.

It owns the groups of every tenant (``packing.plan_groups``), one ``GroupWorker`` thread per
group, a debouncer thread that calls ``on_change`` and a timer thread that retries mailboxes whose
subscription failed. Thread model: ``update_mailboxes``/``healthy``/``counts`` may be called from
any thread; ``on_change(address, reason)`` runs on the debouncer thread only and must be quick
and thread-safe (the daemon's ``make_due_now``). Reasons: ``notification`` (Exchange reported a
change), ``subscribed``/``resubscribed`` (a new subscription: catch up from the stored sync
state), ``subscription_down`` (the group's connection has been down for a while, or the mailbox
lost its subscription and is polled again).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from calsync.errors import CalsyncError
from calsync.model import Mailbox
from calsync.subscriptions.backend import StreamingBackend, SubscriptionCounts
from calsync.subscriptions.debounce import Debouncer, OnChange
from calsync.subscriptions.packing import plan_groups
from calsync.subscriptions.worker import GroupWorker, WorkerTiming

log = structlog.get_logger("calsync.subscriptions")


class SubscriptionValues(Protocol):
    """The ``[subscriptions]`` keys used here (``config.models.SubscriptionSettings``)."""

    @property
    def max_subscriptions_per_connection(self) -> int: ...

    @property
    def max_connections(self) -> int: ...

    @property
    def connection_timeout(self) -> int: ...


@dataclass(frozen=True, slots=True)
class SupervisorSettings:
    """``[subscriptions]`` and ``[daemon] notification_debounce_ms``, plus internal timings."""

    max_subscriptions_per_connection: int = 200
    max_connections: int = 50
    connection_timeout: int = 1800  # seconds, a multiple of 60 (ConnectionTimeout in minutes)
    notification_debounce_ms: int = 250
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 300.0
    retry_failed_s: float = 600.0  # first retry of a mailbox that could not be subscribed
    retry_failed_max_s: float = 3600.0
    down_grace_s: float = 60.0
    stop_grace_s: float = 5.0  # time to unsubscribe when stopping

    @classmethod
    def from_config(
        cls, subscriptions: SubscriptionValues, notification_debounce_ms: int = 250
    ) -> SupervisorSettings:
        return cls(
            max_subscriptions_per_connection=subscriptions.max_subscriptions_per_connection,
            max_connections=subscriptions.max_connections,
            connection_timeout=subscriptions.connection_timeout,
            notification_debounce_ms=notification_debounce_ms,
        )

    def timing(self) -> WorkerTiming:
        return WorkerTiming(
            minutes=max(1, min(30, self.connection_timeout // 60)),
            reconnect_initial_s=self.reconnect_initial_s,
            reconnect_max_s=self.reconnect_max_s,
            down_grace_s=self.down_grace_s,
        )


class SubscriptionSupervisor:
    def __init__(
        self,
        backends: Mapping[str, StreamingBackend],
        on_change: OnChange,
        settings: SupervisorSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings or SupervisorSettings()
        self.backends = dict(backends)
        self.lock = threading.RLock()
        self.clock = clock
        self.rng = rng
        self.stopping = False
        self.stop_deadline: float | None = None
        self._cond = threading.Condition(self.lock)
        self._debouncer = Debouncer(on_change, self.settings.notification_debounce_ms / 1000)
        self._wanted: dict[str, list[str]] = {}
        self._groups: dict[str, list[GroupWorker]] = {t: [] for t in self.backends}
        self._retired: list[GroupWorker] = []
        self._failed: dict[str, float] = {}  # address -> retry time
        self._attempts: dict[str, int] = {}
        self._tenant_of: dict[str, str] = {}
        self._over: dict[str, tuple[str, ...]] = {}
        self._ever: set[str] = set()
        self._numbers = 0
        self._started = False
        self._timer: threading.Thread | None = None
        self._mailboxes: list[Mailbox] = []
        self._old_backends: list[StreamingBackend] = []

    # --- ports.NotificationSource ---------------------------------------------------------------

    def start(self) -> None:
        with self.lock:
            if self._started:
                return
            self._started, self.stopping = True, False
            workers = [w for ws in self._groups.values() for w in ws]
            self._timer = threading.Thread(target=self._retry_loop, name="calsync-sub-retry")
            self._timer.daemon = True
        self._debouncer.start()
        self._timer.start()
        for worker in workers:
            worker.start()

    def stop(self) -> None:
        """Close every connection, unsubscribe (within ``stop_grace_s``), stop the threads."""
        with self.lock:
            if self.stopping or not self._started:
                return
            self.stopping = True
            self.stop_deadline = self.clock() + self.settings.stop_grace_s
            workers = [w for ws in self._groups.values() for w in ws] + self._retired
            self._cond.notify_all()
        for worker in workers:
            worker.poke()
        for worker in workers:
            worker.join(self.stop_deadline - self.clock() + 2.0)
        if self._timer is not None:
            self._timer.join(2.0)
        self._debouncer.stop()
        for backend in [*self.backends.values(), *self._old_backends]:
            backend.close()

    def update_mailboxes(self, mailboxes: Sequence[Mailbox]) -> None:
        """The mailboxes to watch (enabled ones; those that do not read Exchange are ignored)."""
        mailboxes = list(mailboxes)
        wanted: dict[str, list[str]] = {tenant: [] for tenant in self.backends}
        for mailbox in mailboxes:
            if mailbox.direction.reads_exchange and mailbox.tenant in wanted:
                wanted[mailbox.tenant].append(mailbox.address.lower())
        with self.lock:
            self._mailboxes = mailboxes
            self._wanted = wanted
            self._tenant_of = {a: t for t, addresses in wanted.items() for a in addresses}
            for address in [a for a in self._failed if a not in self._tenant_of]:
                del self._failed[address]
            for tenant in self.backends:
                self._replan(tenant)

    def set_backends(self, backends: Mapping[str, StreamingBackend]) -> None:
        """Tenants added or removed, or with a new backend (a reload gave the tenant new
        credentials): their groups are rebuilt (new subscriptions, catch-up syncs); the groups
        of the other tenants are untouched."""
        with self.lock:
            for tenant in set(self.backends) | set(backends):
                old, new = self.backends.get(tenant), backends.get(tenant)
                if old is new:
                    continue
                for worker in self._groups.pop(tenant, []):
                    worker.retired = True
                    self._retired.append(worker)
                    worker.poke()
                self._over.pop(tenant, None)
                if old is not None:
                    self._old_backends.append(old)
                    del self.backends[tenant]
                if new is not None:
                    self.backends[tenant] = new
                    self._groups[tenant] = []
            mailboxes = self._mailboxes
        self.update_mailboxes(mailboxes)

    # --- questions ------------------------------------------------------------------------------

    def healthy(self, address: str) -> bool:
        """True while the mailbox has a subscription on an open connection (poll it rarely)."""
        address = address.lower()
        with self.lock:
            tenant = self._tenant_of.get(address)
            workers = self._groups.get(tenant, []) if tenant else []
            return any(address in w.healthy_members() for w in workers)

    def counts(self) -> SubscriptionCounts:
        with self.lock:
            workers = [w for ws in self._groups.values() for w in ws]
            healthy = sum(len(w.healthy_members()) for w in workers)
            return SubscriptionCounts(
                groups=len(workers),
                connections=sum(1 for w in workers if w.connected),
                subscribed=healthy,
                polled=len(self._tenant_of) - healthy,
                failed=len(self._failed),
                over_capacity=sum(len(v) for v in self._over.values()),
            )

    def wait_for(self, predicate: Callable[[SubscriptionCounts], bool], timeout: float) -> bool:
        """Wait until ``predicate(counts())`` holds (start-up, tests); False after ``timeout``."""
        deadline = self.clock() + timeout
        with self._cond:
            while not predicate(self.counts()):
                left = deadline - self.clock()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    # --- Host (called by the workers) -----------------------------------------------------------

    def notify(self, address: str, reason: str) -> None:
        self._debouncer.notify(address, reason)

    def subscribed(self, address: str) -> str:
        with self.lock:
            self._attempts.pop(address, None)
            reason = "resubscribed" if address in self._ever else "subscribed"
            self._ever.add(address)
            self._cond.notify_all()
        return reason

    def member_failed(self, worker: GroupWorker, address: str, error: CalsyncError) -> None:
        with self.lock:
            attempts = self._attempts.get(address, 0) + 1
            self._attempts[address] = attempts
            s = self.settings
            delay = min(s.retry_failed_max_s, s.retry_failed_s * 2 ** min(attempts - 1, 20))
            self._failed[address] = self.clock() + delay
            had_one = address in self._ever
            self._replan(worker.tenant)
            self._cond.notify_all()
        log.warning(
            "subscription_failed", mailbox=address, tenant=worker.tenant,
            error_code=error.error_code, error=str(error), hint=error.hint, retry_in_s=delay,
        )  # fmt: skip
        if had_one:  # it was healthy: its long safety-net interval no longer holds
            self.notify(address, "subscription_down")

    def state_changed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # --- planning -------------------------------------------------------------------------------

    def _replan(self, tenant: str) -> None:
        """Regroup one tenant (under the lock; no I/O: workers do the work on their threads)."""
        s = self.settings
        workers = self._groups[tenant]
        if self.stopping:
            return
        wanted = [a for a in self._wanted.get(tenant, []) if a not in self._failed]
        plan = plan_groups(
            [w.desired for w in workers], wanted, s.max_subscriptions_per_connection,
            s.max_connections,
        )  # fmt: skip
        kept: list[GroupWorker] = []
        for index, members in enumerate(plan.groups):
            if index < len(workers):
                worker = workers[index]
                if not members:
                    worker.retired = True
                    self._retired.append(worker)
                    worker.poke()
                    continue
                if members != worker.desired:
                    worker.desired = members
                    worker.poke()
            else:
                self._numbers += 1
                worker = GroupWorker(self, self.backends[tenant], self._numbers, s.timing())
                worker.desired = members
                if self._started:
                    worker.start()
            kept.append(worker)
        self._groups[tenant] = kept
        self._retired = [w for w in self._retired if w.subs or w.connected]
        if plan.polled and not self._over.get(tenant):
            log.warning(
                "subscription_capacity_exceeded", tenant=tenant, polled=len(plan.polled),
                capacity=s.max_connections * s.max_subscriptions_per_connection,
            )  # fmt: skip
        self._over[tenant] = plan.polled
        self._cond.notify_all()

    def _retry_loop(self) -> None:
        with self._cond:
            while not self.stopping:
                now = self.clock()
                due = [a for a, when in self._failed.items() if when <= now]
                for address in due:
                    del self._failed[address]
                for tenant in {self._tenant_of[a] for a in due if a in self._tenant_of}:
                    self._replan(tenant)
                wait = min(self._failed.values(), default=now + 60.0) - now
                self._cond.wait(max(0.05, wait))
