"""`calsync run` as a subprocess against the simulator: issue 6's "Done when", compressed in time.

One daemon, 50 mailboxes in two tenants (A and B), driven through, in order:

1. every mailbox syncs; a mailbox denied by the access policy and a nonexistent one are reported
   with ``retry_in_s`` = ``permanent_failure_retry`` (and are retried: here when tenant A
   resumes, sooner than the validator's 60 s minimum); a second daemon on the same store exits
   4; ``calsync health`` is 0;
2. ``ErrorServerBusy`` on every request of tenant A for a few seconds (the issue says a minute:
   the behaviour is the same, the test is not) slows A (``tenant_throttled``), B keeps syncing,
   and after the fault every mailbox of A syncs again and the rows written meanwhile arrive;
3. A's secret expires in the simulator: ``auth_failed`` with AADSTS7000222 and the hint,
   A pauses, B goes on; a broken config on SIGHUP is refused with every problem listed; a new
   secret (and an added and a removed mailbox) on SIGHUP resumes A without a restart;
4. SIGTERM while runs are in flight: exit 0 within the grace, every started run ended with its
   canonical line, no lock left, and ``calsync status --json`` shows each mailbox's state.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from daemon_proc import Proc, calsync

from calsync.sim import SimHandle, start_in_thread

pytestmark = pytest.mark.acceptance

PER_TENANT = 25
PERMANENT_RETRY = 60  # the config validator's minimum


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    with start_in_thread(
        tmp_path_factory.mktemp("sim"),
        mailboxes=PER_TENANT,
        tenants=2,
        events_per_mailbox=3,
        token_lifetime=6,  # renewed after 3 s: an expired secret shows within seconds
        seed=11,
    ) as handle:
        yield handle


def write_config(
    path: Path,
    sim: SimHandle,
    *,
    mailboxes: dict[str, list[str]],
    secret_files: dict[str, str],
    extra: str = "",
) -> None:
    info, q = sim.info, json.dumps
    lines = [
        f"[store]\nurl = {q('sqlite:///' + str(path.parent / 'calsync.db'))}\n",
        "[daemon]\npoll_interval = 10\npoll_jitter = 2\nmax_concurrent_syncs = 8",
        f"shutdown_grace = 10\nlocal_scan_interval = 1\npermanent_failure_retry = {PERMANENT_RETRY}\n",
        '[subscriptions]\nmode = "off"\n',
        '[logging]\nformat = "json"\nlevel = "debug"\n',
        extra,
    ]
    for tenant in info["tenants"]:
        lines.append(
            f"[[tenants]]\nname = {q(tenant['name'])}\ntenant_id = {q(tenant['tenant_id'])}\n"
            f"client_id = {q(tenant['client_id'])}\n"
            f"client_secret_file = {q(secret_files[tenant['name']])}\n"
            f"authority = {q(info['authority'])}\news_url = {q(info['ews_url'])}\n"
            f"ca_file = {q(info['ca_file'])}\n"
        )
        for address in mailboxes[tenant["name"]]:
            lines.append(f"[[mailboxes]]\naddress = {q(address)}\ntenant = {q(tenant['name'])}\n")
    path.write_text("\n".join(lines), encoding="utf-8")


def sql(db: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db, timeout=10)) as conn, conn:
        return conn.execute(query, params).fetchall()


def insert_row(db: Path, mailbox: str, subject: str) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0) + dt.timedelta(days=2)
    sql(
        db,
        "INSERT INTO events (mailbox, subject, starts_at, ends_at) VALUES (?, ?, ?, ?)",
        (
            mailbox,
            subject,
            start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            (start + dt.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        ),
    )


def finished(proc: Proc, mark: int, addresses: list[str]) -> bool:
    done = {e["mailbox"] for e in proc.since(mark, "sync_finished")}
    return done >= set(addresses)


def test_the_daemon_keeps_mailboxes_in_sync_through_exchanges_bad_days(
    sim: SimHandle, tmp_path: Path
) -> None:
    tenant_a, tenant_b = (t["name"] for t in sim.info["tenants"])
    a_all, b_all = (list(t["mailboxes"]) for t in sim.info["tenants"])
    denied, held_back, removed = a_all[4], a_all[-1], b_all[-1]
    nobody = f"nobody@{a_all[0].split('@')[1]}"
    state = Path(sim.info["ca_file"]).parent
    config, db = tmp_path / "calsync.toml", tmp_path / "calsync.db"
    secrets = {t["name"]: str(state / f"{t['name']}.secret") for t in sim.info["tenants"]}
    a_first = [*a_all[:-1], nobody]
    write_config(config, sim, mailboxes={tenant_a: a_first, tenant_b: b_all}, secret_files=secrets)
    assert len(a_first) + len(b_all) == 50
    sim.admin.clear_faults()
    sim.admin.set_faults(deny_mailboxes=[denied])
    healthy_a = [a for a in a_all[:-1] if a != denied]

    daemon = Proc(["run", "--config", str(config)])
    try:
        # 1. everything syncs; the two bad mailboxes are reported, the others are not held up
        daemon.wait_event("daemon_started", 30)
        daemon.wait(lambda: finished(daemon, 0, healthy_a + b_all), 40, "48 mailboxes synced")
        denied_fail = daemon.wait_event("sync_failed", 10, mailbox=denied)
        assert denied_fail["error_code"] in ("ErrorAccessDenied", "HTTP403")
        assert denied_fail["hint"]
        assert PERMANENT_RETRY <= denied_fail["retry_in_s"] <= PERMANENT_RETRY + 2
        daemon.wait_event("mailbox_access_denied", 5, mailbox=denied)
        missing = daemon.wait_event("sync_failed", 10, mailbox=nobody)
        assert missing["error_code"] == "ErrorNonExistentMailbox"
        daemon.wait_event("mailbox_not_found", 5, mailbox=nobody)
        second = calsync("run", "--config", str(config))
        assert second.returncode == 4, second.stderr
        health = calsync("health", "--config", str(config))
        assert health.returncode == 0, health.stdout + health.stderr

        # 2. ErrorServerBusy on every request of tenant A (a few seconds): A slows, B goes on
        mark = daemon.mark()
        sim.admin.set_faults(
            server_busy_rate=1.0, server_busy_backoff_ms=1000, scope={"tenants": [tenant_a]}
        )
        busy_rows = {
            a: f"written while {tenant_a} was busy {i}" for i, a in enumerate(healthy_a[:5])
        }
        for address, subject in busy_rows.items():
            insert_row(db, address, subject)  # due now (local write) -> runs during the fault
        throttled = daemon.wait_event("tenant_throttled", 20, mark, tenant=tenant_a)
        assert throttled["back_off_s"] >= 1.0
        daemon.wait_event("ews_throttled", 5, mark)
        busy_mark = daemon.mark()
        daemon.wait(
            lambda: any(e["tenant"] == tenant_b for e in daemon.since(busy_mark, "sync_finished")),
            15,
            "tenant B syncing during A's throttling",
        )
        assert not daemon.since(mark, "tenant_throttled", tenant=tenant_b)
        sim.admin.clear_faults()
        sim.admin.set_faults(deny_mailboxes=[denied])
        recovered = daemon.mark()
        daemon.wait(lambda: finished(daemon, recovered, healthy_a), 40, "A recovered")
        for address, subject in busy_rows.items():
            assert any(e["subject"] == subject for e in sim.admin.events(address)), address

        # 3. A's secret expires: A pauses with the reason, B goes on
        mark = daemon.mark()
        tenant = sim.core.directory.tenant(tenant_a)
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        sim.call(lambda: setattr(tenant.secrets[0], "expires", past))
        failed = daemon.wait_event("auth_failed", 25, mark, error_code="AADSTS7000222")
        assert "client secret expired" in failed["hint"]
        paused = daemon.wait_event("tenant_paused", 15, mark, tenant=tenant_a)
        assert paused["error_code"] == "AADSTS7000222"
        pause_mark = daemon.mark()
        daemon.wait(
            lambda: any(e["tenant"] == tenant_b for e in daemon.since(pause_mark, "sync_finished")),
            15,
            "tenant B syncing while A is paused",
        )
        # a broken config on SIGHUP: refused with every problem, the old one keeps running
        good = config.read_text(encoding="utf-8")
        config.write_text(
            good.replace("poll_interval = 10", "poll_interval = 1")
            + '\n[[mailboxes]]\naddress = "x@example.com"\ntenant = "nope"\n',
            encoding="utf-8",
        )
        mark = daemon.mark()
        daemon.send(signal.SIGHUP)
        refused = daemon.wait_event("config_reload_failed", 15, mark)
        assert len(refused["problems"]) >= 2, refused
        # a new secret, one mailbox added and one removed, on SIGHUP: A resumes, no restart
        new_secret = tmp_path / f"{tenant_a}-rotated.secret"
        new_secret.write_text(sim.admin.add_secret(tenant_a), encoding="utf-8")
        write_config(
            config,
            sim,
            mailboxes={tenant_a: [*a_first, held_back], tenant_b: b_all[:-1]},
            secret_files={**secrets, tenant_a: str(new_secret)},
        )
        mark = daemon.mark()
        daemon.send(signal.SIGHUP)
        reloaded = daemon.wait_event("config_reloaded", 15, mark)
        assert reloaded["added"] == [held_back]
        assert reloaded["removed"] == [removed]
        assert tenant_a in reloaded["changed"]
        daemon.wait_event("tenant_resumed", 10, mark, tenant=tenant_a)
        daemon.wait(lambda: finished(daemon, mark, [*healthy_a, held_back]), 30, "A resumed")

        # the permanent failures were retried (and are still reported)
        daemon.wait(
            lambda: len(daemon.since(0, "sync_failed", mailbox=denied)) >= 2,
            PERMANENT_RETRY + 15,
            "the denied mailbox retried",
        )
        assert not daemon.since(reloaded_index(daemon, reloaded), "sync_started", mailbox=removed)

        # 4. SIGTERM while runs are in flight
        for i, address in enumerate(b_all[:8]):
            insert_row(db, address, f"just before SIGTERM {i}")
        daemon.wait_event("local_writes_found", 10, mark)
        code = daemon.stop(signal.SIGTERM, timeout=10 + 5)
    finally:
        daemon.close()
    assert code == 0, "\n".join(daemon.text[-20:])
    assert daemon.events[-1]["event"] == "daemon_stopped"
    started = {e["run_id"] for e in daemon.since(0, "sync_started")}
    ended = {e["run_id"] for e in daemon.since(0) if e["event"] in ("sync_finished", "sync_failed")}
    assert started == ended
    assert sql(db, "SELECT count(*) FROM locks") == [(0,)]

    status = calsync("status", "--config", str(config), "--json")
    rows = {r["address"]: r for r in json.loads(status.stdout)["mailboxes"]}
    assert status.returncode == 1  # two mailboxes are failing
    assert rows[denied]["state"] == "failing"
    assert rows[denied]["last_error_code"] in ("ErrorAccessDenied", "HTTP403")
    assert rows[denied]["consecutive_failures"] >= 2
    assert rows[nobody]["state"] == "failing"
    assert rows[nobody]["last_error_code"] == "ErrorNonExistentMailbox"
    assert rows[removed]["state"] == "disabled"
    for address in [*healthy_a, held_back, *b_all[:-1]]:
        assert rows[address]["state"] == "healthy", rows[address]
        assert rows[address]["last_success"] is not None
        assert rows[address]["consecutive_failures"] == 0
        assert rows[address]["next_due"] is not None


def reloaded_index(proc: Proc, event: dict[str, Any]) -> int:
    return next(i for i, e in enumerate(proc.events) if e is event) + 1
