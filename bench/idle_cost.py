"""EWS requests of idle mailboxes with streaming notifications on (the daemon, `calsync run`).

Starts the simulator in this process and `calsync run` as a subprocess (streaming on,
`poll_interval` as given), waits until every mailbox synced and settled on its
healthy-subscription schedule, then counts every EWS request the simulator receives during
`--minutes` of idleness and extrapolates to requests per mailbox and hour.

Run: python -m bench.idle_cost [--mailboxes 200] [--minutes 10] [--poll 300]
Prints JSON and `TARGET idle_requests_per_mailbox_hour PASS|FAIL <value> 0.1`.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from calsync.sim import start_in_thread

THRESHOLD = 0.1


def run(
    mailboxes: int = 200, minutes: float = 10, poll: int = 300, settle_timeout: float = 600
) -> dict[str, Any]:
    """Count the requests of ``mailboxes`` settled, idle mailboxes over ``minutes``."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_in_thread(
            Path(tmp) / "sim", mailboxes=mailboxes, events_per_mailbox=3, seed=2
        ) as sim,
    ):
        state = Path(sim.info["ca_file"]).parent
        text = (
            (state / "calsync.toml")
            .read_text()
            .replace("[logging]", f"[daemon]\npoll_interval = {poll}\n\n[logging]")
        )
        config = state / "idle.toml"
        config.write_text(text)
        config.chmod(0o600)
        db = state / "calsync.db"
        with subprocess.Popen(
            [sys.executable, "-m", "calsync", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as daemon:
            try:
                deadline = time.monotonic() + settle_timeout
                while True:  # settled: every mailbox synced, next poll far away
                    horizon = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
                    try:
                        with closing(sqlite3.connect(db)) as conn:
                            total, soon = conn.execute(
                                "SELECT count(*), sum(next_due IS NULL OR next_due < ?) "
                                "FROM mailboxes WHERE state = 'healthy'",
                                (horizon,),
                            ).fetchone()
                    except sqlite3.Error:
                        total, soon = 0, 0
                    if total == mailboxes and soon == 0:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"not settled: {total} healthy, {soon} due soon")
                    time.sleep(1)
                sim.admin.reset_stats()
                time.sleep(minutes * 60)  # the measurement window
                stats = sim.admin.stats()
            finally:
                daemon.terminate()
                daemon.wait(60)
    requests = stats["requests"]
    total_requests = sum(requests.values())
    per_mailbox_hour = total_requests / mailboxes / (minutes / 60)
    return {
        "scenario": "idle",
        "mailboxes": mailboxes,
        "minutes": minutes,
        "poll_interval_s": poll,
        "requests": requests,
        "streaming": stats["streaming"],
        "requests_per_mailbox_hour": round(per_mailbox_hour, 4),
        "targets": [("idle_requests_per_mailbox_hour", per_mailbox_hour, THRESHOLD)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--poll", type=int, default=300)
    args = parser.parse_args(argv)
    result = run(args.mailboxes, args.minutes, args.poll)
    targets = result.pop("targets")
    print(json.dumps(result))
    for name, value, threshold in targets:
        verdict = "PASS" if value <= threshold else "FAIL"
        print(f"TARGET {name} {verdict} {value:.4f} {threshold}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
