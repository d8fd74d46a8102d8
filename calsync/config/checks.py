"""Cross-checks over the raw configuration (pass 2), tolerant of badly typed fields.

They run even when pass 1 (pydantic) found field errors, so an operator sees every problem
at once: unknown tenants, duplicate mailboxes, secret sources, certificates.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import SecretStr

from calsync.config.models import PASSWORD_KEYS, SECRET_KEYS, check_address
from calsync.config.secrets import SecretSource, from_credential, from_env, from_file, inline
from calsync.errors import ConfigError


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def tenant_label(index: int, raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"tenants[{index + 1}]" + (f" ({name})" if isinstance(name, str) else "")


def mailbox_label(table: str, index: int, raw: Any) -> str:
    address = raw.get("address") if isinstance(raw, dict) else None
    if address is None and isinstance(raw, dict) and isinstance(raw.get("addresses"), list):
        address = ", ".join(str(a) for a in raw["addresses"][:2])
        if len(raw["addresses"]) > 2:
            address += ", …"
    return f"{table}[{index + 1}]" + (f" ({address})" if isinstance(address, str) else "")


def secret_source(
    raw: Mapping[str, Any], keys: tuple[str, ...], environ: Mapping[str, str]
) -> SecretSource | None:
    """The one configured source among ``keys`` (first key is the inline form), or None."""
    inline_key, file_key, env_key, credential_key = keys[:4]
    value = raw.get(inline_key)
    if isinstance(value, str):
        return inline(value)
    if isinstance(value, SecretStr):
        return inline(value.get_secret_value())
    if isinstance(raw.get(file_key), str | Path):
        return from_file(Path(raw[file_key]))
    if isinstance(raw.get(env_key), str):
        return from_env(raw[env_key], environ)
    if isinstance(raw.get(credential_key), str):
        return from_credential(raw[credential_key], environ)
    return None


def certificate_source(raw: Mapping[str, Any], environ: Mapping[str, str]) -> SecretSource | None:
    if isinstance(raw.get("certificate_file"), str | Path):
        return from_file(Path(raw["certificate_file"]))
    if isinstance(raw.get("certificate_credential"), str):
        return from_credential(raw["certificate_credential"], environ)
    return None


def check_certificate(source: SecretSource, today: date) -> tuple[datetime | None, list[str]]:
    """Parse a PEM with certificate and private key; return notAfter and problems."""
    try:
        pem = source.read_bytes()
    except ConfigError as exc:
        return None, list(exc.problems)
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None, [f"{source.describe()} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"]
    problems: list[str] = []
    try:
        load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        problems.append(
            f"{source.describe()} holds no unencrypted PEM private key next to the certificate"
        )
    not_after = cert.not_valid_after_utc
    if not_after.date() < today:
        problems.append(
            f"the certificate in {source.describe()} expired on {not_after.date().isoformat()}: "
            "upload a new one to the app registration and replace the file"
        )
    return not_after, problems


def _check_secret_readable(source: SecretSource, where: str, findings: Findings) -> None:
    if source.kind == "inline":
        return
    try:
        source.read()
    except ConfigError as exc:
        findings.problems.extend(f"{where}: {p}" for p in exc.problems)


def check_tenant(
    index: int, raw: Any, environ: Mapping[str, str], config_file: Path | None, today: date
) -> Findings:
    findings = Findings()
    if not isinstance(raw, dict):
        return findings
    label = tenant_label(index, raw)
    auth = raw.get("auth", "oauth")
    if auth == "oauth":
        _check_oauth(
            label, raw=raw, environ=environ, config_file=config_file, today=today, findings=findings
        )
    elif auth in ("ntlm", "basic"):
        _check_service_account(
            label, auth=auth, raw=raw, environ=environ, config_file=config_file, findings=findings
        )
    expires = raw.get("secret_expires")
    if isinstance(expires, date) and expires < today:
        findings.warnings.append(
            f"{label}.secret_expires: the secret expired on {expires.isoformat()}; "
            "create a new one in Entra ID and update the configuration"
        )
    return findings


def _check_oauth(
    label: str,
    *,
    raw: dict[str, Any],
    environ: Mapping[str, str],
    config_file: Path | None,
    today: date,
    findings: Findings,
) -> None:
    for key in ("tenant_id", "client_id"):
        if raw.get(key) in (None, ""):
            findings.problems.append(
                f"{label}.{key}: required for OAuth (copy it from Entra ID → App registrations "
                "→ your app → Overview)"
            )
    given = [k for k in SECRET_KEYS if raw.get(k) not in (None, "")]
    if len(given) != 1:
        findings.problems.append(
            f"{label}: give exactly one of client_secret, client_secret_file, "
            f"client_secret_env, client_secret_credential, certificate_file, "
            f"certificate_credential (found: {', '.join(given) or 'none'})"
        )
        return
    cert = certificate_source(raw, environ)
    if cert is not None:
        _not_after, problems = check_certificate(cert, today)
        findings.problems.extend(f"{label}.certificate: {p}" for p in problems)
    elif raw.get("certificate_thumbprint"):
        findings.problems.append(
            f"{label}.certificate_thumbprint: given without certificate_file or "
            "certificate_credential"
        )
    secret = secret_source(raw, SECRET_KEYS[:4], environ)
    if secret is not None:
        _check_secret_readable(secret, f"{label}.client_secret", findings)
        if secret.kind == "inline":
            _warn_inline(label, "client_secret", config_file, findings)


def _check_service_account(
    label: str,
    *,
    auth: str,
    raw: dict[str, Any],
    environ: Mapping[str, str],
    config_file: Path | None,
    findings: Findings,
) -> None:
    if raw.get("api", "ews") != "ews":
        findings.problems.append(f'{label}.auth: {auth} works only with api = "ews"')
    if not raw.get("username"):
        findings.problems.append(f'{label}.username: required for auth = "{auth}"')
    if not raw.get("ews_url") and not raw.get("autodiscover"):
        findings.problems.append(
            f"{label}.ews_url: required for an on-premises server (or autodiscover = true)"
        )
    given = [k for k in PASSWORD_KEYS if raw.get(k) not in (None, "")]
    if len(given) != 1:
        findings.problems.append(
            f"{label}: give exactly one of password, password_file, password_env, "
            f"password_credential (found: {', '.join(given) or 'none'})"
        )
        return
    password = secret_source(raw, PASSWORD_KEYS, environ)
    if password is not None:
        _check_secret_readable(password, f"{label}.password", findings)
        if password.kind == "inline":
            _warn_inline(label, "password", config_file, findings)


def _warn_inline(label: str, key: str, config_file: Path | None, findings: Findings) -> None:
    if config_file is None:
        return
    try:
        mode = os.stat(config_file).st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        findings.warnings.append(
            f"{label}.{key}: a secret is written inline in {config_file}, which other users can "
            f"read (mode {stat.S_IMODE(mode):04o}); use {key}_file or a systemd credential, "
            f"or chmod 600 the file"
        )


def check_mailboxes(raw: Mapping[str, Any]) -> list[str]:
    """Unknown tenants and duplicate addresses across [[mailboxes]] and [[mailbox_groups]]."""
    problems: list[str] = []
    tenants = raw.get("tenants")
    names = (
        {t.get("name") for t in tenants if isinstance(t, dict)}
        if isinstance(tenants, list)
        else set()
    )
    seen: dict[str, str] = {}
    for table in ("mailboxes", "mailbox_groups"):
        entries = raw.get(table)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            label = mailbox_label(table, index, entry)
            tenant = entry.get("tenant")
            if isinstance(tenant, str) and tenant not in names:
                known = ", ".join(sorted(str(n) for n in names if n)) or "none defined"
                problems.append(f"{label}.tenant: unknown tenant {tenant!r} (known: {known})")
            addresses = [entry.get("address")] if table == "mailboxes" else entry.get("addresses")
            if not isinstance(addresses, list):
                continue
            for address in addresses:
                if not isinstance(address, str):
                    continue
                try:
                    key = check_address(address)
                except ValueError:
                    continue
                if key in seen:
                    problems.append(f"{label}: mailbox {key} is listed twice (also in {seen[key]})")
                else:
                    seen[key] = label
    return problems


def check_tenant_names(raw: Mapping[str, Any]) -> list[str]:
    tenants = raw.get("tenants")
    if not isinstance(tenants, list):
        return []
    problems, seen = [], set()
    for index, entry in enumerate(tenants):
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str):
            if name in seen:
                problems.append(
                    f"{tenant_label(index, entry)}.name: tenant {name!r} is defined twice"
                )
            seen.add(name)
    return problems


def today_utc() -> date:
    return datetime.now(UTC).date()
