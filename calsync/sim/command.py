"""`calsync sim`: run the simulator until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from calsync.sim.core import SimOptions
from calsync.sim.server import SimServer


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="calsync sim",
        description="Run a wire-level Microsoft 365 simulator (Entra ID + EWS) on loopback.",
    )
    p.add_argument("--state-dir", required=True, type=Path, help="folder for sim.json, ca.pem, …")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = any free port")
    p.add_argument("--mailboxes", type=int, default=3, help="mailboxes per tenant")
    p.add_argument("--events-per-mailbox", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tenants", type=int, default=1)
    p.add_argument("--token-lifetime", type=int, default=3600, help="seconds")
    p.add_argument("--max-subscriptions-per-connection", type=int, default=200)
    p.add_argument("--heartbeat", type=float, default=30.0, help="streaming heartbeat seconds")
    p.add_argument(
        "--minute", type=float, default=60.0,
        help="seconds per EWS minute (ConnectionTimeout, subscription expiry); demos shorten it",
    )  # fmt: skip
    p.add_argument("--onprem", action="store_true", help="tenants also accept HTTP Basic")
    return p


def options_from(args: argparse.Namespace) -> SimOptions:
    return SimOptions(
        mailboxes=args.mailboxes,
        events_per_mailbox=args.events_per_mailbox,
        seed=args.seed,
        tenants=args.tenants,
        token_lifetime=args.token_lifetime,
        onprem=args.onprem,
        max_subscriptions_per_connection=args.max_subscriptions_per_connection,
        heartbeat_s=args.heartbeat,
        minute_s=args.minute,
    )


async def _run(server: SimServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    sys.stdout.write(f"calsync-sim ready {server.url} state={server.state_dir}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str]) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.mailboxes < 0 or args.tenants < 1 or args.token_lifetime < 1:
        sys.stderr.write("calsync sim: --mailboxes >= 0, --tenants >= 1, --token-lifetime >= 1\n")
        return 2
    server = SimServer(args.state_dir, options_from(args), host=args.host, port=args.port)
    asyncio.run(_run(server))
    return 0
