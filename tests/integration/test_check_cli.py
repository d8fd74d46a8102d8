"""`calsync check` as an operator runs it: 20 mailboxes, 2 denied by policy, 1 that does not exist;
an expired secret. Over EWS and over Graph: one report shape, each API's own error codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from calsync.cli import main
from calsync.sim import start_in_thread
from integration.apis import DENIED, NOT_FOUND, use_api


def test_check_reports_exactly_the_bad_mailboxes(
    tmp_path: Path, api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with start_in_thread(tmp_path, mailboxes=19, events_per_mailbox=1) as sim:
        mailboxes = sim.info["tenants"][0]["mailboxes"]
        config = use_api(tmp_path / "calsync.toml", api)
        ghost = "ghost@contoso.example"
        config.write_text(
            config.read_text() + f'\n[[mailboxes]]\naddress = "{ghost}"\ntenant = "contoso"\n'
        )
        denied = mailboxes[3:5]
        sim.admin.set_faults(deny_mailboxes=denied, deny_mode="http403")
        sim.admin.reset_stats()
        code = main(["check", "--json", "--config", str(config)])
        report = json.loads(capsys.readouterr().out)
        requests = sim.admin.stats()["requests"]
    assert code == 1
    assert report["tenants"] == [
        {"name": "contoso", "status": "ok", "error_code": None, "hint": None}
    ]
    by_address = {m["address"]: m for m in report["mailboxes"]}
    assert len(by_address) == 20
    bad = {a: m for a, m in by_address.items() if m["status"] != "ok"}
    assert set(bad) == {*denied, ghost}
    for address in denied:
        assert bad[address]["status"] == "access_denied"
        assert bad[address]["error_code"] == DENIED[api]
        assert "ApplicationAccessPolicy" in bad[address]["hint"] or "RBAC" in bad[address]["hint"]
    assert bad[ghost]["status"] == "not_found"
    assert bad[ghost]["error_code"] == NOT_FOUND[api]
    assert bad[ghost]["hint"]
    if api == "graph":  # one Graph request per mailbox, and no EWS request at all
        assert set(requests) == {"GRAPH GET /users/{id}/calendar/events"}, requests
        assert sum(requests.values()) == len(by_address)


def test_check_with_an_expired_secret_names_aadsts7000222(
    tmp_path: Path, api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with start_in_thread(tmp_path, mailboxes=2, events_per_mailbox=1) as sim:
        sim.admin.set_faults(expire_secret="contoso")
        config = use_api(tmp_path / "calsync.toml", api)
        code = main(["check", "--json", "--config", str(config)])
        report = json.loads(capsys.readouterr().out)
    assert code == 1
    (tenant,) = report["tenants"]
    assert tenant["status"] == "auth_failed"
    assert tenant["error_code"] == "AADSTS7000222"
    assert "client secret expired" in tenant["hint"]
    assert {m["status"] for m in report["mailboxes"]} == {"auth_failed"}
