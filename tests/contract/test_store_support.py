"""Fixtures of the store contract tests: one store per backend (memory, SQLite, PostgreSQL).

PostgreSQL: ``TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``);
unreachable → skipped with a message, except under ``CI=true`` where it fails. Each session
migrates one private schema (``search_path``) and each test starts from emptied tables.
SQLite: one migrated file per session, copied per test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from calsync.store.memory import MemoryStore
from calsync.store.migrate import upgrade
from calsync.store.schema import metadata
from calsync.store.sql import SqlStore

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MB = "alice@contoso.example"
OTHER = "bob@contoso.example"


class FakeClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.value = now

    def now(self) -> datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)


def postgres_base_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required in CI but unreachable: {reason}")
    pytest.skip(f"PostgreSQL unreachable ({reason}); set TEST_POSTGRES_URL to run these tests")


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A migrated private schema; yields a SQLAlchemy URL whose search_path points at it."""
    base = postgres_base_url()
    try:
        admin = psycopg.connect(libpq_url(base), autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        postgres_unavailable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    schema = f"calsync_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    text = url.render_as_string(hide_password=False)
    try:
        upgrade(text)
        yield text
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def empty_tables(store: SqlStore) -> None:
    """Delete every row (cheaper than TRUNCATE or a new store between hypothesis examples)."""
    with store.engine.connect() as conn, conn.begin():
        for table in reversed(metadata.sorted_tables):
            if table.name != "revision_counter":
                conn.execute(table.delete())
        conn.execute(metadata.tables["event_tombstones"].delete())
        conn.execute(metadata.tables["revision_counter"].update().values(value=0, local_value=0))


def reset_postgres(url: str) -> None:
    tables = ", ".join(t.name for t in metadata.sorted_tables if t.name != "revision_counter")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables}")
        conn.execute("UPDATE revision_counter SET value = 0, local_value = 0")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "calsync.db"
    upgrade(f"sqlite:///{path}")
    return path


def sqlite_copy(template: Path, directory: Path) -> str:
    target = directory / f"store-{uuid.uuid4().hex[:8]}.db"
    shutil.copyfile(template, target)
    os.chmod(target, 0o640)
    return f"sqlite:///{target}"


def make_store(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[Any]:
    if kind == "memory":
        yield MemoryStore(clock=clock)
        return
    if kind == "sqlite":
        url = sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
    else:
        url = request.getfixturevalue("pg_schema_url")
        reset_postgres(url)
    store = SqlStore(url, clock=clock)
    try:
        yield store
    finally:
        store.close()


BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Any]:
    yield from make_store(request.param, request, tmp_path, clock)


@pytest.fixture(params=SQL_BACKENDS)
def sql_store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Any]:
    yield from make_store(request.param, request, tmp_path, clock)
