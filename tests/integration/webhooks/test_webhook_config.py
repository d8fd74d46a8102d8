"""``[webhooks]``: off by default, every broken key named (exit 2), the client state masked."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from calsync.cli import EXIT_CONFIG, main
from calsync.config import load_config
from calsync.errors import ConfigError

BASE = """
[[tenants]]
name = "contoso"
api = "graph"
tenant_id = "11111111-2222-3333-4444-555555555555"
client_id = "66666666-7777-8888-9999-000000000000"
client_secret_file = "contoso.secret"

[[mailboxes]]
address = "alice@contoso.com"
tenant = "contoso"
"""
SECRET_STATE = "a-very-private-client-state"


def write(tmp_path: Path, webhooks: str) -> Path:
    secret = tmp_path / "contoso.secret"
    secret.write_text("s3cr3t-value\n")
    secret.chmod(0o600)
    path = tmp_path / "calsync.toml"
    path.write_text(BASE + textwrap.dedent(webhooks))
    path.chmod(0o600)
    return path


def test_off_by_default(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, ""), environ={}).settings.webhooks
    assert settings.enabled is False and settings.client_state_source() is None
    assert settings.subscription_minutes <= 10080  # Graph's maximum for events


BROKEN = [
    ("[webhooks]\nenabled = true\n", ["webhooks", "public_url: required when enabled = true"]),
    (
        '[webhooks]\npublic_url = "http://calsync.example.com/graph/notifications"\n',
        ["webhooks.public_url", "must be an https:// URL"],
    ),
    ("[webhooks]\nlisten_port = 0\n", ["webhooks.listen_port", "greater than or equal to 1"]),
    ("[webhooks]\nsubscription_minutes = 20000\n", ["webhooks.subscription_minutes", "10080"]),
    ('[webhooks]\ntls_cert_file = "cert.pem"\n', ["webhooks", "tls_key_file: give both"]),
    ('[webhooks]\nclient_state = "' + "x" * 129 + '"\n', ["webhooks.client_state", "128"]),
    (
        f'[webhooks]\nclient_state = "{SECRET_STATE}"\nclient_state_env = "STATE"\n',
        ["webhooks", "at most one of client_state", "client_state_env"],
    ),
    ("[webhooks]\nenable = true\n", ["webhooks.enable", "unknown key", "'enabled'"]),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN, ids=[str(i) for i in range(len(BROKEN))])
def test_broken_webhooks_exit_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: list[str]
) -> None:
    code = main(["check-config", "--config", str(write(tmp_path, text))])
    err = capsys.readouterr().err
    assert code == EXIT_CONFIG
    for fragment in expected:
        assert fragment in err, f"{fragment!r} not in:\n{err}"
    assert SECRET_STATE not in err


def test_valid_settings_and_the_client_state_is_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        f"""
        [webhooks]
        enabled = true
        listen_host = "0.0.0.0"
        listen_port = 8080
        public_url = "https://calsync.example.com/graph/notifications"
        client_state = "{SECRET_STATE}"
    """,
    )
    settings = load_config(path, environ={}).settings.webhooks
    assert settings.path == "/graph/notifications"
    source = settings.client_state_source()
    assert source is not None and source.read() == SECRET_STATE
    assert main(["check-config", "--json", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert SECRET_STATE not in out
    shown = json.loads(out)["config"]["webhooks"]
    assert shown["enabled"] is True and shown["client_state"] == "**********"


def test_client_state_from_a_file_relative_to_the_config_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "state.txt").write_text(SECRET_STATE + "\n")
    path = write(tmp_path, '[webhooks]\nclient_state_file = "state.txt"\n')
    settings = load_config(path, environ={}).settings.webhooks
    source = settings.client_state_source(tmp_path)
    assert source is not None and source.read() == SECRET_STATE
    assert SECRET_STATE not in repr(settings) and SECRET_STATE not in source.describe()
    monkeypatch.setenv("HOOK_STATE", "from-env")
    env = load_config(write(tmp_path, '[webhooks]\nclient_state_env = "HOOK_STATE"\n'),
                      environ={}).settings.webhooks  # fmt: skip
    env_source = env.client_state_source()
    assert env_source is not None and env_source.read() == "from-env"


def test_environment_override(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), environ={"CALSYNC_WEBHOOKS__LISTEN_PORT": "9001"})
    assert config.settings.webhooks.listen_port == 9001 and not config.warnings
    with pytest.raises(ConfigError, match="webhooks: public_url: required"):
        load_config(write(tmp_path, ""), environ={"CALSYNC_WEBHOOKS__ENABLED": "true"})
