"""Graph requests of an initial and an incremental sync next to the theoretical minimum, and the
latency of an Outlook edit reaching the store with delta polling: `sync_requests` and
`edit_latency` for `api = "graph"`.

Theoretical minimum over Graph v1.0, per mailbox (HTTP requests, i.e. round trips):

* initial: ceil(E/200) calendarView delta pages + ceil(g/20) ``$batch`` calls, where E is the
  number of entries the delta reports for the window (single events, and every occurrence and
  exception of a series: delta never returns series masters) and g the number of distinct items
  behind them (singles and series masters). Delta entries carry no body nor the calsync id, so
  each item has to be read once in full, and 20 reads is what one ``$batch`` carries;
* incremental: per mailbox with an Outlook change 1 delta page + ceil(changed/20) ``$batch``;
  per local change 1 write (``PATCH`` with ``If-Match``); per mailbox with local changes the one
  delta page that sees the echoes of calsync's writes. calsync's actual writes cost 2 requests:
  Graph cannot update a meeting without mailing its attendees, so each write first reads the
  item's attendees (``meeting_write_skipped``) — the ratio shows that price.

Outlook counts each request inside a ``$batch`` against its 10,000 requests per 10 minutes per
mailbox, so ``outlook_units`` (requests as Outlook counts them) is reported beside the HTTP count.
The incremental scenario changes 1 % of the single events on each side (events without
attendees on the local side). Latency: `calsync run` as a subprocess with `subscriptions off`
and ``poll_interval`` (10 s, the configuration's minimum), Outlook edits one at a time, each
timed until its row shows in the store (read every 20 ms). The mailboxes poll nearly in step and
each edit is made just after the poll that showed the previous one, so the figures are close to
the worst case: one interval plus a run. Prints JSON; no TARGET lines.

Run: python -m bench.graph_requests [--mailboxes 20] [--events 200] [--edits 20] [--seed 1]
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.edit_latency import measure
from calsync import logs
from calsync.config import load_config
from calsync.daemon.runtime import build_runtime, sync_mailboxes
from calsync.graph import GraphClient
from calsync.model import Mailbox
from calsync.sim import SimHandle, start_in_thread

PAGE, BATCH = 200, 20
DELTA = "GRAPH GET /users/{id}/calendarView/delta"
ENVELOPE = "GRAPH POST /$batch"


def use_graph(config: Path) -> Path:
    config.write_text(config.read_text().replace('api = "ews"', 'api = "graph"'))
    return config


def requests_of(sim: SimHandle, runtime: Any, mailboxes: list[Mailbox]) -> dict[str, Any]:
    """Per operation (the simulator's count: an item read inside a ``$batch`` counts there as
    a read), HTTP requests and Outlook units (calsync's Graph client counts), summed."""
    stats = sim.admin.stats()
    ops: Counter[str] = Counter()
    for mailbox in mailboxes:
        ops.update(stats["by_mailbox"].get(mailbox.address, {}))
    ops[ENVELOPE] = stats["requests"].get(ENVELOPE, 0)
    clients = runtime.graph_clients
    return {
        "requests": dict(ops),
        "total": sum(runtime.exchange.request_count(m) for m in mailboxes),
        "outlook_units": sum(clients[m.tenant].budget_count(m.address) for m in mailboxes),
    }


def since(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    return after | {k: after[k] - before[k] for k in ("total", "outlook_units")}


def initial_minimum(client: GraphClient, mailboxes: list[str]) -> int:
    """ceil(E/200) + ceil(g/20) per mailbox, E counted with calendarView over the window."""
    now = datetime.now(UTC)
    lo, hi = (now - timedelta(days=30)), (now + timedelta(days=365))
    minimum = 0
    for address in mailboxes:
        url: str | None = client.user_url(
            address,
            f"/calendarView?startDateTime={lo:%Y-%m-%dT%H:%M:%SZ}"
            f"&endDateTime={hi:%Y-%m-%dT%H:%M:%SZ}&$select=id,type,seriesMasterId&$top=1000",
        )
        entries, items = 0, set()
        while url:
            _, body = client.call(address, "GET", url)
            for entry in body.get("value", []):
                entries += 1
                items.add(entry.get("seriesMasterId") or entry["id"])
            url = body.get("@odata.nextLink")
        minimum += math.ceil(entries / PAGE) + math.ceil(len(items) / BATCH)
    return minimum


def change_both_sides(
    sim: SimHandle, db: Path, mailboxes: list[str], share: float, rng: random.Random
) -> tuple[dict[str, int], dict[str, int]]:
    """Edit ``share`` of each mailbox's single events in Outlook and as many others locally
    (not meetings: Graph would mail their attendees, calsync skips them by default)."""
    exchange: Counter[str] = Counter()
    local: Counter[str] = Counter()
    with sqlite3.connect(db) as conn:
        for address in mailboxes:
            singles = [
                i
                for i in sim.admin.events(address)
                if i["series_item_id"] is None and i["recurrence"] is None and not i["attendees"]
            ]
            count = max(1, round(len(singles) * share))
            picked = rng.sample(singles, min(len(singles), 2 * count))
            for item in picked[:count]:
                sim.admin.patch_event(address, item["item_id"], subject=item["subject"] + " *")
                exchange[address] += 1
            for item in picked[count:]:
                conn.execute(
                    "UPDATE events SET location = 'Room 4.12' WHERE mailbox = ? AND "
                    "uid = ? AND series_id IS NULL",
                    (address, item["uid"]),
                )
                local[address] += 1
    return dict(exchange), dict(local)


def requests_scenario(sim: SimHandle, folder: Path, rng: random.Random) -> dict[str, Any]:
    config = load_config(use_graph(folder / "calsync.toml"))
    runtime = build_runtime(config)
    boxes = config.enabled_mailboxes()
    addresses = [m.address for m in boxes]
    try:
        client = next(iter(runtime.graph_clients.values()))
        initial_min = initial_minimum(client, addresses)
        sim.admin.reset_stats()
        zero = requests_of(sim, runtime, boxes)
        start = time.perf_counter()
        outcomes = sync_mailboxes(runtime, boxes)
        initial_s = time.perf_counter() - start
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
        initial = since(requests_of(sim, runtime, boxes), zero)

        exchange, local = change_both_sides(sim, folder / "calsync.db", addresses, 0.01, rng)
        changed = [m for m in boxes if m.address in exchange or m.address in local]
        sim.admin.reset_stats()
        zero = requests_of(sim, runtime, boxes)
        start = time.perf_counter()
        sync_mailboxes(runtime, changed)  # the run the poll (or a notification) starts
        sync_mailboxes(runtime, [m for m in changed if m.address in local])  # sees the echoes
        incremental_s = time.perf_counter() - start
        incremental = since(requests_of(sim, runtime, boxes), zero)
    finally:
        runtime.close()
    incremental_min = (
        sum(1 + math.ceil(n / BATCH) for n in exchange.values())
        + sum(local.values())  # one PATCH per local change
        + len(local)  # the delta page that sees the echoes
    )
    return {
        "initial": initial
        | {
            "minimum": initial_min,
            "ratio": round(initial["total"] / initial_min, 3),
            "seconds": round(initial_s, 2),
        },
        "incremental": incremental
        | {
            "exchange_changes": sum(exchange.values()),
            "local_changes": sum(local.values()),
            "minimum": incremental_min,
            "ratio": round(incremental["total"] / incremental_min, 3),
            "seconds": round(incremental_s, 2),
        },
    }


def latency_scenario(sim: SimHandle, edits: int, poll: int, rng: random.Random) -> dict[str, Any]:
    """``edit_latency``'s polling measurement, with the tenant switched to Graph."""
    state = Path(sim.info["ca_file"]).parent
    use_graph(state / "calsync.toml")  # measure() derives its config from this file
    result = measure(sim, streaming=False, edits=edits, poll=poll, rng=rng)
    return {k: v for k, v in result.items() if k != "mode"} | {"mode": "graph delta polling"}


def run(mailboxes: int = 20, events: int = 200, edits: int = 20, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        with start_in_thread(
            Path(tmp) / "sim", mailboxes=mailboxes, events_per_mailbox=events, seed=seed
        ) as sim:
            counts = requests_scenario(sim, Path(tmp) / "sim", rng)
        with start_in_thread(
            Path(tmp) / "latency", mailboxes=min(mailboxes, 20), events_per_mailbox=5, seed=seed
        ) as sim:
            latency = latency_scenario(sim, edits, 10, rng)
    return {
        "scenario": "graph_requests",
        "mailboxes": mailboxes,
        "events_per_mailbox": events,
        **counts,
        "edit_latency": latency,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logs.configure(format="json", level="warning")
    print(json.dumps(run(args.mailboxes, args.events, args.edits, args.seed), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
