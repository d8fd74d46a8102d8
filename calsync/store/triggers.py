"""Dialect SQL of the change tracking, version 1 (used by migration ``0001``; never edit —
a later change gets new constants and a new migration).

See ``calsync.store.schema`` for what the triggers do. SQLite tells calsync's writes by a row in
``writer_marker`` (inserted and deleted inside calsync's own transaction, so never visible to
another connection); PostgreSQL by the transaction-local setting ``calsync.writer``.
The PostgreSQL triggers also ``NOTIFY calsync_local_writes`` with the mailbox as payload.
"""

from __future__ import annotations

# S608: every statement here is a constant built from constants; nothing comes from input.
# ruff: noqa: S608

PG_NOTIFY_CHANNEL = "calsync_local_writes"

SQLITE_ID_DEFAULT = (
    "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))"
)
PG_ID_DEFAULT = "(gen_random_uuid())::text"

_UTC = "'%Y-%m-%dT%H:%M:%SZ'"
_APP_SET = f"""
    revision = (SELECT value FROM revision_counter WHERE id = 1),
    local_revision = (SELECT value FROM revision_counter WHERE id = 1),
    local_modified_at = strftime({_UTC}, 'now'),
    sync_status = 'pending',
    sync_error = NULL,
    starts_at = coalesce(strftime({_UTC}, NEW.starts_at), NEW.starts_at),
    ends_at = coalesce(strftime({_UTC}, NEW.ends_at), NEW.ends_at),
    original_start = coalesce(strftime({_UTC}, NEW.original_start), NEW.original_start)"""
_BUMP = "UPDATE revision_counter SET value = value + 1 WHERE id = 1;"
_APP_BUMP = "UPDATE revision_counter SET value = value + 1, local_value = value + 1 WHERE id = 1;"
_APP = "NOT EXISTS (SELECT 1 FROM writer_marker)"
_CALSYNC = "EXISTS (SELECT 1 FROM writer_marker)"

SQLITE_UP = [
    f"""CREATE TRIGGER events_app_insert AFTER INSERT ON events WHEN {_APP}
BEGIN
  {_APP_BUMP}
  UPDATE events SET {_APP_SET}, uid = coalesce(NEW.uid, NEW.id) WHERE rowid = NEW.rowid;
END""",
    f"""CREATE TRIGGER events_app_update AFTER UPDATE ON events WHEN {_APP}
BEGIN
  {_APP_BUMP}
  UPDATE events SET {_APP_SET} WHERE rowid = NEW.rowid;
END""",
    f"""CREATE TRIGGER events_calsync_insert AFTER INSERT ON events WHEN {_CALSYNC}
BEGIN
  {_BUMP}
  UPDATE events SET revision = (SELECT value FROM revision_counter WHERE id = 1)
  WHERE rowid = NEW.rowid;
END""",
    f"""CREATE TRIGGER events_calsync_update AFTER UPDATE ON events WHEN {_CALSYNC}
BEGIN
  {_BUMP}
  UPDATE events SET revision = (SELECT value FROM revision_counter WHERE id = 1)
  WHERE rowid = NEW.rowid;
END""",
    f"""CREATE TRIGGER events_app_delete AFTER DELETE ON events WHEN {_APP}
BEGIN
  {_APP_BUMP}
  INSERT INTO event_tombstones (revision, mailbox, event_id, deleted_at)
  SELECT value, OLD.mailbox, OLD.id, strftime({_UTC}, 'now') FROM revision_counter
  WHERE id = 1 AND OLD.series_id IS NULL;
  UPDATE events SET recurrence = coalesce(recurrence, '') || char(10) || CASE
      WHEN is_all_day AND strftime('%H%M%S', OLD.original_start) = '000000'
      THEN 'EXDATE;VALUE=DATE:' || strftime('%Y%m%d', OLD.original_start)
      ELSE 'EXDATE:' || strftime('%Y%m%dT%H%M%SZ', OLD.original_start) END
  WHERE id = OLD.series_id AND OLD.original_start IS NOT NULL;
END""",
    # applications rarely turn on PRAGMA foreign_keys: cascade to occurrence rows by trigger
    """CREATE TRIGGER events_series_cascade AFTER DELETE ON events WHEN OLD.series_id IS NULL
BEGIN
  DELETE FROM events WHERE series_id = OLD.id;
END""",
]

SQLITE_DOWN = [
    f"DROP TRIGGER IF EXISTS {name}"
    for name in (
        "events_app_insert",
        "events_app_update",
        "events_calsync_insert",
        "events_calsync_update",
        "events_app_delete",
        "events_series_cascade",
    )
]

_PG_IS_CALSYNC = "coalesce(current_setting('calsync.writer', true), '') = 'calsync'"

PG_UP = [
    f"""CREATE FUNCTION calsync_events_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE rev bigint;
BEGIN
  UPDATE revision_counter SET value = value + 1 WHERE id = 1 RETURNING value INTO rev;
  NEW.revision := rev;
  IF NOT {_PG_IS_CALSYNC} THEN
    NEW.local_revision := rev;
    UPDATE revision_counter SET local_value = rev WHERE id = 1;
    NEW.local_modified_at := date_trunc('second', clock_timestamp());
    NEW.sync_status := 'pending';
    NEW.sync_error := NULL;
    IF TG_OP = 'INSERT' AND NEW.uid IS NULL THEN
      NEW.uid := NEW.id;
    END IF;
    PERFORM pg_notify('{PG_NOTIFY_CHANNEL}', NEW.mailbox);
  END IF;
  RETURN NEW;
END $$""",
    """CREATE TRIGGER events_write BEFORE INSERT OR UPDATE ON events
FOR EACH ROW EXECUTE FUNCTION calsync_events_write()""",
    f"""CREATE FUNCTION calsync_events_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE rev bigint;
BEGIN
  IF {_PG_IS_CALSYNC} THEN
    RETURN OLD;
  END IF;
  UPDATE revision_counter SET value = value + 1 WHERE id = 1 RETURNING value INTO rev;
  UPDATE revision_counter SET local_value = rev WHERE id = 1;
  IF OLD.series_id IS NULL THEN
    INSERT INTO event_tombstones (revision, mailbox, event_id, deleted_at)
    VALUES (rev, OLD.mailbox, OLD.id, date_trunc('second', clock_timestamp()));
  ELSIF OLD.original_start IS NOT NULL THEN
    UPDATE events SET recurrence = coalesce(recurrence, '') || chr(10) || CASE
        WHEN is_all_day AND (OLD.original_start AT TIME ZONE 'UTC')::time = '00:00'
        THEN 'EXDATE;VALUE=DATE:' || to_char(OLD.original_start AT TIME ZONE 'UTC', 'YYYYMMDD')
        ELSE 'EXDATE:' || to_char(OLD.original_start AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS"Z"')
        END
    WHERE id = OLD.series_id;
  END IF;
  PERFORM pg_notify('{PG_NOTIFY_CHANNEL}', OLD.mailbox);
  RETURN OLD;
END $$""",
    """CREATE TRIGGER events_delete AFTER DELETE ON events
FOR EACH ROW EXECUTE FUNCTION calsync_events_delete()""",
]

PG_DOWN = [
    "DROP TRIGGER IF EXISTS events_delete ON events",
    "DROP TRIGGER IF EXISTS events_write ON events",
    "DROP FUNCTION IF EXISTS calsync_events_delete()",
    "DROP FUNCTION IF EXISTS calsync_events_write()",
]
