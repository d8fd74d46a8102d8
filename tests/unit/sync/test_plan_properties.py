"""Property tests of the pure ``plan``: random per-event scenarios on both sides."""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import given
from hypothesis import strategies as st
from sync_builders import event, item, link, policy, row

from calsync.model import (
    ConflictPolicy,
    Direction,
    ExchangeChange,
    Link,
    LocalChange,
    LocalEvent,
)
from calsync.sync.actions import (
    EXCHANGE_WRITES,
    LOCAL_WRITES,
    Conflict,
    ExchangeDelete,
    LocalDelete,
    Plan,
    Relink,
    Winner,
    action_id,
)
from calsync.sync.plan import plan
from calsync.sync.rules import derived_calsync_id

EX_KINDS = ("unknown", "echo_ck", "echo_hash", "changed", "deleted")
LOC_KINDS = ("unchanged", "changed", "deleted")


@dataclass(frozen=True)
class Scenario:
    changes: tuple[ExchangeChange, ...]
    local: tuple[LocalChange, ...]
    links: dict[str, Link]
    rows: dict[str, LocalEvent]
    kinds: dict[str, tuple[str, str]]  # linked cid -> (exchange kind, local kind)
    foreign: frozenset[str]  # derived ids of unlinked Exchange items
    local_new: frozenset[str]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    changes: list[ExchangeChange] = []
    local: list[LocalChange] = []
    links: dict[str, Link] = {}
    rows: dict[str, LocalEvent] = {}
    kinds: dict[str, tuple[str, str]] = {}
    for i in range(draw(st.integers(0, 6))):
        cid, iid = f"c{i}", f"i{i}"
        base = event(f"s{i}", day=i)
        links[cid] = link(cid, iid, "ck1", base)
        ex_kind, loc_kind = draw(st.sampled_from(EX_KINDS)), draw(st.sampled_from(LOC_KINDS))
        kinds[cid] = (ex_kind, loc_kind)
        ex_data = replace(base, location="Outlook") if ex_kind == "changed" else base
        if ex_kind == "deleted":
            changes.append(ExchangeChange(iid, None))
        elif ex_kind != "unknown":
            ck = "ck1" if ex_kind == "echo_ck" else "ck2"
            changes.append(ExchangeChange(iid, item(iid, ck, ex_data)))
        if loc_kind == "deleted":
            local.append(LocalChange(cid, None, i))
        else:
            same = draw(st.booleans()) and ex_kind == "changed"
            data = ex_data if same else replace(base, body="local")
            rows[cid] = row(cid, base if loc_kind == "unchanged" else data, minutes=i)
            if loc_kind == "changed":
                local.append(LocalChange(cid, rows[cid], i))
    foreign = set()
    for j in range(draw(st.integers(0, 3))):
        iid = f"x{j}"
        changes.append(ExchangeChange(iid, item(iid, "ck1", event(f"x{j}", day=j))))
        foreign.add(derived_calsync_id(policy().mailbox, iid))
    local_new = set()
    for k in range(draw(st.integers(0, 3))):
        cid = f"n{k}"
        rows[cid] = row(cid, event(f"n{k}", day=k))
        local.append(LocalChange(cid, rows[cid], 100 + k))
        local_new.add(cid)
    return Scenario(
        tuple(changes), tuple(local), links, rows, kinds, frozenset(foreign), frozenset(local_new)
    )


def run(s: Scenario, direction: Direction, conflict: ConflictPolicy) -> Plan:
    return plan(s.changes, s.local, s.links, s.rows, policy(direction, conflict))


directions = st.sampled_from(list(Direction))
policies = st.sampled_from(list(ConflictPolicy))


@given(scenarios(), directions, policies)
def test_plan_is_deterministic_and_one_write_per_event(s, direction, conflict) -> None:
    first = run(s, direction, conflict)
    assert first == run(s, direction, conflict)
    writes = [action_id(a) for a in first if isinstance(a, EXCHANGE_WRITES + LOCAL_WRITES)]
    assert len(writes) == len(set(writes))


@given(scenarios(), policies)
def test_pull_never_writes_exchange_and_never_pushes_local_rows(s, conflict) -> None:
    result = run(s, Direction.PULL, conflict)
    assert not [a for a in result if isinstance(a, EXCHANGE_WRITES)]
    assert not result.conflicts
    touched = {action_id(a) for a in result if isinstance(a, LOCAL_WRITES)}
    assert not touched & s.local_new


@given(scenarios(), policies)
def test_push_never_writes_local_rows_and_leaves_foreign_items_alone(s, conflict) -> None:
    result = run(s, Direction.PUSH, conflict)
    assert not [a for a in result if isinstance(a, LOCAL_WRITES)]
    assert not {action_id(a) for a in result} & s.foreign
    assert not result.conflicts


@given(scenarios(), directions, policies)
def test_echoes_are_not_changes(s, direction, conflict) -> None:
    result = run(s, direction, conflict)
    for cid, (ex_kind, loc_kind) in s.kinds.items():
        if ex_kind in ("unknown", "echo_ck", "echo_hash") and loc_kind == "unchanged":
            mine = [a for a in result if action_id(a) == cid]
            assert all(isinstance(a, Relink) for a in mine), mine


@given(scenarios(), policies)
def test_modification_beats_deletion(s, conflict) -> None:
    result = run(s, Direction.TWO_WAY, conflict)
    for cid, kinds in s.kinds.items():
        if kinds in (("deleted", "changed"), ("changed", "deleted")):
            deletes = [a for a in result if isinstance(a, LocalDelete | ExchangeDelete)]
            assert cid not in {a.calsync_id for a in deletes}
            assert any(
                action_id(a) == cid for a in result if isinstance(a, EXCHANGE_WRITES + LOCAL_WRITES)
            )


@given(scenarios(), policies)
def test_conflicts_are_both_sides_edited_and_follow_the_policy(s, conflict) -> None:
    result = run(s, Direction.TWO_WAY, conflict)
    recorded = {c.calsync_id: c for c in result.conflicts}
    for cid, kinds in s.kinds.items():
        differs = (
            s.rows[cid].data
            != next(c.item.data for c in s.changes if c.item and c.item_id == f"i{cid[1:]}")
            if kinds == ("changed", "changed")
            else False
        )
        assert (cid in recorded) == differs
    for c in recorded.values():
        expected = {
            ConflictPolicy.EXCHANGE_WINS: Winner.EXCHANGE,
            ConflictPolicy.LOCAL_WINS: Winner.LOCAL,
        }.get(conflict)
        if expected is not None:
            assert c.winner is expected
        writes = [a for a in result if action_id(a) == c.calsync_id and not isinstance(a, Conflict)]
        wanted = LOCAL_WRITES if c.winner is Winner.EXCHANGE else EXCHANGE_WRITES
        assert len(writes) == 1
        assert isinstance(writes[0], wanted)
