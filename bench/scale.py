"""Scale: the daemon (`calsync run`) with many mailboxes of tiny calendars.

Starts the simulator (two tenants) and `calsync run` as two subprocesses (each with a core of
its own), measures the time until every mailbox has had its first successful sync, the EWS
requests that took, the CPU seconds both processes spent on it (their ratio does not depend on
the machine's speed), the daemon's peak RSS (VmHWM, the calsync process only) and its CPU while
idle afterwards.

Run: python -m bench.scale [--mailboxes 10000] [--events 1] [--idle-seconds 60] [--no-streaming]
Prints JSON and `TARGET scale_peak_rss_mib PASS|FAIL <value> 1024`.
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
from pathlib import Path
from typing import Any

from bench.simproc import SimProcess, cpu_seconds

THRESHOLD_MIB = 1024.0
SYNC_TIMEOUT_S = 900


def _status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


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
    workers: int = 4,
) -> dict[str, Any]:
    """Measure first full sync time, peak RSS and idle CPU of the daemon at ``mailboxes``."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        SimProcess(
            Path(tmp) / "sim", mailboxes=mailboxes // 2, tenants=2, events_per_mailbox=events
        ) as sim,
    ):
        state = sim.state_dir
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
        sim_cpu_before = sim.cpu_s()
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
                sim_cpu = sim.cpu_s() - sim_cpu_before
                daemon_cpu = cpu_seconds(daemon.pid)
                by_op = sim.admin.stats()["requests"]
                sync_requests = sum(by_op.values())
                rss_after_sync = _status_mib(daemon.pid, "VmRSS")
                cpu_before = cpu_seconds(daemon.pid)
                time.sleep(idle_seconds)  # the idle measurement window
                idle_cpu = (cpu_seconds(daemon.pid) - cpu_before) / idle_seconds
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
        "first_sync_requests_by_op": by_op,
        "requests_per_s": round(sync_requests / first_sync_s, 1),
        "daemon_cpu_s": round(daemon_cpu, 1),
        "simulator_cpu_s": round(sim_cpu, 1),
        # machine-independent: CPU per request of calsync vs of the simulator in the same run
        "daemon_cpu_ms_per_request": round(daemon_cpu / sync_requests * 1000, 2),
        "simulator_busy_vs_daemon_cpu": round(sim_cpu / daemon_cpu, 3),
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
    parser.add_argument("--workers", type=int, default=4)
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
