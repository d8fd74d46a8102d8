"""calsync next to the baseline: the same mailboxes and changes synced by a naive poller.

Two simulator processes with the same mailboxes and calendars (same seed): calsync (`calsync
run`, streaming on) syncs one, `bench/baseline_poller.py` (one exchangelib `Account` per
mailbox, `calendar.view(window).only(<synced fields>)` every `poll` s: the freshness calsync
reaches) the other. Both first list everything (`initial`), then observe a period of
`seconds` in which 2 % of the mailboxes get one change on each side (an Outlook edit and a
local write), spread over the period at the same moments on both sides. Prints both request
counts side by side and the target `baseline_request_ratio` = calsync ÷ baseline requests in
the period.

Run: python -m bench.baseline [--mailboxes 1000] [--seconds 600] [--poll 60]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.daemon import db_of, query, running, synced, wait_for, write, write_config
from bench.idle_cost import _settled
from bench.simproc import SimProcess

THRESHOLD = 0.1


def _schedule(mailboxes: int, seconds: float, share: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    changed = rng.sample(range(mailboxes), max(1, round(share * mailboxes)))
    span = (0.05 * seconds, 0.85 * seconds)  # spread over the period, settled before its end
    return {
        "exchange": sorted((round(rng.uniform(*span), 2), i) for i in changed),
        "local": sorted((round(rng.uniform(*span), 2), i) for i in changed),
    }


def _calsync_period(
    sim: SimProcess, db: Path, addresses: list[str], plan: dict[str, Any], seconds: float
) -> tuple[int, int]:
    """Make the planned changes on calsync's side over ``seconds``; (edits, local writes)."""
    start = time.monotonic()
    steps = sorted([(t, "exchange", i) for t, i in plan["exchange"]] +
                   [(t, "local", i) for t, i in plan["local"]])  # fmt: skip
    edits = writes = 0
    for at, side, index in steps:
        time.sleep(max(0.0, start + at - time.monotonic()))
        address = addresses[index]
        items = sim.admin.events(address)
        item = items[0] if side == "exchange" else items[-1]
        if side == "exchange":
            sim.admin.patch_event(address, item["item_id"], subject=item["subject"] + " (edited)")
            edits += 1
        else:
            sql = "UPDATE events SET location = 'Room 4.12' WHERE mailbox = ? AND uid = ?"
            writes += write(db, sql + " AND series_id IS NULL", (address, item["uid"])) > 0
    time.sleep(max(0.0, start + seconds - time.monotonic()))
    return edits, writes


def run(
    mailboxes: int = 1000, seconds: float = 600, poll: int = 60, share: float = 0.02,
    events: int = 5, seed: int = 3, workers: int = 4, settle_poll: int = 10,
) -> dict[str, Any]:  # fmt: skip
    """``settle_poll``: calsync's poll_interval, which matters only until a mailbox's subscription
    is healthy (then its next poll is a day away); short, so that calsync settles quickly."""
    plan = _schedule(mailboxes, seconds, share, seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        kw = {"mailboxes": mailboxes, "events_per_mailbox": events, "seed": seed}
        with (
            SimProcess(folder / "sim-b", **kw) as sim_b,
            SimProcess(folder / "sim-c", **kw) as sim_c,
        ):
            base_addresses = sim_b.info["tenants"][0]["mailboxes"]
            addresses = sim_c.info["tenants"][0]["mailboxes"]
            schedule = folder / "schedule.json"
            schedule.write_text(json.dumps({
                "seconds": seconds, "poll": poll,
                "exchange": [(t, base_addresses[i]) for t, i in plan["exchange"]],
                "local": [(t, base_addresses[i]) for t, i in plan["local"]],
            }))  # fmt: skip
            config = write_config(
                sim_c.info,
                folder,
                name="calsync",
                daemon={"max_concurrent_syncs": workers, "poll_interval": settle_poll},
            )
            db = db_of(config)
            env = {**os.environ, "REQUESTS_CA_BUNDLE": sim_b.info["ca_file"]}
            env.pop("CURL_CA_BUNDLE", None)
            started = time.monotonic()
            with (
                running(config),
                subprocess.Popen(
                    [sys.executable, "-m", "bench.baseline_poller",
                     str(sim_b.state_dir / "sim.json"), sim_b.info["tenants"][0]["name"],
                     str(schedule)],
                    stdout=subprocess.PIPE, text=True, env=env,
                ) as poller,
            ):  # fmt: skip
                wait_for(lambda: synced(db) == mailboxes, 600, "calsync's initial sync")
                calsync_initial_s = time.monotonic() - started
                calsync_initial = sim_c.admin.stats()["requests"]
                sim_c.admin.reset_stats()
                wait_for(lambda: _settled(db, mailboxes), 300, "calsync's subscriptions")
                calsync_settled_s = time.monotonic() - started
                calsync_settle = sim_c.admin.stats()["requests"]
                sim_c.admin.reset_stats()
                box: dict[str, tuple[int, int]] = {}
                side = threading.Thread(
                    target=lambda: box.update(
                        done=_calsync_period(sim_c, db, addresses, plan, seconds)
                    )
                )
                side.start()
                output, _ = poller.communicate(timeout=seconds + 600)
                side.join()
                calsync_period = sim_c.admin.stats()["requests"]
                seen = query(
                    db, "SELECT count(DISTINCT mailbox) FROM events WHERE subject LIKE '%(edited)'"
                )
        if poller.returncode != 0:
            raise RuntimeError(f"the baseline poller exited with {poller.returncode}")
    base_initial, base_period = (json.loads(line) for line in output.splitlines()[:2])
    total = {"calsync": sum(calsync_period.values()),
             "baseline": sum(base_period["period_requests"].values())}  # fmt: skip
    ratio = total["calsync"] / total["baseline"]
    initial_total = sum(calsync_initial.values())
    base_initial_total = sum(base_initial["initial_requests"].values())
    return {
        "scenario": "baseline",
        "mailboxes": mailboxes,
        "events_per_mailbox": events,
        "period_s": seconds,
        "baseline_poll_s": poll,
        "changed_mailboxes": len(plan["exchange"]),
        "initial_sync": {
            "calsync_requests": calsync_initial,
            "calsync_total": initial_total,
            "calsync_s": round(calsync_initial_s, 1),
            "calsync_settled_s": round(calsync_settled_s, 1),
            "calsync_settle_requests": calsync_settle,
            "baseline_requests": base_initial["initial_requests"],
            "baseline_total": base_initial_total,
            "baseline_s": base_initial["initial_s"],
            "ratio": round(initial_total / base_initial_total, 3),
        },
        "incremental": {
            "calsync_requests": calsync_period,
            "calsync_total": total["calsync"],
            "calsync_edits_and_writes": list(box.get("done", (0, 0))),
            "calsync_mailboxes_with_edit_in_store": int(seen[0]) if seen else 0,
            "baseline_requests": base_period["period_requests"],
            "baseline_total": total["baseline"],
            "baseline_polls": base_period["polls"],
            "baseline_writes": base_period["writes"],
            "ratio": round(ratio, 4),
        },
        "targets": [("baseline_request_ratio", ratio, THRESHOLD)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--poll", type=int, default=60)
    args = parser.parse_args(argv)
    result = run(args.mailboxes, args.seconds, args.poll)
    targets = result.pop("targets")
    print(json.dumps(result))
    for name, value, threshold in targets:
        verdict = "PASS" if value <= threshold else "FAIL"
        print(f"TARGET {name} {verdict} {value:.4f} {threshold}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
