"""Property tests of the store contract on memory, SQLite and PostgreSQL:

- any ``EventData`` (series with deleted and modified occurrences included) survives a round trip;
- change tracking: under random interleavings of application and calsync writes and acks,
  ``local_changes`` reports exactly the rows applications touched since the last ack (never one
  only calsync wrote), each with the row's current content.
"""

# F811: pytest fixtures are imported from test_store_support and used as parameters.
from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_support import (  # noqa: F401  (fixtures)
    BACKENDS,
    MB,
    FakeClock,
    empty_tables,
    pg_schema_url,
    reset_postgres,
    sqlite_template,
)

from calsync.model import (
    Attendee,
    AttendeeType,
    EventData,
    ModifiedOccurrence,
    Sensitivity,
    ShowAs,
)
from calsync.store.memory import MemoryStore
from calsync.store.sql import SqlStore

StoreFactory = Callable[[], AbstractContextManager[Any]]


@pytest.fixture(params=BACKENDS)
def fresh_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A factory of empty stores: one SQL store per test, emptied for every example."""
    kind = request.param
    sql: SqlStore | None = None
    if kind == "sqlite":
        target = tmp_path / "props.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        sql = SqlStore(f"sqlite:///{target}", clock=FakeClock())
    elif kind == "postgres":
        url = request.getfixturevalue("pg_schema_url")
        reset_postgres(url)
        sql = SqlStore(url, clock=FakeClock())

    @contextmanager
    def factory() -> Iterator[Any]:
        if sql is None:
            yield MemoryStore(clock=FakeClock())
        else:
            empty_tables(sql)
            yield sql

    yield factory
    if sql is not None:
        sql.close()


TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
SECONDS = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))
ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
RULES = st.sampled_from(
    [
        "RRULE:FREQ=DAILY;COUNT=20",
        "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR",
        "RRULE:FREQ=MONTHLY;BYMONTHDAY=15;UNTIL=20291231T000000Z",
        "RRULE:FREQ=MONTHLY;BYDAY=-1FR",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU;COUNT=5",
    ]
)
ATTENDEES = st.builds(
    Attendee,
    address=TEXT,
    name=TEXT,
    type=st.sampled_from(AttendeeType),
    response=st.none() | st.sampled_from(["accept", "decline", "tentative", "none"]),
)


@st.composite
def plain_events(draw: st.DrawFn, uid: bool = True) -> EventData:
    all_day = draw(st.booleans())
    start = draw(SECONDS)
    if all_day:
        start = start.replace(hour=0, minute=0, second=0)
        end = start + timedelta(days=draw(st.integers(1, 3)))
    else:
        end = start + timedelta(seconds=draw(st.integers(0, 3 * 86400)))
    return EventData(
        subject=draw(TEXT),
        start=start,
        end=end,
        timezone=draw(ZONES),
        is_all_day=all_day,
        location=draw(TEXT),
        body=draw(TEXT),
        uid=draw(TEXT.filter(bool)) if uid else draw(st.none() | TEXT),
        reminder_minutes=draw(st.none() | st.integers(0, 40000)),
        show_as=draw(st.sampled_from(ShowAs)),
        sensitivity=draw(st.sampled_from(Sensitivity)),
        categories=tuple(draw(st.lists(TEXT, max_size=3))),
        organizer=draw(st.none() | TEXT),
        attendees=tuple(draw(st.lists(ATTENDEES, max_size=3))),
        is_cancelled=draw(st.booleans()),
    )


@st.composite
def events(draw: st.DrawFn) -> EventData:
    base = draw(plain_events())
    if not draw(st.booleans()):
        return base
    step = timedelta(days=1)
    starts = [base.start + step * i for i in range(1, 8)]
    chosen = draw(st.lists(st.sampled_from(starts), unique=True, max_size=4))
    split = draw(st.integers(0, len(chosen)))
    deleted, modified = sorted(chosen[:split]), sorted(chosen[split:])
    occurrences = tuple(ModifiedOccurrence(o, draw(plain_events())) for o in modified)
    return EventData(
        **{name: getattr(base, name) for name in ("subject", "start", "end", "timezone",
                                                   "is_all_day", "uid", "show_as")},
        recurrence=draw(RULES),
        deleted_occurrences=tuple(deleted),
        modified_occurrences=occurrences,
    )  # fmt: skip


PROPS = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=40
)


@PROPS
@given(data=st.lists(events(), min_size=1, max_size=4))
def test_round_trip(fresh_store: StoreFactory, data: list[EventData]) -> None:
    with fresh_store() as store:
        with store.transaction() as tx:
            for i, item in enumerate(data):
                tx.upsert_event(MB, f"E{i}", item)
        got = store.get_events(MB, [f"E{i}" for i in range(len(data))])
        assert {k: v.data for k, v in got.items()} == {f"E{i}": d for i, d in enumerate(data)}
        assert store.local_changes(MB).changes == ()


SLOTS = st.integers(0, 3).map(lambda i: f"E{i}")
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("app_upsert"), SLOTS, plain_events()),
        st.tuples(st.just("app_delete"), SLOTS, st.none()),
        st.tuples(st.just("cs_upsert"), SLOTS, events()),
        st.tuples(st.just("cs_delete"), SLOTS, st.none()),
        st.tuples(st.just("ack"), st.none(), st.none()),
    ),
    max_size=12,
)


def check(store: Any, content: dict[str, EventData | None], pending: set[str]) -> int:
    changes = store.local_changes(MB)
    reported = {c.calsync_id: c for c in changes.changes}
    assert set(reported) == pending
    for cid, change in reported.items():
        expected = content.get(cid)
        if expected is None:
            assert change.is_delete
        else:
            assert change.event is not None
            assert change.event.data == expected
    live = {k: v for k, v in content.items() if v is not None}
    got = store.get_events(MB, list(content))
    assert {k: v.data for k, v in got.items()} == live
    assert store.count_events(MB) == len(live)
    cursor: int = changes.cursor
    return cursor


@PROPS
@given(ops=OPS)
def test_local_changes_are_exactly_the_application_writes(
    fresh_store: StoreFactory, ops: list[tuple[str, Any, Any]]
) -> None:
    with fresh_store() as store:
        content: dict[str, EventData | None] = {}
        pending: set[str] = set()
        for op, slot, data in ops:
            if op == "app_upsert":
                store.app_upsert(MB, data, slot)
                content[slot] = data
                pending.add(slot)
            elif op == "app_delete":
                if content.get(slot) is not None:
                    pending.add(slot)
                store.app_delete(MB, slot)
                content[slot] = None
            elif op == "cs_upsert":
                with store.transaction() as tx:
                    tx.upsert_event(MB, slot, data)
                content[slot] = data
            elif op == "cs_delete":
                with store.transaction() as tx:
                    tx.delete_event(MB, slot)
                content[slot] = None
                pending.discard(slot)  # calsync deleted it on purpose: nothing left to push
            else:
                cursor = check(store, content, pending)
                with store.transaction() as tx:
                    tx.ack_local(MB, cursor)
                pending.clear()
        check(store, content, pending)
