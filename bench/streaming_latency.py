"""Edit -> on_change latency of streaming notifications against the simulator.

Starts a simulator in this process, subscribes its mailboxes with calsync's
``StreamingNotificationSource`` (grouped by ``--limit`` per connection), then makes ``--edits``
admin-API edits (``--workers`` at a time, each on its own mailboxes) and measures, per edit, the
time from the edit's request to the ``on_change(address, "notification")`` call (debounce
included). This is the notification half of the daemon's ``edit_latency_p95_s`` (edit -> local
store); the daemon adds one incremental sync on top. Usage:

    python bench/streaming_latency.py [--edits 200] [--mailboxes 100] [--limit 50]
        [--workers 8] [--debounce-ms 250]

Prints one JSON object, then ``TARGET edit_latency_p95_s PASS|FAIL <value> 2.0``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from calsync import logs
from calsync.auth import TenantCredentials, TokenProvider
from calsync.ews import EwsClient, EwsSettings
from calsync.ews.notifications import StreamingNotificationSource
from calsync.model import Mailbox
from calsync.sim import start_in_thread
from calsync.subscriptions import SupervisorSettings

TARGET_S = 2.0


class Arrivals:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.seen: dict[str, list[float]] = {}
        self.subscribed = 0

    def __call__(self, address: str, reason: str) -> None:
        with self.cond:
            if reason == "notification":
                self.seen.setdefault(address, []).append(time.monotonic())
            elif reason in {"subscribed", "resubscribed"}:
                self.subscribed += 1
            self.cond.notify_all()

    def wait_after(self, address: str, since: float, timeout: float) -> float | None:
        def arrived() -> float | None:
            return next((t for t in self.seen.get(address, []) if t >= since), None)

        with self.cond:
            self.cond.wait_for(lambda: arrived() is not None, timeout)
            return arrived()


def client_for(sim: Any) -> EwsClient:
    info, tenant = sim.info, sim.info["tenants"][0]
    credentials = TenantCredentials(
        name=tenant["name"], tenant_id=tenant["tenant_id"], client_id=tenant["client_id"],
        client_secret=tenant["client_secret"], authority=info["authority"],
        ca_file=info["ca_file"],
    )  # fmt: skip
    settings = EwsSettings(tenant=tenant["name"], ews_url=info["ews_url"], ca_file=info["ca_file"])
    return EwsClient(settings, TokenProvider(credentials))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as state,
        start_in_thread(state, mailboxes=args.mailboxes, events_per_mailbox=2) as sim,
    ):
        tenant = sim.info["tenants"][0]
        mailboxes = [Mailbox(a, tenant["name"]) for a in tenant["mailboxes"]]
        arrivals = Arrivals()
        client = client_for(sim)
        settings = SupervisorSettings(
            max_subscriptions_per_connection=args.limit,
            notification_debounce_ms=args.debounce_ms,
        )
        source = StreamingNotificationSource({client.tenant: client}, arrivals, settings)
        source.update_mailboxes(mailboxes)
        started = time.monotonic()
        source.start()
        try:
            total = len(mailboxes)
            if not source.wait_for(lambda c: c.subscribed == total, 120):
                raise SystemExit(f"not subscribed in time: {source.counts()}")
            with arrivals.cond:
                arrivals.cond.wait_for(lambda: arrivals.subscribed >= total, 30)
            subscribe_s = time.monotonic() - started
            items = {m.address: sim.admin.events(m.address)[0]["item_id"] for m in mailboxes}
            latencies: list[float] = []
            lost = 0
            lock = threading.Lock()

            def worker(index: int) -> None:
                nonlocal lost
                mine = [m.address for m in mailboxes[index :: args.workers]]
                for n in range(index, args.edits, args.workers):
                    address = mine[(n // args.workers) % len(mine)]
                    since = time.monotonic()
                    sim.admin.patch_event(address, items[address], subject=f"bench {n}")
                    arrived = arrivals.wait_after(address, since, 30)
                    with lock:
                        if arrived is None:
                            lost += 1
                        else:
                            latencies.append(arrived - since)

            with ThreadPoolExecutor(args.workers) as pool:
                list(pool.map(worker, range(args.workers)))
            counts = source.counts()
            streaming = sim.admin.stats()["streaming"]
        finally:
            source.stop()
            client.close()
    return {
        "measures": "admin edit -> on_change(notification), debounce included",
        "edits": args.edits,
        "lost": lost,
        "mailboxes": args.mailboxes,
        "max_subscriptions_per_connection": args.limit,
        "connections": streaming["open_connections"],
        "groups": counts.groups,
        "debounce_ms": args.debounce_ms,
        "workers": args.workers,
        "subscribe_all_s": round(subscribe_s, 3),
        "p50_s": round(statistics.median(latencies), 4) if latencies else None,
        "p95_s": round(percentile(latencies, 0.95), 4) if latencies else None,
        "max_s": round(max(latencies), 4) if latencies else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--mailboxes", type=int, default=100)
    parser.add_argument("--limit", type=int, default=50, help="subscriptions per connection")
    parser.add_argument("--workers", type=int, default=8, help="edits in flight at once")
    parser.add_argument("--debounce-ms", type=int, default=250)
    parser.add_argument("--quick", action="store_true", help="accepted for bench/__main__.py")
    args = parser.parse_args(argv)
    args.workers = max(1, min(args.workers, args.mailboxes))
    logs.configure(format="json", level="warning")  # stderr; stdout is the report
    result = run(args)
    print(json.dumps(result, indent=2))
    p95 = result["p95_s"]
    ok = p95 is not None and result["lost"] == 0 and p95 <= TARGET_S
    value = f"{p95:.3f}" if p95 is not None else "nan"
    print(f"TARGET edit_latency_p95_s {'PASS' if ok else 'FAIL'} {value} {TARGET_S}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
