"""Soak test of `calsync run` (not CI): N mailboxes for T minutes with random edits and faults.

    .venv/bin/python -m bench.soak --mailboxes 1000 --minutes 30

Starts the simulator in this process and the daemon as a subprocess on a SQLite store, then keeps
making edits on both sides (simulator admin API; plain SQL on `events`) and injects faults in
turn (ErrorServerBusy on one tenant, random 5xx, a denied mailbox) for a minute each, with quiet
minutes in between. At the end the faults are cleared, the daemon gets time to converge, and the
report says: the daemon's RSS at the start (after the first full sync) and at the end, mailboxes
stuck (no success within 3 poll intervals), edits that never reached the other side, and the
exit code of SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from calsync.sim import SimHandle, start_in_thread

POLL = 60


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sql(db: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db, timeout=30)) as conn, conn:
        return conn.execute(query, params).fetchall()


def write_config(folder: Path, sim: SimHandle, workers: int) -> Path:
    info, q = sim.info, json.dumps
    lines = [
        f"[store]\nurl = {q('sqlite:///' + str(folder / 'calsync.db'))}\n",
        f"[daemon]\npoll_interval = {POLL}\npoll_jitter = 10\nmax_concurrent_syncs = {workers}",
        "permanent_failure_retry = 120\nmax_backoff = 120\n",
        '[subscriptions]\nmode = "off"\n\n[logging]\nformat = "json"\nlevel = "info"\n',
    ]
    for t in info["tenants"]:
        lines.append(
            f"[[tenants]]\nname = {q(t['name'])}\ntenant_id = {q(t['tenant_id'])}\n"
            f"client_id = {q(t['client_id'])}\nclient_secret_file = {q(t['name'] + '.secret')}\n"
            f"authority = {q(info['authority'])}\news_url = {q(info['ews_url'])}\n"
            f"ca_file = {q(info['ca_file'])}\n"
        )
        lines.append(
            f"[[mailbox_groups]]\ntenant = {q(t['name'])}\naddresses = {q(t['mailboxes'])}\n"
        )
    path = folder / "calsync.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def synced_count(db: Path) -> int:
    return sql(db, "SELECT count(*) FROM mailboxes WHERE last_success IS NOT NULL")[0][0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailboxes", type=int, default=1000, help="total, over two tenants")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--edits-per-minute", type=int, default=60)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="calsync-soak-"))
    with start_in_thread(folder, mailboxes=args.mailboxes // 2, tenants=2,
                         events_per_mailbox=5, seed=args.seed) as sim:  # fmt: skip
        config, db = write_config(folder, sim, args.workers), folder / "calsync.db"
        log = (folder / "daemon.log").open("w")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "calsync", "run", "--config", str(config)], stderr=log
        )
        try:
            return soak(args, rng, sim, daemon, db, folder)
        finally:
            if daemon.poll() is None:
                daemon.kill()
            daemon.wait()
            log.close()


def soak(
    args: argparse.Namespace,
    rng: random.Random,
    sim: SimHandle,
    daemon: subprocess.Popen[bytes],
    db: Path,
    folder: Path,
) -> int:
    tenants = [t["name"] for t in sim.info["tenants"]]
    addresses = [a for t in sim.info["tenants"] for a in t["mailboxes"]]
    t0 = time.monotonic()
    while not db.exists() or synced_count(db) < len(addresses):
        if time.monotonic() - t0 > 1800 or daemon.poll() is not None:
            print("initial sync did not finish", file=sys.stderr)
            return 1
        time.sleep(2)
    print(f"initial sync of {len(addresses)} mailboxes: {time.monotonic() - t0:.0f} s")
    rss_start = rss_mib(daemon.pid)
    exchange_edits: list[tuple[str, str]] = []
    local_edits: list[tuple[str, str]] = []
    faults = [
        {"server_busy_rate": 0.5, "scope": {"tenants": [tenants[0]]}},
        {"error_rate": 0.05},
        {"deny_mailboxes": [rng.choice(addresses)]},
    ]
    end = time.monotonic() + args.minutes * 60
    minute = 0
    while time.monotonic() < end and daemon.poll() is None:
        minute += 1
        sim.admin.clear_faults()
        if minute % 2 == 0:
            sim.admin.set_faults(**faults[(minute // 2) % len(faults)])
        for i in range(args.edits_per_minute):
            address = rng.choice(addresses)
            subject = f"soak {minute}-{i}"
            if rng.random() < 0.5:
                start = datetime.now(UTC) + timedelta(days=rng.randint(1, 60))
                sim.admin.create_event(
                    address, subject=subject, start=start.isoformat(),
                    end=(start + timedelta(hours=1)).isoformat(), timezone="UTC",
                )  # fmt: skip
                exchange_edits.append((address, subject))
            else:
                start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
                sql(db, "INSERT INTO events (mailbox, subject, starts_at, ends_at) "
                    "VALUES (?, ?, ?, ?)", (address, subject, start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")))  # fmt: skip
                local_edits.append((address, subject))
            time.sleep(60 / args.edits_per_minute)
    sim.admin.clear_faults()
    print("faults cleared; letting the daemon converge")
    time.sleep(3 * POLL)
    rss_end = rss_mib(daemon.pid)
    local_subjects = {(m, s) for m, s in sql(db, "SELECT mailbox, subject FROM events")}
    unsynced = [e for e in exchange_edits if e not in local_subjects]
    for address in sorted({m for m, _ in local_edits}):
        remote = {e["subject"] for e in sim.admin.events(address)}
        unsynced += [(m, s) for m, s in local_edits if m == address and s not in remote]
    limit = (datetime.now(UTC) - timedelta(seconds=3 * POLL)).strftime("%Y-%m-%dT%H:%M:%S")
    stuck = sql(
        db,
        "SELECT address, state, last_error_code FROM mailboxes "
        "WHERE state != 'disabled' AND (last_success IS NULL OR last_success < ?)",
        (limit,),
    )
    daemon.send_signal(signal.SIGTERM)
    code = daemon.wait(timeout=60)
    print(f"mailboxes            {len(addresses)}")
    print(f"minutes              {args.minutes}")
    print(f"edits                {len(exchange_edits)} exchange, {len(local_edits)} local")
    print(f"rss_start_mib        {rss_start:.1f}")
    print(f"rss_end_mib          {rss_end:.1f}")
    print(f"stuck_mailboxes      {len(stuck)} {stuck[:10]}")
    print(f"unsynced_edits       {len(unsynced)} {unsynced[:10]}")
    print(f"sigterm_exit_code    {code}")
    print(f"logs                 {folder / 'daemon.log'}")
    return 0 if not stuck and not unsynced and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
