"""No secret, bearer token or client assertion reaches the log, even with everything at DEBUG.

Runs the real CLI (`calsync sync --once`) against the simulator with `level = "debug"` and
`ews_protocol_debug = true`, once with a client secret and once with a certificate (whose
client assertion is a signed JWT), over EWS and over Graph, and scans every line it wrote.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from calsync.sim import SimHandle, start_in_thread
from integration.apis import use_api

PRIVATE_BODY = "Merger with Fabrikam: do not tell anyone"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    with start_in_thread(
        tmp_path_factory.mktemp("sim"),
        mailboxes=2,
        events_per_mailbox=8,
        seed=3,
        token_lifetime=600,
    ) as handle:
        yield handle


def debug_config(sim: SimHandle, folder: Path, *, certificate: bool, api: str) -> Path:
    tenant = sim.info["tenants"][0]
    base = (Path(sim.info["ca_file"]).parent / "calsync.toml").read_text()
    base = base.replace(
        'format = "json"', 'format = "json"\nlevel = "debug"\news_protocol_debug = true'
    )
    base = base.replace(
        f'url = "sqlite:///{Path(sim.info["ca_file"]).parent}/calsync.db"',
        f'url = "sqlite:///{folder}/calsync.db"',
    )
    secret_file = Path(sim.info["ca_file"]).parent / "contoso.secret"
    base = base.replace(
        'client_secret_file = "contoso.secret"', f'client_secret_file = "{secret_file}"'
    )
    base = base.replace('ca_file = "ca.pem"', f'ca_file = "{sim.info["ca_file"]}"')
    if certificate:
        base = base.replace(
            f'client_secret_file = "{secret_file}"',
            f'certificate_file = "{tenant["certificate_file"]}"',
        )
    path = folder / "calsync.toml"
    path.write_text(base)
    path.chmod(0o600)
    return use_api(path, api)


@pytest.mark.parametrize("certificate", [False, True], ids=["secret", "certificate"])
def test_debug_logs_of_a_whole_sync_hold_no_secret(
    sim: SimHandle, tmp_path: Path, certificate: bool, api: str
) -> None:
    config = debug_config(sim, tmp_path, certificate=certificate, api=api)
    mailbox = sim.info["tenants"][0]["mailboxes"][0]
    sim.admin.create_event(
        mailbox,
        subject="Board meeting",
        body=PRIVATE_BODY,
        start="2026-12-03T10:00:00+01:00",
        end="2026-12-03T11:00:00+01:00",
        timezone="Europe/Berlin",
    )
    result = subprocess.run(
        [sys.executable, "-m", "calsync", "sync", "--once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    events = {line["event"] for line in lines}
    loggers = {line.get("logger") for line in lines}
    assert "sync_finished" in events
    if api == "ews":
        assert "ews_request" in events and "ews_response" in events
    else:  # Graph's HTTP layer logs every request (URL, headers) at debug level
        assert {"httpx", "httpcore.http11"} <= loggers, loggers
    assert any(str(name).startswith(("msal", "urllib3")) for name in loggers), loggers
    text = result.stderr + result.stdout
    secret = sim.info["tenants"][0]["client_secret"]
    assert secret not in text
    assert "Merger with Fabrikam" not in text
    assert not JWT.search(text), JWT.search(text)
    assert not re.search(r"(?i)bearer\s+(?!\[redacted\])\S{8,}", text)
    assert "client_assertion=ey" not in text
    if api == "ews":  # the SOAP of ews_request is there, bodies redacted
        soap = [line["soap"] for line in lines if line["event"] == "ews_request"]
        assert any("SyncFolderItems" in s for s in soap)
