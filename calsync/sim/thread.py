"""Run a simulator in a background thread with its own event loop (tests, demos, benchmarks)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from calsync.sim.admin import AdminClient
from calsync.sim.core import SimCore, SimOptions
from calsync.sim.server import SimServer


class SimHandle:
    """A running simulator; `with start_in_thread(dir) as sim: …` stops it on exit."""

    def __init__(self, server: SimServer, loop: asyncio.AbstractEventLoop,
                 thread: threading.Thread, stop: asyncio.Event) -> None:  # fmt: skip
        self._server = server
        self._loop = loop
        self._thread = thread
        self._stop = stop
        self.info: dict[str, Any] = server.info
        self.url: str = server.url
        self.state_dir: Path = server.state_dir
        self.admin = AdminClient(self.info["admin_url"], self.info["ca_file"])

    @property
    def core(self) -> SimCore:
        """The in-memory state (read it only from the simulator's loop, or when idle)."""
        return self._server.core

    @property
    def ca_file(self) -> str:
        return str(self.info["ca_file"])

    def tenant(self, name: str | None = None) -> dict[str, Any]:
        """The sim.json entry of a tenant (the first one by default)."""
        tenants: list[dict[str, Any]] = self.info["tenants"]
        if name is None:
            return tenants[0]
        return next(t for t in tenants if t["name"] == name)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` on the simulator's loop and return its result."""

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=30)

    def __enter__(self) -> SimHandle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.stop()


def start_in_thread(
    state_dir: str | Path,
    *,
    mailboxes: int = 3,
    events_per_mailbox: int = 20,
    seed: int = 1,
    tenants: int = 1,
    token_lifetime: int = 3600,
    onprem: bool = False,
    max_subscriptions_per_connection: int = 200,
    heartbeat_s: float = 30.0,
    minute_s: float = 60.0,
    host: str = "127.0.0.1",
    port: int = 0,
) -> SimHandle:
    """Start a simulator in a daemon thread; returns once it accepts connections."""
    options = SimOptions(
        mailboxes=mailboxes,
        events_per_mailbox=events_per_mailbox,
        seed=seed,
        tenants=tenants,
        token_lifetime=token_lifetime,
        onprem=onprem,
        max_subscriptions_per_connection=max_subscriptions_per_connection,
        heartbeat_s=heartbeat_s,
        minute_s=minute_s,
    )
    server = SimServer(Path(state_dir), options, host=host, port=port)
    ready = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        box["loop"] = loop
        asyncio.set_event_loop(loop)

        async def main() -> None:
            stop = asyncio.Event()
            box["stop"] = stop
            try:
                await server.start()
            except BaseException as exc:
                box["error"] = exc
                ready.set()
                raise
            ready.set()
            try:
                await stop.wait()
            finally:
                await server.stop()

        try:
            loop.run_until_complete(main())
        except BaseException:  # noqa: S110 - reported to the caller through box["error"]
            pass
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="calsync-sim", daemon=True)
    thread.start()
    ready.wait(timeout=60)
    if "error" in box:
        thread.join(timeout=5)
        raise RuntimeError("the simulator did not start") from box["error"]
    if not ready.is_set():
        raise RuntimeError("the simulator did not start within 60 s")
    return SimHandle(server, box["loop"], thread, box["stop"])
