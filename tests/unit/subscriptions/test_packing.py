"""plan_groups: limits, stable packing, minimal churn, repacking of fragmented groups."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calsync.subscriptions import plan_groups


def addresses(n: int, start: int = 0) -> list[str]:
    return [f"user{i:04d}@contoso.example" for i in range(start, start + n)]


def test_a_fresh_start_packs_by_address() -> None:
    wanted = addresses(450)
    plan = plan_groups([], reversed(wanted), limit=200, max_groups=50)
    assert [len(g) for g in plan.groups] == [200, 200, 50]
    assert [g[0] for g in plan.groups] == [wanted[0], wanted[200], wanted[400]]  # anchors
    assert [m for g in plan.groups for m in g] == wanted
    assert len(plan_groups([], wanted, limit=50, max_groups=50).groups) == 9


def test_the_same_wanted_set_changes_nothing() -> None:
    first = plan_groups([], addresses(450), limit=200, max_groups=50)
    assert plan_groups(first.groups, addresses(450), 200, 50) == first


def test_beyond_capacity_mailboxes_are_polled() -> None:
    plan = plan_groups([], addresses(25), limit=10, max_groups=2)
    assert [len(g) for g in plan.groups] == [10, 10]
    assert plan.polled == tuple(addresses(25)[20:])


def test_newcomers_fill_free_places_without_moving_anyone() -> None:
    groups = plan_groups([], addresses(25), limit=10, max_groups=5).groups  # 10, 10, 5
    plan = plan_groups(groups, [*addresses(25), *addresses(7, start=100)], 10, 5)
    assert plan.groups[0] == groups[0] and plan.groups[1] == groups[1]
    assert plan.groups[2][:5] == groups[2]  # same anchor, newcomers appended
    assert plan.groups[2][5:] == tuple(addresses(5, start=100))
    assert plan.groups[3] == tuple(addresses(2, start=105))


def test_leavers_leave_and_fragmented_groups_are_repacked() -> None:
    groups = plan_groups([], addresses(30), limit=10, max_groups=5).groups
    # 4 leave the first group and 4 the second: 22 members fit into 3 groups, no repack yet
    keep = [a for a in addresses(30) if a not in {*groups[0][6:], *groups[1][6:]}]
    plan = plan_groups(groups, keep, 10, 5)
    assert [len(g) for g in plan.groups] == [6, 6, 10]
    # 3 more leave: 19 members need 2 groups: the smallest (last of equal size) moves over
    fewer = keep[3:]
    repacked = plan_groups(plan.groups, fewer, 10, 5)
    assert [len(g) for g in repacked.groups] == [0, 9, 10]  # the smallest moved in with 6
    assert sorted(m for g in repacked.groups for m in g) == sorted(fewer)
    assert repacked.groups[2][:10] == plan.groups[2]  # the full group was not touched


def test_a_removed_anchor_hands_the_group_to_the_next_member() -> None:
    groups = plan_groups([], addresses(5), limit=10, max_groups=5).groups
    plan = plan_groups(groups, addresses(5)[1:], 10, 5)
    assert plan.groups == (tuple(addresses(5)[1:]),)


def test_a_smaller_limit_or_fewer_connections_after_a_reload() -> None:
    groups = plan_groups([], addresses(20), limit=10, max_groups=5).groups
    smaller = plan_groups(groups, addresses(20), limit=5, max_groups=5)
    assert all(len(g) <= 5 for g in smaller.groups) and len(smaller.live) == 4
    fewer = plan_groups(groups, addresses(20), limit=10, max_groups=1)
    assert len(fewer.live) == 1 and len(fewer.polled) == 10


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        plan_groups([], [], limit=0, max_groups=1)


names = st.integers(min_value=0, max_value=80).map(lambda i: f"u{i:03d}@x.example")


@given(
    steps=st.lists(st.sets(names, max_size=60), min_size=1, max_size=6),
    limit=st.integers(min_value=1, max_value=12),
    max_groups=st.integers(min_value=1, max_value=8),
)
def test_invariants_over_a_sequence_of_reloads(
    steps: list[set[str]], limit: int, max_groups: int
) -> None:
    groups: tuple[tuple[str, ...], ...] = ()
    for wanted in steps:
        plan = plan_groups(groups, wanted, limit, max_groups)
        live = plan.live
        members = [m for g in live for m in g]
        assert all(len(g) <= limit for g in plan.groups)
        assert len(live) <= max_groups
        assert len(members) == len(set(members))  # nobody twice
        assert set(members) | set(plan.polled) == wanted
        assert not set(members) & set(plan.polled)
        assert len(live) == math.ceil(len(members) / limit)  # never fragmented
        if plan.polled:  # polled only when every connection is full
            assert len(live) == max_groups and all(len(g) == limit for g in live)
        # members that stay wanted stay in their group, unless the group was closed
        for old, new in zip(groups, plan.groups, strict=False):
            if new:
                assert set(new) >= {m for m in old if m in wanted}
        assert plan_groups(plan.live, wanted, limit, max_groups).live == live  # stable
        groups = tuple(live)
