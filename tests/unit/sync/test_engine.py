"""run_sync against MemoryExchange and MemoryStore: paging, crashes, resync, failures, guard."""

from __future__ import annotations

from dataclasses import replace

import pytest
from engine_fixtures import World
from structlog.testing import capture_logs
from sync_builders import ADDRESS, event

from calsync.errors import ConflictError, ItemError, MassDeleteGuard, TransientError
from calsync.model import ConflictPolicy, Direction, SyncStatus


class Boom(Exception):
    pass


def test_initial_pull_is_paged_counted_and_idempotent() -> None:
    world = World(page_size=3)
    for i in range(7):
        world.exchange.outlook_create(ADDRESS, event(f"e{i}", day=i))
    report = world.sync()
    assert report.local.create == 7
    assert report.outcome == "ok"
    # 3 pages of SyncFolderItems + one GetItem batch per page: ceil(7/3) + ceil(7/3)
    assert report.requests == 6
    assert world.local_contents() == world.exchange_contents()
    again = world.sync()
    assert (again.local.as_dict(), again.exchange.as_dict()) == (
        dict.fromkeys(("create", "update", "delete"), 0),
    ) * 2
    assert again.requests == 1


def test_a_crash_mid_way_resumes_from_the_last_committed_page() -> None:
    world = World(page_size=2)
    for i in range(6):
        world.exchange.outlook_create(ADDRESS, event(f"e{i}", day=i))
    stops = iter([False, True])
    first = world.sync(should_stop=lambda: next(stops))
    assert first.local.create == 4  # two pages, then a graceful stop between pages
    state = world.store.get_sync_state(ADDRESS)
    assert state is not None
    second = world.sync()
    assert second.local.create == 2  # nothing replayed twice
    assert world.local_contents() == world.exchange_contents()


def test_a_failed_commit_leaves_nothing_behind_and_the_page_is_replayed() -> None:
    world = World()
    world.exchange.outlook_create(ADDRESS, event("e1"))
    real = world.store.transaction

    def broken():  # type: ignore[no-untyped-def]
        raise Boom("disk full")

    world.store.transaction = broken  # type: ignore[method-assign]
    with pytest.raises(Boom):
        world.sync()
    world.store.transaction = real  # type: ignore[method-assign]
    assert world.local_rows() == {}
    assert world.sync().local.create == 1


def test_invalid_sync_state_resyncs_without_duplicates_and_sees_deletions() -> None:
    world = World(page_size=2)
    ids = [world.exchange.outlook_create(ADDRESS, event(f"e{i}", day=i)) for i in range(5)]
    world.sync()
    world.exchange.outlook_delete(ADDRESS, ids[0])
    world.exchange.outlook_update(ADDRESS, ids[1], event("e1 moved", day=9))
    world.exchange.invalidate_sync_states(ADDRESS)
    with capture_logs() as logs:
        report = world.sync()
    assert report.full_resync
    assert (report.local.create, report.local.update, report.local.delete) == (0, 1, 1)
    assert world.local_contents() == world.exchange_contents()
    assert len(world.local_rows()) == 4
    assert any(e["event"] == "full_resync" for e in logs)


@pytest.mark.parametrize("cut", ["stop", "crash"])
def test_a_resync_cut_short_still_sees_the_deletions_made_before_it(cut: str) -> None:
    world = World(page_size=2)
    ids = [world.exchange.outlook_create(ADDRESS, event(f"e{i}", day=i)) for i in range(7)]
    world.sync()
    world.exchange.outlook_delete(ADDRESS, ids[0])
    world.exchange.invalidate_sync_states(ADDRESS)
    if cut == "stop":
        stops = iter([False, True])
        first = world.sync(should_stop=lambda: next(stops))
        assert first.full_resync
    else:
        real_fetch = world.exchange.fetch_changes

        def killed_after_one_page(mailbox, state):  # type: ignore[no-untyped-def]
            pages = real_fetch(mailbox, state)
            yield next(pages)
            if state is None:
                raise Boom("killed")
            yield from pages

        world.exchange.fetch_changes = killed_after_one_page  # type: ignore[method-assign]
        with pytest.raises(Boom):
            world.sync()
        world.exchange.fetch_changes = real_fetch  # type: ignore[method-assign]
    # the listing was cut short: no sync state kept, so the next run lists everything again
    assert world.store.get_sync_state(ADDRESS) is None
    again = world.sync()
    assert again.local.delete == 1
    assert world.local_contents() == world.exchange_contents()
    assert len(world.local_rows()) == 6


def test_a_push_interrupted_after_create_is_linked_not_duplicated() -> None:
    world = World()
    world.store.app_upsert(ADDRESS, event("mine"))
    world.exchange.fail_next("create", Boom("killed"), after=True)
    with pytest.raises(Boom):
        world.sync()
    assert len(world.exchange.items(ADDRESS)) == 1
    report = world.sync()
    assert report.exchange.create == 0
    assert len(world.exchange.items(ADDRESS)) == 1
    assert world.local_contents() == world.exchange_contents()


def test_a_rejected_item_is_recorded_and_skipped_and_the_run_goes_on() -> None:
    world = World()
    bad = world.store.app_upsert(ADDRESS, event("bad", day=1))
    world.store.app_upsert(ADDRESS, event("good", day=2))
    world.exchange.fail_next(
        "create", ItemError("no", item="?", error_code="ErrorInvalidRecurrence")
    )
    report = world.sync()
    assert report.outcome == "partial"
    assert report.exchange.create == 1
    assert [b.error_code for b in report.bad_items] == ["ErrorInvalidRecurrence"]
    row = world.store.raw_row(bad)
    assert row is not None
    assert row["sync_status"] == SyncStatus.ERROR
    assert "ErrorInvalidRecurrence" in row["sync_error"]


def test_unreadable_exchange_items_are_reported_not_fatal() -> None:
    world = World()
    broken = world.exchange.outlook_create(ADDRESS, event("corrupt", day=1))
    world.exchange.outlook_create(ADDRESS, event("fine", day=2))
    world.exchange.make_unreadable(ADDRESS, broken)
    report = world.sync()
    assert report.outcome == "partial"
    assert [b.item for b in report.bad_items] == [broken]
    assert report.local.create == 1


@pytest.mark.parametrize(
    ("policy", "winner"),
    [(ConflictPolicy.EXCHANGE_WINS, "outlook"), (ConflictPolicy.LOCAL_WINS, "app")],
)
def test_a_stale_change_key_is_a_conflict_resolved_by_policy(policy, winner) -> None:
    world = World(conflict=policy)
    item_id = world.exchange.outlook_create(ADDRESS, event("shared"))
    world.sync()
    (cid,) = world.local_rows()
    base = world.local_rows()[cid]
    world.store.app_upsert(ADDRESS, replace(base, location="app"), cid)
    real_fetch = world.exchange.fetch_changes

    def late_edit(mailbox, state):  # type: ignore[no-untyped-def]
        pages = list(real_fetch(mailbox, state))
        world.exchange.outlook_update(ADDRESS, item_id, replace(base, location="outlook"))
        return iter(pages)  # Outlook's edit lands after the pages were read

    world.exchange.fetch_changes = late_edit  # type: ignore[method-assign]
    with capture_logs() as logs:
        report = world.sync()
    world.exchange.fetch_changes = real_fetch  # type: ignore[method-assign]
    assert report.conflicts == 1
    logged = next(e for e in logs if e["event"] == "conflict")
    assert logged["winner"] == ("exchange" if winner == "outlook" else "local")
    assert all("body" not in e and "subject" not in e for e in logs)
    world.sync()
    assert world.local_rows()[cid].location == winner
    assert world.local_contents() == world.exchange_contents()


def test_update_conflict_error_is_handled_by_refetch() -> None:
    world = World()
    world.exchange.outlook_create(ADDRESS, event("x"))
    world.sync()
    (cid,) = world.local_rows()
    world.store.app_upsert(ADDRESS, replace(world.local_rows()[cid], location="app"), cid)
    world.exchange.fail_next("update", ConflictError("stale"))
    report = world.sync()
    assert report.outcome == "ok"
    assert world.local_contents() == world.exchange_contents()


def test_transient_errors_end_the_run_and_the_next_run_converges() -> None:
    world = World()
    world.store.app_upsert(ADDRESS, event("x"))
    world.exchange.fail_next("create", TransientError("reset"))
    with pytest.raises(TransientError):
        world.sync()
    world.sync()
    assert world.local_contents() == world.exchange_contents()


def test_a_wiped_local_table_does_not_wipe_the_mailbox() -> None:
    world = World(direction=Direction.PUSH)
    ids = [world.store.app_upsert(ADDRESS, event(f"e{i}", day=i)) for i in range(12)]
    world.sync()
    for cid in ids:
        world.store.app_delete(ADDRESS, cid)
    with pytest.raises(MassDeleteGuard) as caught:
        world.sync()
    assert caught.value.error_code == "mass_delete_guard"
    assert len(world.exchange.items(ADDRESS)) == 12
    assert world.sync(allow_mass_delete=True).exchange.delete == 12


def test_dry_run_counts_and_changes_nothing() -> None:
    world = World()
    world.exchange.outlook_create(ADDRESS, event("theirs"))
    world.store.app_upsert(ADDRESS, event("mine", day=2))
    report = world.sync(dry_run=True)
    assert (report.local.create, report.exchange.create) == (1, 1)
    assert len(world.local_rows()) == 1
    assert len(world.exchange.items(ADDRESS)) == 1
    assert world.store.get_sync_state(ADDRESS) is None
    real = world.sync()
    assert (real.local.create, real.exchange.create) == (1, 1)


def test_pull_restores_local_edits_and_keeps_local_inserts_local() -> None:
    world = World(direction=Direction.PULL)
    world.exchange.outlook_create(ADDRESS, event("theirs"))
    world.sync()
    (cid,) = world.local_rows()
    world.store.app_upsert(ADDRESS, replace(world.local_rows()[cid], location="hacked"), cid)
    mine = world.store.app_upsert(ADDRESS, event("mine", day=2))
    report = world.sync()
    assert report.exchange.as_dict() == dict.fromkeys(("create", "update", "delete"), 0)
    assert world.local_rows()[cid].location == ""
    assert world.store.raw_row(mine)["sync_status"] == SyncStatus.LOCAL_ONLY  # type: ignore[index]
    assert len(world.exchange.items(ADDRESS)) == 1


def test_push_leaves_foreign_items_alone_and_recreates_deleted_ones() -> None:
    world = World(direction=Direction.PUSH)
    foreign = world.exchange.outlook_create(ADDRESS, event("not mine"))
    world.store.app_upsert(ADDRESS, event("mine", day=2))
    world.sync()
    assert len(world.local_rows()) == 1
    (pushed,) = [i for i in world.exchange.items(ADDRESS) if i != foreign]
    world.exchange.outlook_delete(ADDRESS, pushed)
    world.exchange.outlook_update(ADDRESS, foreign, event("still not mine", day=3))
    report = world.sync()
    assert report.exchange.create == 1
    assert world.exchange.items(ADDRESS)[foreign].data.subject == "still not mine"
    assert len(world.exchange.items(ADDRESS)) == 2
