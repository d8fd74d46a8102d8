"""Scale: the daemon (`calsync run`) with many mailboxes of tiny calendars.

Starts the simulator in this process (two tenants) and `calsync run` as a subprocess, measures
the time until every mailbox has had its first successful sync, the EWS requests that took, the
daemon's peak RSS (VmHWM, the calsync process only) and its CPU while idle afterwards.

Run: python -m bench.scale [--mailboxes 10000] [--events 1] [--idle-seconds 60] [--no-streaming]
Prints JSON and `TARGET scale_peak_rss_mib PASS|FAIL <value> 1024`.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from calsync.sim import start_in_thread

THRESHOLD_MIB = 1024.0
SYNC_TIMEOUT_S = 900


def _status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _synced(db: Path) -> int:
    try:
        with closing(sqlite3.connect(db, timeout=5)) as conn:
            row = conn.execute(
                "SELECT count(*) FROM mailboxes WHERE last_success IS NOT NULL"
            ).fetchone()
            return int(row[0])
    except sqlite3.Error:
        return 0


def run(
    mailboxes: int = 10_000,
    events: int = 1,
    idle_seconds: float = 60,
    streaming: bool = True,
    workers: int = 16,
) -> dict[str, Any]:
    """Measure first full sync time, peak RSS and idle CPU of the daemon at ``mailboxes``."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_in_thread(
            Path(tmp) / "sim", mailboxes=mailboxes // 2, tenants=2, events_per_mailbox=events
        ) as sim,
    ):
        state = Path(sim.info["ca_file"]).parent
        total = sum(len(t["mailboxes"]) for t in sim.info["tenants"])
        text = (state / "calsync.toml").read_text()
        if not streaming:
            text = text.replace('mode = "streaming"', 'mode = "off"')
        text = text.replace(
            "[logging]",
            f"[daemon]\npoll_interval = 3600\nmax_concurrent_syncs = {workers}\n\n[logging]",
        ).replace('format = "json"', 'format = "json"\nlevel = "warning"')
        config = state / "scale.toml"
        config.write_text(text)
        config.chmod(0o600)
        db = state / "calsync.db"
        sim.admin.reset_stats()
        started = time.monotonic()
        with subprocess.Popen(
            [sys.executable, "-m", "calsync", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as daemon:
            try:
                deadline = started + SYNC_TIMEOUT_S
                while (synced := _synced(db)) < total:
                    if daemon.poll() is not None:
                        raise RuntimeError(f"the daemon exited with {daemon.returncode}")
                    if time.monotonic() > deadline:
                        peak_so_far = _status_mib(daemon.pid, "VmHWM")
                        raise RuntimeError(
                            f"{synced}/{total} synced in {SYNC_TIMEOUT_S} s "
                            f"(peak RSS so far {peak_so_far:.0f} MiB)"
                        )
                    time.sleep(1)
                first_sync_s = time.monotonic() - started
                sync_requests = sum(sim.admin.stats()["requests"].values())
                rss_after_sync = _status_mib(daemon.pid, "VmRSS")
                cpu_before = _cpu_seconds(daemon.pid)
                time.sleep(idle_seconds)  # the idle measurement window
                idle_cpu = (_cpu_seconds(daemon.pid) - cpu_before) / idle_seconds
                peak = _status_mib(daemon.pid, "VmHWM")
                rss_idle = _status_mib(daemon.pid, "VmRSS")
            finally:
                daemon.terminate()
                daemon.wait(60)
    return {
        "scenario": "scale",
        "mailboxes": total,
        "events_per_mailbox": events,
        "streaming": streaming,
        "max_concurrent_syncs": workers,
        "first_full_sync_s": round(first_sync_s, 1),
        "mailboxes_per_s": round(total / first_sync_s, 1),
        "first_sync_requests": sync_requests,
        "rss_after_sync_mib": round(rss_after_sync, 1),
        "rss_idle_mib": round(rss_idle, 1),
        "peak_rss_mib": round(peak, 1),
        "idle_seconds": idle_seconds,
        "idle_cpu_share_of_core": round(idle_cpu, 4),
        "targets": [("scale_peak_rss_mib", peak, THRESHOLD_MIB)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--no-streaming", action="store_true")
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args(argv)
    result = run(
        args.mailboxes, args.events, args.idle_seconds, not args.no_streaming, args.workers
    )
    targets = result.pop("targets")
    print(json.dumps(result))
    for name, value, threshold in targets:
        verdict = "PASS" if value <= threshold else "FAIL"
        print(f"TARGET {name} {verdict} {value:.1f} {threshold}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
