"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 18:23:39.107940
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from calsync.store import triggers

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    id_default = triggers.PG_ID_DEFAULT if dialect == "postgresql" else triggers.SQLITE_ID_DEFAULT
    op.create_table(
        "daemon_heartbeat",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "beat_at",
            sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "event_tombstones",
        sa.Column("revision", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("mailbox", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column(
            "deleted_at",
            sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("revision"),
    )
    with op.batch_alter_table("event_tombstones", schema=None) as batch_op:
        batch_op.create_index(
            "ix_event_tombstones_mailbox_revision", ["mailbox", "revision"], unique=False
        )

    op.create_table(
        "events",
        sa.Column("id", sa.Text(), server_default=sa.text(id_default), nullable=False),
        sa.Column("mailbox", sa.Text(), nullable=False),
        sa.Column("uid", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), server_default="", nullable=False),
        sa.Column("location", sa.Text(), server_default="", nullable=False),
        sa.Column("body", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "starts_at",
            sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "ends_at",
            sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("timezone", sa.Text(), server_default="UTC", nullable=False),
        sa.Column("is_all_day", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reminder_minutes", sa.Integer(), nullable=True),
        sa.Column("show_as", sa.Text(), server_default="busy", nullable=False),
        sa.Column("sensitivity", sa.Text(), server_default="normal", nullable=False),
        sa.Column(
            "categories",
            sa.Text().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("organizer", sa.Text(), nullable=True),
        sa.Column(
            "attendees",
            sa.Text().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("is_cancelled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("recurrence", sa.Text(), nullable=True),
        sa.Column("series_id", sa.Text(), nullable=True),
        sa.Column(
            "original_start",
            sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
            nullable=True,
        ),
        sa.Column("sync_status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("sync_error", sa.Text(), nullable=True),
        sa.Column(
            "local_modified_at",
            sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
            nullable=True,
        ),
        sa.Column("revision", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("local_revision", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["series_id"], ["events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_mailbox_local_revision", ["mailbox", "local_revision"], unique=False
        )
        batch_op.create_index("ix_events_mailbox_starts_at", ["mailbox", "starts_at"], unique=False)
        batch_op.create_index("ix_events_series", ["series_id", "original_start"], unique=True)

    op.create_table(
        "instances",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column(
            "starts_at",
            sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("master_id", sa.Text(), nullable=False),
        sa.Column("mailbox", sa.Text(), nullable=False),
        sa.Column(
            "ends_at",
            sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("show_as", sa.Text(), nullable=False),
        sa.Column("is_all_day", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "starts_at"),
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index(
            "ix_instances_mailbox_starts_at", ["mailbox", "starts_at"], unique=False
        )
        batch_op.create_index("ix_instances_master", ["master_id"], unique=False)

    op.create_table(
        "links",
        sa.Column("mailbox", sa.Text(), nullable=False),
        sa.Column("calsync_id", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Text(), nullable=True),
        sa.Column("change_key", sa.Text(), nullable=True),
        sa.Column("exchange_hash", sa.Text(), nullable=True),
        sa.Column("local_hash", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("mailbox", "calsync_id"),
    )
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.create_index("ix_links_mailbox_item_id", ["mailbox", "item_id"], unique=False)

    op.create_table(
        "local_cursors",
        sa.Column("mailbox", sa.Text(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("mailbox"),
    )
    op.create_table(
        "locks",
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column(
            "acquired_at",
            sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "expires_at",
            sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("resource"),
    )
    op.create_table(
        "mailboxes",
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("tenant", sa.Text(), server_default="", nullable=False),
        sa.Column("direction", sa.Text(), server_default="two-way", nullable=False),
        sa.Column("state", sa.Text(), server_default="new", nullable=False),
        sa.Column("window_past_days", sa.Integer(), server_default="30", nullable=False),
        sa.Column("window_future_days", sa.Integer(), server_default="365", nullable=False),
        sa.Column(
            "last_success",
            sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
            nullable=True,
        ),
        sa.Column("last_error_code", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_due",
            sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
            nullable=True,
        ),
        sa.Column("items_in", sa.Integer(), server_default="0", nullable=False),
        sa.Column("items_out", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lag_s", sa.Float(), nullable=True),
        sa.Column(
            "updated_at",
            sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("address"),
    )
    op.create_table(
        "revision_counter",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("local_value", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column(
            "updated_at",
            sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "sync_state",
        sa.Column("mailbox", sa.Text(), nullable=False),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column(
            "updated_at",
            sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("mailbox", "folder"),
    )
    op.create_table(
        "writer_marker",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )

    op.execute("INSERT INTO revision_counter (id, value) VALUES (1, 0)")
    for statement in triggers.PG_UP if dialect == "postgresql" else triggers.SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in triggers.PG_DOWN if dialect == "postgresql" else triggers.SQLITE_DOWN:
        op.execute(statement)
    op.drop_table("writer_marker")
    op.drop_table("sync_state")
    op.drop_table("settings")
    op.drop_table("revision_counter")
    op.drop_table("mailboxes")
    op.drop_table("locks")
    op.drop_table("local_cursors")
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_index("ix_links_mailbox_item_id")

    op.drop_table("links")
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index("ix_instances_master")
        batch_op.drop_index("ix_instances_mailbox_starts_at")

    op.drop_table("instances")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_series")
        batch_op.drop_index("ix_events_mailbox_starts_at")
        batch_op.drop_index("ix_events_mailbox_local_revision")

    op.drop_table("events")
    with op.batch_alter_table("event_tombstones", schema=None) as batch_op:
        batch_op.drop_index("ix_event_tombstones_mailbox_revision")

    op.drop_table("event_tombstones")
    op.drop_table("daemon_heartbeat")
