"""Load the TOML file plus ``CALSYNC_*`` overrides, validate in two passes, resolve paths.

This is the only place that reads configuration files and the environment for settings.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_settings import EnvSettingsSource, TomlConfigSettingsSource

from calsync.config import checks
from calsync.config.models import (
    DEFAULT_CONFIG_PATH,
    PATH_KEYS,
    SECRET_KEYS,
    SINGLE_TABLES,
    CalsyncSettings,
    MailboxGroupSettings,
    MailboxSettings,
    TenantSettings,
)
from calsync.config.secrets import SecretSource
from calsync.errors import ConfigError
from calsync.model import Mailbox

_NESTED: dict[str, type[BaseModel]] = {
    "tenants": TenantSettings,
    "mailboxes": MailboxSettings,
}


@dataclass(frozen=True)
class TenantConfig:
    """One tenant with its secret sources resolved (values are read on demand)."""

    settings: TenantSettings
    secret: SecretSource | None
    certificate: SecretSource | None
    password: SecretSource | None

    @property
    def name(self) -> str:
        return self.settings.name


@dataclass(frozen=True)
class MailboxConfig:
    mailbox: Mailbox
    enabled: bool
    allow_meeting_updates: bool

    @property
    def address(self) -> str:
        return self.mailbox.address


@dataclass(frozen=True)
class Config:
    settings: CalsyncSettings
    path: Path | None
    tenants: dict[str, TenantConfig]
    mailboxes: tuple[MailboxConfig, ...]
    warnings: tuple[str, ...] = ()
    loaded_at: datetime | None = field(default=None, compare=False)

    def enabled_mailboxes(self) -> list[Mailbox]:
        return [m.mailbox for m in self.mailboxes if m.enabled]

    def mailbox(self, address: str) -> MailboxConfig | None:
        wanted = address.strip().lower()
        return next((m for m in self.mailboxes if m.address == wanted), None)


def config_path(explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    """``--config``, else ``$CALSYNC_CONFIG``, else /etc/calsync/calsync.toml."""
    if explicit:
        return Path(explicit)
    if environ.get("CALSYNC_CONFIG"):
        return Path(environ["CALSYNC_CONFIG"])
    return DEFAULT_CONFIG_PATH


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    today: date | None = None,
) -> Config:
    """Read, override, validate and resolve; ConfigError lists every problem at once."""
    environ = dict(os.environ if environ is None else environ)
    file = config_path(path, environ)
    raw = _read_toml(file)
    referenced_envs = _referenced_env_names(raw)
    overrides, env_warnings = _env_overrides(environ, referenced_envs)
    for table, values in overrides.items():
        current = raw.get(table)
        raw[table] = {**(current if isinstance(current, dict) else {}), **values}
    base_dir = file.resolve().parent
    _resolve_paths(raw, base_dir)
    return validate(raw, config_file=file, environ=environ, today=today, warnings=env_warnings)


def validate(
    raw: dict[str, Any],
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    today: date | None = None,
    warnings: list[str] | None = None,
) -> Config:
    environ = environ if environ is not None else os.environ
    today = today or checks.today_utc()
    problems: list[str] = []
    settings: CalsyncSettings | None = None
    try:  # pass 1: types, ranges, unknown keys
        settings = CalsyncSettings.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_describe(error, raw) for error in exc.errors())
    # pass 2: across tables, tolerant of badly typed fields
    problems.extend(checks.check_tenant_names(raw))
    all_warnings = list(warnings or [])
    tenants_raw = raw.get("tenants")
    for index, tenant in enumerate(tenants_raw if isinstance(tenants_raw, list) else []):
        found = checks.check_tenant(index, tenant, environ, config_file, today)
        problems.extend(found.problems)
        all_warnings.extend(found.warnings)
    problems.extend(checks.check_mailboxes(raw))
    if problems or settings is None:
        raise ConfigError(_unique(problems), source=str(config_file) if config_file else None)
    return _resolve(settings, config_file, environ, all_warnings)


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [
                f"configuration file {file} does not exist (give --config FILE or set "
                "CALSYNC_CONFIG; config/calsync.example.toml shows every key)"
            ]
        ) from None
    except OSError as exc:
        raise ConfigError([f"cannot read configuration file {file}: {exc.strerror}"]) from None
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{file}: not valid TOML: {exc}"]) from None
    data: dict[str, Any] = TomlConfigSettingsSource(CalsyncSettings, toml_file=file)()
    return data


def _referenced_env_names(raw: Mapping[str, Any]) -> set[str]:
    names = set()
    for tenant in raw.get("tenants", []) if isinstance(raw.get("tenants"), list) else []:
        if isinstance(tenant, dict):
            for key in ("client_secret_env", "password_env"):
                if isinstance(tenant.get(key), str):
                    names.add(tenant[key].upper())
    return names


def _env_overrides(
    environ: Mapping[str, str], referenced: set[str]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``CALSYNC_<TABLE>__<KEY>`` for the single tables; unknown ``CALSYNC_*`` are warnings."""
    known = {
        f"CALSYNC_{table.upper()}__{key.upper()}"
        for table, model in SINGLE_TABLES.items()
        for key in model.model_fields
    }
    warnings = [
        f"environment variable {name} is not a calsync setting and is ignored"
        for name in sorted(environ)
        if name.upper().startswith("CALSYNC_")
        and name.upper() not in known | referenced | {"CALSYNC_CONFIG"}
    ]
    known_present = {n for n in environ if n.upper() in known}
    if not known_present:
        return {}, warnings
    source = EnvSettingsSource(
        CalsyncSettings, env_prefix="CALSYNC_", env_nested_delimiter="__", case_sensitive=False
    )
    source.env_vars = {k.lower(): v for k, v in environ.items() if k in known_present}
    values = source()
    return {t: v for t, v in values.items() if t in SINGLE_TABLES and isinstance(v, dict)}, warnings


def _resolve_paths(raw: dict[str, Any], base_dir: Path) -> None:
    """Relative paths in the file are relative to the file's folder."""
    for tenant in raw.get("tenants", []) if isinstance(raw.get("tenants"), list) else []:
        if not isinstance(tenant, dict):
            continue
        for key in PATH_KEYS:
            value = tenant.get(key)
            if isinstance(value, str) and value and not Path(value).is_absolute():
                tenant[key] = str(base_dir / value)
    store = raw.get("store")
    if isinstance(store, dict) and isinstance(store.get("url"), str):
        url: str = store["url"]
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith("sqlite:////") and url != prefix:
            store["url"] = prefix + str(base_dir / url[len(prefix) :])


def _describe(error: Any, raw: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    path = _path_label(loc, raw)
    kind = error["type"]
    if kind == "extra_forbidden":
        choices = _fields_at(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), choices, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(choices)}"
        return f"{path}: unknown key{hint}"
    if kind == "missing":
        return f"{path}: required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    key = str(loc[-1]) if loc else ""
    if key not in SECRET_KEYS and key not in ("password",) and "input" in error:
        value = error["input"]
        if isinstance(value, str | int | float | bool) and len(str(value)) < 80:
            message += f" (got {value!r})"
    return f"{path}: {message}"


def _path_label(loc: tuple[Any, ...], raw: Mapping[str, Any]) -> str:
    if not loc:
        return "(file)"
    head, rest = loc[0], loc[1:]
    if head in ("tenants", "mailboxes", "mailbox_groups") and rest and isinstance(rest[0], int):
        entries = raw.get(head)
        entry = entries[rest[0]] if isinstance(entries, list) and rest[0] < len(entries) else {}
        label = (
            checks.tenant_label(rest[0], entry)
            if head == "tenants"
            else checks.mailbox_label(head, rest[0], entry)
        )
        rest = rest[1:]
    else:
        label = str(head)
    return label + "".join(f"[{p + 1}]" if isinstance(p, int) else f".{p}" for p in rest)


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = CalsyncSettings
    for part in loc:
        if isinstance(part, int):
            continue
        if part in SINGLE_TABLES:
            model = SINGLE_TABLES[part]
        elif part in _NESTED:
            model = _NESTED[part]
        elif part == "mailbox_groups":
            model = MailboxGroupSettings
    return sorted(model.model_fields)


def _resolve(
    settings: CalsyncSettings, file: Path | None, environ: Mapping[str, str], warnings: list[str]
) -> Config:
    tenants = {}
    for tenant in settings.tenants:
        raw = tenant.model_dump()
        tenants[tenant.name] = TenantConfig(
            settings=tenant,
            secret=checks.secret_source(raw, SECRET_KEYS[:4], environ),
            certificate=checks.certificate_source(raw, environ),
            password=checks.secret_source(
                raw, ("password", "password_file", "password_env", "password_credential"), environ
            ),
        )
    defaults = settings.defaults
    mailboxes = []
    entries: list[tuple[list[str], Any]] = [([m.address], m) for m in settings.mailboxes]
    entries += [(g.addresses, g) for g in settings.mailbox_groups]
    for addresses, entry in entries:

        def pick(name: str, entry: Any = entry) -> Any:
            value = getattr(entry, name)
            return getattr(defaults, name) if value is None else value

        for address in addresses:
            mailboxes.append(
                MailboxConfig(
                    mailbox=Mailbox(
                        address=address,
                        tenant=entry.tenant,
                        direction=pick("direction"),
                        conflict=pick("conflict"),
                        window_past_days=pick("window_past_days"),
                        window_future_days=pick("window_future_days"),
                        max_delete_share=pick("max_delete_share"),
                        max_delete_min=pick("max_delete_min"),
                    ),
                    enabled=pick("enabled"),
                    allow_meeting_updates=pick("allow_meeting_updates"),
                )
            )
    return Config(
        settings=settings,
        path=file,
        tenants=tenants,
        mailboxes=tuple(mailboxes),
        warnings=tuple(warnings),
    )


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
