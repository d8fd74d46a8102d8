"""A wire-level Microsoft 365 simulator: Entra ID tokens and EWS calendars over HTTPS.

Public API:

- `main(argv)` — the `calsync sim` command.
- `start_in_thread(state_dir, **options) -> SimHandle` — a running simulator in a background
  thread (context manager); `.info` (the sim.json dict), `.url`, `.admin`, `.stop()`.
- `calsync.sim.admin.AdminClient(admin_url, ca_file)` — the admin API client.

The simulator imports nothing from the rest of calsync.
"""

from __future__ import annotations

from calsync.sim.admin import AdminClient, AdminError
from calsync.sim.command import main
from calsync.sim.thread import SimHandle, start_in_thread

__all__ = ["AdminClient", "AdminError", "SimHandle", "main", "start_in_thread"]
