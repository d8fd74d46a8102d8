"""`calsync check --json` for a tenant with ``api = "graph"``: the same document as over EWS,
each mailbox checked with one Graph request (and no EWS request at all)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from calsync.cli import main
from calsync.sim import SimHandle, start_in_thread

GHOST = "ghost@contoso.example"


def graph_config(tmp_path: Path, *, ghost: bool = False) -> Path:
    config = tmp_path / "calsync.toml"
    text = config.read_text(encoding="utf-8")
    assert 'api = "ews"' in text
    text = text.replace('api = "ews"', 'api = "graph"')
    if ghost:
        text += f'\n[[mailboxes]]\naddress = "{GHOST}"\ntenant = "contoso"\n'
    config.write_text(text, encoding="utf-8")
    return config


def run_check(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["check", "--json", "--config", str(config)])
    return code, json.loads(capsys.readouterr().out)


def only_graph_requests(sim: SimHandle) -> dict[str, int]:
    requests: dict[str, int] = sim.admin.stats()["requests"]
    assert requests and all(op.startswith("GRAPH") for op in requests), requests
    return requests


def test_graph_check_reports_denied_and_missing_mailboxes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with start_in_thread(tmp_path, mailboxes=6, events_per_mailbox=1) as sim:
        mailboxes = sim.info["tenants"][0]["mailboxes"]
        config = graph_config(tmp_path, ghost=True)
        denied = mailboxes[1:3]
        sim.admin.set_faults(deny_mailboxes=denied)
        sim.admin.reset_stats()
        code, report = run_check(config, capsys)
        requests = only_graph_requests(sim)
    assert code == 1
    assert report["tenants"] == [
        {"name": "contoso", "status": "ok", "error_code": None, "hint": None}
    ]
    by_address = {m["address"]: m for m in report["mailboxes"]}
    assert list(by_address) == [*mailboxes, GHOST]
    assert set(report["mailboxes"][0]) == {"address", "tenant", "status", "error_code", "hint"}
    bad = {a: m for a, m in by_address.items() if m["status"] != "ok"}
    assert set(bad) == {*denied, GHOST}
    for address in denied:
        assert bad[address]["status"] == "access_denied"
        assert bad[address]["error_code"] == "ErrorAccessDenied"
        assert "RBAC" in bad[address]["hint"]
    assert bad[GHOST]["status"] == "not_found"
    assert bad[GHOST]["error_code"] == "ErrorInvalidUser"
    assert bad[GHOST]["hint"]
    assert sum(requests.values()) == len(by_address)  # one request per mailbox


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


def test_graph_check_with_an_expired_secret_fails_the_tenant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with start_in_thread(tmp_path, mailboxes=2, events_per_mailbox=1) as sim:
        sim.admin.set_faults(expire_secret="contoso")
        code, report = run_check(graph_config(tmp_path), capsys)
    assert code == 1
    (tenant,) = report["tenants"]
    assert (tenant["status"], tenant["error_code"]) == ("auth_failed", "AADSTS7000222")
    assert {m["status"] for m in report["mailboxes"]} == {"auth_failed"}
