"""Running the engine's integration tests over both Exchange APIs (``api = "ews" | "graph"``).

- ``APIS``: the parameter values; the ``api`` fixture (``tests/integration/conftest.py``) is
  module-scoped and parametrised with them, so a module-scoped simulator built from it is
  started once per API.
- ``use_api(config, api)``: rewrite a simulator-written ``calsync.toml`` for that API.
- ``THROTTLED`` / ``DENIED`` / ``NOT_FOUND``: the error code each API's server sends.
- ``Ops``: the simulator's request counts of one mailbox read per API (``reads``: full item
  reads, ``listings``: SyncFolderItems calls or delta pages), so request budgets are asserted
  with one expression for both.

Import it as ``from integration.apis import …`` (``tests/`` is on ``sys.path`` under pytest).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

APIS = ("ews", "graph")

THROTTLED = {"ews": "ErrorServerBusy", "graph": "ApplicationThrottled"}
DENIED = {"ews": "HTTP403", "graph": "ErrorAccessDenied"}
NOT_FOUND = {"ews": "ErrorNonExistentMailbox", "graph": "ErrorInvalidUser"}

GRAPH_DELTA = "GRAPH GET /users/{id}/calendarView/delta"
GRAPH_READ = "GRAPH GET /users/{id}/events/{id}"


def use_api(config: Path, api: str) -> Path:
    """Switch every tenant of ``config`` (as the simulator writes it) to ``api``; returns it."""
    text = config.read_text(encoding="utf-8")
    for name in APIS:
        text = text.replace(f'api = "{name}"', f'api = "{api}"')
    config.write_text(text, encoding="utf-8")
    return config


@dataclass(frozen=True)
class Ops:
    """One mailbox's simulator request counts, named alike for both APIs."""

    api: str
    counts: dict[str, int]

    @property
    def listings(self) -> int:
        """SyncFolderItems calls (EWS) or calendarView delta pages (Graph)."""
        return self.counts.get("SyncFolderItems" if self.api == "ews" else GRAPH_DELTA, 0)

    @property
    def reads(self) -> int:
        """GetItem calls (EWS, up to 100 items each) or item GETs inside ``$batch`` (Graph)."""
        return self.counts.get("GetItem" if self.api == "ews" else GRAPH_READ, 0)

    @property
    def others(self) -> set[str]:
        known = {"SyncFolderItems", "GetItem"} if self.api == "ews" else {GRAPH_DELTA, GRAPH_READ}
        return set(self.counts) - known
