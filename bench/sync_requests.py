"""EWS requests of an initial and an incremental sync, next to the theoretical minimum.

Minimum per mailbox (DESIGN.md "Benchmarks"): initial = ceil(n/512) SyncFolderItems +
ceil(g/100) GetItem + ceil(x/100) GetItem (n items, g in the window, x modified occurrences);
incremental = per mailbox with an Exchange change 1 SyncFolderItems + ceil(changed/100) GetItem,
plus one write per local change, plus the one SyncFolderItems that sees the echo of calsync's
own writes. The incremental scenario changes 1 % of the events on each side.

Run: python -m bench.sync_requests [--mailboxes 20] [--events 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.simproc import SimProcess
from calsync import logs
from calsync.config import load_config
from calsync.daemon.runtime import build_runtime, sync_mailboxes

THRESHOLD = 1.2
WRITE_OPS = ("CreateItem", "UpdateItem", "DeleteItem")


def _requests(sim: SimProcess, mailboxes: list[str]) -> Counter[str]:
    by_mailbox = sim.admin.stats()["by_mailbox"]
    total: Counter[str] = Counter()
    for address in mailboxes:
        total.update(by_mailbox.get(address, {}))
    return total


def initial_minimum(sim: SimProcess, mailboxes: list[str]) -> int:
    minimum = 0
    for address in mailboxes:
        items = sim.admin.events(address)
        masters = [i for i in items if i["series_item_id"] is None]
        occurrences = [i for i in items if i["series_item_id"] is not None]
        minimum += math.ceil(len(masters) / 512) + math.ceil(len(masters) / 100)
        minimum += math.ceil(len(occurrences) / 100)
    return minimum


def change_both_sides(
    sim: SimProcess, db: Path, mailboxes: list[str], share: float, rng: random.Random
) -> tuple[dict[str, int], dict[str, int]]:
    """Edit ``share`` of each mailbox's single events in Outlook and, others, by plain SQL."""
    exchange: Counter[str] = Counter()
    local: Counter[str] = Counter()
    with sqlite3.connect(db) as conn:
        for address in mailboxes:
            singles = [
                i
                for i in sim.admin.events(address)
                if i["series_item_id"] is None and i["recurrence"] is None
            ]
            count = max(1, round(len(singles) * share))
            picked = rng.sample(singles, min(len(singles), 2 * count))
            for item in picked[:count]:
                sim.admin.patch_event(
                    address, item["item_id"], subject=item["subject"] + " (moved)"
                )
                exchange[address] += 1
            for item in picked[count:]:
                conn.execute(
                    "UPDATE events SET location = 'Room 4.12' WHERE mailbox = ? AND "
                    "uid = ? AND series_id IS NULL",
                    (address, item["uid"]),
                )
                local[address] += 1
    return dict(exchange), dict(local)


def run(mailboxes: int = 20, events: int = 200, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    with (
        tempfile.TemporaryDirectory() as tmp,
        SimProcess(
            Path(tmp) / "sim", mailboxes=mailboxes, events_per_mailbox=events, seed=seed
        ) as sim,
    ):
        config = load_config(Path(tmp) / "sim" / "calsync.toml")
        runtime = build_runtime(config)
        boxes = config.enabled_mailboxes()
        addresses = [m.address for m in boxes]
        try:
            sim.admin.reset_stats()
            busy, cpu, start = sim.cpu_s(), time.process_time(), time.perf_counter()
            outcomes = sync_mailboxes(runtime, boxes)
            initial_s = time.perf_counter() - start
            initial_cpu, initial_busy = time.process_time() - cpu, sim.cpu_s() - busy
            assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
            initial = _requests(sim, addresses)
            initial_min = initial_minimum(sim, addresses)

            db = Path(tmp) / "sim" / "calsync.db"
            exchange, local = change_both_sides(sim, db, addresses, 0.01, rng)
            changed = [m for m in boxes if m.address in exchange or m.address in local]
            sim.admin.reset_stats()
            busy, cpu, start = sim.cpu_s(), time.process_time(), time.perf_counter()
            sync_mailboxes(runtime, changed)  # the run that a notification / local scan starts
            sync_mailboxes(runtime, [m for m in changed if m.address in local])  # sees echoes
            incremental_s = time.perf_counter() - start
            incremental_cpu, incremental_busy = time.process_time() - cpu, sim.cpu_s() - busy
            incremental = _requests(sim, addresses)
        finally:
            runtime.close()
    incremental_min = (
        sum(1 + math.ceil(n / 100) for n in exchange.values())
        + sum(local.values())  # one write per local change
        + len(local)  # the SyncFolderItems that sees the echo
    )
    initial_total, incremental_total = sum(initial.values()), sum(incremental.values())
    initial_result = {
        "scenario": "initial_sync",
        "mailboxes": mailboxes,
        "events_per_mailbox": events,
        "requests": dict(initial),
        "total": initial_total,
        "minimum": initial_min,
        "ratio": round(initial_total / initial_min, 3),
        **_times(initial_s, initial_cpu, initial_busy, initial_total),
        "targets": [("initial_requests_ratio", initial_total / initial_min, THRESHOLD)],
    }
    incremental_result = {
        "scenario": "incremental",
        "mailboxes": mailboxes,
        "events_per_mailbox": events,
        "changed": "1 % of the events on each side",
        "exchange_changes": sum(exchange.values()),
        "local_changes": sum(local.values()),
        "requests": dict(incremental),
        "total": incremental_total,
        "minimum": incremental_min,
        "ratio": round(incremental_total / incremental_min, 3),
        **_times(incremental_s, incremental_cpu, incremental_busy, incremental_total),
        "targets": [("incremental_requests_ratio", incremental_total / incremental_min, THRESHOLD)],
    }
    return {"scenario": "sync_requests", "results": [initial_result, incremental_result]}


def _times(wall: float, cpu: float, busy: float, requests: int) -> dict[str, float]:
    """Wall and CPU time, and their machine-independent ratios: the simulator's busy time
    (its process CPU) ÷ calsync's time, and calsync's CPU per request ÷ the simulator's."""
    return {
        "seconds": round(wall, 2),
        "calsync_cpu_s": round(cpu, 2),
        "simulator_busy_s": round(busy, 2),
        "simulator_busy_vs_calsync_wall": round(busy / wall, 3),
        "calsync_cpu_vs_simulator_busy": round(cpu / busy, 2) if busy else None,
        "calsync_ms_per_request": round(wall / requests * 1000, 2),
    }


_cache: dict[tuple[int, int, int], dict[str, Any]] = {}


def _both(mailboxes: int, events: int, seed: int) -> list[dict[str, Any]]:
    key = (mailboxes, events, seed)
    if key not in _cache:
        _cache[key] = run(mailboxes, events, seed)
    results: list[dict[str, Any]] = _cache[key]["results"]
    return results


def initial_sync(mailboxes: int = 20, events: int = 200, seed: int = 1) -> dict[str, Any]:
    """The `initial_sync` scenario (measured in the same run as `incremental`)."""
    return dict(_both(mailboxes, events, seed)[0])


def incremental(mailboxes: int = 20, events: int = 200, seed: int = 1) -> dict[str, Any]:
    """The `incremental` scenario: 1 % of the events changed on each side after initial_sync."""
    return dict(_both(mailboxes, events, seed)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logs.configure(format="json", level="warning")
    for result in run(args.mailboxes, args.events, args.seed)["results"]:
        targets = result.pop("targets")
        print(json.dumps(result, indent=2))
        for name, value, threshold in targets:
            verdict = "PASS" if value <= threshold else "FAIL"
            print(f"TARGET {name} {verdict} {value:.3f} {threshold}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
