"""Opening the database: SQLAlchemy engines for SQLite and PostgreSQL, and driver errors mapped
to calsync's ``StoreError``/``StoreUnavailable`` (messages never carry the URL's password).

Public API:

- ``make_engine(url) -> Engine``: SQLite files are created with mode 0640 (group-readable for
  applications, never world-readable), in WAL mode with a busy timeout and foreign keys on;
  transactions begin with ``BEGIN`` or, for connections with the execution option
  ``calsync_write=True``, ``BEGIN IMMEDIATE`` (so writers queue instead of deadlocking).
  PostgreSQL URLs use psycopg 3 (``postgresql+psycopg://``; ``postgresql://`` is accepted).
- ``safe_url(url) -> str``: the URL with the password hidden.
- ``store_errors(url)``: a context manager that turns driver errors into calsync errors.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine, make_url

from calsync.errors import StoreError, StoreUnavailable

SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_FILE_MODE = 0o640


def normalise_url(url: str) -> sa.URL:
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def safe_url(url: str | sa.URL) -> str:
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except exc.ArgumentError:
        return "<unparseable store URL>"
    return parsed.render_as_string(hide_password=True)


def _create_sqlite_file(database: str) -> None:
    path = Path(database)
    if database in {"", ":memory:"} or database.startswith("file:") or path.exists():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, SQLITE_FILE_MODE)
        os.close(fd)
        os.chmod(path, SQLITE_FILE_MODE)  # the umask may have taken bits away
    except FileExistsError:
        return
    except OSError as error:
        raise StoreUnavailable(
            f"cannot create the SQLite store {path}: {error.strerror}",
            hint="check that the directory exists and that calsync may write it",
        ) from error


def make_engine(url: str) -> Engine:
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        _create_sqlite_file(parsed.database or "")
        engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _sqlite_hooks(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise StoreUnavailable(
        f"unsupported store URL {safe_url(parsed)}",
        hint="use sqlite:////path/to/calsync.db or postgresql+psycopg://user@host/db",
    )


class SqliteWriters:
    """The queue of one process's SQLite writers: SQLite has one writer at a time, and its busy
    handler polls a held lock with sleeps of up to 100 ms, so under load a thread can lose the
    lock to the others until its busy timeout ends (``database is locked``). Queued here, a writer
    is woken the moment the previous one commits; it waits as long as the busy timeout at most,
    then fails as SQLite would. Other processes still meet SQLite's busy timeout."""

    def __init__(self, url: str | sa.URL) -> None:
        self._lock = threading.RLock()
        self._url = url

    @contextmanager
    def turn(self) -> Iterator[None]:
        if not self._lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise translate(sqlite3.OperationalError("database is locked"), self._url)
        try:
            yield
        finally:
            self._lock.release()


def _sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        write = options.get("calsync_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


_UNAVAILABLE_HINTS = (
    ("unable to open database file", "check the store path and its directory's permissions"),
    ("connection refused", "is PostgreSQL running and reachable?"),
    ("could not translate host name", "check the host name in the store URL"),
    ("password authentication failed", "check the store credentials"),
    ("does not exist", "create the database or check its name in the store URL"),
    ("connection timeout", "is PostgreSQL reachable?"),
    ("timeout expired", "is PostgreSQL reachable?"),
)
_ERROR_HINTS = (
    ("database or disk is full", "store_disk_full", "free disk space on the store's volume"),
    ("no space left", "store_disk_full", "free disk space on the store's volume"),
    ("readonly database", "store_read_only", "calsync needs write access to the store file"),
    ("read-only", "store_read_only", "calsync needs write access to the store"),
    ("database is locked", "store_locked", "another process holds a long write transaction"),
    ("lock timeout", "store_locked", "another process holds a long write transaction"),
    ("disk i/o error", "store_io_error", "check the disk holding the store"),
)


def translate(error: BaseException, url: str | sa.URL) -> StoreError:
    """The calsync error for a driver error (the message names the URL without password)."""
    original = getattr(error, "orig", None) or error
    text = " ".join(str(original).split())
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.password:
        text = text.replace(str(parsed.password), "***")
    where = safe_url(parsed)
    lowered = text.lower()
    for needle, code, hint in _ERROR_HINTS:
        if needle in lowered:
            return StoreError(f"store {where}: {text}", error_code=code, hint=hint)
    connection_lost = isinstance(error, exc.DBAPIError) and error.connection_invalidated
    for needle, hint in _UNAVAILABLE_HINTS:
        if needle in lowered:
            return StoreUnavailable(f"store {where} unavailable: {text}", hint=hint)
    if connection_lost or isinstance(error, exc.InterfaceError):
        return StoreUnavailable(f"store {where} unavailable: {text}")
    return StoreError(f"store {where}: {text}")


@contextmanager
def store_errors(url: str | sa.URL) -> Iterator[None]:
    """Re-raise SQLAlchemy/driver errors as ``StoreError`` / ``StoreUnavailable``."""
    try:
        yield
    except exc.SQLAlchemyError as error:
        raise translate(error, url) from None
    except OSError as error:
        raise StoreUnavailable(f"store {safe_url(url)} unavailable: {error.strerror}") from None
