"""The sync decision as a pure function: changes of both sides + links + policy -> actions.

No I/O, no clock, no adapters. Per calsync id the decision compares the state of each side with
the link (the state both sides had at the last sync), like vdirsyncer's status table:

- Exchange changed: the item is reported and is new, deleted, or has a ChangeKey *and* content
  hash both different from the link (same ChangeKey or same content = an echo, not a change).
- Local changed: the row's content hash differs from the link's, or a linked row is gone.
- An Exchange side that was not reported is assumed to be as the link says.

``local_events`` must hold the current row of every calsync id involved (a missing key means
there is no row): the linked ids of the reported items, their stamped calsync ids, the derived
ids of unlinked items, and the ids of ``local_changes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from calsync.errors import MassDeleteGuard
from calsync.model import (
    ConflictPolicy,
    Direction,
    ExchangeChange,
    ExchangeItem,
    ItemRef,
    Link,
    LocalChange,
    LocalEvent,
    SyncStatus,
)
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
    Winner,
)
from calsync.sync.rules import PlanPolicy, data_hash, derived_calsync_id, in_window, pushable_hash


@dataclass(frozen=True, slots=True)
class _Case:
    """One calsync id with everything known about it."""

    cid: str
    link: Link | None
    ex_known: bool  # the Exchange side was reported (item or deletion)
    item: ExchangeItem | None
    row: LocalEvent | None
    policy: PlanPolicy
    deleted: bool = False  # an application deleted the row (a recorded local change)

    @property
    def linked(self) -> bool:
        return self.link is not None and self.link.item_id is not None

    @property
    def ex_changed(self) -> bool:
        if not self.ex_known:
            return False
        if self.item is None:
            return self.linked
        if not self.linked:
            return True
        assert self.link is not None
        if self.item.ref.item_id != self.link.item_id:
            return True  # a replacement item (re-created by calsync)
        return not (
            self.item.ref.change_key == self.link.change_key
            or data_hash(self.item.data) == self.link.exchange_hash
        )

    @property
    def local_changed(self) -> bool:
        if self.row is None:
            # only a recorded delete counts: a row the store could not read is not a deletion
            return self.deleted and self.link is not None and self.link.local_hash is not None
        return self.link is None or data_hash(self.row.data) != self.link.local_hash

    def link_ref(self) -> ItemRef:
        """The item as last seen: reported now, else as the link remembers it."""
        if self.item is not None:
            return self.item.ref
        assert self.link is not None
        assert self.link.item_id is not None
        return ItemRef(self.link.item_id, self.link.change_key or "")


def synced_link(cid: str, item: ExchangeItem) -> Link:
    """The link of an id whose row now holds exactly the item's content."""
    digest = data_hash(item.data)
    return Link(cid, item.ref.item_id, item.ref.change_key, digest, digest)


def plan(
    exchange_changes: Sequence[ExchangeChange],
    local_changes: Sequence[LocalChange],
    links: Mapping[str, Link],
    local_events: Mapping[str, LocalEvent],
    policy: PlanPolicy,
) -> Plan:
    """Decide what to do for every id touched by either side; raise ``MassDeleteGuard`` when
    the plan deletes more of the mailbox than the policy allows."""
    by_item = {link.item_id: link for link in links.values() if link.item_id is not None}
    latest: dict[str, ExchangeChange] = {c.item_id: c for c in exchange_changes}
    deleted_items = {item_id for item_id, c in latest.items() if c.is_delete}
    pending = {c.calsync_id: c for c in local_changes}
    actions: list[Action] = []
    done: set[str] = set()
    replaced = _replaced_items(latest.values(), by_item, links, deleted_items)
    for change in latest.values():
        if change.item_id in replaced:
            continue  # deleted, and already re-created by calsync: the new item stands for it
        cid, link, recovered = _identify(
            change,
            by_item=by_item,
            links=links,
            rows=local_events,
            pending=pending,
            deleted=deleted_items,
            policy=policy,
        )
        if cid in done:
            actions.append(Skip(cid, change.item_id, "duplicate_calsync_id"))
            continue
        done.add(cid)
        if recovered is not None:
            actions.append(Relink(recovered))
            link = recovered
            if cid not in local_events and change.item and policy.direction.writes_exchange:
                # pushed, then deleted by the application before the push was committed
                actions.append(ExchangeDelete(cid, change.item.ref))
                continue
        if link is None and change.is_delete:
            continue  # an item deleted before calsync ever linked it
        deleted = cid in pending and pending[cid].is_delete
        case = _Case(cid, link, True, change.item, local_events.get(cid), policy, deleted)
        actions.extend(decide(case))
    for cid, local in pending.items():
        if cid not in done:
            row = local_events.get(cid)
            case = _Case(cid, links.get(cid), False, None, row, policy, local.is_delete)
            actions.extend(decide(case))
    result = Plan(tuple(actions))
    _guard(result, policy)
    return result


def _replaced_items(
    changes: Iterable[ExchangeChange],
    by_item: Mapping[str, Link],
    links: Mapping[str, Link],
    deleted: set[str],
) -> set[str]:
    """Deleted linked items for which an item stamped with the same calsync id appeared
    (calsync re-created it, and crashed before committing the new link)."""
    replaced: set[str] = set()
    for change in changes:
        stamp = change.item.calsync_id if change.item is not None else None
        known = links.get(stamp) if stamp and change.item_id not in by_item else None
        if known is not None and known.item_id in deleted:
            replaced.add(known.item_id)
    return replaced


def _identify(
    change: ExchangeChange,
    *,
    by_item: Mapping[str, Link],
    links: Mapping[str, Link],
    rows: Mapping[str, LocalEvent],
    pending: Mapping[str, LocalChange],
    deleted: set[str],
    policy: PlanPolicy,
) -> tuple[str, Link | None, Link | None]:
    """(calsync id, link, crash-recovered link) of one reported item."""
    link = by_item.get(change.item_id)
    if link is not None:
        return link.calsync_id, link, None
    item = change.item
    stamp = item.calsync_id if item is not None else None
    if item is not None and stamp:
        known = links.get(stamp)
        if known is None or known.item_id is None:
            if stamp in rows or stamp in pending:
                # created by a push that crashed before its commit: link it, never duplicate.
                # What was pushed is unknown (the row may have changed since, and the item
                # too): both sides count as changed, equal contents make it a plain link.
                return stamp, None, Link(stamp, item.ref.item_id, None, None, None)
            return stamp, None, None
        if known.item_id in deleted:
            return stamp, known, None  # the re-created replacement of a deleted item
        # otherwise the linked item still exists: this one is a copy (Outlook copies the stamp)
    return derived_calsync_id(policy.mailbox, change.item_id), None, None


def decide(case: _Case) -> list[Action]:
    """The actions for one calsync id (public for the engine's re-plan after a conflict)."""
    if case.ex_known and case.item is None and not case.linked:
        case = replace(case, ex_known=False)
    skip = _outside_window(case)
    if skip is not None:
        return [skip]
    direction = case.policy.direction
    if direction is Direction.PULL:
        return _pull(case)
    if direction is Direction.PUSH:
        return _push(case)
    return _two_way(case)


def _outside_window(case: _Case) -> Skip | None:
    """Unlinked items outside the mailbox's window are neither imported nor pushed."""
    if case.linked:
        return None
    policy = case.policy
    lo, hi = policy.window_start, policy.window_end
    if case.item is not None and not in_window(case.item.data, lo, hi):
        return Skip(case.cid, case.item.ref.item_id, "outside_window")
    if case.item is None and case.row is not None and not in_window(case.row.data, lo, hi):
        return Skip(case.cid, None, "outside_window")
    return None


def _echo(case: _Case, *, restore: bool) -> list[Action]:
    """Neither side changed; refresh the link if the item's ChangeKey or content moved."""
    if case.item is None or case.link is None:
        return []
    digest = data_hash(case.item.data)
    link = case.link
    if (
        restore
        and case.row is not None
        and link.change_key == case.item.ref.change_key
        and digest != link.exchange_hash
        and data_hash(case.row.data) != digest
    ):
        # our own write, as Exchange stored it (Exchange-owned fields): show it locally
        return [LocalUpdate(case.cid, case.item)]
    fresh = Link(case.cid, case.item.ref.item_id, case.item.ref.change_key, digest, link.local_hash)
    return [] if fresh == link else [Relink(fresh)]


def _to_local(case: _Case, item: ExchangeItem) -> list[Action]:
    if case.row is None:
        return [LocalCreate(case.cid, item)]
    if data_hash(case.row.data) == data_hash(item.data):
        link = synced_link(case.cid, item)
        return [] if link == case.link else [Relink(link)]
    return [LocalUpdate(case.cid, item)]


def _pull(case: _Case) -> list[Action]:
    """Exchange is the truth; rows inserted locally stay local."""
    if case.ex_known and (case.ex_changed or case.local_changed):
        if case.item is None:
            return [LocalDelete(case.cid)] if case.row is not None else [Unlink(case.cid)]
        return _to_local(case, case.item)
    if not case.local_changed:
        return _echo(case, restore=True)
    if case.linked:
        assert case.link is not None
        assert case.link.item_id is not None
        return [FetchExchange(case.cid, case.link.item_id)]
    if case.row is None:
        return [Unlink(case.cid)] if case.link is not None else []
    return [] if case.row.status is SyncStatus.LOCAL_ONLY else [MarkLocalOnly(case.cid)]


def _push(case: _Case) -> list[Action]:
    """Local rows are the truth for the items they created or linked; others are left alone."""
    if case.item is not None and not case.linked and case.row is None:
        return []  # an Exchange item calsync does not own: never imported, never deleted
    if not case.ex_changed and not case.local_changed:
        return _echo(case, restore=False)
    row = case.row
    if row is None:
        if case.linked and not (case.ex_known and case.item is None):
            return [ExchangeDelete(case.cid, case.link_ref())]
        return [Unlink(case.cid)] if case.link is not None else []
    if not case.linked:
        return [ExchangeCreate(case.cid, row.data)]
    assert case.link is not None
    if case.ex_known and case.item is None:
        return [ExchangeCreate(case.cid, row.data, replaces=case.link.item_id)]
    if case.item is not None and pushable_hash(case.item.data) == pushable_hash(row.data):
        digest = data_hash(case.item.data)
        link = Link(
            case.cid,
            case.item.ref.item_id,
            case.item.ref.change_key,
            digest,
            data_hash(row.data),
        )
        return [] if link == case.link else [Relink(link)]
    return [ExchangeUpdate(case.cid, case.link_ref(), row.data)]


def _two_way(case: _Case) -> list[Action]:
    ex, loc, row, item = case.ex_changed, case.local_changed, case.row, case.item
    if not ex and not loc:
        return _echo(case, restore=True)
    if ex and not loc:
        if item is None:
            return [LocalDelete(case.cid)] if row is not None else [Unlink(case.cid)]
        return _to_local(case, item)
    if loc and not ex:
        if row is None:
            if case.linked:
                return [ExchangeDelete(case.cid, case.link_ref())]
            return [Unlink(case.cid)] if case.link is not None else []
        if case.linked:
            return [ExchangeUpdate(case.cid, case.link_ref(), row.data)]
        return [ExchangeCreate(case.cid, row.data)]
    # both sides changed
    if item is None and row is None:
        return [Unlink(case.cid)]
    if item is None:
        assert row is not None
        assert case.link is not None
        # modification beats deletion: the edited row comes back to Exchange
        return [ExchangeCreate(case.cid, row.data, replaces=case.link.item_id)]
    if row is None:
        return [LocalCreate(case.cid, item)]  # modification beats deletion
    if data_hash(item.data) == data_hash(row.data):
        return [Relink(synced_link(case.cid, item))]
    winner = _winner(case.policy.conflict, row, item)
    record = Conflict(case.cid, item.ref.item_id, case.policy.conflict, winner)
    if winner is Winner.EXCHANGE:
        return [record, LocalUpdate(case.cid, item)]
    return [record, ExchangeUpdate(case.cid, item.ref, row.data)]


def _winner(policy: ConflictPolicy, row: LocalEvent, item: ExchangeItem) -> Winner:
    if policy is ConflictPolicy.LOCAL_WINS:
        return Winner.LOCAL
    if policy is ConflictPolicy.NEWEST_WINS and item.last_modified is not None:
        return Winner.LOCAL if row.modified_at > item.last_modified else Winner.EXCHANGE
    return Winner.EXCHANGE


def _guard(result: Plan, policy: PlanPolicy) -> None:
    deletes = result.deletes + policy.prior_deletes
    if policy.allow_mass_delete or deletes < max(policy.max_delete_min, 1):
        return
    if deletes > policy.max_delete_share * policy.mailbox_size:
        raise MassDeleteGuard(
            f"the run would delete {deletes} of {policy.mailbox_size} events of "
            f"{policy.mailbox}; stopped",
            deletes=deletes,
            total=policy.mailbox_size,
            hint="check the mailbox and the local table; rerun with --allow-mass-delete "
            "if this is intended",
        )
