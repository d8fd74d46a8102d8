"""The HTTPS server: one aiohttp application for Entra ID, EWS and the admin API."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

from calsync.sim.adminapi import AdminApi
from calsync.sim.core import SimCore, SimOptions
from calsync.sim.ews.endpoint import EwsEndpoint
from calsync.sim.files import write_state_files
from calsync.sim.graph.endpoint import GraphEndpoint
from calsync.sim.tls import make_ca, make_server_cert


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    path.chmod(0o600)


class SimServer:
    """Start with `await start()`, stop with `await stop()`; `info` is the sim.json dict."""

    def __init__(self, state_dir: Path, options: SimOptions, host: str = "127.0.0.1",
                 port: int = 0) -> None:  # fmt: skip
        self.state_dir = state_dir.resolve()
        self.options = options
        self.host = host
        self.port = port
        self.core = SimCore(options)
        self.info: dict[str, Any] = {}
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return self.core.base_url

    def _ssl_context(self) -> ssl.SSLContext:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ca, ca_key = make_ca()
        server = make_server_cert(ca, ca_key, [self.host])
        (self.state_dir / "ca.pem").write_bytes(ca.cert_pem)
        cert_file = self.state_dir / "server.pem"
        _write_private(cert_file, server.cert_pem + ca.cert_pem + server.key_pem)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert_file)
        return ctx

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.admin = AdminApi(self.core, self.info)
        self.ews = EwsEndpoint(self.core)
        app.add_routes(self.core.entra.routes())
        app.add_routes(self.ews.routes())
        self.graph = GraphEndpoint(self.core)
        app.add_routes(self.graph.routes())
        app.add_routes(self.admin.routes())
        return app

    async def start(self) -> dict[str, Any]:
        ctx = self._ssl_context()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.core.base_url = f"https://{host}:{self.port}"
        runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.SockSite(runner, sock, ssl_context=ctx, backlog=1024)
        await site.start()
        self._runner = runner
        self.info.update(write_state_files(self.state_dir, self.core))
        return self.info

    async def stop(self) -> None:
        self.core.hub.drop_all()
        if self._runner is not None:
            server = self._runner.server
            for handler in list(server.connections) if server is not None else []:
                transport = handler.transport
                if transport is not None:
                    transport.abort()  # keep-alive clients: close now, not at garbage collection
            await asyncio.sleep(0)
            await self._runner.cleanup()
            self._runner = None
