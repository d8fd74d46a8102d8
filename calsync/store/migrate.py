"""Schema migrations, run programmatically (no alembic.ini for operators).

Public API:

- ``upgrade(url, revision="head")``: bring the store at ``url`` to the newest schema
  (``calsync db upgrade`` and the daemon's start call it); idempotent.
- ``current_revision(url) -> str | None``: the schema revision the store is at.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from calsync.store.engine import make_engine, store_errors

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade_engine(engine: sa.Engine, revision: str = "head") -> None:
    with store_errors(engine.url), engine.connect() as base:
        connection = base.execution_options(calsync_write=True)
        command.upgrade(alembic_config(connection), revision)
        connection.commit()


def upgrade(url: str, revision: str = "head") -> None:
    engine = make_engine(url)
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with store_errors(engine.url), engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
