"""The body of a mailbox's scheduler job: gate, run, decide when next, record.

``MailboxRunner(address)`` is what ``MailboxJobs`` calls on a worker thread. It

1. looks the mailbox up in the current configuration (None = it was removed: drop the job);
2. asks the tenant gate: a throttled tenant defers the run to the end of its back-off, a paused
   tenant (credentials refused) to its next probe; a deferred job is not a run, so it logs no
   canonical line, but the mailbox row shows ``paused`` with the reason. A mailbox of a Graph
   tenant also asks its request budget (``scheduler.budget``: 10,000 requests per 10 minutes per
   app and mailbox, each request of a ``$batch`` counted): one that spent it waits until budget
   frees (``graph_budget_deferred``, logged once per deferral);
3. runs one sync through ``scheduler.worker.run_mailbox`` (exactly one ``sync_finished`` or
   ``sync_failed``) under the mailbox's store lock, with the daemon's stop flag checked between
   pages;
4. decides the next run with the pure policy, updates the tenant gate (throttle, pause, resume)
   and records the outcome and the next due time in the store (``calsync status`` reads them).
   Graph throttles per app and mailbox, so a 429 defers only that mailbox (by its
   ``Retry-After``), not the whole tenant as ``ErrorServerBusy`` does over EWS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from calsync.daemon.reload import Generation
from calsync.daemon.runtime import record_outcome
from calsync.errors import CalsyncError, StoreError
from calsync.model import Mailbox, SyncReport
from calsync.scheduler.budget import RequestBudget
from calsync.scheduler.policy import Decision, OutcomeKind, classify, next_due
from calsync.scheduler.tenants import Gate, TenantGates
from calsync.scheduler.worker import RunOutcome, run_mailbox
from calsync.store.api import MailboxStatus
from calsync.sync.engine import run_sync

log = structlog.get_logger("calsync.daemon")


class MailboxRunner:
    def __init__(
        self,
        current: Callable[[], Generation],
        gates: TenantGates,
        *,
        stop: threading.Event,
        random: Callable[[], float],
        clock: Callable[[], datetime],
        on_resume: Callable[[str], None],
        subscription_healthy: Callable[[str], bool] = lambda _address: False,
        budget: RequestBudget | None = None,
    ) -> None:
        self._current = current
        self._budget = budget or RequestBudget()
        self._over_budget: set[str] = set()  # deferred for budget (logged once per deferral)
        self._subscription_healthy = subscription_healthy
        self._gates = gates
        self._stop = stop
        self._random = random
        self._clock = clock
        self._on_resume = on_resume
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._marked_paused: set[str] = set()

    def seed(self, statuses: list[MailboxStatus]) -> None:
        with self._lock:
            self._failures.update({s.address: s.consecutive_failures for s in statuses})

    def __call__(self, address: str) -> datetime | None:
        generation = self._current()
        mailbox = generation.mailboxes.get(address)
        if mailbox is None:
            return None
        now = self._clock()
        gate = self._gates.check(mailbox.tenant, now) or self._budget_gate(generation, mailbox, now)
        if gate is not None:
            return self._defer(generation, mailbox, gate, now)
        graph = generation.runtime.graph_clients.get(mailbox.tenant)
        spent_before = graph.budget_count(address) if graph is not None else 0
        decided: list[Decision] = []

        def retry_in_s(outcome: RunOutcome) -> float:
            decided.append(self._decide(generation, outcome))
            return round(decided[-1].delay_s, 1)

        outcome = run_mailbox(
            mailbox,
            lambda mb: self._sync(generation, mb),
            requests=lambda: generation.runtime.exchange.request_count(mailbox),
            retry_in_s=retry_in_s,
        )
        if graph is not None:
            spent = graph.budget_count(address) - spent_before
            self._budget.record(address, self._clock(), spent)
        decision = decided[-1] if decided else self._decide(generation, outcome)
        self._after(generation, mailbox, outcome, decision)
        return decision.due

    def _budget_gate(self, generation: Generation, mailbox: Mailbox, now: datetime) -> Gate | None:
        """A Graph mailbox whose request budget is spent waits until it frees."""
        address = mailbox.address
        if mailbox.tenant not in generation.runtime.graph_clients:
            return None
        deferral = self._budget.check(address, now)
        with self._lock:
            first = deferral is not None and address not in self._over_budget
            if deferral is None:
                self._over_budget.discard(address)
            else:
                self._over_budget.add(address)
        if deferral is None:
            return None
        if first:
            log.warning(
                "graph_budget_deferred",
                mailbox=address,
                tenant=mailbox.tenant,
                used=deferral.used,
                limit=deferral.limit,
                window_s=self._budget.limit.window_s,
                until=deferral.until.isoformat(),
            )
        return Gate("budget", deferral.until)

    # --- one run --------------------------------------------------------------------------------

    def _sync(self, generation: Generation, mailbox: Mailbox) -> SyncReport:
        runtime = generation.runtime
        try:
            with runtime.store.mailbox_lock(mailbox.address):
                return run_sync(
                    mailbox,
                    runtime.exchange,
                    runtime.store,
                    clock=runtime.clock,
                    should_stop=self._stop.is_set,
                )
        except CalsyncError:
            raise
        except Exception as exc:  # a bug met by one mailbox: report it, keep the others going
            log.exception("sync_internal_error", error=f"{type(exc).__name__}: {exc}")
            raise CalsyncError(
                f"internal error: {type(exc).__name__}: {exc}",
                error_code="internal_error",
                hint="this is a bug in calsync; please report it with this log line",
            ) from exc

    def _decide(self, generation: Generation, outcome: RunOutcome) -> Decision:
        kind, retry_after = classify(outcome.error)
        with self._lock:
            failures = 0 if outcome.ok else self._failures.get(outcome.mailbox, 0) + 1
        return next_due(
            kind,
            now=self._clock(),
            consecutive_failures=failures,
            timing=generation.timing,
            random=self._random,
            retry_after=retry_after,
            subscription_healthy=self._subscription_healthy(outcome.mailbox),
        )

    def _after(
        self, generation: Generation, mailbox: Mailbox, outcome: RunOutcome, decision: Decision
    ) -> None:
        tenant, now = mailbox.tenant, self._clock()
        kind, retry_after = classify(outcome.error)
        with self._lock:
            if outcome.ok:
                self._failures[mailbox.address] = 0
                self._marked_paused.discard(mailbox.address)
            else:
                self._failures[mailbox.address] = self._failures.get(mailbox.address, 0) + 1
        if outcome.ok and tenant in self._gates.paused() and self._gates.resume(tenant):
            log.info("tenant_resumed", tenant=tenant, reason="a probe run succeeded")
            self._on_resume(tenant)
        elif kind is OutcomeKind.THROTTLED and tenant not in generation.runtime.graph_clients:
            back_off = retry_after if retry_after else generation.timing.base_backoff
            if self._gates.throttle(tenant, now + timedelta(seconds=back_off)):
                log.warning(
                    "tenant_throttled",
                    tenant=tenant,
                    mailbox=mailbox.address,
                    back_off_s=round(back_off, 1),
                    error_code=outcome.error_code,
                )
        elif kind is OutcomeKind.AUTH and outcome.error is not None:
            error = outcome.error
            if self._gates.pause(
                tenant, error_code=error.error_code, message=str(error), hint=error.hint, now=now
            ):
                log.error(
                    "tenant_paused",
                    tenant=tenant,
                    error_code=error.error_code,
                    error=str(error),
                    hint=error.hint,
                    retry_in_s=self._gates.auth_retry_s,
                )
            with self._lock:
                self._marked_paused.add(mailbox.address)
        try:
            record_outcome(generation.runtime, outcome)
            generation.runtime.store.set_next_due(mailbox.address, decision.due)
        except StoreError as exc:
            log.error("store_error", error=str(exc), mailbox=mailbox.address)

    # --- not now --------------------------------------------------------------------------------

    def _defer(
        self, generation: Generation, mailbox: Mailbox, gate: Gate, now: datetime
    ) -> datetime:
        """Move the job past the gate, spread out so the tenant's mailboxes do not all return at
        the same instant."""
        window = max(1.0, (gate.until - now).total_seconds())
        if gate.reason == "budget":  # that mailbox alone: no crowd to spread
            window = 1.0
        if gate.reason == "paused":
            window = max(1.0, float(generation.timing.poll_jitter))
        due = gate.until + timedelta(seconds=self._random() * window)
        store = generation.runtime.store
        try:
            pause = gate.pause
            with self._lock:
                mark = pause is not None and mailbox.address not in self._marked_paused
                if mark:
                    self._marked_paused.add(mailbox.address)
            if mark and pause is not None:
                store.record_run_failure(
                    mailbox.address,
                    now,
                    pause.error_code,
                    f"tenant {mailbox.tenant} paused: {pause.message}",
                    paused=True,
                )
            store.set_next_due(mailbox.address, due)
        except StoreError as exc:
            log.error("store_error", error=str(exc), mailbox=mailbox.address)
        log.debug(
            "sync_deferred",
            mailbox=mailbox.address,
            tenant=mailbox.tenant,
            reason=gate.reason,
            due=due.isoformat(),
        )
        return due
