"""The baseline: calendars synced the way a user would without calsync (run as its own process).

A straightforward exchangelib script: one `Account` per mailbox (impersonation, one shared
`Configuration`), and every `--poll` seconds the calendar view of calsync's window
(`calendar.view(start, end).only(<the fields calsync syncs>)`) of each mailbox, one after the
other. Its "local" changes are writes to Exchange (`item.save(update_fields=[...])` on the item of
the last listing); the Exchange side's changes (Outlook edits) are made through the simulator's
admin API. Prints one JSON line after the first full listing and one at the end of the period.

Run by bench/baseline.py: python -m bench.baseline_poller SIM_JSON TENANT SCHEDULE_JSON
(REQUESTS_CA_BUNDLE must name the simulator's CA, as it would name a company's proxy CA).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from exchangelib import (
    IMPERSONATION,
    OAUTH2,
    UTC,
    Account,
    Configuration,
    EWSDateTime,
    OAuth2Credentials,
    Version,
)
from exchangelib.errors import ErrorIrresolvableConflict
from exchangelib.version import EXCHANGE_O365

from calsync.sim import AdminClient

FIELDS = (
    "subject", "start", "end", "is_all_day", "location", "body", "legacy_free_busy_status",
    "reminder_is_set", "reminder_minutes_before_start", "sensitivity", "uid",
)  # fmt: skip


class SimCredentials(OAuth2Credentials):  # type: ignore[misc]
    """Client credentials whose token endpoint is the simulator's (instead of Entra ID's)."""

    def __init__(self, *args: Any, token_url: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._token_url = token_url

    @property
    def token_url(self) -> str:
        return self._token_url


def poll(accounts: list[Account], listing: dict[str, list[Any]]) -> None:
    now = EWSDateTime.now(tz=UTC)
    start, end = now - timedelta(days=30), now + timedelta(days=365)
    for account in accounts:
        listing[account.primary_smtp_address] = list(
            account.calendar.view(start=start, end=end).only(*FIELDS)
        )


def main(argv: list[str] | None = None) -> int:
    sim_json, tenant_name, schedule_json = argv if argv is not None else sys.argv[1:]
    info = json.loads(Path(sim_json).read_text())
    schedule = json.loads(Path(schedule_json).read_text())
    tenant = next(t for t in info["tenants"] if t["name"] == tenant_name)
    admin = AdminClient(info["admin_url"], info["ca_file"])
    credentials = SimCredentials(
        client_id=tenant["client_id"], client_secret=tenant["client_secret"],
        tenant_id=tenant["tenant_id"],
        token_url=f"{info['authority']}/{tenant['tenant_id']}/oauth2/v2.0/token",
    )  # fmt: skip
    config = Configuration(  # app-only tokens need the version given (no guessing request)
        service_endpoint=info["ews_url"], credentials=credentials, auth_type=OAUTH2,
        version=Version(build=EXCHANGE_O365),
    )  # fmt: skip
    admin.reset_stats()
    started = time.monotonic()
    accounts = [
        Account(address, access_type=IMPERSONATION, config=config, autodiscover=False)
        for address in tenant["mailboxes"]
    ]
    listing: dict[str, list[Any]] = {}
    poll(accounts, listing)
    initial_s = time.monotonic() - started
    initial = admin.stats()["requests"]
    print(json.dumps({"initial_s": round(initial_s, 2), "initial_requests": initial}), flush=True)

    admin.reset_stats()
    period_start = time.monotonic()
    period_s, every = float(schedule["seconds"]), float(schedule["poll"])
    events = sorted(
        [(t, "exchange", m) for t, m in schedule["exchange"]]
        + [(t, "local", m) for t, m in schedule["local"]]
    )
    next_poll, polls, writes = started + every, 0, 0
    while True:
        now = time.monotonic()
        due = [e for e in events if period_start + e[0] <= now]
        for event in due:
            events.remove(event)
            _, side, address = event
            if side == "exchange":  # an Outlook edit
                item = admin.events(address)[0]
                admin.patch_event(address, item["item_id"], subject=item["subject"] + " (edited)")
            elif listing.get(address):  # the script's own write, on another item
                item = listing[address][-1]
                item.location = "Room 4.12"
                try:
                    item.save(update_fields=["location"])
                except ErrorIrresolvableConflict:  # changed since the listing: read it, again
                    item.refresh()
                    item.location = "Room 4.12"
                    item.save(update_fields=["location"])
                writes += 1
        if now >= next_poll and now < period_start + period_s:
            poll(accounts, listing)
            polls += 1
            while next_poll <= time.monotonic():  # a poll that overran skips the ticks it missed
                next_poll += every
        end = period_start + period_s
        if now >= end:
            break
        wake = min([end, next_poll, *(period_start + e[0] for e in events)])
        time.sleep(max(0.0, min(1.0, wake - time.monotonic())))
    period = admin.stats()["requests"]
    print(json.dumps({"polls": polls, "writes": writes, "period_requests": period}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
