"""One sync run of one mailbox: Exchange's changes first, page by page, then local changes.

Each Exchange page is planned with the links and rows of its items, its Exchange writes are made,
and its local writes, links and sync state are committed in one store transaction: a crash
resumes from the last committed page. Local changes are then planned together (the mass-delete
guard sees all of them) and pushed in batches, each batch committing its links together with the
acknowledgement of the local changes it handled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import structlog

from calsync.errors import SyncStateInvalid
from calsync.model import (
    BadItem,
    ExchangeChange,
    Mailbox,
    SideCounts,
    SyncReport,
)
from calsync.ports import Clock, ExchangeSide, Store
from calsync.sync.execute import Executor, Step, Tally
from calsync.sync.plan import plan
from calsync.sync.rules import PlanPolicy, derived_calsync_id

log = structlog.get_logger("calsync.sync")

PUSH_BATCH = 100


def _never() -> bool:
    return False


def run_sync(
    mailbox: Mailbox,
    exchange: ExchangeSide,
    store: Store,
    *,
    clock: Clock,
    dry_run: bool = False,
    allow_mass_delete: bool = False,
    should_stop: Callable[[], bool] = _never,
) -> SyncReport:
    """Sync ``mailbox`` once in its direction; with ``dry_run`` plan and count, change nothing.

    Raises ``MassDeleteGuard`` (nothing of the offending step is written), ``TransientError``,
    ``AuthError``, ``MailboxError`` and ``StoreError`` subclasses; per-item failures are
    reported in ``SyncReport.bad_items`` (outcome ``partial``) instead.
    """
    run = _Run(mailbox, exchange, store, clock)
    run.dry_run, run.allow_mass_delete, run.should_stop = dry_run, allow_mass_delete, should_stop
    run.executor.dry_run = dry_run
    try:
        return run.go()
    except BaseException:
        # the side's memory of its own writes (echoes it skips) may now hold writes whose links
        # were never committed, or whose answer was lost: the next run must read them back (a
        # create is then linked by its calsync id instead of being pushed twice)
        exchange.forget_echoes(mailbox)
        raise


class _Run:
    def __init__(
        self,
        mailbox: Mailbox,
        exchange: ExchangeSide,
        store: Store,
        clock: Clock,
    ) -> None:
        self.mailbox = mailbox
        self.address = mailbox.address
        self.exchange = exchange
        self.store = store
        self.now = clock.now()
        self.dry_run = False
        self.allow_mass_delete = False
        self.should_stop: Callable[[], bool] = _never
        self.tally = Tally()
        self.executor = Executor(mailbox, exchange, store, self.tally, dry_run=False)
        self.requests_before = exchange.request_count(mailbox)
        self.size = store.count_events(self.address)
        self.pending = store.local_changes(self.address)
        self.full_resync = False
        self.planned: set[str] = set()  # local changes already planned with an Exchange page
        self._log = log.bind(mailbox=self.address)

    def go(self) -> SyncReport:
        stopped = self._exchange_phase()
        if not stopped:
            self._local_phase()
            if self.tally.exchange["create"] and not self.dry_run:
                # read our own creates back now: an item created here and deleted in Outlook
                # before the next run may never be reported by a sync state older than both
                self._pages(self.store.get_sync_state(self.address))
        t = self.tally
        return SyncReport(
            mailbox=self.address,
            tenant=self.mailbox.tenant,
            direction=self.mailbox.direction,
            exchange=SideCounts(**t.exchange),
            local=SideCounts(**t.local),
            conflicts=t.conflicts,
            skipped=t.skipped,
            requests=self.exchange.request_count(self.mailbox) - self.requests_before,
            bad_items=tuple(t.bad_items),
            full_resync=self.full_resync,
        )

    def _policy(self) -> PlanPolicy:
        return PlanPolicy.for_mailbox(
            self.mailbox,
            now=self.now,
            mailbox_size=self.size,
            allow_mass_delete=self.allow_mass_delete,
            prior_deletes=self.tally.deletes,
        )

    # --- Exchange's changes ----------------------------------------------------------------

    def _exchange_phase(self) -> bool:
        state = self.store.get_sync_state(self.address)
        try:
            return self._pages(state)
        except SyncStateInvalid as exc:
            if state is None:
                raise
            self._log.warning("full_resync", error_code=exc.error_code)
            self.full_resync = True
            if not self.dry_run:
                with self.store.transaction() as tx:
                    tx.set_sync_state(self.address, None)
            return self._pages(None)

    def _pages(self, state: str | None) -> bool:
        """Apply every page; True when stopped early (``should_stop``).

        A full listing over existing links (a resync, a switch of API) commits its sync state
        only with its last page: the links it has not seen by then were deleted in Exchange,
        and a listing cut short by a crash or a stop must start again from the beginning, or
        the next run would resume mid-way and never look for them.
        """
        seen: set[str] = set()
        hold_state = state is None and bool(self.store.all_links(self.address))
        for page in self.exchange.fetch_changes(self.mailbox, state):
            changes = list(page.changes)
            for bad in page.bad_items:
                self._bad_item(bad)
            seen.update(c.item_id for c in changes)
            seen.update(b.item for b in page.bad_items)
            if state is None and page.last_page:
                changes += self._vanished(seen)
            keep = page.sync_state if page.last_page or not hold_state else None
            self._apply_page(changes, keep)
            if not page.last_page and self.should_stop():
                self._log.info("sync_stopped", reason="shutdown")
                return True
        return False

    def _vanished(self, seen: set[str]) -> list[ExchangeChange]:
        """After a full listing: linked items Exchange no longer has were deleted."""
        links = self.store.all_links(self.address).values()
        return [
            ExchangeChange(link.item_id, None)
            for link in links
            if link.item_id is not None and link.item_id not in seen
        ]

    def _apply_page(self, changes: Sequence[ExchangeChange], sync_state: str | None) -> None:
        by_item = self.store.links_by_item_id(self.address, [c.item_id for c in changes])
        ids = {link.calsync_id for link in by_item.values()}
        for change in changes:
            if change.item_id in by_item:
                continue
            if change.item is not None and change.item.calsync_id:
                ids.add(change.item.calsync_id)
            ids.add(derived_calsync_id(self.address, change.item_id))
        wanted = sorted(ids)
        links = self.store.links_by_calsync_id(self.address, wanted)
        links.update({link.calsync_id: link for link in by_item.values()})
        rows = self.store.get_events(self.address, wanted)
        pending = [c for c in self.pending.changes if c.calsync_id in ids]
        self.planned.update(c.calsync_id for c in pending)
        step = Step(plan(changes, pending, links, rows, self._policy()), links, rows, pending)
        self.executor.run(step, self._policy(), sync_state=sync_state)

    # --- local changes -----------------------------------------------------------------------

    def _local_phase(self) -> None:
        changes = self.pending.changes
        if self.dry_run:  # nothing was written, so the links would plan these a second time
            changes = tuple(c for c in changes if c.calsync_id not in self.planned)
        if not changes:
            return
        ids = [c.calsync_id for c in changes]
        links = self.store.links_by_calsync_id(self.address, ids)
        rows = self.store.get_events(self.address, ids)
        full = plan([], changes, links, rows, self._policy())
        batches = [changes[i : i + PUSH_BATCH] for i in range(0, len(changes), PUSH_BATCH)]
        for number, batch in enumerate(batches, start=1):
            last = number == len(batches)
            ack = self.pending.cursor if last else max(c.revision for c in batch)
            step = Step(full.for_ids(frozenset(c.calsync_id for c in batch)), links, rows, batch)
            self.executor.run(step, self._batch_policy(), ack=ack)
            if not last and self.should_stop():
                self._log.info("sync_stopped", reason="shutdown")
                return

    def _batch_policy(self) -> PlanPolicy:
        # the guard already judged every local change together; a re-plan of one item after
        # a conflict must not refuse what it allowed
        return replace(self._policy(), allow_mass_delete=True)

    def _bad_item(self, bad: BadItem) -> None:
        self.tally.bad_items.append(bad)
        self.tally.skipped += 1
        self._log.warning("item_skipped", item_id=bad.item, reason="unreadable",
                          error_code=bad.error_code)  # fmt: skip
