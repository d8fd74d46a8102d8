"""Edit latency of the daemon: an Outlook edit (simulator admin API) → the row in the store.

Runs `calsync run` as a subprocess against an in-process simulator, once with streaming
notifications and once with polling only, makes edits one at a time and measures how long each
takes to show in the SQLite store (the store is read every 20 ms: a measurement, not a sync).

Run: python -m bench.edit_latency [--mailboxes 50] [--edits 200] [--off-edits 10] [--poll 10]
Prints one JSON object per mode and `TARGET edit_latency_p95_s PASS|FAIL <value> 2.0`.
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
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from calsync.sim import SimHandle, start_in_thread

THRESHOLD_S = 2.0


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
    mailboxes: int = 50, edits: int = 200, off_edits: int = 10, poll: int = 10, seed: int = 1
) -> dict[str, Any]:
    """Measure streaming then polling latency; ``targets`` holds edit_latency_p95_s (streaming)."""
    rng = random.Random(seed)
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_in_thread(
            Path(tmp) / "sim", mailboxes=mailboxes, events_per_mailbox=5, seed=seed
        ) as sim,
    ):
        on = measure(sim, streaming=True, edits=edits, poll=poll, rng=rng)
        off = measure(sim, streaming=False, edits=off_edits, poll=poll, rng=rng)
    return {
        "scenario": "edit_latency",
        "mailboxes": mailboxes,
        "streaming": on,
        "polling": off,
        "targets": [("edit_latency_p95_s", on["p95_s"], THRESHOLD_S)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=50)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--off-edits", type=int, default=10)
    parser.add_argument("--poll", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    result = run(args.mailboxes, args.edits, args.off_edits, args.poll, args.seed)
    print(json.dumps(result["streaming"]))
    print(json.dumps(result["polling"]))
    for name, value, threshold in result["targets"]:
        verdict = "PASS" if value <= threshold else "FAIL"
        print(f"TARGET {name} {verdict} {value:.3f} {threshold}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
