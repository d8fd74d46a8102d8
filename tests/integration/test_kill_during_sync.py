"""SIGKILL at random moments during `calsync sync --once`: the next run converges, nothing lost.

A loop edits both sides (Outlook through the simulator's admin API, applications through plain
SQL), starts the real CLI, and kills it with SIGKILL after a random (seeded) delay, then goes
on. After the last kill two clean runs must leave both sides equal: no duplicate, no lost edit.
Over EWS and over Graph (the ``api`` fixture).
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calsync.sim import SimHandle, start_in_thread
from integration.apis import use_api

ROUNDS = 8


@pytest.fixture
def sim(tmp_path: Path, api: str) -> Iterator[SimHandle]:
    with start_in_thread(tmp_path / "sim", mailboxes=2, events_per_mailbox=120, seed=11) as handle:
        use_api(Path(handle.info["ca_file"]).parent / "calsync.toml", api)
        yield handle


def run_cli(config: Path, kill_after_lines: int | None) -> int:
    """Run `calsync sync --once`; SIGKILL it once it has logged ``kill_after_lines`` lines.

    The config logs at debug level, so the lines mark progress all through a run (token, SOAP
    requests and responses, page commits): the kill lands at a point of the run, not of time.
    """
    with subprocess.Popen(
        [sys.executable, "-m", "calsync", "sync", "--once", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stderr is not None
        try:
            if kill_after_lines is not None:
                for seen, _line in enumerate(process.stderr, start=1):
                    if seen >= kill_after_lines:
                        process.send_signal(signal.SIGKILL)
                        break
            process.stderr.read()
            return process.wait(timeout=240)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def debug_config(config: Path) -> Path:
    text = config.read_text().replace(
        'format = "json"', 'format = "json"\nlevel = "debug"\news_protocol_debug = true'
    )
    path = config.with_name("calsync-debug.toml")
    path.write_text(text)
    path.chmod(0o600)
    return path


def edit_both_sides(
    sim: SimHandle,
    db: Path,
    rng: random.Random,
    round_no: int,
    expected: dict[str, set[str]],
    touched: set[str],
) -> None:
    """Edits whose results must all be visible at the end, on both sides.

    No event is edited on both sides (that is a conflict, which the policy may resolve against
    one of the edits), so every edit must survive.
    """
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(
        days=3 + round_no
    )
    for mailbox in sim.info["tenants"][0]["mailboxes"]:
        # Outlook: a new event and a renamed single event
        subject = f"outlook r{round_no}"
        sim.admin.create_event(
            mailbox,
            subject=subject,
            start=start.isoformat(),
            end=(start + timedelta(hours=1)).isoformat(),
            timezone="UTC",
        )
        expected[mailbox].add(subject)
        singles = [
            i
            for i in sim.admin.events(mailbox)
            if i["recurrence"] is None
            and i["series_item_id"] is None
            and i["uid"] not in touched
            and not i["subject"].startswith(("outlook", "app", "renamed"))
        ]
        item = rng.choice(singles)
        touched.add(item["uid"])
        renamed = f"renamed outlook r{round_no}"
        sim.admin.patch_event(mailbox, item["item_id"], subject=renamed)
        expected[mailbox].add(renamed)
        # an application: a new row and a renamed synced row
        with sqlite3.connect(db) as conn:
            subject = f"app r{round_no}"
            conn.execute(
                "INSERT INTO events (mailbox, subject, starts_at, ends_at) VALUES (?, ?, ?, ?)",
                (
                    mailbox,
                    subject,
                    (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                ),
            )
            expected[mailbox].add(subject)
            candidates = [
                (row_id, uid)
                for row_id, uid in conn.execute(
                    "SELECT id, uid FROM events WHERE mailbox = ? AND series_id IS NULL AND "
                    "recurrence IS NULL AND sync_status = 'synced' AND subject NOT LIKE 'outlook%'"
                    " AND subject NOT LIKE 'app%' AND subject NOT LIKE 'renamed%'"
                    # not a meeting: Graph refuses to write those (it would mail attendees)
                    " AND (attendees IS NULL OR attendees = '[]') ORDER BY id",
                    (mailbox,),
                )
                if uid not in touched
            ]
            if candidates:
                row = rng.choice(candidates)
                touched.add(row[1])
                renamed = f"renamed app r{round_no}"
                conn.execute("UPDATE events SET subject = ? WHERE id = ?", (renamed, row[0]))
                expected[mailbox].add(renamed)


def test_sigkill_at_random_points_converges(sim: SimHandle) -> None:
    state = Path(sim.info["ca_file"]).parent
    config, db = state / "calsync.toml", state / "calsync.db"
    rng = random.Random(20261122)
    debug = debug_config(config)
    assert run_cli(config, None) == 0  # the initial pull, so applications have rows to edit
    expected: dict[str, set[str]] = {m: set() for m in sim.info["tenants"][0]["mailboxes"]}
    kills = 0
    touched: set[str] = set()
    for round_no in range(ROUNDS):
        edit_both_sides(sim, db, rng, round_no, expected, touched)
        if run_cli(debug, kill_after_lines=rng.randrange(3, 45)) == -signal.SIGKILL:
            kills += 1
    assert kills >= ROUNDS // 2, "too few runs were really interrupted"
    assert run_cli(config, None) == 0
    assert run_cli(config, None) == 0

    with sqlite3.connect(db) as conn:
        for mailbox, subjects in expected.items():
            items = [i for i in sim.admin.events(mailbox) if i["series_item_id"] is None]
            rows = conn.execute(
                "SELECT subject, starts_at, uid FROM events WHERE mailbox = ? AND series_id IS NULL",
                (mailbox,),
            ).fetchall()
            exchange_keys = Counter(
                (i["subject"], datetime.fromisoformat(i["start"]).astimezone(UTC))
                for i in items
                if not i["is_all_day"]
            )
            local_keys = Counter(
                (r[0], datetime.fromisoformat(r[1].replace("Z", "+00:00"))) for r in rows
            )
            all_day = sum(1 for i in items if i["is_all_day"])
            assert len(rows) == len(items), f"{mailbox}: {len(rows)} rows, {len(items)} items"
            assert sum(local_keys.values()) - all_day == sum(exchange_keys.values())
            assert all(n == 1 for n in Counter(r[2] for r in rows).values()), "duplicate rows"
            ids = Counter(i["extended_properties"].get("calsync-id") for i in items)
            ids.pop(None, None)
            assert all(n == 1 for n in ids.values()), "an item was pushed twice"
            missing_local = subjects - {r[0] for r in rows}
            missing_exchange = subjects - {i["subject"] for i in items}
            assert not missing_local, f"{mailbox}: lost locally: {missing_local}"
            assert not missing_exchange, f"{mailbox}: lost in Exchange: {missing_exchange}"
            for key, n in exchange_keys.items():
                assert local_keys[key] == n, f"{mailbox}: {key} differs"
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "calsync",
            "sync",
            "--once",
            "--dry-run",
            "--json",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    for entry in json.loads(report.stdout)["mailboxes"]:
        assert entry["exchange"] == {"create": 0, "update": 0, "delete": 0}, entry
        assert entry["local"] == {"create": 0, "update": 0, "delete": 0}, entry
