"""`calsync run` as a subprocess against a simulator, for the benchmarks: its config and waits."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any


def _q(value: str) -> str:
    return json.dumps(value)


def write_config(
    info: dict[str, Any],
    folder: Path,
    *,
    tenants: list[str] | None = None,
    streaming: bool = True,
    daemon: dict[str, Any] | None = None,
    name: str = "calsync",
) -> Path:
    """A calsync.toml for the simulator of ``info`` (sim.json): the ``tenants`` given (all by
    default), a store ``folder/<name>.db``, the ``[daemon]`` settings given."""
    state = Path(info["ca_file"]).parent
    lines = [
        "[store]",
        f"url = {_q('sqlite:///' + str(folder / (name + '.db')))}",
        "",
        "[logging]",
        'format = "json"',
        'level = "warning"',
        "",
        "[subscriptions]",
        f'mode = "{"streaming" if streaming else "off"}"',
        "",
        "[daemon]",
        *(f"{key} = {value}" for key, value in (daemon or {}).items()),
        "",
    ]
    chosen = [t for t in info["tenants"] if tenants is None or t["name"] in tenants]
    for tenant in chosen:
        lines += [
            "[[tenants]]",
            f"name = {_q(tenant['name'])}",
            'api = "ews"',
            f"tenant_id = {_q(tenant['tenant_id'])}",
            f"client_id = {_q(tenant['client_id'])}",
            f"client_secret_file = {_q(str(state / (tenant['name'] + '.secret')))}",
            f"authority = {_q(info['authority'])}",
            f"ews_url = {_q(info['ews_url'])}",
            f"ca_file = {_q(info['ca_file'])}",
            "",
            "[[mailbox_groups]]",
            f"tenant = {_q(tenant['name'])}",
            "addresses = [",
            *(f"  {_q(a)}," for a in tenant["mailboxes"]),
            "]",
            'direction = "two-way"',
            "",
        ]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines))
    path.chmod(0o600)
    return path


def db_of(config: Path) -> Path:
    return config.with_suffix(".db")


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """One row of ``sql`` in the daemon's store (None while it does not exist yet)."""
    if not db.exists():
        return None
    try:
        with closing(sqlite3.connect(db, timeout=5)) as conn:
            return conn.execute(sql, params).fetchone()
    except sqlite3.Error:
        return None


def write(db: Path, sql: str, params: tuple[Any, ...] = ()) -> int:
    """An application's write to the daemon's store (committed); the rows it changed."""
    with closing(sqlite3.connect(db, timeout=10)) as conn, conn:
        return conn.execute(sql, params).rowcount


def synced(db: Path) -> int:
    row = query(db, "SELECT count(*) FROM mailboxes WHERE last_success IS NOT NULL")
    return int(row[0]) if row else 0


def wait_for(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


@contextmanager
def running(config: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`calsync run --config config` until the block ends (SIGTERM, then SIGKILL)."""
    with subprocess.Popen(
        [sys.executable, "-m", "calsync", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")
