"""A wire-level Microsoft 365 simulator: Entra ID tokens and EWS calendars over HTTPS.

The real `msal` and `exchangelib` code paths run against it offline. Public API:

- `main(argv) -> int` — the `calsync sim` command (`python -m calsync.sim` does the same):
  `--state-dir DIR [--host 127.0.0.1] [--port 0] [--mailboxes N] [--events-per-mailbox M]
  [--seed S] [--tenants T] [--token-lifetime SECONDS] [--onprem]
  [--max-subscriptions-per-connection 200] [--heartbeat 30] [--minute 60]`.
  Writes DIR/ca.pem, DIR/<tenant>-app.pem, DIR/<tenant>.secret, DIR/calsync.toml and, once it
  accepts connections, DIR/sim.json; prints `calsync-sim ready URL state=DIR`; exits 0 on
  SIGTERM/SIGINT.
- `start_in_thread(state_dir, **options) -> SimHandle` — the same server in a background thread
  (about half a second to start; calendars are generated lazily per mailbox). `SimHandle` has
  `.info` (the sim.json dict), `.url`, `.ca_file`, `.admin` (an `AdminClient`), `.tenant(name)`,
  `.stop()` and is a context manager.
- `AdminClient(admin_url, ca_file)` — the admin JSON API under /_sim/ (mailboxes, events,
  stats, faults, secrets); see `calsync.sim.admin`.
- `calsync.sim.pytest_plugin` — fixtures `calsync_sim` and `calsync_sim_factory`.

Endpoints: Entra ID `/{tenant}/v2.0/.well-known/openid-configuration`,
`/{tenant}/oauth2/v2.0/token`, `/{tenant}/discovery/v2.0/keys`, `/common/discovery/instance`;
EWS `/EWS/Exchange.asmx`; autodiscover v2 `/autodiscover/autodiscover.json/v1.0/{address}`;
admin `/_sim/...`. The simulator imports nothing from the rest of calsync: its recurrence
expansion (`recurrence.py`) and Windows/IANA zone table (`tz.py`) are its own.
"""

from __future__ import annotations

from calsync.sim.admin import AdminClient, AdminError
from calsync.sim.command import main
from calsync.sim.thread import SimHandle, start_in_thread

__all__ = ["AdminClient", "AdminError", "SimHandle", "main", "start_in_thread"]
