"""`calsync check --json` for a tenant with ``api = "graph"``: what only Graph has (429 with
``Retry-After``). Denied, missing mailboxes and an expired secret are checked over both APIs in
``tests/integration/test_check_cli.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from calsync.cli import main
from calsync.sim import SimHandle, start_in_thread
from integration.apis import use_api


def graph_config(tmp_path: Path) -> Path:
    return use_api(tmp_path / "calsync.toml", "graph")


def run_check(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["check", "--json", "--config", str(config)])
    return code, json.loads(capsys.readouterr().out)


def only_graph_requests(sim: SimHandle) -> dict[str, int]:
    requests: dict[str, int] = sim.admin.stats()["requests"]
    assert requests and all(op.startswith("GRAPH") for op in requests), requests
    return requests


def test_graph_check_reports_throttling_without_waiting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with start_in_thread(tmp_path, mailboxes=3, events_per_mailbox=1) as sim:
        sim.admin.set_faults(server_busy_rate=1.0, server_busy_backoff_ms=60_000)
        code, report = run_check(graph_config(tmp_path), capsys)
        only_graph_requests(sim)
    assert code == 1
    assert report["tenants"][0]["status"] == "ok"
    statuses = {(m["status"], m["error_code"]) for m in report["mailboxes"]}
    assert statuses == {("throttled", "ApplicationThrottled")}
    assert all("429" in m["hint"] for m in report["mailboxes"])
