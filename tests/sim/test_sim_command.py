"""`calsync sim` as a process: files, ready line, SIGTERM; and the admin API's contract."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from calsync.sim import AdminError, SimHandle
from calsync.sim.admin import AdminClient


def test_command_writes_files_and_stops_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "calsync.sim", "--state-dir", str(state), "--mailboxes", "2",
         "--events-per-mailbox", "3", "--tenants", "2", "--seed", "5"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("calsync-sim ready https://127.0.0.1:")
        assert f"state={state}" in line
        info = json.loads((state / "sim.json").read_text())
        assert set(info) >= {"ews_url", "graph_url", "authority", "admin_url", "ca_file", "tenants"}
        assert info["ews_url"] == info["authority"] + "/EWS/Exchange.asmx"
        assert info["admin_url"] == info["authority"] + "/_sim"
        assert [t["name"] for t in info["tenants"]] == ["contoso", "fabrikam"]
        contoso = info["tenants"][0]
        assert contoso["mailboxes"] == ["user001@contoso.example", "user002@contoso.example"]
        assert Path(contoso["certificate_file"]).read_text().count("-----BEGIN") == 2
        for private in (contoso["certificate_file"], state / "contoso.secret"):
            assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
        assert (state / "contoso.secret").read_text() == contoso["client_secret"]
        config = tomllib.loads((state / "calsync.toml").read_text())
        assert config["store"]["url"] == f"sqlite:///{state}/calsync.db"
        assert config["store"]["url"].startswith("sqlite:////")
        assert config["logging"]["format"] == "json"
        assert config["tenants"][0]["ca_file"] == "ca.pem"
        assert config["tenants"][0]["client_secret_file"] == "contoso.secret"
        assert config["tenants"][1]["ews_url"] == info["ews_url"]
        assert {m["address"] for m in config["mailboxes"]} == {
            a for t in info["tenants"] for a in t["mailboxes"]
        }
        assert {m["direction"] for m in config["mailboxes"]} == {"two-way"}
        admin = AdminClient(info["admin_url"], info["ca_file"])
        assert [m["events"] for m in admin.mailboxes()] == [3, 3, 3, 3]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def test_usage_error_exit_code() -> None:
    from calsync.sim import main

    assert main(["--mailboxes", "2"]) == 2  # --state-dir is required


def test_admin_events_contract(sim: SimHandle) -> None:
    address = str(sim.tenant("contoso")["mailboxes"][0])
    listing = sim.admin.mailboxes()
    assert {"address", "tenant", "events"} <= set(listing[0])
    events = sim.admin.events(address)
    masters = [e for e in events if not e["series_item_id"]]
    assert next(m for m in listing if m["address"] == address)["events"] == len(masters)
    keys = {"item_id", "change_key", "uid", "subject", "body", "location", "start", "end",
            "timezone", "is_all_day", "show_as", "sensitivity", "categories", "organizer",
            "attendees", "recurrence", "series_item_id", "original_start",
            "extended_properties", "deleted_occurrences", "reminder_minutes", "is_cancelled"}  # fmt: skip
    assert keys <= set(events[0])
    odd = next(e for e in events if any(c in e["item_id"] for c in "+/="))
    assert sim.admin.event(address, odd["item_id"])["item_id"] == odd["item_id"]  # percent-encoded
    with pytest.raises(AdminError) as info:
        sim.admin.event(address, "AAMkno-such-item")
    assert info.value.status == 404
    with pytest.raises(AdminError) as info:
        sim.admin.create_event(address, subject="no times")
    assert info.value.status == 400
    with pytest.raises(AdminError) as info:
        sim.admin.create_event(address, start="2026-12-01T10:00:00Z", end="2026-12-01T11:00:00Z",
                               recurrence="RRULE:FREQ=HOURLY")  # fmt: skip
    assert info.value.status == 400


def test_faults_merge_and_clear(sim: SimHandle) -> None:
    assert sim.admin.set_faults(latency_ms=5) == {"latency_ms": 5}
    assert sim.admin.set_faults(deny_mailboxes=["x@contoso.example"], deny_mode="soap") == {
        "latency_ms": 5, "deny_mailboxes": ["x@contoso.example"], "deny_mode": "soap",
    }  # fmt: skip
    with pytest.raises(AdminError):
        sim.admin.set_faults(server_busy_rate=2)
    with pytest.raises(AdminError):
        sim.admin.set_faults(no_such_fault=True)
    sim.admin.clear_faults()
    assert sim.admin.faults() == {}


def test_stats_reset_and_autodiscover(sim: SimHandle) -> None:
    sim.admin.reset_stats()
    stats = sim.admin.stats()
    assert stats["requests"] == {}
    assert stats["by_mailbox"] == {}
    assert set(stats) >= {"streaming", "tokens_issued", "invitations_sent", "cpu_s", "headers"}
    assert 0 <= stats["cpu_s"] < 5
    address = str(sim.tenant()["mailboxes"][0])
    import requests

    answer = requests.get(
        f"{sim.url}/autodiscover/autodiscover.json/v1.0/{address}?Protocol=EWS",
        verify=sim.ca_file, timeout=10,
    )  # fmt: skip
    assert answer.json() == {"Protocol": "EWS", "Url": sim.info["ews_url"]}
