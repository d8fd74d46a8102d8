"""A hypothesis state machine over the whole sync: random edits on both sides, failures, crashes.

Modelled on vdirsyncer's ``SyncMachine``. After every sync that completes, whatever happened
before (failed writes, expired sync states, crashes between apply and commit):

- both sides hold the same events, as the direction says;
- nothing is gone that nobody deleted, and nothing exists that nobody created;
- no event exists twice on either side;
- a second sync right away writes nothing anywhere and reads one page.

Items a run reported as bad (a write the server rejected) are left out of the comparison from
then on: they are recorded and skipped by design.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule
from machine_world import (
    ADDRESS,
    MACHINE_SETTINGS,
    Crash,
    World,
    comparable,
    edited,
    new_event,
    tag_of,
    with_deleted,
    with_modified,
)

from calsync.errors import ItemError, TransientError
from calsync.model import ConflictPolicy, Direction, EventData, LocalEvent, SyncStatus
from calsync.sync.engine import run_sync

index = st.integers(0, 10_000)


class SyncMachine(RuleBasedStateMachine):
    world: World

    def __init__(self) -> None:
        super().__init__()
        self.counter = 0
        self.created: set[str] = set()
        self.deleted: set[str] = set()  # tags someone deleted (they may come back: edits win)
        self.local_made: set[str] = set()
        self.outlook: dict[str, EventData] = {}  # what Outlook last wrote, per item id
        self.foreign: set[str] = set()  # item ids created in Outlook
        self.tainted: set[str] = set()  # tags of items reported bad
        # what each side did to each tag since the last sync attempt: (kind, subject, when)
        self.since: dict[str, dict[str, tuple[str, str, int]]] = {"outlook": {}, "local": {}}

    def _did(self, side: str, data: EventData, kind: str) -> None:
        self.since[side][tag_of(data)] = (kind, data.subject, self.counter)

    direction = Direction.TWO_WAY

    @initialize(conflict=st.sampled_from(list(ConflictPolicy)))
    def setup(self, conflict: ConflictPolicy) -> None:
        if self.direction is not Direction.TWO_WAY:
            conflict = ConflictPolicy.EXCHANGE_WINS  # not used
        self.world = World(self.direction, conflict)

    @rule(operation=st.sampled_from(["create", "update", "delete"]))
    def crash_after_next_write(self, operation: str) -> None:
        """The process dies right after the server applied a write, before the local commit."""
        self.exchange_fails(operation, "lost_reply")

    # --- the rules: few and broad, so that syncs come often ----------------------------------

    @rule(outlook=st.booleans(), day=st.integers(1, 20), recurring=st.booleans())
    def create(self, outlook: bool, day: int, recurring: bool) -> None:
        (self.outlook_create if outlook else self.local_create)(day, recurring)

    @rule(
        outlook=st.booleans(),
        kind=st.sampled_from(["edit", "delete", "occurrence"]),
        i=index,
        k=st.integers(0, 4),
        delete=st.booleans(),
    )
    def change(self, outlook: bool, kind: str, i: int, k: int, delete: bool) -> None:
        world = self.world
        if outlook and kind == "occurrence":
            if any(x.data.is_recurring for x in world.items().values()):
                self.outlook_occurrence(i, k, delete)
        elif outlook and world.items():
            (self.outlook_update if kind == "edit" else self.outlook_delete)(i)
        elif not outlook and kind == "occurrence":
            if any(r.data.is_recurring for r in world.rows().values()):
                self.local_occurrence(i, k, delete)
        elif not outlook and world.rows():
            (self.local_update if kind == "edit" else self.local_delete)(i)

    @rule(
        kind=st.sampled_from(["exchange_fails", "expire", "crash"]),
        operation=st.sampled_from(["create", "update", "delete", "get", "find", "fetch"]),
        failure=st.sampled_from(["rejected", "transient", "lost_reply"]),
    )
    def trouble(self, kind: str, operation: str, failure: str) -> None:
        """A failed request, an expired sync state, or the process dying before a commit."""
        if kind == "exchange_fails":
            self.exchange_fails(operation, failure)
        elif kind == "expire":
            self.world.exchange.invalidate_sync_states(ADDRESS)
        else:
            self.world.store.crash_next = True

    def _tag(self) -> str:
        self.counter += 1
        return f"e{self.counter}"

    def _pick(self, keys: list[str], i: int) -> str:
        return sorted(keys)[i % len(keys)]

    def _pick_row(self, rows: dict[str, LocalEvent], i: int) -> str:
        """Row ids are random UUIDs: choose by tag, so that a replay chooses the same row."""
        by_tag = sorted(rows, key=lambda cid: (tag_of(rows[cid].data), cid))
        return by_tag[i % len(by_tag)]

    # --- a person in Outlook -----------------------------------------------------------------

    def outlook_create(self, day: int, recurring: bool) -> None:
        tag = self._tag()
        data = new_event(tag, day, recurring=recurring)
        item_id = self.world.exchange.outlook_create(ADDRESS, data)
        self.created.add(tag)
        self.outlook[item_id] = data
        self.foreign.add(item_id)

    def outlook_update(self, i: int) -> None:
        items = self.world.items()
        item_id = self._pick(list(items), i)
        self.counter += 1
        data = edited(items[item_id].data, self.counter, "outlook")
        self.world.exchange.outlook_update(ADDRESS, item_id, data)
        self.outlook[item_id] = self.world.items()[item_id].data
        self._did("outlook", data, "edit")

    def outlook_delete(self, i: int) -> None:
        items = self.world.items()
        item_id = self._pick(list(items), i)
        self.deleted.add(tag_of(items[item_id].data))
        self._did("outlook", items[item_id].data, "delete")
        self.world.exchange.outlook_delete(ADDRESS, item_id)
        self.outlook.pop(item_id, None)

    def outlook_occurrence(self, i: int, k: int, delete: bool) -> None:
        items = {i: x for i, x in self.world.items().items() if x.data.is_recurring}
        item_id = self._pick(list(items), i)
        self.counter += 1
        data = items[item_id].data
        changed = with_deleted(data, k) if delete else with_modified(data, k, self.counter)
        self.world.exchange.outlook_update(ADDRESS, item_id, changed)
        self.outlook[item_id] = self.world.items()[item_id].data
        self._did("outlook", changed, "occurrence")

    # --- an application writing the events table ---------------------------------------------

    def local_create(self, day: int, recurring: bool) -> None:
        tag = self._tag()
        self.world.store.app_upsert(ADDRESS, new_event(tag, day, recurring=recurring))
        self.created.add(tag)
        self.local_made.add(tag)

    def local_update(self, i: int) -> None:
        rows = self.world.rows()
        cid = self._pick_row(rows, i)
        self.counter += 1
        data = edited(rows[cid].data, self.counter, "app")
        self.world.store.app_upsert(ADDRESS, data, cid)
        self._did("local", data, "edit")

    def local_delete(self, i: int) -> None:
        rows = self.world.rows()
        cid = self._pick_row(rows, i)
        self.deleted.add(tag_of(rows[cid].data))
        self._did("local", rows[cid].data, "delete")
        self.world.store.app_delete(ADDRESS, cid)

    def local_occurrence(self, i: int, k: int, delete: bool) -> None:
        rows = {c: r for c, r in self.world.rows().items() if r.data.is_recurring}
        cid = self._pick_row(rows, i)
        self.counter += 1
        data = rows[cid].data
        changed = with_deleted(data, k) if delete else with_modified(data, k, self.counter)
        self.world.store.app_upsert(ADDRESS, changed, cid)
        self._did("local", changed, "occurrence")

    # --- both at once: the interesting cases (conflicts, edit against delete) ---------------

    def _shared_tags(self) -> list[str]:
        local = {tag_of(r.data) for r in self.world.rows().values()}
        return sorted(local & {tag_of(x.data) for x in self.world.items().values()})

    @precondition(lambda self: self._shared_tags())
    @rule(
        i=index,
        outlook=st.sampled_from(["edit", "delete", "occurrence"]),
        local=st.sampled_from(["edit", "delete", "occurrence"]),
    )
    def both_sides_change(self, i: int, outlook: str, local: str) -> None:
        tags = self._shared_tags()
        tag = tags[i % len(tags)]
        item_id = next(k for k, x in self.world.items().items() if tag_of(x.data) == tag)
        cid = next(c for c, r in self.world.rows().items() if tag_of(r.data) == tag)
        for side, kind in (("outlook", outlook), ("local", local)):
            if kind == "delete":
                if side == "outlook":
                    self.outlook_delete(sorted(self.world.items()).index(item_id))
                else:
                    self.local_delete(self._row_index(cid))
            elif kind == "edit" or not self._is_series(side, item_id, cid):
                if side == "outlook":
                    self.outlook_update(sorted(self.world.items()).index(item_id))
                else:
                    self.local_update(self._row_index(cid))
            elif side == "outlook":
                series = sorted(k for k, x in self.world.items().items() if x.data.is_recurring)
                self.outlook_occurrence(series.index(item_id), i % 5, delete=i % 2 == 0)
            else:
                rows = {c: r for c, r in self.world.rows().items() if r.data.is_recurring}
                by_tag = sorted(rows, key=lambda c: (tag_of(rows[c].data), c))
                self.local_occurrence(by_tag.index(cid), i % 5, delete=i % 2 == 0)

    def _row_index(self, cid: str) -> int:
        rows = self.world.rows()
        return sorted(rows, key=lambda c: (tag_of(rows[c].data), c)).index(cid)

    def _is_series(self, side: str, item_id: str, cid: str) -> bool:
        if side == "outlook":
            return self.world.items()[item_id].data.is_recurring
        return self.world.rows()[cid].data.is_recurring

    # --- trouble -------------------------------------------------------------------------------

    def exchange_fails(self, operation: str, kind: str) -> None:
        if kind == "rejected":
            error: Exception = ItemError("rejected by the server", item="?", error_code="ErrorX")
        elif kind == "transient":
            error = TransientError("connection reset")
        else:
            error = Crash("killed after the server applied the write")
        writes = operation in ("create", "update", "delete")
        if not writes:
            error = TransientError("connection reset")  # reads fail as a whole, never per item
        after = kind == "lost_reply" and writes
        self.world.exchange.fail_next(operation, error, after=after)  # type: ignore[arg-type]

    # --- syncing -------------------------------------------------------------------------------

    @rule(verify=st.booleans())
    def sync(self, verify: bool) -> None:
        """Sync; with ``verify``, also prove that a second sync right away does nothing."""
        world = self.world
        before = self._tags_by_id()
        since, self.since = self.since, {"outlook": {}, "local": {}}
        try:
            report = run_sync(
                world.mailbox, world.exchange, world.store, clock=world.clock,
                allow_mass_delete=True,
            )  # fmt: skip
        except (Crash, TransientError):
            return
        for bad in report.bad_items:
            self.tainted |= {
                t for t in (before.get(bad.item), self._tags_by_id().get(bad.item)) if t
            }
        self.tainted |= {tag_of(world.rows()[c].data) for c in world.error_ids()}
        self.check_converged()
        self.check_links()
        self.check_edits_win(since)
        if verify:
            self.check_second_sync_is_idle()

    def check_second_sync_is_idle(self) -> None:
        world = self.world
        world.exchange.clear_faults()
        world.store.crash_next = False
        snapshot, writes = world.snapshot(), world.exchange.write_count(ADDRESS)
        again = run_sync(world.mailbox, world.exchange, world.store, clock=world.clock)
        assert world.snapshot() == snapshot, "a second sync wrote something"
        assert world.exchange.write_count(ADDRESS) == writes
        assert (again.exchange, again.local, again.conflicts) == (
            type(again.exchange)(),
            type(again.local)(),
            0,
        )

    def _tags_by_id(self) -> dict[str, str]:
        """Tag of every row id, item id, and id linked to one (a bad item names either)."""
        tags = {cid: tag_of(r.data) for cid, r in self.world.rows().items()}
        tags.update({i: tag_of(x.data) for i, x in self.world.items().items()})
        for cid, link in self.world.store.all_links(ADDRESS).items():
            if link.item_id in tags:
                tags.setdefault(cid, tags[link.item_id])
        return tags

    # --- what must hold ----------------------------------------------------------------------

    def check_converged(self) -> None:
        world = self.world
        rows = {c: r for c, r in world.rows().items() if tag_of(r.data) not in self.tainted}
        items = {i: x for i, x in world.items().items() if tag_of(x.data) not in self.tainted}
        local_tags = Counter(tag_of(r.data) for r in rows.values())
        ex_tags = Counter(tag_of(x.data) for x in items.values())
        assert all(n == 1 for n in local_tags.values()), f"duplicate rows {local_tags}"
        assert all(n == 1 for n in ex_tags.values()), f"duplicate items {ex_tags}"
        assert set(local_tags) | set(ex_tags) <= self.created
        alive = self.created - self.deleted - self.tainted
        links = world.store.all_links(ADDRESS)
        if world.direction is Direction.TWO_WAY:
            assert alive <= set(local_tags) & set(ex_tags), "an event nobody deleted is gone"
            assert sorted(map(comparable, (r.data for r in rows.values())), key=repr) == sorted(
                map(comparable, (x.data for x in items.values())), key=repr
            )
        elif world.direction is Direction.PULL:
            assert {i: x.data for i, x in world.items().items()} == self.outlook
            mirrored = {c: r for c, r in rows.items() if r.status is not SyncStatus.LOCAL_ONLY}
            assert sorted((r.data for r in mirrored.values()), key=repr) == sorted(
                (x.data for x in items.values()), key=repr
            )
            for cid, row in rows.items():
                if row.status is SyncStatus.LOCAL_ONLY:
                    assert tag_of(row.data) in self.local_made
                    assert cid not in links or links[cid].item_id is None
            assert alive - self.local_made <= set(local_tags)
        else:
            for item_id, data in self.outlook.items():
                if item_id in self.foreign and tag_of(data) not in self.tainted:
                    assert world.items()[item_id].data == data, "push touched a foreign item"
            assert set(local_tags) <= self.local_made
            for cid, row in rows.items():
                assert cid in links, f"row {cid} not pushed"
                item = world.items()[links[cid].item_id or ""]
                assert comparable(item.data) == comparable(row.data)
            assert alive & self.local_made <= set(local_tags)

    def check_edits_win(self, since: dict[str, dict[str, tuple[str, str, int]]]) -> None:
        """Modification beats deletion; a conflict is won as the policy says."""
        world = self.world
        local = {tag_of(r.data): r.data.subject for r in world.rows().values()}
        remote = {tag_of(x.data): x.data.subject for x in world.items().values()}
        direction = world.direction
        for tag in set(since["outlook"]) & set(since["local"]) - self.tainted:
            (o_kind, o_subject, o_when), (l_kind, l_subject, l_when) = (
                since["outlook"][tag],
                since["local"][tag],
            )
            if o_kind == "delete" and l_kind == "edit" and direction is not Direction.PULL:
                assert local.get(tag) == l_subject == remote.get(tag), f"{tag}: edit lost"
            if l_kind == "delete" and o_kind == "edit" and direction is not Direction.PUSH:
                assert local.get(tag) == o_subject, f"{tag}: Outlook edit lost"
                if direction is Direction.TWO_WAY:
                    assert remote.get(tag) == o_subject
            if o_kind == l_kind == "edit" and direction is Direction.TWO_WAY:
                policy = world.conflict
                local_won = policy is ConflictPolicy.LOCAL_WINS or (
                    policy is ConflictPolicy.NEWEST_WINS and l_when > o_when
                )
                expected = l_subject if local_won else o_subject
                assert local[tag] == remote[tag] == expected, f"{tag}: wrong conflict winner"

    def check_links(self) -> None:
        """Every link joins an existing row to an existing item (or to nothing, local-only)."""
        world = self.world
        rows, items = world.rows(), world.items()
        tags = self._tags_by_id()
        for cid, link in world.store.all_links(ADDRESS).items():
            if tags.get(cid) in self.tainted:
                continue
            assert cid in rows, f"link without a row: {link}"
            assert link.item_id is None or link.item_id in items, f"link without item: {link}"


class PullMachine(SyncMachine):
    direction = Direction.PULL


class PushMachine(SyncMachine):
    direction = Direction.PUSH


TestTwoWay = SyncMachine.TestCase
TestTwoWay.settings = MACHINE_SETTINGS
TestPull = PullMachine.TestCase
TestPull.settings = MACHINE_SETTINGS
TestPush = PushMachine.TestCase
TestPush.settings = MACHINE_SETTINGS
