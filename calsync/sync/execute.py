"""Carrying out a plan: Exchange writes first, then every local write in one store transaction.

An Exchange write planned from a stale ChangeKey (``ConflictError``) or aimed at an item that is
gone re-reads that item and decides again, once. An item the server rejects (``ItemError``) is
recorded and skipped, its row flagged ``error``. Anything else (transient, auth, store) ends the
run: nothing of the current step is committed, and the next run replays it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from calsync.errors import ConflictError, ItemError
from calsync.model import (
    BadItem,
    ExchangeChange,
    Link,
    LocalChange,
    LocalEvent,
    Mailbox,
    SyncStatus,
)
from calsync.ports import ExchangeSide, Store, StoreTransaction
from calsync.sync.actions import (
    Action,
    Conflict,
    ExchangeCreate,
    ExchangeDelete,
    ExchangeUpdate,
    FetchExchange,
    LocalCreate,
    LocalDelete,
    LocalUpdate,
    MarkLocalOnly,
    Plan,
    Relink,
    Skip,
    Unlink,
    action_id,
)
from calsync.sync.plan import plan, synced_link
from calsync.sync.rules import PlanPolicy, data_hash, pushable_hash

log = structlog.get_logger("calsync.sync")

StoreOp = Callable[[StoreTransaction], None]
_KINDS: tuple[str, ...] = ("create", "update", "delete")


@dataclass
class Tally:
    """What a run did so far (committed local writes, executed Exchange writes)."""

    exchange: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_KINDS, 0))
    local: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_KINDS, 0))
    conflicts: int = 0
    skipped: int = 0
    bad_items: list[BadItem] = field(default_factory=list)
    actions: int = 0

    @property
    def deletes(self) -> int:
        return self.exchange["delete"] + self.local["delete"]


@dataclass(frozen=True, slots=True)
class Step:
    """One unit of work: the plan and what it was planned from."""

    plan: Plan
    links: Mapping[str, Link]
    rows: Mapping[str, LocalEvent]
    pending: Sequence[LocalChange]


@dataclass
class _Batch:
    """The step being executed and the store writes it collected so far."""

    step: Step
    policy: PlanPolicy
    ops: list[StoreOp] = field(default_factory=list)
    local: list[Action] = field(default_factory=list)


class Executor:
    def __init__(
        self,
        mailbox: Mailbox,
        exchange: ExchangeSide,
        store: Store,
        tally: Tally,
        *,
        dry_run: bool,
    ) -> None:
        self.mailbox = mailbox
        self.exchange = exchange
        self.store = store
        self.tally = tally
        self.dry_run = dry_run
        self._log = log.bind(mailbox=mailbox.address)

    def run(
        self,
        step: Step,
        policy: PlanPolicy,
        *,
        sync_state: str | None = None,
        ack: int | None = None,
    ) -> None:
        """Execute ``step`` and commit its local writes with ``sync_state`` and ``ack``."""
        batch = _Batch(step, policy)
        for action in step.plan:
            if isinstance(action, FetchExchange):
                self._log.info("local_edit_restored", calsync_id=action.calsync_id)
                self._replan(action.calsync_id, action.item_id, batch, retry=False)
            else:
                self._do(action, batch, retry=True)
        if self.dry_run:
            self._count_local(batch.local)
            return
        address = self.mailbox.address
        with self.store.transaction() as tx:
            for op in batch.ops:
                op(tx)
            if sync_state is not None:
                tx.set_sync_state(address, sync_state)
            if ack is not None:
                tx.ack_local(address, ack)
        self._count_local(batch.local)

    # --- one action -----------------------------------------------------------------------

    def _do(
        self,
        action: Action,
        batch: _Batch,
        *,
        retry: bool,
    ) -> None:
        self.tally.actions += 1
        address = self.mailbox.address
        if isinstance(action, Conflict):
            self.tally.conflicts += 1
            self._log.info(
                "conflict",
                calsync_id=action.calsync_id,
                item_id=action.item_id,
                policy=str(action.policy),
                winner=str(action.winner),
            )
        elif isinstance(action, Skip):
            self.tally.skipped += 1
            self._log.info(
                "item_skipped",
                calsync_id=action.calsync_id,
                item_id=action.item_id,
                reason=action.reason,
            )
        elif isinstance(action, ExchangeCreate | ExchangeUpdate | ExchangeDelete):
            self._exchange_write(action, batch, retry=retry)
        else:
            batch.local.append(action)
            batch.ops.append(_local_op(address, action))
            if isinstance(action, Relink):
                self._settle(action, batch)

    def _settle(self, action: Relink, batch: _Batch) -> None:
        """A relink that finds the row equal to the item (both sides made the same edit, or a
        push whose commit a crash lost) leaves nothing to push: the row is synced again."""
        cid, address = action.link.calsync_id, self.mailbox.address
        row = batch.step.rows.get(cid)
        if (
            row is not None
            and row.status is not SyncStatus.SYNCED
            and action.link.local_hash == data_hash(row.data)
        ):
            batch.ops.append(lambda tx: tx.set_event_status(address, cid, SyncStatus.SYNCED))

    def _exchange_write(
        self,
        action: ExchangeCreate | ExchangeUpdate | ExchangeDelete,
        batch: _Batch,
        *,
        retry: bool,
    ) -> None:
        cid = action.calsync_id
        kind = _kind(action)
        if self.dry_run:
            self.tally.exchange[kind] += 1
            return
        try:
            op = self._write(action)
        except (ConflictError, ItemError) as exc:
            gone = isinstance(exc, ItemError) and exc.error_code == "ErrorItemNotFound"
            if retry and (gone or isinstance(exc, ConflictError)):
                item_id = action.ref.item_id if not isinstance(action, ExchangeCreate) else None
                if item_id is not None:
                    self._log.info("write_conflict", calsync_id=cid, item_id=item_id)
                    self._replan(cid, item_id, batch, retry=False)
                    return
            self._bad(cid, exc.error_code, exc.message, batch)
            return
        self.tally.exchange[kind] += 1
        batch.ops.append(op)

    def _write(self, action: ExchangeCreate | ExchangeUpdate | ExchangeDelete) -> StoreOp:
        mailbox, address, cid = self.mailbox, self.mailbox.address, action.calsync_id
        if isinstance(action, ExchangeDelete):
            self.exchange.delete(mailbox, action.ref)
            return lambda tx: tx.delete_link(address, cid)
        digest = data_hash(action.data)
        if isinstance(action, ExchangeUpdate):
            ref = self.exchange.update(mailbox, action.ref, action.data)
        else:
            found = None
            if action.replaces is not None:  # an earlier attempt may have created it already
                found = self.exchange.find_by_calsync_id(mailbox, cid)
            if found is None:
                ref = self.exchange.create(mailbox, cid, action.data)
            elif pushable_hash(found.data) != pushable_hash(action.data):
                ref = self.exchange.update(mailbox, found.ref, action.data)
            else:
                ref = found.ref
        link = Link(cid, ref.item_id, ref.change_key, digest, digest)

        def commit(tx: StoreTransaction) -> None:
            tx.put_link(address, link)
            tx.set_event_status(address, cid, SyncStatus.SYNCED)

        return commit

    def _replan(
        self,
        cid: str,
        item_id: str,
        batch: _Batch,
        *,
        retry: bool,
    ) -> None:
        """Decide ``cid`` again with the item as Exchange holds it now."""
        current = self.exchange.get(self.mailbox, item_id)
        links = {cid: batch.step.links[cid]} if cid in batch.step.links else {}
        rows = {cid: batch.step.rows[cid]} if cid in batch.step.rows else {}
        pending = [c for c in batch.step.pending if c.calsync_id == cid]
        again = plan([ExchangeChange(item_id, current)], pending, links, rows, batch.policy)
        for action in again:
            if action_id(action) == cid and not isinstance(action, FetchExchange):
                self._do(action, batch, retry=retry)

    def _bad(self, cid: str, code: str, message: str, batch: _Batch) -> None:
        self.tally.bad_items.append(BadItem(cid, code, message))
        self.tally.skipped += 1
        self._log.warning("item_skipped", calsync_id=cid, reason="rejected", error_code=code)
        if cid in batch.step.rows:
            address = self.mailbox.address
            batch.ops.append(
                lambda tx: tx.set_event_status(address, cid, SyncStatus.ERROR, f"{code}: {message}")
            )

    def _count_local(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, LocalCreate | LocalUpdate | LocalDelete):
                self.tally.local[_kind(action)] += 1


def _kind(action: Action) -> str:
    if isinstance(action, ExchangeCreate | LocalCreate):
        return "create"
    if isinstance(action, ExchangeDelete | LocalDelete):
        return "delete"
    return "update"


def _local_op(address: str, action: Action) -> StoreOp:
    """The store writes of one local-side or bookkeeping action."""

    def op(tx: StoreTransaction) -> None:
        if isinstance(action, LocalCreate | LocalUpdate):
            tx.upsert_event(address, action.calsync_id, action.item.data)
            tx.put_link(address, synced_link(action.calsync_id, action.item))
        elif isinstance(action, LocalDelete):
            tx.delete_event(address, action.calsync_id)
            tx.delete_link(address, action.calsync_id)
        elif isinstance(action, Relink):
            tx.put_link(address, action.link)
        elif isinstance(action, Unlink):
            tx.delete_link(address, action.calsync_id)
        elif isinstance(action, MarkLocalOnly):
            tx.set_event_status(address, action.calsync_id, SyncStatus.LOCAL_ONLY)

    return op
