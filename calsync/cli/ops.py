"""Commands that work on mailboxes: sync --once, check, status, db upgrade, mailbox purge."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from calsync import logs
from calsync.cli.render import table
from calsync.config import Config, load_config

EXIT_OK, EXIT_NOT_OK = 0, 1
AddConfig = Callable[[argparse.ArgumentParser], None]


def _setup(args: argparse.Namespace) -> Config:
    config = load_config(getattr(args, "config", None))
    settings = config.settings.logging
    logs.configure(format=settings.format, level=settings.level)
    for warning in config.warnings:
        logs.get_logger().warning("config_warning", warning=warning)
    return config


def register(sub: Any, add_config: AddConfig, _name: str) -> None:
    p = sub.add_parser("sync", help="sync every (or one) mailbox once and exit")
    add_config(p)
    p.add_argument("--once", action="store_true", required=True, help="one sync, then exit")
    p.add_argument("--mailbox", metavar="ADDR", help="only this mailbox")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="let this run delete more than max_delete_share of a mailbox",
    )
    p.set_defaults(handler=sync_once)

    p = sub.add_parser("check", help="check every tenant's credentials and mailbox's access")
    add_config(p)
    p.add_argument("--mailbox", metavar="ADDR", help="only this mailbox")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=check)

    p = sub.add_parser("status", help="show each mailbox's sync state from the store")
    add_config(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=status)

    p = sub.add_parser("db", help="database maintenance")
    db = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = db.add_parser("upgrade", help="apply the store's schema migrations")
    add_config(up)
    up.set_defaults(handler=db_upgrade)

    p = sub.add_parser("mailbox", help="mailbox maintenance")
    mb = p.add_subparsers(dest="mailbox_command", metavar="ACTION", required=True)
    purge = mb.add_parser("purge", help="delete a mailbox's rows and sync state from the store")
    add_config(purge)
    purge.add_argument("address", metavar="ADDR")
    purge.set_defaults(handler=mailbox_purge)


def sync_once(args: argparse.Namespace) -> int:
    from calsync.daemon.runtime import build_runtime, sync_mailboxes

    config = _setup(args)
    runtime = build_runtime(config)
    try:
        outcomes = sync_mailboxes(
            runtime,
            runtime.mailboxes(args.mailbox),
            dry_run=args.dry_run,
            allow_mass_delete=args.allow_mass_delete,
        )
    finally:
        runtime.close()
    if args.json or args.dry_run:
        report = {"mailboxes": [_outcome_json(o) for o in outcomes]}
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(
                table(
                    ["mailbox", "exchange c/u/d", "local c/u/d", "conflicts", "status"],
                    [
                        [
                            o.mailbox,
                            _cud(o, "exchange"),
                            _cud(o, "local"),
                            o.report.conflicts if o.report else "",
                            o.status,
                        ]
                        for o in outcomes
                    ],
                )
            )
    else:
        ok = sum(1 for o in outcomes if o.ok)
        print(f"{ok} of {len(outcomes)} mailboxes synced", file=sys.stdout)
        for o in outcomes:
            if not o.ok and o.error is not None:
                hint = f" — {o.error.hint}" if o.error.hint else ""
                print(f"  {o.mailbox}: {o.status} [{o.error_code}] {o.error}{hint}")
    return EXIT_OK if all(o.ok for o in outcomes) else EXIT_NOT_OK


def _cud(outcome: Any, side: str) -> str:
    if outcome.report is None:
        return "-"
    counts = getattr(outcome.report, side)
    return f"{counts.create}/{counts.update}/{counts.delete}"


def _outcome_json(outcome: Any) -> dict[str, Any]:
    report = outcome.report
    data: dict[str, Any] = {
        "address": outcome.mailbox,
        "tenant": outcome.tenant,
        "status": outcome.status,
    }
    if report is not None:
        data |= {
            "exchange": report.exchange.as_dict(),
            "local": report.local.as_dict(),
            "conflicts": report.conflicts,
            "skipped": report.skipped,
            "outcome": report.outcome,
        }
    else:
        data |= {
            "error_code": outcome.error_code,
            "error": str(outcome.error),
            "hint": outcome.error.hint if outcome.error else None,
        }
    return data


def check(args: argparse.Namespace) -> int:
    from calsync.daemon.runtime import build_runtime
    from calsync.daemon.runtime import check as run_check

    config = _setup(args)
    runtime = build_runtime(config, open_store=False)
    report = run_check(runtime, args.mailbox)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(
            table(
                ["tenant", "status", "error", "hint"],
                [[t.name, t.status, t.error_code or "", t.hint or ""] for t in report.tenants],
            )
        )
        print()
        print(
            table(
                ["mailbox", "tenant", "status", "error", "hint"],
                [
                    [m.address, m.tenant, m.status, m.error_code or "", m.hint or ""]
                    for m in report.mailboxes
                ],
            )
        )
        bad = sum(1 for m in report.mailboxes if m.status != "ok")
        print(f"\n{len(report.mailboxes) - bad} of {len(report.mailboxes)} mailboxes ok")
    return EXIT_OK if report.ok else EXIT_NOT_OK


def status(args: argparse.Namespace) -> int:
    from calsync.store.sql import SqlStore

    config = load_config(getattr(args, "config", None))
    store = SqlStore(config.settings.store.url, upgrade=False)
    try:
        statuses = store.mailbox_statuses()
    finally:
        store.close()
    configured = {m.address for m in config.enabled_mailboxes()}
    now = datetime.now(UTC)
    rows = []
    for s in statuses:
        state = s.state if s.address in configured or s.state == "disabled" else "disabled"
        data = s.as_json() | {"state": state}
        if s.last_success is not None:
            data["lag_s"] = round((now - s.last_success).total_seconds(), 1)
        rows.append(data)
    if args.json:
        print(json.dumps({"mailboxes": rows}, indent=2))
    else:
        print(
            table(
                [
                    "mailbox",
                    "tenant",
                    "state",
                    "last success",
                    "lag",
                    "failures",
                    "last error",
                    "next due",
                ],
                [
                    [
                        r["address"],
                        r["tenant"],
                        r["state"],
                        r["last_success"] or "never",
                        _age(r["lag_s"]),
                        r["consecutive_failures"] or "",
                        r["last_error_code"] or "",
                        r["next_due"] or "",
                    ]
                    for r in rows
                ],
            )
        )
    failing = any(r["state"] in ("failing", "paused") for r in rows)
    return EXIT_NOT_OK if failing else EXIT_OK


def _age(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return ""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def db_upgrade(args: argparse.Namespace) -> int:
    from calsync.store.migrate import upgrade

    config = load_config(getattr(args, "config", None))
    upgrade(config.settings.store.url)
    print("store schema is up to date")
    return EXIT_OK


def mailbox_purge(args: argparse.Namespace) -> int:
    from calsync.store.sql import SqlStore

    config = load_config(getattr(args, "config", None))
    store = SqlStore(config.settings.store.url, upgrade=True)
    address = args.address.strip().lower()
    try:
        with store.mailbox_lock(address):
            store.purge_mailbox(address)
    finally:
        store.close()
    print(f"purged {address} from the store")
    return EXIT_OK
