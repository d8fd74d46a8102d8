"""The README's SQL examples run as written against SQLite and PostgreSQL, as an application's."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import psycopg
from test_store_support import libpq_url, pg_schema_url  # noqa: F401  (fixture)

from calsync.store.sql import SqlStore

README = Path(__file__).parents[2] / "README.md"
MAILBOX = "alice@contoso.com"


def statements() -> list[str]:
    text = README.read_text()
    block = text.split("<!-- sql-examples -->")[1].split("<!-- /sql-examples -->")[0]
    sql = re.sub(r"^--.*$", "", block.replace("```sql", "").replace("```", ""), flags=re.M)
    return [s.strip() for s in re.split(r";\s*\n", sql) if s.strip().rstrip(";")]


def check_tracking(store: SqlStore) -> None:
    changes = store.local_changes(MAILBOX)
    # two inserts, one update and one delete: the series stays, the dentist is a tombstone
    kinds = sorted("delete" if c.is_delete else "upsert" for c in changes.changes)
    assert kinds == ["delete", "upsert"]
    (series,) = [c.event for c in changes.changes if c.event is not None]
    assert series.data.subject == "Stand-up"
    assert series.data.recurrence == "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=30"
    assert series.data.timezone == "Europe/Berlin"


def test_readme_sql_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'calsync.db'}"
    store = SqlStore(url, upgrade=True)
    try:
        with sqlite3.connect(tmp_path / "calsync.db") as conn:
            results = [conn.execute(s).fetchall() for s in statements()]
            (uid,) = conn.execute("SELECT uid FROM events WHERE subject = 'Stand-up'").fetchone()
        assert uid
        assert results[4] == [(0,)]  # nobody is busy yet: instances come with the next sync
        assert results[5] == []
        check_tracking(store)
    finally:
        store.close()


def test_readme_sql_on_postgresql(pg_schema_url: str) -> None:  # noqa: F811
    store = SqlStore(pg_schema_url, upgrade=False)
    try:
        with store.engine.begin() as sa_conn:
            sa_conn.exec_driver_sql("DELETE FROM events; DELETE FROM event_tombstones")
        schema = re.search(r"search_path%3D(\w+)|search_path=(\w+)", pg_schema_url)
        assert schema is not None
        name = schema.group(1) or schema.group(2)
        with psycopg.connect(libpq_url(pg_schema_url.split("?", maxsplit=1)[0])) as conn:
            conn.execute(f'SET search_path TO "{name}"')
            results = []
            for statement in statements():
                cursor = conn.execute(statement)
                results.append(cursor.fetchall() if cursor.description else [])
        assert results[4] == [(0,)]
        check_tracking(store)
    finally:
        store.close()
