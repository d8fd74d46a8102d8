"""EWS requests of idle mailboxes, with streaming notifications on and off (`calsync run`).

Starts two simulator processes and two daemons side by side: one with streaming on (its
`poll_interval` as given; a healthy subscription moves the next poll a day away), one with
streaming off polling every `off_poll` s. Waits until every mailbox synced (and, with streaming,
settled on its healthy-subscription schedule), then counts every EWS request each simulator
receives during `minutes` of idleness and extrapolates to requests per mailbox and hour. The
window is a whole number of polling intervals, so polling mailboxes are counted fairly.

Run: python -m bench.idle_cost [--mailboxes 200] [--minutes 10] [--poll 300] [--off-poll 45]
Prints JSON and `TARGET idle_requests_per_mailbox_hour PASS|FAIL <value> 0.1` (streaming on).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.daemon import db_of, query, running, synced, wait_for, write_config
from bench.simproc import SimProcess

THRESHOLD = 0.1


def _settled(db: Path, mailboxes: int) -> bool:
    """Streaming on: every mailbox healthy and its next poll more than an hour away."""
    horizon = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    row = query(
        db,
        "SELECT count(*), sum(next_due IS NULL OR next_due < ?) FROM mailboxes "
        "WHERE state = 'healthy'",
        (horizon,),
    )
    return bool(row) and row[0] == mailboxes and row[1] == 0


def run(
    mailboxes: int = 200, minutes: float = 10, poll: int = 300, off_poll: int = 45,
    settle_timeout: float = 600,
) -> dict[str, Any]:  # fmt: skip
    """Count the requests of ``mailboxes`` settled, idle mailboxes per mode over ``minutes``."""
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        sims, dbs = {}, {}
        for mode, streaming, interval in (("on", True, poll), ("off", False, off_poll)):
            sim = SimProcess(folder / f"sim-{mode}", mailboxes=mailboxes, events_per_mailbox=3)
            stack.enter_context(sim)
            config = write_config(
                sim.info, folder, streaming=streaming, name=f"idle-{mode}",
                daemon={"poll_interval": interval, "poll_jitter": 1},
            )  # fmt: skip
            stack.enter_context(running(config))
            sims[mode], dbs[mode] = sim, db_of(config)
        wait_for(lambda: _settled(dbs["on"], mailboxes), settle_timeout, "streaming settled")
        wait_for(lambda: synced(dbs["off"]) == mailboxes, settle_timeout, "polling synced")
        for sim in sims.values():
            sim.admin.reset_stats()
        time.sleep(minutes * 60)  # the measurement window
        stats = {mode: sim.admin.stats() for mode, sim in sims.items()}
    result: dict[str, Any] = {"scenario": "idle", "mailboxes": mailboxes, "minutes": minutes}
    for mode, interval in (("on", poll), ("off", off_poll)):
        requests = stats[mode]["requests"]
        per_hour = sum(requests.values()) / mailboxes / (minutes / 60)
        result[f"streaming_{mode}"] = {
            "poll_interval_s": interval,
            "requests": requests,
            "requests_per_mailbox_hour": round(per_hour, 4),
        }
    result["streaming_on"]["connections"] = stats["on"]["streaming"]["open_connections"]
    result["streaming_off"]["expected_per_mailbox_hour"] = round(3600 / off_poll, 1)
    value = result["streaming_on"]["requests_per_mailbox_hour"]
    result["targets"] = [("idle_requests_per_mailbox_hour", value, THRESHOLD)]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--poll", type=int, default=300)
    parser.add_argument("--off-poll", type=int, default=45)
    args = parser.parse_args(argv)
    result = run(args.mailboxes, args.minutes, args.poll, args.off_poll)
    targets = result.pop("targets")
    print(json.dumps(result))
    for name, value, threshold in targets:
        verdict = "PASS" if value <= threshold else "FAIL"
        print(f"TARGET {name} {verdict} {value:.4f} {threshold}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
