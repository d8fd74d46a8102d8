"""The secret scanner can fail: it finds a configured secret or a JWT in a log line, and it
collects the secrets the simulator and the tests configured."""

from __future__ import annotations

import json
from pathlib import Path

from faults.secret_scan import scan, secrets_under

SECRET = "Zq8~sim-client-secret-0123456789"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sifQ.c2lnbmF0dXJlLWJ5dGVz"


def test_a_line_with_a_configured_secret_or_a_jwt_is_a_leak() -> None:
    lines = [
        ("daemon.log", 1, '{"event": "sync_finished", "mailbox": "a@b"}'),
        ("daemon.log", 2, f'{{"event": "token_refreshed", "secret": "{SECRET}"}}'),
        ("cli.log", 7, f"Authorization: Bearer {TOKEN}"),
        ("cli.log", 8, '{"event": "x", "client_secret": "[redacted]"}'),
    ]
    leaks = scan(lines, {SECRET, "short"})
    assert [(leak.source, leak.line_no) for leak in leaks] == [("daemon.log", 2), ("cli.log", 7)]
    assert "configured secret" in leaks[0].what and "JWT" in leaks[1].what
    assert scan(lines[:1] + lines[3:], {SECRET}) == []


def test_configured_secrets_are_collected_from_the_test_folders(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    sim.mkdir()
    (sim / "sim.json").write_text(json.dumps({"tenants": [{"client_secret": SECRET}]}))
    (sim / "contoso.secret").write_text("file-secret-value-42\n")
    key_line = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
    (sim / "app.pem").write_text(
        f"-----BEGIN PRIVATE KEY-----\n{key_line}\n-----END PRIVATE KEY-----\n"
    )
    (tmp_path / "calsync.toml").write_text(
        '[[tenants]]\nname = "x"\nclient_secret = "inline-secret-value"\npassword = "pw"\n'
    )
    assert secrets_under(tmp_path) == {
        SECRET,
        "file-secret-value-42",
        key_line,
        "inline-secret-value",
    }
