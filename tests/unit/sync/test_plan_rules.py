"""Example tests of the sync rules, one per rule of DESIGN.md."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sync_builders import ADDRESS, NOW, event, item, link, policy, row

from calsync.errors import MassDeleteGuard
from calsync.model import (
    ConflictPolicy,
    Direction,
    ExchangeChange,
    Link,
    LocalChange,
    SyncStatus,
)
from calsync.sync.actions import (
    Conflict,
    ExchangeCreate,
    ExchangeDelete,
    ExchangeUpdate,
    FetchExchange,
    LocalCreate,
    LocalDelete,
    LocalUpdate,
    MarkLocalOnly,
    Relink,
    Skip,
    Winner,
)
from calsync.sync.plan import plan, synced_link
from calsync.sync.rules import derived_calsync_id

BASE = event("Base")
EDITED = replace(BASE, location="Room 2")


def test_new_exchange_item_is_imported_under_a_stable_derived_id() -> None:
    new = item("i1", "ck1", BASE)
    result = plan([ExchangeChange("i1", new)], [], {}, {}, policy())
    assert result.actions == (LocalCreate(derived_calsync_id(ADDRESS, "i1"), new),)


def test_crash_recovered_create_is_linked_not_duplicated() -> None:
    stamped = item("i1", "ck1", BASE, calsync_id="c1")
    rows = {"c1": row("c1", BASE, status=SyncStatus.PENDING)}
    pending = [LocalChange("c1", rows["c1"], 1)]
    result = plan([ExchangeChange("i1", stamped)], pending, {}, rows, policy())
    assert result.actions == (
        Relink(Link("c1", "i1", None, None, None)),
        Relink(synced_link("c1", stamped)),
    )
    assert not [a for a in result if isinstance(a, LocalCreate | ExchangeCreate)]


@pytest.mark.parametrize("conflict", [ConflictPolicy.EXCHANGE_WINS, ConflictPolicy.LOCAL_WINS])
def test_crash_recovered_create_that_differs_from_its_row_is_a_conflict(conflict) -> None:
    # what was pushed before the crash is unknown: the row or the item may have changed since
    stamped = item("i1", "ck1", BASE, calsync_id="c1")
    rows = {"c1": row("c1", EDITED)}
    result = plan([ExchangeChange("i1", stamped)], [], {}, rows, policy(conflict=conflict))
    assert [type(a) for a in result] == [
        Relink,
        Conflict,
        ExchangeUpdate if conflict is ConflictPolicy.LOCAL_WINS else LocalUpdate,
    ]


def test_crash_recovered_create_of_a_row_deleted_since_is_deleted() -> None:
    stamped = item("i1", "ck1", BASE, calsync_id="c1")
    result = plan([ExchangeChange("i1", stamped)], [LocalChange("c1", None, 3)], {}, {}, policy())
    assert ExchangeDelete("c1", stamped.ref) in result.actions


def test_copied_stamp_of_a_linked_item_is_a_new_event() -> None:
    links = {"c1": link("c1", "i1", "ck1", BASE)}
    copy = item("i2", "ck9", BASE, calsync_id="c1")
    result = plan([ExchangeChange("i2", copy)], [], links, {"c1": row("c1", BASE)}, policy())
    assert result.actions == (LocalCreate(derived_calsync_id(ADDRESS, "i2"), copy),)


def test_recreated_item_replaces_its_deleted_predecessor() -> None:
    links = {"c1": link("c1", "i1", "ck1", BASE)}
    new = item("i2", "ck1", EDITED, calsync_id="c1")
    changes = [ExchangeChange("i1", None), ExchangeChange("i2", new)]
    rows = {"c1": row("c1", EDITED)}
    result = plan(changes, [LocalChange("c1", rows["c1"], 2)], links, rows, policy())
    assert result.actions == (Relink(synced_link("c1", new)),)


def test_echo_with_normalised_owned_fields_is_shown_locally() -> None:
    links = {"c1": link("c1", "i1", "ck2", BASE)}
    echoed = item("i1", "ck2", replace(BASE, organizer="alice@contoso.example"))
    result = plan([ExchangeChange("i1", echoed)], [], links, {"c1": row("c1", BASE)}, policy())
    assert result.actions == (LocalUpdate("c1", echoed),)


@pytest.mark.parametrize(
    ("conflict", "local_minutes", "winner"),
    [
        (ConflictPolicy.EXCHANGE_WINS, 90, Winner.EXCHANGE),
        (ConflictPolicy.LOCAL_WINS, -90, Winner.LOCAL),
        (ConflictPolicy.NEWEST_WINS, 90, Winner.LOCAL),
        (ConflictPolicy.NEWEST_WINS, -90, Winner.EXCHANGE),
    ],
)
def test_conflict_is_recorded_and_resolved_by_policy(conflict, local_minutes, winner) -> None:
    links = {"c1": link("c1", "i1", "ck1", BASE)}
    theirs = item("i1", "ck2", replace(BASE, subject="Outlook"), last_modified=NOW)
    rows = {"c1": row("c1", EDITED, minutes=local_minutes)}
    result = plan([ExchangeChange("i1", theirs)], [], links, rows, policy(conflict=conflict))
    assert result.actions[0] == Conflict("c1", "i1", conflict, winner)
    expected = (
        LocalUpdate("c1", theirs)
        if winner is Winner.EXCHANGE
        else ExchangeUpdate("c1", theirs.ref, EDITED)
    )
    assert result.actions[1:] == (expected,)


def test_pull_restores_local_edits_from_exchange() -> None:
    links = {"c1": link("c1", "i1", "ck1", BASE)}
    rows = {"c1": row("c1", EDITED)}
    pending = [LocalChange("c1", rows["c1"], 1)]
    first = plan([], pending, links, rows, policy(Direction.PULL))
    assert first.actions == (FetchExchange("c1", "i1"),)
    current = item("i1", "ck1", BASE)
    second = plan([ExchangeChange("i1", current)], pending, links, rows, policy(Direction.PULL))
    assert second.actions == (LocalUpdate("c1", current),)
    deleted = [LocalChange("c1", None, 2)]
    gone = plan([], deleted, links, {}, policy(Direction.PULL))
    assert gone.actions == (FetchExchange("c1", "i1"),)
    restored = plan([ExchangeChange("i1", current)], deleted, links, {}, policy(Direction.PULL))
    assert restored.actions == (LocalCreate("c1", current),)


def test_a_row_missing_without_a_recorded_delete_is_not_a_deletion() -> None:
    links = {"c1": link("c1", "i1", "ck1", BASE)}
    echo = item("i1", "ck1", BASE)
    assert plan([ExchangeChange("i1", echo)], [], links, {}, policy()).actions == ()
    edited = item("i1", "ck2", EDITED)
    result = plan([ExchangeChange("i1", edited)], [], links, {}, policy())
    assert result.actions == (LocalCreate("c1", edited),)


def test_pull_flags_rows_inserted_locally_and_never_pushes_them() -> None:
    rows = {"n1": row("n1", BASE, status=SyncStatus.PENDING)}
    result = plan([], [LocalChange("n1", rows["n1"], 1)], {}, rows, policy(Direction.PULL))
    assert result.actions == (MarkLocalOnly("n1"),)
    flagged = {"n1": row("n1", EDITED, status=SyncStatus.LOCAL_ONLY)}
    again = plan([], [LocalChange("n1", flagged["n1"], 2)], {}, flagged, policy(Direction.PULL))
    assert again.actions == ()


def test_push_overwrites_outlook_edits_and_recreates_outlook_deletes() -> None:
    links = {"c1": link("c1", "i1", "ck1", BASE)}
    rows = {"c1": row("c1", BASE)}
    edited = item("i1", "ck2", EDITED)
    result = plan([ExchangeChange("i1", edited)], [], links, rows, policy(Direction.PUSH))
    assert result.actions == (ExchangeUpdate("c1", edited.ref, BASE),)
    deleted = plan([ExchangeChange("i1", None)], [], links, rows, policy(Direction.PUSH))
    assert deleted.actions == (ExchangeCreate("c1", BASE, replaces="i1"),)


def test_push_ignores_changes_to_exchange_owned_fields() -> None:
    links = {"c1": link("c1", "i1", "ck1", BASE)}
    responded = item("i1", "ck2", replace(BASE, organizer="bob@x", is_cancelled=True))
    rows = {"c1": row("c1", BASE)}
    result = plan([ExchangeChange("i1", responded)], [], links, rows, policy(Direction.PUSH))
    assert all(isinstance(a, Relink) for a in result.actions)
    assert len(result.actions) == 1


def test_items_outside_the_window_are_not_synced_but_overlapping_series_are() -> None:
    old = event("Old", day=-400)
    result = plan([ExchangeChange("i1", item("i1", "ck", old))], [], {}, {}, policy())
    assert isinstance(result.actions[0], Skip)
    assert result.actions[0].reason == "outside_window"
    series = replace(old, recurrence="RRULE:FREQ=WEEKLY")
    weekly = item("i2", "ck", series)
    assert isinstance(
        plan([ExchangeChange("i2", weekly)], [], {}, {}, policy()).actions[0], LocalCreate
    )
    ended = replace(old, recurrence="RRULE:FREQ=DAILY;COUNT=3")
    stale = plan([ExchangeChange("i3", item("i3", "ck", ended))], [], {}, {}, policy())
    assert isinstance(stale.actions[0], Skip)
    future = event("Far", day=400)
    rows = {"n1": row("n1", future)}
    skipped = plan([], [LocalChange("n1", rows["n1"], 1)], {}, rows, policy())
    assert skipped.actions == (Skip("n1", None, "outside_window"),)


def test_mass_delete_is_refused_unless_allowed_or_small() -> None:
    links = {f"c{i}": link(f"c{i}", f"i{i}", "ck", BASE) for i in range(20)}
    rows = {cid: row(cid, BASE) for cid in links}
    wipe = [ExchangeChange(f"i{i}", None) for i in range(20)]
    with pytest.raises(MassDeleteGuard) as caught:
        plan(wipe, [], links, rows, policy(mailbox_size=30))
    assert (caught.value.deletes, caught.value.total) == (20, 30)
    assert caught.value.error_code == "mass_delete_guard"
    allowed = plan(wipe, [], links, rows, policy(mailbox_size=30, allow_mass_delete=True))
    assert allowed.deletes == 20
    assert plan(wipe[:9], [], links, rows, policy(mailbox_size=10)).deletes == 9
    assert plan(wipe, [], links, rows, policy(mailbox_size=100)).deletes == 20
    with pytest.raises(MassDeleteGuard):
        plan(wipe[:5], [], links, rows, policy(mailbox_size=30, prior_deletes=12))


def test_deleted_item_of_a_deleted_row_only_forgets_the_link() -> None:
    links = {"c1": link("c1", "i1", "ck1", BASE)}
    result = plan([ExchangeChange("i1", None)], [LocalChange("c1", None, 1)], links, {}, policy())
    assert [type(a).__name__ for a in result] == ["Unlink"]
    one_side = plan([ExchangeChange("i1", None)], [], links, {"c1": row("c1", BASE)}, policy())
    assert one_side.actions == (LocalDelete("c1"),)
