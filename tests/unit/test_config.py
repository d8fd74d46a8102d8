"""The configuration: every broken file is refused with exit 2 and a message that names the key."""

from __future__ import annotations

import io
import os
import textwrap
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from calsync.cli import EXIT_CONFIG, main
from calsync.config import load_config
from calsync.errors import ConfigError
from calsync.model import ConflictPolicy, Direction

TENANT = """
[[tenants]]
name = "contoso"
tenant_id = "11111111-2222-3333-4444-555555555555"
client_id = "66666666-7777-8888-9999-000000000000"
client_secret_file = "contoso.secret"
"""
MAILBOX = """
[[mailboxes]]
address = "alice@contoso.com"
tenant = "contoso"
"""


def write(tmp_path: Path, text: str, *, secret: bool = True) -> Path:
    if secret:
        secret_file = tmp_path / "contoso.secret"
        secret_file.write_text("s3cr3t-value\n")
        secret_file.chmod(0o600)
    path = tmp_path / "calsync.toml"
    path.write_text(textwrap.dedent(text))
    path.chmod(0o600)
    return path


def make_pem(tmp_path: Path, *, days: int, with_key: bool = True) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "calsync-test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=400))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    if with_key:
        pem += key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    path = tmp_path / "app.pem"
    path.write_bytes(pem)
    return path


BROKEN = [
    (
        "typo in a key",
        "[daemon]\npoll_intervall = 5\n" + TENANT + MAILBOX,
        ["daemon.poll_intervall", "unknown key", "poll_interval"],
    ),
    (
        "unknown table",
        "[deamon]\npoll_interval = 5\n" + TENANT + MAILBOX,
        ["deamon", "unknown key", "daemon"],
    ),
    (
        "bad e-mail address",
        TENANT + '[[mailboxes]]\naddress = "alice.contoso.com"\ntenant = "contoso"\n',
        ["mailboxes[1]", "address", "not an e-mail address"],
    ),
    (
        "unknown tenant",
        TENANT + '[[mailboxes]]\naddress = "a@contoso.com"\ntenant = "fabrikam"\n',
        ["mailboxes[1] (a@contoso.com).tenant", "unknown tenant 'fabrikam'"],
    ),
    (
        "same mailbox twice",
        TENANT + MAILBOX + MAILBOX.replace("alice", "ALICE"),
        ["mailboxes[2]", "alice@contoso.com is listed twice"],
    ),
    (
        "mailbox in a group and alone",
        TENANT
        + MAILBOX
        + '[[mailbox_groups]]\ntenant = "contoso"\naddresses = ["bob@contoso.com", "alice@contoso.com"]\n',
        ["mailbox_groups[1]", "alice@contoso.com is listed twice"],
    ),
    (
        "missing secret file",
        TENANT.replace("contoso.secret", "missing.secret") + MAILBOX,
        ["tenants[1] (contoso).client_secret", "cannot read the file", "missing.secret"],
    ),
    (
        "two secret sources",
        TENANT + 'client_secret_env = "X"\n' + MAILBOX,
        ["tenants[1] (contoso)", "exactly one of", "client_secret_file, client_secret_env"],
    ),
    (
        "no secret at all",
        TENANT.replace('client_secret_file = "contoso.secret"\n', "") + MAILBOX,
        ["tenants[1] (contoso)", "exactly one of", "found: none"],
    ),
    (
        "secret env unset",
        TENANT.replace(
            'client_secret_file = "contoso.secret"',
            'client_secret_env = "CALSYNC_TEST_UNSET_SECRET"',
        )
        + MAILBOX,
        ["tenants[1] (contoso).client_secret", "CALSYNC_TEST_UNSET_SECRET is not set"],
    ),
    (
        "direction out of the enum",
        TENANT + MAILBOX + 'direction = "both"\n',
        ["mailboxes[1] (alice@contoso.com).direction", "'pull', 'push' or 'two-way'", "both"],
    ),
    (
        "subscriptions above 200",
        "[subscriptions]\nmax_subscriptions_per_connection = 500\n" + TENANT + MAILBOX,
        ["subscriptions.max_subscriptions_per_connection", "less than or equal to 200"],
    ),
    (
        "connection timeout not a multiple of 60",
        "[subscriptions]\nconnection_timeout = 100\n" + TENANT + MAILBOX,
        ["subscriptions.connection_timeout", "multiple of 60"],
    ),
    (
        "negative jitter",
        "[daemon]\npoll_jitter = -1\n" + TENANT + MAILBOX,
        ["daemon.poll_jitter", "greater than or equal to 0"],
    ),
    (
        "client id not a GUID",
        TENANT.replace("66666666-7777-8888-9999-000000000000", "my-app") + MAILBOX,
        ["tenants[1] (contoso).client_id", "GUID"],
    ),
    (
        "tenant defined twice",
        TENANT + TENANT + MAILBOX,
        ["tenants[2] (contoso).name", "defined twice"],
    ),
    (
        "http authority",
        TENANT + 'authority = "http://login.example"\n' + MAILBOX,
        ["tenants[1] (contoso).authority", "https://"],
    ),
    (
        "bad store url",
        '[store]\nurl = "mysql://x"\n' + TENANT + MAILBOX,
        ["store.url", "sqlite:///"],
    ),
    ("bad log level", '[logging]\nlevel = "loud"\n' + TENANT + MAILBOX, ["logging.level"]),
    (
        "share above 1",
        "[defaults]\nmax_delete_share = 1.5\n" + TENANT + MAILBOX,
        ["defaults.max_delete_share", "less than or equal to 1"],
    ),
    ("not TOML", "[daemon\npoll_interval = 5\n", ["not valid TOML"]),
    (
        "mailbox without tenant",
        TENANT + '[[mailboxes]]\naddress = "a@contoso.com"\n',
        ["mailboxes[1] (a@contoso.com).tenant", "required key is missing"],
    ),
    (
        "ntlm without username",
        '[[tenants]]\nname = "corp"\nauth = "ntlm"\npassword = "pw"\n'
        'ews_url = "https://mail.corp.example/EWS/Exchange.asmx"\n',
        ["tenants[1] (corp).username", "required"],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in BROKEN], ids=[name for name, _, _ in BROKEN]
)
def test_broken_config_exits_2_naming_key_and_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: list[str]
) -> None:
    """Each broken file gives exit 2 and a message naming the key and what is wrong."""
    path = write(tmp_path, text)
    code = main(["check-config", "--config", str(path)])
    err = capsys.readouterr().err
    assert code == EXIT_CONFIG
    for fragment in expected:
        assert fragment in err, f"{fragment!r} not in:\n{err}"
    assert "s3cr3t-value" not in err


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    """A field error does not hide the cross-checks (two-pass validation)."""
    text = (
        "[daemon]\nmax_concurrent_syncs = 0\n"
        + TENANT.replace("contoso.secret", "nope")
        + '[[mailboxes]]\naddress = "a@contoso.com"\ntenant = "nobody"\ndirection = "x"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ={})
    text_problems = "\n".join(info.value.problems)
    assert len(info.value.problems) == 4, text_problems
    for key in ("daemon.max_concurrent_syncs", "client_secret", ".tenant", ".direction"):
        assert key in text_problems


def test_example_config_validates() -> None:
    """config/calsync.example.toml shows every key and is valid."""
    example = Path(__file__).parents[2] / "config" / "calsync.example.toml"
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["check-config", "--config", str(example)]) == 0
    assert "replace-this" not in out.getvalue()
    config = load_config(example, environ={})
    assert [m.address for m in config.mailboxes][:2] == [
        "alice@contoso.com",
        "room.berlin@contoso.com",
    ]


def test_defaults_groups_and_overrides(tmp_path: Path) -> None:
    text = (
        '[defaults]\ndirection = "pull"\nwindow_future_days = 90\n'
        + TENANT
        + MAILBOX
        + 'conflict = "newest-wins"\n[[mailbox_groups]]\ntenant = "contoso"\n'
        'addresses = ["Bob@Contoso.com", "carol@contoso.com"]\ndirection = "push"\nenabled = false\n'
    )
    config = load_config(write(tmp_path, text), environ={})
    alice, bob, carol = config.mailboxes
    assert alice.mailbox.direction is Direction.PULL
    assert alice.mailbox.conflict is ConflictPolicy.NEWEST_WINS
    assert alice.mailbox.window_future_days == 90
    assert bob.address == "bob@contoso.com" and bob.mailbox.direction is Direction.PUSH
    assert not carol.enabled and config.enabled_mailboxes() == [alice.mailbox]


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    text = '[store]\nurl = "sqlite:///state/calsync.db"\n' + TENANT + MAILBOX
    config = load_config(write(sub, text), environ={})
    assert config.settings.store.url == f"sqlite:///{sub}/state/calsync.db"
    tenant = config.tenants["contoso"]
    assert tenant.secret is not None and tenant.secret.read() == "s3cr3t-value"
    assert "s3cr3t" not in repr(tenant) and "s3cr3t" not in repr(config)


def test_environment_overrides_win_and_unknown_vars_warn(tmp_path: Path) -> None:
    text = "[daemon]\npoll_interval = 60\n" + TENANT + MAILBOX
    env = {
        "CALSYNC_DAEMON__POLL_INTERVAL": "120",
        "CALSYNC_LOGGING__LEVEL": "DEBUG",
        "CALSYNC_DEAMON__X": "1",
    }
    config = load_config(write(tmp_path, text), environ=env)
    assert config.settings.daemon.poll_interval == 120
    assert config.settings.logging.level == "debug"
    assert any("CALSYNC_DEAMON__X" in w for w in config.warnings)


def test_secret_from_env_and_systemd_credential(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "contoso-secret").write_text("from-credential\n")
    text = (
        TENANT.replace(
            'client_secret_file = "contoso.secret"', 'client_secret_credential = "contoso-secret"'
        )
        + MAILBOX
    )
    config = load_config(write(tmp_path, text), environ={"CREDENTIALS_DIRECTORY": str(creds)})
    secret = config.tenants["contoso"].secret
    assert secret is not None and secret.read() == "from-credential"
    text = TENANT.replace(
        'client_secret_file = "contoso.secret"', 'client_secret_env = "MY_SECRET"'
    )
    config = load_config(write(tmp_path, text + MAILBOX), environ={"MY_SECRET": "from-env"})
    secret = config.tenants["contoso"].secret
    assert secret is not None and secret.read() == "from-env"


def test_inline_secret_in_readable_file_warns(tmp_path: Path) -> None:
    text = TENANT.replace(
        'client_secret_file = "contoso.secret"', 'client_secret = "inline-s3cr3t"'
    )
    path = write(tmp_path, text + MAILBOX)
    path.chmod(0o644)
    config = load_config(path, environ={})
    assert any("other users can read" in w and "0644" in w for w in config.warnings)
    assert all("inline-s3cr3t" not in w for w in config.warnings)
    path.chmod(0o600)
    assert load_config(path, environ={}).warnings == ()


def test_certificate_checks(tmp_path: Path) -> None:
    text = TENANT.replace('client_secret_file = "contoso.secret"', 'certificate_file = "app.pem"')
    make_pem(tmp_path, days=100)
    assert load_config(write(tmp_path, text + MAILBOX), environ={}).tenants["contoso"].certificate
    make_pem(tmp_path, days=-1)
    with pytest.raises(ConfigError, match=r"certificate.*expired on"):
        load_config(write(tmp_path, text + MAILBOX), environ={})
    make_pem(tmp_path, days=100, with_key=False)
    with pytest.raises(ConfigError, match="no unencrypted PEM private key"):
        load_config(write(tmp_path, text + MAILBOX), environ={})
    (tmp_path / "app.pem").write_text("garbage")
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        load_config(write(tmp_path, text + MAILBOX), environ={})


def test_config_path_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, TENANT + MAILBOX)
    monkeypatch.setenv("CALSYNC_CONFIG", os.fspath(path))
    assert load_config().path == path
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "other.toml")
