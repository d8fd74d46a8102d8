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

from calsync.sim import start_in_thread

THRESHOLD = 0.1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--poll", type=int, default=300)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_in_thread(
            Path(tmp) / "sim", mailboxes=args.mailboxes, events_per_mailbox=3, seed=2
        ) as sim,
    ):
        state = Path(sim.info["ca_file"]).parent
        text = (
            (state / "calsync.toml")
            .read_text()
            .replace("[logging]", f"[daemon]\npoll_interval = {args.poll}\n\n[logging]")
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
                deadline = time.monotonic() + 600
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
                    if total == args.mailboxes and soon == 0:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"not settled: {total} healthy, {soon} due soon")
                    time.sleep(1)
                sim.admin.reset_stats()
                time.sleep(args.minutes * 60)  # the measurement window
                stats = sim.admin.stats()
            finally:
                daemon.terminate()
                daemon.wait(60)
    requests = stats["requests"]
    total_requests = sum(requests.values())
    hours = args.minutes / 60
    per_mailbox_hour = total_requests / args.mailboxes / hours
    print(
        json.dumps(
            {
                "scenario": "idle",
                "mailboxes": args.mailboxes,
                "minutes": args.minutes,
                "poll_interval_s": args.poll,
                "requests": requests,
                "streaming": stats["streaming"],
                "requests_per_mailbox_hour": round(per_mailbox_hour, 4),
            }
        )
    )
    verdict = "PASS" if per_mailbox_hour <= THRESHOLD else "FAIL"
    print(f"TARGET idle_requests_per_mailbox_hour {verdict} {per_mailbox_hour:.4f} {THRESHOLD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
