"""``calsync run`` (the daemon), ``calsync health`` (Docker's HEALTHCHECK), ``calsync demo``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from calsync import logs
from calsync.config import Config, load_config

EXIT_OK, EXIT_NOT_OK = 0, 1
HEALTHY_AGE_S = 60.0
AddConfig = Callable[[argparse.ArgumentParser], None]


def register(sub: Any, add_config: AddConfig, _name: str) -> None:
    p = sub.add_parser("run", help="run the daemon: keep every mailbox in sync until stopped")
    add_config(p)
    p.set_defaults(handler=run)

    p = sub.add_parser(
        "health", help="exit 0 when the daemon's heartbeat is fresh (for HEALTHCHECK)"
    )
    add_config(p)
    p.add_argument(
        "--max-age",
        type=float,
        default=HEALTHY_AGE_S,
        metavar="SECONDS",
        help=f"oldest acceptable heartbeat (default {HEALTHY_AGE_S:.0f})",
    )
    p.set_defaults(handler=health)

    p = sub.add_parser(
        "demo", help="simulator + daemon + edits on both sides, in one command (Ctrl-C stops)"
    )
    p.add_argument("--dir", metavar="DIR", help="folder for sim.json, calsync.toml, calsync.db")
    p.add_argument("--mailboxes", type=int, default=3, metavar="N", help="demo mailboxes (3)")
    p.set_defaults(handler=demo)


def _logging(config: Config) -> None:
    settings = config.settings.logging
    logs.configure(format=settings.format, level=settings.level)
    for warning in config.warnings:
        logs.get_logger().warning("config_warning", warning=warning)


def _exit_now_if_abandoned(daemon: Any, code: int) -> int:
    """Runs still going after shutdown_grace sit in non-daemon pool threads that the
    interpreter would wait for at exit; leave without them (every page they committed is
    whole, the one in flight rolls back with the connection)."""
    if daemon.abandoned:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def run(args: argparse.Namespace) -> int:
    from calsync.daemon.notify import SystemdNotifier
    from calsync.daemon.service import Daemon

    config = load_config(getattr(args, "config", None))
    _logging(config)
    daemon = Daemon(config, notifier=SystemdNotifier.from_environ(os.environ))
    code = daemon.run()
    return _exit_now_if_abandoned(daemon, code)


def health(args: argparse.Namespace) -> int:
    from calsync.store.sql import SqlStore

    config = load_config(getattr(args, "config", None))
    store = SqlStore(config.settings.store.url, upgrade=False)
    try:
        beat = store.read_heartbeat()
    finally:
        store.close()
    if beat is None:
        print("unhealthy: no heartbeat (the daemon never ran against this store)")
        return EXIT_NOT_OK
    age = (datetime.now(UTC) - beat).total_seconds()
    if age > args.max_age:
        print(f"unhealthy: last heartbeat {age:.0f} s ago (at {beat.isoformat()})")
        return EXIT_NOT_OK
    print(f"healthy: last heartbeat {age:.0f} s ago")
    return EXIT_OK


def demo(args: argparse.Namespace) -> int:
    from calsync.daemon.demo import demo_folder, run_demo

    if args.mailboxes < 1 or args.mailboxes > 50:
        print("calsync demo: --mailboxes must be between 1 and 50", file=sys.stderr)
        return 2
    folder = demo_folder(Path(args.dir) if args.dir else None)
    print(f"calsync demo: files in {folder} (kept after the demo; Ctrl-C stops)", flush=True)
    return run_demo(folder, args.mailboxes)
