"""The store's schema as SQLAlchemy Core ``MetaData`` (the Alembic migrations must equal it).

``events`` is the contract applications read and write (DESIGN.md, "`events` table"); the other
tables are calsync's bookkeeping. SQLite stores times as UTC text ``YYYY-MM-DDTHH:MM:SSZ`` and
JSON as text; PostgreSQL uses ``timestamptz``, ``boolean`` and ``jsonb``.

Change tracking (triggers from ``calsync.store.triggers``): every INSERT/UPDATE of ``events``
takes the next value of ``revision_counter`` into ``revision``; an application's write (one not
made inside a calsync transaction, which SQLite tells by a row in ``writer_marker`` and
PostgreSQL by ``SET LOCAL calsync.writer = 'calsync'``) also sets ``local_revision``,
``local_modified_at`` and ``sync_status = 'pending'``; an application's DELETE of a single event
or series row writes an ``event_tombstones`` row; its DELETE of a modified-occurrence row adds an
``EXDATE`` line to the series. ``local_changes`` reads ``local_revision``/tombstones above the
mailbox's acknowledged cursor through indexes.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

#: UTC instant: text on SQLite, timestamptz on PostgreSQL.
UtcTime = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
#: JSON array: text on SQLite, jsonb on PostgreSQL.
JsonList = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
Flag = sa.Boolean(create_constraint=False)

mailboxes = sa.Table(
    "mailboxes",
    metadata,
    sa.Column("address", sa.Text, primary_key=True),
    sa.Column("tenant", sa.Text, nullable=False, server_default=""),
    sa.Column("direction", sa.Text, nullable=False, server_default="two-way"),
    sa.Column("state", sa.Text, nullable=False, server_default="new"),
    sa.Column("window_past_days", sa.Integer, nullable=False, server_default="30"),
    sa.Column("window_future_days", sa.Integer, nullable=False, server_default="365"),
    sa.Column("last_success", UtcTime),
    sa.Column("last_error_code", sa.Text),
    sa.Column("last_error", sa.Text),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_due", UtcTime),
    sa.Column("items_in", sa.Integer, nullable=False, server_default="0"),
    sa.Column("items_out", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lag_s", sa.Float),
    sa.Column("updated_at", UtcTime),
)

events = sa.Table(
    "events",
    metadata,
    # the UUID default is dialect SQL, created by the migration (see triggers.ID_DEFAULT)
    sa.Column("id", sa.Text, primary_key=True, server_default=sa.FetchedValue()),
    sa.Column("mailbox", sa.Text, nullable=False),
    sa.Column("uid", sa.Text),
    sa.Column("subject", sa.Text, nullable=False, server_default=""),
    sa.Column("location", sa.Text, nullable=False, server_default=""),
    sa.Column("body", sa.Text, nullable=False, server_default=""),
    sa.Column("starts_at", UtcTime, nullable=False),
    sa.Column("ends_at", UtcTime, nullable=False),
    sa.Column("timezone", sa.Text, nullable=False, server_default="UTC"),
    sa.Column("is_all_day", Flag, nullable=False, server_default=sa.false()),
    sa.Column("reminder_minutes", sa.Integer),
    sa.Column("show_as", sa.Text, nullable=False, server_default="busy"),
    sa.Column("sensitivity", sa.Text, nullable=False, server_default="normal"),
    sa.Column("categories", JsonList, nullable=False, server_default="[]"),
    sa.Column("organizer", sa.Text),
    sa.Column("attendees", JsonList, nullable=False, server_default="[]"),
    sa.Column("is_cancelled", Flag, nullable=False, server_default=sa.false()),
    sa.Column("recurrence", sa.Text),
    sa.Column("series_id", sa.Text, sa.ForeignKey("events.id", ondelete="CASCADE")),
    sa.Column("original_start", UtcTime),
    sa.Column("sync_status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("sync_error", sa.Text),
    sa.Column("local_modified_at", UtcTime),
    sa.Column("revision", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("local_revision", sa.BigInteger),
    sa.Index("ix_events_mailbox_local_revision", "mailbox", "local_revision"),
    sa.Index("ix_events_mailbox_starts_at", "mailbox", "starts_at"),
    sa.Index("ix_events_series", "series_id", "original_start", unique=True),
)

event_tombstones = sa.Table(
    "event_tombstones",
    metadata,
    sa.Column("revision", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("mailbox", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("deleted_at", UtcTime),
    sa.Index("ix_event_tombstones_mailbox_revision", "mailbox", "revision"),
)

revision_counter = sa.Table(
    "revision_counter",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.BigInteger, nullable=False, server_default="0"),
    # the revision of the last application write (the cheap "anything new?" probe)
    sa.Column("local_value", sa.BigInteger, nullable=False, server_default="0"),
)

#: SQLite only in practice: calsync inserts the one row at the start of its transactions and
#: deletes it before commit, so other connections never see it; triggers check for it.
writer_marker = sa.Table(
    "writer_marker",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
)

local_cursors = sa.Table(
    "local_cursors",
    metadata,
    sa.Column("mailbox", sa.Text, primary_key=True),
    sa.Column("cursor", sa.BigInteger, nullable=False, server_default="0"),
)

links = sa.Table(
    "links",
    metadata,
    sa.Column("mailbox", sa.Text, primary_key=True),
    sa.Column("calsync_id", sa.Text, primary_key=True),
    sa.Column("item_id", sa.Text),
    sa.Column("change_key", sa.Text),
    sa.Column("exchange_hash", sa.Text),
    sa.Column("local_hash", sa.Text),
    sa.Index("ix_links_mailbox_item_id", "mailbox", "item_id"),
)

sync_state = sa.Table(
    "sync_state",
    metadata,
    sa.Column("mailbox", sa.Text, primary_key=True),
    sa.Column("folder", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", UtcTime),
)

instances = sa.Table(
    "instances",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("starts_at", UtcTime, primary_key=True),
    sa.Column("master_id", sa.Text, nullable=False),
    sa.Column("mailbox", sa.Text, nullable=False),
    sa.Column("ends_at", UtcTime, nullable=False),
    sa.Column("show_as", sa.Text, nullable=False),
    sa.Column("is_all_day", Flag, nullable=False, server_default=sa.false()),
    sa.Index("ix_instances_mailbox_starts_at", "mailbox", "starts_at"),
    sa.Index("ix_instances_master", "master_id"),
)

daemon_heartbeat = sa.Table(
    "daemon_heartbeat",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("beat_at", UtcTime, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
)

locks = sa.Table(
    "locks",
    metadata,
    sa.Column("resource", sa.Text, primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("acquired_at", UtcTime, nullable=False),
    sa.Column("expires_at", UtcTime, nullable=False),
)

settings = sa.Table(
    "settings",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UtcTime),
)
