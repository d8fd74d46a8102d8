"""calsync's local store: the ``events`` table applications use, plus sync bookkeeping.

- ``calsync.store.sql.SqlStore(url, *, clock=None, upgrade=False)``: SQLite or PostgreSQL.
- ``calsync.store.memory.MemoryStore(clock=None)``: the same semantics in memory (tests).
- ``calsync.store.migrate.upgrade(url)``: apply the Alembic migrations (``calsync db upgrade``).
- ``calsync.store.schema``: the declared schema; ``calsync.store.api``: value types
  (``Instance``, ``MailboxStatus``).

Nothing is imported here, so that importing the memory store does not load SQLAlchemy.
"""

from __future__ import annotations
