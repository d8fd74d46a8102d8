"""Latency of the daemon, both ways: Exchange edit → store row, store row → Exchange item.

Runs `calsync run` as a subprocess against a simulator process, once with streaming
notifications and once with polling only (`poll_interval` as given). Each mode makes `edits`
edits in Outlook (the simulator's admin API) and then `edits` application writes to the store
(plain SQL), `workers` at a time, each worker on mailboxes of its own, and measures per edit the
time until the change shows on the other side (the store is read, the simulator's item fetched,
every 20 ms: a measurement, not a sync). p50/p95/max per direction and mode; the target is the
p95 of Exchange → store with streaming.

`measure()` is the older measurement (one direction, one edit at a time, the simulator in this
process) that bench/graph_requests.py uses for Graph.

Run: python -m bench.edit_latency [--mailboxes 50] [--edits 200] [--off-edits 40] [--poll 10]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

from bench.daemon import db_of, query, running, wait_for, write, write_config
from bench.simproc import SimProcess
from calsync.sim import SimHandle

THRESHOLD_S = 2.0
STEP_S = 0.02


def _until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(STEP_S)
    return False


def summary(latencies: list[float], edits: int) -> dict[str, Any]:
    ordered = sorted(latencies)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)] if ordered else None
    return {
        "edits": edits,
        "arrived": len(ordered),
        "p50_s": round(statistics.median(ordered), 3) if ordered else None,
        "p95_s": round(p95, 3) if p95 is not None else None,
        "max_s": round(ordered[-1], 3) if ordered else None,
    }


def _parallel(edits: int, workers: int, one: Callable[[int, int], float | None]) -> list[float]:
    """Run ``one(worker, n)`` for n < edits, ``workers`` at a time (worker n % workers)."""
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        for n in range(index, edits, workers):
            took = one(index, n)
            if took is not None:
                with lock:
                    latencies.append(took)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(worker, range(workers)))
    return latencies


def measure_daemon(
    sim: SimProcess, folder: Path, *, streaming: bool, edits: int, poll: int, workers: int,
    seed: int,
) -> dict[str, Any]:  # fmt: skip
    rng = random.Random(seed)
    config = write_config(
        sim.info, folder, streaming=streaming, name=f"latency-{int(streaming)}",
        daemon={"poll_interval": poll, "poll_jitter": 1, "notification_debounce_ms": 100},
    )  # fmt: skip
    db = db_of(config)
    mailboxes = sim.info["tenants"][0]["mailboxes"]
    singles = {
        m: [i for i in sim.admin.events(m) if i["series_item_id"] is None and not i["recurrence"]]
        for m in mailboxes
    }
    expected = sum(len([i for i in sim.admin.events(m) if i["series_item_id"] is None])
                   for m in mailboxes)  # fmt: skip
    mine = {w: mailboxes[w::workers] for w in range(workers)}
    picks = {n: rng.random() for n in range(2 * edits)}
    timeout = 3 * poll + 30
    with running(config):

        def count() -> int:
            row = query(db, "SELECT count(*) FROM events WHERE series_id IS NULL")
            return int(row[0]) if row else 0

        wait_for(lambda: count() >= expected, 300, "the first sync")
        if streaming:  # let the subscriptions open (measurement setup)
            time.sleep(3)

        def to_store(worker: int, n: int) -> float | None:
            box = mine[worker][n // workers % len(mine[worker])]
            item = singles[box][int(picks[n] * len(singles[box]))]
            subject = f"latency {int(streaming)} {n}"
            started = time.monotonic()
            sim.admin.patch_event(box, item["item_id"], subject=subject)
            sql = "SELECT 1 FROM events WHERE mailbox = ? AND subject = ?"
            if _until(lambda: query(db, sql, (box, subject)) is not None, timeout):
                return time.monotonic() - started
            return None

        def to_exchange(worker: int, n: int) -> float | None:
            box = mine[worker][n // workers % len(mine[worker])]
            item = singles[box][int(picks[edits + n] * len(singles[box]))]
            where = f"Room {int(streaming)}.{n}"
            started = time.monotonic()
            sql = "UPDATE events SET location = ? WHERE mailbox = ? AND uid = ?"
            sql += " AND series_id IS NULL"
            if write(db, sql, (where, box, item["uid"])) != 1:
                return None
            if _until(lambda: sim.admin.event(box, item["item_id"])["location"] == where, timeout):
                return time.monotonic() - started
            return None

        exchange_to_store = _parallel(edits, workers, to_store)
        store_to_exchange = _parallel(edits, workers, to_exchange)
    return {
        "mode": "streaming" if streaming else "polling",
        "poll_interval_s": poll,
        "workers": workers,
        "exchange_to_store": summary(exchange_to_store, edits),
        "store_to_exchange": summary(store_to_exchange, edits),
    }


# --- one direction, one edit at a time, the simulator in this process (bench/graph_requests.py) --


def _config(sim: SimHandle, folder: Path, *, streaming: bool, poll: int) -> Path:
    text = (Path(sim.info["ca_file"]).parent / "calsync.toml").read_text()
    text = text.replace(
        f"sqlite:///{Path(sim.info['ca_file']).parent}/calsync.db", f"sqlite:///{folder}/calsync.db"
    )
    state = Path(sim.info["ca_file"]).parent
    text = text.replace(
        'client_secret_file = "contoso.secret"', f'client_secret_file = "{state}/contoso.secret"'
    )
    text = text.replace('ca_file = "ca.pem"', f'ca_file = "{sim.info["ca_file"]}"')
    text = text.replace('mode = "streaming"', f'mode = "{"streaming" if streaming else "off"}"')
    text = text.replace(
        "[logging]",
        f"[daemon]\npoll_interval = {poll}\npoll_jitter = 1\n"
        "notification_debounce_ms = 100\n\n[logging]",
    )
    path = folder / "calsync.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def _wait(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def measure(
    sim: SimHandle, *, streaming: bool, edits: int, poll: int, rng: random.Random
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = _config(sim, folder, streaming=streaming, poll=poll)
        db = folder / "calsync.db"
        mailboxes = sim.info["tenants"][0]["mailboxes"]
        expected = sum(
            len([i for i in sim.admin.events(m) if i["series_item_id"] is None]) for m in mailboxes
        )
        with subprocess.Popen(
            [sys.executable, "-m", "calsync", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as daemon:
            try:

                def count() -> int:
                    if not db.exists():
                        return 0
                    with closing(sqlite3.connect(db)) as conn:
                        try:
                            return int(
                                conn.execute(
                                    "SELECT count(*) FROM events WHERE series_id IS NULL"
                                ).fetchone()[0]
                            )
                        except sqlite3.Error:
                            return 0

                if not _wait(lambda: count() >= expected, 300):
                    raise RuntimeError("the daemon did not finish its first sync in 300 s")
                time.sleep(3 if streaming else 0)  # let the subscriptions open (measurement setup)
                latencies = []
                for n in range(edits):
                    mailbox = rng.choice(mailboxes)
                    item = rng.choice(
                        [i for i in sim.admin.events(mailbox) if i["series_item_id"] is None]
                    )
                    subject = f"latency {int(streaming)} {n}"
                    started = time.monotonic()
                    sim.admin.patch_event(mailbox, item["item_id"], subject=subject)

                    def arrived(s: str = subject) -> bool:
                        with closing(sqlite3.connect(db)) as conn:
                            return (
                                conn.execute(
                                    "SELECT 1 FROM events WHERE subject = ?", (s,)
                                ).fetchone()
                                is not None
                            )

                    if _wait(arrived, 3 * poll + 30):
                        latencies.append(time.monotonic() - started)
            finally:
                daemon.terminate()
                daemon.wait(60)
    ordered = sorted(latencies)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)] if ordered else float("inf")
    return {
        "mode": "streaming" if streaming else "polling",
        "poll_interval_s": poll,
        "edits": edits,
        "arrived": len(latencies),
        "p50_s": round(statistics.median(ordered), 3) if ordered else None,
        "p95_s": round(p95, 3),
        "max_s": round(max(ordered), 3) if ordered else None,
    }


def run(
    mailboxes: int = 50, edits: int = 200, off_edits: int = 40, poll: int = 10,
    workers: int = 10, seed: int = 1,
) -> dict[str, Any]:  # fmt: skip
    """Measure streaming then polling; ``targets`` holds edit_latency_p95_s (streaming)."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        SimProcess(Path(tmp) / "sim", mailboxes=mailboxes, events_per_mailbox=5, seed=seed) as sim,
    ):
        kw = {"poll": poll, "workers": workers, "seed": seed}
        on = measure_daemon(sim, Path(tmp), streaming=True, edits=edits, **kw)
        off = measure_daemon(sim, Path(tmp), streaming=False, edits=off_edits, **kw)
    p95 = on["exchange_to_store"]["p95_s"]
    lost = edits - on["exchange_to_store"]["arrived"]
    return {
        "scenario": "latency",
        "mailboxes": mailboxes,
        "streaming_on": on,
        "streaming_off": off,
        "targets": [
            ("edit_latency_p95_s", float("inf") if p95 is None or lost else p95, THRESHOLD_S)
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=50)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--off-edits", type=int, default=40)
    parser.add_argument("--poll", type=int, default=10)
    parser.add_argument("--workers", type=int, default=10)
    args = parser.parse_args(argv)
    result = run(args.mailboxes, args.edits, args.off_edits, args.poll, args.workers)
    targets = result.pop("targets")
    print(json.dumps(result))
    for name, value, threshold in targets:
        verdict = "PASS" if value <= threshold else "FAIL"
        print(f"TARGET {name} {verdict} {value:.3f} {threshold}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
